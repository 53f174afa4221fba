// The model's graph as the studio draws it, and what a run says about each of its nodes. The
// engine builds the graph from the user's own model (main/onnx/model-graph.ts), before prepare, so
// that every node the user exported is there; the overlay maps a run's layers, recipe and
// pre-flight onto it. One overlay serves the studio's graph view and the HTML report.
import type { Placement } from './preflight';
import { dbNumber, type AnalysisReport, type Db, type LayerReport, type Report } from './report';

export interface GraphNodeInfo {
  /** Unique across the whole graph: the node's name, `owner/attribute/node` inside a body. */
  id: string;
  /** The node's name, or `op_index` when the model leaves it empty (as the engine names it). */
  name: string;
  op: string;
  /** For If/Loop/Scan, the outer tensors its bodies read come after its own inputs. */
  inputs: string[];
  outputs: string[];
  /** What prepare does with the node before quantizing, in words; absent when it is kept. */
  folded?: string;
  bodies?: GraphBody[];
}

/** A control-flow body (If's then/else branch, Loop's and Scan's body). */
export interface GraphBody {
  attribute: string;
  inputs: string[];
  outputs: string[];
  nodes: GraphNodeInfo[];
}

export interface ModelGraph {
  /** Graph inputs that are not initializers. */
  inputs: string[];
  outputs: string[];
  nodes: GraphNodeInfo[];
  /** Tensor shapes the model declares, as "1×3×48×192". */
  shapes: Record<string, string>;
  /** Nodes in all, those inside bodies included. */
  nodeCount: number;
}

/** How a node left quantization: what the overlay marks on it. */
export type NodeStatus = 'quantized' | '16-bit' | 'float' | 'folded' | 'unquantized';

export interface NodeOverlay {
  status: NodeStatus;
  /** The quantized tensor the node makes (or, for a graph input, is): the layer a click opens. */
  layer?: LayerReport;
  /** Local SQNR from the run's sensitivity analysis. */
  local?: Db;
  placement?: Placement;
  reason?: string;
}

/** Every node of the graph, bodies included, depth first in graph order. */
export function allNodes(graph: Pick<ModelGraph, 'nodes'>): GraphNodeInfo[] {
  const out: GraphNodeInfo[] = [];
  const walk = (nodes: GraphNodeInfo[]) => {
    for (const n of nodes) {
      out.push(n);
      for (const b of n.bodies ?? []) walk(b.nodes);
    }
  };
  walk(graph.nodes);
  return out;
}

/** The id the graph draws a graph input or output under. */
export const inputId = (scope: string, tensor: string) => `${scope}in:${tensor}`;
export const outputId = (scope: string, tensor: string) => `${scope}out:${tensor}`;

/**
 * What the run did at each drawn node (ids as in the layout). A layer belongs to the node that
 * makes its tensor in the user's model and to the other nodes of its unit that have no layer of
 * their own: the Conv that absorbed the BatchNormalization after it, the Conv whose output is
 * quantized only after the Relu fused with it.
 */
export function graphOverlay(graph: ModelGraph, report: Report, analysis?: AnalysisReport): Map<string, NodeOverlay> {
  const nodes = allNodes(graph);
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const producer = new Map<string, GraphNodeInfo>();
  for (const n of nodes) for (const o of n.outputs) if (o) producer.set(o, n);
  const placement = new Map(report.preflight.nodes.map((p) => [p.node, p]));
  const local = new Map((analysis?.layers ?? []).map((l) => [l.name, l.localSqnr]));
  const layerOf = new Map<string, LayerReport>();
  for (const layer of report.layers) {
    const made = producer.get(layer.name);
    if (made) layerOf.set(made.id, layer);
    else if (graph.inputs.includes(layer.name)) layerOf.set(inputId('', layer.name), layer);
    if (graph.inputs.includes(layer.name)) continue;
    for (const name of [layer.node, ...layer.nodes]) {
      const part = byName.get(name);
      if (part && !layerOf.has(part.id)) layerOf.set(part.id, layer);
    }
  }
  const overlay = new Map<string, NodeOverlay>();
  // A folded node keeps the layer of the tensor it made (its colour) but is marked folded.
  const statusOf = (layer: LayerReport | undefined, folded: boolean): NodeStatus => {
    if (folded) return 'folded';
    if (layer?.keptInFloat) return 'float';
    if (layer?.type?.endsWith('16')) return '16-bit';
    if (layer) return 'quantized';
    return folded ? 'folded' : 'unquantized';
  };
  for (const n of nodes) {
    const layer = layerOf.get(n.id);
    const placed = placement.get(n.name);
    overlay.set(n.id, {
      status: statusOf(layer, Boolean(n.folded)),
      ...(layer ? { layer, local: local.get(layer.name) } : {}),
      ...(placed ? { placement: placed.placement, reason: placed.reason } : {}),
    });
  }
  for (const name of graph.inputs) {
    const layer = layerOf.get(inputId('', name));
    overlay.set(inputId('', name), { status: statusOf(layer, false), ...(layer ? { layer, local: local.get(layer.name) } : {}) });
  }
  return overlay;
}

/**
 * Nodes whose name, or a tensor they read or make, holds the query (case-insensitive): exact
 * matches first, then names, then tensors made, then tensors read, each in graph order.
 */
export function searchGraph(graph: Pick<ModelGraph, 'nodes'>, query: string): GraphNodeInfo[] {
  const q = query.trim().toLowerCase();
  if (!q) return [];
  const scored: Array<{ node: GraphNodeInfo; score: number; order: number }> = [];
  allNodes(graph).forEach((node, order) => {
    const name = node.name.toLowerCase();
    const outs = node.outputs.map((o) => o.toLowerCase());
    const score = name === q || outs.includes(q) ? 0
      : name.includes(q) ? 1
        : outs.some((o) => o.includes(q)) ? 2
          : node.inputs.some((i) => i.toLowerCase().includes(q)) ? 3 : -1;
    if (score >= 0) scored.push({ node, score, order });
  });
  return scored.sort((a, b) => a.score - b.score || a.order - b.order).map((s) => s.node);
}

/** The value an SQNR overlay colours a node by, or undefined where it has none. */
export function overlayValue(o: NodeOverlay | undefined, mode: 'sqnr' | 'local'): number | undefined {
  if (!o?.layer) return undefined;
  const v = mode === 'local' ? o.local : (o.layer.keptInFloat?.sqnr ?? o.layer.sqnr);
  return v === undefined ? undefined : dbNumber(v);
}
