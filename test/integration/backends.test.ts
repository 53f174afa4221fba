// One test per backend: export, read the graph back, check every rule of the backend's row.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { BACKENDS, recipeFor } from '../../shared/backends';
import type { Recipe } from '../../shared/recipe';

import { writeNpy } from '../../main/data/npy';
import { hostNumerics } from '../../main/onnx/numerics';
import { quantize, type QuantizeJob, type QuantizeOutcome } from '../../main/jobs/quantize';
import { preflightModel } from '../../main/jobs/preflight';
import { GraphView, type GraphNode } from '../../main/onnx/graph';
import { loadModel, saveModel } from '../../main/onnx/model';
import { DataType, toNumber } from '../../main/onnx/proto';
import { tensorDims, tensorToFloat32, tensorToInts } from '../../main/onnx/tensor';
import { buildModel, MODELS, randomArray, tempDir } from '../helpers/build';
import { CancelledError } from '../../main/base/progress';

const C = 32;

/** Conv → Sigmoid and Tanh → Add → pool → MatMul → Softmax: every rule has a node to act on. */
function ruleModel(opset = 17, extra: Array<{ op: string; inputs: string[]; outputs: string[]; name?: string }> = []) {
  const last = extra.length ? extra[extra.length - 1].outputs[0] : 'y';
  return buildModel({
    opset,
    inputs: { x: [1, 3, 8, 8] },
    outputs: { [last]: [1, 6] },
    initializers: {
      w1: { dims: [C, 3, 3, 3], data: randomArray(C * 27, 1, 0.5) },
      b1: { dims: [C], data: randomArray(C, 2, 0.1) },
      wm: { dims: [C, 6], data: randomArray(C * 6, 3, 0.5) },
      two: { dims: [], data: [2] },
    },
    nodes: [
      { op: 'Conv', inputs: ['x', 'w1', 'b1'], outputs: ['c1'], name: 'conv', attrs: { pads: [1, 1, 1, 1] } as never },
      { op: 'Sigmoid', inputs: ['c1'], outputs: ['s1'], name: 'sigmoid' },
      { op: 'Tanh', inputs: ['c1'], outputs: ['t1'], name: 'tanh' },
      { op: 'Add', inputs: ['s1', 't1'], outputs: ['a'], name: 'add' },
      { op: 'GlobalAveragePool', inputs: ['a'], outputs: ['p'], name: 'pool' },
      { op: 'Flatten', inputs: ['p'], outputs: ['f'], name: 'flatten' },
      { op: 'MatMul', inputs: ['f', 'wm'], outputs: ['m'], name: 'matmul' },
      { op: 'Softmax', inputs: ['m'], outputs: ['y'], name: 'softmax' },
      ...extra,
    ],
  });
}

function setup(name: string, opset?: number, extra?: Parameters<typeof ruleModel>[1]) {
  const dir = tempDir(`backend-${name}`);
  const model = path.join(dir, 'model.onnx');
  saveModel(ruleModel(opset, extra), model);
  const data = path.join(dir, 'calib.npy');
  writeNpy(data, 'float32', [8, 3, 8, 8], randomArray(8 * 192, 11));
  return { dir, model, data };
}

async function run(name: string, recipe: Recipe, options: { opset?: number; qoperator?: boolean; latency?: boolean } = {}) {
  const { dir, model, data } = setup(name, options.opset);
  const outcome = await quantize({
    model, recipe, calibration: data, out: path.join(dir, 'q.onnx'), latency: options.latency ?? false, qoperator: options.qoperator,
  });
  return { outcome, q: new GraphView(loadModel(outcome.files.model).model), dir };
}

function init(q: GraphView, name: string) {
  const t = q.initializers.get(name);
  assert.ok(t, `initializer ${name}`);
  return t;
}

function attrInt(n: GraphNode, name: string): number | undefined {
  const a = n.proto.attribute.find((x) => x.name === name);
  return a ? toNumber(a.i) : undefined;
}

