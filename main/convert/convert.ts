// Rewrites a float model by its QuantPlan: static QDQ, dynamic integer ops, or weight-only.
// The input model object is never modified; the result shares its unchanged tensors.
import { intAttr, uniqueName } from '../onnx/edit';
import type { Range } from '../stats/range';
import { quantTypeBits, type QuantType } from '../../shared/recipe';
import type { WeightReport } from '../../shared/report';
import { attrFloat, namesRead, type GraphNode, type GraphView } from '../onnx/graph';
import { DataType, onnx } from '../onnx/proto';
import { floatTensor, makeTensor, tensorDims, tensorToFloat32 } from '../onnx/tensor';
import { linearWeight, rootOf, weightAsKN, type LinearWeight, type QuantPlan, type WeightSpec } from '../plan/plan';
import { blockGrouping, computeQParams, packNibbles, qRange, quantizeBias, quantizeMatMulNBits, quantizeOnGrid, quantizeWeight, sameGrid, storageArray, type ChosenRounding, type MatMulNBitsWeight, type QParams, type WeightRounding } from '../plan/qmath';
import { sqnrOf } from '../stats/sqnr';

/** One tensor compared float ↔ quantized: the unit of a per-layer report. */
export interface LayerMapping {
  /** Name in the float model. */
  float: string;
  /** Name of the (dequantized) value in the quantized model. */
  quant: string;
  node: string;
  op: string;
  index: number;
  type: QuantType;
  params?: QParams;
  range?: Range;
}

/** A report's weight row, with the SQNR still a number (Infinity for lossless). */
export type WeightResult = Omit<WeightReport, 'sqnr'> & { sqnr: number };

export interface ConvertResult {
  model: onnx.ModelProto;
  layers: LayerMapping[];
  weights: WeightResult[];
  /** Relu/Clip nodes removed because the quantized range already clamps like them, and the producer that took their output. */
  folded: Array<{ node: string; op: string; into: string }>;
}

export class ConvertError extends Error {}

const MS_DOMAIN = 'com.microsoft';

const ONNX_TYPE: Record<QuantType, number> = {
  uint8: DataType.UINT8, int8: DataType.INT8, uint16: DataType.UINT16, int16: DataType.INT16,
  int4: DataType.INT4, uint4: DataType.UINT4,
};

class Builder {
  readonly names: Set<string>;
  readonly prelude: onnx.NodeProto[] = [];
  readonly initializers: onnx.TensorProto[] = [];
  /** Tensors whose declared type or shape no longer holds (renamed graph outputs). */
  readonly retyped = new Set<string>();
  private usesMsDomain = false;

  constructor(readonly view: GraphView) {
    this.names = new Set<string>();
    for (const n of view.nodes) for (const t of [...n.inputs, ...n.outputs]) this.names.add(t);
    for (const t of view.initializers.keys()) this.names.add(t);
    for (const i of view.inputs) this.names.add(i.name);
  }

  unique(base: string): string {
    return uniqueName(this.names, base);
  }

  node(op: string, inputs: string[], outputs: string[], attrs: onnx.AttributeProto[] = [], domain = ''): onnx.NodeProto {
    if (domain === MS_DOMAIN) this.usesMsDomain = true;
    return onnx.NodeProto.create({ opType: op, input: inputs, output: outputs, name: this.unique(`${outputs[0]}_${op}`), attribute: attrs, domain });
  }

  /** Q/DQ need ai.onnx opset 13 for per-axis and 21 for 16/4-bit types; below that ONNX Runtime's com.microsoft versions take them. */
  qdqDomain(type: QuantType | 'int32', perAxis: boolean): string {
    const need = type === 'int32' ? (perAxis ? 13 : 10) : quantTypeBits(type) !== 8 ? 21 : perAxis ? 13 : 10;
    return this.view.opset >= need ? '' : MS_DOMAIN;
  }

  initializer(base: string, tensor: (name: string) => onnx.TensorProto): string {
    const name = this.unique(base);
    this.initializers.push(tensor(name));
    return name;
  }

