// Calibration: run the model with every tensor that needs a range as an extra output, and stream
// the values to observers (in worker threads where they build histograms). Memory holds at most
// two batches of activations.
import { quantTypeBits } from '../../shared/recipe';
import { elementCount, feedSamples } from '../base/feed';
import { type Control, throwIfAborted } from '../base/progress';
import { StatsPool } from '../stats/pool';
import { NonFiniteValues, type Observation, type ObservedRange } from '../stats/protocol';
import type { onnx } from '../onnx/proto';
import type { ActivationSpec } from '../plan/plan';
import * as ort from 'onnxruntime-node';
import { floatData, inferredDims, run, shapedSession, toOrtFeeds } from '../onnx/session';
import { cellValues, rowCount, sampleShape, type KnownDims } from '../onnx/edit';
import { parseMethod } from '../stats/observers';
import { derivedRanges } from './derived';
import { canSample, PART_BYTES, PROBE_STEP, sampleLength, samplePhase, sampleStride, tapModel, type Tap, type TappedModel } from './taps';
import { DataError, type SampleSource } from '../data/readers';
import type { Feed } from '../base/feed';

export interface RunOptions extends Control {
  batchSize: number;
  /** Activations a batch may hold in memory before the batch is made smaller. */
  memoryBudget?: number;
  bins?: number;
  /** Values per tensor and sample a histogram sees at most (0: all of them). */
  histogramSample?: number;
  /** Bytes a part of the joined output holds at most in a batch (taps.ts PART_BYTES), where its taps allow. */
  partBytes?: number;
  /** Worker threads that make the histograms (0: this thread); by default as many as cores where the values to bin pay for starting them (IN_THREAD_VALUES), else none. */
  workers?: number;
}

export interface CalibrationOptions extends RunOptions {
  /** Tensors whose shape to measure too, for runs after calibration (those that borrow another's range). */
  sized?: readonly string[];
}

export interface CalibrationResult {
  ranges: Map<string, ObservedRange>;
  samples: number;
  batchSize: number;
  seconds: number;
  /** Shapes of the observed and the sized tensors for one sample, for the graph view and later runs. */
  shapes: Map<string, number[]>;
  /** Histogram tensors seen through a strided sample: the step. */
  strides: Map<string, number>;
  /** Min/max tensors whose range followed from the extremes of their input (a Relu or a Clip of it), by name: the input. */
  derived: Map<string, string>;
}

const DEFAULT_BUDGET = 512 * 2 ** 20;

/**
 * Tensors of a batch a tapped run holds at a time, counted in its largest tapped tensor: a few live
 * ones (a residual branch, the tensor being made and its inputs), since each tap reduces and frees
 * its tensor as soon as it is made (onnx/edit.ts withJoinedAdditions). On the PaddleOCR recognizer the
 * side-by-side comparison at batch 16 holds 170 MB, 10 of its largest tensors for both halves.
 */
const LIVE_TENSORS = 8;

/** Bytes a tapped run of the model holds per sample, from the tapped tensors' shapes on one sample. */
export function liveBytesPerSample(shapes: ReadonlyMap<string, number[]>): number {
  let largest = 0;
  for (const shape of shapes.values()) largest = Math.max(largest, elementCount(shape) * 4);
  return LIVE_TENSORS * largest;
}

/** The largest batch, up to the requested one, whose activations stay under the budget. */
export function fitBatch(requested: number, perSample: number, budget = DEFAULT_BUDGET): number {
  if (perSample <= 0) return requested;
  return Math.max(1, Math.min(requested, Math.floor(budget / perSample)));
}

/**
 * Values per tensor and sample that a histogram sees at most; beyond that it sees a strided
 * sample. 8192 per sample still gives each histogram half a million values over 64 samples, while
 * the PaddleOCR recognizer's activations would be 50 million per sample.
 */
export const DEFAULT_HISTOGRAM_SAMPLE = 8192;

function needsHistogram(method: string): boolean {
  const kind = parseMethod(method).kind;
  return kind !== 'minmax' && kind !== 'moving-average';
}

/**
 * Histogram methods whose range comes from the histogram alone, so that a sampled tensor needs no
 * exact extremes: its sample's bound the histogram (percentile 100 is the extremes themselves).
 */
function rangeFromSample(method: string): boolean {
  const m = parseMethod(method);
  return m.kind === 'entropy' || m.kind === 'mse' || (m.kind === 'percentile' && m.percentile < 100);
}

/**
 * The first position of every sampled tap and the step of those whose step is fed, as the feeds of
 * a tapped run: one tensor an input, whichever taps share it.
 */
