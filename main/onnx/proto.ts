// The codec generated from proto/onnx.proto at build time (scripts/gen-proto.js).
import { onnx } from './generated/onnx';
import Long = require('long');

export { onnx };
export type Int64 = number | Long;
export const DataType = onnx.TensorProto.DataType;

export function toNumber(value: Int64 | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'number' ? value : value.toNumber();
}

const typeNames: Record<number, string> = {};
for (const [name, code] of Object.entries(onnx.TensorProto.DataType)) {
  if (typeof code === 'number') typeNames[code] = name.toLowerCase();
}

/** A readable name for an ONNX element type code, e.g. 1 → "float". */
export function dataTypeName(code: number): string {
  return typeNames[code] ?? `type ${code}`;
}
