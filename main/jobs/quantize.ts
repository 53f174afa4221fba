// The whole flow as one job: load → plan → calibrate (or reuse ranges) → convert → evaluate → write.
// Nothing is written until every stage has succeeded, so a failure or a cancel leaves no files.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { searchNumerics, type MainNumerics, type Numerics } from '../../shared/numerics';
import { dbToJson, type Artifact, type DeployedReport, type HostReport, type LatencyReport, type LayerReport, type Metrics, type OutputReport, type Report } from '../../shared/report';
import type { Recipe } from '../../shared/recipe';
import { calibrate, throwIfAborted, type Progress } from '../calib/calibrate';
import { guessBatchSize, openSource, type Feed, type ImagePreprocess, type InputSpec, type SampleSource } from '../data/readers';
import { evaluate, type EvaluationResult, type OutputFigures } from '../eval/evaluate';
import { hostNumerics, webgpuAdapter } from '../onnx/numerics';
import { inputSpecs } from '../onnx/session';
import { writeJsonAtomic } from '../base/atomic';
import { firstSample, measureLatency } from '../export/latency';
import { defaultOpset, GraphView } from '../onnx/graph';
import { loadModel, saveModel } from '../onnx/model';
import { toNumber } from '../onnx/proto';
import { convertModel, type Range } from '../convert/convert';
import { backendFor, calibrationTensors, planQuantization, withBorrowedRanges, type QuantPlan } from '../plan/plan';
import { prepareModel, type Prepared } from '../plan/prepare';
import { readLabels } from '../eval/metrics';
import { readSubset, SEARCH_SAMPLES, Subset } from '../eval/sensitivity';
import { describeTarget, repair, type Target } from '../repair/search';
import { preflightWithCost } from '../plan/preflight';
import { lowerWithOnnxRuntime, toQOperator } from '../export/cpu-lowering';
import { toIntegerIO } from '../export/integer-io';
import { saturationFix } from '../plan/cpu-host';
import type { onnx } from '../onnx/proto';
import { pinInputShapes } from '../onnx/edit';

export const TOOL = { name: 'quant-studio', version: '0.1.0' };

export interface QuantizeJob {
  model: string;
  recipe: Recipe;
  /** Calibration data source (see openSource); needed for static quantization unless `ranges` is given. */
  calibration?: string;
  /** Evaluation data; defaults to the calibration data. */
  evaluation?: string;
  /** A ranges file from an earlier run: re-convert and re-evaluate without calibrating. */
  ranges?: string;
  out?: string;
  report?: string;
  batchSize?: number;
  preprocess?: ImagePreprocess;
  /** Time the exported model against the float one on this CPU (default on). */
  latency?: boolean;
  /** cpu backend: also write the QOperator form (QLinearConv/QLinearMatMul, standard ONNX ops only). */
  qoperator?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  onWarning?: (message: string) => void;
  /** Automatic mixed precision: move the fewest layers to higher precision until this holds. */
  target?: Target;
  /** Class ids of the evaluation samples (.npy or folder-per-class), for accuracy metrics. */
  labels?: string;
  /** Evaluation samples the repair search runs on (default: all of them up to SEARCH_SAMPLES). */
  searchSamples?: number;
  /** Numerics of the report's layers and outputs (default reference) and of a repair search (default: ort-cpu for cpu, reference for the others). */
  numerics?: MainNumerics;
  /** cpu backend on a CPU whose int8 kernels saturate: quantize weights as uint8 so the export is right here (default on). */
  saturationFix?: boolean;
  onStep?: (message: string) => void;
}

export interface RangesFile {
  version: 1;
  model: string;
  method: string;
  samples: number;
  tensors: Record<string, Range & { histogram?: { min: number; max: number; counts: number[] } }>;
}

export interface QuantizeOutcome {
  report: Report;
  files: { model: string; report: string; recipe: string; ranges?: string; preflight: string; lowered?: string; qoperator?: string; integerIO?: string; firmwareIO?: string };
}

export class JobError extends Error {}

export function defaultOutPath(model: string, recipe: Recipe): string {
  const base = path.basename(model).replace(/\.onnx$/i, '');
  return path.join(path.dirname(model), `${base}.${recipe.backend}-${recipe.kind}.onnx`);
}

