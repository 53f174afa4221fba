// The report JSON: the stable shape the CLI writes, the UI reads and tests pin.
import type { Target } from './metrics';
import type { HostNumerics, MainNumerics, Numerics } from './numerics';
import type { Preflight, PreflightCost } from './preflight';
import { quantTypeBits, type QuantType, type Recipe } from './recipe';

/** SQNR in dB; identical tensors give "inf" (JSON has no Infinity). */
export type Db = number | 'inf';

export interface LayerReport {
  /** The tensor's name in the float model. */
  name: string;
  /** The node that produces the tensor (or consumes it, for a graph input). */
  node: string;
  /** The nodes whose weights make it: what keeping the layer in float keeps in float with it (shared/recipe.ts withHigherPrecision). */
  nodes: string[];
  op: string;
  /** Position in graph order. */
  index: number;
  /** Absent for a tensor kept in float. */
  type?: QuantType;
  /** Cumulative SQNR: the quantized model's value against the float one, earlier layers' errors included. */
  sqnr: Db;
  /** Local SQNR: this tensor's own quantization error, with exact float inputs (absent where not measured). */
  localSqnr?: Db;
  /**
   * Set when a recipe override keeps the tensor in float: its own quantization error is nil, so
   * `sqnr` is "inf"; `keptInFloat.sqnr` compares it with the float model, the error that reaches it
   * from the quantized layers before it.
   */
  keptInFloat?: { sqnr: Db };
  /** SQNR of the weight feeding this layer's node against its quantize-dequantize, when it has one. */
  weightSqnr?: Db;
  /** Fixed scale and zero point (static); absent where activations are quantized at run time. */
  scale?: number;
  zeroPoint?: number;
  /** Calibrated range (static), or the float values' observed range. */
  range: [number, number];
}

export interface OutputReport {
  name: string;
  sqnr: Db;
  maxAbsError: number;
}

export interface WeightReport {
  name: string;
  node: string;
  op: string;
  type: QuantType;
  granularity: string;
  sqnr: Db;
}

export interface Timings {
  load: number;
  calibrate: number;
  convert: number;
  evaluate: number;
  total: number;
}

export interface LatencyReport {
  /** Where it was measured: always this machine's CPU. */
  where: string;
  /** What the figure means for the chosen backend (other devices need their own hardware). */
  note: string;
  models: Array<{ label: string; medianMs: number; runs: number; speedup?: number }>;
}

/** The outputs and metrics of the exported model as a runtime of this machine runs it, beside the main figures. */
export interface DeployedReport {
  numerics: Numerics;
  outputs: OutputReport[];
  metrics?: Metrics;
  samples: number;
  /** Why these differ from the main figures by more than 3 dB, in one sentence. */
  note?: string;
}

/** This machine's runtime, and what the job did about it. */
export interface HostReport extends HostNumerics {
  /** What the job changed so that the exported model is right on this machine, and how to keep the recipe as it was. */
  saturationFix?: { applied: 'uint8-weights' | 'reduce-range'; words: string };
  /** Why there are no figures on this machine's GPU, for a backend that runs on one. */
  webgpu?: string;
}

/** A file the export wrote, and what it is for. */
export interface Artifact {
  kind: 'model' | 'lowered' | 'qoperator' | 'integer-io' | 'firmware-io' | 'recipe' | 'ranges' | 'report' | 'preflight';
  file: string;
  bytes: number;
  description: string;
}

/** A weight the model computes from initializers alone (through Identity, Transpose, Cast, DequantizeLinear…), which prepare computed once: the ops in order, from the initializers it came from. */
export interface FoldedWeight {
  tensor: string;
  ops: string[];
  from: string[];
}

/** Folded weights in a line: how many, and by which ops. */
export function foldedWeightsWords(folded: readonly FoldedWeight[]): string {
  const counts = new Map<string, number>();
  for (const f of folded) for (const op of f.ops) counts.set(op, (counts.get(op) ?? 0) + 1);
  return `${folded.length} weight${folded.length === 1 ? '' : 's'} computed once from initializers (${[...counts].map(([op, n]) => `${op} ×${n}`).join(', ')})`;
}

