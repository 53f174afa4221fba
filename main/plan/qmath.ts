// Quantization arithmetic, exactly as ONNX defines QuantizeLinear/DequantizeLinear.
import { isSigned, quantTypeBits, type QuantType } from '../../shared/recipe';
import { roundHalfEven } from '../base/round';

export interface QParams {
  scale: number;
  zeroPoint: number;
}

export function qRange(type: QuantType, narrow = false): [number, number] {
  const bits = quantTypeBits(type);
  if (isSigned(type)) return [-(2 ** (bits - 1)) + (narrow ? 1 : 0), 2 ** (bits - 1) - 1];
  return [0, 2 ** bits - 1];
}

/**
 * Scale and zero point for a range. The range is widened to include 0 so that 0 is exactly
 * representable (padding, ReLU zeros). Symmetric: zero point 0 for signed types, the midpoint
 * for unsigned ones.
 */
export function computeQParams(min: number, max: number, type: QuantType, symmetric: boolean, range = qRange(type)): QParams {
  const [qmin, qmax] = range;
  let rmin = Math.min(min, 0);
  let rmax = Math.max(max, 0);
  if (symmetric) {
    const absMax = Math.max(Math.abs(rmin), Math.abs(rmax));
    rmin = -absMax;
    rmax = absMax;
  }
  if (!(rmax > rmin)) return { scale: 1, zeroPoint: symmetric && !isSigned(type) ? Math.ceil((qmin + qmax) / 2) : symmetric ? 0 : qmin };
  if (symmetric) {
    const scale = Math.fround(rmax / ((qmax - qmin) / 2));
    return { scale: scale > 0 ? scale : 1, zeroPoint: isSigned(type) ? 0 : Math.ceil((qmin + qmax) / 2) };
  }
  const scale = Math.fround((rmax - rmin) / (qmax - qmin));
  const zeroPoint = Math.min(qmax, Math.max(qmin, roundHalfEven(qmin - rmin / scale)));
  return { scale: scale > 0 ? scale : 1, zeroPoint };
}

export function quantizeValue(x: number, scale: number, zeroPoint: number, qmin: number, qmax: number): number {
  const q = roundHalfEven(Math.fround(x / scale)) + zeroPoint;
  return q < qmin ? qmin : q > qmax ? qmax : Number.isNaN(q) ? zeroPoint : q;
}

/** Quantize-dequantize, the value a QDQ pair hands to the next op. */
export function fakeQuantize(x: number, p: QParams, qmin: number, qmax: number): number {
  return Math.fround((quantizeValue(x, p.scale, p.zeroPoint, qmin, qmax) - p.zeroPoint) * p.scale);
}

export function storageArray(type: QuantType, n: number): Int8Array | Uint8Array | Int16Array | Uint16Array {
  switch (type) {
    case 'int8': case 'int4': return new Int8Array(n);
    case 'uint8': case 'uint4': return new Uint8Array(n);
    case 'int16': return new Int16Array(n);
    case 'uint16': return new Uint16Array(n);
  }
}

export interface QuantizedWeight {
  values: Int8Array | Uint8Array | Int16Array | Uint16Array;
  scales: Float32Array;
  zeroPoints: Int8Array | Uint8Array | Int16Array | Uint16Array;
  /** Per-channel axis; undefined for per-tensor. */
  axis?: number;
  /** Quantize-dequantize of the weight, for weight SQNR. */
  dequantized: Float32Array;
}

/** Which scale each element of a weight uses: one per tensor, per channel, or per block. */
export interface WeightGrouping {
  count: number;
  of(index: number): number;
  /**
   * The same mapping as runs of consecutive elements: [start, end) use groups group, group + step,
   * … (step 0: one group). Loops over every element of a weight go run by run: a division per
   * element to find its group took most of a conversion's time.
   */
  runs(length: number, run: (start: number, end: number, group: number, step: 0 | 1) => void): void;
}

