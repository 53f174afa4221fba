// Streaming histogram for calibration, and the distribution it stands for.
//
// Calibration sees every activation tensor over many batches; keeping the values would cost
// memory proportional to the calibration set. The histogram keeps a fixed number of bins and
// re-bins exactly when a batch falls outside its range, so its state never grows.

/** A histogram with data: bins [lo + j*width, lo + (j+1)*width), plus the exact extremes seen. */
export interface HistogramView {
  lo: number;
  width: number;
  counts: Float64Array;
  /** Smallest and largest finite value seen (or bound given); lo <= min < max < lo + counts.length * width. */
  min: number;
  max: number;
  total: number;
  /** Values exactly 0 (ReLU outputs, padding, backgrounds): exact under any scale. */
  zeros: number;
}

function outsideBounds(min: number, max: number, count?: number): Error {
  return new Error(`histogram: ${count ?? 'some'} values outside the bounds [${min}, ${max}] given for them`);
}

/**
 * Scans a batch for its finite extremes. Finite values inside [lo, hi] take one comparison
 * pair and no other work, which keeps this as fast as a plain min/max loop; NaN and +-Infinity
 * fail that test too and are counted as skipped on the slow path.
 */
export function scanBatch(data: Float32Array, lo: number, hi: number): { min: number; max: number; skipped: number } {
  let skipped = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v >= lo && v <= hi) continue;
    if (v - v !== 0) {
      skipped++;
      continue;
    }
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return { min: lo, max: hi, skipped };
}

/**
 * Two zeroed tables of at least `bins` counts, one for the values at even positions of a batch and
 * one for the odd, shared by the histograms of a thread: add() uses them within one call and
 * leaves them zeroed.
 */
let scratch = [new Uint32Array(0), new Uint32Array(0)];
function scratchCounts(bins: number): Uint32Array[] {
  if (scratch[0].length < bins) scratch = [new Uint32Array(bins), new Uint32Array(bins)];
  return scratch;
}

/**
 * The grid is a function of the range seen and nothing else: bins 2^e wide, edges on multiples
 * of 2^e, e the least that fits [min, max] in the bins. Growing to a larger range only raises e,
 * and each coarser bin is the union of finer ones, so any order or batching of the same values
 * ends on the same grid with the same counts: a calibration run with batch 1 or 8 gives one
 * histogram. A value's bin, floor(v * 2^-e) - floor(min * 2^-e), is exact integer arithmetic.
 */
export class StreamingHistogram {
  private counts: Float64Array;
  /** Bin width 2^exponent; inv = 2^-exponent. */
  private exponent = 0;
  private inv = 0;
  /** The first bin starts at first * width. */
  private first = 0;
  private gridded = false;
  private seenMin = Infinity;
  private seenMax = -Infinity;
  private seen = 0;
  private zeros = 0;

  constructor(bins: number) {
    // Two bins at least: a range across 0 never fits one aligned bin.
    if (!Number.isInteger(bins) || bins < 2) throw new Error(`histogram bins must be a whole number >= 2, got ${bins}`);
    this.counts = new Float64Array(bins);
  }

  get bins(): number {
    return this.counts.length;
  }

  /** Finite values added. */
  get total(): number {
    return this.seen;
  }

  get min(): number {
    return this.seenMin;
  }

  get max(): number {
    return this.seenMax;
  }

