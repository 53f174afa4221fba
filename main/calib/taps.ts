// The calibration model: the float model plus, for every observed tensor, its batch minimum and
// maximum computed inside ONNX Runtime, or for histogram methods a strided sample of its values.
// Copying every activation out of ONNX Runtime costs far more than the inference itself (the
// PaddleOCR recognizer makes 200 MB of activations per text line); reductions and samples keep
// what crosses to JavaScript small.
import { flatShape, intAttr, intsAttr, joinedOutputs, makeNode, reducedCells, rowAxes, rowCells, rowCount, rowDims, sampleShape, typedValueInfo, withJoinedAdditions, type InferredDims, type KnownDims } from '../onnx/edit';
import { int64Tensor, makeTensor } from '../onnx/tensor';
import { defaultOpset } from '../onnx/graph';
import { DataType, onnx } from '../onnx/proto';

export interface TapRequest {
  tensor: string;
  /** Also hand over a sample of its values for a histogram, every k-th element. */
  sample: boolean;
  /**
   * The sample alone, without the tensor's exact minimum and maximum: its histogram's range is
   * the sample's. Where the sample cannot be a cell of the joined output (a shape measured in the
   * run, an opset without strided Slice), the extremes are reduced all the same.
   */
  sampleOnly?: boolean;
  /**
   * The size of one sample's tensor and the sample's step, where known before the run: the step is
   * then a constant of the model, and the tensors of one size and step share the input of their
   * first position. Otherwise both are fed at run time.
   */
  stride?: { size: number; step: number };
}

export interface Tap {
  tensor: string;
  /** Cells (TappedModel.cells) of the joined output that hold the minimum and the maximum of each of its rows; none for a sample alone (TapRequest.sampleOnly). */
  extremes?: { min: number; max: number };
  /** The cell of the joined output that holds the values the histogram sees, a strided sample of the tensor, where its size is known. */
  sample?: number;
  /** Else the output that holds them: the strided sample, or the tensor itself where the opset cannot slice with steps. */
  values?: string;
  /** The graph input, int64 [1], that takes the sample's first position at run time (samplePhase). */
  start?: string;
  /** The graph input that takes its step, where the step is not a constant of the model (TapRequest.stride). */
  steps?: string;
}

/**
 * Every tap's minima and maxima by rows and its sample, in one output of cells (edit.ts
 * withJoinedAdditions says why one), split into parts of at most PART_BYTES.
 */
export const EXTREMES_OUTPUT = 'qs_tap_extremes';

/**
 * The largest part of the joined output a batch makes, where no single tap's block is larger
 * (whole tensors, with no sample budget, can be). onnxruntime-node hands each output over in a new buffer,
 * and glibc maps a buffer above 32 MB fresh from the kernel every time, where smaller ones reuse
 * freed memory: on the VMs this was measured on, a fresh page cost 2.5 to 3.5 ms a megabyte, and
 * a 71 MB output took 266 ms a run to hand over, the same values in three parts 54 ms. The
 * PaddleOCR recognizer's histogram calibration makes 71 MB of samples a batch of 8: its runs took
 * 4.1 to 4.3 s in one output, 3.3 to 4.0 s in parts of 12 to 24 MB, 3.0 to 3.4 s in parts of 2
 * to 4 MB: smaller than glibc's threshold alone asks, as measured.
 */
export const PART_BYTES = 4 << 20;

// Constants taps share: the [-1] shape that flattens, the reductions' axes, Slice bounds.
const FLAT = 'qs_tap_flat_shape';
const AXES = 'qs_tap_axes';
const ZERO = 'qs_tap_zero';
const END = 'qs_tap_end';
const SHARED_START = 'qs_tap_start';
const SHARED_STEP = 'qs_tap_step';
const INT64_MAX = 2n ** 63n - 1n;

