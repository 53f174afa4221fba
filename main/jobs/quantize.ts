// The whole flow as one job, stage by stage: load and plan → calibrate (or reuse saved ranges) →
// repair to a target → convert → evaluate → lower, time and write. Nothing is written until every
// stage has succeeded, so a failure or a cancel leaves no files.
import * as path from 'node:path';
import { describeTarget, needsLabels, type Target } from '../../shared/metrics';
import { searchNumerics, type MainNumerics } from '../../shared/numerics';
import type { Preflight, PreflightCost } from '../../shared/preflight';
import type { Progress } from '../../shared/progress';
import type { Recipe } from '../../shared/recipe';
import { dbToJson, type GptqReport, type HostReport, type LatencyReport, type Report, type WithoutAlgorithmsReport } from '../../shared/report';
import { TOOL } from '../../shared/tool';
import { JobError } from '../base/errors';
import type { Feed } from '../base/feed';
import { throwIfAborted } from '../base/progress';
import { calibratedShapes, savedOrCalibrated, saveRounding, type JobRanges } from '../calib/ranges-file';
import { convertModel, type ConvertResult } from '../convert/convert';
import type { SampleSource } from '../data/readers';
import { readSubset, SEARCH_SAMPLES } from '../data/subset';
import { evaluate, type EvaluationResult } from '../eval/evaluate';
import { deployedOn, deployedReport, metricsReport, outputReports } from '../eval/figures';
import { customMetricReport } from '../eval/custom-metric';
import { keptInFloat, layerRows, rowPairs } from '../eval/layer-rows';
import { Subset, switchUnits } from '../eval/sensitivity';
import { artifactPaths, defaultOutPath, refuseInputs, writeArtifacts, type ArtifactPaths } from '../export/artifacts';
import { firstSample, measureLatency } from '../export/latency';
import { lowerings } from '../export/lowering';
import { pinInputShapes } from '../onnx/edit';
import { GraphView } from '../onnx/graph';
import { hostNumerics } from '../onnx/numerics';
import { toNumber, type onnx } from '../onnx/proto';
import { saturationFix } from '../plan/cpu-host';
import { equalizationReport } from '../plan/equalize';
import { ADAROUND_SAMPLES, type AdaRoundResult } from '../repair/adaround';
import { BIAS_CORRECTION_SAMPLES, type BiasCorrection } from '../repair/bias-correction';
import { calibrationTensors, planQuantization, withBorrowedRanges, type QuantPlan } from '../plan/plan';
import { preflightWithCost } from '../plan/preflight';
import type { Range } from '../stats/range';
import { repair, type RepairInput } from '../repair/search';
import { calibrationAgain, correctedForRecipe, gptqForRecipe, jobWarnings, smoothed, smoothForRecipe, loadForJob, prepareForRecipe, roundedForRecipe, type JobInput, type JobModel } from './job';

export interface QuantizeJob extends JobInput {
  out?: string;
  report?: string;
  /** Time the exported model against the float one on this CPU (default on). */
  latency?: boolean;
  /** cpu backend: also write the QOperator form (QLinearConv/QLinearMatMul, standard ONNX ops only). */
  qoperator?: boolean;
  /** Automatic repair: move the fewest layers to higher precision until this holds. */
  target?: Target;
  /** Evaluation samples the repair search runs on (default: all of them up to SEARCH_SAMPLES). */
  searchSamples?: number;
  /** cpu backend on a CPU whose int8 kernels saturate: quantize weights as uint8 so the export is right here (default on). */
  saturationFix?: boolean;
  onStep?: (message: string) => void;
}

export interface QuantizeOutcome {
  report: Report;
  files: { model: string; report: string; recipe: string; ranges?: string; preflight: string; lowered?: string; qoperator?: string; integerIO?: string; firmwareIO?: string };
}

