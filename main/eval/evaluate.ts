// Evaluation: float model against quantized model on the same samples. Per-layer SQNR compares
// each planned tensor with its dequantized counterpart (matched by the plan, not by name
// guessing), reduced inside ONNX Runtime; output SQNR runs the quantized model exactly as
// exported, so fused integer kernels count. Only running sums are kept.
import * as ort from 'onnxruntime-node';
import { elements, fitBatch, probeShapes, TAP_OPTIONS, throwIfAborted, type RunOptions } from '../calib/calibrate';
import type { SampleSource } from '../calib/readers';
import { StatsPool } from '../jobs/stats-pool';
import type { CompareStats } from '../jobs/stats-protocol';
import type { onnx } from '../onnx/proto';
import { sqnrDb } from '../quant/qmath';
import { comparisonModel } from './compare-model';
import { MetricAccumulator, type MetricValues } from './metrics';
import { createSession, floatData, run, toOrtFeeds } from './session';

export interface TensorPair {
  float: string;
  quant: string;
}

export interface PairStats extends CompareStats {
  /** Cumulative: the quantized model's tensor against the float one, errors of earlier layers included. */
  sqnr: number;
  /** Σ(x − QDQ(x))² with the float tensor x: the layer's own quantization error (activations fed through Q/DQ). */
  localNoise?: number;
  /** Local SQNR: only this tensor quantized, with exact float inputs. */
  localSqnr?: number;
}

export interface EvaluationOptions extends RunOptions {
  /** Class ids of the samples, in order, for accuracy metrics. */
  labels?: Int32Array;
}

export interface EvaluationResult {
  /** Task metrics of the first float output: agreement with the float model, cosine, accuracy with labels. */
  metrics: MetricValues;
  layers: Map<string, PairStats>;
  outputs: Array<{ name: string } & PairStats>;
  samples: number;
  seconds: number;
}

function withSqnr(s: CompareStats | undefined): PairStats {
  const base = s ?? { signal: 0, noise: 0, maxAbsError: 0, refMin: 0, refMax: 0 };
  return { ...base, sqnr: sqnrDb(base.signal, base.noise) };
}

export async function evaluate(floatModel: onnx.ModelProto, quantModel: onnx.ModelProto, pairs: TensorPair[], source: SampleSource,
  options: EvaluationOptions): Promise<EvaluationResult> {
  const start = performance.now();
  const outputs = floatModel.graph!.output.map((o) => o.name);
  const { model: compared, taps } = comparisonModel(floatModel, quantModel, pairs);
  const compareSession = await createSession(compared, 'float and quantized models side by side', TAP_OPTIONS);
  const quantSession = await createSession(quantModel, 'quantized model');
  const pool = new StatsPool();
  const layers = new Map<string, PairStats>(pairs.map((p) => [p.float, { signal: 0, noise: 0, maxAbsError: 0, refMin: Infinity, refMax: -Infinity, sqnr: 0 }]));
  try {
    // Both halves hold their activations of a batch: the float model's, measured on one sample,
    // twice.
    let perSample = 0;
    if (pairs.length) for (const shape of (await probeShapes(floatModel, pairs.map((p) => p.float), source)).values()) perSample += elements(shape) * 4;
    const batchSize = fitBatch(options.batchSize, 2 * perSample, options.memoryBudget);
    let done = 0;
    const metric = new MetricAccumulator();
    if (options.labels && options.labels.length < source.count) throw new Error(`labels: ${options.labels.length} class ids for ${source.count} evaluation samples`);
    for await (const feed of source.batches(batchSize)) {
      throwIfAborted(options.signal);
      const feeds = toOrtFeeds(feed);
      const ref = await run(compareSession, feeds, 'float model');
      const deployed = await run(quantSession, feeds, 'quantized model');
      let first = true;
      for (const name of outputs) {
        const r = ref[name] as ort.Tensor;
        const q = deployed[name] as ort.Tensor;
        if (r?.type !== 'float32' || q?.type !== 'float32') continue;
        // Before the comparison: it hands the buffers over to a worker thread.
        if (first) {
          const n = r.dims[0];
          metric.add(floatData(r, name), floatData(q, name), r.dims, options.labels?.subarray(done, done + n));
          first = false;
        }
        pool.compare(`output:${name}`, floatData(r, name), floatData(q, name));
      }
      const scalar = (name: string) => (ref[name] as ort.Tensor).data[0] as number;
      for (const t of taps) {
        const s = layers.get(t.float)!;
        s.signal += scalar(t.signal);
        s.noise += scalar(t.noise);
        s.maxAbsError = Math.max(s.maxAbsError, scalar(t.maxAbs));
        s.refMin = Math.min(s.refMin, scalar(t.min));
        s.refMax = Math.max(s.refMax, scalar(t.max));
        if (t.localNoise) s.localNoise = (s.localNoise ?? 0) + scalar(t.localNoise);
      }
      await pool.flush();
      done += Object.values(feed)[0].dims[0];
      const seconds = (performance.now() - start) / 1000;
      options.onProgress?.({ stage: 'evaluate', done, total: source.count, rate: done / seconds });
    }
    throwIfAborted(options.signal);
    if (done === 0) throw new Error(`no evaluation samples in ${source.description}`);
    const { compares } = await pool.results();
    for (const s of layers.values()) {
      s.sqnr = sqnrDb(s.signal, s.noise);
      if (s.localNoise !== undefined) s.localSqnr = sqnrDb(s.signal, s.localNoise);
    }
    return {
      metrics: metric.result(),
      layers,
      outputs: outputs.filter((o) => compares.has(`output:${o}`)).map((name) => ({ name, ...withSqnr(compares.get(`output:${name}`)) })),
      samples: done,
      seconds: (performance.now() - start) / 1000,
    };
  } finally {
    await pool.close();
    await compareSession.release();
    await quantSession.release();
  }
}
