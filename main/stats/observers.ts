// Calibration observers: watch one activation tensor batch by batch and turn what they saw into
// the float range its QuantizeLinear will cover. State is bounded (a few numbers, or one
// fixed-size histogram), whatever the size of the calibration set.
import type { Range } from './range';
import { BinnedDistribution, scanBatch, StreamingHistogram } from './histogram';

export type CalibrationMethod =
  | { kind: 'minmax' }
  /** Exponential moving average of the per-batch min and max: m = (1 - momentum) * m + momentum * batch. */
  | { kind: 'moving-average'; momentum: number }
  /** Clip at a percentile (0 < P <= 100), as ONNX Runtime's percentile calibrator does. */
  | { kind: 'percentile'; percentile: number }
  /** TensorRT-style KL-divergence threshold search on `bins` bins of |x| (default: options.bins, else 2048). */
  | { kind: 'entropy'; bins?: number }
  /** Clip range minimising the expected quantize-dequantize squared error. */
  | { kind: 'mse' };

export interface ObserverOptions {
  /** Range symmetric about 0 (zero point in the middle of the integer range). */
  symmetric: boolean;
  /** Histogram bins for percentile and mse, and the default |x| bins for entropy; default 2048. */
  bins?: number;
  /** Quantized levels: 256 for 8-bit (default), 65536 for 16-bit, 16 for 4-bit. */
  levels?: number;
}

/** The exact finite extremes of the data a sample was drawn from. */
export interface Bounds {
  min: number;
  max: number;
}

export interface Observer {
  /**
   * Adds a batch. NaN and +-Infinity are skipped: they carry no finite range, and QuantizeLinear
   * saturates infinities to the ends of whatever range is chosen, so letting them in would only
   * make the range (and the scale) infinite. Overflow-prone tensors (attention masks) still
   * quantize their finite part well. `bounds`, when `data` is a sample of larger data, are that
   * data's exact extremes: they widen the range seen without counting as values.
   */
  update(data: Float32Array, bounds?: Bounds): void;
  /**
   * The calibrated range. Always min <= 0 <= max, because ONNX zero points must represent 0
   * exactly; symmetric observers return [-t, t]. {0, 0} before any finite value.
   */
  range(): Range;
  /**
   * The values seen, binned over [min, max) in equal bins, for charts. The moving-average and
   * minmax observers keep none (binning would cost them a second pass over every batch) and
   * return undefined; so does any observer before its first finite value.
   */
  histogram(): { min: number; max: number; counts: Float64Array } | undefined;
  /** Finite values seen. */
  readonly count: number;
}

const DEFAULT_BINS = 2048;
const DEFAULT_LEVELS = 256;
/** ONNX Runtime's and PyTorch's MovingAverageMinMax default. */
const DEFAULT_MOMENTUM = 0.01;
/** 8 MB per histogram: a typo such as entropy:20480000 must not allocate gigabytes over a model. */
const MAX_BINS = 1 << 20;
const ENTROPY_OVERSAMPLING = 4;
const MAX_ENTROPY_BINS = MAX_BINS / ENTROPY_OVERSAMPLING;
const METHOD_FORMS = 'minmax, moving-average[:momentum], percentile:P, entropy[:bins], mse';

