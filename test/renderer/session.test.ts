// What outlives a page and what does not leak between models: each model opens with its own
// settings (its last run's, else the backend's preset), and a page that reloads comes back to the
// host's session: the model, the runs, a run still going, or one that ended while it was away.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { createStudioStore, keepSession } from '../../renderer/store';
import { recipeFor } from '../../shared/backends';
import { saveModel } from '../../main/onnx/model';
import { writeNpy } from '../../main/data/npy';
import { buildModel, randomArray, tempDir } from '../helpers/build';
import { SAMPLE_DIR, testHost, until, type TestHost } from './test-host';

let host: TestHost;
before(() => {
  host = testHost();
});
after(() => host.close());

/** A Conv model with a fixed 1×3×8×8 input: nothing like the sample's. */
function smallModel(): string {
  const file = path.join(tempDir('qs-session-model-'), 'small.onnx');
  saveModel(buildModel({
    inputs: { x: [1, 3, 8, 8] }, outputs: { y: [1, 4, 8, 8] },
    initializers: { w: { dims: [4, 3, 3, 3], data: randomArray(108, 3, 0.3) } },
    nodes: [{ op: 'Conv', inputs: ['x', 'w'], outputs: ['y'], attrs: { pads: [1, 1, 1, 1] } }],
  }), file);
  return file;
}

test('a model opens with its own settings: the backend\'s preset and no data for a new one, its last run\'s for one run before', { timeout: 60_000 }, async () => {
  const store = createStudioStore(host.api);
  await store.getState().openSample();
  store.getState().chooseBackend('qnn-htp', 'a16w8');
  store.getState().setRecipe({ excludeNodes: ['p2o.Conv.0'], calibrationSamples: 4 });
  const labels = path.join(tempDir('qs-session-labels-'), 'labels.json');
  fs.writeFileSync(labels, JSON.stringify(Array.from({ length: 24 }, (_, i) => i % 2)));
  store.getState().setData({ evaluation: { kind: 'held-out', fraction: 0.5, path: '' }, labels });
  const asked = store.getState();
  await store.getState().startRun();
  const run = await until(store, (x) => x.status === 'done' || x.status === 'failed', 'the sample\'s run');
  assert.equal(run.status, 'done', run.failure?.message);

  await store.getState().openPath(smallModel());
  let s = store.getState();
  assert.equal(s.model!.name, 'small.onnx');
  assert.deepEqual(s.recipe, recipeFor('qnn-htp'), 'the backend chosen last, at its first preset: no excluded node of another model');
  assert.equal(s.preset, 'a8w8');
  assert.equal(s.data.path, '', 'no image folder of another model');
  assert.deepEqual(s.data.preprocess, {}, 'no size of another model: the model\'s own input shape');
  assert.equal(s.data.labels, '');
  assert.equal(s.data.evaluation.kind, 'held-out');
  assert.equal(s.history.length, 0);

  await store.getState().openSample();
  s = store.getState();
  assert.deepEqual(s.recipe, asked.recipe, 'the sample comes back as it was last run');
  assert.equal(s.preset, undefined, 'an edited preset stays edited');
  assert.equal(s.data.path, asked.data.path);
  assert.deepEqual(s.data.preprocess, asked.data.preprocess);
  assert.deepEqual(s.data.evaluation, { kind: 'held-out', fraction: 0.5, path: '' });
  assert.equal(s.data.labels, labels);
});

test('a page that reloads mid-run comes back to the model, the running job and its progress, and sees the run finish', { timeout: 120_000 }, async () => {
  const page = createStudioStore(host.api);
  const stopSaving = keepSession(page, host.api);
  await page.getState().openSample();
  page.getState().chooseBackend('xnnpack', 'a8w8');
  page.getState().setRecipe({ calibrationSamples: 0 });
  // Enough samples that the run is still going when the page comes back: seconds, not the sample's half second.
  const lines = path.join(tempDir('qs-session-data-'), 'lines.npy');
  writeNpy(lines, 'float32', [300, 3, 48, 192], randomArray(300 * 3 * 48 * 192, 5));
  page.getState().setData({ kind: 'npy', path: lines, labels: '' });
  await page.getState().startRun();
  await until(page, (x) => (x.stages.calibrate?.done ?? 0) > 0, 'calibration progress');
  // The page saves at most every 300 ms; then the tab goes.
  await new Promise((r) => setTimeout(r, 400));
  stopSaving();

  const reloaded = createStudioStore(host.api);
  assert.equal(await reloaded.getState().restoreSession(), true);
  let s = reloaded.getState();
  assert.equal(s.model!.file, page.getState().model!.file);
  assert.equal(s.status, 'running');
  assert.equal(s.runId, page.getState().runId);
  assert.ok((s.stages.calibrate?.done ?? 0) > 0, 'the progress so far, from the host');
  assert.equal(s.screen, 'run');
  assert.deepEqual(s.recipe, page.getState().recipe);
  s = await until(reloaded, (x) => x.status === 'done' || x.status === 'failed', 'the run on the reloaded page');
  assert.equal(s.status, 'done', s.failure?.message);
  assert.equal(s.current!.runId, page.getState().runId);
  assert.equal(s.history.length, 1);
  assert.equal(s.screen, 'inspect');
});

test('a page that was away while the run ended finds its result; one with no session finds none', { timeout: 120_000 }, async () => {
  const page = createStudioStore(host.api);
  const stopSaving = keepSession(page, host.api);
  await page.getState().openSample();
  page.getState().setRecipe({ calibrationSamples: 8 });
  page.getState().setData({ kind: 'images', path: path.join(SAMPLE_DIR, 'calibration'), labels: '' });
  await page.getState().startRun();
  await until(page, (x) => Boolean(x.runId), 'the run id');
  await new Promise((r) => setTimeout(r, 400));
  stopSaving();
  const finished = await until(page, (x) => x.status === 'done' || x.status === 'failed', 'the run');
  assert.equal(finished.status, 'done', finished.failure?.message);

  const reloaded = createStudioStore(host.api);
  assert.equal(await reloaded.getState().restoreSession(), true);
  const s = reloaded.getState();
  assert.equal(s.status, 'done');
  assert.equal(s.current!.runId, finished.current!.runId);
  assert.deepEqual(s.current!.report.layers.map((l) => l.sqnr), finished.current!.report.layers.map((l) => l.sqnr));
  assert.deepEqual(s.history.map((h) => h.origin), [{ kind: 'run' }]);

  const elsewhere = testHost();
  try {
    assert.equal(await createStudioStore(elsewhere.api).getState().restoreSession(), false, 'a host with no saved page');
  } finally {
    await elsewhere.close();
  }
});
