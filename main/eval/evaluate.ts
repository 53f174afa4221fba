// Evaluation: float model against quantized model on the same samples, in named numerics. Per-layer
// SQNR compares each planned tensor with its dequantized counterpart (matched by the plan, not by
// name guessing), reduced inside ONNX Runtime. In reference numerics the outputs come from the same
// side-by-side run, so the last layer's row and the output figure agree; in ort-cpu numerics they
// come from the exported model alone, fused integer kernels included. A deployed figure (the
// exported model in a runtime of this machine) can be measured in the same pass. Only running sums
// are kept.
import * as ort from 'onnxruntime-node';
import { fitBatch, liveBytesPerSample, overflow, probeShapes, TAP_OPTIONS, type RunOptions } from '../calib/calibrate';
import { idsOf, type ClassIds } from '../data/labels';
import type { SampleSource } from '../data/readers';
import type { MainNumerics, Numerics } from '../../shared/numerics';
import type { onnx } from '../onnx/proto';

import { comparisonModel, localErrorModel, SUMS_OUTPUT, type TensorPair } from './compare-model';
import { CustomScore, perSample, type BatchOutputs, type CustomScoring } from './custom-metric';
import { MetricAccumulator, type MetricValues } from './metrics';
import { numericsOptions } from '../onnx/numerics';
import { floatData, inferredDims, run, shapedSession, toOrtFeeds } from '../onnx/session';
import { feedSamples, type InputShapes } from '../base/feed';
import { cellValues, rowCount, type KnownDims } from '../onnx/edit';
import { throwIfAborted } from '../base/progress';
import { addComparison, emptyComparison, sqnrDb, type CompareStats } from '../stats/sqnr';
import type { Range } from '../stats/range';

export type { TensorPair } from './compare-model';

/** A compared tensor's sums over the evaluation samples. */
export interface LayerStats {
  /** Σx² of the float tensor. */
  signal: number;
  /** Σ(x − y)² against its dequantized counterpart y. */
  noise: number;
  /** Cumulative: the quantized model's tensor against the float one, errors of earlier layers included. */
  sqnr: number;
  /** Σ(x − QDQ(x))² with the float tensor x: the layer's own quantization error (activations fed through Q/DQ). */
  localNoise?: number;
  /** Local SQNR: only this tensor quantized, with exact float inputs. */
  localSqnr?: number;
  /** The float tensor's range on the evaluation data, for pairs that asked for it. */
  range?: Range;
}

/** An output compared in full: its SQNR and the sums behind it. */
export interface OutputStats extends CompareStats {
  sqnr: number;
}

export interface EvaluationOptions extends RunOptions {
  /** Class ids of the samples, in order, for accuracy metrics. */
  labels?: ClassIds;
  /** The numerics of the per-layer and output figures. */
  numerics: MainNumerics;
  /** Also measure the outputs of the quantized model as this runtime runs it (the deployed figures). */
  deployed?: Numerics;
  /**
   * Also the local SQNR of every layer: the analysis's figure (the tensor through its own Q/DQ on
   * exact float inputs), which a run does not show and which costs a third of the comparison.
   */
  local?: boolean;
  /** Each float tensor's shape for one sample, as calibration measured it on data of these input shapes: spares the run that measures them. */
  shapes?: ReadonlyMap<string, number[]>;
  /** The user's metric module and the labels it is given: `custom` and `float-custom` in the metrics. */
  custom?: CustomScoring;
}

/** Output figures of one run of the quantized model in named numerics. */
export interface OutputFigures {
  numerics: Numerics;
  /** Task metrics of the first float output: agreement with the float model, cosine, accuracy with labels. */
  metrics: MetricValues;
  outputs: Array<{ name: string } & OutputStats>;
}

export interface EvaluationResult extends OutputFigures {
  numerics: MainNumerics;
  layers: Map<string, LayerStats>;
  deployed?: OutputFigures;
  samples: number;
  seconds: number;
}

