import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { recipeFor } from '../../shared/backends';
import { calibrate, type CalibrationResult } from '../../main/calib/calibrate';
import { writeNpy } from '../../main/data/npy';
import { openSource, type SampleSource } from '../../main/data/readers';
import { samplePhase, sampleStride, tapModel } from '../../main/calib/taps';
import { rowCount } from '../../main/onnx/edit';
import { inferredDims, inputSpecs } from '../../main/onnx/session';
import { GraphView } from '../../main/onnx/graph';
import { encodeModel, loadModel } from '../../main/onnx/model';
import { calibrationTensors, planQuantization, type ActivationSpec } from '../../main/plan/plan';
import { prepareModel } from '../../main/plan/prepare';
import { buildModel, randomArray, ROOT, tempDir, withOutputs } from '../helpers/build';
import { onnx } from '../../main/onnx/proto';

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

test('histogram calibration does not depend on the batch size: same sample positions, same grid', async () => {
  for (const method of ['percentile:99.9', 'entropy']) {
    const { model, tensors, source } = await setup(method);
    const runs: CalibrationResult[] = [];
    for (const batchSize of [1, 3, 8]) runs.push(await calibrate(model, tensors, source, { batchSize, histogramSample: 500 }));
    assert.ok([...runs[0].strides.values()].some((s) => s > 1), 'some tensors are sampled');
    for (const run of runs.slice(1)) {
      for (const t of tensors) {
        const a = runs[0].ranges.get(t.tensor)!;
        const b = run.ranges.get(t.tensor)!;
        assert.deepEqual(b, a, `${method} ${t.tensor}: batch ${run.batchSize} against batch 1`);
      }
    }
  }
});

test('the joined output splits into parts of whole taps under the limit, and calibration reads them as one', async () => {
  const { model, tensors, source } = await setup('percentile:99.9');
  const names = tensors.map((t) => t.tensor);
  const known = await inferredDims(model, source.feedShapes, names);
  const tapped = tapModel(model, names.map((tensor) => ({ tensor, sample: true })), known, [], { values: 1000, parts: 1, sampleBudget: 0 });
  assert.ok(tapped.parts.length >= 2, `${tapped.parts.length + 1} parts`);
  assert.equal(tapped.joined.length, tapped.parts.length + 1);
  const perSample = tapped.cells.map((c) => rowCount('lead' in c ? c.lead : c.dims, 1));
  const bounds = [0, ...tapped.parts, tapped.cells.length];
  for (let k = 0; k + 1 < bounds.length; k++) {
    const cellsOfPart = perSample.slice(bounds[k], bounds[k + 1]);
    const values = cellsOfPart.reduce((a, b) => a + b, 0);
    // A part holds more only where one tap alone does.
    assert.ok(values <= 1000 || cellsOfPart.length <= 3, `part ${k}: ${values} values a sample in ${cellsOfPart.length} cells`);
  }
  const perWorker = tapModel(model, names.map((tensor) => ({ tensor, sample: true })), known, [], { values: 1e9, parts: 3, sampleBudget: 0 });
  assert.ok(perWorker.joined.length >= 3, `under the limit, still a part a worker (each takes parts whole): ${perWorker.joined.length} parts`);
  for (const histogramSample of [0, 500]) {
    const whole = await calibrate(model, tensors, source, { batchSize: 8, histogramSample });
    // In workers, each part moves whole to one of them.
    for (const workers of [0, 3]) {
      const parted = await calibrate(model, tensors, source, { batchSize: 8, histogramSample, partBytes: 8 * 4 * 1000, workers });
      assert.deepEqual(parted.ranges, whole.ranges, `sample ${histogramSample}, ${workers} workers`);
    }
  }
});

test('a step known before the run is a constant of the model, and the taps of one size and step share the input of their first position', async () => {
  const { model, tensors, source } = await setup('percentile:99.9');
  const names = tensors.map((t) => t.tensor);
  const known = await inferredDims(model, source.feedShapes, names);
  const sizes = new Map(names.map((t) => [t, rowCount(known.get(t)!, 1)]));
  const stride = (size: number) => ({ size, step: sampleStride(size / 500) });
  const tapped = tapModel(model, names.map((tensor) => ({ tensor, sample: true, stride: stride(sizes.get(tensor)!) })), known);
  const groups = new Set(names.map((t) => `${sizes.get(t)}/${stride(sizes.get(t)!).step}`));
  assert.ok(groups.size < names.length, 'some tensors share a size');
  assert.equal(tapped.model.graph!.input.length, 1 + groups.size, 'the model input and one position a group');
  for (const tap of tapped.taps) {
    assert.equal(tap.steps, undefined, `${tap.tensor}: no step to feed`);
    assert.ok(tap.start, `${tap.tensor}: a position to feed`);
  }
  const fed = tapModel(model, names.map((tensor) => ({ tensor, sample: true })), known);
  assert.equal(fed.model.graph!.input.length, 1 + 2 * names.length, 'without strides: a position and a step a tap');
});

