// Analysis, repair and run history driven through the store and the test host, over the real
// engine: analyse a run, cancel an analysis, repair to a target, compare runs of the session.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { after, before, test } from 'node:test';
import { renderToStaticMarkup } from 'react-dom/server';
import { createStore } from 'zustand/vanilla';
import { App } from '../../renderer/App';
import { StoreContext } from '../../renderer/context';
import { createStudioStore, type Studio, type StudioStore } from '../../renderer/store';
import { testHost, type TestHost } from './test-host';

let host: TestHost;
let store: StudioStore;
before(async () => {
  host = testHost();
  store = createStudioStore(host.api);
  await store.getState().openSample();
  store.getState().chooseBackend('xnnpack', 'a8w8');
  // Measured on all 24 lines, as the figures below were chosen for; the held-out default is store.test's.
  store.getState().setData({ evaluation: { kind: 'calibration', fraction: 0.25, path: '' } });
});
after(() => host.close());

function until(done: (s: Studio) => boolean, what: string, ms = 90_000): Promise<Studio> {
  return new Promise((resolve, reject) => {
    if (done(store.getState())) return resolve(store.getState());
    const timer = setTimeout(() => { stop(); reject(new Error(`timed out waiting for ${what}; run ${store.getState().status}, analysis ${JSON.stringify(store.getState().analysis)}`)); }, ms);
    const stop = store.subscribe((s) => {
      if (done(s)) { clearTimeout(timer); stop(); resolve(s); }
    });
  });
}

/** The screen as markup, from a snapshot of the live store (see screens.test.tsx). */
function render(): string {
  const snapshot = createStore<Studio>()(() => store.getState());
  return renderToStaticMarkup(<StoreContext.Provider value={snapshot}><App api={host.api} /></StoreContext.Provider>);
}

const value = (v: number | 'inf' | undefined) => (v === 'inf' ? Infinity : v ?? NaN);

