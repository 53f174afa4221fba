import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import Long = require('long');
import { recipeFor } from '../../shared/backends';
import type { Recipe } from '../../shared/recipe';
import { writeNpy } from '../../main/data/npy';
import { quantize } from '../../main/jobs/quantize';
import { prepareModel } from '../../main/plan/prepare';
import { GraphView } from '../../main/onnx/graph';
import { loadModel, saveModel } from '../../main/onnx/model';
import { DataType, toNumber } from '../../main/onnx/proto';
import { tensorToFloat32 } from '../../main/onnx/tensor';
import { buildModel, MODELS, randomArray, ROOT, tempDir } from '../helpers/build';

function convModel() {
  return buildModel({
    inputs: { x: ['batch', 3, 8, 8] },
    outputs: { y: ['batch', 4] },
    initializers: {
      w1: { dims: [8, 3, 3, 3], data: randomArray(8 * 27, 1, 0.5) },
      b1: { dims: [8], data: randomArray(8, 2, 0.1) },
      w2: { dims: [8, 8, 1, 1], data: randomArray(64, 3, 0.5) },
      wf: { dims: [4, 8], data: randomArray(32, 4, 0.5) },
      bf: { dims: [4], data: randomArray(4, 5, 0.1) },
    },
    nodes: [
      { op: 'Conv', inputs: ['x', 'w1', 'b1'], outputs: ['c1'], name: 'conv1', attrs: { pads: [1, 1, 1, 1] } },
      { op: 'Relu', inputs: ['c1'], outputs: ['r1'], name: 'relu1' },
      { op: 'Conv', inputs: ['r1', 'w2'], outputs: ['c2'], name: 'conv2' },
      { op: 'Add', inputs: ['c2', 'r1'], outputs: ['s'], name: 'add' },
      { op: 'GlobalAveragePool', inputs: ['s'], outputs: ['p'], name: 'pool' },
      { op: 'Flatten', inputs: ['p'], outputs: ['f'], name: 'flatten' },
      { op: 'Gemm', inputs: ['f', 'wf', 'bf'], outputs: ['y'], name: 'fc', attrs: { transB: 1 } },
    ],
  });
}

function writeModel(dir: string, model = convModel()): string {
  const file = path.join(dir, 'model.onnx');
  saveModel(model, file);
  return file;
}

function writeData(dir: string, n: number, shape: number[], seed: number): string {
  const file = path.join(dir, `data-${seed}.npy`);
  writeNpy(file, 'float32', [n, ...shape], randomArray(n * shape.reduce((a, b) => a * b, 1), seed));
  return file;
}

function initializer(view: GraphView, name: string) {
  return view.initializers.get(name);
}