export function channelGrouping(dims: readonly number[], axis: number | undefined): WeightGrouping {
  if (axis === undefined) return { count: 1, of: () => 0, runs: (length, run) => run(0, length, 0, 0) };
  const channels = dims[axis];
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  return {
    count: channels,
    of: (i) => Math.floor(i / inner) % channels,
    // The channel axis last (a MatMul's weight): a run is a row, each element its own channel.
    runs: inner === 1
      ? (length, run) => { for (let s = 0; s < length; s += channels) run(s, Math.min(length, s + channels), 0, 1); }
      : (length, run) => { for (let s = 0, r = 0; s < length; s += inner, r++) run(s, Math.min(length, s + inner), r % channels, 0); },
  };
}

/**
 * Blocked DequantizeLinear (opset 21): the scale has the weight's shape with dimension `axis`
 * cut into ceil(D / size) blocks, so element (o, d, i) uses scale (o, floor(d / size), i).
 */
export function blockGrouping(dims: readonly number[], axis: number, size: number): WeightGrouping & { dims: number[] } {
  const d = dims[axis];
  const blocks = Math.ceil(d / size);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const scaleDims = dims.map((x, i) => (i === axis ? blocks : x));
  const groupOf = (rest: number) => ((Math.floor(rest / d) * blocks) + Math.floor((rest % d) / size)) * inner;
  return {
    count: outer * blocks * inner,
    dims: scaleDims,
    of: (index) => groupOf(Math.floor(index / inner)) + (index % inner),
    runs: (length, run) => { for (let s = 0, rest = 0; s < length; s += inner, rest++) run(s, Math.min(length, s + inner), groupOf(rest), 1); },
  };
}

/** One scale and zero point per group of elements, from the group's own min and max: weights need no calibration. */
export function groupParams(data: Float32Array, type: QuantType, symmetric: boolean, grouping: WeightGrouping,
  range = qRange(type)): { scales: Float32Array; zeroPoints: Int8Array | Uint8Array | Int16Array | Uint16Array } {
  const groups = grouping.count;
  const mins = new Float64Array(groups).fill(Infinity);
  const maxs = new Float64Array(groups).fill(-Infinity);
  grouping.runs(data.length, (start, end, group, step) => {
    for (let i = start, g = group; i < end; i++, g += step) {
      const v = data[i];
      if (v < mins[g]) mins[g] = v;
      if (v > maxs[g]) maxs[g] = v;
    }
  });
  const scales = new Float32Array(groups);
  const zeroPoints = storageArray(type, groups);
  for (let g = 0; g < groups; g++) {
    const p = computeQParams(mins[g] === Infinity ? 0 : mins[g], maxs[g] === -Infinity ? 0 : maxs[g], type, symmetric, range);
    scales[g] = p.scale;
    zeroPoints[g] = p.zeroPoint;
  }
  return { scales, zeroPoints };
}

/** The integer grid of a weight: its type, symmetry, scale grouping and integer range. */
export interface WeightGrid {
  type: QuantType;
  symmetric: boolean;
  /** Per-channel axis; undefined for per-tensor. */
  axis?: number;
  /** Block-wise scales (blocked DequantizeLinear, opset 21): blocks of `size` along `axis`, one scale per block and output channel. */
  block?: { axis: number; size: number };
  /** Integer range of the stored weight (narrowed for XNNPACK, 7-bit with reduceRange). */
  range: [number, number];
}

/**
 * A rounding chosen per element instead of to nearest (AdaRound): `up[i]` 1 takes the grid point
 * above x/s, 0 the one below. It was chosen on one grid and applies only on that one.
 */
export interface ChosenRounding extends WeightGrid {
  up: Uint8Array;
}

/** Chosen roundings by weight tensor name. */
export type WeightRounding = ReadonlyMap<string, ChosenRounding>;

/** Whether a rounding chosen on `chosen`'s grid applies to a weight quantized as `spec`. */
export function sameGrid(chosen: WeightGrid, spec: WeightGrid): boolean {
  return chosen.type === spec.type && chosen.symmetric === spec.symmetric && chosen.axis === spec.axis
    && chosen.block?.axis === spec.block?.axis && chosen.block?.size === spec.block?.size
    && chosen.range[0] === spec.range[0] && chosen.range[1] === spec.range[1];
}

/** The scale grouping of a weight quantized per tensor, per channel along `axis`, or per block. */
export function weightGrouping(dims: readonly number[], spec: { axis?: number; block?: { axis: number; size: number } }): WeightGrouping {
  return spec.block ? blockGrouping(dims, spec.block.axis, spec.block.size) : channelGrouping(dims, spec.axis);
}

