// Accuracy-recovery algorithms before conversion. Cross-layer equalization: the float model
// computes the same outputs, and each pair's per-channel weight ranges meet, which is what
// per-tensor weight quantization needs. Bias correction: each layer's mean output error vanishes.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { recipeFor } from '../../shared/backends';
import { runStages, type Progress } from '../../shared/progress';
import type { Algorithms } from '../../shared/recipe';
import { dbNumber, deltaText, formatDb, layerAlgorithms, withoutWords, type Report } from '../../shared/report';
import { htmlReport } from '../../main/export/html-report';
import { convertModel } from '../../main/convert/convert';
import { quantize } from '../../main/jobs/quantize';
import { GraphView } from '../../main/onnx/graph';
import { planQuantization } from '../../main/plan/plan';
import { analyticBiasCorrection, foldedOutputStats } from '../../main/repair/bias-correction';
import { equalizeLayers } from '../../main/plan/equalize';
import { prepareModel } from '../../main/plan/prepare';
import { encodeModel, loadModel } from '../../main/onnx/model';
import { tensorDims, tensorToFloat32 } from '../../main/onnx/tensor';
import { buildModel, randomArray, ROOT, withOutputs } from '../helpers/build';
import { trackedTempDirs } from '../helpers/cli';

const tempDir = trackedTempDirs();
const MNIST = path.join(ROOT, 'test', 'fixtures', 'mnist-cnn');

const C = 8;

/** Weights whose output channels differ in scale by up to 300x, as depthwise convs after BN folding do. */
function skewed(n: number, channels: number, seed: number): Float32Array {
  const w = randomArray(n, seed);
  const per = n / channels;
  for (let c = 0; c < channels; c++) for (let i = c * per; i < (c + 1) * per; i++) w[i] *= 0.01 + 3 * (c % 3 === 0 ? 1 : 0) * (c + 1);
  return w;
}

