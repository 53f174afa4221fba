// Analysis as one job: where quantization error starts (cumulative SQNR), which layers make it
// (local SQNR), and which layers the output is sensitive to (each alone in float, each alone
// quantized). Reuses calibrated ranges when given; writes nothing but its report, if asked.
import * as path from 'node:path';
import { searchNumerics } from '../../shared/numerics';
import { dbNumber, dbToJson, type AnalysisReport, type LayerReport, type SensitivityRow } from '../../shared/report';
import { TOOL } from '../../shared/tool';
import { writeJsonAtomic } from '../base/atomic';
import { JobError } from '../base/errors';
import { refuseOverInputs } from '../base/paths';
import { throwIfAborted } from '../base/progress';
import { calibratedShapes, savedOrCalibrated } from '../calib/ranges-file';
import { convertModel } from '../convert/convert';
import { memorySource, readSubset, SEARCH_SAMPLES } from '../data/subset';
import { customMetricReport } from '../eval/custom-metric';
import { evaluate } from '../eval/evaluate';
import { layerRows, rowPairs } from '../eval/layer-rows';
import {
  configRunner, defaultCandidates, priorOrder, quality, score, sensitivity, Subset, type SensitivityResult, type SwitchUnit,
} from '../eval/sensitivity';
import { calibrationTensors } from '../plan/plan';
import { jobWarnings, loadForJob, type JobInput, type JobModel } from './job';

export interface AnalyzeJob extends JobInput {
  /** Evaluation samples used (default: all of them up to SEARCH_SAMPLES): every sensitivity run sees the same ones. */
  samples?: number;
  /** Layers measured one by one, worst local SQNR first (default: a tenth of them, at least 16). */
  candidates?: number;
  /** Rank by this task metric instead of output SQNR. */
  metric?: string;
  /** Where to write the analysis report (JSON); never the input model. */
  report?: string;
}

/** A fall of at least 6 dB (4x the noise power) from the tensor before, in graph order. */
const SHARP_DROP_DB = 6;

export function firstSharpDrop(layers: LayerReport[]): AnalysisReport['firstDrop'] {
  const ordered = [...layers].sort((a, b) => a.index - b.index);
  for (let i = 1; i < ordered.length; i++) {
    const from = dbNumber(ordered[i - 1].sqnr);
    const to = dbNumber(ordered[i].sqnr);
    if (Number.isFinite(to) && from - to >= SHARP_DROP_DB) return { name: ordered[i].name, node: ordered[i].node, from: ordered[i - 1].sqnr, to: ordered[i].sqnr };
  }
  return undefined;
}