function sampleFeeds(taps: readonly Tap[], sample: (tap: Tap) => { start: number; step: number }): Record<string, ort.Tensor> {
  const scalar = (v: number) => new ort.Tensor('int64', BigInt64Array.of(BigInt(v)), [1]);
  const feeds: Record<string, ort.Tensor> = {};
  for (const t of taps) {
    if (!t.start || t.start in feeds) continue;
    const { start, step } = sample(t);
    feeds[t.start] = scalar(start);
    if (t.steps) feeds[t.steps] = scalar(step);
  }
  return feeds;
}

/** The shape of each of `tensors` for one sample where shape inference knows it. */
function knownShapes(tensors: readonly string[], known: KnownDims): Map<string, number[]> {
  return new Map(tensors.flatMap((t) => {
    const shape = sampleShape(known.get(t));
    return shape ? [[t, shape] as const] : [];
  }));
}

/** Into `shapes`, the shape for one sample of each tensor the tapped model measures (those shape inference does not know): the first sample run once. */
async function measureShapes(session: ort.InferenceSession, tapped: TappedModel, source: SampleSource, shapes: Map<string, number[]>): Promise<void> {
  for await (const feed of source.batches(1)) {
    const out = await run(session, { ...toOrtFeeds(feed), ...sampleFeeds(tapped.taps, () => ({ start: 0, step: PROBE_STEP })) }, 'calibration model');
    for (const s of tapped.sized) shapes.set(s.tensor, Array.from((out[s.shape] as ort.Tensor).data as BigInt64Array, Number));
    return;
  }
}

/** The shape of each tensor for one sample: from shape inference (`known`), else measured by a run of its own. */
export async function probeShapes(model: onnx.ModelProto, tensors: string[], known: KnownDims, source: SampleSource): Promise<Map<string, number[]>> {
  const shapes = knownShapes(tensors, known);
  const probe = tapModel(model, [], known, tensors);
  if (!probe.sized.length) return shapes;
  const session = await shapedSession(probe.model, source.feedShapes, 'model prepared for calibration', TAP_OPTIONS);
  try {
    await measureShapes(session, probe, source, shapes);
    return shapes;
  } finally {
    await session.release();
  }
}

/**
 * Values a calibration's histograms bin, below which they are made in this thread: workers gain
 * only by binning while ONNX Runtime runs, and starting one costs 50–70 ms of CPU. Measured on a
 * 2-core AMD EPYC, percentile, batch 8, in this thread against two workers, alternating: the
 * sample model (11 M values) 0.55–0.59 s against 0.63–0.66 s; the PaddleOCR recognizer on 4 lines
 * (11 M) 0.81 against 0.92 s, 8 lines (23 M) 1.23–1.39 against 1.25–1.70 s, 16 lines (46 M) 1.72 s
 * both, 32 lines (92 M) 2.27–2.46 against 2.14 s, 64 lines 3.57 against 2.92–2.96 s.
 */
const IN_THREAD_VALUES = 32e6;

/** Values each sample hands to histograms (`sampling`: strided samples, else whole tensors); a shape not yet known counts as unbounded. */
function binnedValues(requests: ReadonlyArray<{ sample: boolean; stride?: { size: number; step: number } }>, sampling: boolean): number {
  let values = 0;
  for (const r of requests) {
    if (!r.sample) continue;
    values += r.stride ? (sampling ? sampleLength(r.stride.size, 0, r.stride.step) : r.stride.size) : Infinity;
  }
  return values;
}

// ONNX Runtime keeps a tapped tensor alive until its reductions ran, and its memory-pattern
// planner then reserves room for all of them at once: without it the arena stays near the real
// peak.
export const TAP_OPTIONS = { enableMemPattern: false };

/**
 * Between kernels ONNX Runtime's threads spin, waiting for the next one. The stats workers that bin
 * a batch's histograms while the next batch runs share those cores and lose their turns to the
 * spinning: on 2 cores, recognizer, 64 lines, entropy took 2.94 s spinning and 2.46–2.57 s not.
 * Min/max has no worker, and there spinning pays: 1.30 s against 1.44–1.79 s.
 */
function calibrationSessionOptions(workers: number): ort.InferenceSession.SessionOptions {
  return workers ? { ...TAP_OPTIONS, extra: { session: { intra_op: { allow_spinning: '0' } } } } : TAP_OPTIONS;
}