/** conv (3 -> 8) -> Relu -> MaxPool -> depthwise 3x3 -> PRelu -> pointwise (8 -> 4); and a conv whose output also feeds the graph output. */
function model() {
  return buildModel({
    inputs: { x: [2, 3, 10, 10] }, outputs: { y: [2, 4, 10, 10], side: [2, 8, 10, 10] },
    initializers: {
      w1: { dims: [C, 3, 3, 3], data: skewed(C * 27, C, 1) }, b1: { dims: [C], data: randomArray(C, 2) },
      w2: { dims: [C, 1, 3, 3], data: skewed(C * 9, C, 3) }, b2: { dims: [C], data: randomArray(C, 4) },
      slope: { dims: [C, 1, 1], data: randomArray(C, 5, 0.2) },
      w3: { dims: [4, C, 1, 1], data: randomArray(4 * C, 6) }, b3: { dims: [4], data: randomArray(4, 7) },
      w4: { dims: [C, 3, 1, 1], data: skewed(C * 3, C, 8) },
      w5: { dims: [C, C, 1, 1], data: randomArray(C * C, 9) },
    },
    nodes: [
      { op: 'Conv', inputs: ['x', 'w1', 'b1'], outputs: ['a'], attrs: { pads: [1, 1, 1, 1] }, name: 'conv1' },
      { op: 'Relu', inputs: ['a'], outputs: ['ar'], name: 'relu1' },
      { op: 'MaxPool', inputs: ['ar'], outputs: ['ap'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, name: 'pool' },
      { op: 'Conv', inputs: ['ap', 'w2', 'b2'], outputs: ['d'], attrs: { pads: [1, 1, 1, 1], group: C }, name: 'dw' },
      { op: 'PRelu', inputs: ['d', 'slope'], outputs: ['dp'], name: 'prelu' },
      { op: 'Conv', inputs: ['dp', 'w3', 'b3'], outputs: ['y'], name: 'pw' },
      // side's first conv also feeds a graph output: scaling it would change that output.
      { op: 'Conv', inputs: ['x', 'w4'], outputs: ['side'], name: 'shared' },
      { op: 'Conv', inputs: ['side', 'w5'], outputs: ['unused'], name: 'after-shared' },
    ],
  });
}

async function outputs(m: ReturnType<typeof model>, x: Float32Array) {
  const s = await ort.InferenceSession.create(encodeModel(m));
  const out = await s.run({ x: new ort.Tensor('float32', x, [2, 3, 10, 10]) });
  await s.release();
  return { y: out.y.data as Float32Array, side: out.side.data as Float32Array };
}

test('CLE leaves the float outputs unchanged to 1e-5 relative and equalizes each pair\'s channel ranges', async () => {
  const original = model();
  const { model: equalized, pairs } = equalizeLayers(original);
  assert.deepEqual(pairs.map((p) => [p.first, p.second, p.via]), [['conv1', 'dw', ['relu1', 'pool']], ['dw', 'pw', ['prelu']]]);
  const x = randomArray(2 * 3 * 100, 11, 2);
  const before = await outputs(original, x);
  const after = await outputs(equalized, x);
  for (const name of ['y', 'side'] as const) {
    const scale = Math.max(...before[name].map(Math.abs));
    const worst = Math.max(...before[name].map((v, i) => Math.abs(v - after[name][i])));
    assert.ok(worst <= 1e-5 * scale, `${name}: max difference ${worst} against max |y| ${scale}`);
  }
  // dw sits in both pairs: its rows (conv1's partners) and pw's input columns (its partners) meet.
  const w = (name: string) => {
    const t = equalized.graph!.initializer.find((i) => i.name === name)!;
    return { data: tensorToFloat32(t), dims: tensorDims(t) };
  };
  const w2 = w('w2');
  const w3 = w('w3');
  const rows = (t: { data: Float32Array; dims: number[] }, c: number) => Math.max(...t.data.subarray(c * (t.data.length / t.dims[0]), (c + 1) * (t.data.length / t.dims[0])).map(Math.abs));
  for (let c = 0; c < C; c++) {
    const column = Math.max(...Array.from({ length: 4 }, (_, o) => Math.abs(w3.data[o * C + c])));
    assert.ok(Math.abs(rows(w2, c) - column) <= 1e-3 * column, `channel ${c}: dw row ${rows(w2, c)} against pw column ${column}`);
  }
  const spread = (t: { data: Float32Array; dims: number[] }) => {
    const r = Array.from({ length: t.dims[0] }, (_, c) => rows(t, c));
    return Math.max(...r) / Math.min(...r);
  };
  const originalW2 = tensorToFloat32(original.graph!.initializer.find((i) => i.name === 'w2')!);
  assert.ok(spread(w2) < spread({ data: originalW2, dims: [C, 1, 3, 3] }) / 10, `the depthwise channel ranges narrow: ${spread({ data: originalW2, dims: [C, 1, 3, 3] })} → ${spread(w2)}`);
  assert.deepEqual(equalized.graph!.initializer.find((i) => i.name === 'w4'), original.graph!.initializer.find((i) => i.name === 'w4'), 'a conv feeding a graph output stays');
});

/**
 * conv1 copies the one input channel to 4, a BatchNorm makes channel c γ_c·√3·x + β_c (its
 * statistics: mean 0, variance 1/3, which x uniform in [−1, 1] has), then Relu and a 1x1 conv2 to 3 channels.
 */
function batchNormReluConv(beta: number[], gamma: number[], seed: number) {
  return buildModel({
    inputs: { x: ['n', 1, 6, 6] }, outputs: { y: ['n', 3, 6, 6] },
    initializers: {
      w1: { dims: [4, 1, 1, 1], data: [1, 1, 1, 1] }, b1: { dims: [4], data: [0, 0, 0, 0] },
      s: { dims: [4], data: gamma }, bb: { dims: [4], data: beta }, mu: { dims: [4], data: [0, 0, 0, 0] }, var: { dims: [4], data: [1 / 3, 1 / 3, 1 / 3, 1 / 3] },
      w2: { dims: [3, 4, 1, 1], data: randomArray(12, seed) }, b2: { dims: [3], data: randomArray(3, seed + 1) },
    },
    nodes: [
      { op: 'Conv', inputs: ['x', 'w1', 'b1'], outputs: ['c1'], name: 'conv1' },
      { op: 'BatchNormalization', inputs: ['c1', 's', 'bb', 'mu', 'var'], outputs: ['bn'], name: 'bn', attrs: { epsilon: 1e-12 } },
      { op: 'Relu', inputs: ['bn'], outputs: ['r'], name: 'relu' },
      { op: 'Conv', inputs: ['r', 'w2', 'b2'], outputs: ['y'], name: 'conv2' },
    ],
  });
}

test('high-bias absorption: a Conv folded with a BatchNorm of high mean gives its bias to the next conv through a Relu; outputs unchanged where its output stays above mean − 3 std, and the Relu\'s range narrows', async () => {
  // conv1 copies the one input channel to 4; the BatchNorm makes channel c γ_c·√3·x + β_c, and x is uniform
  // in [−1, 1] with the mean 0 and variance 1/3 the BatchNorm was given: its output never leaves β ± √3·|γ|.
  const beta = [4, 0.2, -1, 6];
  const gamma = [0.5, 1, 0.3, -1];
  const m = batchNormReluConv(beta, gamma, 31);
  const prepared = prepareModel(m, { forQdq: true });
  const { model: absorbed, pairs } = equalizeLayers(prepared.model, prepared.foldedBatchNorms);
  // Channels 0 and 3 stay above β − 3|γ| > 0 (4 − 1.5, 6 − 3); 1 and 2 would go below 0.
  assert.deepEqual(pairs.map((p) => [p.first, p.second, p.absorbed]), [['conv1', 'conv2', 2]]);
  const x = randomArray(2 * 36, 33);
  const run = async (model: typeof m) => {
    const session = await ort.InferenceSession.create(encodeModel(withOutputs(model, ['r'])));
    const out = await session.run({ x: new ort.Tensor('float32', x, [2, 1, 6, 6]) });
    return { y: out.y.data as Float32Array, r: out.r.data as Float32Array };
  };
  const [before, after] = [await run(m), await run(absorbed)];
  const scale = Math.max(...before.y.map(Math.abs));
  assert.ok(before.y.every((v, i) => Math.abs(v - after.y[i]) <= 1e-5 * scale), 'the output is the same function on data within the BatchNorm\'s statistics');
  // Channel 0's Relu output stays in [β − √3γ, β + √3γ] = [3.13, 4.87]; after absorbing 4 − 3·0.5 = 2.5 (divided by
  // CLE's scale, which cancels in the ratio) it is [0.63, 2.37]: the range quantization must cover from 0 halves.
  const spread = (r: Float32Array) => {
    const c0 = r.filter((_, i) => Math.floor(i / 36) % 4 === 0);
    return Math.min(...c0) / Math.max(...c0);
  };
  const [lo, hi] = [Math.min(...x), Math.max(...x)].map((v) => 0.5 * Math.sqrt(3) * v);
  const close = (a: number, b: number) => Math.abs(a - b) < 1e-4;
  assert.ok(close(spread(before.r), (4 + lo) / (4 + hi)) && close(spread(after.r), (1.5 + lo) / (1.5 + hi)), `min/max of channel 0: ${spread(before.r)} → ${spread(after.r)}`);
});

test('analytic bias correction: without calibration data, a weight-only Conv reading a BatchNorm-folded conv through a Relu has the mean output shift of its weight error taken out of its bias', async () => {
  // As above, channel c of the Relu's input is uniform in β ± √3|γ|, all above 0, so E[Relu] = β as the statistics say.
  const m = batchNormReluConv([4, 3, 5, 6], [0.5, 0.5, 0.8, 1], 41);
  const prepared = prepareModel(m, { forQdq: false });
  const view = new GraphView(prepared.model);
  const plan = planQuantization(view, { ...recipeFor('cpu', 'w8'), granularity: 'per-tensor' });
  const corrected = analyticBiasCorrection(prepared.model, plan, foldedOutputStats(view, prepared.foldedBatchNorms));
  assert.deepEqual(corrected.layers.map((l) => l.node), ['conv2'], 'conv1 reads the graph input, whose statistics nothing gives');
  // Each value with its negative: the data's mean is exactly the statistics' 0, so the mean shift is exactly the predicted one.
  const half = randomArray(4 * 36, 43);
  const x = Float32Array.from([...half, ...half.map((v) => -v)]);
  const meanError = async (quantized: typeof m) => {
    const run = async (model: typeof m) => (await (await ort.InferenceSession.create(encodeModel(model))).run({ x: new ort.Tensor('float32', x, [8, 1, 6, 6]) })).y.data as Float32Array;
    const [f, q] = [await run(prepared.model), await run(quantized)];
    return [0, 1, 2].map((c) => {
      let sum = 0;
      for (let i = 0; i < f.length; i++) if (Math.floor(i / 36) % 3 === c) sum += q[i] - f[i];
      return sum / (f.length / 3);
    });
  };
  const before = await meanError(convertModel(view, plan, new Map()).model);
  const after = await meanError(convertModel(new GraphView(corrected.model), plan, new Map()).model);
  for (let c = 0; c < 3; c++) assert.ok(Math.abs(after[c]) < 0.02 * Math.abs(before[c]) + 1e-6, `channel ${c}: mean output error ${before[c]} → ${after[c]}`);
  assert.ok(Math.abs(corrected.layers[0].before - Math.sqrt(before.reduce((s, v) => s + v * v, 0) / 3)) < 0.02 * corrected.layers[0].before, 'the predicted shift is the measured one');
});

/** The run's per-layer baseline is the run without its algorithms, figure for figure: CLE's on ranges of the model as given, calibrated on the same data. */
function assertBaselineIsPlainRun(run: Report, plain: Report): void {
  const without = run.algorithms!.without!;
  assert.deepEqual(without.outputs, plain.outputs);
  assert.equal(without.metrics.accuracy, plain.metrics!.accuracy);
  assert.equal(without.samples, plain.samples.evaluation);
  assert.deepEqual(Object.entries(without.layers).sort(), plain.layers.map((l) => [l.name, l.sqnr]).sort());
  assert.match(withoutWords(without, run), new RegExp(`output SQNR ${formatDb(plain.outputs[0].sqnr)} → ${formatDb(run.outputs[0].sqnr)} dB`));
}

/** The trained MNIST CNN quantized per-tensor (cpu a8w8) without and with the algorithms, scored on its 500 held-out digits. */
async function mnistWithAndWithout(dir: string, algorithms: Algorithms): Promise<{ plain: Report; with: Report }> {
  const base = { ...recipeFor('cpu', 'a8w8'), granularity: 'per-tensor' as const };
  const job = { model: path.join(MNIST, 'model.onnx'), calibration: path.join(MNIST, 'calib.npy'), evaluation: path.join(MNIST, 'eval.npy'), labels: path.join(MNIST, 'eval_labels.npy'), latency: false, saturationFix: false };
  const plain = (await quantize({ ...job, recipe: base, out: path.join(dir, 'plain.onnx') })).report;
  return { plain, with: (await quantize({ ...job, recipe: { ...base, algorithms }, out: path.join(dir, 'with.onnx') })).report };
}

test('quantize --cle on the trained MNIST CNN: per-tensor weights lose less, accuracy and output SQNR hold, the report says what changed', async () => {
  const dir = tempDir('cle-mnist');
  const { plain, with: cle } = await mnistWithAndWithout(dir, { cle: true });
  const pairs = cle.algorithms!.cle!.pairs;
  assert.deepEqual(pairs.map((p) => p.via.length > 0), [true], 'conv1 -> Relu -> MaxPool -> conv2');
  // Equalizing trades the wide weight's headroom for the narrow one's: the pair's worse weight gains.
  const w = pairs[0].weightSqnr;
  const worse = (k: 'before' | 'after') => Math.min(w.first![k] as number, w.second![k] as number);
  assert.ok(worse('after') > worse('before') + 1, `the pair's worse weight SQNR ${worse('before')} → ${worse('after')} dB`);
  assert.equal(cle.metrics!['float-accuracy'], plain.metrics!['float-accuracy'], 'the float model is the same function');
  assert.ok(cle.metrics!.accuracy >= plain.metrics!.accuracy - 0.005, `accuracy ${plain.metrics!.accuracy} → ${cle.metrics!.accuracy}`);
  assert.ok((cle.outputs[0].sqnr as number) >= (plain.outputs[0].sqnr as number) - 0.5, `output SQNR ${plain.outputs[0].sqnr} → ${cle.outputs[0].sqnr} dB`);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'with.recipe.json'), 'utf8')).algorithms, { cle: true }, 'the written recipe reproduces it');
  assertBaselineIsPlainRun(cle, plain);
  // From the ranges file alone, the un-equalized model has no ranges to convert with: the report says why it has no baseline.
  const rerun = (await quantize({ model: path.join(MNIST, 'model.onnx'), ranges: path.join(dir, 'with.ranges.json'), evaluation: path.join(MNIST, 'eval.npy'), latency: false, saturationFix: false,
    recipe: cle.recipe, out: path.join(dir, 'rerun.onnx') })).report;
  assert.equal(rerun.algorithms!.without, undefined);
  assert.match(rerun.algorithms!.withoutNote!, /no calibration data/);
  const html = htmlReport(cle);
  assert.match(html, /Cross-layer equalization \(1 Conv pairs/);
  assert.match(html, /method minmax, cross-layer equalization/);
});