test('a scalar or batch-independent tensor is sampled too', async () => {
  const dir = tempDir('scalar');
  const file = path.join(dir, 'x.npy');
  writeNpy(file, 'float32', [6, 8], randomArray(6 * 8, 4));
  const model = buildModel({
    inputs: { x: ['N', 8] }, outputs: { y: ['N', 8] },
    initializers: { w: { dims: [8], data: randomArray(8, 5) } },
    nodes: [
      { op: 'ReduceMax', inputs: ['x'], outputs: ['m'], attrs: { keepdims: 0 } },
      { op: 'Mul', inputs: ['w', 'm'], outputs: ['v'] },
      { op: 'Mul', inputs: ['x', 'v'], outputs: ['y'] },
    ],
  });
  const spec = (tensor: string): ActivationSpec => ({ tensor, method: 'percentile:99', type: 'uint8', symmetric: false, node: tensor, op: '', index: 0 });
  const source = await openSource(file, [{ name: 'x', type: 'float32', shape: ['N', 8] }]);
  const result = await calibrate(model, ['m', 'v', 'x'].map(spec), source, { batchSize: 4, histogramSample: 2 });
  assert.deepEqual(result.shapes.get('m'), []);
  for (const name of ['m', 'v', 'x']) assert.ok(result.ranges.get(name)!.histogram, `${name} has a histogram`);
  assert.ok(result.ranges.get('m')!.max > 0);
});

test('sample phases follow the sample\'s index in the whole data: every sample starts at -g·size mod step', () => {
  // Samples of 10 elements, step 7, batches of 3: the batch after 3 samples starts at -30 mod 7 = 5.
  assert.equal(samplePhase(0, 10, 7), 0);
  assert.equal(samplePhase(3, 10, 7), 5);
  // Inside that batch, sample 4 (offset 10) then starts at 5 + 7·1 - 10 = 2 = -40 mod 7.
  assert.equal(samplePhase(4, 10, 7), 2);
  assert.equal(samplePhase(7, 14, 7), 0);
});

test('sample strides are primes above 5, so they never alias with 2·3·5-smooth tensor sizes', () => {
  assert.equal(sampleStride(0.5), 1);
  assert.equal(sampleStride(2), 7);
  assert.equal(sampleStride(24), 29);
  assert.equal(sampleStride(7), 7);
});

