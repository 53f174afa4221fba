// The moments of each layer's input rows over every row x that one output channel's weights
// multiply (an im2col patch for Conv, a row of A for MatMul and Gemm): they give a weight change's
// effect on the layer's output in mean square, on exactly the data they came from, so AdaRound
// never needs the inputs themselves. The layers' moments come from one walk forward through the
// float and the quantized model over the samples (a ModelWalk), a part per layer: the patches are
// strided slices (or a Conv with one-hot kernels), the moments batched MatMuls, or for a layer
// with few rows one product over the rows of every batch.
import * as ort from 'onnxruntime-node';
import { commonShapes, elementCount, feedSamples, rebatched, type Feed } from '../base/feed';
import { fitBatch } from '../calib/calibrate';
import { quantizedHalf } from '../eval/compare-model';
import { intAttr, intsAttr, makeNode, reduceOver, sampleShape, typedValueInfo } from '../onnx/edit';
import { attr, attrInt, attrInts, attrString, defaultOpset, GraphView, type GraphNode } from '../onnx/graph';
import { DataType, onnx } from '../onnx/proto';
import { numericsOptions } from '../onnx/numerics';
import { createSession, floatData, inferredDims, run, toOrtFeeds } from '../onnx/session';
import { ModelWalk } from '../onnx/walk';
import { floatTensor, int64Tensor, tensorDims } from '../onnx/tensor';

/** A layer whose output channels are rows of its weight: row r times an input row gives channel r. */
export interface RowLayer {
  node: string;
  weight: string;
  /** The layer's input tensor the rows come from. */
  input: string;
  op: 'Conv' | 'MatMul' | 'Gemm';
  /** Groups of a grouped Conv (rows of group g see only its channels); 1 otherwise. */
  groups: number;
  /** Output channels. */
  rows: number;
  /** Elements of a row: (input channels / groups) x kernel for Conv, K for MatMul and Gemm. */
  width: number;
  /** Where element j of row r sits in the weight initializer. */
  index(r: number, j: number): number;
}

/** The layer's weight as rows, when it is a Conv, a MatMul with a constant B, or a Gemm with a constant B and A not transposed. */
export function rowLayer(view: GraphView, node: GraphNode): RowLayer | undefined {
  const w = view.initializers.get(node.inputs[1]);
  if (!w || w.dataType !== DataType.FLOAT || node.scope) return undefined;
  const dims = tensorDims(w);
  const base = { node: node.name, weight: node.inputs[1], input: node.inputs[0] };
  if (node.op === 'Conv' && dims.length >= 3) {
    const width = dims.slice(1).reduce((a, b) => a * b, 1);
    return { ...base, op: 'Conv', groups: attrInt(node.proto, 'group', 1), rows: dims[0], width, index: (r, j) => r * width + j };
  }
  if (dims.length !== 2 || (node.op !== 'MatMul' && node.op !== 'Gemm')) return undefined;
  if (node.op === 'Gemm' && attrInt(node.proto, 'transA', 0)) return undefined;
  const [d0, d1] = dims;
  if (node.op === 'Gemm' && attrInt(node.proto, 'transB', 0)) return { ...base, op: 'Gemm', groups: 1, rows: d0, width: d1, index: (r, j) => r * d1 + j };
  return { ...base, op: node.op, groups: 1, rows: d1, width: d0, index: (r, j) => j * d1 + r };
}

/** A Slice end past any dimension. */
const END = 2 ** 62;

/**
 * The Conv's patches as `[N, C, taps, ...out]`: one strided Slice of the padded input per kernel
 * tap, so element (c, tap) of a patch is where the weight's (c, tap) multiplies it. Only copies:
 * a conv with one-hot kernels would cost as much as the Gram product itself (a second 2880-wide
 * product on the recognizer's last conv). `auto_pad` SAME needs the input's size, so it takes the
 * one-hot conv.
 */
