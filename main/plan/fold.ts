// Weights that exporters hide behind nodes: a Linear's weight shared through Identity (PyTorch
// deduplicates initializers that way), a tied output head read through Transpose, fp16 weights
// behind Cast, int8 weights behind DequantizeLinear. A node whose inputs are all constants and
// whose op only moves, converts or dequantizes values is computed here, once and exactly, and its
// output becomes an initializer: every quantizer then sees the weight as a constant.
import type { FoldedWeight } from '../../shared/report';
import { attr, attrInt, attrInts } from '../onnx/graph';
import { DataType, onnx } from '../onnx/proto';
import { floatTensor, tensorDims, tensorToFloat32, tensorToInts } from '../onnx/tensor';


const FOLDABLE = new Set(['Identity', 'Transpose', 'Reshape', 'Cast', 'DequantizeLinear', 'Squeeze', 'Unsqueeze', 'Flatten']);

/** A constant tensor's dims and values as float32 (exact for every type these ops produce float from). */
interface Value {
  dims: number[];
  data: Float32Array;
  dataType: number;
  proto: onnx.TensorProto;
}

function strides(dims: readonly number[]): number[] {
  const out = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) out[i] = out[i + 1] * dims[i + 1];
  return out;
}

function transpose(data: Float32Array, dims: number[], perm: number[]): { dims: number[]; data: Float32Array } {
  const outDims = perm.map((p) => dims[p]);
  const inStrides = strides(dims);
  const stepOf = perm.map((p) => inStrides[p]);
  const out = new Float32Array(data.length);
  const index = new Array<number>(outDims.length).fill(0);
  let src = 0;
  for (let k = 0; k < out.length; k++) {
    out[k] = data[src];
    for (let d = outDims.length - 1; d >= 0; d--) {
      index[d]++;
      src += stepOf[d];
      if (index[d] < outDims[d]) break;
      src -= stepOf[d] * outDims[d];
      index[d] = 0;
    }
  }
  return { dims: outDims, data: out };
}

function reshapeDims(dims: readonly number[], shape: readonly number[], allowZero: boolean): number[] | undefined {
  const total = dims.reduce((a, b) => a * b, 1);
  const out = shape.map((d, i) => (d === 0 && !allowZero ? dims[i] : d));
  const known = out.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const unknown = out.filter((d) => d === -1).length;
  if (unknown > 1 || out.some((d) => d === undefined || d < -1)) return undefined;
  if (unknown === 1) {
    if (known === 0 || total % known !== 0) return undefined;
    return out.map((d) => (d === -1 ? total / known : d));
  }
  return known === total ? out : undefined;
}

function axesOf(node: onnx.NodeProto, inputs: Array<Value | undefined>, rank: number): number[] | undefined {
  const axes = inputs[1] ? Array.from(inputs[1].data) : attrInts(node, 'axes');
  return axes?.map((a) => (a < 0 ? a + rank : a));
}

/** DequantizeLinear of a constant: per tensor, per axis, or blocked (opset 21), as the op computes it in float32. */
function dequantize(node: onnx.NodeProto, x: Value, scale: Value, zero: Value | undefined): Float32Array | undefined {
  if (scale.dataType !== DataType.FLOAT) return undefined;
  const rank = x.dims.length;
  const axisAttr = attrInt(node, 'axis', 1);
  const axis = axisAttr < 0 ? axisAttr + rank : axisAttr;
  const blockSize = attrInt(node, 'block_size', 0);
  const inner = strides(x.dims)[axis] ?? 1;
  const groupOf = (i: number): number => {
    if (scale.data.length === 1) return 0;
    const along = Math.floor(i / inner) % x.dims[axis];
    if (!blockSize) return along;
    const outer = Math.floor(i / (inner * x.dims[axis]));
    const blocks = scale.dims[axis];
    return (outer * blocks + Math.floor(along / blockSize)) * inner + (i % inner);
  };
  const out = new Float32Array(x.data.length);
  // The difference of two integers is exact, and the product of two float32 values rounds once in float64 as in float32.
  for (let i = 0; i < out.length; i++) {
    const g = groupOf(i);
    out[i] = Math.fround((x.data[i] - (zero ? zero.data[g] : 0)) * scale.data[g]);
  }
  return out;
}