export function createObserver(method: CalibrationMethod, options: ObserverOptions): Observer {
  const bins = options.bins ?? DEFAULT_BINS;
  const levels = options.levels ?? DEFAULT_LEVELS;
  const { symmetric } = options;
  checkBins(bins, 'bins', MAX_BINS);
  if (!Number.isInteger(levels) || levels < 2) throw new Error(`observer levels must be a whole number >= 2, got ${levels}`);
  switch (method.kind) {
    case 'minmax':
      return new MinMaxObserver(symmetric);
    case 'moving-average':
      if (!(method.momentum > 0 && method.momentum <= 1)) throw new Error(`moving-average momentum must be in (0, 1], got ${method.momentum}`);
      return new MovingAverageObserver(method.momentum, symmetric);
    case 'percentile': {
      const p = method.percentile;
      if (!(p > 0 && p <= 100)) throw new Error(`percentile must be in (0, 100], got ${p}`);
      return new HistogramObserver(bins, symmetric, (d) => percentileRange(d, p, symmetric));
    }
    case 'entropy': {
      const entropyBins = method.bins ?? bins;
      checkBins(entropyBins, 'entropy bins', MAX_ENTROPY_BINS);
      // The signed histogram must be at least as fine as the |x| grid the thresholds are
      // searched on: resampled from coarser bins, |x| would show runs of equal bins that the KL
      // search takes for lossless merges, biasing it to wide ranges. Folding two signs into one
      // halves the resolution, and growth can leave half the bins unused: hence 4x.
      return new HistogramObserver(ENTROPY_OVERSAMPLING * entropyBins, symmetric, (d) => entropyRange(d, entropyBins, levels, symmetric));
    }
    case 'mse':
      return new HistogramObserver(bins, symmetric, (d) => mseRange(d, levels, symmetric));
    default:
      // Reachable from untyped callers (a method object read from JSON).
      throw new Error(`unknown calibration method ${JSON.stringify(method)}; use parseMethod() on one of: ${METHOD_FORMS}`);
  }
}

/** Parses the recipe's method string: minmax | moving-average[:0.01] | percentile:99.99 | entropy[:2048] | mse. */
export function parseMethod(text: string): CalibrationMethod {
  const fail = (why: string): Error => new Error(`bad calibration method "${text}": ${why} (valid forms: ${METHOD_FORMS})`);
  const colon = text.indexOf(':');
  const name = (colon < 0 ? text : text.slice(0, colon)).trim().toLowerCase();
  const arg = colon < 0 ? undefined : text.slice(colon + 1).trim();
  switch (name) {
    case 'minmax':
    case 'mse':
      if (arg !== undefined) throw fail(`${name} takes no parameter`);
      return { kind: name };
    case 'moving-average': {
      if (arg === undefined) return { kind: 'moving-average', momentum: DEFAULT_MOMENTUM };
      const momentum = decimal(arg);
      if (!(momentum > 0 && momentum <= 1)) throw fail('momentum must be a number in (0, 1], e.g. moving-average:0.01');
      return { kind: 'moving-average', momentum };
    }
    case 'percentile': {
      const percentile = arg === undefined ? NaN : decimal(arg);
      if (!(percentile > 0 && percentile <= 100)) throw fail('percentile needs a number in (0, 100], e.g. percentile:99.99');
      return { kind: 'percentile', percentile };
    }
    case 'entropy': {
      if (arg === undefined) return { kind: 'entropy' };
      const bins = /^\d+$/.test(arg) ? Number(arg) : NaN;
      if (!(bins >= 1 && bins <= MAX_ENTROPY_BINS)) throw fail(`entropy bins must be a whole number from 1 to ${MAX_ENTROPY_BINS}, e.g. entropy:2048`);
      return { kind: 'entropy', bins };
    }
    default:
      throw fail('unknown method');
  }
}

/** Plain decimal notation only: Number() would also take '', '0x10' and 'Infinity'. */
function decimal(text: string): number {
  return /^\+?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text) ? Number(text) : NaN;
}

function checkBins(bins: number, what: string, max: number): void {
  if (!Number.isInteger(bins) || bins < 1 || bins > max) throw new Error(`observer ${what} must be a whole number from 1 to ${max}, got ${bins}`);
}

/** The final range: widened to hold 0, mirrored when symmetric; {0, 0} when nothing was seen. */
function finish(min: number, max: number, symmetric: boolean): Range {
  if (!(min <= max)) return { min: 0, max: 0 };
  if (symmetric) {
    const t = Math.max(-min, max, 0);
    return { min: -t, max: t };
  }
  return { min: Math.min(min, 0), max: Math.max(max, 0) };
}

class MinMaxObserver implements Observer {
  private min = Infinity;
  private max = -Infinity;
  private seen = 0;

  constructor(private readonly symmetric: boolean) {}

  get count(): number {
    return this.seen;
  }

