// The ranges file a run writes beside its model, and "saved ranges or calibrate": the one way a
// job gets the ranges of the tensors its plan quantizes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JobError } from '../base/errors';
import { sameSampleShapes } from '../base/feed';
import type { Control } from '../base/progress';
import type { SampleSource } from '../data/readers';
import type { GraphView } from '../onnx/graph';
import type { onnx } from '../onnx/proto';
import { calibrationTensors, planQuantization, withBorrowedRanges, type QuantPlan } from '../plan/plan';
import type { Range } from '../stats/range';
import { calibrate } from './calibrate';
import { savedHistogram, type SavedHistogram } from './rerange';
import type { AdaRoundReport } from '../../shared/report';
import type { ChosenRounding, WeightGrid } from '../plan/qmath';

export interface RangesFile {
  version: 1;
  model: string;
  method: string;
  samples: number;
  tensors: Record<string, Range & { histogram?: SavedHistogram }>;
  /** AdaRound's rounding, where the run learned it: a re-run from these ranges converts with it instead of learning it again. */
  adaround?: SavedRounding;
  /** The SmoothQuant α of the model these ranges were calibrated on, where it was smoothed: they fit that model only. */
  smoothquant?: { alpha: number };
}

/** Each weight's learned rounding on its grid, one bit per element (`up`, base64, lowest bit first), and what AdaRound reported. */
export interface SavedRounding {
  iterations: number;
  report: AdaRoundReport;
  weights: Record<string, WeightGrid & { up: string; count: number }>;
}

export function saveRounding(iterations: number, report: AdaRoundReport, rounding: ReadonlyMap<string, ChosenRounding>): SavedRounding {
  const weights: SavedRounding['weights'] = {};
  for (const [name, { up, ...grid }] of rounding) {
    const bits = new Uint8Array(Math.ceil(up.length / 8));
    for (let i = 0; i < up.length; i++) if (up[i]) bits[i >> 3] |= 1 << (i & 7);
    weights[name] = { ...grid, up: Buffer.from(bits).toString('base64'), count: up.length };
  }
  return { iterations, report, weights };
}

/** The saved rounding as convert takes it; a file whose bits do not fill their count is refused in words. */
export function loadRounding(file: string, saved: SavedRounding): Map<string, ChosenRounding> {
  return new Map(Object.entries(saved.weights).map(([name, { up, count, ...grid }]) => {
    const bits = Buffer.from(up, 'base64');
    if (!Number.isInteger(count) || bits.length !== Math.ceil(count / 8)) throw new JobError(`${file}: the AdaRound rounding of weight "${name}" holds ${bits.length * 8} bits, not the ${count} it says`);
    return [name, { ...grid, up: Uint8Array.from({ length: count }, (_, i) => (bits[i >> 3] >> (i & 7)) & 1) }];
  }));
}

export function readRanges(file: string): RangesFile {
  let parsed: RangesFile;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as RangesFile;
  } catch (err) {
    throw new JobError(`${file}: not a readable ranges file (${(err as Error).message})`);
  }
  if (parsed?.version !== 1 || !parsed.tensors || typeof parsed.tensors !== 'object') throw new JobError(`${file}: not a quant-studio ranges file (expected version 1 with "tensors")`);
  for (const [name, r] of Object.entries(parsed.tensors)) {
    if (!r || !Number.isFinite(r.min) || !Number.isFinite(r.max) || r.min > r.max) {
      throw new JobError(`${file}: the range of tensor "${name}" is not a pair of finite numbers min <= max`);
    }
  }
  return parsed;
}

/**
 * The ranges a recipe needs, from a ranges file made by an earlier run. A recipe that keeps a layer
 * in float leaves the tensors that borrowed its range (data movement after it) to be quantized on
 * their own: they take the range they borrowed under the same recipe without its overrides.
 */
