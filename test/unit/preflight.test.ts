import assert from 'node:assert/strict';
import { test } from 'node:test';
import { recipeFor } from '../../shared/backends';
import { GraphView } from '../../main/onnx/graph';
import { planQuantization } from '../../main/plan/plan';
import { preflight, preflightCost } from '../../main/plan/preflight';
import { buildModel, randomArray } from '../helpers/build';

// conv1 → Erf → Add(c1, e) → conv2: XNNPACK has no Erf kernel, so Erf runs on the CPU between them.
function model() {
  return buildModel({
    inputs: { x: [1, 2, 4, 4] },
    outputs: { y: [1, 2, 4, 4] },
    initializers: { w1: { dims: [2, 2, 1, 1], data: randomArray(4, 1) }, w2: { dims: [2, 2, 1, 1], data: randomArray(4, 2) } },
    nodes: [
      { op: 'Conv', inputs: ['x', 'w1'], outputs: ['c1'], name: 'conv1' },
      { op: 'Erf', inputs: ['c1'], outputs: ['e'], name: 'erf' },
      { op: 'Add', inputs: ['c1', 'e'], outputs: ['a'], name: 'add' },
      { op: 'Conv', inputs: ['a', 'w2'], outputs: ['y'], name: 'conv2' },
    ],
  });
}

test('a path that leaves the device and comes back splits the partition, even when a skip edge connects both sides', () => {
  const view = new GraphView(model());
  const p = preflight(view, planQuantization(view, recipeFor('xnnpack')));
  assert.deepEqual(p.nodes.map((n) => [n.node, n.placement]), [['conv1', 'quantized'], ['erf', 'cpu'], ['add', 'quantized'], ['conv2', 'quantized']]);
  assert.match(p.nodes[1].reason!, /unsupported op: XNNPACK has no Erf kernel/);
  assert.equal(p.partitions, 2, '{conv1} and {add, conv2}: one group would contain conv1 → erf (CPU) → add');
  assert.deepEqual(p.byOp.Conv, { quantized: 2, device: 0, cpu: 0, unsupported: 0 });
});

test('keeping a node in float: the cost names the nodes leaving the integer path and the device', () => {
  const view = new GraphView(model());
  const before = preflight(view, planQuantization(view, recipeFor('xnnpack')));
  const after = preflight(view, planQuantization(view, { ...recipeFor('xnnpack'), excludeNodes: ['add'] }));
  const cost = preflightCost(before, after);
  assert.deepEqual(cost.leftInteger.map((n) => n.node), ['add']);
  assert.deepEqual(cost.leftDevice, [], 'XNNPACK runs a float Add');
  assert.match(after.nodes[2].reason!, /runs in float on XNNPACK: kept in float by the recipe/);
  assert.deepEqual(cost.partitions, [2, 2]);
  const cpu = preflight(view, planQuantization(view, recipeFor('cpu')));
  assert.equal(cpu.partitions, 1, 'on the CPU backend everything runs on one device');
});

test('a full-integer target marks float work unsupported rather than falling back', () => {
  const view = new GraphView(model());
  const p = preflight(view, planQuantization(view, recipeFor('mcu-int8')));
  assert.equal(p.nodes[1].placement, 'unsupported');
  assert.match(p.nodes[1].reason!, /MCU has no float kernels; mcu-int8 has no fallback/);
  assert.match(p.problems.join(), /^$/, 'fixed input shape: no shape problem');
});
