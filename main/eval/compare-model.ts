// One model that runs the float and the quantized graph side by side on the same inputs and
// reduces each compared pair to a few numbers inside ONNX Runtime: Σx², Σ(x−y)² and, where asked,
// Σ(x−QDQ(x))² and the float range. Handing both models' activations to JavaScript instead would move
// hundreds of MB per sample (the PaddleOCR recognizer makes 200 MB of them per text line, twice).
import { intAttr, makeNode, rowAxes, rowCells, rowDims, typedValueInfo, withJoinedAdditions, type InferredDims, type KnownDims } from '../onnx/edit';
import { int64Tensor } from '../onnx/tensor';
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

const CELL_SHAPE = 'qs_cmp_cell_shape';
const ROW_AXES = 'qs_cmp_row_axes';

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

/**
 * Sums of a model's tensors, as cells of one joined output (SUMS_OUTPUT), and the nodes that
 * compute them per tensor. Every cell has the joined output's rank, `rank`, the most common rank
 * of the tensors summed: a reduction with its dims kept then gives a cell of a tensor of that rank
 * with no node before it (ONNX Runtime's graph passes at session creation cost per node, and a
 * flattening Reshape per sum was two nodes of every compared pair's five). A tensor of another
 * rank, or of one shape inference does not know, is reshaped to [1, …, 1, n] first.
 */
class SumCells {
  readonly sums: string[] = [];
  readonly cells: InferredDims[] = [];
  private reshaped = false;
  private byRows = false;

  constructor(private readonly opset: number, private readonly rank: number) {}

  /** The most common rank of `tensors` in `known`; 1 where none is known. */
  static rankOf(tensors: readonly string[], known: KnownDims): number {
    const counts = new Map<number, number>();
    for (const t of tensors) {
      const r = known.get(t)?.length;
      if (r) counts.set(r, (counts.get(r) ?? 0) + 1);
    }
    return [...counts].reduce((best, [r, n]) => (n > best[1] || (n === best[1] && r < best[0]) ? [r, n] : best), [1, 0])[0];
  }

  private cell(output: string, lead: InferredDims): number {
    this.sums.push(output);
    return this.cells.push(lead) - 1;
  }

  /** `input` as a tensor of the cells' rank: itself, or reshaped to [1, …, 1, n] as `name`. */
  private ofRank(nodes: onnx.NodeProto[], input: string, dims: InferredDims | undefined, name: string): string {
    if (dims?.length === this.rank) return input;
    this.reshaped = true;
    nodes.push(makeNode('Reshape', [input, CELL_SHAPE], [name]));
    return name;
  }

  /**
   * A tensor's min and max: by rows where `dims` gives its first dim (edit.ts rowCells says why)
   * and its rank is the cells', else whole.
   */
  extremes(nodes: onnx.NodeProto[], input: string, dims: InferredDims | undefined, base: string): { min: number; max: number } {
    const lead = this.rank > 1 && dims?.length === this.rank ? rowDims(dims) : [];
    const extremes = [{ op: 'ReduceMin', output: `${base}_min` }, { op: 'ReduceMax', output: `${base}_max` }];
    if (lead.length) nodes.push(...rowCells(input, this.rank, extremes, this.opset, ROW_AXES, true));
    else {
      const whole = this.ofRank(nodes, input, dims, `${base}_cell_shaped`);
      nodes.push(...extremes.map((e) => makeNode(e.op, [whole], [e.output], [intAttr('keepdims', 1)])));
    }
    this.byRows ||= lead.length > 0;
    return { min: this.cell(`${base}_min`, lead), max: this.cell(`${base}_max`, lead) };
  }

  /** Σ of squares of a whole tensor, `dims` its inferred dims: a cell of one value (edit.ts rowCells says why not by rows). */
  sumOfSquares(nodes: onnx.NodeProto[], input: string, dims: InferredDims | undefined, output: string): number {
    nodes.push(makeNode('ReduceSumSquare', [this.ofRank(nodes, input, dims, `${output}_cell_shaped`)], [output], [intAttr('keepdims', 1)]));
    return this.cell(output, []);
  }

