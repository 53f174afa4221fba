// What every job starts from: its input, its warnings, and the model loaded, prepared and planned
// for the recipe, with its data sources opened against the model's inputs.
import type { MainNumerics } from '../../shared/numerics';
import type { PreprocessSpec } from '../../shared/preprocess';
import { SMOOTHQUANT_ALPHAS, type Recipe } from '../../shared/recipe';
import type { InputSpec } from '../base/feed';
import type { Control } from '../base/progress';
import { JobError } from '../base/errors';
import { throwIfAborted } from '../base/progress';
import { gptqMatMulNBits, gptqOnGrid, inputMoments } from '../convert/gptq';
import { convertModel, type ChosenWeights } from '../convert/convert';
import { channelAbsMax, smoothableGroups, smoothModel } from '../calib/smoothquant';
import { memorySource, readSubset } from '../data/subset';
import { Subset } from '../eval/sensitivity';
import { dbToJson, type Db, type GptqReport, type SmoothQuantReport } from '../../shared/report';
import { tensorToFloat32 } from '../onnx/tensor';
import { loadRounding, readRanges, savedOrCalibrated, type JobRanges } from '../calib/ranges-file';
import { pickIds, readLabels, type ClassIds, type Labels } from '../data/labels';
import { loadMetricModule, type CustomScoring } from '../eval/custom-metric';
import { guessBatchSize, heldOutSplit, openSource, type SampleSource } from '../data/readers';
import { defaultOpset, GraphView } from '../onnx/graph';
import { loadModel, type LoadedModel } from '../onnx/model';
import type { onnx } from '../onnx/proto';
import { inputSpecs } from '../onnx/session';
import { equalizeLayers } from '../plan/equalize';
import { backendFor, linearWeight, planQuantization, weightAsKN, type QuantPlan } from '../plan/plan';
import { prepareModel, type Prepared } from '../plan/prepare';
import { quantizeMatMulNBits, sameGrid, type MatMulNBitsWeight, type WeightRounding } from '../plan/qmath';
import { ADAROUND_SAMPLES, adaRound, roundableWeights, type AdaRoundResult } from '../repair/adaround';
import { analyticBiasCorrection, BIAS_CORRECTION_SAMPLES, correctBiases, foldedOutputStats, type BiasCorrection } from '../repair/bias-correction';

export interface JobInput extends Control {
  model: string;
  recipe: Recipe;
  /** Calibration data source (see openSource); needed for static quantization unless `ranges` is given. */
  calibration?: string;
  /** Evaluation data; defaults to the held-out part of the calibration data with `holdOut`, else to the calibration data itself. */
  evaluation?: string;
  /** Fraction in (0, 1) of the calibration data's samples, spread evenly through it, kept for evaluation and never calibrated on. */
  holdOut?: number;
  /** A ranges file from an earlier run: re-convert and re-evaluate without calibrating. */
  ranges?: string;
  /** Labels of the evaluation samples (with `holdOut`, of every sample of the calibration data): class ids (.npy, folder-per-class, JSON) for accuracy metrics, any JSON values for a metric module. */
  labels?: string;
  /** The user's metric module (.mjs): `custom` and `float-custom` in the metrics, and `custom:V` as a repair target. */
  metricModule?: string;
  batchSize?: number;
  preprocess?: PreprocessSpec;
  /** Drop samples holding NaN or ±Inf, saying how many, instead of refusing the data. */
  skipNonFinite?: boolean;
  /** Images over this many decoded megapixels are refused from their header (default 50). */
  maxMegapixels?: number;
  /** Numerics of the figures (quantize: default reference; searches: ort-cpu for cpu, reference for the others). */
  numerics?: MainNumerics;
  onWarning?: (message: string) => void;
}

/** A job's warnings: kept for its report, and heard by its host as they come. */
export function jobWarnings(job: Pick<JobInput, 'onWarning'>): { list: string[]; warn: (message: string) => void } {
  const list: string[] = [];
  return { list, warn: (m) => {
    list.push(m);
    job.onWarning?.(m);
  } };
}

/**
 * The float model as the recipe's quantizer sees it; tensor names in a report refer to this model,
 * and per-layer figures compare with its tensors (after equalization, channels are rescaled).
 */