export function rangesFromFile(file: string, view: GraphView, plan: QuantPlan): { doc: RangesFile; ranges: Map<string, Range> } {
  const doc = readRanges(file);
  if (doc.smoothquant && !plan.recipe.algorithms?.smoothquant) {
    throw new JobError(`${file}: these ranges were calibrated on the model smoothed by SmoothQuant (α ${doc.smoothquant.alpha}); add --smoothquant:${doc.smoothquant.alpha}, or calibrate again`);
  }
  const base = planQuantization(view, { ...plan.recipe, overrides: {}, excludeNodes: [] });
  const known = withBorrowedRanges(base, new Map(Object.entries(doc.tensors).map(([name, r]) => [name, { min: r.min, max: r.max }])));
  const needed = calibrationTensors(plan);
  const missing = needed.filter((t) => !known.has(t.tensor));
  if (missing.length) {
    throw new JobError(`${file}: has no range for ${missing.length} tensor(s) this recipe quantizes (${missing.slice(0, 3).map((m) => m.tensor).join(', ')}${missing.length > 3 ? ', …' : ''}); calibrate again without --ranges`);
  }
  return { doc, ranges: new Map(needed.map((t) => [t.tensor, known.get(t.tensor)!])) };
}

export interface RangesRequest extends Control {
  /** A ranges file from an earlier run; else the job calibrates. */
  file?: string;
  /** Opens the calibration data, only when the job calibrates. */
  calibration: () => Promise<SampleSource>;
  /** Keep a histogram of every tensor, so that a repair can re-range by another method (min/max keeps none). */
  histograms: boolean;
  batchSize: number;
  warn: (message: string) => void;
}

export interface JobRanges {
  ranges: Map<string, Range>;
  /** What the job writes beside its model (the file's content when it re-used one). */
  doc: RangesFile;
  samples: number;
  /** The calibration data, where the job calibrated: evaluation on the same data reuses it. */
  source?: SampleSource;
  /** Each calibrated tensor's shape for one sample, where the job calibrated. */
  shapes?: ReadonlyMap<string, number[]>;
}

/** The tensor shapes calibration measured, for runs on `source` when its samples have the calibration data's input shapes. */
export function calibratedShapes(calibrated: JobRanges | undefined, source: SampleSource): ReadonlyMap<string, number[]> | undefined {
  return calibrated?.shapes && sameSampleShapes(calibrated.source?.feedShapes, source.feedShapes) ? calibrated.shapes : undefined;
}

export async function savedOrCalibrated(model: string, floatModel: onnx.ModelProto, view: GraphView, plan: QuantPlan, request: RangesRequest): Promise<JobRanges> {
  if (request.file) {
    const saved = rangesFromFile(request.file, view, plan);
    if (saved.doc.method !== plan.recipe.method) request.warn(`ranges from ${request.file} were calibrated with ${saved.doc.method}, not ${plan.recipe.method}`);
    return { ranges: saved.ranges, doc: saved.doc, samples: saved.doc.samples };
  }
  const source = await request.calibration();
  const needed = calibrationTensors(plan);
  // Min/max keeps no histogram; percentile:100 observes the very same range and keeps one.
  const observed = request.histograms ? needed.map((t) => (t.method === 'minmax' ? { ...t, method: 'percentile:100' } : t)) : needed;
  // Every activation the plan quantizes is compared after conversion: their shapes spare that run a probe.
  const result = await calibrate(floatModel, observed, source, { batchSize: request.batchSize, signal: request.signal, onProgress: request.onProgress, sized: [...plan.activations.keys()] });
  for (const [name, shape] of result.shapes) view.recordShape(name, shape);
  const ranges = new Map<string, Range>();
  const tensors: RangesFile['tensors'] = {};
  for (const [name, r] of result.ranges) {
    ranges.set(name, { min: r.min, max: r.max });
    tensors[name] = { min: r.min, max: r.max, histogram: r.histogram && savedHistogram(r.histogram) };
  }
  return { ranges, doc: { version: 1, model: path.basename(model), method: plan.recipe.method, samples: result.samples, tensors }, samples: result.samples, source, shapes: result.shapes };
}
