import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { BATCH_DIM, cellValues, pinInputShapes, rowCount, rowDims, withInputShapes } from '../../main/onnx/edit';
import { createSession, inferredDims, shapedSession } from '../../main/onnx/session';
import { ModelWalk } from '../../main/onnx/walk';
import { GraphView } from '../../main/onnx/graph';
import { encodeModel, loadModel, ModelLoadError, saveModel } from '../../main/onnx/model';
import { DataType, onnx } from '../../main/onnx/proto';
import { floatTensor, tensorToFloat32 } from '../../main/onnx/tensor';
import { buildModel, MODELS, randomArray, tempDir } from '../helpers/build';

async function outputsOf(model: Uint8Array | string, feeds: Record<string, ort.Tensor>): Promise<Record<string, Uint8Array>> {
  const session = await ort.InferenceSession.create(model as never);
  const result = await session.run(feeds);
  await session.release();
  const out: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(result)) {
    const data = (v as ort.Tensor).data as Float32Array;
    out[k] = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  return out;
}

const realModels: Array<[string, string, () => Record<string, ort.Tensor>]> = [
  ['PaddleOCR cls', MODELS.cls, () => ({ x: new ort.Tensor('float32', randomArray(2 * 3 * 48 * 192, 1), [2, 3, 48, 192]) })],
  ['PaddleOCR rec', MODELS.rec, () => ({ x: new ort.Tensor('float32', randomArray(3 * 48 * 320, 2), [1, 3, 48, 320]) })],
  ['PaddleOCR det', MODELS.det, () => ({ x: new ort.Tensor('float32', randomArray(3 * 64 * 64, 3), [1, 3, 64, 64]) })],
  ['Silero VAD', MODELS.vad, () => ({
    input: new ort.Tensor('float32', randomArray(512, 4, 0.1), [1, 512]),
    sr: new ort.Tensor('int64', BigInt64Array.from([16000n]), []),
    h: new ort.Tensor('float32', new Float32Array(128), [2, 1, 64]),
    c: new ort.Tensor('float32', new Float32Array(128), [2, 1, 64]),
  })],
];

for (const [label, file, feeds] of realModels) {
  test(`round trip of ${label}: same bytes, bit-identical outputs`, async () => {
    const original = fs.readFileSync(file);
    const loaded = loadModel(file);
    const encoded = encodeModel(loaded.model);
    assert.equal(Buffer.compare(original, Buffer.from(encoded)), 0, 'decode → encode must reproduce the file');
    const a = await outputsOf(original, feeds());
    const b = await outputsOf(encoded, feeds());
    for (const k of Object.keys(a)) assert.deepEqual(b[k], a[k], `output ${k}`);
  });
}