export interface Report {
  tool: { name: string; version: string };
  model: { file: string; bytes: number; opset: number; irVersion: number };
  backend: string;
  recipe: Recipe;
  quantized: { file: string; bytes: number };
  sizes: { floatBytes: number; quantizedBytes: number; ratio: number };
  samples: { calibration: number; evaluation: number };
  data: { calibration: string; evaluation: string };
  timings: Timings;
  /** The numerics of `outputs`, `metrics` and `layers`. */
  numerics: MainNumerics;
  /** Weights prepare computed from initializers, so that the quantizer sees them as constants; absent when none. */
  foldedWeights?: FoldedWeight[];
  outputs: OutputReport[];
  /** Task metrics of the first output on the evaluation samples (agreement, cosine; accuracy with labels; custom from the metric module). */
  metrics?: Metrics;
  /** The user's metric module behind `custom` and `float-custom`. */
  customMetric?: CustomMetricReport;
  /** The same outputs as deployed on this machine, where that differs from `numerics` (cpu: ort-cpu; webgpu: on the GPU). */
  deployed?: DeployedReport;
  host: HostReport;
  layers: LayerReport[];
  weights: WeightReport[];
  /** Nodes left in float and why. */
  float: Array<{ node: string; op: string; reason: string }>;
  /** Where every node runs on the backend (also written alone as OUT.preflight.json). */
  preflight: Preflight;
  /** What the recipe's exclusions and overrides cost against the same recipe without them. */
  preflightCost?: PreflightCost;
  /** Absent when the check was skipped (--no-latency). */
  latency?: LatencyReport;
  /** Everything the export wrote besides this report. */
  artifacts: Artifact[];
  warnings: string[];
  /** What an automatic repair (mixed precision, calibration fixes) changed to reach its target. */
  repair?: RepairReport;
  /** What the recipe's accuracy-recovery algorithms did. */
  algorithms?: AlgorithmsReport;
}

/** A weight's SQNR under the run's weight quantization, before and after an algorithm changed it. */
export interface WeightChange {
  before: Db;
  after: Db;
}

/** Cross-layer equalization: each Conv pair rescaled, with its weights' SQNR (for those the run quantizes). */
export interface CleReport {
  /** `via`: the per-channel nodes between the two (Relu, pooling), in order. */
  pairs: Array<{ first: string; second: string; via: string[]; weightSqnr: { first?: WeightChange; second?: WeightChange }; absorbed: number }>;
  seconds: number;
}

/**
 * Bias correction: per corrected layer, the RMS over channels of its mean output error before →
 * after, measured on calibration samples (empirical), or as BatchNorm statistics predict it from
 * the weights' error, which the correction then removes (analytic: `after` is 0 by construction).
 */
export interface BiasCorrectionReport {
  method: 'empirical' | 'analytic';
  layers: Array<{ node: string; before: number; after: number }>;
  passes: number;
  samples: number;
  seconds: number;
}

/**
 * AdaRound, per layer: its output SQNR on the calibration samples (the quantized layer on the
 * inputs the quantized model gives it, with the layers before it rounded as learned, against the
 * float layer on float inputs; before its output is quantized) and its weight SQNR, nearest → the
 * rounding kept, the share of weights rounded the other way, and its soft loss every tenth of the
 * iterations.
 */
export interface AdaRoundReport {
  iterations: number;
  samples: number;
  seconds: number;
  /** The ranges file the rounding was read from, when the run re-used an earlier run's instead of learning it. */
  reusedFrom?: string;
  layers: Array<{ node: string; weight: string; kept: 'learned' | 'nearest'; changed: number; outputSqnr: WeightChange; weightSqnr: WeightChange; loss: number[]; seconds: number }>;
}

/**
 * The run's recipe with none of its algorithms, measured on the same evaluation samples in the same
 * numerics: the baseline each layer's SQNR is compared with (with CLE, the un-equalized model
 * against the model as given, on ranges calibrated on it; absent, with `note`, where that cannot be
 * measured).
 */
export interface WithoutAlgorithmsReport {
  outputs: OutputReport[];
  metrics: Metrics;
  /** Cumulative SQNR per quantized tensor, by name. */
  layers: Record<string, Db>;
  samples: number;
  seconds: number;
}

/**
 * GPTQ, per layer: its output SQNR on the calibration inputs (float inputs, from H), rounded to
 * nearest → with GPTQ, and why a layer kept nearest rounding where it did.
 */
export interface GptqReport {
  /** The grid the weights were quantized on: "int4 blocks of 32", "int8 per-channel". */
  grid: string;
  actOrder: boolean;
  damp: number;
  samples: number;
  seconds: number;
  layers: Array<{ node: string; weight: string; outputSqnr: WeightChange; kept: 'gptq' | 'nearest'; note?: string; seconds: number }>;
}

/**
 * SmoothQuant: α (given, or chosen among `searched` by output SQNR on calibration samples), and
 * per smoothed activation its producer, its readers, and its outlier ratio (widest channel's range
 * over the mean channel's) before → after; the inputs of quantized MatMul/Gemm layers it could not
 * smooth, with why.
 */