  finish(model: onnx.ModelProto, nodes: onnx.NodeProto[], outputs: onnx.ValueInfoProto[]): onnx.ModelProto {
    const graph = model.graph!;
    const used = namesRead(nodes);
    for (const o of outputs) used.add(o.name);
    const initializer = [...graph.initializer.filter((t) => used.has(t.name)), ...this.initializers];
    const inits = new Set(initializer.map((t) => t.name));
    const opsetImport = [...model.opsetImport];
    if (this.usesMsDomain && !opsetImport.some((o) => o.domain === MS_DOMAIN)) {
      opsetImport.push(onnx.OperatorSetIdProto.create({ domain: MS_DOMAIN, version: 1 }));
    }
    const newGraph = onnx.GraphProto.create({
      ...graph,
      node: nodes,
      initializer,
      input: graph.input.filter((i) => !graph.initializer.some((t) => t.name === i.name) || inits.has(i.name)),
      output: outputs,
      // Shapes and types of renamed/quantized tensors change: let ONNX Runtime infer them again.
      valueInfo: graph.valueInfo.filter((v) => used.has(v.name) && !this.retyped.has(v.name)),
    });
    return onnx.ModelProto.create({ ...model, graph: newGraph, opsetImport });
  }
}

function cloneNode(n: onnx.NodeProto): onnx.NodeProto {
  return onnx.NodeProto.create({ ...n, input: [...n.input], output: [...n.output] });
}

function scaleTensor(name: string, scales: Float32Array, perAxis: boolean): onnx.TensorProto {
  return floatTensor(name, perAxis ? [scales.length] : [], perAxis ? scales : new Float32Array([scales[0]]));
}

function zeroPointTensor(name: string, type: QuantType, values: ArrayLike<number>, perAxis: boolean): onnx.TensorProto {
  const dims = perAxis ? [values.length] : [];
  if (type === 'int4' || type === 'uint4') {
    return makeTensor(name, ONNX_TYPE[type], dims, packNibbles(values));
  }
  const arr = storageArray(type, perAxis ? values.length : 1);
  for (let i = 0; i < arr.length; i++) arr[i] = values[i];
  return makeTensor(name, ONNX_TYPE[type], dims, arr);
}

function resolveParams(plan: QuantPlan, ranges: ReadonlyMap<string, Range>): Map<string, { params: QParams; range: Range }> {
  const out = new Map<string, { params: QParams; range: Range }>();
  const resolve = (tensor: string): { params: QParams; range: Range } => {
    const done = out.get(tensor);
    if (done) return done;
    const spec = plan.activations.get(tensor)!;
    let result: { params: QParams; range: Range };
    if (spec.sharedWith) {
      result = resolve(spec.sharedWith);
    } else if (spec.fixed) {
      const [qmin, qmax] = qRange(spec.type);
      result = { params: spec.fixed, range: { min: (qmin - spec.fixed.zeroPoint) * spec.fixed.scale, max: (qmax - spec.fixed.zeroPoint) * spec.fixed.scale } };
    } else {
      const range = ranges.get(tensor);
      if (!range) throw new ConvertError(`no calibrated range for tensor "${tensor}"; were the ranges made for another model or recipe?`);
      result = { range, params: computeQParams(range.min, range.max, spec.type, spec.symmetric) };
    }
    out.set(tensor, result);
    return result;
  };
  for (const tensor of plan.activations.keys()) resolve(tensor);
  return out;
}

function clipBounds(view: GraphView, node: GraphNode): [number, number] | undefined {
  if (node.op === 'Relu') return [0, Infinity];
  if (node.op !== 'Clip') return undefined;
  if (view.opset < 11) return [attrFloat(node.proto, 'min', -Infinity), attrFloat(node.proto, 'max', Infinity)];
  const bound = (i: number, fallback: number): number | undefined => {
    const name = node.inputs[i];
    if (!name) return fallback;
    const t = view.constantTensor(name);
    return t ? tensorToFloat32(t)[0] : undefined;
  };
  const lo = bound(1, -Infinity);
  const hi = bound(2, Infinity);
  return lo === undefined || hi === undefined ? undefined : [lo, hi];
}

