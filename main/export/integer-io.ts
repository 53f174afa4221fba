// Full-integer targets (microcontrollers) take and give integers: the model's first QuantizeLinear
// and last DequantizeLinear move into the firmware, which quantizes its input and dequantizes the
// output with the scale and zero point recorded here.
import { DataType, onnx } from '../onnx/proto';
import { tensorToFloat32, tensorToInts } from '../onnx/tensor';

export interface IoQuantization {
  name: string;
  /** ONNX element type name of the integer tensor the firmware exchanges. */
  type: 'int8' | 'uint8' | 'int16' | 'uint16';
  shape: Array<number | string>;
  scale: number;
  zeroPoint: number;
}

export interface FirmwareIo {
  /** real value = (integer - zeroPoint) * scale */
  formula: string;
  inputs: IoQuantization[];
  outputs: IoQuantization[];
}

export class IntegerIoError extends Error {}

const TYPE_NAMES: Record<number, IoQuantization['type']> = {
  [DataType.INT8]: 'int8', [DataType.UINT8]: 'uint8', [DataType.INT16]: 'int16', [DataType.UINT16]: 'uint16',
};

function shapeOf(vi: onnx.IValueInfoProto): Array<number | string> {
  return (vi.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue ?? 0)));
}

function retype(vi: onnx.IValueInfoProto, elemType: number): onnx.ValueInfoProto {
  return onnx.ValueInfoProto.create({
    ...vi,
    type: onnx.TypeProto.create({ tensorType: onnx.TypeProto.Tensor.create({ ...vi.type!.tensorType!, elemType }) }),
  });
}

/**
 * Rewrites a QDQ model (float I/O) into its integer-I/O form. Every graph input must go straight
 * into a QuantizeLinear and every graph output come straight out of a DequantizeLinear; anything
 * else cannot be exchanged as integers and is refused with the tensor's name.
 */
export function toIntegerIO(model: onnx.ModelProto): { model: onnx.ModelProto; io: FirmwareIo } {
  const graph = model.graph!;
  const inits = new Map(graph.initializer.map((t) => [t.name, t as onnx.TensorProto]));
  const params = (name: string, qdq: onnx.NodeProto): { scale: number; zeroPoint: number; elemType: number } => {
    const s = inits.get(qdq.input[1]);
    const z = inits.get(qdq.input[2]);
    if (!s || !z) throw new IntegerIoError(`tensor ${name}: its scale or zero point is not a constant`);
    return { scale: tensorToFloat32(s)[0], zeroPoint: tensorToInts(z)[0], elemType: z.dataType };
  };
  let nodes = [...graph.node] as onnx.NodeProto[];
  const rename = new Map<string, string>();
  const inputs: IoQuantization[] = [];
  const newInputs: onnx.ValueInfoProto[] = [];
  for (const vi of graph.input as onnx.ValueInfoProto[]) {
    if (inits.has(vi.name)) {
      newInputs.push(vi);
      continue;
    }
    const q = nodes.find((n) => n.opType === 'QuantizeLinear' && n.input[0] === vi.name);
    if (!q) throw new IntegerIoError(`input ${vi.name} is not quantized, so it cannot be fed as integers; a full-integer target needs its first op quantized`);
    const p = params(vi.name, q);
    // Other readers of the float input now read its dequantized form (the QuantizeLinear's DequantizeLinear).
    const dq = nodes.find((n) => n.opType === 'DequantizeLinear' && n.input[0] === q.output[0]);
    nodes = nodes.filter((n) => n !== q).map((n) => (n.input.includes(vi.name) && dq ? onnx.NodeProto.create({ ...n, input: n.input.map((x) => (x === vi.name ? dq.output[0] : x)) }) : n));
    rename.set(q.output[0], vi.name);
    newInputs.push(retype(vi, p.elemType));
    inputs.push({ name: vi.name, type: TYPE_NAMES[p.elemType], shape: shapeOf(vi), scale: p.scale, zeroPoint: p.zeroPoint });
  }
  const outputs: IoQuantization[] = [];
  const newOutputs: onnx.ValueInfoProto[] = [];
  for (const vi of graph.output as onnx.ValueInfoProto[]) {
    const dq = nodes.find((n) => n.opType === 'DequantizeLinear' && n.output[0] === vi.name);
    if (!dq) throw new IntegerIoError(`output ${vi.name} is not quantized, so it cannot be read as integers; a full-integer target needs its last op quantized`);
    const p = params(vi.name, dq);
    const integer = dq.input[0];
    // Readers inside the graph keep a dequantized copy under a new name; the graph output becomes the integer tensor.
    const readers = new Set(nodes.filter((n) => n !== dq && n.input.includes(vi.name)));
    const inner = `${vi.name}_dequantized`;
    nodes = nodes.flatMap((n) => {
      if (n === dq) return readers.size ? [onnx.NodeProto.create({ ...n, output: [inner] })] : [];
      if (readers.has(n)) return [onnx.NodeProto.create({ ...n, input: n.input.map((x) => (x === vi.name ? inner : x)) })];
      return [n];
    });
    rename.set(integer, vi.name);
    newOutputs.push(retype(vi, p.elemType));
    outputs.push({ name: vi.name, type: TYPE_NAMES[p.elemType], shape: shapeOf(vi), scale: p.scale, zeroPoint: p.zeroPoint });
  }
  nodes = nodes.map((n) => onnx.NodeProto.create({ ...n, input: n.input.map((x) => rename.get(x) ?? x), output: n.output.map((x) => rename.get(x) ?? x) }));
  const renamed = new Set([...rename.keys(), ...rename.values()]);
  const out = onnx.ModelProto.create({
    ...model,
    graph: onnx.GraphProto.create({
      ...graph,
      node: nodes,
      input: newInputs,
      output: newOutputs,
      valueInfo: graph.valueInfo.filter((v) => !renamed.has(v.name)),
    }),
  });
  return { model: out, io: { formula: 'real = (integer - zeroPoint) * scale', inputs, outputs } };
}
