// The report JSON: the stable shape the CLI writes, the UI reads and tests pin.
import type { Preflight, PreflightCost } from './preflight';
import type { QuantType, Recipe } from './recipe';

/** SQNR in dB; identical tensors give "inf" (JSON has no Infinity). */
export type Db = number | 'inf';

export interface LayerReport {
  /** The tensor's name in the float model. */
  name: string;
  /** The node that produces the tensor (or consumes it, for a graph input). */
  node: string;
  op: string;
  /** Position in graph order. */
  index: number;
  /** Absent for a tensor kept in float. */
  type?: QuantType;
  sqnr: Db;
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

/** A file the export wrote, and what it is for. */
export interface Artifact {
  kind: 'model' | 'lowered' | 'qoperator' | 'integer-io' | 'firmware-io' | 'recipe' | 'ranges' | 'report' | 'preflight';
  file: string;
  bytes: number;
  description: string;
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
  outputs: OutputReport[];
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
}

export function dbToJson(value: number): Db {
  return value === Infinity ? 'inf' : Number(value.toFixed(3));
}

export function formatDb(value: Db): string {
  return value === 'inf' ? 'inf' : value.toFixed(1);
}
