// The values behind a weight-only or dynamic layer's panel: its float weight against the values
// the quantized model stores for it, dequantized, binned, and the scales they are stored with.
// Read from the two models' initializers: no samples, no session. The UI gets bins and figures.
import type { WeightDetail } from '../../shared/ipc';
import { attrInt, type GraphNode, type GraphView } from '../onnx/graph';
import { DataType, type onnx } from '../onnx/proto';
import { tensorDims, tensorToFloat32 } from '../onnx/tensor';
import { blockGrouping, channelGrouping, type WeightGrouping } from '../plan/qmath';
import { pairedHistogram } from './layer-values';

/** A stored weight decoded: its dequantized values in the float weight's layout, and the scale each uses. */
interface StoredWeight {
  dims: number[];
  dequantized: Float32Array;
  scales: Float32Array;
  /** Element by element only: the panel reads a weight once. */
  grouping: Pick<WeightGrouping, 'count' | 'of'>;
  blockSize?: number;
}

const BINS = 64;

/**
 * The weight of the layer whose output is `output`, as the quantized model stores it: a blocked or
 * per-axis DequantizeLinear in front of the op (weight-only int8), MatMulNBits (weight-only
 * 4-bit), DynamicQuantizeMatMul or ConvInteger (dynamic). Undefined where it finds none.
 */
export function weightValues(quant: GraphView, output: string, float: onnx.TensorProto, granularity: string): Omit<WeightDetail, 'name'> | undefined {
  const stored = storedWeight(quant, output);
  const floatDims = tensorDims(float);
  const aligned = stored && alignedTo(stored, floatDims);
  if (!aligned) return undefined;
  return { ...weightFigures(tensorToFloat32(float), aligned), granularity, ...(aligned.blockSize ? { blockSize: aligned.blockSize } : {}) };
}

function storedWeight(view: GraphView, output: string): StoredWeight | undefined {
  const node = view.producer.get(output);
  if (!node) return undefined;
  if (node.op === 'MatMulNBits') return matMulNBits(view, node);
  if (node.op === 'DynamicQuantizeMatMul') return decoded(view, node.inputs[1], node.inputs[2], node.inputs[3], 1, 0);
  const dq = node.inputs[1] ? view.producer.get(node.inputs[1]) : undefined;
  if (dq?.op === 'DequantizeLinear') {
    return decoded(view, dq.inputs[0], dq.inputs[1], dq.inputs[2], attrInt(dq.proto, 'axis', 1), attrInt(dq.proto, 'block_size', 0));
  }
  return convInteger(view, node);
}

/**
 * Dynamic Conv: the output is Mul(Cast(ConvInteger(x_q, W_q, x_zp, W_zp)), Mul(x_scale, W_scale)),
 * plus a bias; the weight's scale is the one initializer a Mul of that chain reads.
 */
function convInteger(view: GraphView, last: GraphNode): StoredWeight | undefined {
  const stack = [last];
  let conv: GraphNode | undefined;
  let scale: string | undefined;
  for (let seen = 0; stack.length && seen < 8; seen++) {
    const n = stack.pop()!;
    if (n.op === 'ConvInteger') {
      conv = n;
      continue;
    }
    if (n.op !== 'Add' && n.op !== 'Mul' && n.op !== 'Cast') continue;
    for (const input of n.inputs) {
      if (view.initializers.has(input)) {
        if (n.op === 'Mul') scale = input;
        continue;
      }
      const producer = view.producer.get(input);
      if (producer) stack.push(producer);
    }
  }
  return conv && scale ? decoded(view, conv.inputs[1], scale, conv.inputs[3], 0, 0) : undefined;
}

/** Integer values of a quantized initializer, 4-bit types unpacked (two a byte, low nibble first); undefined where it cannot read them. */
function integers(t: onnx.TensorProto): Float32Array | undefined {
  if (t.dataType !== DataType.INT4 && t.dataType !== DataType.UINT4) return tensorToFloat32(t);
  const n = tensorDims(t).reduce((a, b) => a * b, 1);
  if (!t.rawData || t.rawData.byteLength < Math.ceil(n / 2)) return undefined;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const nibble = (t.rawData[i >> 1] >> (i & 1 ? 4 : 0)) & 0x0f;
    out[i] = t.dataType === DataType.INT4 && nibble > 7 ? nibble - 16 : nibble;
  }
  return out;
}

