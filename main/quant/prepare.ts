// Prepare: the float model rewritten into the form quantizers expect, numerically the same model.
// Constant nodes become initializers (weights must be constants the quantizer can see) and
// BatchNormalization after a Conv is folded into the Conv's weights, as every deployment runtime
// does; a BN left alone would sit in float between two quantized ops.
import { attrFloat, attrInt, defaultOpset, GraphView, namesRead } from '../onnx/graph';
import { DataType, onnx } from '../onnx/proto';
import { floatTensor, makeTensor, tensorDims, tensorToFloat32 } from '../onnx/tensor';

export interface Prepared {
  model: onnx.ModelProto;
  /** BatchNormalization nodes folded, by name, with the Conv that absorbed them. */
  foldedBatchNorms: Array<{ batchNorm: string; conv: string }>;
  constantsLifted: number;
  /** The ai.onnx opset the model was moved to, when it was. */
  upgradedOpset?: number;
}

/**
 * Opset 9 has no QuantizeLinear; ONNX Runtime takes com.microsoft Q/DQ there, but its QDQ fusion
 * then emits QLinearConv, which needs opset 10, and the model fails to load. Between 9 and 10 Slice and
 * TopK changed for the ops we meet (attributes became inputs), so moving a model to 10
 * is a small, exact rewrite; Upsample, deprecated at 10, becomes the equivalent Resize.
 */
function upgradeTo10(model: onnx.ModelProto): onnx.ModelProto {
  const graph = model.graph!;
  const initializers = [...graph.initializer];
  const taken = new Set<string>([...graph.initializer.map((t) => t.name), ...graph.node.flatMap((n) => n.output)]);
  // Slice ends are often INT64_MAX ("to the end"), which a JavaScript number cannot hold.
  const constant = (base: string, values: readonly bigint[]) => {
    const name = uniqueName(taken, base);
    initializers.push(makeTensor(name, DataType.INT64, [values.length], BigInt64Array.from(values)));
    return name;
  };
  const ints = (n: onnx.NodeProto, name: string): bigint[] | undefined => {
    const a = n.attribute.find((x) => x.name === name);
    return a ? a.ints.map((v) => BigInt(v.toString())) : undefined;
  };
  const node = graph.node.map((n) => {
    if (n.domain) return n;
    if (n.opType === 'Slice') {
      const starts = ints(n, 'starts') ?? [];
      const ends = ints(n, 'ends') ?? [];
      const axes = ints(n, 'axes');
      const inputs = [n.input[0], constant(`${n.output[0]}_starts`, starts), constant(`${n.output[0]}_ends`, ends)];
      if (axes) inputs.push(constant(`${n.output[0]}_axes`, axes));
      return onnx.NodeProto.create({ ...n, input: inputs, attribute: n.attribute.filter((a) => !['starts', 'ends', 'axes'].includes(a.name)) });
    }
    if (n.opType === 'TopK') {
      const k = BigInt(attrInt(n, 'k', 1));
      return onnx.NodeProto.create({ ...n, input: [n.input[0], constant(`${n.output[0]}_k`, [k])], attribute: n.attribute.filter((a) => a.name !== 'k') });
    }
    // Upsample is deprecated at 10; Resize-10 takes the same input, scales and mode.
    if (n.opType === 'Upsample') return onnx.NodeProto.create({ ...n, opType: 'Resize' });
    return n;
  });
  const opsetImport = model.opsetImport.map((o) => (!o.domain || o.domain === 'ai.onnx' ? onnx.OperatorSetIdProto.create({ ...o, version: 10 }) : o));
  return onnx.ModelProto.create({ ...model, opsetImport, graph: onnx.GraphProto.create({ ...graph, node, initializer: initializers }) });
}