/**
 * Relu/Clip right after a quantized op do nothing once the op's output is quantized with a range
 * that lies inside the clamp: the producer then writes the clamp's output directly.
 */
function findFolds(view: GraphView, plan: QuantPlan, params: Map<string, { params: QParams; range: Range }>, quantizedNodes: ReadonlySet<string>): Map<string, GraphNode> {
  const folds = new Map<string, GraphNode>();
  const graphOutputs = new Set(view.outputs.map((o) => o.name));
  const foldable = new Set<string>(plan.backend.foldedClamps);
  for (const node of view.nodes) {
    const bounds = foldable.has(node.op) ? clipBounds(view, node) : undefined;
    if (!bounds) continue;
    const input = node.inputs[0];
    const output = node.outputs[0];
    const producer = view.producer.get(input);
    const inSpec = plan.activations.get(input);
    const outSpec = plan.activations.get(output);
    if (!producer || !inSpec || !outSpec || inSpec.sharedWith || graphOutputs.has(input)) continue;
    // Folding hands the producer the clamp's encoding: not when the backend fixes the producer's
    // (TFLite's int8 Sigmoid, QNN's uint16 Tanh: what its kernel writes, whatever follows), nor when
    // an override gave the producer's output another type (a 16-bit layer would silently become 8-bit).
    if (inSpec.fixed || inSpec.type !== outSpec.type) continue;
    if ((view.consumers.get(input) ?? []).length !== 1 || producer.outputs.length !== 1) continue;
    if (!quantizedNodes.has(producer.name) || !quantizedNodes.has(node.name)) continue;
    const { params: p } = params.get(output)!;
    const [qmin, qmax] = qRange(outSpec.type);
    const lo = (qmin - p.zeroPoint) * p.scale;
    const hi = (qmax - p.zeroPoint) * p.scale;
    const eps = p.scale * 1e-3;
    if (lo >= bounds[0] - eps && hi <= bounds[1] + eps) folds.set(node.name, producer);
  }
  return folds;
}

/** Weight-only weights already quantized (GPTQ): MatMulNBits ones by node name, and 8-bit levels on their plan grid by weight name. */
export interface ChosenWeights {
  nbits: ReadonlyMap<string, MatMulNBitsWeight>;
  levels: ReadonlyMap<string, Int32Array>;
}

/**
 * `rounding`: weights rounded as chosen (AdaRound) where their grid is the one it was chosen on, to
 * nearest otherwise. `chosen`: weight-only weights GPTQ quantized.
 */
export function convertModel(view: GraphView, plan: QuantPlan, ranges: ReadonlyMap<string, Range>, rounding?: WeightRounding, chosen?: ChosenWeights): ConvertResult {
  switch (plan.kind) {
    case 'static': return convertStatic(view, plan, ranges, rounding);
    case 'dynamic': return convertDynamic(view, plan);
    case 'weight-only': return convertWeightOnly(view, plan, chosen);
  }
}

interface WeightOut {
  name: string;
  result: WeightResult;
  scales: Float32Array;
  perAxis: boolean;
}

/** A weight quantized on a grid, as a conversion writes it, and its weight SQNR (the dequantized values are not kept). */
type GridWeight = { q: Pick<ReturnType<typeof quantizeOnGrid>, 'values' | 'scales' | 'zeroPoints'>; sqnr: number };

/**
 * Weights this process quantized, by tensor, grid and the rounding applied: a search converts one
 * model dozens of times with a layer or two moved, and quantizing every weight again was most of
 * each conversion (the PaddleOCR recognizer's 2.7M weights: 90 of 120 ms). Tensors of a view are
 * never changed in place, nor are the arrays handed out from here.
 */
const quantizedWeights = new WeakMap<onnx.TensorProto, Map<string, Map<ChosenRounding | undefined, GridWeight>>>();

