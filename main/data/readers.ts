// Calibration and evaluation data: turns what the user points at (a .npy stack, a folder of .npy
// samples or of images, a JSON manifest, or random:N) into batches of model feeds. Everything is
// checked against the model's inputs when the source is opened, so that a wrong file fails before
// a long calibration starts; samples are then read from disk one batch at a time.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decodeImage, DEFAULT_MAX_MEGAPIXELS, IMAGE_EXTENSIONS, imageSize, listImages, preprocessImage, type ImageGeometry } from './images';
import { elementCount, type ElementType, type Feed, type InputShapes, type InputSpec } from '../base/feed';
import { allocate, DataError, itemSize, readNpyHeader, readNpyRange, type NpyArray, type NpyDtype, type NpyHeader } from './npy';
import { preprocessProblem, type PreprocessSpec } from '../../shared/preprocess';

export { DataError };

export interface SampleSource {
  /** E.g. "64 samples from x.npy". */
  readonly description: string;
  /** Samples available, after the limit. */
  readonly count: number;
  readonly warnings: string[];
  /**
   * Every input's shape in every feed, null for the batch size, when all samples share their
   * shapes (undefined when per-sample files differ): sessions built for these shapes plan their
   * memory once instead of for unknown sizes (onnx/edit.ts withInputShapes).
   */
  readonly feedShapes?: InputShapes;
  /** Yields feeds of up to batchSize samples stacked on the first axis, in order, reading lazily (bounded memory: only the current batch is in memory). */
  batches(batchSize: number): AsyncIterable<Feed>;
}

export interface SourceOptions {
  preprocess?: PreprocessSpec;
  /** At most this many samples. */
  limit?: number;
  /** Only these samples, ascending: one side of a split for evaluation (see `heldOutSamples`). */
  samples?: readonly number[];
  /** Seed of random:N data. */
  seed?: number;
  /** Drop samples holding NaN, ±Inf or values past ±MAX_SAMPLE_MAGNITUDE (and say so through onWarning) instead of refusing the data. */
  skipNonFinite?: boolean;
  /** Images over this many decoded megapixels are refused from their header; default DEFAULT_MAX_MEGAPIXELS. */
  maxMegapixels?: number;
  onWarning?: (message: string) => void;
}

/**
 * One sample of every input together may take this many bytes at most. A larger one is a shape or
 * a data error (an input dimension of 46341 asks for gigabytes), refused before anything is allocated.
 */
export const MAX_SAMPLE_BYTES = 2 * 2 ** 30;

const RANDOM_WARNING = 'random data gives poor calibration ranges; use real samples (a .npy file, a folder of images or .npy files, or a manifest)';
const SOURCE_KINDS = 'a .npy file, a folder of images or .npy files, a .json manifest, or random:N';

type Dim = number | string;

/** A model input as the readers see it. */
interface Slot {
  input: InputSpec;
  type: ElementType;
  /** The first dim counts samples (it is symbolic, or a fixed 1); otherwise a sample is the whole tensor. */
  batchAxis: boolean;
  /** The shape of one sample: the input's shape without the batch axis. */
  sample: Dim[];
}

/** One input's samples. */
interface Column {
  readonly count: number;
  /** The file or folder they come from, for messages. */
  readonly origin: string;
  /** The image preprocessing, for the description. */
  readonly detail?: string;
  /** The shape of sample `index` without the batch axis; per-sample files may differ in dynamic dims. */
  shape(index: number): number[];
  /** Samples [start, start + n), back to back, in the input's element type. */
  read(start: number, n: number): NpyArray | Promise<NpyArray>;
}

// Model inputs arrive with ONNX's type names (float, double) as well as ours.
const TYPE_NAMES: Record<string, ElementType> = {
  float: 'float32', float32: 'float32', double: 'float64', float64: 'float64',
  int64: 'int64', int32: 'int32', int8: 'int8', uint8: 'uint8', bool: 'bool',
};

