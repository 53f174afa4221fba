import assert from 'node:assert/strict';
import { test } from 'node:test';
import { recipeFor } from '../../shared/backends';
import { GraphView } from '../../main/onnx/graph';
import { onnx } from '../../main/onnx/proto';
import { floatTensor } from '../../main/onnx/tensor';
import { planQuantization } from '../../main/plan/plan';
import { buildModel, randomArray } from '../helpers/build';

// x → conv → c → relu → y
function model() {
  return new GraphView(buildModel({
    inputs: { x: [1, 2, 4, 4] },
    outputs: { y: [1, 2, 4, 4] },
    initializers: { w: { dims: [2, 2, 1, 1], data: randomArray(4, 1) } },
    nodes: [
      { op: 'Conv', inputs: ['x', 'w'], outputs: ['c'], name: 'conv' },
      { op: 'Relu', inputs: ['c'], outputs: ['y'], name: 'relu' },
    ],
  }));
}

test('an override for a tensor the model does not have is refused, not silently ignored', () => {
  assert.throws(() => planQuantization(model(), { ...recipeFor('cpu'), overrides: { cc: { type: 'uint16' } } }),
    /override for tensor not in the model: cc \(/);
});

test('an activation cannot take a weight-only type through an override (qnn-htp activations are uint8 or uint16)', () => {
  assert.throws(() => planQuantization(model(), { ...recipeFor('qnn-htp', 'a16w4'), overrides: { c: { type: 'int4' } } }),
    /qnn-htp: tensor c is an activation and cannot be int4; allowed: uint8, uint16/);
  assert.throws(() => planQuantization(model(), { ...recipeFor('qnn-htp', 'a16w8'), overrides: { w: { type: 'uint16' } } }),
    /qnn-htp: tensor w is a weight and cannot be uint16; allowed: int8, int4/);
});

test('LayerNormalization quantizes its scale as a weight and its bias as int32, as ONNX Runtime\'s QNN quantizer does', () => {
  const view = new GraphView(buildModel({
    inputs: { x: [1, 4, 8] },
    outputs: { y: [1, 4, 8] },
    initializers: { gamma: { dims: [8], data: randomArray(8, 3) }, beta: { dims: [8], data: randomArray(8, 4, 0.1) } },
    nodes: [{ op: 'LayerNormalization', inputs: ['x', 'gamma', 'beta'], outputs: ['y'], name: 'ln', attrs: { axis: -1 } }],
  }));
  const plan = planQuantization(view, recipeFor('qnn-htp', 'a16w8'));
  const gamma = plan.weights.get('gamma');
  assert.ok(gamma, 'gamma is quantized');
  assert.deepEqual([gamma.type, gamma.symmetric, gamma.asActivation], ['int8', true, false]);
  assert.equal(plan.biases.get('beta')?.weight, 'gamma');
});

test('a granularity override on an activation is refused: activations take one scale, per-channel is for weights', () => {
  assert.throws(() => planQuantization(model(), { ...recipeFor('cpu'), overrides: { c: { granularity: 'per-channel' } } }),
    /cpu: tensor c is an activation and takes one scale; per-channel applies to weights/);
});

test('keeping a weight in float by an override keeps its node in float instead of quantizing the weight anyway', () => {
  const plan = planQuantization(model(), { ...recipeFor('cpu'), overrides: { w: { float: true } } });
  assert.equal(plan.weights.has('w'), false);
  assert.deepEqual(plan.nodes.find((n) => n.node === 'conv'), { node: 'conv', op: 'Conv', status: 'float', reason: 'weight w is kept in float by an override' });
  assert.equal(plan.activations.has('x'), false, 'no Q/DQ in front of a float Conv');
});

test('masks: −inf from an initializer and float32\'s lowest from ConstantOfShape stay in float up to their Softmax; a Clip against ±FLT_MAX does not spread', () => {
  const model = buildModel({
    inputs: { x: [1, 4, 4] },
    outputs: { p: [1, 4, 4], q: [1, 4, 4] },
    initializers: {
      mask: { dims: [4, 4], data: Float32Array.from({ length: 16 }, (_, i) => (i % 4 > Math.floor(i / 4) ? -Infinity : 0)) },
      shape: { dims: [2], data: BigInt64Array.of(4n, 4n) }, lo: { dims: [], data: [-3.4e38] }, hi: { dims: [], data: [3.4e38] },
    },
    nodes: [
      { op: 'Add', inputs: ['x', 'mask'], outputs: ['scores'], name: 'masked' },
      { op: 'Softmax', inputs: ['scores'], outputs: ['p'], name: 'soft', attrs: { axis: -1 } },
      { op: 'ConstantOfShape', inputs: ['shape'], outputs: ['low'], name: 'fill' },
      { op: 'Add', inputs: ['x', 'low'], outputs: ['floored'], name: 'floor_add' },
      { op: 'Clip', inputs: ['x', 'lo', 'hi'], outputs: ['guarded'], name: 'guard' },
      { op: 'Mul', inputs: ['guarded', 'floored'], outputs: ['q'], name: 'mix' },
    ],
  });
  model.graph!.node[2].attribute.push(onnx.AttributeProto.create({ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: floatTensor('', [1], Float32Array.of(-3.4028234663852886e38)) }));
  const plan = planQuantization(new GraphView(model), recipeFor('cpu'));
  const status = Object.fromEntries(plan.nodes.map((n) => [n.node, n.status]));
  assert.deepEqual(status, { masked: 'float', soft: 'float', fill: 'float', floor_add: 'float', guard: 'quantized', mix: 'float' });
  assert.match(plan.nodes.find((n) => n.node === 'masked')!.reason!, /mask holds values no integer range can hold .* from the constant mask: an attention mask/);
  assert.match(plan.nodes.find((n) => n.node === 'floor_add')!.reason!, /from the constant fill/);
  assert.equal(plan.activations.has('guarded'), true, 'the Clip\'s output is quantized: its ±FLT_MAX bounds do not reach it');
});
