import { elementCount } from '../base/feed';
import { DataType, onnx, toNumber } from './proto';

export type TypedArray =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array
  | BigInt64Array | BigUint64Array;

export function tensorDims(t: onnx.TensorProto): number[] {
  return t.dims.map(toNumber);
}

const byteWidth: Partial<Record<number, number>> = {
  [DataType.FLOAT]: 4, [DataType.DOUBLE]: 8, [DataType.INT8]: 1, [DataType.UINT8]: 1, [DataType.INT16]: 2,
  [DataType.UINT16]: 2, [DataType.INT32]: 4, [DataType.UINT32]: 4, [DataType.INT64]: 8, [DataType.UINT64]: 8,
  [DataType.FLOAT16]: 2, [DataType.BOOL]: 1,
};

/** Little-endian raw bytes as a typed view; copied only when the bytes are misaligned for the type. */
function rawView<T>(raw: Uint8Array, width: number, make: (buf: ArrayBufferLike, offset: number, length: number) => T): T {
  const length = raw.byteLength / width;
  if (raw.byteOffset % width === 0) return make(raw.buffer, raw.byteOffset, length);
  const copy = new Uint8Array(raw.byteLength);
  copy.set(raw);
  return make(copy.buffer, 0, length);
}

export function float16ToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/**
 * The values of a numeric tensor as float32, whatever its storage (raw_data or the typed fields).
 * Float tensors stored in raw_data are returned as a view of the model's buffer, not a copy:
 * callers must not write into the result.
 */
export function tensorToFloat32(t: onnx.TensorProto): Float32Array {
  const dt = t.dataType;
  const raw = t.rawData && t.rawData.byteLength > 0 ? t.rawData : null;
  const n = elementCount(tensorDims(t));
  if (raw) {
    const width = byteWidth[dt];
    if (width === undefined) throw new Error(`tensor ${t.name}: cannot read ${dt} as numbers`);
    if (raw.byteLength !== n * width) {
      throw new Error(`tensor ${t.name}: raw data has ${raw.byteLength} bytes, dims need ${n * width}`);
    }
    switch (dt) {
      case DataType.FLOAT: return rawView(raw, 4, (b, o, l) => new Float32Array(b, o, l));
      case DataType.DOUBLE: return Float32Array.from(rawView(raw, 8, (b, o, l) => new Float64Array(b, o, l)));
      case DataType.INT8: return Float32Array.from(new Int8Array(raw.buffer, raw.byteOffset, n));
      case DataType.UINT8: case DataType.BOOL: return Float32Array.from(raw);
      case DataType.INT16: return Float32Array.from(rawView(raw, 2, (b, o, l) => new Int16Array(b, o, l)));
      case DataType.UINT16: return Float32Array.from(rawView(raw, 2, (b, o, l) => new Uint16Array(b, o, l)));
      case DataType.INT32: return Float32Array.from(rawView(raw, 4, (b, o, l) => new Int32Array(b, o, l)));
      case DataType.UINT32: return Float32Array.from(rawView(raw, 4, (b, o, l) => new Uint32Array(b, o, l)));
      case DataType.INT64: return Float32Array.from(rawView(raw, 8, (b, o, l) => new BigInt64Array(b, o, l)), Number);
      case DataType.UINT64: return Float32Array.from(rawView(raw, 8, (b, o, l) => new BigUint64Array(b, o, l)), Number);
      case DataType.FLOAT16: return Float32Array.from(rawView(raw, 2, (b, o, l) => new Uint16Array(b, o, l)), float16ToFloat32);
    }
  }
  let values: ArrayLike<number>;
  switch (dt) {
    case DataType.FLOAT: values = t.floatData; break;
    case DataType.DOUBLE: values = t.doubleData; break;
    case DataType.INT64: values = t.int64Data.map(toNumber); break;
    case DataType.UINT32: case DataType.UINT64: values = t.uint64Data.map(toNumber); break;
    case DataType.FLOAT16: values = t.int32Data.map(float16ToFloat32); break;
    default: values = t.int32Data;
  }
  if (values.length !== n) {
    if (values.length === 0 && t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
      throw new Error(`tensor ${t.name}: its data is in an external file that was not loaded`);
    }
    throw new Error(`tensor ${t.name}: has ${values.length} values, dims need ${n}`);
  }
  return Float32Array.from(values);
}

/** Integer values of an INT64/INT32 tensor (shapes, axes, indices). */
export function tensorToInts(t: onnx.TensorProto): number[] {
  return Array.from(tensorToFloat32(t));
}

export function makeTensor(name: string, dataType: number, dims: readonly number[], data: TypedArray): onnx.TensorProto {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return onnx.TensorProto.create({ name, dataType, dims: [...dims], rawData: bytes });
}

export function floatTensor(name: string, dims: readonly number[], data: Float32Array): onnx.TensorProto {
  return makeTensor(name, DataType.FLOAT, dims, data);
}

export function int64Tensor(name: string, dims: readonly number[], values: readonly number[]): onnx.TensorProto {
  return makeTensor(name, DataType.INT64, dims, BigInt64Array.from(values.map((v) => BigInt(v))));
}

