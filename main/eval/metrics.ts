// Task metrics: what a user of the model sees, beyond SQNR. The float model's own outputs are the
// reference (agreement, cosine) and, where the user gives labels, the ground truth (accuracy).
// Accumulators keep running counts, so memory does not grow with the number of samples.
import { DataError } from '../data/npy';
import type { MetricName } from '../../shared/metrics';
import { addComparison, emptyComparison, type CompareStats } from '../stats/sqnr';

export type MetricValues = Partial<Record<MetricName, number>>;

/** Each sample's value of a metric, in sample order: what a difference between two runs is judged against. */
export type SampleValues = Partial<Record<MetricName, Float64Array>>;

/**
 * What comparing a float output batch needs of it alone: each row's argmax and each sample's power
 * Σx². A search compares the same float outputs with dozens of models (on the PaddleOCR
 * recognizer's 6625 classes, the argmax of the float rows was a sixth of a measurement's
 * JavaScript), so it computes them once.
 */
export interface ReferenceRows {
  argmax: Int32Array;
  power: Float64Array;
}

export function referenceRows(ref: Float32Array, dims: readonly number[]): ReferenceRows {
  const classes = dims[dims.length - 1] ?? 1;
  const rows = classes > 0 ? ref.length / classes : 0;
  const argmaxes = new Int32Array(rows);
  for (let r = 0; r < rows; r++) argmaxes[r] = argmax(ref, r * classes, classes);
  const n = dims[0] ?? 1;
  const per = n > 0 ? ref.length / n : 0;
  const power = new Float64Array(n);
  for (let s = 0; s < n; s++) {
    let xx = 0;
    for (let i = s * per; i < (s + 1) * per; i++) xx += ref[i] * ref[i];
    power[s] = xx;
  }
  return { argmax: argmaxes, power };
}

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
  /** Positions scored against sequence labels, and the summed negative log-likelihoods of their labels. */
  private positions = 0;
  private nll = 0;
  private floatNll = 0;
  private classifier = true;
  /** Each sample's metrics, kept only when asked for: a search compares runs sample by sample. */
  private readonly each?: Partial<Record<MetricName, number[]>>;

  constructor(options: { perSample?: boolean } = {}) {
    if (options.perSample) this.each = {};
  }

  private record(name: MetricName, value: number): void {
    if (this.each) (this.each[name] ??= []).push(value);
  }

  /**
   * One batch: `ref` and `quant` hold `dims` (first axis = samples); labels, when given, hold one
   * class id per sample of this batch, or for a sequence output one per position of each sample;
   * `rows`, `ref`'s referenceRows where the caller keeps them. The output's comparison sums are
   * taken in the same pass as the cosine, added to `sums` and returned.
   */
  add(ref: Float32Array, quant: Float32Array, dims: readonly number[], labels?: ArrayLike<number>, rows = referenceRows(ref, dims), sums = emptyComparison()): CompareStats {
    if (ref.length !== quant.length) throw new Error(`metric: the outputs differ in size (${ref.length} and ${quant.length} values)`);
    const classes = dims[dims.length - 1] ?? 1;
    const n = dims[0] ?? 1;
    if (dims.length !== 2) this.classifier = false;
    const rowCount = rows.argmax.length;
    // Rows come sample by sample; an output whose first axis is not the samples' is counted whole.
    const rowsPerSample = n > 0 && Number.isInteger(rowCount / n) ? rowCount / n : rowCount;
    for (let first = 0; first < rowCount; first += rowsPerSample) {
      let same = 0;
      let hits = 0;
      for (let r = first; r < first + rowsPerSample; r++) {
        const a = rows.argmax[r];
        // The first of the top 5 is the argmax, ties to the lower index as argmax takes them.
        const top = topK(quant, r * classes, classes, 5);
        if (top[0] === a) same++;
        if (top.includes(a)) hits++;
      }
      this.argmaxSame += same;
      this.top5Hits += hits;
      this.record('argmax-agreement', same / rowsPerSample);
      if (dims.length === 2) {
        this.record('top1-agreement', same / rowsPerSample);
        this.record('top5-agreement', hits / rowsPerSample);
      }
    }
    this.rows += rowCount;
    const per = n > 0 ? ref.length / n : 0;
    for (let s = 0; s < n; s++) {
      const xx = rows.power[s];
      const { dot: xy, approxPower: yy } = addComparison(sums, ref, quant, s * per, (s + 1) * per);
      // Two all-zero outputs agree perfectly; one all-zero output against another has no direction.
      const cosine = xx === 0 && yy === 0 ? 1 : xx === 0 || yy === 0 ? 0 : xy / Math.sqrt(xx * yy);
      this.cosineSum += cosine;
      this.record('cosine', cosine);
    }
    this.samples += n;
    if (labels && dims.length === 2) {
      if (labels.length !== n) throw new DataError(`labels: ${labels.length} class ids for a batch of ${n} samples`);
      for (let s = 0; s < n; s++) {
        const label = labels[s];
        const o = s * classes;
        const top = topK(quant, o, classes, 5);
        const right = top[0] === label ? 1 : 0;
        const right5 = top.includes(label) ? 1 : 0;
        this.correct += right;
        this.correct5 += right5;
        this.record('accuracy', right);
        this.record('top5-accuracy', right5);
        if (rows.argmax[s] === label) this.floatCorrect++;
        if (topK(ref, o, classes, 5).includes(label)) this.floatCorrect5++;
      }
      this.labelled += n;
    }
    if (labels && dims.length > 2) this.addSequenceLabels(ref, quant, dims, labels, n, rowsPerSample, classes, rows.argmax);
    return sums;
  }

  /**
   * Labels at every position of a sequence output [N, T, …, V] (a language model's next token):
   * next-token accuracy, and perplexity exp(mean −log p(label)) with p the softmax of the output
   * (or the output itself where its rows already are probabilities). Negative labels are not scored.
   */
  private addSequenceLabels(ref: Float32Array, quant: Float32Array, dims: readonly number[], labels: ArrayLike<number>, n: number, rowsPerSample: number, classes: number,
    refArgmax: Int32Array): void {
    if (labels.length !== n * rowsPerSample) {
      throw new DataError(`labels: ${labels.length / n} class ids per sample for an output of ${rowsPerSample} positions per sample ([${dims.join(', ')}]); give one per position, [N, ${rowsPerSample}]`);
    }
    // An output of probabilities (a softmax inside the model) is told from logits by its float rows, once per batch.
    const probabilities = isDistribution(ref, classes);
    for (let s = 0; s < n; s++) {
      let right = 0;
      let scored = 0;
      let nll = 0;
      for (let r = s * rowsPerSample; r < (s + 1) * rowsPerSample; r++) {
        const label = labels[r];
        if (label < 0) continue;
        if (label >= classes) throw new DataError(`labels: class id ${label} at position ${r - s * rowsPerSample} of a sample, but the output has ${classes} classes`);
        const o = r * classes;
        scored++;
        if (argmax(quant, o, classes) === label) right++;
        if (refArgmax[r] === label) this.floatCorrect++;
        nll += negativeLogLikelihood(quant, o, classes, label, probabilities);
        this.floatNll += negativeLogLikelihood(ref, o, classes, label, probabilities);
      }
      this.correct += right;
      this.positions += scored;
      this.nll += nll;
      this.record('accuracy', scored ? right / scored : 1);
      this.record('perplexity', Math.exp(nll / Math.max(1, scored)));
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
    if (this.positions) {
      out.accuracy = this.correct / this.positions;
      out['float-accuracy'] = this.floatCorrect / this.positions;
      out.perplexity = Math.exp(this.nll / this.positions);
      out['float-perplexity'] = Math.exp(this.floatNll / this.positions);
    }
    if (this.labelled) {
      out.accuracy = this.correct / this.labelled;
      out['top5-accuracy'] = this.correct5 / this.labelled;
      out['float-accuracy'] = this.floatCorrect / this.labelled;
      out['float-top5-accuracy'] = this.floatCorrect5 / this.labelled;
    }
    return out;
  }

  /** Each sample's values, where the accumulator was made to keep them. */
  perSample(): SampleValues {
    return Object.fromEntries(Object.entries(this.each ?? {}).map(([name, v]) => [name, Float64Array.from(v)]));
  }
}

