// Cross-layer equalization (Nagel et al., "Data-Free Quantization Through Weight Equalization and
// Bias Correction", 2019): for a Conv whose output reaches a second Conv through nothing or
// per-channel ops that are positively homogeneous (f(x / s) = f(x) / s for s > 0: Relu, LeakyRelu,
// PRelu, max and average pooling), output channel c of the first is divided by s_c and input channel c of the second multiplied by
// it. The float model computes the same function; the two weights' per-channel ranges become
// sqrt(r1 * r2) each, which per-tensor (and low-bit) weight quantization needs most: a depthwise
// conv with a few channels 100 times wider than the rest loses the narrow ones to rounding.
import { dbToJson, type CleReport, type WeightChange } from '../../shared/report';
import { attrInt, attrInts, attrString, GraphView, type GraphNode } from '../onnx/graph';
import { DataType, onnx } from '../onnx/proto';
import { floatTensor, tensorDims, tensorToFloat32 } from '../onnx/tensor';
import { sqnrOf } from '../stats/sqnr';
import type { WeightSpec } from './plan';
import { quantizeWeight } from './qmath';

/** A pair of Convs equalized, with their weights as they were. */
export interface EqualizedPair {
  first: string;
  second: string;
  /** The nodes between them, in order. */
  via: string[];
  /** Channels whose high bias moved into the second conv (high-bias absorption). */
  absorbed: number;
  /** Per output channel of the first conv: what its output was divided by, and then the bias it gave up. */
  scales: Float64Array;
  shifts: Float64Array;
  /** Weight tensors of the two Convs, and their values before equalization. */
  weights: { first: string; second: string };
  original: { first: onnx.TensorProto; second: onnx.TensorProto };
}

const HOMOGENEOUS = new Set(['Relu', 'LeakyRelu', 'PRelu', 'MaxPool', 'AveragePool', 'GlobalMaxPool', 'GlobalAveragePool']);
/** Sweeps over all pairs: a Conv in two pairs (a dw conv between two pointwise ones) settles in a few. */
const MAX_SWEEPS = 20;
/** Stop when no scale moves by more than this relative amount in a sweep. */
const CONVERGED = 1e-4;

interface Layer {
  node: GraphNode;
  weight: string;
  bias?: string;
  dims: number[];
  group: number;
}

interface Pair {
  a: Layer;
  b: Layer;
  via: GraphNode[];
}

function soleConsumer(view: GraphView, tensor: string, outputs: ReadonlySet<string>): GraphNode | undefined {
  const c = view.consumers.get(tensor) ?? [];
  return c.length === 1 && !outputs.has(tensor) ? c[0] : undefined;
}

/** A Conv with a float initializer weight (and bias) that no other node reads. */
function convLayer(view: GraphView, node: GraphNode): Layer | undefined {
  if (node.op !== 'Conv' || node.domain || node.scope) return undefined;
  const own = (name: string | undefined) => name !== undefined && name !== '' && view.initializers.get(name)?.dataType === DataType.FLOAT && (view.consumers.get(name) ?? []).length === 1;
  const [, weight, bias] = node.inputs;
  if (!own(weight) || (bias && !own(bias))) return undefined;
  const dims = tensorDims(view.initializers.get(weight)!);
  if (dims.length < 3) return undefined;
  return { node, weight, bias: bias || undefined, dims, group: attrInt(node.proto, 'group', 1) };
}

function findPairs(view: GraphView, outputs: ReadonlySet<string>): Pair[] {
  const pairs: Pair[] = [];
  for (const node of view.nodes) {
    const a = convLayer(view, node);
    if (!a) continue;
    const via: GraphNode[] = [];
    let tensor = node.outputs[0];
    let next = soleConsumer(view, tensor, outputs);
    // PRelu's slope is per channel and stays as it is; only the data input scales. MaxPool's
    // optional indices output would change meaning, so only single-output nodes pass.
    while (next && HOMOGENEOUS.has(next.op) && !next.domain && next.inputs[0] === tensor && next.outputs.filter(Boolean).length === 1) {
      via.push(next);
      tensor = next.outputs[0];
      next = soleConsumer(view, tensor, outputs);
    }
    const b = next && next.inputs[0] === tensor ? convLayer(view, next) : undefined;
    // The second conv's input channels are the first's output channels.
    if (b && b.dims[1] * b.group === a.dims[0]) pairs.push({ a, b, via });
  }
  return pairs;
}