function patchNodes(node: GraphNode, layer: RowLayer, kernel: readonly number[], prefix: string, opset: number, inits: onnx.TensorProto[]): onnx.NodeProto[] | undefined {
  const pad = attrString(node.proto, 'auto_pad', 'NOTSET');
  // Pad's operands became inputs in opset 11.
  if ((pad !== 'NOTSET' && pad !== 'VALID') || opset < 11) return undefined;
  const rank = kernel.length;
  const ints = (name: string, fallback: number) => attrInts(node.proto, name) ?? new Array<number>(name === 'pads' ? 2 * rank : rank).fill(fallback);
  const strides = ints('strides', 1);
  const dilations = ints('dilations', 1);
  const pads = pad === 'VALID' ? new Array<number>(2 * rank).fill(0) : ints('pads', 0);
  const axes = Array.from({ length: rank }, (_, d) => d + 2);
  inits.push(int64Tensor(`${prefix}_pads`, [2 * (rank + 2)], [0, 0, ...pads.slice(0, rank), 0, 0, ...pads.slice(rank)]),
    int64Tensor(`${prefix}_axes`, [rank], axes), int64Tensor(`${prefix}_steps`, [rank], strides));
  if (opset >= 13) inits.push(int64Tensor(`${prefix}_tap_axis`, [1], [2]));
  const padded = pads.some((p) => p !== 0) ? `${prefix}_padded` : layer.input;
  const nodes = padded === layer.input ? [] : [makeNode('Pad', [layer.input, `${prefix}_pads`], [padded])];
  const taps: string[] = [];
  const count = kernel.reduce((a, b) => a * b, 1);
  for (let t = 0; t < count; t++) {
    // Tap t of the row-major kernel: its window starts t's offset in and stops as far short of the
    // end as the kernel reaches past t, which gives the conv's output size with its strides.
    const at = kernel.map((_, d) => Math.floor(t / kernel.slice(d + 1).reduce((a, b) => a * b, 1)) % kernel[d]);
    const short = kernel.map((k, d) => (k - 1 - at[d]) * dilations[d]);
    const name = `${prefix}_tap${t}`;
    inits.push(int64Tensor(`${name}_start`, [rank], at.map((a, d) => a * dilations[d])), int64Tensor(`${name}_stop`, [rank], short.map((l) => (l === 0 ? END : -l))));
    // Unsqueeze's axes became an input in opset 13.
    const unsqueeze = opset >= 13 ? makeNode('Unsqueeze', [`${name}_slice`, `${prefix}_tap_axis`], [name]) : makeNode('Unsqueeze', [`${name}_slice`], [name], [intsAttr('axes', [2])]);
    nodes.push(makeNode('Slice', [padded, `${name}_start`, `${name}_stop`, `${prefix}_axes`, `${prefix}_steps`], [`${name}_slice`]), unsqueeze);
    taps.push(name);
  }
  nodes.push(makeNode('Concat', taps, [`${prefix}_patches`], [intAttr('axis', 2)]));
  return nodes;
}

/** The patches by a conv with one-hot kernels: output channel g*width + j is element j of every patch of group g. */
function oneHotPatchNodes(node: GraphNode, layer: RowLayer, dims: readonly number[], prefix: string, inits: onnx.TensorProto[]): onnx.NodeProto[] {
  const { groups, width } = layer;
  const eye = new Float32Array(groups * width * width);
  for (let g = 0; g < groups; g++) for (let j = 0; j < width; j++) eye[(g * width + j) * width + j] = 1;
  inits.push(floatTensor(`${prefix}_eye`, [groups * width, ...dims.slice(1)], eye));
  const geometry = ['strides', 'pads', 'dilations', 'auto_pad'].flatMap((name) => attr(node.proto, name) ?? []);
  const group = intAttr('group', groups);
  return [makeNode('Conv', [layer.input, `${prefix}_eye`], [`${prefix}_patches`], [...geometry, group])];
}