test('static cpu: QDQ around every quantized op, int8 per-channel weights, int32 bias, Relu folded, runs in ONNX Runtime', async () => {
  const dir = tempDir('static');
  const model = writeModel(dir);
  const data = writeData(dir, 16, [3, 8, 8], 7);
  // int8 weights on any CPU (a saturating one would get uint8 ones by default: numerics.test.ts).
  const { report, files } = await quantize({ model, recipe: recipeFor('cpu', 'a8w8'), calibration: data, out: path.join(dir, 'q.onnx'), saturationFix: false });
  const q = new GraphView(loadModel(files.model).model);
  const ops = q.nodes.map((n) => n.op);
  assert.ok(!ops.includes('Relu'), 'Relu after the conv is folded into its quantization');
  const dqW1 = q.nodes.find((n) => n.op === 'DequantizeLinear' && n.inputs[0].startsWith('w1'))!;
  assert.equal(initializer(q, dqW1.inputs[0])!.dataType, DataType.INT8);
  assert.equal(toNumber(dqW1.proto.attribute.find((a) => a.name === 'axis')!.i), 0, 'Conv weights per output channel');
  assert.deepEqual(Array.from(tensorToFloat32(initializer(q, dqW1.inputs[2])!)), new Array(8).fill(0), 'symmetric weights: zero points 0');
  const dqFc = q.nodes.find((n) => n.op === 'DequantizeLinear' && n.inputs[0].startsWith('wf'))!;
  assert.equal(toNumber(dqFc.proto.attribute.find((a) => a.name === 'axis')!.i), 0, 'Gemm with transB: output channel is axis 0');
  const dqB1 = q.nodes.find((n) => n.op === 'DequantizeLinear' && n.inputs[0].startsWith('b1'))!;
  assert.equal(initializer(q, dqB1.inputs[0])!.dataType, DataType.INT32, 'bias is int32');
  const inputScale = tensorToFloat32(initializer(q, 'x_scale')!)[0];
  const wScales = tensorToFloat32(initializer(q, dqW1.inputs[1])!);
  const bScales = tensorToFloat32(initializer(q, dqB1.inputs[1])!);
  for (let i = 0; i < 8; i++) assert.equal(bScales[i], Math.fround(inputScale * wScales[i]), 'bias scale = input scale × weight scale');
  const qx = q.nodes.find((n) => n.op === 'QuantizeLinear' && n.inputs[0] === 'x')!;
  assert.equal(initializer(q, qx.inputs[2])!.dataType, DataType.UINT8, 'activations uint8');
  // One shared QDQ for r1, read by both conv2 and add.
  const r1Q = q.nodes.filter((n) => n.op === 'QuantizeLinear' && n.inputs[0] === 'r1');
  assert.equal(r1Q.length, 1);
  // Flatten keeps its input's quantization.
  const fQ = q.nodes.find((n) => n.op === 'QuantizeLinear' && n.inputs[0] === 'f')!;
  const pQ = q.nodes.find((n) => n.op === 'QuantizeLinear' && n.inputs[0] === 'p')!;
  assert.equal(fQ.inputs[1], pQ.inputs[1]);
  assert.equal(report.float.find((f) => f.node === 'relu1')?.reason.startsWith('folded into conv1'), true);
  const layer = (name: string) => report.layers.find((l) => l.name === name)!;
  assert.equal(layer('r1').weightSqnr, report.weights.find((w) => w.node === 'conv1')!.sqnr, 'a folded ReLU\'s row carries its conv\'s weight SQNR');
  assert.equal(layer('x').weightSqnr, undefined, 'the model input has no weight');
  assert.equal(layer('y').weightSqnr, report.weights.find((w) => w.node === 'fc')!.sqnr);
  const session = await ort.InferenceSession.create(files.model);
  const out = await session.run({ x: new ort.Tensor('float32', randomArray(2 * 3 * 64, 8), [2, 3, 8, 8]) });
  assert.deepEqual(out.y.dims, [2, 4]);
  assert.ok(report.layers.length >= 6);
  for (const l of report.layers) assert.ok(l.sqnr === 'inf' || l.sqnr > 15, `${l.name}: ${l.sqnr} dB`);
  assert.ok(typeof report.outputs[0].sqnr === 'number' && report.outputs[0].sqnr > 20);
  assert.ok(fs.existsSync(files.recipe) && fs.existsSync(files.ranges!) && fs.existsSync(files.report));
});

test('xnnpack: int8 activations, weights symmetric in [-127, 127]', async () => {
  const dir = tempDir('xnn');
  const model = writeModel(dir);
  const { files } = await quantize({ model, recipe: recipeFor('xnnpack'), calibration: writeData(dir, 8, [3, 8, 8], 3), out: path.join(dir, 'x.onnx') });
  const q = new GraphView(loadModel(files.model).model);
  for (const n of q.nodes.filter((x) => x.op === 'QuantizeLinear')) {
    assert.equal(initializer(q, n.inputs[2])!.dataType, DataType.INT8, `${n.name} activation type`);
  }
  for (const n of q.nodes.filter((x) => x.op === 'DequantizeLinear' && /^w/.test(x.inputs[0]))) {
    const values = tensorToFloat32(initializer(q, n.inputs[0])!);
    assert.ok(values.every((v) => v >= -127 && v <= 127), `${n.inputs[0]} within [-127, 127]`);
    assert.ok(tensorToFloat32(initializer(q, n.inputs[2])!).every((z) => z === 0));
  }
});