/** Types read as numbers here; the rest (bfloat16, float8, int4, strings) leave their nodes as they are. */
const READABLE = new Set([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.INT8, DataType.UINT8, DataType.INT16, DataType.UINT16, DataType.INT32, DataType.INT64]);

/** Types whose every value float32 holds exactly (float64 and int32 do not: they are read only to be cast). */
const EXACT_IN_FLOAT = [DataType.FLOAT, DataType.FLOAT16, DataType.INT8, DataType.UINT8, DataType.INT16, DataType.UINT16];

/** A node's output: the input's data under new dims, or new float32 values. */
interface Computed {
  dims: number[];
  data?: Float32Array;
}

function compute(node: onnx.NodeProto, inputs: Array<Value | undefined>): Computed | undefined {
  const x = inputs[0];
  if (!x) return undefined;
  switch (node.opType) {
    case 'Identity': return { dims: x.dims };
    case 'Transpose': {
      if (x.dataType !== DataType.FLOAT) return undefined;
      const perm = attrInts(node, 'perm') ?? x.dims.map((_, i) => x.dims.length - 1 - i);
      return transpose(x.data, x.dims, perm);
    }
    case 'Reshape': {
      const dims = inputs[1] ? reshapeDims(x.dims, tensorToInts(inputs[1].proto), attrInt(node, 'allowzero', 0) === 1) : undefined;
      return dims && { dims };
    }
    case 'Flatten': {
      const a = attrInt(node, 'axis', 1);
      const axis = a < 0 ? a + x.dims.length : a;
      const lead = x.dims.slice(0, axis).reduce((p, d) => p * d, 1);
      return { dims: [lead, x.data.length / Math.max(1, lead)] };
    }
    case 'Squeeze': {
      const axes = axesOf(node, inputs, x.dims.length);
      return { dims: x.dims.filter((d, i) => (axes ? !axes.includes(i) : d !== 1)) };
    }
    case 'Unsqueeze': {
      const rank = x.dims.length + (inputs[1]?.data.length ?? attrInts(node, 'axes')?.length ?? 0);
      const axes = axesOf(node, inputs, rank);
      if (!axes) return undefined;
      const dims: number[] = [];
      for (let i = 0, k = 0; i < rank; i++) dims.push(axes.includes(i) ? 1 : x.dims[k++]);
      return { dims };
    }
    case 'Cast':
      // To float32 only: the values were read as float32 already, a float64 rounded to nearest as Cast rounds it.
      if (attrInt(node, 'to', 0) !== DataType.FLOAT || ![...EXACT_IN_FLOAT, DataType.DOUBLE].includes(x.dataType)) return undefined;
      return { dims: x.dims, data: x.data };
    case 'DequantizeLinear': {
      if (!inputs[1] || !EXACT_IN_FLOAT.includes(x.dataType) || x.dataType === DataType.FLOAT || x.dataType === DataType.FLOAT16) return undefined;
      const data = dequantize(node, x, inputs[1], inputs[2]);
      return data && { dims: x.dims, data };
    }
    default: return undefined;
  }
}

