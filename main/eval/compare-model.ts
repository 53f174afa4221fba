// One model that runs the float and the quantized graph side by side on the same inputs and
// reduces each compared pair to a few numbers inside ONNX Runtime: Σx², Σ(x−y)² and, where asked,
// Σ(x−QDQ(x))² and the float range. Handing both models' activations to JavaScript instead would move
// hundreds of MB per sample (the PaddleOCR recognizer makes 200 MB of them per text line, twice).
import { axesInitializer, flatShape, makeNode, reducedCells, rowCells, rowDims, typedValueInfo, withJoinedAdditions, type InferredDims, type KnownDims } from '../onnx/edit';
import { defaultOpset } from '../onnx/graph';
import { onnx, toNumber } from '../onnx/proto';

/** A float tensor and its dequantized counterpart in the quantized model. */
export interface TensorPair {
  float: string;
  quant: string;
  /** Also measure the float tensor's range: its row has no calibrated range to show. */
  measureRange?: boolean;
}

/** The cells (ComparisonModel.cells) of the sums vector that hold a pair's sums, one value per row of the tensor. */
export interface PairTaps {
  float: string;
  /** Σx² of the float tensor. */
  signal: number;
  /** Σ(x − y)² against the dequantized tensor. */
  noise: number;
  /** Σ(x − QDQ(x))² of the float tensor through the same Q/DQ: the layer's own error with exact float inputs. */
  localNoise?: number;
  min?: number;
  max?: number;
}

/** The one output that holds every pair's sums in cells (edit.ts withJoinedAdditions says why one). */
export const SUMS_OUTPUT = 'qs_cmp_sums';

const FLAT = 'qs_cmp_flat_shape';
const AXES = 'qs_cmp_axes';

/** The quantized graph's tensors carry this prefix in the side-by-side model (graph inputs are shared and keep their names). */
export const QUANTIZED_PREFIX = 'qs_quantized/';
const PREFIX = QUANTIZED_PREFIX;

function renameGraph(graph: onnx.GraphProto, rename: (n: string) => string): onnx.GraphProto {
  const node = graph.node.map((n) => onnx.NodeProto.create({
    ...n,
    name: n.name ? rename(n.name) : n.name,
    input: n.input.map((i) => (i ? rename(i) : i)),
    output: n.output.map((o) => (o ? rename(o) : o)),
    attribute: n.attribute.map((a) => (a.g || a.graphs.length
      ? onnx.AttributeProto.create({ ...a, ...(a.g ? { g: renameGraph(a.g, rename) } : {}), graphs: a.graphs.map((g) => renameGraph(g, rename)) })
      : a)),
  }));
  const vi = (v: onnx.ValueInfoProto) => onnx.ValueInfoProto.create({ ...v, name: rename(v.name) });
  return onnx.GraphProto.create({
    ...graph,
    node,
    input: graph.input.map(vi),
    output: graph.output.map(vi),
    valueInfo: graph.valueInfo.map(vi),
    initializer: graph.initializer.map((t) => onnx.TensorProto.create({ ...t, name: rename(t.name) })),
  });
}

/** The quantized half of a side-by-side model: its graph renamed by QUANTIZED_PREFIX (graph inputs shared), and the opsets both halves need. */
export interface QuantizedHalf {
  graph: onnx.GraphProto;
  rename: (name: string) => string;
  opsetImport: onnx.OperatorSetIdProto[];
}

export function quantizedHalf(floatModel: onnx.ModelProto, quantModel: onnx.ModelProto): QuantizedHalf {
  const inputs = new Set(quantModel.graph!.input.map((i) => i.name));
  const rename = (n: string) => (inputs.has(n) ? n : PREFIX + n);
  return { graph: renameGraph(quantModel.graph!, rename), rename, opsetImport: bothOpsets(floatModel, quantModel) };
}

/** The opsets a graph with nodes of both models needs: each domain at the higher version. */
function bothOpsets(floatModel: onnx.ModelProto, quantModel: onnx.ModelProto): onnx.OperatorSetIdProto[] {
  const domains = new Map<string, onnx.OperatorSetIdProto>();
  for (const o of [...floatModel.opsetImport, ...quantModel.opsetImport]) {
    const key = o.domain === 'ai.onnx' ? '' : o.domain;
    const seen = domains.get(key);
    if (!seen || toNumber(seen.version) < toNumber(o.version)) domains.set(key, o as onnx.OperatorSetIdProto);
  }
  return [...domains.values()];
}

export interface ComparisonModel {
  model: onnx.ModelProto;
  taps: PairTaps[];
  /** Each float output with the quantized half's value of it, as computed in the same run. */
  outputs: Array<{ float: string; quant: string }>;
  /** The leading dims of each cell of SUMS_OUTPUT, in order (edit.ts cellValues). */
  cells: InferredDims[];
}

