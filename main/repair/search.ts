// Automatic repair: given a target (output SQNR, or a task metric), first re-choose the calibration
// method from the saved histograms (costs no precision, and takes seconds); then the algorithms
// that keep every layer quantized (equalization, AdaRound, bias correction), learned on the job's
// own ranges, with the method re-chosen again on top; then, from the better of the two, move the
// fewest layers to higher precision — 16-bit activations where the backend offers them, else float
// where it allows float — until the model as exported meets the target. Candidates come from
// sensitivity on the search's runner; every answer is checked on the real converted model, in the
// search's one numerics, and a change is kept only where it measures better by more than the search
// samples' noise (`better`).
import { recipeProblems, sixteenBitType } from '../../shared/backends';
import { describeTarget, metricScore, type Target } from '../../shared/metrics';
import type { MainNumerics } from '../../shared/numerics';
import type { Progress } from '../../shared/progress';
import { adaRoundIterations, withHigherPrecision, type QuantType, type Recipe } from '../../shared/recipe';
import type { RepairAction, RepairChange, RepairReport } from '../../shared/report';
import { sampleCount, type Feed } from '../base/feed';
import { throwIfAborted } from '../base/progress';
import { FIX_METHODS, rerange, type SavedHistogram } from '../calib/rerange';
import { convertModel, type ConvertResult } from '../convert/convert';
import { memorySource } from '../data/subset';
import { localSqnr } from '../eval/evaluate';
import {
  configRunner, defaultCandidates, priorOrder, quality, score, sensitivity, SwitchRunner, switchUnits, unitMove,
  type ConfigRunner, type RunQuality, type Subset, type SwitchUnit,
} from '../eval/sensitivity';
import { GraphView } from '../onnx/graph';
import type { onnx } from '../onnx/proto';
import { calibrationTensors, planQuantization, withBorrowedRanges, type QuantPlan } from '../plan/plan';
import type { Range } from '../stats/range';
import { adaRound, type AdaRoundResult } from './adaround';
import { correctBiases } from './bias-correction';

export interface RepairInput {
  view: GraphView;
  floatModel: onnx.ModelProto;
  recipe: Recipe;
  plan: QuantPlan;
  ranges: ReadonlyMap<string, Range>;
  /** Histograms saved with the ranges (histogram calibration methods): they allow per-tensor method fixes. */
  histograms?: ReadonlyMap<string, SavedHistogram>;
  subset: Subset;
  /**
   * Calibration samples, read only if an algorithm is tried: with them the search tries AdaRound
   * and bias correction (those the recipe does not ask for already) before moving layers, each on
   * its own number of them.
   */
  calibration?: { adaRound(): Promise<readonly Feed[]>; biasCorrection(): Promise<readonly Feed[]> };
  /**
   * Cross-layer equalization for the search to try, where the recipe lacks it and the job can
   * calibrate again: equalizing rescales the tensors between each pair, so their ranges must be
   * measured anew, by the method `recipe` names. Undefined when the model has no pair to equalize.
   */
  equalize?: (recipe: Recipe) => Promise<RewrittenModel | undefined>;
  /**
   * SmoothQuant for the search to try, where the recipe lacks it: `base` (the equalized model, once
   * the search kept CLE; else the job's) smoothed with α searched, and calibrated anew. Undefined
   * when the model has no activation to smooth.
   */
  smooth?: (recipe: Recipe, base?: RewrittenModel) => Promise<RewrittenModel | undefined>;
  /** Each calibrated tensor's shape for one sample of the subset, where calibration measured it. */
  shapes?: ReadonlyMap<string, number[]>;
  target: Target;
  /** Every measurement of the search is made in these numerics. */
  numerics: MainNumerics;
  /** Units measured one by one (the rest follow in local-SQNR order). */
  candidates?: number;
  /** Give up past this fraction of the quantized layers in higher precision (default 0.25). */
  maxFraction?: number;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  onStep?: (message: string) => void;
}