/** `t` quantized on `spec`'s grid, with `levels` (GPTQ) or `chosen`'s rounding where it was chosen on that grid, else to nearest; and its weight SQNR. */
function weightOnGrid(t: onnx.TensorProto, dims: number[], spec: WeightSpec, chosen?: ChosenRounding, levels?: Int32Array): GridWeight {
  const fresh = (applied?: ChosenRounding) => {
    const data = tensorToFloat32(t);
    const { values, scales, zeroPoints, dequantized } = quantizeOnGrid(data, dims, spec, applied, levels);
    return { q: { values, scales, zeroPoints }, sqnr: sqnrOf(data, dequantized) };
  };
  if (levels) return fresh();
  const applied = chosen && sameGrid(chosen, spec) ? chosen : undefined;
  const grid = `${spec.type} ${spec.symmetric} ${spec.axis} ${spec.block?.axis}/${spec.block?.size} ${spec.range.join(',')}`;
  let byGrid = quantizedWeights.get(t);
  if (!byGrid) quantizedWeights.set(t, (byGrid = new Map()));
  let byRounding = byGrid.get(grid);
  if (!byRounding) byGrid.set(grid, (byRounding = new Map()));
  let known = byRounding.get(applied);
  if (!known) byRounding.set(applied, (known = fresh(applied)));
  return known;
}

/** `levels`: the integer each element takes, chosen on the spec's grid (GPTQ), instead of rounding. */
function quantizeWeightInto(b: Builder, t: onnx.TensorProto, spec: WeightSpec, rounding?: WeightRounding, levels?: Int32Array): WeightOut {
  const dims = tensorDims(t);
  const { q, sqnr } = weightOnGrid(t, dims, spec, rounding?.get(spec.tensor), levels);
  if (spec.block) return blockedWeightInto(b, dims, q, sqnr, spec, spec.block);
  const perAxis = spec.axis !== undefined;
  const type = spec.type;
  const qName = b.initializer(`${spec.tensor}_quantized`, (name) => quantizedTensor(name, type, dims, q.values));
  const sName = b.initializer(`${spec.tensor}_scale`, (name) => scaleTensor(name, q.scales, perAxis));
  const zName = b.initializer(`${spec.tensor}_zero_point`, (name) => zeroPointTensor(name, type, q.zeroPoints, perAxis));
  const out = b.unique(`${spec.tensor}_dequantized`);
  b.prelude.push(b.node('DequantizeLinear', [qName, sName, zName], [out], perAxis ? [intAttr('axis', spec.axis!)] : [], b.qdqDomain(type, perAxis)));
  return {
    name: out,
    scales: q.scales,
    perAxis,
    result: {
      name: spec.tensor, node: spec.node, op: spec.op, type, granularity: perAxis ? `per-channel (axis ${spec.axis})` : 'per-tensor',
      sqnr,
    },
  };
}

function quantizedTensor(name: string, type: QuantType, dims: number[], values: Int8Array | Uint8Array | Int16Array | Uint16Array): onnx.TensorProto {
  return type === 'int4' || type === 'uint4' ? makeTensor(name, ONNX_TYPE[type], dims, packNibbles(values)) : makeTensor(name, ONNX_TYPE[type], dims, values);
}

/** A blocked DequantizeLinear (opset 21): scales and zero points shaped like the weight with the block axis cut into blocks. */
function blockedWeightInto(b: Builder, dims: number[], q: GridWeight['q'], sqnr: number, spec: WeightSpec, block: { axis: number; size: number }): WeightOut {
  const grouping = blockGrouping(dims, block.axis, block.size);
  const qName = b.initializer(`${spec.tensor}_quantized`, (name) => quantizedTensor(name, spec.type, dims, q.values));
  const sName = b.initializer(`${spec.tensor}_scale`, (name) => floatTensor(name, grouping.dims, q.scales));
  const zName = b.initializer(`${spec.tensor}_zero_point`, (name) => quantizedTensor(name, spec.type, grouping.dims, q.zeroPoints));
  const out = b.unique(`${spec.tensor}_dequantized`);
  b.prelude.push(b.node('DequantizeLinear', [qName, sName, zName], [out], [intAttr('axis', block.axis), intAttr('block_size', block.size)]));
  return {
    name: out,
    scales: q.scales,
    perAxis: true,
    result: {
      name: spec.tensor, node: spec.node, op: spec.op, type: spec.type, granularity: `per-block (${block.size} along axis ${block.axis})`,
      sqnr,
    },
  };
}