/** Sums of a model's tensors, as cells of one joined output (SUMS_OUTPUT), and the nodes that compute them per tensor. */
class SumCells {
  readonly sums: string[] = [];
  readonly cells: InferredDims[] = [];
  private flattened = false;
  private byRows = false;

  constructor(private readonly opset: number) {}

  private cell(output: string, lead: InferredDims): number {
    this.sums.push(output);
    return this.cells.push(lead) - 1;
  }

  /** A tensor's min and max: by rows where `lead` gives its leading dims (edit.ts rowCells says why), else whole, from its flattened `flat`. */
  extremes(nodes: onnx.NodeProto[], input: string, flat: string, base: string, lead: InferredDims): { min: number; max: number } {
    const extremes = [{ op: 'ReduceMin', output: `${base}_min` }, { op: 'ReduceMax', output: `${base}_max` }];
    nodes.push(...(lead.length ? rowCells(input, `${base}_rows`, lead, extremes, this.opset, AXES) : reducedCells(flat, extremes)));
    this.byRows ||= lead.length > 0;
    return { min: this.cell(`${base}_min`, lead), max: this.cell(`${base}_max`, lead) };
  }

  /** Σ of squares of a whole tensor: a [1] cell (edit.ts rowCells says why not by rows). */
  sumOfSquares(nodes: onnx.NodeProto[], input: string, flat: string, output: string): number {
    nodes.push(makeNode('Reshape', [input, FLAT], [flat]), ...reducedCells(flat, [{ op: 'ReduceSumSquare', output }]));
    this.flattened = true;
    return this.cell(output, []);
  }

  /**
   * Σ(x − QDQ(x))² of `float` through `quantizer`'s own parameters (named by `rename`): one
   * fake-quantize per tensor in the same pass, no second model.
   */
  localNoise(nodes: onnx.NodeProto[], base: string, float: string, quantizer: onnx.NodeProto, rename: (name: string) => string): number {
    const [, scale, zeroPoint] = quantizer.input.map(rename);
    // The same attributes (axis, saturate…); DequantizeLinear takes only its axis and block size.
    const dqAttributes = quantizer.attribute.filter((a) => a.name === 'axis' || a.name === 'block_size');
    const like = (n: onnx.NodeProto, attribute: onnx.AttributeProto[]) => Object.assign(n, { domain: quantizer.domain, attribute });
    nodes.push(
      like(makeNode('QuantizeLinear', [float, scale, zeroPoint].filter(Boolean), [`${base}_local_q`]), quantizer.attribute),
      like(makeNode('DequantizeLinear', [`${base}_local_q`, scale, zeroPoint].filter(Boolean), [`${base}_local_dq`]), dqAttributes),
      // Squared, the sign is moot: the dequantized tensor first lets the Sub write over it.
      makeNode('Sub', [`${base}_local_dq`, float], [`${base}_local_diff`]),
    );
    return this.sumOfSquares(nodes, `${base}_local_diff`, `${base}_local_diff_flat`, `${base}_local_noise`);
  }

  /** The shared constants some cell uses: ONNX Runtime warns of every unused initializer. */
  constants(): onnx.TensorProto[] {
    return [...(this.flattened ? [flatShape(FLAT)] : []), ...(this.byRows && this.opset >= 18 ? [axesInitializer(AXES)] : [])];
  }

  /** The joined output, where there is a sum. */
  outputs(): onnx.ValueInfoProto[] {
    return this.sums.length ? [typedValueInfo(SUMS_OUTPUT, onnx.TensorProto.DataType.FLOAT)] : [];
  }
}

/** The QuantizeLinear behind each dequantized activation (Q → DQ) of a quantized model, by the DQ's output. */
function quantizers(quantModel: onnx.ModelProto): Map<string, onnx.NodeProto> {
  const producers = new Map(quantModel.graph!.node.flatMap((n) => n.output.map((o) => [o, n] as const)));
  const qdqOf = new Map<string, onnx.NodeProto>();
  for (const dq of quantModel.graph!.node) {
    if (dq.opType !== 'DequantizeLinear') continue;
    const q = producers.get(dq.input[0]);
    if (q?.opType === 'QuantizeLinear') qdqOf.set(dq.output[0], q);
  }
  return qdqOf;
}

/**
 * With `local`, each pair's local error too (the analysis's figure): a third of the comparison's
 * work. A measured range is reduced by rows where `known` gives the float tensor's first dim (edit.ts rowCells).
 */
