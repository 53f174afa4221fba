// SQNR, the figure every chart and table shows: 20·log10(‖x‖/‖x−y‖) in dB, from sums that
// accumulate over samples (model outputs, the in-graph reductions, weights).

/** SQNR in dB from accumulated sums: 10·log10(Σx² / Σ(x−y)²); identical tensors give +∞. */
export function sqnrDb(signal: number, noise: number): number {
  if (noise === 0) return Infinity;
  if (signal === 0) return -Infinity;
  return 10 * Math.log10(signal / noise);
}

/** A float tensor x against its approximation y, summed over samples. */
export interface CompareStats {
  signal: number;
  noise: number;
  maxAbsError: number;
  refMin: number;
  refMax: number;
}

export function emptyComparison(): CompareStats {
  return { signal: 0, noise: 0, maxAbsError: 0, refMin: Infinity, refMax: -Infinity };
}

/**
 * `ref` against `approx` over [from, to), added to `into`; returns what a cosine of the span needs
 * besides Σx²: Σxy and Σy². One pass, so that a model output's comparison and its task metrics
 * read the output once (the PaddleOCR recognizer's 2.1 million values a batch).
 */
export function addComparison(into: CompareStats, ref: Float32Array, approx: Float32Array, from = 0, to = ref.length): { dot: number; approxPower: number } {
  if (ref.length !== approx.length) throw new Error(`the float output has ${ref.length} values, the quantized one ${approx.length}`);
  let signal = 0;
  let noise = 0;
  let dot = 0;
  let approxPower = 0;
  let maxAbs = into.maxAbsError;
  let lo = into.refMin;
  let hi = into.refMax;
  for (let i = from; i < to; i++) {
    const x = ref[i];
    const y = approx[i];
    const d = x - y;
    signal += x * x;
    noise += d * d;
    dot += x * y;
    approxPower += y * y;
    // Not a branch on the sign of d, a coin toss between two close outputs: mispredicted half the
    // time, it made this pass four times slower on the recognizer's outputs.
    maxAbs = Math.max(maxAbs, Math.abs(d));
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  into.signal += signal;
  into.noise += noise;
  into.maxAbsError = maxAbs;
  into.refMin = lo;
  into.refMax = hi;
  return { dot, approxPower };
}

/** SQNR of one approximation against its reference, element by element (a weight against its quantize-dequantize). */
export function sqnrOf(reference: ArrayLike<number>, approx: ArrayLike<number>): number {
  let s = 0;
  let e = 0;
  for (let i = 0; i < reference.length; i++) {
    s += reference[i] * reference[i];
    const d = reference[i] - approx[i];
    e += d * d;
  }
  return sqnrDb(s, e);
}