function convertStatic(view: GraphView, plan: QuantPlan, ranges: ReadonlyMap<string, Range>, rounding?: WeightRounding): ConvertResult {
  const b = new Builder(view);
  const params = resolveParams(plan, ranges);
  const quantizedNodes = new Set(plan.nodes.filter((n) => n.status === 'quantized').map((n) => n.node));
  const folds = findFolds(view, plan, params, quantizedNodes);
  const foldedInputs = new Set([...folds.keys()].map((n) => view.nodes.find((x) => x.name === n)!.inputs[0]));
  const graphOutputs = new Set(view.outputs.map((o) => o.name));
  const rename = new Map<string, string>();
  const layers: LayerMapping[] = [];
  const qdq = new Map<string, onnx.NodeProto[]>();
  const paramNames = new Map<string, [string, string]>();

  for (const [tensor, spec] of plan.activations) {
    if (foldedInputs.has(tensor)) continue;
    const { params: p, range } = params.get(tensor)!;
    // A tensor that keeps its input's quantization reads the very same scale and zero point.
    const root = rootOf(plan, tensor);
    let names = paramNames.get(root);
    if (!names) {
      names = [
        b.initializer(`${root}_scale`, (name) => floatTensor(name, [], new Float32Array([p.scale]))),
        b.initializer(`${root}_zero_point`, (name) => zeroPointTensor(name, spec.type, [p.zeroPoint], false)),
      ];
      paramNames.set(root, names);
    }
    const [sName, zName] = names;
    let source = tensor;
    let dequantized: string;
    if (graphOutputs.has(tensor) && !view.inputs.some((i) => i.name === tensor)) {
      source = b.unique(`${tensor}_float`);
      dequantized = tensor;
      b.retyped.add(tensor);
    } else {
      dequantized = b.unique(`${tensor}_dequantized`);
    }
    const quantized = b.unique(`${tensor}_quantized`);
    const domain = b.qdqDomain(spec.type, false);
    const pair = [
      b.node('QuantizeLinear', [source, sName, zName], [quantized], [], domain),
      b.node('DequantizeLinear', [quantized, sName, zName], [dequantized], [], domain),
    ];
    qdq.set(tensor, pair);
    if (source !== tensor) rename.set(tensor, source);
    layers.push({ float: tensor, quant: dequantized, node: spec.node, op: spec.op, index: spec.index, type: spec.type, params: p, range });
  }

  const weightNames = new Map<string, string>();
  const weights: WeightResult[] = [];
  const weightScales = new Map<string, WeightOut>();
  for (const spec of plan.weights.values()) {
    const out = quantizeWeightInto(b, view.constantTensor(spec.tensor)!, spec, rounding);
    weightNames.set(spec.tensor, out.name);
    weightScales.set(spec.tensor, out);
    if (!spec.asActivation) weights.push(out.result);
  }
  for (const spec of plan.biases.values()) {
    const input = params.get(spec.input);
    const w = weightScales.get(spec.weight);
    if (!input || !w) continue;
    const t = view.constantTensor(spec.tensor)!;
    const q = quantizeBias(tensorToFloat32(t), input.params.scale, w.scales);
    const perAxis = q.scales.length > 1;
    const qName = b.initializer(`${spec.tensor}_quantized`, (name) => makeTensor(name, DataType.INT32, tensorDims(t), q.values));
    const sName = b.initializer(`${spec.tensor}_scale`, (name) => scaleTensor(name, q.scales, perAxis));
    const zName = b.initializer(`${spec.tensor}_zero_point`, (name) => makeTensor(name, DataType.INT32, perAxis ? [q.scales.length] : [], new Int32Array(q.scales.length)));
    const out = b.unique(`${spec.tensor}_dequantized`);
    b.prelude.push(b.node('DequantizeLinear', [qName, sName, zName], [out], perAxis ? [intAttr('axis', 0)] : [], b.qdqDomain('int32', perAxis)));
    weightNames.set(spec.tensor, out);
  }

  const nodes: onnx.NodeProto[] = [...b.prelude];
  for (const input of view.inputs) nodes.push(...(qdq.get(input.name) ?? []));
  // Each Relu/Clip that folds hands its output name to its producer.
  const producerOutput = new Map<string, string>();
  for (const [name, producer] of folds) producerOutput.set(producer.name, view.nodes.find((x) => x.name === name)!.outputs[0]);

  for (const node of view.nodes) {
    if (folds.has(node.name)) continue;
    const n = cloneNode(node.proto);
    n.input = n.input.map((x) => {
      if (!x) return x;
      const pair = qdq.get(x);
      if (pair) return pair[1].output[0];
      const w = weightNames.get(x);
      if (w && quantizedNodes.has(node.name)) return w;
      return rename.get(x) ?? x;
    });
    const folded = producerOutput.get(node.name);
    if (folded) n.output = [rename.get(folded) ?? folded];
    else n.output = n.output.map((x) => rename.get(x) ?? x);
    nodes.push(n);
    for (const out of folded ? [folded] : node.outputs) nodes.push(...(qdq.get(out) ?? []));
  }
  const model = b.finish(view.model, nodes, view.model.graph!.output);
  const folded = [...folds].map(([name, producer]) => ({ node: name, op: view.nodes.find((x) => x.name === name)!.op, into: producer.name }));
  return { model, layers: layers.sort((x, y) => x.index - y.index), weights, folded };
}

