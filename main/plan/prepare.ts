// Prepare: the float model rewritten into the form quantizers expect, numerically the same model.
// Constant nodes and constant chains become initializers (weights must be constants the quantizer
// can see, fold.ts) and
// BatchNormalization after a Conv is folded into the Conv's weights, as every deployment runtime
// does; a BN left alone would sit in float between two quantized ops.
import { uniqueName } from '../onnx/edit';
import type { FoldedWeight, SmoothQuantReport } from '../../shared/report';
import { foldConstantChains } from './fold';
import type { EqualizedPair } from './equalize';
import { attrFloat, attrInt, defaultOpset, GraphView, namesRead } from '../onnx/graph';
import { DataType, onnx } from '../onnx/proto';
import { floatTensor, makeTensor, tensorDims, tensorToFloat32 } from '../onnx/tensor';

export interface Prepared {
  model: onnx.ModelProto;
  /**
   * BatchNormalization nodes folded, by name, with the Conv that absorbed them and, per channel,
   * the mean (its bias, β) and standard deviation (|its scale|, |γ|) it gives the Conv's output
   * under the statistics it was trained with: what high-bias absorption reads.
   */
  foldedBatchNorms: Array<{ batchNorm: string; conv: string; mean: Float32Array; std: Float32Array }>;
  constantsLifted: number;
  /** Weights computed from initializers through Identity, Transpose, Cast, DequantizeLinear… (fold.ts). */
  foldedWeights: FoldedWeight[];
  /** The ai.onnx opset the model was moved to, when it was. */
  upgradedOpset?: number;
  /** Conv pairs cross-layer equalization rescaled, and the time it took, when the recipe asked for it. */
  equalized?: { pairs: EqualizedPair[]; seconds: number };
  /** What SmoothQuant did, when the recipe asked for it (it needs calibration data, so the job does it after prepare). */
  smoothed?: SmoothQuantReport;
}

/**
 * QDQ models need opset 10 (QuantizeLinear), and in practice 11: ONNX Runtime's own QDQ
 * transformers insert opset-11 ops (Round, when a float Conv reads a DequantizeLinear), so an
 * opset-10 model with one layer kept in float fails to load. Between 9 and 11 only a few ops
 * changed in ways we meet, each an exact rewrite: Slice, TopK, Clip and Pad attributes became
 * inputs; Upsample became Resize (asymmetric coordinates, floor for nearest, as Upsample computed);
 * Resize-10 gained an roi input; Scatter became ScatterElements.
 */
export const QDQ_OPSET = 11;