/** The QuantizeLinear that reads a float tensor, and the scale and zero point it uses. */
function quantOf(q: GraphView, tensor: string) {
  const node = q.nodes.find((n) => n.op === 'QuantizeLinear' && n.inputs[0] === tensor);
  if (!node) return undefined;
  const zp = init(q, node.inputs[2]);
  return { node, scale: tensorToFloat32(init(q, node.inputs[1]))[0], zeroPoint: tensorToInts(zp)[0], type: zp.dataType };
}

function weightDq(q: GraphView, weight: string) {
  const node = q.nodes.find((n) => n.op === 'DequantizeLinear' && n.inputs[0].startsWith(`${weight}_quantized`));
  assert.ok(node, `a DequantizeLinear for weight ${weight}`);
  return { node, values: init(q, node.inputs[0]), scale: init(q, node.inputs[1]), zeroPoint: init(q, node.inputs[2]) };
}

async function runsInOrt(file: string): Promise<void> {
  const session = await ort.InferenceSession.create(file);
  const feeds: Record<string, ort.Tensor> = {};
  for (const name of session.inputNames) feeds[name] = new ort.Tensor('float32', randomArray(192, 5), [1, 3, 8, 8]);
  const out = await session.run(feeds);
  assert.ok(Object.keys(out).length > 0);
}

function outputSqnr(outcome: QuantizeOutcome): number {
  const s = outcome.report.outputs[0].sqnr;
  return s === 'inf' ? Infinity : s;
}

test('cpu a8w8: uint8 activations, int8 symmetric per-channel weights (uint8 where this CPU saturates), int32 bias; lowered and QOperator forms run; latency measured here', async () => {
  const { outcome, q } = await run('cpu', recipeFor('cpu', 'a8w8'), { qoperator: true, latency: true });
  assert.equal(quantOf(q, 'x')!.type, DataType.UINT8);
  const w = weightDq(q, 'w1');
  const saturates = (await hostNumerics()).int8Saturates;
  assert.equal(w.values.dataType, saturates ? DataType.UINT8 : DataType.INT8);
  assert.equal(outcome.report.host.saturationFix?.applied, saturates ? 'uint8-weights' : undefined);
  assert.equal(attrInt(w.node, 'axis'), 0);
  assert.deepEqual(tensorToInts(w.zeroPoint), new Array(C).fill(saturates ? 128 : 0), 'symmetric: the middle of the type');
  const b = weightDq(q, 'b1');
  assert.equal(b.values.dataType, DataType.INT32);
  assert.ok(outputSqnr(outcome) > 25, `output SQNR ${outcome.report.outputs[0].sqnr}`);

  const lowered = new GraphView(loadModel(outcome.files.lowered!).model);
  assert.ok(lowered.nodes.some((n) => n.op === 'QLinearConv'), 'ONNX Runtime fused the Conv group into QLinearConv');
  await runsInOrt(outcome.files.lowered!);
  const qop = new GraphView(loadModel(outcome.files.qoperator!).model);
  assert.deepEqual(qop.nodes.filter((n) => n.op.startsWith('QLinear')).map((n) => n.op).sort(), ['QLinearConv', 'QLinearMatMul']);
  assert.ok(qop.nodes.every((n) => !n.domain || n.domain === 'ai.onnx' || n.op === 'DequantizeLinear' || n.op === 'QuantizeLinear'), 'standard ops (Q/DQ aside)');
  await runsInOrt(outcome.files.qoperator!);

  const latency = outcome.report.latency!;
  assert.deepEqual(latency.models.map((m) => m.label), ['float', 'quantized', 'qoperator']);
  for (const m of latency.models) assert.ok(m.medianMs > 0 && m.runs >= 3);
  assert.match(latency.where, /this machine/);
  assert.deepEqual(outcome.report.artifacts.map((a) => a.kind).sort(), ['lowered', 'model', 'preflight', 'qoperator', 'ranges', 'recipe']);
  for (const a of outcome.report.artifacts) assert.equal(fs.statSync(a.file).size, a.bytes, a.file);
});