/** The nodes of one graph with constant chains folded into `initializers`; `outer` holds the enclosing graphs' constants. */
function foldGraph(graph: onnx.GraphProto, outer: ReadonlyMap<string, onnx.TensorProto>, folded: FoldedWeight[]): onnx.GraphProto {
  const constants = new Map(outer);
  const own = new Map<string, onnx.TensorProto>();
  for (const t of graph.initializer) {
    constants.set(t.name, t as onnx.TensorProto);
    own.set(t.name, t as onnx.TensorProto);
  }
  const outputs = new Set(graph.output.map((o) => o.name));
  const history = new Map<string, { ops: string[]; from: string[] }>();
  const values = new Map<string, Value>();
  const valueOf = (name: string): Value | undefined => {
    const cached = values.get(name);
    if (cached) return cached;
    const t = constants.get(name);
    if (!t || !READABLE.has(t.dataType)) return undefined;
    const v = { dims: tensorDims(t), data: tensorToFloat32(t), dataType: t.dataType, proto: t };
    values.set(name, v);
    return v;
  };
  const nodes: onnx.NodeProto[] = [];
  for (const node of graph.node) {
    const lifted = node.opType === 'Constant' && !node.domain ? attr(node, 'value')?.t : undefined;
    if (lifted && !outputs.has(node.output[0])) {
      const t = onnx.TensorProto.create({ ...lifted, name: node.output[0] });
      constants.set(t.name, t);
      own.set(t.name, t);
      continue;
    }
    const candidate = FOLDABLE.has(node.opType) && !node.domain && node.output.length === 1 && !outputs.has(node.output[0])
      && node.input.length > 0 && node.input.every((i) => !i || constants.has(i));
    const result = candidate ? compute(node, node.input.map((i) => (i ? valueOf(i) : undefined))) : undefined;
    if (!result) {
      nodes.push(withFoldedSubgraphs(node, constants, folded));
      continue;
    }
    const source = node.input[0];
    const x = valueOf(source)!;
    const name = node.output[0];
    const t = result.data ? floatTensor(name, result.dims, result.data) : onnx.TensorProto.create({ ...x.proto, name, dims: result.dims });
    constants.set(name, t);
    own.set(name, t);
    const before = history.get(source) ?? { ops: [], from: [source] };
    history.set(name, { ops: [...before.ops, node.opType], from: before.from });
  }
  // Only the ends of chains are weights; the steps between them are dropped when nothing else reads them.
  const read = new Set<string>([...graph.output.map((o) => o.name)]);
  const visit = (ns: readonly onnx.NodeProto[]) => {
    for (const n of ns) {
      for (const i of n.input) read.add(i);
      for (const a of n.attribute) for (const g of [a.g, ...a.graphs]) if (g) visit(g.node);
    }
  };
  visit(nodes);
  for (const [name, h] of history) if (read.has(name) && own.get(name)!.dataType === DataType.FLOAT) folded.push({ tensor: name, ...h });
  return onnx.GraphProto.create({ ...graph, node: nodes, initializer: [...own.values()] });
}

function withFoldedSubgraphs(node: onnx.NodeProto, constants: ReadonlyMap<string, onnx.TensorProto>, folded: FoldedWeight[]): onnx.NodeProto {
  if (!node.attribute.some((a) => a.g || a.graphs.length)) return node;
  const fold = (g: onnx.GraphProto) => foldGraph(g, constants, folded);
  return onnx.NodeProto.create({
    ...node,
    attribute: node.attribute.map((a) => (a.g || a.graphs.length
      ? onnx.AttributeProto.create({ ...a, ...(a.g ? { g: fold(a.g as onnx.GraphProto) } : {}), graphs: a.graphs.map((g) => fold(g as onnx.GraphProto)) })
      : a)),
  });
}

/**
 * The model with every constant chain computed: Constant nodes lifted to initializers, and the
 * outputs of Identity, Transpose, Reshape, Flatten, Squeeze, Unsqueeze, Cast (to float) and
 * DequantizeLinear nodes whose inputs are all constants made initializers, in the main graph and
 * inside If/Loop bodies. Numerically the same model: each op is computed as ONNX defines it.
 * `nodes` must be in topological order (a chain's steps before their readers).
 */
export function foldConstantChains(model: onnx.ModelProto, nodes: readonly onnx.NodeProto[]): { model: onnx.ModelProto; folded: FoldedWeight[]; constantsLifted: number } {
  const graph = model.graph!;
  const folded: FoldedWeight[] = [];
  const out = foldGraph(onnx.GraphProto.create({ ...graph, node: [...nodes] }), new Map(), folded);
  const constantsLifted = nodes.filter((n) => n.opType === 'Constant' && !n.domain).length - out.node.filter((n) => n.opType === 'Constant' && !n.domain).length;
  return { model: onnx.ModelProto.create({ ...model, graph: out }), folded, constantsLifted };
}