export function prepareForRecipe(model: onnx.ModelProto, recipe: Recipe): Prepared {
  const prepared = prepareModel(model, { forQdq: recipe.kind === 'static' });
  if (!recipe.algorithms?.cle) return prepared;
  const start = performance.now();
  const equalized = equalizeLayers(prepared.model, prepared.foldedBatchNorms);
  return { ...prepared, model: equalized.model, equalized: { pairs: equalized.pairs, seconds: (performance.now() - start) / 1000 } };
}

export interface JobModel {
  loaded: LoadedModel;
  prepared: Prepared;
  floatModel: onnx.ModelProto;
  view: GraphView;
  plan: QuantPlan;
  inputs: InputSpec[];
  batchSize: number;
  /** Class ids, where the labels are class ids. */
  labels?: ClassIds;
  /** The user's metric module, loaded, with the labels it sees. */
  custom?: CustomScoring;
  /** How `holdOut` splits the calibration data: the samples evaluation reads, and those calibration reads. */
  heldOut?: { evaluation: number[]; calibration: number[]; total: number };
  /** Opens a data source against the model's inputs; its warnings join the job's, prefixed by `what`. */
  open(spec: string, what: string, limit?: number): Promise<SampleSource>;
  /** The calibration data, less what is held out, up to `limit` samples. */
  calibrationData(what: string, limit?: number): Promise<SampleSource>;
  /**
   * The samples figures are measured on, as described at `JobInput.evaluation`; random ones for a
   * job with no data. Where that is the calibration data itself, `calibrated` (already open) is used
   * when given, and `warn` hears why the figure is flattered.
   */
  evaluationData(what: string, warn: (message: string) => void, calibrated?: SampleSource): Promise<SampleSource>;
}

export async function loadForJob(job: JobInput, recipe: Recipe, warn: (message: string) => void): Promise<JobModel> {
  backendFor(recipe);
  const loaded = loadModel(job.model);
  const prepared = prepareForRecipe(loaded.model, recipe);
  const view = new GraphView(prepared.model);
  if (prepared.upgradedOpset) warn(`moved the model from opset ${defaultOpset(loaded.model)} to ${prepared.upgradedOpset}: Q/DQ models need it (attributes of Slice, TopK, Clip and Pad became inputs, Upsample became Resize; same results)`);
  const inputs = inputSpecs(view);
  const open = async (spec: string, what: string, limit?: number, samples?: readonly number[]) => {
    const source = await openSource(spec, inputs, { preprocess: job.preprocess, limit, samples, skipNonFinite: job.skipNonFinite, maxMegapixels: job.maxMegapixels, onWarning: (m) => warn(`${what}: ${m}`) });
    for (const w of source.warnings) warn(`${what}: ${w}`);
    return source;
  };
  const heldOut = await splitForEvaluation(job, inputs);
  const labels = job.labels ? heldOutLabels(readLabels(job.labels), heldOut, job.labels) : undefined;
  const metric = job.metricModule ? await loadMetricModule(job.metricModule) : undefined;
  return {
    loaded, prepared, floatModel: prepared.model, view, plan: planQuantization(view, recipe), inputs,
    batchSize: job.batchSize ?? guessBatchSize(inputs),
    labels: labels?.labels,
    ...(metric ? { custom: { metric, labels: labels?.values } } : {}),
    ...(heldOut ? { heldOut } : {}),
    open,
    calibrationData: (what, limit) => {
      if (!job.calibration) throw new JobError('static quantization needs calibration data: pass --calibration (a .npy file, a folder of images or .npy files, a manifest, or random:N)');
      return open(job.calibration, what, limit, heldOut?.calibration);
    },
    evaluationData: async (what, warnOf, calibrated) => {
      if (job.evaluation) return open(job.evaluation, what);
      if (!job.calibration) return open('random:8', what);
      if (heldOut) return open(job.calibration, what, undefined, heldOut.evaluation);
      warnOf('measured on the calibration data, which flatters the figures; pass --eval with other samples, or --hold-out 0.25');
      return calibrated ?? open(job.calibration, what);
    },
  };
}

