// SmoothQuant (Xiao et al., 2022): a transformer's activations have a few channels a hundred times
// wider than the rest, which one 8-bit scale per tensor cannot hold, while its weights are even.
// Dividing input channel j of a MatMul/Gemm by s_j = max|X_j|^α / max|W_j|^(1−α) and multiplying
// row j of its weight by s_j computes the same product and moves part of the difficulty from the
// activation to the weight. The division is folded into what produces X — a LayerNormalization's
// scale and bias, or the output channels of a linear layer — so the float model is the same
// function with no new node.
import * as ort from 'onnxruntime-node';
import type { SmoothQuantReport } from '../../shared/report';
import type { Feed } from '../base/feed';
import { int64Tensor } from '../onnx/tensor';
import { makeNode, reduceOver, typedValueInfo, uniqueName } from '../onnx/edit';
import { attrInt, defaultOpset, namesRead, type GraphNode, type GraphView } from '../onnx/graph';
import { DataType, onnx } from '../onnx/proto';
import { floatData, runAdditions, type Additions } from '../onnx/session';
import { floatTensor, tensorDims, tensorToFloat32 } from '../onnx/tensor';
import { linearWeight, type LinearWeight, type QuantPlan } from '../plan/plan';

/** How the channels of a smoothed input are divided: inside the LayerNormalization, or the linear layer (and its bias Add), that makes it. */
type Producer =
  | { kind: 'layernorm'; node: GraphNode }
  | { kind: 'linear'; node: GraphNode; linear: LinearWeight; biasAdd?: { node: GraphNode; bias: string } };

/** One activation whose channels are smoothed, with every quantized linear layer that reads it (they share its scales). */
export interface SmoothGroup {
  input: string;
  k: number;
  producer: Producer;
  consumers: Array<{ node: GraphNode; linear: LinearWeight }>;
}

const isVector = (view: GraphView, name: string | undefined, k: number) => {
  const t = name ? view.constantTensor(name) : undefined;
  return t !== undefined && t.dataType === DataType.FLOAT && tensorDims(t).reduce((a, b) => a * b, 1) === k && tensorDims(t).length === 1;
};

function producerOf(view: GraphView, input: string, k: number, outputs: ReadonlySet<string>): Producer | string {
  const p = view.producer.get(input);
  if (!p) return 'it is a graph input';
  const alone = (tensor: string) => (view.consumers.get(tensor) ?? []).length === 1 && !outputs.has(tensor);
  if (p.op === 'LayerNormalization') {
    const axis = attrInt(p.proto, 'axis', -1);
    const rank = view.shapes.get(input)?.length;
    if (axis !== -1 && axis !== (rank ?? 0) - 1) return `its LayerNormalization ${p.name} normalizes over axis ${axis}, not the channels`;
    if (p.outputs.slice(1).some(Boolean)) return `its LayerNormalization ${p.name} also gives its mean and deviation`;
    if (!isVector(view, p.inputs[1], k) || (p.inputs[2] && !isVector(view, p.inputs[2], k))) return `its LayerNormalization ${p.name} has no constant per-channel scale`;
    return { kind: 'layernorm', node: p };
  }
  const linearOf = (node: GraphNode | undefined) => {
    if (!node || (node.op !== 'MatMul' && node.op !== 'Gemm')) return undefined;
    const linear = linearWeight(view, node);
    return typeof linear === 'string' || linear.n !== k ? undefined : linear;
  };
  const direct = linearOf(p);
  if (direct) return { kind: 'linear', node: p, linear: direct };
  // PyTorch exports a Linear on 3-D inputs as MatMul then Add of its bias.
  if (p.op === 'Add') {
    for (const [i, j] of [[0, 1], [1, 0]]) {
      const mm = view.producer.get(p.inputs[i]);
      const linear = linearOf(mm);
      if (mm && linear && isVector(view, p.inputs[j], k) && alone(mm.outputs[0])) return { kind: 'linear', node: mm, linear, biasAdd: { node: p, bias: p.inputs[j] } };
    }
  }
  return `it comes from ${p.op} ${p.name}, which cannot take a per-channel scale`;
}

/**
 * The activations SmoothQuant can smooth under `plan`: inputs of quantized MatMul/Gemm layers with
 * constant weights, read by such layers alone, made by a LayerNormalization or a linear layer. The
 * others, with why not.
 */