export interface SmoothQuantReport {
  alpha: number;
  searched?: Array<{ alpha: number; outputSqnr: Db }>;
  samples: number;
  seconds: number;
  layers: Array<{ input: string; producer: string; consumers: string[]; outlierRatio: { before: number; after: number } }>;
  skipped: Array<{ input: string; reason: string }>;
}

/** What SmoothQuant did in a line. */
export function smoothQuantWords(s: SmoothQuantReport): string {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 1;
  const readers = s.layers.reduce((n, l) => n + l.consumers.length, 0);
  return `α ${s.alpha}${s.searched ? ` (searched: ${s.searched.map((t) => `${t.alpha} → ${formatDb(t.outputSqnr)} dB`).join(', ')})` : ''}, ${s.layers.length} activations smoothed for ${readers} layers on ${s.samples} calibration samples, ${s.seconds.toFixed(1)} s; `
    + `median outlier ratio ${median(s.layers.map((l) => l.outlierRatio.before))} → ${median(s.layers.map((l) => l.outlierRatio.after))}${s.skipped.length ? `; ${s.skipped.length} inputs not smoothable` : ''}`;
}

/** What GPTQ did in a line: layers, data, and the median layer's output SQNR gain over nearest rounding. */
export function gptqWords(g: GptqReport): string {
  const gains = g.layers.map((l) => (Number(l.outputSqnr.after) || 0) - (Number(l.outputSqnr.before) || 0)).sort((x, y) => x - y);
  const median = gains.length ? gains[Math.floor(gains.length / 2)] : 0;
  const nearest = g.layers.filter((l) => l.kept === 'nearest').length;
  return `${g.layers.length} layers, ${g.grid}${g.actOrder ? ', act-order' : ''}, on ${g.samples} calibration samples, ${g.seconds.toFixed(1)} s; `
    + `layer output SQNR up ${median.toFixed(1)} dB over nearest rounding in the median layer${nearest ? `; ${nearest} kept nearest rounding` : ''}`;
}

export interface AlgorithmsReport {
  cle?: CleReport;
  biasCorrection?: BiasCorrectionReport;
  adaround?: AdaRoundReport;
  gptq?: GptqReport;
  smoothquant?: SmoothQuantReport;
  without?: WithoutAlgorithmsReport;
  /** Why `without` is missing, where the job could not measure it. */
  withoutNote?: string;
}

/** A weight's SQNR before → after, in dB (with `unit`), or why it has none. */
export function weightChangeWords(c: WeightChange | undefined, unit = ''): string {
  return c ? `${formatDb(c.before)} → ${formatDb(c.after)}${unit}` : 'not quantized';
}

/** What AdaRound did in a line: layers learned against kept at nearest, and the median layer's output SQNR gain. */
export function adaRoundWords(a: AdaRoundReport): string {
  const learned = a.layers.filter((l) => l.kept === 'learned');
  const gains = a.layers.map((l) => (Number(l.outputSqnr.after) || 0) - (Number(l.outputSqnr.before) || 0)).sort((x, y) => x - y);
  const median = gains.length ? gains[Math.floor(gains.length / 2)] : 0;
  const when = a.reusedFrom ? `, rounding re-used from the saved ranges ${a.reusedFrom.split(/[\\/]/).pop()}` : `, ${a.seconds.toFixed(1)} s`;
  return `${a.layers.length} layers, ${a.iterations} iterations each on ${a.samples} calibration samples${when}; learned rounding kept in ${learned.length}, `
    + `nearest in ${a.layers.length - learned.length}; layer output SQNR (quantized inputs) up ${median.toFixed(1)} dB in the median layer`;
}

/** How a bias correction measured its layers, in a few words. */
export function biasCorrectionSource(b: BiasCorrectionReport): string {
  return b.method === 'analytic' ? `${b.layers.length} convs, analytic from BatchNorm statistics (the weights' error alone)` : `${b.layers.length} layers, ${b.passes} runs on ${b.samples} calibration samples`;
}

/** The RMS over the corrected layers of their mean output errors, before or after the correction. */
export function biasErrorRms(b: BiasCorrectionReport, when: 'before' | 'after'): number {
  return Math.sqrt(b.layers.reduce((s, l) => s + l[when] ** 2, 0) / Math.max(1, b.layers.length));
}

