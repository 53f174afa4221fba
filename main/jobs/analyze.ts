// Analysis as one job: where quantization error starts (cumulative SQNR), which layers make it
// (local SQNR), and which layers the output is sensitive to (each alone in float, each alone
// quantized). Reuses calibrated ranges when given; writes nothing but its report, if asked.
import * as path from 'node:path';
import { dbToJson, type AnalysisReport, type Db, type LayerReport, type SensitivityRow } from '../../shared/report';
import { searchNumerics, type MainNumerics } from '../../shared/numerics';
import type { Recipe } from '../../shared/recipe';
import { calibrate, throwIfAborted, type Progress } from '../calib/calibrate';
import { guessBatchSize, openSource, type ImagePreprocess } from '../data/readers';
import { evaluate } from '../eval/evaluate';
import { readLabels } from '../eval/metrics';
import { readSubset, score, SEARCH_SAMPLES, sensitivity, Subset } from '../eval/sensitivity';
import { inputSpecs } from '../onnx/session';
import { writeJsonAtomic } from '../base/atomic';
import { GraphView } from '../onnx/graph';
import { loadModel } from '../onnx/model';
import { convertModel, type Range } from '../convert/convert';
import { configRunner, memorySource, priorOrder, quality } from '../repair/search';
import { backendFor, calibrationTensors, planQuantization } from '../plan/plan';
import { prepareModel } from '../plan/prepare';
import { JobError, rangesFromFile, TOOL } from './quantize';

export interface AnalyzeJob {
  model: string;
  recipe: Recipe;
  calibration?: string;
  /** Samples the analysis runs on; defaults to the calibration data. */
  evaluation?: string;
  ranges?: string;
  labels?: string;
  /** Evaluation samples used (default: all of them up to SEARCH_SAMPLES): every sensitivity run sees the same ones. */
  samples?: number;
  /** Layers measured one by one, worst local SQNR first (default: a tenth of them, at least 16). */
  candidates?: number;
  /** Rank by this task metric instead of output SQNR. */
  metric?: string;
  /** Numerics of every figure (default: ort-cpu for the cpu backend, reference for the others). */
  numerics?: MainNumerics;
  batchSize?: number;
  preprocess?: ImagePreprocess;
  /** Where to write the analysis report (JSON); never the input model. */
  report?: string;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  onWarning?: (message: string) => void;
}

/** A fall of at least 6 dB (4x the noise power) from the tensor before, in graph order. */
const SHARP_DROP_DB = 6;

const num = (d: Db | undefined) => (d === undefined ? Infinity : d === 'inf' ? Infinity : d);

export function firstSharpDrop(layers: LayerReport[]): AnalysisReport['firstDrop'] {
  const ordered = [...layers].sort((a, b) => a.index - b.index);
  for (let i = 1; i < ordered.length; i++) {
    const from = num(ordered[i - 1].sqnr);
    const to = num(ordered[i].sqnr);
    if (Number.isFinite(to) && from - to >= SHARP_DROP_DB) return { name: ordered[i].name, node: ordered[i].node, from: ordered[i - 1].sqnr, to: ordered[i].sqnr };
  }
  return undefined;
}

