// The latency check: what can run here runs here. The float model and each exported model take the
// same input on ONNX Runtime's CPU provider; the median of repeated runs is what the report shows.
import * as os from 'node:os';
import * as ort from 'onnxruntime-node';
import type { LatencyReport } from '../../shared/report';

import { createSession, run, toOrtFeeds } from '../onnx/session';
import type { onnx } from '../onnx/proto';
import { throwIfAborted } from '../base/progress';
import { Feed, InputSpec } from '../base/feed';

export interface LatencyOptions {
  /** Timed runs per model after the warm-up. */
  runs?: number;
  /** Stop early once one model has used this much time, so a big model does not stall the job. */
  budgetMs?: number;
  signal?: AbortSignal;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The first sample of a feed: latency is measured at batch 1, as a device runs it. Inputs with a fixed first dimension (state tensors) stay whole. */
export function firstSample(feed: Feed, inputs: readonly InputSpec[]): Feed {
  const out: Feed = {};
  for (const [name, t] of Object.entries(feed)) {
    const first = inputs.find((i) => i.name === name)?.shape[0];
    if (typeof first === 'number' && first > 0) {
      out[name] = t;
      continue;
    }
    const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
    out[name] = { ...t, dims: [1, ...t.dims.slice(1)], data: (t.data as Float32Array).subarray(0, per) as never };
  }
  return out;
}

export async function measureLatency(models: Array<{ label: string; model: onnx.ModelProto; feed: Feed }>, backendNote: string,
  options: LatencyOptions = {}): Promise<LatencyReport> {
  const runs = options.runs ?? 20;
  const budget = options.budgetMs ?? 5000;
  const results: LatencyReport['models'] = [];
  // Both sessions single-threaded and sequential, so the figures compare kernels rather than thread scheduling.
  const sessionOptions: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' };
  for (const { label, model, feed } of models) {
    const session = await createSession(model, `${label} model`, sessionOptions);
    try {
      const feeds = toOrtFeeds(feed);
      for (let i = 0; i < 3; i++) await run(session, feeds, `${label} model`);
      const times: number[] = [];
      const start = performance.now();
      while (times.length < runs && (times.length < 3 || performance.now() - start < budget)) {
        throwIfAborted(options.signal);
        const t0 = performance.now();
        await run(session, feeds, `${label} model`);
        times.push(performance.now() - t0);
      }
      results.push({ label, medianMs: Number(median(times).toFixed(3)), runs: times.length });
    } finally {
      await session.release();
    }
  }
  const float = results.find((r) => r.label === 'float');
  return {
    where: `ONNX Runtime ${ort.env.versions.common} CPU provider, one thread, on this machine (${os.cpus()[0]?.model.trim() ?? 'unknown CPU'})`,
    note: backendNote,
    models: results.map((r) => ({ ...r, speedup: float ? Number((float.medianMs / r.medianMs).toFixed(3)) : undefined })),
  };
}
