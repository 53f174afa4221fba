// Local against cumulative SQNR, and sensitivity, on a chain whose answer is known by
// construction: x → Sigmoid → a → Sigmoid → b → Sigmoid → c, with b given a deliberately huge range
// [0, 1000] (an outlier seen in calibration) while its values lie in (0.5, 0.74). b's step is then
// 1000/255 ≈ 3.9, every value of b rounds to 0, and b's own error is b itself: local SQNR exactly
// 0 dB. c quantizes well on exact float inputs (high local SQNR), but in the quantized model it is
// Sigmoid(0) = 0.5 instead of ≈ 0.66: its cumulative SQNR is low. a is unaffected.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { recipeFor } from '../../shared/backends';
import { writeNpy } from '../../main/data/npy';
import { analyze } from '../../main/jobs/analyze';
import { quantize } from '../../main/jobs/quantize';
import { openSource } from '../../main/data/readers';
import { readSubset } from '../../main/data/subset';
import { configRunner, Subset, SWITCH_INPUT, switchModel, withSwitchesFixed } from '../../main/eval/sensitivity';
import { numericsOptions } from '../../main/onnx/numerics';
import * as ort from 'onnxruntime-node';
import { calibrate } from '../../main/calib/calibrate';
import { convertModel } from '../../main/convert/convert';
import { loadForJob } from '../../main/jobs/job';
import type { PreprocessSpec } from '../../shared/preprocess';
import type { Recipe } from '../../shared/recipe';
import { inputSpecs, shapedSession } from '../../main/onnx/session';
import { GraphView } from '../../main/onnx/graph';
import { loadModel, saveModel } from '../../main/onnx/model';
import { repair } from '../../main/repair/search';
import { calibrationTensors, planQuantization } from '../../main/plan/plan';
import { buildModel, randomArray, ROOT, tempDir } from '../helpers/build';

const N = 16;
const W = 64;

