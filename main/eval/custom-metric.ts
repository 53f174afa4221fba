// The user's own metric: a JavaScript module that scores the float and quantized outputs of the
// evaluation samples the way the user measures their model (CTC text match, mAP, WER…), usable as
// a repair target beside the built-in metrics.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { CustomMetricReport } from '../../shared/report';
import { CancelledError, throwIfAborted } from '../base/progress';
import { DataError } from '../data/npy';
import type { MetricRequest, MetricResponse } from './metric-worker';

/** One sample's outputs: output name → that sample's tensor, batch dimension 1. */
export type SampleOutputs = Record<string, { dims: number[]; data: Float32Array }>;

/** A batch's float outputs by name, as a run hands them over (first dim: the batch). */
export type BatchOutputs = Record<string, { dims: readonly number[]; data: Float32Array }>;

export interface MetricInput {
  float: SampleOutputs[];
  quantized: SampleOutputs[];
  /** One label per sample, as the labels file gives them (class ids, or any JSON values). */
  labels?: readonly unknown[];
}

export interface CustomMetric {
  /** What the metric measures, in the module's words ("CTC exact match"). */
  name: string;
  /** The module file, absolute. */
  file: string;
  /** The module's score; `signal` ends its thread. */
  score(input: MetricInput, signal?: AbortSignal): Promise<number>;
  /** The score, and each sample's score alone where the module gives one for every sample. */
  scoreEach(input: MetricInput, signal?: AbortSignal): Promise<{ value: number; each?: Float64Array }>;
}

/** The user's metric module with the labels of the samples it scores. */
export interface CustomScoring {
  metric: CustomMetric;
  labels?: readonly unknown[];
}

const SHAPE = 'its default export must be { name: string, score({ float, quantized, labels }) => number }';

/** A worker with the module loaded: its name, and the worker to score with. */
function startModule(file: string): Promise<{ worker: Worker; name: string }> {
  const worker = new Worker(path.join(__dirname, 'metric-worker.js'), { workerData: { file } });
  return new Promise((resolve, reject) => {
    const fail = (err: Error) => {
      void worker.terminate();
      reject(err);
    };
    worker.once('message', (r: MetricResponse) => {
      if (r.op === 'loaded') resolve({ worker, name: r.name });
      else if (r.op === 'error' && r.stage === 'load') fail(new DataError(`${file}: the metric module does not load: ${r.message}`));
      else fail(new DataError(`${file}: not a metric module: ${SHAPE}`));
    });
    worker.once('error', (err) => fail(new DataError(`${file}: the metric module crashed while loading: ${err.message}`)));
    // An exit before any answer (process.exit at the module's top level) settles it too; after one, it is a no-op.
    worker.once('exit', (code) => reject(new DataError(`${file}: the metric module ended its thread while loading (code ${code})`)));
  });
}

/** Each sample's tensors as compact arrays of their own: a view would carry its whole batch buffer across. */
function compact(samples: readonly SampleOutputs[]): { samples: SampleOutputs[]; buffers: ArrayBuffer[] } {
  const buffers: ArrayBuffer[] = [];
  const out = samples.map((s) => Object.fromEntries(Object.entries(s).map(([name, t]) => {
    const data = t.data.slice();
    buffers.push(data.buffer as ArrayBuffer);
    return [name, { dims: [...t.dims], data }];
  })));
  return { samples: out, buffers };
}

/**
 * Loads a metric module whose default export is `{ name, score({ float, quantized, labels }) }`. It
 * runs in a worker thread of its own for every score: a module that loops is ended by a cancel, one
 * that crashes fails the job with its message, and the engine keeps running either way.
 */