/**
 * Every `steps`-th element of the flattened tensor `flat` from position `start`, as `output`, with
 * `start` and `steps` graph inputs (Slice with steps, opset 10). It is a cell of the joined output,
 * which orders it with its tensor: as outputs of their own, the samples took 320 more nodes (an
 * empty slice each, to order them) and 0.4 s more session creation on the PaddleOCR recognizer.
 */
function stridedSample(flat: string, start: string, steps: string, output: string): onnx.NodeProto {
  return makeNode('Slice', [flat, start, END, ZERO, steps], [output]);
}

/** Elements in a strided sample (stridedSample) of `length` elements from `start`, every `step`-th: as ONNX Runtime sizes a Slice. */
export function sampleLength(length: number, start: number, step: number): number {
  return start >= length ? 0 : Math.ceil((length - start) / step);
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
 * The step that makes a sample of one element: a probe run with it hands over next to nothing of
 * the taps whose step is fed (the others sample as they will in every batch).
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
export function canSample(model: onnx.ModelProto): boolean {
  return defaultOpset(model) >= 10;
}

/** A tensor whose shape for the run is the output `shape`, int64 [rank]. */
export interface SizeTap {
  tensor: string;
  shape: string;
}

/**
 * A cell of EXTREMES_OUTPUT: one value per row of a tensor whose leading dims are `lead` (edit.ts
 * rowDims), or the strided sample of the tap `sampleOf`, whose length follows from the tensor's
 * `dims` and the sample's position and step in each batch.
 */
export type TapCell = { lead: InferredDims } | { sampleOf: Tap; dims: InferredDims };

/** An empty cell: a slice that only orders the run. */
const EMPTY: TapCell = { lead: [0] };

export interface TappedModel {
  model: onnx.ModelProto;
  taps: Tap[];
  /** The tensors whose shape the run measures: those shape inference does not know. */
  sized: SizeTap[];
  /** The cells of EXTREMES_OUTPUT, in order (edit.ts cellValues). */
  cells: TapCell[];
  /** The cells that begin each part of EXTREMES_OUTPUT after the first. */
  parts: number[];
  /** The outputs that hold the parts (edit.ts joinedOutputs). */
  joined: string[];
}

/**
 * How to split the joined output: at most `values` values a sample in each part, and at least
 * `parts` parts where the taps allow (one per worker, each of which takes a part whole), for
 * samples of `sampleBudget` values a sample at most (0: whole tensors).
 */
export interface TapSplit {
  values: number;
  parts: number;
  sampleBudget: number;
}

/**
 * The model with `requests` tapped, and the shape of each of them and of `sizedOnly` (tensors
 * whose size a later run needs, like those that borrow another's range) measured where `known`
 * does not give it.
 */
export function tapModel(model: onnx.ModelProto, requests: TapRequest[], known: KnownDims, sizedOnly: readonly string[] = [], split?: TapSplit): TappedModel {
  const graph = model.graph!;
  const opset = defaultOpset(model);
  const sampling = canSample(model);
  const initializers = [...graph.initializer];
  const sampled = sampling && requests.some((r) => r.sample);
  const measured = (tensor: string) => sampleShape(known.get(tensor)) === undefined;
  const requested = new Set(requests.map((r) => r.tensor));
  const sizedUnknown = sizedOnly.filter((t) => measured(t) && !requested.has(t));
  // Slices start (and, empty, end) at ZERO: samples, and the empty cells of measured sizes.
  if (sampling && (sampled || sizedUnknown.length > 0)) initializers.push(int64Tensor(ZERO, [1], [0]));
  if (sampled) initializers.push(makeTensor(END, DataType.INT64, [1], BigInt64Array.of(INT64_MAX)));
  const inputs = [...graph.input];
  const outputs = [...graph.output];
  const blocks: onnx.NodeProto[][] = [];
  const joined: string[] = [];
  const cells: TapCell[] = [];
  const cell = (output: string, what: TapCell) => {
    joined.push(output);
    return cells.push(what) - 1;
  };
  const sized: SizeTap[] = [];
  // A tensor of unknown shape gets it measured: the shape is an output of its own, and its product
  // the flattening Reshape's target, so that it runs with its tensor's block rather than holding
  // the tensor to the end. A Cast of the shape into the joined floats would order it as well, but
  // tripled ONNX Runtime's session creation on the PaddleOCR recognizer (0.3 → 0.9 s): its graph
  // passes propagate shape data through every Cast.
  const measuredFlat = (tensor: string, base: string): onnx.NodeProto[] => {
    const shape = `${base}_shape`;
    sized.push({ tensor, shape });
    outputs.push(typedValueInfo(shape, DataType.INT64));
    return [
      makeNode('Shape', [tensor], [shape]),
      makeNode('ReduceProd', [shape], [`${base}_size`], [intAttr('keepdims', 1)]),
      makeNode('Reshape', [tensor, `${base}_size`], [`${base}_flat`]),
    ];
  };
  // Blocks in graph order, sized-only tensors among the tapped ones, so that the walk back from
  // the joined output meets each tensor's block right after the tensor (withJoinedAdditions).
  const position = new Map(graph.node.flatMap((n, i) => n.output.map((o) => [o, i] as const)));
  const entries = [...requests, ...sizedUnknown.map((tensor) => ({ tensor, sizeOnly: true }))]
    .sort((a, b) => (position.get(a.tensor) ?? -1) - (position.get(b.tensor) ?? -1));
  const taps: Tap[] = [];
  const rowRanks = new Set<number>();
  let flattened = false;
  const blockStarts: number[] = [];
  const shared = new Set<string>();
  entries.forEach((r, i) => {
    blockStarts.push(cells.length);
    const base = `qs_tap_${i}`;
    const flat = `${base}_flat`;
    const unknown = measured(r.tensor);
    const nodes = unknown ? measuredFlat(r.tensor, base) : [];
    if ('sizeOnly' in r) {
      // An empty slice of the flat tensor joins the extremes, for the order.
      nodes.push(emptySlice(flat, `${base}_none`, sampling));
      cell(`${base}_none`, EMPTY);
      blocks.push(nodes);
      return;
    }
    const dims = known.get(r.tensor);
    const lead = unknown ? [] : rowDims(dims);
    const tap: Tap = { tensor: r.tensor };
    if (!(r.sample && r.sampleOnly && sampling && !unknown)) {
      const extremes = [{ op: 'ReduceMin', output: `${base}_min` }, { op: 'ReduceMax', output: `${base}_max` }];
      if (lead.length) {
        nodes.push(...rowCells(r.tensor, dims!.length, extremes, opset, `${AXES}_${dims!.length}`));
        rowRanks.add(dims!.length);
      } else {
        if (!unknown) {
          nodes.push(makeNode('Reshape', [r.tensor, FLAT], [flat]));
          flattened = true;
        }
        nodes.push(...reducedCells(flat, extremes));
      }
      tap.extremes = { min: cell(`${base}_min`, { lead }), max: cell(`${base}_max`, { lead }) };
    }
    if (r.sample && !sampling) {
      tap.values = r.tensor;
      if (!outputs.some((o) => o.name === r.tensor)) outputs.push(typedValueInfo(r.tensor, DataType.FLOAT));
    } else if (r.sample) {
      const sample = `${base}_sample`;
      const { start, steps } = samplePosition(tap, base, unknown ? undefined : r.stride, { inputs, initializers, shared });
      if (unknown) {
        // No length to place it in the joined output by: an output of its own, ordered by an empty slice of it.
        tap.values = sample;
        outputs.push(typedValueInfo(sample, DataType.FLOAT));
        nodes.push(stridedSample(flat, start, steps, sample), emptySlice(sample, `${sample}_empty`, true));
        cell(`${sample}_empty`, EMPTY);
      } else {
        if (lead.length || !tap.extremes) nodes.push(makeNode('Reshape', [r.tensor, FLAT], [flat]));
        nodes.push(stridedSample(flat, start, steps, sample));
        flattened = true;
        tap.sample = cell(sample, { sampleOf: tap, dims: known.get(r.tensor)! });
      }
    }
    blocks.push(nodes);
    taps.push(tap);
  });
  const parts = split ? partStarts(cells, blockStarts, split) : [];
  const nodes = withJoinedAdditions(graph.node, blocks, joined, EXTREMES_OUTPUT, parts);
  const joinedNames = joined.length ? joinedOutputs(EXTREMES_OUTPUT, parts.length + 1) : [];
  outputs.push(...joinedNames.map((name) => typedValueInfo(name, DataType.FLOAT)));
  // Only what some tap uses: ONNX Runtime warns of every unused initializer.
  if (flattened) initializers.push(flatShape(FLAT));
  if (opset >= 18) initializers.push(...[...rowRanks].map((rank) => rowAxes(`${AXES}_${rank}`, rank)));
  return {
    model: onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...graph, node: nodes, initializer: initializers, input: inputs, output: outputs }) }),
    taps,
    sized,
    cells,
    parts,
    joined: joinedNames,
  };
}