  update(data: Float32Array, bounds?: Bounds): void {
    const batch = scanBatch(data, this.min, this.max);
    this.min = Math.min(batch.min, bounds?.min ?? Infinity);
    this.max = Math.max(batch.max, bounds?.max ?? -Infinity);
    this.seen += data.length - batch.skipped;
  }

  range(): Range {
    return finish(this.min, this.max, this.symmetric);
  }

  histogram(): undefined {
    return undefined;
  }
}

class MovingAverageObserver implements Observer {
  private min = Infinity;
  private max = -Infinity;
  private averaged = false;
  private seen = 0;

  constructor(private readonly momentum: number, private readonly symmetric: boolean) {}

  get count(): number {
    return this.seen;
  }

  update(data: Float32Array, bounds?: Bounds): void {
    const batch = scanBatch(data, bounds?.min ?? Infinity, bounds?.max ?? -Infinity);
    const finite = data.length - batch.skipped;
    // A batch with no finite value has no min or max to average in.
    if (!(batch.min <= batch.max)) return;
    if (this.averaged) {
      const c = this.momentum;
      this.min = (1 - c) * this.min + c * batch.min;
      this.max = (1 - c) * this.max + c * batch.max;
    } else {
      this.min = batch.min;
      this.max = batch.max;
      this.averaged = true;
    }
    this.seen += finite;
  }

  range(): Range {
    return finish(this.min, this.max, this.symmetric);
  }

  histogram(): undefined {
    return undefined;
  }
}

class HistogramObserver implements Observer {
  private readonly hist: StreamingHistogram;
  /** range() runs a search over the histogram; the UI may ask repeatedly between updates. */
  private cached: Range | undefined;

  constructor(bins: number, private readonly symmetric: boolean, private readonly pick: (d: BinnedDistribution) => Range) {
    this.hist = new StreamingHistogram(bins);
  }

  get count(): number {
    return this.hist.total;
  }

  update(data: Float32Array, bounds?: Bounds): void {
    this.hist.add(data, bounds);
    this.cached = undefined;
  }

  range(): Range {
    if (!this.cached) {
      const view = this.hist.view();
      // Before two distinct values there is no spread to clip: the range is the value itself.
      this.cached = view ? this.pick(new BinnedDistribution(view)) : finish(this.hist.min, this.hist.max, this.symmetric);
    }
    return { ...this.cached };
  }

  histogram(): { min: number; max: number; counts: Float64Array } | undefined {
    const view = this.hist.view();
    if (view) return { min: view.lo, max: view.lo + view.counts.length * view.width, counts: view.counts.slice() };
    if (this.hist.total === 0) return undefined;
    // One repeated value: a chart still needs a non-empty interval, so centre a narrow one on it.
    const value = this.hist.min;
    const n = this.hist.bins;
    const half = value === 0 ? 2 ** -10 : Math.abs(value) * 2 ** -10;
    const counts = new Float64Array(n);
    counts[Math.floor(n / 2)] = this.hist.total;
    return { min: value - half, max: value + half, counts };
  }
}

/**
 * ONNX Runtime's percentile semantics: symmetric clips |x| at its P-th percentile; asymmetric
 * cuts (100 - P) / 2 percent off each tail of x. Quantiles interpolate within their bin.
 */
export function percentileRange(d: BinnedDistribution, percentile: number, symmetric: boolean): Range {
  // The exact extremes, which a sampled histogram may not count.
  if (percentile === 100) return finish(d.min, d.max, symmetric);
  if (symmetric) {
    const t = d.absQuantile((percentile / 100) * d.total);
    return { min: -t, max: t };
  }
  const tail = (100 - percentile) / 200;
  return finish(d.quantile(tail * d.total), d.quantile((1 - tail) * d.total), false);
}

/**
 * KL divergence between the clipped reference distribution P and its quantized version Q for
 * every candidate threshold i = quantBins..h.length (entry i - quantBins), over a histogram h
 * of |x|. As in TensorRT and MXNet: P is h[0..i) with the mass beyond added to its last bin;
 * Q merges h[0..i) (outliers not included, which is what penalises clipping) into quantBins
 * buckets, the last taking the remainder, and spreads each bucket over the bins where P is
 * nonzero. Both are smoothed (zero bins get eps, nonzero bins are scaled down to pay for it,
 * scaling rather than MXNet's subtraction so fractional counts cannot go negative).
 *
 * Each candidate costs O(quantBins), not O(i): with prefix sums of h, of its nonzero count and
 * of h log h, the divergence splits into per-bucket closed forms.
 */
