// Task metrics: what a user of the model sees, beyond SQNR. The float model's own outputs are the
// reference (agreement, cosine) and, where the user gives labels, the ground truth (accuracy).
// Accumulators keep running counts, so memory does not grow with the number of samples.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { listImages } from '../data/images';
import { DataError, readNpyHeader, readNpyRange } from '../data/npy';

export const METRIC_NAMES = ['top1-agreement', 'top5-agreement', 'argmax-agreement', 'cosine', 'accuracy', 'top5-accuracy', 'float-accuracy', 'float-top5-accuracy'] as const;
export type MetricName = typeof METRIC_NAMES[number];

/** Metrics a repair can aim at: higher is better for all of them. */
export const TARGET_METRICS: readonly MetricName[] = ['top1-agreement', 'top5-agreement', 'argmax-agreement', 'cosine', 'accuracy', 'top5-accuracy'];

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

/**
 * Class ids, one per sample, in the order the data readers yield samples: a .npy of integers, or
 * for a folder-per-class image layout the index of each image's class folder among the sorted
 * class folder names.
 */
export function readLabels(spec: string): { labels: Int32Array; classes?: string[] } {
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(spec);
  } catch {
    throw new DataError(`${spec}: no such labels file or folder; give a .npy of class ids or a folder with one subfolder of images per class`);
  }
  if (stat.isDirectory()) {
    const images = listImages(spec);
    const classOf = images.map((f) => path.relative(spec, f).split(path.sep));
    if (images.length === 0 || classOf.some((parts) => parts.length < 2)) {
      throw new DataError(`${spec}: a labelled image folder needs one subfolder per class with the images inside (found ${images.length} images, ${classOf.filter((p) => p.length < 2).length} of them not in a class folder)`);
    }
    const classes = [...new Set(classOf.map((p) => p[0]))].sort();
    const index = new Map(classes.map((c, i) => [c, i]));
    return { labels: Int32Array.from(classOf, (p) => index.get(p[0])!), classes };
  }
  if (!spec.toLowerCase().endsWith('.npy')) throw new DataError(`${spec}: labels must be a .npy of class ids or a folder-per-class image folder`);
  const header = readNpyHeader(spec);
  if (header.shape.length !== 1 && !(header.shape.length === 2 && header.shape[1] === 1)) {
    throw new DataError(`${spec}: labels must be one class id per sample (shape [N] or [N, 1]), found [${header.shape.join(', ')}]`);
  }
  if (!/^(int|uint)/.test(header.dtype)) throw new DataError(`${spec}: labels must be integer class ids, found ${header.dtype}`);
  const n = header.shape[0];
  const data = readNpyRange(spec, header, 0, n);
  return { labels: Int32Array.from(data as ArrayLike<number | bigint>, (v) => Number(v)) };
}

/** "top1-agreement:0.99" → the metric and its threshold; names the allowed metrics when wrong. */
export function parseMetricTarget(text: string): { metric: MetricName; value: number } {
  const m = /^([a-z0-9-]+):([0-9.]+)$/.exec(text);
  const metric = m?.[1] as MetricName | undefined;
  const value = m ? Number(m[2]) : NaN;
  if (!metric || !TARGET_METRICS.includes(metric) || !(value > 0 && value <= 1)) {
    throw new DataError(`"${text}" is not a metric target: use NAME:VALUE with NAME one of ${TARGET_METRICS.join(', ')} and VALUE in (0, 1], e.g. top1-agreement:0.99`);
  }
  return { metric, value };
}
