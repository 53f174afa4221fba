// The engine service behind both hosts: runs chain from their "done" event, a 16-bit override
// re-converts from the saved ranges, and a failed run names its stage and leaves no folder.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { StudioService } from '../../main/studio/service';
import { recipeFor } from '../../shared/backends';
import type { JobEvent, RunResult } from '../../shared/ipc';
import { ROOT, tempDir } from '../helpers/build';
import { allNodes, graphOverlay } from '../../shared/graph';
import { dbNumber } from '../../shared/report';

const SAMPLE = path.join(ROOT, 'resources', 'sample');
const events: JobEvent[] = [];
let onEvent: (e: JobEvent) => void = () => undefined;
const service = new StudioService({ stateDir: tempDir('qs-service-'), sampleDir: SAMPLE, emit: (e) => { events.push(e); onEvent(e); } });
after(() => service.close());

const calibration = { calibration: path.join(SAMPLE, 'calibration'), preprocess: { mean: [0.5, 0.5, 0.5] as [number, number, number], std: [0.5, 0.5, 0.5] as [number, number, number] } };

test('a re-run started from the done event of the first: the worst tensor at 16 bits, from the saved ranges', { timeout: 120_000 }, async () => {
  const results = await new Promise<RunResult[]>((resolve, reject) => {
    const got: RunResult[] = [];
    onEvent = (e) => {
      if (e.type === 'failed') reject(new Error(e.message));
      if (e.type !== 'done') return;
      got.push(e.result);
      if (got.length === 2) return resolve(got);
      const r = e.result.report;
      const worst = [...r.layers].sort((a, b) => (a.sqnr as number) - (b.sqnr as number))[0];
      try {
        service.start({ model: r.model.file, recipe: { ...r.recipe, overrides: { [worst.name]: { type: 'uint16' } } }, fromRun: e.result.runId });
      } catch (err) {
        reject(err);
      }
    };
    service.start({ model: path.join(SAMPLE, 'cls.onnx'), recipe: { ...recipeFor('cpu'), calibrationSamples: 8 }, ...calibration });
  });
  const [first, second] = results;
  assert.equal(second.fromRun, first.runId);
  const name = Object.keys(second.report.recipe.overrides)[0];
  assert.equal(second.report.layers.find((l) => l.name === name)?.type, 'uint16');
  assert.equal(first.report.layers.find((l) => l.name === name)?.type, 'uint8');
  assert.equal(second.report.samples.calibration, first.report.samples.calibration);
  assert.match(second.report.data.calibration, /^ranges from /);
});

test('a failing run names its stage and the file, and leaves no work folder', async () => {
  const bad = tempDir('qs-service-bad-');
  fs.writeFileSync(path.join(bad, 'a.png'), 'not an image');
  const closing = new Promise<JobEvent>((resolve) => { onEvent = (e) => { if (e.type === 'failed' || e.type === 'done') resolve(e); }; });
  const { runId } = service.start({ model: path.join(SAMPLE, 'cls.onnx'), recipe: recipeFor('xnnpack'), calibration: bad });
  const last = await closing;
  assert.equal(last.type, 'failed');
  assert.equal((last as { stage: string }).stage, 'calibrate', 'reading the calibration data is part of calibrating');
  assert.match((last as { message: string }).message, /a\.png/);
  assert.deepEqual(fs.readdirSync(service.workRoot).filter((d) => d.startsWith(`${runId}-`)), []);
  await assert.rejects(service.export({ runId }), /has not finished/);
  fs.rmSync(bad, { recursive: true, force: true });
});

test('every quantized tensor sits on a node of the graph, and the exported report draws the graph with the report\'s SQNR', { timeout: 120_000 }, async () => {
  const result = await new Promise<RunResult>((resolve, reject) => {
    onEvent = (e) => {
      if (e.type === 'failed') reject(new Error(e.message));
      if (e.type === 'done') resolve(e.result);
    };
    service.start({ model: path.join(SAMPLE, 'cls.onnx'), recipe: { ...recipeFor('xnnpack'), calibrationSamples: 8 }, ...calibration });
  });
  const report = result.report;
  const graph = await service.handle('model:graph', { model: path.join(SAMPLE, 'cls.onnx') });
  assert.equal(graph.nodeCount, 471, 'the model as exported, Constant and BatchNormalization nodes included');
  const overlay = graphOverlay(graph, report);
  const placed = new Set([...overlay.values()].flatMap((o) => (o.layer ? [o.layer.name] : [])));
  assert.deepEqual(report.layers.filter((l) => !placed.has(l.name)).map((l) => l.name), []);
  const folded = allNodes(graph).filter((n) => n.folded);
  assert.equal(folded.filter((n) => n.op === 'Constant').length, 250, 'every Constant becomes an initializer');
  assert.equal(folded.filter((n) => n.op === 'BatchNormalization').length, 35, 'every BatchNormalization follows a Conv and is folded into it');
  assert.equal([...overlay.values()].filter((o) => o.status === 'folded').length, folded.length);

  const folder = tempDir('qs-service-export-');
  const exported = await service.export({ runId: result.runId, folder });
  const html = fs.readFileSync(exported.files.find((f) => f.file.endsWith('.report.html'))!.file, 'utf8');
  assert.equal((html.match(/class="gnode gop/g) ?? []).length, 471, 'the report draws every node');
  const sqnr = new Map(report.layers.map((l) => [l.name, dbNumber(l.sqnr)]));
  const coloured = [...html.matchAll(/data-layer="([^"]+)" data-value="([^"]+)"/g)];
  assert.ok(coloured.length >= report.layers.length - 1, `${coloured.length} nodes coloured by a layer`);
  for (const [, layer, value] of coloured) assert.equal(value, sqnr.get(layer)!.toFixed(2), layer);
  fs.rmSync(folder, { recursive: true, force: true });
});
