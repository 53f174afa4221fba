// The second moment of each layer's input rows, H = (1/n) Σ x xᵀ over every row x that one output
// channel's weights multiply (an im2col patch for Conv, a row of A for MatMul and Gemm). A weight
// change ΔW then changes the layer's output by tr(ΔW H ΔWᵀ) in mean square, on exactly the data H
// came from, so AdaRound never needs the inputs themselves. All of it runs in one ONNX Runtime
// session over the samples: the patches are a Conv with one-hot kernels, H a batched MatMul.
import * as ort from 'onnxruntime-node';
import type { Feed } from '../base/feed';
import { throwIfAborted } from '../base/progress';
import { intAttr, intsAttr, makeNode, typedValueInfo } from '../onnx/edit';
import { attr, attrInt, attrInts, attrString, GraphView, type GraphNode } from '../onnx/graph';
import { DataType, onnx } from '../onnx/proto';
import { createSession, floatData, run, toOrtFeeds } from '../onnx/session';
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
function patchNodes(view: GraphView, node: GraphNode, layer: RowLayer, kernel: readonly number[], prefix: string, inits: onnx.TensorProto[]): onnx.NodeProto[] | undefined {
  const pad = attrString(node.proto, 'auto_pad', 'NOTSET');
  // Pad's and Unsqueeze's operands became inputs in opset 13.
  if ((pad !== 'NOTSET' && pad !== 'VALID') || view.opset < 13) return undefined;
  const rank = kernel.length;
  const ints = (name: string, fallback: number) => attrInts(node.proto, name) ?? new Array<number>(name === 'pads' ? 2 * rank : rank).fill(fallback);
  const strides = ints('strides', 1);
  const dilations = ints('dilations', 1);
  const pads = pad === 'VALID' ? new Array<number>(2 * rank).fill(0) : ints('pads', 0);
  const axes = Array.from({ length: rank }, (_, d) => d + 2);
  inits.push(int64Tensor(`${prefix}_pads`, [2 * (rank + 2)], [0, 0, ...pads.slice(0, rank), 0, 0, ...pads.slice(rank)]),
    int64Tensor(`${prefix}_axes`, [rank], axes), int64Tensor(`${prefix}_steps`, [rank], strides),
    int64Tensor(`${prefix}_tap_axis`, [1], [2]));
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
    nodes.push(makeNode('Slice', [padded, `${name}_start`, `${name}_stop`, `${prefix}_axes`, `${prefix}_steps`], [`${name}_slice`]),
      makeNode('Unsqueeze', [`${name}_slice`, `${prefix}_tap_axis`], [name]));
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

/** Nodes that turn the layer's input into its rows as `[groups, width, n]`, named `${prefix}_rows`. */
function rowNodes(view: GraphView, layer: RowLayer, prefix: string, inits: onnx.TensorProto[]): onnx.NodeProto[] {
  const rows = `${prefix}_rows`;
  if (layer.op !== 'Conv') {
    inits.push(int64Tensor(`${prefix}_flat`, [2], [-1, layer.width]), int64Tensor(`${prefix}_shape`, [3], [1, layer.width, -1]));
    return [
      makeNode('Reshape', [layer.input, `${prefix}_flat`], [`${prefix}_2d`]),
      makeNode('Transpose', [`${prefix}_2d`], [`${prefix}_t`], [intsAttr('perm', [1, 0])]),
      makeNode('Reshape', [`${prefix}_t`, `${prefix}_shape`], [rows]),
    ];
  }
  const node = view.nodes.find((n) => n.name === layer.node)!;
  const dims = tensorDims(view.initializers.get(layer.weight)!);
  const patches = patchNodes(view, node, layer, dims.slice(2), prefix, inits) ?? oneHotPatchNodes(node, layer, dims, prefix, inits);
  inits.push(int64Tensor(`${prefix}_split`, [4], [0, layer.groups, layer.width, -1]), int64Tensor(`${prefix}_shape`, [3], [layer.groups, layer.width, -1]));
  return [
    ...patches,
    makeNode('Reshape', [`${prefix}_patches`, `${prefix}_split`], [`${prefix}_4d`]),
    makeNode('Transpose', [`${prefix}_4d`], [`${prefix}_t`], [intsAttr('perm', [1, 2, 0, 3])]),
    makeNode('Reshape', [`${prefix}_t`, `${prefix}_shape`], [rows]),
  ];
}

/** The model with, per layer i, `qs_gram_i` = Σ x xᵀ over the batch's rows ([groups, width, width]) and `qs_gram_rows_i` the shape of its rows. */
function gramModel(model: onnx.ModelProto, layers: readonly RowLayer[]): onnx.ModelProto {
  const view = new GraphView(model);
  const graph = model.graph!;
  const inits = [...graph.initializer];
  const outputs: onnx.ValueInfoProto[] = [];
  const nodes = layers.flatMap((layer, i) => {
    const prefix = `qs_gram_${i}`;
    outputs.push(typedValueInfo(prefix, DataType.FLOAT, [layer.groups, layer.width, layer.width]), typedValueInfo(`${prefix}_n`, DataType.INT64, [3]));
    return [
      ...rowNodes(view, layer, prefix, inits),
      makeNode('Transpose', [`${prefix}_rows`], [`${prefix}_rows_t`], [intsAttr('perm', [0, 2, 1])]),
      makeNode('MatMul', [`${prefix}_rows`, `${prefix}_rows_t`], [prefix]),
      makeNode('Shape', [`${prefix}_rows`], [`${prefix}_n`]),
    ];
  });
  return onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...graph, node: [...graph.node, ...nodes], initializer: inits, output: outputs }) });
}

/** H per layer, [groups, width, width] row-major, the mean of x xᵀ over every row of every sample in `feeds`. */
export async function layerGrams(model: onnx.ModelProto, layers: readonly RowLayer[], feeds: readonly Feed[], signal?: AbortSignal): Promise<Float32Array[]> {
  const sums = layers.map((l) => new Float64Array(l.groups * l.width * l.width));
  const counts = layers.map(() => 0);
  const session = await createSession(gramModel(model, layers), 'model that measures the layers\' input moments');
  try {
    for (const feed of feeds) {
      throwIfAborted(signal);
      const out = await run(session, toOrtFeeds(feed), 'model that measures the layers\' input moments');
      layers.forEach((_, i) => {
        const gram = floatData(out[`qs_gram_${i}`] as ort.Tensor, `qs_gram_${i}`);
        const sum = sums[i];
        for (let k = 0; k < gram.length; k++) sum[k] += gram[k];
        counts[i] += Number((out[`qs_gram_${i}_n`] as ort.Tensor).data[2]);
      });
    }
  } finally {
    await session.release();
  }
  return sums.map((s, i) => Float32Array.from(s, (v) => v / Math.max(1, counts[i])));
}