/**
 * How a layer's rows leave its part of the walk (rowNodes makes them):
 * - `outer`: `[N, groups, width, positions]` a batch, the samples outermost. The patches are not
 *   copied, but each sample's product is width² per group, which pays where a sample has more
 *   positions than its rows are wide (a depthwise conv, 5x5: 25 wide, 480 positions). The products
 *   are summed over the batch in the graph, and the batch's sums handed out.
 * - `gathered`: `[groups, n, width]`, the rows themselves, handed out and multiplied out over
 *   many batches' at once (GatheredRows). For the recognizer's last conv, 2880 wide on 18
 *   positions, a product a batch of 3 lines made 2 x 33 MB of sums that ONNX Runtime's binding
 *   copies into new memory and JavaScript then added up: the layer's moments took 5.8-8.3 s, of
 *   which 1.5 s were products; gathered, 1.0-1.5 s.
 */
type RowLayout = 'outer' | 'gathered';

/** Nodes that turn the layer's input into its rows, named `${prefix}_rows`, in `layout`. */
function rowNodes(view: GraphView, layer: RowLayer, layout: RowLayout, prefix: string, opset: number, inits: onnx.TensorProto[]): onnx.NodeProto[] {
  const rows = `${prefix}_rows`;
  if (layer.op !== 'Conv') {
    inits.push(int64Tensor(`${prefix}_flat`, [3], [1, -1, layer.width]));
    return [makeNode('Reshape', [layer.input, `${prefix}_flat`], [rows])];
  }
  const node = view.nodes.find((n) => n.name === layer.node)!;
  const dims = tensorDims(view.initializers.get(layer.weight)!);
  // A depthwise conv's patches come faster from ONNX Runtime's own im2col in a grouped conv than
  // from a Slice per tap (recognizer, 64 lines: 3x3 0.52-0.65 s against 0.67-0.76 s, 5x5 1.7 s
  // against 2.1 s); for other convs the one-hot kernels multiply as much as the moments do.
  const depthwise = dims[1] === 1 && layer.groups > 1;
  const patches = (depthwise ? undefined : patchNodes(node, layer, dims.slice(2), prefix, opset, inits)) ?? oneHotPatchNodes(node, layer, dims, prefix, inits);
  inits.push(int64Tensor(`${prefix}_split`, [4], [0, layer.groups, layer.width, -1]));
  if (layout === 'outer') return [...patches, makeNode('Reshape', [`${prefix}_patches`, `${prefix}_split`], [rows])];
  inits.push(int64Tensor(`${prefix}_fold`, [3], [layer.groups, -1, layer.width]));
  return [
    ...patches,
    makeNode('Reshape', [`${prefix}_patches`, `${prefix}_split`], [`${prefix}_4d`]),
    makeNode('Transpose', [`${prefix}_4d`], [`${prefix}_t`], [intsAttr('perm', [1, 0, 3, 2])]),
    makeNode('Reshape', [`${prefix}_t`, `${prefix}_fold`], [rows]),
  ];
}

/**
 * What AdaRound needs of each layer, over every row of every sample: the second moment of the
 * rows the quantized model feeds it, H̃ = E[x̃ x̃ᵀ], and the cross moment E[(x̃ − x) x̃ᵀ] with the
 * float model's rows x. With D = W̃ − W the layer's output error W̃x̃ − Wx = D x̃ + W(x̃ − x), whose
 * mean square is tr(D H̃ Dᵀ) + 2 tr(D (W·cross)ᵀ) + inputNoise: the rounding can then make up for
 * what quantizing the layer's input costs, not only for its own weight error.
 */
export interface LayerMoments {
  /** E[x̃ x̃ᵀ], [groups, width, width] row-major. */
  quantized: Float32Array;
  /** E[(x̃ − x) x̃ᵀ], [groups, width, width]: element (j, k) is E[(x̃_j − x_j) x̃_k]. */
  cross: Float32Array;
  /** E Σ_r (w_r·x)²: the float layer's output power, bias aside. */
  power: number;
  /** E Σ_r (w_r·(x̃ − x))²: the float layer's output error from its quantized input alone. */
  inputNoise: number;
}

