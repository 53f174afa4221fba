// Figures in named numerics: the reference (the QDQ graph as written) against ONNX Runtime's fused
// CPU kernels, the probe that says whether this machine's int8 path saturates, and what the cpu
// backend does about it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { recipeFor } from '../../shared/backends';
import type { HostNumerics } from '../../shared/numerics';
import type { Db, Report } from '../../shared/report';
import { hostNumerics, probeExpected, webgpuAdapter } from '../../main/onnx/numerics';
import { quantize } from '../../main/jobs/quantize';
import { saturationFix } from '../../main/plan/cpu-host';
import { ROOT, tempDir } from '../helpers/build';
import { EMULATED_CPU, type EmulatedFigures } from '../helpers/emulated-cpu';

const MNIST = path.join(ROOT, 'test', 'fixtures', 'mnist-cnn');
const SAMPLE = path.join(ROOT, 'resources', 'sample');
const v = (d: Db) => (d === 'inf' ? Infinity : d);

// VPMADDUBSW adds each pair of u8×s8 products into an int16 with saturation: 255·127·2 = 64770
// becomes 32767, for each of the 32 pairs of the probe's 64-long reduction.
const SATURATED = [32767 * 32, Math.round((32767 * 32) / 8192) * 8192];

test('the saturation probe: its exact answers by hand, and this machine gives them or the saturated ones', async () => {
  assert.deepEqual(probeExpected(), [255 * 127 * 64, 253 * 8192]);
  const host = await hostNumerics();
  assert.deepEqual(host.probe.expected, probeExpected());
  assert.deepEqual(host.probe.fused, host.int8Saturates ? SATURATED : probeExpected(), `${host.cpu}: fused ${host.probe.fused}`);
  assert.equal(await hostNumerics(), host, 'measured once per process');
});

test('the saturation fix: uint8 weights for the cpu backend on a saturating CPU only, for integer kinds with int8 weights', () => {
  const saturating: HostNumerics = { cpu: 'test CPU', int8Saturates: true, probe: { expected: probeExpected(), fused: SATURATED } };
  const exact: HostNumerics = { ...saturating, int8Saturates: false, probe: { expected: probeExpected(), fused: probeExpected() } };
  const fixed = saturationFix(recipeFor('cpu', 'a8w8'), saturating);
  assert.equal(fixed.recipe.weightType, 'uint8');
  assert.equal(fixed.fix?.applied, 'uint8-weights');
  assert.match(fixed.fix!.words, /session\.x64quantprecision=1/);
  assert.equal(saturationFix(recipeFor('cpu', 'dynamic-int8'), saturating).recipe.weightType, 'uint8');
  for (const [recipe, host] of [[recipeFor('cpu', 'a8w8'), exact], [recipeFor('xnnpack', 'a8w8'), saturating], [recipeFor('cpu', 'w8'), saturating],
    [{ ...recipeFor('cpu', 'a8w8'), reduceRange: true }, saturating], [{ ...recipeFor('cpu', 'a8w8'), activationType: 'uint16' as const }, saturating]] as const) {
    const kept = saturationFix(recipe, host);
    assert.equal(kept.recipe, recipe, `${recipe.backend} ${recipe.kind} ${recipe.activationType}/${recipe.weightType} reduceRange=${recipe.reduceRange} on ${host.int8Saturates ? 'a saturating' : 'an exact'} CPU`);
    assert.equal(kept.fix, undefined);
  }
});

test('xnnpack on a trained CNN: ≥ 35 dB output SQNR in reference numerics, and the output row of the table is the output figure', async () => {
  const dir = tempDir('numerics-xnnpack');
  const { report } = await quantize({
    model: path.join(MNIST, 'model.onnx'), recipe: recipeFor('xnnpack', 'a8w8'), calibration: path.join(MNIST, 'calib.npy'),
    evaluation: path.join(MNIST, 'eval.npy'), out: path.join(dir, 'x.onnx'), latency: false,
  });
  assert.equal(report.numerics, 'reference');
  assert.equal(report.deployed, undefined, 'no runtime of XNNPACK on this machine: no deployed figures');
  const output = report.outputs[0];
  assert.ok(v(output.sqnr) >= 35, `output ${output.sqnr} dB`);
  const row = report.layers.find((l) => l.name === output.name)!;
  assert.ok(Math.abs(v(row.sqnr) - v(output.sqnr)) < 0.01, `the ${output.name} row says ${row.sqnr} dB, the output ${output.sqnr} dB`);
});

