// Small pieces for adding nodes to a model: the engine's calibration and comparison models add
// reductions next to the tensors they read.
import { DataType, onnx } from './proto';
import { int64Tensor, makeTensor } from './tensor';

export function typedValueInfo(name: string, elemType: number): onnx.ValueInfoProto {
  return onnx.ValueInfoProto.create({ name, type: onnx.TypeProto.create({ tensorType: onnx.TypeProto.Tensor.create({ elemType }) }) });
}

/** `base`, or `base_1`, `base_2`… the first name not in `taken`, which then holds it too. */
export function uniqueName(taken: Set<string>, base: string): string {
  let name = base;
  for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
  taken.add(name);
  return name;
}

/** A node named after its first output, which the callers keep unique. */
export function makeNode(op: string, inputs: string[], outputs: string[], attrs: onnx.AttributeProto[] = []): onnx.NodeProto {
  return onnx.NodeProto.create({ opType: op, input: inputs, output: outputs, name: `${outputs[0]}_${op}`, attribute: attrs });
}

/** Reduce to a scalar: no axes, keepdims 0 (the same in every opset). */
export const REDUCE_ALL = [onnx.AttributeProto.create({ name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 })];

const INT64_MAX = 2n ** 63n - 1n;

/**
 * Every `stride`-th element of `tensor`, flattened, as `output` of shape [1, n]: Reshape to [1, -1]
 * (an alias in ONNX Runtime, no copy) and Slice with steps (opset 10). The constants are named
 * after `output`.
 */
export function stridedSample(tensor: string, stride: number, output: string): { nodes: onnx.NodeProto[]; initializers: onnx.TensorProto[] } {
  const flat = `${output}_flat`;
  return {
    nodes: [
      makeNode('Reshape', [tensor, `${output}_flat_shape`], [flat]),
      makeNode('Slice', [flat, `${output}_starts`, `${output}_ends`, `${output}_axes`, `${output}_steps`], [output]),
    ],
    initializers: [
      int64Tensor(`${output}_flat_shape`, [2], [1, -1]),
      int64Tensor(`${output}_starts`, [1], [0]),
      makeTensor(`${output}_ends`, DataType.INT64, [1], BigInt64Array.of(INT64_MAX)),
      int64Tensor(`${output}_axes`, [1], [1]),
      int64Tensor(`${output}_steps`, [1], [stride]),
    ],
  };
}

/**
 * `nodes`, then the additions made for each tensor, then one Concat of their results `joined` along
 * `axis` as `output`. The single leaf also orders ONNX Runtime's execution: it walks back from the
 * graph's leaves, last leaf first, taking a node's inputs highest node index first. With the
 * blocks last and in reverse, the walk from the Concat computes the first block's tensor first
 * and frees each tensor soon after its block reduced it; a thousand separate leaves (or blocks
 * placed after their producers) would instead keep every tensor of the batch alive until the end.
 */
export function withJoinedAdditions(nodes: readonly onnx.NodeProto[], blocks: ReadonlyArray<onnx.NodeProto[]>, joined: string[], output: string, axis: number): onnx.NodeProto[] {
  const all = [...nodes, ...[...blocks].reverse().flat()];
  if (joined.length) all.push(onnx.NodeProto.create({ opType: 'Concat', input: joined, output: [output], name: output, attribute: [onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: axis })] }));
  return all;
}

/**
 * A copy of the model whose graph inputs have the fixed shapes of a sample feed (for devices that
 * compile fixed shapes). Output dimensions named like a pinned input dimension ("batch") take its value.
 */
export function pinInputShapes(model: onnx.ModelProto, feed: Readonly<Record<string, { dims: readonly number[] }>>): onnx.ModelProto {
  const graph = model.graph!;
  const named = new Map<string, number>();
  const withDims = (vi: onnx.IValueInfoProto, dims: ReadonlyArray<number | undefined>): onnx.ValueInfoProto => {
    const tensorType = vi.type!.tensorType!;
    const old = tensorType.shape?.dim ?? [];
    const shape = onnx.TensorShapeProto.create({
      dim: dims.map((d, i) => onnx.TensorShapeProto.Dimension.create(d !== undefined ? { dimValue: d } : { ...old[i] })),
    });
    return onnx.ValueInfoProto.create({ ...vi, type: onnx.TypeProto.create({ tensorType: onnx.TypeProto.Tensor.create({ ...tensorType, shape }) }) });
  };
  const input = graph.input.map((vi) => {
    const dims = feed[vi.name]?.dims;
    if (!dims || !vi.type?.tensorType) return vi as onnx.ValueInfoProto;
    (vi.type.tensorType.shape?.dim ?? []).forEach((d, i) => d.dimParam && named.set(d.dimParam, dims[i]));
    return withDims(vi, dims);
  });
  const output = graph.output.map((vi) => {
    const dims = vi.type?.tensorType?.shape?.dim;
    if (!dims || !dims.some((d) => d.dimParam && named.has(d.dimParam))) return vi as onnx.ValueInfoProto;
    return withDims(vi, dims.map((d) => (d.dimParam ? named.get(d.dimParam) : undefined)));
  });
  return onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...graph, input, output }) });
}