/** What the written model is, by kind: the artifact list says it. */
const MODEL_FORM: Record<QuantPlan['kind'], string> = {
  static: 'QDQ model',
  dynamic: 'dynamically quantized model (integer weights, activations quantized at run time)',
  'weight-only': 'weight-only model (MatMulNBits, or integer weights dequantized at run time)',
};

/** The stage boundaries of a job, in milliseconds from its start, for the report's timings. */
function stageClock() {
  const t0 = performance.now();
  const marks: Record<string, number> = {};
  return {
    mark: (stage: 'load' | 'calibrate' | 'convert' | 'evaluate') => void (marks[stage] = performance.now()),
    timings: (): Report['timings'] => ({
      load: Math.round(marks.load - t0), calibrate: Math.round(marks.calibrate - marks.load), convert: Math.round(marks.convert - marks.calibrate),
      evaluate: Math.round(marks.evaluate - marks.convert), total: Math.round(performance.now() - t0),
    }),
  };
}

export async function quantize(job: QuantizeJob): Promise<QuantizeOutcome> {
  const clock = stageClock();
  const log = jobWarnings(job);
  const paths = artifactPaths(job.out ?? defaultOutPath(job.model, job.recipe.backend, job.recipe.kind), job.report);
  job.onProgress?.({ stage: 'load', done: 0, total: 1 });
  const { recipe, host } = await forThisHost(job, log.warn);
  const m = await loadForJob(job, recipe, log.warn);
  refuseInputs(paths, [job.model, ...(m.loaded.externalFiles ?? [])]);
  await smoothForRecipe(job, m, log.warn, job.onStep);
  let placement = checkPlan(job, m);
  job.onProgress?.({ stage: 'load', done: 1, total: 1 });
  clock.mark('load');

  const calibrated = m.plan.kind === 'static' ? await savedOrCalibrated(job.model, m.floatModel, m.view, m.plan, {
    file: job.ranges, calibration: () => openCalibration(m), histograms: Boolean(job.target), batchSize: m.batchSize,
    signal: job.signal, onProgress: job.onProgress, warn: log.warn,
  }) : undefined;
  throwIfAborted(job.signal);
  // Ranges of the model as given: the baseline without algorithms needs them again once the repair rewrites the model.
  const given: GivenRanges | undefined = job.target && calibrated && !m.prepared.equalized && !m.prepared.smoothed
    ? { floatModel: m.floatModel, view: m.view, plan: m.plan, ranges: new Map(calibrated.ranges) } : undefined;
  const repaired = job.target ? await repairStage(job, m, calibrated, log.warn) : undefined;
  // The ranges fit the smoothed model only: a re-run from them smooths with the same α.
  if (calibrated && m.prepared.smoothed) calibrated.doc.smoothquant = { alpha: m.prepared.smoothed.alpha };
  if (repaired) placement = preflightWithCost(m.view, m.plan);
  clock.mark('calibrate');

  job.onProgress?.({ stage: 'convert', done: 0, total: 1 });
  const rounded = repaired?.rounded ?? await roundedForRecipe(job, m, calibrated, log.warn, job.onStep);
  const corrected = await correctedForRecipe(job, m, calibrated, log.warn, job.onStep, rounded?.rounding);
  const gptq = await gptqForRecipe(job, m, log.warn, job.onStep);
  const converted = convertModel(corrected ? new GraphView(corrected.model) : m.view, m.plan, calibrated?.ranges ?? new Map(), rounded?.rounding, gptq?.chosen);
  job.onProgress?.({ stage: 'convert', done: 1, total: 1 });
  clock.mark('convert');

  const evalSource = await m.evaluationData('evaluation', log.warn, calibrated?.source);
  const kept = keptInFloat(m.view, m.plan.recipe.overrides, converted);
  const numerics = job.numerics ?? 'reference';
  const evaluation = await evaluate(m.floatModel, converted.model, rowPairs(converted.layers, kept), evalSource, {
    batchSize: m.batchSize, signal: job.signal, onProgress: job.onProgress, labels: m.labels, numerics, deployed: await deployedOn(m.plan.backend, numerics, host), shapes: calibratedShapes(calibrated, evalSource), custom: m.custom,
  });
  const without = m.prepared.equalized || m.prepared.smoothed || corrected || rounded || gptq ? await withoutAlgorithms(job, m, calibrated, given, evalSource, numerics, log.warn) : undefined;
  clock.mark('evaluate');
  throwIfAborted(job.signal);

  const nodes = m.plan.kind === 'static' ? new Map(switchUnits(m.view, m.plan, converted).units.flatMap((u) => u.tensors.map((t) => [t, u.nodes] as const)))
    // A weight-only or dynamic layer is one node's output, and that node's weight is all it quantizes: keeping it in float keeps the node.
    : new Map(converted.layers.map((l): [string, string[]] => [l.float, [l.node]]));
  const layers = layerRows(converted.layers, kept, evaluation, { view: m.view, converted, nodes });
  const exported = await exportStage(job, m, converted, placement.preflight, evalSource, log.warn);
  // A rounding learned here is saved with the ranges, so that a re-run from them converts in seconds.
  const learned = rounded && !rounded.report.reusedFrom && calibrated;
  if (learned) calibrated.doc.adaround = saveRounding(rounded.report.iterations, rounded.report, rounded.rounding);
  const added = [...(repaired?.rangesChanged ? ['the repair\'s calibration fixes'] : []), ...(learned ? ['AdaRound\'s rounding'] : [])];
  const ranges = rangesToWrite(job, paths, calibrated, added.join(' and ') || undefined, log.warn);
  const written = await writeArtifacts(paths, {
    qdq: { model: exported.model, description: `${MODEL_FORM[m.plan.kind]} for ${m.plan.backend.title}` }, forms: exported.forms, preflight: placement.preflight, recipe: m.plan.recipe, ...ranges,
    report: (artifacts) => quantizeReport({ job, m, host, calibrated, converted, evaluation, evalSource, layers, placement, latency: exported.latency, paths, artifacts, warnings: log.list, timings: clock.timings(), repair: repaired?.report, corrected, rounded, gptq: gptq?.report, without }),
  });
  const report = written.report as Report;
  job.onProgress?.({ stage: 'save', done: 1, total: 1 });
  const f = written.files;
  return {
    report,
    files: {
      model: paths.model, report: paths.report, recipe: paths.recipe, preflight: paths.preflight, ...(f.ranges ? { ranges: f.ranges } : {}),
      ...(f.lowered ? { lowered: f.lowered } : {}), ...(f.qoperator ? { qoperator: f.qoperator } : {}),
      ...(f['integer-io'] ? { integerIO: f['integer-io'] } : {}), ...(f['firmware-io'] ? { firmwareIO: f['firmware-io'] } : {}),
    },
  };
}