test('per-tensor ranges can be reused: exclusions re-convert without calibrating', async () => {
  const dir = tempDir('reuse');
  const model = writeModel(dir);
  const first = await quantize({ model, recipe: recipeFor('cpu'), calibration: writeData(dir, 8, [3, 8, 8], 4), out: path.join(dir, 'a.onnx') });
  const recipe: Recipe = { ...recipeFor('cpu'), excludeNodes: ['conv2'] };
  const second = await quantize({ model, recipe, ranges: first.files.ranges, evaluation: writeData(dir, 4, [3, 8, 8], 5), out: path.join(dir, 'b.onnx') });
  assert.equal(second.report.samples.calibration, 8);
  assert.ok(second.report.float.some((f) => f.node === 'conv2' && /recipe/.test(f.reason)));
  const q = new GraphView(loadModel(second.files.model).model);
  const conv2 = q.nodes.find((n) => n.name === 'conv2')!;
  assert.equal(conv2.inputs[1], 'w2', 'excluded conv keeps its float weight');
  assert.ok(second.report.timings.calibrate < first.report.timings.calibrate + 50);
});

test('dynamic int8 and 8-bit weight-only run in ONNX Runtime', async () => {
  const dir = tempDir('dyn');
  const model = writeModel(dir);
  const dyn = await quantize({ model, recipe: recipeFor('cpu', 'dynamic-int8'), evaluation: writeData(dir, 4, [3, 8, 8], 6), out: path.join(dir, 'd.onnx') });
  const ops = new GraphView(loadModel(dyn.files.model).model).nodes.map((n) => n.op);
  assert.ok(ops.includes('DynamicQuantizeLinear') && ops.includes('ConvInteger') && ops.includes('DynamicQuantizeMatMul'), ops.join(','));
  assert.ok(typeof dyn.report.outputs[0].sqnr === 'number' && dyn.report.outputs[0].sqnr > 20, `dynamic output SQNR ${dyn.report.outputs[0].sqnr}`);
  const w8 = await quantize({ model, recipe: recipeFor('cpu', 'w8'), evaluation: writeData(dir, 4, [3, 8, 8], 6), out: path.join(dir, 'w8.onnx') });
  assert.ok(typeof w8.report.outputs[0].sqnr === 'number' && w8.report.outputs[0].sqnr > 25);
});

test('4-bit MatMulNBits equals the float model run with the dequantized weights', async () => {
  const dir = tempDir('nbits');
  const k = 96; // not a multiple of the block size: exercises padding
  const n = 24;
  const w = randomArray(k * n, 11);
  const model = buildModel({ inputs: { x: ['batch', k] }, outputs: { y: ['batch', n] }, initializers: { w: { dims: [k, n], data: w } },
    nodes: [{ op: 'MatMul', inputs: ['x', 'w'], outputs: ['y'], name: 'mm' }] });
  const file = writeModel(dir, model);
  for (const symmetric of [true, false]) {
    const recipe: Recipe = { ...recipeFor('cpu', 'w4'), blockSize: 64, weightSymmetric: symmetric };
    const { files, report } = await quantize({ model: file, recipe, evaluation: writeData(dir, 4, [k], 12), out: path.join(dir, `q4-${symmetric}.onnx`) });
    const q = new GraphView(loadModel(files.model).model);
    assert.deepEqual(q.nodes.map((x) => x.op), ['MatMulNBits']);
    // Reference: dequantize our packed blocks by hand and multiply in float.
    const node = q.nodes[0];
    const packed = q.initializers.get(node.inputs[1])!.rawData;
    const scales = tensorToFloat32(q.initializers.get(node.inputs[2])!);
    const zps = node.inputs[3] ? q.initializers.get(node.inputs[3])!.rawData : undefined;
    const blocks = Math.ceil(k / 64);
    const deq = new Float32Array(k * n);
    for (let col = 0; col < n; col++) {
      for (let r = 0; r < k; r++) {
        const blk = Math.floor(r / 64);
        const j = r % 64;
        const byte = packed[(col * blocks + blk) * 32 + (j >> 1)];
        const v = j & 1 ? byte >> 4 : byte & 15;
        const zpByte = zps ? zps[col * Math.ceil(blocks / 2) + (blk >> 1)] : 0;
        const zp = zps ? (blk & 1 ? zpByte >> 4 : zpByte & 15) : 8;
        deq[r * n + col] = (v - zp) * scales[col * blocks + blk];
      }
    }
    const ref = buildModel({ inputs: { x: ['batch', k] }, outputs: { y: ['batch', n] }, initializers: { w: { dims: [k, n], data: deq } },
      nodes: [{ op: 'MatMul', inputs: ['x', 'w'], outputs: ['y'] }] });
    const refFile = path.join(dir, 'ref.onnx');
    saveModel(ref, refFile);
    const x = new ort.Tensor('float32', randomArray(3 * k, 13), [3, k]);
    const a = (await (await ort.InferenceSession.create(files.model)).run({ x })).y.data as Float32Array;
    const b = (await (await ort.InferenceSession.create(refFile)).run({ x })).y.data as Float32Array;
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-4 * (1 + Math.abs(b[i])), `y[${i}] ${a[i]} vs ${b[i]}`);
    assert.ok(typeof report.weights[0].sqnr === 'number' && report.weights[0].sqnr > 15);
  }
});