/** Largest |w| of each output channel (row) of a [C_out, ...] weight. */
function rowRanges(w: ArrayLike<number>, dims: readonly number[]): Float64Array {
  const per = w.length / dims[0];
  const r = new Float64Array(dims[0]);
  for (let c = 0; c < dims[0]; c++) for (let i = c * per; i < (c + 1) * per; i++) r[c] = Math.max(r[c], Math.abs(w[i]));
  return r;
}

/** Calls f(index) for every weight element that reads input channel c of a grouped conv [C_out, C_in / group, ...]. */
function forInputChannel(dims: readonly number[], group: number, c: number, f: (i: number) => void): void {
  const cinPer = dims[1];
  const coutPer = dims[0] / group;
  const spatial = dims.slice(2).reduce((x, y) => x * y, 1);
  const g = Math.floor(c / cinPer);
  const j = c - g * cinPer;
  for (let o = g * coutPer; o < (g + 1) * coutPer; o++) {
    const base = (o * cinPer + j) * spatial;
    for (let k = 0; k < spatial; k++) f(base + k);
  }
}

/**
 * High-bias absorption (Nagel et al. 2019, 4.1.1): where a Relu joins the pair and the first conv
 * was folded with a BatchNormalization, its output channel c is N(β_c, γ_c²)/S_c after the scales
 * S, so it stays above m_c = max(0, (β_c − 3|γ_c|) / S_c) in 99.87% of values. Relu(x − m) =
 * Relu(x) − m there, so m leaves the first conv's bias and enters the second's through its
 * weights. The Relu's output range narrows by m: quantization spends no steps below it. The second
 * conv must not pad (a padded border would see −m where it saw 0) and must have a bias; max
 * pooling between passes a shift unchanged. Returns m per channel (0 where nothing moved).
 */
function absorbHighBias(pair: Pair, stats: { mean: Float32Array; std: Float32Array }, scaled: Float64Array, load: (name: string) => Float64Array): Float64Array {
  const { a, b, via } = pair;
  const shifts = new Float64Array(a.dims[0]);
  if (!a.bias || !b.bias || !via.some((n) => n.op === 'Relu') || !via.every((n) => n.op === 'Relu' || n.op === 'MaxPool') || pads(b.node)) return shifts;
  const bias1 = load(a.bias);
  const bias2 = load(b.bias);
  const w2 = load(b.weight);
  const spatial = b.dims.slice(2).reduce((x, y) => x * y, 1);
  for (let c = 0; c < a.dims[0]; c++) {
    const m = Math.max(0, (stats.mean[c] - 3 * stats.std[c]) / scaled[c]);
    if (!(m > 0)) continue;
    shifts[c] = m;
    bias1[c] -= m;
    forInputChannel(b.dims, b.group, c, (i) => { bias2[Math.floor(i / (b.dims[1] * spatial))] += w2[i] * m; });
  }
  return shifts;
}

/** Whether a conv pads its input (explicitly or by auto_pad SAME). */
function pads(node: GraphNode): boolean {
  return attrString(node.proto, 'auto_pad', 'NOTSET').startsWith('SAME') || (attrInts(node.proto, 'pads') ?? []).some((p) => p !== 0);
}

/**
 * The model with every eligible Conv pair equalized, and the pairs. Scales are found in float64
 * and applied once to the original float32 weights, so the float model's outputs change only by
 * float32 rounding.
 */
