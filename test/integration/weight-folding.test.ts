// Weights behind nodes, as exporters write them: Identity on a deduplicated initializer, Transpose
// on a tied embedding, Cast from fp16, DequantizeLinear of int8, Reshape, and the same inside an If
// body. prepare computes each once, exactly; every quantizer then finds the weight.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { recipeFor } from '../../shared/backends';
import { convertModel } from '../../main/convert/convert';
import { GraphView } from '../../main/onnx/graph';
import { encodeModel } from '../../main/onnx/model';
import { DataType, onnx } from '../../main/onnx/proto';
import { makeTensor } from '../../main/onnx/tensor';
import { planQuantization } from '../../main/plan/plan';
import { prepareModel } from '../../main/plan/prepare';
import { buildModel, randomArray } from '../helpers/build';

const D = 32;

/** fp16 bits of a value float16 holds exactly (small multiples of 1/64). */
function half(v: number): number {
  if (v === 0) return 0;
  const sign = v < 0 ? 0x8000 : 0;
  let m = Math.abs(v);
  let e = 15;
  while (m >= 2) { m /= 2; e++; }
  while (m < 1) { m *= 2; e--; }
  return sign | (e << 10) | Math.round((m - 1) * 1024);
}

function exporterLikeModel(): onnx.ModelProto {
  const grid = (n: number, seed: number) => randomArray(n, seed).map((v) => Math.round(v * 64) / 64);
  const model = buildModel({
    inputs: { x: [2, D], cond: [] },
    outputs: { logits: [2, 48], gemm: [2, D], deq: [2, D], reshaped: [2, D], branch: [2, D] },
    initializers: {
      w1: { dims: [D, D], data: randomArray(D * D, 1, 0.2) },
      emb: { dims: [48, D], data: randomArray(48 * D, 2, 0.2) },
      w4flat: { dims: [D * D], data: randomArray(D * D, 4, 0.2) },
      w4shape: { dims: [2], data: BigInt64Array.of(BigInt(D), BigInt(D)) },
      w3scale: { dims: [D], data: randomArray(D, 5).map((v) => 0.001 + Math.abs(v) * 0.003) },
      bias: { dims: [D], data: randomArray(D, 6, 0.1) },
      w5: { dims: [D, D], data: randomArray(D * D, 7, 0.2) },
    },
    nodes: [
      { op: 'Identity', inputs: ['w1'], outputs: ['w1_shared'], name: 'dedup' },
      { op: 'MatMul', inputs: ['x', 'w1_shared'], outputs: ['h'], name: 'proj' },
      { op: 'Transpose', inputs: ['emb'], outputs: ['emb_t'], name: 'tie', attrs: { perm: [1, 0] } },
      { op: 'MatMul', inputs: ['h', 'emb_t'], outputs: ['logits'], name: 'head' },
      { op: 'Cast', inputs: ['w2_half'], outputs: ['w2'], name: 'widen', attrs: { to: DataType.FLOAT } },
      { op: 'Gemm', inputs: ['h', 'w2', 'bias'], outputs: ['gemm'], name: 'fc', attrs: { transB: 1 } },
      { op: 'DequantizeLinear', inputs: ['w3_int8', 'w3scale'], outputs: ['w3'], name: 'dq', attrs: { axis: 1 } },
      { op: 'MatMul', inputs: ['h', 'w3'], outputs: ['deq'], name: 'int8_weight' },
      { op: 'Reshape', inputs: ['w4flat', 'w4shape'], outputs: ['w4'], name: 'shape_it' },
      { op: 'MatMul', inputs: ['h', 'w4'], outputs: ['reshaped'], name: 'reshaped_weight' },
    ],
  });
  const g = model.graph!;
  g.initializer.push(makeTensor('w2_half', DataType.FLOAT16, [D, D], Uint16Array.from(grid(D * D, 3), half)));
  g.initializer.push(makeTensor('w3_int8', DataType.INT8, [D, D], Int8Array.from(randomArray(D * D, 8), (v) => Math.round(v * 127))));
  const body = (name: string, op: string) => onnx.GraphProto.create({
    name,
    node: [
      onnx.NodeProto.create({ name: `${name}_t`, opType: 'Transpose', input: ['w5'], output: [`${name}_w5t`], attribute: [onnx.AttributeProto.create({ name: 'perm', type: onnx.AttributeProto.AttributeType.INTS, ints: [1, 0] })] }),
      onnx.NodeProto.create({ name: `${name}_mm`, opType: op, input: ['h', `${name}_w5t`], output: [`${name}_out`] }),
    ],
    output: [onnx.ValueInfoProto.create({ name: `${name}_out` })],
  });
  g.node.push(onnx.NodeProto.create({
    name: 'choose', opType: 'If', input: ['cond'], output: ['branch'],
    attribute: [
      onnx.AttributeProto.create({ name: 'then_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: body('then', 'MatMul') }),
      onnx.AttributeProto.create({ name: 'else_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: body('else', 'MatMul') }),
    ],
  }));
  g.input[1].type!.tensorType!.elemType = DataType.BOOL;
  return model;
}

async function outputs(model: onnx.ModelProto, cond: boolean): Promise<Record<string, Float32Array>> {
  // Unoptimized, op by op: optimized, ONNX Runtime computes the int8 weight's DequantizeLinear → MatMul
  // another way (its outputs move by 1e-3 relative), which is not what the ops define.
  const session = await ort.InferenceSession.create(encodeModel(model), { graphOptimizationLevel: 'disabled' });
  const out = await session.run({ x: new ort.Tensor('float32', randomArray(2 * D, 11), [2, D]), cond: new ort.Tensor('bool', [cond], []) });
  await session.release();
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
}

test('prepare computes weights hidden behind Identity, Transpose, Cast, DequantizeLinear and Reshape, in If bodies too, exactly', async () => {
  const source = exporterLikeModel();
  const prepared = prepareModel(source);
  const ops = new Set(prepared.model.graph!.node.map((n) => n.opType));
  for (const op of ['Identity', 'Transpose', 'Cast', 'DequantizeLinear', 'Reshape']) assert.ok(!ops.has(op), `${op} is folded away`);
  const byTensor = new Map(prepared.foldedWeights.map((f) => [f.tensor, f]));
  assert.deepEqual(byTensor.get('w1_shared'), { tensor: 'w1_shared', ops: ['Identity'], from: ['w1'] });
  assert.deepEqual(byTensor.get('emb_t'), { tensor: 'emb_t', ops: ['Transpose'], from: ['emb'] });
  assert.deepEqual(byTensor.get('w2'), { tensor: 'w2', ops: ['Cast'], from: ['w2_half'] });
  assert.deepEqual(byTensor.get('w3'), { tensor: 'w3', ops: ['DequantizeLinear'], from: ['w3_int8'] });
  assert.deepEqual(byTensor.get('w4'), { tensor: 'w4', ops: ['Reshape'], from: ['w4flat'] });
  assert.deepEqual(byTensor.get('then_w5t'), { tensor: 'then_w5t', ops: ['Transpose'], from: ['w5'] });
  for (const cond of [true, false]) {
    const [before, after] = [await outputs(source, cond), await outputs(prepared.model, cond)];
    for (const name of Object.keys(before)) assert.deepEqual(after[name], before[name], `${name} (cond ${cond}) is bit-identical`);
  }
});

test('weight-only 4-bit and dynamic int8 quantize every MatMul and Gemm with a constant weight, however the exporter wrote it', async () => {
  const view = new GraphView(prepareModel(exporterLikeModel()).model);
  const fourBit = planQuantization(view, recipeFor('cpu', 'w4'));
  assert.deepEqual(fourBit.weightOnly.map((w) => w.node).sort(), ['choose/else_branch/else_mm', 'choose/then_branch/then_mm', 'fc', 'head', 'int8_weight', 'proj', 'reshaped_weight']);
  const dynamic = planQuantization(view, recipeFor('cpu', 'dynamic-int8'));
  assert.deepEqual(dynamic.dynamic.map((w) => w.node).sort(), ['fc', 'head', 'int8_weight', 'proj', 'reshaped_weight']);
  assert.match(dynamic.nodes.find((n) => n.node === 'choose/then_branch/then_mm')!.reason!, /inside a control-flow subgraph/);
  // The Gemm (transB, with a bias) runs as MatMulNBits with its bias, and the converted model runs.
  const converted = convertModel(view, fourBit, new Map());
  const nbits = converted.model.graph!.node.filter((n) => n.opType === 'MatMulNBits');
  assert.equal(nbits.length, 5);
  assert.equal(nbits.find((n) => n.output[0] === 'gemm')!.input[5], 'bias');
  const [float, quant] = [await outputs(view.model, true), await outputs(converted.model, true)];
  for (const name of Object.keys(float)) {
    let err = 0;
    let power = 0;
    for (let i = 0; i < float[name].length; i++) {
      err += (float[name][i] - quant[name][i]) ** 2;
      power += float[name][i] ** 2;
    }
    assert.ok(10 * Math.log10(power / err) > 15, `${name}: 4-bit output close to float (${(10 * Math.log10(power / err)).toFixed(1)} dB)`);
  }
});

test('a MatMul whose constant is the left operand says so instead of "not a float constant"', () => {
  const view = new GraphView(buildModel({
    inputs: { x: [D, 2] }, outputs: { y: [D, 2] },
    initializers: { w: { dims: [D, D], data: randomArray(D * D, 1) } },
    nodes: [{ op: 'MatMul', inputs: ['w', 'x'], outputs: ['y'], name: 'left' }],
  }));
  const plan = planQuantization(view, recipeFor('cpu', 'w4'));
  assert.match(plan.nodes[0].reason!, /its constant is the left operand/);
});

test('a weight of a type prepare cannot read (bfloat16 behind a Cast) is left to the runtime, not a crash', () => {
  const model = buildModel({
    inputs: { x: [2, D] }, outputs: { y: [2, D] },
    nodes: [
      { op: 'Cast', inputs: ['w_bf16'], outputs: ['w'], name: 'widen', attrs: { to: DataType.FLOAT } },
      { op: 'MatMul', inputs: ['x', 'w'], outputs: ['y'], name: 'mm' },
    ],
  });
  model.graph!.initializer.push(makeTensor('w_bf16', DataType.BFLOAT16, [D, D], new Uint16Array(D * D).fill(0x3f80)));
  const prepared = prepareModel(model);
  assert.deepEqual(prepared.model.graph!.node.map((n) => n.opType), ['Cast', 'MatMul']);
  assert.deepEqual(prepared.foldedWeights, []);
});
