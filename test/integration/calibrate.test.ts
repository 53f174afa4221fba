import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { recipeFor } from '../../shared/backends';
import { calibrate } from '../../main/calib/calibrate';
import { writeNpy } from '../../main/data/npy';
import { openSource, type SampleSource } from '../../main/data/readers';
import { sampleStride } from '../../main/calib/taps';
import { inputSpecs } from '../../main/onnx/session';
import { GraphView } from '../../main/onnx/graph';
import { encodeModel, loadModel } from '../../main/onnx/model';
import { calibrationTensors, planQuantization } from '../../main/plan/plan';
import { prepareModel } from '../../main/plan/prepare';
import { randomArray, ROOT, tempDir, withOutputs } from '../helpers/build';

const MNIST = path.join(ROOT, 'test', 'fixtures', 'mnist-cnn');

async function setup(method: string) {
  const model = prepareModel(loadModel(path.join(MNIST, 'model.onnx')).model, { forQdq: true }).model;
  const view = new GraphView(model);
  const tensors = calibrationTensors(planQuantization(view, { ...recipeFor('cpu'), method }));
  const source = await openSource(path.join(MNIST, 'calib.npy'), inputSpecs(view), { limit: 40 });
  return { model, view, tensors, source };
}

/** Every observed tensor of every sample, the brute-force way. */
async function allValues(model: Parameters<typeof withOutputs>[0], names: string[], source: SampleSource): Promise<Map<string, number[]>> {
  const session = await ort.InferenceSession.create(encodeModel(withOutputs(model, names)));
  const values = new Map<string, number[]>(names.map((n) => [n, []]));
  for await (const feed of source.batches(7)) {
    const out = await session.run({ input: new ort.Tensor('float32', feed.input.data as Float32Array, feed.input.dims) });
    for (const n of names) for (const v of out[n].data as Float32Array) values.get(n)!.push(v);
  }
  await session.release();
  return values;
}

test('minmax through in-graph reductions equals the exact extremes of every tensor', async () => {
  const { model, tensors, source } = await setup('minmax');
  const result = await calibrate(model, tensors, source, { batchSize: 7 });
  assert.equal(result.samples, 40);
  assert.deepEqual(result.shapes.get('/conv1/Conv_output_0'), [1, 8, 28, 28], 'intermediate shapes, per sample');
  const truth = await allValues(model, tensors.map((t) => t.tensor), source);
  for (const t of tensors) {
    const v = truth.get(t.tensor)!;
    const min = Math.min(0, v.reduce((a, b) => Math.min(a, b), Infinity));
    const max = Math.max(0, v.reduce((a, b) => Math.max(a, b), -Infinity));
    const r = result.ranges.get(t.tensor)!;
    assert.equal(r.min, min, `${t.tensor} min`);
    assert.equal(r.max, max, `${t.tensor} max`);
  }
});

test('a strided sample gives the percentile of the whole data, and the histogram spans the exact range', async () => {
  const { model, tensors, source } = await setup('percentile:99.9');
  const sampled = await calibrate(model, tensors, source, { batchSize: 8, histogramSample: 500 });
  const whole = await calibrate(model, tensors, source, { batchSize: 8, histogramSample: 0 });
  assert.ok([...sampled.strides.values()].some((s) => s > 1), 'some tensors are sampled');
  assert.ok([...whole.strides.values()].every((s) => s === 1));
  for (const t of tensors) {
    const a = sampled.ranges.get(t.tensor)!;
    const b = whole.ranges.get(t.tensor)!;
    const span = b.max - b.min;
    assert.ok(Math.abs(a.max - b.max) <= 0.1 * span && Math.abs(a.min - b.min) <= 0.1 * span, `${t.tensor}: sampled [${a.min}, ${a.max}] vs whole [${b.min}, ${b.max}]`);
    assert.equal(a.histogram!.counts.length, b.histogram!.counts.length);
  }
});

test('sample strides are primes above 5, so they never alias with 2·3·5-smooth tensor sizes', () => {
  assert.equal(sampleStride(0.5), 1);
  assert.equal(sampleStride(2), 7);
  assert.equal(sampleStride(24), 29);
  assert.equal(sampleStride(7), 7);
});

test('calibration memory does not grow with the number of samples: the batch is cut to the budget', async () => {
  const dir = tempDir('budget');
  const file = path.join(dir, 'x.npy');
  writeNpy(file, 'float32', [12, 1, 28, 28], randomArray(12 * 784, 3));
  const { model, tensors } = await setup('minmax');
  const source = await openSource(file, inputSpecs(new GraphView(model)));
  // The largest observed activation is conv1's, 25 kB per sample; a tapped run holds a few such
  // tensors at a time (LIVE_TENSORS = 8 of them, 200 kB per sample): 400 kB allow batches of 2.
  const result = await calibrate(model, tensors, source, { batchSize: 8, memoryBudget: 400 * 1024 });
  assert.equal(result.batchSize, 2);
  assert.equal(result.samples, 12);
});