test('keeps metadata, opsets, value_info and doc strings', () => {
  const model = buildModel({ inputs: { x: [1, 4] }, outputs: { y: [1, 4] }, nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'] }] });
  model.docString = 'a model doc';
  model.metadataProps = [onnx.StringStringEntryProto.create({ key: 'author', value: 'tests' })];
  model.graph!.valueInfo = [model.graph!.output[0]];
  model.graph!.node[0].docString = 'node doc';
  model.opsetImport.push(onnx.OperatorSetIdProto.create({ domain: 'com.microsoft', version: 1 }));
  const dir = tempDir('io');
  saveModel(model, path.join(dir, 'm.onnx'));
  const back = loadModel(path.join(dir, 'm.onnx')).model;
  assert.equal(back.docString, 'a model doc');
  assert.deepEqual(back.metadataProps.map((p) => [p.key, p.value]), [['author', 'tests']]);
  assert.equal(back.graph!.valueInfo.length, 1);
  assert.equal(back.graph!.node[0].docString, 'node doc');
  assert.deepEqual(back.opsetImport.map((o) => o.domain), ['', 'com.microsoft']);
});

test('writes big models as model.onnx + model.onnx.data and reads them back', async () => {
  const dir = tempDir('ext');
  const loaded = loadModel(MODELS.cls);
  const before = encodeModel(loaded.model);
  // The 2 GB threshold is lowered so that a 0.6 MB model exercises the same path.
  const saved = saveModel(loaded.model, path.join(dir, 'cls.onnx'), { externalDataThreshold: 100_000 });
  assert.ok(saved.dataFile && fs.existsSync(saved.dataFile));
  assert.ok(saved.bytes < 100_000, `the .onnx keeps only the graph (${saved.bytes} bytes)`);
  assert.equal(Buffer.compare(Buffer.from(encodeModel(loaded.model)), Buffer.from(before)), 0, 'saving must not alter the model in memory');
  const back = loadModel(saved.file);
  const feeds = () => ({ x: new ort.Tensor('float32', randomArray(3 * 48 * 192, 9), [1, 3, 48, 192]) });
  const a = await outputsOf(MODELS.cls, feeds());
  const b = await outputsOf(saved.file, feeds());
  const c = await outputsOf(encodeModel(back.model), feeds());
  for (const k of Object.keys(a)) {
    assert.deepEqual(b[k], a[k], 'ONNX Runtime reads our external data');
    assert.deepEqual(c[k], a[k], 'we read our external data');
  }
  assert.ok(fs.readdirSync(dir).every((f) => !f.endsWith('.tmp')), 'no temporary files left');
});

test('bad files get a message naming the file and the problem', () => {
  const dir = tempDir('bad');
  const text = path.join(dir, 'notes.onnx');
  fs.writeFileSync(text, 'this is not a model, just text');
  assert.throws(() => loadModel(text), (e: Error) => e instanceof ModelLoadError && e.message.startsWith(text) && /not a(n| readable) ONNX/.test(e.message));
  const truncated = path.join(dir, 'truncated.onnx');
  fs.writeFileSync(truncated, fs.readFileSync(MODELS.cls).subarray(0, 300_000));
  assert.throws(() => loadModel(truncated), (e: Error) => e instanceof ModelLoadError && e.message.includes(truncated));
  assert.throws(() => loadModel(path.join(dir, 'missing.onnx')), /missing\.onnx: no such file/);
  const empty = path.join(dir, 'empty.onnx');
  fs.writeFileSync(empty, '');
  assert.throws(() => loadModel(empty), /empty\.onnx: the file is empty/);
  assert.throws(() => loadModel(dir), /is a folder/);
});

test('a missing external data file is named', () => {
  const dir = tempDir('extmiss');
  const saved = saveModel(loadModel(MODELS.cls).model, path.join(dir, 'cls.onnx'), { externalDataThreshold: 1 });
  fs.rmSync(saved.dataFile!);
  assert.throws(() => loadModel(saved.file), /cls\.onnx: tensor .* external data file "cls\.onnx\.data" is missing/);
});

test('graph view: topological order, producers, consumers, initializers, shapes', () => {
  // Nodes listed out of order on purpose.
  const model = buildModel({
    inputs: { x: ['batch', 4] },
    outputs: { z: ['batch', 4] },
    initializers: { w: { dims: [4, 4], data: randomArray(16, 1) } },
    nodes: [
      { op: 'Relu', inputs: ['y'], outputs: ['z'], name: 'relu' },
      { op: 'MatMul', inputs: ['x', 'w'], outputs: ['y'], name: 'mm' },
    ],
  });
  const view = new GraphView(model);
  assert.deepEqual(view.nodes.map((n) => n.name), ['mm', 'relu']);
  assert.equal(view.producer.get('y')!.name, 'mm');
  assert.deepEqual(view.consumers.get('x')!.map((n) => n.name), ['mm']);
  assert.ok(view.isConstant('w') && !view.isConstant('x'));
  assert.deepEqual(view.inputs, [{ name: 'x', type: 'float', shape: ['batch', 4] }]);
  assert.deepEqual(view.shapes.get('w'), [4, 4]);
  view.recordShape('y', [2, 4]);
  assert.deepEqual(view.shapes.get('y'), [2, 4]);
  assert.equal(view.opset, 17);
  assert.equal(tensorToFloat32(view.initializers.get('w')!).length, 16);
  assert.equal(view.initializers.get('w')!.dataType, DataType.FLOAT);
});

test('withInputShapes: fixed dims and one named batch dim on the inputs, outputs follow, and a real network gives the same outputs at any batch size', async () => {
  const dims = (vi: onnx.IValueInfoProto) => vi.type!.tensorType!.shape!.dim!.map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue)));
  const tiny = buildModel({
    inputs: { x: ['batch', 'width'] }, outputs: { y: ['batch', 'width'] },
    initializers: { w: { dims: [1], data: [2] } }, nodes: [{ op: 'Mul', inputs: ['x', 'w'], outputs: ['y'] }],
  });
  const shaped = withInputShapes(tiny, { x: [null, 5] });
  assert.deepEqual(dims(shaped.graph!.input[0]), ['qs_batch', 5]);
  assert.deepEqual(dims(shaped.graph!.output[0]), ['qs_batch', 5], 'output dims named like input dims follow them');
  assert.deepEqual(dims(pinInputShapes(tiny, { x: { dims: [2, 5] } }).graph!.output[0]), [2, 5]);
  assert.equal(withInputShapes(tiny, undefined), tiny);
  const { model } = loadModel(MODELS.rec);
  const feed = (n: number) => ({ x: new ort.Tensor('float32', randomArray(n * 3 * 48 * 320, n), [n, 3, 48, 320]) });
  const rec = encodeModel(withInputShapes(model, { x: [null, 3, 48, 320] }));
  for (const n of [2, 1]) assert.deepEqual(await outputsOf(rec, feed(n)), await outputsOf(encodeModel(model), feed(n)), `batch ${n}`);
});

