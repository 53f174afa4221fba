// The user's own metric: a module scored on the evaluation and the repair search, checked against
// the built-in metric it re-implements; its failures named; and the shipped CTC example against
// the bench's own decoder on real recognizer outputs.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { recipeFor } from '../../shared/backends';
import { CancelledError } from '../../main/base/progress';
import { readLabels } from '../../main/data/labels';
import { openSource } from '../../main/data/readers';
import { loadMetricModule, perSample } from '../../main/eval/custom-metric';
import { htmlReport } from '../../main/export/html-report';
import { quantize } from '../../main/jobs/quantize';
import { GraphView } from '../../main/onnx/graph';
import { loadModel } from '../../main/onnx/model';
import { inputSpecs, toOrtFeeds } from '../../main/onnx/session';
import { ctcGreedy, LINES, ocrKeys, PREPROCESS } from '../bench/ocr';
import { MODELS, ROOT } from '../helpers/build';
import { runCli, trackedTempDirs } from '../helpers/cli';

const tempDir = trackedTempDirs();
const MNIST = path.join(ROOT, 'test', 'fixtures', 'mnist-cnn');
const CTC_MODULE = path.join(ROOT, 'resources', 'metrics', 'ctc-exact-match.mjs');

/** Top-1 accuracy against class-id labels: the built-in `accuracy`, written as a user would. */
const TOP1_MODULE = `
export default {
  name: 'top-1 accuracy',
  score({ quantized, labels }) {
    let hits = 0;
    quantized.forEach((s, i) => {
      const { data } = Object.values(s)[0];
      let best = 0;
      for (let c = 1; c < data.length; c++) if (data[c] > data[best]) best = c;
      if (best === labels[i]) hits++;
    });
    return hits / quantized.length;
  },
};
`;

function write(dir: string, name: string, text: string): string {
  fs.writeFileSync(path.join(dir, name), text);
  return path.join(dir, name);
}

test('a metric module scores the evaluation and the repair search; it equals the built-in metric it re-implements', async () => {
  const dir = tempDir('custom-mnist');
  const module = write(dir, 'top1.mjs', TOP1_MODULE);
  const labels = write(dir, 'labels.json', JSON.stringify(readLabels(path.join(MNIST, 'eval_labels.npy')).values));
  const outcome = await quantize({
    model: path.join(MNIST, 'model.onnx'), recipe: recipeFor('cpu', 'a8w8'), calibration: path.join(MNIST, 'calib.npy'),
    evaluation: path.join(MNIST, 'eval.npy'), labels, metricModule: module, out: path.join(dir, 'q.onnx'), latency: false, saturationFix: false,
    target: { kind: 'metric', metric: 'custom', value: 0.5 },
  });
  const r = outcome.report;
  assert.deepEqual(r.customMetric, { name: 'top-1 accuracy', module });
  assert.equal(r.metrics!.custom, r.metrics!.accuracy, 'the module and the built-in accuracy agree on the whole evaluation');
  assert.equal(r.metrics!['float-custom'], r.metrics!['float-accuracy']);
  assert.ok(r.metrics!.custom > 0.9);
  assert.equal(r.repair!.met, true);
  assert.equal(r.repair!.before.metrics.custom, r.repair!.before.metrics.accuracy, 'and on the search subset');
  assert.match(htmlReport(r), new RegExp(`top-1 accuracy \\(custom\\) ${r.metrics!.custom.toFixed(4)}`));
});