export function equalizeLayers(model: onnx.ModelProto, batchNorms: ReadonlyArray<{ conv: string; mean: Float32Array; std: Float32Array }> = []): { model: onnx.ModelProto; pairs: EqualizedPair[] } {
  const view = new GraphView(model);
  const outputs = new Set(model.graph!.output.map((o) => o.name));
  const pairs = findPairs(view, outputs);
  if (!pairs.length) return { model, pairs: [] };
  // Working copies in float64, written back to float32 once at the end.
  const data = new Map<string, Float64Array>();
  const load = (name: string) => {
    if (!data.has(name)) data.set(name, Float64Array.from(tensorToFloat32(view.initializers.get(name)!)));
    return data.get(name)!;
  };
  // Each first conv's output channel is divided by the product of its scales over the sweeps.
  const scaled = new Map(pairs.map((p) => [p, new Float64Array(p.a.dims[0]).fill(1)]));
  for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    let moved = 0;
    for (const pair of pairs) {
      const { a, b } = pair;
      const w1 = load(a.weight);
      const w2 = load(b.weight);
      const bias = a.bias ? load(a.bias) : undefined;
      const r1 = rowRanges(w1, a.dims);
      for (let c = 0; c < a.dims[0]; c++) {
        let r2 = 0;
        forInputChannel(b.dims, b.group, c, (i) => { r2 = Math.max(r2, Math.abs(w2[i])); });
        if (!(r1[c] > 0 && r2 > 0)) continue;
        const s = Math.sqrt(r1[c] / r2);
        moved = Math.max(moved, Math.abs(s - 1));
        const per = w1.length / a.dims[0];
        for (let i = c * per; i < (c + 1) * per; i++) w1[i] /= s;
        if (bias) bias[c] /= s;
        scaled.get(pair)![c] *= s;
        forInputChannel(b.dims, b.group, c, (i) => { w2[i] *= s; });
      }
    }
    if (moved < CONVERGED) break;
  }
  const stats = new Map(batchNorms.map((s) => [s.conv, s]));
  const absorbed = new Map(pairs.map((p) => {
    const s = stats.get(p.a.node.name);
    return [p, s ? absorbHighBias(p, s, scaled.get(p)!, load) : new Float64Array(p.a.dims[0])] as const;
  }));
  const replaced = new Map([...data].map(([name, values]) => {
    const t = view.initializers.get(name)!;
    return [name, floatTensor(name, tensorDims(t), Float32Array.from(values))] as const;
  }));
  const graph = model.graph!;
  return {
    model: onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...graph, initializer: graph.initializer.map((t) => replaced.get(t.name) ?? t) }) }),
    pairs: pairs.map((p) => ({
      first: p.a.node.name, second: p.b.node.name, via: p.via.map((n) => n.name),
      absorbed: absorbed.get(p)!.filter((m) => m > 0).length, scales: scaled.get(p)!, shifts: absorbed.get(p)!,
      weights: { first: p.a.weight, second: p.b.weight },
      original: { first: view.initializers.get(p.a.weight)!, second: view.initializers.get(p.b.weight)! },
    })),
  };
}

/** The report of an equalization: each pair, with its weights' SQNR before and after under the plan's weight quantization. */
export function equalizationReport(equalized: { pairs: EqualizedPair[]; seconds: number }, model: onnx.ModelProto, weights: ReadonlyMap<string, WeightSpec>): CleReport {
  const now = new Map(model.graph!.initializer.map((t) => [t.name, t]));
  const change = (name: string, original: onnx.TensorProto): WeightChange | undefined => {
    const spec = weights.get(name);
    if (!spec || spec.block) return undefined;
    const sqnr = (t: onnx.TensorProto) => {
      const data = tensorToFloat32(t);
      return dbToJson(sqnrOf(data, quantizeWeight(data, tensorDims(t), spec.type, spec.symmetric, spec.axis, spec.range).dequantized));
    };
    return { before: sqnr(original), after: sqnr(now.get(name)!) };
  };
  return {
    pairs: equalized.pairs.map((p) => {
      const first = change(p.weights.first, p.original.first);
      const second = change(p.weights.second, p.original.second);
      return { first: p.first, second: p.second, via: p.via, weightSqnr: { ...(first ? { first } : {}), ...(second ? { second } : {}) }, absorbed: p.absorbed };
    }),
    seconds: Number(equalized.seconds.toFixed(3)),
  };
}
