// The studio end to end, as a person uses it: Debian's Chromium driven by playwright-core against
// `quant-studio serve`'s server. Screenshots of every screen go to test-results/e2e/.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { chromium, type Browser, type Page } from 'playwright-core';
import { spawn, type ChildProcess } from 'node:child_process';
import { deltaText, formatDb, type Report } from '../../shared/report';
import { loadModel, saveModel } from '../../main/onnx/model';
import { sqnrColour } from '../../shared/colours';
import { buildModel, controlFlowModel, randomArray, ROOT, tempDir, type NodeSpec } from '../helpers/build';
import { readZip } from '../helpers/zip';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = path.join(ROOT, 'test-results', 'e2e');
const SAMPLE_DIR = path.join(ROOT, 'resources', 'sample');
const skip = fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium) to run the studio's end-to-end tests`;

let server: { url: string; process: ChildProcess; tmp: string };
let browser: Browser;
let page: Page;
const temps: string[] = [];
const consoleErrors: string[] = [];

function listing(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true }).map(String).sort();
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** The page loaded afresh and, once it has come back to the host's session, on the Import screen. */
async function home(): Promise<void> {
  await page.goto(server.url);
  await page.locator('html[data-session="ready"]').waitFor({ state: 'attached' });
  await page.getByRole('button', { name: '1. Import' }).click();
  await page.getByRole('heading', { name: 'Open a model' }).waitFor();
}

async function openSample(): Promise<void> {
  await home();
  await page.getByRole('button', { name: 'Try the sample model' }).click();
  await page.getByRole('heading', { name: 'cls.onnx' }).waitFor();
}

/** Configure, from the defaults: the sample comes back with the settings of an earlier test's run. */
async function configureXnnpack(): Promise<void> {
  await page.getByRole('button', { name: '3. Configure' }).click();
  if (await page.getByTestId('reset-config').count()) await page.getByTestId('reset-config').click();
  await page.locator('[data-backend="xnnpack"] input[type="radio"]').check();
  await page.locator('[data-preset="xnnpack:a8w8"]').click();
}

/** The run folders the server's engine keeps in its temporary folder (TMPDIR is ours). */
function runFolders(): string[] {
  return fs.readdirSync(server.tmp).filter((d) => d.startsWith('quant-studio-'))
    .flatMap((d) => fs.readdirSync(path.join(server.tmp, d), { withFileTypes: true }).filter((r) => r.isDirectory()).map((r) => path.join(server.tmp, d, r.name)));
}

function runReport(runId: string): Report {
  const folder = runFolders().find((f) => path.basename(f).startsWith(`${runId}-`));
  assert.ok(folder, `run ${runId} has a work folder`);
  const file = fs.readdirSync(folder).find((f) => f.endsWith('.report.json'));
  assert.ok(file, `run ${runId} wrote a report`);
  return JSON.parse(fs.readFileSync(path.join(folder, file), 'utf8')) as Report;
}

/** `quant-studio serve` in its own process, as a user starts it; resolves with the URL it prints. */
async function serve(): Promise<typeof server> {
  const tmp = tempDir('qs-e2e-tmp-');
  const home = tempDir('qs-e2e-home-');
  temps.push(tmp, home);
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'quant-studio.js'), 'serve'], {
    env: { ...process.env, TMPDIR: tmp, XDG_CONFIG_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /running at (http:\/\/127\.0\.0\.1:\d+\/\S+\/)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`quant-studio serve exited with ${code}: ${stderr}`)));
  });
  return { url, process: child, tmp };
}

/** RFC 4180 CSV, as the layer table writes it: quoted fields may hold commas, doubled quotes and line breaks. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') field += text[i++];
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(field); field = ''; }
    else if (c === '\n') { row.push(field.replace(/\r$/, '')); rows.push(row); row = []; field = ''; }
    else field += c;
  }
  return rows;
}

/** Nodes of the sample as exported, Constants and BatchNormalizations included. */
const SAMPLE_NODES = loadModel(path.join(SAMPLE_DIR, 'cls.onnx')).model.graph!.node.length;

/** The centre of an element against the centre of the graph's frame, in pixels. */
async function offCentre(selector: string): Promise<number> {
  const node = (await page.locator(selector).first().boundingBox())!;
  const frame = (await page.locator('.graph-svg').boundingBox())!;
  return Math.hypot(node.x + node.width / 2 - (frame.x + frame.width / 2), node.y + node.height / 2 - (frame.y + frame.height / 2));
}

/**
 * Frame times while the graph is zoomed (by the wheel) or panned (by the arrow keys) once per
 * animation frame: the interval between frames is what the user sees, paint included.
 */
async function frameTimes(how: 'zoom' | 'pan', frames: number): Promise<number[]> {
  // A string: the test compiles without the DOM's types.
  return page.evaluate(`(async () => {
    const svg = document.querySelector('.graph-svg');
    const box = svg.getBoundingClientRect();
    const times = [];
    let last = performance.now();
    for (let i = 0; i < ${frames}; i++) {
      if (${JSON.stringify(how)} === 'zoom') svg.dispatchEvent(new WheelEvent('wheel', { deltaY: i % 2 ? 150 : -150, clientX: box.x + box.width / 2, clientY: box.y + box.height / 2, bubbles: true, cancelable: true }));
      else svg.dispatchEvent(new KeyboardEvent('keydown', { key: i % 2 ? 'ArrowUp' : 'ArrowDown', bubbles: true }));
      await new Promise((resolve) => requestAnimationFrame(resolve));
      const now = performance.now();
      times.push(now - last);
      last = now;
    }
    return times;
  })()`);
}