function fixture(): { model: string; data: string; ranges: string; dir: string; x: Float32Array } {
  const dir = tempDir('outlier');
  const model = path.join(dir, 'chain.onnx');
  saveModel(buildModel({
    inputs: { x: ['N', W] },
    outputs: { c: ['N', W] },
    nodes: [
      { op: 'Sigmoid', inputs: ['x'], outputs: ['a'], name: 'sig_a' },
      { op: 'Sigmoid', inputs: ['a'], outputs: ['b'], name: 'sig_b' },
      { op: 'Sigmoid', inputs: ['b'], outputs: ['c'], name: 'sig_c' },
    ],
  }), model);
  const x = randomArray(N * W, 7, 4);
  const data = path.join(dir, 'x.npy');
  writeNpy(data, 'float32', [N, W], x);
  const ranges = path.join(dir, 'chain.ranges.json');
  fs.writeFileSync(ranges, JSON.stringify({
    version: 1, model: 'chain.onnx', method: 'minmax', samples: N,
    tensors: { x: { min: -4, max: 4 }, a: { min: 0, max: 1 }, b: { min: 0, max: 1000 }, c: { min: 0, max: 1 } },
  }));
  return { model, data, ranges, dir, x };
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
const db = (d: number | 'inf' | undefined) => (d === 'inf' ? Infinity : d ?? NaN);

test('local SQNR isolates the layer with the outlier range; cumulative SQNR carries its error downstream', async () => {
  const f = fixture();
  const recipe = recipeFor('cpu', 'a8w8');
  const r = await analyze({ model: f.model, recipe, ranges: f.ranges, evaluation: f.data, samples: N, candidates: 3 });
  const layer = (name: string) => r.layers.find((l) => l.name === name)!;
  // b rounds to zero everywhere: its local error is the whole signal.
  assert.ok(Math.abs(db(layer('b').localSqnr)) < 1e-3, `local SQNR of b: ${layer('b').localSqnr}`);
  assert.ok(db(layer('b').sqnr) < 1, `cumulative SQNR of b: ${layer('b').sqnr}`);
  // c on exact float inputs: 8-bit rounding on [0, 1], about 6.02·8 + 10·log10(12·mean(c²)/1²) ≥ 45 dB.
  assert.ok(db(layer('c').localSqnr) > 40, `local SQNR of c: ${layer('c').localSqnr}`);
  // c in the quantized model: Sigmoid(0) = 0.5 (then 8-bit) against Sigmoid(b): computed here.
  let s = 0;
  let e = 0;
  for (const v of f.x) {
    const ref = sigmoid(sigmoid(sigmoid(v)));
    const q = Math.round(0.5 * 255) / 255;
    s += ref * ref;
    e += (ref - q) ** 2;
  }
  const expected = 10 * Math.log10(s / e);
  assert.ok(Math.abs(db(layer('c').sqnr) - expected) < 0.5, `cumulative SQNR of c ${layer('c').sqnr} dB, expected ≈ ${expected.toFixed(2)} dB`);
  assert.ok(db(layer('c').localSqnr) - db(layer('c').sqnr) > 20, 'c: local error small, cumulative error large');
  assert.ok(db(layer('a').localSqnr) > 40 && db(layer('a').sqnr) > 35, 'a is untouched by the outlier downstream');
  assert.equal(r.worstLocal[0], 'b');
  assert.equal(r.firstDrop?.name, 'b');
  // Keeping b alone in float recovers the output; b ranks first.
  const top = r.sensitivity[0];
  assert.equal(top.name, 'b');
  assert.ok(db(top.onlyFloat) > 35, `output with only b in float: ${top.onlyFloat} dB`);
  assert.ok(db(top.onlyQuantized) < 25, `output with only b quantized: ${top.onlyQuantized} dB`);
  assert.ok(db(r.baseline.outputSqnr) < 25);
});

test('the search moves the outlier layer to 16-bit on cpu and meets the target; the report lists it', async () => {
  const f = fixture();
  const out = path.join(f.dir, 'chain.repaired.onnx');
  const outcome = await quantize({
    model: f.model, recipe: recipeFor('cpu', 'a8w8'), ranges: f.ranges, evaluation: f.data, out,
    target: { kind: 'sqnr', value: 30 }, searchSamples: N,
  });
  const repair = outcome.report.repair!;
  assert.equal(repair.met, true, repair.reason);
  assert.deepEqual(repair.changes.map((c) => [c.name, c.action]), [['b', 'uint16']]);
  assert.equal(repair.cost.unitsChanged, 1);
  assert.ok(db(repair.after.outputSqnr) >= 30 && db(repair.before.outputSqnr) < 25);
  assert.equal(outcome.report.recipe.overrides.b?.type, 'uint16');
  assert.ok(db(outcome.report.outputs[0].sqnr) >= 30, `exported model: ${outcome.report.outputs[0].sqnr} dB`);
  // xnnpack has no 16-bit activations but may keep nodes in float.
  const x = await quantize({
    model: f.model, recipe: recipeFor('xnnpack'), ranges: f.ranges, evaluation: f.data, out: path.join(f.dir, 'chain.xnnpack.onnx'),
    target: { kind: 'sqnr', value: 30 }, searchSamples: N,
  });
  assert.equal(x.report.repair!.met, true, x.report.repair!.reason);
  assert.deepEqual(x.report.repair!.changes.map((c) => [c.name, c.action]), [['b', 'float']]);
  assert.equal(x.report.recipe.overrides.b?.float, true);
});

test('a backend that cannot keep float and has no 16-bit activations gives up and says why', async () => {
  const f = fixture();
  const floatModel = loadModel(f.model).model;
  const view = new GraphView(floatModel);
  const recipe = recipeFor('xnnpack');
  const plan = planQuantization(view, recipe);
  // The xnnpack record as a full-integer target would be: only int8, nothing kept in float.
  plan.backend = { ...plan.backend, keepFloat: false, overrideTypes: ['int8'] };
  const ranges = new Map(Object.entries((JSON.parse(fs.readFileSync(f.ranges, 'utf8')) as { tensors: Record<string, { min: number; max: number }> }).tensors));
  const source = await openSource(f.data, inputSpecs(view));
  const { feeds } = await readSubset(source, N, N);
  const outcome = await repair({ view, floatModel, recipe, plan, ranges, subset: await Subset.create(floatModel, feeds), target: { kind: 'sqnr', value: 30 }, numerics: 'reference' });
  assert.equal(outcome.report.met, false);
  assert.match(outcome.report.reason, /runs every quantized node as an integer kernel and offers no 16-bit activations/);
  assert.deepEqual(outcome.report.changes, []);
  assert.deepEqual(outcome.recipe, recipe);
});

test('the switch model: every switch on is the quantized model, every switch off the float model (sample model, MNIST)', async () => {
  const cases: Array<[string, string, Recipe, PreprocessSpec | undefined]> = [
    [path.join(ROOT, 'resources', 'sample', 'cls.onnx'), path.join(ROOT, 'resources', 'sample', 'calibration'), recipeFor('xnnpack'), { size: [48, 192], mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }],
    [path.join(ROOT, 'test', 'fixtures', 'mnist-cnn', 'model.onnx'), path.join(ROOT, 'test', 'fixtures', 'mnist-cnn', 'calib.npy'), recipeFor('cpu', 'a8w8'), undefined],
  ];
  for (const [model, data, recipe, preprocess] of cases) {
    const m = await loadForJob({ model, recipe, preprocess }, recipe, () => {});
    const source = await m.open(data, 'calibration');
    const { ranges } = await calibrate(m.floatModel, calibrationTensors(m.plan), source, { batchSize: 8 });
    const converted = convertModel(m.view, m.plan, ranges);
    const { feeds } = await readSubset(source, 16, 8);
    const subset = await Subset.create(m.floatModel, feeds);
    const { runner } = await configRunner('reference', m.view, m.plan, ranges, converted, subset);
    try {
      const quantized = await subset.measureModel(converted.model, 'quantized model', 'reference');
      const on = await runner.measure(() => true);
      const off = await runner.measure(() => false);
      assert.ok(Math.abs(on.sqnr - quantized.sqnr) < 0.01, `${model}: all on ${on.sqnr.toFixed(3)} dB, the quantized model ${quantized.sqnr.toFixed(3)} dB`);
      assert.ok(off.sqnr > 100, `${model}: all off ${off.sqnr} dB against the float model`);
      // Few units quantized run the switch model with its switches fixed: the same figures as its run with them.
      const { model: switched, units } = switchModel(m.view, m.plan, converted);
      const session = await shapedSession(switched, subset.shapes, 'switch model', numericsOptions('reference'));
      try {
        for (const picked of [[0], [units.length >> 1], [units.length - 1], [0, 2, units.length - 1], []]) {
          const on = (i: number) => picked.includes(i);
          const viaSwitches = await subset.measure(session, { [SWITCH_INPUT]: new ort.Tensor('bool', Uint8Array.from(units, (_, i) => (on(i) ? 1 : 0)), [units.length]) });
          const fixed = withSwitchesFixed(switched, units.length, on);
          assert.ok(!fixed.graph!.node.some((n) => n.opType === 'If') && !fixed.graph!.input.some((i) => i.name === SWITCH_INPUT), 'no switch left');
          const viaFixed = await runner.measure(on);
          const what = `${model}: units ${picked.join(', ') || 'none'} quantized`;
          assert.ok(Math.abs(viaFixed.sqnr - viaSwitches.sqnr) < 0.01 || (viaFixed.sqnr > 100 && viaSwitches.sqnr > 100), `${what}: ${viaFixed.sqnr.toFixed(4)} dB fixed, ${viaSwitches.sqnr.toFixed(4)} dB by the switches`);
          assert.ok(Math.abs(viaFixed.metrics['argmax-agreement']! - viaSwitches.metrics['argmax-agreement']!) < 1e-9, what);
        }
      } finally {
        await session.release();
      }
    } finally {
      await runner.release();
    }
  }
});

test('a conversion-per-configuration runner takes the caller\'s figure for the model it would build with every unit quantized, and measures any other (MNIST, ort-cpu)', async () => {
  const model = path.join(ROOT, 'test', 'fixtures', 'mnist-cnn', 'model.onnx');
  const recipe = recipeFor('cpu', 'a8w8');
  const m = await loadForJob({ model, recipe }, recipe, () => {});
  const source = await m.open(path.join(ROOT, 'test', 'fixtures', 'mnist-cnn', 'calib.npy'), 'calibration');
  const { ranges } = await calibrate(m.floatModel, calibrationTensors(m.plan), source, { batchSize: 8 });
  const converted = convertModel(m.view, m.plan, ranges);
  const subset = await Subset.create(m.floatModel, (await readSubset(source, 16, 8)).feeds);
  const measured = await subset.measureModel(converted.model, 'quantized model', 'ort-cpu');
  const { runner } = await configRunner('ort-cpu', m.view, m.plan, ranges, converted, subset, undefined, measured);
  try {
    assert.equal(await runner.measure(() => true), measured, 'every unit quantized: the caller\'s figure');
    assert.equal(runner.runs, 0);
    const oneFloat = await runner.measure((i) => i !== 0);
    assert.equal(runner.runs, 1);
    assert.notEqual(oneFloat.sqnr, measured.sqnr);
  } finally {
    await runner.release();
  }
  // Another model than the one built (its ranges widened): measured, not taken.
  const wider = new Map([...ranges].map(([t, r]) => [t, { min: r.min * 2, max: r.max * 2 }]));
  const { runner: other } = await configRunner('ort-cpu', m.view, m.plan, wider, converted, subset, undefined, measured);
  try {
    const all = await other.measure(() => true);
    assert.equal(other.runs, 1);
    assert.notEqual(all, measured);
    assert.ok(Math.abs(all.sqnr - (await subset.measureModel(convertModel(m.view, m.plan, wider).model, 'wider', 'ort-cpu')).sqnr) < 1e-9);
  } finally {
    await other.release();
  }
});
