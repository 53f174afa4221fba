// The calibration model: the float model plus, for every observed tensor, its batch minimum and
// maximum computed inside ONNX Runtime, and for histogram methods a strided sample of its values.
// Copying every activation out of ONNX Runtime costs far more than the inference itself (the
// PaddleOCR recognizer makes 200 MB of activations per text line); reductions and samples keep
// what crosses to JavaScript small, and the exact extremes still bound every histogram.
import { makeNode, REDUCE_ALL, stridedSample, typedValueInfo, withJoinedAdditions } from '../onnx/edit';
import { int64Tensor } from '../onnx/tensor';
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

/** Every tap's minimum and maximum in one [1, 2·taps] output (edit.ts withJoinedAdditions says why one). */
export const EXTREMES_OUTPUT = 'qs_tap_extremes';

/** Strided samples need Slice with steps (opset 10); older models hand over whole tensors. */
export function canSample(model: onnx.ModelProto): boolean {
  return defaultOpset(model) >= 10;
}

export function tapModel(model: onnx.ModelProto, requests: TapRequest[], withSizes: boolean): { model: onnx.ModelProto; taps: Tap[] } {
  const graph = model.graph!;
  const initializers = [...graph.initializer, ...(requests.length ? [int64Tensor(CELL, [2], [1, 1])] : [])];
  if (requests.some((r) => r.stride > 1)) initializers.push(int64Tensor(`${CELL}_zero`, [1], [0]), int64Tensor(`${CELL}_axis`, [1], [1]));
  const outputs = [...graph.output];
  const blocks: onnx.NodeProto[][] = [];
  const joined: string[] = [];
  const taps = requests.map((r, i) => {
    const base = `qs_tap_${i}`;
    const tap: Tap = { tensor: r.tensor, min: 2 * i, max: 2 * i + 1 };
    const nodes: onnx.NodeProto[] = [];
    for (const op of ['ReduceMin', 'ReduceMax']) {
      const cell = `${base}_${op === 'ReduceMin' ? 'min' : 'max'}`;
      nodes.push(makeNode(op, [r.tensor], [`${cell}_scalar`], REDUCE_ALL), makeNode('Reshape', [`${cell}_scalar`, CELL], [cell]));
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
      // An empty slice of the sample joins the Concat, so that the walk back reaches the sample
      // with its tensor instead of leaving it, and the whole tensor, to the end.
      nodes.push(...sample.nodes, makeNode('Slice', [tap.values, `${CELL}_zero`, `${CELL}_zero`, `${CELL}_axis`], [`${base}_sample_empty`]));
      joined.push(`${base}_sample_empty`);
      outputs.push(typedValueInfo(tap.values, DataType.FLOAT));
    }
    blocks.push(nodes);
    return tap;
  });
  const nodes = withJoinedAdditions(graph.node, blocks, joined, EXTREMES_OUTPUT, 1);
  if (joined.length) outputs.push(typedValueInfo(EXTREMES_OUTPUT, DataType.FLOAT));
  return {
    model: onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...graph, node: nodes, initializer: initializers, output: outputs }) }),
    taps,
  };
}

/** [1, 1]: a reduced scalar as a cell of the extremes row. */
const CELL = 'qs_tap_cell';

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
