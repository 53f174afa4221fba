// The calibration model: the float model plus, for every observed tensor, its batch minimum and
// maximum computed inside ONNX Runtime, and for histogram methods a strided sample of its values.
// Copying every activation out of ONNX Runtime costs far more than the inference itself (the
// PaddleOCR recognizer makes 200 MB of activations per text line); reductions and samples keep
// what crosses to JavaScript small, and the exact extremes still bound every histogram.
import { flatShape, intAttr, intsAttr, makeNode, reducedCells, typedValueInfo, withJoinedAdditions } from '../onnx/edit';
import { int64Tensor, makeTensor } from '../onnx/tensor';
import { defaultOpset } from '../onnx/graph';
import { DataType, onnx } from '../onnx/proto';

export interface TapRequest {
  tensor: string;
  /** Also hand over a sample of its values for a histogram, every k-th element with k fed at run time. */
  sample: boolean;
}

export interface Tap {
  tensor: string;
  /** Index of the batch minimum in the EXTREMES_OUTPUT vector; the maximum follows it. */
  min: number;
  max: number;
  /** The values the histogram sees: a strided sample of the tensor, or the tensor itself where the opset cannot slice with steps. */
  values?: string;
  /** The graph inputs, int64 [1], that take the sample's first position and step at run time (samplePhase). */
  start?: string;
  steps?: string;
}

/** Every tap's minimum and maximum in one [2·taps] output (edit.ts withJoinedAdditions says why one). */
export const EXTREMES_OUTPUT = 'qs_tap_extremes';

// Constants every tap shares: the [-1] shape that flattens, and Slice bounds.
const FLAT = 'qs_tap_flat_shape';
const ZERO = 'qs_tap_zero';
const END = 'qs_tap_end';
const INT64_MAX = 2n ** 63n - 1n;

/**
 * Every `steps`-th element of the flattened tensor `flat` from position `start`, as `output`, with
 * `start` and `steps` graph inputs (Slice with steps, opset 10); and an empty slice of it,
 * `${output}_empty`, whose place in the joined output lets the walk back reach the sample with its
 * tensor instead of leaving both to the end.
 */
function stridedSample(flat: string, start: string, steps: string, output: string): onnx.NodeProto[] {
  return [makeNode('Slice', [flat, start, END, ZERO, steps], [output]), emptySlice(output, `${output}_empty`, true)];
}

/**
 * The first position of a batch's strided sample that makes each sample's positions a function
 * of its index in the whole data, not in the batch: sample g (of `size` elements) starts at offset
 * (-g·size) mod step. Any batching of the same samples then hands over the same values.
 */
export function samplePhase(before: number, size: number, step: number): number {
  return (step - ((before % step) * (size % step)) % step) % step;
}

/**
 * The step that makes a sample of one element: a probe run with it hands over next to nothing.
 * ONNX Runtime sizes a slice as (length + step - 1) / step, so the step stays far from int64's end.
 */
export const PROBE_STEP = 2 ** 31 - 1;

/** The empty first slice of a 1-D `input`: Slice takes its bounds as inputs from opset 10, as attributes before. */
function emptySlice(input: string, output: string, boundsAsInputs: boolean): onnx.NodeProto {
  if (boundsAsInputs) return makeNode('Slice', [input, ZERO, ZERO, ZERO], [output]);
  const ints = (name: string) => intsAttr(name, [0]);
  return makeNode('Slice', [input], [output], [ints('starts'), ints('ends'), ints('axes')]);
}

/** Strided samples need Slice with steps (opset 10); older models hand over whole tensors. */
function canSample(model: onnx.ModelProto): boolean {
  return defaultOpset(model) >= 10;
}

/** A tensor whose shape for the run is the output `shape`, int64 [rank]. */
export interface SizeTap {
  tensor: string;
  shape: string;
}

/**
 * The model with `requests` tapped, and the shape of each of them and of `sizedOnly` (tensors
 * whose size a later run needs, like those that borrow another's range).
 */