test('cpu w4: MatMulNBits, 4-bit blocks of 32', async () => {
  const { q } = await run('cpu-w4', recipeFor('cpu', 'w4'));
  const nbits = q.nodes.find((n) => n.op === 'MatMulNBits')!;
  assert.equal(nbits.domain, 'com.microsoft');
  assert.equal(attrInt(nbits, 'bits'), 4);
  assert.equal(attrInt(nbits, 'block_size'), 32);
});

test('cpu reduceRange: 7-bit weights for CPUs without VNNI', async () => {
  const { q } = await run('cpu-reduce', { ...recipeFor('cpu'), reduceRange: true });
  const values = tensorToInts(weightDq(q, 'w1').values);
  assert.ok(values.every((v) => v >= -64 && v <= 63), 'int8 storage, 7-bit range');
  assert.ok(values.includes(-64) || values.includes(63), 'the 7-bit range is used');
});

test('xnnpack a8w8: int8 activations, int8 weights in [-127, 127] with zero point 0', async () => {
  const { outcome, q } = await run('xnnpack', recipeFor('xnnpack', 'a8w8'));
  assert.equal(quantOf(q, 'x')!.type, DataType.INT8);
  for (const name of ['w1', 'wm']) {
    const w = weightDq(q, name);
    assert.equal(w.values.dataType, DataType.INT8);
    assert.ok(tensorToInts(w.values).every((v) => v >= -127 && v <= 127), `${name} in [-127, 127]`);
    assert.ok(tensorToInts(w.zeroPoint).every((z) => z === 0));
  }
  await runsInOrt(outcome.files.model);
});

test('qnn-htp a16w8: uint16 activations in com.microsoft below opset 21, per-channel Conv, per-tensor MatMul, fixed Sigmoid/Tanh encodings', async () => {
  const { outcome, q } = await run('qnn', recipeFor('qnn-htp', 'a16w8'));
  const x = quantOf(q, 'x')!;
  assert.equal(x.type, DataType.UINT16);
  assert.equal(x.node.domain, 'com.microsoft', 'opset 17: 16-bit Q/DQ take the com.microsoft domain');
  assert.equal(attrInt(weightDq(q, 'w1').node, 'axis'), 0, 'Conv per channel');
  const wm = weightDq(q, 'wm');
  assert.equal(attrInt(wm.node, 'axis'), undefined, 'MatMul per tensor: the HTP has no per-channel MatMul');
  assert.deepEqual(tensorDims(wm.scale), []);
  const s = quantOf(q, 's1')!;
  assert.deepEqual([s.scale, s.zeroPoint], [Math.fround(1 / 65536), 0], 'Sigmoid uint16: scale 1/65536, zero point 0');
  const t = quantOf(q, 't1')!;
  assert.deepEqual([t.scale, t.zeroPoint], [Math.fround(1 / 32768), 32768], 'Tanh uint16: scale 1/32768, zero point 32768');
  assert.ok(tensorToInts(weightDq(q, 'w1').zeroPoint).every((z) => z === 0), 'symmetric weights');
  await runsInOrt(outcome.files.model);
  assert.ok(outputSqnr(outcome) > 40, `output SQNR ${outcome.report.outputs[0].sqnr}`);
});

test('qnn-htp: refuses dynamic quantization and per-channel MatMul, with the reason', async () => {
  const { dir, model, data } = setup('qnn-refuse');
  await assert.rejects(quantize({ model, recipe: { ...recipeFor('qnn-htp'), kind: 'dynamic' }, calibration: data, out: path.join(dir, 'q.onnx') }),
    /qnn-htp: dynamic quantization is not supported; Hexagon HTP needs fixed-point activations — use static a8w8 or a16w8/);
  await assert.rejects(quantize({ model, recipe: { ...recipeFor('qnn-htp'), overrides: { wm: { granularity: 'per-channel' } } }, calibration: data, out: path.join(dir, 'q.onnx') }),
    /qnn-htp: MatMul weights take one scale/);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['calib.npy', 'model.onnx'], 'nothing written');
});

