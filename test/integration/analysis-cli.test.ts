// The analysis verbs as a user runs them, on the trained MNIST CNN: analyze prints the ranking,
// and a repair whose target the fully quantized model already meets changes nothing.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { recipeFor } from '../../shared/backends';
import type { AnalysisReport, Report } from '../../shared/report';
import { quantize } from '../../main/jobs/quantize';
import { ROOT } from '../helpers/build';
import { runCli, trackedTempDirs, type Run } from '../helpers/cli';

const tempDir = trackedTempDirs();

const MNIST = path.join(ROOT, 'test', 'fixtures', 'mnist-cnn');
const MODEL = path.join(MNIST, 'model.onnx');
const CALIB = path.join(MNIST, 'calib.npy');
const EVAL = path.join(MNIST, 'eval.npy');
const LABELS = path.join(MNIST, 'eval_labels.npy');

function cli(args: string[]): Run {
  return runCli(args, { timeout: 120_000 });
}

test('MNIST: a target the quantized model already meets returns at once and changes nothing', async () => {
  const dir = tempDir('mnist-target');
  const recipe = recipeFor('cpu', 'a8w8');
  const outcome = await quantize({
    model: MODEL, recipe, calibration: CALIB, evaluation: EVAL, labels: LABELS, out: path.join(dir, 'q.onnx'),
    target: { kind: 'metric', metric: 'top1-agreement', value: 0.98 },
    // The recipe as given, on any CPU: this test is about the repair leaving it alone.
    saturationFix: false,
  });
  const r = outcome.report;
  assert.equal(r.repair!.met, true);
  assert.deepEqual(r.repair!.changes, []);
  assert.equal(r.repair!.runs, 1, 'one measurement of the quantized model, no sensitivity runs');
  assert.deepEqual(r.recipe, recipe);
  assert.deepEqual(r.repair!.cost.nodesLeavingIntegerPath, []);
  // Met at once, yet the cost still says of how many layers none moved.
  assert.deepEqual([r.repair!.cost.unitsChanged, r.repair!.cost.unitsTotal > 0], [0, true]);
  assert.ok(r.repair!.before.metrics['top1-agreement'] >= 0.98);
  // The whole evaluation reports task metrics against the labels as well.
  assert.ok(r.metrics!.accuracy >= 0.97 && r.metrics!['float-accuracy'] >= 0.97, JSON.stringify(r.metrics));
  assert.ok(Math.abs(r.metrics!.accuracy - r.metrics!['float-accuracy']) <= 0.01);
});

test('quantize --target-metric asking for accuracy without labels says what to pass', () => {
  const dir = tempDir('mnist-nolabels');
  const r = cli(['quantize', MODEL, '--backend', 'cpu', '--calibration', CALIB, '--eval', EVAL, '--target-metric', 'accuracy:0.9', '--out', path.join(dir, 'q.onnx'), '--quiet']);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /needs labels of class ids: pass --labels/);
  assert.deepEqual(fs.readdirSync(dir), [], 'nothing written');
  const bad = cli(['quantize', MODEL, '--backend', 'cpu', '--calibration', CALIB, '--target-metric', 'top1:0.9']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /top1-agreement, top5-agreement/);
});

test('quantize --target-sqnr prints the repair summary and writes it in the report', () => {
  const dir = tempDir('mnist-sqnr');
  const out = path.join(dir, 'q.onnx');
  const r = cli(['quantize', MODEL, '--backend', 'cpu', '--calibration', CALIB, '--eval', EVAL, '--target-sqnr', '20', '--out', out, '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /repair \(output SQNR ≥ 20 dB, measured in ort-cpu\): met — the fully quantized model already meets the target; nothing changed/);
  const report = JSON.parse(fs.readFileSync(path.join(dir, 'q.report.json'), 'utf8')) as Report;
  assert.equal(report.repair?.met, true);
});

test('analyze prints the sensitivity ranking, local and cumulative SQNR, and writes its report', () => {
  const dir = tempDir('mnist-analyze');
  const reportFile = path.join(dir, 'analysis.json');
  const r = cli(['analyze', MODEL, '--backend', 'cpu', '--calibration', CALIB, '--eval', EVAL, '--subset', '32', '--candidates', '3', '--report', reportFile, '--quiet']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /rank\s+layer\s+op\s+local dB\s+cumul dB\s+only-q dB\s+only-float dB/);
  assert.match(r.stdout, /all quantized: output \d+\.\d dB, argmax-agreement/);
  assert.match(r.stdout, /worst local SQNR: /);
  const report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as AnalysisReport;
  assert.equal(report.samples, 32);
  assert.equal(report.sensitivity.filter((s) => s.onlyFloat !== undefined).length, 3);
  assert.equal(report.skipped, report.sensitivity.length - 3);
  assert.deepEqual(report.sensitivity.map((s) => s.rank), report.sensitivity.map((_, i) => i + 1));
  for (const l of report.layers) assert.ok(l.localSqnr !== undefined, `${l.name} has a local SQNR`);
  // With only one layer in float, the output is at least as close to float as with all quantized (up to noise).
  const top = report.sensitivity[0];
  const v = (d: number | 'inf' | undefined) => (d === 'inf' ? Infinity : d!);
  assert.ok(v(top.onlyFloat) >= v(report.baseline.outputSqnr) - 0.5);
  const missing = cli(['analyze', MODEL, '--backend', 'cpu']);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /needs calibration data or saved ranges/);
});