  /**
   * Adds the finite values of `data`. `bounds`, the exact extremes of data the values sample,
   * widen the range without counting: a strided sample then keeps the true range, and the
   * counts stay those of the sample alone. They must hold every value of `data`.
   */
  add(data: Float32Array, bounds?: { min: number; max: number }): void {
    // Bounds that hold the data spare the pass that finds its extremes: the finite values are
    // then counted in the pass that bins them.
    const bounded = bounds !== undefined && Number.isFinite(bounds.min) && Number.isFinite(bounds.max);
    const { min, max } = bounded ? bounds : scanBatch(data, Infinity, -Infinity);
    if (!(min <= max)) return;
    // Until the grid exists, every value seen so far is this one.
    const single = this.seenMin;
    const before = this.seen;
    if (min < this.seenMin) this.seenMin = min;
    if (max > this.seenMax) this.seenMax = max;
    if (this.seenMin === this.seenMax) {
      // Rare (every value so far one and the same), so a scan of its own counts this batch.
      const scan = scanBatch(data, min, max);
      if (scan.min < min || scan.max > max) throw outsideBounds(min, max);
      const finite = data.length - scan.skipped;
      this.seen += finite;
      // A single repeated value has no scale to build bins on: it waits for a second value.
      if (this.seenMin === 0) this.zeros += finite;
      return;
    }
    this.cover();
    if (before > 0 && !this.gridded) this.counts[this.bin(single)] += before;
    this.gridded = true;
    const counts = this.counts;
    const inv = this.inv;
    const first = this.first;
    const [even, odd] = scratchCounts(counts.length);
    let zeros = 0;
    let skipped = 0;
    let outside = 0;
    // Scaling by a power of two and flooring are exact and monotone: the extremes index inside
    // [0, bins) (cover() makes sure), so every finite value in between does too. Values at even
    // and odd positions count into tables of their own: a run of values in one bin (most of a
    // tensor sits in a few) then makes two chains of increments, not one that waits on itself
    // (3.3 against 5.0 ns a value, 3.5 against 5.3 with 8,192 bins). Zeros are counted without
    // a branch: in ReLU outputs they come at random, and a mispredicted branch a value doubled the
    // time of the loop.
    const n = data.length;
    for (let i = 0; i < n; i += 2) {
      const v = data[i];
      if (v >= min && v <= max) {
        even[Math.floor(v * inv) - first]++;
        zeros += +(v === 0);
      } else if (v - v === 0) outside++;
      else skipped++;
      if (i + 1 === n) break;
      const w = data[i + 1];
      if (w >= min && w <= max) {
        odd[Math.floor(w * inv) - first]++;
        zeros += +(w === 0);
      } else if (w - w === 0) outside++;
      else skipped++;
    }
    const last = this.bin(max);
    for (let j = this.bin(min); j <= last; j++) {
      counts[j] += even[j] + odd[j];
      even[j] = 0;
      odd[j] = 0;
    }
    if (outside > 0) throw outsideBounds(min, max, outside);
    this.seen += n - skipped;
    this.zeros += zeros;
  }

  /** The histogram, or undefined until two distinct finite values have been seen. */
  view(): HistogramView | undefined {
    if (!this.gridded) return undefined;
    const width = 2 ** this.exponent;
    return { lo: this.first * width, width, counts: this.counts, min: this.seenMin, max: this.seenMax, total: this.seen, zeros: this.zeros };
  }

  private bin(v: number): number {
    return Math.floor(v * this.inv) - this.first;
  }

  /** Bins of width 2^e that [min, max] touches. */
  private spanned(e: number): number {
    const inv = 2 ** -e;
    return Math.floor(this.seenMax * inv) - Math.floor(this.seenMin * inv) + 1;
  }

  /**
   * Moves to the grid of the range seen: the least exponent that fits it, found from the current
   * one upward (a wider range never needs a finer grid) or, for the first grid, from an estimate
   * both ways. Old bins merge whole into the new ones.
   */
  private cover(): void {
    const n = this.counts.length;
    let e = this.exponent;
    if (!this.gridded) {
      e = Math.floor(Math.log2((this.seenMax - this.seenMin) / n));
      while (this.spanned(e - 1) <= n) e--;
    }
    while (this.spanned(e) > n) e++;
    const first = Math.floor(this.seenMin * 2 ** -e);
    if (this.gridded && (e !== this.exponent || first !== this.first)) {
      const old = this.counts;
      const next = new Float64Array(n);
      const merge = 2 ** (this.exponent - e);
      for (let j = 0; j < n; j++) if (old[j] !== 0) next[Math.floor((j + this.first) * merge) - first] += old[j];
      this.counts = next;
    }
    this.exponent = e;
    this.inv = 2 ** -e;
    this.first = first;
  }
}

