// Pre-flight without calibration: load, prepare as the quantize job would, plan, place every node.
// Cheap enough (no inference) for the UI to re-run on every change of backend or exclusion.
import type { HostNumerics } from '../../shared/numerics';
import type { Preflight, PreflightCost } from '../../shared/preflight';
import type { Recipe } from '../../shared/recipe';
import { GraphView } from '../onnx/graph';
import { loadModel } from '../onnx/model';
import { hostNumerics } from '../onnx/numerics';
import { planQuantization } from '../plan/plan';
import { preflightWithCost } from '../plan/preflight';
import { prepareForRecipe } from './job';

export interface PreflightOutcome {
  preflight: Preflight;
  /** What the recipe's exclusions and overrides cost against the same recipe without them; absent when it has none. */
  cost?: PreflightCost;
}

export function preflightModel(file: string, recipe: Recipe): PreflightOutcome {
  const loaded = loadModel(file);
  const prepared = prepareForRecipe(loaded.model, recipe);
  const view = new GraphView(prepared.model);
  return preflightWithCost(view, planQuantization(view, recipe));
}

/** The pre-flight with what this machine's int8 arithmetic means for it. */
export async function preflightWithHost(file: string, recipe: Recipe): Promise<PreflightOutcome & { host: HostNumerics }> {
  return { ...preflightModel(file, recipe), host: await hostNumerics() };
}
