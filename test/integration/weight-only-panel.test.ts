// The layer panel of a weight-only or dynamic run: the weight's float values against the values the
// quantized model stores (decoded from its initializers), its scales, and "keep in float" as a
// re-conversion that needs no calibrated ranges.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { saveModel } from '../../main/onnx/model';
import { quantizeMatMulNBits, quantizeWeight } from '../../main/plan/qmath';
import { StudioService } from '../../main/studio/service';
import { recipeFor } from '../../shared/backends';
import type { Histogram, JobEvent, RunRequest, RunResult } from '../../shared/ipc';
import { withHigherPrecision } from '../../shared/recipe';
import { buildModel, randomArray, ROOT, tempDir } from '../helpers/build';

const dir = tempDir('weight-panel');
const service = new StudioService({ stateDir: path.join(dir, 'state'), sampleDir: path.join(ROOT, 'resources', 'sample'), emit: (e) => onEvent(e) });
let onEvent: (e: JobEvent) => void = () => undefined;
after(async () => {
  await service.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const K = 256;
const N = 32;
const w1 = randomArray(K * N, 7, 0.2);
// One outlier: its block's scale is 20 times its neighbours', and symmetric 4-bit cuts the block's far negative end.
w1[5 * N + 3] = 4;
w1[9 * N + 3] = -3.9;
const w2 = randomArray(N * 8, 8, 0.5);

/** x → Conv → Flatten → MatMul(w1) → Relu → MatMul(w2) → y: MatMuls for 4-bit, a Conv for int8 and ConvInteger. */
const model = path.join(dir, 'tiny.onnx');
saveModel(buildModel({
  inputs: { x: [1, 1, 8, 8] },
  outputs: { y: [1, 8] },
  initializers: { w0: { dims: [4, 1, 3, 3], data: randomArray(36, 6) }, w1: { dims: [K, N], data: w1 }, w2: { dims: [N, 8], data: w2 } },
  nodes: [
    { op: 'Conv', inputs: ['x', 'w0'], outputs: ['c'], name: 'conv', attrs: { pads: [1, 1, 1, 1] } },
    { op: 'Flatten', inputs: ['c'], outputs: ['f'], name: 'flatten', attrs: { axis: 1 } },
    { op: 'MatMul', inputs: ['f', 'w1'], outputs: ['h'], name: 'fc1' },
    { op: 'Relu', inputs: ['h'], outputs: ['r'], name: 'relu' },
    { op: 'MatMul', inputs: ['r', 'w2'], outputs: ['y'], name: 'fc2' },
  ],
}), model);

function run(request: Omit<RunRequest, 'model'>): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    onEvent = (e) => {
      if (e.type === 'failed') reject(new Error(`${e.stage}: ${e.message}`));
      if (e.type === 'done') resolve(e.result);
    };
    try {
      service.start({ model, ...request });
    } catch (err) {
      reject(err);
    }
  });
}

/** The counts of `values` over the histogram's own bins. */
function binned(h: Histogram, values: Float32Array): number[] {
  const bins = h.float.length;
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.max(0, Math.floor(((v - h.min) / (h.max - h.min)) * bins)))]++;
  return counts;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

let w4: RunResult | undefined;

test('weight-only 4-bit: the panel shows the weight as MatMulNBits stores it, with its block scales', { timeout: 120_000 }, async () => {
  w4 = await run({ recipe: recipeFor('cpu', 'w4') });
  const layer = w4.report.layers.find((l) => l.node === 'fc1')!;
  assert.ok(layer, 'fc1 is a layer of the report');
  const detail = await service.layer(w4.runId, layer.name);
  assert.equal(detail.histogram, undefined, 'no activation histogram: activations stay in float');
  assert.match(detail.note!, /^Weight-only: this activation stays in float/);
  assert.doesNotMatch(detail.note!, /run time/);
  const w = detail.weights!;
  assert.ok(w, 'the panel has the weight');
  assert.equal(w.name, 'w1');
  assert.equal(w.values, K * N);
  assert.equal(sum(w.histogram.float), K * N);
  assert.equal(sum(w.histogram.quantized), K * N);
  assert.equal(w.granularity, 'per-block (32)');
  assert.equal(w.blockSize, 32);
  const expected = quantizeMatMulNBits(w1, K, N, 32, true);
  assert.equal(w.scales.count, N * (K / 32), 'one scale per column and block of 32');
  const steps = Array.from(expected.scales, Math.abs).sort((a, b) => a - b);
  assert.equal(w.scales.min, steps[0]);
  assert.equal(w.scales.max, steps[steps.length - 1]);
  assert.ok(w.scales.max > 10 * w.scales.median, `the outlier's block stands out: ${w.scales.max} against a median ${w.scales.median}`);
  // Decoded from the stored nibbles, the dequantized values are exactly the ones the quantizer made.
  assert.deepEqual(w.histogram.quantized, binned(w.histogram, expected.dequantized));
  assert.deepEqual(w.histogram.float, binned(w.histogram, w1));
  let clipped = 0;
  for (let i = 0; i < w1.length; i++) if (Math.abs(w1[i] - expected.dequantized[i]) > Math.abs(expected.scales[(i % N) * (K / 32) + Math.floor(i / N / 32)]) * 0.5 * (1 + 1e-5)) clipped++;
  assert.ok(clipped >= 1, 'the outlier block cuts -3.9 at the end of the grid');
  assert.equal(w.clipped, clipped);
});

