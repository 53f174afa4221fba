// Task metrics: what a user of the model sees, beyond SQNR. The float model's own outputs are the
// reference (agreement, cosine) and, where the user gives labels, the ground truth (accuracy).
// Accumulators keep running counts, so memory does not grow with the number of samples.
import { DataError } from '../data/npy';
import type { MetricName } from '../../shared/metrics';

export type MetricValues = Partial<Record<MetricName, number>>;

/**
 * Metrics of one model output, float reference against the quantized model, over the last axis.
 * An output [N, C] is a classifier (one row per sample: top-1/top-5, accuracy against labels);
 * any other rank has rows over every leading position (a sequence of N x T steps), where argmax
 * agreement counts steps and cosine compares each sample's whole output.
 */
export class MetricAccumulator {
  private rows = 0;
  private argmaxSame = 0;
  private top5Hits = 0;
  private samples = 0;
  private cosineSum = 0;
  private labelled = 0;
  private correct = 0;
  private correct5 = 0;
  private floatCorrect = 0;
  private floatCorrect5 = 0;
  private classifier = true;

  /**
   * One batch: `ref` and `quant` hold `dims` (first axis = samples); labels, when given, hold one
   * class id per sample of this batch.
   */
  add(ref: Float32Array, quant: Float32Array, dims: readonly number[], labels?: ArrayLike<number>): void {
    if (ref.length !== quant.length) throw new Error(`metric: the outputs differ in size (${ref.length} and ${quant.length} values)`);
    const classes = dims[dims.length - 1] ?? 1;
    const n = dims[0] ?? 1;
    if (dims.length !== 2) this.classifier = false;
    const rows = classes > 0 ? ref.length / classes : 0;
    for (let r = 0; r < rows; r++) {
      const o = r * classes;
      const a = argmax(ref, o, classes);
      const b = argmax(quant, o, classes);
      if (a === b) this.argmaxSame++;
      if (topK(quant, o, classes, 5).includes(a)) this.top5Hits++;
    }
    this.rows += rows;
    const per = n > 0 ? ref.length / n : 0;
    for (let s = 0; s < n; s++) {
      let xy = 0;
      let xx = 0;
      let yy = 0;
      for (let i = s * per; i < (s + 1) * per; i++) {
        xy += ref[i] * quant[i];
        xx += ref[i] * ref[i];
        yy += quant[i] * quant[i];
      }
      // Two all-zero outputs agree perfectly; one all-zero output against another has no direction.
      this.cosineSum += xx === 0 && yy === 0 ? 1 : xx === 0 || yy === 0 ? 0 : xy / Math.sqrt(xx * yy);
    }
    this.samples += n;
    if (labels && dims.length === 2) {
      if (labels.length !== n) throw new DataError(`labels: ${labels.length} class ids for a batch of ${n} samples`);
      for (let s = 0; s < n; s++) {
        const label = labels[s];
        const o = s * classes;
        if (argmax(quant, o, classes) === label) this.correct++;
        if (topK(quant, o, classes, 5).includes(label)) this.correct5++;
        if (argmax(ref, o, classes) === label) this.floatCorrect++;
        if (topK(ref, o, classes, 5).includes(label)) this.floatCorrect5++;
      }
      this.labelled += n;
    }
  }

  result(): MetricValues {
    const out: MetricValues = {};
    if (this.rows === 0) return out;
    out['argmax-agreement'] = this.argmaxSame / this.rows;
    if (this.classifier) {
      out['top1-agreement'] = this.argmaxSame / this.rows;
      out['top5-agreement'] = this.top5Hits / this.rows;
    }
    out.cosine = this.cosineSum / this.samples;
    if (this.labelled) {
      out.accuracy = this.correct / this.labelled;
      out['top5-accuracy'] = this.correct5 / this.labelled;
      out['float-accuracy'] = this.floatCorrect / this.labelled;
      out['float-top5-accuracy'] = this.floatCorrect5 / this.labelled;
    }
    return out;
  }
}

export function argmax(data: ArrayLike<number>, offset: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (data[offset + i] > data[offset + best]) best = i;
  return best;
}

/** Indices of the k largest values, largest first (ties keep the lower index). */
export function topK(data: ArrayLike<number>, offset: number, n: number, k: number): number[] {
  const top: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = data[offset + i];
    if (top.length === k && v <= data[offset + top[k - 1]]) continue;
    let j = Math.min(top.length, k - 1);
    if (top.length < k) top.push(i);
    while (j > 0 && data[offset + top[j - 1]] < v) {
      top[j] = top[j - 1];
      j--;
    }
    top[j] = i;
  }
  return top;
}