test('failures and cancel leave nothing written; the input is never overwritten', async () => {
  const dir = tempDir('cancel');
  const model = writeModel(dir);
  const before = fs.readFileSync(model);
  await assert.rejects(quantize({ model, recipe: recipeFor('cpu'), calibration: writeData(dir, 4, [3, 8, 8], 1), out: model }), /refusing to write over the input model/);
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(quantize({ model, recipe: recipeFor('cpu'), calibration: writeData(dir, 64, [3, 8, 8], 2), out: path.join(dir, 'c.onnx'), signal: controller.signal }), /cancelled/);
  await assert.rejects(quantize({ model, recipe: recipeFor('cpu'), calibration: writeData(dir, 4, [3, 9, 9], 3), out: path.join(dir, 'e.onnx') }), /expects \[batch, 3, 8, 8\]/);
  assert.deepEqual(fs.readFileSync(model), before);
  assert.deepEqual(fs.readdirSync(dir).filter((f) => /^(c|e)\./.test(f) || f.endsWith('.tmp')), []);
});

test('xnnpack refuses what it cannot do, with the reason', async () => {
  const dir = tempDir('refuse');
  const model = writeModel(dir);
  await assert.rejects(quantize({ model, recipe: { ...recipeFor('xnnpack'), kind: 'weight-only' }, out: path.join(dir, 'r.onnx') }), /xnnpack: weight-only quantization is not supported/);
  await assert.rejects(quantize({ model, recipe: { ...recipeFor('xnnpack'), activationType: 'uint16' }, calibration: 'random:2', out: path.join(dir, 'r.onnx') }), /xnnpack: activations cannot be uint16/);
});

test('real models: PaddleOCR cls (sample images) and det quantize, run and report', async () => {
  const dir = tempDir('real');
  const sample = path.join(ROOT, 'resources', 'sample');
  const cls = await quantize({ model: path.join(sample, 'cls.onnx'), recipe: recipeFor('xnnpack'), calibration: path.join(sample, 'calibration'),
    preprocess: { size: [48, 192], mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }, out: path.join(dir, 'cls.onnx') });
  assert.ok(cls.report.layers.length > 30);
  assert.ok(typeof cls.report.outputs[0].sqnr === 'number' && cls.report.outputs[0].sqnr > 15, `cls output SQNR ${cls.report.outputs[0].sqnr}`);
  const det = await quantize({ model: MODELS.det, recipe: recipeFor('cpu'), calibration: writeData(dir, 2, [3, 64, 64], 21), out: path.join(dir, 'det.onnx') });
  assert.ok(det.report.layers.length > 50);
  await (await ort.InferenceSession.create(det.files.model)).release();
});