export function companionPath(out: string, suffix: string): string {
  return out.replace(/\.onnx$/i, '') + suffix;
}

export function readRanges(file: string): RangesFile {
  let parsed: RangesFile;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as RangesFile;
  } catch (err) {
    throw new JobError(`${file}: not a readable ranges file (${(err as Error).message})`);
  }
  if (parsed?.version !== 1 || !parsed.tensors || typeof parsed.tensors !== 'object') throw new JobError(`${file}: not a quant-studio ranges file (expected version 1 with "tensors")`);
  for (const [name, r] of Object.entries(parsed.tensors)) {
    if (!r || !Number.isFinite(r.min) || !Number.isFinite(r.max) || r.min > r.max) {
      throw new JobError(`${file}: the range of tensor "${name}" is not a pair of finite numbers min <= max`);
    }
  }
  return parsed;
}

/**
 * The ranges a recipe needs, from a ranges file made by an earlier run. A recipe that keeps a layer
 * in float leaves the tensors that borrowed its range (data movement after it) to be quantized on
 * their own: they take the range they borrowed under the same recipe without its overrides.
 */
export function rangesFromFile(file: string, view: GraphView, plan: QuantPlan): { doc: RangesFile; ranges: Map<string, Range> } {
  const doc = readRanges(file);
  const base = planQuantization(view, { ...plan.recipe, overrides: {}, excludeNodes: [] });
  const known = withBorrowedRanges(base, new Map(Object.entries(doc.tensors).map(([name, r]) => [name, { min: r.min, max: r.max }])));
  const needed = calibrationTensors(plan);
  const missing = needed.filter((t) => !known.has(t.tensor));
  if (missing.length) {
    throw new JobError(`${file}: has no range for ${missing.length} tensor(s) this recipe quantizes (${missing.slice(0, 3).map((m) => m.tensor).join(', ')}${missing.length > 3 ? ', …' : ''}); calibrate again without --ranges`);
  }
  return { doc, ranges: new Map(needed.map((t) => [t.tensor, known.get(t.tensor)!])) };
}

/** The float model as the recipe's quantizer sees it; tensor names in a report refer to this model. */
export function prepareForRecipe(model: onnx.ModelProto, recipe: Recipe): Prepared {
  return prepareModel(model, { forQdq: recipe.kind === 'static' });
}

/**
 * Tensors a recipe override keeps in float that the model makes: they get no Q/DQ, so their own
 * quantization error is nil; they are still compared, to show the error arriving from upstream.
 */
function keptInFloat(view: GraphView, recipe: Recipe, quantized: ReadonlySet<string>): string[] {
  return Object.entries(recipe.overrides).filter(([name, o]) => o.float && view.producer.has(name) && !quantized.has(name)).map(([name]) => name);
}