/** This machine's numerics, and the recipe as it must be for the export to be right here (the cpu backend on a saturating CPU). */
async function forThisHost(job: QuantizeJob, warn: (message: string) => void): Promise<{ recipe: Recipe; host: HostReport }> {
  const host: HostReport = { ...(await hostNumerics()) };
  if (job.saturationFix === false) return { recipe: job.recipe, host };
  const fixed = saturationFix(job.recipe, host);
  if (fixed.fix) {
    host.saturationFix = fixed.fix;
    warn(fixed.fix.words);
  }
  return { recipe: fixed.recipe, host };
}

/** Refusals before any work: nodes the backend cannot run, a lowering it does not have, nothing to quantize. */
function checkPlan(job: QuantizeJob, m: JobModel): { preflight: Preflight; cost?: PreflightCost } {
  const placement = preflightWithCost(m.view, m.plan);
  const backend = m.plan.backend;
  const blocked = placement.preflight.nodes.filter((n) => n.placement === 'unsupported');
  if (blocked.length) {
    throw new JobError(`${job.model}: ${backend.name} cannot run ${blocked.length} node${blocked.length > 1 ? 's' : ''}: ${blocked.slice(0, 5).map((n) => `${n.node} (${n.op}): ${n.reason}`).join('; ')}${blocked.length > 5 ? '; …' : ''}`);
  }
  if (job.qoperator && !backend.lowerings.includes('qoperator')) throw new JobError(`the QOperator form is a cpu-backend export (ONNX Runtime's QLinear kernels); ${backend.name} takes the QDQ model`);
  if (!m.plan.nodes.some((n) => n.status === 'quantized')) {
    const opTypes = new Set(backend.opTypes[m.plan.kind]);
    const candidates = m.plan.nodes.filter((n) => opTypes.has(n.op) && n.reason);
    const first = candidates.find((n) => ['Conv', 'ConvTranspose', 'Gemm', 'MatMul'].includes(n.op)) ?? candidates[0];
    throw new JobError(`${job.model}: nothing to quantize: ${first ? `${first.op} ${first.node} ${first.reason}` : `no node is one the ${backend.name} backend quantizes in ${m.plan.kind} mode`}`);
  }
  return placement;
}