/** The float model rewritten by an algorithm (CLE's equalized Conv pairs, SmoothQuant's smoothed channels), and its ranges calibrated on it. */
export interface RewrittenModel {
  floatModel: onnx.ModelProto;
  /** SmoothQuant's α, where SmoothQuant rewrote it. */
  smoothquant?: { alpha: number };
  view: GraphView;
  ranges: Map<string, Range>;
  samples: number;
  /** Makes the job's model and ranges these, once the search keeps them. */
  adopt(): void;
}

export interface RepairOutcome {
  recipe: Recipe;
  plan: QuantPlan;
  /** The ranges to convert the repaired plan with: the input's, with the method fixes, and borrowed ranges for tensors now quantized on their own. */
  ranges: Map<string, Range>;
  /** Tensors whose range a method fix changed. */
  rangeChanges: Map<string, Range>;
  /** AdaRound's rounding, where the search kept it: the job converts with it instead of learning it again. */
  rounded?: AdaRoundResult;
  /** The rewritten model, where the search kept CLE or SmoothQuant: plan and ranges refer to it. */
  rewritten?: RewrittenModel;
  report: RepairReport;
}

export function meets(q: RunQuality, target: Target): boolean {
  return target.kind === 'sqnr' ? q.sqnr >= target.value : score(q, target.metric) >= metricScore(target.metric, target.value);
}

/**
 * Whether model `a` measures better than model `b` for the target, by more than the search samples
 * can tell apart: one that meets the target beats one that does not; otherwise a difference in the
 * target metric counts past twice the standard error of the two models' per-sample differences
 * (one text line of 256 is no evidence), and within that the higher output SQNR, the finer measure
 * of how far the model is from float, decides.
 */
export function better(a: RunQuality, b: RunQuality, target: Target): boolean {
  if (meets(a, target) !== meets(b, target)) return meets(a, target);
  const metric = target.kind === 'metric' ? target.metric : undefined;
  const gain = score(a, metric) - score(b, metric);
  const noise = metric ? pairedNoise(a.perSample?.[metric], b.perSample?.[metric]) : 0;
  return Math.abs(gain) > noise ? gain > 0 : a.sqnr > b.sqnr;
}

/** Twice the standard error of the mean per-sample difference; 0 where either model lacks per-sample values. */
export function pairedNoise(a?: Float64Array, b?: Float64Array): number {
  if (!a || !b || a.length !== b.length || a.length < 2) return 0;
  let sum = 0;
  let squares = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    sum += d;
    squares += d * d;
  }
  const n = a.length;
  const variance = Math.max(0, (squares - (sum * sum) / n) / (n - 1));
  return 2 * Math.sqrt(variance / n);
}

const fmt = (q: RunQuality, metric?: string) => `output ${q.sqnr.toFixed(1)} dB${metric ? `, ${metric} ${score(q, metric).toFixed(4)}` : ''}`;

/** Where the search stands: the configuration it would export now, and what it has measured. */
interface Search {
  input: RepairInput;
  metric?: string;
  started: number;
  before: RunQuality;
  recipe: Recipe;
  plan: QuantPlan;
  ranges: Map<string, Range>;
  base: ConvertResult;
  /** The search samples with the outputs of the float model every figure is measured against: the input's, or the equalized model's once CLE is kept (high-bias absorption changes them a little, and the job's figures compare with it). */
  subset: Subset;
  /** The float model the search plans on and measures layers against: the input's, or the equalized one once cross-layer equalization is kept. */
  floatModel: onnx.ModelProto;
  view: GraphView;
  rewritten?: RewrittenModel;
  /** What is converted: the float model, or it with corrected biases once bias correction is kept; and AdaRound's rounding once kept. */
  convertView: GraphView;
  rounded?: AdaRoundResult;
  current: RunQuality;
  runs: number;
  changes: RepairChange[];
  rangeChanges: Map<string, Range>;
  step: (message: string) => void;
}