/** Whether every row of `data` is a probability distribution: non-negative, summing to 1. */
function isDistribution(data: Float32Array, classes: number): boolean {
  for (let o = 0; o < data.length; o += classes) {
    let sum = 0;
    for (let i = o; i < o + classes; i++) {
      if (data[i] < 0) return false;
      sum += data[i];
    }
    if (Math.abs(sum - 1) > 1e-3) return false;
  }
  return true;
}

/** −log p(label) of one row: p the softmax of logits, or the row itself when it holds `probabilities`. */
export function negativeLogLikelihood(data: ArrayLike<number>, offset: number, n: number, label: number, probabilities: boolean): number {
  if (probabilities) return -Math.log(Math.max(data[offset + label], 1e-30));
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, data[offset + i]);
  let exp = 0;
  for (let i = 0; i < n; i++) exp += Math.exp(data[offset + i] - max);
  return Math.log(exp) + max - data[offset + label];
}

export function argmax(data: ArrayLike<number>, offset: number, n: number): number {
  let best = 0;
  let value = data[offset];
  for (let i = 1; i < n; i++) {
    const v = data[offset + i];
    if (v > value) {
      value = v;
      best = i;
    }
  }
  return best;
}

/** Indices of the k largest values, largest first (ties keep the lower index). */
export function topK(data: ArrayLike<number>, offset: number, n: number, k: number): number[] {
  const top: number[] = [];
  // The k-th largest so far once there are k: most values fall at or below it.
  let floor = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = data[offset + i];
    if (top.length === k && v <= floor) continue;
    let j = Math.min(top.length, k - 1);
    if (top.length < k) top.push(i);
    while (j > 0 && data[offset + top[j - 1]] < v) {
      top[j] = top[j - 1];
      j--;
    }
    top[j] = i;
    if (top.length === k) floor = data[offset + top[k - 1]];
  }
  return top;
}