function openCalibration(m: JobModel): Promise<SampleSource> {
  // The recipe's sample count limits calibration; evaluation reads all the data it is given.
  return m.calibrationData('calibration', m.plan.recipe.calibrationSamples || undefined);
}


/** The repair search on a fixed subset of the evaluation data; the job's plan and ranges become the repaired ones. */
async function repairStage(job: QuantizeJob, m: JobModel, calibrated: JobRanges | undefined, warn: (message: string) => void): Promise<{ report: NonNullable<Report['repair']>; rangesChanged: boolean; rounded?: AdaRoundResult }> {
  const target = job.target!;
  if (m.plan.kind !== 'static' || !calibrated) throw new JobError(`--target needs static quantization: ${m.plan.kind} has no calibrated layers to move to higher precision`);
  if (target.kind === 'metric' && needsLabels(target.metric) && !m.labels) {
    throw new JobError(`target ${describeTarget(target)} needs labels of class ids: pass --labels (a .npy of class ids, a folder-per-class image folder, or a JSON array of class ids)`);
  }
  if (target.kind === 'metric' && target.metric === 'custom' && !m.custom) throw new JobError(`target ${describeTarget(target)} needs the metric module: pass --metric-module FILE.mjs`);
  // With a held-out split the search chooses on the calibration side, so that the held-out figures judge its choice rather than flatter it.
  const source = m.heldOut ? await m.calibrationData('repair search') : await m.evaluationData('repair search', () => undefined);
  const { feeds } = await readSubset(source, job.searchSamples ?? Math.min(source.count, SEARCH_SAMPLES), m.batchSize);
  const calibration = algorithmSamples(job, m, calibrated);
  const histograms = new Map(Object.entries(calibrated.doc.tensors).flatMap(([name, r]) => (r.histogram ? [[name, r.histogram] as const] : [])));
  const repaired = await repair({
    view: m.view, floatModel: m.floatModel, recipe: m.plan.recipe, plan: m.plan, ranges: calibrated.ranges, histograms,
    subset: await Subset.create(m.floatModel, feeds, m.labels, m.custom), calibration, equalize: equalizer(job, m, calibrated, warn), smooth: smoother(job, m, calibrated, warn), shapes: calibratedShapes(calibrated, source), target, numerics: searchNumerics(m.plan.recipe.backend, job.numerics),
    signal: job.signal, onProgress: job.onProgress, onStep: job.onStep,
  });
  if (!repaired.report.met) warn(`repair: ${repaired.report.reason}`);
  repaired.rewritten?.adopt();
  m.plan = repaired.plan;
  const doc = calibrated.doc;
  for (const [name, r] of repaired.rangeChanges) doc.tensors[name] = { ...doc.tensors[name], min: r.min, max: r.max };
  if (repaired.rangeChanges.size) doc.method = repaired.recipe.method;
  // Tensors the repaired recipe quantizes on their own, with the range they borrowed before: the
  // ranges file must hold them too, or a re-run of the written recipe could not convert.
  for (const t of calibrationTensors(m.plan)) {
    const r = repaired.ranges.get(t.tensor)!;
    calibrated.ranges.set(t.tensor, r);
    doc.tensors[t.tensor] ??= { min: r.min, max: r.max };
  }
  return { report: repaired.report, rangesChanged: repaired.rangeChanges.size > 0 || Boolean(repaired.rewritten), rounded: repaired.rounded };
}