/** The layers a repair moved, how, and why. */
interface Moved {
  units: SwitchUnit[];
  action?: QuantType | 'float';
  why: ReadonlyMap<SwitchUnit, string>;
  total: number;
}

const NOTHING_MOVED: Moved = { units: [], why: new Map(), total: 0 };

function quantizedNodes(plan: QuantPlan): Set<string> {
  return new Set(plan.nodes.filter((n) => n.status === 'quantized').map((n) => n.node));
}

function outcome(s: Search, met: boolean, reason: string, after: RunQuality, moved: Moved = NOTHING_MOVED): RepairOutcome {
  const { target, numerics, subset } = s.input;
  const now = quantizedNodes(s.plan);
  const changes = [...s.changes, ...moved.units.map((u) => ({ name: u.id, node: u.node, op: u.op, action: moved.action!, why: moved.why.get(u) ?? '' }))];
  // Met before the precision step counted its layers: "0 of N" still names N.
  const total = moved.total || switchUnits(s.view, s.plan, s.base).units.length;
  return {
    recipe: s.recipe, plan: s.plan, ranges: withBorrowedRanges(s.input.plan, s.ranges), rangeChanges: s.rangeChanges,
    ...(s.rounded ? { rounded: s.rounded } : {}), ...(s.rewritten ? { rewritten: s.rewritten } : {}),
    report: {
      target, numerics, met, reason, before: quality(s.before, subset.samples, numerics), after: quality(after, subset.samples, numerics), changes,
      cost: {
        unitsChanged: moved.units.length, unitsTotal: total, fraction: total ? Number((moved.units.length / total).toFixed(4)) : 0,
        nodesLeavingIntegerPath: [...quantizedNodes(s.input.plan)].filter((n) => !now.has(n)),
        sixteenBit: moved.action && moved.action !== 'float' ? moved.units.length : 0,
      },
      runs: s.runs, seconds: Number(((performance.now() - s.started) / 1000).toFixed(2)),
    },
  };
}

export async function repair(input: RepairInput): Promise<RepairOutcome> {
  const started = performance.now();
  const { view, subset, target, numerics } = input;
  const step = (message: string) => input.onStep?.(`repair: ${message}`);
  const ranges = new Map(input.ranges);
  const base = convertModel(view, input.plan, ranges);
  const current = await subset.measureModel(base.model, 'quantized model', numerics, input.signal, true);
  const s: Search = {
    input, metric: target.kind === 'metric' ? target.metric : undefined, started, before: current,
    recipe: input.recipe, plan: input.plan, ranges, base, subset, floatModel: input.floatModel, view, convertView: view, current, runs: 1, changes: [], rangeChanges: new Map(), step,
  };
  step(`measuring in ${numerics} numerics on ${subset.samples} samples: ${fmt(current, s.metric)}`);
  if (meets(current, target)) {
    step(`target ${describeTarget(target)} already met by the fully quantized model; nothing changed`);
    return outcome(s, true, 'the fully quantized model already meets the target; nothing changed', current);
  }
  const learned = fork(s);
  if (await fixCalibration(s)) return outcome(s, true, `met by the calibration method alone (${s.recipe.method} ranges); no layer moved to higher precision`, s.current);
  // The algorithms learn on the job's own ranges, not on the method fix's: which ranges AdaRound
  // does best on is not which do best without it (the recognizer's min/max ranges: 93.4% exact
  // match plain and 96.5% with AdaRound on the search lines; percentile:99.99 ones 96.9% plain,
  // 94.1% with AdaRound). The method fix is then tried again on top of what they kept.
  learned.runs = s.runs;
  if (s.changes.length) step(`trying the algorithms on the job's ${learned.recipe.method} ranges; ${s.recipe.method} ranges alone (${fmt(s.current, s.metric)}) are kept to compare`);
  let met = await tryAlgorithms(learned);
  // Equalization calibrated its model again: the saved histograms are of the model as given.
  if (!met && learned.changes.length && !learned.rewritten) met = await fixCalibration(learned);
  if (met) return outcome(learned, true, `met with ${describeChanges(learned)}; no layer moved to higher precision`, learned.current);
  const best = learned.changes.length && (!s.changes.length || better(learned.current, s.current, target)) ? learned : s;
  if (s.changes.length && learned.changes.length) step(`going on from ${describeChanges(best)}: ${fmt(best.current, s.metric)} against ${fmt((best === s ? learned : s).current, s.metric)}`);
  best.runs = learned.runs;
  return raisePrecision(best);
}

