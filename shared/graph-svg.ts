// The graph drawn as SVG markup: one drawing for the studio's graph view (which pans and zooms it)
// and the HTML report (which embeds it static). Markup rather than React elements because a
// 2,000-node graph is parsed in one go far faster than React builds it node by node, and the
// report needs a string anyway. Colours are attributes, never inline styles: the studio's
// Content-Security-Policy refuses those.
import { NO_VALUE_COLOUR, opColour, PLACEMENT_COLOURS, sqnrColour } from './colours';
import { allNodes, overlayValue, type GraphNodeInfo, type ModelGraph, type NodeOverlay, type NodeStatus } from './graph';
import type { GraphLayout, PlacedNode } from './graph-layout';
import { dbDelta, deltaText, formatDb, type LayerReport } from './report';

export const escapeXml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** What the nodes are coloured by: op type, cumulative or local SQNR, or the pre-flight's placement. */
export type OverlayMode = 'op' | 'sqnr' | 'local' | 'placement';

export const OVERLAY_WORDS: Record<OverlayMode, string> = {
  op: 'op type',
  sqnr: 'SQNR (cumulative)',
  local: 'local SQNR',
  placement: 'pre-flight placement',
};

const STATUS_TAGS: Partial<Record<NodeStatus, string>> = { float: 'float', '16-bit': '16-bit', folded: 'folded' };

export const STATUS_WORDS: Record<NodeStatus, string> = {
  quantized: 'quantized',
  '16-bit': 'quantized to 16 bits',
  float: 'kept in float by the recipe',
  folded: 'folded away by prepare',
  unquantized: 'not quantized',
};

export interface Look {
  fill: string;
  /** A short mark in the box's corner: float, 16-bit, folded. */
  tag?: string;
  dashed: boolean;
  /** The tooltip's lines after the op and name. */
  lines: string[];
  /** The value the colour shows, for tests and for the reader's tooltip. */
  value?: string;
}

/** How one node looks under an overlay; `overlay` is absent before a run (op colours only). */
export function nodeLook(node: GraphNodeInfo | undefined, o: NodeOverlay | undefined, mode: OverlayMode, threshold: number): Look {
  const status = o?.status ?? (node?.folded ? 'folded' : undefined);
  const lines: string[] = [];
  if (status) lines.push(STATUS_WORDS[status]);
  if (node?.folded) lines.push(node.folded);
  if (o?.layer) {
    lines.push(`SQNR ${formatDb(o.layer.keptInFloat?.sqnr ?? o.layer.sqnr)} dB${o.local !== undefined ? `, local ${formatDb(o.local)} dB` : ''} at ${o.layer.name}`);
  }
  if (o?.placement) lines.push(`pre-flight: ${o.placement}${o.reason ? ` (${o.reason})` : ''}`);
  const tag = status ? STATUS_TAGS[status] : undefined;
  const dashed = status === 'folded';
  if (mode === 'op' || !node && mode === 'placement') return { fill: node ? opColour(node.op) : NO_VALUE_COLOUR, tag, dashed, lines };
  if (mode === 'placement') return { fill: o?.placement ? PLACEMENT_COLOURS[o.placement] : NO_VALUE_COLOUR, tag, dashed, lines, value: o?.placement };
  const v = overlayValue(o, mode);
  if (v === undefined) return { fill: NO_VALUE_COLOUR, tag, dashed, lines };
  return { fill: sqnrColour(v, threshold), tag, dashed, lines, value: Number.isFinite(v) ? v.toFixed(2) : 'inf' };
}

/** Black or white text, whichever reads better on the fill (WCAG relative luminance). */
function darkFill(hex: string): boolean {
  const c = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255).map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
  return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2] < 0.18;
}

const n1 = (v: number) => Number(v.toFixed(1));

/**
 * The graph's markup, to go inside an <svg> that defines the `#garrow` marker. Nodes carry
 * `data-node` (their id) and, where the run quantized their tensor, `data-layer`; control-flow
 * nodes carry a `data-toggle` button.
 */
