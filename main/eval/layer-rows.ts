// The report's layer rows, written once for quantize, analyze and eval: one row per compared tensor
// from an evaluation, with what made it (its node, weights, quantization parameters).
import type { QuantType } from '../../shared/recipe';
import { dbToJson, type LayerReport } from '../../shared/report';
import type { ConvertResult } from '../convert/convert';
import type { GraphView } from '../onnx/graph';
import type { QParams } from '../plan/qmath';
import type { Range } from '../stats/range';
import type { EvaluationResult, TensorPair } from './evaluate';

/** A compared tensor and where it comes from: a converted layer, or a pair matched in a foreign QDQ model. */
export interface RowSource {
  float: string;
  node: string;
  op: string;
  index: number;
  type?: QuantType;
  params?: QParams;
  range?: Range;
}

/** What a conversion tells about its layers beyond the evaluation. */
export interface RowContext {
  view: GraphView;
  converted: ConvertResult;
  /** The nodes that make each tensor, weights included (eval/sensitivity.ts switchUnits). */
  nodes: ReadonlyMap<string, string[]>;
}

/**
 * One row per compared tensor, in graph order. Tensors a recipe keeps in float come last in
 * `sources` order and get SQNR "inf" (no quantization at them) with the error reaching them from
 * upstream under `keptInFloat`.
 */
export function layerRows(sources: readonly RowSource[], kept: readonly string[], evaluation: EvaluationResult, context?: RowContext): LayerReport[] {
  const weightOf = weightSqnrOf(context);
  const rows: LayerReport[] = sources.map((l) => {
    const stats = evaluation.layers.get(l.float)!;
    const ws = weightOf(l.float);
    return {
      name: l.float, node: l.node, nodes: context?.nodes.get(l.float) ?? [], op: l.op, index: l.index, ...(l.type ? { type: l.type } : {}), sqnr: dbToJson(stats.sqnr),
      ...(stats.localSqnr !== undefined ? { localSqnr: dbToJson(stats.localSqnr) } : {}),
      ...(ws !== undefined ? { weightSqnr: dbToJson(ws) } : {}),
      ...(l.params ? { scale: l.params.scale, zeroPoint: l.params.zeroPoint } : {}),
      range: rangeOf(l.float, l.range ?? stats.range),
    };
  });
  for (const name of kept) {
    const producer = context!.view.producer.get(name)!;
    const stats = evaluation.layers.get(name)!;
    const ws = weightOf(name);
    rows.push({
      name, node: producer.name, nodes: [producer.name], op: producer.op, index: producer.index, sqnr: 'inf', keptInFloat: { sqnr: dbToJson(stats.sqnr) },
      ...(ws !== undefined ? { weightSqnr: dbToJson(ws) } : {}), range: rangeOf(name, stats.range),
    });
  }
  return rows.sort((a, b) => a.index - b.index);
}

function rangeOf(tensor: string, range: Range | undefined): [number, number] {
  if (!range) throw new Error(`internal: ${tensor} has neither a calibrated range nor a measured one (its pair must ask for measureRange: rowPairs)`);
  return [range.min, range.max];
}

/** The pairs an evaluation compares for these rows: a row without a calibrated range shows the float tensor's range measured on the evaluation data. */
export function rowPairs(layers: ReadonlyArray<{ float: string; quant: string; range?: Range }>, kept: readonly string[] = []): TensorPair[] {
  return [...layers.map((l) => ({ float: l.float, quant: l.quant, measureRange: !l.range })), ...kept.map((t) => ({ float: t, quant: t, measureRange: true }))];
}

/** The SQNR of the weight that made a tensor: its producer's, or for a folded Relu/Clip the producer it folded into. */
function weightSqnrOf(context: RowContext | undefined): (tensor: string) => number | undefined {
  if (!context) return () => undefined;
  const bySqnr = new Map<string, number>();
  for (const w of context.converted.weights) if (!bySqnr.has(w.node)) bySqnr.set(w.node, w.sqnr);
  const folds = new Map(context.converted.folded.map((f) => [f.node, f.into]));
  return (tensor) => {
    const producer = context.view.producer.get(tensor);
    return producer ? bySqnr.get(folds.get(producer.name) ?? producer.name) : undefined;
  };
}

/**
 * Tensors a recipe override keeps in float that the model makes: they get no Q/DQ, so their own
 * quantization error is nil; they are still compared, to show the error arriving from upstream.
 */
export function keptInFloat(view: GraphView, overrides: Readonly<Record<string, { float?: boolean }>>, converted: ConvertResult): string[] {
  const quantized = new Set(converted.layers.map((l) => l.float));
  return Object.entries(overrides).filter(([name, o]) => o.float && view.producer.has(name) && !quantized.has(name)).map(([name]) => name);
}
