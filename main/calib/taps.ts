// The calibration model: the float model plus, for every observed tensor, its batch minimum and
// maximum computed inside ONNX Runtime, and for histogram methods a strided sample of its values.
// Copying every activation out of ONNX Runtime costs far more than the inference itself (the
// PaddleOCR recognizer makes 200 MB of activations per text line); reductions and samples keep
// what crosses to JavaScript small, and the exact extremes still bound every histogram.
import { cellShape, makeNode, reducedCell, typedValueInfo, withJoinedAdditions } from '../onnx/edit';
import { int64Tensor, makeTensor } from '../onnx/tensor';
import { defaultOpset } from '../onnx/graph';
import { DataType, onnx } from '../onnx/proto';

export interface TapRequest {
  tensor: string;
  /** Elements to step over between samples; 0 when the method needs only min and max. */
  stride: number;
}

export interface Tap {
  tensor: string;
  /** Index of the batch minimum in the EXTREMES_OUTPUT vector; the maximum follows it. */
  min: number;
  max: number;
  /** With sizes: the tensor's shape (int64 [rank]); its element count is the product. */
  shape?: string;
  /** The values the histogram sees: the tensor itself (stride 1) or a strided sample of it. */
  values?: string;
}

/** Every tap's minimum and maximum in one [2·taps] output (edit.ts withJoinedAdditions says why one). */
export const EXTREMES_OUTPUT = 'qs_tap_extremes';

const CELL = 'qs_tap_cell';
const FLAT = 'qs_tap_flat_shape';
const INT64_MAX = 2n ** 63n - 1n;

/**
 * Every `stride`-th element of `tensor`, flattened, as `output`: Reshape to [-1] (an alias in ONNX
 * Runtime, no copy) and Slice with steps (opset 10); and an empty slice of it, `${output}_empty`,
 * whose place in the joined output lets the walk back reach the sample with its tensor instead of
 * leaving both to the end.
 */
function stridedSample(tensor: string, stride: number, output: string): { nodes: onnx.NodeProto[]; initializers: onnx.TensorProto[] } {
  const [starts, ends, axes, steps] = ['starts', 'ends', 'axes', 'steps'].map((c) => `${output}_${c}`);
  return {
    nodes: [
      makeNode('Reshape', [tensor, FLAT], [`${output}_flat`]),
      makeNode('Slice', [`${output}_flat`, starts, ends, axes, steps], [output]),
      makeNode('Slice', [output, starts, starts, axes], [`${output}_empty`]),
    ],
    initializers: [
      int64Tensor(starts, [1], [0]), makeTensor(ends, DataType.INT64, [1], BigInt64Array.of(INT64_MAX)), int64Tensor(axes, [1], [0]), int64Tensor(steps, [1], [stride]),
    ],
  };
}

/** Strided samples need Slice with steps (opset 10); older models hand over whole tensors. */
export function canSample(model: onnx.ModelProto): boolean {
  return defaultOpset(model) >= 10;
}

export function tapModel(model: onnx.ModelProto, requests: TapRequest[], withSizes: boolean): { model: onnx.ModelProto; taps: Tap[] } {
  const graph = model.graph!;
  const initializers = [...graph.initializer, ...(requests.length ? [cellShape(CELL)] : [])];
  if (requests.some((r) => r.stride > 1)) initializers.push(int64Tensor(FLAT, [1], [-1]));
  const outputs = [...graph.output];
  const blocks: onnx.NodeProto[][] = [];
  const joined: string[] = [];
  const taps = requests.map((r, i) => {
    const base = `qs_tap_${i}`;
    const tap: Tap = { tensor: r.tensor, min: 2 * i, max: 2 * i + 1 };
    const nodes: onnx.NodeProto[] = [];
    for (const [op, cell] of [['ReduceMin', `${base}_min`], ['ReduceMax', `${base}_max`]]) {
      nodes.push(...reducedCell(op, r.tensor, cell, CELL));
      joined.push(cell);
    }
    if (withSizes) {
      tap.shape = `${base}_shape`;
      nodes.push(makeNode('Shape', [r.tensor], [tap.shape]));
      outputs.push(typedValueInfo(tap.shape, DataType.INT64));
    }
    if (r.stride === 1) {
      tap.values = r.tensor;
      if (!outputs.some((o) => o.name === r.tensor)) outputs.push(typedValueInfo(r.tensor, DataType.FLOAT));
    } else if (r.stride > 1) {
      tap.values = `${base}_sample`;
      const sample = stridedSample(r.tensor, r.stride, tap.values);
      initializers.push(...sample.initializers);
      nodes.push(...sample.nodes);
      joined.push(`${tap.values}_empty`);
      outputs.push(typedValueInfo(tap.values, DataType.FLOAT));
    }
    blocks.push(nodes);
    return tap;
  });
  const nodes = withJoinedAdditions(graph.node, blocks, joined, EXTREMES_OUTPUT);
  if (joined.length) outputs.push(typedValueInfo(EXTREMES_OUTPUT, DataType.FLOAT));
  return {
    model: onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...graph, node: nodes, initializer: initializers, output: outputs }) }),
    taps,
  };
}

/**
 * A prime step at least `ratio`: a prime above 5 shares no factor with the 2·3·5-smooth sizes of
 * image rows and channels, so the sample walks over every column and channel instead of aliasing.
 */
export function sampleStride(ratio: number): number {
  if (ratio <= 1) return 1;
  for (let p = Math.max(7, Math.ceil(ratio)); ; p++) {
    let prime = true;
    for (let d = 2; d * d <= p; d++) if (p % d === 0) { prime = false; break; }
    if (prime) return p;
  }
}