export function smoothableGroups(view: GraphView, plan: QuantPlan): { groups: SmoothGroup[]; skipped: Array<{ input: string; reason: string }> } {
  const quantized = new Set(plan.nodes.filter((n) => n.status === 'quantized').map((n) => n.node));
  const outputs = new Set(view.outputs.map((o) => o.name));
  // Values an If/Loop body reads from outside: a body that reads an activation would see it scaled.
  const readInBodies = namesRead(view.nodes.flatMap((n) => n.proto.attribute.flatMap((a) => [a.g, ...a.graphs]).flatMap((g) => (g ? g.node : []))));
  const byInput = new Map<string, SmoothGroup['consumers']>();
  for (const node of view.nodes) {
    if ((node.op !== 'MatMul' && node.op !== 'Gemm') || !quantized.has(node.name)) continue;
    const linear = linearWeight(view, node);
    if (typeof linear === 'string') continue;
    byInput.set(node.inputs[0], [...(byInput.get(node.inputs[0]) ?? []), { node, linear }]);
  }
  const groups: SmoothGroup[] = [];
  const skipped: Array<{ input: string; reason: string }> = [];
  for (const [input, consumers] of byInput) {
    const k = consumers[0].linear.k;
    const others = (view.consumers.get(input) ?? []).filter((c) => !consumers.some((x) => x.node === c) || c.inputs[1] === input);
    const reason = outputs.has(input) ? 'it is a graph output'
      : readInBodies.has(input) ? 'an If/Loop body reads it too and would see it scaled'
      : others.length ? `${others[0].op} ${others[0].name} reads it too and would see it scaled`
        : consumers.some((c) => c.linear.k !== k) ? 'its readers disagree on its channels' : undefined;
    const producer = reason ?? producerOf(view, input, k, outputs);
    if (typeof producer === 'string') skipped.push({ input, reason: producer });
    else groups.push({ input, k, producer, consumers });
  }
  return { groups, skipped };
}

/**
 * max |X_j| per channel j of each input (name → K, its last dim) over `batches`: one session of the
 * float model, each input reshaped to [rows, K] and reduced in ONNX Runtime.
 */
export async function channelAbsMax(model: onnx.ModelProto, inputs: ReadonlyMap<string, number>, batches: AsyncIterable<Feed>, signal?: AbortSignal): Promise<Map<string, Float32Array>> {
  const additions: Additions = { nodes: [], initializers: [], outputs: [] };
  const names = [...inputs.keys()];
  const opset = defaultOpset(model);
  names.forEach((name, i) => {
    const p = `qs_smooth_${i}`;
    additions.initializers.push(int64Tensor(`${p}_shape`, [2], [-1, inputs.get(name)!]));
    additions.nodes.push(
      makeNode('Reshape', [name, `${p}_shape`], [`${p}_rows`]),
      makeNode('Abs', [`${p}_rows`], [`${p}_abs`]),
      reduceOver('ReduceMax', `${p}_abs`, [0], `${p}_max`, opset, additions.initializers),
    );
    additions.outputs.push(typedValueInfo(`${p}_max`, DataType.FLOAT, [inputs.get(name)!]));
  });
  const maxima = names.map((name) => new Float32Array(inputs.get(name)!));
  await runAdditions(model, additions, batches, 'model that measures the channel ranges for SmoothQuant', (out) => maxima.forEach((m, i) => {
    const batch = floatData(out[`qs_smooth_${i}_max`] as ort.Tensor, `qs_smooth_${i}_max`);
    for (let j = 0; j < m.length; j++) if (batch[j] > m[j]) m[j] = batch[j];
  }), signal);
  return new Map(names.map((name, i) => [name, maxima[i]]));
}

/** The widest channel's range over the mean channel's: how far one scale per tensor is from fitting them all. */
function outlierRatio(ranges: ArrayLike<number>): number {
  let max = 0;
  let sum = 0;
  for (let j = 0; j < ranges.length; j++) {
    max = Math.max(max, ranges[j]);
    sum += ranges[j];
  }
  return sum > 0 ? Number((max / (sum / ranges.length)).toFixed(2)) : 1;
}

/** Scales stay within this factor of 1 either way: a dead channel (max 0) or a zero weight row gives no scale of its own. */
const SCALE_LIMIT = 1e4;