export async function openSource(spec: string, inputs: InputSpec[], options: SourceOptions = {}): Promise<SampleSource> {
  if (inputs.length === 0) throw new DataError(`${spec}: the model has no inputs to feed`);
  const slots = inputs.map(slotOf);
  const preprocess = checkPreprocess(options.preprocess ?? {}, 'image preprocessing');
  const warnings: string[] = [];
  const random = /^random:(.*)$/.exec(spec);
  let columns: Column[];
  let from: string;
  if (random) {
    const n = Number(random[1]);
    if (!Number.isInteger(n) || n < 1) throw new DataError(`${spec}: random:N needs a whole number of samples N ≥ 1`);
    const seed = options.seed ?? 0;
    columns = slots.map((slot, i) => randomColumn(spec, slot, i, n, seed));
    from = `random samples (seed ${seed})`;
    warnings.push(RANDOM_WARNING);
  } else {
    columns = await openPath(spec, slots, { preprocess, maxMegapixels: options.maxMegapixels ?? DEFAULT_MAX_MEGAPIXELS }, warnings);
    from = `samples from ${spec}`;
    const ignored = Object.keys(preprocess);
    if (ignored.length && !columns.some((c) => c.detail)) warnings.push(`image preprocessing (${ignored.join(', ')}) is ignored: ${spec} holds no images`);
  }
  const total = columns[0].count;
  if (total === 0) throw new DataError(`${spec}: holds no samples`);
  checkSampleSize(spec, slots, columns);
  const picked = options.samples;
  if (picked?.some((i) => !Number.isInteger(i) || i < 0 || i >= total)) throw new DataError(`${spec}: holds ${total} samples, fewer than the split asks for`);
  if (picked) columns = columns.map((c) => pickedColumn(c, picked));
  const available = picked?.length ?? total;
  const count = options.limit && options.limit > 0 ? Math.min(available, Math.floor(options.limit)) : available;
  const details = columns.flatMap((c) => (c.detail ? [c.detail] : []));
  const which = `${count}${count < total ? ` of ${total}` : ''}${picked ? ' (split evenly)' : ''}`;
  const description = `${which} ${from}${details.length ? `; ${details.join('; ')}` : ''}`;
  return new ColumnSource(description, count, warnings, slots, columns, options);
}

/**
 * The samples a fraction of `total` holds out for evaluation, spread evenly through the source
 * (every 4th for a quarter): data sorted by class, as folder-per-class images are, lands on both
 * sides. At least one each side.
 */
export function heldOutSamples(total: number, fraction: number, spec: string): number[] {
  if (total < 2) throw new DataError(`${spec}: holds ${total} sample; holding some out for evaluation needs at least 2`);
  const held = Math.min(total - 1, Math.max(1, Math.round(total * fraction)));
  return Array.from({ length: held }, (_, k) => Math.floor(((k + 0.5) * total) / held));
}

/** The samples of `total` not in `held` (ascending). */
export function otherSamples(total: number, held: readonly number[]): number[] {
  const out = new Set(held);
  return Array.from({ length: total }, (_, i) => i).filter((i) => !out.has(i));
}

/** How holding out `fraction` splits the source `spec`, counted from the source itself: evaluation's samples and calibration's. */
export async function heldOutSplit(spec: string, inputs: InputSpec[], fraction: number, options: Pick<SourceOptions, 'preprocess' | 'maxMegapixels'>): Promise<{ evaluation: number[]; calibration: number[]; total: number }> {
  const { count: total } = await openSource(spec, inputs, options);
  const evaluation = heldOutSamples(total, fraction, spec);
  return { evaluation, calibration: otherSamples(total, evaluation), total };
}