/**
 * The distribution a histogram stands for: each bin's count spread uniformly over the part of
 * the bin inside [min, max]. Clipping the end bins to the exact extremes matters after growth,
 * when the top and bottom bins can be far wider than the data in them.
 */
export class BinnedDistribution {
  readonly total: number;
  readonly min: number;
  readonly max: number;
  readonly zeros: number;
  private readonly lo: number;
  private readonly width: number;
  private readonly inv: number;
  private readonly counts: Float64Array;
  /**
   * Prefix sums over bins of count (O(1) mass queries), and of count x mean and count x mean
   * square for clip(): each made on its first use. A calibration's worker makes one distribution
   * a tensor and asks one question of it, mostly before the JIT has seen the code: the entropy
   * search folds the bins and needs neither (90 entropy searches of 8,192 bins, cold: 37-40 ms of
   * 150-180 went to building these arrays).
   */
  private cumulative?: Float64Array;
  private moments?: { cumX: Float64Array; cumXX: Float64Array };

  constructor(view: HistogramView) {
    this.total = view.total;
    this.min = view.min;
    this.max = view.max;
    this.zeros = view.zeros;
    this.lo = view.lo;
    this.width = view.width;
    this.inv = 1 / view.width;
    this.counts = view.counts;
  }

  /** Where bin j's mass starts: its lower edge, clipped to [min, max]. */
  private from(j: number): number {
    return Math.min(Math.max(this.lo + j * this.width, this.min), this.max);
  }

  /** Where bin j's mass ends: its upper edge, clipped to [from(j), max]. */
  private to(j: number): number {
    return Math.max(Math.min(this.lo + (j + 1) * this.width, this.max), this.from(j));
  }

  private get cum(): Float64Array {
    if (this.cumulative) return this.cumulative;
    const counts = this.counts;
    const cum = new Float64Array(counts.length + 1);
    let sum = 0;
    for (let j = 0; j < counts.length; j++) {
      sum += counts[j];
      cum[j + 1] = sum;
    }
    this.cumulative = cum;
    return cum;
  }

  private prefixMoments(): { cumX: Float64Array; cumXX: Float64Array } {
    if (this.moments) return this.moments;
    const counts = this.counts;
    const n = counts.length;
    const cumX = new Float64Array(n + 1);
    const cumXX = new Float64Array(n + 1);
    for (let j = 0; j < n; j++) {
      const a = this.from(j);
      const b = this.to(j);
      const c = counts[j];
      cumX[j + 1] = cumX[j] + (c * (a + b)) / 2;
      cumXX[j + 1] = cumXX[j] + (c * (a * a + a * b + b * b)) / 3;
    }
    this.moments = { cumX, cumXX };
    return this.moments;
  }

  /** The bin edges lo + j * width, j = 0..bins. */
  boundaries(): Float64Array {
    const n = this.counts.length;
    const edges = new Float64Array(n + 1);
    for (let j = 0; j <= n; j++) edges[j] = this.lo + j * this.width;
    return edges;
  }

  /** Mass at or below x. */
  cdf(x: number): number {
    const n = this.counts.length;
    const k = this.index(x);
    if (k < 0) return 0;
    if (k >= n) return this.total;
    const a = this.from(k);
    const b = this.to(k);
    const part = x >= b ? 1 : x < a ? 0 : (x - a) / (b - a);
    return this.cum[k] + this.counts[k] * part;
  }

  /** Smallest x with cdf(x) >= mass: the bin where the mass is reached, interpolated linearly. */
  quantile(mass: number): number {
    const n = this.counts.length;
    const cum = this.cum;
    for (let j = 0; j < n; j++) {
      const c = this.counts[j];
      if (c === 0 || cum[j + 1] < mass) continue;
      const a = this.from(j);
      return a + (this.to(j) - a) * Math.max(0, (mass - cum[j]) / c);
    }
    return this.max;
  }

