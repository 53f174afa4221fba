// Automatic mixed precision: given a target (output SQNR, or a task metric), find a few layers to
// move to higher precision — 16-bit activations where the backend offers them, else float where it
// allows float — until the model as exported meets the target. Candidates come from sensitivity
// on the switch model (cheap, simulated); every answer is checked on the real converted model.
import { recipeProblems, sixteenBit } from '../../shared/backends';
import { quantTypeBits, type QuantType, type Recipe } from '../../shared/recipe';
import { dbToJson, type Quality, type RepairChange, type RepairReport } from '../../shared/report';
import { throwIfAborted, type Progress } from '../calib/calibrate';
import type { SampleSource } from '../calib/readers';
import { evaluate } from '../eval/evaluate';
import type { MetricName } from '../eval/metrics';
import { score, sensitivity, switchModel, SwitchRunner, type RunQuality, type Subset, type SwitchUnit } from '../eval/sensitivity';
import type { onnx } from '../onnx/proto';
import type { GraphView } from '../onnx/graph';
import { convertModel, type Range } from './convert';
import { planQuantization, type QuantPlan } from './plan';

export type Target = { kind: 'sqnr'; value: number } | { kind: 'metric'; metric: MetricName; value: number };

export function meets(q: RunQuality, target: Target): boolean {
  return target.kind === 'sqnr' ? q.sqnr >= target.value : (q.metrics[target.metric] ?? -Infinity) >= target.value;
}

export function describeTarget(target: Target): string {
  return target.kind === 'sqnr' ? `output SQNR ≥ ${target.value} dB` : `${target.metric} ≥ ${target.value}`;
}

