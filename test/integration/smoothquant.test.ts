// SmoothQuant rescales channels between a LayerNormalization or a linear layer and the MatMul/Gemm
// layers that read it: the float model must compute the same function, with the outlier channel
// moved into the weights.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { recipeFor } from '../../shared/backends';
import type { Feed } from '../../main/base/feed';
import { memorySource } from '../../main/data/subset';
import { channelAbsMax, smoothableGroups, smoothModel } from '../../main/calib/smoothquant';
import { GraphView } from '../../main/onnx/graph';
import { encodeModel } from '../../main/onnx/model';
import { planQuantization } from '../../main/plan/plan';
import { buildModel, randomArray } from '../helpers/build';

const D = 16;
const T = 6;

/** x → LayerNorm → {q, k} MatMuls; q → MatMul + Add (a Linear) → fc; k → Softmax → head MatMul; channel 3 of the LayerNorm's scale is 40x the rest. */
function block() {
  const gamma = randomArray(D, 1).map((v) => 1 + 0.2 * v);
  gamma[3] = 40;
  return buildModel({
    inputs: { x: [2, T, D] },
    outputs: { y: [2, T, D], z: [2, T, D] },
    initializers: {
      gamma: { dims: [D], data: gamma }, beta: { dims: [D], data: randomArray(D, 2, 0.1) },
      wq: { dims: [D, D], data: randomArray(D * D, 3, 0.3) }, wk: { dims: [D, D], data: randomArray(D * D, 4, 0.3) },
      bq: { dims: [D], data: randomArray(D, 5, 0.1) }, wfc: { dims: [D, D], data: randomArray(D * D, 6, 0.3) },
      whead: { dims: [D, D], data: randomArray(D * D, 7, 0.3) },
    },
    nodes: [
      { op: 'LayerNormalization', inputs: ['x', 'gamma', 'beta'], outputs: ['ln'], name: 'ln', attrs: { axis: -1 } },
      { op: 'MatMul', inputs: ['ln', 'wq'], outputs: ['q_mm'], name: 'q' },
      { op: 'Add', inputs: ['q_mm', 'bq'], outputs: ['q_out'], name: 'q_bias' },
      { op: 'MatMul', inputs: ['ln', 'wk'], outputs: ['k_out'], name: 'k' },
      { op: 'MatMul', inputs: ['q_out', 'wfc'], outputs: ['y'], name: 'fc' },
      { op: 'Softmax', inputs: ['k_out'], outputs: ['k_soft'], name: 'soft', attrs: { axis: -1 } },
      { op: 'MatMul', inputs: ['k_soft', 'whead'], outputs: ['z'], name: 'head' },
    ],
  });
}

async function run(model: ReturnType<typeof buildModel>, x: Float32Array) {
  const session = await ort.InferenceSession.create(encodeModel(model));
  const out = await session.run({ x: new ort.Tensor('float32', x, [2, T, D]) });
  await session.release();
  return { y: out.y.data as Float32Array, z: out.z.data as Float32Array };
}

test('SmoothQuant finds what a LayerNorm and a Linear (MatMul + Add) feed, says why it skips the rest, and keeps the float model the same function', async () => {
  const view = new GraphView(block());
  const plan = planQuantization(view, recipeFor('xnnpack'));
  const { groups, skipped } = smoothableGroups(view, plan);
  assert.deepEqual(groups.map((g) => [g.input, g.producer.kind, g.producer.node.name, g.consumers.map((c) => c.node.name)]),
    [['ln', 'layernorm', 'ln', ['q', 'k']], ['q_out', 'linear', 'q', ['fc']]]);
  assert.deepEqual(skipped, [{ input: 'k_soft', reason: 'it comes from Softmax soft, which cannot take a per-channel scale' }]);
  const x = randomArray(2 * T * D, 8, 2);
  const feed: Feed = { x: { type: 'float32', dims: [2, T, D], data: x } };
  const amax = await channelAbsMax(view.model, new Map(groups.map((g) => [g.input, g.k])), memorySource([feed], 'one batch').batches(2));
  const ln = amax.get('ln')!;
  assert.ok(ln[3] > 5 * Math.max(...Array.from(ln).filter((_, j) => j !== 3)), 'channel 3 is the outlier');
  const smoothed = smoothModel(view, groups, amax, 0.5);
  // Each scaled tensor has one reader: it keeps its name, so overrides and reports still name it.
  assert.deepEqual(smoothed.model.graph!.initializer.map((t) => t.name).sort(), view.model.graph!.initializer.map((t) => t.name).sort());
  assert.ok(smoothed.report[0].outlierRatio.after < smoothed.report[0].outlierRatio.before / 2, JSON.stringify(smoothed.report[0]));
  const [before, after] = [await run(view.model, x), await run(smoothed.model, x)];
  for (const name of ['y', 'z'] as const) {
    for (let i = 0; i < before[name].length; i++) {
      assert.ok(Math.abs(before[name][i] - after[name][i]) <= 1e-5 * (1 + Math.abs(before[name][i])), `${name}[${i}]: ${before[name][i]} vs ${after[name][i]}`);
    }
  }
  // The smoothed activation's channel ranges are now those max|X|^(1-α)·max|W|^α predicts.
  const again = await channelAbsMax(smoothed.model, new Map([['ln', D]]), memorySource([feed], 'one batch').batches(2));
  assert.ok(again.get('ln')![3] < ln[3] / 2);
});
