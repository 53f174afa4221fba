// The recipe: everything a run needs, as JSON. The CLI and the app read and write the same file.

export type QuantType = 'uint8' | 'int8' | 'uint16' | 'int16' | 'int4' | 'uint4';
export type QuantKind = 'static' | 'dynamic' | 'weight-only';
export type Granularity = 'per-tensor' | 'per-channel' | 'per-block';

export interface TensorOverride {
  /** Keep the tensor in float (no Q/DQ on it). */
  float?: boolean;
  type?: QuantType;
  method?: string;
  granularity?: Granularity;
  symmetric?: boolean;
}

export interface Recipe {
  version: 1;
  backend: string;
  kind: QuantKind;
  activationType: QuantType;
  weightType: QuantType;
  granularity: Granularity;
  /** Block size for per-block weights (32, 64 or 128 for 4-bit MatMulNBits). */
  blockSize: number;
  /** Symmetric activations (weights follow the backend's rule unless `weightSymmetric` is set). */
  activationSymmetric: boolean;
  weightSymmetric: boolean;
  /** minmax | moving-average[:m] | percentile:P | entropy[:bins] | mse */
  method: string;
  /** Op types to quantize; empty means the backend's default set. */
  opTypes: string[];
  /** Node names kept in float. */
  excludeNodes: string[];
  /** Per-tensor overrides, by tensor name. */
  overrides: Record<string, TensorOverride>;
  /** ONNX Runtime's reduce_range: 7-bit weights for CPUs without VNNI. */
  reduceRange: boolean;
  /** Samples used for calibration (0: all). */
  calibrationSamples: number;
  /**
   * Dynamic only: also quantize MatMuls of two activations (attention's scores and its product with
   * the values), both at run time. Off by default: they stay in float, as in ONNX Runtime's quantizer.
   */
  activationMatMuls?: boolean;
  /** Accuracy-recovery algorithms applied before quantization (absent: none). */
  algorithms?: Algorithms;
}

export interface Algorithms {
  /** Cross-layer equalization: rescale Conv pairs so their per-channel weight ranges match (exact in float). */
  cle?: boolean;
  /** Empirical bias correction: fold each quantized Conv/Gemm's mean output error on calibration samples into its bias (static only). */
  biasCorrection?: boolean;
  /** AdaRound: learn each quantized weight's rounding, up or down, for its layer's output on calibration samples (static only). */
  adaround?: { iterations: number };
  /**
   * GPTQ: quantize each weight-only MatMul/Gemm weight row by row, pushing each row's rounding error
   * onto the rows not yet quantized through the inverse of H = Σ x xᵀ over the layer's calibration
   * inputs (4-bit: MatMulNBits blocks of the recipe's blockSize; 8-bit: the recipe's grid).
   */
  gptq?: GptqSettings;
  /**
   * SmoothQuant: divide each input channel of the quantized MatMul/Gemm layers by
   * s = max|X|^α / max|W|^(1−α), folded into the LayerNormalization or linear layer before them, and
   * multiply their weight rows by it (static only). `alpha` absent: chosen among SMOOTHQUANT_ALPHAS
   * by output SQNR on calibration samples.
   */
  smoothquant?: { alpha?: number };
}

/** Whether a run of the recipe reads calibration data: static quantization for its ranges, weight-only GPTQ for its layers' inputs. */
export function readsCalibration(recipe: Recipe): boolean {
  return recipe.kind === 'static' || Boolean(recipe.algorithms?.gptq);
}

export const SMOOTHQUANT_ALPHAS: readonly number[] = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8];

export interface GptqSettings {
  /** Quantize rows in order of decreasing input energy (H's diagonal); the block scales are then fixed from the float weight. */
  actOrder: boolean;
  /** Added to H's diagonal as a fraction of its mean. */
  damp: number;
}

export const GPTQ_DEFAULTS: GptqSettings = { actOrder: true, damp: 0.01 };

/**
 * AdaRound's iterations per layer when none are given. On the PaddleOCR recognizer's 300 held-out
 * lines, per-channel weights read the same at 250 as at 1000 (cpu 98.0% both, xnnpack 97.0% against
 * 96.7%) in a quarter of the time; per-tensor weights, whose rounding moves the layer's output
 * more, still gain from 1000 (96.0% against 98.7%; with CLE and bias correction 94.7% against 96.7%).
 */
export function adaRoundIterations(granularity: Granularity): number {
  return granularity === 'per-tensor' ? 1000 : 250;
}

export const QUANT_TYPES: readonly QuantType[] = ['uint8', 'int8', 'uint16', 'int16', 'int4', 'uint4'];
export const QUANT_KINDS: readonly QuantKind[] = ['static', 'dynamic', 'weight-only'];

export function quantTypeBits(type: QuantType): number {
  return type.endsWith('16') ? 16 : type.endsWith('4') ? 4 : 8;
}

export function isSigned(type: QuantType): boolean {
  return type.startsWith('int');
}

export class RecipeError extends Error {}