/** A copy of the search's state that the other's steps leave as it is. */
function fork(s: Search): Search {
  return { ...s, changes: [...s.changes], rangeChanges: new Map(s.rangeChanges) };
}

/** What the search kept before moving layers, in words: its method fixes and algorithms. */
function describeChanges(s: Search): string {
  if (!s.changes.length) return 'the job\'s own ranges';
  return s.changes.map((c) => (c.action.startsWith('method:') ? `${c.action.slice('method:'.length)} ranges` : c.name)).join(' and ');
}

/**
 * Calibration first: another method's ranges, recomputed from the saved histograms, cost no
 * precision. Each method is tried on every tensor and measured on the exported model; the best
 * one is kept if it beats the current ranges. True when that alone meets the target.
 */
async function fixCalibration(s: Search): Promise<boolean> {
  const { view, histograms, numerics, signal } = s.input;
  const subset = s.subset;
  if (!histograms?.size) return false;
  const specs = calibrationTensors(s.plan);
  let best: { method: string; ranges: Map<string, Range>; model: ConvertResult; quality: RunQuality } | undefined;
  for (const method of FIX_METHODS) {
    if (method === s.recipe.method) continue;
    const tried = rerange(specs, s.ranges, histograms, method);
    const converted = convertModel(s.convertView, s.plan, tried, s.rounded?.rounding);
    const q = await subset.measureModel(converted.model, `quantized model with ${method} ranges`, numerics, signal, true);
    s.runs++;
    s.step(`ranges from the histograms by ${method}: ${fmt(q, s.metric)} (now ${fmt(s.current, s.metric)})`);
    if (!best || better(q, best.quality, s.input.target)) best = { method, ranges: tried, model: converted, quality: q };
  }
  if (!best || !better(best.quality, s.current, s.input.target)) return false;
  for (const spec of specs) {
    const was = s.ranges.get(spec.tensor);
    const now = best.ranges.get(spec.tensor)!;
    if (histograms.has(spec.tensor) && (was?.min !== now.min || was?.max !== now.max)) s.rangeChanges.set(spec.tensor, now);
  }
  // Counted as the report counts its layers: quantized tensors whose range the new method moved.
  const before = new Map(s.base.layers.map((l) => [l.float, l.range]));
  const moved = best.model.layers.filter((l) => l.range && (before.get(l.float)?.min !== l.range.min || before.get(l.float)?.max !== l.range.max)).length;
  s.changes.push({
    name: `${moved} of ${best.model.layers.length} quantized tensors`, node: '', op: '', action: `method:${best.method}`,
    why: `calibration method ${s.recipe.method} → ${best.method} from the saved histograms: ${fmt(s.current, s.metric)} → ${fmt(best.quality, s.metric)}`,
  });
  s.ranges = best.ranges;
  s.recipe = { ...s.recipe, method: best.method };
  s.plan = planQuantization(view, s.recipe);
  s.base = best.model;
  s.current = best.quality;
  return meets(s.current, s.input.target);
}

/** An algorithm the search tries on the whole model: what it gives the conversion, and on how many calibration samples it worked. */
interface AlgorithmTrial {
  samples: number;
  view: GraphView;
  ranges?: Map<string, Range>;
  rounded?: AdaRoundResult;
  rewritten?: RewrittenModel;
  /** The search samples against the trial's own float model, where it changed it. */
  subset?: Subset;
  algorithms: NonNullable<Recipe['algorithms']>;
}