test('qnn-htp a16w4: int4 weights in [-7, 7]; per-block needs opset 21 and then uses blocked DequantizeLinear', async () => {
  const { outcome, q } = await run('qnn-w4', recipeFor('qnn-htp', 'a16w4'));
  const w = weightDq(q, 'w1');
  assert.equal(w.values.dataType, DataType.INT4);
  const nibbles = Array.from(w.values.rawData as Uint8Array).flatMap((byte) => [byte & 0xf, byte >> 4]).map((v) => (v > 7 ? v - 16 : v));
  assert.ok(nibbles.every((v) => v >= -7 && v <= 7), 'symmetric int4 in [-7, 7]');
  assert.ok(nibbles.some((v) => v === 7 || v === -7), 'the range is used');
  await runsInOrt(outcome.files.model);

  const { dir, model, data } = setup('qnn-block-17');
  await assert.rejects(quantize({ model, recipe: recipeFor('qnn-htp', 'a16w4-block'), calibration: data, out: path.join(dir, 'q.onnx') }),
    /per-block weights need a model at opset 21 or later/);

  const blocked = await run('qnn-block-21', { ...recipeFor('qnn-htp', 'a16w4-block'), blockSize: 16 }, { opset: 21 });
  const bw = weightDq(blocked.q, 'wm');
  assert.equal(bw.node.domain, '', 'opset 21: the standard DequantizeLinear');
  assert.equal(attrInt(bw.node, 'block_size'), 16);
  assert.equal(attrInt(bw.node, 'axis'), 0, 'MatMul weight [K, N]: blocks along K');
  assert.deepEqual(tensorDims(bw.scale), [2, 6], 'one scale per block of 16 rows and per column');
  assert.equal(quantOf(blocked.q, 'x')!.node.domain, '', 'uint16 Q/DQ in ai.onnx at opset 21');
  await runsInOrt(blocked.outcome.files.model);
});

test('coreml: a8w8 has uint8 activations and int8 symmetric per-channel weights; w8 keeps activations float', async () => {
  const { outcome, q } = await run('coreml', recipeFor('coreml', 'a8w8'));
  assert.equal(quantOf(q, 'x')!.type, DataType.UINT8);
  const w = weightDq(q, 'w1');
  assert.equal(attrInt(w.node, 'axis'), 0);
  assert.ok(tensorToInts(w.zeroPoint).every((z) => z === 0));
  await runsInOrt(outcome.files.model);

  const weightOnly = await run('coreml-w8', recipeFor('coreml', 'w8'));
  assert.equal(weightOnly.q.nodes.filter((n) => n.op === 'QuantizeLinear').length, 0, 'no activation is quantized');
  assert.equal(weightDq(weightOnly.q, 'w1').values.dataType, DataType.INT8);
  await runsInOrt(weightOnly.outcome.files.model);
});

test('tensorrt: every zero point 0, Q/DQ only on the inputs of quantized layers', async () => {
  const { outcome, q } = await run('tensorrt', recipeFor('tensorrt'));
  for (const n of q.nodes.filter((x) => x.op === 'QuantizeLinear' || x.op === 'DequantizeLinear')) {
    if (n.inputs[2]) assert.ok(tensorToInts(init(q, n.inputs[2])).every((z) => z === 0), `${n.name} zero point 0`);
  }
  assert.equal(quantOf(q, 'x')!.type, DataType.INT8);
  assert.ok(quantOf(q, 's1') && quantOf(q, 't1'), 'the inputs of Add are quantized');
  assert.equal(quantOf(q, 'c1'), undefined, 'the Conv output feeds only unquantized Sigmoid/Tanh: no Q/DQ');
  assert.equal(quantOf(q, 'y'), undefined, 'Softmax is not a quantized layer: its output stays float');
  assert.equal(quantOf(q, 'm'), undefined, 'a quantized layer\'s output is left to its reader');
  await runsInOrt(outcome.files.model);
});