function withSqnr(s: CompareStats): OutputStats {
  return { ...s, sqnr: sqnrDb(s.signal, s.noise) };
}

/** The float outputs against one source of quantized outputs. */
class OutputComparison {
  private readonly metric = new MetricAccumulator();
  private readonly sums = new Map<string, CompareStats>();
  private readonly custom?: CustomScore;

  /** `floatScore`: where the float outputs go to be scored as the float model's own (one comparison fills it for all). */
  constructor(readonly numerics: Numerics, custom?: EvaluationOptions['custom'], private readonly floatScore?: CustomScore) {
    if (custom) this.custom = new CustomScore(custom);
  }

  /** Adds a batch; returns the first float output that holds a value that is not finite. */
  add(names: readonly string[], ref: ort.InferenceSession.OnnxValueMapType, quant: (name: string) => ort.Tensor | undefined, labels?: ArrayLike<number>): string | undefined {
    let first = true;
    let broken: string | undefined;
    const floats: BatchOutputs = {};
    const quants: BatchOutputs = {};
    for (const name of names) {
      const r = ref[name] as ort.Tensor | undefined;
      const q = quant(name);
      if (r?.type !== 'float32') continue;
      if (q?.type !== 'float32') {
        broken ??= finiteOutput(r) ? undefined : name;
        continue;
      }
      const [x, y] = [floatData(r, name), floatData(q, name)];
      const sums = this.sums.get(name) ?? emptyComparison();
      this.sums.set(name, sums);
      if (first) this.metric.add(x, y, r.dims, labels, undefined, sums);
      else addComparison(sums, x, y);
      first = false;
      // Σx² is finite exactly when every value is: a NaN or an infinity carries into it.
      broken ??= Number.isFinite(sums.signal) ? undefined : name;
      floats[name] = { dims: r.dims, data: x };
      quants[name] = { dims: q.dims, data: y };
    }
    if (this.custom) {
      const n = Object.values(floats)[0]?.dims[0] ?? 0;
      const f = perSample(floats, n);
      this.custom.add(f, perSample(quants, n));
      this.floatScore?.add(f, f);
    }
    return broken;
  }

  /** `floatCustom`: the float model's own score by the metric module, the same for every comparison. */
  async result(names: readonly string[], floatCustom: number | undefined, signal?: AbortSignal): Promise<OutputFigures> {
    const metrics = this.metric.result();
    if (this.custom) {
      metrics.custom = await this.custom.score(signal);
      if (floatCustom !== undefined) metrics['float-custom'] = floatCustom;
    }
    return {
      numerics: this.numerics,
      metrics,
      outputs: names.flatMap((name) => {
        const sums = this.sums.get(name);
        return sums ? [{ name, ...withSqnr(sums) }] : [];
      }),
    };
  }
}

function finiteOutput(t: ort.Tensor | undefined): boolean {
  if (t?.type !== 'float32') return true;
  // v − v is +0 for every finite v and NaN for ±inf and NaN, so the sum says it without a branch:
  // on the recognizer's 4.2 million outputs a batch, 7 ms against 25–40 ms for a test per value.
  const data = t.data as Float32Array;
  let zero = 0;
  for (let i = 0; i < data.length; i++) zero += data[i] - data[i];
  return zero === 0;
}

/** Bytes the side-by-side run holds per sample: both halves' live tensors, from the compared tensors' sizes on one sample. */
async function comparisonBytesPerSample(floatModel: onnx.ModelProto, pairs: readonly TensorPair[], source: SampleSource, dims: KnownDims, measured?: ReadonlyMap<string, number[]>): Promise<number> {
  if (!pairs.length) return 0;
  const shapes = measured && pairs.every((p) => measured.has(p.float)) ? measured : await probeShapes(floatModel, pairs.map((p) => p.float), dims, source);
  return 2 * liveBytesPerSample(new Map(pairs.map((p) => [p.float, shapes.get(p.float)!])));
}