/** What each algorithm did to the nodes that make a layer: the CLE pair it is in, its bias correction, its AdaRound rounding (learned or nearest). */
export function layerAlgorithmEntries(algorithms: AlgorithmsReport | undefined, nodes: readonly string[]) {
  const mine = (node: string) => nodes.includes(node);
  return {
    pair: algorithms?.cle?.pairs.find((p) => mine(p.first) || mine(p.second)),
    corrected: algorithms?.biasCorrection?.layers.find((l) => mine(l.node)),
    rounded: algorithms?.adaround?.layers.find((l) => mine(l.node)),
    gptq: algorithms?.gptq?.layers.find((l) => mine(l.node)),
  };
}

/** The algorithms that changed a layer, as short names: CLE rescaled its node's weights, bias correction its bias, AdaRound or GPTQ chose its rounding (where kept). */
export function layerAlgorithms(algorithms: AlgorithmsReport | undefined, nodes: readonly string[]): string[] {
  const { pair, corrected, rounded, gptq } = layerAlgorithmEntries(algorithms, nodes);
  return [...(pair ? ['CLE'] : []), ...(rounded?.kept === 'learned' ? ['AdaRound'] : []), ...(gptq?.kept === 'gptq' ? ['GPTQ'] : []), ...(corrected ? ['bias correction'] : [])];
}

/** A layer's SQNR gain over the same recipe without its algorithms, in dB; undefined where either side is not a finite figure. */
export function algorithmGain(without: WithoutAlgorithmsReport, layer: Pick<LayerReport, 'name' | 'sqnr'>): number | undefined {
  const before = without.layers[layer.name];
  return typeof before === 'number' && typeof layer.sqnr === 'number' ? layer.sqnr - before : undefined;
}

/** The run's layers as the same recipe without its algorithms measured them: what a chart outlines and a table's Δ compares with. */
export function layersWithoutAlgorithms(report: Pick<Report, 'layers' | 'algorithms'>): LayerReport[] | undefined {
  const without = report.algorithms?.without;
  return without && report.layers.map((l) => ({ ...l, sqnr: without.layers[l.name] ?? l.sqnr }));
}

/** What the algorithms gained against the same recipe without them, in a line: the output, and the layers up and down by more than 0.1 dB. */
export function withoutWords(without: WithoutAlgorithmsReport, report: Pick<Report, 'outputs' | 'layers'>): string {
  const gains = report.layers.map((l) => algorithmGain(without, l)).filter((g): g is number => g !== undefined).sort((a, b) => a - b);
  const up = gains.filter((g) => g > 0.1).length;
  const down = gains.filter((g) => g < -0.1).length;
  const median = gains.length ? gains[Math.floor(gains.length / 2)] : 0;
  const outputs = report.outputs.map((o, i) => `${formatDb(without.outputs[i]?.sqnr ?? 'inf')} → ${formatDb(o.sqnr)} dB`).join(', ');
  const shown = Math.abs(median) < 0.05 ? '±0.0' : `${median > 0 ? '+' : ''}${median.toFixed(1)}`;
  return `compared with the same recipe without them, on the same ${without.samples} samples: output SQNR ${outputs}; ${up} layers up, ${down} down by more than 0.1 dB, median ${shown} dB`;
}

/** What `custom` measures: the metric module's own name for it, and the module file. */
export interface CustomMetricReport {
  name: string;
  module: string;
}

/** Task metrics of the quantized model against the float one (and against labels, where given). */
export type Metrics = Record<string, number>;

/** How good a model is at one point of a search: output SQNR and task metrics, on the same samples. */
export interface Quality {
  numerics: MainNumerics;
  outputSqnr: Db;
  metrics: Metrics;
  samples: number;
}

/**
 * One sensitivity unit: a quantized tensor with the tensors that share its quantization and the
 * weights of the node that makes it (a conv with its folded activation is one unit).
 */
export interface SensitivityRow {
  /** The unit's calibrated tensor. */
  name: string;
  node: string;
  op: string;
  index: number;
  tensors: string[];
  weights: string[];
  localSqnr?: Db;
  cumulativeSqnr?: Db;
  /** Output SQNR with only this unit quantized (everything else float). */
  onlyQuantized?: Db;
  /** Output SQNR with every unit quantized except this one; absent where skipped as unable to matter. */
  onlyFloat?: Db;
  /** The targeted task metric with only this unit in float. */
  onlyFloatMetric?: number;
  /** Rank by sensitivity, 1 = the unit whose quantization hurts most. */
  rank: number;
}