test('Silero VAD: its convolutions sit inside If branches; weight-only int8 reaches them and the report names the sensitive STFT basis', async () => {
  const dir = tempDir('vad');
  const n = 6;
  const audio = Float32Array.from({ length: n * 512 }, (_, i) => 0.3 * Math.sin(i * 0.05) * Math.sin(i * 0.0031) + 0.01 * Math.sin(i * 1.7));
  writeNpy(path.join(dir, 'input.npy'), 'float32', [n, 512], audio);
  writeNpy(path.join(dir, 'sr.npy'), 'int64', [n], BigInt64Array.from({ length: n }, () => 16000n));
  writeNpy(path.join(dir, 'h.npy'), 'float32', [n, 2, 1, 64], new Float32Array(n * 128));
  writeNpy(path.join(dir, 'c.npy'), 'float32', [n, 2, 1, 64], new Float32Array(n * 128));
  const manifest = path.join(dir, 'manifest.json');
  fs.writeFileSync(manifest, JSON.stringify({ inputs: { input: 'input.npy', sr: 'sr.npy', h: 'h.npy', c: 'c.npy' } }));
  await assert.rejects(quantize({ model: MODELS.vad, recipe: recipeFor('cpu'), calibration: manifest, out: path.join(dir, 's.onnx') }),
    /nothing to quantize: Conv .* inside a control-flow subgraph: static quantization needs its activations; use weight-only/);
  const all = await quantize({ model: MODELS.vad, recipe: recipeFor('cpu', 'w8'), evaluation: manifest, out: path.join(dir, 'all.onnx') });
  assert.equal(all.report.weights.length, 36, 'every Conv weight of both sample-rate branches');
  const stft = ['If_25/then_branch/Conv_73', 'If_25/else_branch/Conv_547'];
  const kept = await quantize({ model: MODELS.vad, recipe: { ...recipeFor('cpu', 'w8'), excludeNodes: stft }, evaluation: manifest, out: path.join(dir, 'kept.onnx') });
  const sqnr = (r: typeof all.report) => r.outputs.map((o) => (o.sqnr === 'inf' ? Infinity : o.sqnr));
  assert.ok(sqnr(kept.report).every((s) => s > 20), `outputs with the STFT basis in float: ${sqnr(kept.report)}`);
  assert.ok(Math.min(...sqnr(all.report)) < Math.min(...sqnr(kept.report)), 'quantizing the STFT basis costs accuracy');
  assert.ok(kept.report.sizes.quantizedBytes < all.report.sizes.floatBytes && all.report.sizes.quantizedBytes < kept.report.sizes.quantizedBytes);
  await (await ort.InferenceSession.create(kept.files.model)).release();
});

test('static QDQ over the listed op set runs in ONNX Runtime: ConvTranspose, MatMul of two activations, Softmax, LayerNormalization, HardSwish, Sigmoid, Concat, pooling', async () => {
  const dir = tempDir('ops');
  const model = buildModel({
    inputs: { x: ['batch', 4, 6, 6] },
    outputs: { y: ['batch', 8, 8] },
    initializers: {
      wt: { dims: [4, 4, 3, 3], data: randomArray(144, 31, 0.3) },
      gamma: { dims: [8], data: new Float32Array(8).fill(1) },
      beta: { dims: [8], data: new Float32Array(8) },
      shape: { dims: [3], data: BigInt64Array.of(0n, 8n, -1n) },
    },
    nodes: [
      { op: 'ConvTranspose', inputs: ['x', 'wt'], outputs: ['ct'], name: 'deconv', attrs: { strides: [1, 1], pads: [1, 1, 1, 1] } },
      { op: 'HardSwish', inputs: ['ct'], outputs: ['hs'], name: 'hswish' },
      { op: 'Sigmoid', inputs: ['x'], outputs: ['sg'], name: 'sigmoid' },
      { op: 'Concat', inputs: ['hs', 'sg'], outputs: ['cat'], name: 'concat', attrs: { axis: 1 } },
      { op: 'AveragePool', inputs: ['cat'], outputs: ['ap'], name: 'avgpool', attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } },
      { op: 'MaxPool', inputs: ['ap'], outputs: ['mp'], name: 'maxpool', attrs: { kernel_shape: [2, 2], strides: [2, 2] } },
      { op: 'Reshape', inputs: ['mp', 'shape'], outputs: ['seq'], name: 'reshape' },
      { op: 'Transpose', inputs: ['seq'], outputs: ['seqT'], name: 'transpose', attrs: { perm: [0, 2, 1] } },
      { op: 'MatMul', inputs: ['seq', 'seqT'], outputs: ['att'], name: 'scores' },
      { op: 'Softmax', inputs: ['att'], outputs: ['prob'], name: 'softmax', attrs: { axis: -1 } },
      { op: 'LayerNormalization', inputs: ['prob', 'gamma', 'beta'], outputs: ['y'], name: 'layernorm', attrs: { axis: -1 } },
    ],
  });
  const file = writeModel(dir, model);
  const { report, files } = await quantize({ model: file, recipe: recipeFor('cpu'), calibration: writeData(dir, 8, [4, 6, 6], 32), out: path.join(dir, 'q.onnx') });
  const quantizedOps = new Set(report.layers.map((l) => l.op));
  for (const op of ['ConvTranspose', 'HardSwish', 'Sigmoid', 'Concat', 'AveragePool', 'MaxPool', 'MatMul', 'Softmax', 'LayerNormalization']) {
    assert.ok(quantizedOps.has(op), `${op} output quantized`);
  }
  const q = new GraphView(loadModel(files.model).model);
  const dqT = q.nodes.find((n) => n.op === 'DequantizeLinear' && n.inputs[0].startsWith('wt'))!;
  assert.equal(toNumber(dqT.proto.attribute.find((a) => a.name === 'axis')!.i), 1, 'ConvTranspose weights per output channel: axis 1');
  const session = await ort.InferenceSession.create(files.model);
  const out = await session.run({ x: new ort.Tensor('float32', randomArray(2 * 144, 33), [2, 4, 6, 6]) });
  assert.deepEqual(out.y.dims, [2, 8, 8]);
  assert.ok(typeof report.outputs[0].sqnr === 'number' && report.outputs[0].sqnr > 10, `output SQNR ${report.outputs[0].sqnr}`);
});