/** (q − zero point) · scale, with one scale per tensor, per channel along `axis`, or per block of `blockSize` along it. */
function decoded(view: GraphView, values: string, scale: string, zeroPoint: string | undefined, axis: number, blockSize: number): StoredWeight | undefined {
  const q = view.initializers.get(values);
  const s = view.initializers.get(scale);
  if (!q || !s) return undefined;
  const z = zeroPoint ? view.initializers.get(zeroPoint) : undefined;
  const dims = tensorDims(q);
  const scales = tensorToFloat32(s);
  const zeros = z ? integers(z) : new Float32Array(1);
  const a = axis < 0 ? axis + dims.length : axis;
  const grouping = scales.length === 1 ? channelGrouping(dims, undefined) : blockSize > 0 ? blockGrouping(dims, a, blockSize) : channelGrouping(dims, a);
  const ints = integers(q);
  if (grouping.count !== scales.length || !ints || !zeros || (zeros.length !== 1 && zeros.length !== scales.length)) return undefined;
  const dequantized = new Float32Array(ints.length);
  for (let i = 0; i < ints.length; i++) {
    const g = grouping.of(i);
    dequantized[i] = (ints[i] - zeros[zeros.length === 1 ? 0 : g]) * scales[g];
  }
  return { dims, dequantized, scales, grouping, ...(blockSize > 0 ? { blockSize } : {}) };
}

/** com.microsoft MatMulNBits, 4-bit: B[K, N] stored as [N, blocks, blockSize / 2] bytes, a scale per column and block. */
function matMulNBits(view: GraphView, node: GraphNode): StoredWeight | undefined {
  const k = attrInt(node.proto, 'K', 0);
  const n = attrInt(node.proto, 'N', 0);
  const size = attrInt(node.proto, 'block_size', 0);
  const packed = view.initializers.get(node.inputs[1]);
  const s = view.initializers.get(node.inputs[2]);
  if (attrInt(node.proto, 'bits', 4) !== 4 || !packed || !s || !(k > 0 && n > 0 && size > 0)) return undefined;
  const z = node.inputs[3] ? view.initializers.get(node.inputs[3]) : undefined;
  if (z && z.dataType !== DataType.UINT8) return undefined;
  const blocks = Math.ceil(k / size);
  const bytes = packed.rawData;
  const scales = tensorToFloat32(s);
  if (bytes.byteLength !== n * blocks * (size / 2) || scales.length !== n * blocks) return undefined;
  const zeroPoints = z ? tensorToFloat32(z) : undefined;
  const grouping: StoredWeight['grouping'] = { count: n * blocks, of: (i) => (i % n) * blocks + Math.floor(Math.floor(i / n) / size) };
  const dequantized = new Float32Array(k * n);
  for (let r = 0; r < k; r++) {
    for (let col = 0; col < n; col++) {
      const blk = Math.floor(r / size);
      const j = r % size;
      const g = col * blocks + blk;
      const q = (bytes[g * (size / 2) + (j >> 1)] >> (j & 1 ? 4 : 0)) & 0x0f;
      // Zero points pack two blocks a byte like the weights; absent, the kernel's default is 8.
      const zp = zeroPoints ? (zeroPoints[col * Math.ceil(blocks / 2) + (blk >> 1)] >> (blk & 1 ? 4 : 0)) & 0x0f : 8;
      dequantized[r * n + col] = (q - zp) * scales[g];
    }
  }
  return { dims: [k, n], dequantized, scales, grouping, blockSize: size };
}

/** The stored weight in the float weight's layout: as it is, or transposed back (dynamic Gemm with transB stores B as [K, N]). */
function alignedTo(w: StoredWeight, dims: number[]): StoredWeight | undefined {
  const same = (a: number[], b: number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
  if (same(w.dims, dims)) return w;
  if (dims.length !== 2 || !same(w.dims, [dims[1], dims[0]])) return undefined;
  const [rows, cols] = dims;
  const at = (i: number) => (i % cols) * rows + Math.floor(i / cols);
  const dequantized = Float32Array.from({ length: rows * cols }, (_, i) => w.dequantized[at(i)]);
  return { ...w, dims, dequantized, grouping: { count: w.grouping.count, of: (i) => w.grouping.of(at(i)) } };
}

function weightFigures(float: Float32Array, w: StoredWeight): Pick<WeightDetail, 'histogram' | 'scales' | 'values' | 'clipped'> {
  let clipped = 0;
  for (let i = 0; i < float.length; i++) {
    // Rounding errs by half a step at most; a float32 margin keeps exact halves from counting.
    const step = Math.abs(w.scales[w.grouping.of(i)]);
    if (Math.abs(float[i] - w.dequantized[i]) > step * 0.5 * (1 + 1e-5) + 1e-30) clipped++;
  }
  const steps = Float32Array.from(w.scales, Math.abs).sort();
  const mid = steps.length >> 1;
  const median = steps.length % 2 ? steps[mid] : (steps[mid - 1] + steps[mid]) / 2;
  return {
    histogram: pairedHistogram([float], [w.dequantized], BINS),
    scales: { count: steps.length, min: steps[0], median, max: steps[steps.length - 1] },
    values: float.length,
    clipped,
  };
}
