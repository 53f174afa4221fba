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
  /** Every value must be finite: one that is not stops the pool with NonFiniteValues instead of being skipped. */
  finite?: boolean;
}

/** An Observation marked `finite` held NaN or an infinity: the model overflowed on the data (calibrate.ts overflow). */
export class NonFiniteValues extends Error {
  constructor(readonly tensor: string) {
    super(`tensor "${tensor}" holds NaN or infinite values`);
  }
}

export interface ObservedRange {
  min: number;
  max: number;
  count: number;
  histogram?: { min: number; max: number; counts: Float64Array };
}

export type StatsRequest =
  | { op: 'observe-init'; tensors: ObserveSpec[] }
  | ({ op: 'observe' } & Observation)
  /** Views of one buffer that moved to the worker with the message. */
  | { op: 'observe-all'; items: Observation[] }
  | { op: 'flush'; id: number }
  | { op: 'result'; id: number };

export type StatsResponse =
  | { op: 'flushed'; id: number }
  | { op: 'result'; id: number; ranges: Record<string, ObservedRange> }
  /** `tensor`: the request failed with NonFiniteValues of that tensor. */
  | { op: 'error'; message: string; tensor?: string };
