// Lays the model's graph out top-down with ELK's layered algorithm. The studio runs ELK in a Web
// Worker (so a 2,000-node layout never freezes the window) and the HTML report runs it in the
// engine; both pass their ELK here, and both draw the same picture.
//
// A collapsed If/Loop/Scan is one box. An expanded one is laid out inside out: each body alone,
// then the node as a box big enough to hold its bodies side by side. ELK's own hierarchy mode
// would route edges across the boundary too, but costs several times as much on big graphs.
import { inputId, outputId, type GraphNodeInfo, type ModelGraph } from './graph';

/**
 * Chosen for speed on big graphs (warm, Node 20, AMD EPYC; runs vary by a third). On a generated
 * 2,000-node network with skip edges ELK's defaults took 3.9 s, one pass of crossing minimisation
 * without the greedy switch 1.5 s. On the e2e's 2,000-node residual network that took 1.8 s, laid out
 * whole rather than per connected component 0.85 s, and simple node placement kept that. Simple
 * placement also keeps the sample's 250 Constants beside their consumers: Brandes–Köpf spread them
 * into a graph 3,600 px wide, simple into 540.
 */
const LAYOUT_OPTIONS: Record<string, string> = {
  'elk.algorithm': 'layered',
  'elk.direction': 'DOWN',
  'elk.edgeRouting': 'POLYLINE',
  'elk.separateConnectedComponents': 'false',
  'elk.layered.thoroughness': '1',
  'elk.layered.crossingMinimization.greedySwitch.type': 'OFF',
  'elk.layered.nodePlacement.strategy': 'SIMPLE',
  'elk.spacing.nodeNode': '18',
  'elk.layered.spacing.nodeNodeBetweenLayers': '26',
  'elk.padding': '[top=12,left=12,bottom=12,right=12]',
};

interface ElkPoint { x: number; y: number }

/** ELK's JSON graph, as far as the layout writes and reads it. */
export interface ElkGraph {
  id: string;
  layoutOptions?: Record<string, string>;
  children?: ElkGraph[];
  edges?: Array<{ id: string; sources: string[]; targets: string[]; sections?: Array<{ startPoint: ElkPoint; endPoint: ElkPoint; bendPoints?: ElkPoint[] }> }>;
  x?: number;
  y?: number;
  width?: number;
  height?: number;
}

/** What the layout needs of ELK (elkjs's ELK, in a worker or not), named here so that shared/ imports no library. */
export interface LayoutEngine {
  layout(graph: ElkGraph): Promise<ElkGraph>;
}

/**
 * Past this many boxes the layout skips crossing minimisation (nodes keep the model's order within
 * a rank, which for networks exported layer by layer crosses little) and ranks by longest path: the
 * e2e's 2,000-node graph then lays out in 2.2–2.4 s in Chromium's worker instead of 2.8–3.8 s.
 */
const BIG_GRAPH = 1000;
const BIG_GRAPH_OPTIONS = { ...LAYOUT_OPTIONS, 'elk.layered.crossingMinimization.strategy': 'NONE', 'elk.layered.layering.strategy': 'LONGEST_PATH' };

export type PlacedKind = 'op' | 'input' | 'output';

export interface PlacedNode {
  id: string;
  kind: PlacedKind;
  x: number;
  y: number;
  width: number;
  height: number;
  /** Op type for a node, the tensor's name for an input or output. */
  title: string;
  /** The node's name, shortened to fit the box. */
  subtitle: string;
  /** A control-flow node: its bodies can be shown inside it. */
  bodies?: number;
  expanded?: boolean;
}

