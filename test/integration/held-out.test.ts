// A held-out split of the calibration data: evaluation reads samples spread evenly through it (so
// data sorted by class lands on both sides), calibration the others, and labels given for every
// calibration sample follow the split.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { recipeFor } from '../../shared/backends';
import { writeNpy } from '../../main/data/npy';
import { heldOutSamples, openSource, otherSamples } from '../../main/data/readers';
import { quantize } from '../../main/jobs/quantize';
import { saveModel } from '../../main/onnx/model';
import { buildModel, randomArray, tempDir } from '../helpers/build';

/** A Gemm classifier over 16 features into 3 classes. */
function classifier(dir: string): string {
  const file = path.join(dir, 'fc.onnx');
  saveModel(buildModel({
    inputs: { x: ['batch', 16] }, outputs: { y: ['batch', 3] },
    initializers: { w: { dims: [3, 16], data: randomArray(48, 1, 0.5) }, b: { dims: [3], data: randomArray(3, 2, 0.1) } },
    nodes: [{ op: 'Gemm', inputs: ['x', 'w', 'b'], outputs: ['y'], name: 'fc', attrs: { transB: 1 } }],
  }), file);
  return file;
}

test('held out: spread evenly, at least one sample each side, the rest by the fraction', () => {
  assert.deepEqual(heldOutSamples(24, 0.25, 'x'), [2, 6, 10, 14, 18, 22]);
  assert.deepEqual(heldOutSamples(2, 0.25, 'x'), [1]);
  assert.equal(heldOutSamples(10, 0.99, 'x').length, 9);
  assert.deepEqual(otherSamples(6, [1, 4]), [0, 2, 3, 5]);
  // Two classes of 20, sorted by class as a folder per class reads: both are measured.
  const held = heldOutSamples(40, 0.25, 'x');
  assert.deepEqual([held.filter((i) => i < 20).length, held.filter((i) => i >= 20).length], [5, 5]);
  assert.throws(() => heldOutSamples(1, 0.5, 'one.npy'), /one\.npy: holds 1 sample; holding some out for evaluation needs at least 2/);
});

test('a source of picked samples yields exactly them, in order, across batches', async () => {
  const dir = tempDir('qs-held-out-skip-');
  const data = Float32Array.from({ length: 10 * 16 }, (_, i) => Math.floor(i / 16));
  const file = path.join(dir, 'x.npy');
  writeNpy(file, 'float32', [10, 16], data);
  const inputs = [{ name: 'x', type: 'float32', shape: ['batch', 16] }];
  const picked = await openSource(file, inputs, { samples: [1, 2, 3, 7, 9] });
  assert.equal(picked.count, 5);
  assert.match(picked.description, /^5 of 10 \(split evenly\) samples from/);
  for (const batch of [1, 2, 4]) {
    const seen: number[] = [];
    for await (const feed of picked.batches(batch)) {
      const x = feed.x.data as Float32Array;
      assert.equal(x.length, feed.x.dims[0] * 16);
      for (let i = 0; i < x.length; i += 16) seen.push(x[i]);
    }
    assert.deepEqual(seen, [1, 2, 3, 7, 9], `batches of ${batch}`);
  }
  await assert.rejects(openSource(file, inputs, { samples: [3, 10] }), /holds 10 samples, fewer than the split asks for/);
});

test('quantize with --hold-out: calibrates on three samples in four, measures on the fourth, labels cut to them', { timeout: 60_000 }, async () => {
  const dir = tempDir('qs-held-out-');
  const model = classifier(dir);
  const data = path.join(dir, 'x.npy');
  writeNpy(data, 'float32', [20, 16], randomArray(20 * 16, 7));
  // Labels right (the float model's own class) on the held-out samples and wrong on all others: only the split's labels can score 100%.
  const session = await ort.InferenceSession.create(model);
  const logits = (await session.run({ x: new ort.Tensor('float32', randomArray(20 * 16, 7), [20, 16]) })).y.data as Float32Array;
  await session.release();
  const argmax = (i: number) => [0, 1, 2].reduce((b, c) => (logits[i * 3 + c] > logits[i * 3 + b] ? c : b), 0);
  const held = new Set(heldOutSamples(20, 0.25, data));
  const labels = path.join(dir, 'labels.json');
  fs.writeFileSync(labels, JSON.stringify(Array.from({ length: 20 }, (_, i) => (held.has(i) ? argmax(i) : (argmax(i) + 1) % 3))));
  const warnings: string[] = [];
  const { report } = await quantize({
    model, recipe: recipeFor('cpu'), calibration: data, holdOut: 0.25, labels, out: path.join(dir, 'q.onnx'), latency: false, onWarning: (m) => warnings.push(m),
  });
  assert.equal(report.samples.calibration, 15);
  assert.equal(report.samples.evaluation, 5);
  assert.match(report.data.evaluation, /^5 of 20 \(split evenly\) samples from/);
  assert.ok(!warnings.some((w) => /measured on the calibration data/.test(w)), warnings.join('; '));
  assert.equal(report.metrics?.accuracy, report.metrics?.['top1-agreement'], 'scored against the held-out samples\' own labels');
  assert.ok(report.metrics!.accuracy >= 0.8, `accuracy ${report.metrics!.accuracy}`);

  const short = path.join(dir, 'five.json');
  fs.writeFileSync(short, JSON.stringify([0, 1, 2, 0, 1]));
  await assert.rejects(quantize({ model, recipe: recipeFor('cpu'), calibration: data, holdOut: 0.25, labels: short, out: path.join(dir, 'q2.onnx'), latency: false }),
    /five\.json: 5 labels for 20 calibration samples; with part of them held out for evaluation, give one label per calibration sample/);
  await assert.rejects(quantize({ model, recipe: recipeFor('cpu'), calibration: data, evaluation: data, holdOut: 0.25, out: path.join(dir, 'q3.onnx'), latency: false }),
    /--hold-out splits the calibration data for evaluation; with --eval the evaluation data is given/);
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('q2') || f.startsWith('q3')), [], 'a refused job writes nothing');
});