export function tapModel(model: onnx.ModelProto, requests: TapRequest[], sizedOnly: readonly string[] = []): { model: onnx.ModelProto; taps: Tap[]; sized: SizeTap[] } {
  const graph = model.graph!;
  const sampling = canSample(model);
  const initializers = [...graph.initializer];
  const sampled = sampling && requests.some((r) => r.sample);
  if (requests.length) initializers.push(flatShape(FLAT));
  if (sampling && requests.length + sizedOnly.length > 0) initializers.push(int64Tensor(ZERO, [1], [0]));
  if (sampled) initializers.push(makeTensor(END, DataType.INT64, [1], BigInt64Array.of(INT64_MAX)));
  const inputs = [...graph.input];
  const outputs = [...graph.output];
  const blocks: onnx.NodeProto[][] = [];
  const joined: string[] = [];
  const sized: SizeTap[] = [];
  // The shape is an output of its own; an empty float slice of it joins the extremes so that the
  // Shape runs with its tensor's block instead of keeping the tensor alive to the end.
  const sizeOf = (tensor: string, base: string): onnx.NodeProto[] => {
    const shape = `${base}_shape`;
    sized.push({ tensor, shape });
    joined.push(`${base}_shape_none`);
    outputs.push(typedValueInfo(shape, DataType.INT64));
    return [
      makeNode('Shape', [tensor], [shape]),
      emptySlice(shape, `${base}_shape_empty`, sampling),
      makeNode('Cast', [`${base}_shape_empty`], [`${base}_shape_none`], [intAttr('to', DataType.FLOAT)]),
    ];
  };
  // Blocks in graph order, sized-only tensors among the tapped ones, so that the walk back from
  // the joined output meets each tensor's block right after the tensor (withJoinedAdditions).
  const position = new Map(graph.node.flatMap((n, i) => n.output.map((o) => [o, i] as const)));
  const entries = [...requests, ...sizedOnly.map((tensor) => ({ tensor, sizeOnly: true }))]
    .sort((a, b) => (position.get(a.tensor) ?? -1) - (position.get(b.tensor) ?? -1));
  let cells = 0;
  const taps: Tap[] = [];
  entries.forEach((r, i) => {
    const base = `qs_tap_${i}`;
    if ('sizeOnly' in r) {
      blocks.push(sizeOf(r.tensor, base));
      return;
    }
    const tap: Tap = { tensor: r.tensor, min: cells++, max: cells++ };
    const flat = `${base}_flat`;
    const nodes = reducedCells(r.tensor, flat, FLAT, [{ op: 'ReduceMin', output: `${base}_min` }, { op: 'ReduceMax', output: `${base}_max` }]);
    joined.push(`${base}_min`, `${base}_max`);
    nodes.push(...sizeOf(r.tensor, base));
    if (r.sample && !sampling) {
      tap.values = r.tensor;
      if (!outputs.some((o) => o.name === r.tensor)) outputs.push(typedValueInfo(r.tensor, DataType.FLOAT));
    } else if (r.sample) {
      tap.values = `${base}_sample`;
      tap.start = `${base}_start`;
      tap.steps = `${base}_steps`;
      inputs.push(typedValueInfo(tap.start, DataType.INT64, [1]), typedValueInfo(tap.steps, DataType.INT64, [1]));
      nodes.push(...stridedSample(flat, tap.start, tap.steps, tap.values));
      joined.push(`${tap.values}_empty`);
      outputs.push(typedValueInfo(tap.values, DataType.FLOAT));
    }
    blocks.push(nodes);
    taps.push(tap);
  });
  const nodes = withJoinedAdditions(graph.node, blocks, joined, EXTREMES_OUTPUT);
  if (joined.length) outputs.push(typedValueInfo(EXTREMES_OUTPUT, DataType.FLOAT));
  return {
    model: onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...graph, node: nodes, initializer: initializers, input: inputs, output: outputs }) }),
    taps,
    sized,
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