/**
 * Cross-layer equalization for the repair to try: the model prepared again with it, and ranges
 * calibrated on it by the search's method of the moment, with histograms as the job's own. None
 * without calibration data (a ranges file alone cannot be re-measured).
 */
function equalizer(job: QuantizeJob, m: JobModel, calibrated: JobRanges, warn: (message: string) => void): RepairInput['equalize'] {
  const calibration = calibrationAgain(job, m, calibrated, 'calibration', m.plan.recipe.calibrationSamples || undefined);
  if (!calibration) return undefined;
  return async (recipe) => {
    const prepared = prepareForRecipe(m.loaded.model, { ...recipe, algorithms: { ...recipe.algorithms, cle: true } });
    if (!prepared.equalized?.pairs.length) return undefined;
    const view = new GraphView(prepared.model);
    const again = await savedOrCalibrated(job.model, prepared.model, view, planQuantization(view, recipe), {
      calibration, histograms: true, batchSize: m.batchSize,
      signal: job.signal, onProgress: job.onProgress, warn,
    });
    return {
      floatModel: prepared.model, view, ranges: again.ranges, samples: again.samples,
      adopt: () => {
        Object.assign(m, { prepared, floatModel: prepared.model, view });
        Object.assign(calibrated, again);
      },
    };
  };
}

/**
 * SmoothQuant for the repair to try: the search's float model smoothed with α searched, and ranges
 * calibrated on it by the search's method of the moment. None without calibration data.
 */
function smoother(job: QuantizeJob, m: JobModel, calibrated: JobRanges, warn: (message: string) => void): RepairInput['smooth'] {
  const calibration = calibrationAgain(job, m, calibrated, 'calibration', m.plan.recipe.calibrationSamples || undefined);
  if (!calibration) return undefined;
  return async (recipe, base) => {
    const { model, report } = await smoothed(job, m, base?.floatModel ?? m.floatModel, recipe, undefined, job.onStep);
    if (!model) return undefined;
    const view = new GraphView(model);
    const again = await savedOrCalibrated(job.model, model, view, planQuantization(view, recipe), {
      calibration, histograms: true, batchSize: m.batchSize, signal: job.signal, onProgress: job.onProgress, warn,
    });
    return {
      floatModel: model, view, ranges: again.ranges, samples: again.samples, smoothquant: { alpha: report.alpha },
      adopt: () => {
        base?.adopt();
        Object.assign(m, { floatModel: model, view, prepared: { ...m.prepared, model, smoothed: report } });
        Object.assign(calibrated, again);
      },
    };
  };
}

/**
 * Calibration samples for the algorithms the repair tries, as AdaRound and bias correction read
 * them, read when a trial asks; none when the job has no calibration data (a ranges file alone).
 */
function algorithmSamples(job: QuantizeJob, m: JobModel, calibrated: JobRanges): NonNullable<RepairInput['calibration']> | undefined {
  const source = calibrationAgain(job, m, calibrated, 'repair algorithms');
  if (!source) return undefined;
  const read = async (limit: number, batch: number) => {
    const s = await source();
    return (await readSubset(s, Math.min(s.count, limit), batch)).feeds;
  };
  return { adaRound: () => read(ADAROUND_SAMPLES, m.batchSize), biasCorrection: () => read(BIAS_CORRECTION_SAMPLES, m.batchSize) };
}