/**
 * A MatMul of two activations quantized at run time: both through DynamicQuantizeLinear (uint8,
 * per tensor), MatMulInteger, and the int32 product scaled back by the two scales.
 */
function activationMatMul(b: Builder, node: GraphNode): onnx.NodeProto[] {
  const out = node.outputs[0];
  const nodes: onnx.NodeProto[] = [];
  const quantized = node.inputs.slice(0, 2).map((x) => {
    const [q, s, z] = [b.unique(`${x}_${node.name}_quantized`), b.unique(`${x}_${node.name}_scale`), b.unique(`${x}_${node.name}_zero_point`)];
    nodes.push(b.node('DynamicQuantizeLinear', [x], [q, s, z]));
    return { q, s, z };
  });
  const [a, w] = quantized;
  const acc = b.unique(`${out}_int32`);
  const accF = b.unique(`${out}_int32_float`);
  const scale = b.unique(`${out}_scale`);
  nodes.push(
    b.node('MatMulInteger', [a.q, w.q, a.z, w.z], [acc]),
    b.node('Cast', [acc], [accF], [intAttr('to', DataType.FLOAT)]),
    b.node('Mul', [a.s, w.s], [scale]),
    b.node('Mul', [accF, scale], [out]),
  );
  return nodes;
}

/** A Gemm's C as the [N] vector the integer kernels take as bias. */
function biasVector(b: Builder, view: GraphView, node: GraphNode, linear: LinearWeight): string {
  const c = view.constantTensor(linear.bias!, node)!;
  return tensorDims(c).length === 1 ? linear.bias! : b.initializer(`${linear.bias}_vector`, (name) => floatTensor(name, [linear.n], Float32Array.from(tensorToFloat32(c))));
}

function nodeLayer(node: GraphNode, type: QuantType): LayerMapping {
  return { float: node.outputs[0], quant: node.outputs[0], node: node.name, op: node.op, index: node.index, type };
}

