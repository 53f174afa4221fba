// The calibration model: the float model plus, for every observed tensor, its batch minimum and
// maximum computed inside ONNX Runtime, and for histogram methods a strided sample of its values.
// Copying every activation out of ONNX Runtime costs far more than the inference itself (the
// PaddleOCR recognizer makes 200 MB of activations per text line); reductions and samples keep
// what crosses to JavaScript small, and the exact extremes still bound every histogram.
import { makeNode, placeAfterProducers, REDUCE_ALL, typedValueInfo } from '../onnx/edit';
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

/** Strided samples need Slice with steps (opset 10); older models hand over whole tensors. */
export function canSample(model: onnx.ModelProto): boolean {
  return defaultOpset(model) >= 10;
}

export function tapModel(model: onnx.ModelProto, requests: TapRequest[], withSizes: boolean): { model: onnx.ModelProto; taps: Tap[] } {
  const graph = model.graph!;
  // Tap nodes go right after the node that makes their tensor, so that the tensor can be freed.
  const additions: Array<{ tensor: string; nodes: onnx.NodeProto[] }> = [];
  const initializers = [...graph.initializer];
  const outputs = [...graph.output];
  const taps: Tap[] = [];
  let flatShape: string | undefined;
  requests.forEach((r, i) => {
    const base = `qs_tap_${i}`;
    const tap: Tap = { tensor: r.tensor, min: `${base}_min`, max: `${base}_max` };
    additions.push({ tensor: r.tensor, nodes: [makeNode('ReduceMin', [r.tensor], [tap.min], REDUCE_ALL), makeNode('ReduceMax', [r.tensor], [tap.max], REDUCE_ALL)] });
    outputs.push(typedValueInfo(tap.min, DataType.FLOAT), typedValueInfo(tap.max, DataType.FLOAT));
    if (withSizes) {
      tap.shape = `${base}_shape`;
      additions.push({ tensor: r.tensor, nodes: [makeNode('Shape', [r.tensor], [tap.shape])] });
      outputs.push(typedValueInfo(tap.shape, DataType.INT64));
    }
    if (r.stride === 1) {
      tap.values = r.tensor;
      if (!outputs.some((o) => o.name === r.tensor)) outputs.push(typedValueInfo(r.tensor, DataType.FLOAT));
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
      additions.push({ tensor: r.tensor, nodes: [makeNode('Reshape', [r.tensor, flatShape], [flat]), makeNode('Slice', [flat, `${base}_starts`, `${base}_ends`, `${base}_axes`, steps], [tap.values])] });
      outputs.push(typedValueInfo(tap.values, DataType.FLOAT));
    }
    taps.push(tap);
  });
  const nodes = placeAfterProducers(graph.node, additions);
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
