// The CLI as a user runs it: bin/quant-studio.js in a subprocess, judged by stdout, stderr and the
// exit code (0 success, 1 failure, 2 usage). One quantize run of the MNIST CNN is shared by the
// assertions that only read its outputs; the model is tiny, so the whole file takes a few seconds.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, test } from 'node:test';
import { readNpyHeader, readNpyRange, writeNpy } from '../../main/data/npy';
import type { Report } from '../../shared/report';
import { ROOT } from '../helpers/build';
import { runCli, trackedTempDirs, type Run } from '../helpers/cli';

const tempDir = trackedTempDirs();

const MNIST = path.join(ROOT, 'test', 'fixtures', 'mnist-cnn');
const MODEL = path.join(MNIST, 'model.onnx');
const CALIB = path.join(MNIST, 'calib.npy');
const ORT_QDQ = path.join(MNIST, 'model.ort-qdq.onnx');
const SAMPLE = path.join(ROOT, 'resources', 'sample', 'cls.onnx');

function cli(args: string[], cwd = ROOT): Run {
  return runCli(args, { cwd });
}

/** Exit code check that shows what the CLI said when it is wrong. */
function exits(r: Run, code: number): void {
  assert.equal(r.status, code, `expected exit ${code}, got ${r.status}\n--- stdout:\n${r.stdout}\n--- stderr:\n${r.stderr}`);
}

function hasStack(text: string): boolean {
  return /^\s{4}at /m.test(text);
}

function dbValue(v: number | 'inf'): number {
  return v === 'inf' ? Infinity : v;
}

/** The rows of the per-layer table: from the header line to the first blank line. */
function tableRows(stdout: string): Array<{ name: string; sqnr: number }> {
  const lines = stdout.split('\n');
  const start = lines.findIndex((l) => /^layer\s+op\s+SQNR dB\s+weight dB\s*$/.test(l));
  assert.ok(start >= 0, `no per-layer table header in:\n${stdout}`);
  const rows: Array<{ name: string; sqnr: number }> = [];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === '' || line.startsWith('…')) break;
    // name, op, SQNR, optional weight SQNR; names in this model have no spaces.
    const m = /^(\S+)\s+(\S+)\s+(inf|-?\d+\.\d)(?:\s+(?:inf|-?\d+\.\d))?\s*$/.exec(line);
    assert.ok(m, `unparsable table row: ${JSON.stringify(line)}`);
    rows.push({ name: m[1], sqnr: m[3] === 'inf' ? Infinity : Number(m[3]) });
  }
  return rows;
}

let dir: string;
let evalData: string;
let first: Run;
let out: string;
let report: Report;

before(() => {
  dir = tempDir('cli');
  // The first 100 held-out digits: enough for stable SQNR, quick to run.
  const source = path.join(MNIST, 'eval.npy');
  const header = readNpyHeader(source);
  const sample = header.shape.slice(1);
  const size = sample.reduce((a, b) => a * b, 1);
  evalData = path.join(dir, 'eval100.npy');
  writeNpy(evalData, 'float32', [100, ...sample], readNpyRange(source, header, 0, 100 * size) as Float32Array);
  out = path.join(dir, 'q.onnx');
  first = cli(['quantize', MODEL, '--backend', 'cpu', '--calibration', CALIB, '--eval', evalData, '--out', out]);
  if (first.status === 0) report = JSON.parse(fs.readFileSync(path.join(dir, 'q.report.json'), 'utf8')) as Report;
});

// --- usage -------------------------------------------------------------------------------------

test('no arguments: usage on stdout, exit 2', () => {
  const r = cli([]);
  exits(r, 2);
  assert.match(r.stdout, /^usage: quant-studio <command>/);
  for (const command of ['inspect', 'quantize', 'eval', 'backends']) assert.ok(r.stdout.includes(`  ${command} `), `usage lists ${command}`);
});

test('unknown command: exit 2, names it, shows usage', () => {
  const r = cli(['frobnicate']);
  exits(r, 2);
  assert.match(r.stderr, /unknown command "frobnicate"/);
  assert.match(r.stderr, /usage: quant-studio/);
  assert.ok(!hasStack(r.stderr));
});

