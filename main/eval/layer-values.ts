// The values behind one layer of the per-layer chart: a binned histogram of a tensor in the float
// model and of its dequantized counterpart in the quantized model, on the same samples. The UI gets
// the bins, never the tensors.
import * as ort from 'onnxruntime-node';

import type { Histogram } from '../../shared/ipc';
import type { SampleSource } from '../data/readers';
import { typedValueInfo } from '../onnx/edit';
import { namesRead } from '../onnx/graph';
import { onnx } from '../onnx/proto';
import { comparisonModel, QUANTIZED_PREFIX } from './compare-model';
import { floatData, run, shapedSession, toOrtFeeds } from '../onnx/session';
import type { TensorPair } from './evaluate';
import { throwIfAborted } from '../base/progress';

export interface ValueHistogram extends Histogram {
  samples: number;
  /** Values per side that went into the bins. */
  values: number;
}

export interface HistogramOptions {
  bins?: number;
  /** Samples read at most: a histogram's shape settles after a few. */
  maxSamples?: number;
  /** Values kept per side at most; larger tensors are read with a stride. */
  maxValues?: number;
  signal?: AbortSignal;
}

/**
 * The side-by-side model cut down to what computes `outputs`: a layer early in a big model needs
 * only the nodes before it, and the comparison taps are not needed at all.
 */
function upTo(model: onnx.ModelProto, outputs: string[]): onnx.ModelProto {
  const graph = model.graph!;
  const producer = new Map<string, onnx.INodeProto>();
  for (const n of graph.node) for (const o of n.output ?? []) if (o) producer.set(o, n);
  const keep = new Set<onnx.INodeProto>();
  const stack = [...outputs];
  while (stack.length) {
    const n = producer.get(stack.pop()!);
    if (!n || keep.has(n)) continue;
    keep.add(n);
    // Subgraphs (If/Loop) read outer tensors by name too.
    stack.push(...[...namesRead([n as onnx.NodeProto])].filter(Boolean));
  }
  const nodes = graph.node.filter((n) => keep.has(n));
  const read = namesRead(nodes as onnx.NodeProto[]);
  return onnx.ModelProto.create({
    ...model,
    graph: onnx.GraphProto.create({
      ...graph,
      node: nodes,
      initializer: graph.initializer.filter((t) => read.has(t.name)),
      output: outputs.map((n) => typedValueInfo(n, onnx.TensorProto.DataType.FLOAT)),
    }),
  });
}

export async function layerHistogram(floatModel: onnx.ModelProto, quantModel: onnx.ModelProto, pair: TensorPair, source: SampleSource,
  options: HistogramOptions = {}): Promise<ValueHistogram> {
  const bins = options.bins ?? 64;
  const maxSamples = options.maxSamples ?? 8;
  const maxValues = options.maxValues ?? 1 << 21;
  const { model } = comparisonModel(floatModel, quantModel, [pair]);
  const inputs = new Set(quantModel.graph!.input.map((i) => i.name));
  const quantName = inputs.has(pair.quant) ? pair.quant : QUANTIZED_PREFIX + pair.quant;
  const session = await shapedSession(upTo(model, [pair.float, quantName]), source.feedShapes, 'float and quantized models side by side');
  const floats: Float32Array[] = [];
  const quants: Float32Array[] = [];
  let kept = 0;
  let samples = 0;
  try {
    for await (const feed of source.batches(1)) {
      throwIfAborted(options.signal);
      const out = await run(session, toOrtFeeds(feed), 'float and quantized models');
      const f = floatData(out[pair.float] as ort.Tensor, pair.float);
      const q = floatData(out[quantName] as ort.Tensor, pair.quant);
      const stride = Math.max(1, Math.ceil((f.length * maxSamples) / maxValues));
      const take = (x: Float32Array) => (stride === 1 ? x.slice() : Float32Array.from({ length: Math.ceil(x.length / stride) }, (_, i) => x[i * stride]));
      floats.push(take(f));
      quants.push(take(q));
      kept += floats[floats.length - 1].length;
      if (++samples >= maxSamples) break;
    }
  } finally {
    await session.release();
  }
  if (samples === 0) throw new Error(`no samples in ${source.description}`);
  return { ...pairedHistogram(floats, quants, bins), samples, values: kept };
}

/** Float and quantized values counted over the same `bins` equal bins spanning both; non-finite values are left out. */
export function pairedHistogram(floats: readonly Float32Array[], quants: readonly Float32Array[], bins: number): Histogram {
  let min = Infinity;
  let max = -Infinity;
  for (const arr of [...floats, ...quants]) for (const v of arr) if (Number.isFinite(v)) { if (v < min) min = v; if (v > max) max = v; }
  if (!(max > min)) { min -= 0.5; max += 0.5; }
  const binOf = (v: number) => Math.min(bins - 1, Math.max(0, Math.floor(((v - min) / (max - min)) * bins)));
  const count = (arrays: readonly Float32Array[]) => {
    const counts = new Array<number>(bins).fill(0);
    for (const arr of arrays) for (const v of arr) if (Number.isFinite(v)) counts[binOf(v)]++;
    return counts;
  };
  return { min, max, float: count(floats), quantized: count(quants) };
}
