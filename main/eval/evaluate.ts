// Evaluation: float model against quantized model on the same samples. Per-layer SQNR compares
// each planned tensor with its dequantized counterpart (matched by the plan, not by name
// guessing); output SQNR runs the quantized model exactly as exported, so fused integer kernels
// count. Only running sums are kept.
import * as ort from 'onnxruntime-node';
import { fitBatch, throwIfAborted, type RunOptions } from '../calib/calibrate';
import type { SampleSource } from '../calib/readers';
import { StatsPool } from '../jobs/stats-pool';
import type { CompareStats } from '../jobs/stats-protocol';
import type { onnx } from '../onnx/proto';
import { sqnrDb } from '../quant/qmath';
import { createSession, floatData, outputBytes, run, toOrtFeeds, withOutputs } from './session';

export interface TensorPair {
  float: string;
  quant: string;
}

export interface PairStats extends CompareStats {
  sqnr: number;
}

export interface EvaluationResult {
  layers: Map<string, PairStats>;
  outputs: Array<{ name: string } & PairStats>;
  samples: number;
  seconds: number;
}

function withSqnr(s: CompareStats | undefined): PairStats {
  const base = s ?? { signal: 0, noise: 0, maxAbsError: 0, count: 0, refMin: 0, refMax: 0 };
  return { ...base, sqnr: sqnrDb(base.signal, base.noise) };
}

export async function evaluate(floatModel: onnx.ModelProto, quantModel: onnx.ModelProto, pairs: TensorPair[], source: SampleSource,
  options: RunOptions): Promise<EvaluationResult> {
  const start = performance.now();
  const outputs = floatModel.graph!.output.map((o) => o.name);
  const floatSession = await createSession(withOutputs(floatModel, pairs.map((p) => p.float)), 'float model');
  const quantProbe = pairs.length ? await createSession(withOutputs(quantModel, pairs.map((p) => p.quant)), 'quantized model with its dequantized tensors as outputs') : undefined;
  const quantSession = await createSession(quantModel, 'quantized model');
  const pool = new StatsPool();
  const sessions: ort.InferenceSession[] = [floatSession, quantSession, ...(quantProbe ? [quantProbe] : [])];
  try {
    let batchSize = options.batchSize;
    if (batchSize > 1) {
      for await (const probe of source.batches(1)) {
        const out = await run(floatSession, toOrtFeeds(probe), 'float model');
        batchSize = fitBatch(batchSize, 2 * outputBytes(out), options.memoryBudget);
        break;
      }
    }
    let done = 0;
    for await (const feed of source.batches(batchSize)) {
      throwIfAborted(options.signal);
      const feeds = toOrtFeeds(feed);
      const ref = await run(floatSession, feeds, 'float model');
      const deployed = await run(quantSession, feeds, 'quantized model');
      for (const name of outputs) {
        const r = ref[name] as ort.Tensor;
        const q = deployed[name] as ort.Tensor;
        // Copies: the float output is also compared as a layer below, and that transfer detaches it.
        if (r?.type === 'float32' && q?.type === 'float32') pool.compare(`output:${name}`, floatData(r, name).slice(), floatData(q, name));
      }
      if (quantProbe) {
        const probed = await run(quantProbe, feeds, 'quantized model');
        for (const p of pairs) {
          const r = ref[p.float] as ort.Tensor | undefined;
          const q = probed[p.quant] as ort.Tensor | undefined;
          if (r && q) pool.compare(p.float, floatData(r, p.float), floatData(q, p.quant));
        }
      }
      await pool.flush();
      done += Object.values(feed)[0].dims[0];
      const seconds = (performance.now() - start) / 1000;
      options.onProgress?.({ stage: 'evaluate', done, total: source.count, rate: done / seconds });
    }
    throwIfAborted(options.signal);
    if (done === 0) throw new Error(`no evaluation samples in ${source.description}`);
    const { compares } = await pool.results();
    const layers = new Map<string, PairStats>();
    for (const p of pairs) layers.set(p.float, withSqnr(compares.get(p.float)));
    return {
      layers,
      outputs: outputs.filter((o) => compares.has(`output:${o}`)).map((name) => ({ name, ...withSqnr(compares.get(`output:${name}`)) })),
      samples: done,
      seconds: (performance.now() - start) / 1000,
    };
  } finally {
    await pool.close();
    for (const s of sessions) await s.release();
  }
}