/**
 * Then the algorithms the recipe does not ask for already, which keep every layer quantized:
 * cross-layer equalization, SmoothQuant, AdaRound, then bias correction, each on top of what was kept before
 * it. Each is measured on the exported model and kept only where it improves it. True when that
 * meets the target.
 */
async function tryAlgorithms(s: Search): Promise<boolean> {
  const { calibration, equalize, smooth, numerics, signal } = s.input;
  if (s.plan.kind !== 'static' || !calibration) return false;
  const has = s.recipe.algorithms ?? {};
  const iterations = adaRoundIterations(s.recipe.granularity);
  const tries: Array<{ action: RepairAction; name: string; apply: () => Promise<AlgorithmTrial | undefined> }> = [
    ...(has.cle || !equalize ? [] : [{ action: 'algorithm:cle' as const, name: 'cross-layer equalization', apply: async () => {
      const e = await equalize(s.recipe);
      if (!e) s.step('cross-layer equalization not tried: no Conv pair of the model can be equalized');
      return e && { samples: e.samples, view: e.view, ranges: e.ranges, rewritten: e, subset: await s.subset.against(e.floatModel), algorithms: { cle: true } };
    } }]),
    ...(has.smoothquant || !smooth ? [] : [{ action: 'algorithm:smoothquant' as const, name: 'SmoothQuant', apply: async () => {
      const r = await smooth(s.recipe, s.rewritten);
      if (!r) s.step('SmoothQuant not tried: no activation of a quantized MatMul/Gemm comes from a LayerNorm or linear layer that could take its scales');
      return r && { samples: r.samples, view: r.view, ranges: r.ranges, rewritten: r, subset: await s.subset.against(r.floatModel), algorithms: { smoothquant: r.smoothquant ?? {} } };
    } }]),
    ...(has.adaround ? [] : [{ action: 'algorithm:adaround' as const, name: `AdaRound (${iterations} iterations)`, apply: async () => {
      const feeds = await calibration.adaRound();
      const onLayer = (done: number, total: number) => s.input.onProgress?.({ stage: 'sensitivity', done, total, unit: 'layers' });
      const rounded = await adaRound(s.floatModel, s.plan, s.ranges, feeds, { iterations, signal, onLayer });
      return { samples: rounded.report.samples, rounded, view: s.convertView, algorithms: { adaround: { iterations } } };
    } }]),
    ...(has.biasCorrection ? [] : [{ action: 'algorithm:bias-correction' as const, name: 'bias correction', apply: async () => {
      const feeds = await calibration.biasCorrection();
      const corrected = await correctBiases(s.floatModel, s.plan, s.ranges, feeds, { signal, rounding: s.rounded?.rounding });
      return { samples: sampleCount(feeds), rounded: s.rounded, view: new GraphView(corrected.model), algorithms: { biasCorrection: true } };
    } }]),
  ];
  for (const t of tries) {
    throwIfAborted(signal);
    s.step(`trying ${t.name}`);
    const applied = await t.apply();
    if (!applied) continue;
    const ranges = applied.ranges ?? s.ranges;
    // A rewritten float model (SmoothQuant renames the weights it scales) needs its own plan.
    const plan = applied.rewritten ? planQuantization(applied.view, s.recipe) : s.plan;
    const converted = convertModel(applied.view, plan, ranges, applied.rounded?.rounding);
    const q = await (applied.subset ?? s.subset).measureModel(converted.model, `quantized model with ${t.name}`, numerics, signal, true);
    s.runs++;
    const kept = better(q, s.current, s.input.target);
    s.step(`${t.name} on ${applied.samples} calibration samples: ${fmt(q, s.metric)} (now ${fmt(s.current, s.metric)})${kept ? '' : '; not kept'}`);
    if (!kept) continue;
    s.changes.push({ name: t.name, node: '', op: '', action: t.action, why: `every layer still quantized, on ${applied.samples} calibration samples: ${fmt(s.current, s.metric)} → ${fmt(q, s.metric)}` });
    keepAlgorithm(s, applied, converted, q);
    if (meets(q, s.input.target)) return true;
  }
  return false;
}