test('mcu-int8: integer I/O model with the firmware\'s scales; fixed Softmax encoding; identical to the QDQ model', async () => {
  const { outcome, q } = await run('mcu', recipeFor('mcu-int8'));
  // The graph output keeps its name on the DequantizeLinear; the Softmax writes y_float.
  const y = quantOf(q, 'y_float')!;
  assert.deepEqual([y.scale, y.zeroPoint, y.type], [Math.fround(1 / 256), -128, DataType.INT8], 'TFLite int8 Softmax: 1/256, -128');
  const intio = loadModel(outcome.files.integerIO!).model;
  assert.equal(intio.graph!.input[0].type!.tensorType!.elemType, DataType.INT8);
  assert.equal(intio.graph!.output[0].type!.tensorType!.elemType, DataType.INT8);
  const io = JSON.parse(fs.readFileSync(outcome.files.firmwareIO!, 'utf8'));
  assert.equal(io.inputs[0].name, 'x');
  assert.equal(io.outputs[0].scale, 1 / 256);
  assert.equal(io.outputs[0].zeroPoint, -128);

  // The firmware's view: quantize the input, run integers, dequantize the output — the QDQ model's result exactly.
  const input = randomArray(192, 9);
  const { scale: xs, zeroPoint: xz } = io.inputs[0];
  const xq = Int8Array.from(input, (v) => Math.max(-128, Math.min(127, Math.round(v / xs) + xz)));
  const intSession = await ort.InferenceSession.create(outcome.files.integerIO!);
  const qdqSession = await ort.InferenceSession.create(outcome.files.model);
  const yq = (await intSession.run({ x: new ort.Tensor('int8', xq, [1, 3, 8, 8]) })).y.data as Int8Array;
  const xDeq = Float32Array.from(xq, (v) => (v - xz) * xs);
  const yRef = (await qdqSession.run({ x: new ort.Tensor('float32', xDeq, [1, 3, 8, 8]) })).y.data as Float32Array;
  assert.deepEqual(Array.from(yq, (v) => (v - io.outputs[0].zeroPoint) * io.outputs[0].scale), Array.from(yRef));
});

test('mcu-int8: a float-only op is an error before any work, and keeping a layer in float is refused', async () => {
  const { dir, model, data } = setup('mcu-refuse', 17, [{ op: 'Erf', inputs: ['y'], outputs: ['z'], name: 'erf' }]);
  await assert.rejects(quantize({ model, recipe: recipeFor('mcu-int8'), calibration: data, out: path.join(dir, 'q.onnx') }),
    /mcu-int8 cannot run 1 node: erf \(Erf\): stays float .*MCU has no float kernels; mcu-int8 has no fallback/);
  await assert.rejects(quantize({ model, recipe: { ...recipeFor('mcu-int8'), excludeNodes: ['conv'] }, calibration: data, out: path.join(dir, 'q.onnx') }),
    /mcu-int8: cannot keep conv in float — the whole graph runs integer; give it int16 instead/);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['calib.npy', 'model.onnx'], 'nothing written');
});

test('mcu-int8: a 16-bit override is symmetric (16x8 kernels)', async () => {
  const { q, outcome } = await run('mcu-16', { ...recipeFor('mcu-int8'), overrides: { c1: { type: 'int16' } } });
  const c1 = quantOf(q, 'c1')!;
  assert.equal(c1.type, DataType.INT16);
  assert.equal(c1.zeroPoint, 0);
  assert.deepEqual(outcome.report.preflightCost, { leftDevice: [], leftInteger: [], partitions: [1, 1] }, '16 bits keep the layer integer and on the device');
});

test('webgpu w4: MatMulNBits block-wise weights', async () => {
  const { outcome, q } = await run('webgpu', recipeFor('webgpu', 'w4'));
  assert.equal(attrInt(q.nodes.find((n) => n.op === 'MatMulNBits')!, 'block_size'), 32);
  await runsInOrt(outcome.files.model);
});

test('every preset of every backend exports a model that runs in ONNX Runtime, with its output SQNR and pre-flight in the report', async () => {
  for (const backend of BACKENDS) {
    for (const preset of backend.presets) {
      const opset = preset.recipe.granularity === 'per-block' && preset.recipe.kind === 'static' ? 21 : 17;
      const { outcome } = await run(`${backend.name}-${preset.name}`, recipeFor(backend.name, preset.name), { opset });
      await runsInOrt(outcome.files.model);
      assert.ok(Number.isFinite(outputSqnr(outcome)) || outputSqnr(outcome) === Infinity, `${backend.name} ${preset.name}: output SQNR`);
      assert.equal(outcome.report.preflight.backend, backend.name);
      assert.ok(fs.existsSync(outcome.files.preflight));
    }
  }
});

