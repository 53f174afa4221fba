import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mulberry32 } from '../../main/data/readers';
import { BinnedDistribution, StreamingHistogram, type HistogramView } from '../../main/stats/histogram';
import {
  createObserver, expectedError, klDivergences, parseMethod, type CalibrationMethod, type Observer,
} from '../../main/stats/observers';

function near(actual: number, expected: number, tolerance: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: expected ${expected} +- ${tolerance}, got ${actual}`);
}

function gaussian(rand: () => number, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rand()));
    const a = 2 * Math.PI * rand();
    out[i] = r * Math.cos(a);
    if (i + 1 < n) out[i + 1] = r * Math.sin(a);
  }
  return out;
}

function uniform(rand: () => number, n: number, lo: number, hi: number): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
}

function observe(method: string, batches: Float32Array[], symmetric = false, bins?: number): Observer {
  const observer = createObserver(parseMethod(method), { symmetric, bins });
  for (const batch of batches) observer.update(batch);
  return observer;
}

const f32 = (values: number[]): Float32Array => Float32Array.from(values);
const ALL_METHODS = ['minmax', 'moving-average', 'percentile:99', 'entropy', 'mse'];

// ---- minmax and moving average ----

test('minmax: extremes over all batches, widened to hold 0', () => {
  const o = observe('minmax', [f32([1, -2, 3]), f32([0.5, 7]), f32([-4])]);
  assert.deepEqual(o.range(), { min: -4, max: 7 });
  assert.equal(o.count, 6);
  assert.deepEqual(observe('minmax', [f32([2, 3]), f32([5])]).range(), { min: 0, max: 5 });
  assert.deepEqual(observe('minmax', [f32([-2, -3])]).range(), { min: -3, max: 0 });
  assert.deepEqual(observe('minmax', [f32([1, -2, 3]), f32([-4])], true).range(), { min: -4, max: 4 });
});

test('minmax and moving-average keep no histogram; nothing seen gives {0, 0}', () => {
  for (const method of ['minmax', 'moving-average']) {
    const o = observe(method, [f32([1, 2])]);
    assert.equal(o.histogram(), undefined, method);
  }
  for (const method of ALL_METHODS) {
    const o = observe(method, []);
    assert.deepEqual(o.range(), { min: 0, max: 0 }, method);
    assert.equal(o.count, 0, method);
    assert.equal(o.histogram(), undefined, method);
  }
});

test('moving-average: EMA of batch extremes, momentum 0.5, by hand', () => {
  const o = createObserver({ kind: 'moving-average', momentum: 0.5 }, { symmetric: false });
  o.update(f32([-1, 0.5, 2])); // initialises: [-1, 2]
  assert.deepEqual(o.range(), { min: -1, max: 2 });
  o.update(f32([-3, 4])); // min 0.5*-1 + 0.5*-3 = -2, max 0.5*2 + 0.5*4 = 3
  assert.deepEqual(o.range(), { min: -2, max: 3 });
  o.update(f32([1, 2])); // min 0.5*-2 + 0.5*1 = -0.5, max 0.5*3 + 0.5*2 = 2.5
  assert.deepEqual(o.range(), { min: -0.5, max: 2.5 });
  assert.equal(o.count, 7);
});

test('moving-average: default momentum 0.01, all-NaN batches do not move it, range holds 0', () => {
  const o = observe('moving-average', [f32([-1, 1]), f32([NaN, NaN]), f32([-101, 101])]);
  // min 0.99*-1 + 0.01*-101 = -2, max 2
  near(o.range().min, -2, 1e-12, 'min');
  near(o.range().max, 2, 1e-12, 'max');
  assert.equal(o.count, 4);
  // EMA min 0.5*1 + 0.5*3 = 2 > 0, reported as 0
  const positive = createObserver({ kind: 'moving-average', momentum: 0.5 }, { symmetric: false });
  positive.update(f32([1, 2]));
  positive.update(f32([3, 5]));
  assert.deepEqual(positive.range(), { min: 0, max: 3.5 });
});

test('NaN and +-Infinity are skipped by every observer', () => {
  for (const method of ALL_METHODS) {
    const o = observe(method, [f32([NaN, 1, -2, Infinity, -Infinity, 0.5]), f32([NaN]), f32([Infinity, 0.25])]);
    assert.equal(o.count, 4, method);
    const r = o.range();
    assert.ok(Number.isFinite(r.min) && Number.isFinite(r.max), `${method}: ${JSON.stringify(r)}`);
    assert.ok(r.min >= -2 && r.max <= 1, `${method}: ${JSON.stringify(r)}`);
    const h = o.histogram();
    if (h) {
      assert.equal(h.counts.reduce((a, b) => a + b, 0), 4, method);
      assert.ok(h.counts.every(Number.isFinite), method);
    }
  }
  assert.deepEqual(observe('minmax', [f32([NaN, 1, -2, Infinity, -Infinity, 0.5])]).range(), { min: -2, max: 1 });
});

test('range() always holds 0, whatever the method and the data', () => {
  const rand = mulberry32(7);
  for (const method of ALL_METHODS) {
    for (const symmetric of [false, true]) {
      const positive = observe(method, [uniform(rand, 5000, 1, 3)], symmetric).range();
      const negative = observe(method, [uniform(rand, 5000, -3, -1)], symmetric).range();
      for (const r of [positive, negative]) assert.ok(r.min <= 0 && r.max >= 0, `${method} ${symmetric}: ${JSON.stringify(r)}`);
      if (symmetric) assert.equal(positive.min, -positive.max, method);
      else assert.equal(positive.min, 0, method);
    }
  }
});

// ---- percentile ----

test('percentile, asymmetric: (100 - P) / 2 percent off each tail (ONNX Runtime), interpolated in the bin', () => {
  // -500..499 over 1000 bins of width 1: bin j holds exactly the value -500 + j.
  const values = f32(Array.from({ length: 1000 }, (_, i) => i - 500));
  const r = observe('percentile:99', [values], false, 1000).range();
  // 0.5% = 5 values below: the end of bin 4 is -500 + 5; 99.5% ends bin 994.
  near(r.min, -500 + 5, 1e-9, 'min');
  near(r.max, -500 + 995, 1e-9, 'max');
  const positive = observe('percentile:99', [f32(Array.from({ length: 1000 }, (_, i) => i))], false, 1000).range();
  assert.equal(positive.min, 0);
  near(positive.max, 995, 1e-9, 'max of 0..999');
});

test('percentile, symmetric: P-th percentile of |x|', () => {
  const values = f32(Array.from({ length: 1000 }, (_, i) => i));
  // 990 of the 1000 values lie in [0, t] when t reaches the end of bin 989 (width 1).
  const r = observe('percentile:99', [values], true, 1000).range();
  near(r.max, 990, 1e-9, 'threshold');
  assert.equal(r.min, -r.max);
  // Mirrored data: |x| is the same distribution whatever the signs.
  const mirrored = f32(Array.from({ length: 1000 }, (_, i) => (i % 2 ? i : -i)));
  near(observe('percentile:99', [mirrored], true, 4000).range().max, 990, 1, 'mirrored');
  near(observe('percentile:100', [values], true, 1000).range().max, 999, 1e-9, 'P = 100');
});

// ---- the streaming histogram ----

function direct(view: HistogramView, batches: Float32Array[]): Float64Array {
  const counts = new Float64Array(view.counts.length);
  const inv = 1 / view.width;
  for (const b of batches) for (const v of b) if (Number.isFinite(v)) counts[Math.floor((v - view.lo) * inv)]++;
  return counts;
}

test('histogram: bins a power of two wide on multiples of it, the finest that holds [min, max]', () => {
  const h = new StreamingHistogram(4);
  h.add(f32([0, 0.5, 1.5, 2.5, 3.5, 4]));
  const v = h.view();
  assert.ok(v);
  // Width 1 would need 5 half-open bins for [0, 4]; width 2 needs 3.
  assert.equal(v.lo, 0);
  assert.equal(v.width, 2);
  assert.deepEqual([...v.counts], [3, 2, 1, 0]);
});

test('histogram growth is exact: streamed batches equal one histogram over the final edges', () => {
  const rand = mulberry32(11);
  const batches = [uniform(rand, 4000, 0, 1), uniform(rand, 4000, -3, 2), uniform(rand, 4000, -5, 40)];
  const h = new StreamingHistogram(64);
  let previous: HistogramView | undefined;
  for (const batch of batches) {
    h.add(batch);
    const v = h.view();
    assert.ok(v);
    if (previous) {
      // New bins are unions of old bins: a power-of-two width ratio, lo on an old edge.
      const k = v.width / previous.width;
      assert.ok(k > 1 && Number.isInteger(Math.log2(k)), `width ratio ${k}`);
      assert.ok(Number.isInteger((previous.lo - v.lo) / previous.width), 'lo on an old edge');
    }
    previous = { ...v, counts: v.counts.slice() };
  }
  const v = h.view();
  assert.ok(v);
  assert.equal(v.counts.length, 64);
  assert.deepEqual([...v.counts], [...direct(v, batches)]);
  assert.equal(v.total, 12000);
});

test('histogram: the same values in any order and batching give the same histogram', () => {
  const rand = mulberry32(5);
  const values = Float32Array.from([...gaussian(rand, 3000)].map((v, i) => v * (1 + i / 300)));
  const batched = (size: number, order: Float32Array): HistogramView => {
    const h = new StreamingHistogram(256);
    for (let i = 0; i < order.length; i += size) h.add(order.subarray(i, i + size));
    return h.view()!;
  };
  const shuffled = values.slice();
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
  }
  const whole = batched(values.length, values);
  for (const [size, order] of [[1, values], [7, values], [64, shuffled], [1000, shuffled]] as const) {
    const v = batched(size, order);
    assert.deepEqual({ ...v, counts: [...v.counts] }, { ...whole, counts: [...whole.counts] }, `batches of ${size}`);
  }
});

test('histogram: bounds widen the range without counting, and percentile 100 is exactly them', () => {
  const h = new StreamingHistogram(8);
  h.add(f32([1, 2, 3]), { min: -4, max: 7.5 });
  const v = h.view();
  assert.ok(v);
  assert.equal(v.min, -4);
  assert.equal(v.max, 7.5);
  assert.equal(v.total, 3);
  assert.equal(v.counts.reduce((a, b) => a + b, 0), 3);
  assert.ok(v.lo <= -4 && v.lo + 8 * v.width > 7.5);
  const o = createObserver(parseMethod('percentile:100'), { symmetric: false });
  o.update(f32([1, 2, 3]), { min: -4, max: 7.5 });
  assert.deepEqual(o.range(), { min: -4, max: 7.5 });
  const minmax = createObserver(parseMethod('minmax'), { symmetric: false });
  minmax.update(f32([1, 2]), { min: -1, max: 9 });
  assert.deepEqual(minmax.range(), { min: -1, max: 9 });
});

test('histogram: bounds that do not hold the values are an error, not values dropped; bounded or scanned, the same counts', () => {
  const h = new StreamingHistogram(8);
  assert.throws(() => h.add(f32([1, 2, 30]), { min: 0, max: 4 }), /1 values outside the bounds \[0, 4\]/);
  assert.throws(() => new StreamingHistogram(8).add(f32([1, 4.5]), { min: 0, max: 4 }), /1 values outside the bounds \[0, 4\]/, 'inside the grid, outside the bounds');
  assert.throws(() => new StreamingHistogram(8).add(f32([2, 3]), { min: 2, max: 2 }), /outside the bounds \[2, 2\]/, 'one value so far: no grid yet');
  const data = f32([0, 0.5, -1.25, 3, NaN, 2, Infinity, 0]);
  const bounded = new StreamingHistogram(16);
  bounded.add(data, { min: -1.25, max: 3 });
  const scanned = new StreamingHistogram(16);
  scanned.add(data);
  const [a, b] = [bounded.view()!, scanned.view()!];
  assert.deepEqual({ ...a, counts: [...a.counts] }, { ...b, counts: [...b.counts] });
  assert.equal(a.total, 6);
  assert.equal(a.zeros, 2);
});

test('histogram: every value counted once whatever its position, odd lengths and NaNs included, and a failed batch leaves the next histogram clean', () => {
  const rand = mulberry32(41);
  // Counts by hand over the final grid, one value at a time.
  const byHand = (values: Float32Array, view: HistogramView): number[] => {
    const counts = new Array<number>(view.counts.length).fill(0);
    for (const v of values) if (Number.isFinite(v)) counts[Math.floor((v - view.lo) / view.width)]++;
    return counts;
  };
  for (const [n, bins] of [[1001, 8], [64, 4096], [7, 16], [2, 2]]) {
    const values = gaussian(rand, n);
    for (let i = 0; i < n; i += 5) values[i] = 0;
    if (n > 3) values[3] = NaN;
    if (n > 6) values[6] = NaN;
    if (n > 8) [values[7], values[8]] = [Infinity, -Infinity];
    const h = new StreamingHistogram(bins);
    h.add(values);
    const view = h.view()!;
    assert.deepEqual([...view.counts], byHand(values, view), `${n} values, ${bins} bins`);
    assert.equal(view.total, [...values].filter(Number.isFinite).length);
    assert.equal(view.zeros, [...values].filter((v) => v === 0).length);
  }
  assert.throws(() => new StreamingHistogram(4096).add(f32([1, 2, 3, 50]), { min: 0, max: 4 }), /outside the bounds/);
  const after = new StreamingHistogram(4096);
  after.add(f32([1, 2, 3, 4]));
  assert.equal(after.view()!.counts.reduce((a, b) => a + b, 0), 4, 'nothing left over from the failed batch');
});

test('histogram: a batch inside the grid keeps it and moves the extremes exactly; one past the grid moves it; the end equals one batch of all', () => {
  const rand = mulberry32(17);
  const h = new StreamingHistogram(64);
  const start = Float32Array.from([1.3, ...uniform(rand, 499, 1.3, 1.45), 1.45]);
  h.add(start);
  const grid = h.view()!;
  const gridEnd = grid.lo + 64 * grid.width;
  assert.ok(grid.lo < grid.min && gridEnd - grid.width / 4 > grid.max, 'room in the grid on both sides of the range seen');
  // Inside the range seen; past it but inside the grid (its first edge, a value in its last bin);
  // past the grid, which moves it.
  const inside = uniform(rand, 300, grid.min, grid.max);
  const pastRange = f32([grid.lo, 0.5 * (grid.max + gridEnd), NaN, gridEnd - grid.width / 4, 1.5, Infinity]);
  const pastGrid = f32([1.25, -7, 0, 40, NaN, 1.75]);
  for (const batch of [inside, pastRange]) {
    h.add(batch);
    const v = h.view()!;
    assert.equal(v.width, grid.width, 'the grid stays while it holds the batch');
    assert.equal(v.lo, grid.lo);
  }
  assert.equal(h.min, grid.lo);
  assert.equal(h.max, Math.fround(gridEnd - grid.width / 4));
  h.add(pastGrid);
  const all = [start, inside, pastRange, pastGrid];
  const whole = new StreamingHistogram(64);
  whole.add(Float32Array.from(all.flatMap((b) => [...b])));
  const [a, b] = [h.view()!, whole.view()!];
  assert.deepEqual({ ...a, counts: [...a.counts] }, { ...b, counts: [...b.counts] });
  assert.deepEqual([a.min, a.max, a.total, a.zeros], [-7, 40, 501 + 300 + 4 + 5, 1]);
});

test('histogram: shifts without widening when the data still fits the bins', () => {
  const h = new StreamingHistogram(8);
  h.add(f32([0, 3.5, 8])); // width 2: bins 0..4
  h.add(f32([13.5])); // bin 6: still fits
  const before = h.view();
  assert.ok(before);
  assert.equal(before.width, 2);
  h.add(f32([-1.5])); // one bin below, 8 bins in all: shift by one
  const shifted = h.view();
  assert.ok(shifted);
  assert.equal(shifted.width, 2);
  assert.equal(shifted.lo, -2);
  assert.deepEqual([...shifted.counts], [1, 1, 1, 0, 0, 1, 0, 1]);
  h.add(f32([16])); // 10 bins of 2: widen to 4
  const grown = h.view();
  assert.ok(grown);
  assert.equal(grown.width, 4);
  assert.equal(grown.lo, -4);
  assert.deepEqual([...grown.counts], [...direct(grown, [f32([0, 3.5, 8, 13.5, -1.5, 16])])]);
});

test('histogram: a repeated value waits for a second one, then lands in its bin', () => {
  const h = new StreamingHistogram(16);
  h.add(f32([3, 3, 3]));
  h.add(f32([3]));
  assert.equal(h.view(), undefined);
  assert.equal(h.total, 4);
  h.add(f32([5]));
  const v = h.view();
  assert.ok(v);
  assert.equal(v.lo, 3);
  assert.equal(v.width, 0.25);
  assert.equal(v.counts[0], 4);
  assert.equal(v.counts[8], 1);
  const o = observe('percentile:99.9', [f32([2, 2, 2])]);
  assert.deepEqual(o.range(), { min: 0, max: 2 });
  const chart = o.histogram();
  assert.ok(chart && chart.min < 2 && chart.max > 2);
  assert.equal(chart.counts.length, 2048);
  assert.equal(chart.counts.reduce((a, b) => a + b, 0), 3);
});

test('histogram: growth across 60 orders of magnitude keeps every count', () => {
  const h = new StreamingHistogram(32);
  h.add(f32([0, 1e-30, 5e-31]));
  h.add(f32([-1e30, 1e30, 0]));
  const v = h.view();
  assert.ok(v);
  assert.equal(v.counts.reduce((a, b) => a + b, 0), 6);
  assert.ok(v.counts.every(Number.isFinite));
  assert.ok(v.lo <= -1e30 && v.lo + 32 * v.width > 1e30);
  // The four values near 0 share a bin, away from the two extremes.
  const bin = (x: number): number => Math.floor((x - v.lo) / v.width);
  assert.equal(v.counts[bin(0)], 4);
  assert.equal(v.counts[bin(-1e30)], 1);
  assert.equal(v.counts[bin(1e30)], 1);
});

test('bounded memory: the histogram stays `bins` long over thousands of growing batches', () => {
  const rand = mulberry32(3);
  for (const method of ['percentile:99.9', 'mse', 'entropy:256']) {
    const o = createObserver(parseMethod(method), { symmetric: false, bins: 256 });
    const expectedLength = method.startsWith('entropy') ? 1024 : 256;
    let total = 0;
    for (let i = 0; i < 2000; i++) {
      const scale = 1.01 ** i;
      o.update(uniform(rand, 50, -scale * rand(), scale));
      total += 50;
      if (i % 250 === 0) assert.equal(o.histogram()?.counts.length, expectedLength, method);
    }
    const h = o.histogram();
    assert.ok(h);
    assert.equal(h.counts.length, expectedLength, method);
    assert.equal(h.counts.reduce((a, b) => a + b, 0), total, method);
    assert.equal(o.count, total, method);
  }
});

// ---- entropy ----

test('entropy: folding a signed histogram around 0, by hand', () => {
  // [-2,-1): 1, [-1,0): 2, [0,1): 3, [1,2): 2 with max 1.5; |x| over [0, 2] in 4 bins of 0.5.
  const d = new BinnedDistribution({ lo: -2, width: 1, counts: Float64Array.from([1, 2, 3, 2]), min: -2, max: 1.5, total: 8, zeros: 0 });
  assert.deepEqual([...d.fold(4)], [2.5, 2.5, 2.5, 0.5]);
  // A bin straddling 0, [-0.25, 0.5] once clipped to min: 2/3 of it folds onto [0, 0.5], 1/3 onto [0, 0.25].
  const s = new BinnedDistribution({ lo: -0.5, width: 1, counts: Float64Array.from([4, 2]), min: -0.25, max: 1.25, total: 6, zeros: 0 });
  const folded = [...s.fold(5)];
  const expected = [8 / 3, 4 / 3, 2 / 3, 2 / 3, 2 / 3];
  folded.forEach((x, i) => near(x, expected[i], 1e-12, `bin ${i}`));
});

test('entropy: KL divergences by hand', () => {
  const kl = klDivergences(Float64Array.from([4, 2, 0, 0, 0, 0, 0, 1]), 2);
  assert.equal(kl.length, 7); // i = 2..8
  // i = 2: P = [4, 2 + 1] / 7, Q = [4, 2] / 6: nothing to smooth.
  near(kl[0], (4 / 7) * Math.log(6 / 7) + (3 / 7) * Math.log(9 / 7), 1e-12, 'i = 2');
  // i = 3: P = [4, 2, 1] / 7; Q's last bucket (2) spreads over both nonzero bins: [4, 1, 1] / 6.
  near(kl[1], (4 / 7) * Math.log(6 / 7) + (2 / 7) * Math.log(12 / 7) + (1 / 7) * Math.log(6 / 7), 1e-12, 'i = 3');
  // i = 8: buckets of 4, Q = [3, 3, 0, 0, 0, 0, 0, 1]; both have the same five zeros, so the
  // smoothing (1e-4 each) scales both by (7 - 5e-4) / 7 and the zero bins cancel.
  const scale = (7 - 5e-4) / 7;
  near(kl[6], scale * ((4 / 7) * Math.log(4 / 3) + (2 / 7) * Math.log(2 / 3)), 1e-12, 'i = 8');
  // i = 4..7 clip the last value into a bucket with nothing in Q: far worse.
  for (let i = 2; i < 6; i++) assert.ok(kl[i] > 1, `i = ${i + 2}: ${kl[i]}`);
  assert.equal(kl.indexOf(Math.min(...kl)), 0);
});

/** The TensorRT/MXNet loop, O(i) per candidate, with the same smoothing. */
function referenceKl(h: Float64Array, quantBins: number): number[] {
  const total = h.reduce((a, b) => a + b, 0);
  const out: number[] = [];
  for (let i = quantBins; i <= h.length; i++) {
    const p = Array.from(h.subarray(0, i));
    for (let j = i; j < h.length; j++) p[i - 1] += h[j];
    const merged = Math.floor(i / quantBins);
    const q = new Array<number>(i).fill(0);
    for (let b = 0; b < quantBins; b++) {
      const start = b * merged;
      const stop = b === quantBins - 1 ? i : start + merged;
      let mass = 0;
      let nz = 0;
      for (let j = start; j < stop; j++) {
        mass += h[j];
        if (p[j] > 0) nz++;
      }
      for (let j = start; j < stop; j++) if (p[j] > 0) q[j] = mass / nz;
    }
    const inQ = q.reduce((a, b) => a + b, 0);
    if (!(inQ > 0)) {
      out.push(Infinity);
      continue;
    }
    const eps = Math.min(1e-4, Math.min(total, inQ) / (2 * i));
    const smooth = (x: number[], sum: number): number[] => {
      const zeros = x.filter((v) => v === 0).length;
      return x.map((v) => (v === 0 ? eps : (v * (sum - eps * zeros)) / sum) / sum);
    };
    const ps = smooth(p, total);
    const qs = smooth(q, inQ);
    out.push(ps.reduce((acc, v, j) => acc + v * Math.log(v / qs[j]), 0));
  }
  return out;
}

test('entropy: the O(buckets) KL equals the direct TensorRT/MXNet loop', () => {
  const rand = mulberry32(5);
  for (let trial = 0; trial < 40; trial++) {
    const n = 8 + Math.floor(rand() * 90);
    const quantBins = [1, 2, 3, 4, 8][trial % 5];
    const h = Float64Array.from({ length: n }, () => (rand() < 0.4 ? 0 : trial % 2 ? Math.floor(rand() * 50) : rand() * 10));
    h[n - 1] = trial % 3 === 0 ? 0 : h[n - 1];
    const fast = klDivergences(h, quantBins);
    const slow = referenceKl(h, quantBins);
    assert.equal(fast.length, slow.length);
    slow.forEach((x, i) => {
      if (x === Infinity) assert.equal(fast[i], Infinity);
      else near(fast[i], x, 1e-9 * Math.max(1, Math.abs(x)), `trial ${trial}, i = ${i + quantBins}`);
    });
  }
});

test('entropy clips outliers that minmax keeps; bins move the threshold', () => {
  const rand = mulberry32(1);
  const batches: Float32Array[] = [];
  for (let b = 0; b < 10; b++) {
    const x = gaussian(rand, 100_000);
    // 0.01% outliers at +-1000
    for (let k = 0; k < 10; k++) x[Math.floor(rand() * x.length)] = k % 2 ? 1000 : -1000;
    batches.push(x);
  }
  assert.equal(observe('minmax', batches, true).range().max, 1000);
  const coarse = observe('entropy', batches, true).range().max;
  const fine = observe('entropy:16384', batches, true).range().max;
  // The search starts at 128 of the bins (TensorRT's 128 levels per side): 62.5 at 2048 bins
  // over [0, 1000], 7.8 at 16384, so only the finer grid can get under 20.
  assert.ok(coarse >= 62.5 && coarse < 200, `2048 bins: ${coarse}`);
  assert.ok(fine > 4 && fine < 20, `16384 bins: ${fine}`);
  const nearer = batches.map((x) => x.map((v) => (Math.abs(v) === 1000 ? v / 10 : v)));
  const t = observe('entropy', nearer, true).range().max;
  assert.ok(t > 4 && t < 20, `outliers at 100, 2048 bins: ${t}`);
});

test('entropy: asymmetric ranges stay inside the data and hold 0; 16-bit keeps the full range', () => {
  const rand = mulberry32(9);
  const relu = gaussian(rand, 200_000).map((v) => Math.max(v, 0));
  relu[17] = 1000;
  const r = observe('entropy', [relu]).range();
  assert.equal(r.min, 0);
  assert.ok(r.max > 0 && r.max < 1000, JSON.stringify(r));
  const sym = observe('entropy', [relu], true).range();
  assert.equal(sym.min, -sym.max);
  const wide = createObserver({ kind: 'entropy' }, { symmetric: true, levels: 65536 });
  wide.update(relu);
  near(wide.range().max, 1000, 1e-9, '16-bit');
});

// ---- mse ----

test('mse: expected error by hand', () => {
  // 3 values spread over [0, 1), 3 over [1, 2]; 3 levels.
  const d = new BinnedDistribution({ lo: 0, width: 1, counts: Float64Array.from([3, 3]), min: 0, max: 2, total: 6, zeros: 0 });
  // [0, 2]: no clipping, step 1: 6 * 1/12.
  near(expectedError(d, 0, 2, 3), 1 / 12, 1e-15, '[0, 2]');
  // [0, 1]: step 0.5, 3 inside; 3 uniform on [1, 2] clip to 1: 3 * integral (x - 1)^2 = 1.
  near(expectedError(d, 0, 1, 3), (1 + (3 * 0.25) / 12) / 6, 1e-15, '[0, 1]');
  // [0.5, 2]: 1.5 values on [0, 0.5] clip up, mean square 0.5^2 / 3; 4.5 inside with step 0.75.
  near(expectedError(d, 0.5, 2, 3), (1.5 * (0.25 / 3) + (4.5 * 0.5625) / 12) / 6, 1e-15, '[0.5, 2]');
});

test('mse: clip errors from prefix sums equal a bin-by-bin integration', () => {
  const rand = mulberry32(13);
  for (let trial = 0; trial < 30; trial++) {
    const n = 4 + Math.floor(rand() * 40);
    const lo = -5 + 10 * rand();
    const width = 0.1 + rand();
    const counts = Float64Array.from({ length: n }, () => (rand() < 0.3 ? 0 : Math.floor(rand() * 20)));
    counts[0] = 1 + counts[0];
    counts[n - 1] = 1 + counts[n - 1];
    const min = lo + 0.3 * width;
    const max = lo + (n - 0.6) * width;
    const total = counts.reduce((a, b) => a + b, 0);
    const d = new BinnedDistribution({ lo, width, counts, min, max, total, zeros: 0 });
    const a = min + (max - min) * rand() * 0.5;
    const b = a + (max + width - a) * rand();
    // Per bin: uniform density on its support, clipped error integrated in closed form.
    let error = 0;
    let inside = 0;
    for (let j = 0; j < n; j++) {
      const from = Math.max(lo + j * width, min);
      const to = Math.min(lo + (j + 1) * width, max);
      const density = counts[j] / (to - from);
      const below = Math.max(0, Math.min(to, a) - from);
      const above = Math.max(0, to - Math.max(from, b));
      error += (density * ((a - from) ** 3 - (a - from - below) ** 3)) / 3;
      error += (density * ((to - b) ** 3 - (to - b - above) ** 3)) / 3;
      inside += counts[j] - density * (below + above);
    }
    const clip = d.clip(a, b);
    near(clip.error, error, 1e-9 * Math.max(1, error), `trial ${trial} error`);
    near(clip.inside, inside, 1e-9 * total, `trial ${trial} inside`);
  }
});

function qdqError(batches: Float32Array[], r: { min: number; max: number }, levels = 256): number {
  const step = (r.max - r.min) / (levels - 1);
  let sum = 0;
  let n = 0;
  for (const b of batches) {
    for (const x of b) {
      const q = Math.min(levels - 1, Math.max(0, Math.round((x - r.min) / step)));
      sum += (r.min + q * step - x) ** 2;
      n++;
    }
  }
  return sum / n;
}

test('mse: uniform data keeps about the full range', () => {
  const rand = mulberry32(17);
  const batches = [uniform(rand, 100_000, -1, 1), uniform(rand, 100_000, -1, 1)];
  const sym = observe('mse', batches, true).range();
  assert.ok(sym.max > 0.98 && sym.max <= 1, JSON.stringify(sym));
  const asym = observe('mse', batches).range();
  assert.ok(asym.min < -0.98 && asym.max > 0.98, JSON.stringify(asym));
});

test('mse clips rare far outliers and lowers the real quantization error', () => {
  const rand = mulberry32(19);
  const batches = Array.from({ length: 10 }, () => gaussian(rand, 100_000));
  batches[4][123] = 1000; // one value in a million
  const minmax = observe('minmax', batches, true).range();
  const mse = observe('mse', batches, true).range();
  // Expected error f (1000 - t)^2 + (2t/255)^2 / 12 with f = 1e-6 is least near t = 163.
  assert.ok(mse.max > 100 && mse.max < 250, JSON.stringify(mse));
  assert.ok(qdqError(batches, mse) < qdqError(batches, minmax) / 2);
  // Dense outliers (0.01%) cost more clipped than rounded: MSE keeps most of the range, and is right to.
  for (const b of batches) for (let k = 0; k < 10; k++) b[Math.floor(rand() * b.length)] = 1000;
  const dense = observe('mse', batches, true).range();
  assert.ok(dense.max > 900, JSON.stringify(dense));
  assert.ok(qdqError(batches, dense) <= qdqError(batches, observe('minmax', batches, true).range()));
});

// ---- parsing and options ----

test('parseMethod accepts the documented forms', () => {
  const cases: [string, CalibrationMethod][] = [
    ['minmax', { kind: 'minmax' }],
    ['moving-average', { kind: 'moving-average', momentum: 0.01 }],
    ['moving-average:0.1', { kind: 'moving-average', momentum: 0.1 }],
    ['moving-average:1', { kind: 'moving-average', momentum: 1 }],
    ['percentile:99.99', { kind: 'percentile', percentile: 99.99 }],
    ['percentile:100', { kind: 'percentile', percentile: 100 }],
    ['percentile:1e1', { kind: 'percentile', percentile: 10 }],
    ['entropy', { kind: 'entropy' }],
    ['entropy:4096', { kind: 'entropy', bins: 4096 }],
    ['mse', { kind: 'mse' }],
    [' MSE ', { kind: 'mse' }],
  ];
  for (const [text, method] of cases) assert.deepEqual(parseMethod(text), method, text);
});

test('parseMethod rejects bad text, naming it and the valid forms', () => {
  const bad = ['', 'max', 'minmax:1', 'mse:2', 'percentile', 'percentile:', 'percentile:abc', 'percentile:0', 'percentile:101',
    'percentile:0x10', 'percentile:Infinity', 'moving-average:0', 'moving-average:1.5', 'moving-average:-0.1', 'entropy:0',
    'entropy:12.5', 'entropy:-5', 'entropy:99999999'];
  for (const text of bad) {
    assert.throws(() => parseMethod(text), (e: Error) => {
      assert.ok(e.message.includes(`"${text}"`), e.message);
      assert.ok(e.message.includes('minmax, moving-average[:momentum], percentile:P, entropy[:bins], mse'), e.message);
      return true;
    }, text);
  }
});

test('createObserver rejects invalid options and method parameters', () => {
  assert.throws(() => createObserver({ kind: 'minmax' }, { symmetric: false, bins: 0 }), /bins/);
  assert.throws(() => createObserver({ kind: 'mse' }, { symmetric: false, bins: 2.5 }), /bins/);
  assert.throws(() => createObserver({ kind: 'mse' }, { symmetric: false, levels: 1 }), /levels/);
  assert.throws(() => createObserver({ kind: 'percentile', percentile: 0 }, { symmetric: false }), /percentile/);
  assert.throws(() => createObserver({ kind: 'percentile', percentile: NaN }, { symmetric: false }), /percentile/);
  assert.throws(() => createObserver({ kind: 'moving-average', momentum: 0 }, { symmetric: false }), /momentum/);
  assert.throws(() => createObserver({ kind: 'entropy', bins: 1 << 20 }, { symmetric: false }), /entropy bins/);
});

test('entropy leaves exact zeros out of the KL search: a ReLU output keeps its spread', () => {
  const rand = mulberry32(21);
  // 70% exact zeros (a ReLU output), the rest half-normal with unit scale.
  const values = gaussian(rand, 200_000).map((v) => (rand() < 0.7 ? 0 : Math.abs(v)));
  const o = createObserver({ kind: 'entropy' }, { symmetric: false });
  o.update(values);
  const r = o.range();
  assert.equal(r.min, 0);
  assert.ok(r.max > 2.5, `threshold ${r.max} clips the half-normal hard`);
});
