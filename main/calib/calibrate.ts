// Calibration: run the model with every tensor that needs a range as an extra output, and stream
// the values to observers in worker threads. Memory holds at most two batches of activations.
import { quantTypeBits } from '../../shared/recipe';
import { StatsPool } from '../jobs/stats-pool';
import type { ObservedRange } from '../jobs/stats-protocol';
import type { onnx } from '../onnx/proto';
import type { ActivationSpec } from '../quant/plan';
import { createSession, floatData, outputBytes, run, toOrtFeeds, withOutputs } from '../eval/session';
import type { SampleSource } from './readers';

export interface Progress {
  stage: 'load' | 'calibrate' | 'convert' | 'evaluate' | 'save';
  done: number;
  total: number;
  /** Samples per second so far, for "time left". */
  rate?: number;
}

export interface RunOptions {
  batchSize: number;
  /** Activations a batch may hold in memory before the batch is made smaller. */
  memoryBudget?: number;
  bins?: number;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
}

export class CancelledError extends Error {
  constructor() {
    super('cancelled');
  }
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError();
}

export interface CalibrationResult {
  ranges: Map<string, ObservedRange>;
  samples: number;
  batchSize: number;
  seconds: number;
  /** Shapes of the observed tensors (first batch), for the graph view. */
  shapes: Map<string, number[]>;
}

const DEFAULT_BUDGET = 512 * 2 ** 20;

/** The largest batch, up to the requested one, whose activations stay under the budget. */
export function fitBatch(requested: number, perSample: number, budget = DEFAULT_BUDGET): number {
  if (perSample <= 0) return requested;
  return Math.max(1, Math.min(requested, Math.floor(budget / perSample)));
}

export async function calibrate(model: onnx.ModelProto, tensors: ActivationSpec[], source: SampleSource, options: RunOptions): Promise<CalibrationResult> {
  const start = performance.now();
  const names = tensors.map((t) => t.tensor);
  const session = await createSession(withOutputs(model, names), 'model prepared for calibration');
  const pool = new StatsPool();
  const shapes = new Map<string, number[]>();
  try {
    pool.initObservers(tensors.map((t) => ({
      name: t.tensor, method: t.method, symmetric: t.symmetric, bins: options.bins,
      levels: 2 ** quantTypeBits(t.type),
    })));
    let batchSize = options.batchSize;
    if (batchSize > 1) {
      for await (const probe of source.batches(1)) {
        const out = await run(session, toOrtFeeds(probe), 'calibration model');
        batchSize = fitBatch(batchSize, outputBytes(out), options.memoryBudget);
        break;
      }
    }
    let done = 0;
    let queued: Promise<void> = Promise.resolve();
    for await (const feed of source.batches(batchSize)) {
      throwIfAborted(options.signal);
      const out = await run(session, toOrtFeeds(feed), 'calibration model');
      // The workers digest this batch while ONNX Runtime computes the next one; waiting for the
      // previous flush keeps at most two batches in memory.
      await queued;
      for (const name of names) {
        const t = out[name];
        if (!t) continue;
        if (shapes.size < names.length && !shapes.has(name)) shapes.set(name, [...t.dims]);
        pool.observe(name, floatData(t, name));
      }
      queued = pool.flush();
      const n = Object.values(feed)[0].dims[0];
      done += n;
      const seconds = (performance.now() - start) / 1000;
      options.onProgress?.({ stage: 'calibrate', done, total: source.count, rate: done / seconds });
    }
    await queued;
    throwIfAborted(options.signal);
    if (done === 0) throw new Error(`no calibration samples in ${source.description}`);
    const { ranges } = await pool.results();
    return { ranges, samples: done, batchSize, seconds: (performance.now() - start) / 1000, shapes };
  } finally {
    await pool.close();
    await session.release();
  }
}