test('pre-flight on a CNN (PaddleOCR cls) and a transformer-style model (PP-OCRv4 rec, SVTR attention): every node placed, fallbacks named', () => {
  const seen = new Map<string, Map<string, ReturnType<typeof preflightModel>['preflight']>>();
  for (const [label, file] of [['cnn', MODELS.cls], ['transformer', MODELS.rec]] as const) {
    for (const backend of BACKENDS) {
      const { preflight } = preflightModel(file, recipeFor(backend.name));
      assert.equal(preflight.nodes.length, preflight.total);
      const c = preflight.counts;
      assert.equal(c.quantized + c.device + c.cpu + c.unsupported, preflight.total, `${backend.name} ${label}: counts add up`);
      for (const n of preflight.nodes) if (n.placement !== 'quantized') assert.ok(n.reason, `${backend.name} ${label}: ${n.node} says why`);
      assert.ok(c.quantized > 0, `${backend.name} ${label}: something is quantized`);
      assert.ok(c.device + c.cpu + c.unsupported > 0, `${backend.name} ${label}: some node is not quantized, and says why`);
      if (!seen.has(backend.name)) seen.set(backend.name, new Map());
      seen.get(backend.name)!.set(label, preflight);
    }
  }
  const find = (backend: string, model: string, op: string) => seen.get(backend)!.get(model)!.nodes.find((n) => n.op === op && n.placement !== 'quantized');
  assert.match(find('xnnpack', 'cnn', 'HardSigmoid')!.reason!, /unsupported op: XNNPACK has no HardSigmoid kernel .* falls back to the CPU/);
  assert.match(find('xnnpack', 'transformer', 'Pow')!.reason!, /XNNPACK has no Pow kernel/);
  assert.ok(seen.get('xnnpack')!.get('cnn')!.partitions > 1, 'CPU fallbacks split the XNNPACK graph');
  assert.match(find('qnn-htp', 'transformer', 'Cast')!.reason!, /unsupported type: int64 tensors/);
  assert.match(seen.get('qnn-htp')!.get('transformer')!.problems[0], /dynamic shape: input x .* Hexagon HTP compiles fixed shapes/);
  assert.equal(find('mcu-int8', 'cnn', 'Div')!.placement, 'unsupported');
  assert.equal(seen.get('tensorrt')!.get('transformer')!.counts.cpu, 0, 'TensorRT runs every op, quantized or not');
  assert.match(find('cpu', 'transformer', 'Pow')!.reason!, /runs in float on CPU: cpu does not quantize Pow/);
  // Keeping the first attention MatMul in float on the HTP: it leaves the integer path, stays on the device.
  const matmul = seen.get('qnn-htp')!.get('transformer')!.nodes.find((n) => n.op === 'MatMul' && n.placement === 'quantized')!;
  const { cost } = preflightModel(MODELS.rec, { ...recipeFor('qnn-htp'), excludeNodes: [matmul.node] });
  assert.deepEqual(cost!.leftInteger.map((n) => n.node), [matmul.node]);
  assert.match(cost!.leftInteger[0].reason!, /runs in fp16 on Hexagon HTP: kept in float by the recipe/);
});