/** s_j = max|X_j|^α / max|W_j|^(1−α), with max|W_j| over every reader's row j. */
function scalesOf(group: SmoothGroup, view: GraphView, amax: Float32Array, alpha: number): Float64Array {
  const wmax = new Float64Array(group.k);
  for (const { node, linear } of group.consumers) {
    const w = tensorToFloat32(view.constantTensor(linear.weight, node)!);
    for (let i = 0; i < w.length; i++) {
      const j = linear.transposed ? i % linear.k : Math.floor(i / linear.n);
      const v = Math.abs(w[i]);
      if (v > wmax[j]) wmax[j] = v;
    }
  }
  return Float64Array.from(amax, (a, j) => {
    const s = a > 0 && wmax[j] > 0 ? a ** alpha / wmax[j] ** (1 - alpha) : 1;
    return Math.min(SCALE_LIMIT, Math.max(1 / SCALE_LIMIT, s));
  });
}

/**
 * The float model with each group's input divided by its scales (in its producer) and its readers'
 * weight rows multiplied by them: the same function. A tensor only the changed node reads keeps its
 * name (the recipe's overrides and the report name it); one another node shares becomes a new
 * initializer, so that node reads it as it was.
 */
export function smoothModel(view: GraphView, groups: readonly SmoothGroup[], amax: ReadonlyMap<string, Float32Array>, alpha: number): { model: onnx.ModelProto; report: SmoothQuantReport['layers'] } {
  const graph = view.model.graph!;
  const taken = new Set([...view.initializers.keys(), ...view.nodes.flatMap((n) => n.outputs), ...view.inputs.map((i) => i.name)]);
  // A layer can be both a reader (its rows scaled) and a producer (its columns): the second scaling reads the first's result.
  const inits = new Map<string, onnx.TensorProto>();
  const rewired = new Map<onnx.NodeProto, string[]>();
  const inputsOf = (node: GraphNode) => rewired.get(node.proto) ?? [...node.inputs];
  const outputs = new Set(graph.output.map((o) => o.name));
  const shared = (name: string) => outputs.has(name) || (view.consumers.get(name) ?? []).length > 1;
  /** `name` (input `slot` of `node`) with each element multiplied by `factor(i)`. */
  const scaled = (node: GraphNode, slot: number, factor: (i: number, dims: number[]) => number) => {
    const name = inputsOf(node)[slot];
    const t = inits.get(name) ?? view.constantTensor(name, node)!;
    const dims = tensorDims(t);
    const out = Float32Array.from(tensorToFloat32(t), (v, i) => v * factor(i, dims));
    const own = inits.has(name) || !shared(name);
    const target = own ? name : uniqueName(taken, `${name}_smoothed`);
    inits.set(target, floatTensor(target, dims, out));
    if (!own) {
      const ins = inputsOf(node);
      ins[slot] = target;
      rewired.set(node.proto, ins);
    }
  };
  const report: SmoothQuantReport['layers'] = [];
  for (const g of groups) {
    const a = amax.get(g.input)!;
    const s = scalesOf(g, view, a, alpha);
    for (const { node, linear } of g.consumers) {
      // Row j of B[K, N] (stored [N, K] when transposed) carries input channel j.
      scaled(node, 1, (i) => s[linear.transposed ? i % linear.k : Math.floor(i / linear.n)]);
    }
    const p = g.producer;
    if (p.kind === 'layernorm') {
      scaled(p.node, 1, (i) => 1 / s[i]);
      if (p.node.inputs[2]) scaled(p.node, 2, (i) => 1 / s[i]);
    } else {
      // Output channel j of the producer is column j of its B[K', N = K].
      scaled(p.node, 1, (i) => 1 / s[p.linear.transposed ? Math.floor(i / p.linear.k) : i % p.linear.n]);
      if (p.linear.bias) scaled(p.node, 2, (i) => 1 / s[i]);
      if (p.biasAdd) scaled(p.biasAdd.node, p.biasAdd.node.inputs.indexOf(p.biasAdd.bias), (i) => 1 / s[i]);
    }
    report.push({
      input: g.input, producer: p.node.name, consumers: g.consumers.map((c) => c.node.name),
      outlierRatio: { before: outlierRatio(a), after: outlierRatio(Float64Array.from(a, (v, j) => v / s[j])) },
    });
  }
  const node = graph.node.map((n) => (rewired.has(n) ? onnx.NodeProto.create({ ...n, input: rewired.get(n)! }) : n));
  const initializer = [...graph.initializer.map((t) => inits.get(t.name) ?? t), ...[...inits.values()].filter((t) => !view.initializers.has(t.name))];
  return { model: onnx.ModelProto.create({ ...view.model, graph: onnx.GraphProto.create({ ...graph, node, initializer }) }), report };
}