/**
 * The search goes on from an algorithm it kept. Equalization replaces the float model and every
 * range (calibrated again on it), so earlier method fixes are in the new ranges already.
 */
function keepAlgorithm(s: Search, applied: AlgorithmTrial, converted: ConvertResult, q: RunQuality): void {
  s.recipe = { ...s.recipe, algorithms: { ...s.recipe.algorithms, ...applied.algorithms } };
  if (applied.rewritten) {
    s.rewritten = applied.rewritten;
    s.floatModel = applied.rewritten.floatModel;
    s.view = applied.rewritten.view;
    s.ranges = applied.ranges!;
    s.subset = applied.subset!;
    s.rangeChanges = new Map();
  }
  s.plan = planQuantization(s.view, s.recipe);
  s.rounded = applied.rounded;
  s.convertView = applied.view;
  s.base = converted;
  s.current = q;
}

/** Then precision: rank the units by what keeping each alone in float gains, and search prefixes of the ranking. */
async function raisePrecision(s: Search): Promise<RepairOutcome> {
  const { input } = s;
  const backend = s.plan.backend;
  const sixteen = sixteenBitType(backend, s.recipe);
  if (!sixteen && !backend.keepFloat) {
    return outcome(s, false, `${backend.name} runs every quantized node as an integer kernel and offers no 16-bit activations (override types: ${backend.overrideTypes.join(', ')}), so no layer can move to higher precision; try another calibration method or a backend with 16-bit activations`, s.current);
  }
  if (!backend.keepFloat) s.step(`${backend.name} cannot keep nodes in float: sensitive layers get ${sixteen} activations`);
  // Local SQNR of every tensor on the subset: which units are worth measuring one by one.
  const local = await localSqnr(s.floatModel, s.base.model, s.base.layers.map((l) => ({ float: l.float, quant: l.quant })),
    memorySource(s.subset.read, `${s.subset.samples} search samples`), { batchSize: s.subset.samples, signal: input.signal, numerics: input.numerics, shapes: input.shapes });
  s.runs++;
  const { runner, units } = await configRunner(input.numerics, s.convertView, s.plan, s.ranges, s.base, s.subset, s.rounded?.rounding, s.current);
  try {
    const candidates = input.candidates ?? defaultCandidates(units.length);
    s.step(`measuring the ${candidates} layers with the worst local SQNR, each alone in float (${units.length} quantized layers)`);
    const sens = await sensitivity(runner, priorOrder(units, local), { candidates, onlyQuantized: false, metric: s.metric, signal: input.signal, onProgress: input.onProgress });
    const why = new Map(sens.rows.map((r) => [units[r.unit], `alone in float: ${fmt(r.onlyFloat, s.metric)} (all quantized: ${fmt(sens.all, s.metric)}); local SQNR ${Math.min(...units[r.unit].tensors.map((t) => local.get(t) ?? Infinity)).toFixed(1)} dB`]));
    // Only units that helped when alone in float are worth moving: on a model whose error is spread
    // thin, the others' single-layer effects are measurement noise, and adding them only adds cost.
    const ranking = sens.ranking.filter((u) => sens.rows.some((r) => r.unit === u && score(r.onlyFloat, s.metric) > score(sens.all, s.metric)));
    const none: Moved = { units: [], why, total: units.length };
    if (ranking.length === 0) {
      s.runs += runner.runs;
      return outcome(s, false, `no single layer of the ${candidates} measured improves the model when kept in float (${describeTarget(input.target)}; now ${fmt(s.current, s.metric)}): the error is spread over the network; try another calibration method, more calibration data, or a looser target`, s.current, none);
    }
    const actions: Array<QuantType | 'float'> = [...(sixteen ? [sixteen] : []), ...(backend.keepFloat ? ['float' as const] : [])];
    return await searchPrefixes(s, runner, units, ranking, actions, why);
  } finally {
    await runner.release();
  }
}

