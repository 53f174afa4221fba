// Messages between the engine and its stats workers.
import type { Bounds } from './observers';

export interface ObserveSpec {
  name: string;
  method: string;
  symmetric: boolean;
  bins?: number;
  levels?: number;
}

/** A batch of one tensor's values for its observer; `bounds` as in Observer.update. */
export interface Observation {
  name: string;
  data: Float32Array;
  bounds?: Bounds;
}

export interface CompareStats {
  signal: number;
  noise: number;
  maxAbsError: number;
  refMin: number;
  refMax: number;
}

export interface ObservedRange {
  min: number;
  max: number;
  count: number;
  histogram?: { min: number; max: number; counts: number[] };
}

export type StatsRequest =
  | { op: 'observe-init'; tensors: ObserveSpec[] }
  | { op: 'observe'; name: string; data: Float32Array; bounds?: Bounds }
  /** Views of one buffer that moved to the worker with the message. */
  | { op: 'observe-all'; items: Observation[] }
  | { op: 'compare'; name: string; ref: Float32Array; approx: Float32Array }
  | { op: 'flush'; id: number }
  | { op: 'result'; id: number };

export type StatsResponse =
  | { op: 'flushed'; id: number }
  | { op: 'result'; id: number; ranges: Record<string, ObservedRange>; compares: Record<string, CompareStats> }
  | { op: 'error'; message: string };