/**
 * The float layer `node` on `input` without its bias (and a Gemm without its alpha): w_r·x for
 * every row r and input row x, as the layer itself computes them, at the cost of the layer, not
 * of a product over its rows.
 */
function unbiased(node: onnx.NodeProto, input: string, output: string): onnx.NodeProto {
  const attribute = node.opType === 'Gemm' ? node.attribute.filter((a) => a.name === 'transB') : node.attribute;
  return onnx.NodeProto.create({ opType: node.opType, domain: node.domain, input: [input, node.input[1]], output: [output], name: `${output}_${node.opType}`, attribute });
}

/** The weight input of layer i's quantized half: the rounding being learned feeds it. */
const weightInput = (i: number) => `qs_gram_${i}_weight`;

/**
 * The float and the quantized model side by side, with per layer i `qs_gram_i_power` and
 * `qs_gram_i_noise`, and its rows in `layouts[i]` (rowNodes): for `outer`, `qs_gram_i_quantized`
 * and `qs_gram_i_cross` (Σ over the batch's rows) and `qs_gram_i_n` the shape of its rows; for
 * `gathered`, the rows of the quantized input `qs_gram_i_q_rows` and of the input difference
 * `qs_gram_i_e_rows`. The quantized half's layer i reads its weight, dequantized, from the input
 * `qs_gram_i_weight`.
 */
function momentsModel(floatModel: onnx.ModelProto, quantModel: onnx.ModelProto, layers: readonly RowLayer[], layouts: readonly RowLayout[]): onnx.ModelProto {
  const view = new GraphView(floatModel);
  const graph = floatModel.graph!;
  const half = quantizedHalf(floatModel, quantModel);
  const opset = defaultOpset(half);
  const byName = new Map(half.graph.node.map((n, k) => [n.name, k]));
  const quantNodes = [...half.graph.node];
  const inits = [...graph.initializer, ...half.graph.initializer];
  const inputs: onnx.ValueInfoProto[] = [];
  const outputs: onnx.ValueInfoProto[] = [];
  const nodes = layers.flatMap((layer, i) => {
    const prefix = `qs_gram_${i}`;
    const at = byName.get(half.rename(layer.node));
    if (at === undefined) throw new Error(`the quantized model has no node ${layer.node}`);
    // Its weight's DequantizeLinear is left without a consumer, which ONNX Runtime drops.
    const quantNode = quantNodes[at] = onnx.NodeProto.create({ ...quantNodes[at], input: quantNodes[at].input.map((x, k) => (k === 1 ? weightInput(i) : x)) });
    inputs.push(typedValueInfo(weightInput(i), DataType.FLOAT, tensorDims(view.initializers.get(layer.weight)!)));
    // The rows' difference is the rows of the inputs' difference (patches are copies): one Sub on
    // the input, not on rows up to a kernel's size larger, and no rows of the float input at all.
    const difference = `${prefix}_input_diff`;
    const [q, e] = [`${prefix}_q_rows`, `${prefix}_e_rows`];
    const gram = [layer.groups, layer.width, layer.width];
    const sumSquare = (input: string, output: string) => makeNode('ReduceSumSquare', [input], [output], [intAttr('keepdims', 0)]);
    const floatNode = view.nodes.find((n) => n.name === layer.node)!.proto;
    outputs.push(typedValueInfo(`${prefix}_power`, DataType.FLOAT, []), typedValueInfo(`${prefix}_noise`, DataType.FLOAT, []));
    const common = [
      makeNode('Sub', [quantNode.input[0], layer.input], [difference]),
      ...rowNodes(view, { ...layer, input: difference }, layouts[i], `${prefix}_e`, opset, inits),
      ...rowNodes(view, { ...layer, input: quantNode.input[0] }, layouts[i], `${prefix}_q`, opset, inits),
      unbiased(floatNode, layer.input, `${prefix}_wx`), sumSquare(`${prefix}_wx`, `${prefix}_power`),
      unbiased(floatNode, difference, `${prefix}_we`), sumSquare(`${prefix}_we`, `${prefix}_noise`),
    ];
    if (layouts[i] === 'gathered') {
      const rows = [layer.groups, `${prefix}_rows`, layer.width];
      outputs.push(typedValueInfo(q, DataType.FLOAT, rows), typedValueInfo(e, DataType.FLOAT, rows));
      return common;
    }
    outputs.push(typedValueInfo(`${prefix}_quantized`, DataType.FLOAT, gram), typedValueInfo(`${prefix}_cross`, DataType.FLOAT, gram), typedValueInfo(`${prefix}_n`, DataType.INT64, [4]));
    return [
      ...common,
      makeNode('Transpose', [q], [`${q}_t`], [intsAttr('perm', [0, 1, 3, 2])]),
      makeNode('MatMul', [q, `${q}_t`], [`${prefix}_quantized_each`]), reduceOver('ReduceSum', `${prefix}_quantized_each`, [0], `${prefix}_quantized`, opset, inits),
      makeNode('MatMul', [e, `${q}_t`], [`${prefix}_cross_each`]), reduceOver('ReduceSum', `${prefix}_cross_each`, [0], `${prefix}_cross`, opset, inits),
      makeNode('Shape', [e], [`${prefix}_n`]),
    ];
  });
  return onnx.ModelProto.create({
    ...floatModel, opsetImport: half.opsetImport,
    graph: onnx.GraphProto.create({
      ...graph, node: [...graph.node, ...quantNodes, ...nodes], initializer: inits, input: [...graph.input, ...inputs],
      valueInfo: [...graph.valueInfo, ...half.graph.valueInfo], output: outputs,
    }),
  });
}