test('bias correction zeroes each layer\'s mean output error on the samples it measured, and keeps accuracy and output SQNR on held-out digits', async () => {
  const { plain, with: corrected } = await mnistWithAndWithout(tempDir('bias-mnist'), { biasCorrection: true });
  const bc = corrected.algorithms!.biasCorrection!;
  assert.deepEqual(bc.layers.map((l) => l.node), ['/conv1/Conv', '/conv2/Conv', '/fc1/Gemm', '/fc2/Gemm']);
  // Level by level, each layer measured with the corrections upstream in place: nothing is left but int32 bias rounding.
  for (const l of bc.layers) assert.ok(l.after <= 0.01 * l.before, `${l.node}: mean error ${l.before} → ${l.after}`);
  assert.deepEqual([bc.samples, bc.passes], [8, 3], 'the model uncorrected, walked through its four levels, and corrected');
  assert.ok(corrected.metrics!.accuracy >= plain.metrics!.accuracy - 0.005, `accuracy ${plain.metrics!.accuracy} → ${corrected.metrics!.accuracy}`);
  assert.ok((corrected.outputs[0].sqnr as number) >= (plain.outputs[0].sqnr as number), `output SQNR ${plain.outputs[0].sqnr} → ${corrected.outputs[0].sqnr} dB`);
  assert.match(htmlReport(corrected), /Bias correction \(4 layers, 3 runs on 8 calibration samples/);
  // The float reference is the model as given: its outputs and accuracy are those of the uncorrected run.
  assert.equal(corrected.metrics!['float-accuracy'], plain.metrics!['float-accuracy']);
  assertBaselineIsPlainRun(corrected, plain);
  assert.match(htmlReport(corrected), /Against the same recipe without the algorithms/);
  // The report's layer table: every layer, worst first, each with its change against the run without the algorithms.
  const table = /<h2>Layers, worst first \((\d+)\)<\/h2>\n<table>(.*?)<\/table>/s.exec(htmlReport(corrected))!;
  assert.equal(Number(table[1]), corrected.layers.length);
  const rows = [...table[2].matchAll(/<tr><td>([^<]*)<\/td>(.*?)<\/tr>/g)];
  assert.deepEqual(rows.map((r) => r[1]), [...corrected.layers].sort((a, b) => dbNumber(a.sqnr) - dbNumber(b.sqnr) || a.index - b.index).map((l) => l.name));
  const deltas = rows.map((r) => /<td>([^<]*)<\/td><\/tr>$/.exec(r[0])![1]);
  assert.deepEqual(deltas, rows.map((r) => {
    const l = corrected.layers.find((x) => x.name === r[1])!;
    return deltaText(dbNumber(l.sqnr) - dbNumber(corrected.algorithms!.without!.layers[l.name]));
  }));
});

/** conv1 (3 -> 8) -> Relu -> depthwise -> Relu -> pointwise (8 -> 4), whose small channels carry as much of y as the large ones: per-tensor weights lose them. */
function balancedOutputSkewedChannels() {
  const gain = (c: number) => 0.01 + 3 * (c % 3 === 0 ? 1 : 0) * (c + 1);
  const w3 = randomArray(4 * C, 6);
  for (let o = 0; o < 4; o++) for (let c = 0; c < C; c++) w3[o * C + c] /= gain(c) * gain(c);
  return buildModel({
    inputs: { x: ['n', 3, 10, 10] }, outputs: { y: ['n', 4, 10, 10] },
    initializers: {
      w1: { dims: [C, 3, 3, 3], data: skewed(C * 27, C, 1) }, b1: { dims: [C], data: randomArray(C, 2) },
      w2: { dims: [C, 1, 3, 3], data: skewed(C * 9, C, 3) }, b2: { dims: [C], data: randomArray(C, 4) },
      w3: { dims: [4, C, 1, 1], data: w3 }, b3: { dims: [4], data: randomArray(4, 7) },
    },
    nodes: [
      { op: 'Conv', inputs: ['x', 'w1', 'b1'], outputs: ['a'], attrs: { pads: [1, 1, 1, 1] }, name: 'conv1' },
      { op: 'Relu', inputs: ['a'], outputs: ['ar'], name: 'relu1' },
      { op: 'Conv', inputs: ['ar', 'w2', 'b2'], outputs: ['d'], attrs: { pads: [1, 1, 1, 1], group: C }, name: 'dw' },
      { op: 'Relu', inputs: ['d'], outputs: ['dr'], name: 'relu2' },
      { op: 'Conv', inputs: ['dr', 'w3', 'b3'], outputs: ['y'], name: 'pw' },
    ],
  });
}

test('a repair tries cross-layer equalization first: it calibrates the equalized model again, keeps it where it measures better, and the job exports, reports and saves exactly what --cle gives', async () => {
  const dir = tempDir('cle-repair');
  const file = path.join(dir, 'skewed.onnx');
  fs.writeFileSync(file, encodeModel(balancedOutputSkewedChannels()));
  const recipe = { ...recipeFor('cpu', 'a8w8'), granularity: 'per-tensor' as const };
  const job = { model: file, calibration: 'random:32', evaluation: 'random:16', latency: false, saturationFix: false, numerics: 'reference' as const };
  const plain = (await quantize({ ...job, recipe, out: path.join(dir, 'plain.onnx') })).report;
  const baseline: Progress[] = [];
  const cle = (await quantize({ ...job, recipe: { ...recipe, algorithms: { cle: true } }, out: path.join(dir, 'cle.onnx'), onProgress: (p) => p.stage === 'baseline' && baseline.push(p) })).report;
  // The baseline's calibration and evaluation fill one bar, in order, to the end; the studio lists it after Evaluate.
  assert.ok(baseline.length >= 2 && baseline.every((p, i) => i === 0 || (p.done >= baseline[i - 1].done && p.total === baseline[0].total)), JSON.stringify(baseline));
  assert.equal(baseline.at(-1)!.done, baseline.at(-1)!.total);
  assert.equal(baseline[0].total, 32 + 16, 'the 32 calibration samples, then the 16 evaluation samples');
  const stages = runStages({ recipe: cle.recipe });
  assert.equal(stages[stages.indexOf('evaluate') + 1], 'baseline');
  assert.ok(!runStages({ recipe }).includes('baseline'));
  assert.ok((plain.outputs[0].sqnr as number) < 20 && (cle.outputs[0].sqnr as number) > 40, `plain ${plain.outputs[0].sqnr} dB, --cle ${cle.outputs[0].sqnr} dB`);

  const repairedBaseline: Progress[] = [];
  const repaired = (await quantize({ ...job, recipe, target: { kind: 'sqnr', value: 40 }, out: path.join(dir, 'repaired.onnx'), onProgress: (p) => p.stage === 'baseline' && repairedBaseline.push(p) })).report;
  const r = repaired.repair!;
  assert.ok(r.met, r.reason);
  // Its baseline is the plain run, on the ranges the job calibrated before the repair equalized the model: no calibration again.
  assertBaselineIsPlainRun(repaired, plain);
  assert.deepEqual([...new Set(repairedBaseline.map((p) => p.total))], [16], 'the 16 evaluation samples alone');
  assert.deepEqual(r.changes.map((c) => c.action), ['algorithm:cle'], r.changes.map((c) => c.why).join('; '));
  assert.equal(r.cost.unitsChanged, 0);
  assert.deepEqual(repaired.recipe.algorithms, { cle: true }, 'the written recipe reproduces it');
  assert.deepEqual(repaired.algorithms!.cle!.pairs.map((p) => [p.first, p.second]), [['conv1', 'dw'], ['dw', 'pw']]);
  // The job adopted the equalized model and the ranges calibrated on it: the export is --cle's, figure for figure and byte for byte.
  assert.equal(repaired.outputs[0].sqnr, cle.outputs[0].sqnr);
  const weights = (name: string) => loadModel(path.join(dir, name)).model.graph!.initializer.map((t) => [t.name, Buffer.from(t.rawData).toString('hex')]);
  assert.deepEqual(weights('repaired.onnx'), weights('cle.onnx'));
  const saved = (name: string) => Object.entries(JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')).tensors as Record<string, { min: number; max: number }>).map(([t, r]) => [t, r.min, r.max]);
  assert.deepEqual(saved('repaired.ranges.json'), saved('cle.ranges.json'), 'the saved ranges are the equalized model\'s');
  // The HTML chart marks the layers equalization rescaled.
  const marked = repaired.layers.filter((l) => layerAlgorithms(repaired.algorithms, l.nodes).includes('CLE')).length;
  assert.ok(marked >= 3, `${marked} layers marked`);
  const html = htmlReport(repaired);
  assert.equal(html.match(/<rect class="changed"/g)?.length, marked);
  assert.match(html, new RegExp(`under a bar: ${marked} layers changed by an algorithm`));
  // It carries the repair: target, outcome and each change with its reason.
  assert.match(html, /<h2>Repair to output SQNR ≥ 40 dB: met<\/h2>/);
  assert.match(html, /<td>algorithm:cle<\/td><td>cross-layer equalization<\/td><td>every layer still quantized/);
});