function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new RecipeError(message);
}

/** Validates a parsed recipe (from a file or a payload); fills nothing in, names the bad field. */
export function validateRecipe(value: unknown, where = 'recipe'): Recipe {
  check(value && typeof value === 'object' && !Array.isArray(value), `${where}: expected a JSON object`);
  const r = value as Record<string, unknown>;
  const known = new Set(['version', 'backend', 'kind', 'activationType', 'weightType', 'granularity', 'blockSize',
    'activationSymmetric', 'weightSymmetric', 'method', 'opTypes', 'excludeNodes', 'overrides', 'reduceRange', 'calibrationSamples', 'activationMatMuls', 'algorithms']);
  for (const key of Object.keys(r)) check(known.has(key), `${where}: unknown field "${key}"`);
  check(r.version === 1, `${where}: "version" must be 1`);
  check(typeof r.backend === 'string' && r.backend.length > 0, `${where}: "backend" must be a backend name`);
  check(QUANT_KINDS.includes(r.kind as QuantKind), `${where}: "kind" must be one of ${QUANT_KINDS.join(', ')}`);
  check(QUANT_TYPES.includes(r.activationType as QuantType), `${where}: "activationType" must be one of ${QUANT_TYPES.join(', ')}`);
  check(QUANT_TYPES.includes(r.weightType as QuantType), `${where}: "weightType" must be one of ${QUANT_TYPES.join(', ')}`);
  check(['per-tensor', 'per-channel', 'per-block'].includes(r.granularity as string), `${where}: "granularity" must be per-tensor, per-channel or per-block`);
  check(Number.isInteger(r.blockSize) && (r.blockSize as number) >= 16 && ((r.blockSize as number) & ((r.blockSize as number) - 1)) === 0,
    `${where}: "blockSize" must be a power of two, at least 16`);
  check(typeof r.activationSymmetric === 'boolean', `${where}: "activationSymmetric" must be true or false`);
  check(typeof r.weightSymmetric === 'boolean', `${where}: "weightSymmetric" must be true or false`);
  check(typeof r.method === 'string', `${where}: "method" must be a string such as "minmax" or "percentile:99.99"`);
  check(Array.isArray(r.opTypes) && r.opTypes.every((x) => typeof x === 'string'), `${where}: "opTypes" must be a list of op type names`);
  check(Array.isArray(r.excludeNodes) && r.excludeNodes.every((x) => typeof x === 'string'), `${where}: "excludeNodes" must be a list of node names`);
  check(r.overrides && typeof r.overrides === 'object' && !Array.isArray(r.overrides), `${where}: "overrides" must be an object keyed by tensor name`);
  for (const [name, o] of Object.entries(r.overrides as Record<string, unknown>)) {
    check(o && typeof o === 'object', `${where}: override for "${name}" must be an object`);
    const ov = o as Record<string, unknown>;
    for (const key of Object.keys(ov)) check(['float', 'type', 'method', 'granularity', 'symmetric'].includes(key), `${where}: override for "${name}" has unknown field "${key}"`);
    if (ov.type !== undefined) check(QUANT_TYPES.includes(ov.type as QuantType), `${where}: override for "${name}": bad type "${String(ov.type)}"`);
  }
  check(typeof r.reduceRange === 'boolean', `${where}: "reduceRange" must be true or false`);
  check(Number.isInteger(r.calibrationSamples) && (r.calibrationSamples as number) >= 0, `${where}: "calibrationSamples" must be a whole number (0 = all)`);
  check(r.activationMatMuls === undefined || typeof r.activationMatMuls === 'boolean', `${where}: "activationMatMuls" must be true or false`);
  if (r.algorithms !== undefined) {
    const a = r.algorithms as Record<string, unknown>;
    check(a && typeof a === 'object' && !Array.isArray(a), `${where}: "algorithms" must be an object such as { "cle": true }`);
    for (const key of Object.keys(a)) check(['cle', 'biasCorrection', 'adaround', 'gptq', 'smoothquant'].includes(key), `${where}: "algorithms" has unknown field "${key}" (known: cle, biasCorrection, adaround, gptq, smoothquant)`);
    for (const key of ['cle', 'biasCorrection']) if (a[key] !== undefined) check(typeof a[key] === 'boolean', `${where}: "algorithms.${key}" must be true or false`);
    if (a.adaround !== undefined) {
      const iterations = (a.adaround as { iterations?: unknown } | null)?.iterations;
      check(Number.isInteger(iterations) && (iterations as number) >= 1, `${where}: "algorithms.adaround" must be { "iterations": N } with N a whole number of at least 1`);
    }
    if (a.smoothquant !== undefined) {
      const sq = a.smoothquant as { alpha?: unknown } | null;
      check(sq && typeof sq === 'object' && Object.keys(sq).every((k) => k === 'alpha') && (sq.alpha === undefined || (typeof sq.alpha === 'number' && sq.alpha > 0 && sq.alpha < 1)),
        `${where}: "algorithms.smoothquant" must be {} (α searched) or { "alpha": A } with A in (0, 1)`);
    }
    if (a.gptq !== undefined) {
      const g = a.gptq as Partial<GptqSettings> | null;
      check(g && typeof g === 'object' && typeof g.actOrder === 'boolean' && typeof g.damp === 'number' && g.damp >= 0 && g.damp < 1,
        `${where}: "algorithms.gptq" must be { "actOrder": true|false, "damp": D } with D in [0, 1), e.g. ${JSON.stringify(GPTQ_DEFAULTS)}`);
    }
  }
  return r as unknown as Recipe;
}