test('cpu: reference and ort-cpu side by side; --numerics ort-cpu measures the layers in fused kernels; a gap over 3 dB is explained', async () => {
  const dir = tempDir('numerics-cpu');
  const common = {
    model: path.join(SAMPLE, 'cls.onnx'), recipe: recipeFor('cpu', 'a8w8'), calibration: path.join(SAMPLE, 'calibration'),
    preprocess: { mean: [0.5, 0.5, 0.5] as [number, number, number], std: [0.5, 0.5, 0.5] as [number, number, number] }, latency: false,
  };
  const both = (await quantize({ ...common, out: path.join(dir, 'both.onnx') })).report;
  const fused = (await quantize({ ...common, out: path.join(dir, 'fused.onnx'), numerics: 'ort-cpu' })).report;
  assert.equal(both.numerics, 'reference');
  assert.equal(both.deployed?.numerics, 'ort-cpu');
  assert.equal(both.deployed?.samples, both.samples.evaluation);
  assert.equal(fused.numerics, 'ort-cpu');
  assert.equal(fused.deployed, undefined, 'ort-cpu is already the main figure');
  const out = both.outputs[0].name;
  // The exported model as ONNX Runtime runs it, measured twice: the same figure.
  assert.ok(Math.abs(v(fused.outputs[0].sqnr) - v(both.deployed!.outputs[0].sqnr)) < 0.01);
  // The sample ends in a Softmax that ONNX Runtime replaces by QLinearSoftmax: reference and ort-cpu part there.
  const row = (r: Report) => v(r.layers.find((l) => l.name === out)!.sqnr);
  assert.ok(row(both) - row(fused) > 3, `reference ${row(both)} dB, ort-cpu ${row(fused)} dB at ${out}`);
  assert.ok(Math.abs(row(both) - v(both.outputs[0].sqnr)) < 0.01, 'reference: the output row is the output figure');
  assert.match(both.deployed!.note!, /^ort-cpu is \d+\.\d dB below reference: ONNX Runtime's fused kernels requantize in integer arithmetic and replace ops such as Softmax/);
  // Layers before the Softmax agree between the two numerics on a CPU whose kernels do not saturate.
  const host = await hostNumerics();
  if (!host.int8Saturates) {
    const fusedRows = new Map(fused.layers.map((l) => [l.name, v(l.sqnr)]));
    const apart = both.layers.filter((l) => l.name !== out && Math.abs(v(l.sqnr) - fusedRows.get(l.name)!) > 1).map((l) => l.name);
    assert.deepEqual(apart, []);
  }
});

test('webgpu: figures on this machine\'s GPU where ONNX Runtime finds an adapter, else one line saying there is none', async () => {
  const dir = tempDir('numerics-webgpu');
  const { report } = await quantize({
    model: path.join(MNIST, 'model.onnx'), recipe: recipeFor('webgpu', 'a8w8'), calibration: path.join(MNIST, 'calib.npy'), out: path.join(dir, 'w.onnx'), latency: false,
  });
  assert.equal(report.numerics, 'reference');
  const gpu = await webgpuAdapter();
  if (gpu.available) {
    assert.equal(report.deployed?.numerics, 'webgpu');
    assert.equal(report.host.webgpu, undefined);
  } else {
    assert.equal(report.deployed, undefined);
    assert.match(report.host.webgpu!, /^no WebGPU adapter on this machine \(.+\): the figures are reference numerics only$/);
  }
});

function qemu(): string | undefined {
  const found = spawnSync('qemu-x86_64', ['--version'], { encoding: 'utf8' });
  return found.status === 0 && process.arch === 'x64' ? 'qemu-x86_64' : undefined;
}

test('on an emulated x86 CPU without VNNI: the probe saturates, uint8 weights keep ort-cpu at the reference, int8 weights do not and the report says why',
  { skip: qemu() ? false : 'qemu-x86_64 is not installed (.ci/run installs it)', timeout: 600_000 }, () => {
    const script = path.join(ROOT, 'dist', 'test', 'helpers', 'emulated-cpu.js');
    const r = spawnSync(qemu()!, ['-cpu', EMULATED_CPU, process.execPath, script], { encoding: 'utf8', timeout: 590_000 });
    assert.equal(r.status, 0, r.stderr);
    const figures = JSON.parse(r.stdout) as EmulatedFigures;
    assert.equal(figures.host.int8Saturates, true);
    assert.deepEqual(figures.host.probe.fused, SATURATED);
    const { fixed, unfixed } = figures.runs;
    assert.equal(fixed.weightType, 'uint8');
    assert.equal(fixed.host.saturationFix?.applied, 'uint8-weights');
    assert.equal(unfixed.weightType, 'int8');
    assert.equal(unfixed.host.saturationFix, undefined);
    const ref = v(fixed.outputs[0].sqnr);
    assert.ok(ref >= 35, `reference ${ref} dB`);
    assert.ok(Math.abs(v(fixed.deployed!.outputs[0].sqnr) - ref) < 1, `fixed: ort-cpu ${fixed.deployed!.outputs[0].sqnr} dB against reference ${ref} dB`);
    assert.ok(v(unfixed.outputs[0].sqnr) >= 35, 'int8 weights in reference numerics are as good');
    assert.ok(v(unfixed.deployed!.outputs[0].sqnr) < ref - 10, `unfixed: ort-cpu ${unfixed.deployed!.outputs[0].sqnr} dB`);
    assert.match(unfixed.deployed!.note!, /fused u8×s8 kernels saturate pairs of products \(no VNNI\)/);
  });