test('per-tensor overrides: one tensor kept in float, one in 16 bits', async () => {
  const dir = tempDir('override');
  const model = writeModel(dir);
  const recipe: Recipe = { ...recipeFor('cpu'), overrides: { p: { float: true }, r1: { type: 'uint16' } } };
  const { files, report } = await quantize({ model, recipe, calibration: writeData(dir, 8, [3, 8, 8], 41), out: path.join(dir, 'o.onnx') });
  const q = new GraphView(loadModel(files.model).model);
  assert.ok(!q.nodes.some((n) => n.op === 'QuantizeLinear' && n.inputs[0] === 'p'), 'p stays float');
  const r1 = q.nodes.find((n) => n.op === 'QuantizeLinear' && n.inputs[0] === 'r1')!;
  assert.equal(q.initializers.get(r1.inputs[2])!.dataType, DataType.UINT16);
  assert.equal(report.layers.find((l) => l.name === 'r1')!.type, 'uint16');
  await (await ort.InferenceSession.create(files.model)).release();
});

test('grouped ConvTranspose with a bias: per-tensor weights, a bias scale that lines up, runs in ONNX Runtime', async () => {
  const dir = tempDir('gct');
  const model = buildModel({
    inputs: { x: ['batch', 4, 5, 5] },
    outputs: { y: ['batch', 6, 5, 5] },
    initializers: { w: { dims: [4, 3, 3, 3], data: randomArray(108, 51, 0.3) }, b: { dims: [6], data: randomArray(6, 52, 0.1) } },
    nodes: [{ op: 'ConvTranspose', inputs: ['x', 'w', 'b'], outputs: ['y'], name: 'deconv', attrs: { group: 2, pads: [1, 1, 1, 1] } }],
  });
  const file = writeModel(dir, model);
  const { report, files } = await quantize({ model: file, recipe: recipeFor('cpu'), calibration: writeData(dir, 6, [4, 5, 5], 53), out: path.join(dir, 'q.onnx') });
  assert.equal(report.weights[0].granularity, 'per-tensor');
  const out = await (await ort.InferenceSession.create(files.model)).run({ x: new ort.Tensor('float32', randomArray(100, 54), [1, 4, 5, 5]) });
  assert.ok((out.y.data as Float32Array).every(Number.isFinite));
  assert.ok(typeof report.outputs[0].sqnr === 'number' && report.outputs[0].sqnr > 20, `output SQNR ${report.outputs[0].sqnr}`);
});

test('the recipe\'s sample count limits calibration, not evaluation', async () => {
  const dir = tempDir('samples');
  const model = writeModel(dir);
  const { report } = await quantize({ model, recipe: { ...recipeFor('cpu'), calibrationSamples: 4 }, calibration: writeData(dir, 16, [3, 8, 8], 61),
    evaluation: writeData(dir, 6, [3, 8, 8], 62), out: path.join(dir, 's.onnx') });
  assert.deepEqual(report.samples, { calibration: 4, evaluation: 6 });
});