/** The ranges file to write: a calibration's, or a repair's fixes; never over the ranges file the job read. */
function rangesToWrite(job: QuantizeJob, paths: ArtifactPaths, calibrated: JobRanges | undefined, added: string | undefined, warn: (message: string) => void) {
  if (!calibrated) return {};
  const write = !job.ranges || (added !== undefined && path.resolve(job.ranges) !== path.resolve(paths.ranges));
  if (added && !write) warn(`the ranges with ${added} were not saved: ${paths.ranges} is the input ranges file; choose another --out to keep them`);
  if (!write) return {};
  return { ranges: { doc: calibrated.doc, description: added ? `ranges, with ${added}, to re-convert without calibrating` : 'calibrated ranges, to re-convert without calibrating' } };
}

/** The model as exported (inputs pinned for fixed-shape devices), its lowered forms, and their latency on this CPU. */
async function exportStage(job: QuantizeJob, m: JobModel, converted: ConvertResult, preflight: Preflight, evalSource: SampleSource, warn: (message: string) => void) {
  const backend = m.plan.backend;
  // One sample at batch 1: the latency check's input, and the shape a fixed-shape device is given.
  const sample = job.latency !== false || backend.device.staticShapes ? await firstFeed(evalSource, m) : undefined;
  let model = converted.model;
  if (backend.device.staticShapes && preflight.problems.length) {
    model = pinInputShapes(converted.model, sample!);
    warn(`${backend.device.name} compiles fixed shapes: the exported model's inputs are pinned to ${Object.entries(sample!).map(([n, t]) => `${n} [${t.dims.join(', ')}]`).join(', ')} (the first evaluation sample)`);
  }
  const forms = lowerings(backend, m.plan.kind, model, { qoperator: job.qoperator }, warn);
  let latency: LatencyReport | undefined;
  if (job.latency !== false) {
    job.onProgress?.({ stage: 'latency', done: 0, total: 1 });
    const timed = [{ label: 'float', model: m.floatModel }, { label: 'quantized', model }, ...forms.flatMap((f) => (f.timed ? [f.timed] : []))];
    latency = await measureLatency(timed.map((t) => ({ ...t, feed: sample! })), backend.latency, { signal: job.signal });
    job.onProgress?.({ stage: 'latency', done: 1, total: 1 });
  }
  throwIfAborted(job.signal);
  job.onProgress?.({ stage: 'save', done: 0, total: 1 });
  return { model, forms, latency };
}

async function firstFeed(source: SampleSource, m: JobModel): Promise<Feed> {
  try {
    for await (const batch of source.batches(1)) return firstSample(batch, m.inputs);
    throw new Error('it has no samples');
  } catch (err) {
    throw new JobError(`cannot read a sample from ${source.description}: ${(err as Error).message}`);
  }
}

interface ReportParts {
  job: QuantizeJob;
  m: JobModel;
  host: HostReport;
  calibrated?: JobRanges;
  converted: ConvertResult;
  evaluation: EvaluationResult;
  evalSource: SampleSource;
  layers: Report['layers'];
  placement: { preflight: Preflight; cost?: PreflightCost };
  latency?: LatencyReport;
  paths: ArtifactPaths;
  artifacts: Report['artifacts'];
  warnings: string[];
  timings: Report['timings'];
  repair?: Report['repair'];
  corrected?: BiasCorrection & { samples: number };
  rounded?: AdaRoundResult;
  gptq?: GptqReport;
  without?: Without;
}

type Without = { report: WithoutAlgorithmsReport } | { note: string };

/** The model as given (neither equalized nor smoothed), its plan and the ranges the job calibrated on it. */
interface GivenRanges {
  floatModel: onnx.ModelProto;
  view: GraphView;
  plan: QuantPlan;
  ranges: ReadonlyMap<string, Range>;
}

