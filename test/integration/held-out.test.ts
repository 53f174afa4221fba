// A held-out split of the calibration data: calibration reads the first samples, evaluation the
// last ones and nothing else, and labels given for every calibration sample follow the split.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { recipeFor } from '../../shared/backends';
import { writeNpy } from '../../main/data/npy';
import { openSource } from '../../main/data/readers';
import { heldOutCount } from '../../main/jobs/job';
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

test('held out: at least one sample each side, the rest by the fraction', () => {
  assert.equal(heldOutCount(24, 0.25, 'x'), 6);
  assert.equal(heldOutCount(2, 0.25, 'x'), 1);
  assert.equal(heldOutCount(10, 0.99, 'x'), 9);
  assert.throws(() => heldOutCount(1, 0.5, 'one.npy'), /one\.npy: holds 1 sample; holding some out for evaluation needs at least 2/);
});

test('a source read from an offset yields exactly the samples after it', async () => {
  const dir = tempDir('qs-held-out-skip-');
  const data = Float32Array.from({ length: 10 * 16 }, (_, i) => Math.floor(i / 16));
  const file = path.join(dir, 'x.npy');
  writeNpy(file, 'float32', [10, 16], data);
  const inputs = [{ name: 'x', type: 'float32', shape: ['batch', 16] }];
  const tail = await openSource(file, inputs, { skip: 7 });
  assert.equal(tail.count, 3);
  assert.match(tail.description, /^3 \(8–10 of 10\) samples from/);
  const seen: number[] = [];
  for await (const feed of tail.batches(2)) {
    const x = feed.x.data as Float32Array;
    for (let i = 0; i < x.length; i += 16) seen.push(x[i]);
  }
  assert.deepEqual(seen, [7, 8, 9]);
  await assert.rejects(openSource(file, inputs, { skip: 10 }), /holds 10 samples, none after the first 10/);
});

test('quantize with --hold-out: calibrates on the first samples, measures on the rest, labels cut to them', { timeout: 60_000 }, async () => {
  const dir = tempDir('qs-held-out-');
  const model = classifier(dir);
  const data = path.join(dir, 'x.npy');
  writeNpy(data, 'float32', [20, 16], randomArray(20 * 16, 7));
  const labels = path.join(dir, 'labels.json');
  fs.writeFileSync(labels, JSON.stringify(Array.from({ length: 20 }, (_, i) => i % 3)));
  const warnings: string[] = [];
  const { report } = await quantize({
    model, recipe: recipeFor('cpu'), calibration: data, holdOut: 0.25, labels, out: path.join(dir, 'q.onnx'), latency: false, onWarning: (m) => warnings.push(m),
  });
  assert.equal(report.samples.calibration, 15);
  assert.equal(report.samples.evaluation, 5);
  assert.match(report.data.evaluation, /^5 \(16–20 of 20\) samples from/);
  assert.ok(!warnings.some((w) => /evaluated on the calibration data/.test(w)), warnings.join('; '));
  assert.ok(report.metrics?.accuracy !== undefined, 'labels cut to the held-out samples score them');

  const short = path.join(dir, 'five.json');
  fs.writeFileSync(short, JSON.stringify([0, 1, 2, 0, 1]));
  await assert.rejects(quantize({ model, recipe: recipeFor('cpu'), calibration: data, holdOut: 0.25, labels: short, out: path.join(dir, 'q2.onnx'), latency: false }),
    /five\.json: 5 labels for 20 calibration samples; with part of them held out for evaluation, give one label per calibration sample/);
  await assert.rejects(quantize({ model, recipe: recipeFor('cpu'), calibration: data, evaluation: data, holdOut: 0.25, out: path.join(dir, 'q3.onnx'), latency: false }),
    /--hold-out splits the calibration data for evaluation; with --eval the evaluation data is given/);
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('q2') || f.startsWith('q3')), [], 'a refused job writes nothing');
});