  /** Smallest t >= 0 with at least `mass` in [-t, t]. */
  absQuantile(mass: number): number {
    let lo = 0;
    let hi = Math.max(-this.min, this.max);
    // The mass within [-t, t] is monotone and piecewise linear in t with breakpoints on both
    // sides' bin edges; bisection to adjacent floats solves it without merging the two grids.
    for (;;) {
      const mid = (lo + hi) / 2;
      if (mid <= lo || mid >= hi) return hi;
      if (this.cdf(mid) - this.cdf(-mid) >= mass) hi = mid;
      else lo = mid;
    }
  }

  /**
   * What clipping to [lo, hi] does: `error` is the summed squared distance of the values
   * outside to the bound they clip to, `inside` the mass left inside.
   */
  clip(lo: number, hi: number): { error: number; inside: number } {
    const n = this.counts.length;
    const { cumX, cumXX } = this.prefixMoments();
    const cum = this.cum;
    let error = 0;
    let outside = 0;
    const k = this.index(hi);
    if (k < n) {
      const full = Math.max(k + 1, 0);
      const m = cum[n] - cum[full];
      error += cumXX[n] - cumXX[full] - 2 * hi * (cumX[n] - cumX[full]) + hi * hi * m;
      outside += m;
      const b = k >= 0 ? this.to(k) : -Infinity;
      if (b > hi) {
        const start = this.from(k);
        const a = Math.max(start, hi);
        const part = this.counts[k] * (b > start ? (b - a) / (b - start) : 1);
        error += part * meanSquare(a - hi, b - hi);
        outside += part;
      }
    }
    const j = this.index(lo);
    if (j >= 0) {
      const full = Math.min(j, n);
      const m = cum[full];
      error += cumXX[full] - 2 * lo * cumX[full] + lo * lo * m;
      outside += m;
      const a = j < n ? this.from(j) : Infinity;
      if (a < lo) {
        const end = this.to(j);
        const b = Math.min(end, lo);
        const part = this.counts[j] * (end > a ? (b - a) / (end - a) : 1);
        error += part * meanSquare(lo - b, lo - a);
        outside += part;
      }
    }
    return { error, inside: this.total - outside };
  }

  /**
   * Histogram of |x| with `bins` bins over [0, max |x|]. A bin straddling 0 splits in
   * proportion to its two sides; every piece spreads uniformly over the target bins it covers.
   * `withoutZeros` leaves out the values that are exactly 0.
   */
  fold(bins: number, withoutZeros = false): Float64Array {
    const out = new Float64Array(bins);
    const top = Math.max(-this.min, this.max);
    if (!(top > 0)) return out;
    const scale = bins / top;
    // Target bin t spans [edges[t], edges[t + 1]): divided out once, not for every piece.
    const edges = new Float64Array(bins + 1);
    for (let t = 1; t < bins; t++) edges[t] = t / scale;
    edges[bins] = top;
    const spread = (u: number, v: number, mass: number): void => {
      if (!(v > u)) {
        out[Math.min(bins - 1, Math.floor(u * scale))] += mass;
        return;
      }
      const density = mass / (v - u);
      const last = Math.min(bins - 1, Math.floor(v * scale));
      for (let t = Math.min(bins - 1, Math.floor(u * scale)); t <= last; t++) {
        const overlap = Math.min(v, edges[t + 1]) - Math.max(u, edges[t]);
        if (overlap > 0) out[t] += density * overlap;
      }
    };
    const zeroBin = withoutZeros && this.zeros > 0 ? this.index(0) : -1;
    const counts = this.counts;
    for (let j = 0; j < counts.length; j++) {
      const c = counts[j] - (j === zeroBin ? this.zeros : 0);
      if (c <= 0) continue;
      const a = this.from(j);
      const b = this.to(j);
      if (a >= 0) spread(a, b, c);
      else if (b <= 0) spread(-b, -a, c);
      else {
        spread(0, b, (c * b) / (b - a));
        spread(0, -a, (c * -a) / (b - a));
      }
    }
    return out;
  }

  private index(x: number): number {
    return Math.floor((x - this.lo) * this.inv);
  }
}

/** Mean of x^2 for x uniform between a and b (a point when a = b). */
function meanSquare(a: number, b: number): number {
  return (a * a + a * b + b * b) / 3;
}