/** Copies of a layer's rows a moments step holds at once: of the input difference and of the quantized input, and the patches being joined. */
const ROW_COPIES = 3;
/** Bytes of rows a moments step may hold; the walk's batches are cut to stay under it. */
const ROWS_BUDGET = 256 * 2 ** 20;
/** Bytes of a gathered layer's rows held before they are multiplied out (both kinds of rows). */
const GATHERED_BYTES = 64 * 2 ** 20;

/** Measures the layers' moments one after another, with the quantized half's weights as they are rounded so far. */
export interface MomentsOf {
  /**
   * Layer i's moments over every row of every sample, the quantized half's layers reading the
   * dequantized weights given (each in its initializer's layout). Layers go in graph order, each
   * once: a call runs only the part of the two halves between the last call's layer and this one
   * (a ModelWalk), so the quantized layers before layer i read their weights from `dequantized` as
   * it is when the walk first passes them, which for layer i − 1 is after its rounding is learned.
   */
  measure(i: number, dequantized: readonly Float32Array[], signal?: AbortSignal): Promise<LayerMoments>;
}

/** Σ x̃x̃ᵀ and Σ (x̃ − x)x̃ᵀ over a layer's rows, [groups, width, width] each (none before the first rows), and the rows counted. */
interface RowSums {
  quantized?: Float32Array;
  cross?: Float32Array;
  rows: number;
}

/** `into` plus `add`, element by element; `add` itself where there is no `into` yet. */
function plus(into: Float32Array | undefined, add: Float32Array): Float32Array {
  if (!into) return add;
  for (let k = 0; k < add.length; k++) into[k] += add[k];
  return into;
}

/** `sums` with the sums of `rows` more rows added in (into its arrays, where it has them). */
function withRows(sums: RowSums, quantized: Float32Array, cross: Float32Array, rows: number): RowSums {
  return { quantized: plus(sums.quantized, quantized), cross: plus(sums.cross, cross), rows: sums.rows + rows };
}

