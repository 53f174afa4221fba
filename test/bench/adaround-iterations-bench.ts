// AdaRound's iterations against held-out lines (not part of `npm run bench`: minutes per count):
// the PaddleOCR v4 recognizer calibrated by min/max on the 64 calibration lines, AdaRound learned
// on them at each count, then exact match on the 300 held-out lines and output SQNR on the first 64
// of them, reference numerics. What `adaRoundIterations` is chosen from.
//   node dist/test/bench/adaround-iterations-bench.js [BACKEND] [per-channel|per-tensor] [COUNT ...]
import * as path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { recipeFor } from '../../shared/backends';
import type { Granularity } from '../../shared/recipe';
import type { Feed } from '../../main/base/feed';
import { calibrate } from '../../main/calib/calibrate';
import { convertModel } from '../../main/convert/convert';
import { openSource } from '../../main/data/readers';
import { GraphView } from '../../main/onnx/graph';
import { loadModel } from '../../main/onnx/model';
import { numericsOptions } from '../../main/onnx/numerics';
import { createSession, inputSpecs, toOrtFeeds } from '../../main/onnx/session';
import { calibrationTensors, planQuantization } from '../../main/plan/plan';
import { prepareModel } from '../../main/plan/prepare';
import { adaRound } from '../../main/repair/adaround';
import type { onnx } from '../../main/onnx/proto';
import { sqnrDb } from '../../main/stats/sqnr';
import { MODELS } from '../helpers/build';
import { exactMatch, LINES, PREPROCESS } from './ocr';

async function main(): Promise<void> {
  const [backend = 'cpu', granularity = 'per-channel', ...counts] = process.argv.slice(2);
  const prepared = prepareModel(loadModel(MODELS.rec).model, { forQdq: true }).model;
  const view = new GraphView(prepared);
  const open = (split: string) => openSource(path.join(LINES, split), inputSpecs(view), { preprocess: PREPROCESS, limit: 64 });
  const calib = await open('calib');
  const plan = planQuantization(view, { ...recipeFor(backend), granularity: granularity as Granularity });
  const { ranges } = await calibrate(prepared, calibrationTensors(plan), calib, { batchSize: 8, sized: [...plan.activations.keys()] });
  const feeds: Feed[] = [];
  for await (const f of calib.batches(8)) feeds.push(f);
  const held: Array<Record<string, ort.Tensor>> = [];
  for await (const f of (await open('eval')).batches(8)) held.push(toOrtFeeds(f));
  const float = await createSession(prepared, 'float model');
  const outputSqnr = async (model: onnx.ModelProto): Promise<number> => {
    const quantized = await createSession(model, 'quantized model', numericsOptions('reference'));
    let signal = 0;
    let noise = 0;
    for (const feed of held) {
      const [f, q] = [await float.run(feed), await quantized.run(feed)].map((out) => Object.values(out)[0].data as Float32Array);
      for (let i = 0; i < f.length; i++) {
        signal += f[i] * f[i];
        noise += (f[i] - q[i]) ** 2;
      }
    }
    await quantized.release();
    return sqnrDb(signal, noise);
  };
  const row = async (label: string, model: onnx.ModelProto, seconds?: number) =>
    console.log(`${label.padEnd(16)} ${(await exactMatch(model, 'eval')).accuracy.toFixed(1).padStart(5)}%   output SQNR ${(await outputSqnr(model)).toFixed(2)} dB${seconds === undefined ? '' : `   AdaRound ${seconds.toFixed(1)} s`}`);
  console.log(`PaddleOCR v4 recognition, ${backend} ${granularity} int8, min/max on 64 calibration lines, reference numerics: exact match on the 300 held-out lines, output SQNR on the first 64`);
  await row('nearest', convertModel(view, plan, ranges).model);
  for (const count of (counts.length ? counts : ['250', '1000']).map(Number)) {
    const learned = await adaRound(prepared, plan, ranges, feeds, { iterations: count });
    await row(`AdaRound ${count}`, convertModel(view, plan, ranges, learned.rounding).model, learned.report.seconds);
  }
  await float.release();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