export async function evaluate(floatModel: onnx.ModelProto, quantModel: onnx.ModelProto, pairs: TensorPair[], source: SampleSource,
  options: EvaluationOptions): Promise<EvaluationResult> {
  const start = performance.now();
  const outputs = floatModel.graph!.output.map((o) => o.name);
  const dims = await inferredDims(floatModel, source.feedShapes, pairs.map((p) => p.float));
  const perSample = await comparisonBytesPerSample(floatModel, pairs, source, dims, options.shapes);
  const compared = comparisonModel(floatModel, quantModel, pairs, options.local, dims);
  const { taps } = compared;
  const sessions: ort.InferenceSession[] = [];
  // `shapes`: the data's input shapes, for the engine's own session (the exported model runs as written).
  const open = async (model: onnx.ModelProto, what: string, numerics: Numerics, extra: ort.InferenceSession.SessionOptions = {}, shapes?: InputShapes) => {
    const session = await shapedSession(model, shapes, what, { ...extra, ...numericsOptions(numerics) });
    sessions.push(session);
    return session;
  };
  // The layers' sums come out of ONNX Runtime; what is left is one pass over each output, on this
  // thread: staged for a stats worker, the next batch waited for it (recognizer, 64 lines: 0.15 s
  // of waiting in a 4.6 s evaluation).
  try {
    const compareSession = await open(compared.model, 'float and quantized models side by side', options.numerics, TAP_OPTIONS, source.feedShapes);
    // Reference outputs come from the side-by-side run itself; ort-cpu outputs from the exported
    // model alone, as a CPU deployment runs it (taps change which groups ONNX Runtime fuses).
    const mainSession = options.numerics === 'reference' ? undefined : await open(quantModel, 'quantized model', options.numerics);
    const deployedSession = options.deployed ? await open(quantModel, `quantized model (${options.deployed})`, options.deployed) : undefined;
    // The float outputs are the same for both comparisons: the module scores them once.
    const floatScore = options.custom ? new CustomScore(options.custom) : undefined;
    const main = new OutputComparison(options.numerics, options.custom, floatScore);
    const deployed = options.deployed ? new OutputComparison(options.deployed, options.custom) : undefined;
    const quantName = new Map(compared.outputs.map((o) => [o.float, o.quant]));
    const layers = new Map<string, LayerStats>(taps.map((t) => [t.float, { signal: 0, noise: 0, sqnr: 0, ...(t.min !== undefined ? { range: { min: Infinity, max: -Infinity } } : {}) }]));
    const batchSize = fitBatch(options.batchSize, perSample, options.memoryBudget);
    let done = 0;
    if (options.labels && options.labels.ids.length < source.count * options.labels.steps) throw new Error(`labels: ${options.labels.ids.length / options.labels.steps} samples' class ids for ${source.count} evaluation samples`);
    for await (const feed of source.batches(batchSize)) {
      throwIfAborted(options.signal);
      const feeds = toOrtFeeds(feed);
      const n = feedSamples(feed);
      const labels = options.labels && idsOf(options.labels, done, n);
      const ref = await run(compareSession, feeds, 'float and quantized models');
      const cells = cellValues([taps.length ? floatData(ref[SUMS_OUTPUT] as ort.Tensor, SUMS_OUTPUT) : new Float32Array(0)], compared.cells.map((lead) => rowCount(lead, n)));
      const sums = (cell: number) => cells(cell).reduce((a, b) => a + b, 0);
      const mainOut = mainSession ? await run(mainSession, feeds, 'quantized model') : undefined;
      const broken = main.add(outputs, ref, (name) => (mainOut ? mainOut[name] : ref[quantName.get(name) ?? '']) as ort.Tensor | undefined, labels)
        ?? taps.find((t) => !Number.isFinite(sums(t.signal)))?.float;
      if (broken !== undefined) throw overflow(broken, feed, source, done, n);
      if (deployed && deployedSession) {
        const out = await run(deployedSession, feeds, `quantized model (${deployed.numerics})`);
        deployed.add(outputs, ref, (name) => out[name] as ort.Tensor | undefined, labels);
      }
      for (const t of taps) {
        const s = layers.get(t.float)!;
        s.signal += sums(t.signal);
        s.noise += sums(t.noise);
        if (t.localNoise !== undefined) s.localNoise = (s.localNoise ?? 0) + sums(t.localNoise);
        if (t.min !== undefined && t.max !== undefined) s.range = { min: cells(t.min).reduce((a, b) => Math.min(a, b), s.range!.min), max: cells(t.max).reduce((a, b) => Math.max(a, b), s.range!.max) };
      }
      done += n;
      const seconds = (performance.now() - start) / 1000;
      options.onProgress?.({ stage: 'evaluate', done, total: source.count, rate: done / seconds });
    }
    throwIfAborted(options.signal);
    if (done === 0) throw new Error(`no evaluation samples in ${source.description}`);
    for (const s of layers.values()) {
      s.sqnr = sqnrDb(s.signal, s.noise);
      if (s.localNoise !== undefined) s.localSqnr = sqnrDb(s.signal, s.localNoise);
    }
    const floatCustom = await floatScore?.score(options.signal);
    return {
      ...(await main.result(outputs, floatCustom, options.signal)),
      numerics: options.numerics,
      layers,
      ...(deployed ? { deployed: await deployed.result(outputs, floatCustom, options.signal) } : {}),
      samples: done,
      seconds: (performance.now() - start) / 1000,
    };
  } finally {
    for (const s of sessions) await s.release();
  }
}

