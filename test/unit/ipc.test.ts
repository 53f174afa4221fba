// The Electron IPC layer without Electron: the handlers registerHandlers installs refuse messages
// from any sender but the studio window's top frame, and payloads that do not match the contract,
// before the engine is called.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { registerHandlers, type Handlers, type InvokeEvent, type IpcMainLike } from '../../app/ipc-main';
import { recipeFor } from '../../shared/backends';
import { CHANNELS, checkRequest, PayloadError, type Envelope } from '../../shared/ipc';
import { StudioService, type EngineChannel } from '../../main/studio/service';
import { ROOT, tempDir } from '../helpers/build';

const SAMPLE = path.join(ROOT, 'resources', 'sample');
const service = new StudioService({ stateDir: tempDir('qs-ipc-'), sampleDir: SAMPLE, emit: () => undefined });
after(() => service.close());

/** Electron's ipcMain as registerHandlers sees it: a table of channel → listener. */
function ipcTable() {
  const listeners = new Map<string, (event: InvokeEvent, payload: unknown) => Promise<unknown>>();
  const ipc: IpcMainLike = { handle: (channel, listener) => void listeners.set(channel, listener) };
  const engineCalls: string[] = [];
  const engine = (channel: EngineChannel) => (request: never) => {
    engineCalls.push(channel);
    return service.handle(channel, request);
  };
  const handlers = Object.fromEntries(CHANNELS.map((c) => [c, c.startsWith('dialog:') ? () => null : engine(c as EngineChannel)])) as unknown as Handlers;
  const WINDOW = 7;
  registerHandlers(ipc, () => WINDOW, handlers);
  const invoke = (channel: string, payload: unknown, event: Partial<InvokeEvent> = {}) => listeners.get(channel)!(
    { sender: { id: WINDOW }, senderFrame: { url: 'app://studio/index.html', parent: null }, ...event }, payload) as Promise<Envelope<unknown>>;
  return { listeners, invoke, engineCalls };
}

test('every channel of the contract gets a handler', () => {
  const { listeners } = ipcTable();
  assert.deepEqual([...listeners.keys()].sort(), [...CHANNELS].sort());
});

test('the studio window with a well-formed payload reaches the engine', async () => {
  const { invoke, engineCalls } = ipcTable();
  const reply = await invoke('model:open', { path: path.join(SAMPLE, 'cls.onnx') });
  assert.equal(reply.ok, true, JSON.stringify(reply));
  assert.equal((reply as { value: { name: string } }).value.name, 'cls.onnx');
  assert.deepEqual(engineCalls, ['model:open']);
});

test('an unknown sender, a sub-frame or another page is refused before the engine', async () => {
  const { invoke, engineCalls } = ipcTable();
  const payload = { path: path.join(SAMPLE, 'cls.onnx') };
  const cases: Array<[Partial<InvokeEvent>, RegExp]> = [
    [{ sender: { id: 99 } }, /does not come from the studio window/],
    [{ senderFrame: { url: 'app://studio/index.html', parent: {} } }, /sub-frame/],
    [{ senderFrame: { url: 'https://evil.example/', parent: null } }, /shows https:\/\/evil\.example\/, not the studio/],
    [{ senderFrame: { url: 'file:///tmp/page.html', parent: null } }, /not the studio/],
    [{ senderFrame: null }, /sub-frame/],
  ];
  for (const [event, why] of cases) {
    const reply = await invoke('model:open', payload, event);
    assert.equal(reply.ok, false);
    assert.match((reply as { error: string }).error, why);
  }
  assert.deepEqual(engineCalls, []);
});

