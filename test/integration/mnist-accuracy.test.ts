// On a small trained CNN with in-distribution calibration data, int8 static per-channel keeps
// top-1 accuracy within 0.5 points and the output above 35 dB SQNR; per-tensor is measurably worse.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { recipeFor } from '../../shared/backends';
import { readNpyHeader, readNpyRange } from '../../main/data/npy';
import { quantize } from '../../main/jobs/quantize';
import type { Report } from '../../shared/report';
import { ROOT, tempDir } from '../helpers/build';

const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'mnist-cnn');

async function accuracy(model: string): Promise<number> {
  const xFile = path.join(FIXTURE, 'eval.npy');
  const header = readNpyHeader(xFile);
  const n = header.shape[0];
  const x = readNpyRange(xFile, header, 0, n * 28 * 28) as Float32Array;
  const yFile = path.join(FIXTURE, 'eval_labels.npy');
  const labels = readNpyRange(yFile, readNpyHeader(yFile), 0, n) as BigInt64Array;
  const session = await ort.InferenceSession.create(model);
  const out = await session.run({ input: new ort.Tensor('float32', x, [n, 1, 28, 28]) });
  await session.release();
  const logits = out.logits.data as Float32Array;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < 10; c++) if (logits[i * 10 + c] > logits[i * 10 + best]) best = c;
    if (BigInt(best) === labels[i]) correct++;
  }
  return (100 * correct) / n;
}

function outputSqnr(report: Report): number {
  const s = report.outputs[0].sqnr;
  return s === 'inf' ? Infinity : s;
}

test('MNIST CNN: int8 per-channel within 0.5 points of float top-1 and ≥ 35 dB; per-tensor lower', async () => {
  const dir = tempDir('mnist');
  const common = { model: path.join(FIXTURE, 'model.onnx'), calibration: path.join(FIXTURE, 'calib.npy'), evaluation: path.join(FIXTURE, 'eval.npy') };
  const perChannel = await quantize({ ...common, recipe: recipeFor('cpu', 'a8w8'), out: path.join(dir, 'pc.onnx') });
  const perTensor = await quantize({ ...common, recipe: { ...recipeFor('cpu', 'a8w8'), granularity: 'per-tensor' }, out: path.join(dir, 'pt.onnx') });
  const floatAcc = await accuracy(common.model);
  const pcAcc = await accuracy(perChannel.files.model);
  const ptAcc = await accuracy(perTensor.files.model);
  const pcSqnr = outputSqnr(perChannel.report);
  const ptSqnr = outputSqnr(perTensor.report);
  console.log(`float ${floatAcc.toFixed(1)}%, per-channel ${pcAcc.toFixed(1)}% (${pcSqnr.toFixed(1)} dB), per-tensor ${ptAcc.toFixed(1)}% (${ptSqnr.toFixed(1)} dB)`);
  assert.ok(floatAcc >= 97, `float accuracy ${floatAcc}`);
  assert.ok(floatAcc - pcAcc <= 0.5, `per-channel loses ${floatAcc - pcAcc} points`);
  assert.ok(pcSqnr >= 35, `per-channel output SQNR ${pcSqnr} dB`);
  assert.ok(ptSqnr < pcSqnr, `per-tensor ${ptSqnr} dB should be below per-channel ${pcSqnr} dB`);
  const weightSqnr = (r: Report) => r.weights.reduce((a, w) => a + (w.sqnr === 'inf' ? 100 : w.sqnr), 0) / r.weights.length;
  assert.ok(weightSqnr(perTensor.report) < weightSqnr(perChannel.report), 'per-tensor weights lose more than per-channel ones');
});