/** Polls until `check` holds: the app's CSP refuses page.waitForFunction's evaluated code. */
async function until(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  for (const end = Date.now() + ms; !(await check());) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const MNIST = path.join(ROOT, 'test', 'fixtures', 'mnist-cnn');
const CHAR_LM = path.join(ROOT, 'test', 'fixtures', 'char-lm');

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const worstOf = (r: Report) => [...r.layers].sort((a, b) => (a.sqnr === 'inf' ? Infinity : a.sqnr) - (b.sqnr === 'inf' ? Infinity : b.sqnr))[0];

describe('the studio in Chromium', { skip }, () => {
  before(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    server = await serve();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--headless'] });
    page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
  });

  after(async () => {
    await browser?.close();
    if (server) {
      const exited = new Promise((resolve) => server.process.once('exit', resolve));
      server.process.kill('SIGINT');
      await exited;
      assert.deepEqual(runFolders(), [], 'the server removes its run folders when it stops');
    }
    for (const d of temps) fs.rmSync(d, { recursive: true, force: true });
  });

  test('sample model → xnnpack a8w8 → calibrate → worst layer kept in float → re-run → export', { timeout: 120_000 }, async (t) => {
    const sampleBefore = listing(SAMPLE_DIR);
    await home();
    await shot('1-import');
    await page.getByRole('button', { name: 'Try the sample model' }).click();
    await page.getByRole('heading', { name: 'cls.onnx' }).waitFor();
    await page.getByTestId('preflight').locator('.placements').waitFor();
    await shot('2-model');

    await configureXnnpack();
    assert.equal(await page.locator('#data-path').inputValue(), path.join(SAMPLE_DIR, 'calibration'));
    await page.getByRole('button', { name: 'Preview one input' }).click();
    await page.locator('.preview-body img').waitFor();
    await shot('3-configure');

    await page.getByTestId('run').click();
    await page.locator('[data-stage="calibrate"]').waitFor();
    await page.locator('section.inspect').waitFor({ timeout: 60_000 });
    const firstRun = (await page.locator('section.inspect').getAttribute('data-run'))!;
    // The finished run's screen has the focus at its heading, not the page's body.
    assert.equal(await page.evaluate('document.activeElement.textContent'), 'Per-layer SQNR');
    const first = runReport(firstRun);
    assert.equal(first.backend, 'xnnpack');
    assert.equal(first.recipe.activationType, 'int8');
    assert.equal(await page.locator('rect.bar').count(), first.layers.length, 'one bar per quantized tensor');
    const outputBefore = await page.getByTestId('output-sqnr').textContent();
    assert.equal(outputBefore, first.outputs.map((o) => `${o.sqnr === 'inf' ? 'inf' : o.sqnr.toFixed(2)} dB`).join(', '));

    // Worst first: the first bar is the worst layer; clicking it opens the layer panel with its values.
    await page.getByRole('radio', { name: 'worst first' }).check();
    const worst = worstOf(first);
    const firstBar = page.locator('rect.bar').first();
    assert.equal(await firstBar.getAttribute('data-layer'), worst.name);
    await firstBar.click();
    const panel = page.getByTestId('layer-panel');
    await panel.getByRole('heading', { name: worst.name }).waitFor();
    await panel.locator('.histogram .recharts-bar-rectangle').first().waitFor();
    assert.match((await page.getByTestId('layer-sqnr').textContent())!, new RegExp(`^${(worst.sqnr as number).toFixed(2)} dB`));
    // Log counts: the tails show, and the count labels stay a few characters wide (never cut to "000000").
    await panel.getByTestId('hist-log').check();
    await panel.locator('.histogram[data-scale="log"] .recharts-bar-rectangle').first().waitFor();
    await panel.screenshot({ path: path.join(SHOTS, '5e-panel-log-counts.png') });
    const ticks = await panel.locator('.histogram text.recharts-cartesian-axis-tick-value[orientation="left"]').allTextContents();
    assert.ok(ticks.length > 1 && ticks.every((t) => t.length <= 4), `count labels ${ticks.join(', ')}`);
    await panel.getByTestId('hist-log').uncheck();
    await page.mouse.move(0, 0);
    await shot('5-inspect'); // docs/inspect.png, in the README, is a copy of this one

    // The layer table: every quantized tensor, worst first, the clicked bar's row selected; the
    // arrow keys move the selection (and the panel), a column header re-sorts, the op filter
    // narrows, and the CSV holds the report's layers.
    const table = page.getByTestId('layer-table');
    const rows = table.locator('tbody tr');
    assert.equal(await rows.count(), first.layers.length, 'one row per quantized tensor');
    assert.equal(await rows.first().getAttribute('data-layer'), worst.name);
    assert.equal(await table.locator('tbody tr.selected').getAttribute('data-layer'), worst.name, 'the bar clicked selects its row');
    await table.locator('.table-scroll').focus();
    await page.keyboard.press('ArrowDown');
    const next = (await rows.nth(1).getAttribute('data-layer'))!;
    await panel.getByRole('heading', { name: next, exact: true }).waitFor();
    assert.equal(await page.locator('rect.bar.selected').getAttribute('data-layer'), next, 'the chart follows the table');
    const [download] = await Promise.all([page.waitForEvent('download'), table.getByTestId('layer-csv').click()]);
    assert.equal(download.suggestedFilename(), `cls.${firstRun}.layers.csv`);
    const csv = parseCsv(fs.readFileSync((await download.path())!, 'utf8'));
    const column = (name: string) => csv[0].indexOf(name);
    const byName = new Map(first.layers.map((l) => [l.name, l]));
    assert.equal(csv.length - 1, first.layers.length);
    for (const line of csv.slice(1)) {
      const l = byName.get(line[column('tensor')])!;
      assert.ok(l, `${line[column('tensor')]} is a layer of the report`);
      assert.deepEqual([line[column('op')], line[column('sqnr_db')], line[column('weight_sqnr_db')], Number(line[column('scale')]), Number(line[column('range_min')]), Number(line[column('range_max')])],
        [l.op, String(l.sqnr), l.weightSqnr === undefined ? '' : String(l.weightSqnr), l.scale, l.range[0], l.range[1]]);
    }
    await table.getByRole('button', { name: 'tensor' }).click();
    assert.equal(await table.locator('th[aria-sort="ascending"]').textContent(), 'tensor ▲');
    assert.equal(await rows.first().getAttribute('data-layer'), [...first.layers].map((l) => l.name).sort((a, b) => a.localeCompare(b))[0]);
    await table.getByTestId('layer-op-filter').selectOption('Conv');
    assert.equal(await rows.count(), first.layers.filter((l) => l.op === 'Conv').length);
    await table.getByTestId('layer-op-filter').selectOption('');
    await table.getByRole('button', { name: 'SQNR dB' }).click();
    await rows.first().click();
    await panel.getByRole('heading', { name: worst.name, exact: true }).waitFor();

    // Zoom: twice in, around the selected bar, to 37 bars, each named under the axis; panned to the
    // end; a row selected in the table brings its bar back into the window; Fit shows every bar.
    await page.getByTestId('zoom-in').click();
    await page.getByTestId('zoom-in').click();
    const size = Math.round(Math.round(first.layers.length / 2) / 2);
    await page.getByTestId('zoom-window').filter({ hasText: `bars 1–${size} of ${first.layers.length}` }).waitFor();
    assert.equal(await page.locator('rect.bar').count(), size);
    assert.equal(await page.locator('.layer-chart text.recharts-cartesian-axis-tick-value[orientation="bottom"]').count(), size, 'every bar named');
    assert.equal(await page.locator('rect.bar').first().getAttribute('data-layer'), worst.name);
    await page.mouse.move(0, 0);
    await shot('5f-inspect-zoomed');
    await page.getByTestId('zoom-pan').fill(String(first.layers.length - size));
    await page.getByTestId('zoom-window').filter({ hasText: `bars ${first.layers.length - size + 1}–${first.layers.length} of` }).waitFor();
    assert.equal(await page.locator(`rect.bar[data-layer="${worst.name}"]`).count(), 0);
    await rows.nth(1).click();
    await rows.first().click();
    await page.locator(`rect.bar.selected[data-layer="${worst.name}"]`).waitFor();
    await page.getByTestId('zoom-fit').click();
    assert.equal(await page.locator('rect.bar').count(), first.layers.length);

    // The threshold line moves with the keyboard and by dragging; the count below it follows.
    const slider = page.getByRole('slider', { name: 'SQNR threshold' });
    const value = async () => Number(await slider.getAttribute('aria-valuenow'));
    await slider.focus();
    const start = await value();
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('ArrowUp');
    assert.equal(await value(), start + 1);
    const box = (await slider.boundingBox())!;
    await page.mouse.move(box.x + 200, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + 200, box.y + box.height / 2 + 60, { steps: 4 });
    await page.mouse.up();
    const dragged = await value();
    assert.ok(dragged < start, `dragging down lowers the threshold (${start} → ${dragged})`);
    const below = first.layers.filter((l) => l.sqnr !== 'inf' && l.sqnr < dragged).length;
    assert.match((await page.getByTestId('below').textContent())!, new RegExp(`^${below} of ${first.layers.length} below`));

    // Keep it in float: re-converted and re-evaluated from the saved ranges, drawn over the old run.
    await panel.getByTestId('keep-float').click();
    await page.locator(`section.inspect:not([data-run="${firstRun}"])`).waitFor({ timeout: 60_000 });
    const secondRun = (await page.locator('section.inspect').getAttribute('data-run'))!;
    const second = runReport(secondRun);
    t.diagnostic(`first run ${first.timings.total} ms (calibrate ${first.timings.calibrate} ms); re-run from saved ranges ${second.timings.total} ms; output SQNR ${outputBefore} → ${await page.getByTestId('output-sqnr').textContent()}`);
    assert.equal(second.samples.calibration, first.samples.calibration, 're-run from the saved ranges');
    assert.equal(second.timings.calibrate < first.timings.calibrate, true, 'no calibration on the re-run');
    const kept = second.layers.find((l) => l.name === worst.name);
    assert.equal(kept?.sqnr, 'inf');
    await page.getByTestId('layer-sqnr').filter({ hasText: 'inf dB' }).waitFor();
    assert.equal(await page.locator(`rect.bar[data-layer="${worst.name}"]`).getAttribute('data-sqnr'), 'inf');
    assert.equal(await page.locator('rect.bar-previous').count(), first.layers.length, 'the previous run is outlined under the new one');
    assert.ok(second.recipe.excludeNodes.includes(worst.node), 'the node that makes the layer runs in float, weights included');
    const outputAfter = await page.getByTestId('output-sqnr').textContent();
    assert.equal(outputAfter, second.outputs.map((o) => `${o.sqnr === 'inf' ? 'inf' : o.sqnr.toFixed(2)} dB`).join(', '));
    // Against the outlined first run: the header's difference, what changed, the row's Δ and the dashed inf bar.
    const agreement = (r: Report) => r.metrics!['top1-agreement'];
    const sqnrDelta = `${deltaText((second.outputs[0].sqnr as number) - (first.outputs[0].sqnr as number))} dB`;
    assert.equal(await page.getByTestId('output-delta').textContent(), sqnrDelta);
    assert.equal(await page.getByTestId('run-delta').textContent(), `Against ${firstRun}: output SQNR ${sqnrDelta}, top1-agreement ${deltaText(agreement(second) - agreement(first), 3)}.`);
    assert.equal(await page.getByTestId('run-changes').textContent(), `Changed: nodes kept in float: + ${worst.node}; ${worst.name}: as the recipe → float`);
    assert.equal(await table.locator(`tr[data-layer="${worst.name}"] td`).last().textContent(), '+inf');
    assert.match((await page.locator(`rect.bar[data-layer="${worst.name}"]`).getAttribute('class'))!, /\binf\b/);

    await page.mouse.move(0, 0);
    await shot('5b-inspect-rerun');
    // The two window sizes the studio is looked at in: the header, the toolbars and the table's columns fit both.
    for (const [width, height] of [[1280, 800], [1920, 1080]]) {
      await page.setViewportSize({ width, height });
      assert.ok(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth'), `nothing wider than the window at ${width} px`);
      await shot(`5g-inspect-${width}x${height}`);
    }
    await page.setViewportSize({ width: 1360, height: 900 });
    await page.getByRole('button', { name: 'Switch to dark mode' }).click();
    await shot('5c-inspect-dark');
    await page.getByRole('button', { name: 'Switch to light mode' }).click();
    await page.getByRole('button', { name: '4. Run' }).click();
    await shot('4-run');

    // Export into a chosen folder; the files load in ONNX Runtime and the sample folder is untouched.
    const out = tempDir('qs-e2e-export-');
    temps.push(out);
    await page.getByRole('button', { name: '6. Export' }).click();
    await page.locator('#export-folder').fill(out);
    await page.getByTestId('export').click();
    await page.getByTestId('exported').waitFor();
    await shot('6-export');
    const files = fs.readdirSync(out).sort();
    for (const f of ['cls.xnnpack-static.onnx', 'cls.xnnpack-static.ranges.json', 'cls.xnnpack-static.recipe.json', 'cls.xnnpack-static.report.html', 'cls.xnnpack-static.report.json']) {
      assert.ok(files.includes(f), `exported ${f}`);
    }
    const session = await ort.InferenceSession.create(path.join(out, 'cls.xnnpack-static.onnx'));
    const x = new ort.Tensor('float32', new Float32Array(3 * 48 * 192).fill(0.1), [1, 3, 48, 192]);
    const result = await session.run({ [session.inputNames[0]]: x });
    const probabilities = result[session.outputNames[0]].data as Float32Array;
    assert.equal(probabilities.length, 2);
    await session.release();
    const exportedReport = JSON.parse(fs.readFileSync(path.join(out, 'cls.xnnpack-static.report.json'), 'utf8')) as Report;
    assert.deepEqual(files, [...exportedReport.artifacts.map((a) => path.basename(a.file)), 'cls.xnnpack-static.report.html', 'cls.xnnpack-static.report.json'].sort(),
      'every artifact of the run, and nothing else');
    for (const a of exportedReport.artifacts) assert.equal(path.dirname(a.file), out);
    assert.equal(exportedReport.layers.find((l) => l.name === worst.name)?.sqnr, 'inf');
    assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'cls.xnnpack-static.recipe.json'), 'utf8')).overrides[worst.name].float, true);
    const html = fs.readFileSync(path.join(out, 'cls.xnnpack-static.report.html'), 'utf8');
    assert.match(html, /<svg/);
    assert.doesNotMatch(html, /<script|src="http/);
    assert.match((await page.getByTestId('ratio').textContent())!, new RegExp(`${(exportedReport.sizes.ratio * 100).toFixed(1)}%`));
    const reportPage = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    await reportPage.goto(`file://${path.join(out, 'cls.xnnpack-static.report.html')}`);
    assert.equal(await reportPage.locator('svg[aria-label="Per-layer SQNR in graph order"] rect').count(), exportedReport.layers.length, 'the HTML report draws one bar per layer');
    assert.equal(await reportPage.locator('svg.graph-svg g.gop').count(), SAMPLE_NODES, 'and the graph, every node');
    assert.equal(await reportPage.locator(`svg.graph-svg [data-layer="${worst.name}"] .gtag`).first().textContent(), 'float', 'the layer kept in float is marked so');
    await reportPage.screenshot({ path: path.join(SHOTS, '7-html-report.png'), fullPage: true });
    await reportPage.locator('.graph').screenshot({ path: path.join(SHOTS, '7b-html-report-graph.png') });
    await reportPage.close();
    assert.deepEqual(listing(SAMPLE_DIR), sampleBefore, 'nothing written next to the sample model');
    assert.deepEqual(consoleErrors, []);
  });

  test('the graph: every node drawn, SQNR colours as the report, search and the table centre a node, a click opens its panel, the pre-flight overlay', { timeout: 120_000 }, async () => {
    await openSample();
    await configureXnnpack();
    await page.getByTestId('run').click();
    await page.locator('section.inspect').waitFor({ timeout: 60_000 });
    const report = runReport((await page.locator('section.inspect').getAttribute('data-run'))!);
    await page.getByTestId('show-chart').check();
    // The threshold is the page's, kept across runs and reloads; an earlier test moved it.
    const threshold = Number(await page.getByRole('slider', { name: 'SQNR threshold' }).getAttribute('aria-valuenow'));
    await page.getByTestId('show-graph').check();
    await page.locator('.graph-svg .gnode').first().waitFor({ state: 'attached', timeout: 30_000 });
    assert.equal(await page.locator('.graph-svg .gnode.gop').count(), SAMPLE_NODES, 'one box per node of the model');
    assert.equal(await page.locator('.graph-svg').getAttribute('data-nodes'), String(SAMPLE_NODES));

    // Three named tensors: the worst, the best finite and the median; each node that makes one
    // shows the report's SQNR in the band's colour.
    const finite = report.layers.filter((l) => l.sqnr !== 'inf').sort((a, b) => (a.sqnr as number) - (b.sqnr as number));
    const named = [finite[0], finite[finite.length - 1], finite[Math.floor(finite.length / 2)]];
    for (const l of named) {
      const node = page.locator(`.graph-svg [data-layer="${l.name}"]`).first();
      assert.equal(await node.getAttribute('data-value'), (l.sqnr as number).toFixed(2), l.name);
      assert.equal(await node.getAttribute('data-fill'), sqnrColour(l.sqnr as number, threshold), l.name);
    }

    // Search finds a tensor by name, opens its layer and centres its node.
    const sought = named[2];
    await page.getByTestId('graph-search').fill(sought.name);
    await page.getByRole('button', { name: 'Find', exact: true }).click();
    const panel = page.getByTestId('layer-panel');
    await panel.getByRole('heading', { name: sought.name, exact: true }).waitFor();
    assert.ok(await offCentre(`.graph-svg .gselected`) < 60, 'the found node is in the middle of the frame');
    await page.mouse.move(0, 0);
    await shot('5h-graph-found');

    // A row of the layer table centres its node; a click on a node opens its panel.
    const table = page.getByTestId('layer-table');
    await table.locator(`tbody tr[data-layer="${named[0].name}"]`).click();
    await panel.getByRole('heading', { name: named[0].name, exact: true }).waitFor();
    await page.locator(`.graph-svg .gselected[data-layer="${named[0].name}"]`).first().waitFor({ state: 'attached' });
    assert.ok(await offCentre(`.graph-svg [data-layer="${named[0].name}"]`) < 60, 'the row\'s node is in the middle of the frame');
    await panel.getByRole('button', { name: 'Close the layer panel' }).click();
    await page.locator('.layer-panel.empty').waitFor();
    await page.locator(`.graph-svg [data-layer="${named[0].name}"]`).first().click();
    await panel.getByRole('heading', { name: named[0].name, exact: true }).waitFor();

    // The pre-flight overlay: each node coloured where the backend would run it.
    await page.getByRole('radio', { name: 'pre-flight placement' }).check();
    const cpu = report.preflight.nodes.find((n) => n.placement === 'cpu')!;
    assert.equal(await page.locator(`.graph-svg [data-node="${cpu.node}"]`).getAttribute('data-value'), 'cpu', `${cpu.op} ${cpu.node} falls back to the CPU`);
    await page.getByRole('radio', { name: 'SQNR (cumulative)' }).check();
    // The two window sizes, centred on the worst layer with its panel open (docs/graph.png is the first).
    await table.locator(`tbody tr[data-layer="${named[0].name}"]`).click();
    for (const [width, height] of [[1280, 800], [1920, 1080]]) {
      await page.setViewportSize({ width, height });
      assert.ok(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth'), `nothing wider than the window at ${width} px`);
      await page.mouse.move(0, 0);
      await shot(`5i-graph-${width}x${height}`);
    }
    await page.setViewportSize({ width: 1360, height: 900 });
    await page.getByTestId('show-chart').check();
    assert.deepEqual(consoleErrors, []);
  });

  test('analyze → local SQNR ticks and the ranking → repair to a target → history of both runs, overlaid', { timeout: 150_000 }, async (t) => {
    const sampleBefore = listing(SAMPLE_DIR);
    await openSample();
    await configureXnnpack();
    // On the 6 held-out lines the run is at 81 dB, past any target worth repairing to; on all 24 it is not.
    await page.getByTestId('eval-calibration').check();
    await page.getByTestId('run').click();
    await page.locator('section.inspect').waitFor({ timeout: 60_000 });
    const firstRun = (await page.locator('section.inspect').getAttribute('data-run'))!;
    const first = runReport(firstRun);
    const bars = first.layers.length;
    await page.getByTestId('show-chart').check();
    assert.equal(await page.locator('line.bar-local').count(), 0, 'no local ticks before an analysis');
    assert.equal(await page.getByTestId('show-local').isDisabled(), true);

    // Analyze: progress, then local ticks over the bars, the first drop, the worst local layers and the ranking.
    const foldersBefore = runFolders().sort();
    const t0 = Date.now();
    await page.getByTestId('analyze').click();
    await page.getByTestId('analyze-cancel').waitFor();
    await page.getByTestId('ranking').waitFor({ timeout: 60_000 });
    t.diagnostic(`Analyze on the sample: ${Date.now() - t0} ms to the ranking on screen`);
    assert.deepEqual(runFolders().sort(), foldersBefore, 'an analysis writes nothing');
    const ticks = page.locator('line.bar-local');
    const tickCount = await ticks.count();
    assert.ok(tickCount > bars / 2 && tickCount <= bars, `${tickCount} local ticks over ${bars} bars`);
    const locals = (await ticks.evaluateAll((ls) => ls.map((l) => [l.getAttribute('data-local'), l.getAttribute('data-local-sqnr')]))) as Array<[string, string]>;
    const lowest = locals.filter(([, v]) => v !== 'inf').sort((a, b) => Number(a[1]) - Number(b[1]))[0];
    const worstLocal = page.getByTestId('worst-local').getByRole('button').first();
    assert.equal(await worstLocal.textContent(), lowest[0], 'the worst local layer named is the lowest tick');
    assert.match((await page.getByTestId('first-drop').textContent())!, /^(Error starts at \S+: cumulative SQNR falls from [\d.]+ to [\d.]+ dB\.|No sharp drop)/);
    const rankingRows = page.getByTestId('ranking').locator('tbody tr');
    assert.equal(await rankingRows.count(), 10);
    assert.equal(await rankingRows.first().locator('td').first().textContent(), '1');
    // Click-through from the ranking to the layer panel.
    const topLayer = (await rankingRows.first().getByRole('button').textContent())!;
    await rankingRows.first().getByRole('button').click();
    await page.getByTestId('layer-panel').getByRole('heading', { name: topLayer }).waitFor();
    await page.mouse.move(0, 0);
    await shot('8-inspect-analysis');
    await page.getByTestId('show-local').uncheck();
    assert.equal(await ticks.count(), 0, 'the local ticks toggle off');
    await page.getByTestId('show-local').check();
    assert.equal(await ticks.count(), tickCount);

    // Repair to a target: the repair search bar appears on the Run screen, then what it changed.
    await page.getByTestId('repair-kind').selectOption('sqnr');
    await page.getByTestId('repair-value').fill('65');
    await page.getByTestId('repair').click();
    await page.locator('[data-stage="sensitivity"]').waitFor();
    await shot('4c-run-repair');
    await page.locator(`section.inspect:not([data-run="${firstRun}"])`).waitFor({ timeout: 90_000 });
    const repairRun = (await page.locator('section.inspect').getAttribute('data-run'))!;
    const repaired = runReport(repairRun);
    assert.ok(repaired.repair, 'the repair run reports its repair');
    assert.ok(repaired.repair.changes.length > 0);
    t.diagnostic(`repair to 65 dB: ${repaired.repair.met ? 'met' : 'not met'}, output ${repaired.repair.before.outputSqnr} → ${repaired.repair.after.outputSqnr} dB, ${repaired.repair.changes.map((c) => `${c.name} ${c.action}`).join('; ')}, search ${repaired.repair.seconds} s`);
    assert.equal(await page.getByTestId('repair-changes').locator('tbody tr').count(), repaired.repair.changes.length);
    assert.equal(await page.getByTestId('repair-after').textContent(), `${typeof repaired.repair.after.outputSqnr === 'number' ? repaired.repair.after.outputSqnr.toFixed(2) : 'inf'} dB` +
      ['top1-agreement', 'cosine'].filter((k) => repaired.repair!.after.metrics[k] !== undefined).map((k) => `, ${k} ${repaired.repair!.after.metrics[k].toFixed(3)}`).join(''));
    // A layer the repair kept in float has no bar; every layer both runs quantize has an outline.
    const firstLayers = new Set(first.layers.map((l) => l.name));
    const shared = repaired.layers.filter((l) => firstLayers.has(l.name)).length;
    assert.equal(await page.locator('rect.bar-previous').count(), shared, 'the run it repaired is outlined under it');

    // The history lists both runs; show the first with the repair outlined, then without.
    const history = page.getByTestId('history');
    assert.deepEqual(await history.locator('tbody tr').evaluateAll((rs) => rs.map((r) => r.getAttribute('data-run'))), [firstRun, repairRun]);
    assert.match((await history.locator(`tr[data-run="${repairRun}"]`).textContent())!, new RegExp(`repair of ${firstRun} to 65 dB`));
    await page.mouse.move(0, 0);
    await shot('9-inspect-repair');
    await history.getByRole('radio', { name: `Show ${firstRun}` }).check();
    await page.locator(`section.inspect[data-run="${firstRun}"]`).waitFor();
    assert.equal(await page.getByTestId('outline-legend').textContent(), `outline: ${repairRun}`);
    assert.equal(await page.locator('rect.bar-previous').count(), shared);
    assert.equal(await ticks.count(), tickCount, 'the first run keeps its analysis');
    await history.getByRole('checkbox', { name: `Outline ${repairRun}` }).uncheck();
    assert.equal(await page.locator('rect.bar-previous').count(), 0);
    await history.getByRole('checkbox', { name: `Outline ${repairRun}` }).check();
    assert.equal(await page.locator('rect.bar-previous').count(), shared);
    await page.getByRole('button', { name: 'Switch to dark mode' }).click();
    await page.mouse.move(0, 0);
    await shot('9b-inspect-history-dark');
    await page.getByRole('button', { name: 'Switch to light mode' }).click();
    assert.deepEqual(listing(SAMPLE_DIR), sampleBefore, 'nothing written next to the sample model');
    assert.deepEqual(consoleErrors, []);
  });

  test('a model with an If: its graph on the Model screen, the If opened to show both branches', { timeout: 60_000 }, async () => {
    const dir = tempDir('qs-e2e-if-');
    temps.push(dir);
    const model = path.join(dir, 'branches.onnx');
    saveModel(controlFlowModel(), model);
    await home();
    await page.locator('#model-path').fill(model);
    await page.getByRole('button', { name: 'Open', exact: true }).click();
    await page.getByRole('heading', { name: 'branches.onnx' }).waitFor();
    await page.getByTestId('show-model-graph').click();
    await page.locator('.graph-svg [data-node="choose"]').waitFor({ state: 'attached' });
    assert.equal(await page.locator('.graph-svg .gnode.gop').count(), 5, 'the main graph, the If closed');
    assert.equal(await page.locator('.graph-svg .gnode.gfolded').count(), 2, 'the BatchNormalization and the Constant, folded by prepare');
    await page.locator('.graph-svg [data-toggle="choose"]').click();
    await page.locator('.graph-svg [data-node="choose/then_branch/double"]').waitFor({ state: 'attached' });
    assert.equal(await page.locator('.graph-svg .gnode.gop').count(), 7, 'both branches inside the If');
    assert.deepEqual(await page.locator('.graph-svg .gbody text').allTextContents(), ['then_branch', 'else_branch']);
    await page.getByTestId('graph-search').fill('kept');
    await page.getByRole('button', { name: 'Find', exact: true }).click();
    await page.getByTestId('graph-node-info').filter({ hasText: 'Identity' }).waitFor();
    await page.mouse.move(0, 0);
    await shot('2b-model-graph-if');
    await page.locator('.graph-svg [data-toggle="choose"]').click();
    await page.locator('.graph-svg [data-node="choose/then_branch/double"]').waitFor({ state: 'detached' });
    assert.equal(await page.locator('.graph-svg .gnode.gop').count(), 5, 'closed again');
    assert.deepEqual(consoleErrors, []);
  });

  test('dropping a file that is not a model says why, in place', async () => {
    await home();
    const drop = async (name: string, content: string) => {
      // Runs in the page, where DataTransfer exists; this file compiles without DOM types.
      const dataTransfer = await page.evaluateHandle(`(() => { const dt = new DataTransfer(); dt.items.add(new File([${JSON.stringify(content)}], ${JSON.stringify(name)})); return dt; })()`);
      await page.getByTestId('dropzone').dispatchEvent('drop', { dataTransfer });
    };
    await drop('notes.txt', 'just some text');
    await page.getByTestId('import-error').filter({ hasText: 'notes.txt: not an ONNX model' }).waitFor();
    await drop('broken.onnx', 'this is not protobuf at all, just text pretending');
    await page.getByTestId('import-error').filter({ hasText: /^broken\.onnx: not a readable ONNX model/ }).waitFor();
    await shot('1b-import-error');
    assert.equal(await page.getByRole('heading', { name: 'Open a model' }).count(), 1, 'still on the Import screen');
    // A real model dropped into the browser is uploaded to the host and opens.
    const bytes = fs.readFileSync(path.join(SAMPLE_DIR, 'cls.onnx')).toString('base64');
    const model = await page.evaluateHandle(`(() => { const b = atob(${JSON.stringify(bytes)}); const a = new Uint8Array(b.length);
      for (let i = 0; i < b.length; i++) a[i] = b.charCodeAt(i); const dt = new DataTransfer(); dt.items.add(new File([a], 'dropped.onnx')); return dt; })()`);
    await page.getByTestId('dropzone').dispatchEvent('drop', { dataTransfer: model });
    await page.getByRole('heading', { name: 'dropped.onnx' }).waitFor();
  });

  test('labels, a metric module and CLE from Configure: the run scores with the module, the history names it, repair offers it, Inspect says what CLE did', { timeout: 120_000 }, async () => {
    const dir = tempDir('qs-e2e-metric-');
    temps.push(dir);
    const byFile = JSON.parse(fs.readFileSync(path.join(SAMPLE_DIR, 'labels.json'), 'utf8')) as Record<string, number>;
    const labels = path.join(dir, 'labels.json');
    fs.writeFileSync(labels, JSON.stringify(Object.keys(byFile).sort().map((f) => byFile[f])));
    const module = path.join(dir, 'upright.mjs');
    fs.writeFileSync(module, `export default {
  name: 'orientation right',
  score({ quantized, labels }) {
    const right = quantized.filter((s, i) => { const d = Object.values(s)[0].data; return (d[1] > d[0] ? 1 : 0) === labels[i]; });
    return right.length / quantized.length;
  },
};
`);
    await openSample();
    await configureXnnpack();
    await page.locator('#data-labels').fill(labels);
    await page.locator('#data-metric-module').fill(module);
    await page.locator('details summary').first().click();
    await page.locator('#cfg-cle').check();
    await page.getByTestId('run').click();
    await page.locator('section.inspect').waitFor({ timeout: 60_000 });
    const runId = (await page.locator('section.inspect').getAttribute('data-run'))!;
    const report = runReport(runId);
    assert.equal(report.customMetric?.name, 'orientation right');
    assert.equal(report.metrics!.custom, report.metrics!.accuracy, 'the module re-implements top-1 accuracy on class-id labels');
    assert.match((await page.getByTestId('algorithms').textContent())!, new RegExp(`Cross-layer equalization: ${report.algorithms!.cle!.pairs.length} Conv pairs rescaled`));
    const row = page.getByTestId('history').locator(`tr[data-run="${runId}"]`);
    assert.match((await row.textContent())!, new RegExp(`minmax \\+ CLE.*orientation right ${report.metrics!.custom.toFixed(3)}`));
    const options = await page.getByTestId('repair-kind').locator('option').allTextContents();
    assert.ok(options.includes('orientation right (custom) ≥'), options.join(' | '));
    assert.ok(options.includes('accuracy ≥'), 'class-id labels make accuracy a target too');
    await page.getByTestId('repair-kind').selectOption('custom');
    await page.mouse.move(0, 0);
    await shot('10-custom-metric');
  });

  test('AdaRound from Configure: Inspect and the layer panel say what it did, and keeping a layer in float re-uses the learned rounding', { timeout: 120_000 }, async (t) => {
    await openSample();
    await configureXnnpack();
    await page.locator('details summary').first().click();
    await page.locator('#cfg-adaround').check();
    await page.locator('#cfg-adaround-iterations').fill('50');
    await page.getByTestId('run').click();
    await page.locator('section.inspect').waitFor({ timeout: 60_000 });
    const first = (await page.locator('section.inspect').getAttribute('data-run'))!;
    const report = runReport(first);
    const ada = report.algorithms!.adaround!;
    assert.equal(ada.iterations, 50);
    assert.match((await page.getByTestId('algorithms').textContent())!, new RegExp(`AdaRound: ${ada.layers.length} layers, 50 iterations each on 18 calibration samples`));
    // A mark under every bar whose rounding was learned, named in its tooltip words, and only there.
    const learned = report.layers.filter((l) => ada.layers.some((a) => a.kept === 'learned' && l.nodes.includes(a.node))).map((l) => l.name).sort();
    assert.ok(learned.length > 0);
    assert.deepEqual((await page.locator('rect.bar-changed').evaluateAll((els) => els.map((e) => e.getAttribute('data-changed')!))).sort(), learned);
    assert.equal(await page.locator(`rect.bar-changed[data-changed="${learned[0]}"]`).getAttribute('data-algorithms'), 'AdaRound');
    assert.match((await page.getByTestId('changed-legend').textContent())!, new RegExp(`${learned.length} layers changed by AdaRound`));
    const conv = report.layers.find((l) => l.op === 'Conv' && ada.layers.some((a) => l.nodes.includes(a.node)))!;
    await page.locator(`rect.bar[data-layer="${conv.name}"]`).dispatchEvent('click');
    const line = ada.layers.find((a) => conv.nodes.includes(a.node))!;
    assert.match((await page.getByTestId('layer-adaround').textContent())!, new RegExp(`layer output ${formatDb(line.outputSqnr.before)} → ${formatDb(line.outputSqnr.after)} dB`));
    // The same recipe without AdaRound is the outline, the panel's baseline and a line of the section.
    const without = report.algorithms!.without!;
    assert.equal(await page.getByTestId('outline-legend').textContent(), 'outline: without the algorithms');
    assert.equal(await page.locator('rect.bar-previous').count(), report.layers.length);
    assert.match((await page.getByTestId('layer-without').textContent())!, new RegExp(`${(without.layers[conv.name] as number).toFixed(2)} dB`));
    assert.match((await page.getByTestId('algorithms-without').textContent())!, new RegExp(`on the same 6 samples: output SQNR ${formatDb(without.outputs[0].sqnr)} → ${formatDb(report.outputs[0].sqnr)} dB`));
    const t0 = Date.now();
    await page.getByTestId('keep-float').click();
    await page.locator(`section.inspect:not([data-run="${first}"])`).waitFor({ timeout: 60_000 });
    t.diagnostic(`Keep in float with AdaRound: ${Date.now() - t0} ms to the re-run on screen`);
    assert.match((await page.getByTestId('algorithms').textContent())!, /rounding re-used from the saved ranges/);
    await page.mouse.move(0, 0);
    await shot('11-adaround');
  });

  test('a language model: 4-bit weights with GPTQ, then static int8 with SmoothQuant, scored on held-out text with next-character labels', { timeout: 180_000 }, async () => {
    await home();
    await page.locator('#model-path').fill(path.join(CHAR_LM, 'model.onnx'));
    await page.getByRole('button', { name: 'Open', exact: true }).click();
    await page.getByRole('heading', { name: 'model.onnx' }).waitFor();
    await page.getByRole('button', { name: '3. Configure' }).click();
    if (await page.getByTestId('reset-config').count()) await page.getByTestId('reset-config').click();
    await page.locator('[data-preset="cpu:w4"]').click();
    await page.locator('details.advanced summary').click();
    assert.equal(await page.locator('#cfg-smoothquant').isDisabled(), true, 'SmoothQuant is for static runs');
    assert.equal(await page.locator('fieldset.data legend').textContent(), 'Evaluation data', 'a weight-only run only measures');
    await page.locator('#cfg-gptq').check();
    assert.equal(await page.locator('fieldset.data legend').textContent(), 'Calibration data', 'GPTQ reads its layers\' inputs from calibration data');
    await page.getByRole('radio', { name: '.npy files' }).check();
    await page.locator('#data-path').fill(path.join(CHAR_LM, 'calib.npy'));
    await page.getByTestId('eval-other').check();
    await page.getByRole('textbox', { name: 'Evaluation data path' }).fill(path.join(CHAR_LM, 'heldout.npy'));
    await page.locator('#data-labels').fill(path.join(CHAR_LM, 'heldout-labels.npy'));
    await page.getByTestId('run').click();
    await page.locator('section.inspect').waitFor({ timeout: 120_000 });
    const gptqRun = (await page.locator('section.inspect').getAttribute('data-run'))!;
    const w4 = runReport(gptqRun);
    const gptq = w4.algorithms!.gptq!;
    assert.equal(gptq.layers.length, w4.weights.length, 'GPTQ quantized every 4-bit layer');
    assert.match((await page.getByTestId('algorithms-gptq').textContent())!, new RegExp(`GPTQ: ${gptq.layers.length} layers, int4 blocks of 32, act-order, on 64 calibration samples`));
    assert.match((await page.getByTestId('history').locator(`tr[data-run="${gptqRun}"]`).textContent())!,
      new RegExp(`GPTQ.*accuracy ${w4.metrics!.accuracy.toFixed(3)}, perplexity ${w4.metrics!.perplexity!.toFixed(2)} \\(float ${w4.metrics!['float-perplexity']!.toFixed(2)}\\)`));
    const layer = w4.layers.find((l) => gptq.layers.some((g) => l.nodes.includes(g.node)))!;
    await page.locator(`rect.bar[data-layer="${layer.name}"]`).dispatchEvent('click');
    assert.match((await page.getByTestId('layer-gptq').textContent())!, /nearest rounding → GPTQ/);
    await shot('12-lm-gptq');

    await page.getByRole('button', { name: '3. Configure' }).click();
    await page.locator('[data-preset="cpu:a8w8"]').click();
    if (await page.locator('details.advanced[open]').count() === 0) await page.locator('details.advanced summary').click();
    await page.locator('#cfg-smoothquant').check();
    await page.getByTestId('run').click();
    await page.locator(`section.inspect:not([data-run="${gptqRun}"])`).waitFor({ timeout: 150_000 });
    const a8 = runReport((await page.locator('section.inspect').getAttribute('data-run'))!);
    const sq = a8.algorithms!.smoothquant!;
    assert.ok(sq.layers.length > 0 && sq.searched?.length === 6, 'α searched among six');
    assert.match((await page.getByTestId('algorithms-smoothquant').textContent())!, new RegExp(`SmoothQuant: α ${sq.alpha} \\(searched`));
    await page.mouse.move(0, 0);
    await shot('13-lm-smoothquant');
  });

  test('cancel stops the run within a second and leaves nothing written', { timeout: 120_000 }, async (t) => {
    const sampleBefore = listing(SAMPLE_DIR);
    await openSample();
    await configureXnnpack();
    // The sample's 24 lines, 40 times over: a run long enough to cancel in the middle of calibration.
    const many = tempDir('qs-e2e-many-');
    temps.push(many);
    const lines = fs.readdirSync(path.join(SAMPLE_DIR, 'calibration'));
    for (let k = 0; k < 40; k++) for (const l of lines) fs.symlinkSync(path.join(SAMPLE_DIR, 'calibration', l), path.join(many, `${k}-${l}`));
    await page.locator('#data-path').fill(many);
    await page.getByTestId('run').click();
    await page.locator('[data-stage="calibrate"] .stage-text').filter({ hasText: /samples/ }).waitFor({ timeout: 30_000 });
    const runId = (await page.locator('section.run').getAttribute('data-run'))!;
    assert.ok(runFolders().some((d) => path.basename(d).startsWith(`${runId}-`)), 'the run has a work folder while it runs');
    const started = Date.now();
    await page.getByTestId('cancel').click();
    await page.getByTestId('run-status').filter({ hasText: 'Cancelled. Nothing was written.' }).waitFor({ timeout: 5_000 });
    const stopped = Date.now() - started;
    t.diagnostic(`Cancel → "Cancelled" on screen: ${stopped} ms`);
    await shot('4b-run-cancelled');
    assert.ok(stopped < 1000, `cancel took ${stopped} ms`);
    assert.deepEqual(listing(SAMPLE_DIR), sampleBefore);
    assert.deepEqual(runFolders().filter((d) => path.basename(d).startsWith(`${runId}-`)), [], 'the cancelled run left no work folder');
  });

  test('2,000 layers: the chart draws every bar and answers hover, click and sort quickly', { timeout: 300_000 }, async (t) => {
    // 2,000 nodes: MatMuls with a residual Add every fourth node, 2,001 quantized tensors, built here rather than shipped.
    const dir = tempDir('qs-e2e-big-');
    temps.push(dir);
    const n = 2000;
    const nodes: NodeSpec[] = [];
    const initializers: Record<string, { dims: number[]; data: Float32Array }> = {};
    for (let i = 0; i < n; i++) {
      const out = i === n - 1 ? 'y' : `h${i}`;
      if (i % 4 === 3) {
        nodes.push({ op: 'Add', inputs: [`h${i - 1}`, i === 3 ? 'x' : `h${i - 4}`], outputs: [out], name: `add${i}` });
        continue;
      }
      // Small weights: each residual block adds little, so 500 of them stay finite.
      initializers[`w${i}`] = { dims: [16, 16], data: randomArray(256, i + 1, 0.05) };
      nodes.push({ op: 'MatMul', inputs: [i === 0 ? 'x' : `h${i - 1}`, `w${i}`], outputs: [out], name: `mm${i}` });
    }
    const model = path.join(dir, 'chain.onnx');
    saveModel(buildModel({ inputs: { x: ['batch', 16] }, outputs: { y: ['batch', 16] }, initializers, nodes }), model);

    await home();
    await page.locator('#model-path').fill(model);
    await page.getByRole('button', { name: 'Open', exact: true }).click();
    await page.getByRole('heading', { name: 'chain.onnx' }).waitFor();
    await page.getByRole('button', { name: '3. Configure' }).click();
    await page.locator('[data-preset="cpu:a8w8"]').click();
    await page.getByRole('radio', { name: 'Random' }).check();
    await page.locator('#random-count').fill('8');
    await page.getByTestId('run').click();
    await page.locator('section.inspect').waitFor({ timeout: 240_000 });
    const bars = await page.locator('rect.bar').count();
    const report = runReport((await page.locator('section.inspect').getAttribute('data-run'))!);
    assert.equal(bars, report.layers.length);
    assert.ok(bars > 2000, `${bars} bars`);

    const timed = async (what: string, act: () => Promise<void>) => {
      const t0 = Date.now();
      await act();
      const ms = Date.now() - t0;
      t.diagnostic(`${what}: ${ms} ms`);
      return ms;
    };
    const box = (await page.locator('.layer-chart').boundingBox())!;
    const hover = await timed('hover → tooltip', async () => {
      await page.mouse.move(box.x + box.width * 0.5, box.y + box.height - 40);
      await page.locator('.tooltip').waitFor();
    });
    const click = await timed('click a bar → layer panel', async () => {
      // Bars are a fraction of a pixel wide here: the click goes to the element itself.
      await page.locator(`rect.bar[data-layer="${report.layers[1000].name}"]`).dispatchEvent('click');
      await page.getByTestId('layer-panel').getByRole('heading', { name: report.layers[1000].name }).waitFor();
    });
    const histogram = await timed('… and its float/dequantized histogram (the engine runs layer 1,000 of both models)', async () => {
      await page.getByTestId('layer-panel').locator('.histogram .recharts-bar-rectangle').first().waitFor({ timeout: 30_000 });
    });
    assert.ok(histogram < 15_000, `${histogram} ms`);
    const sort = await timed('sort worst first → first bar is the worst', async () => {
      await page.getByRole('radio', { name: 'worst first' }).check();
      await page.waitForFunction(`document.querySelector('rect.bar')?.getAttribute('data-layer') === ${JSON.stringify(worstOf(report).name)}`);
    });
    await page.mouse.move(0, 0);
    await shot('5d-inspect-2000-layers');
    for (const ms of [hover, click, sort]) assert.ok(ms < 2000, `${ms} ms`);

    // The graph of the 2,000 nodes: laid out in the worker, then zoomed and panned frame by frame,
    // whole (every node painted) and zoomed in. Printed, not asserted: timings are the machine's.
    await page.getByTestId('show-graph').check();
    await page.locator('.graph-svg .gnode').first().waitFor({ state: 'attached', timeout: 60_000 });
    assert.equal(await page.locator('.graph-svg .gnode.gop').count(), n);
    t.diagnostic(`graph of ${n} nodes: layout ${await page.locator('.graph-svg').getAttribute('data-layout-seconds')} s (ELK in a Web Worker)`);
    for (const [where, prepare] of [['whole graph', () => page.getByTestId('graph-fit').click()], ['zoomed in', () => page.getByTestId('graph-zoom-in').click()]] as const) {
      await prepare();
      for (const how of ['zoom', 'pan'] as const) {
        const times = await frameTimes(how, 40);
        t.diagnostic(`graph ${how}, ${where}: frame time median ${median(times).toFixed(1)} ms, max ${Math.max(...times).toFixed(1)} ms over ${times.length} frames`);
      }
    }
    await page.mouse.move(0, 0);
    await shot('5j-graph-2000-nodes');
  });

  test('your own data in the browser: a model, its .npy samples and labels uploaded; reloaded mid-run; the export downloaded as a zip; a second model with its own settings; a weight-only run that offers only what works', { timeout: 300_000 }, async (t) => {
    await home();
    await page.getByTestId('file-input').setInputFiles(path.join(MNIST, 'model.onnx'));
    await page.getByRole('heading', { name: 'model.onnx' }).waitFor();
    await configureXnnpack();
    assert.equal(await page.locator('#data-path').inputValue(), '', 'a new model starts with no data of the model before');
    await page.getByRole('radio', { name: '.npy files' }).check();
    await page.getByTestId('pick-path-input').setInputFiles(path.join(MNIST, 'eval.npy'));
    await until('the uploaded samples', async () => (await page.locator('#data-path').inputValue()).endsWith('eval.npy'));
    const samples = await page.locator('#data-path').inputValue();
    assert.ok(samples.includes(`${path.sep}uploads${path.sep}`), `${samples}: kept in the host's state folder, not a temporary one`);
    await page.getByTestId('pick-labels-input').setInputFiles(path.join(MNIST, 'eval_labels.npy'));
    await until('the uploaded labels', async () => (await page.locator('#data-labels').inputValue()).endsWith('eval_labels.npy'));
    assert.match((await page.getByTestId('eval-note').textContent())!, /held-out 25%/);
    await page.getByRole('button', { name: 'Preview one input' }).click();
    await page.locator('.preview-body').filter({ hasText: 'input' }).waitFor();
    // AdaRound with many iterations makes the run last long enough to reload the page in the middle of it.
    await page.locator('details.advanced summary').click();
    await page.locator('#cfg-adaround').check();
    await page.locator('#cfg-adaround-iterations').fill('20000');
    await shot('3d-configure-uploads');
    await page.locator('fieldset.data').screenshot({ path: path.join(SHOTS, '3e-configure-data.png') }); // docs/configure-data.png

    await page.getByTestId('run').click();
    await page.locator('[data-stage="calibrate"]').waitFor();
    await page.locator('[data-stage="calibrate"] .stage-text').filter({ hasText: 'done' }).waitFor();
    assert.equal(await page.locator('section.inspect').count(), 0, 'still running when the page reloads');
    await page.reload();
    await page.locator('html[data-session="ready"]').waitFor({ state: 'attached' });
    await page.getByTestId('cancel').waitFor();
    assert.equal(await page.getByTestId('cancel').isEnabled(), true, 'the restored page shows the run still going, and can cancel it');
    await shot('4b-run-after-reload');
    await page.locator('section.inspect').waitFor({ timeout: 180_000 });
    const runId = (await page.locator('section.inspect').getAttribute('data-run'))!;
    const report = runReport(runId);
    assert.equal(report.samples.calibration, 375, 'calibrated on three quarters of the 500 uploaded samples');
    assert.equal(report.samples.evaluation, 125, 'measured on the quarter held out');
    assert.ok(report.metrics?.accuracy !== undefined && report.metrics.accuracy > 0.9, `accuracy against the uploaded labels ${report.metrics?.accuracy}`);
    t.diagnostic(`MNIST, xnnpack a8w8 + AdaRound 20000: accuracy ${report.metrics!.accuracy.toFixed(3)} on the 125 held-out samples, output SQNR ${report.outputs[0].sqnr} dB`);

    await page.getByRole('button', { name: '6. Export' }).click();
    assert.match((await page.getByTestId('export-run').textContent())!, new RegExp(`^${runId}: xnnpack int8/int8 minmax \\+ AdaRound`));
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-zip').click()]);
    assert.match(download.suggestedFilename(), new RegExp(`^model\\.xnnpack-static-${runId}\\.zip$`));
    await page.getByTestId('exported').waitFor();
    await shot('6b-export-zip');
    const zip = readZip((await download.path())!);
    assert.ok([...zip.keys()].some((n) => n.endsWith('.report.html')), [...zip.keys()].join(', '));
    const models = [...zip.keys()].filter((n) => n.endsWith('.onnx'));
    assert.ok(models.length > 0);
    for (const name of models) await (await ort.InferenceSession.create(zip.get(name)!)).release();

    // Another model opens with its own settings, none of the MNIST model's (the sample's are an earlier test's), and its defaults are a click away.
    await openSample();
    await page.getByRole('button', { name: '3. Configure' }).click();
    assert.notEqual(await page.locator('#data-path').inputValue(), samples);
    assert.ok(!(await page.locator('#data-labels').inputValue()).endsWith('eval_labels.npy'));
    if (await page.getByTestId('reset-config').count()) await page.getByTestId('reset-config').click();
    assert.equal(await page.locator('#data-path').inputValue(), path.join(SAMPLE_DIR, 'calibration'));
    assert.equal(await page.getByRole('radio', { name: 'Folder of images' }).isChecked(), true);
    assert.equal(await page.locator('#data-labels').inputValue(), '');
    assert.equal(await page.locator('#cfg-adaround').isChecked(), false);
    // The uploaded model is a recent one, and comes back as it was last run.
    await home();
    await page.getByTestId('recent-model').filter({ hasText: 'model.onnx' }).first().click();
    await page.getByRole('heading', { name: 'model.onnx' }).waitFor();
    await page.getByRole('button', { name: '3. Configure' }).click();
    assert.equal(await page.locator('#data-path').inputValue(), samples);
    assert.equal(await page.getByRole('radio', { name: '.npy files' }).isChecked(), true);
    assert.ok((await page.locator('#data-labels').inputValue()).endsWith('eval_labels.npy'));
    assert.equal(await page.locator('#cfg-adaround').isChecked(), true);
    assert.equal(await page.locator('#cfg-adaround-iterations').inputValue(), '20000');

    // Weight-only: only what it can do is offered, and all of it works.
    await page.locator('[data-backend="cpu"] input[type="radio"]').check();
    await page.locator('[data-preset="cpu:w8"]').click();
    assert.equal(await page.locator('fieldset.data legend').textContent(), 'Evaluation data');
    await page.getByTestId('run').click();
    await page.locator('section.inspect').waitFor({ timeout: 60_000 });
    const weightOnly = (await page.locator('section.inspect').getAttribute('data-run'))!;
    assert.equal(await page.getByRole('button', { name: 'Analyze' }).isDisabled(), true);
    assert.match((await page.getByTestId('analyze-why').textContent())!, /needs static quantization/);
    await page.getByTestId('layer-table').locator('tbody tr').first().click();
    const panel = page.getByTestId('layer-panel');
    await panel.getByTestId('weight-values').waitFor();
    assert.match((await panel.getByTestId('layer-note').textContent())!, /^Weight-only/);
    assert.equal(await panel.getByTestId('sixteen-bit').count(), 0, 'no 16-bit activation to offer: activations stay float');
    await shot('5k-weight-only-panel');
    await panel.getByTestId('keep-float').click();
    await page.locator(`section.inspect:not([data-run="${weightOnly}"])`).waitFor({ timeout: 60_000 });
    assert.equal(await page.locator('.error').count(), 0, 'keeping a weight in float re-converts without calibration');
    assert.deepEqual(consoleErrors, []);
  });
});