export async function quantize(job: QuantizeJob): Promise<QuantizeOutcome> {
  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    job.onWarning?.(m);
  };
  const t0 = performance.now();
  const out = path.resolve(job.out ?? defaultOutPath(job.model, job.recipe));
  if (out === path.resolve(job.model)) throw new JobError(`${job.out}: refusing to write over the input model; choose another --out`);
  const reportFile = job.report ?? companionPath(out, '.report.json');
  if (path.resolve(reportFile) === path.resolve(job.model)) throw new JobError(`${job.report}: refusing to write the report over the input model; choose another --report`);
  const recipeFile = companionPath(out, '.recipe.json');
  const rangesFile = companionPath(out, '.ranges.json');
  // Whichever of these the backend writes: an input named like one (re-quantizing a lowered export) must survive.
  const companions = [recipeFile, rangesFile, ...['.preflight.json', '.lowered.onnx', '.qoperator.onnx', '.int-io.onnx', '.io.json'].map((s) => companionPath(out, s))];
  const clash = companions.find((f) => path.resolve(f) === path.resolve(job.model));
  if (clash) throw new JobError(`${clash}: refusing to write a companion of ${out} over the input model; choose another --out`);

  backendFor(job.recipe);
  job.onProgress?.({ stage: 'load', done: 0, total: 1 });
  const host: HostReport = { ...(await hostNumerics()) };
  let recipe = job.recipe;
  if (job.saturationFix !== false) {
    const fixed = saturationFix(recipe, host);
    recipe = fixed.recipe;
    if (fixed.fix) {
      host.saturationFix = fixed.fix;
      warn(fixed.fix.words);
    }
  }
  const loaded = loadModel(job.model);
  const prepared = prepareForRecipe(loaded.model, recipe);
  const floatModel = prepared.model;
  const view = new GraphView(floatModel);
  if (prepared.upgradedOpset) warn(`moved the model from opset ${defaultOpset(loaded.model)} to ${prepared.upgradedOpset}: Q/DQ models need it (attributes of Slice, TopK, Clip and Pad became inputs, Upsample became Resize; same results)`);
  let plan = planQuantization(view, recipe);
  let { preflight: placement, cost: placementCost } = preflightWithCost(view, plan);
  const blocked = placement.nodes.filter((n) => n.placement === 'unsupported');
  if (blocked.length) {
    throw new JobError(`${job.model}: ${plan.backend.name} cannot run ${blocked.length} node${blocked.length > 1 ? 's' : ''}: ${blocked.slice(0, 5).map((n) => `${n.node} (${n.op}): ${n.reason}`).join('; ')}${blocked.length > 5 ? '; …' : ''}`);
  }
  if (job.qoperator && plan.backend.name !== 'cpu') throw new JobError(`the QOperator form is a cpu-backend export (ONNX Runtime's QLinear kernels); ${plan.backend.name} takes the QDQ model`);
  const quantizedCount = plan.nodes.filter((n) => n.status === 'quantized').length;
  if (quantizedCount === 0) {
    const opTypes = new Set(plan.backend.opTypes[plan.kind]);
    const candidates = plan.nodes.filter((n) => opTypes.has(n.op) && n.reason);
    const first = candidates.find((n) => ['Conv', 'ConvTranspose', 'Gemm', 'MatMul'].includes(n.op)) ?? candidates[0];
    throw new JobError(`${job.model}: nothing to quantize: ${first ? `${first.op} ${first.node} ${first.reason}` : `no node is one the ${recipe.backend} backend quantizes in ${recipe.kind} mode`}`);
  }
  const inputs = inputSpecs(view);
  const batchSize = job.batchSize ?? guessBatchSize(inputs);
  // The recipe's sample count limits calibration; evaluation reads all the data it is given.
  const open = (spec: string, what: string, limit?: number): SampleSource => {
    const source = openSource(spec, inputs, { preprocess: job.preprocess, limit });
    for (const w of source.warnings) warn(`${what}: ${w}`);
    return source;
  };
  job.onProgress?.({ stage: 'load', done: 1, total: 1 });
  const tLoad = performance.now();

  const labels = job.labels ? readLabels(job.labels).labels : undefined;
  const ranges = new Map<string, Range>();
  let rangesDoc: RangesFile | undefined;
  let calibrationSamples = 0;
  let calibrationSource: SampleSource | undefined;
  if (plan.kind === 'static') {
    const needed = calibrationTensors(plan);
    if (job.ranges) {
      const saved = rangesFromFile(job.ranges, view, plan);
      rangesDoc = saved.doc;
      if (rangesDoc.method !== recipe.method) warn(`ranges from ${job.ranges} were calibrated with ${rangesDoc.method}, not ${recipe.method}`);
      for (const [name, r] of saved.ranges) ranges.set(name, r);
      calibrationSamples = rangesDoc.samples;
    } else {
      if (!job.calibration) throw new JobError('static quantization needs calibration data: pass --calibration (a .npy file, a folder of images or .npy files, a manifest, or random:N)');
      calibrationSource = open(job.calibration, 'calibration', recipe.calibrationSamples || undefined);
      // A repair may re-range tensors with another method from their histograms; min/max keeps
      // none, so it observes through percentile:100, which gives the very same range.
      const observed = job.target ? needed.map((t) => (t.method === 'minmax' ? { ...t, method: 'percentile:100' } : t)) : needed;
      const result = await calibrate(floatModel, observed, calibrationSource, { batchSize, signal: job.signal, onProgress: job.onProgress });
      for (const [name, shape] of result.shapes) view.recordShape(name, shape);
      const tensors: RangesFile['tensors'] = {};
      for (const [name, r] of result.ranges) {
        ranges.set(name, { min: r.min, max: r.max });
        tensors[name] = { min: r.min, max: r.max, histogram: r.histogram };
      }
      calibrationSamples = result.samples;
      rangesDoc = { version: 1, model: path.basename(job.model), method: recipe.method, samples: result.samples, tensors };
    }
  }
  throwIfAborted(job.signal);
  const evalSpec = job.evaluation ?? job.calibration;
  let repairReport: Report['repair'];
  // Per-tensor method fixes change ranges: the ranges file written beside the model holds them.
  let rangesChanged = false;
  if (job.target) {
    if (plan.kind !== 'static') throw new JobError(`--target needs static quantization: ${plan.kind} has no calibrated layers to move to higher precision`);
    if (job.target.kind === 'metric' && job.target.metric.includes('accuracy') && !labels) {
      throw new JobError(`target ${describeTarget(job.target)} needs labels: pass --labels (a .npy of class ids or a folder-per-class image folder)`);
    }
    const searchSource = open(evalSpec ?? 'random:8', 'repair search');
    const { feeds } = await readSubset(searchSource, job.searchSamples ?? Math.min(searchSource.count, SEARCH_SAMPLES), batchSize);
    const subset = await Subset.create(floatModel, feeds, labels);
    const histograms = new Map(Object.entries(rangesDoc?.tensors ?? {}).flatMap(([name, r]) => (r.histogram ? [[name, r.histogram] as const] : [])));
    const repaired = await repair({
      view, floatModel, recipe, plan, ranges, histograms, subset, target: job.target, numerics: searchNumerics(recipe.backend, job.numerics),
      signal: job.signal, onProgress: job.onProgress, onStep: job.onStep,
    });
    if (!repaired.report.met) warn(`repair: ${repaired.report.reason}`);
    plan = repaired.plan;
    recipe = repaired.recipe;
    repairReport = repaired.report;
    for (const [name, r] of repaired.rangeChanges) {
      rangesDoc!.tensors[name] = { ...rangesDoc!.tensors[name], min: r.min, max: r.max };
      rangesChanged = true;
    }
    // Tensors the repaired recipe quantizes on their own, with the range they borrowed before: the
    // ranges file must hold them too, or a re-run of the written recipe could not convert.
    for (const t of calibrationTensors(plan)) {
      const r = repaired.ranges.get(t.tensor)!;
      ranges.set(t.tensor, r);
      if (!rangesDoc!.tensors[t.tensor]) rangesDoc!.tensors[t.tensor] = { min: r.min, max: r.max };
    }
    if (rangesChanged) rangesDoc!.method = recipe.method;
    // Where nodes run, and what the repair's float layers cost on the device, for the final plan.
    ({ preflight: placement, cost: placementCost } = preflightWithCost(view, plan));
  }
  const tCal = performance.now();

  job.onProgress?.({ stage: 'convert', done: 0, total: 1 });
  const converted = convertModel(view, plan, ranges);
  job.onProgress?.({ stage: 'convert', done: 1, total: 1 });
  const tConv = performance.now();

  let evalSource: SampleSource;
  if (evalSpec) {
    evalSource = evalSpec === job.calibration && calibrationSource ? calibrationSource : open(evalSpec, 'evaluation');
    if (!job.evaluation) warn('evaluated on the calibration data; pass --eval with held-out samples for an unbiased figure');
  } else {
    evalSource = open('random:8', 'evaluation');
  }
  const kept = keptInFloat(view, recipe, new Set(converted.layers.map((l) => l.float)));
  const pairs = [...converted.layers.map((l) => ({ float: l.float, quant: l.quant })), ...kept.map((t) => ({ float: t, quant: t }))];
  const numerics = job.numerics ?? 'reference';
  const deployedNumerics = await deployedOn(plan.backend.name, numerics, host);
  const evaluation = await evaluate(floatModel, converted.model, pairs, evalSource,
    { batchSize, signal: job.signal, onProgress: job.onProgress, labels, numerics, deployed: deployedNumerics });
  const tEval = performance.now();
  throwIfAborted(job.signal);

  const weightSqnr = new Map<string, number>();
  for (const w of converted.weights) if (!weightSqnr.has(w.node)) weightSqnr.set(w.node, w.sqnr);
  const folds = new Map(converted.folded.map((f) => [f.node, f.into]));
  const layers: LayerReport[] = converted.layers.map((l) => {
    const stats = evaluation.layers.get(l.float)!;
    const range: [number, number] = l.range ? [l.range.min, l.range.max] : [stats.refMin, stats.refMax];
    // The weight that made this tensor: its producer's, or for a folded Relu/Clip the producer it folded into.
    const producer = view.producer.get(l.float);
    const ws = producer ? weightSqnr.get(folds.get(producer.name) ?? producer.name) : undefined;
    return {
      name: l.float, node: l.node, op: l.op, index: l.index, type: l.type, sqnr: dbToJson(stats.sqnr),
      ...(stats.localSqnr !== undefined ? { localSqnr: dbToJson(stats.localSqnr) } : {}),
      ...(ws !== undefined ? { weightSqnr: dbToJson(ws) } : {}),
      ...(l.params ? { scale: l.params.scale, zeroPoint: l.params.zeroPoint } : {}),
      range,
    };
  });
  for (const name of kept) {
    const producer = view.producer.get(name)!;
    const stats = evaluation.layers.get(name)!;
    const ws = weightSqnr.get(folds.get(producer.name) ?? producer.name);
    layers.push({
      name, node: producer.name, op: producer.op, index: producer.index, sqnr: 'inf', keptInFloat: { sqnr: dbToJson(stats.sqnr) },
      ...(ws !== undefined ? { weightSqnr: dbToJson(ws) } : {}), range: [stats.refMin, stats.refMax],
    });
  }
  layers.sort((a, b) => a.index - b.index);

  // One sample at batch 1: the latency check's input, and the shape a fixed-shape device is given.
  let sample: Feed | undefined;
  if (job.latency !== false || plan.backend.device.staticShapes) {
    try {
      sample = await firstFeed(evalSource, inputs);
    } catch (err) {
      throw new JobError(`cannot read a sample from ${evalSource.description}: ${(err as Error).message}`);
    }
  }
  let exported = converted.model;
  if (plan.backend.device.staticShapes && placement.problems.length) {
    exported = pinInputShapes(converted.model, sample!);
    warn(`${plan.backend.device.name} compiles fixed shapes: the exported model's inputs are pinned to ${Object.entries(sample!).map(([n, t]) => `${n} [${t.dims.join(', ')}]`).join(', ')} (the first evaluation sample)`);
  }
  // Lowered forms are built in memory first: a refusal here must leave nothing on disk.
  const integerIO = plan.backend.integerIO ? toIntegerIO(exported) : undefined;
  const qoperator = job.qoperator ? toQOperator(exported) : undefined;
  if (qoperator && qoperator.fused === 0) warn('QOperator form: no Conv or MatMul had 8-bit Q/DQ on all its inputs and its output, so it equals the QDQ model');

  let latency: LatencyReport | undefined;
  if (job.latency !== false) {
    job.onProgress?.({ stage: 'latency', done: 0, total: 1 });
    const feed = sample!;
    const timed: Array<{ label: string; model: onnx.ModelProto; feed: Feed }> = [
      { label: 'float', model: floatModel, feed }, { label: 'quantized', model: exported, feed },
    ];
    if (qoperator) timed.push({ label: 'qoperator', model: qoperator.model, feed });
    latency = await measureLatency(timed, plan.backend.latency, { signal: job.signal });
    job.onProgress?.({ stage: 'latency', done: 1, total: 1 });
  }
  throwIfAborted(job.signal);

  job.onProgress?.({ stage: 'save', done: 0, total: 1 });
  const artifacts: Artifact[] = [];
  const files: QuantizeOutcome['files'] = { model: out, report: reportFile, recipe: recipeFile, preflight: companionPath(out, '.preflight.json') };
  // ONNX Runtime can still refuse to lower the model, and it writes the lowered file itself: first,
  // so that a refusal leaves nothing behind.
  if (plan.backend.name === 'cpu' && plan.kind !== 'weight-only') {
    files.lowered = companionPath(out, '.lowered.onnx');
    await lowerWithOnnxRuntime(exported, files.lowered);
  }
  const saved = saveModel(exported, out);
  const quantBytes = saved.bytes + (saved.dataBytes ?? 0);
  artifacts.push({ kind: 'model', file: out, bytes: quantBytes, description: `QDQ model for ${plan.backend.title}` });
  if (files.lowered) {
    artifacts.push({ kind: 'lowered', file: files.lowered, bytes: fs.statSync(files.lowered).size, description: 'after ONNX Runtime\'s graph optimizer: QDQ groups fused into integer kernels (QLinearConv, MatMulInteger…)' });
  }
  if (qoperator) {
    files.qoperator = companionPath(out, '.qoperator.onnx');
    const q = saveModel(qoperator.model, files.qoperator);
    artifacts.push({ kind: 'qoperator', file: files.qoperator, bytes: q.bytes + (q.dataBytes ?? 0), description: `QOperator form: ${qoperator.fused} QLinearConv/QLinearMatMul, standard ONNX ops only` });
  }
  if (integerIO) {
    files.integerIO = companionPath(out, '.int-io.onnx');
    files.firmwareIO = companionPath(out, '.io.json');
    const q = saveModel(integerIO.model, files.integerIO);
    artifacts.push({ kind: 'integer-io', file: files.integerIO, bytes: q.bytes + (q.dataBytes ?? 0), description: 'integer inputs and outputs: the model the firmware runs' });
    writeJsonAtomic(files.firmwareIO, integerIO.io);
    artifacts.push({ kind: 'firmware-io', file: files.firmwareIO, bytes: fs.statSync(files.firmwareIO).size, description: 'scale and zero point of each input and output, for the firmware' });
  }
  const report: Report = {
    tool: TOOL,
    model: { file: path.resolve(job.model), bytes: loaded.bytes, opset: view.opset, irVersion: toNumber(loaded.model.irVersion) },
    backend: recipe.backend,
    recipe,
    quantized: { file: out, bytes: quantBytes },
    sizes: { floatBytes: loaded.bytes, quantizedBytes: quantBytes, ratio: Number((quantBytes / loaded.bytes).toFixed(4)) },
    samples: { calibration: calibrationSamples, evaluation: evaluation.samples },
    data: { calibration: job.ranges ? `ranges from ${job.ranges}` : job.calibration ?? 'none', evaluation: evalSource.description },
    timings: {
      load: Math.round(tLoad - t0), calibrate: Math.round(tCal - tLoad), convert: Math.round(tConv - tCal),
      evaluate: Math.round(tEval - tConv), total: Math.round(performance.now() - t0),
    },
    numerics,
    outputs: outputReports(evaluation),
    metrics: metricsReport(evaluation),
    ...(evaluation.deployed ? { deployed: deployedReport(evaluation, host, recipe) } : {}),
    host,
    layers,
    weights: converted.weights.map((w) => ({ name: w.name, node: w.node, op: w.op, type: w.type, granularity: w.granularity, sqnr: dbToJson(w.sqnr) })),
    float: [
      ...plan.nodes.filter((n) => n.status === 'float').map((n) => ({ node: n.node, op: n.op, reason: n.reason ?? '' })),
      ...converted.folded.map((f) => ({ node: f.node, op: f.op, reason: `folded into ${f.into}: the quantized range already clamps like it` })),
      ...prepared.foldedBatchNorms.map((f) => ({ node: f.batchNorm, op: 'BatchNormalization', reason: `folded into ${f.conv}'s weights` })),
    ],
    preflight: placement,
    ...(placementCost ? { preflightCost: placementCost } : {}),
    ...(latency ? { latency } : {}),
    artifacts,
    warnings,
    ...(repairReport ? { repair: repairReport } : {}),
  };
  writeJsonAtomic(files.preflight, placement);
  artifacts.push({ kind: 'preflight', file: files.preflight, bytes: fs.statSync(files.preflight).size, description: `where each node runs on ${plan.backend.device.name}` });
  writeJsonAtomic(recipeFile, recipe);
  artifacts.push({ kind: 'recipe', file: recipeFile, bytes: fs.statSync(recipeFile).size, description: 'the recipe, to re-run or share' });
  const writeRanges = rangesDoc && (!job.ranges || (rangesChanged && path.resolve(job.ranges) !== path.resolve(rangesFile)));
  if (rangesChanged && !writeRanges) warn(`the repaired ranges were not saved: ${rangesFile} is the input ranges file; choose another --out to keep them`);
  if (writeRanges) {
    writeJsonAtomic(rangesFile, rangesDoc);
    files.ranges = rangesFile;
    artifacts.push({ kind: 'ranges', file: rangesFile, bytes: fs.statSync(rangesFile).size, description: rangesChanged ? 'ranges, with the repair\'s calibration fixes, to re-convert without calibrating' : 'calibrated ranges, to re-convert without calibrating' });
  }
  writeJsonAtomic(reportFile, report);
  job.onProgress?.({ stage: 'save', done: 1, total: 1 });
  return { report, files };
}