/**
 * Prefixes of the ranking, growing geometrically: errors spread over many layers need many of them
 * at once. The first prefix that meets the target on the runner is refined by halving, then
 * checked on the exported model with each allowed action; if the runner was optimistic, more layers.
 */
async function searchPrefixes(s: Search, runner: ConfigRunner, units: SwitchUnit[], ranking: number[], actions: Array<QuantType | 'float'>,
  why: ReadonlyMap<SwitchUnit, string>): Promise<RepairOutcome> {
  const { input } = s;
  const limit = Math.min(ranking.length, Math.max(1, Math.floor((input.maxFraction ?? 0.25) * units.length)));
  const onRunner = async (k: number) => {
    const set = new Set(ranking.slice(0, k));
    const q = await runner.measure((i) => !set.has(i), input.signal);
    s.step(`${k} layer(s) in higher precision: ${runner instanceof SwitchRunner ? 'simulated' : 'measured'} ${fmt(q, s.metric)}`);
    return meets(q, input.target);
  };
  let lastExported: RunQuality | undefined;
  let lo = 0;
  for (let k = 1; ; k = Math.min(limit, k * 2)) {
    throwIfAborted(input.signal);
    if (!(await onRunner(k))) {
      lo = k;
      if (k >= limit) break;
      continue;
    }
    // Smallest prefix in (lo, k] that meets the target on the runner.
    let hi = k;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (await onRunner(mid)) hi = mid;
      else lo = mid;
    }
    for (let n = hi; n <= Math.min(limit, 2 * hi); n = n === 2 * hi ? n + 1 : Math.min(2 * hi, n + Math.max(1, Math.ceil(hi / 4)))) {
      const picked = ranking.slice(0, n).map((i) => units[i]);
      for (const action of actions) {
        const tried = await exportedWith(s, picked, action);
        if (!tried) continue;
        lastExported = tried.quality;
        if (meets(tried.quality, input.target)) {
          s.runs += runner.runs;
          s.recipe = tried.recipe;
          s.plan = tried.plan;
          return outcome(s, true, `met with ${n} of ${units.length} quantized layers in higher precision`, tried.quality, { units: picked, action, why, total: units.length });
        }
      }
    }
    lo = Math.min(limit, 2 * hi);
    if (lo >= limit) break;
    k = lo;
  }
  s.runs += runner.runs;
  return outcome(s, false, `not met with up to ${limit} of ${units.length} quantized layers in higher precision, the ${ranking.length} that helped alone (${describeTarget(input.target)}; last exported try: ${lastExported ? fmt(lastExported, s.metric) : 'none, the search never reached the target'}); try another calibration method, more calibration data, or a looser target`,
    s.current, { units: [], why, total: units.length });
}

/** The exported model with `picked` moved to `action`, measured; undefined where the backend refuses that move. */
async function exportedWith(s: Search, picked: SwitchUnit[], action: QuantType | 'float'): Promise<{ recipe: Recipe; plan: QuantPlan; quality: RunQuality } | undefined> {
  const { input } = s;
  const recipe = withHigherPrecision(s.recipe, picked.map(unitMove), action);
  const problems = recipeProblems(s.plan.backend, recipe);
  if (problems.length) {
    s.step(`${action} not allowed: ${problems[0]}`);
    return undefined;
  }
  const plan = planQuantization(s.view, recipe);
  const converted = convertModel(s.convertView, plan, withBorrowedRanges(s.plan, s.ranges), s.rounded?.rounding);
  const quality = await s.subset.measureModel(converted.model, 'repaired model', input.numerics, input.signal);
  s.runs++;
  s.step(`  exported, ${picked.length} layer(s) to ${action}: ${fmt(quality, s.metric)}`);
  return { recipe, plan, quality };
}