/**
 * Quantizes a constant tensor with one scale per group of elements (see channelGrouping and
 * blockGrouping): to nearest, or with the rounding `up` chose.
 */
export function quantizeGrouped(data: Float32Array, type: QuantType, symmetric: boolean, grouping: WeightGrouping,
  range = qRange(type), up?: Uint8Array, levels?: ArrayLike<number>): Omit<QuantizedWeight, 'axis'> {
  const [qmin, qmax] = range;
  const { scales, zeroPoints } = groupParams(data, type, symmetric, grouping, range);
  const values = storageArray(type, data.length);
  const dequantized = new Float32Array(data.length);
  grouping.runs(data.length, (start, end, group, step) => {
    for (let i = start, g = group; i < end; i++, g += step) {
      const scale = scales[g];
      const zeroPoint = zeroPoints[g];
      const q = levels ? levels[i] : up ? Math.min(qmax, Math.max(qmin, Math.floor(Math.fround(data[i] / scale)) + up[i] + zeroPoint)) : quantizeValue(data[i], scale, zeroPoint, qmin, qmax);
      values[i] = q;
      dequantized[i] = (q - zeroPoint) * scale;
    }
  });
  return { values, scales, zeroPoints, dequantized };
}

/**
 * Quantizes a weight on its grid, exactly as convert writes it: with the levels chosen for it on
 * this grid (GPTQ), else with the rounding chosen for it (AdaRound) where that was chosen on this
 * grid, to nearest otherwise.
 */
export function quantizeOnGrid(data: Float32Array, dims: readonly number[], grid: WeightGrid, chosen?: ChosenRounding, levels?: ArrayLike<number>): Omit<QuantizedWeight, 'axis'> {
  return quantizeGrouped(data, grid.type, grid.symmetric, weightGrouping(dims, grid), grid.range, chosen && sameGrid(chosen, grid) ? chosen.up : undefined, levels);
}

/** Quantizes a constant tensor per tensor or per channel along `axis`. */
export function quantizeWeight(data: Float32Array, dims: readonly number[], type: QuantType, symmetric: boolean,
  axis: number | undefined, range = qRange(type), up?: Uint8Array): QuantizedWeight {
  return { ...quantizeGrouped(data, type, symmetric, channelGrouping(dims, axis), range, up), axis };
}

/** Bias for a static Conv/Gemm: int32 with scale = input scale x weight scale (per channel), zero point 0. */
export function quantizeBias(bias: Float32Array, inputScale: number, weightScales: Float32Array): { values: Int32Array; scales: Float32Array; dequantized: Float32Array } {
  const values = new Int32Array(bias.length);
  const scales = new Float32Array(bias.length > 0 && weightScales.length === 1 ? 1 : bias.length);
  const dequantized = new Float32Array(bias.length);
  for (let i = 0; i < scales.length; i++) scales[i] = Math.fround(inputScale * weightScales[weightScales.length === 1 ? 0 : i]);
  for (let i = 0; i < bias.length; i++) {
    const s = scales[scales.length === 1 ? 0 : i];
    const q = quantizeValue(bias[i], s, 0, -(2 ** 31), 2 ** 31 - 1);
    values[i] = q;
    dequantized[i] = q * s;
  }
  return { values, scales, dequantized };
}

/** ONNX INT4/UINT4 storage: two values per byte, the first in the low nibble. */
export function packNibbles(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(Math.ceil(values.length / 2));
  for (let i = 0; i < values.length; i++) {
    const nibble = values[i] & 0x0f;
    out[i >> 1] |= i & 1 ? nibble << 4 : nibble;
  }
  return out;
}

export interface MatMulNBitsWeight {
  /** [N, blocks, blockSize / 2] */
  packed: Uint8Array;
  /** [N * blocks] */
  scales: Float32Array;
  /** [N * ceil(blocks / 2)], packed like the weights; undefined when symmetric (the kernel's default zero point is 8). */
  zeroPoints?: Uint8Array;
  blocks: number;
  dequantized: Float32Array;
}

/** The 4-bit levels of a MatMulNBits weight. */
export const NBITS_MAX = 15;