  /**
   * Σ(x − QDQ(x))² of `float` (of inferred `dims`) through `quantizer`'s own parameters (named by
   * `rename`): one fake-quantize per tensor in the same pass, no second model.
   */
  localNoise(nodes: onnx.NodeProto[], base: string, float: string, dims: InferredDims | undefined, quantizer: onnx.NodeProto, rename: (name: string) => string): number {
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
    return this.sumOfSquares(nodes, `${base}_local_diff`, dims, `${base}_local_noise`);
  }

  /** The shared constants some cell uses: ONNX Runtime warns of every unused initializer. */
  constants(): onnx.TensorProto[] {
    return [
      ...(this.reshaped ? [int64Tensor(CELL_SHAPE, [this.rank], [...new Array<number>(this.rank - 1).fill(1), -1])] : []),
      ...(this.byRows && this.opset >= 18 ? [rowAxes(ROW_AXES, this.rank)] : []),
    ];
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
 * work. `known`: the float tensors' inferred dims, which shape the cells (SumCells) and let a
 * measured range be reduced by rows.
 */
export function comparisonModel(floatModel: onnx.ModelProto, quantModel: onnx.ModelProto, pairs: readonly TensorPair[], local = false, known: KnownDims = new Map()): ComparisonModel {
  const fg = floatModel.graph!;
  const inputs = new Set(quantModel.graph!.input.map((i) => i.name));
  const { graph: qg, rename, opsetImport } = quantizedHalf(floatModel, quantModel);
  const qdqOf = local ? quantizers(quantModel) : new Map<string, onnx.NodeProto>();
  // Every sum is a cell of one value or one per row, and all of them concatenate into one output.
  const blocks: onnx.NodeProto[][] = [];
  const sums = new SumCells(defaultOpset(floatModel), SumCells.rankOf(pairs.map((p) => p.float), known));
  const taps = pairs.map((p, i) => {
    const base = `qs_cmp_${i}`;
    const q = rename(p.quant);
    const quantizer = qdqOf.get(p.quant);
    const dims = known.get(p.float);
    const nodes: onnx.NodeProto[] = [];
    const signal = sums.sumOfSquares(nodes, p.float, dims, `${base}_signal`);
    const range = p.measureRange ? sums.extremes(nodes, p.float, dims, base) : {};
    nodes.push(makeNode('Sub', [p.float, q], [`${base}_diff`]));
    const t: PairTaps = { float: p.float, signal, noise: sums.sumOfSquares(nodes, `${base}_diff`, dims, `${base}_noise`), ...range };
    if (quantizer) t.localNoise = sums.localNoise(nodes, base, p.float, dims, quantizer, rename);
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
export function localErrorModel(floatModel: onnx.ModelProto, quantModel: onnx.ModelProto, pairs: readonly TensorPair[], known: KnownDims = new Map()): { model: onnx.ModelProto; taps: LocalTaps[]; cells: InferredDims[] } {
  const fg = floatModel.graph!;
  const qdqOf = quantizers(quantModel);
  const constants = new Map(quantModel.graph!.initializer.map((t) => [t.name, t]));
  const rename = (n: string) => PREFIX + n;
  const used = new Map<string, onnx.TensorProto>();
  const blocks: onnx.NodeProto[][] = [];
  const sums = new SumCells(defaultOpset(floatModel), SumCells.rankOf(pairs.map((p) => p.float), known));
  const taps: LocalTaps[] = [];
  pairs.forEach((p, i) => {
    const quantizer = qdqOf.get(p.quant);
    const parameters = quantizer?.input.slice(1).filter(Boolean) ?? [];
    if (!quantizer || !parameters.every((n) => constants.has(n))) return;
    for (const n of parameters) used.set(n, onnx.TensorProto.create({ ...constants.get(n)!, name: rename(n) }));
    const base = `qs_local_${i}`;
    const nodes: onnx.NodeProto[] = [];
    const dims = known.get(p.float);
    const signal = sums.sumOfSquares(nodes, p.float, dims, `${base}_signal`);
    taps.push({ float: p.float, signal, localNoise: sums.localNoise(nodes, base, p.float, dims, quantizer, rename) });
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
