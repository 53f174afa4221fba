import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { recipeFor } from '../../shared/backends';
import { calibrate } from '../../main/calib/calibrate';
import { readNpyHeader, readNpyRange, writeNpy } from '../../main/data/npy';
import { openSource, type SampleSource } from '../../main/data/readers';
import { sampleStride } from '../../main/calib/taps';
import { pairsFromQdq } from '../../main/eval/pairs';
import { inputSpecs } from '../../main/onnx/session';
import { quantize } from '../../main/jobs/quantize';
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
  // One sample's observed activations are about 80 kB here (conv1 and its ReLU alone 2 x 25 kB): 200 kB allow batches of 2.
  const result = await calibrate(model, tensors, source, { batchSize: 8, memoryBudget: 200 * 1024 });
  assert.equal(result.batchSize, 2);
  assert.equal(result.samples, 12);
});

test('evaluation reduced inside ONNX Runtime equals brute-force SQNR over every value', async () => {
  const dir = tempDir('evalsum');
  const evalFile = path.join(dir, 'eval.npy');
  const header = readNpyHeader(path.join(MNIST, 'eval.npy'));
  writeNpy(evalFile, 'float32', [30, 1, 28, 28], readNpyRange(path.join(MNIST, 'eval.npy'), header, 0, 30 * 784) as Float32Array);
  const { report, files } = await quantize({ model: path.join(MNIST, 'model.onnx'), recipe: recipeFor('cpu'), calibration: path.join(MNIST, 'calib.npy'), evaluation: evalFile, out: path.join(dir, 'q.onnx') });
  const floatModel = prepareModel(loadModel(path.join(MNIST, 'model.onnx')).model, { forQdq: true }).model;
  const quantModel = loadModel(files.model).model;
  const pairs = pairsFromQdq(new GraphView(floatModel), new GraphView(quantModel));
  const source = await openSource(evalFile, inputSpecs(new GraphView(floatModel)));
  const a = await allValues(floatModel, pairs.map((p) => p.float), source);
  const b = await allValues(quantModel, pairs.map((p) => p.quant), source);
  for (const p of pairs) {
    const x = a.get(p.float)!;
    const y = b.get(p.quant)!;
    let signal = 0;
    let noise = 0;
    for (let i = 0; i < x.length; i++) {
      signal += x[i] * x[i];
      noise += (x[i] - y[i]) ** 2;
    }
    const expected = noise === 0 ? Infinity : 10 * Math.log10(signal / noise);
    const got = report.layers.find((l) => l.name === p.float)!.sqnr;
    if (expected === Infinity) assert.equal(got, 'inf', p.float);
    else assert.ok(typeof got === 'number' && Math.abs(got - expected) < 0.01, `${p.float}: report ${got} dB, brute force ${expected} dB`);
  }
});