/**
 * `recipe` on the model as given, with the ranges the job calibrated on it before a repair rewrote
 * the model; undefined unless each tensor the recipe's plan calibrates was calibrated there itself,
 * by the same method on the same grid (a layer the repair moved to 16-bit has a range of its own).
 */
function onGivenRanges(recipe: Recipe, given: GivenRanges): GivenRanges | undefined {
  const plan = planQuantization(given.view, recipe);
  const calibrated = new Map(calibrationTensors(given.plan).map((t) => [t.tensor, t]));
  const same = calibrationTensors(plan).every((t) => {
    const was = calibrated.get(t.tensor);
    return was && was.method === t.method && was.type === t.type && was.symmetric === t.symmetric && given.ranges.has(t.tensor);
  });
  return same ? { floatModel: given.floatModel, view: given.view, plan, ranges: withBorrowedRanges(plan, given.ranges) } : undefined;
}

/**
 * The run's recipe without its algorithms, measured on the run's evaluation samples: each layer's
 * baseline. Without CLE or SmoothQuant the model is the one given, whose ranges differ: those the
 * job calibrated on it before a repair kept either, else calibrated again on the same data, or,
 * where the run has none (a ranges file alone), the baseline is not measured.
 */
async function withoutAlgorithms(job: QuantizeJob, m: JobModel, calibrated: JobRanges | undefined, given: GivenRanges | undefined, evalSource: SampleSource,
  numerics: MainNumerics, warn: (message: string) => void): Promise<Without> {
  const started = performance.now();
  const plain = { ...m.plan.recipe, algorithms: undefined };
  let { floatModel, view, plan } = m;
  let ranges: ReadonlyMap<string, Range> = calibrated?.ranges ?? new Map<string, Range>();
  let calibratedSamples = 0;
  const rewritten = m.prepared.equalized || m.prepared.smoothed;
  const reused = rewritten && given ? onGivenRanges(plain, given) : undefined;
  if (reused) {
    ({ floatModel, view, plan, ranges } = reused);
  } else if (rewritten) {
    const calibration = calibrationAgain(job, m, calibrated, 'calibration', m.plan.recipe.calibrationSamples || undefined);
    if (!calibration) return { note: 'not measured: without equalization or smoothing the model needs ranges of its own, and this run has no calibration data to measure them (it re-used a ranges file)' };
    const prepared = prepareForRecipe(m.loaded.model, plain);
    floatModel = prepared.model;
    view = new GraphView(prepared.model);
    plan = planQuantization(view, plain);
    // Its calibration and its evaluation fill one bar, one after the other.
    const calibrate = (p: Progress) => {
      calibratedSamples = p.total;
      job.onProgress?.({ ...p, stage: 'baseline', total: p.total + evalSource.count });
    };
    ranges = (await savedOrCalibrated(job.model, floatModel, view, plan, {
      calibration, histograms: false, batchSize: m.batchSize, signal: job.signal, warn, onProgress: calibrate,
    })).ranges;
  }
  const converted = convertModel(view, plan, ranges);
  const evaluation = await evaluate(floatModel, converted.model, converted.layers.map((l) => ({ float: l.float, quant: l.quant })), evalSource, {
    batchSize: m.batchSize, signal: job.signal, labels: m.labels, numerics, shapes: calibratedShapes(calibrated, evalSource), custom: m.custom,
    onProgress: (p) => job.onProgress?.({ ...p, stage: 'baseline', done: calibratedSamples + p.done, total: calibratedSamples + p.total }),
  });
  return { report: {
    outputs: outputReports(evaluation), metrics: metricsReport(evaluation), layers: Object.fromEntries([...evaluation.layers].map(([name, st]) => [name, dbToJson(st.sqnr)])),
    samples: evaluation.samples, seconds: Number(((performance.now() - started) / 1000).toFixed(2)),
  } };
}