/**
 * The inputs that place `tap`'s sample, named in `tap.start` (and `tap.steps` where the step is
 * fed), and the names of its position and step. A stride known before the run makes the step a constant and
 * the position an input shared by the taps of one size and step (`shared` holds the names
 * made): inputs cost ONNX Runtime's graph passes as nodes do, and the PaddleOCR recognizer's 700
 * (a position and a step a tap) took a sixth of its calibration session's creation.
 */
function samplePosition(tap: Tap, base: string, stride: TapRequest['stride'], made: { inputs: onnx.IValueInfoProto[]; initializers: onnx.TensorProto[]; shared: Set<string> }): { start: string; steps: string } {
  if (!stride) {
    tap.start = `${base}_start`;
    tap.steps = `${base}_steps`;
    made.inputs.push(typedValueInfo(tap.start, DataType.INT64, [1]), typedValueInfo(tap.steps, DataType.INT64, [1]));
    return { start: tap.start, steps: tap.steps };
  }
  tap.start = `${SHARED_START}_${stride.size}_${stride.step}`;
  const steps = `${SHARED_STEP}_${stride.step}`;
  if (!made.shared.has(tap.start)) made.inputs.push(typedValueInfo(tap.start, DataType.INT64, [1]));
  if (!made.shared.has(steps)) made.initializers.push(int64Tensor(steps, [1], [stride.step]));
  made.shared.add(tap.start).add(steps);
  return { start: tap.start, steps };
}

/** The first cell of each part after the first: whole blocks, each part under `split.values` values a sample where a block allows. */
function partStarts(cells: readonly TapCell[], blockStarts: readonly number[], split: TapSplit): number[] {
  const valuesOf = (c: TapCell): number => {
    if ('lead' in c) return rowCount(c.lead, 1);
    const size = rowCount(c.dims, 1);
    return split.sampleBudget > 0 ? Math.min(size, split.sampleBudget + 1) : size;
  };
  const blockValues = blockStarts.map((first, b) => {
    const end = b + 1 < blockStarts.length ? blockStarts[b + 1] : cells.length;
    let values = 0;
    for (let c = first; c < end; c++) values += valuesOf(cells[c]);
    return values;
  });
  const limit = Math.min(split.values, Math.ceil(blockValues.reduce((a, b) => a + b, 0) / Math.max(1, split.parts)));
  const starts: number[] = [];
  let held = 0;
  blockStarts.forEach((first, b) => {
    const values = blockValues[b];
    if (held > 0 && held + values > limit) {
      starts.push(first);
      held = 0;
    }
    held += values;
  });
  return starts;
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