export function graphMarkup(layout: GraphLayout, looks: (node: PlacedNode) => Look & { layer?: string }, shapes: Record<string, string>): string {
  const out: string[] = [];
  for (const b of layout.bodies) {
    out.push(`<g class="gbody"><rect x="${n1(b.x)}" y="${n1(b.y)}" width="${n1(b.width)}" height="${n1(b.height)}" rx="6"/><text x="${n1(b.x + 6)}" y="${n1(b.y + 12)}">${escapeXml(b.title)}</text></g>`);
  }
  for (const e of layout.edges) {
    out.push(`<path class="gedge" d="M${e.points.map(([x, y]) => `${n1(x)} ${n1(y)}`).join('L')}" marker-end="url(#garrow)"/>`);
    const shape = shapes[e.tensor];
    if (shape) {
      const [x, y] = e.points[0];
      out.push(`<text class="gshape" x="${n1(x + 4)}" y="${n1(y + 10)}">${escapeXml(shape)}</text>`);
    }
  }
  for (const n of layout.nodes) {
    const look = looks(n);
    const cls = ['gnode', `g${n.kind}`, look.dashed ? 'gfolded' : '', darkFill(look.fill) ? 'gdark' : '', n.expanded ? 'gopen' : ''].filter(Boolean).join(' ');
    const attrs = [`class="${cls}"`, `data-node="${escapeXml(n.id)}"`, look.layer ? `data-layer="${escapeXml(look.layer)}"` : '', look.value ? `data-value="${look.value}"` : '', `data-fill="${look.fill}"`].filter(Boolean).join(' ');
    const tip = escapeXml([n.kind === 'op' ? `${n.title} ${n.id}` : `${n.kind} ${n.id.replace(/^.*?(in|out):/, '')}`, ...look.lines].join('\n'));
    const w = n1(n.width);
    const h = n1(n.height);
    const text = n.kind === 'op'
      ? `<text class="gop" x="${n1(n.width / 2)}" y="14">${escapeXml(n.title)}</text><text class="gname" x="${n1(n.width / 2)}" y="${n.expanded ? 14 + 13 : 27}">${escapeXml(n.subtitle)}</text>`
      : `<text class="gop" x="${n1(n.width / 2)}" y="15">${escapeXml(n.title)}</text>`;
    const tag = look.tag ? `<text class="gtag" x="${w}" y="-2">${look.tag}</text>` : '';
    const toggle = n.bodies ? `<g class="gtoggle" data-toggle="${escapeXml(n.id)}" role="button"><rect x="2" y="2" width="14" height="14" rx="3"/><text x="9" y="13">${n.expanded ? '−' : '+'}</text></g>` : '';
    out.push(`<g ${attrs} transform="translate(${n1(n.x)} ${n1(n.y)})"><title>${tip}</title><rect width="${w}" height="${h}" rx="${n.kind === 'op' ? 4 : h / 2}" fill="${look.fill}"/>${text}${tag}${toggle}</g>`);
  }
  return out.join('');
}

/** The arrow marker the edges end in. */
export const ARROW_MARKER = '<marker id="garrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0L8 4L0 8z"/></marker>';

/** Another run (or the same recipe without its algorithms) whose SQNR each node's tooltip compares with. */
export interface GraphOutline {
  label: string;
  layers: LayerReport[];
}

/** The look of every drawn node of `graph` under a run's overlay (absent before a run). */
export function graphLooks(graph: ModelGraph, overlay: Map<string, NodeOverlay> | undefined, mode: OverlayMode, threshold: number, outline?: GraphOutline): (node: PlacedNode) => Look & { layer?: string } {
  const byId = new Map(allNodes(graph).map((n) => [n.id, n]));
  const before = new Map(outline?.layers.map((l) => [l.name, l.sqnr]));
  return (p) => {
    const o = overlay?.get(p.id);
    const look = nodeLook(byId.get(p.id), o, mode, threshold);
    const was = o?.layer ? before.get(o.layer.name) : undefined;
    if (o?.layer && was !== undefined) look.lines.push(`${deltaText(dbDelta(o.layer.sqnr, was))} dB against ${outline!.label} (${formatDb(was)} dB)`);
    return { ...look, layer: o?.layer?.name };
  };
}