export async function calibrate(model: onnx.ModelProto, tensors: ActivationSpec[], source: SampleSource, options: CalibrationOptions): Promise<CalibrationResult> {
  const start = performance.now();
  let pool: StatsPool | undefined;
  let session: ort.InferenceSession | undefined;
  try {
    const derived = derivedRanges(model, tensors);
    const untapped = new Set(derived.map((d) => d.tensor));
    const sources = new Set(derived.map((d) => d.from));
    const measured = tensors.filter((t) => !untapped.has(t.tensor));
    const observed = new Set(tensors.map((t) => t.tensor));
    const sizedOnly = (options.sized ?? []).filter((t) => !observed.has(t));
    const shaped = [...measured.map((t) => t.tensor), ...sizedOnly];
    const known = await inferredDims(model, source.feedShapes, shaped);
    const budget = options.histogramSample ?? DEFAULT_HISTOGRAM_SAMPLE;
    const stepFor = (size: number) => (budget > 0 ? sampleStride(size / budget) : 1);
    const shapes = knownShapes(shaped, known);
    const requests = measured.map((t) => {
      const sample = needsHistogram(t.method);
      const shape = shapes.get(t.tensor);
      const sampleOnly = sample && rangeFromSample(t.method) && !sources.has(t.tensor);
      return { tensor: t.tensor, sample, sampleOnly, stride: sample && shape ? { size: elementCount(shape), step: stepFor(elementCount(shape)) } : undefined };
    });
    pool = new StatsPool(options.workers ?? (binnedValues(requests, canSample(model)) * source.count > IN_THREAD_VALUES ? undefined : 0));
    const split = { values: Math.floor((options.partBytes ?? PART_BYTES) / 4 / options.batchSize), parts: pool.size, sampleBudget: budget };
    const tapped = tapModel(model, requests, known, sizedOnly, split);
    const { taps } = tapped;
    const partOfCell = tapped.cells.map((_, c) => tapped.parts.filter((start) => start <= c).length);
    // The samples of a part go to one worker, so that the part's buffer moves there whole.
    const together = tapped.joined.map(() => [] as string[]);
    for (const t of taps) if (t.sample !== undefined) together[partOfCell[t.sample]].push(t.tensor);
    pool.initObservers(tensors.map((t) => ({
      name: t.tensor, method: t.method, symmetric: t.symmetric, bins: options.bins,
      levels: 2 ** quantTypeBits(t.type),
    })), together);
    const extremesOf = new Map<string, { min: number; max: number }>();
    session = await shapedSession(tapped.model, source.feedShapes, 'model prepared for calibration', calibrationSessionOptions(pool.size));
    // Each tensor's size cuts the batch so that one batch of activations fits the memory budget,
    // and gives each histogram tensor the step that keeps its sample near the sample budget. Shape
    // inference gives most sizes, whose steps are constants of the model; the rest come from the
    // first sample, run once with samples of one element: their step is an input of the same
    // session, so this probe costs one run, not a second session.
    if (tapped.sized.length) await measureShapes(session, tapped, source, shapes);
    // Relu and Clip keep their input's shape.
    for (const d of derived) shapes.set(d.tensor, shapes.get(d.from)!);
    const batchSize = fitBatch(options.batchSize, liveBytesPerSample(new Map(measured.map((t) => [t.tensor, shapes.get(t.tensor)!]))), options.memoryBudget);
    const strides = new Map(taps.flatMap((t) => (t.sample !== undefined || t.values ? [[t.tensor, t.start ? stepFor(elementCount(shapes.get(t.tensor)!)) : 1] as const] : [])));
    const sizes = new Map(taps.map((t) => [t.tensor, elementCount(shapes.get(t.tensor)!)]));
    let done = 0;
    let queued: Promise<void> = Promise.resolve();
    let queuedBatch = { feed: {} as Feed, done: 0, n: 0 };
    // A sample alone is checked for NaN and infinities where it is binned: in its worker, which
    // says so at the batch's flush, or in this thread as it is handed over.
    const inData = (err: unknown, batch: typeof queuedBatch) => (err instanceof NonFiniteValues ? overflow(err.tensor, batch.feed, source, batch.done, batch.n) : err);
    const settle = () => queued.catch((err: unknown) => Promise.reject(inData(err, queuedBatch)));
    for await (const feed of source.batches(batchSize)) {
      throwIfAborted(options.signal);
      const positions = new Map(taps.filter((t) => t.start).map((t) => {
        const step = strides.get(t.tensor)!;
        return [t, { start: samplePhase(done, sizes.get(t.tensor)!, step), step }] as const;
      }));
      const sampling = sampleFeeds(taps, (t) => positions.get(t)!);
      const out = await run(session, { ...toOrtFeeds(feed), ...sampling }, 'calibration model');
      // Workers digest a batch while ONNX Runtime computes the next one; waiting for the previous
      // flush keeps at most two batches in memory. Observers in this thread are done with it already.
      await settle();
      const n = feedSamples(feed);
      const parts = tapped.joined.length ? tapped.joined.map((name) => floatData(out[name] as ort.Tensor, name)) : [new Float32Array(0)];
      const cellOf = cellValues(parts, tapped.cells.map((c) => {
        if ('lead' in c) return rowCount(c.lead, n);
        const { start, step } = positions.get(c.sampleOf)!;
        return sampleLength(rowCount(c.dims, n), start, step);
      }), tapped.parts);
      // Every extreme is read before the parts' buffers move to the workers.
      const samplesOf = parts.map(() => [] as Observation[]);
      for (const tap of taps) {
        if (!tap.extremes) {
          samplesOf[partOfCell[tap.sample!]].push({ name: tap.tensor, data: cellOf(tap.sample!), finite: true });
          continue;
        }
        const min = cellOf(tap.extremes.min).reduce((a, b) => Math.min(a, b), Infinity);
        const max = cellOf(tap.extremes.max).reduce((a, b) => Math.max(a, b), -Infinity);
        if (!Number.isFinite(min) || !Number.isFinite(max)) throw overflow(tap.tensor, feed, source, done, n);
        extremesOf.set(tap.tensor, { min, max });
        // The exact extremes bound the histogram so that it spans the true range.
        if (tap.sample !== undefined) samplesOf[partOfCell[tap.sample]].push({ name: tap.tensor, data: cellOf(tap.sample), bounds: { min, max } });
        else if (tap.values) {
          const data = floatData(out[tap.values] as ort.Tensor, tap.tensor);
          handOver(pool, data, [{ name: tap.tensor, data, bounds: { min, max } }]);
        } else pool.observe(tap.tensor, Float32Array.of(min, max));
      }
      try {
        for (const [k, part] of parts.entries()) if (samplesOf[k].length) handOver(pool, part, samplesOf[k]);
      } catch (err) {
        throw inData(err, { feed, done, n });
      }
      for (const d of derived) {
        const { min, max } = extremesOf.get(d.from)!;
        pool.observe(d.tensor, Float32Array.of(d.map(min), d.map(max)));
      }
      queued = pool.flush();
      queuedBatch = { feed, done, n };
      // Awaited after the next run; a worker failing meanwhile must not go unhandled until then.
      queued.catch(() => undefined);
      done += n;
      const seconds = (performance.now() - start) / 1000;
      options.onProgress?.({ stage: 'calibrate', done, total: source.count, rate: done / seconds });
    }
    await settle();
    throwIfAborted(options.signal);
    if (done === 0) throw new Error(`no calibration samples in ${source.description}`);
    // In the order asked for, whichever thread or worker observed each tensor: saved ranges files compare byte for byte.
    const results = await pool.results();
    const ranges = new Map(tensors.flatMap((t) => (results.has(t.tensor) ? [[t.tensor, results.get(t.tensor)!] as const] : [])));
    return { ranges, samples: done, batchSize, seconds: (performance.now() - start) / 1000, shapes, strides, derived: new Map(derived.map((d) => [d.tensor, d.from])) };
  } finally {
    await pool?.close();
    await session?.release();
  }
}

