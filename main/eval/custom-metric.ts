// The user's own metric: a JavaScript module that scores the float and quantized outputs of the
// evaluation samples the way the user measures their model (CTC text match, mAP, WER…), usable as
// a repair target beside the built-in metrics.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CustomMetricReport } from '../../shared/report';
import { DataError } from '../data/npy';

/** One sample's outputs: output name → that sample's tensor, batch dimension 1. */
export type SampleOutputs = Record<string, { dims: number[]; data: Float32Array }>;

export interface MetricInput {
  float: SampleOutputs[];
  quantized: SampleOutputs[];
  /** One label per sample, as the labels file gives them (class ids, or any JSON values). */
  labels?: readonly unknown[];
}

export interface CustomMetric {
  /** What the metric measures, in the module's words ("CTC exact match"). */
  name: string;
  /** The module file, absolute. */
  file: string;
  score(input: MetricInput): Promise<number>;
}

// TypeScript compiles import() to require() for CommonJS output, and require() cannot load an ES
// module in every Node 20; a Function keeps the real dynamic import.
const importModule = new Function('url', 'return import(url)') as (url: string) => Promise<{ default?: unknown }>;

/** Loads a metric module whose default export is `{ name, score({ float, quantized, labels }) }`. */
export async function loadMetricModule(file: string): Promise<CustomMetric> {
  const absolute = path.resolve(file);
  const shape = 'its default export must be { name: string, score({ float, quantized, labels }) => number }';
  if (!fs.existsSync(absolute)) throw new DataError(`${file}: no such metric module; give a .mjs file whose ${shape.slice(4)}`);
  let loaded: { default?: unknown };
  try {
    loaded = await importModule(pathToFileURL(absolute).href);
  } catch (err) {
    throw new DataError(`${file}: the metric module does not load: ${(err as Error).message.split('\n')[0]}`);
  }
  const m = loaded.default as { name?: unknown; score?: unknown } | undefined;
  if (!m || typeof m !== 'object' || typeof m.name !== 'string' || !m.name.trim() || typeof m.score !== 'function') {
    throw new DataError(`${file}: not a metric module: ${shape}`);
  }
  const score = m.score as (input: MetricInput) => unknown;
  const name = m.name.trim();
  return {
    name, file: absolute,
    async score(input) {
      let value: unknown;
      try {
        value = await score.call(m, input);
      } catch (err) {
        throw new DataError(`${file}: the metric "${name}" failed on ${input.float.length} samples: ${(err as Error).message ?? String(err)}`);
      }
      if (typeof value !== 'number' || !Number.isFinite(value)) throw new DataError(`${file}: the metric "${name}" returned ${typeof value === 'number' ? value : JSON.stringify(value) ?? String(value)}, not a finite number`);
      return value;
    },
  };
}

/**
 * Splits a batch's outputs into one entry per sample. The data are views of the batch's arrays,
 * not copies: a module that wants to change them must copy first.
 */
export function perSample(outputs: Record<string, { dims: readonly number[]; data: Float32Array }>, n: number): SampleOutputs[] {
  const entries = Object.entries(outputs);
  return Array.from({ length: n }, (_, s) => Object.fromEntries(entries.map(([name, t]) => {
    // An output without the batch as its first dim (a scalar, a shape) is every sample's.
    if (t.dims[0] !== n) return [name, { dims: [...t.dims], data: t.data }];
    const per = t.data.length / n;
    return [name, { dims: [1, ...t.dims.slice(1)], data: t.data.subarray(s * per, (s + 1) * per) }];
  })));
}

/** The float and quantized outputs of every sample seen, scored by the module at the end. */
export class CustomScore {
  private readonly float: SampleOutputs[] = [];
  private readonly quantized: SampleOutputs[] = [];

  constructor(private readonly metric: CustomMetric, private readonly labels?: readonly unknown[]) {}

  add(float: SampleOutputs[], quantized: SampleOutputs[]): void {
    this.float.push(...float);
    this.quantized.push(...quantized);
  }

  score(): Promise<number> {
    if (this.labels && this.labels.length < this.float.length) throw new DataError(`labels: ${this.labels.length} labels for ${this.float.length} samples`);
    return this.metric.score({ float: this.float, quantized: this.quantized, ...(this.labels ? { labels: this.labels.slice(0, this.float.length) } : {}) });
  }
}

export function customMetricReport(metric: CustomMetric): CustomMetricReport {
  return { name: metric.name, module: metric.file };
}
