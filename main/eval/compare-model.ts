// One model that runs the float and the quantized graph side by side on the same inputs and
// reduces each compared pair to a few numbers inside ONNX Runtime: Σx², Σ(x−y)², max|x−y| and the
// float range. Handing both models' activations to JavaScript instead would move hundreds of MB
// per sample (the PaddleOCR recognizer makes 200 MB of them per text line, twice).
import { makeNode, placeAfterProducers, REDUCE_ALL, typedValueInfo } from '../onnx/edit';
import { onnx, toNumber } from '../onnx/proto';

export interface PairTaps {
  float: string;
  signal: string;
  noise: string;
  maxAbs: string;
  min: string;
  max: string;
  /** Σ(x − QDQ(x))² of the float tensor through the same Q/DQ: the layer's own error with exact float inputs. */
  localNoise?: string;
}

/** The quantized graph's tensors carry this prefix in the side-by-side model (graph inputs are shared and keep their names). */
export const QUANTIZED_PREFIX = 'qs_quantized/';
const PREFIX = QUANTIZED_PREFIX;

function renameGraph(graph: onnx.GraphProto, rename: (n: string) => string): onnx.GraphProto {
  const node = graph.node.map((n) => onnx.NodeProto.create({
    ...n,
    name: n.name ? rename(n.name) : n.name,
    input: n.input.map((i) => (i ? rename(i) : i)),
    output: n.output.map((o) => (o ? rename(o) : o)),
    attribute: n.attribute.map((a) => (a.g || a.graphs.length
      ? onnx.AttributeProto.create({ ...a, ...(a.g ? { g: renameGraph(a.g, rename) } : {}), graphs: a.graphs.map((g) => renameGraph(g, rename)) })
      : a)),
  }));
  const vi = (v: onnx.ValueInfoProto) => onnx.ValueInfoProto.create({ ...v, name: rename(v.name) });
  return onnx.GraphProto.create({
    ...graph,
    node,
    input: graph.input.map(vi),
    output: graph.output.map(vi),
    valueInfo: graph.valueInfo.map(vi),
    initializer: graph.initializer.map((t) => onnx.TensorProto.create({ ...t, name: rename(t.name) })),
  });
}

export interface ComparisonModel {
  model: onnx.ModelProto;
  taps: PairTaps[];
  /** Each float output with the quantized half's value of it, as computed in the same run. */
  outputs: Array<{ float: string; quant: string }>;
}

