// The studio store driven through the test host, as the screens drive it: open, configure, run,
// inspect, keep a layer in float, export; plus errors, cancel and progress throttling.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { blankData, createStudioStore, dataRequest, type DataConfig } from '../../renderer/store';
import { recipeFor } from '../../shared/backends';
import type { JobEvent, RunRequest } from '../../shared/ipc';
import { adaRoundIterations, GPTQ_DEFAULTS } from '../../shared/recipe';
import { ROOT, SAMPLE_DIR, testHost, until, type TestHost } from './test-host';

let host: TestHost;
before(() => {
  host = testHost();
});
after(() => host.close());

const rank = (v: number | 'inf') => (v === 'inf' ? Infinity : v);

test('open the sample, run xnnpack a8w8, inspect the worst layer, keep it in float, export', { timeout: 120_000 }, async () => {
  const store = createStudioStore(host.api);
  await store.getState().openSample();
  let s = store.getState();
  assert.equal(s.screen, 'model');
  assert.equal(s.model?.name, 'cls.onnx');
  assert.equal(s.data.path, path.join(SAMPLE_DIR, 'calibration'));
  assert.deepEqual(s.data.preprocess.mean, [0.5, 0.5, 0.5]);

  store.getState().chooseBackend('xnnpack', 'a8w8');
  s = await until(store, (x) => Boolean(x.plan), 'the pre-flight');
  assert.ok(s.plan!.preflight!.counts.quantized > 100);
  assert.equal(s.preset, 'a8w8');

  await store.getState().refreshPreview();
  s = store.getState();
  assert.deepEqual(s.preview?.shape, [1, 3, 48, 192]);
  assert.ok(s.preview!.stats.every((c) => c.min >= -1 && c.max <= 1), 'mean/std 0.5 puts the pixels in [-1, 1]');
  assert.match(s.preview!.image!, /^data:image\/png;base64,/);

  await store.getState().startRun();
  s = await until(store, (x) => x.status === 'done' || x.status === 'failed', 'the run');
  assert.equal(s.status, 'done', s.failure?.message);
  assert.equal(s.screen, 'inspect');
  const report = s.current!.report;
  assert.equal(report.recipe.backend, 'xnnpack');
  assert.ok(report.layers.length > 100);
  // The studio holds out the last quarter of the 24 lines by default: figures come from the 6 calibration never saw.
  assert.equal(report.samples.calibration, 18);
  assert.equal(report.samples.evaluation, 6);
  assert.ok(!report.warnings.some((w) => /measured on the calibration data/.test(w)), report.warnings.join('; '));
  assert.ok(['load', 'calibrate', 'convert', 'evaluate', 'save'].every((st) => s.stages[st as 'load']!.done === s.stages[st as 'load']!.total && !s.stages[st as 'load']!.skipped));

  const worst = [...report.layers].sort((a, b) => rank(a.sqnr) - rank(b.sqnr))[0];
  await store.getState().selectLayer(worst.name);
  s = store.getState();
  const h = s.detail!.histogram!;
  assert.equal(h.float.length, h.quantized.length);
  const total = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  assert.equal(total(h.float), s.detail!.values, 'every float value lands in a bin');
  assert.equal(s.detail!.samples, report.samples.evaluation, 'the values of the 6 held-out lines the SQNR is measured on');
  assert.equal(total(h.quantized), s.detail!.values);
  assert.ok(h.min <= worst.range[0] + 1e-6 || h.min < 0, 'bins cover the calibrated range');

  const firstRun = s.current!.runId;
  await store.getState().overrideLayer(worst.name, 'float');
  s = await until(store, (x) => x.status === 'done' && x.current?.runId !== firstRun, 'the re-run');
  assert.equal(s.previous?.runId, firstRun, 'the old run stays for the overlay');
  assert.equal(s.stages.calibrate?.skipped, true, 'a re-run from saved ranges does not calibrate');
  assert.equal(s.stages.evaluate?.skipped, undefined);
  assert.equal(s.current!.fromRun, firstRun);
  assert.equal(s.current!.report.layers.find((l) => l.name === worst.name)?.sqnr, 'inf');
  assert.equal(s.current!.report.recipe.overrides[worst.name]?.float, true);
  assert.equal(s.selected, worst.name, 'the panel stays on the layer');
  s = await until(store, (x) => x.detail?.layer.sqnr === 'inf', 'the layer panel of the re-run');

  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'qs-store-export-'));
  try {
    store.getState().setExportFolder(out);
    await store.getState().exportRun();
    s = store.getState();
    assert.equal(s.exportError, undefined);
    assert.equal(s.exported!.folder, out);
    for (const f of s.exported!.files) assert.equal(fs.statSync(f.file).size, f.bytes);
    assert.ok(s.exported!.files.some((f) => f.file.endsWith('.report.html')));
    assert.equal(s.exported!.ratio, s.current!.report.sizes.ratio);
    // Exporting again would overwrite: nothing is written until the user agrees.
    const written = fs.statSync(s.exported!.files[0].file).mtimeMs;
    await store.getState().exportRun();
    s = store.getState();
    assert.equal(s.exported, undefined);
    assert.equal(s.exportConflict!.folder, out);
    assert.deepEqual([...s.exportConflict!.files].sort(), fs.readdirSync(out).map((f) => path.join(out, f)).sort());
    assert.equal(fs.statSync(path.join(out, path.basename(s.exportConflict!.files[0]))).mtimeMs, written);
    await store.getState().exportRun({ toFolder: true, overwrite: true });
    assert.equal(store.getState().exported!.files.length, s.exportConflict!.files.length);
    // A conflict is about one folder: naming another forgets it, and Overwrite then has nothing to write.
    await store.getState().exportRun();
    assert.ok(store.getState().exportConflict);
    store.getState().setExportFolder(path.join(out, 'elsewhere'));
    assert.equal(store.getState().exportConflict, undefined);
    await store.getState().exportRun({ overwrite: true });
    assert.equal(fs.existsSync(path.join(out, 'elsewhere')), false);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('export writes next to the model by default and leaves the input as it was', { timeout: 60_000 }, async () => {
  const store = createStudioStore(host.api);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qs-store-input-'));
  try {
    const model = path.join(dir, 'cls.onnx');
    fs.copyFileSync(path.join(SAMPLE_DIR, 'cls.onnx'), model);
    const before = fs.readFileSync(model);
    await store.getState().openPath(model);
    assert.equal(store.getState().exportFolder, dir);
    store.getState().setData({ kind: 'images', path: path.join(SAMPLE_DIR, 'calibration'), preprocess: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] } });
    store.getState().setRecipe({ calibrationSamples: 4 });
    await store.getState().startRun();
    const run = await until(store, (x) => x.status === 'done' || x.status === 'failed', 'the run');
    assert.equal(run.status, 'done', run.failure?.message);
    assert.deepEqual(fs.readdirSync(dir), ['cls.onnx'], 'a run writes nothing next to the model');
    await store.getState().exportRun();
    const s = store.getState();
    assert.equal(s.exportError, undefined);
    assert.deepEqual(fs.readFileSync(model), before);
    const written = s.exported!.files.map((f) => path.basename(f.file));
    assert.ok(!written.includes('cls.onnx'));
    assert.deepEqual(fs.readdirSync(dir).sort(), ['cls.onnx', ...written].sort());
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a dropped file that is not a model shows why and stays on Import', async () => {
  const store = createStudioStore(host.api);
  await store.getState().openFile(new File(['hello'], 'notes.txt'));
  assert.match(store.getState().modelError!, /notes\.txt: not an ONNX model/);
  await store.getState().openFile(new File(['not protobuf, only text'], 'fake.onnx'));
  assert.match(store.getState().modelError!, /fake\.onnx: not a readable ONNX model/);
  assert.equal(store.getState().screen, 'import');
  assert.equal(store.getState().model, undefined);
});

