// What the data readers hand to ONNX Runtime: one batch of samples per model input, as typed arrays.

/** The element types a feed can carry: exactly the .npy dtypes the readers support. */
export type ElementType = 'float32' | 'float64' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

export interface Feed {
  [input: string]: { type: ElementType; dims: number[]; data: Float32Array | Float64Array | BigInt64Array | Int32Array | Int8Array | Uint8Array };
}

export interface InputSpec {
  name: string;
  type: ElementType | string;
  /** String dims are symbolic (batch, sequence length, ...). */
  shape: Array<number | string>;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