/** A column of only the picked samples, renumbered from 0; a read of several joins the runs of adjacent ones. */
function pickedColumn(column: Column, picked: readonly number[]): Column {
  return {
    count: picked.length, origin: column.origin, detail: column.detail,
    shape: (i) => column.shape(picked[i]),
    read: async (start, n) => {
      const runs: Array<[number, number]> = [];
      for (const i of picked.slice(start, start + n)) {
        const last = runs[runs.length - 1];
        if (last && last[0] + last[1] === i) last[1]++;
        else runs.push([i, 1]);
      }
      const parts = await Promise.all(runs.map(([from, k]) => column.read(from, k)));
      if (parts.length === 1) return parts[0];
      // Every part has the column's one element type.
      const out = new (parts[0].constructor as new (length: number) => NpyArray)(parts.reduce((a, p) => a + p.length, 0));
      let offset = 0;
      for (const p of parts) {
        (out as Float32Array).set(p as Float32Array, offset);
        offset += p.length;
      }
      return out;
    },
  };
}

function checkSampleSize(spec: string, slots: Slot[], columns: Column[]): void {
  const sizes = slots.map((slot, i) => elementCount(columns[i].shape(0)) * itemSize(slot.type));
  const total = sizes.reduce((a, b) => a + b, 0);
  if (total <= MAX_SAMPLE_BYTES) return;
  const i = sizes.indexOf(Math.max(...sizes));
  throw new DataError(`${spec}: one sample of input "${slots[i].input.name}" is [${columns[i].shape(0).join(', ')}] ${slots[i].type}, ${(sizes[i] / 2 ** 30).toFixed(1)} GB, over the ${MAX_SAMPLE_BYTES / 2 ** 30} GB a sample may take; check the model's input shape and the data`);
}

/**
 * Past this magnitude a float32 value overflows to Inf as soon as the model squares it (a norm, a
 * variance), so it is as unusable as Inf itself.
 */
export const MAX_SAMPLE_MAGNITUDE = 1e18;

/** Positions of the samples (of `n`, each `size` values long) that hold NaN, ±Inf or values past ±MAX_SAMPLE_MAGNITUDE, with how many. */
function nonFinite(data: NpyArray, n: number): Array<{ sample: number; count: number }> {
  if (!(data instanceof Float32Array) && !(data instanceof Float64Array)) return [];
  const size = data.length / n;
  const bad: Array<{ sample: number; count: number }> = [];
  for (let k = 0; k < n; k++) {
    let count = 0;
    for (let i = k * size; i < (k + 1) * size; i++) if (!(Math.abs(data[i]) <= MAX_SAMPLE_MAGNITUDE)) count++;
    if (count) bad.push({ sample: k, count });
  }
  return bad;
}

/** 8 when every input has a symbolic first dim to stack samples on, else 1: such models take one sample per run. */
export function guessBatchSize(inputs: InputSpec[]): number {
  return inputs.every(stackable) ? 8 : 1;
}

function stackable(input: InputSpec): boolean {
  return input.shape.length > 0 && isDynamic(input.shape[0]);
}

class ColumnSource implements SampleSource {
  readonly feedShapes?: InputShapes;

  constructor(readonly description: string, readonly count: number, readonly warnings: string[],
    private readonly slots: Slot[], private readonly columns: Column[], private readonly options: SourceOptions) {
    if (this.sameShapeRun(0, count) < count) return;
    // A batch of stacked samples holds up to the batch size of them, a model that takes one sample per run exactly one.
    const stacked = slots.every((s) => stackable(s.input));
    this.feedShapes = Object.fromEntries(slots.map((slot, i) => [slot.input.name, slot.batchAxis ? [stacked ? null : 1, ...columns[i].shape(0)] : columns[i].shape(0)]));
  }

