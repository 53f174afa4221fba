// The pre-flight report: before any calibration, where every node of the model will run on the
// chosen backend — quantized on the device, in float (or native integers) on the device, on the
// host CPU, or nowhere — and why. Read from the plan and the backend's device rules only.
import type { BackendCapability } from '../../shared/backends';
import type { NodePlacement, Placement, Preflight, PreflightCost } from '../../shared/preflight';
import type { GraphNode, GraphView } from '../onnx/graph';
import type { Recipe } from '../../shared/recipe';
import { planQuantization, type QuantPlan } from './plan';

/** Ops whose output shape depends on the data: a fixed-shape compiler cannot take them. */
const DATA_DEPENDENT_SHAPE_OPS = new Set(['NonZero', 'NonMaxSuppression', 'Unique', 'Compress', 'Loop']);

function tensorTypes(view: GraphView, node: GraphNode): string[] {
  // Shape and Size read only a tensor's dimensions, not its data.
  const read = node.op === 'Shape' || node.op === 'Size' ? [] : node.inputs;
  return [...read, ...node.outputs].filter((t) => t).map((t) => view.types.get(t) ?? (view.isConstant(t) ? '' : 'float'));
}

function runsOnDevice(backend: BackendCapability, op: string): boolean {
  const ops = backend.device.floatOps;
  return ops === 'all' || (ops !== 'none' && ops.includes(op));
}

function offDevice(backend: BackendCapability, why: string): { placement: Placement; reason: string } {
  return backend.device.fallback === 'error'
    ? { placement: 'unsupported', reason: `${why}; ${backend.name} has no fallback, so this blocks the export` }
    : { placement: 'cpu', reason: `${why}; falls back to the CPU` };
}

function place(view: GraphView, plan: QuantPlan, node: GraphNode, planned: QuantPlan['nodes'][number]): { placement: Placement; reason?: string } {
  const { backend } = plan;
  const device = backend.device;
  if (device.staticShapes && DATA_DEPENDENT_SHAPE_OPS.has(node.op)) {
    return offDevice(backend, `dynamic shape: ${node.op}'s output size depends on the data, and ${device.name} compiles fixed shapes`);
  }
  if (planned.status === 'quantized') return { placement: 'quantized' };
  const types = tensorTypes(view, node);
  const computesFloat = types.some((t) => t === 'float' || t === 'float16');
  const why = planned.reason ?? 'not quantized';
  if (!computesFloat) {
    if (!device.int64 && types.includes('int64')) {
      return offDevice(backend, `unsupported type: int64 tensors (shape arithmetic), which ${device.name} does not have — fix the model's input shapes and fold its constants (the shape arithmetic then disappears) before exporting`);
    }
    return { placement: 'device', reason: 'no float data: runs on integers as it is' };
  }
  if (device.floatOps === 'none') return offDevice(backend, `stays float (${why}), and ${device.name} has no float kernels`);
  if (!runsOnDevice(backend, node.op)) return offDevice(backend, `unsupported op: ${device.name} has no ${node.op} kernel (stays float: ${why})`);
  return { placement: 'device', reason: `runs in ${device.floatPrecision} on ${device.name}: ${why}` };
}

/**
 * Device partitions, counted the way an execution provider must cut them: a group of device nodes
 * cannot contain a path that leaves for the CPU and comes back. Each node's level is the number of
 * device↔CPU hand-offs on the longest path reaching it; connected device nodes on one level form a
 * partition.
 */
function countPartitions(view: GraphView, placed: Map<string, Placement>): number {
  const onDevice = (name: string) => placed.get(name) === 'quantized' || placed.get(name) === 'device';
  const level = new Map<string, number>();
  const parent = new Map<string, string>();
  const find = (x: string): string => {
    let r = x;
    while (parent.get(r) !== r) r = parent.get(r)!;
    parent.set(x, r);
    return r;
  };
  for (const n of view.nodes) {
    const producers = n.inputs.map((t) => (t ? view.producer.get(t) : undefined)).filter((p): p is GraphNode => p !== undefined);
    let l = 0;
    for (const p of producers) l = Math.max(l, level.get(p.name)! + (onDevice(p.name) !== onDevice(n.name) ? 1 : 0));
    level.set(n.name, l);
    if (!onDevice(n.name)) continue;
    parent.set(n.name, n.name);
    for (const p of producers) if (onDevice(p.name) && level.get(p.name) === l) parent.set(find(n.name), find(p.name));
  }
  return new Set([...parent.keys()].map(find)).size;
}

export function preflight(view: GraphView, plan: QuantPlan): Preflight {
  const { backend } = plan;
  const byNode = new Map(plan.nodes.map((n) => [n.node, n]));
  const nodes: NodePlacement[] = view.nodes.map((node) => {
    const planned = byNode.get(node.name) ?? { node: node.name, op: node.op, status: 'float' as const, reason: 'not quantized' };
    return { node: node.name, op: node.op, ...place(view, plan, node, planned) };
  });
  const counts = { quantized: 0, device: 0, cpu: 0, unsupported: 0 };
  const byOp: Preflight['byOp'] = {};
  for (const n of nodes) {
    counts[n.placement]++;
    byOp[n.op] ??= { quantized: 0, device: 0, cpu: 0, unsupported: 0 };
    byOp[n.op][n.placement]++;
  }
  const problems: string[] = [];
  if (backend.device.staticShapes) {
    for (const input of view.inputs) {
      const dynamic = (input.shape ?? []).filter((d) => typeof d !== 'number' || d <= 0);
      if (!input.shape || dynamic.length) {
        problems.push(`dynamic shape: input ${input.name} is [${(input.shape ?? ['?']).join(', ')}]; ${backend.device.name} compiles fixed shapes, so the export pins it to the first evaluation sample's shape`);
      }
    }
  }
  return {
    backend: backend.name,
    device: backend.device.name,
    total: nodes.length,
    counts,
    byOp,
    partitions: countPartitions(view, new Map(nodes.map((n) => [n.node, n.placement]))),
    problems,
    nodes,
  };
}

/** What a change of recipe (say, a layer kept in float) costs: the nodes that leave the device, and the partitions before and after. */
export function preflightCost(before: Preflight, after: Preflight): PreflightCost {
  const was = new Map(before.nodes.map((n) => [n.node, n.placement]));
  const onDevice = (p: Placement | undefined) => p === 'quantized' || p === 'device';
  return {
    leftDevice: after.nodes.filter((n) => onDevice(was.get(n.node)) && !onDevice(n.placement)),
    leftInteger: after.nodes.filter((n) => was.get(n.node) === 'quantized' && n.placement !== 'quantized'),
    partitions: [before.partitions, after.partitions],
  };
}

/**
 * The pre-flight of a plan, and when its recipe keeps nodes in float or overrides tensors, what
 * that costs against the same recipe without them.
 */
export function preflightWithCost(view: GraphView, plan: QuantPlan): { preflight: Preflight; cost?: PreflightCost } {
  const result = preflight(view, plan);
  const recipe: Recipe = plan.recipe;
  if (recipe.excludeNodes.length === 0 && Object.keys(recipe.overrides).length === 0) return { preflight: result };
  const baseline = preflight(view, planQuantization(view, { ...recipe, excludeNodes: [], overrides: {} }));
  return { preflight: result, cost: preflightCost(baseline, result) };
}