test('analyze a run, repair it to a target, and compare the two in the history', { timeout: 240_000 }, async () => {
  await store.getState().startRun();
  let s = await until((x) => x.status === 'done' || x.status === 'failed', 'the first run');
  assert.equal(s.status, 'done', s.failure?.message);
  const first = s.current!;
  assert.equal(s.history.length, 1);
  assert.equal(s.history[0].origin.kind, 'run');
  assert.ok(s.repairDraft.sqnr > value(first.report.outputs[0].sqnr), `the default target ${s.repairDraft.sqnr} dB asks for more than the run has`);

  const workBefore = fs.readdirSync(host.service.workRoot).sort();
  await store.getState().analyze();
  assert.equal(store.getState().analysis.status, 'running');
  s = await until((x) => x.analyses[first.runId] !== undefined || x.analysis.status === 'failed', 'the analysis');
  assert.equal(s.analysis.status, 'idle', s.analysis.error);
  const analysis = s.analyses[first.runId];
  assert.deepEqual(fs.readdirSync(host.service.workRoot).sort(), workBefore, 'an analysis writes no files');
  assert.equal(analysis.layers.length, first.report.layers.length, 'one analysed row per bar');
  const locals = analysis.layers.filter((l) => typeof l.localSqnr === 'number');
  assert.ok(locals.length > 100, 'local SQNR is measured for the quantized tensors');
  // Local SQNR leaves out the error of earlier layers, so deep in the graph it is above the cumulative one.
  const deeper = locals.filter((l) => value(l.localSqnr) > value(l.sqnr) + 3).length;
  assert.ok(deeper > locals.length / 2, `${deeper} of ${locals.length} layers have local SQNR 3 dB above cumulative`);
  assert.ok(analysis.sensitivity.length > 0);
  assert.deepEqual(analysis.sensitivity.map((r) => r.rank), analysis.sensitivity.map((_, i) => i + 1));
  const measured = analysis.sensitivity.filter((r) => r.onlyFloat !== undefined);
  assert.ok(measured.length >= 16, 'the top candidates are each measured alone in float');
  assert.ok(value(measured[0].onlyFloat) >= value(measured[measured.length - 1].onlyFloat), 'ranked: the layer whose float helps most first');
  assert.equal(analysis.worstLocal.length, 5);
  assert.equal(analysis.worstLocal[0], [...locals].sort((a, b) => value(a.localSqnr) - value(b.localSqnr))[0].name);
  let html = render();
  assert.match(html, /data-testid="ranking"/);
  assert.equal((html.match(/<tr[^>]*><td class="num">\d+<\/td><td><button type="button" class="link">/g) ?? []).length, Math.min(10, analysis.sensitivity.length), 'ten ranking rows, each opening its layer');
  assert.match(html, new RegExp(`Worst local SQNR[^<]*: <span><button type="button" class="link">${analysis.worstLocal[0].replace(/\./g, '\\.')}</button>`));
  assert.match(html, /Analyze again/);
  assert.ok(analysis.warnings.some((w) => /measured on the calibration data/.test(w)), 'the sample has no held-out set: the analysis says so');
  assert.match(html, /<ul class="warnings" aria-label="Analysis warnings">(<li>[^<]*<\/li>)*<li>[^<]*measured on the calibration data/);

  // Repair to a target above the run: on the sample, re-choosing the calibration method gets there.
  store.getState().setRepairDraft({ kind: 'sqnr', sqnr: 65 });
  await store.getState().repair();
  s = store.getState();
  assert.deepEqual(s.runStages, ['load', 'calibrate', 'sensitivity', 'convert', 'evaluate', 'latency', 'save'], 'the repair search has its own bar from the start');
  s = await until((x) => (x.status === 'done' && x.current?.runId !== first.runId) || x.status === 'failed', 'the repair run');
  assert.equal(s.status, 'done', s.failure?.message);
  const repaired = s.current!;
  const repair = repaired.report.repair!;
  assert.deepEqual(repair.target, { kind: 'sqnr', value: 65 });
  assert.ok(repair.changes.length > 0, 'the repair lists what it changed');
  assert.equal(repair.met, value(repair.after.outputSqnr) >= 65);
  assert.ok(value(repair.after.outputSqnr) > value(repair.before.outputSqnr), `after ${repair.after.outputSqnr} dB, before ${repair.before.outputSqnr} dB`);
  assert.equal(s.previous?.runId, first.runId, 'the repaired run is drawn over the one it repairs');
  // One number per concept: on the sample's 24 samples, the analysis baseline and the repair's
  // before are the first run's header figure, and its after is the repaired run's, all in reference numerics.
  const header = (r: typeof first) => value(r.report.outputs[0].sqnr);
  for (const q of [analysis.baseline, repair.before, repair.after]) assert.equal(q.numerics, 'reference');
  assert.equal(analysis.baseline.samples, first.report.samples.evaluation);
  assert.equal(repair.before.samples, first.report.samples.evaluation);
  assert.ok(Math.abs(value(analysis.baseline.outputSqnr) - header(first)) < 0.01, `analysis baseline ${analysis.baseline.outputSqnr} dB, header ${header(first)} dB`);
  assert.ok(Math.abs(value(repair.before.outputSqnr) - header(first)) < 0.01, `repair before ${repair.before.outputSqnr} dB, header ${header(first)} dB`);
  assert.ok(Math.abs(value(repair.after.outputSqnr) - header(repaired)) < 0.01, `repair after ${repair.after.outputSqnr} dB, header ${header(repaired)} dB`);
  assert.deepEqual(s.history.map((h) => h.result.runId), [first.runId, repaired.runId]);
  assert.deepEqual(s.history[1].origin, { kind: 'repair', of: first.runId, target: { kind: 'sqnr', value: 65 } });
  assert.equal(s.history[1].request.calibration, s.history[0].request.calibration, 'the repair runs on the samples of the run it repairs');
  assert.equal(s.analyses[repaired.runId], undefined, 'an analysis belongs to the run it analysed');
  html = render();
  assert.match(html, /Repair \(output SQNR ≥ 65 dB\): <span class="(ok|error)">(met|not met)<\/span>/);
  assert.equal((html.match(/data-testid="repair-changes"/g) ?? []).length, 1);
  assert.match(html, new RegExp(`<tr data-run="${first.runId}"[^>]*><td>${first.runId}</td><td>xnnpack int8/int8 minmax</td>`));
  assert.match(html, new RegExp(`<tr data-run="${repaired.runId}" class="selected"><td>${repaired.runId}</td><td>[^<]*repair of ${first.runId} to 65 dB</td>`));
  assert.doesNotMatch(html, /data-testid="ranking"/, 'the repaired run has no analysis of its own yet');

  // Show the first run again with the repair outlined; then no outline.
  store.getState().showRun(first.runId);
  s = store.getState();
  assert.equal(s.current?.runId, first.runId);
  assert.equal(s.previous?.runId, repaired.runId, 'showing the outlined run swaps the two');
  store.getState().outlineRun(undefined);
  assert.equal(store.getState().previous, undefined);
  store.getState().outlineRun(first.runId);
  assert.equal(store.getState().previous, undefined, 'a run is not outlined under itself');
  store.getState().outlineRun(repaired.runId);
  assert.equal(store.getState().previous?.runId, repaired.runId);
});