test('qnn-htp export pins a dynamic input shape to the sample it was evaluated on', async () => {
  const dir = tempDir('qnn-pin');
  const model = path.join(dir, 'model.onnx');
  saveModel(buildModel({
    inputs: { x: ['batch', 3, 8, 8] }, outputs: { y: ['batch', 4, 8, 8] },
    initializers: { w: { dims: [4, 3, 1, 1], data: randomArray(12, 1) } },
    nodes: [{ op: 'Conv', inputs: ['x', 'w'], outputs: ['y'], name: 'conv' }],
  }), model);
  const warnings: string[] = [];
  const { files } = await quantize({ model, recipe: recipeFor('qnn-htp'), calibration: 'random:4', out: path.join(dir, 'q.onnx'), latency: false, onWarning: (w) => warnings.push(w) });
  const graph = loadModel(files.model).model.graph!;
  assert.deepEqual(graph.input[0].type!.tensorType!.shape!.dim.map((d) => toNumber(d.dimValue)), [1, 3, 8, 8]);
  assert.deepEqual(graph.output[0].type!.tensorType!.shape!.dim.map((d) => toNumber(d.dimValue)), [1, 4, 8, 8], 'the output\'s "batch" follows');
  assert.ok(warnings.some((w) => /pinned to x \[1, 3, 8, 8\]/.test(w)));
  assert.equal(loadModel(model).model.graph!.input[0].type!.tensorType!.shape!.dim[0].dimParam, 'batch', 'the input model is untouched');
});

/** x → Conv → (ops) written as a small model of its own, with calibration data for its input shape. */
async function quantizeSmall(name: string, recipe: Recipe, spec: Parameters<typeof buildModel>[0], options: { latency?: boolean } = {}) {
  const dir = tempDir(`backend-${name}`);
  const model = path.join(dir, 'model.onnx');
  saveModel(buildModel(spec), model);
  const data = path.join(dir, 'calib.npy');
  const shape = spec.inputs.x as number[];
  const n = shape.reduce((a, b) => a * b, 1);
  writeNpy(data, 'float32', [4, ...shape.slice(1)], randomArray(4 * n, 13));
  return {
    dir, model, data,
    run: (extra: Partial<QuantizeJob> = {}) => quantize({ model, recipe, calibration: data, out: path.join(dir, 'q.onnx'), latency: options.latency ?? false, ...extra }),
  };
}

const conv3 = { dims: [8, 3, 3, 3], data: randomArray(8 * 27, 21, 0.5) };

test('mcu-int8: a Relu after Sigmoid does not fold away the TFLite fixed Sigmoid encoding', async () => {
  const small = await quantizeSmall('mcu-sigmoid-relu', recipeFor('mcu-int8'), {
    inputs: { x: [1, 3, 8, 8] }, outputs: { y: [1, 8, 8, 8] }, initializers: { w: conv3 },
    nodes: [
      { op: 'Conv', inputs: ['x', 'w'], outputs: ['c'], name: 'conv', attrs: { pads: [1, 1, 1, 1] } },
      { op: 'Sigmoid', inputs: ['c'], outputs: ['s'], name: 'sigmoid' },
      { op: 'Relu', inputs: ['s'], outputs: ['y'], name: 'relu' },
    ],
  });
  const outcome = await small.run();
  const q = new GraphView(loadModel(outcome.files.model).model);
  const sigmoid = q.nodes.find((n) => n.op === 'Sigmoid')!;
  const s = quantOf(q, sigmoid.outputs[0])!;
  assert.deepEqual([s.scale, s.zeroPoint], [Math.fround(1 / 256), -128], 'the Sigmoid output keeps 1/256, -128');
});

test('mcu-int8: a model that starts with a Transpose (NHWC input) is quantized from its input on', async () => {
  const small = await quantizeSmall('mcu-transpose', recipeFor('mcu-int8'), {
    inputs: { x: [1, 8, 8, 3] }, outputs: { y: [1, 8, 8, 8] }, initializers: { w: conv3 },
    nodes: [
      { op: 'Transpose', inputs: ['x'], outputs: ['t'], name: 'transpose', attrs: { perm: [0, 3, 1, 2] } },
      { op: 'Conv', inputs: ['t', 'w'], outputs: ['y'], name: 'conv', attrs: { pads: [1, 1, 1, 1] } },
    ],
  });
  const outcome = await small.run();
  assert.equal(outcome.report.preflight.counts.quantized, 2);
  const intio = loadModel(outcome.files.integerIO!).model;
  assert.equal(intio.graph!.input[0].type!.tensorType!.elemType, DataType.INT8);
});