test('malformed payloads are refused with the channel and the field named', async () => {
  const { invoke, engineCalls } = ipcTable();
  const recipe = recipeFor('xnnpack');
  const cases: Array<[string, unknown, RegExp]> = [
    ['model:open', undefined, /model:open: expected an object payload/],
    ['model:open', { path: 42 }, /"path" must be a non-empty string/],
    ['model:open', { path: '/x.onnx', extra: 1 }, /unexpected field "extra"/],
    ['model:open', { path: 'a\0b' }, /"path" must be a non-empty string/],
    ['run:start', { model: '/x.onnx', recipe: { ...recipe, kind: 'sideways' } }, /"kind" must be one of/],
    ['run:start', { model: '/x.onnx', recipe, preprocess: { std: [0, 1, 1] } }, /run:start: "preprocess": std must be 3 non-zero numbers, got \[0,1,1\]/],
    ['run:start', { model: '/x.onnx', recipe, preprocess: { size: [48.5, 3] } }, /run:start: "preprocess": size must be \[height, width\] in whole pixels, at most 8192, got \[48.5,3\]/],
    ['run:layer', { runId: 'run-1' }, /"tensor" must be a non-empty string/],
    ['model:sample', [], /expected an object payload/],
    ['run:export', { runId: 'run-1', folder: '' }, /"folder" must be a non-empty string/],
    ['run:analyze', {}, /run:analyze: "runId" must be a non-empty string/],
    ['run:analyze', { runId: 'run-1', samples: 1e9 }, /unexpected field "samples"/],
    ['run:start', { model: '/x.onnx', recipe, target: 40 }, /run:start: expected an object payload/],
    ['run:start', { model: '/x.onnx', recipe, target: { kind: 'sqnr', value: 'high' } }, /"target.value" must be a finite number/],
    ['run:start', { model: '/x.onnx', recipe, target: { kind: 'sqnr', value: null } }, /"target.value" must be a finite number/],
    ['run:start', { model: '/x.onnx', recipe, target: { kind: 'latency', value: 3 } }, /"target.kind" must be sqnr or metric/],
    ['run:start', { model: '/x.onnx', recipe, target: { kind: 'metric', metric: 'vibes', value: 0.9 } }, /"target.metric" must be one of top1-agreement/],
    ['run:start', { model: '/x.onnx', recipe, target: { kind: 'metric', metric: 'cosine', value: 1.5 } }, /"target.value" of a built-in metric must be in \(0, 1\]/],
    ['run:start', { model: '/x.onnx', recipe: { ...recipe, algorithms: { cle: 'yes' } } }, /"algorithms.cle" must be true or false/],
    ['run:start', { model: '/x.onnx', recipe: { ...recipe, algorithms: { magic: true } } }, /"algorithms" has unknown field "magic" \(known: cle, biasCorrection, adaround, gptq, smoothquant\)/],
    ['run:start', { model: '/x.onnx', recipe: { ...recipe, algorithms: { adaround: { iterations: 0 } } } }, /"algorithms.adaround" must be \{ "iterations": N \} with N a whole number of at least 1/],
    ['run:start', { model: '/x.onnx', recipe, metricModule: 42 }, /run:start: "metricModule" must be/],
    ['run:start', { model: '/x.onnx', recipe, target: { kind: 'sqnr', metric: 'cosine', value: 40 } }, /"target.metric" belongs to a metric target/],
    ['run:start', { model: '/x.onnx', recipe, skipNonFinite: 'yes' }, /run:start: "skipNonFinite" must be true or false/],
    ['run:start', { model: '/x.onnx', recipe, maxMegapixels: -1 }, /run:start: "maxMegapixels" must be a number of megapixels in \(0, 10000\]/],
    ['data:preview', { model: '/x.onnx', source: '/d', maxMegapixels: Infinity }, /data:preview: "maxMegapixels" must be a number/],
  ];
  for (const [channel, payload, why] of cases) {
    const reply = await invoke(channel, payload);
    assert.equal(reply.ok, false, `${channel} ${JSON.stringify(payload)}`);
    assert.match((reply as { error: string }).error, why);
  }
  assert.deepEqual(engineCalls, []);
});

test('well-formed repair targets and analysis requests pass the contract', () => {
  const recipe = recipeFor('xnnpack');
  checkRequest('run:start', { model: '/x.onnx', recipe, target: { kind: 'sqnr', value: 40 } });
  checkRequest('run:start', { model: '/x.onnx', recipe, target: { kind: 'metric', metric: 'top1-agreement', value: 0.99 } });
  checkRequest('run:analyze', { runId: 'run-1' });
});

test('analysing a run that does not exist is refused in words', async () => {
  await assert.rejects(service.handle('run:analyze', { runId: 'run-404' }), /run run-404 has not finished/);
});

test('checkRequest refuses a channel that is not in the contract', () => {
  assert.throws(() => checkRequest('fs:delete' as never, {}), (err: unknown) => err instanceof PayloadError && /unknown channel "fs:delete"/.test(err.message));
});

test('an engine error comes back as its message, not as a crash', async () => {
  const { invoke } = ipcTable();
  const reply = await invoke('model:open', { path: path.join(SAMPLE, 'no-such-model.onnx') });
  assert.equal(reply.ok, false);
  assert.match((reply as { error: string }).error, /no-such-model\.onnx: no such file/);
});