test('extremes by rows, samples and shapes from shape inference: batch-first, batch-second and data-dependent tensors, batches of uneven size, opsets 13 and 18', async () => {
  const dir = tempDir('rows');
  const file = path.join(dir, 'x.npy');
  const x = randomArray(7 * 6, 11, 3);
  writeNpy(file, 'float32', [7, 6], x);
  for (const opset of [13, 18]) {
    const model = buildModel({
      inputs: { x: ['N', 6] }, outputs: { y: ['N', 'K'] }, opset,
      initializers: { w: { dims: [6], data: randomArray(6, 12) }, shape: { dims: [3], data: BigInt64Array.of(0n, 2n, 3n) }, keep: { dims: [6], data: BigInt64Array.of(1n, 0n, 1n, 1n, 0n, 1n) } },
      nodes: [
        { op: 'Mul', inputs: ['x', 'w'], outputs: ['a'] },
        { op: 'Reshape', inputs: ['a', 'shape'], outputs: ['r'] },
        // [2, N, 3]: the batch second, a fixed first dim.
        { op: 'Transpose', inputs: ['r'], outputs: ['t'], attrs: { perm: [1, 0, 2] } },
        { op: 'Mul', inputs: ['t', 't'], outputs: ['u'] },
        { op: 'Cast', inputs: ['keep'], outputs: ['mask'], attrs: { to: onnx.TensorProto.DataType.BOOL } },
        // Which columns Compress keeps depends on values, so shape inference cannot know its width: measured instead.
        { op: 'Compress', inputs: ['a', 'mask'], outputs: ['c'], attrs: { axis: 1 } },
        { op: 'Mul', inputs: ['c', 'c'], outputs: ['y'] },
      ],
    });
    const spec = (tensor: string): ActivationSpec => ({ tensor, method: 'minmax', type: 'uint8', symmetric: false, node: tensor, op: '', index: 0 });
    const source = await openSource(file, [{ name: 'x', type: 'float32', shape: ['N', 6] }]);
    const observed = ['a', 'u', 'c', 'y'];
    const result = await calibrate(model, observed.map(spec), source, { batchSize: 3, sized: ['r', 't', 'c'] });
    assert.equal(result.samples, 7);
    assert.deepEqual(Object.fromEntries(result.shapes), { a: [1, 6], u: [2, 1, 3], c: [1, 4], y: [1, 4], r: [1, 2, 3], t: [2, 1, 3] }, `opset ${opset}: shapes for one sample`);
    const session = await ort.InferenceSession.create(encodeModel(withOutputs(model, observed)));
    const out = await session.run({ x: new ort.Tensor('float32', x, [7, 6]) });
    await session.release();
    for (const name of observed) {
      const v = out[name].data as Float32Array;
      const r = result.ranges.get(name)!;
      assert.equal(r.min, Math.min(0, ...v), `opset ${opset}: ${name} min`);
      assert.equal(r.max, Math.max(0, ...v), `opset ${opset}: ${name} max`);
    }
    // Strided samples, in the joined output where the size is known and as outputs of their own
    // where it is not: the same at any batching where each sample's values are contiguous (batch
    // first); with the batch second, samples interleave and the positions follow the batch.
    const histograms = (batchSize: number) => calibrate(model, observed.map((t) => ({ ...spec(t), method: 'percentile:99' })), source, { batchSize, histogramSample: 2 });
    const [one, three] = [await histograms(1), await histograms(3)];
    assert.ok([...one.strides.values()].some((s) => s > 1), 'sampled');
    for (const name of ['a', 'c', 'y']) assert.deepEqual(three.ranges.get(name), one.ranges.get(name), `opset ${opset}: ${name} histogram, batch 3 against batch 1`);
    assert.equal(three.ranges.get('u')!.histogram!.counts.reduce((a, b) => a + b, 0), one.ranges.get('u')!.histogram!.counts.reduce((a, b) => a + b, 0), 'u: as many sampled values at any batching');
  }
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


test('min/max of a Relu or Clip output follows from its tapped input, exactly; other methods and untapped inputs keep their taps', async () => {
  const dir = tempDir('derived');
  const file = path.join(dir, 'x.npy');
  const x = randomArray(24 * 16, 3, 2);
  writeNpy(file, 'float32', [24, 16], x);
  const model = buildModel({
    inputs: { x: ['N', 16] }, outputs: { r: ['N', 16], c: ['N', 16], s: ['N', 16], h: ['N', 16], q: ['N', 16] },
    initializers: { lo: { dims: [], data: [-0.5] }, hi: { dims: [], data: [0.25] } },
    nodes: [
      { op: 'Relu', inputs: ['x'], outputs: ['r'] },
      { op: 'Clip', inputs: ['x', 'lo', 'hi'], outputs: ['c'] },
      { op: 'Sigmoid', inputs: ['x'], outputs: ['s'] },
      { op: 'Clip', inputs: ['s', '', 'hi'], outputs: ['h'] },
      { op: 'Relu', inputs: ['s'], outputs: ['q'] },
    ],
  });
  const spec = (tensor: string, method: string): ActivationSpec => ({ tensor, method, type: 'uint8', symmetric: false, node: tensor, op: '', index: 0 });
  const tensors = [spec('x', 'minmax'), spec('r', 'minmax'), spec('c', 'minmax'), spec('s', 'minmax'), spec('h', 'minmax'), spec('q', 'percentile:99')];
  const source = await openSource(file, [{ name: 'x', type: 'float32', shape: ['N', 16] }]);
  const result = await calibrate(model, tensors, source, { batchSize: 5 });
  // h's input s is tapped and observed: derived too. q needs a histogram, so it keeps its tap.
  assert.deepEqual([...result.derived], [['r', 'x'], ['c', 'x'], ['h', 's']]);
  const f = Math.fround;
  const ops: Record<string, (v: number) => number> = { x: (v) => v, r: (v) => Math.max(0, v), c: (v) => Math.min(f(0.25), Math.max(-0.5, v)) };
  const session = await ort.InferenceSession.create(encodeModel(model));
  const sigmoid = (await session.run({ x: new ort.Tensor('float32', x, [24, 16]) })).s.data as Float32Array;
  await session.release();
  for (const name of ['x', 'r', 'c']) {
    const values = Array.from(x, ops[name]);
    assert.equal(result.ranges.get(name)!.min, Math.min(0, ...values), `${name} min`);
    assert.equal(result.ranges.get(name)!.max, Math.max(0, ...values), `${name} max`);
  }
  const hs = Array.from(sigmoid, (v) => Math.min(f(0.25), v));
  assert.equal(result.ranges.get('h')!.max, Math.max(...hs), 'h max: Sigmoid as ONNX Runtime computes it, then the clamp');
  assert.deepEqual(result.shapes.get('c'), [1, 16], 'a derived tensor has its input\'s shape');
});

test('a histogram tensor is sampled alone: no extremes reduced in the run, its histogram spans its sample; percentile 100 and a derived range\'s source keep their exact extremes; a sample gone NaN or infinite stops calibration', async () => {
  const dir = tempDir('sample-only');
  const file = path.join(dir, 'x.npy');
  const x = randomArray(24 * 16, 7, 1);
  // Sample 0 is sampled at 0, 7 and 14 (step 7, samplePhase): the outlier at 3 is not in it.
  const step = sampleStride(16 / 3);
  assert.equal(step, 7);
  x[3] = 1000;
  writeNpy(file, 'float32', [24, 16], x);
  const model = buildModel({
    inputs: { x: ['N', 16] }, outputs: { r: ['N', 16], m: ['N', 16], p: ['N', 16], l: ['N', 16] },
    initializers: { w: { dims: [16], data: randomArray(16, 8, 1).map((v) => Math.abs(v) + 0.5) } },
    nodes: [
      { op: 'Relu', inputs: ['x'], outputs: ['r'] },
      { op: 'Mul', inputs: ['x', 'w'], outputs: ['m'] },
      { op: 'Sigmoid', inputs: ['x'], outputs: ['p'] },
      { op: 'Log', inputs: ['r'], outputs: ['l'] },
    ],
  });
  const spec = (tensor: string, method: string): ActivationSpec => ({ tensor, method, type: 'uint8', symmetric: false, node: tensor, op: '', index: 0 });
  const source = await openSource(file, [{ name: 'x', type: 'float32', shape: ['N', 16] }]);
  const tensors = [spec('x', 'percentile:99'), spec('r', 'minmax'), spec('m', 'mse'), spec('p', 'percentile:100')];
  const known = await inferredDims(model, source.feedShapes, ['x', 'm', 'p']);
  const requests = ['x', 'm', 'p'].map((tensor) => ({ tensor, sample: true, sampleOnly: tensor === 'm', stride: { size: 16, step } }));
  const tapped = tapModel(model, requests, known);
  assert.deepEqual(tapped.taps.map((t) => [t.tensor, t.extremes !== undefined]), [['x', true], ['m', false], ['p', true]]);
  assert.equal(tapped.model.graph!.node.filter((n) => n.opType === 'ReduceMax').length, 2, 'no reduction for the sample alone');

  const result = await calibrate(model, tensors, source, { batchSize: 5, histogramSample: 3 });
  assert.equal(result.strides.get('m'), step);
  const session = await ort.InferenceSession.create(encodeModel(model));
  const exact = await session.run({ x: new ort.Tensor('float32', x, [24, 16]) });
  await session.release();
  const largest = (name: string) => (exact[name].data as Float32Array).reduce((a, b) => Math.max(a, b), -Infinity);
  const histogramOf = (name: string) => result.ranges.get(name)!.histogram!;
  assert.ok(histogramOf('m').max < largest('m') / 2, `m's histogram spans its sample, not the outlier ${largest('m')}: up to ${histogramOf('m').max}`);
  assert.ok(histogramOf('x').max >= 1000, 'x, the source of r\'s derived range, keeps its exact extremes, which bound its histogram');
  assert.equal(result.ranges.get('r')!.max, 1000);
  assert.equal(result.ranges.get('p')!.max, largest('p'), 'percentile 100: the exact largest value');

  // Log of a Relu output is -inf wherever x <= 0; sample 1 is sampled at 5 and 12.
  const positive = Float32Array.from(x, (v) => Math.abs(v) + 0.1);
  positive[16 + samplePhase(1, 16, step)] = 0;
  writeNpy(file, 'float32', [24, 16], positive);
  const zeroed = await openSource(file, [{ name: 'x', type: 'float32', shape: ['N', 16] }]);
  // Binned in this thread (a model this small) or in workers, the same message.
  for (const workers of [undefined, 2]) {
    await assert.rejects(calibrate(model, [spec('l', 'entropy')], zeroed, { batchSize: 1, histogramSample: 3, workers }),
      /tensor "l" of the model becomes NaN or infinite .* on sample 2, whose inputs reach/, `workers: ${workers}`);
    await assert.rejects(calibrate(model, [spec('l', 'entropy')], zeroed, { batchSize: 4, histogramSample: 3, workers }),
      /tensor "l" of the model becomes NaN or infinite .* on samples 1–4/, `workers: ${workers}`);
  }
});
