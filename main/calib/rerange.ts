// Calibration fixes before precision fixes: ranges chosen badly (rare outliers stretching min/max,
// a percentile clipping real signal) often recover with another method alone, at no cost in
// precision. The histograms saved with the ranges let every method's range be recomputed without
// running the model again, so trying each method costs one conversion and one measurement.
import { quantTypeBits } from '../../shared/recipe';
import { BinnedDistribution, type HistogramView } from '../stats/histogram';
import { mseRange, percentileRange } from '../stats/observers';
import type { ActivationSpec } from '../plan/plan';
import type { Range } from '../stats/range';

export interface SavedHistogram {
  min: number;
  max: number;
  counts: number[];
}

/**
 * Methods a repair tries. Entropy is left out: its search needs the count of exact zeros, which
 * the saved histogram folds into its bins.
 */
export const FIX_METHODS = ['minmax', 'percentile:99.9', 'percentile:99.99', 'percentile:99.999', 'mse'] as const;

/**
 * A histogram as the ranges file keeps it, its counts a plain array for JSON. Copied by a loop:
 * Array.from on a Float64Array goes through its iterator, 190 ms for the recognizer's 350
 * histograms of 8,192 bins against 17 ms (Node 20), and the workers hand the counts over typed for
 * the same reason (a structured clone of plain arrays took 94 ms a worker).
 */
export function savedHistogram(h: { min: number; max: number; counts: Float64Array }): SavedHistogram {
  const counts = new Array<number>(h.counts.length);
  for (let j = 0; j < counts.length; j++) counts[j] = h.counts[j];
  return { min: h.min, max: h.max, counts };
}

export function distributionOf(h: SavedHistogram): BinnedDistribution | undefined {
  const n = h.counts.length;
  if (n === 0 || !(h.max > h.min)) return undefined;
  const width = (h.max - h.min) / n;
  let first = -1;
  let last = -1;
  let total = 0;
  for (let j = 0; j < n; j++) {
    if (h.counts[j] > 0) {
      if (first < 0) first = j;
      last = j;
      total += h.counts[j];
    }
  }
  if (first < 0) return undefined;
  // The exact extremes are not saved: the outer edges of the first and last filled bins bound them.
  const view: HistogramView = { lo: h.min, width, counts: Float64Array.from(h.counts), min: h.min + first * width, max: h.min + (last + 1) * width, total, zeros: 0 };
  return new BinnedDistribution(view);
}

/** Widened to hold 0 and mirrored when symmetric, as the Q/DQ parameters will be. */
function effective(r: Range, symmetric: boolean): Range {
  const lo = Math.min(r.min, 0);
  const hi = Math.max(r.max, 0);
  if (!symmetric) return { min: lo, max: hi };
  const t = Math.max(-lo, hi);
  return { min: -t, max: t };
}

export function rangeFor(method: string, d: BinnedDistribution, levels: number, symmetric: boolean): Range {
  if (method === 'minmax') return effective({ min: d.min, max: d.max }, symmetric);
  if (method === 'mse') return mseRange(d, levels, symmetric);
  const p = Number(method.slice('percentile:'.length));
  return effective(percentileRange(d, p, symmetric), symmetric);
}

/**
 * Every tensor's range under `method`, recomputed from its saved histogram; tensors without one
 * (min/max calibration keeps none) keep their current range.
 */
export function rerange(specs: ActivationSpec[], current: ReadonlyMap<string, Range>, histograms: ReadonlyMap<string, SavedHistogram>, method: string): Map<string, Range> {
  const out = new Map(current);
  for (const spec of specs) {
    const h = histograms.get(spec.tensor);
    const d = h && distributionOf(h);
    if (d) out.set(spec.tensor, rangeFor(method, d, 2 ** quantTypeBits(spec.type), spec.symmetric));
  }
  return out;
}