export async function analyze(job: AnalyzeJob): Promise<AnalysisReport> {
  const t0 = performance.now();
  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    job.onWarning?.(m);
  };
  if (job.report && path.resolve(job.report) === path.resolve(job.model)) throw new JobError(`${job.report}: refusing to write the report over the input model; choose another --report`);
  backendFor(job.recipe);
  if (job.recipe.kind !== 'static') throw new JobError(`analysis needs static quantization: ${job.recipe.kind} quantization has no calibrated activations to analyse`);
  job.onProgress?.({ stage: 'load', done: 0, total: 1 });
  const loaded = loadModel(job.model);
  const floatModel = prepareModel(loaded.model, { forQdq: true }).model;
  const view = new GraphView(floatModel);
  const plan = planQuantization(view, job.recipe);
  const inputs = inputSpecs(view);
  const batchSize = job.batchSize ?? guessBatchSize(inputs);
  const labels = job.labels ? readLabels(job.labels).labels : undefined;
  job.onProgress?.({ stage: 'load', done: 1, total: 1 });

  const needed = calibrationTensors(plan);
  if (needed.length === 0) throw new JobError(`${job.model}: nothing to analyse: the ${job.recipe.backend} backend quantizes no activation of this model`);
  const ranges = new Map<string, Range>();
  if (job.ranges) {
    for (const [name, r] of rangesFromFile(job.ranges, view, plan).ranges) ranges.set(name, r);
  } else {
    if (!job.calibration) throw new JobError('analysis needs calibration data or saved ranges: pass --calibration SOURCE or --ranges FILE');
    const source = openSource(job.calibration, inputs, { preprocess: job.preprocess, limit: job.recipe.calibrationSamples || undefined });
    for (const w of source.warnings) warn(`calibration: ${w}`);
    const result = await calibrate(floatModel, needed, source, { batchSize, signal: job.signal, onProgress: job.onProgress });
    for (const [name, r] of result.ranges) ranges.set(name, { min: r.min, max: r.max });
  }
  throwIfAborted(job.signal);
  const converted = convertModel(view, plan, ranges);
  const evalSpec = job.evaluation ?? job.calibration;
  if (!evalSpec) throw new JobError('analysis needs samples to run: pass --eval SOURCE (or --calibration)');
  if (!job.evaluation) warn('analysed on the calibration data; pass --eval with held-out samples for an unbiased ranking');
  const evalSource = openSource(evalSpec, inputs, { preprocess: job.preprocess });
  for (const w of evalSource.warnings) warn(`evaluation: ${w}`);
  const { feeds, samples } = await readSubset(evalSource, job.samples ?? Math.min(evalSource.count, SEARCH_SAMPLES), batchSize);
  const subset = await Subset.create(floatModel, feeds, labels);
  const tPrepare = performance.now();

  const numerics = searchNumerics(job.recipe.backend, job.numerics);
  const baselineRun = await subset.measureModel(converted.model, 'quantized model', numerics, job.signal);
  const evaluation = await evaluate(floatModel, converted.model, converted.layers.map((l) => ({ float: l.float, quant: l.quant })),
    memorySource(subset, `${samples} analysis samples`), { batchSize, signal: job.signal, onProgress: job.onProgress, numerics });
  const layers: LayerReport[] = converted.layers.map((l) => {
    const s = evaluation.layers.get(l.float)!;
    return {
      name: l.float, node: l.node, op: l.op, index: l.index, type: l.type, sqnr: dbToJson(s.sqnr),
      ...(s.localSqnr !== undefined ? { localSqnr: dbToJson(s.localSqnr) } : {}),
      ...(l.params ? { scale: l.params.scale, zeroPoint: l.params.zeroPoint } : {}),
      range: l.range ? [l.range.min, l.range.max] : [s.refMin, s.refMax],
    };
  });
  const tEval = performance.now();

  const local = new Map([...evaluation.layers].map(([name, s]) => [name, s.localSqnr ?? Infinity]));
  const { runner, units } = await configRunner(numerics, view, job.recipe, plan, ranges, converted, subset);
  let sens;
  try {
    const candidates = job.candidates ?? Math.min(units.length, Math.max(16, Math.ceil(units.length / 10)));
    sens = await sensitivity(runner, priorOrder(units, local), { candidates, onlyQuantized: true, metric: job.metric, signal: job.signal, onProgress: job.onProgress });
  } finally {
    await runner.release();
  }
  const measured = new Map(sens.rows.map((r) => [r.unit, r]));
  const cumulative = new Map(layers.map((l) => [l.name, l.sqnr]));
  const sensitivityRows: SensitivityRow[] = sens.ranking.map((u, i) => {
    const unit = units[u];
    const r = measured.get(u);
    const localDb = Math.min(...unit.tensors.map((t) => local.get(t) ?? Infinity));
    return {
      name: unit.id, node: unit.node, op: unit.op, index: unit.index, tensors: unit.tensors, weights: unit.weights,
      ...(unit.tensors.length ? { localSqnr: dbToJson(localDb), cumulativeSqnr: cumulative.get(unit.tensors[0]) } : {}),
      ...(r?.onlyQuantized ? { onlyQuantized: dbToJson(r.onlyQuantized.sqnr) } : {}),
      ...(r ? { onlyFloat: dbToJson(r.onlyFloat.sqnr) } : {}),
      ...(r && job.metric ? { onlyFloatMetric: score(r.onlyFloat, job.metric) } : {}),
      rank: i + 1,
    };
  });
  const tEnd = performance.now();
  const report: AnalysisReport = {
    tool: TOOL,
    model: path.resolve(job.model),
    backend: job.recipe.backend,
    recipe: job.recipe,
    samples,
    numerics,
    baseline: quality(baselineRun, samples, numerics),
    layers,
    firstDrop: firstSharpDrop(layers),
    worstLocal: [...layers].sort((a, b) => num(a.localSqnr) - num(b.localSqnr)).slice(0, 5).map((l) => l.name),
    sensitivity: sensitivityRows,
    skipped: sens.skipped,
    runs: runner.runs + 1,
    timings: { prepare: Math.round(tPrepare - t0), evaluate: Math.round(tEval - tPrepare), sensitivity: Math.round(tEnd - tEval), total: Math.round(tEnd - t0) },
    warnings,
  };
  if (job.report) writeJsonAtomic(job.report, report);
  return report;
}
