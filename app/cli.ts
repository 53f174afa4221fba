// quant-studio: the command line over the engine.
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { startServer } from './serve';
import { BACKENDS, findBackend, recipeFor } from '../shared/backends';
import { MAIN_NUMERICS, hostWords, type MainNumerics, type Numerics } from '../shared/numerics';
import { formatDb, repairCostWords, type Db, type LayerReport, type Metrics, type OutputReport, type Quality, type Report } from '../shared/report';
import { QUANT_KINDS, QUANT_TYPES, validateRecipe, type Granularity, type QuantKind, type QuantType, type Recipe } from '../shared/recipe';
import { CancelledError, type Progress } from '../main/calib/calibrate';
import { guessBatchSize, openSource, type ImagePreprocess } from '../main/data/readers';
import { evaluate, type OutputFigures } from '../main/eval/evaluate';
import { hostNumerics } from '../main/onnx/numerics';
import { pairsFromQdq } from '../main/eval/pairs';
import { inputSpecs } from '../main/onnx/session';
import { inspectModel } from '../main/onnx/inspect';
import { GraphView } from '../main/onnx/graph';
import { loadModel } from '../main/onnx/model';
import { dbToJson } from '../shared/report';
import { quantize, TOOL } from '../main/jobs/quantize';
import { preflightModel } from '../main/jobs/preflight';
import type { Preflight } from '../shared/preflight';
import { analyze } from '../main/jobs/analyze';
import { parseMetricTarget } from '../main/eval/metrics';
import type { Target } from '../main/repair/search';
import type { AnalysisReport, RepairReport } from '../shared/report';

class UsageError extends Error {}

const USAGE = `usage: quant-studio <command> [options]

commands:
  inspect MODEL [--json] [--nodes]
      inputs/outputs, opset/IR, op histogram, parameter count, size (--nodes lists every node)
  quantize MODEL --backend NAME [--preset NAME] [--recipe FILE] [--kind static|dynamic|weight-only]
           [--act TYPE] [--weight TYPE] [--granularity per-tensor|per-channel|per-block:N]
           [--method minmax|moving-average[:M]|percentile:P|entropy[:BINS]|mse]
           [--calibration SOURCE] [--eval SOURCE] [--ranges FILE] [--exclude NODE,...]
           [--override TENSOR=float|TYPE|per-tensor|per-channel ...] [--reduce-range] [--qoperator] [--no-latency]
           [--samples N] [--batch N] [--out OUT.onnx] [--report REPORT.json] [--top N] [--json]
           [--numerics reference|ort-cpu] [--no-saturation-fix]
           image preprocessing: [--size HxW] [--mean R,G,B] [--std R,G,B] [--layout NCHW|NHWC] [--channels RGB|BGR|GRAY]
           [--target-sqnr DB | --target-metric NAME:VALUE] [--labels FILE|DIR] [--subset N]
      writes OUT.onnx (QDQ), OUT.report.json, OUT.recipe.json, OUT.ranges.json, OUT.preflight.json and what the
      backend lowers to (cpu: OUT.lowered.onnx, with --qoperator OUT.qoperator.onnx; mcu-int8: OUT.int-io.onnx
      and OUT.io.json); prints the per-layer table, where nodes run, and the latency on this CPU;
      with a target: first re-ranges tensors by another calibration method from the saved histograms, then
      moves the fewest layers to 16-bit (or float, where the backend allows) until the target holds on N
      evaluation samples (--subset, default: all of them up to 32)
      figures are in reference numerics (the QDQ graph as written); the cpu backend also shows ort-cpu, the
      exported model in ONNX Runtime's fused kernels on this machine, and searches in it; --numerics overrides.
      On a CPU whose int8 kernels saturate (x86 without VNNI) the cpu backend quantizes weights as uint8 so the
      export is right there; --no-saturation-fix keeps int8
  preflight MODEL --backend NAME [--preset NAME] [--recipe FILE] [--exclude NODE,...] [--override ...] [--nodes] [--json]
      before calibrating: where every node runs on the backend (quantized, on the device in float, CPU
      fallback) and why; with --exclude/--override, what that costs
  analyze MODEL --backend NAME [recipe options as for quantize] [--calibration SOURCE | --ranges FILE] [--eval SOURCE]
          [--subset N] [--candidates N] [--labels FILE|DIR] [--metric NAME] [--numerics reference|ort-cpu]
          [--report FILE] [--top N] [--json]
      local and cumulative SQNR per layer and the sensitivity ranking on N evaluation samples (--subset, default: all up to 32):
      each of the --candidates layers with the worst local SQNR alone in float and alone quantized
  eval FLOAT.onnx QUANT.onnx --data SOURCE [--batch N] [--numerics reference|ort-cpu] [--json] [--top N]
      per-layer and output SQNR of any float/QDQ pair, including other tools' models; the outputs also as
      ONNX Runtime's CPU kernels run them on this machine
  backends [--json]
      the backends and what each supports
  serve [--port N]
      the studio in a browser: serves the UI and its API on 127.0.0.1 and prints the URL (with its access token)

NAME:   top1-agreement, top5-agreement, argmax-agreement, cosine, accuracy, top5-accuracy (accuracy needs --labels)
SOURCE: a .npy file (first axis = samples), a folder of .npy files, a folder of images, a JSON manifest
        mapping input names to sources, or random:N (poor ranges; for trying things out)
TYPE:   ${QUANT_TYPES.join(', ')}
common: --debug prints stack traces; exit codes: 0 success, 1 failure, 2 usage`;

