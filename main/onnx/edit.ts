// Small pieces for adding nodes to a model: the engine's calibration and comparison models add
// reductions next to the tensors they read.
import { onnx } from './proto';

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

/**
 * `nodes` with each addition placed right after the node that produces its tensor (or first, for
 * graph inputs). ONNX Runtime runs nodes close to their order in the graph: an addition left for
 * the end would keep every tensor it reads alive until then.
 */
export function placeAfterProducers(nodes: readonly onnx.NodeProto[], additions: ReadonlyArray<{ tensor: string; nodes: onnx.NodeProto[] }>): onnx.NodeProto[] {
  const producer = new Map<string, onnx.NodeProto>();
  for (const n of nodes) for (const o of n.output) producer.set(o, n);
  const after = new Map<onnx.NodeProto | undefined, onnx.NodeProto[]>();
  for (const a of additions) {
    const at = producer.get(a.tensor);
    after.set(at, [...(after.get(at) ?? []), ...a.nodes]);
  }
  return [...(after.get(undefined) ?? []), ...nodes.flatMap((n) => [n, ...(after.get(n) ?? [])])];
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