test('quantize with an unknown flag: exit 2 and the flag is named', () => {
  const r = cli(['quantize', MODEL, '--backend', 'cpu', '--frobnicate']);
  exits(r, 2);
  assert.match(r.stderr, /--frobnicate/);
  assert.match(r.stderr, /usage: quant-studio/);
  assert.ok(!hasStack(r.stderr));
});

test('--help: usage, exit 0 (also after a command)', () => {
  for (const args of [['--help'], ['-h'], ['quantize', '--help']]) {
    const r = cli(args);
    exits(r, 0);
    assert.match(r.stdout, /^usage: quant-studio/, args.join(' '));
  }
});

// --- inspect -----------------------------------------------------------------------------------

test('inspect prints inputs, outputs, opset, op histogram and parameters', () => {
  const r = cli(['inspect', SAMPLE]);
  exits(r, 0);
  assert.equal(r.stderr, '');
  const s = r.stdout;
  assert.match(s, /^model: +.*cls\.onnx$/m);
  assert.match(s, /^IR: +8 +opsets: ai\.onnx 9$/m);
  assert.match(s, /^parameters: [\d,]+$/m);
  assert.match(s, /^nodes: +471$/m);
  assert.match(s, /^inputs:\n  x: float \[p2o\.DynamicDimension\.0, 3, p2o\.DynamicDimension\.1, p2o\.DynamicDimension\.2\]$/m);
  assert.match(s, /^outputs:\n  softmax_0\.tmp_0: float \[p2o\.DynamicDimension\.3, 2\]$/m);
  assert.match(s, /^ops:$/m);
  assert.match(s, /^  Conv +53$/m);
  assert.match(s, /^  BatchNormalization +35$/m);
  assert.match(s, /^  Softmax +1$/m);
  // The histogram is sorted by count, largest first.
  const counts = s.split('ops:\n')[1].trim().split('\n').map((l) => Number(l.trim().split(/\s+/).pop()));
  assert.deepEqual(counts, [...counts].sort((a, b) => b - a));
});

test('inspect --json: inputs, outputs, ops, parameters', () => {
  const r = cli(['inspect', '--json', SAMPLE]);
  exits(r, 0);
  const info = JSON.parse(r.stdout);
  assert.deepEqual(info.inputs.map((i: { name: string }) => i.name), ['x']);
  assert.deepEqual(info.outputs.map((o: { name: string }) => o.name), ['softmax_0.tmp_0']);
  assert.equal(info.ops.Conv, 53);
  assert.equal(info.nodeCount, 471);
  assert.equal(typeof info.parameters, 'number');
  assert.equal(info.nodes, undefined, 'nodes only with --nodes');
  const withNodes = JSON.parse(cli(['inspect', '--json', '--nodes', SAMPLE]).stdout);
  assert.equal(withNodes.nodes.length, 471);
});

test('inspect counts the weights held in Constant nodes as parameters', () => {
  // cls.onnx (a Paddle export) has no initializers: its 133,665 weight values (133,646 in
  // Conv/BatchNormalization/MatMul/Add inputs) are all Constant nodes, which the engine itself
  // treats as weights (prepare.ts turns them into initializers). A parameter count of 0 is wrong.
  const info = JSON.parse(cli(['inspect', '--json', SAMPLE]).stdout);
  assert.ok(info.parameters > 100_000, `parameters: ${info.parameters}`);
  const text = cli(['inspect', SAMPLE]).stdout;
  const m = /^parameters: ([\d,]+)/m.exec(text)!;
  assert.ok(Number(m[1].replace(/,/g, '')) > 100_000, m[0]);
});