  async *batches(batchSize: number): AsyncGenerator<Feed> {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batch size must be a whole number ≥ 1, got ${batchSize}`);
    const step = this.slots.every((s) => stackable(s.input)) ? batchSize : 1;
    for (let start = 0; start < this.count;) {
      const n = this.sameShapeRun(start, Math.min(step, this.count - start));
      const feed = this.finite(start, n, await Promise.all(this.slots.map((_, i) => this.columns[i].read(start, n))));
      if (feed) yield feed;
      start += n;
    }
  }

  /**
   * The batch as a feed, with no NaN, ±Inf or overflow-sized value in it: observers and SQNR sums cannot use them, and a
   * single one would turn every range and figure into NaN. Refused with the sample and input
   * named, or, when asked, those samples dropped (undefined when none is left).
   */
  private finite(start: number, n: number, data: NpyArray[]): Feed | undefined {
    const bad = new Map<number, string>();
    this.slots.forEach((slot, i) => {
      for (const { sample, count } of nonFinite(data[i], slot.batchAxis ? n : 1)) {
        bad.set(sample, `sample ${start + sample + 1} of ${this.columns[i].origin} holds ${count} value${count > 1 ? 's' : ''} that ${count > 1 ? 'are' : 'is'} NaN, ±Inf or beyond ±${MAX_SAMPLE_MAGNITUDE.toExponential().replace('+', '')} for input "${slot.input.name}"`);
      }
    });
    const keep = [...Array(n).keys()].filter((k) => !bad.has(k));
    if (bad.size && !this.options.skipNonFinite) throw new DataError(`${[...bad.values()][0]}; fix or remove it, or drop such samples (--skip-nonfinite; in the studio, Drop non-finite samples)`);
    if (bad.size) this.options.onWarning?.(`dropped ${bad.size} sample${bad.size > 1 ? 's' : ''} with non-finite values: ${[...bad.values()].join('; ')}`);
    if (keep.length === 0) return undefined;
    const feed: Feed = {};
    this.slots.forEach((slot, i) => {
      const shape = this.columns[i].shape(start);
      const per = data[i].length / (slot.batchAxis ? n : 1);
      const kept = keep.length === n || !slot.batchAxis ? data[i] : keepSamples(data[i], slot.type, keep, per);
      feed[slot.input.name] = { type: slot.type, dims: slot.batchAxis ? [keep.length, ...shape] : [...shape], data: kept };
    });
    return feed;
  }

  /** How many of the `n` samples from `start` on have the shapes of the first: a batch is one tensor. */
  private sameShapeRun(start: number, n: number): number {
    for (let k = 1; k < n; k++) {
      if (this.columns.some((c) => !sameShape(c.shape(start), c.shape(start + k)))) return k;
    }
    return n;
  }
}

function slotOf(input: InputSpec): Slot {
  const type = TYPE_NAMES[input.type];
  if (!type) throw new DataError(`input "${input.name}" is ${input.type}; only float32, float64, int64, int32, int8, uint8 and bool inputs can be fed`);
  const batchAxis = input.shape.length > 0 && (isDynamic(input.shape[0]) || input.shape[0] === 1);
  return { input, type, batchAxis, sample: batchAxis ? input.shape.slice(1) : [...input.shape] };
}

/** Symbolic dims, and the -1 some exporters write, take any size. */
function isDynamic(d: Dim): boolean {
  return typeof d === 'string' || d < 0;
}

/** Symbolic dims show their name when it reads as one ("batch"); exporters' generated names and unnamed dims show as "?". */
function formatShape(shape: readonly Dim[]): string {
  return `[${shape.map((d) => (typeof d === 'string' && /^[A-Za-z_]\w*$/.test(d) ? d : isDynamic(d) ? '?' : d)).join(', ')}]`;
}

function fits(expected: readonly Dim[], found: readonly number[]): boolean {
  return expected.length === found.length && expected.every((d, i) => isDynamic(d) || d === found[i]);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Exact, widening, or any number into a float input: integer data there is usually pixels for a
 * model that normalises them itself. Floats never go into integer inputs: that would truncate.
 */
function canFeed(from: NpyDtype, to: ElementType): boolean {
  if (from === to) return true;
  if (to === 'float32' || to === 'float64') return from !== 'bool';
  if (to === 'int64') return from === 'int32' || from === 'int8' || from === 'uint8';
  return to === 'int32' && (from === 'int8' || from === 'uint8');
}

function convert(data: NpyArray, from: ElementType, to: ElementType): NpyArray {
  return from === to ? data : copyInto(allocate(to, data.length), 0, data);
}

/** The samples `keep` of `data`, each `per` values of the input's element type. */
function keepSamples(data: NpyArray, type: ElementType, keep: number[], per: number): NpyArray {
  const out = allocate(type, keep.length * per);
  keep.forEach((k, j) => copyInto(out, j * per, data.subarray(k * per, (k + 1) * per) as NpyArray));
  return out;
}

/** Copies with conversion; typed arrays convert between number kinds themselves, not to or from bigint. */
function copyInto(target: NpyArray, offset: number, source: NpyArray): NpyArray {
  if (target instanceof BigInt64Array) {
    if (source instanceof BigInt64Array) target.set(source, offset);
    else for (let i = 0; i < source.length; i++) target[offset + i] = BigInt(source[i]);
  } else if (source instanceof BigInt64Array) {
    for (let i = 0; i < source.length; i++) target[offset + i] = Number(source[i]);
  } else {
    target.set(source, offset);
  }
  return target;
}

function mismatch(file: string, slot: Slot, expected: string, header: NpyHeader, advice: string): DataError {
  return new DataError(`${file}: input "${slot.input.name}" expects ${expected} (${slot.type}) but the file holds ${formatShape(header.shape)} (${header.dtype})${advice}`);
}

function castAdvice(slot: Slot): string {
  const integer = slot.type !== 'float32' && slot.type !== 'float64';
  return `; ${integer ? 'integer inputs need integer data: ' : ''}save it with arr.astype('${slot.type}')`;
}

/** Integer data fed to a float input is cast, which is worth a word: it is pixels or ids, or a mistake. */
function castWarning(file: string, dtype: ElementType, slot: Slot, warnings: string[]): void {
  if (dtype !== slot.type) warnings.push(`${file}: ${dtype} data for ${slot.type} input "${slot.input.name}" is cast to ${slot.type}${dtype === 'int64' || dtype === 'int32' ? ' (integers beyond 2^24 lose precision)' : ''}`);
}

/** A .npy whose first axis counts samples. */
function stackColumn(file: string, slot: Slot, warnings: string[]): Column {
  const header = readNpyHeader(file);
  const expected: Dim[] = stackable(slot.input) ? slot.input.shape : ['?', ...slot.sample];
  const shapeFits = fits(expected, header.shape);
  if (!shapeFits || !canFeed(header.dtype, slot.type)) throw mismatch(file, slot, formatShape(expected), header, shapeFits ? castAdvice(slot) : '');
  castWarning(file, header.dtype, slot, warnings);
  const [count, ...shape] = header.shape;
  const size = elementCount(shape);
  return {
    count, origin: file, shape: () => shape,
    read: (start, n) => convert(readNpyRange(file, header, start * size, n * size), header.dtype, slot.type),
  };
}

/** A folder of .npy files, one sample each, in name order. Headers are all checked up front. */
function sampleFilesColumn(dir: string, files: string[], slot: Slot, warnings: string[]): Column {
  const samples = files.map((file) => {
    const header = readNpyHeader(file);
    const withoutLeadingOne = slot.batchAxis && header.shape[0] === 1 ? header.shape.slice(1) : undefined;
    const shape = fits(slot.sample, header.shape) ? header.shape : withoutLeadingOne && fits(slot.sample, withoutLeadingOne) ? withoutLeadingOne : undefined;
    if (!shape || !canFeed(header.dtype, slot.type)) {
      throw mismatch(file, slot, `one sample of ${formatShape(slot.sample)}`, header,
        shape ? castAdvice(slot) : '; each .npy file in a folder is one sample, unless the files are named after the inputs');
    }
    return { file, header, shape };
  });
  const cast = samples.find((x) => x.header.dtype !== slot.type);
  if (cast) castWarning(cast.file, cast.header.dtype, slot, warnings);
  return {
    count: samples.length, origin: dir, shape: (i) => samples[i].shape,
    read: (start, n) => {
      // The batch holds samples of one shape only, so every one has the first one's size.
      const size = elementCount(samples[start].shape);
      const out = allocate(slot.type, n * size);
      for (let k = 0; k < n; k++) {
        const { file, header } = samples[start + k];
        copyInto(out, k * size, readNpyRange(file, header, 0, size));
      }
      return out;
    },
  };
}

/** What image folders are read with. */
interface ImageOptions {
  preprocess: PreprocessSpec;
  maxMegapixels: number;
}

async function imageColumn(dir: string, files: string[], slot: Slot, options: ImageOptions, warnings: string[]): Promise<Column> {
  const g = await imageGeometry(dir, slot, options.preprocess, async () => ({ file: files[0], size: await imageSize(files[0], options.maxMegapixels) }), warnings);
  const channels = g.mean.length;
  const shape = g.layout === 'NCHW' ? [channels, g.height, g.width] : [g.height, g.width, channels];
  const size = elementCount(shape);
  return {
    count: files.length, origin: dir, shape: () => shape,
    detail: `"${slot.input.name}": images resized to ${g.height}x${g.width} (${g.resize}, ${g.interpolation}), ${g.channels} ${g.layout}, mean [${g.mean.join(', ')}], std [${g.std.join(', ')}]`,
    read: async (start, n) => {
      const out = slot.type === 'float64' ? new Float64Array(n * size) : new Float32Array(n * size);
      for (let k = 0; k < n; k++) preprocessImage(await decodeImage(files[start + k], options.maxMegapixels), g, out, k * size);
      return out;
    },
  };
}

/** Resolves the preprocessing options against the input's shape; `first` is read only when the image size is dynamic. */
async function imageGeometry(dir: string, slot: Slot, pre: PreprocessSpec, first: () => Promise<{ file: string; size: ImageSize }>, warnings: string[]): Promise<ImageGeometry> {
  const { name, shape } = slot.input;
  const what = `${dir}: input "${name}" ${formatShape(shape)} (${slot.type})`;
  if (!slot.batchAxis || shape.length !== 4 || (slot.type !== 'float32' && slot.type !== 'float64')) {
    throw new DataError(`${what} cannot take images: a folder of images feeds a float input of rank 4 (NCHW or NHWC) with 1 or 3 channels; give .npy data instead`);
  }
  const holdsChannels = (d: Dim): boolean => d === 1 || d === 3;
  const layout = pre.layout ?? (holdsChannels(shape[1]) ? 'NCHW' : holdsChannels(shape[3]) ? 'NHWC' : undefined);
  if (!layout) throw new DataError(`${what}: cannot tell where the channels are (no dim of 1 or 3 at position 1 or 3); pass the layout (NCHW or NHWC)`);
  const [channelDim, heightDim, widthDim] = layout === 'NCHW' ? [shape[1], shape[2], shape[3]] : [shape[3], shape[1], shape[2]];
  const channels = pre.channels ?? (channelDim === 1 ? 'GRAY' : 'RGB');
  const count = channels === 'GRAY' ? 1 : 3;
  if (!isDynamic(channelDim) && channelDim !== count) {
    throw new DataError(`${what}: ${channels} images have ${count} channel${count > 1 ? 's' : ''} but the input has ${channelDim} in ${layout} layout; ${holdsChannels(channelDim) ? `use ${channelDim === 1 ? 'GRAY' : 'RGB or BGR'} channels` : 'check the layout'}`);
  }
  const fixed = (d: Dim): number | undefined => (isDynamic(d) ? undefined : Number(d));
  let height = pre.size?.[0] ?? fixed(heightDim);
  let width = pre.size?.[1] ?? fixed(widthDim);
  if ((fixed(heightDim) ?? height) !== height || (fixed(widthDim) ?? width) !== width) {
    throw new DataError(`${what} takes ${isDynamic(heightDim) ? 'any height' : heightDim} by ${isDynamic(widthDim) ? 'any width' : widthDim} images but the size asked for is ${height}x${width}; change or drop the size`);
  }
  if (height === undefined || width === undefined) {
    const { file, size } = await first();
    const missing = height === undefined && width === undefined ? 'height and width' : height === undefined ? 'height' : 'width';
    [height, width] = sizeAfter(size, height, width);
    warnings.push(`input "${name}" has a dynamic ${missing}: every image is resized to ${height}x${width}, after ${file}; pass a size (HxW) to choose another`);
  }
  return {
    height, width, layout, channels, resize: pre.resize ?? 'stretch', interpolation: pre.interpolation ?? 'bilinear',
    mean: (pre.mean ?? [0, 0, 0]).slice(0, count), std: (pre.std ?? [1, 1, 1]).slice(0, count),
  };
}

/** A dynamic side keeps the image's aspect ratio against the given side; with neither given, the image keeps its size. */
type ImageSize = { width: number; height: number };

function sizeAfter(image: ImageSize, height: number | undefined, width: number | undefined): [number, number] {
  if (height !== undefined) return [height, Math.max(1, Math.round((image.width * height) / image.height))];
  if (width !== undefined) return [Math.max(1, Math.round((image.height * width) / image.width)), width];
  return [image.height, image.width];
}

function randomColumn(spec: string, slot: Slot, index: number, count: number, seed: number): Column {
  const shape = slot.sample.map((d, i) => {
    if (!isDynamic(d)) return Number(d);
    // Inside a sample, only a dim that names itself a batch (an RNN state's [2, batch, 64]) has an obvious size.
    if (typeof d === 'string' && /batch|^[nb]$/i.test(d)) return 1;
    throw new DataError(`${spec}: input "${slot.input.name}" [${slot.input.shape.join(', ')}] has a dynamic dim ${slot.batchAxis ? i + 1 : i} (${d}) that random data cannot size; give real samples (a .npy file, a folder of images or .npy files, or a manifest)`);
  });
  const size = elementCount(shape);
  const integer = slot.type !== 'float32' && slot.type !== 'float64';
  const levels = slot.type === 'bool' ? 2 : 10;
  return {
    count, origin: spec, shape: () => shape,
    read: (start, n) => {
      const values = new Float64Array(n * size);
      for (let k = 0; k < n; k++) {
        // One generator per input and sample: a sample is the same whatever the batch size.
        const next = mulberry32(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35) ^ Math.imul(start + k + 1, 0x27d4eb2f));
        for (let i = 0; i < size; i++) values[k * size + i] = integer ? Math.floor(next() * levels) : next();
      }
      return convert(values, 'float64', slot.type);
    },
  };
}

/** Uniform in [0, 1) with 24 bits, so float32 holds every value exactly and never rounds up to 1. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 8) / 16777216;
  };
}

async function openPath(spec: string, slots: Slot[], pre: ImageOptions, warnings: string[]): Promise<Column[]> {
  const stat = fs.statSync(spec, { throwIfNoEntry: false });
  if (!stat) throw new DataError(`${spec}: no such file or folder; give ${SOURCE_KINDS}`);
  if (stat.isDirectory()) return openFolder(spec, slots, pre, warnings);
  const ext = path.extname(spec).toLowerCase();
  if (ext === '.json') return openManifest(spec, slots, pre, warnings);
  if (ext !== '.npy') throw new DataError(`${spec}: not a data source; give ${SOURCE_KINDS}`);
  if (slots.length > 1) {
    throw new DataError(`${spec}: one .npy file feeds a single input, but the model has ${slots.length} (${quoted(slots.map((s) => s.input.name))}); use a folder with one <input>.npy per input, or a JSON manifest`);
  }
  return [stackColumn(spec, slots[0], warnings)];
}

async function openFolder(dir: string, slots: Slot[], pre: ImageOptions, warnings: string[]): Promise<Column[]> {
  const stacks = new Map(npyFiles(dir).map((file) => [path.basename(file).slice(0, -4), file]));
  if (slots.some((s) => stacks.has(s.input.name))) {
    const missing = slots.filter((s) => !stacks.has(s.input.name)).map((s) => `${s.input.name}.npy`);
    if (missing.length) throw new DataError(`${dir}: has no ${missing.join(', ')}; a folder of per-input stacks needs one <input>.npy for every input`);
    const columns = slots.map((s) => stackColumn(stacks.get(s.input.name)!, s, warnings));
    checkCounts(dir, slots, columns);
    return columns;
  }
  if (slots.length > 1) {
    throw new DataError(`${dir}: the model has ${slots.length} inputs (${quoted(slots.map((s) => s.input.name))}); give a folder with one <input>.npy stack per input, or a JSON manifest`);
  }
  return [await inputFolder(dir, slots[0], pre, warnings)];
}

/** A folder for one input: .npy files of one sample each if it has any, else images. */
async function inputFolder(dir: string, slot: Slot, pre: ImageOptions, warnings: string[]): Promise<Column> {
  const npys = npyFiles(dir);
  if (npys.length) return sampleFilesColumn(dir, npys, slot, warnings);
  const images = listImages(dir);
  if (images.length === 0) throw new DataError(`${dir}: no .npy files or images (${IMAGE_EXTENSIONS.join(', ')}) in it`);
  return imageColumn(dir, images, slot, pre, warnings);
}

function npyFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.toLowerCase().endsWith('.npy') && !n.startsWith('.')).sort().map((n) => path.join(dir, n));
}

async function openManifest(file: string, slots: Slot[], pre: ImageOptions, warnings: string[]): Promise<Column[]> {
  let doc: unknown;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new DataError(`${file}: not a readable JSON manifest (${(err as Error).message})`);
  }
  if (!isRecord(doc) || !isRecord(doc.inputs) || !Object.values(doc.inputs).every((v) => typeof v === 'string')) {
    throw new DataError(`${file}: a manifest needs {"inputs": {"<input name>": "<.npy file or folder, relative to the manifest>", ...}}`);
  }
  const sources = doc.inputs as Record<string, string>;
  const names = slots.map((s) => s.input.name);
  const unknown = Object.keys(sources).filter((k) => !names.includes(k));
  if (unknown.length) throw new DataError(`${file}: the model has no input ${quoted(unknown)}; its inputs are ${quoted(names)}`);
  const missing = names.filter((n) => !(n in sources));
  if (missing.length) throw new DataError(`${file}: no source for input ${quoted(missing)}; add ${missing.length > 1 ? 'them' : 'it'} under "inputs"`);
  // Options given with the command override the manifest's, field by field.
  const merged = { ...pre, preprocess: { ...checkPreprocess(doc.preprocess ?? {}, `${file}: "preprocess"`), ...pre.preprocess } };
  const dir = path.dirname(file);
  const columns: Column[] = [];
  for (const slot of slots) columns.push(await manifestColumn(file, dir, sources[slot.input.name], slot, merged, warnings));
  checkCounts(file, slots, columns);
  return columns;
}

async function manifestColumn(file: string, dir: string, entry: string, slot: Slot, pre: ImageOptions, warnings: string[]): Promise<Column> {
  const source = path.isAbsolute(entry) ? entry : path.join(dir, entry);
  const stat = fs.statSync(source, { throwIfNoEntry: false });
  if (stat?.isDirectory()) return inputFolder(source, slot, pre, warnings);
  if (stat && path.extname(source).toLowerCase() === '.npy') return stackColumn(source, slot, warnings);
  throw new DataError(`${file}: the source of input "${slot.input.name}", ${source}, ${stat ? 'is neither a .npy file nor a folder' : 'does not exist'}`);
}

function checkCounts(where: string, slots: Slot[], columns: Column[]): void {
  const i = columns.findIndex((c) => c.count !== columns[0].count);
  if (i > 0) {
    throw new DataError(`${where}: input "${slots[0].input.name}" has ${columns[0].count} samples (${columns[0].origin}) but input "${slots[i].input.name}" has ${columns[i].count} (${columns[i].origin}); every input needs the same number of samples`);
  }
}

/** The options that are set, checked: they may come from a hand-written manifest. */
function checkPreprocess(value: unknown, where: string): PreprocessSpec {
  const problem = preprocessProblem(value, where);
  if (problem) throw new DataError(problem);
  return Object.fromEntries(Object.entries(value as object).filter(([, v]) => v !== undefined)) as PreprocessSpec;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function quoted(names: string[]): string {
  return names.map((n) => `"${n}"`).join(', ');
}
