// The hosts' engine runs in a process of its own: a native ONNX Runtime crash fails the job with
// its signal, leaves no folder and a fresh engine takes the next job; a cancel the engine cannot
// hear (a session being created for many seconds) ends it within a second.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { RemoteStudio } from '../../main/studio/remote';
import { recipeFor } from '../../shared/backends';
import type { JobEvent } from '../../shared/ipc';
import { MAKERS } from '../hostile/files';
import { ROOT } from '../helpers/build';
import { trackedTempDirs } from '../helpers/cli';

const tempDir = trackedTempDirs();

const events: JobEvent[] = [];
let onEvent: (e: JobEvent) => void = () => undefined;
const studio = new RemoteStudio({ stateDir: tempDir('isolation'), sampleDir: path.join(ROOT, 'resources', 'sample'), emit: (e) => { events.push(e); onEvent(e); } });
after(() => studio.close());

/** The run's last event: done, failed or cancelled. */
function ending(runId: () => string | undefined): Promise<JobEvent> {
  return new Promise((resolve) => {
    onEvent = (e) => {
      if (e.runId === runId() && (e.type === 'done' || e.type === 'failed' || e.type === 'cancelled')) resolve(e);
    };
  });
}

test('a native crash fails the run with its signal and no folder; a fresh engine runs the next one', { timeout: 120_000 }, async () => {
  const dir = tempDir('isolation-models');
  const crash = MAKERS['einsum-crash'](dir);
  let runId: string | undefined;
  const end = ending(() => runId);
  ({ runId } = await studio.handle('run:start', { model: crash, recipe: recipeFor('cpu'), calibration: 'random:2' }));
  const failed = await end;
  assert.equal(failed.type, 'failed');
  assert.match((failed as { message: string }).message, new RegExp(`ONNX Runtime crashed while running .*crash\\.onnx \\(signal SIGSEGV\\); the studio started a fresh engine`));
  assert.deepEqual(fs.readdirSync(studio.workRoot).filter((d) => d.startsWith(`${runId}-`)), []);
  assert.equal(studio.engines, 2);

  const next = ending(() => runId);
  ({ runId } = await studio.handle('run:start', { model: MAKERS['tiny-conv'](dir), recipe: recipeFor('cpu'), calibration: 'random:2' }));
  assert.equal((await next).type, 'done');
});

test('Cancel while ONNX Runtime spends seconds creating a session: cancelled within a second, and the next run works', { timeout: 120_000 }, async () => {
  const dir = tempDir('isolation-chain');
  let runId: string | undefined;
  const end = ending(() => runId);
  ({ runId } = await studio.handle('run:start', { model: MAKERS['slow-to-open'](dir), recipe: recipeFor('cpu'), calibration: 'random:2' }));
  // After conversion, evaluation opens the side-by-side model of two 4,000-node fans: the long native call.
  await new Promise<void>((resolve) => {
    const previous = onEvent;
    onEvent = (e) => {
      previous(e);
      if (e.runId === runId && e.type === 'progress' && e.stage === 'convert' && e.done === e.total) resolve();
    };
  });
  await new Promise((r) => setTimeout(r, 500));
  const t0 = performance.now();
  const engines = studio.engines;
  assert.deepEqual(await studio.handle('run:cancel', { runId: runId! }), { cancelled: true });
  const last = await end;
  const seconds = (performance.now() - t0) / 1000;
  assert.equal(last.type, 'cancelled');
  assert.ok(seconds < 1.2, `cancelled after ${seconds.toFixed(2)} s`);
  assert.equal(studio.engines, engines + 1, 'the engine stuck in native code was ended and replaced');
  assert.deepEqual(fs.readdirSync(studio.workRoot).filter((d) => d.startsWith(`${runId}-`)), []);

  const next = ending(() => runId);
  ({ runId } = await studio.handle('run:start', { model: MAKERS['tiny-conv'](dir), recipe: recipeFor('cpu'), calibration: 'random:2' }));
  assert.equal((await next).type, 'done');
});
