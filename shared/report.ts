// The report JSON: the stable shape the CLI writes, the UI reads and tests pin.
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
  type: QuantType;
  sqnr: Db;
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
  warnings: string[];
}

export function dbToJson(value: number): Db {
  return value === Infinity ? 'inf' : Number(value.toFixed(3));
}

export function formatDb(value: Db): string {
  return value === 'inf' ? 'inf' : value.toFixed(1);
}