function convertDynamic(view: GraphView, plan: QuantPlan): ConvertResult {
  const b = new Builder(view);
  const byNode = new Map(plan.dynamic.map((d) => [d.node, d]));
  const nodes: onnx.NodeProto[] = [];
  const layers: LayerMapping[] = [];
  const weights: WeightResult[] = [];
  const weightType = plan.recipe.weightType;
  const perChannel = plan.recipe.granularity === 'per-channel';
  const [wmin, wmax] = plan.recipe.reduceRange ? [Math.ceil(qRange(weightType)[0] / 2), Math.floor(qRange(weightType)[1] / 2)] : qRange(weightType, plan.backend.weightNarrowRange);
  for (const node of view.nodes) {
    const spec = byNode.get(node.name);
    if (!spec) {
      nodes.push(node.proto);
      continue;
    }
    if (!spec.weight) {
      nodes.push(...activationMatMul(b, node));
      layers.push(nodeLayer(node, 'uint8'));
      continue;
    }
    const t = view.constantTensor(spec.weight)!;
    let data = tensorToFloat32(t);
    let dims = tensorDims(t);
    const linear = node.op === 'Conv' ? undefined : linearWeight(view, node) as LinearWeight;
    if (linear) {
      // DynamicQuantizeMatMul takes B as [K, N].
      data = weightAsKN(data, linear);
      dims = [linear.k, linear.n];
    }
    const axis = perChannel ? (node.op === 'Conv' ? 0 : 1) : undefined;
    const q = quantizeWeight(data, dims, weightType, plan.recipe.weightSymmetric, axis, [wmin, wmax]);
    weights.push({ name: spec.weight, node: node.name, op: node.op, type: weightType, granularity: axis === undefined ? 'per-tensor' : `per-channel (axis ${axis})`, sqnr: sqnrOf(data, q.dequantized) });
    const qName = b.initializer(`${spec.weight}_quantized`, (name) => makeTensor(name, ONNX_TYPE[weightType], dims, q.values));
    // ConvInteger takes a single weight zero point (symmetric per-channel weights all have 0).
    const zName = b.initializer(`${spec.weight}_zero_point`, (name) => zeroPointTensor(name, weightType, q.zeroPoints, axis !== undefined && node.op !== 'Conv'));
    const out = node.outputs[0];
    if (node.op === 'Conv') {
      const channels = dims[0];
      const xq = b.unique(`${node.inputs[0]}_quantized`);
      const xs = b.unique(`${node.inputs[0]}_scale`);
      const xz = b.unique(`${node.inputs[0]}_zero_point`);
      nodes.push(b.node('DynamicQuantizeLinear', [node.inputs[0]], [xq, xs, xz]));
      const acc = b.unique(`${out}_int32`);
      nodes.push(b.node('ConvInteger', [xq, qName, xz, zName], [acc], node.proto.attribute));
      const accF = b.unique(`${out}_int32_float`);
      nodes.push(b.node('Cast', [acc], [accF], [intAttr('to', DataType.FLOAT)]));
      const ws = b.initializer(`${spec.weight}_scale`, (name) => floatTensor(name, axis === undefined ? [] : [1, channels, 1, 1], axis === undefined ? new Float32Array([q.scales[0]]) : q.scales));
      const scale = b.unique(`${out}_scale`);
      nodes.push(b.node('Mul', [xs, ws], [scale]));
      const bias = node.inputs[2];
      const scaled = bias ? b.unique(`${out}_unbiased`) : out;
      nodes.push(b.node('Mul', [accF, scale], [scaled]));
      if (bias) {
        const bt = view.constantTensor(bias);
        const shaped = bt ? b.initializer(`${bias}_reshaped`, (name) => floatTensor(name, [1, channels, 1, 1], Float32Array.from(tensorToFloat32(bt)))) : bias;
        nodes.push(b.node('Add', [scaled, shaped], [out]));
      }
    } else {
      const sName = b.initializer(`${spec.weight}_scale`, (name) => scaleTensor(name, q.scales, axis !== undefined));
      const inputs = [node.inputs[0], qName, sName, zName];
      if (linear?.bias) inputs.push(biasVector(b, view, node, linear));
      nodes.push(b.node('DynamicQuantizeMatMul', inputs, [out], [], MS_DOMAIN));
    }
    layers.push(nodeLayer(node, weightType));
  }
  return { model: b.finish(view.model, nodes, view.model.graph!.output), layers, weights, folded: [] };
}