export function quality(q: RunQuality, samples: number): Quality {
  const metrics: Record<string, number> = {};
  for (const [k, v] of Object.entries(q.metrics)) if (v !== undefined) metrics[k] = Number(v.toFixed(5));
  return { outputSqnr: dbToJson(q.sqnr), metrics, samples };
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

export interface RepairInput {
  view: GraphView;
  floatModel: onnx.ModelProto;
  recipe: Recipe;
  plan: QuantPlan;
  ranges: ReadonlyMap<string, Range>;
  subset: Subset;
  target: Target;
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
  report: RepairReport;
}

function quantizedNodes(plan: QuantPlan): Set<string> {
  return new Set(plan.nodes.filter((n) => n.status === 'quantized').map((n) => n.node));
}

export async function repair(input: RepairInput): Promise<RepairOutcome> {
  const start = performance.now();
  const { view, recipe, plan, ranges, subset, target } = input;
  const step = input.onStep ?? (() => undefined);
  const samples = subset.samples;
  const base = convertModel(view, plan, ranges);
  const beforeRun = await subset.measureModel(base.model, 'quantized model', input.signal);
  const before = quality(beforeRun, samples);
  let runs = 1;
  const finish = (met: boolean, reason: string, after: Quality, chosen: SwitchUnit[], actions: Array<QuantType | 'float'>, finalRecipe: Recipe, finalPlan: QuantPlan, unitsTotal: number, why: Map<SwitchUnit, string>): RepairOutcome => {
    const was = quantizedNodes(plan);
    const now = quantizedNodes(finalPlan);
    const changes: RepairChange[] = chosen.map((u, i) => ({ name: u.id, node: u.node, op: u.op, action: actions[i], why: why.get(u) ?? '' }));
    return {
      recipe: finalRecipe,
      plan: finalPlan,
      report: {
        target, met, reason, before, after, changes,
        cost: {
          unitsChanged: chosen.length, unitsTotal, fraction: unitsTotal ? Number((chosen.length / unitsTotal).toFixed(4)) : 0,
          nodesLeavingIntegerPath: [...was].filter((n) => !now.has(n)),
          sixteenBit: actions.filter((a) => a !== 'float').length,
        },
        runs, seconds: Number(((performance.now() - start) / 1000).toFixed(2)),
      },
    };
  };
  if (meets(beforeRun, target)) {
    step(`target ${describeTarget(target)} already met by the fully quantized model; nothing changed`);
    return finish(true, 'the fully quantized model already meets the target; nothing changed', before, [], [], recipe, plan, 0, new Map());
  }
  const backend = plan.backend;
  const wide = sixteenBit(backend);
  const sixteen = wide && quantTypeBits(recipe.activationType) < 16 ? wide : undefined;
  if (!sixteen && !backend.keepFloat) {
    const reason = `${backend.name} runs every quantized node as an integer kernel and offers no 16-bit activations (override types: ${backend.overrideTypes.join(', ')}), so no layer can move to higher precision; try another calibration method or a backend with 16-bit activations`;
    return finish(false, reason, before, [], [], recipe, plan, 0, new Map());
  }
  const actionsToTry: Array<QuantType | 'float'> = [...(sixteen ? [sixteen] : []), ...(backend.keepFloat ? ['float' as const] : [])];
  if (!backend.keepFloat) step(`${backend.name} cannot keep nodes in float: sensitive layers get ${sixteen} activations`);

  // Local SQNR of every tensor on the subset: which units are worth measuring one by one.
  const evaluation = await evaluate(input.floatModel, base.model, base.layers.map((l) => ({ float: l.float, quant: l.quant })),
    memorySource(subset, `${samples} analysis samples`), { batchSize: subset.samples, signal: input.signal });
  runs++;
  const local = new Map([...evaluation.layers].map(([name, s]) => [name, s.localSqnr ?? Infinity]));
  const { model, units } = switchModel(view, plan, base);
  const runner = await SwitchRunner.create(model, units.length, subset);
  try {
    const metric = target.kind === 'metric' ? target.metric : undefined;
    const candidates = input.candidates ?? Math.min(units.length, Math.max(16, Math.ceil(units.length / 10)));
    step(`measuring the ${candidates} layers with the worst local SQNR, each alone in float (${units.length} quantized layers)`);
    const sens = await sensitivity(runner, priorOrder(units, local), { candidates, onlyQuantized: false, metric, signal: input.signal, onProgress: input.onProgress });
    const why = new Map<SwitchUnit, string>();
    for (const r of sens.rows) why.set(units[r.unit], `alone in float: output ${r.onlyFloat.sqnr.toFixed(1)} dB${metric ? `, ${metric} ${score(r.onlyFloat, metric).toFixed(4)}` : ''} (all quantized: ${sens.all.sqnr.toFixed(1)} dB); local SQNR ${Math.min(...units[r.unit].tensors.map((t) => local.get(t) ?? Infinity)).toFixed(1)} dB`);
    const chosen: number[] = [];
    let lastReal: RunQuality | undefined;
    const limit = Math.max(1, Math.floor((input.maxFraction ?? 0.25) * units.length));
    for (const u of sens.ranking) {
      throwIfAborted(input.signal);
      if (chosen.length >= limit) break;
      chosen.push(u);
      const set = new Set(chosen);
      const simulated = await runner.measure((i) => !set.has(i), input.signal);
      step(`${chosen.length} layer(s) in higher precision (+${units[u].id}): simulated output ${simulated.sqnr.toFixed(1)} dB${metric ? `, ${metric} ${score(simulated, metric).toFixed(4)}` : ''}`);
      if (!meets(simulated, target)) continue;
      for (const action of actionsToTry) {
        const picked = chosen.map((i) => units[i]);
        const candidate = withHigherPrecision(recipe, picked, action);
        const problems = recipeProblems(backend, candidate);
        if (problems.length) {
          step(`${action} not allowed: ${problems[0]}`);
          continue;
        }
        const candidatePlan = planQuantization(view, candidate);
        const converted = convertModel(view, candidatePlan, ranges);
        const real = await subset.measureModel(converted.model, 'repaired model', input.signal);
        runs++;
        lastReal = real;
        step(`  exported with ${action}: output ${real.sqnr.toFixed(1)} dB${metric ? `, ${metric} ${score(real, metric).toFixed(4)}` : ''}`);
        if (meets(real, target)) {
          runs += runner.runs;
          return finish(true, `met with ${chosen.length} of ${units.length} layers in higher precision`, quality(real, samples), picked, picked.map(() => action), candidate, candidatePlan, units.length, why);
        }
      }
    }
    runs += runner.runs;
    return finish(false, `not met with up to ${chosen.length} of ${units.length} layers in higher precision (${describeTarget(target)}; last exported try: ${lastReal ? `${lastReal.sqnr.toFixed(1)} dB` : 'none, the simulation never reached the target'}); try another calibration method, more calibration data, or a looser target`,
      lastReal ? quality(lastReal, samples) : before, [], [], recipe, plan, units.length, why);
  } finally {
    await runner.release();
  }
}