/**
 * Hands `items`, views of `data`, to the pool: `data`'s buffer moves to a worker where it holds
 * nothing else (an output of ONNX Runtime's run, which nothing reads after), else they are copied.
 */
function handOver(pool: StatsPool, data: Float32Array, items: Observation[]): void {
  const buffer = data.buffer;
  if (buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === buffer.byteLength) pool.observeAll(buffer, items);
  else for (const o of items) pool.observe(o.name, o.data, o.bounds);
}

/**
 * A tensor of the model went NaN or infinite on finite data: the data's scale overflows float32
 * inside the model (a value of 3e38 doubled), and every range computed from it would be nonsense.
 */
/** The model itself turned the data non-finite: the data is out of the model's range, not the quantizer's problem. */
export function overflow(tensor: string, feed: Feed, source: SampleSource, done: number, n: number): DataError {
  let largest = 0;
  for (const t of Object.values(feed)) {
    if (t.data instanceof Float32Array || t.data instanceof Float64Array) for (const v of t.data) largest = Math.max(largest, Math.abs(v));
  }
  const samples = n > 1 ? `samples ${done + 1}–${done + n}` : `sample ${done + 1}`;
  return new DataError(`${source.description}: tensor "${tensor}" of the model becomes NaN or infinite (or too large for float32 to square) on ${samples}, whose inputs reach ${largest.toPrecision(3)}: the model overflows on this data; check its scale and normalisation`);
}