export function klDivergences(h: Float64Array, quantBins: number): Float64Array {
  const n = h.length;
  const sum = new Float64Array(n + 1);
  const nonzero = new Float64Array(n + 1);
  const hLogH = new Float64Array(n + 1);
  const binLogs = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    sum[j + 1] = sum[j] + h[j];
    nonzero[j + 1] = nonzero[j] + (h[j] > 0 ? 1 : 0);
    binLogs[j] = xLogX(h[j]);
    hLogH[j + 1] = hLogH[j] + binLogs[j];
  }
  const total = sum[n];
  // Logarithms are most of a candidate's cost, and a calibration's worker runs this once a tensor,
  // mostly cold: those of constants are taken once, and quotients' logarithms are differences.
  const logTotal = Math.log(total);
  const logMinEps = Math.log(MIN_EPS);
  const out = new Float64Array(n - quantBins + 1);
  let groupsOf = 0;
  let groupsLogTerm = 0;
  let groupsMass = 0;
  let groupsZeroBins = 0;
  for (let i = quantBins; i <= n; i++) {
    const inQ = sum[i];
    if (!(inQ > 0)) {
      out[i - quantBins] = Infinity;
      continue;
    }
    const outliers = total - sum[i];
    const lastP = h[i - 1] + outliers;
    const lastGainsNonzero = h[i - 1] === 0 && lastP > 0 ? 1 : 0;
    const zerosP = i - nonzero[i] - lastGainsNonzero;
    const pLogP = hLogH[i] - binLogs[i - 1] + xLogX(lastP);
    const merged = Math.floor(i / quantBins);
    if (merged !== groupsOf) {
      groupsOf = merged;
      ({ logTerm: groupsLogTerm, mass: groupsMass, zeroBins: groupsZeroBins } = fixedBuckets(sum, nonzero, quantBins, merged));
    }
    // The last bucket ends at the threshold and takes the outliers: the only one that moves with it.
    const start = (quantBins - 1) * merged;
    const bucket = sum[i] - sum[start];
    const nz = nonzero[i] - nonzero[start] + lastGainsNonzero;
    const pMass = bucket + outliers;
    const logInQ = Math.log(inQ);
    let qLogTerm = groupsLogTerm - groupsMass * logInQ;
    let inNonzeroQ = groupsMass;
    let inZeroQ = 0;
    let zerosQ = zerosP + groupsZeroBins;
    if (bucket > 0) {
      qLogTerm += pMass * (Math.log(bucket / nz) - logInQ);
      inNonzeroQ += pMass;
    } else {
      inZeroQ += pMass;
      zerosQ += nz;
    }
    // 1e-4 counts as in MXNet and ONNX Runtime; capped so smoothing never takes more than half
    // of a histogram with very little mass.
    const capped = Math.min(total, inQ) / (2 * i);
    const eps = Math.min(MIN_EPS, capped);
    const logEps = eps === MIN_EPS ? logMinEps : Math.log(capped);
    const scaleP = (total - eps * zerosP) / total;
    const scaleQ = (inQ - eps * zerosQ) / inQ;
    const nonzeroPart = (scaleP / total) * (pLogP + total * (Math.log(scaleP) - logTotal) - inNonzeroQ * Math.log(scaleQ) - qLogTerm - inZeroQ * (logEps - logInQ));
    const zeroPart = zerosP * (eps / total) * (logInQ - logTotal);
    out[i - quantBins] = nonzeroPart + zeroPart;
  }
  return out;
}

/**
 * The buckets before the last, `merged` bins each: the same for every threshold that merges as
 * many bins, so each sum over them is taken once per `merged` (16 times over 2048 bins, not 1,921).
 * `logTerm` is Σ mass·log(mass / nonzero bins) over buckets with mass, `mass` their mass, and
 * `zeroBins` the nonzero bins of p that fall in buckets of q without mass.
 */
