// quant-studio: the command line over the engine.
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { ENGINE_CHILD_ENV, exitWithParent, runInChild } from './isolated';
import { startServer } from './serve';
import { BACKENDS, findBackend, recipeFor } from '../shared/backends';
import { describeTarget, isTargetMetric, parseMetricTarget, TARGET_METRICS, type Target } from '../shared/metrics';
import { hostWords, MAIN_NUMERICS, type MainNumerics, type Numerics } from '../shared/numerics';
import type { Preflight } from '../shared/preflight';
import { INTERPOLATIONS, preprocessProblem, RESIZE_MODES, type PreprocessSpec } from '../shared/preprocess';
import { countedUnit, type Progress } from '../shared/progress';
import { adaRoundIterations, GPTQ_DEFAULTS, QUANT_KINDS, QUANT_TYPES, validateRecipe, type Recipe } from '../shared/recipe';
import {
  adaRoundWords, biasCorrectionSource, foldedWeightsWords, gptqWords, smoothQuantWords, biasErrorRms, dbNumber, formatDb, repairCostWords, weightChangeWords, withoutWords, type AdaRoundReport, type AnalysisReport, type BiasCorrectionReport, type CleReport, type CustomMetricReport, type Db, type LayerReport, type Metrics, type OutputReport, type Quality, type RepairReport, type Report, type WeightChange,
} from '../shared/report';
import { TOOL } from '../shared/tool';
import { analyze, CancelledError, evalPair, inspect, preflightWithHost, quantize } from '../main/jobs';

class UsageError extends Error {}

const USAGE = `usage: quant-studio <command> [options]

commands:
  inspect MODEL [--json] [--nodes]
      inputs/outputs, opset/IR, op histogram, parameter count, size (--nodes lists every node)
  quantize MODEL --backend NAME [--preset NAME] [--recipe FILE] [--kind static|dynamic|weight-only]
           [--act TYPE] [--weight TYPE] [--granularity per-tensor|per-channel|per-block:N]
           [--method minmax|moving-average[:M]|percentile:P|entropy[:BINS]|mse]
           [--calibration SOURCE] [--eval SOURCE | --hold-out FRACTION] [--ranges FILE] [--exclude NODE,...]
           [--override TENSOR=float|TYPE|per-tensor|per-channel ...] [--reduce-range] [--cle] [--bias-correction] [--adaround[:ITERS]] [--gptq[:BLOCK] [--no-act-order]] [--smoothquant[:ALPHA]] [--activation-matmuls]
           [--qoperator] [--no-latency]
           [--samples N] [--batch N] [--out OUT.onnx] [--report REPORT.json] [--top N] [--json]
           [--numerics reference|ort-cpu] [--no-saturation-fix] [data options]
           [--target-sqnr DB | --target-metric NAME:VALUE] [--labels FILE|DIR] [--metric-module FILE.mjs] [--subset N]
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
  analyze MODEL --backend NAME [recipe options as for quantize] [--calibration SOURCE | --ranges FILE] [--eval SOURCE | --hold-out FRACTION]
          [--subset N] [--candidates N] [--labels FILE|DIR] [--metric-module FILE.mjs] [--metric NAME] [--numerics reference|ort-cpu]
          [--report FILE] [--top N] [--json] [data options]
      local and cumulative SQNR per layer and the sensitivity ranking on N evaluation samples (--subset, default: all up to 32):
      each of the --candidates layers with the worst local SQNR alone in float and alone quantized
  eval FLOAT.onnx QUANT.onnx --data SOURCE [--batch N] [--numerics reference|ort-cpu] [--labels FILE|DIR] [--metric-module FILE.mjs]
       [--json] [--top N] [data options]
      per-layer and output SQNR of any float/QDQ pair, including other tools' models; the outputs also as
      ONNX Runtime's CPU kernels run them on this machine; task metrics, with --labels and --metric-module too
  backends [--json]
      the backends and what each supports
  serve [--port N]
      the studio in a browser: serves the UI and its API on 127.0.0.1 and prints the URL (with its access token)

NAME:   ${TARGET_METRICS.join(', ')} (accuracy needs --labels of class ids; custom is the score of
        --metric-module FILE.mjs, whose default export is { name, score({ float, quantized, labels }) } —
        see resources/metrics/ — on the module's own scale)
LABELS: a .npy of class ids, a folder with one subfolder of images per class, or a .json array with
        one label per sample (any values, e.g. each line's text, for a metric module); one per evaluation
        sample, or with --hold-out one per calibration sample
FRACTION: --hold-out 0.25 keeps a quarter of the calibration samples, every fourth in reading order (so a
        folder per class gives some of each), for evaluation: calibration never sees them, so the
        figures are not flattered by the data
SOURCE: a .npy file (first axis = samples), a folder of .npy files, a folder of images, a JSON manifest
        mapping input names to sources, or random:N (poor ranges; for trying things out)
data options, for every command that reads a SOURCE:
        [--size HxW] [--mean R,G,B] [--std R,G,B] [--layout NCHW|NHWC] [--channels RGB|BGR|GRAY]
        [--resize stretch|shorter-side-then-center-crop|pad] [--interpolation ${INTERPOLATIONS.join('|')}]
            images (PNG, JPEG, WebP, TIFF, AVIF, GIF; EXIF orientation applied) are resized as the library the
            model was trained with does, to the level: bilinear/bicubic/nearest are Pillow's (torchvision on PIL
            images), opencv-linear is cv2.resize INTER_LINEAR; default stretch, bilinear
        [--max-megapixels N]  images over N decoded megapixels are refused from their header (default 50)
        [--skip-nonfinite]    drop samples holding NaN, ±Inf or values beyond ±1e18 instead of refusing the data
TYPE:   ${QUANT_TYPES.join(', ')}
common: --debug prints stack traces; exit codes: 0 success, 1 failure, 2 usage`;