type Flags = Record<string, string | boolean | string[] | undefined>;

function parse(args: string[], options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>): { values: Flags; positionals: string[] } {
  try {
    const parsed = parseArgs({ args, options: { ...options, debug: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    return { values: parsed.values as Flags, positionals: parsed.positionals };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function progressPrinter(quiet: boolean): (p: Progress) => void {
  let last = '';
  let lastTime = 0;
  const tty = process.stderr.isTTY;
  return (p) => {
    if (quiet) return;
    const now = Date.now();
    const finished = p.done >= p.total;
    if (!finished && now - lastTime < (tty ? 100 : 2000)) return;
    lastTime = now;
    const left = p.rate && p.rate > 0 && !finished ? `, ${Math.ceil((p.total - p.done) / p.rate)} s left` : '';
    const rate = p.rate ? `, ${p.rate.toFixed(1)} ${p.stage === 'sensitivity' ? 'runs' : 'samples'}/s` : '';
    const counted = p.stage === 'calibrate' || p.stage === 'evaluate' || p.stage === 'sensitivity';
    const line = counted ? `${p.stage}: ${p.done}/${p.total}${rate}${left}` : `${p.stage}${finished ? ': done' : '…'}`;
    if (line === last) return;
    last = line;
    process.stderr.write(tty ? `\r\x1b[K${line}${finished ? '\n' : ''}` : `${line}\n`);
  };
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function dbValue(v: Db | undefined): number {
  return v === undefined ? Infinity : v === 'inf' ? Infinity : v;
}

function layerTable(layers: Array<Pick<LayerReport, 'name' | 'op' | 'sqnr' | 'weightSqnr'>>, top: number | undefined): string {
  const sorted = [...layers].sort((a, b) => dbValue(a.sqnr) - dbValue(b.sqnr));
  const shown = top !== undefined ? sorted.slice(0, top) : sorted;
  const width = Math.min(60, Math.max(5, ...shown.map((l) => l.name.length)));
  const lines = [`${pad('layer', width)}  ${pad('op', 20)}  ${'SQNR dB'.padStart(8)}  ${'weight dB'.padStart(9)}`];
  for (const l of shown) {
    const name = l.name.length > width ? '…' + l.name.slice(-(width - 1)) : l.name;
    lines.push(`${pad(name, width)}  ${pad(l.op, 20)}  ${formatDb(l.sqnr).padStart(8)}  ${(l.weightSqnr === undefined ? '' : formatDb(l.weightSqnr)).padStart(9)}`);
  }
  if (shown.length < sorted.length) lines.push(`… ${sorted.length - shown.length} more layers (--top to show more)`);
  return lines.join('\n');
}

function numberList(text: string | undefined, what: string, n: number): number[] | undefined {
  if (text === undefined) return undefined;
  const values = text.split(/[,x]/).map(Number);
  if (values.length !== n || values.some((v) => !Number.isFinite(v))) throw new UsageError(`${what} expects ${n} numbers separated by ${n === 2 ? '"x"' : 'commas'}, got "${text}"`);
  return values;
}

function preprocessFrom(v: Flags): ImagePreprocess | undefined {
  const pre: ImagePreprocess = {};
  const size = numberList(v.size as string | undefined, '--size', 2);
  if (size) pre.size = [size[0], size[1]];
  const mean = numberList(v.mean as string | undefined, '--mean', 3);
  if (mean) pre.mean = [mean[0], mean[1], mean[2]];
  const std = numberList(v.std as string | undefined, '--std', 3);
  if (std) pre.std = [std[0], std[1], std[2]];
  if (v.layout !== undefined) {
    if (v.layout !== 'NCHW' && v.layout !== 'NHWC') throw new UsageError('--layout must be NCHW or NHWC');
    pre.layout = v.layout;
  }
  if (v.channels !== undefined) {
    if (!['RGB', 'BGR', 'GRAY'].includes(v.channels as string)) throw new UsageError('--channels must be RGB, BGR or GRAY');
    pre.channels = v.channels as ImagePreprocess['channels'];
  }
  return Object.keys(pre).length ? pre : undefined;
}

function positiveInt(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${what} must be a whole number, got "${text}"`);
  return n;
}

/** The flags buildRecipe reads: every command that builds a recipe accepts all of them. */
const RECIPE_OPTIONS = {
  backend: { type: 'string' }, preset: { type: 'string' }, recipe: { type: 'string' }, kind: { type: 'string' },
  act: { type: 'string' }, weight: { type: 'string' }, granularity: { type: 'string' }, method: { type: 'string' },
  exclude: { type: 'string' }, override: { type: 'string', multiple: true }, samples: { type: 'string' }, 'reduce-range': { type: 'boolean' },
} as const;

/** The flags preprocessFrom reads. */
const PREPROCESS_OPTIONS = {
  size: { type: 'string' }, mean: { type: 'string' }, std: { type: 'string' }, layout: { type: 'string' }, channels: { type: 'string' },
} as const;

function buildRecipe(v: Flags): Recipe {
  let recipe: Recipe;
  if (v.recipe) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(fs.readFileSync(v.recipe as string, 'utf8'));
    } catch (err) {
      throw new Error(`${v.recipe}: not a readable recipe (${(err as Error).message})`);
    }
    recipe = validateRecipe(parsed, v.recipe as string);
    if (v.backend && v.backend !== recipe.backend) recipe = { ...recipe, backend: v.backend as string };
  } else {
    if (!v.backend) throw new UsageError(`--backend is required (one of ${BACKENDS.map((b) => b.name).join(', ')})`);
    if (!findBackend(v.backend as string)) throw new UsageError(`unknown backend "${v.backend}"; known: ${BACKENDS.map((b) => b.name).join(', ')}`);
    try {
      recipe = recipeFor(v.backend as string, v.preset as string | undefined);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (v.kind && !v.preset) {
      const preset = findBackend(recipe.backend)!.presets.find((p) => p.recipe.kind === v.kind);
      if (preset) recipe = recipeFor(recipe.backend, preset.name);
    }
  }
  if (v.kind) {
    if (!QUANT_KINDS.includes(v.kind as QuantKind)) throw new UsageError(`--kind must be one of ${QUANT_KINDS.join(', ')}`);
    recipe.kind = v.kind as QuantKind;
  }
  for (const [flag, key] of [['act', 'activationType'], ['weight', 'weightType']] as const) {
    const t = v[flag];
    if (t === undefined) continue;
    if (!QUANT_TYPES.includes(t as QuantType)) throw new UsageError(`--${flag} must be one of ${QUANT_TYPES.join(', ')}`);
    recipe[key] = t as QuantType;
  }
  if (v.granularity) {
    const g = v.granularity as string;
    const m = /^per-block(?::(\d+))?$/.exec(g);
    if (m) {
      recipe.granularity = 'per-block';
      if (m[1]) recipe.blockSize = Number(m[1]);
    } else if (g === 'per-tensor' || g === 'per-channel') {
      recipe.granularity = g as Granularity;
    } else {
      throw new UsageError('--granularity must be per-tensor, per-channel or per-block:N');
    }
  }
  if (v.method) recipe.method = v.method as string;
  if (v['reduce-range']) recipe.reduceRange = true;
  for (const o of (v.override as string[] | undefined) ?? []) {
    const m = /^(.+)=(float|per-tensor|per-channel|[a-z0-9]+)$/.exec(o);
    if (!m) throw new UsageError(`--override ${o}: expected TENSOR=float, TENSOR=TYPE (${QUANT_TYPES.join(', ')}), TENSOR=per-tensor or TENSOR=per-channel`);
    const [, tensor, what] = m;
    const current = { ...recipe.overrides[tensor] };
    if (what === 'float') current.float = true;
    else if (what === 'per-tensor' || what === 'per-channel') current.granularity = what;
    else if (QUANT_TYPES.includes(what as QuantType)) current.type = what as QuantType;
    else throw new UsageError(`--override ${o}: "${what}" is not float, a type (${QUANT_TYPES.join(', ')}), per-tensor or per-channel`);
    recipe.overrides = { ...recipe.overrides, [tensor]: current };
  }
  if (v.exclude) recipe.excludeNodes = [...new Set([...recipe.excludeNodes, ...(v.exclude as string).split(',').map((s) => s.trim()).filter(Boolean)])];
  const samples = positiveInt(v.samples as string | undefined, '--samples');
  if (samples !== undefined) recipe.calibrationSamples = samples;
  return recipe;
}

async function cmdQuantize(args: string[]): Promise<void> {
  const { values: v, positionals } = parse(args, {
    ...RECIPE_OPTIONS,
    calibration: { type: 'string' }, eval: { type: 'string' }, ranges: { type: 'string' },
    batch: { type: 'string' }, out: { type: 'string' }, report: { type: 'string' },
    top: { type: 'string' }, json: { type: 'boolean' }, quiet: { type: 'boolean' },
    qoperator: { type: 'boolean' }, 'no-latency': { type: 'boolean' },
    ...PREPROCESS_OPTIONS,
    'target-sqnr': { type: 'string' }, 'target-metric': { type: 'string' }, labels: { type: 'string' }, subset: { type: 'string' },
    numerics: { type: 'string' }, 'no-saturation-fix': { type: 'boolean' },
  });
  if (positionals.length !== 1) throw new UsageError('quantize takes one MODEL');
  const target = targetFrom(v);
  const recipe = buildRecipe(v);
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  try {
    const outcome = await quantize({
      model: positionals[0], recipe, calibration: v.calibration as string | undefined, evaluation: v.eval as string | undefined,
      ranges: v.ranges as string | undefined, out: v.out as string | undefined, report: v.report as string | undefined,
      batchSize: positiveInt(v.batch as string | undefined, '--batch') || undefined, preprocess: preprocessFrom(v),
      latency: !v['no-latency'], qoperator: Boolean(v.qoperator),
      signal: controller.signal, onProgress: progressPrinter(Boolean(v.quiet || v.json)),
      onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
      target, labels: v.labels as string | undefined, searchSamples: positiveInt(v.subset as string | undefined, '--subset') || undefined,
      numerics: numericsFrom(v), saturationFix: !v['no-saturation-fix'],
      onStep: v.quiet || v.json ? undefined : (m) => process.stderr.write(`repair: ${m}\n`),
    });
    const r = outcome.report;
    if (v.json) {
      process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      return;
    }
    const top = positiveInt(v.top as string | undefined, '--top');
    process.stdout.write(`per-layer SQNR in ${r.numerics} numerics on ${r.samples.evaluation} evaluation samples:\n${layerTable(r.layers, top)}\n\n`);
    process.stdout.write(outputLines(r.outputs, r.metrics, r.numerics));
    if (r.deployed) {
      process.stdout.write(outputLines(r.deployed.outputs, r.deployed.metrics, r.deployed.numerics, ', as deployed on this machine'));
      if (r.deployed.note) process.stdout.write(`  ${r.deployed.note}\n`);
    }
    process.stdout.write(`host: ${hostWords(r.host, r.backend)}\n`);
    if (r.host.saturationFix) process.stdout.write(`  ${r.host.saturationFix.words}\n`);
    if (r.host.webgpu) process.stdout.write(`  ${r.host.webgpu}\n`);
    if (r.repair) process.stdout.write(repairSummary(r.repair, r));
    const folded = r.float.filter((f) => f.reason.startsWith('folded into'));
    process.stdout.write(`${r.layers.length} quantized tensors, ${r.float.length - folded.length} nodes in float${folded.length ? `, ${folded.length} folded away` : ''}; size ${mb(r.sizes.floatBytes)} → ${mb(r.sizes.quantizedBytes)} (${(r.sizes.ratio * 100).toFixed(1)}%)\n`);
    process.stdout.write(`${preflightSummary(r.preflight)}\n`);
    if (r.latency) {
      const timed = r.latency.models.map((m) => `${m.label} ${m.medianMs.toFixed(2)} ms${m.label !== 'float' && m.speedup ? ` (x${m.speedup.toFixed(2)})` : ''}`).join(', ');
      process.stdout.write(`latency, median at batch 1 on ${r.latency.where}: ${timed}\n  ${r.latency.note}\n`);
    }
    process.stdout.write(`time: calibrate ${sec(r.timings.calibrate)}, convert ${sec(r.timings.convert)}, evaluate ${sec(r.timings.evaluate)}, total ${sec(r.timings.total)}\n`);
    process.stdout.write(`wrote:\n${[...r.artifacts, { file: outcome.files.report, bytes: fs.statSync(outcome.files.report).size, description: 'this report' }].map((a) => `  ${path.relative(process.cwd(), a.file)} (${mb(a.bytes)}): ${a.description}`).join('\n')}\n`);
  } finally {
    process.off('SIGINT', onSigint);
  }
}

function preflightSummary(p: Preflight): string {
  const c = p.counts;
  const parts = [`${c.quantized} quantized`, `${c.device} on ${p.device} unquantized`];
  if (p.device !== 'CPU') parts.push(`${c.cpu} on the CPU`);
  if (c.unsupported) parts.push(`${c.unsupported} unsupported`);
  return `${p.backend}: ${p.total} nodes — ${parts.join(', ')}; ${p.partitions} ${p.device} partition${p.partitions === 1 ? '' : 's'}`;
}

async function cmdPreflight(args: string[]): Promise<void> {
  const { values: v, positionals } = parse(args, {
    ...RECIPE_OPTIONS,
    json: { type: 'boolean' }, nodes: { type: 'boolean' },
  });
  if (positionals.length !== 1) throw new UsageError('preflight takes one MODEL');
  const recipe = buildRecipe(v);
  const outcome = preflightModel(positionals[0], recipe);
  const host = await hostNumerics();
  if (v.json) {
    process.stdout.write(JSON.stringify({ ...outcome, host }, null, 2) + '\n');
    return;
  }
  const p = outcome.preflight;
  const lines = [preflightSummary(p), `host: ${hostWords(host, recipe.backend)}`, ''];
  const ops = Object.entries(p.byOp).sort((a, b) => a[0].localeCompare(b[0]));
  const width = Math.max(8, ...ops.map(([op]) => op.length));
  lines.push(`${pad('op', width)}  quantized  ${pad(`on ${p.device}`, 14)}  cpu  unsupported`);
  for (const [op, c] of ops) lines.push(`${pad(op, width)}  ${pad(String(c.quantized), 9)}  ${pad(String(c.device), 14)}  ${pad(String(c.cpu), 3)}  ${c.unsupported}`);
  const notable = p.nodes.filter((n) => v.nodes || n.placement === 'cpu' || n.placement === 'unsupported');
  if (notable.length) {
    lines.push('', v.nodes ? 'nodes:' : 'nodes off the device:');
    for (const n of notable) lines.push(`  ${n.node} (${n.op}) ${n.placement}${n.reason ? `: ${n.reason}` : ''}`);
  }
  for (const problem of p.problems) lines.push(`problem: ${problem}`);
  if (outcome.cost) {
    const c = outcome.cost;
    lines.push('', `your exclusions/overrides: ${c.leftInteger.length} node(s) leave the integer path, ${c.leftDevice.length} leave ${p.device}; partitions ${c.partitions[0]} → ${c.partitions[1]}`);
    for (const n of c.leftDevice) lines.push(`  ${n.node} (${n.op}) → ${n.placement}: ${n.reason ?? ''}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}

function targetFrom(v: Flags): Target | undefined {
  if (v['target-sqnr'] !== undefined && v['target-metric'] !== undefined) throw new UsageError('give one target: --target-sqnr or --target-metric');
  if (v['target-sqnr'] !== undefined) {
    const value = Number(v['target-sqnr']);
    if (!Number.isFinite(value)) throw new UsageError(`--target-sqnr expects a number of dB, got "${v['target-sqnr']}"`);
    return { kind: 'sqnr', value };
  }
  if (v['target-metric'] !== undefined) {
    try {
      return { kind: 'metric', ...parseMetricTarget(v['target-metric'] as string) };
    } catch (err) {
      throw new UsageError(`--target-metric: ${(err as Error).message}`);
    }
  }
  return undefined;
}

function qualityLine(q: Quality): string {
  return `output ${formatDb(q.outputSqnr)} dB${Object.entries(q.metrics).map(([k, x]) => `, ${k} ${x.toFixed(4)}`).join('')} (${q.numerics}, ${q.samples} samples)`;
}

function outputLines(outputs: OutputReport[], metrics: Metrics | undefined, numerics: Numerics, where = ''): string {
  const lines = outputs.map((o) => `output ${o.name}: SQNR ${formatDb(o.sqnr)} dB in ${numerics} numerics${where} (max abs error ${o.maxAbsError.toPrecision(3)})`);
  if (metrics && Object.keys(metrics).length) lines.push(`metrics (${numerics}): ${Object.entries(metrics).map(([k, x]) => `${k} ${x.toFixed(4)}`).join(', ')}`);
  return lines.join('\n') + '\n';
}

function numericsFrom(v: Flags): MainNumerics | undefined {
  if (v.numerics === undefined) return undefined;
  if (!MAIN_NUMERICS.includes(v.numerics as MainNumerics)) throw new UsageError(`--numerics must be one of ${MAIN_NUMERICS.join(', ')}`);
  return v.numerics as MainNumerics;
}

function repairSummary(r: RepairReport, report: Report): string {
  const target = r.target.kind === 'sqnr' ? `output SQNR ≥ ${r.target.value} dB` : `${r.target.metric} ≥ ${r.target.value}`;
  const lines = [`repair (${target}, measured in ${r.numerics}): ${r.met ? 'met' : 'NOT met'} — ${r.reason}`, `  before: ${qualityLine(r.before)}`, `  after:  ${qualityLine(r.after)}`];
  for (const c of r.changes) lines.push(`  ${pad(c.action, 8)} ${c.name}${c.node ? ` (${c.op} ${c.node})` : ''}: ${c.why}`);
  lines.push(`  cost: ${repairCostWords(r, report)}`);
  lines.push(`  search: ${r.runs} runs on ${r.before.samples} samples, ${r.seconds.toFixed(1)} s`);
  return lines.join('\n') + '\n';
}

function analysisTable(r: AnalysisReport, top: number | undefined): string {
  const shown = r.sensitivity.slice(0, top ?? 20);
  const width = Math.min(50, Math.max(5, ...shown.map((l) => l.name.length)));
  const lines = [`${'rank'.padStart(4)}  ${pad('layer', width)}  ${pad('op', 14)}  ${'local dB'.padStart(8)}  ${'cumul dB'.padStart(8)}  ${'only-q dB'.padStart(9)}  ${'only-float dB'.padStart(13)}`];
  const cell = (d: Db | undefined, w: number) => (d === undefined ? '-' : formatDb(d)).padStart(w);
  for (const s of shown) {
    const name = s.name.length > width ? '…' + s.name.slice(-(width - 1)) : s.name;
    lines.push(`${String(s.rank).padStart(4)}  ${pad(name, width)}  ${pad(s.op, 14)}  ${cell(s.localSqnr, 8)}  ${cell(s.cumulativeSqnr, 8)}  ${cell(s.onlyQuantized, 9)}  ${cell(s.onlyFloat, 13)}`);
  }
  if (shown.length < r.sensitivity.length) lines.push(`… ${r.sensitivity.length - shown.length} more (--top to show more; ${r.skipped} not measured one by one: their local error is small)`);
  return lines.join('\n');
}

async function cmdAnalyze(args: string[]): Promise<void> {
  const { values: v, positionals } = parse(args, {
    ...RECIPE_OPTIONS,
    calibration: { type: 'string' }, eval: { type: 'string' }, ranges: { type: 'string' },
    subset: { type: 'string' }, candidates: { type: 'string' }, labels: { type: 'string' }, metric: { type: 'string' },
    batch: { type: 'string' }, report: { type: 'string' }, top: { type: 'string' }, json: { type: 'boolean' }, quiet: { type: 'boolean' },
    numerics: { type: 'string' },
    ...PREPROCESS_OPTIONS,
  });
  if (positionals.length !== 1) throw new UsageError('analyze takes one MODEL');
  if (v.metric !== undefined && !parseMetricName(v.metric as string)) throw new UsageError(`--metric must be one of top1-agreement, top5-agreement, argmax-agreement, cosine, accuracy, top5-accuracy`);
  const recipe = buildRecipe(v);
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  try {
    const r = await analyze({
      model: positionals[0], recipe, calibration: v.calibration as string | undefined, evaluation: v.eval as string | undefined,
      ranges: v.ranges as string | undefined, labels: v.labels as string | undefined, metric: v.metric as string | undefined, numerics: numericsFrom(v),
      samples: positiveInt(v.subset as string | undefined, '--subset') || undefined,
      candidates: positiveInt(v.candidates as string | undefined, '--candidates') || undefined,
      batchSize: positiveInt(v.batch as string | undefined, '--batch') || undefined, preprocess: preprocessFrom(v), report: v.report as string | undefined,
      signal: controller.signal, onProgress: progressPrinter(Boolean(v.quiet || v.json)),
      onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
    });
    if (v.json) {
      process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      return;
    }
    process.stdout.write(`${analysisTable(r, positiveInt(v.top as string | undefined, '--top'))}\n\n`);
    process.stdout.write(`all quantized: ${qualityLine(r.baseline)}\n`);
    if (r.firstDrop) process.stdout.write(`cumulative SQNR first drops sharply at ${r.firstDrop.name} (${r.firstDrop.node}): ${formatDb(r.firstDrop.from)} → ${formatDb(r.firstDrop.to)} dB\n`);
    process.stdout.write(`worst local SQNR: ${r.worstLocal.join(', ')}\n`);
    process.stdout.write(`${r.sensitivity.length} layers, ${r.sensitivity.length - r.skipped} measured one by one, ${r.runs} runs; time: prepare ${sec(r.timings.prepare)}, evaluate ${sec(r.timings.evaluate)}, sensitivity ${sec(r.timings.sensitivity)}, total ${sec(r.timings.total)}\n`);
    if (v.report) process.stdout.write(`wrote ${path.relative(process.cwd(), v.report as string)}\n`);
  } finally {
    process.off('SIGINT', onSigint);
  }
}

function parseMetricName(name: string): boolean {
  try {
    parseMetricTarget(`${name}:1`);
    return true;
  } catch {
    return false;
  }
}

function mb(bytes: number): string {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(2)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
}

function sec(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

async function cmdInspect(args: string[]): Promise<void> {
  const { values: v, positionals } = parse(args, { json: { type: 'boolean' }, nodes: { type: 'boolean' } });
  if (positionals.length !== 1) throw new UsageError('inspect takes one MODEL');
  const info = inspectModel(loadModel(positionals[0]));
  if (v.json) {
    process.stdout.write(JSON.stringify(v.nodes ? info : { ...info, nodes: undefined }, null, 2) + '\n');
    return;
  }
  const shape = (s?: Array<number | string>) => (s ? `[${s.join(', ')}]` : '[?]');
  const lines = [
    `model:      ${info.file}`,
    `size:       ${mb(info.bytes)}`,
    `IR:         ${info.irVersion}   opsets: ${info.opsets.map((o) => `${o.domain || 'ai.onnx'} ${o.version}`).join(', ')}`,
    `producer:   ${info.producer || '-'}`,
    `parameters: ${info.parameters.toLocaleString('en-US')}`,
    `nodes:      ${info.nodeCount}`,
    'inputs:',
    ...info.inputs.map((i) => `  ${i.name}: ${i.type} ${shape(i.shape)}`),
    'outputs:',
    ...info.outputs.map((o) => `  ${o.name}: ${o.type} ${shape(o.shape)}`),
    'ops:',
    ...Object.entries(info.ops).sort((a, b) => b[1] - a[1]).map(([op, n]) => `  ${pad(op, 24)} ${n}`),
  ];
  if (v.nodes) lines.push('nodes:', ...info.nodes.map((n) => `  ${pad(n.name, 40)} ${n.op}`));
  process.stdout.write(lines.join('\n') + '\n');
}

async function cmdEval(args: string[]): Promise<void> {
  const { values: v, positionals } = parse(args, {
    data: { type: 'string' }, batch: { type: 'string' }, json: { type: 'boolean' }, top: { type: 'string' }, quiet: { type: 'boolean' }, numerics: { type: 'string' },
  });
  if (positionals.length !== 2) throw new UsageError('eval takes FLOAT.onnx and QUANT.onnx');
  if (!v.data) throw new UsageError('eval needs --data SOURCE');
  const floatModel = loadModel(positionals[0]);
  const quantModel = loadModel(positionals[1]);
  const floatView = new GraphView(floatModel.model);
  const pairs = pairsFromQdq(floatView, new GraphView(quantModel.model));
  const inputs = inputSpecs(floatView);
  const source = openSource(v.data as string, inputs);
  for (const w of source.warnings) process.stderr.write(`warning: ${w}\n`);
  const numerics = numericsFrom(v) ?? 'reference';
  const result = await evaluate(floatModel.model, quantModel.model, pairs, source, {
    batchSize: positiveInt(v.batch as string | undefined, '--batch') || guessBatchSize(inputs), onProgress: progressPrinter(Boolean(v.quiet || v.json)),
    numerics, ...(numerics === 'ort-cpu' ? {} : { deployed: 'ort-cpu' as const }),
  });
  const layers = pairs.map((p) => ({ name: p.float, node: p.node, op: p.op, index: p.index, sqnr: dbToJson(result.layers.get(p.float)!.sqnr) }));
  const figures = (f: OutputFigures) => ({ numerics: f.numerics, outputs: f.outputs.map((o) => ({ name: o.name, sqnr: dbToJson(o.sqnr), maxAbsError: o.maxAbsError })) });
  const main = figures(result);
  const deployed = result.deployed && figures(result.deployed);
  if (v.json) {
    process.stdout.write(JSON.stringify({
      tool: TOOL, float: path.resolve(positionals[0]), quantized: path.resolve(positionals[1]), samples: result.samples, ...main, ...(deployed ? { deployed } : {}), layers,
    }, null, 2) + '\n');
    return;
  }
  process.stdout.write(`per-layer SQNR in ${numerics} numerics:\n${layerTable(layers, positiveInt(v.top as string | undefined, '--top'))}\n\n`);
  process.stdout.write(outputLines(main.outputs, undefined, main.numerics));
  if (deployed) process.stdout.write(outputLines(deployed.outputs, undefined, deployed.numerics, ', as deployed on this machine'));
  process.stdout.write(`${layers.length} QDQ tensors matched; ${result.samples} samples\n`);
}

async function cmdBackends(args: string[]): Promise<void> {
  const { values: v } = parse(args, { json: { type: 'boolean' } });
  if (v.json) {
    process.stdout.write(JSON.stringify(BACKENDS, null, 2) + '\n');
    return;
  }
  for (const b of BACKENDS) {
    process.stdout.write(`${b.name} — ${b.title}\n  ${b.description}\n  kinds: ${b.kinds.join(', ')}; activations: ${b.activationTypes.join(', ')}; weights: ${b.weightTypes.join(', ')}; granularity: ${b.granularities.join(', ')}\n  presets: ${b.presets.map((p) => `${p.name} (${p.title})`).join('; ')}\n  lowering: ${b.lowering}\n  latency: ${b.latency}\n\n`);
  }
}

/** Where the studio keeps its list of recent models. */
export function stateDir(): string {
  return path.join(process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config'), 'quant-studio');
}

async function cmdServe(args: string[]): Promise<void> {
  const { values: v, positionals } = parse(args, { port: { type: 'string' } });
  if (positionals.length) throw new UsageError('serve takes no positional arguments');
  const port = positiveInt(v.port as string | undefined, '--port');
  if (port !== undefined && port > 65535) throw new UsageError('--port must be at most 65535');
  const uiDir = path.join(__dirname, '..', 'ui');
  if (!fs.existsSync(path.join(uiDir, 'index.html'))) throw new Error(`${uiDir}: the studio UI is not built; run "npm run build" first`);
  const server = await startServer({ port, uiDir, sampleDir: path.join(__dirname, '..', '..', 'resources', 'sample'), stateDir: stateDir() });
  process.stdout.write(`Quant Studio is running at ${server.url}\n(127.0.0.1 only; the token in the URL is the key — Ctrl-C stops it)\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const debug = rest.includes('--debug');
  try {
    if (!command || command === '--help' || command === '-h' || command === 'help' || rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(USAGE + '\n');
      return command ? 0 : 2;
    }
    switch (command) {
      case 'quantize': await cmdQuantize(rest); break;
      case 'analyze': await cmdAnalyze(rest); break;
      case 'inspect': await cmdInspect(rest); break;
      case 'eval': await cmdEval(rest); break;
      case 'backends': await cmdBackends(rest); break;
      case 'preflight': await cmdPreflight(rest); break;
      case 'serve': await cmdServe(rest); break;
      case '--version': process.stdout.write(`${TOOL.version}\n`); break;
      default: throw new UsageError(`unknown command "${command}"`);
    }
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`quant-studio: ${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    if (err instanceof CancelledError) {
      process.stderr.write('\nquant-studio: cancelled; nothing was written\n');
      return 130;
    }
    process.stderr.write(`\nquant-studio: ${(err as Error).message}\n`);
    if (debug) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