function fixedBuckets(sum: Float64Array, nonzero: Float64Array, quantBins: number, merged: number): { logTerm: number; mass: number; zeroBins: number } {
  let logTerm = 0;
  let mass = 0;
  let zeroBins = 0;
  for (let b = 0; b < quantBins - 1; b++) {
    const start = b * merged;
    const bucket = sum[start + merged] - sum[start];
    const nz = nonzero[start + merged] - nonzero[start];
    if (bucket > 0) {
      logTerm += bucket * Math.log(bucket / nz);
      mass += bucket;
    } else {
      zeroBins += nz;
    }
  }
  return { logTerm, mass, zeroBins };
}

/** The smoothing mass of an empty bin, as in MXNet and ONNX Runtime (klDivergences). */
const MIN_EPS = 1e-4;

function xLogX(x: number): number {
  return x > 0 ? x * Math.log(x) : 0;
}

/** The |x| threshold of least KL divergence; levels / 2 buckets per side, as TensorRT's 128 for 8 bits. */
export function entropyThreshold(d: BinnedDistribution, bins: number, levels: number): number {
  const top = Math.max(-d.min, d.max);
  // With as many buckets as bins every candidate quantizes losslessly at this resolution, so
  // only the full range (no clipping) remains: 16-bit keeps its range unless bins > 32768.
  const quantBins = Math.min(Math.floor(levels / 2), bins);
  // Exact zeros (ReLU outputs, padding, image backgrounds) quantize without error under any
  // range; left in, their spike dominates the KL and the search clips real values hard.
  const kl = klDivergences(d.fold(bins, true), quantBins);
  let best = 0;
  for (let i = 1; i < kl.length; i++) if (kl[i] < kl[best]) best = i;
  return ((best + quantBins) * top) / bins;
}

export function entropyRange(d: BinnedDistribution, bins: number, levels: number, symmetric: boolean): Range {
  const t = entropyThreshold(d, bins, levels);
  return symmetric ? { min: -t, max: t } : finish(Math.max(d.min, -t), Math.min(d.max, t), false);
}

/**
 * Expected squared quantize-dequantize error per value for the range [lo, hi]: values outside
 * clip to the bound, values inside round to a grid of `levels` points with error step^2 / 12.
 */
export function expectedError(d: BinnedDistribution, lo: number, hi: number, levels: number): number {
  const step = (hi - lo) / (levels - 1);
  const { error, inside } = d.clip(lo, hi);
  return (error + (inside * step * step) / 12) / d.total;
}

/**
 * Scales the full range (mirrored when symmetric) by alpha in (0, 1] and keeps the alpha of
 * least expected error. Candidates are the alphas that put a bound on a bin edge, the finest
 * placement a histogram can tell apart: up to bins + 2 of them, each evaluated in O(1).
 */
export function mseRange(d: BinnedDistribution, levels: number, symmetric: boolean): Range {
  const top = symmetric ? Math.max(-d.min, d.max) : Math.max(d.max, 0);
  const bottom = symmetric ? -top : Math.min(d.min, 0);
  const edges = d.boundaries();
  const candidates = new Float64Array(edges.length + 1);
  let count = 0;
  candidates[count++] = 1;
  for (const edge of edges) {
    if (edge > 0 && edge < top) candidates[count++] = edge / top;
    else if (edge < 0 && edge > bottom) candidates[count++] = edge / bottom;
  }
  // A typed array sorts numerically without a comparator to call (a search runs once a tensor,
  // mostly cold); read from the end, descending, so that on a tie the first (least clipping)
  // alpha stays.
  const alphas = candidates.subarray(0, count).sort();
  let best = 1;
  let bestError = Infinity;
  for (let k = count - 1; k >= 0; k--) {
    const alpha = alphas[k];
    const error = expectedError(d, alpha * bottom, alpha * top, levels);
    if (error < bestError) {
      bestError = error;
      best = alpha;
    }
  }
  return { min: best * bottom, max: best * top };
}