test('cancel stops the run and no run folder is left', { timeout: 60_000 }, async () => {
  const many = fs.mkdtempSync(path.join(os.tmpdir(), 'qs-store-many-'));
  try {
    const lines = fs.readdirSync(path.join(SAMPLE_DIR, 'calibration'));
    for (let k = 0; k < 20; k++) for (const l of lines) fs.symlinkSync(path.join(SAMPLE_DIR, 'calibration', l), path.join(many, `${k}-${l}`));
    const store = createStudioStore(host.api);
    await store.getState().openSample();
    store.getState().setData({ path: many });
    await store.getState().startRun();
    await until(store, (x) => (x.stages.calibrate?.done ?? 0) > 0, 'calibration progress');
    const runId = store.getState().runId!;
    const t0 = performance.now();
    await store.getState().cancelRun();
    const s = await until(store, (x) => x.status === 'cancelled', 'the cancel');
    assert.ok(performance.now() - t0 < 1000, `cancelled in ${Math.round(performance.now() - t0)} ms`);
    assert.equal(s.current, undefined);
    assert.deepEqual(fs.readdirSync(host.service.workRoot).filter((d) => d.startsWith(`${runId}-`)), []);
  } finally {
    fs.rmSync(many, { recursive: true, force: true });
  }
});