export interface PlacedBody {
  id: string;
  title: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface PlacedEdge {
  id: string;
  tensor: string;
  points: Array<[number, number]>;
}

export interface GraphLayout {
  width: number;
  height: number;
  nodes: PlacedNode[];
  bodies: PlacedBody[];
  edges: PlacedEdge[];
}

const NODE_HEIGHT = 34;
const PILL_HEIGHT = 22;
const NAME_CHARS = 26;
const HEADER = 32;
const BODY_TITLE = 16;
const BODY_GAP = 12;

/** Text past this many characters is cut with an ellipsis; the full name is in the node's tooltip and panel. */
export function shorten(text: string, chars = NAME_CHARS): string {
  return text.length > chars ? `${text.slice(0, chars - 1)}…` : text;
}

/** Box widths from the text they hold: 12 px bold op names, 10 px node names. */
function boxWidth(title: string, subtitle: string): number {
  return Math.round(Math.min(220, Math.max(64, title.length * 7.4 + 16, subtitle.length * 6 + 16)));
}

interface Scope {
  prefix: string;
  nodes: GraphNodeInfo[];
  inputs: string[];
  outputs: string[];
}

/** Lays out the graph with the control-flow nodes whose ids are in `expanded` opened up. */
export async function layoutGraph(elk: LayoutEngine, graph: ModelGraph, expanded: ReadonlySet<string> = new Set()): Promise<GraphLayout> {
  const made = new Set<string>(graph.inputs);
  const collect = (nodes: GraphNodeInfo[]) => {
    for (const n of nodes) {
      for (const o of n.outputs) made.add(o);
      for (const b of n.bodies ?? []) {
        b.inputs.forEach((i) => made.add(i));
        collect(b.nodes);
      }
    }
  };
  collect(graph.nodes);
  return layoutScope(elk, { prefix: '', nodes: graph.nodes, inputs: graph.inputs, outputs: graph.outputs }, expanded, made);
}

async function layoutScope(elk: LayoutEngine, scope: Scope, expanded: ReadonlySet<string>, made: ReadonlySet<string>): Promise<GraphLayout> {
  const inner = new Map<string, { layouts: GraphLayout[]; titles: string[] }>();
  for (const n of scope.nodes) {
    if (!n.bodies || !expanded.has(n.id)) continue;
    const layouts = await Promise.all(n.bodies.map((b) => {
      const defined = new Set([...b.inputs, ...b.nodes.flatMap((x) => x.outputs)]);
      // What a body reads from outside is drawn as an input of the body, as its own inputs are.
      const captured = [...new Set(b.nodes.flatMap((x) => x.inputs))].filter((t) => t && !defined.has(t) && made.has(t));
      return layoutScope(elk, { prefix: `${n.id}/${b.attribute}/`, nodes: b.nodes, inputs: [...b.inputs, ...captured], outputs: b.outputs }, expanded, made);
    }));
    inner.set(n.id, { layouts, titles: n.bodies.map((b) => b.attribute) });
  }

  const nodes: PlacedNode[] = [];
  for (const t of scope.inputs) nodes.push(pill('input', inputId(scope.prefix, t), t));
  for (const n of scope.nodes) {
    const box = inner.get(n.id);
    const title = n.op;
    const subtitle = shorten(n.name);
    const node: PlacedNode = { id: n.id, kind: 'op', x: 0, y: 0, width: boxWidth(title, subtitle), height: NODE_HEIGHT, title, subtitle };
    if (n.bodies) {
      node.bodies = n.bodies.length;
      node.expanded = Boolean(box);
    }
    if (box) {
      node.width = Math.max(node.width, box.layouts.reduce((w, l) => w + l.width, 0) + BODY_GAP * (box.layouts.length + 1));
      node.height = HEADER + BODY_TITLE + Math.max(...box.layouts.map((l) => l.height)) + BODY_GAP;
    }
    nodes.push(node);
  }
  for (const t of scope.outputs) nodes.push(pill('output', outputId(scope.prefix, t), t));

  const producer = new Map<string, string>();
  for (const t of scope.inputs) producer.set(t, inputId(scope.prefix, t));
  for (const n of scope.nodes) for (const o of n.outputs) producer.set(o, n.id);
  const edges: Array<{ id: string; tensor: string; from: string; to: string }> = [];
  const seen = new Set<string>();
  const connect = (tensor: string, to: string) => {
    const from = producer.get(tensor);
    const id = `${from}->${to}:${tensor}`;
    if (!from || from === to || seen.has(id)) return;
    seen.add(id);
    edges.push({ id, tensor, from, to });
  };
  for (const n of scope.nodes) for (const t of n.inputs) connect(t, n.id);
  for (const t of scope.outputs) connect(t, outputId(scope.prefix, t));

  const root: ElkGraph = {
    id: `${scope.prefix}root`,
    layoutOptions: nodes.length > BIG_GRAPH ? BIG_GRAPH_OPTIONS : LAYOUT_OPTIONS,
    children: nodes.map((n) => ({ id: n.id, width: n.width, height: n.height })),
    edges: edges.map((e) => ({ id: e.id, sources: [e.from], targets: [e.to] })),
  };
  const done = await elk.layout(root);
  const at = new Map((done.children ?? []).map((c) => [c.id, c]));
  for (const n of nodes) {
    const c = at.get(n.id)!;
    n.x = c.x ?? 0;
    n.y = c.y ?? 0;
  }
  const tensorOf = new Map(edges.map((e) => [e.id, e.tensor]));
  const placedEdges: PlacedEdge[] = (done.edges ?? []).flatMap((e) => {
    const section = e.sections?.[0];
    const tensor = tensorOf.get(e.id);
    if (!section || tensor === undefined) return [];
    const points = [section.startPoint, ...(section.bendPoints ?? []), section.endPoint].map((p) => [p.x, p.y] as [number, number]);
    return [{ id: e.id, tensor, points }];
  });
  const layout: GraphLayout = { width: done.width ?? 0, height: done.height ?? 0, nodes, bodies: [], edges: placedEdges };

  // Bodies move into their node's box, side by side under its header.
  for (const n of nodes) {
    const box = inner.get(n.id);
    if (!box) continue;
    let x = n.x + BODY_GAP;
    box.layouts.forEach((l, i) => {
      const y = n.y + HEADER + BODY_TITLE;
      layout.bodies.push({ id: `${n.id}/${box.titles[i]}`, title: box.titles[i], x, y: y - BODY_TITLE, width: l.width, height: l.height + BODY_TITLE });
      layout.nodes.push(...l.nodes.map((m) => ({ ...m, x: m.x + x, y: m.y + y })));
      layout.bodies.push(...l.bodies.map((b) => ({ ...b, x: b.x + x, y: b.y + y })));
      layout.edges.push(...l.edges.map((e) => ({ ...e, points: e.points.map(([px, py]) => [px + x, py + y] as [number, number]) })));
      x += l.width + BODY_GAP;
    });
  }
  return layout;
}

function pill(kind: 'input' | 'output', id: string, tensor: string): PlacedNode {
  const title = shorten(tensor, 32);
  return { id, kind, x: 0, y: 0, width: Math.round(Math.max(48, title.length * 6.4 + 20)), height: PILL_HEIGHT, title, subtitle: '' };
}