export async function analyze(job: AnalyzeJob): Promise<AnalysisReport> {
  const t0 = performance.now();
  const log = jobWarnings(job);
  if (job.recipe.kind !== 'static') throw new JobError(`analysis needs static quantization: ${job.recipe.kind} quantization has no calibrated activations to analyse`);
  job.onProgress?.({ stage: 'load', done: 0, total: 1 });
  const m = await loadForJob(job, job.recipe, log.warn);
  if (job.report) refuseOverInputs([{ file: job.report, what: 'the analysis report' }], [job.model, ...(m.loaded.externalFiles ?? [])], 'choose another --report');
  job.onProgress?.({ stage: 'load', done: 1, total: 1 });
  if (calibrationTensors(m.plan).length === 0) throw new JobError(`${job.model}: nothing to analyse: the ${job.recipe.backend} backend quantizes no activation of this model`);
  if (!job.ranges && !job.calibration) throw new JobError('analysis needs calibration data or saved ranges: pass --calibration SOURCE or --ranges FILE');
  if (job.metric === 'custom' && !m.custom) throw new JobError('--metric custom ranks by the metric module: pass --metric-module FILE.mjs');
  const calibrated = await savedOrCalibrated(job.model, m.floatModel, m.view, m.plan, {
    file: job.ranges, calibration: () => m.calibrationData('calibration', job.recipe.calibrationSamples || undefined), histograms: false,
    batchSize: m.batchSize, signal: job.signal, onProgress: job.onProgress, warn: log.warn,
  });
  throwIfAborted(job.signal);
  const { ranges } = calibrated;
  // The switch model puts each layer back in float from the model as converted; with corrected
  // biases, "back in float" would keep the correction. The analysis says what it measures instead.
  if (m.plan.recipe.algorithms?.biasCorrection) log.warn('analysed without bias correction: the ranking is of the uncorrected model (quantize applies it after the repair search too)');
  if (m.plan.recipe.algorithms?.adaround) log.warn('analysed with weights rounded to nearest: AdaRound takes minutes per run, and quantize applies it after the repair search');
  const converted = convertModel(m.view, m.plan, ranges);
  const subset = await analysisSubset(job, m, log.warn);
  const tPrepare = performance.now();

  const numerics = searchNumerics(job.recipe.backend, job.numerics);
  const baseline = await subset.measureModel(converted.model, 'quantized model', numerics, job.signal);
  const analysed = memorySource(subset.read, `${subset.samples} analysis samples`);
  const evaluation = await evaluate(m.floatModel, converted.model, rowPairs(converted.layers), analysed,
    { batchSize: m.batchSize, signal: job.signal, onProgress: job.onProgress, numerics, shapes: calibratedShapes(calibrated, analysed), local: true });
  const { runner, units } = await configRunner(numerics, m.view, m.plan, ranges, converted, subset, undefined, baseline);
  const nodes = new Map(units.flatMap((u) => u.tensors.map((t) => [t, u.nodes] as const)));
  const layers = layerRows(converted.layers, [], evaluation, { view: m.view, converted, nodes });
  const tEval = performance.now();

  const local = new Map([...evaluation.layers].map(([name, st]) => [name, st.localSqnr ?? Infinity]));
  let sens;
  try {
    sens = await sensitivity(runner, priorOrder(units, local), {
      candidates: job.candidates ?? defaultCandidates(units.length), onlyQuantized: true, metric: job.metric, signal: job.signal, onProgress: job.onProgress,
    });
  } finally {
    await runner.release();
  }
  const tEnd = performance.now();
  const report: AnalysisReport = {
    tool: TOOL,
    model: path.resolve(job.model),
    backend: job.recipe.backend,
    recipe: job.recipe,
    samples: subset.samples,
    numerics,
    baseline: quality(baseline, subset.samples, numerics),
    ...(m.custom ? { customMetric: customMetricReport(m.custom.metric) } : {}),
    layers,
    firstDrop: firstSharpDrop(layers),
    worstLocal: [...layers].sort((a, b) => dbNumber(a.localSqnr) - dbNumber(b.localSqnr)).slice(0, 5).map((l) => l.name),
    sensitivity: sensitivityRows(sens, units, local, layers, job.metric),
    skipped: sens.skipped,
    runs: runner.runs + 1,
    timings: { prepare: Math.round(tPrepare - t0), evaluate: Math.round(tEval - tPrepare), sensitivity: Math.round(tEnd - tEval), total: Math.round(tEnd - t0) },
    warnings: log.list,
  };
  if (job.report) writeJsonAtomic(job.report, report);
  return report;
}

/** The fixed samples every measurement of the analysis sees: the evaluation data, else the calibration data with a warning. */
async function analysisSubset(job: AnalyzeJob, m: JobModel, warn: (message: string) => void): Promise<Subset> {
  if (!job.evaluation && !job.calibration) throw new JobError('analysis needs samples to run: pass --eval SOURCE (or --calibration)');
  const source = await m.evaluationData('evaluation', warn);
  const { feeds } = await readSubset(source, job.samples ?? Math.min(source.count, SEARCH_SAMPLES), m.batchSize);
  return Subset.create(m.floatModel, feeds, m.labels, m.custom);
}

/** The ranking as report rows: measured units by what keeping each in float gains, then the rest by local SQNR. */
function sensitivityRows(sens: SensitivityResult, units: SwitchUnit[], local: ReadonlyMap<string, number>, layers: LayerReport[], metric?: string): SensitivityRow[] {
  const measured = new Map(sens.rows.map((r) => [r.unit, r]));
  const cumulative = new Map(layers.map((l) => [l.name, l.sqnr]));
  return sens.ranking.map((u, i) => {
    const unit = units[u];
    const r = measured.get(u);
    const localDb = Math.min(...unit.tensors.map((t) => local.get(t) ?? Infinity));
    return {
      name: unit.id, node: unit.node, op: unit.op, index: unit.index, tensors: unit.tensors, weights: unit.weights,
      ...(unit.tensors.length ? { localSqnr: dbToJson(localDb), cumulativeSqnr: cumulative.get(unit.tensors[0]) } : {}),
      ...(r?.onlyQuantized ? { onlyQuantized: dbToJson(r.onlyQuantized.sqnr) } : {}),
      ...(r ? { onlyFloat: dbToJson(r.onlyFloat.sqnr) } : {}),
      ...(r && metric ? { onlyFloatMetric: score(r.onlyFloat, metric) } : {}),
      rank: i + 1,
    };
  });
}