test('opset 9 models: Slice to INT64_MAX and Upsample survive the move to opset 11 with the same outputs', async () => {
  const dir = tempDir('opset9');
  const model = buildModel({
    inputs: { x: [1, 2, 4, 4] },
    outputs: { y: [1, 2, 8, 4] },
    initializers: { w: { dims: [2, 2, 1, 1], data: randomArray(4, 71) }, scales: { dims: [4], data: [1, 1, 2, 2] } },
    nodes: [
      { op: 'Conv', inputs: ['x', 'w'], outputs: ['c'], name: 'conv' },
      { op: 'Upsample', inputs: ['c', 'scales'], outputs: ['u'], name: 'up', attrs: { mode: 'nearest' } },
      { op: 'Slice', inputs: ['u'], outputs: ['y'], name: 'slice', attrs: { starts: [0], ends: [Number.MAX_SAFE_INTEGER * 1024], axes: [3] } },
    ],
    opset: 9,
  });
  // The attribute must hold exactly INT64_MAX, which a JavaScript number cannot.
  model.graph!.node[2].attribute.find((a) => a.name === 'ends')!.ints = [Long.MAX_VALUE];
  const file = writeModel(dir, model);
  const { report, files } = await quantize({ model: file, recipe: recipeFor('cpu'), calibration: writeData(dir, 4, [2, 4, 4], 72), out: path.join(dir, 'q.onnx') });
  assert.ok(report.warnings.some((w) => /from opset 9 to 11/.test(w)));
  const x = new ort.Tensor('float32', randomArray(32, 73), [1, 2, 4, 4]);
  const float = await (await ort.InferenceSession.create(file)).run({ x });
  const quant = await (await ort.InferenceSession.create(files.model)).run({ x });
  assert.deepEqual(quant.y.dims, float.y.dims);
  assert.deepEqual(float.y.dims, [1, 2, 8, 8]);
});

test('MaxPool indices stay int64, a graph input that is also an output passes through, an excluded Relu is not folded', async () => {
  const dir = tempDir('edges');
  const model = buildModel({
    inputs: { x: ['batch', 2, 4, 4] },
    outputs: { y: ['batch', 2, 2, 2], x: ['batch', 2, 4, 4] },
    initializers: { w: { dims: [2, 2, 1, 1], data: randomArray(4, 81) }, w2: { dims: [2, 2, 1, 1], data: randomArray(4, 82) } },
    nodes: [
      { op: 'Conv', inputs: ['x', 'w'], outputs: ['c'], name: 'conv' },
      { op: 'Relu', inputs: ['c'], outputs: ['r'], name: 'relu' },
      { op: 'Conv', inputs: ['r', 'w2'], outputs: ['c2'], name: 'conv2' },
      { op: 'MaxPool', inputs: ['c2'], outputs: ['y', 'idx'], name: 'pool', attrs: { kernel_shape: [2, 2], strides: [2, 2] } },
    ],
  });
  const file = writeModel(dir, model);
  const recipe: Recipe = { ...recipeFor('cpu'), excludeNodes: ['relu'] };
  const { report, files } = await quantize({ model: file, recipe, calibration: writeData(dir, 4, [2, 4, 4], 83), out: path.join(dir, 'q.onnx') });
  const q = new GraphView(loadModel(files.model).model);
  assert.ok(q.nodes.some((n) => n.op === 'Relu'), 'the excluded Relu stays');
  assert.equal(report.float.filter((f) => f.node === 'relu').length, 1);
  assert.ok(!q.nodes.some((n) => n.op === 'QuantizeLinear' && n.inputs[0] === 'idx'));
  const xIn = new ort.Tensor('float32', randomArray(32, 84), [1, 2, 4, 4]);
  const out = await (await ort.InferenceSession.create(files.model)).run({ x: xIn });
  assert.deepEqual(Array.from(out.x.data as Float32Array), Array.from(xIn.data as Float32Array), 'the passthrough output is the input, untouched');
});

test('a ranges file with a broken entry is refused with its name', async () => {
  const dir = tempDir('badranges');
  const model = writeModel(dir);
  const bad = path.join(dir, 'bad.ranges.json');
  fs.writeFileSync(bad, JSON.stringify({ version: 1, model: 'model.onnx', method: 'minmax', samples: 1, tensors: { x: { min: 0, max: null } } }));
  await assert.rejects(quantize({ model, recipe: recipeFor('cpu'), ranges: bad, out: path.join(dir, 'q.onnx') }), /bad\.ranges\.json: the range of tensor "x"/);
  fs.writeFileSync(bad, JSON.stringify({ version: 1, tensors: null }));
  await assert.rejects(quantize({ model, recipe: recipeFor('cpu'), ranges: bad, out: path.join(dir, 'q.onnx') }), /not a quant-studio ranges file/);
  await assert.rejects(quantize({ model, recipe: recipeFor('cpu'), calibration: 'random:2', report: model, out: path.join(dir, 'q.onnx') }), /refusing to write over the input model: it would be the report/);
});

