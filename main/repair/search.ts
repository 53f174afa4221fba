// Automatic mixed precision: given a target (output SQNR, or a task metric), find a few layers to
// move to higher precision — 16-bit activations where the backend offers them, else float where it
// allows float — until the model as exported meets the target. Candidates come from sensitivity
// on the switch model (cheap, simulated); every answer is checked on the real converted model.
import { recipeProblems, sixteenBit } from '../../shared/backends';
import { quantTypeBits, type QuantType, type Recipe } from '../../shared/recipe';
import type { MainNumerics } from '../../shared/numerics';
import { dbToJson, type Quality, type RepairChange, type RepairReport } from '../../shared/report';
import { throwIfAborted, type Progress } from '../calib/calibrate';
import type { SampleSource } from '../data/readers';
import { evaluate } from '../eval/evaluate';
import type { MetricName } from '../eval/metrics';
import { ExportRunner, score, sensitivity, switchModel, SwitchRunner, type ConfigRunner, type RunQuality, type Subset, type SwitchUnit } from '../eval/sensitivity';
import type { onnx } from '../onnx/proto';
import type { GraphView } from '../onnx/graph';
import { convertModel, type ConvertResult, type Range } from '../convert/convert';
import { FIX_METHODS, rerange, type SavedHistogram } from '../calib/rerange';
import { calibrationTensors, planQuantization, withBorrowedRanges, type QuantPlan } from '../plan/plan';

export type Target = { kind: 'sqnr'; value: number } | { kind: 'metric'; metric: MetricName; value: number };

export function meets(q: RunQuality, target: Target): boolean {
  return target.kind === 'sqnr' ? q.sqnr >= target.value : (q.metrics[target.metric] ?? -Infinity) >= target.value;
}

export function describeTarget(target: Target): string {
  return target.kind === 'sqnr' ? `output SQNR ≥ ${target.value} dB` : `${target.metric} ≥ ${target.value}`;
}

export function quality(q: RunQuality, samples: number, numerics: MainNumerics): Quality {
  const metrics: Record<string, number> = {};
  for (const [k, v] of Object.entries(q.metrics)) if (v !== undefined) metrics[k] = Number(v.toFixed(5));
  return { numerics, outputSqnr: dbToJson(q.sqnr), metrics, samples };
}

/** A SampleSource over batches already in memory (the fixed subset of a search). */
export function memorySource(subset: Subset, description: string): SampleSource {
  const feeds = subset.feeds.map((f) => Object.fromEntries(Object.entries(f).map(([name, t]) => [name, { type: t.type, dims: [...t.dims], data: t.data }])));
  return {
    description, count: subset.samples, warnings: [],
    async *batches() {
      for (const f of feeds) yield f as never;
    },
  };
}

/** Worst local SQNR of a unit's tensors: the order in which units are worth measuring. */
export function priorOrder(units: SwitchUnit[], local: ReadonlyMap<string, number>): number[] {
  const worst = units.map((u) => Math.min(...u.tensors.map((t) => local.get(t) ?? Infinity)));
  return units.map((_, i) => i).sort((a, b) => worst[a] - worst[b] || a - b);
}

/** The recipe with `units` moved to `action`: 16-bit activations, or float nodes and tensors. */
export function withHigherPrecision(recipe: Recipe, units: SwitchUnit[], action: QuantType | 'float'): Recipe {
  const overrides = { ...recipe.overrides };
  const exclude = new Set(recipe.excludeNodes);
  for (const u of units) {
    const root = u.id.startsWith('node:') ? undefined : u.id;
    if (action === 'float' || !root) {
      for (const n of u.nodes) exclude.add(n);
      if (root) overrides[root] = { ...overrides[root], float: true };
    } else {
      overrides[root] = { ...overrides[root], type: action };
    }
  }
  return { ...recipe, overrides, excludeNodes: [...exclude] };
}

/**
 * The runner a search measures configurations with, and its units: the switch model in reference
 * numerics, a conversion per configuration in ort-cpu numerics.
 */
