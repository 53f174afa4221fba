// Matching float tensors to their dequantized counterparts in a QDQ model made by any tool,
// from the graph's structure: a QuantizeLinear reading float tensor X followed by a
// DequantizeLinear gives the pair (X, DQ output).
import { GraphView } from '../onnx/graph';
import type { TensorPair } from './evaluate';

export function pairsFromQdq(floatView: GraphView, quantView: GraphView): Array<TensorPair & { node: string; op: string; index: number }> {
  const pairs: Array<TensorPair & { node: string; op: string; index: number }> = [];
  const seen = new Set<string>();
  for (const q of quantView.nodes) {
    if (q.op !== 'QuantizeLinear') continue;
    for (const dq of quantView.consumers.get(q.outputs[0]) ?? []) {
      if (dq.op !== 'DequantizeLinear') continue;
      const out = dq.outputs[0];
      // A graph output keeps its name on the DQ side; everything else on the Q side.
      const float = floatView.producer.has(q.inputs[0]) || floatView.inputs.some((i) => i.name === q.inputs[0]) ? q.inputs[0]
        : floatView.producer.has(out) ? out : undefined;
      if (!float || seen.has(float)) continue;
      seen.add(float);
      const producer = floatView.producer.get(float) ?? floatView.consumers.get(float)?.[0];
      pairs.push({ float, quant: out, node: producer?.name ?? float, op: producer?.op ?? 'Input', index: producer?.index ?? -1 });
    }
  }
  return pairs.sort((a, b) => a.index - b.index);
}
