// Small pieces for adding nodes to a model: the engine's calibration and comparison models add
// reductions next to the tensors they read.
import { onnx } from './proto';
import { int64Tensor } from './tensor';

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

/** The shape [1] every cell of a joined output is reshaped to (reducedCell), as an initializer named `name`. */
export function cellShape(name: string): onnx.TensorProto {
  return int64Tensor(name, [1], [1]);
}

/** `op` over the whole of `input` as the [1] vector `output`: one cell of a joined output (withJoinedAdditions). */
export function reducedCell(op: string, input: string, output: string, shape: string): onnx.NodeProto[] {
  return [makeNode(op, [input], [`${output}_scalar`], REDUCE_ALL), makeNode('Reshape', [`${output}_scalar`, shape], [output])];
}

/**
 * `nodes`, then the additions made for each tensor, then one Concat of their 1-D results `joined`
 * as `output`. The single leaf also orders ONNX Runtime's execution: it walks back from the
 * graph's leaves, last leaf first, taking a node's inputs highest node index first. With the
 * blocks last and in reverse, the walk from the Concat computes the first block's tensor first
 * and frees each tensor soon after its block reduced it; a thousand separate leaves (or blocks
 * placed after their producers) would instead keep every tensor of the batch alive until the end.
 */
export function withJoinedAdditions(nodes: readonly onnx.NodeProto[], blocks: ReadonlyArray<onnx.NodeProto[]>, joined: string[], output: string): onnx.NodeProto[] {
  const all = [...nodes, ...[...blocks].reverse().flat()];
  if (joined.length) all.push(onnx.NodeProto.create({ opType: 'Concat', input: joined, output: [output], name: output, attribute: [onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 })] }));
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
