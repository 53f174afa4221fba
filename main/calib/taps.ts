// The calibration model: the float model plus, for every observed tensor, its batch minimum and
// maximum computed inside ONNX Runtime, and for histogram methods a strided sample of its values.
// Copying every activation out of ONNX Runtime costs far more than the inference itself (the
// PaddleOCR recognizer makes 200 MB of activations per text line); reductions and samples keep
// what crosses to JavaScript small, and the exact extremes still bound every histogram.
import { defaultOpset } from '../onnx/graph';
import { DataType, onnx } from '../onnx/proto';
import { int64Tensor, makeTensor } from '../onnx/tensor';

export interface TapRequest {
  tensor: string;
  /** Elements to step over between samples; 0 when the method needs only min and max. */
  stride: number;
}

export interface Tap {
  tensor: string;
  min: string;
  max: string;
  /** With sizes: the tensor's shape (int64 [rank]); its element count is the product. */
  shape?: string;
  /** The values the histogram sees: the tensor itself (stride 1) or a strided sample of it. */
  values?: string;
}

const INT64_MAX = 2n ** 63n - 1n;

function output(name: string, elemType: number): onnx.ValueInfoProto {
  return onnx.ValueInfoProto.create({ name, type: onnx.TypeProto.create({ tensorType: onnx.TypeProto.Tensor.create({ elemType }) }) });
}

function node(op: string, inputs: string[], outputs: string[], attrs: onnx.AttributeProto[] = []): onnx.NodeProto {
  return onnx.NodeProto.create({ opType: op, input: inputs, output: outputs, name: `${outputs[0]}_${op}`, attribute: attrs });
}

/** Strided samples need Slice with steps (opset 10); older models hand over whole tensors. */
export function canSample(model: onnx.ModelProto): boolean {
  return defaultOpset(model) >= 10;
}

export function tapModel(model: onnx.ModelProto, requests: TapRequest[], withSizes: boolean): { model: onnx.ModelProto; taps: Tap[] } {
  const graph = model.graph!;
  // Tap nodes go right after the node that makes their tensor: ONNX Runtime runs nodes close to
  // their order in the graph, and a reduction left for the end would keep every activation alive.
  const after = new Map<string, onnx.NodeProto[]>();
  const producerOf = new Map<string, onnx.NodeProto>();
  for (const n of graph.node) for (const o of n.output) producerOf.set(o, n);
  const leading: onnx.NodeProto[] = [];
  const place = (tensor: string, ...added: onnx.NodeProto[]): void => {
    const p = producerOf.get(tensor);
    if (!p) {
      leading.push(...added);
      return;
    }
    const list = after.get(p.name || p.output[0]) ?? [];
    list.push(...added);
    after.set(p.name || p.output[0], list);
  };
  const initializers = [...graph.initializer];
  const outputs = [...graph.output];
  const keepDims = onnx.AttributeProto.create({ name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 });
  const taps: Tap[] = [];
  let flatShape: string | undefined;
  requests.forEach((r, i) => {
    const base = `qs_tap_${i}`;
    const tap: Tap = { tensor: r.tensor, min: `${base}_min`, max: `${base}_max` };
    place(r.tensor, node('ReduceMin', [r.tensor], [tap.min], [keepDims]), node('ReduceMax', [r.tensor], [tap.max], [keepDims]));
    outputs.push(output(tap.min, DataType.FLOAT), output(tap.max, DataType.FLOAT));
    if (withSizes) {
      tap.shape = `${base}_shape`;
      place(r.tensor, node('Shape', [r.tensor], [tap.shape]));
      outputs.push(output(tap.shape, DataType.INT64));
    }
    if (r.stride === 1) {
      tap.values = r.tensor;
      if (!outputs.some((o) => o.name === r.tensor)) outputs.push(output(r.tensor, DataType.FLOAT));
    } else if (r.stride > 1) {
      if (!flatShape) {
        flatShape = 'qs_tap_flat_shape';
        initializers.push(int64Tensor(flatShape, [1], [-1]));
      }
      const flat = `${base}_flat`;
      const steps = `${base}_steps`;
      initializers.push(
        int64Tensor(`${base}_starts`, [1], [0]),
        makeTensor(`${base}_ends`, DataType.INT64, [1], BigInt64Array.of(INT64_MAX)),
        int64Tensor(`${base}_axes`, [1], [0]),
        int64Tensor(steps, [1], [r.stride]),
      );
      tap.values = `${base}_sample`;
      place(r.tensor, node('Reshape', [r.tensor, flatShape], [flat]), node('Slice', [flat, `${base}_starts`, `${base}_ends`, `${base}_axes`, steps], [tap.values]));
      outputs.push(output(tap.values, DataType.FLOAT));
    }
    taps.push(tap);
  });
  const nodes = [...leading, ...graph.node.flatMap((n) => [n, ...(after.get(n.name || n.output[0]) ?? [])])];
  return {
    model: onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...graph, node: nodes, initializer: initializers, output: outputs }) }),
    taps,
  };
}

/**
 * A prime step at least `ratio`: a prime above 5 shares no factor with the 2·3·5-smooth sizes of
 * image rows and channels, so the sample walks over every column and channel instead of aliasing.
 */
export function sampleStride(ratio: number): number {
  if (ratio <= 1) return 1;
  for (let p = Math.max(7, Math.ceil(ratio)); ; p++) {
    let prime = true;
    for (let d = 2; d * d <= p; d++) if (p % d === 0) { prime = false; break; }
    if (prime) return p;
  }
}