/**
 * Scale and zero point of one 4-bit block from its values' min and max (0 included), as ONNX
 * Runtime's quantizer sets them: symmetric maps the signed extreme to -8 so all 16 levels are used.
 */
export function nbitsBlockParams(min: number, max: number, symmetric: boolean): { scale: number; zeroPoint: number } {
  const lo = Math.min(0, min);
  const hi = Math.max(0, max);
  if (symmetric) return { scale: Math.fround((Math.abs(lo) > Math.abs(hi) ? lo : hi) / -8), zeroPoint: 8 };
  const scale = Math.fround((hi - lo) / NBITS_MAX);
  return { scale, zeroPoint: scale === 0 ? 8 : Math.min(NBITS_MAX, Math.max(0, roundHalfEven(-lo / scale))) };
}

/** The level a value takes in a 4-bit block, to nearest. */
export function nbitsLevel(v: number, scale: number, zeroPoint: number): number {
  const inv = scale === 0 ? 0 : 1 / scale;
  return Math.min(NBITS_MAX, Math.max(0, roundHalfEven(Math.fround(v * inv)) + zeroPoint));
}

/**
 * A MatMulNBits weight from its levels: `levels[n * k + r]` is row r of B's column n, `scales` and
 * `zeroPoints` one per column and block (n * blocks + block). Packs two levels a byte, low nibble
 * first, zero-padded past K with the zero point so padding dequantizes to 0.
 */
export function packMatMulNBits(levels: Uint8Array, scales: Float32Array, zeroPoints: Uint8Array, k: number, n: number, blockSize: number, symmetric: boolean): MatMulNBitsWeight {
  const blocks = Math.ceil(k / blockSize);
  const half = blockSize / 2;
  const packed = new Uint8Array(n * blocks * half);
  const dequantized = new Float32Array(k * n);
  for (let col = 0; col < n; col++) {
    for (let blk = 0; blk < blocks; blk++) {
      const idx = col * blocks + blk;
      const zp = zeroPoints[idx];
      const start = blk * blockSize;
      for (let j = 0; j < blockSize; j++) {
        const r = start + j;
        const q = r < k ? levels[col * k + r] : zp;
        packed[idx * half + (j >> 1)] |= j & 1 ? q << 4 : q;
        if (r < k) dequantized[r * n + col] = (q - zp) * scales[idx];
      }
    }
  }
  let packedZeroPoints: Uint8Array | undefined;
  if (!symmetric) {
    const perRow = Math.ceil(blocks / 2);
    packedZeroPoints = new Uint8Array(n * perRow);
    for (let col = 0; col < n; col++) {
      for (let blk = 0; blk < blocks; blk++) {
        packedZeroPoints[col * perRow + (blk >> 1)] |= blk & 1 ? zeroPoints[col * blocks + blk] << 4 : zeroPoints[col * blocks + blk];
      }
    }
  }
  return { packed, scales, zeroPoints: packedZeroPoints, blocks, dequantized };
}

/**
 * 4-bit block-wise quantization of a MatMul weight B[K, N] to nearest, in com.microsoft
 * MatMulNBits' layout: column n of B is cut into blocks of `blockSize` along K.
 */
export function quantizeMatMulNBits(b: Float32Array, k: number, n: number, blockSize: number, symmetric: boolean): MatMulNBitsWeight {
  const blocks = Math.ceil(k / blockSize);
  const levels = new Uint8Array(n * k);
  const scales = new Float32Array(n * blocks);
  const zeroPoints = new Uint8Array(n * blocks);
  for (let col = 0; col < n; col++) {
    for (let blk = 0; blk < blocks; blk++) {
      const start = blk * blockSize;
      const end = Math.min(k, start + blockSize);
      let min = 0;
      let max = 0;
      for (let r = start; r < end; r++) {
        const v = b[r * n + col];
        if (v < min) min = v;
        if (v > max) max = v;
      }
      const { scale, zeroPoint } = nbitsBlockParams(min, max, symmetric);
      const idx = col * blocks + blk;
      scales[idx] = scale;
      zeroPoints[idx] = zeroPoint;
      for (let r = start; r < end; r++) levels[col * k + r] = nbitsLevel(b[r * n + col], scale, zeroPoint);
    }
  }
  return packMatMulNBits(levels, scales, zeroPoints, k, n, blockSize, symmetric);
}
