// Ranges that need no tap: a Relu or Clip output observed by min/max, whose input calibration taps
// anyway. Both ops are monotone and exact in float32, so the output's batch extremes are the op
// applied to the input's extremes: the same numbers its own ReduceMin/ReduceMax would give, for
// two passes over the tensor and three nodes fewer.
import { attrFloat } from '../onnx/graph';
import { DataType, type onnx } from '../onnx/proto';
import { tensorToFloat32 } from '../onnx/tensor';
import type { ActivationSpec } from '../plan/plan';
import { parseMethod } from '../stats/observers';

export interface DerivedRange {
  tensor: string;
  /** The tapped tensor it is computed from. */
  from: string;
  /** The op, applied to one value exactly as ONNX Runtime computes it. */
  map: (v: number) => number;
}

/** A scalar float initializer's value, or undefined when the input is absent or not such a constant. */
function scalar(initializers: ReadonlyMap<string, onnx.TensorProto>, name: string | undefined): number | undefined {
  const t = name ? initializers.get(name) : undefined;
  if (!t || t.dataType !== DataType.FLOAT) return undefined;
  const values = tensorToFloat32(t);
  return values.length === 1 ? values[0] : undefined;
}

/** The op of `node` on one value, when it is a Relu or a Clip with constant bounds. */
function monotoneMap(node: onnx.NodeProto, initializers: ReadonlyMap<string, onnx.TensorProto>): ((v: number) => number) | undefined {
  if (node.opType === 'Relu') return (v) => Math.max(0, v);
  if (node.opType !== 'Clip') return undefined;
  // Clip takes its bounds as inputs from opset 11, as attributes before; an absent one does not clamp.
  const bound = (index: number, attribute: string, none: number): number | undefined => {
    if (node.input.length > 1) return node.input[index] ? scalar(initializers, node.input[index]) : none;
    return attrFloat(node, attribute, none);
  };
  const lo = bound(1, 'min', -Infinity);
  const hi = bound(2, 'max', Infinity);
  if (lo === undefined || hi === undefined) return undefined;
  return (v) => Math.min(hi, Math.max(lo, v));
}

/** The min/max tensors among `tensors` whose range follows from another of them that is tapped. */
export function derivedRanges(model: onnx.ModelProto, tensors: readonly ActivationSpec[]): DerivedRange[] {
  const graph = model.graph!;
  const initializers = new Map(graph.initializer.map((t) => [t.name, t]));
  const producer = new Map(graph.node.flatMap((n) => n.output.map((o) => [o, n] as const)));
  const candidates = tensors.filter((t) => parseMethod(t.method).kind === 'minmax');
  const derived = new Map<string, DerivedRange>();
  for (const t of candidates) {
    const node = producer.get(t.tensor);
    const map = node && (!node.domain || node.domain === 'ai.onnx') ? monotoneMap(node, initializers) : undefined;
    if (map) derived.set(t.tensor, { tensor: t.tensor, from: node!.input[0], map });
  }
  // The source must be tapped itself: observed, and not derived in turn.
  const tapped = new Set(tensors.map((t) => t.tensor).filter((name) => !derived.has(name)));
  return [...derived.values()].filter((d) => tapped.has(d.from));
}