function convertWeightOnly(view: GraphView, plan: QuantPlan, chosen?: ChosenWeights): ConvertResult {
  const b = new Builder(view);
  const byNode = new Map(plan.weightOnly.map((w) => [w.node, w]));
  const byProto = new Map([...view.nodes, ...view.subgraphNodes].map((n) => [n.proto, n]));
  const layers: LayerMapping[] = [];
  const weights: WeightResult[] = [];
  const replaced = new Map<string, string>();
  const recipe = plan.recipe;

  // The replacement of one node, top-level or inside a subgraph; quantized weights always live in
  // the main graph, which subgraphs can read as outer-scope values.
  const rewrite = (proto: onnx.NodeProto): onnx.NodeProto => {
    const node = byProto.get(proto)!;
    const spec = byNode.get(node.name);
    if (!spec) return withRewrittenSubgraphs(proto, rewrite);
    const t = view.constantTensor(spec.weight, node)!;
    if (!node.scope) layers.push(nodeLayer(node, recipe.weightType));
    if (spec.bits === 4) {
      const linear = linearWeight(view, node) as LinearWeight;
      const { k, n } = linear;
      const data = weightAsKN(tensorToFloat32(t), linear);
      const q = chosen?.nbits.get(node.name) ?? quantizeMatMulNBits(data, k, n, recipe.blockSize, recipe.weightSymmetric);
      const bName = b.initializer(`${spec.weight}_nbits`, (name) => makeTensor(name, DataType.UINT8, [n, q.blocks, recipe.blockSize / 2], q.packed));
      const sName = b.initializer(`${spec.weight}_scales`, (name) => floatTensor(name, [n * q.blocks], q.scales));
      const inputs = [node.inputs[0], bName, sName];
      if (q.zeroPoints) inputs.push(b.initializer(`${spec.weight}_zero_points`, (name) => makeTensor(name, DataType.UINT8, [q.zeroPoints!.length], q.zeroPoints!)));
      if (linear.bias) {
        // MatMulNBits' bias is input 5 (g_idx, input 4, stays empty).
        while (inputs.length < 5) inputs.push('');
        inputs.push(biasVector(b, view, node, linear));
      }
      weights.push({ name: spec.weight, node: node.name, op: node.op, type: recipe.weightType, granularity: `per-block (${recipe.blockSize})`, sqnr: sqnrOf(data, q.dequantized) });
      return b.node('MatMulNBits', inputs, [node.outputs[0]], [
        intAttr('K', k), intAttr('N', n), intAttr('bits', 4), intAttr('block_size', recipe.blockSize),
      ], MS_DOMAIN);
    }
    const key = node.scope ? `${node.name}:${spec.weight}` : spec.weight;
    let dq = replaced.get(key);
    if (!dq) {
      const out = quantizeWeightInto(b, t, plan.weights.get(key)!, undefined, node.scope ? undefined : chosen?.levels.get(spec.weight));
      dq = out.name;
      replaced.set(key, dq);
      weights.push(out.result);
    }
    const clone = cloneNode(proto);
    clone.input[1] = dq;
    return clone;
  };
  const body = view.nodes.map((n) => rewrite(n.proto));
  return { model: b.finish(view.model, [...b.prelude, ...body], view.model.graph!.output), layers, weights, folded: [] };
}

/** A copy of a control-flow node whose subgraphs' nodes went through `rewrite`; other nodes as they are. */
function withRewrittenSubgraphs(proto: onnx.NodeProto, rewrite: (p: onnx.NodeProto) => onnx.NodeProto): onnx.NodeProto {
  if (!proto.attribute.some((a) => a.g || a.graphs.length)) return proto;
  const graph = (g: onnx.GraphProto) => onnx.GraphProto.create({ ...g, node: g.node.map(rewrite) });
  return onnx.NodeProto.create({
    ...proto,
    attribute: proto.attribute.map((a) => (a.g || a.graphs.length
      ? onnx.AttributeProto.create({ ...a, ...(a.g ? { g: graph(a.g) } : {}), graphs: a.graphs.map(graph) })
      : a)),
  });
}