/** Where `holdOut` splits the calibration data, counted once from the source itself. */
async function splitForEvaluation(job: JobInput, inputs: InputSpec[]): Promise<JobModel['heldOut']> {
  if (job.holdOut === undefined) return undefined;
  if (!(job.holdOut > 0 && job.holdOut < 1)) throw new JobError(`--hold-out ${job.holdOut}: give a fraction of the calibration samples between 0 and 1, e.g. 0.25`);
  if (job.evaluation) throw new JobError('--hold-out splits the calibration data for evaluation; with --eval the evaluation data is given: pass one of the two');
  if (!job.calibration) throw new JobError('--hold-out splits the calibration data: pass --calibration');
  return heldOutSplit(job.calibration, inputs, job.holdOut, { preprocess: job.preprocess, maxMegapixels: job.maxMegapixels });
}

/** Labels given for every calibration sample, cut to the held-out ones that evaluation reads. */
function heldOutLabels(labels: Labels, heldOut: JobModel['heldOut'], spec: string): Labels {
  if (!heldOut) return labels;
  if (labels.values.length !== heldOut.total) {
    throw new JobError(`${spec}: ${labels.values.length} labels for ${heldOut.total} calibration samples; with part of them held out for evaluation, give one label per calibration sample, in reading order`);
  }
  const ids = labels.labels;
  return { ...labels, values: heldOut.evaluation.map((i) => labels.values[i]), ...(ids ? { labels: pickIds(ids, heldOut.evaluation) } : {}) };
}

/**
 * The calibration data again, for the work after calibrating (AdaRound, bias correction, the
 * repair's trials, the baseline without the algorithms): the source calibration read, else the
 * job's calibration data opened once, on first use, as `what`, up to `limit` samples. Undefined
 * for a run from a ranges file alone, which has none.
 */
export function calibrationAgain(job: JobInput, m: JobModel, calibrated: JobRanges | undefined, what: string, limit?: number): (() => Promise<SampleSource>) | undefined {
  if (calibrated?.source) {
    const source = calibrated.source;
    return () => Promise.resolve(source);
  }
  if (!job.calibration) return undefined;
  let opened: Promise<SampleSource> | undefined;
  return () => (opened ??= m.calibrationData(what, limit));
}

/** AdaRound where the recipe asks for it: the rounding of each weight, which every conversion of the job then uses. */
export async function roundedForRecipe(job: JobInput, m: JobModel, calibrated: JobRanges | undefined, warn: (message: string) => void,
  onStep?: (message: string) => void): Promise<AdaRoundResult | undefined> {
  const asked = m.plan.recipe.algorithms?.adaround;
  if (!asked) return undefined;
  if (m.plan.kind !== 'static' || !calibrated) {
    warn(`AdaRound skipped: it rounds the weights of static quantization, and this run is ${m.plan.kind}`);
    return undefined;
  }
  const saved = savedRounding(job, m, calibrated, asked.iterations);
  if (saved) {
    onStep?.(`AdaRound: the rounding saved in ${job.ranges}`);
    return saved;
  }
  const again = calibrationAgain(job, m, calibrated, 'AdaRound');
  if (!again) throw new JobError('AdaRound learns from calibration samples: pass --calibration with the saved ranges');
  const source = await again();
  const { feeds, samples } = await readSubset(source, Math.min(source.count, ADAROUND_SAMPLES), m.batchSize);
  onStep?.(`AdaRound, ${asked.iterations} iterations per layer, on ${samples} calibration samples`);
  const onLayer = (done: number, of: number) => job.onProgress?.({ stage: 'convert', done, total: of });
  return adaRound(m.floatModel, m.plan, calibrated.ranges, feeds, { iterations: asked.iterations, signal: job.signal, onLayer });
}

/** Calibration samples each α of SmoothQuant's search is calibrated and measured on. */
const SMOOTHQUANT_SEARCH_SAMPLES = 32;

/**
 * `floatModel` smoothed by SmoothQuant (Xiao et al., 2022) for `recipe`: channel ranges from one pass over
 * the calibration data; α as given, or the one of SMOOTHQUANT_ALPHAS whose model, calibrated and
 * quantized, gives the best output SQNR on the first calibration samples. Undefined with the
 * report alone when no activation can be smoothed.
 */
