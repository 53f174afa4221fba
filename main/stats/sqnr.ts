// SQNR, the figure every chart and table shows: 20·log10(‖x‖/‖x−y‖) in dB, from sums that
// accumulate over samples (the stats workers' comparisons, the in-graph reductions, weights).

/** SQNR in dB from accumulated sums: 10·log10(Σx² / Σ(x−y)²); identical tensors give +∞. */
export function sqnrDb(signal: number, noise: number): number {
  if (noise === 0) return Infinity;
  if (signal === 0) return -Infinity;
  return 10 * Math.log10(signal / noise);
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