/** A layer to move to higher precision: its quantized tensor (none for a weight whose output is not quantized) and the nodes that make it. */
export interface LayerMove {
  tensor?: string;
  nodes: readonly string[];
}

/**
 * The one higher-precision rule, for the studio's Keep in float and 16-bit and for the repair
 * search. Float keeps the tensor unquantized and its nodes in float, weights included: a layer's
 * error is its weights' as much as its output's. A 16-bit type gives the tensor that type; a move
 * without a tensor can only go to float.
 */
export function withHigherPrecision(recipe: Recipe, moves: readonly LayerMove[], action: QuantType | 'float'): Recipe {
  const overrides = { ...recipe.overrides };
  const exclude = new Set(recipe.excludeNodes);
  for (const move of moves) {
    if (action === 'float' || !move.tensor) {
      for (const n of move.nodes) exclude.add(n);
      if (move.tensor) overrides[move.tensor] = { ...overrides[move.tensor], float: true };
    } else {
      overrides[move.tensor] = { ...overrides[move.tensor], type: action };
    }
  }
  return { ...recipe, overrides, excludeNodes: [...exclude] };
}

/** A tensor override in words: "float", "uint16", "per-tensor, percentile:99.9"… */
function overrideWords(o: TensorOverride | undefined): string {
  if (!o) return 'as the recipe';
  if (o.float) return 'float';
  return [o.type, o.granularity, o.method, o.symmetric === undefined ? undefined : o.symmetric ? 'symmetric' : 'asymmetric'].filter(Boolean).join(', ') || 'as the recipe';
}

function algorithmWords(a: Algorithms | undefined): string[] {
  return [a?.cle ? 'CLE' : '', a?.smoothquant ? `SmoothQuant (α ${a.smoothquant.alpha ?? 'searched'})` : '', a?.biasCorrection ? 'bias correction' : '', a?.adaround ? `AdaRound (${a.adaround.iterations} iterations)` : '', a?.gptq ? `GPTQ${a.gptq.actOrder ? ' (act-order)' : ''}` : ''].filter(Boolean);
}

/**
 * What changed from one recipe to another, a line per change, in words: what a person comparing
 * two runs needs to know to read the difference in their figures.
 */
export function recipeChanges(from: Recipe, to: Recipe): string[] {
  const changes: string[] = [];
  const field = <K extends keyof Recipe>(key: K, label: string, words: (v: Recipe[K]) => string = String) => {
    if (JSON.stringify(from[key]) !== JSON.stringify(to[key])) changes.push(`${label}: ${words(from[key])} → ${words(to[key])}`);
  };
  field('backend', 'backend');
  field('kind', 'kind');
  field('activationType', 'activations');
  field('weightType', 'weights');
  field('granularity', 'granularity');
  if (to.granularity === 'per-block') field('blockSize', 'block size');
  field('activationSymmetric', 'symmetric activations');
  field('weightSymmetric', 'symmetric weights');
  field('method', 'calibration method');
  field('reduceRange', 'reduce range');
  field('calibrationSamples', 'calibration samples', (n) => (n ? String(n) : 'all'));
  if (to.kind === 'dynamic') field('activationMatMuls', 'attention MatMuls', (v) => (v ? 'quantized at run time' : 'float'));
  field('opTypes', 'op types', (ops) => (ops.length ? ops.join(', ') : "the backend's"));
  const before = algorithmWords(from.algorithms);
  const after = algorithmWords(to.algorithms);
  if (before.join() !== after.join()) changes.push(`algorithms: ${before.join(' + ') || 'none'} → ${after.join(' + ') || 'none'}`);
  const excluded = new Set(from.excludeNodes);
  const nowExcluded = new Set(to.excludeNodes);
  const added = to.excludeNodes.filter((n) => !excluded.has(n));
  const removed = from.excludeNodes.filter((n) => !nowExcluded.has(n));
  if (added.length) changes.push(`nodes kept in float: + ${added.join(', ')}`);
  if (removed.length) changes.push(`nodes quantized again: ${removed.join(', ')}`);
  for (const tensor of new Set([...Object.keys(from.overrides), ...Object.keys(to.overrides)])) {
    const was = overrideWords(from.overrides[tensor]);
    const now = overrideWords(to.overrides[tensor]);
    if (was !== now) changes.push(`${tensor}: ${was} → ${now}`);
  }
  return changes;
}