/**
 * A `gathered` layer's rows (RowLayout), `[groups, n, width]` a batch, held until `budget` bytes of
 * them are, then joined and multiplied out in one product of ONNX Runtime's, whose sums add up.
 */
class GatheredRows {
  private readonly q: Float32Array[] = [];
  private readonly e: Float32Array[] = [];
  private held = 0;
  private sums: RowSums = { rows: 0 };
  private session?: ort.InferenceSession;

  constructor(private readonly layer: RowLayer, private readonly budget: number) {}

  async add(q: Float32Array, e: Float32Array): Promise<void> {
    this.q.push(q);
    this.e.push(e);
    this.held += q.byteLength + e.byteLength;
    if (this.held >= this.budget) await this.multiply();
  }

  /** The sums over every row added, the last held ones multiplied out. */
  async finish(): Promise<RowSums> {
    await this.multiply();
    return this.sums;
  }

  async release(): Promise<void> {
    await this.session?.release();
  }

  private async multiply(): Promise<void> {
    if (!this.held) return;
    const { groups, width } = this.layer;
    const [q, n] = joinRows(this.q, groups, width);
    const [e] = joinRows(this.e, groups, width);
    this.q.length = 0;
    this.e.length = 0;
    this.held = 0;
    const what = 'product of a layer\'s rows';
    this.session ??= await createSession(productModel(groups, width), what);
    const rows = (data: Float32Array) => new ort.Tensor('float32', data, [groups, n, width]);
    const out = await run(this.session, { Q: rows(q), E: rows(e) }, what);
    this.sums = withRows(this.sums, floatData(out.quantized as ort.Tensor, 'quantized'), floatData(out.cross as ort.Tensor, 'cross'), n);
  }
}

/** Batches of rows, `[groups, n_b, width]` each, as one `[groups, Σ n_b, width]`, and Σ n_b. */
function joinRows(parts: readonly Float32Array[], groups: number, width: number): [Float32Array, number] {
  const n = parts.reduce((total, p) => total + p.length / groups / width, 0);
  const joined = new Float32Array(groups * n * width);
  let at = 0;
  for (const part of parts) {
    const rows = part.length / groups / width;
    for (let g = 0; g < groups; g++) joined.set(part.subarray(g * rows * width, (g + 1) * rows * width), (g * n + at) * width);
    at += rows;
  }
  return [joined, n];
}

/** Q, E `[groups, n, width]` → `quantized` = QᵀQ and `cross` = EᵀQ per group, `[groups, width, width]`. */
function productModel(groups: number, width: number): onnx.ModelProto {
  const rows = [groups, 'n', width];
  const gram = [groups, width, width];
  const transposed = (x: string) => makeNode('Transpose', [x], [`${x}_t`], [intsAttr('perm', [0, 2, 1])]);
  return onnx.ModelProto.create({
    irVersion: 8, opsetImport: [{ domain: '', version: 17 }], producerName: 'quant-studio adaround',
    graph: onnx.GraphProto.create({
      name: 'row_products',
      node: [transposed('Q'), transposed('E'), makeNode('MatMul', ['Q_t', 'Q'], ['quantized']), makeNode('MatMul', ['E_t', 'Q'], ['cross'])],
      input: [typedValueInfo('Q', DataType.FLOAT, rows), typedValueInfo('E', DataType.FLOAT, rows)],
      output: [typedValueInfo('quantized', DataType.FLOAT, gram), typedValueInfo('cross', DataType.FLOAT, gram)],
    }),
  });
}

/**
 * The float model against `quantModel` (its conversion), in reference numerics, for AdaRound's
 * layers over `feeds`. `gatheredBytes`: how many bytes of a gathered layer's rows are held before
 * they are multiplied out (GATHERED_BYTES).
 */