test('opset 9 → 11: every rewritten op computes exactly what it did (Upsample nearest/linear, Clip, Pad, Slice, TopK, Scatter)', async () => {
  const dir = tempDir('opset9-ops');
  const model = buildModel({
    inputs: { x: [1, 2, 4, 4] },
    outputs: { near: [1, 2, 8, 12], lin: [1, 2, 8, 12], clip: [1, 2, 4, 4], pad: [1, 2, 6, 5], slice: [1, 2, 2, 4], top: [1, 2, 4, 2], scat: [1, 2, 4, 4] },
    initializers: {
      scales: { dims: [4], data: [1, 1, 2, 3] },
      idx: { dims: [1, 2, 1, 4], data: BigInt64Array.from([0n, 1n, 2n, 3n, 3n, 2n, 1n, 0n]) },
      upd: { dims: [1, 2, 1, 4], data: [9, 8, 7, 6, 5, 4, 3, 2] },
    },
    nodes: [
      { op: 'Upsample', inputs: ['x', 'scales'], outputs: ['near'], attrs: { mode: 'nearest' } },
      { op: 'Upsample', inputs: ['x', 'scales'], outputs: ['lin'], attrs: { mode: 'linear' } },
      { op: 'Clip', inputs: ['x'], outputs: ['clip'], attrs: { min: -0.25, max: 0.5 } },
      { op: 'Pad', inputs: ['x'], outputs: ['pad'], attrs: { pads: [0, 0, 1, 0, 0, 0, 1, 1], value: 0.75 } },
      { op: 'Slice', inputs: ['x'], outputs: ['slice'], attrs: { starts: [1], ends: [3], axes: [2] } },
      { op: 'TopK', inputs: ['x'], outputs: ['top', 'top_i'], attrs: { k: 2 } },
      { op: 'Scatter', inputs: ['x', 'idx', 'upd'], outputs: ['scat'], attrs: { axis: 2 } },
    ],
    opset: 9,
  });
  const before = writeModel(dir, model);
  const prepared = prepareModel(model, { forQdq: true });
  assert.equal(prepared.upgradedOpset, 11);
  const after = path.join(dir, 'after.onnx');
  saveModel(prepared.model, after);
  const x = new ort.Tensor('float32', randomArray(32, 91), [1, 2, 4, 4]);
  const expected = await (await ort.InferenceSession.create(before)).run({ x });
  const actual = await (await ort.InferenceSession.create(after)).run({ x });
  for (const name of ['near', 'lin', 'clip', 'pad', 'slice', 'top', 'scat']) {
    assert.deepEqual(actual[name].dims, expected[name].dims, name);
    assert.deepEqual(Array.from(actual[name].data as Float32Array), Array.from(expected[name].data as Float32Array), name);
  }
});

test('an opset 9 model with a Conv kept in float loads: ONNX Runtime\'s own QDQ transformers emit opset-11 ops around it', async () => {
  const dir = tempDir('opset9-exclude');
  const model = buildModel({
    inputs: { x: [1, 2, 4, 4] },
    outputs: { y: [1, 2, 4, 4] },
    initializers: { w1: { dims: [2, 2, 1, 1], data: randomArray(4, 92) }, w2: { dims: [2, 2, 1, 1], data: randomArray(4, 93) }, b2: { dims: [2], data: [0.1, -0.2] } },
    nodes: [
      { op: 'Conv', inputs: ['x', 'w1'], outputs: ['c'], name: 'conv1' },
      { op: 'Relu', inputs: ['c'], outputs: ['r'], name: 'relu' },
      { op: 'Conv', inputs: ['r', 'w2', 'b2'], outputs: ['y'], name: 'conv2' },
    ],
    opset: 9,
  });
  const file = writeModel(dir, model);
  const { report, files } = await quantize({ model: file, recipe: { ...recipeFor('xnnpack'), excludeNodes: ['conv2'] }, calibration: writeData(dir, 4, [2, 4, 4], 94), out: path.join(dir, 'q.onnx'), latency: false });
  assert.ok(report.float.some((f) => f.node === 'conv2'));
  const out = await (await ort.InferenceSession.create(files.model)).run({ x: new ort.Tensor('float32', randomArray(32, 95), [1, 2, 4, 4]) });
  assert.ok((out.y.data as Float32Array).every(Number.isFinite));
});