test('a cyclic graph is refused', () => {
  const model = buildModel({
    inputs: { x: [1] }, outputs: { b: [1] },
    nodes: [{ op: 'Add', inputs: ['x', 'b'], outputs: ['a'] }, { op: 'Relu', inputs: ['a'], outputs: ['b'] }],
  });
  assert.throws(() => new GraphView(model), /cycle/);
});

test('shape inference without weights: every dim but the batch known where the ops say, the data-dependent ones named; rows and cells follow', async () => {
  const model = buildModel({
    inputs: { x: ['N', 3, 8, 8] }, outputs: { y: ['N', 'K'] },
    initializers: { w: { dims: [4, 3, 3, 3], data: randomArray(108, 1) }, keep: { dims: [2], data: BigInt64Array.of(1n, 0n) } },
    nodes: [
      { op: 'Conv', inputs: ['x', 'w'], outputs: ['c'], attrs: { pads: [1, 1, 1, 1] } },
      { op: 'GlobalAveragePool', inputs: ['c'], outputs: ['p'] },
      { op: 'Flatten', inputs: ['p'], outputs: ['f'] },
      { op: 'Cast', inputs: ['keep'], outputs: ['mask'], attrs: { to: DataType.BOOL } },
      { op: 'Compress', inputs: ['f', 'mask'], outputs: ['y'], attrs: { axis: 1 } },
    ],
  });
  const dims = await inferredDims(model, { x: [null, 3, 8, 8] }, ['c', 'f', 'y']);
  assert.deepEqual(dims.get('c'), [BATCH_DIM, 4, 8, 8]);
  assert.deepEqual(dims.get('f'), [BATCH_DIM, 4]);
  assert.equal(typeof dims.get('y')![1], 'string', 'Compress keeps a number of columns only the data says');
  assert.deepEqual(rowDims(dims.get('c')), [BATCH_DIM]);
  assert.deepEqual(rowDims([2048, 4]), [], 'more rows than a sample should hand over: the tensor whole');
  assert.deepEqual(rowDims([7]), []);
  const cells = cellValues([Float32Array.of(1, 2, 3, 9, 5)], [[BATCH_DIM], [], [2]].map((lead) => rowCount(lead, 2)));
  assert.deepEqual([...cells(0)], [1, 2]);
  assert.deepEqual([...cells(1)], [3]);
  assert.deepEqual([...cells(2)], [9, 5]);
  assert.throws(() => cellValues([Float32Array.of(1, 2, 3)], [2, 2]), /3 values where shape inference gave 4/);
  const parted = cellValues([Float32Array.of(1, 2), Float32Array.of(3, 9, 5)], [2, 0, 1, 2], [1]);
  assert.deepEqual([0, 1, 2, 3].map((c) => [...parted(c)]), [[1, 2], [], [3], [9, 5]]);
  assert.throws(() => cellValues([Float32Array.of(1, 2), Float32Array.of(3)], [2, 2], [1]), /1 values in part 2 of 2 of its joined output where shape inference gave 2/);
  const unloadable = buildModel({ inputs: { x: ['N', 3] }, outputs: { y: ['N', 3] }, nodes: [{ op: 'NoSuchOp', inputs: ['x'], outputs: ['y'] }] });
  assert.equal((await inferredDims(unloadable, undefined, ['y'])).size, 0, 'a model ONNX Runtime cannot load: nothing known, the run reports why');
});