export interface AnalysisReport {
  tool: { name: string; version: string };
  model: string;
  backend: string;
  recipe: Recipe;
  samples: number;
  /** The numerics of every figure of the analysis: the baseline, the layers and the sensitivity runs. */
  numerics: MainNumerics;
  /** The fully quantized model (as exported) against float, on the analysis samples. */
  baseline: Quality;
  /** The user's metric module behind `custom`. */
  customMetric?: CustomMetricReport;
  layers: LayerReport[];
  /** The first tensor, in graph order, where cumulative SQNR falls sharply from the one before. */
  firstDrop?: { name: string; node: string; from: Db; to: Db };
  /** Tensors with the lowest local SQNR, worst first. */
  worstLocal: string[];
  sensitivity: SensitivityRow[];
  /** Units whose "only this one in float" run was skipped: their own error cannot move the output. */
  skipped: number;
  runs: number;
  timings: { prepare: number; evaluate: number; sensitivity: number; total: number };
  warnings: string[];
}

/** A layer moved to float or a type, the calibration method re-chosen, or an algorithm applied to every layer. */
export type RepairAction = 'float' | QuantType | `method:${string}` | 'algorithm:cle' | 'algorithm:smoothquant' | 'algorithm:adaround' | 'algorithm:bias-correction';

/** Whether a repair change moved a layer to higher precision (not a method or an algorithm for the whole model). */
export function movesLayer(action: RepairAction): boolean {
  return !action.startsWith('method:') && !action.startsWith('algorithm:');
}

export interface RepairChange {
  /** The unit's calibrated tensor. */
  name: string;
  node: string;
  op: string;
  action: RepairAction;
  /** Why this unit: the output SQNR with only it in float, or the local SQNR a method recovers. */
  why: string;
}

export interface RepairReport {
  target: Target;
  /** The numerics every measurement of the search was made in. */
  numerics: MainNumerics;
  met: boolean;
  /** Why the target was not met, or why nothing was changed. */
  reason: string;
  before: Quality;
  after: Quality;
  changes: RepairChange[];
  cost: {
    unitsChanged: number;
    unitsTotal: number;
    /** unitsChanged / unitsTotal. */
    fraction: number;
    /** Nodes quantized before the repair that run in float after it. */
    nodesLeavingIntegerPath: string[];
    /** Tensors moved to 16-bit activations. */
    sixteenBit: number;
  };
  runs: number;
  seconds: number;
}

/** Layers of a run kept out of its activation type: kept in float, or given more bits by an override or a repair. */
export function higherPrecisionLayers(report: Pick<Report, 'layers' | 'recipe'>): number {
  return report.layers.filter((l) => l.keptInFloat || (l.type && quantTypeBits(l.type) > quantTypeBits(report.recipe.activationType))).length;
}

/** What a repair cost, in words: what it moved, against what the run holds in higher precision in all. */
export function repairCostWords(repair: RepairReport, report: Pick<Report, 'layers' | 'recipe'>): string {
  const total = higherPrecisionLayers(report);
  const moved = repair.cost.unitsChanged;
  const already = total > moved ? `; ${total - moved} already in higher precision in the recipe it repaired` : '';
  if (moved === 0) return `no layer moved to higher precision by the repair${already}`;
  const leaving = repair.cost.nodesLeavingIntegerPath;
  return `${moved} of ${repair.cost.unitsTotal} layers moved to higher precision (${(repair.cost.fraction * 100).toFixed(1)}%), ${repair.cost.sixteenBit} to 16-bit, `
    + `${leaving.length} node(s) leave the integer path${leaving.length ? ` (${leaving.slice(0, 6).join(', ')}${leaving.length > 6 ? ', …' : ''})` : ''}${already}`;
}

/** SQNR as a number to sort or compare: "inf" is Infinity; a missing one sorts last, as if perfect. */
export function dbNumber(value: Db | undefined): number {
  return value === undefined || value === 'inf' ? Infinity : value;
}

/** now − was in dB: two exact figures differ by nothing, an exact one from a finite one by ±Infinity. */
export function dbDelta(now: Db, was: Db): number {
  return now === 'inf' && was === 'inf' ? 0 : dbNumber(now) - dbNumber(was);
}

/** A change as a screen shows it: signed, two decimals (dB) or more, "+inf"/"−inf" where one side is exact. */
export function deltaText(delta: number, digits = 2): string {
  if (!Number.isFinite(delta)) return delta > 0 ? '+inf' : '−inf';
  return `${delta > 0 ? '+' : delta < 0 ? '−' : '±'}${Math.abs(delta).toFixed(digits)}`;
}

/** The worst (lowest) SQNR of several outputs. */
export function worstDb(values: readonly Db[]): Db {
  return values.reduce<Db>((a, b) => (dbNumber(b) < dbNumber(a) ? b : a), 'inf');
}

export function dbToJson(value: number): Db {
  return value === Infinity ? 'inf' : Number(value.toFixed(3));
}

export function formatDb(value: Db): string {
  return value === 'inf' ? 'inf' : value.toFixed(1);
}