type OptionSpec = { type: 'string' } | { type: 'boolean' } | { type: 'string'; multiple: true };

/** The values parseArgs gives for declared options: a string, a list of strings, or a boolean, each absent when not given. */
type Values<O extends Record<string, OptionSpec>> = { [K in keyof O]?: O[K] extends { type: 'boolean' } ? boolean : O[K] extends { multiple: true } ? string[] : string };

/** `--adaround` alone or `--adaround:ITERS` (and `--gptq[:BLOCK]`, `--smoothquant[:ALPHA]`), like `--method entropy:BINS`: parseArgs takes it as `--adaround=ITERS`, empty for the default. */
function withOptionalValues(args: string[]): string[] {
  return args.map((a) => a.replace(/^--(adaround|gptq|smoothquant)(?::(.*))?$/, (_, flag: string, n: string | undefined) => `--${flag}=${n ?? ''}`));
}

function parse<O extends Record<string, OptionSpec>>(args: string[], options: O): { values: Values<O>; positionals: string[] } {
  try {
    const parsed = parseArgs({ args: withOptionalValues(args), options: { ...options, debug: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    // parseArgs types its values from the options' literal types, which a generic O hides from it.
    return { values: parsed.values as Values<O>, positionals: parsed.positionals };
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
    const unit = countedUnit(p.stage, p.unit);
    const rate = p.rate ? `, ${p.rate.toFixed(1)} ${unit ?? 'samples'}/s` : '';
    const line = unit ? `${p.stage}: ${p.done}/${p.total}${rate}${left}` : `${p.stage}${finished ? ': done' : '…'}`;
    if (line === last) return;
    last = line;
    process.stderr.write(tty ? `\r\x1b[K${line}${finished ? '\n' : ''}` : `${line}\n`);
  };
}

/**
 * Text from a model or from data (names, ops, messages quoting them) as the terminal shows it: its
 * control characters escaped, so that a name cannot retitle the terminal or print lines of its own.
 */
function tty(text: string): string {
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function layerTable(layers: Array<Pick<LayerReport, 'name' | 'op' | 'sqnr' | 'weightSqnr'>>, top: number | undefined): string {
  const sorted = [...layers].sort((a, b) => dbNumber(a.sqnr) - dbNumber(b.sqnr));
  const shown = top !== undefined ? sorted.slice(0, top) : sorted;
  const width = Math.min(60, Math.max(5, ...shown.map((l) => tty(l.name).length)));
  const lines = [`${pad('layer', width)}  ${pad('op', 20)}  ${'SQNR dB'.padStart(8)}  ${'weight dB'.padStart(9)}`];
  for (const l of shown) {
    const shownName = tty(l.name);
    const name = shownName.length > width ? '…' + shownName.slice(-(width - 1)) : shownName;
    lines.push(`${pad(name, width)}  ${pad(tty(l.op), 20)}  ${formatDb(l.sqnr).padStart(8)}  ${(l.weightSqnr === undefined ? '' : formatDb(l.weightSqnr)).padStart(9)}`);
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

function preprocessFrom(v: Values<typeof PREPROCESS_OPTIONS>): PreprocessSpec | undefined {
  const pre: PreprocessSpec = {};
  const size = numberList(v.size, '--size', 2);
  if (size) pre.size = [size[0], size[1]];
  const mean = numberList(v.mean, '--mean', 3);
  if (mean) pre.mean = [mean[0], mean[1], mean[2]];
  const std = numberList(v.std, '--std', 3);
  if (std) pre.std = [std[0], std[1], std[2]];
  const layout = choice('layout', v.layout, ['NCHW', 'NHWC'] as const);
  if (layout) pre.layout = layout;
  const channels = choice('channels', v.channels, ['RGB', 'BGR', 'GRAY'] as const);
  if (channels) pre.channels = channels;
  const resize = choice('resize', v.resize, RESIZE_MODES);
  if (resize) pre.resize = resize;
  const interpolation = choice('interpolation', v.interpolation, INTERPOLATIONS);
  if (interpolation) pre.interpolation = interpolation;
  const problem = preprocessProblem(pre, 'image preprocessing');
  if (problem) throw new UsageError(problem);
  return Object.keys(pre).length ? pre : undefined;
}

function dataOptionsFrom(v: Values<typeof PREPROCESS_OPTIONS>): { skipNonFinite?: boolean; maxMegapixels?: number } {
  const cap = v['max-megapixels'];
  const maxMegapixels = cap === undefined ? undefined : Number(cap);
  if (maxMegapixels !== undefined && !(maxMegapixels > 0)) throw new UsageError(`--max-megapixels must be a positive number, got "${cap}"`);
  return { skipNonFinite: v['skip-nonfinite'], maxMegapixels };
}

/** A flag's value checked against the values it may take. */
function choice<T extends string>(flag: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  const found = allowed.find((a) => a === value);
  if (!found) throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}`);
  return found;
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
  cle: { type: 'boolean' }, 'bias-correction': { type: 'boolean' }, adaround: { type: 'string' }, gptq: { type: 'string' }, 'no-act-order': { type: 'boolean' }, smoothquant: { type: 'string' }, 'activation-matmuls': { type: 'boolean' },
} as const;

/** The flags preprocessFrom and dataOptionsFrom read: how every command that reads data reads it. */
const PREPROCESS_OPTIONS = {
  size: { type: 'string' }, mean: { type: 'string' }, std: { type: 'string' }, layout: { type: 'string' }, channels: { type: 'string' },
  resize: { type: 'string' }, interpolation: { type: 'string' }, 'max-megapixels': { type: 'string' }, 'skip-nonfinite': { type: 'boolean' },
} as const;

/** The flags targetFrom reads. */
const TARGET_OPTIONS = { 'target-sqnr': { type: 'string' }, 'target-metric': { type: 'string' } } as const;

const QUANTIZE_OPTIONS = {
  ...RECIPE_OPTIONS, ...PREPROCESS_OPTIONS, ...TARGET_OPTIONS,
  calibration: { type: 'string' }, eval: { type: 'string' }, 'hold-out': { type: 'string' }, ranges: { type: 'string' },
  batch: { type: 'string' }, out: { type: 'string' }, report: { type: 'string' },
  top: { type: 'string' }, json: { type: 'boolean' }, quiet: { type: 'boolean' },
  qoperator: { type: 'boolean' }, 'no-latency': { type: 'boolean' }, labels: { type: 'string' }, subset: { type: 'string' },
  numerics: { type: 'string' }, 'no-saturation-fix': { type: 'boolean' }, 'metric-module': { type: 'string' },
} as const;

const ANALYZE_OPTIONS = {
  ...RECIPE_OPTIONS, ...PREPROCESS_OPTIONS,
  calibration: { type: 'string' }, eval: { type: 'string' }, 'hold-out': { type: 'string' }, ranges: { type: 'string' },
  subset: { type: 'string' }, candidates: { type: 'string' }, labels: { type: 'string' }, metric: { type: 'string' },
  batch: { type: 'string' }, report: { type: 'string' }, top: { type: 'string' }, json: { type: 'boolean' }, quiet: { type: 'boolean' },
  numerics: { type: 'string' }, 'metric-module': { type: 'string' },
} as const;

/** --hold-out: a fraction of the calibration samples, in (0, 1). */
function holdOutFrom(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const fraction = Number(text);
  if (!(fraction > 0 && fraction < 1)) throw new UsageError(`--hold-out ${text}: give the fraction of calibration samples kept for evaluation, between 0 and 1 (e.g. 0.25)`);
  return fraction;
}

function buildRecipe(v: Values<typeof RECIPE_OPTIONS>): Recipe {
  let recipe: Recipe;
  if (v.recipe) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(fs.readFileSync(v.recipe, 'utf8'));
    } catch (err) {
      throw new Error(`${v.recipe}: not a readable recipe (${(err as Error).message})`);
    }
    recipe = validateRecipe(parsed, v.recipe);
    if (v.backend && v.backend !== recipe.backend) recipe = { ...recipe, backend: v.backend };
  } else {
    if (!v.backend) throw new UsageError(`--backend is required (one of ${BACKENDS.map((b) => b.name).join(', ')})`);
    if (!findBackend(v.backend)) throw new UsageError(`unknown backend "${v.backend}"; known: ${BACKENDS.map((b) => b.name).join(', ')}`);
    try {
      recipe = recipeFor(v.backend, v.preset);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    if (v.kind && !v.preset) {
      const preset = findBackend(recipe.backend)!.presets.find((p) => p.recipe.kind === v.kind);
      if (preset) recipe = recipeFor(recipe.backend, preset.name);
    }
  }
  const kind = choice('kind', v.kind, QUANT_KINDS);
  if (kind) recipe.kind = kind;
  for (const [flag, key] of [['act', 'activationType'], ['weight', 'weightType']] as const) {
    const t = choice(flag, v[flag], QUANT_TYPES);
    if (t) recipe[key] = t;
  }
  if (v.granularity) {
    const g = v.granularity;
    const m = /^per-block(?::(\d+))?$/.exec(g);
    if (m) {
      recipe.granularity = 'per-block';
      if (m[1]) recipe.blockSize = Number(m[1]);
    } else if (g === 'per-tensor' || g === 'per-channel') {
      recipe.granularity = g;
    } else {
      throw new UsageError('--granularity must be per-tensor, per-channel or per-block:N');
    }
  }
  if (v.method) recipe.method = v.method;
  if (v['reduce-range']) recipe.reduceRange = true;
  if (v['activation-matmuls']) recipe.activationMatMuls = true;
  if (v.cle) recipe.algorithms = { ...recipe.algorithms, cle: true };
  if (v['bias-correction']) recipe.algorithms = { ...recipe.algorithms, biasCorrection: true };
  if (v.adaround !== undefined) {
    const iterations = v.adaround === '' ? adaRoundIterations(recipe.granularity) : Number(v.adaround);
    if (!Number.isInteger(iterations) || iterations < 1) throw new UsageError(`--adaround:ITERS takes a whole number of iterations of at least 1, got "${v.adaround}"`);
    recipe.algorithms = { ...recipe.algorithms, adaround: { iterations } };
  }
  if (v.smoothquant !== undefined) {
    const alpha = v.smoothquant === '' ? undefined : Number(v.smoothquant);
    if (alpha !== undefined && !(alpha > 0 && alpha < 1)) throw new UsageError(`--smoothquant:ALPHA takes α between 0 and 1 (e.g. 0.5), got "${v.smoothquant}"; without it α is searched`);
    recipe.algorithms = { ...recipe.algorithms, smoothquant: alpha === undefined ? {} : { alpha } };
  }
  if (v.gptq !== undefined) {
    if (v.gptq !== '') {
      const block = Number(v.gptq);
      if (![16, 32, 64, 128, 256].includes(block)) throw new UsageError(`--gptq:BLOCK takes the 4-bit block size, 16, 32, 64, 128 or 256, got "${v.gptq}"`);
      recipe.blockSize = block;
    }
    recipe.algorithms = { ...recipe.algorithms, gptq: { ...GPTQ_DEFAULTS, actOrder: !v['no-act-order'] } };
  } else if (v['no-act-order']) {
    throw new UsageError('--no-act-order applies to --gptq');
  }
  for (const o of (v.override) ?? []) {
    const m = /^(.+)=(float|per-tensor|per-channel|[a-z0-9]+)$/.exec(o);
    if (!m) throw new UsageError(`--override ${o}: expected TENSOR=float, TENSOR=TYPE (${QUANT_TYPES.join(', ')}), TENSOR=per-tensor or TENSOR=per-channel`);
    const [, tensor, what] = m;
    const current = { ...recipe.overrides[tensor] };
    if (what === 'float') current.float = true;
    else if (what === 'per-tensor' || what === 'per-channel') current.granularity = what;
    else if (QUANT_TYPES.some((t) => t === what)) current.type = choice('override', what, QUANT_TYPES);
    else throw new UsageError(`--override ${o}: "${what}" is not float, a type (${QUANT_TYPES.join(', ')}), per-tensor or per-channel`);
    recipe.overrides = { ...recipe.overrides, [tensor]: current };
  }
  if (v.exclude) recipe.excludeNodes = [...new Set([...recipe.excludeNodes, ...v.exclude.split(',').map((s) => s.trim()).filter(Boolean)])];
  const samples = positiveInt(v.samples, '--samples');
  if (samples !== undefined) recipe.calibrationSamples = samples;
  return recipe;
}

async function cmdQuantize(args: string[]): Promise<void> {
  const { values: v, positionals } = parse(args, QUANTIZE_OPTIONS);
  if (positionals.length !== 1) throw new UsageError('quantize takes one MODEL');
  const target = targetFrom(v);
  const recipe = buildRecipe(v);
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.on('SIGINT', onSigint);
  try {
    const outcome = await quantize({
      model: positionals[0], recipe, calibration: v.calibration, evaluation: v.eval, holdOut: holdOutFrom(v['hold-out']),
      ranges: v.ranges, out: v.out, report: v.report,
      batchSize: positiveInt(v.batch, '--batch') || undefined, preprocess: preprocessFrom(v),
      latency: !v['no-latency'], qoperator: Boolean(v.qoperator),
      signal: controller.signal, onProgress: progressPrinter(Boolean(v.quiet || v.json)),
      onWarning: (m) => process.stderr.write(`warning: ${tty(m)}\n`),
      target, labels: v.labels, metricModule: v['metric-module'], searchSamples: positiveInt(v.subset, '--subset') || undefined,
      numerics: numericsFrom(v), saturationFix: !v['no-saturation-fix'], ...dataOptionsFrom(v),
      onStep: v.quiet || v.json ? undefined : (m) => process.stderr.write(`${tty(m)}\n`),
    });
    const r = outcome.report;
    if (v.json) {
      process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      return;
    }
    const top = positiveInt(v.top, '--top');
    process.stdout.write(`per-layer SQNR in ${r.numerics} numerics on ${r.samples.evaluation} evaluation samples:\n${layerTable(r.layers, top)}\n\n`);
    process.stdout.write(outputLines(r.outputs, r.metrics, r.numerics));
    if (r.customMetric) process.stdout.write(customLine(r.customMetric));
    if (r.deployed) {
      process.stdout.write(outputLines(r.deployed.outputs, r.deployed.metrics, r.deployed.numerics, ', as deployed on this machine'));
      if (r.deployed.note) process.stdout.write(`  ${r.deployed.note}\n`);
    }
    process.stdout.write(`host: ${hostWords(r.host, r.backend)}\n`);
    if (r.host.saturationFix) process.stdout.write(`  ${r.host.saturationFix.words}\n`);
    if (r.host.webgpu) process.stdout.write(`  ${r.host.webgpu}\n`);
    if (r.repair) process.stdout.write(repairSummary(r.repair, r));
    if (r.algorithms?.cle) process.stdout.write(cleSummary(r.algorithms.cle));
    if (r.algorithms?.biasCorrection) process.stdout.write(biasCorrectionSummary(r.algorithms.biasCorrection));
    if (r.algorithms?.adaround) process.stdout.write(adaRoundSummary(r.algorithms.adaround));
    if (r.algorithms?.gptq) process.stdout.write(`GPTQ: ${gptqWords(r.algorithms.gptq)}\n`);
    if (r.algorithms?.smoothquant) process.stdout.write(`SmoothQuant: ${smoothQuantWords(r.algorithms.smoothquant)}\n`);
    if (r.algorithms?.without) process.stdout.write(`algorithms ${withoutWords(r.algorithms.without, r)}\n`);
    if (r.algorithms?.withoutNote) process.stdout.write(`the algorithms' per-layer baseline: ${r.algorithms.withoutNote}\n`);
    if (r.foldedWeights) process.stdout.write(`prepare: ${foldedWeightsWords(r.foldedWeights)}\n`);
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
  const outcome = await preflightWithHost(positionals[0], recipe);
  if (v.json) {
    process.stdout.write(JSON.stringify(outcome, null, 2) + '\n');
    return;
  }
  const p = outcome.preflight;
  const lines = [preflightSummary(p), `host: ${hostWords(outcome.host, recipe.backend)}`, ''];
  const ops = Object.entries(p.byOp).sort((a, b) => a[0].localeCompare(b[0])).map(([op, c]) => [tty(op), c] as const);
  const width = Math.max(8, ...ops.map(([op]) => op.length));
  lines.push(`${pad('op', width)}  quantized  ${pad(`on ${p.device}`, 14)}  cpu  unsupported`);
  for (const [op, c] of ops) lines.push(`${pad(op, width)}  ${pad(String(c.quantized), 9)}  ${pad(String(c.device), 14)}  ${pad(String(c.cpu), 3)}  ${c.unsupported}`);
  const notable = p.nodes.filter((n) => v.nodes || n.placement === 'cpu' || n.placement === 'unsupported');
  if (notable.length) {
    lines.push('', v.nodes ? 'nodes:' : 'nodes off the device:');
    for (const n of notable) lines.push(`  ${tty(n.node)} (${tty(n.op)}) ${n.placement}${n.reason ? `: ${tty(n.reason)}` : ''}`);
  }
  for (const problem of p.problems) lines.push(`problem: ${tty(problem)}`);
  if (outcome.cost) {
    const c = outcome.cost;
    lines.push('', `your exclusions/overrides: ${c.leftInteger.length} node(s) leave the integer path, ${c.leftDevice.length} leave ${p.device}; partitions ${c.partitions[0]} → ${c.partitions[1]}`);
    for (const n of c.leftDevice) lines.push(`  ${tty(n.node)} (${tty(n.op)}) → ${n.placement}: ${tty(n.reason ?? '')}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}

function targetFrom(v: Values<typeof TARGET_OPTIONS>): Target | undefined {
  if (v['target-sqnr'] !== undefined && v['target-metric'] !== undefined) throw new UsageError('give one target: --target-sqnr or --target-metric');
  if (v['target-sqnr'] !== undefined) {
    const value = Number(v['target-sqnr']);
    if (!Number.isFinite(value)) throw new UsageError(`--target-sqnr expects a number of dB, got "${v['target-sqnr']}"`);
    return { kind: 'sqnr', value };
  }
  if (v['target-metric'] !== undefined) {
    try {
      return parseMetricTarget(v['target-metric']);
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
  const lines = outputs.map((o) => `output ${tty(o.name)}: SQNR ${formatDb(o.sqnr)} dB in ${numerics} numerics${where} (max abs error ${o.maxAbsError.toPrecision(3)})`);
  if (metrics && Object.keys(metrics).length) lines.push(`metrics (${numerics}): ${Object.entries(metrics).map(([k, x]) => `${k} ${x.toFixed(4)}`).join(', ')}`);
  return lines.join('\n') + '\n';
}

/** What `custom` in the metrics line is. */
function customLine(c: CustomMetricReport): string {
  return `custom: ${tty(c.name)} (${tty(path.relative(process.cwd(), c.module))}); float-custom: the same on the float model\n`;
}

function numericsFrom(v: { numerics?: string }): MainNumerics | undefined {
  return choice('numerics', v.numerics, MAIN_NUMERICS);
}

function cleSummary(cle: CleReport): string {
  const change = (c: WeightChange | undefined) => weightChangeWords(c, ' dB');
  const absorbed = cle.pairs.some((p) => p.absorbed);
  const exact = absorbed ? 'the scaling leaves the float outputs unchanged; high-bias absorption changes them where a channel falls below its BatchNorm mean − 3 std' : 'float outputs unchanged';
  const lines = [`cross-layer equalization: ${cle.pairs.length} Conv pairs rescaled in ${cle.seconds.toFixed(2)} s (${exact}); weight SQNR before → after:`];
  for (const p of cle.pairs) lines.push(`  ${tty(p.first)} ${change(p.weightSqnr.first)}  →${p.via.map((v) => ` ${tty(v)} →`).join('')}  ${tty(p.second)} ${change(p.weightSqnr.second)}${p.absorbed ? `; high bias of ${p.absorbed} channels absorbed` : ''}`);
  if (!cle.pairs.length) lines.push('  none: no Conv reaches another Conv alone through nothing but Relu, LeakyRelu, PRelu or pooling');
  return lines.join('\n') + '\n';
}

function biasCorrectionSummary(b: BiasCorrectionReport): string {
  const total = (k: 'before' | 'after') => biasErrorRms(b, k);
  const worst = [...b.layers].sort((x, y) => y.before - x.before).slice(0, 3);
  return `bias correction: ${biasCorrectionSource(b)}, ${b.seconds.toFixed(1)} s; RMS mean output error${b.method === 'analytic' ? ' (predicted)' : ''} ${total('before').toPrecision(3)} → ${total('after').toPrecision(3)}`
    + `${worst.length ? ` (largest: ${worst.map((l) => `${tty(l.node)} ${l.before.toPrecision(3)} → ${l.after.toPrecision(3)}`).join(', ')})` : ''}\n`;
}

function adaRoundSummary(a: AdaRoundReport): string {
  const worst = [...a.layers].sort((x, y) => (Number(x.outputSqnr.before) || 0) - (Number(y.outputSqnr.before) || 0)).slice(0, 3);
  return `AdaRound: ${adaRoundWords(a)}${worst.length ? ` (worst before: ${worst.map((l) => `${tty(l.node)} ${weightChangeWords(l.outputSqnr, ' dB')}`).join(', ')})` : ''}\n`;
}

function repairSummary(r: RepairReport, report: Report): string {
  const target = describeTarget(r.target);
  const lines = [`repair (${target}, measured in ${r.numerics}): ${r.met ? 'met' : 'NOT met'} — ${tty(r.reason)}`, `  before: ${qualityLine(r.before)}`, `  after:  ${qualityLine(r.after)}`];
  for (const c of r.changes) lines.push(`  ${pad(c.action, 8)} ${tty(c.name)}${c.node ? ` (${tty(c.op)} ${tty(c.node)})` : ''}: ${tty(c.why)}`);
  lines.push(`  cost: ${repairCostWords(r, report)}`);
  lines.push(`  search: ${r.runs} runs on ${r.before.samples} samples, ${r.seconds.toFixed(1)} s`);
  return lines.join('\n') + '\n';
}

function analysisTable(r: AnalysisReport, top: number | undefined): string {
  const shown = r.sensitivity.slice(0, top ?? 20);
  const width = Math.min(50, Math.max(5, ...shown.map((l) => tty(l.name).length)));
  const lines = [`${'rank'.padStart(4)}  ${pad('layer', width)}  ${pad('op', 14)}  ${'local dB'.padStart(8)}  ${'cumul dB'.padStart(8)}  ${'only-q dB'.padStart(9)}  ${'only-float dB'.padStart(13)}`];
  const cell = (d: Db | undefined, w: number) => (d === undefined ? '-' : formatDb(d)).padStart(w);
  for (const s of shown) {
    const shownName = tty(s.name);
    const name = shownName.length > width ? '…' + shownName.slice(-(width - 1)) : shownName;
    lines.push(`${String(s.rank).padStart(4)}  ${pad(name, width)}  ${pad(tty(s.op), 14)}  ${cell(s.localSqnr, 8)}  ${cell(s.cumulativeSqnr, 8)}  ${cell(s.onlyQuantized, 9)}  ${cell(s.onlyFloat, 13)}`);
  }
  if (shown.length < r.sensitivity.length) lines.push(`… ${r.sensitivity.length - shown.length} more (--top to show more; ${r.skipped} not measured one by one: their local error is small)`);
  return lines.join('\n');
}

async function cmdAnalyze(args: string[]): Promise<void> {
  const { values: v, positionals } = parse(args, ANALYZE_OPTIONS);
  if (positionals.length !== 1) throw new UsageError('analyze takes one MODEL');
  if (v.metric !== undefined && !isTargetMetric(v.metric)) throw new UsageError(`--metric must be one of ${TARGET_METRICS.join(', ')}`);
  const recipe = buildRecipe(v);
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.on('SIGINT', onSigint);
  try {
    const r = await analyze({
      model: positionals[0], recipe, calibration: v.calibration, evaluation: v.eval, holdOut: holdOutFrom(v['hold-out']),
      ranges: v.ranges, labels: v.labels, metricModule: v['metric-module'], metric: v.metric, numerics: numericsFrom(v), ...dataOptionsFrom(v),
      samples: positiveInt(v.subset, '--subset') || undefined,
      candidates: positiveInt(v.candidates, '--candidates') || undefined,
      batchSize: positiveInt(v.batch, '--batch') || undefined, preprocess: preprocessFrom(v), report: v.report,
      signal: controller.signal, onProgress: progressPrinter(Boolean(v.quiet || v.json)),
      onWarning: (m) => process.stderr.write(`warning: ${tty(m)}\n`),
    });
    if (v.json) {
      process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      return;
    }
    process.stdout.write(`${analysisTable(r, positiveInt(v.top, '--top'))}\n\n`);
    process.stdout.write(`all quantized: ${qualityLine(r.baseline)}\n`);
    if (r.firstDrop) process.stdout.write(`cumulative SQNR first drops sharply at ${tty(r.firstDrop.name)} (${tty(r.firstDrop.node)}): ${formatDb(r.firstDrop.from)} → ${formatDb(r.firstDrop.to)} dB\n`);
    process.stdout.write(`worst local SQNR: ${r.worstLocal.map(tty).join(', ')}\n`);
    process.stdout.write(`${r.sensitivity.length} layers, ${r.sensitivity.length - r.skipped} measured one by one, ${r.runs} runs; time: prepare ${sec(r.timings.prepare)}, evaluate ${sec(r.timings.evaluate)}, sensitivity ${sec(r.timings.sensitivity)}, total ${sec(r.timings.total)}\n`);
    if (v.report) process.stdout.write(`wrote ${path.relative(process.cwd(), v.report)}\n`);
  } finally {
    process.off('SIGINT', onSigint);
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
  const info = inspect(positionals[0]);
  if (v.json) {
    process.stdout.write(JSON.stringify(v.nodes ? info : { ...info, nodes: undefined }, null, 2) + '\n');
    return;
  }
  const shape = (s?: Array<number | string>) => (s ? `[${s.join(', ')}]` : '[?]');
  const lines = [
    `model:      ${info.file}`,
    `size:       ${mb(info.bytes)}`,
    `IR:         ${info.irVersion}   opsets: ${info.opsets.map((o) => `${tty(o.domain) || 'ai.onnx'} ${o.version}`).join(', ')}`,
    `producer:   ${tty(info.producer) || '-'}`,
    `parameters: ${info.parameters.toLocaleString('en-US')}`,
    `nodes:      ${info.nodeCount}`,
    'inputs:',
    ...info.inputs.map((i) => `  ${tty(i.name)}: ${i.type} ${tty(shape(i.shape))}`),
    'outputs:',
    ...info.outputs.map((o) => `  ${tty(o.name)}: ${o.type} ${tty(shape(o.shape))}`),
    'ops:',
    ...Object.entries(info.ops).sort((a, b) => b[1] - a[1]).map(([op, n]) => `  ${pad(tty(op), 24)} ${n}`),
  ];
  if (v.nodes) lines.push('nodes:', ...info.nodes.map((n) => `  ${pad(tty(n.name), 40)} ${tty(n.op)}`));
  process.stdout.write(lines.join('\n') + '\n');
}

async function cmdEval(args: string[]): Promise<void> {
  const { values: v, positionals } = parse(args, {
    data: { type: 'string' }, batch: { type: 'string' }, json: { type: 'boolean' }, top: { type: 'string' }, quiet: { type: 'boolean' }, numerics: { type: 'string' },
    labels: { type: 'string' }, 'metric-module': { type: 'string' }, ...PREPROCESS_OPTIONS,
  } as const);
  if (positionals.length !== 2) throw new UsageError('eval takes FLOAT.onnx and QUANT.onnx');
  if (!v.data) throw new UsageError('eval needs --data SOURCE');
  const r = await evalPair({
    float: positionals[0], quantized: positionals[1], data: v.data, preprocess: preprocessFrom(v), ...dataOptionsFrom(v), batchSize: positiveInt(v.batch, '--batch') || undefined, numerics: numericsFrom(v),
    labels: v.labels, metricModule: v['metric-module'],
    onProgress: progressPrinter(Boolean(v.quiet || v.json)), onWarning: (m) => process.stderr.write(`warning: ${tty(m)}\n`),
  });
  if (v.json) {
    process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    return;
  }
  process.stdout.write(`per-layer SQNR in ${r.numerics} numerics:\n${layerTable(r.layers, positiveInt(v.top, '--top'))}\n\n`);
  process.stdout.write(outputLines(r.outputs, r.metrics, r.numerics));
  if (r.customMetric) process.stdout.write(customLine(r.customMetric));
  if (r.deployed) process.stdout.write(outputLines(r.deployed.outputs, r.deployed.metrics, r.deployed.numerics, ', as deployed on this machine'));
  process.stdout.write(`${r.layers.length} QDQ tensors matched; ${r.samples} samples\n`);
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
  const port = positiveInt(v.port, '--port');
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

/** Commands that run the engine, each in a child process (isolated.ts). */
const ENGINE_COMMANDS = new Set(['quantize', 'analyze', 'eval', 'inspect', 'preflight']);
const BIN = path.join(__dirname, '..', '..', 'bin', 'quant-studio.js');

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const debug = rest.includes('--debug');
  try {
    if (!command || command === '--help' || command === '-h' || command === 'help' || rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(USAGE + '\n');
      return command ? 0 : 2;
    }
    if (ENGINE_COMMANDS.has(command) && !process.env[ENGINE_CHILD_ENV]) return await runInChild(BIN, argv, (m) => process.stderr.write(m));
    if (process.env[ENGINE_CHILD_ENV]) exitWithParent();
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
    process.stderr.write(`\nquant-studio: ${tty((err as Error).message)}\n`);
    if (debug) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
