// The model's graph, laid out top-down in a worker, drawn once as SVG markup and moved by one
// transform: panning and zooming a 2,000-node graph touches a single attribute, never React.
// With a run it colours each node by its tensor's SQNR (cumulative or local) or by the pre-flight's
// placement; a click on a node opens the layer panel, and a selection made anywhere else (a bar,
// a table row, a search) centres its node.
import { useCallback, useEffect, useMemo, useRef, useState, type KeyboardEvent, type PointerEvent } from 'react';
import { opLegend, NO_VALUE_COLOUR, PLACEMENT_COLOURS, sqnrBands } from '../../shared/colours';
import { allNodes, searchGraph, type GraphNodeInfo, type ModelGraph, type NodeOverlay } from '../../shared/graph';
import type { GraphLayout } from '../../shared/graph-layout';
import { ARROW_MARKER, graphLooks, graphMarkup, OVERLAY_WORDS, STATUS_WORDS, type GraphOutline, type OverlayMode } from '../../shared/graph-svg';
import { useStudio } from '../context';
import { layoutInWorker, warmLayout } from './layout-client';

interface View { x: number; y: number; k: number }

/** Below this zoom the text is too small to read and is not painted, which keeps big graphs smooth. */
const TEXT_ZOOM = 0.45;
/** The zoom a big graph opens at: node names readable, about a dozen ranks in view. */
const READABLE_ZOOM = 0.8;
const MIN_ZOOM = 0.02;
const MAX_ZOOM = 4;
/** A pointer that moves less than this between down and up clicked rather than dragged. */
const CLICK_SLOP = 4;

export interface GraphPaneProps {
  /** What a run did at each node; absent before a run, when the graph shows op types only. */
  overlay?: Map<string, NodeOverlay>;
  /** The overlays this pane offers; the first is shown until the user picks another. */
  modes: OverlayMode[];
  threshold: number;
  /** The run each node's tooltip gives the SQNR difference against. */
  outline?: GraphOutline;
  /** The selected layer (a tensor name), shared with the chart and the table. */
  selected?: string;
  onSelect?(layer: string): void;
}

/** The control-flow nodes a node sits inside, outermost first. */
function owners(graph: ModelGraph, id: string): string[] {
  return allNodes(graph).filter((n) => n.bodies && id.startsWith(`${n.id}/`)).map((n) => n.id).sort((a, b) => a.length - b.length);
}