export async function loadMetricModule(file: string): Promise<CustomMetric> {
  const absolute = path.resolve(file);
  if (!fs.existsSync(absolute)) throw new DataError(`${file}: no such metric module; give a .mjs file whose ${SHAPE.slice(4)}`);
  const probe = await startModule(absolute);
  await probe.worker.terminate();
  const name = probe.name;
  const ask = async (input: MetricInput, each: boolean, signal?: AbortSignal): Promise<{ value: number; each?: Float64Array }> => {
    throwIfAborted(signal);
    const { worker } = await startModule(absolute);
    const failed = (why: string) => new DataError(`${file}: the metric "${name}" failed on ${input.float.length} samples: ${why}`);
    try {
      const answer = await new Promise<Extract<MetricResponse, { op: 'scored' }>>((resolve, reject) => {
        const onAbort = () => reject(new CancelledError());
        signal?.addEventListener('abort', onAbort, { once: true });
        worker.once('message', (r: MetricResponse) => (r.op === 'scored' ? resolve(r) : reject(failed(r.op === 'error' ? r.message : 'no answer'))));
        worker.once('error', (err) => reject(failed(err.message)));
        worker.once('exit', (code) => reject(failed(`its thread exited (code ${code})`)));
        const float = compact(input.float);
        // float-custom scores the float outputs as `quantized`: one copy serves both.
        const same = input.quantized.length === input.float.length && input.quantized.every((q, i) => q === input.float[i]);
        const quantized = same ? float : compact(input.quantized);
        const message: MetricRequest = { op: 'score', input: { float: float.samples, quantized: quantized.samples, ...(input.labels ? { labels: input.labels } : {}) }, each };
        worker.postMessage(message, quantized === float ? float.buffers : [...float.buffers, ...quantized.buffers]);
      });
      const { value } = answer;
      if (typeof value !== 'number' || !Number.isFinite(value)) throw new DataError(`${file}: the metric "${name}" returned ${typeof value === 'number' ? value : JSON.stringify(value) ?? String(value)}, not a finite number`);
      return { value, ...(answer.each ? { each: Float64Array.from(answer.each) } : {}) };
    } finally {
      await worker.terminate();
    }
  };
  return {
    name, file: absolute,
    score: async (input, signal) => (await ask(input, false, signal)).value,
    scoreEach: (input, signal) => ask(input, true, signal),
  };
}

/**
 * Splits a batch's outputs into one entry per sample. The data are views of the batch's arrays,
 * not copies: a module that wants to change them must copy first.
 */
export function perSample(outputs: BatchOutputs, n: number): SampleOutputs[] {
  const entries = Object.entries(outputs);
  return Array.from({ length: n }, (_, s) => Object.fromEntries(entries.map(([name, t]) => {
    // An output without the batch as its first dim (a scalar, a shape) is every sample's.
    if (t.dims[0] !== n) return [name, { dims: [...t.dims], data: t.data }];
    const per = t.data.length / n;
    return [name, { dims: [1, ...t.dims.slice(1)], data: t.data.subarray(s * per, (s + 1) * per) }];
  })));
}

/** The float and quantized outputs of every sample seen, scored by the module at the end. */
export class CustomScore {
  private readonly float: SampleOutputs[] = [];
  private readonly quantized: SampleOutputs[] = [];

  constructor(private readonly scoring: CustomScoring) {}

  add(float: SampleOutputs[], quantized: SampleOutputs[]): void {
    this.float.push(...float);
    this.quantized.push(...quantized);
  }

  score(signal?: AbortSignal): Promise<number> {
    return this.scoring.metric.score(this.input(), signal);
  }

  /** The score, and each sample's alone where the module gives it. */
  scoreEach(signal?: AbortSignal): Promise<{ value: number; each?: Float64Array }> {
    return this.scoring.metric.scoreEach(this.input(), signal);
  }

  private input(): MetricInput {
    const { labels } = this.scoring;
    if (labels && labels.length < this.float.length) throw new DataError(`labels: ${labels.length} labels for ${this.float.length} samples`);
    return { float: this.float, quantized: this.quantized, ...(labels ? { labels: labels.slice(0, this.float.length) } : {}) };
  }
}

export function customMetricReport(metric: CustomMetric): CustomMetricReport {
  return { name: metric.name, module: metric.file };
}