test('a task-metric target the run already meets returns at once and changes nothing', { timeout: 120_000 }, async () => {
  const shown = store.getState().current!;
  assert.equal(shown.report.metrics?.['top1-agreement'], 1, 'the sample\'s int8 model agrees with float on every line');
  store.getState().setRepairDraft({ kind: 'metric', metric: 'top1-agreement', metricValue: 0.99 });
  await store.getState().repair();
  const s = await until((x) => (x.status === 'done' && x.current?.runId !== shown.runId) || x.status === 'failed', 'the metric repair');
  assert.equal(s.status, 'done', s.failure?.message);
  const repair = s.current!.report.repair!;
  assert.deepEqual(repair.target, { kind: 'metric', metric: 'top1-agreement', value: 0.99 });
  assert.equal(repair.met, true);
  assert.deepEqual(repair.changes, []);
  assert.equal(s.stages.sensitivity?.skipped, true, 'no search ran, and its bar says so');
  assert.equal(s.history.length, 3);
  assert.match(render(), /repair of run-\d+ to top1-agreement 0\.99/);
});

test('cancelling an analysis stops it and leaves the run as it was', { timeout: 120_000 }, async () => {
  const shown = store.getState().current!;
  const known = store.getState().analyses[shown.runId];
  await store.getState().analyze();
  await until((x) => x.analysis.jobId !== undefined && x.analysis.done > 0, 'analysis progress');
  await store.getState().cancelAnalysis();
  const s = await until((x) => x.analysis.status === 'cancelled' || x.analysis.status === 'failed', 'the cancel');
  assert.equal(s.analysis.status, 'cancelled', s.analysis.error);
  assert.equal(s.analyses[shown.runId], known, 'a cancelled analysis replaces nothing');
  assert.equal(s.current, shown);
  // The service is free again: the next job starts.
  await store.getState().analyze();
  assert.equal(store.getState().analysis.status, 'running');
  await store.getState().cancelAnalysis();
  await until((x) => x.analysis.status !== 'running' && x.analysis.status !== 'cancelling', 'the second cancel');
});

test('a run is refused while an analysis runs, with the reason', { timeout: 60_000 }, async () => {
  await store.getState().analyze();
  await until((x) => x.analysis.jobId !== undefined, 'the analysis to start');
  await assert.rejects(host.api.call('run:start', { model: store.getState().model!.file, recipe: store.getState().recipe, calibration: 'random:2' }), /an analysis is in progress/);
  await store.getState().cancelAnalysis();
  await until((x) => x.analysis.status === 'cancelled', 'the cancel');
});