export async function configRunner(numerics: MainNumerics, view: GraphView, recipe: Recipe, plan: QuantPlan, ranges: ReadonlyMap<string, Range>,
  converted: ConvertResult, subset: Subset): Promise<{ runner: ConfigRunner; units: SwitchUnit[] }> {
  const { model, units } = switchModel(view, plan, converted);
  if (numerics === 'reference') return { runner: await SwitchRunner.create(model, units.length, subset), units };
  // A layer moved to float leaves the tensors that borrowed its range to be quantized on their own.
  const borrowed = withBorrowedRanges(plan, ranges);
  const build = (floatUnits: number[]) => convertModel(view, planQuantization(view, withHigherPrecision(recipe, floatUnits.map((i) => units[i]), 'float')), borrowed).model;
  return { runner: new ExportRunner(numerics, units.length, subset, build), units };
}

export interface RepairInput {
  view: GraphView;
  floatModel: onnx.ModelProto;
  recipe: Recipe;
  plan: QuantPlan;
  ranges: ReadonlyMap<string, Range>;
  /** Histograms saved with the ranges (histogram calibration methods): they allow per-tensor method fixes. */
  histograms?: ReadonlyMap<string, SavedHistogram>;
  subset: Subset;
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

export interface RepairOutcome {
  recipe: Recipe;
  plan: QuantPlan;
  /** The ranges to convert the repaired plan with: the input's, with the method fixes, and borrowed ranges for tensors now quantized on their own. */
  ranges: Map<string, Range>;
  /** Tensors whose range a method fix changed. */
  rangeChanges: Map<string, Range>;
  report: RepairReport;
}

function quantizedNodes(plan: QuantPlan): Set<string> {
  return new Set(plan.nodes.filter((n) => n.status === 'quantized').map((n) => n.node));
}

const fmt = (q: RunQuality, metric?: string) => `output ${q.sqnr.toFixed(1)} dB${metric ? `, ${metric} ${score(q, metric).toFixed(4)}` : ''}`;

export async function repair(input: RepairInput): Promise<RepairOutcome> {
  const start = performance.now();
  const { view, subset, target, numerics } = input;
  const step = input.onStep ?? (() => undefined);
  const metric = target.kind === 'metric' ? target.metric : undefined;
  const samples = subset.samples;
  let recipe = input.recipe;
  let plan = input.plan;
  let ranges = new Map(input.ranges);
  let base = convertModel(view, plan, ranges);
  let current = await subset.measureModel(base.model, 'quantized model', numerics, input.signal);
  const before = quality(current, samples, numerics);
  step(`measuring in ${numerics} numerics on ${samples} samples: ${fmt(current, metric)}`);
  let runs = 1;
  const methodChanges: RepairChange[] = [];
  const rangeChanges = new Map<string, Range>();
  const finish = (met: boolean, reason: string, after: RunQuality, units: SwitchUnit[], actions: Array<QuantType | 'float'>, finalRecipe: Recipe, finalPlan: QuantPlan, unitsTotal: number, why: Map<SwitchUnit, string>): RepairOutcome => {
    const was = quantizedNodes(input.plan);
    const now = quantizedNodes(finalPlan);
    const changes: RepairChange[] = [...methodChanges, ...units.map((u, i) => ({ name: u.id, node: u.node, op: u.op, action: actions[i], why: why.get(u) ?? '' }))];
    return {
      recipe: finalRecipe, plan: finalPlan, ranges: withBorrowedRanges(plan, ranges), rangeChanges,
      report: {
        target, numerics, met, reason, before, after: quality(after, samples, numerics), changes,
        cost: {
          unitsChanged: units.length, unitsTotal, fraction: unitsTotal ? Number((units.length / unitsTotal).toFixed(4)) : 0,
          nodesLeavingIntegerPath: [...was].filter((n) => !now.has(n)),
          sixteenBit: actions.filter((a) => a !== 'float').length,
        },
        runs, seconds: Number(((performance.now() - start) / 1000).toFixed(2)),
      },
    };
  };
  if (meets(current, target)) {
    step(`target ${describeTarget(target)} already met by the fully quantized model; nothing changed`);
    return finish(true, 'the fully quantized model already meets the target; nothing changed', current, [], [], recipe, plan, 0, new Map());
  }

  // Calibration first: another method's ranges, recomputed from the saved histograms, cost no
  // precision. Each method is tried on every tensor and measured on the exported model.
  if (input.histograms?.size) {
    const specs = calibrationTensors(plan);
    let best: { method: string; ranges: Map<string, Range>; model: typeof base; quality: RunQuality } | undefined;
    for (const method of FIX_METHODS) {
      if (method === recipe.method) continue;
      const tried = rerange(specs, ranges, input.histograms, method);
      const converted = convertModel(view, plan, tried);
      const q = await subset.measureModel(converted.model, `quantized model with ${method} ranges`, numerics, input.signal);
      runs++;
      step(`ranges from the histograms by ${method}: ${fmt(q, metric)} (now ${fmt(current, metric)})`);
      if (!best || score(q, metric) > score(best.quality, metric)) best = { method, ranges: tried, model: converted, quality: q };
    }
    if (best && score(best.quality, metric) > score(current, metric)) {
      for (const spec of specs) {
        const was = ranges.get(spec.tensor);
        const now = best.ranges.get(spec.tensor)!;
        if (input.histograms.has(spec.tensor) && (was?.min !== now.min || was?.max !== now.max)) rangeChanges.set(spec.tensor, now);
      }
      // Counted as the report counts its layers: quantized tensors whose range the new method moved.
      const before = new Map(base.layers.map((l) => [l.float, l.range]));
      const moved = best.model.layers.filter((l) => l.range && (before.get(l.float)?.min !== l.range.min || before.get(l.float)?.max !== l.range.max)).length;
      methodChanges.push({ name: `${moved} of ${best.model.layers.length} quantized tensors`, node: '', op: '', action: `method:${best.method}`, why: `calibration method ${recipe.method} → ${best.method} from the saved histograms: ${fmt(current, metric)} → ${fmt(best.quality, metric)}` });
      ranges = best.ranges;
      recipe = { ...recipe, method: best.method };
      plan = planQuantization(view, recipe);
      base = best.model;
      current = best.quality;
      if (meets(current, target)) return finish(true, `met by the calibration method alone (${best.method} ranges); no layer moved to higher precision`, current, [], [], recipe, plan, 0, new Map());
    }
  }

  const backend = plan.backend;
  const wide = sixteenBit(backend);
  const sixteen = wide && quantTypeBits(recipe.activationType) < 16 ? wide : undefined;
  if (!sixteen && !backend.keepFloat) {
    const reason = `${backend.name} runs every quantized node as an integer kernel and offers no 16-bit activations (override types: ${backend.overrideTypes.join(', ')}), so no layer can move to higher precision; try another calibration method or a backend with 16-bit activations`;
    return finish(false, reason, current, [], [], recipe, plan, 0, new Map());
  }
  const actionsToTry: Array<QuantType | 'float'> = [...(sixteen ? [sixteen] : []), ...(backend.keepFloat ? ['float' as const] : [])];
  if (!backend.keepFloat) step(`${backend.name} cannot keep nodes in float: sensitive layers get ${sixteen} activations`);

  // Local SQNR of every tensor on the subset: which units are worth measuring one by one.
  const evaluation = await evaluate(input.floatModel, base.model, base.layers.map((l) => ({ float: l.float, quant: l.quant })),
    memorySource(subset, `${samples} analysis samples`), { batchSize: subset.samples, signal: input.signal, numerics });
  runs++;
  const local = new Map([...evaluation.layers].map(([name, s]) => [name, s.localSqnr ?? Infinity]));
  const { runner, units } = await configRunner(numerics, view, recipe, plan, ranges, base, subset);
  try {
    const candidates = input.candidates ?? Math.min(units.length, Math.max(16, Math.ceil(units.length / 10)));
    step(`measuring the ${candidates} layers with the worst local SQNR, each alone in float (${units.length} quantized layers)`);
    const sens = await sensitivity(runner, priorOrder(units, local), { candidates, onlyQuantized: false, metric, signal: input.signal, onProgress: input.onProgress });
    const why = new Map<SwitchUnit, string>();
    for (const r of sens.rows) why.set(units[r.unit], `alone in float: ${fmt(r.onlyFloat, metric)} (all quantized: ${fmt(sens.all, metric)}); local SQNR ${Math.min(...units[r.unit].tensors.map((t) => local.get(t) ?? Infinity)).toFixed(1)} dB`);
    // Only units that helped when alone in float are worth moving: on a model whose error is spread
    // thin, the others' single-layer effects are measurement noise, and adding them only adds cost.
    const ranking = sens.ranking.filter((u) => sens.rows.some((r) => r.unit === u && score(r.onlyFloat, metric) > score(sens.all, metric)));
    if (ranking.length === 0) {
      runs += runner.runs;
      return finish(false, `no single layer of the ${candidates} measured improves the model when kept in float (${describeTarget(target)}; now ${fmt(current, metric)}): the error is spread over the network; try another calibration method, more calibration data, or a looser target`,
        current, [], [], recipe, plan, units.length, why);
    }
    const limit = Math.min(ranking.length, Math.max(1, Math.floor((input.maxFraction ?? 0.25) * units.length)));
    // Prefixes of the ranking, growing geometrically: errors spread over many layers need many of
    // them at once, and the first prefix that meets the target in simulation is refined by halving.
    const simulate = async (k: number) => {
      const set = new Set(ranking.slice(0, k));
      const q = await runner.measure((i) => !set.has(i), input.signal);
      step(`${k} layer(s) in higher precision: ${runner instanceof SwitchRunner ? 'simulated' : 'measured'} ${fmt(q, metric)}`);
      return q;
    };
    let lastReal: RunQuality | undefined;
    let lo = 0;
    for (let k = 1; ; k = Math.min(limit, k * 2)) {
      throwIfAborted(input.signal);
      const simulated = await simulate(k);
      if (meets(simulated, target)) {
        // Smallest prefix in (lo, k] that meets the target in simulation.
        let hi = k;
        while (hi - lo > 1) {
          const mid = (lo + hi) >> 1;
          if (meets(await simulate(mid), target)) hi = mid;
          else lo = mid;
        }
        // Check on the exported model; if the simulation was optimistic, take more layers.
        for (let n = hi; n <= Math.min(limit, 2 * hi); n = n === 2 * hi ? n + 1 : Math.min(2 * hi, n + Math.max(1, Math.ceil(hi / 4)))) {
          const picked = ranking.slice(0, n).map((i) => units[i]);
          for (const action of actionsToTry) {
            const candidate = withHigherPrecision(recipe, picked, action);
            const problems = recipeProblems(backend, candidate);
            if (problems.length) {
              step(`${action} not allowed: ${problems[0]}`);
              continue;
            }
            const candidatePlan = planQuantization(view, candidate);
            const converted = convertModel(view, candidatePlan, withBorrowedRanges(plan, ranges));
            const real = await subset.measureModel(converted.model, 'repaired model', numerics, input.signal);
            runs++;
            lastReal = real;
            step(`  exported, ${n} layer(s) to ${action}: ${fmt(real, metric)}`);
            if (meets(real, target)) {
              runs += runner.runs;
              return finish(true, `met with ${n} of ${units.length} quantized layers in higher precision`, real, picked, picked.map(() => action), candidate, candidatePlan, units.length, why);
            }
          }
        }
        lo = Math.min(limit, 2 * hi);
        if (lo >= limit) break;
        k = lo;
        continue;
      }
      lo = k;
      if (k >= limit) break;
    }
    runs += runner.runs;
    return finish(false, `not met with up to ${limit} of ${units.length} quantized layers in higher precision, the ${ranking.length} that helped alone (${describeTarget(target)}; last exported try: ${lastReal ? fmt(lastReal, metric) : 'none, the simulation never reached the target'}); try another calibration method, more calibration data, or a looser target`,
      current, [], [], recipe, plan, units.length, why);
  } finally {
    await runner.release();
  }
}