export function prepareModel(source: onnx.ModelProto, options: { minOpset?: number } = {}): Prepared {
  const opset = defaultOpset(source);
  const model = options.minOpset && options.minOpset >= 10 && opset < 10 ? upgradeTo10(source) : source;
  const graph = model.graph!;
  const initializers = [...graph.initializer];
  const outputs = new Set(graph.output.map((o) => o.name));
  let nodes: onnx.NodeProto[] = [];
  let constantsLifted = 0;
  for (const n of graph.node) {
    const value = n.opType === 'Constant' && !n.domain ? n.attribute.find((a) => a.name === 'value')?.t : undefined;
    if (value && !outputs.has(n.output[0])) {
      initializers.push(onnx.TensorProto.create({ ...value, name: n.output[0] }));
      constantsLifted++;
    } else {
      nodes.push(n);
    }
  }
  const lifted = onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...graph, node: nodes, initializer: initializers }) });
  const view = new GraphView(lifted);
  const taken = new Set([...view.initializers.keys(), ...view.producer.keys(), ...graph.input.map((i) => i.name)]);
  const replaced = new Map<onnx.NodeProto, onnx.NodeProto | null>();
  const foldedBatchNorms: Prepared['foldedBatchNorms'] = [];
  for (const bn of view.nodes) {
    if (bn.op !== 'BatchNormalization' || bn.outputs.filter(Boolean).length !== 1) continue;
    const conv = view.producer.get(bn.inputs[0]);
    if (!conv || conv.op !== 'Conv' || replaced.has(conv.proto)) continue;
    if ((view.consumers.get(conv.outputs[0]) ?? []).length !== 1 || outputs.has(conv.outputs[0])) continue;
    const params = bn.inputs.slice(1, 5).map((name) => view.initializers.get(name));
    const w = view.initializers.get(conv.inputs[1]);
    const b = conv.inputs[2] ? view.initializers.get(conv.inputs[2]) : undefined;
    if (params.some((p) => !p || p.dataType !== DataType.FLOAT) || !w || w.dataType !== DataType.FLOAT || (conv.inputs[2] && !b)) continue;
    const [scale, bias, mean, variance] = params.map((p) => tensorToFloat32(p!));
    const eps = attrFloat(bn.proto, 'epsilon', 1e-5);
    const dims = tensorDims(w);
    const channels = dims[0];
    const per = dims.slice(1).reduce((x, y) => x * y, 1);
    const weights = tensorToFloat32(w);
    const oldBias = b ? tensorToFloat32(b) : new Float32Array(channels);
    const newW = new Float32Array(weights.length);
    const newB = new Float32Array(channels);
    for (let c = 0; c < channels; c++) {
      const k = scale[c] / Math.sqrt(variance[c] + eps);
      for (let i = 0; i < per; i++) newW[c * per + i] = weights[c * per + i] * k;
      newB[c] = (oldBias[c] - mean[c]) * k + bias[c];
    }
    const wName = uniqueName(taken, `${conv.outputs[0]}_folded_weight`);
    const bName = uniqueName(taken, `${conv.outputs[0]}_folded_bias`);
    initializers.push(floatTensor(wName, dims, newW), floatTensor(bName, [channels], newB));
    replaced.set(conv.proto, onnx.NodeProto.create({ ...conv.proto, input: [conv.inputs[0], wName, bName], output: [bn.outputs[0]] }));
    replaced.set(bn.proto, null);
    foldedBatchNorms.push({ batchNorm: bn.name, conv: conv.name });
  }
  nodes = lifted.graph!.node.flatMap((n) => {
    const r = replaced.get(n);
    return r === undefined ? [n] : r === null ? [] : [r];
  });
  const used = namesRead(nodes);
  for (const o of graph.output) used.add(o.name);
  const graphInputs = new Set(graph.input.map((i) => i.name));
  return {
    model: onnx.ModelProto.create({
      ...model,
      graph: onnx.GraphProto.create({ ...graph, node: nodes, initializer: initializers.filter((t) => used.has(t.name) || graphInputs.has(t.name)) }),
    }),
    foldedBatchNorms,
    constantsLifted,
    upgradedOpset: model !== source ? 10 : undefined,
  };
}

function uniqueName(taken: Set<string>, base: string): string {
  let name = base;
  for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
  taken.add(name);
  return name;
}