function upgradeToQdqOpset(model: onnx.ModelProto): onnx.ModelProto {
  const from = defaultOpset(model);
  const graph = model.graph!;
  const initializers = [...graph.initializer];
  const taken = new Set<string>([...graph.initializer.map((t) => t.name), ...graph.node.flatMap((n) => n.output)]);
  // Slice ends are often INT64_MAX ("to the end"), which a JavaScript number cannot hold.
  const int64 = (base: string, values: readonly bigint[]) => {
    const name = uniqueName(taken, base);
    initializers.push(makeTensor(name, DataType.INT64, [values.length], BigInt64Array.from(values)));
    return name;
  };
  const scalar = (base: string, value: number) => {
    const name = uniqueName(taken, base);
    initializers.push(floatTensor(name, [], Float32Array.of(value)));
    return name;
  };
  const ints = (n: onnx.NodeProto, name: string): bigint[] | undefined => {
    const a = n.attribute.find((x) => x.name === name);
    return a ? a.ints.map((v) => BigInt(v.toString())) : undefined;
  };
  const without = (n: onnx.NodeProto, names: string[]) => n.attribute.filter((a) => !names.includes(a.name));
  const text = (name: string, value: string) => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.STRING, s: Buffer.from(value) });
  const mode = (n: onnx.NodeProto) => Buffer.from(n.attribute.find((a) => a.name === 'mode')?.s ?? Buffer.from('nearest')).toString();
  const toResize11 = (n: onnx.NodeProto, scales: string) => {
    const roi = uniqueName(taken, `${n.output[0]}_roi`);
    initializers.push(floatTensor(roi, [0], new Float32Array(0)));
    const attrs = [...without(n, ['coordinate_transformation_mode', 'nearest_mode']), text('coordinate_transformation_mode', 'asymmetric')];
    if (mode(n) === 'nearest') attrs.push(text('nearest_mode', 'floor'));
    return onnx.NodeProto.create({ ...n, opType: 'Resize', input: [n.input[0], roi, scales], attribute: attrs });
  };
  const node = graph.node.map((n) => {
    if (n.domain) return n;
    const out = n.output[0];
    switch (n.opType) {
      case 'Slice': {
        if (from >= 10) return n;
        const axes = ints(n, 'axes');
        const inputs = [n.input[0], int64(`${out}_starts`, ints(n, 'starts') ?? []), int64(`${out}_ends`, ints(n, 'ends') ?? [])];
        if (axes) inputs.push(int64(`${out}_axes`, axes));
        return onnx.NodeProto.create({ ...n, input: inputs, attribute: without(n, ['starts', 'ends', 'axes']) });
      }
      case 'TopK':
        if (from >= 10) return n;
        return onnx.NodeProto.create({ ...n, input: [n.input[0], int64(`${out}_k`, [BigInt(attrInt(n, 'k', 1))])], attribute: without(n, ['k']) });
      case 'Clip': {
        const min = n.attribute.find((a) => a.name === 'min');
        const max = n.attribute.find((a) => a.name === 'max');
        const inputs = [n.input[0], min ? scalar(`${out}_min`, min.f) : '', max ? scalar(`${out}_max`, max.f) : ''];
        while (inputs[inputs.length - 1] === '') inputs.pop();
        return onnx.NodeProto.create({ ...n, input: inputs, attribute: without(n, ['min', 'max']) });
      }
      case 'Pad': {
        const pads = ints(n, 'pads') ?? [];
        const value = n.attribute.find((a) => a.name === 'value')?.f ?? 0;
        return onnx.NodeProto.create({ ...n, input: [n.input[0], int64(`${out}_pads`, pads), scalar(`${out}_value`, value)], attribute: without(n, ['pads', 'value']) });
      }
      case 'Upsample': return toResize11(n, n.input[1]);
      case 'Resize': return toResize11(n, n.input[1]);
      case 'Scatter': return onnx.NodeProto.create({ ...n, opType: 'ScatterElements' });
      default: return n;
    }
  });
  const opsetImport = model.opsetImport.map((o) => (!o.domain || o.domain === 'ai.onnx' ? onnx.OperatorSetIdProto.create({ ...o, version: QDQ_OPSET }) : o));
  return onnx.ModelProto.create({ ...model, opsetImport, graph: onnx.GraphProto.create({ ...graph, node, initializer: initializers }) });
}

/** `forQdq`: the model will carry Q/DQ (static quantization), so it moves to at least QDQ_OPSET. */
export function prepareModel(source: onnx.ModelProto, options: { forQdq?: boolean } = {}): Prepared {
  const model = options.forQdq && defaultOpset(source) < QDQ_OPSET ? upgradeToQdqOpset(source) : source;
  const { model: lifted, folded: foldedWeights, constantsLifted } = foldConstantChains(model, new GraphView(model).nodes.map((n) => n.proto));
  const graph = lifted.graph!;
  const initializers = [...graph.initializer];
  const outputs = new Set(graph.output.map((o) => o.name));
  let nodes: onnx.NodeProto[];
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
    foldedBatchNorms.push({ batchNorm: bn.name, conv: conv.name, mean: bias, std: scale.map(Math.abs) });
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
    foldedWeights,
    upgradedOpset: model !== source ? QDQ_OPSET : undefined,
  };
}