/**
 * Each tensor's local SQNR alone (the float tensor through its own Q/DQ; undefined where its
 * quantizer's parameters are not constants), from passes of the float model with those Q/DQs and
 * sums, in named numerics: what a repair ranks its layers by, without the quantized half a whole
 * comparison runs.
 */
export async function localSqnr(floatModel: onnx.ModelProto, quantModel: onnx.ModelProto, pairs: TensorPair[], source: SampleSource,
  options: RunOptions & { numerics: MainNumerics; shapes?: ReadonlyMap<string, number[]> }): Promise<Map<string, number>> {
  const dims = await inferredDims(floatModel, source.feedShapes, pairs.map((p) => p.float));
  // One model's live tensors: half a comparison's.
  const perSample = (await comparisonBytesPerSample(floatModel, pairs, source, dims, options.shapes)) / 2;
  const local = localErrorModel(floatModel, quantModel, pairs, dims);
  const session = await shapedSession(local.model, source.feedShapes, 'float model with each layer\'s own quantization error', { ...TAP_OPTIONS, ...numericsOptions(options.numerics) });
  const signal = new Float64Array(local.taps.length);
  const noise = new Float64Array(local.taps.length);
  const start = performance.now();
  let done = 0;
  try {
    for await (const feed of source.batches(fitBatch(options.batchSize, perSample, options.memoryBudget))) {
      throwIfAborted(options.signal);
      const n = feedSamples(feed);
      const out = await run(session, toOrtFeeds(feed), 'float model with each layer\'s own quantization error');
      const cells = cellValues([local.taps.length ? floatData(out[SUMS_OUTPUT] as ort.Tensor, SUMS_OUTPUT) : new Float32Array(0)], local.cells.map((lead) => rowCount(lead, n)));
      local.taps.forEach((t, i) => {
        signal[i] += cells(t.signal).reduce((a, b) => a + b, 0);
        noise[i] += cells(t.localNoise).reduce((a, b) => a + b, 0);
      });
      const broken = local.taps.find((_, i) => !Number.isFinite(signal[i]));
      if (broken) throw overflow(broken.float, feed, source, done, n);
      done += n;
      options.onProgress?.({ stage: 'evaluate', done, total: source.count, rate: done / ((performance.now() - start) / 1000) });
    }
  } finally {
    await session.release();
  }
  throwIfAborted(options.signal);
  if (done === 0) throw new Error(`no evaluation samples in ${source.description}`);
  return new Map(local.taps.map((t, i) => [t.float, sqnrDb(signal[i], noise[i])]));
}