export function comparisonModel(floatModel: onnx.ModelProto, quantModel: onnx.ModelProto, pairs: readonly TensorPair[], local = false, known: KnownDims = new Map()): ComparisonModel {
  const fg = floatModel.graph!;
  const inputs = new Set(quantModel.graph!.input.map((i) => i.name));
  const { graph: qg, rename, opsetImport } = quantizedHalf(floatModel, quantModel);
  const qdqOf = local ? quantizers(quantModel) : new Map<string, onnx.NodeProto>();
  // Every sum is a cell of one value or one per row, and all of them concatenate into one output.
  const blocks: onnx.NodeProto[][] = [];
  const sums = new SumCells(defaultOpset(floatModel));
  const taps = pairs.map((p, i) => {
    const base = `qs_cmp_${i}`;
    const q = rename(p.quant);
    const quantizer = qdqOf.get(p.quant);
    const nodes: onnx.NodeProto[] = [];
    const signal = sums.sumOfSquares(nodes, p.float, `${base}_flat`, `${base}_signal`);
    const range = p.measureRange ? sums.extremes(nodes, p.float, `${base}_flat`, base, rowDims(known.get(p.float))) : {};
    nodes.push(makeNode('Sub', [p.float, q], [`${base}_diff`]));
    const t: PairTaps = { float: p.float, signal, noise: sums.sumOfSquares(nodes, `${base}_diff`, `${base}_diff_flat`, `${base}_noise`), ...range };
    if (quantizer) t.localNoise = sums.localNoise(nodes, base, p.float, quantizer, rename);
    blocks.push(nodes);
    return t;
  });
  const nodes = withJoinedAdditions([...fg.node, ...qg.node], blocks, sums.sums, SUMS_OUTPUT);
  // The quantized half's own outputs: in reference numerics they are the quantized model's answer,
  // from the very run whose per-layer figures they then agree with.
  const floatOutputs = new Set(fg.output.map((o) => o.name));
  const quantOutputs = quantModel.graph!.output.filter((o) => floatOutputs.has(o.name) && !inputs.has(o.name))
    .map((o) => ({ float: o.name, quant: rename(o.name), info: onnx.ValueInfoProto.create({ ...o, name: rename(o.name) }) }));
  const graph = onnx.GraphProto.create({
    ...fg,
    node: nodes,
    initializer: [...fg.initializer, ...qg.initializer, ...sums.constants()],
    valueInfo: [...fg.valueInfo, ...qg.valueInfo],
    output: [...fg.output, ...quantOutputs.map((o) => o.info), ...sums.outputs()],
  });
  return {
    model: onnx.ModelProto.create({ ...floatModel, opsetImport, graph }),
    taps,
    outputs: quantOutputs.map(({ float, quant }) => ({ float, quant })),
    cells: sums.cells,
  };
}

/** The cells of a local-error model's sums that hold a tensor's Σx² and Σ(x − QDQ(x))². */
export interface LocalTaps {
  float: string;
  signal: number;
  localNoise: number;
}

/**
 * The float model alone with each tensor's local error, through the Q/DQ the quantized model puts
 * on its dequantized counterpart: a repair ranks its layers by that alone, and this runs no
 * quantized half. A tensor whose quantizer takes a parameter that is not an initializer is left out.
 */
export function localErrorModel(floatModel: onnx.ModelProto, quantModel: onnx.ModelProto, pairs: readonly TensorPair[]): { model: onnx.ModelProto; taps: LocalTaps[]; cells: InferredDims[] } {
  const fg = floatModel.graph!;
  const qdqOf = quantizers(quantModel);
  const constants = new Map(quantModel.graph!.initializer.map((t) => [t.name, t]));
  const rename = (n: string) => PREFIX + n;
  const used = new Map<string, onnx.TensorProto>();
  const blocks: onnx.NodeProto[][] = [];
  const sums = new SumCells(defaultOpset(floatModel));
  const taps: LocalTaps[] = [];
  pairs.forEach((p, i) => {
    const quantizer = qdqOf.get(p.quant);
    const parameters = quantizer?.input.slice(1).filter(Boolean) ?? [];
    if (!quantizer || !parameters.every((n) => constants.has(n))) return;
    for (const n of parameters) used.set(n, onnx.TensorProto.create({ ...constants.get(n)!, name: rename(n) }));
    const base = `qs_local_${i}`;
    const nodes: onnx.NodeProto[] = [];
    const signal = sums.sumOfSquares(nodes, p.float, `${base}_flat`, `${base}_signal`);
    taps.push({ float: p.float, signal, localNoise: sums.localNoise(nodes, base, p.float, quantizer, rename) });
    blocks.push(nodes);
  });
  const graph = onnx.GraphProto.create({
    ...fg,
    node: withJoinedAdditions(fg.node, blocks, sums.sums, SUMS_OUTPUT),
    initializer: [...fg.initializer, ...used.values(), ...sums.constants()],
    output: [...fg.output, ...sums.outputs()],
  });
  return { model: onnx.ModelProto.create({ ...floatModel, opsetImport: bothOpsets(floatModel, quantModel), graph }), taps, cells: sums.cells };
}