export async function smoothed(job: JobInput, m: JobModel, floatModel: onnx.ModelProto, recipe: Recipe, alpha: number | undefined,
  onStep?: (message: string) => void): Promise<{ model?: onnx.ModelProto; report: SmoothQuantReport }> {
  if (!job.calibration) throw new JobError('SmoothQuant measures each channel\'s range on calibration samples: pass --calibration');
  const start = performance.now();
  const view = new GraphView(floatModel);
  const { groups, skipped } = smoothableGroups(view, planQuantization(view, recipe));
  const source = await m.calibrationData('SmoothQuant', recipe.calibrationSamples || undefined);
  const report = (a: number, layers: SmoothQuantReport['layers'], searched?: SmoothQuantReport['searched']): SmoothQuantReport => ({
    alpha: a, ...(searched ? { searched } : {}), samples: source.count, seconds: Number(((performance.now() - start) / 1000).toFixed(2)), layers, skipped,
  });
  if (!groups.length) return { report: report(alpha ?? 0, []) };
  onStep?.(`SmoothQuant: channel ranges of ${groups.length} activations on ${source.count} calibration samples`);
  const amax = await channelAbsMax(floatModel, new Map(groups.map((g) => [g.input, g.k])), source.batches(m.batchSize), job.signal);
  let searched: SmoothQuantReport['searched'];
  if (alpha === undefined) {
    const { feeds, samples } = await readSubset(source, Math.min(source.count, SMOOTHQUANT_SEARCH_SAMPLES), m.batchSize);
    onStep?.(`SmoothQuant: choosing α among ${SMOOTHQUANT_ALPHAS.join(', ')} by output SQNR on ${samples} calibration samples`);
    const subset = await Subset.create(floatModel, feeds);
    searched = [];
    for (const a of SMOOTHQUANT_ALPHAS) {
      throwIfAborted(job.signal);
      const trial = smoothModel(view, groups, amax, a);
      const trialView = new GraphView(trial.model);
      const plan = planQuantization(trialView, recipe);
      const { ranges } = await savedOrCalibrated(job.model, trial.model, trialView, plan, {
        calibration: () => Promise.resolve(memorySource(feeds, `${samples} calibration samples`)), histograms: false, batchSize: m.batchSize, signal: job.signal, warn: () => undefined,
      });
      const q = await subset.measureModel(convertModel(trialView, plan, ranges).model, `model smoothed with α ${a}`, 'reference', job.signal);
      searched.push({ alpha: a, outputSqnr: dbToJson(q.sqnr) });
    }
    const sqnr = (t: { outputSqnr: Db }) => (t.outputSqnr === 'inf' ? Infinity : Number(t.outputSqnr));
    alpha = searched.reduce((best, t) => (sqnr(t) > sqnr(best) ? t : best)).alpha;
  }
  const result = smoothModel(view, groups, amax, alpha);
  return { model: result.model, report: report(alpha, result.report, searched) };
}

/** SmoothQuant where the recipe asks for it: the job's float model becomes the smoothed one (the same function), and its plan that model's. */
export async function smoothForRecipe(job: JobInput, m: JobModel, warn: (message: string) => void, onStep?: (message: string) => void): Promise<void> {
  const asked = m.plan.recipe.algorithms?.smoothquant;
  if (!asked) return;
  if (m.plan.kind !== 'static') {
    warn(`SmoothQuant skipped: it smooths the activations of static quantization, and this run is ${m.plan.kind}`);
    return;
  }
  const saved = job.ranges ? readRanges(job.ranges).smoothquant : undefined;
  // Saved ranges fit the model smoothed with their own α only: it is used instead of a search.
  if (job.ranges && (!saved || (asked.alpha !== undefined && asked.alpha !== saved.alpha))) {
    throw new JobError(`${job.ranges}: these ranges were calibrated on the model ${saved ? `smoothed with α ${saved.alpha}` : 'without SmoothQuant'}; ${saved ? `use --smoothquant:${saved.alpha}` : 'drop --smoothquant'}, or calibrate again`);
  }
  const { model, report } = await smoothed(job, m, m.floatModel, m.plan.recipe, saved?.alpha ?? asked.alpha, onStep);
  if (!model) warn(`SmoothQuant changed nothing: none of the ${report.skipped.length} inputs of quantized MatMul/Gemm layers comes from a LayerNormalization or a linear layer that could take its scales`);
  const view = model ? new GraphView(model) : m.view;
  Object.assign(m, { floatModel: view.model, view, plan: planQuantization(view, m.plan.recipe), prepared: { ...m.prepared, model: view.model, smoothed: report } });
}