test('progress events are folded in at most every 100 ms', async () => {
  const store = createStudioStore(host.api);
  store.setState({ runId: 'run-x', status: 'running' });
  let updates = 0;
  const stop = store.subscribe(() => updates++);
  const t0 = performance.now();
  for (let i = 1; i <= 500; i++) {
    const e: JobEvent = { runId: 'run-x', type: 'progress', stage: 'calibrate', done: i, total: 500, rate: 100 };
    store.getState().onJobEvent(e);
  }
  assert.equal(updates, 0, 'nothing re-renders per event');
  await until(store, (x) => x.stages.calibrate?.done === 500, 'the flush', 1000);
  stop();
  assert.equal(updates, 1);
  assert.ok(performance.now() - t0 < 500);
  // Events of another run are ignored.
  store.getState().onJobEvent({ runId: 'run-y', type: 'failed', stage: 'load', message: 'x' });
  assert.equal(store.getState().status, 'running');
});

test('non-finite calibration data is refused naming the studio option; with it, the sample is dropped and the run says so', { timeout: 60_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qs-store-nan-'));
  try {
    const { writeNpy } = await import('../../main/data/npy');
    const data = new Float32Array(3 * 3 * 48 * 192).fill(0.25);
    data[3 * 48 * 192 + 7] = NaN;
    const file = path.join(dir, 'lines.npy');
    writeNpy(file, 'float32', [3, 3, 48, 192], data);
    const store = createStudioStore(host.api);
    await store.getState().openSample();
    store.getState().chooseBackend('xnnpack', 'a8w8');
    store.getState().setData({ kind: 'npy', path: file, evaluation: { kind: 'calibration', fraction: 0.25, path: '' } });
    await store.getState().startRun();
    const refused = await until(store, (x) => x.status === 'done' || x.status === 'failed', 'the refused run');
    assert.equal(refused.status, 'failed');
    assert.match(refused.failure!.message, /sample 2 of .*lines\.npy holds 1 value that is NaN.*in the studio, Drop non-finite samples/);

    store.getState().setData({ options: { skipNonFinite: true } });
    await store.getState().startRun();
    const run = await until(store, (x) => x.status === 'done' || x.status === 'failed', 'the run that drops the sample');
    assert.equal(run.status, 'done', run.failure?.message);
    assert.ok(run.warnings.some((w) => /dropped 1 sample with non-finite values: sample 2 of/.test(w)), JSON.stringify(run.warnings));
    assert.equal(run.current!.report.samples.calibration, 2);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the pixel cap set in the studio refuses a larger image from its header', { timeout: 60_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qs-store-cap-'));
  try {
    const sharp = (await import('sharp')).default;
    await sharp({ create: { width: 1000, height: 400, channels: 3, background: { r: 200, g: 200, b: 200 } } }).png().toFile(path.join(dir, 'wide.png'));
    const store = createStudioStore(host.api);
    await store.getState().openSample();
    // The sample comes back with its last settings, which an earlier test made .npy.
    store.getState().setData({ kind: 'images', path: dir, preprocess: { size: [48, 192] }, options: { maxMegapixels: 0.2 } });
    await store.getState().refreshPreview();
    assert.match(store.getState().previewError!, /wide\.png: 1000×400 is 0\.4 megapixels, over the 0\.2 MP cap .*in the studio, Pixel cap/);
    store.getState().setData({ options: { maxMegapixels: 1 } });
    await store.getState().refreshPreview();
    assert.equal(store.getState().previewError, undefined);
    assert.deepEqual(store.getState().preview!.shape, [1, 3, 48, 192]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('picked files reach the engine as one folder; a manifest among them is the source; a lone file is itself', { timeout: 60_000 }, async () => {
  const store = createStudioStore(host.api);
  await store.getState().openSample();
  const manifest = new File([JSON.stringify({ inputs: { x: 'x.npy' } })], 'manifest.json');
  const npy = new File([fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'mnist-cnn', 'eval_labels.npy'))], 'x.npy');
  await store.getState().pickData('path', [manifest, npy], false);
  const source = store.getState().data.path;
  assert.equal(path.basename(source), 'manifest.json');
  assert.deepEqual(fs.readdirSync(path.dirname(source)).sort(), ['manifest.json', 'x.npy']);
  await store.getState().pickData('labels', [npy], false);
  assert.equal(path.basename(store.getState().data.labels), 'x.npy');
  assert.notEqual(path.dirname(store.getState().data.labels), path.dirname(source));
  assert.equal(store.getState().picking, undefined);
  await store.getState().pickData('metricModule', [], false);
  assert.equal(store.getState().data.metricModule, '', 'picking nothing changes nothing');
});

test('a weight-only run with GPTQ reads calibration data, split for evaluation as a static run\'s; without GPTQ its data only measures', () => {
  const data: DataConfig = { ...blankData(), kind: 'npy', path: '/data/calib.npy', evaluation: { kind: 'held-out', fraction: 0.25, path: '' } };
  const fields = (r: Partial<RunRequest>) => ({ calibration: r.calibration, evaluation: r.evaluation, holdOut: r.holdOut });
  assert.deepEqual(fields(dataRequest(data, { ...recipeFor('cpu', 'w4'), algorithms: { gptq: GPTQ_DEFAULTS } })), { calibration: '/data/calib.npy', evaluation: undefined, holdOut: 0.25 });
  assert.deepEqual(fields(dataRequest(data, recipeFor('cpu', 'w4'))), { calibration: undefined, evaluation: '/data/calib.npy', holdOut: undefined });
});

test('AdaRound\'s iterations follow the granularity while they are its default, and stay where the user set them', () => {
  const store = createStudioStore(host.api);
  const iterations = () => store.getState().recipe.algorithms?.adaround?.iterations;
  store.getState().setRecipe({ ...recipeFor('cpu'), algorithms: { adaround: { iterations: adaRoundIterations('per-channel') } } });
  store.getState().setRecipe({ granularity: 'per-tensor' });
  assert.equal(iterations(), adaRoundIterations('per-tensor'));
  store.getState().setRecipe({ algorithms: { adaround: { iterations: 600 } } });
  store.getState().setRecipe({ granularity: 'per-channel' });
  assert.equal(iterations(), 600);
});