export async function momentsOf(floatModel: onnx.ModelProto, quantModel: onnx.ModelProto, layers: readonly RowLayer[], feeds: readonly Feed[],
  gatheredBytes = GATHERED_BYTES): Promise<MomentsOf> {
  const what = 'model that measures the layers\' input moments';
  const view = new GraphView(floatModel);
  const dims = layers.map((l) => tensorDims(view.initializers.get(l.weight)!));
  const outputOf = (l: RowLayer) => view.nodes.find((n) => n.name === l.node)!.outputs[0];
  const known = await inferredDims(floatModel, commonShapes(feeds), layers.map((l) => (l.op === 'Conv' ? outputOf(l) : l.input)));
  const positions = (l: RowLayer) => known.get(outputOf(l))?.slice(2).reduce<number>((a, d) => (typeof d === 'number' ? a * d : NaN), 1) ?? NaN;
  const inputSize = (l: RowLayer) => {
    const shape = sampleShape(known.get(l.input));
    return shape ? elementCount(shape) : NaN;
  };
  const layouts = layers.map((l): RowLayout => (l.op === 'Conv' && positions(l) >= l.width ? 'outer' : 'gathered'));
  const model = momentsModel(floatModel, quantModel, layers, layouts);
  // A conv's rows are its patches, each input element once per kernel tap: the recognizer's 5x5
  // depthwise convs held 0.55 GB of them for a batch of 8, and a repair's peak was 1.17 GB.
  const rowBytes = Math.max(0, ...layers.map((l) => ROW_COPIES * 4 * (l.op === 'Conv' ? l.groups * l.width * positions(l) : inputSize(l))).filter(Number.isFinite));
  const batch = fitBatch(Math.max(...feeds.map(feedSamples)), rowBytes, ROWS_BUDGET);
  const walk = new ModelWalk(model, model.graph!.output.map((o) => o.name), rebatched(feeds, batch).map(toOrtFeeds), numericsOptions('reference'));
  let last = -1;
  return {
    async measure(i, dequantized, signal) {
      if (i <= last) throw new Error(`layer ${i}'s moments were asked for after layer ${last}'s: the layers are measured in graph order`);
      last = i;
      const layer = layers[i];
      const prefix = `qs_gram_${i}`;
      const weightFeeds = Object.fromEntries(layers.map((_, k) => [weightInput(k), new ort.Tensor('float32', dequantized[k], dims[k])]));
      const gathered = layouts[i] === 'gathered' ? new GatheredRows(layer, gatheredBytes) : undefined;
      // Float32 sums: each batch's is already a float32 sum over thousands of rows, and adding a few
      // dozen of them costs a few ulps, where Float64 pairs held 133 MB more for the recognizer's
      // 2880-wide conv.
      let sums: RowSums = { rows: 0 };
      let power = 0;
      let inputNoise = 0;
      const data = (out: ort.InferenceSession.OnnxValueMapType, name: string) => floatData(out[`${prefix}_${name}`] as ort.Tensor, name);
      try {
        await walk.step(model.graph!.output.filter((o) => o.name.startsWith(`${prefix}_`)), weightFeeds, what, async (out) => {
          power += data(out, 'power')[0];
          inputNoise += data(out, 'noise')[0];
          if (gathered) return gathered.add(data(out, 'q_rows'), data(out, 'e_rows'));
          const [samples, , , positions] = (out[`${prefix}_n`] as ort.Tensor).data as BigInt64Array;
          sums = withRows(sums, data(out, 'quantized'), data(out, 'cross'), Number(samples) * Number(positions));
        }, signal);
        if (gathered) sums = await gathered.finish();
      } finally {
        await gathered?.release();
      }
      const n = Math.max(1, sums.rows);
      const size = layer.groups * layer.width * layer.width;
      const mean = (total: Float32Array = new Float32Array(size)) => {
        for (let k = 0; k < total.length; k++) total[k] /= n;
        return total;
      };
      return { quantized: mean(sums.quantized), cross: mean(sums.cross), power: power / n, inputNoise: inputNoise / n };
    },
  };
}