/**
 * Where the exported model also runs on this machine as deployed: ONNX Runtime's CPU kernels for the
 * cpu backend, its WebGPU provider for webgpu where a GPU adapter exists. No other backend's
 * runtime is here, so none pretends to on-device figures.
 */
async function deployedOn(backend: string, numerics: MainNumerics, host: HostReport): Promise<Numerics | undefined> {
  if (backend === 'cpu') return numerics === 'ort-cpu' ? undefined : 'ort-cpu';
  if (backend !== 'webgpu') return undefined;
  const gpu = await webgpuAdapter();
  if (gpu.available) return 'webgpu';
  host.webgpu = `no WebGPU adapter on this machine (${gpu.reason}): the figures are reference numerics only`;
  return undefined;
}

function outputReports(figures: OutputFigures): OutputReport[] {
  return figures.outputs.map((o) => ({ name: o.name, sqnr: dbToJson(o.sqnr), maxAbsError: o.maxAbsError }));
}

function metricsReport(figures: OutputFigures): Metrics {
  return Object.fromEntries(Object.entries(figures.metrics).map(([k, v]) => [k, Number(v!.toFixed(5))]));
}

/** A gap this large between two numerics of one model is worth a sentence on its cause. */
const NUMERICS_GAP_DB = 3;

function deployedReport(evaluation: EvaluationResult, host: HostReport, recipe: Recipe): DeployedReport {
  const deployed = evaluation.deployed!;
  const worst = (outputs: OutputFigures['outputs']) => Math.min(...outputs.map((o) => o.sqnr));
  const gap = worst(evaluation.outputs) - worst(deployed.outputs);
  let note: string | undefined;
  if (Math.abs(gap) > NUMERICS_GAP_DB) {
    const by = `${deployed.numerics} is ${Math.abs(gap).toFixed(1)} dB ${gap > 0 ? 'below' : 'above'} ${evaluation.numerics}`;
    note = deployed.numerics === 'webgpu'
      ? `${by}: the WebGPU provider runs Q/DQ and the float ops in its own shaders, and the difference is that runtime's arithmetic.`
      : host.int8Saturates && recipe.weightType === 'int8'
        ? `${by}: ${host.cpu}'s fused u8×s8 kernels saturate pairs of products (no VNNI); quantize with uint8 weights (the saturation fix) or deploy with session.x64quantprecision=1.`
        : `${by}: ONNX Runtime's fused kernels requantize in integer arithmetic and replace ops such as Softmax and Sigmoid by integer versions with their own rounding.`;
  }
  return { numerics: deployed.numerics, outputs: outputReports(deployed), metrics: metricsReport(deployed), samples: evaluation.samples, ...(note ? { note } : {}) };
}

async function firstFeed(source: SampleSource, inputs: InputSpec[]) {
  for await (const batch of source.batches(1)) return firstSample(batch, inputs);
  throw new Error('it has no samples');
}