test('inspect of a file that is not ONNX: exit 1, one line naming the file, no stack; --debug adds the stack', () => {
  const d = tempDir('cli-bad');
  const file = path.join(d, 'x.onnx');
  fs.writeFileSync(file, 'this is not an ONNX model, just text\n');
  const r = cli(['inspect', file]);
  exits(r, 1);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line, got:\n${r.stderr}`);
  assert.ok(lines[0].startsWith('quant-studio: '), lines[0]);
  assert.ok(lines[0].includes(file), `names the file: ${lines[0]}`);
  assert.ok(!hasStack(r.stderr));

  const debug = cli(['inspect', file, '--debug']);
  exits(debug, 1);
  assert.ok(debug.stderr.includes(file));
  assert.ok(hasStack(debug.stderr), `stack trace with --debug:\n${debug.stderr}`);
});

// --- quantize ----------------------------------------------------------------------------------

test('quantize the MNIST CNN: exit 0, per-layer table worst first, output SQNR, four files', () => {
  exits(first, 0);
  assert.match(first.stdout, /^layer\s+op\s+SQNR dB\s+weight dB$/m);
  assert.match(first.stdout, /^output logits: SQNR \d+\.\d dB in reference numerics \(max abs error [\d.e+-]+\)$/m);
  assert.match(first.stdout, /^output logits: SQNR \d+\.\d dB in ort-cpu numerics, as deployed on this machine \(max abs error [\d.e+-]+\)$/m);
  assert.match(first.stdout, /^per-layer SQNR in reference numerics on 100 evaluation samples:$/m);
  assert.match(first.stdout, /^\d+ quantized tensors, \d+ nodes in float(, \d+ folded away)?; size /m);
  assert.match(first.stdout, /^time: calibrate /m);
  for (const suffix of ['.onnx', '.report.json', '.recipe.json', '.ranges.json']) {
    const f = path.join(dir, `q${suffix}`);
    assert.ok(fs.existsSync(f) && fs.statSync(f).size > 0, `${f} written`);
  }
  const rows = tableRows(first.stdout);
  assert.equal(rows.length, report.layers.length, 'one row per quantized tensor');
  for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1].sqnr <= rows[i].sqnr, `table sorted ascending by SQNR: ${rows[i - 1].name} ${rows[i - 1].sqnr} > ${rows[i].name} ${rows[i].sqnr}`);
  const worst = [...report.layers].sort((a, b) => dbValue(a.sqnr) - dbValue(b.sqnr))[0];
  assert.equal(rows[0].name, worst.name, 'worst layer first');
});

test('quantize: progress goes to stderr, not stdout', () => {
  exits(first, 0);
  assert.match(first.stderr, /^calibrate: \d+\/\d+/m);
  assert.match(first.stderr, /^evaluate: 100\/100/m);
  assert.doesNotMatch(first.stdout, /calibrate: \d+\/|evaluate: \d+\//);
  assert.ok(!hasStack(first.stderr));
});

test('quantize: the report JSON', () => {
  exits(first, 0);
  assert.equal(report.backend, 'cpu');
  assert.equal(report.model.file, MODEL);
  assert.equal(report.model.opset, 17);
  assert.equal(report.recipe.backend, 'cpu');
  assert.equal(report.recipe.kind, 'static');
  assert.equal(report.quantized.file, out);
  assert.equal(report.samples.evaluation, 100);
  assert.ok(report.samples.calibration > 0);
  assert.deepEqual(report.outputs.map((o) => o.name), ['logits']);
  const o = report.outputs[0];
  assert.ok(typeof o.sqnr === 'number' && o.sqnr > 20, `output SQNR ${o.sqnr}`);
  assert.ok(o.maxAbsError > 0 && Number.isFinite(o.maxAbsError));
  assert.ok(report.layers.length > 5, `${report.layers.length} layers`);
  for (const l of report.layers) {
    assert.equal(typeof l.name, 'string');
    assert.equal(typeof l.node, 'string');
    assert.equal(typeof l.op, 'string');
    assert.ok(l.sqnr === 'inf' || (typeof l.sqnr === 'number' && Number.isFinite(l.sqnr)), `${l.name}: sqnr ${l.sqnr}`);
    assert.equal(l.range.length, 2);
  }
  // The printed output SQNR is the report's.
  assert.ok(first.stdout.includes(`output logits: SQNR ${(o.sqnr as number).toFixed(1)} dB`));
  assert.ok(report.sizes.floatBytes === fs.statSync(MODEL).size);
  assert.equal(report.sizes.quantizedBytes, fs.statSync(out).size);
  assert.ok(report.sizes.quantizedBytes < report.sizes.floatBytes / 2, 'int8 weights: well under half the size');
  for (const k of ['load', 'calibrate', 'convert', 'evaluate', 'total'] as const) assert.ok(Number.isFinite(report.timings[k]) && report.timings[k] >= 0, k);
  assert.ok(report.timings.total >= report.timings.calibrate + report.timings.evaluate - 2);
  assert.ok(Array.isArray(report.float) && Array.isArray(report.weights) && Array.isArray(report.warnings));
  const recipe = JSON.parse(fs.readFileSync(path.join(dir, 'q.recipe.json'), 'utf8'));
  assert.deepEqual(recipe, report.recipe);
});

test('quantize: the quantized model is a readable ONNX QDQ model', () => {
  exits(first, 0);
  const r = cli(['inspect', '--json', out]);
  exits(r, 0);
  const info = JSON.parse(r.stdout);
  assert.ok(info.ops.QuantizeLinear > 0 && info.ops.DequantizeLinear > 0);
  assert.deepEqual(info.inputs.map((i: { name: string }) => i.name), ['input']);
  assert.deepEqual(info.outputs.map((o: { name: string }) => o.name), ['logits']);
});

test('quantize --recipe with the written recipe gives the same layers; --json prints the report on stdout', () => {
  exits(first, 0);
  const r = cli(['quantize', MODEL, '--recipe', path.join(dir, 'q.recipe.json'), '--calibration', CALIB, '--eval', evalData, '--out', path.join(dir, 'r.onnx'), '--json']);
  exits(r, 0);
  const again = JSON.parse(r.stdout) as Report;
  assert.deepEqual(again.recipe, report.recipe);
  assert.equal(again.layers.length, report.layers.length);
  assert.deepEqual(again.layers.map((l) => l.name), report.layers.map((l) => l.name));
  assert.deepEqual(again, JSON.parse(fs.readFileSync(path.join(dir, 'r.report.json'), 'utf8')), 'stdout is the report file');
});

test('quantize --ranges --exclude: no calibration, the excluded node stays float with a reason', () => {
  exits(first, 0);
  const worst = [...report.layers].sort((a, b) => dbValue(a.sqnr) - dbValue(b.sqnr))[0];
  const node = worst.node;
  const r = cli(['quantize', MODEL, '--backend', 'cpu', '--ranges', path.join(dir, 'q.ranges.json'), '--exclude', node,
    '--eval', evalData, '--out', path.join(dir, 'x.onnx'), '--json']);
  exits(r, 0);
  const rerun = JSON.parse(r.stdout) as Report;
  assert.ok(rerun.timings.calibrate < 100, `calibrate took ${rerun.timings.calibrate} ms: ranges were not reused`);
  assert.doesNotMatch(r.stderr, /calibrate: \d+\//, 'no calibration progress');
  assert.match(rerun.data.calibration, /ranges from .*q\.ranges\.json/);
  assert.equal(rerun.samples.calibration, report.samples.calibration);
  assert.deepEqual(rerun.recipe.excludeNodes, [node]);
  const kept = rerun.float.find((f) => f.node === node);
  assert.ok(kept, `${node} is listed in report.float: ${JSON.stringify(rerun.float)}`);
  assert.equal(kept.op, worst.op);
  assert.ok(kept.reason.length > 0, 'with a reason');
  assert.ok(!rerun.layers.some((l) => l.node === node && l.name === worst.name), 'the excluded layer is no longer quantized');
  assert.ok(rerun.layers.length < report.layers.length);
});

test('quantize --backend xnnpack --kind weight-only: exit 1 with the reason, nothing written', () => {
  const d = tempDir('cli-xnn');
  const r = cli(['quantize', MODEL, '--backend', 'xnnpack', '--kind', 'weight-only', '--calibration', CALIB, '--out', path.join(d, 'w.onnx')]);
  exits(r, 1);
  assert.match(r.stderr, /xnnpack: weight-only quantization is not supported/);
  assert.ok(!hasStack(r.stderr));
  assert.deepEqual(fs.readdirSync(d), []);
});

test('quantize --backend nope: exit 2 listing the known backends', () => {
  const r = cli(['quantize', MODEL, '--backend', 'nope']);
  exits(r, 2);
  assert.match(r.stderr, /unknown backend "nope"/);
  assert.match(r.stderr, /cpu/);
  assert.match(r.stderr, /xnnpack/);
});

test('quantize with calibration data of the wrong shape: exit 1 naming the input, the expected and the found shape', () => {
  const d = tempDir('cli-shape');
  const bad = path.join(d, 'bad.npy');
  writeNpy(bad, 'float32', [4, 3, 28, 28], new Float32Array(4 * 3 * 28 * 28));
  const r = cli(['quantize', MODEL, '--backend', 'cpu', '--calibration', bad, '--out', path.join(d, 'q.onnx')]);
  exits(r, 1);
  const message = r.stderr.trim().split('\n').pop()!;
  assert.ok(message.includes(bad), message);
  assert.match(message, /"input"/);
  assert.match(message, /\[batch, 1, 28, 28\]/);
  assert.match(message, /\[4, 3, 28, 28\]/);
  assert.ok(!hasStack(r.stderr));
  assert.deepEqual(fs.readdirSync(d), ['bad.npy'], 'nothing written');
});

test('quantize --out equal to the input model: exit 1, refused, the model unchanged', () => {
  const d = tempDir('cli-same');
  const model = path.join(d, 'm.onnx');
  fs.copyFileSync(MODEL, model);
  const before = fs.readFileSync(model);
  // The same path as given, and the same file spelled differently (relative to the cwd).
  for (const [args, cwd] of [[[model, '--out', model], ROOT], [['m.onnx', '--out', './m.onnx'], d]] as const) {
    const r = cli(['quantize', ...args, '--backend', 'cpu', '--calibration', CALIB], cwd);
    exits(r, 1);
    assert.match(r.stderr, /refusing to write over the input model/);
    assert.ok(!hasStack(r.stderr));
    assert.ok(fs.readFileSync(model).equals(before), 'model bytes unchanged');
    assert.deepEqual(fs.readdirSync(d), ['m.onnx'], 'no companion files written');
  }
});

// --- eval --------------------------------------------------------------------------------------

test('eval of a model quantized by ONNX Runtime: layers matched and output SQNR', () => {
  const r = cli(['eval', MODEL, ORT_QDQ, '--data', evalData]);
  exits(r, 0);
  const m = /^(\d+) QDQ tensors matched; 100 samples$/m.exec(r.stdout);
  assert.ok(m, r.stdout);
  assert.ok(Number(m[1]) > 5, `${m[1]} layers matched`);
  assert.match(r.stdout, /^output logits: SQNR \d+\.\d dB/m);
  const rows = tableRows(r.stdout);
  assert.equal(rows.length, Number(m[1]));
  for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1].sqnr <= rows[i].sqnr, 'sorted ascending');
});

test('eval --json: layers with sqnr, outputs', () => {
  const r = cli(['eval', MODEL, ORT_QDQ, '--data', evalData, '--json']);
  exits(r, 0);
  const result = JSON.parse(r.stdout);
  assert.equal(result.samples, 100);
  assert.equal(result.float, MODEL);
  assert.equal(result.quantized, ORT_QDQ);
  assert.ok(result.layers.length > 5);
  for (const l of result.layers) assert.ok(l.sqnr === 'inf' || typeof l.sqnr === 'number', `${l.name}: ${l.sqnr}`);
  assert.deepEqual(result.outputs.map((o: { name: string }) => o.name), ['logits']);
  assert.ok(typeof result.outputs[0].sqnr === 'number' && result.outputs[0].sqnr > 20, `output SQNR ${result.outputs[0].sqnr}`);
});

test('eval of our own quantized model agrees with the report of the run that made it', () => {
  exits(first, 0);
  const r = cli(['eval', MODEL, out, '--data', evalData, '--json']);
  exits(r, 0);
  const result = JSON.parse(r.stdout);
  assert.deepEqual(result.layers.map((l: { name: string }) => l.name).sort(), report.layers.map((l) => l.name).sort());
  for (const l of result.layers as Array<{ name: string; sqnr: number | 'inf' }>) {
    const expected = dbValue(report.layers.find((x) => x.name === l.name)!.sqnr);
    const got = dbValue(l.sqnr);
    assert.ok(got === expected || Math.abs(got - expected) < 0.05, `${l.name}: eval ${got} dB, report ${expected} dB`);
  }
  assert.ok(Math.abs(dbValue(result.outputs[0].sqnr) - dbValue(report.outputs[0].sqnr)) < 0.05);
});

test('eval without --data: exit 2', () => {
  const r = cli(['eval', MODEL, ORT_QDQ]);
  exits(r, 2);
  assert.match(r.stderr, /--data/);
});

// --- backends ----------------------------------------------------------------------------------

test('backends lists every target with its presets and where its latency can be measured', () => {
  const r = cli(['backends']);
  exits(r, 0);
  for (const name of ['cpu', 'xnnpack', 'qnn-htp', 'coreml', 'tensorrt', 'mcu-int8', 'webgpu']) assert.match(r.stdout, new RegExp(`^${name} — `, 'm'));
  assert.match(r.stdout, /kinds: static, dynamic, weight-only/);
  assert.match(r.stdout, /presets: a8w8 .*a16w8 .*a16w4 /);
  assert.match(r.stdout, /latency: Needs a Snapdragon device/);
});

test('preflight: per-op placement, the nodes off the device and why, and what an exclusion costs', () => {
  const r = cli(['preflight', SAMPLE, '--backend', 'xnnpack']);
  exits(r, 0);
  assert.match(r.stdout, /^xnnpack: 186 nodes — \d+ quantized, \d+ on XNNPACK unquantized, \d+ on the CPU; \d+ XNNPACK partitions/m);
  assert.match(r.stdout, /HardSigmoid\) cpu: unsupported op: XNNPACK has no HardSigmoid kernel/);
  const costly = cli(['preflight', SAMPLE, '--backend', 'xnnpack', '--exclude', 'p2o.Conv.5']);
  exits(costly, 0);
  assert.match(costly.stdout, /your exclusions\/overrides: 1 node\(s\) leave the integer path, 0 leave XNNPACK; partitions \d+ → \d+/);
  const json = JSON.parse(cli(['preflight', SAMPLE, '--backend', 'qnn-htp', '--json']).stdout);
  assert.equal(json.preflight.total, json.preflight.nodes.length);
  const mcu = cli(['preflight', SAMPLE, '--backend', 'mcu-int8']);
  exits(mcu, 0);
  assert.match(mcu.stdout, /unsupported: stays float .* MCU has no float kernels/);
});

test('backends --json: an array with name, kinds, presets', () => {
  const r = cli(['backends', '--json']);
  exits(r, 0);
  const list = JSON.parse(r.stdout);
  assert.ok(Array.isArray(list));
  assert.deepEqual(list.map((b: { name: string }) => b.name).sort(), ['coreml', 'cpu', 'mcu-int8', 'qnn-htp', 'tensorrt', 'webgpu', 'xnnpack']);
  for (const b of list) {
    assert.ok(Array.isArray(b.kinds) && b.kinds.length > 0, `${b.name}.kinds`);
    assert.ok(Array.isArray(b.presets) && b.presets.length > 0, `${b.name}.presets`);
    for (const p of b.presets) assert.equal(typeof p.name, 'string');
  }
  assert.ok(!list.find((b: { name: string }) => b.name === 'xnnpack').kinds.includes('weight-only'));
});

test('quantize --json through a pipe: the whole report arrives (longer than a pipe buffer), with the backend\'s artifacts and latency', () => {
  const dir = tempDir('cli-json');
  const r = cli(['quantize', SAMPLE, '--backend', 'cpu', '--calibration', path.join(ROOT, 'resources', 'sample', 'calibration'),
    '--mean', '0.5,0.5,0.5', '--std', '0.5,0.5,0.5', '--out', path.join(dir, 'cls.onnx'), '--json']);
  exits(r, 0);
  assert.ok(r.stdout.length > 65536, `report is ${r.stdout.length} bytes`);
  const report = JSON.parse(r.stdout);
  assert.deepEqual(report.artifacts.map((a: { kind: string }) => a.kind).sort(), ['lowered', 'model', 'preflight', 'ranges', 'recipe']);
  assert.deepEqual(report.latency.models.map((m: { label: string }) => m.label), ['float', 'quantized']);
});