test('weight-only: keep in float re-converts from the run without calibrated ranges', { timeout: 120_000 }, async () => {
  assert.ok(w4, 'the 4-bit run finished');
  const layer = w4.report.layers.find((l) => l.node === 'fc1')!;
  assert.deepEqual(layer.nodes, ['fc1']);
  const recipe = withHigherPrecision(w4.report.recipe, [{ tensor: layer.name, nodes: layer.nodes }], 'float');
  const again = await run({ recipe, fromRun: w4.runId });
  assert.equal(again.fromRun, w4.runId);
  const kept = again.report.layers.find((l) => l.name === layer.name)!;
  assert.ok(kept.keptInFloat, 'the layer is kept in float');
  assert.equal(kept.sqnr, 'inf');
  assert.equal(again.report.weights.some((x) => x.node === 'fc1'), false, 'its weight is no longer quantized');
  assert.equal(again.report.weights.some((x) => x.node === 'fc2'), true, 'the other MatMul still is');
  assert.equal(again.report.samples.evaluation, w4.report.samples.evaluation, 'evaluated on the parent\'s samples');
  const detail = await service.layer(again.runId, layer.name);
  assert.equal(detail.weights, undefined, 'a layer kept in float has no stored weight to show');
});

test('weight-only int8 per channel: the DequantizeLinear weight, one scale per output channel', { timeout: 120_000 }, async () => {
  const result = await run({ recipe: recipeFor('cpu', 'w8') });
  const conv = await service.layer(result.runId, result.report.layers.find((l) => l.node === 'conv')!.name);
  assert.equal(conv.weights?.name, 'w0');
  assert.equal(conv.weights.scales.count, 4, 'Conv: one scale per output channel');
  assert.equal(conv.weights.values, 36);
  assert.equal(conv.weights.blockSize, undefined);
  const fc2 = await service.layer(result.runId, result.report.layers.find((l) => l.node === 'fc2')!.name);
  const w = fc2.weights!;
  assert.equal(w.scales.count, 8, 'MatMul: one scale per column of B');
  assert.equal(sum(w.histogram.float), N * 8);
  assert.equal(w.clipped, 0, 'min/max scales clip nothing at 8 bits');
  assert.deepEqual(w.histogram.quantized, binned(w.histogram, quantizeWeight(w2, [N, 8], 'int8', true, 1).dequantized));
});

test('dynamic: the panel says activations are quantized at run time, and shows the int8 weights of MatMul and ConvInteger', { timeout: 120_000 }, async () => {
  const result = await run({ recipe: recipeFor('cpu', 'dynamic-int8') });
  const fc1 = await service.layer(result.runId, result.report.layers.find((l) => l.node === 'fc1')!.name);
  assert.match(fc1.note!, /^Dynamic: .*at run time, per batch, from that batch's own min and max/);
  assert.equal(fc1.weights?.name, 'w1');
  assert.equal(sum(fc1.weights.histogram.quantized), K * N);
  assert.equal(fc1.weights.scales.count, N);
  const conv = await service.layer(result.runId, result.report.layers.find((l) => l.node === 'conv')!.name);
  assert.equal(conv.weights?.name, 'w0', 'found behind ConvInteger');
  assert.equal(conv.weights.scales.count, 4);
  assert.deepEqual(conv.weights.histogram.quantized, binned(conv.weights.histogram, quantizeWeight(randomArray(36, 6), [4, 1, 3, 3], 'int8', true, 0).dequantized));
  // Keep in float works for dynamic too: nothing to re-calibrate.
  const layer = result.report.layers.find((l) => l.node === 'fc2')!;
  const again = await run({ recipe: withHigherPrecision(result.report.recipe, [{ tensor: layer.name, nodes: layer.nodes }], 'float'), fromRun: result.runId });
  assert.ok(again.report.layers.find((l) => l.name === layer.name)?.keptInFloat);
});

test('a static re-run still needs the parent\'s ranges: a weight-only parent has none', async () => {
  assert.ok(w4);
  assert.throws(() => service.start({ model, recipe: recipeFor('cpu', 'a8w8'), fromRun: w4!.runId }), /has no calibrated ranges to re-use/);
});