/** What the recipe's algorithms did, for the report. */
function algorithmsReport(m: JobModel, corrected: ReportParts['corrected'], rounded: ReportParts['rounded'], gptq: ReportParts['gptq'], without: ReportParts['without']): Report['algorithms'] {
  const cle = m.prepared.equalized ? equalizationReport(m.prepared.equalized, m.floatModel, m.plan.weights) : undefined;
  const bias = corrected ? {
    method: corrected.method,
    layers: corrected.layers.map((l) => ({ node: l.node, before: Number(l.before.toPrecision(4)), after: Number(l.after.toPrecision(4)) })),
    passes: corrected.passes, samples: corrected.samples, seconds: Number(corrected.seconds.toFixed(2)),
  } : undefined;
  const adaround = rounded ? { ...rounded.report, seconds: Number(rounded.report.seconds.toFixed(2)) } : undefined;
  const baseline = without ? ('report' in without ? { without: without.report } : { withoutNote: without.note }) : {};
  const smoothquant = m.prepared.smoothed;
  return cle || smoothquant || bias || adaround || gptq
    ? { ...(cle ? { cle } : {}), ...(smoothquant ? { smoothquant } : {}), ...(bias ? { biasCorrection: bias } : {}), ...(adaround ? { adaround } : {}), ...(gptq ? { gptq } : {}), ...baseline } : undefined;
}

function quantizeReport(p: ReportParts): Report {
  const { job, m, evaluation, converted } = p;
  const plan: QuantPlan = m.plan;
  const quantBytes = p.artifacts[0].bytes;
  return {
    tool: TOOL,
    model: { file: path.resolve(job.model), bytes: m.loaded.bytes, opset: m.view.opset, irVersion: toNumber(m.loaded.model.irVersion) },
    backend: plan.recipe.backend,
    recipe: plan.recipe,
    quantized: { file: p.paths.model, bytes: quantBytes },
    sizes: { floatBytes: m.loaded.bytes, quantizedBytes: quantBytes, ratio: Number((quantBytes / m.loaded.bytes).toFixed(4)) },
    samples: { calibration: p.calibrated?.samples ?? 0, evaluation: evaluation.samples },
    data: { calibration: job.ranges ? `ranges from ${job.ranges}` : job.calibration ?? 'none', evaluation: p.evalSource.description },
    timings: p.timings,
    numerics: evaluation.numerics,
    ...(m.prepared.foldedWeights.length ? { foldedWeights: m.prepared.foldedWeights } : {}),
    outputs: outputReports(evaluation),
    metrics: metricsReport(evaluation),
    ...(m.custom ? { customMetric: customMetricReport(m.custom.metric) } : {}),
    ...(m.prepared.equalized || m.prepared.smoothed || p.corrected || p.rounded || p.gptq ? { algorithms: algorithmsReport(m, p.corrected, p.rounded, p.gptq, p.without) } : {}),
    ...(evaluation.deployed ? { deployed: deployedReport(evaluation, p.host, plan.recipe) } : {}),
    host: p.host,
    layers: p.layers,
    weights: converted.weights.map((w) => ({ name: w.name, node: w.node, op: w.op, type: w.type, granularity: w.granularity, sqnr: dbToJson(w.sqnr) })),
    float: [
      ...plan.nodes.filter((n) => n.status === 'float').map((n) => ({ node: n.node, op: n.op, reason: n.reason ?? '' })),
      ...converted.folded.map((f) => ({ node: f.node, op: f.op, reason: `folded into ${f.into}: the quantized range already clamps like it` })),
      ...m.prepared.foldedBatchNorms.map((f) => ({ node: f.batchNorm, op: 'BatchNormalization', reason: `folded into ${f.conv}'s weights` })),
    ],
    preflight: p.placement.preflight,
    ...(p.placement.cost ? { preflightCost: p.placement.cost } : {}),
    ...(p.latency ? { latency: p.latency } : {}),
    artifacts: p.artifacts,
    warnings: p.warnings,
    ...(p.repair ? { repair: p.repair } : {}),
  };
}