test('eval scores another tool\'s model with the metric module too: ONNX Runtime\'s QDQ MNIST from the shell', () => {
  const dir = tempDir('custom-eval');
  const module = write(dir, 'top1.mjs', TOP1_MODULE);
  const r = runCli(['eval', path.join(MNIST, 'model.onnx'), path.join(MNIST, 'model.ort-qdq.onnx'), '--data', path.join(MNIST, 'eval.npy'),
    '--labels', path.join(MNIST, 'eval_labels.npy'), '--metric-module', module, '--json', '--quiet'], { timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { metrics: Record<string, number>; customMetric: { name: string } };
  assert.equal(out.customMetric.name, 'top-1 accuracy');
  assert.equal(out.metrics.custom, out.metrics.accuracy);
  assert.equal(out.metrics['float-custom'], out.metrics['float-accuracy']);
});

test('a metric module that is missing, malformed, throws, returns no number, exits or never returns is named or cancelled; the engine runs on', async () => {
  const dir = tempDir('custom-bad');
  await assert.rejects(loadMetricModule(path.join(dir, 'none.mjs')), /none\.mjs: no such metric module/);
  await assert.rejects(loadMetricModule(write(dir, 'syntax.mjs', 'export default {')), /syntax\.mjs: the metric module does not load/);
  await assert.rejects(loadMetricModule(write(dir, 'shape.mjs', 'export default { score() { return 1; } };')), /shape\.mjs: not a metric module: its default export must be \{ name: string, score/);
  const input = { float: [], quantized: [] };
  const throws = await loadMetricModule(write(dir, 'throws.mjs', "export default { name: 'boom', score() { throw new Error('no labels here'); } };"));
  await assert.rejects(throws.score(input), /throws\.mjs: the metric "boom" failed on 0 samples: no labels here/);
  const nan = await loadMetricModule(write(dir, 'nan.mjs', "export default { name: 'nan', score: async () => NaN };"));
  await assert.rejects(nan.score(input), /nan\.mjs: the metric "nan" returned NaN, not a finite number/);
  // Its own thread: a module that exits takes only that thread, one that never returns is ended by a cancel.
  await assert.rejects(loadMetricModule(write(dir, 'quits.mjs', 'process.exit(2);')), /quits\.mjs: the metric module ended its thread while loading \(code 2\)/);
  const exits = await loadMetricModule(write(dir, 'exits.mjs', "export default { name: 'quits', score() { process.exit(3); } };"));
  await assert.rejects(exits.score(input), /exits\.mjs: the metric "quits" failed on 0 samples: its thread exited \(code 3\)/);
  const loops = await loadMetricModule(write(dir, 'loops.mjs', "export default { name: 'forever', score() { for (;;); } };"));
  const controller = new AbortController();
  const started = Date.now();
  setTimeout(() => controller.abort(), 200);
  await assert.rejects(loops.score(input, controller.signal), CancelledError);
  assert.ok(Date.now() - started < 5000, 'the cancel ends the looping module');
  // Each sample alone, for the repair's comparisons: a module that needs more than one sample still scores the whole.
  const sample = (v: number) => ({ y: { dims: [1], data: Float32Array.of(v) } });
  const pairs = { float: [sample(1), sample(2), sample(3)], quantized: [sample(1), sample(0), sample(3)] };
  const matches = await loadMetricModule(write(dir, 'matches.mjs', "export default { name: 'match', score: ({ float, quantized }) => float.filter((f, i) => f.y.data[0] === quantized[i].y.data[0]).length / float.length };"));
  assert.deepEqual(await matches.scoreEach(pairs), { value: 2 / 3, each: Float64Array.of(1, 0, 1) });
  const whole = await loadMetricModule(write(dir, 'whole.mjs', "export default { name: 'pairs', score: ({ float }) => { if (float.length < 2) throw new Error('needs two'); return 1; } };"));
  assert.deepEqual(await whole.scoreEach(pairs), { value: 1 });
  const cli = runCli(['quantize', path.join(MNIST, 'model.onnx'), '--backend', 'cpu', '--calibration', path.join(MNIST, 'calib.npy'), '--target-metric', 'custom:0.9', '--out', path.join(dir, 'q.onnx'), '--quiet'], { timeout: 120_000 });
  assert.equal(cli.status, 1, cli.stderr);
  assert.match(cli.stderr, /custom ≥ 0\.9 needs the metric module: pass --metric-module FILE\.mjs/);
  assert.ok(!fs.existsSync(path.join(dir, 'q.onnx')), 'nothing written');
});

test('the shipped CTC exact-match module decodes recognizer outputs as the bench decoder does', async () => {
  const metric = await loadMetricModule(CTC_MODULE);
  const view = new GraphView(loadModel(MODELS.rec).model);
  const source = await openSource(path.join(LINES, 'eval'), inputSpecs(view), { preprocess: PREPROCESS, limit: 6 });
  const names = fs.readdirSync(path.join(LINES, 'eval')).filter((f) => f.endsWith('.png')).sort().slice(0, 6);
  const truth = JSON.parse(fs.readFileSync(path.join(LINES, 'eval.labels.json'), 'utf8')) as Record<string, string>;
  const session = await ort.InferenceSession.create(MODELS.rec);
  const keys = ocrKeys();
  const samples = [];
  const decoded: string[] = [];
  for await (const feed of source.batches(3)) {
    const out = (await session.run(toOrtFeeds(feed)))[session.outputNames[0]] as ort.Tensor;
    const batch = perSample({ [session.outputNames[0]]: { dims: out.dims, data: out.data as Float32Array } }, out.dims[0]);
    samples.push(...batch);
    for (const s of batch) decoded.push(ctcGreedy(s[session.outputNames[0]].data, out.dims[1], out.dims[2], keys));
  }
  await session.release();
  // Labels: the true text for four lines, a wrong one for two.
  const labels = names.map((n, i) => (i < 4 ? truth[n] : 'not this line'));
  const expected = decoded.filter((text, i) => text.trim() === labels[i].trim()).length / names.length;
  assert.ok(expected > 0.5, `the float model reads most lines (${expected})`);
  assert.equal(await metric.score({ float: samples, quantized: samples, labels }), expected);
  await assert.rejects(metric.score({ float: samples, quantized: samples }), /needs --labels/);
});