test('cpu: a folder where the lowered model goes is refused before any work, and nothing is written', async () => {
  const small = await quantizeSmall('cpu-lower-fails', recipeFor('cpu'), {
    inputs: { x: [1, 3, 8, 8] }, outputs: { y: [1, 8, 8, 8] }, initializers: { w: conv3 },
    nodes: [{ op: 'Conv', inputs: ['x', 'w'], outputs: ['y'], name: 'conv', attrs: { pads: [1, 1, 1, 1] } }],
  });
  fs.mkdirSync(path.join(small.dir, 'q.lowered.onnx', 'busy'), { recursive: true });
  const progress: string[] = [];
  await assert.rejects(small.run({ onProgress: (p) => progress.push(p.stage) }), /q\.lowered\.onnx: is a folder where the export writes a file/);
  assert.deepEqual(progress, [], 'refused before loading the model');
  assert.deepEqual(fs.readdirSync(small.dir).sort(), ['calib.npy', 'model.onnx', 'q.lowered.onnx'], 'no QDQ model, report or recipe');
});

test('cancel during the latency check is a cancel (exit 130 in the CLI), and nothing is written', async () => {
  const small = await quantizeSmall('cancel-latency', recipeFor('cpu'), {
    inputs: { x: [1, 3, 8, 8] }, outputs: { y: [1, 8, 8, 8] }, initializers: { w: conv3 },
    nodes: [{ op: 'Conv', inputs: ['x', 'w'], outputs: ['y'], name: 'conv', attrs: { pads: [1, 1, 1, 1] } }],
  });
  const controller = new AbortController();
  const job = quantize({
    model: small.model, recipe: recipeFor('cpu'), calibration: small.data, out: path.join(small.dir, 'q.onnx'), signal: controller.signal,
    onProgress: (p) => { if (p.stage === 'latency' && p.done === 0) controller.abort(); },
  });
  await assert.rejects(job, (err) => err instanceof CancelledError);
  assert.deepEqual(fs.readdirSync(small.dir).sort(), ['calib.npy', 'model.onnx']);
});

test('a companion file (here the lowered model) never overwrites the input model', async () => {
  const small = await quantizeSmall('companion-input', recipeFor('cpu'), {
    inputs: { x: [1, 3, 8, 8] }, outputs: { y: [1, 8, 8, 8] }, initializers: { w: conv3 },
    nodes: [{ op: 'Conv', inputs: ['x', 'w'], outputs: ['y'], name: 'conv', attrs: { pads: [1, 1, 1, 1] } }],
  });
  const input = path.join(small.dir, 'q.lowered.onnx');
  fs.renameSync(small.model, input);
  const before = fs.readFileSync(input);
  await assert.rejects(quantize({ model: input, recipe: recipeFor('cpu'), calibration: small.data, out: path.join(small.dir, 'q.onnx'), latency: false }),
    /q\.lowered\.onnx: refusing to write over the input model: it would be a companion/);
  assert.deepEqual(fs.readFileSync(input), before);
  assert.deepEqual(fs.readdirSync(small.dir).sort(), ['calib.npy', 'q.lowered.onnx']);
});

test('a 16-bit override on a Conv output survives the Relu after it (no fold into the Relu\'s 8-bit encoding)', async () => {
  const small = await quantizeSmall('fold-override', { ...recipeFor('qnn-htp', 'a8w8'), overrides: { c: { type: 'uint16' } } }, {
    inputs: { x: [1, 3, 8, 8] }, outputs: { y: [1, 8, 8, 8] }, initializers: { w: conv3 },
    nodes: [
      { op: 'Conv', inputs: ['x', 'w'], outputs: ['c'], name: 'conv', attrs: { pads: [1, 1, 1, 1] } },
      { op: 'Relu', inputs: ['c'], outputs: ['y'], name: 'relu' },
    ],
  });
  const outcome = await small.run();
  const q = new GraphView(loadModel(outcome.files.model).model);
  assert.equal(quantOf(q, 'c')?.type, DataType.UINT16, 'the Conv output is uint16 as the override asks');
  assert.deepEqual(outcome.report.float, []);
});