/** H's of all inputs measured in one pass over the data stay under this many bytes; more inputs take more passes. */
const GPTQ_PASS_BYTES = 512 * 2 ** 20;

/**
 * GPTQ where the recipe asks for it: each weight-only MatMul/Gemm weight (4-bit MatMulNBits, or
 * 8-bit on its DequantizeLinear grid) quantized against its inputs' moments on the calibration
 * data, for convertModel. Without calibration data the weights are rounded to nearest, as they are
 * without GPTQ, and the warning says so.
 */
export async function gptqForRecipe(job: JobInput, m: JobModel, warn: (message: string) => void,
  onStep?: (message: string) => void): Promise<{ chosen: ChosenWeights; report: GptqReport } | undefined> {
  const asked = m.plan.recipe.algorithms?.gptq;
  if (!asked) return undefined;
  const recipe = m.plan.recipe;
  const layers = m.plan.weightOnly.flatMap((spec) => {
    const node = m.view.nodes.find((n) => n.name === spec.node);
    const linear = node && (node.op === 'MatMul' || node.op === 'Gemm') ? linearWeight(m.view, node) : undefined;
    // An 8-bit weight has one grid however many layers read it, and GPTQ's levels fit one layer's inputs.
    const own = spec.bits === 4 || (m.view.consumers.get(spec.weight) ?? []).length === 1;
    return node && linear && typeof linear !== 'string' && own ? [{ node, linear, spec }] : [];
  });
  if (m.plan.kind !== 'weight-only' || !layers.length) {
    warn(`GPTQ skipped: it quantizes weight-only MatMul/Gemm weights, and this run ${m.plan.kind !== 'weight-only' ? `is ${m.plan.kind}` : 'has none'}`);
    return undefined;
  }
  if (!job.calibration) {
    warn('GPTQ skipped: it needs calibration data (the layers\' inputs); the weights are rounded to nearest. Pass --calibration');
    return undefined;
  }
  const start = performance.now();
  const source = await m.calibrationData('GPTQ', recipe.calibrationSamples || undefined);
  const inputs = new Map(layers.map(({ node, linear }) => [node.inputs[0], linear.k]));
  onStep?.(`GPTQ on ${layers.length} layers (${inputs.size} distinct inputs), ${source.count} calibration samples`);
  // Inputs in passes whose sums fit the budget: memory is bounded by the largest layers, not the model.
  const passes: Array<Map<string, number>> = [];
  let bytes = Infinity;
  for (const [name, k] of inputs) {
    if (bytes + k * k * 8 > GPTQ_PASS_BYTES) {
      passes.push(new Map());
      bytes = 0;
    }
    passes[passes.length - 1].set(name, k);
    bytes += k * k * 8;
  }
  const nbits = new Map<string, MatMulNBitsWeight>();
  const levels = new Map<string, Int32Array>();
  const reported: GptqReport['layers'] = [];
  const total = layers.length + passes.length;
  let done = 0;
  for (const pass of passes) {
    job.onProgress?.({ stage: 'convert', done: done++, total });
    const moments = await inputMoments(m.floatModel, pass, source.batches(m.batchSize), job.signal);
    for (const { node, linear, spec } of layers.filter((l) => pass.has(l.node.inputs[0]))) {
      throwIfAborted(job.signal);
      job.onProgress?.({ stage: 'convert', done: done++, total });
      const began = performance.now();
      const data = tensorToFloat32(m.view.constantTensor(linear.weight, node)!);
      const h = moments.get(node.inputs[0])!;
      let r: { outputSqnr: { nearest: number; gptq: number }; fellBack?: string };
      if (spec.bits === 4) {
        const b = weightAsKN(data, linear);
        const nearest = quantizeMatMulNBits(b, linear.k, linear.n, recipe.blockSize, recipe.weightSymmetric);
        const found = await gptqMatMulNBits(b, linear.k, linear.n, h, { ...asked, blockSize: recipe.blockSize, symmetric: recipe.weightSymmetric }, nearest);
        nbits.set(node.name, found.weight);
        r = found;
      } else {
        const found = await gptqOnGrid(data, linear, h, asked, m.plan.weights.get(linear.weight)!);
        levels.set(linear.weight, found.weight);
        r = found;
      }
      reported.push({
        node: node.name, weight: linear.weight, outputSqnr: { before: dbToJson(r.outputSqnr.nearest), after: dbToJson(r.outputSqnr.gptq) },
        kept: r.fellBack ? 'nearest' : 'gptq', ...(r.fellBack ? { note: r.fellBack } : {}), seconds: Number(((performance.now() - began) / 1000).toFixed(3)),
      });
    }
  }
  job.onProgress?.({ stage: 'convert', done: total, total });
  const fourBit = recipe.weightType === 'int4' || recipe.weightType === 'uint4';
  const grid = fourBit ? `${recipe.weightType} blocks of ${recipe.blockSize}` : `${recipe.weightType} ${recipe.granularity}${recipe.granularity === 'per-block' ? ` (${recipe.blockSize})` : ''}`;
  return { chosen: { nbits, levels }, report: { ...asked, grid, samples: source.count, seconds: Number(((performance.now() - start) / 1000).toFixed(2)), layers: reported } };
}