export function comparisonModel(floatModel: onnx.ModelProto, quantModel: onnx.ModelProto, pairs: Array<{ float: string; quant: string }>): ComparisonModel {
  const fg = floatModel.graph!;
  const inputs = new Set(quantModel.graph!.input.map((i) => i.name));
  const rename = (n: string) => (inputs.has(n) ? n : PREFIX + n);
  const qg = renameGraph(quantModel.graph!, rename);
  // The QuantizeLinear behind each dequantized activation (Q → DQ), by the DQ's output.
  const producers = new Map(quantModel.graph!.node.flatMap((n) => n.output.map((o) => [o, n] as const)));
  const qdqOf = new Map<string, { q: onnx.NodeProto }>();
  for (const dq of quantModel.graph!.node) {
    if (dq.opType !== 'DequantizeLinear') continue;
    const q = producers.get(dq.input[0]);
    if (q?.opType === 'QuantizeLinear') qdqOf.set(dq.output[0], { q });
  }
  // The reductions of a pair run right after the quantized side made its tensor, so that neither
  // tensor outlives its use by much.
  const additions: Array<{ tensor: string; nodes: onnx.NodeProto[] }> = [];
  const outputs: onnx.ValueInfoProto[] = [];
  const taps = pairs.map((p, i) => {
    const base = `qs_cmp_${i}`;
    const t: PairTaps = { float: p.float, signal: `${base}_signal`, noise: `${base}_noise`, maxAbs: `${base}_max_abs`, min: `${base}_min`, max: `${base}_max` };
    const diff = `${base}_diff`;
    const q = rename(p.quant);
    additions.push({
      tensor: q,
      nodes: [
        makeNode('Sub', [p.float, q], [diff]),
        makeNode('ReduceSumSquare', [diff], [t.noise], REDUCE_ALL),
        makeNode('ReduceSumSquare', [p.float], [t.signal], REDUCE_ALL),
        makeNode('Abs', [diff], [`${base}_abs`]),
        makeNode('ReduceMax', [`${base}_abs`], [t.maxAbs], REDUCE_ALL),
        makeNode('ReduceMin', [p.float], [t.min], REDUCE_ALL),
        makeNode('ReduceMax', [p.float], [t.max], REDUCE_ALL),
      ],
    });
    for (const name of [t.signal, t.noise, t.maxAbs, t.min, t.max]) outputs.push(typedValueInfo(name, onnx.TensorProto.DataType.FLOAT));
    // Local error: the float tensor through the quantized side's own Q/DQ parameters. It costs one
    // fake-quantize per tensor in the same pass, with no second model and no copies out.
    const qdq = qdqOf.get(p.quant);
    if (qdq) {
      t.localNoise = `${base}_local_noise`;
      const [, scale, zeroPoint] = qdq.q.input.map(rename);
      const withDomain = (n: onnx.NodeProto) => Object.assign(n, { domain: qdq.q.domain });
      additions[additions.length - 1].nodes.push(
        withDomain(makeNode('QuantizeLinear', [p.float, scale, zeroPoint].filter(Boolean), [`${base}_local_q`])),
        withDomain(makeNode('DequantizeLinear', [`${base}_local_q`, scale, zeroPoint].filter(Boolean), [`${base}_local_dq`])),
        makeNode('Sub', [p.float, `${base}_local_dq`], [`${base}_local_diff`]),
        makeNode('ReduceSumSquare', [`${base}_local_diff`], [t.localNoise], REDUCE_ALL),
      );
      outputs.push(typedValueInfo(t.localNoise, onnx.TensorProto.DataType.FLOAT));
    }
    return t;
  });
  // Float and quantized nodes interleave in proportion, so both halves advance together through
  // the network instead of the float half finishing (and holding all its activations) first.
  const qNodes = placeAfterProducers(qg.node, additions);
  const nodes: onnx.NodeProto[] = [];
  let j = 0;
  fg.node.forEach((n, i) => {
    nodes.push(n);
    for (const until = Math.floor(((i + 1) * qNodes.length) / fg.node.length); j < until; j++) nodes.push(qNodes[j]);
  });
  nodes.push(...qNodes.slice(j));
  const domains = new Map<string, onnx.OperatorSetIdProto>();
  for (const o of [...floatModel.opsetImport, ...quantModel.opsetImport]) {
    const key = o.domain === 'ai.onnx' ? '' : o.domain;
    const seen = domains.get(key);
    if (!seen || toNumber(seen.version) < toNumber(o.version)) domains.set(key, o);
  }
  // The quantized half's own outputs: in reference numerics they are the quantized model's answer,
  // from the very run whose per-layer figures they then agree with.
  const floatOutputs = new Set(fg.output.map((o) => o.name));
  const quantOutputs = quantModel.graph!.output.filter((o) => floatOutputs.has(o.name) && !inputs.has(o.name))
    .map((o) => ({ float: o.name, quant: rename(o.name), info: onnx.ValueInfoProto.create({ ...o, name: rename(o.name) }) }));
  const graph = onnx.GraphProto.create({
    ...fg,
    node: nodes,
    initializer: [...fg.initializer, ...qg.initializer],
    valueInfo: [...fg.valueInfo, ...qg.valueInfo],
    output: [...fg.output, ...quantOutputs.map((o) => o.info), ...outputs],
  });
  return {
    model: onnx.ModelProto.create({ ...floatModel, opsetImport: [...domains.values()], graph }),
    taps,
    outputs: quantOutputs.map(({ float, quant }) => ({ float, quant })),
  };
}