export function GraphPane({ overlay, modes, threshold, outline, selected, onSelect }: GraphPaneProps) {
  const state = useStudio((s) => s.graph);
  const loadGraph = useStudio((s) => s.loadGraph);
  const chosen = useStudio((s) => s.overlay);
  const setOverlay = useStudio((s) => s.setOverlay);
  const mode = modes.includes(chosen) ? chosen : modes[0];
  const graph = state?.value;
  const [expanded, setExpanded] = useState<ReadonlySet<string>>(new Set());
  const [laid, setLaid] = useState<{ layout: GraphLayout; seconds: number; graph: ModelGraph } | { error: string }>();
  const [picked, setPicked] = useState<string>();
  const [query, setQuery] = useState('');
  const [found, setFound] = useState<{ query: string; nodes: GraphNodeInfo[]; at: number }>();
  const svg = useRef<SVGSVGElement>(null);
  const viewport = useRef<SVGGElement>(null);
  const view = useRef<View>({ x: 0, y: 0, k: 1 });
  const drag = useRef<{ x: number; y: number; moved: number; id: number } | undefined>(undefined);
  /** A node to centre once the layout that shows it is drawn. */
  const pending = useRef<string | undefined>(undefined);

  useEffect(() => {
    warmLayout();
    void loadGraph();
  }, [loadGraph]);

  useEffect(() => {
    if (!graph) return;
    let live = true;
    const started = performance.now();
    layoutInWorker(graph, expanded).then(
      (layout) => live && setLaid({ layout, seconds: (performance.now() - started) / 1000, graph }),
      (err: unknown) => live && setLaid({ error: err instanceof Error ? err.message : String(err) }),
    );
    return () => {
      live = false;
    };
  }, [graph, expanded]);

  const layout = laid && 'layout' in laid && laid.graph === graph ? laid.layout : undefined;
  const markup = useMemo(() => (layout && graph ? graphMarkup(layout, graphLooks(graph, overlay, mode, threshold, outline), graph.shapes) : ''), [layout, graph, overlay, mode, threshold, outline]);

  const apply = useCallback(() => {
    const { x, y, k } = view.current;
    viewport.current?.setAttribute('transform', `translate(${x} ${y}) scale(${k})`);
    svg.current?.classList.toggle('gfar', k < TEXT_ZOOM);
  }, []);

  const fit = useCallback(() => {
    const box = svg.current?.getBoundingClientRect();
    if (!box || !layout) return;
    const k = Math.max(MIN_ZOOM, Math.min(1.2, box.width / (layout.width + 20), box.height / (layout.height + 20)));
    view.current = { k, x: (box.width - layout.width * k) / 2, y: Math.max(0, (box.height - layout.height * k) / 2) };
    apply();
  }, [layout, apply]);

  const zoomAt = useCallback((factor: number, px?: number, py?: number) => {
    const box = svg.current?.getBoundingClientRect();
    if (!box) return;
    const { x, y, k } = view.current;
    const next = Math.max(MIN_ZOOM, Math.min(MAX_ZOOM, k * factor));
    const cx = px ?? box.width / 2;
    const cy = py ?? box.height / 2;
    view.current = { k: next, x: cx - ((cx - x) * next) / k, y: cy - ((cy - y) * next) / k };
    apply();
  }, [apply]);

  /** Centres the drawn node and zooms in far enough to read it; false when it is not drawn. */
  const centre = useCallback((id: string): boolean => {
    const node = layout?.nodes.find((n) => n.id === id);
    const box = svg.current?.getBoundingClientRect();
    if (!node || !box) return false;
    const k = Math.max(view.current.k, 0.9);
    view.current = { k, x: box.width / 2 - (node.x + node.width / 2) * k, y: box.height / 2 - (node.y + node.height / 2) * k };
    apply();
    return true;
  }, [layout, apply]);

  /**
   * A graph that fits the frame readably is shown whole; a bigger one starts at its first input,
   * zoomed to read: fitted whole it would be a smear of boxes.
   */
  const start = useCallback(() => {
    const box = svg.current?.getBoundingClientRect();
    const first = layout?.nodes[0];
    if (!box || !layout || !first) return;
    const whole = Math.min(box.width / (layout.width + 20), box.height / (layout.height + 20));
    if (whole >= READABLE_ZOOM) {
      fit();
      return;
    }
    const k = READABLE_ZOOM;
    view.current = { k, x: box.width / 2 - (first.x + first.width / 2) * k, y: 16 - first.y * k };
    apply();
  }, [layout, apply, fit]);

  // A new layout starts at its top, unless something waits to be centred.
  useEffect(() => {
    if (!layout) return;
    if (!(pending.current && centre(pending.current))) start();
    pending.current = undefined;
  }, [layout, start, centre]);

  // The markup replaces the viewport's children, so the transform and the selection go back on.
  useEffect(() => {
    apply();
    const root = viewport.current;
    if (!root) return;
    for (const el of root.querySelectorAll('.gselected')) el.classList.remove('gselected');
    const marked = selected ? root.querySelectorAll(`[data-layer="${CSS.escape(selected)}"]`) : [];
    for (const el of marked) el.classList.add('gselected');
    if (picked) root.querySelector(`[data-node="${CSS.escape(picked)}"]`)?.classList.add('gselected');
  }, [markup, selected, picked, apply]);

  // A layer selected elsewhere (a bar, a table row) centres the node that makes it.
  const centredLayer = useRef<string | undefined>(undefined);
  useEffect(() => {
    if (!selected || !layout || centredLayer.current === selected) return;
    centredLayer.current = selected;
    const id = viewport.current?.querySelector<SVGGElement>(`[data-layer="${CSS.escape(selected)}"]`)?.dataset.node;
    if (id) centre(id);
  }, [selected, layout, markup, centre]);

  useEffect(() => {
    const el = svg.current;
    if (!el) return undefined;
    const wheel = (e: WheelEvent) => {
      e.preventDefault();
      const box = el.getBoundingClientRect();
      zoomAt(Math.exp(-e.deltaY * 0.0015), e.clientX - box.left, e.clientY - box.top);
    };
    el.addEventListener('wheel', wheel, { passive: false });
    return () => el.removeEventListener('wheel', wheel);
  }, [zoomAt, layout]);

  const show = useCallback((node: GraphNodeInfo) => {
    const layer = overlay?.get(node.id)?.layer?.name;
    if (layer && onSelect) {
      centredLayer.current = layer;
      setPicked(undefined);
      onSelect(layer);
    } else {
      setPicked(node.id);
    }
    const closed = graph ? owners(graph, node.id).filter((o) => !expanded.has(o)) : [];
    if (closed.length) {
      pending.current = node.id;
      setExpanded(new Set([...expanded, ...closed]));
    } else {
      centre(node.id);
    }
  }, [overlay, onSelect, graph, expanded, centre]);

  const onPointerDown = (e: PointerEvent<SVGSVGElement>) => {
    if (e.button !== 0) return;
    drag.current = { x: e.clientX, y: e.clientY, moved: 0, id: e.pointerId };
  };
  const onPointerMove = (e: PointerEvent<SVGSVGElement>) => {
    const d = drag.current;
    if (!d || d.id !== e.pointerId) return;
    const dx = e.clientX - d.x;
    const dy = e.clientY - d.y;
    d.moved += Math.abs(dx) + Math.abs(dy);
    if (d.moved > CLICK_SLOP && !svg.current?.hasPointerCapture(e.pointerId)) svg.current?.setPointerCapture(e.pointerId);
    d.x = e.clientX;
    d.y = e.clientY;
    view.current = { ...view.current, x: view.current.x + dx, y: view.current.y + dy };
    apply();
  };
  const onPointerUp = (e: PointerEvent<SVGSVGElement>) => {
    const d = drag.current;
    drag.current = undefined;
    if (!d || d.moved > CLICK_SLOP || !graph) return;
    const target = e.target as Element;
    const toggle = target.closest<SVGGElement>('[data-toggle]')?.dataset.toggle;
    if (toggle) {
      const next = new Set(expanded);
      if (!next.delete(toggle)) next.add(toggle);
      pending.current = toggle;
      setExpanded(next);
      return;
    }
    const id = target.closest<SVGGElement>('[data-node]')?.dataset.node;
    const node = id ? allNodes(graph).find((n) => n.id === id) : undefined;
    if (node) show(node);
    else if (id) setPicked(id);
  };

  const onKey = (e: KeyboardEvent<SVGSVGElement>) => {
    const step = 60;
    const moves: Record<string, () => void> = {
      '+': () => zoomAt(1.25), '=': () => zoomAt(1.25), '-': () => zoomAt(0.8), '0': fit,
      ArrowLeft: () => { view.current.x += step; apply(); },
      ArrowRight: () => { view.current.x -= step; apply(); },
      ArrowUp: () => { view.current.y += step; apply(); },
      ArrowDown: () => { view.current.y -= step; apply(); },
    };
    const move = moves[e.key];
    if (!move) return;
    e.preventDefault();
    move();
  };

  const search = () => {
    if (!graph) return;
    const again = found && found.query === query && found.nodes.length > 0;
    const nodes = again ? found.nodes : searchGraph(graph, query);
    const at = again ? (found.at + 1) % nodes.length : 0;
    setFound({ query, nodes, at });
    if (nodes.length) show(nodes[at]);
  };

  const pickedNode = picked && graph ? allNodes(graph).find((n) => n.id === picked) : undefined;
  const pickedOverlay = picked ? overlay?.get(picked) : undefined;
  const failure = state?.error ?? (laid && 'error' in laid ? laid.error : undefined);

  return (
    <div className="graph-view" data-testid="graph-view">
      <div className="toolbar graph-tools">
        {modes.length > 1 && (
          <div className="segmented" role="radiogroup" aria-label="Colour the nodes by">
            {modes.map((m) => (
              <label key={m}><input type="radio" name="graph-overlay" checked={mode === m} onChange={() => setOverlay(m)} />{OVERLAY_WORDS[m]}</label>
            ))}
          </div>
        )}
        <form className="graph-search" role="search" onSubmit={(e) => { e.preventDefault(); search(); }}>
          <input type="search" aria-label="Find a node or tensor by name" placeholder="Find a node or tensor" value={query} onChange={(e) => setQuery(e.target.value)} data-testid="graph-search" />
          <button type="submit">Find</button>
        </form>
        <span className="muted small" data-testid="graph-found" aria-live="polite">
          {found && found.query === query ? (found.nodes.length ? `${found.at + 1} of ${found.nodes.length}: ${found.nodes[found.at].op} ${found.nodes[found.at].name}${found.nodes.length > 1 ? ' (Find again for the next)' : ''}` : 'no node or tensor by that name') : ''}
        </span>
        <span className="zoom-buttons">
          <button type="button" onClick={() => zoomAt(0.8)} aria-label="Zoom out" data-testid="graph-zoom-out">−</button>
          <button type="button" onClick={() => zoomAt(1.25)} aria-label="Zoom in" data-testid="graph-zoom-in">+</button>
          <button type="button" onClick={fit} data-testid="graph-fit">Fit</button>
        </span>
      </div>
      <div className="graph-frame">
        {failure ? <p className="error" role="alert">{failure}</p>
          : !layout ? <p className="muted graph-wait">{graph ? `Laying out ${graph.nodeCount.toLocaleString('en-US')} nodes…` : 'Reading the graph…'}</p>
            : null}
        <svg ref={svg} className="graph-svg" role="img" tabIndex={0} aria-label={`Graph of the model, coloured by ${OVERLAY_WORDS[mode]}: drag to pan, wheel or + and − to zoom, 0 to fit`}
          onPointerDown={onPointerDown} onPointerMove={onPointerMove} onPointerUp={onPointerUp} onKeyDown={onKey}
          data-layout-seconds={laid && 'layout' in laid ? laid.seconds.toFixed(3) : undefined} data-nodes={graph?.nodeCount}>
          <defs dangerouslySetInnerHTML={{ __html: ARROW_MARKER }} />
          <g ref={viewport} dangerouslySetInnerHTML={{ __html: markup }} />
        </svg>
        {pickedNode && (
          <div className="graph-node-info" data-testid="graph-node-info">
            <div className="panel-head"><strong>{pickedNode.op}</strong> <span className="path">{pickedNode.name}</span>
              <button type="button" className="link" onClick={() => setPicked(undefined)} aria-label="Close">×</button></div>
            <p className="small">
              {pickedOverlay ? STATUS_WORDS[pickedOverlay.status] : pickedNode.folded ? STATUS_WORDS.folded : 'before quantization'}
              {pickedNode.folded ? `: ${pickedNode.folded}` : ''}
              {pickedOverlay?.placement ? `; pre-flight: ${pickedOverlay.placement}${pickedOverlay.reason ? ` (${pickedOverlay.reason})` : ''}` : ''}
            </p>
            <p className="small muted path">in: {pickedNode.inputs.join(', ') || '—'}<br />out: {pickedNode.outputs.join(', ') || '—'}</p>
          </div>
        )}
      </div>
      <GraphLegend mode={mode} threshold={threshold} graph={graph} />
      {layout && graph && (
        <p className="muted small" data-testid="graph-count">
          {graph.nodeCount.toLocaleString('en-US')} nodes{graph.nodeCount > graph.nodes.length ? ` (${graph.nodes.length.toLocaleString('en-US')} in the main graph)` : ''}, laid out in {laid && 'seconds' in laid ? laid.seconds.toFixed(1) : '—'} s.
          Dashed: folded by prepare; tagged float or 16-bit: the recipe's overrides; + opens an If/Loop body.
        </p>
      )}
    </div>
  );
}

function GraphLegend({ mode, threshold, graph }: { mode: OverlayMode; threshold: number; graph?: ModelGraph }) {
  const entries = useMemo(() => {
    if (mode === 'op') return graph ? opLegend(allNodes(graph).map((n) => n.op)).map((e) => ({ label: e.label, colour: e.colour })) : [];
    if (mode === 'placement') {
      return [...(Object.entries(PLACEMENT_COLOURS) as Array<[string, string]>).map(([label, colour]) => ({ label: label === 'cpu' ? 'CPU fallback' : label, colour })),
        { label: 'folded by prepare', colour: NO_VALUE_COLOUR }];
    }
    return [...sqnrBands(threshold), { label: mode === 'local' ? 'not quantized, or not analysed' : 'not quantized', colour: NO_VALUE_COLOUR }];
  }, [mode, threshold, graph]);
  return (
    <ul className="legend" aria-label={`Colours: ${OVERLAY_WORDS[mode]}`} data-testid="graph-legend">
      {entries.map((e) => <li key={e.label}><i style={{ background: e.colour }} />{e.label}</li>)}
    </ul>
  );
}