test('shape inference follows a Reshape to a shape computed from the batch (Shape, Slice, Concat): the batch where a dim follows it, unknown where it is a multiple of it', async () => {
  const model = buildModel({
    inputs: { x: ['N', 4, 6] }, outputs: { r: ['N', 4, 'K'], t: ['M', 12] },
    initializers: {
      starts: { dims: [1], data: BigInt64Array.of(0n) }, ends: { dims: [1], data: BigInt64Array.of(2n) },
      rest: { dims: [1], data: BigInt64Array.of(-1n) }, twelve: { dims: [2], data: BigInt64Array.of(-1n, 12n) },
    },
    nodes: [
      { op: 'Shape', inputs: ['x'], outputs: ['s'] },
      { op: 'Slice', inputs: ['s', 'starts', 'ends'], outputs: ['lead'] },
      { op: 'Concat', inputs: ['lead', 'rest'], outputs: ['target'], attrs: { axis: 0 } },
      { op: 'Reshape', inputs: ['x', 'target'], outputs: ['r'] },
      { op: 'Reshape', inputs: ['x', 'twelve'], outputs: ['t'] },
    ],
  });
  const dims = await inferredDims(model, { x: [null, 4, 6] }, ['r', 't']);
  assert.deepEqual(dims.get('r'), [BATCH_DIM, 4, 6]);
  assert.deepEqual(dims.get('t'), ['', 12], 'twice the batch: not a size, not the batch');
  const symbolic = await inferredDims(model, undefined, ['r']);
  assert.notDeepEqual(symbolic.get('r'), [BATCH_DIM, 4, 6], 'data of varying shapes: the batch stays symbolic');
});