/** The rounding a ranges file saved, where it was learned with the same iterations and covers every weight AdaRound would round, on the same grid. */
function savedRounding(job: JobInput, m: JobModel, calibrated: JobRanges, iterations: number): AdaRoundResult | undefined {
  const saved = calibrated.doc.adaround;
  if (!saved || !job.ranges || saved.iterations !== iterations) return undefined;
  const rounding = loadRounding(job.ranges, saved);
  const roundable = roundableWeights(m.view, m.plan);
  const covered = roundable.every(({ spec }) => {
    const r = rounding.get(spec.tensor);
    return r !== undefined && sameGrid(r, spec);
  });
  // A layer this run keeps in float has no rounding to report.
  const now = new Set(roundable.map(({ spec }) => spec.tensor));
  return covered ? { rounding, report: { ...saved.report, layers: saved.report.layers.filter((l) => now.has(l.weight)), reusedFrom: job.ranges } } : undefined;
}

/** A run without calibration data corrects analytically, from the BatchNorm statistics its Conv inputs come with. */
function analyticForRecipe(m: JobModel, warn: (message: string) => void, onStep?: (message: string) => void): BiasCorrection & { samples: number } | undefined {
  if (m.plan.kind === 'dynamic') {
    warn('bias correction skipped: it corrects static quantization (measured on calibration samples) and weight-only quantization (from BatchNorm statistics), and this run is dynamic');
    return undefined;
  }
  const start = performance.now();
  const stats = foldedOutputStats(m.view, m.prepared.foldedBatchNorms, m.prepared.equalized?.pairs);
  const corrected = analyticBiasCorrection(m.floatModel, m.plan, stats);
  if (!corrected.layers.length) {
    warn('bias correction skipped: a weight-only run has no calibration data to measure on, and no quantized Conv reads a conv folded with a BatchNorm (directly or through a Relu), whose statistics would give its input\'s mean');
    return undefined;
  }
  onStep?.(`analytic bias correction of ${corrected.layers.length} convs from BatchNorm statistics`);
  return { ...corrected, method: 'analytic', passes: 0, samples: 0, seconds: (performance.now() - start) / 1000 };
}

/** Bias correction where the recipe asks for it: the float model with corrected biases, which is what the job converts. */
export async function correctedForRecipe(job: JobInput, m: JobModel, calibrated: JobRanges | undefined, warn: (message: string) => void,
  onStep?: (message: string) => void, rounding?: WeightRounding): Promise<(BiasCorrection & { samples: number }) | undefined> {
  if (!m.plan.recipe.algorithms?.biasCorrection) return undefined;
  if (m.plan.kind !== 'static' || !calibrated) return analyticForRecipe(m, warn, onStep);
  const again = calibrationAgain(job, m, calibrated, 'bias correction');
  if (!again) throw new JobError('bias correction measures on calibration samples: pass --calibration with the saved ranges');
  const source = await again();
  const { feeds, samples } = await readSubset(source, Math.min(source.count, BIAS_CORRECTION_SAMPLES), m.batchSize);
  onStep?.(`bias correction on ${samples} calibration samples`);
  // It runs before conversion and takes one run per level (39 on the recognizer): the Convert bar fills with it.
  const onLevel = (level: number, of: number) => job.onProgress?.({ stage: 'convert', done: level - 1, total: of });
  return { ...await correctBiases(m.floatModel, m.plan, calibrated.ranges, feeds, { signal: job.signal, onLevel, rounding }), samples };
}