test('a model that cannot take the data\'s input shapes says which shapes it was given', async () => {
  const model = buildModel({
    inputs: { x: ['N', 1, 'H', 'W'] }, outputs: { y: ['N', 1, 4, 4] },
    initializers: { b: { dims: [1, 1, 4, 4], data: randomArray(16, 2) } },
    nodes: [{ op: 'Add', inputs: ['x', 'b'], outputs: ['y'] }],
  });
  await assert.rejects(shapedSession(model, { x: [null, 1, 3, 3] }, 'test model'), /cannot load the test model: .*\(its inputs fixed to the data's shapes: x N×1×3×3; the model may not accept inputs of that size\)/);
  const fits = await shapedSession(model, { x: [null, 1, 4, 4] }, 'test model');
  await fits.release();
});

test('a model walked part by part gives what one run gives, keeps only what a later part reads, feeds inputs read late, and names an input nobody gives', async () => {
  // x → relu → a; a → neg → b; a + b → c; c · g → d (g given); d + x → e; x → abs → unused (needed by no output).
  const model = buildModel({
    inputs: { x: ['n', 3], g: [1] }, outputs: { b: ['n', 3], e: ['n', 3] },
    nodes: [
      { op: 'Relu', inputs: ['x'], outputs: ['a'] }, { op: 'Neg', inputs: ['a'], outputs: ['b'] }, { op: 'Abs', inputs: ['x'], outputs: ['unused'] },
      { op: 'Add', inputs: ['a', 'b'], outputs: ['c'] }, { op: 'Mul', inputs: ['c', 'g'], outputs: ['d'] }, { op: 'Add', inputs: ['d', 'x'], outputs: ['e'] },
    ],
  });
  const batches = [1, 3].map((n, k) => ({ x: new ort.Tensor('float32', randomArray(n * 3, 40 + k), [n, 3]) }));
  const g = new ort.Tensor('float32', Float32Array.of(2), [1]);
  const whole = await ort.InferenceSession.create(encodeModel(model));
  const expected = await Promise.all(batches.map((b) => whole.run({ ...b, g })));
  await whole.release();
  const walk = new ModelWalk(model, ['b', 'e'], batches, {});
  const got: Array<Record<string, ort.Tensor>> = [];
  const outputs = (name: string) => model.graph!.output.filter((o) => o.name === name);
  await walk.step(outputs('b'), {}, 'first part', (out) => void got.push({ b: out.b as ort.Tensor }));
  // a and b are read by the Add still to run; x comes from the batches, not from the walk.
  assert.deepEqual(walk.holding.sort(), ['a', 'b']);
  let k = 0;
  await walk.step(outputs('e'), { g }, 'second part', (out) => void Object.assign(got[k++], { e: out.e as ort.Tensor }));
  assert.deepEqual(walk.holding, []);
  // A walk with no room to keep anything runs each part from the inputs again, to the same values.
  const forgetful = new ModelWalk(model, ['b', 'e'], batches, {}, 0);
  const again: ort.Tensor[] = [];
  await forgetful.step(outputs('b'), {}, 'first part', () => undefined);
  assert.deepEqual(forgetful.holding, []);
  await forgetful.step(outputs('e'), { g }, 'second part', (out) => void again.push(out.e as ort.Tensor));
  again.forEach((e, b) => assert.deepEqual([...(e.data as Float32Array)], [...(expected[b].e as ort.Tensor).data as Float32Array], `e without keeping, batch ${b}`));
  // A walk asked for b alone keeps nothing: no part it will run reads a.
  const short = new ModelWalk(model, ['b'], batches, {});
  await short.step(outputs('b'), {}, 'first part', () => undefined);
  assert.deepEqual(short.holding, []);
  // An input that is also an initializer (IR 3 declares weights so) takes the initializer when nobody gives it.
  const declared = onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...model.graph!, initializer: [floatTensor('g', [1], Float32Array.of(2))] }) });
  const fromInitializer: ort.Tensor[] = [];
  await new ModelWalk(declared, ['e'], batches, {}).step(outputs('e'), {}, 'whole', (out) => void fromInitializer.push(out.e as ort.Tensor));
  fromInitializer.forEach((e, b) => assert.deepEqual([...(e.data as Float32Array)], [...(expected[b].e as ort.Tensor).data as Float32Array], `e, g from its initializer, batch ${b}`));
  await assert.rejects(new ModelWalk(model, ['e'], batches, {}).step(outputs('e'), {}, 'part without g', () => undefined), /reads g, which neither the data, the caller nor an earlier part gives/);
  expected.forEach((e, b) => {
    assert.deepEqual([...(got[b].b.data as Float32Array)], [...(e.b as ort.Tensor).data as Float32Array], `b, batch ${b}`);
    assert.deepEqual([...(got[b].e.data as Float32Array)], [...(e.e as ort.Tensor).data as Float32Array], `e, batch ${b}`);
  });
});

test('sessions created at once or one after another each run their own model, though the engine encodes models into memory it reuses', async () => {
  const scaled = (k: number) => buildModel({
    inputs: { x: [1, 4] }, outputs: { y: [1, 4] },
    initializers: { k: { dims: [1, 4], data: new Float32Array(4).fill(k) } },
    nodes: [{ op: 'Mul', inputs: ['x', 'k'], outputs: ['y'] }],
  });
  const x = { x: new ort.Tensor('float32', Float32Array.of(1, 2, 3, 4), [1, 4]) };
  const check = async (session: ort.InferenceSession, k: number) => {
    assert.deepEqual(Array.from((await session.run(x)).y.data as Float32Array), [k, 2 * k, 3 * k, 4 * k]);
    await session.release();
  };
  const together = await Promise.all([2, 3, 5].map((k) => createSession(scaled(k), `model × ${k}`)));
  for (const [i, k] of [2, 3, 5].entries()) await check(together[i], k);
  for (const k of [7, 11]) await check(await createSession(scaled(k), `model × ${k}`), k);
});
