// NumPy .npy files: format versions 1.0 to 3.0, little-endian, C order. Reads take an element
// range rather than the whole array, so a calibration set larger than memory streams from disk.
import * as fs from 'node:fs';
import { elementCount, type ElementType } from '../base/feed';

/**
 * Data the user has to fix: the message names the file or input, says what is wrong and what to
 * do. It lives here, in the lowest layer of the data readers, and readers.ts re-exports it.
 */
export class DataError extends Error {}

export type NpyDtype = ElementType;
export type NpyArray = Float32Array | Float64Array | BigInt64Array | Int32Array | Int8Array | Uint8Array;

export interface NpyHeader {
  dtype: NpyDtype;
  shape: number[];
  /** Byte offset of the first element. */
  dataOffset: number;
}

interface ArrayKind {
  new (length: number): NpyArray;
  readonly BYTES_PER_ELEMENT: number;
  readonly name: string;
}

const KINDS: Record<NpyDtype, { code: string; array: ArrayKind }> = {
  float32: { code: 'f4', array: Float32Array },
  float64: { code: 'f8', array: Float64Array },
  int64: { code: 'i8', array: BigInt64Array },
  int32: { code: 'i4', array: Int32Array },
  int8: { code: 'i1', array: Int8Array },
  uint8: { code: 'u1', array: Uint8Array },
  bool: { code: 'b1', array: Uint8Array },
};

const MAGIC = Buffer.from('\x93NUMPY', 'latin1');
// numpy aligns the data to 64 bytes so that readers can memory-map it; writeNpy does the same.
const ALIGN = 64;
// Node refuses single reads of 2 GiB or more.
const MAX_READ = 1 << 30;

export function allocate(dtype: NpyDtype, length: number): NpyArray {
  return new KINDS[dtype].array(length);
}


export function itemSize(dtype: NpyDtype): number {
  return KINDS[dtype].array.BYTES_PER_ELEMENT;
}

export function readNpyHeader(file: string): NpyHeader {
  const fd = openForReading(file);
  try {
    const size = fs.fstatSync(fd).size;
    const prefix = Buffer.alloc(12);
    readFully(fd, prefix, 0, file, Math.min(12, size));
    if (size < 10 || !prefix.subarray(0, 6).equals(MAGIC)) throw new DataError(`${file}: not a .npy file (it does not start with the NumPy magic bytes); save arrays with numpy.save`);
    const major = prefix[6];
    if (major < 1 || major > 3) throw new DataError(`${file}: .npy format version ${major}.${prefix[7]} is not supported (1.0 to 3.0 are); save it again with numpy.save`);
    const lengthBytes = major === 1 ? 2 : 4;
    const headerLength = major === 1 ? prefix.readUInt16LE(8) : prefix.readUInt32LE(8);
    const start = 8 + lengthBytes;
    const text = Buffer.alloc(headerLength);
    readFully(fd, text, start, file);
    const header = parseHeader(text.toString(major === 3 ? 'utf8' : 'latin1'), file, start + headerLength);
    const needed = header.dataOffset + elementCount(header.shape) * itemSize(header.dtype);
    if (size < needed) {
      throw new DataError(`${file}: truncated: its header promises ${header.dtype} [${header.shape.join(', ')}] (${needed} bytes with the header) but the file has ${size} bytes; write it again`);
    }
    return header;
  } finally {
    fs.closeSync(fd);
  }
}

function parseHeader(text: string, file: string, dataOffset: number): NpyHeader {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text);
  const order = /'fortran_order'\s*:\s*(True|False)/.exec(text);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descr || !order || !shape) throw new DataError(`${file}: unreadable .npy header (${JSON.stringify(text.trim())}); save plain numeric arrays with numpy.save`);
  if (order[1] === 'True') throw new DataError(`${file}: the array is stored in Fortran order; save it with numpy.save(path, numpy.ascontiguousarray(arr))`);
  const dims = shape[1].split(',').map((d) => d.trim()).filter((d) => d !== '').map(Number);
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) throw new DataError(`${file}: unreadable shape (${shape[1]}) in the .npy header`);
  return { dtype: dtypeOf(descr[1], file), shape: dims, dataOffset };
}

function dtypeOf(descr: string, file: string): NpyDtype {
  const m = /^([<>|=])([a-z]\d+)$/.exec(descr);
  const dtype = m ? (Object.keys(KINDS) as NpyDtype[]).find((d) => KINDS[d].code === m[2]) : undefined;
  if (!m || !dtype) throw new DataError(`${file}: dtype '${descr}' is not supported (float32, float64, int64, int32, int8, uint8 and bool are); convert it, e.g. arr.astype(numpy.float32)`);
  if (m[1] === '>' && itemSize(dtype) > 1) throw new DataError(`${file}: the data is big-endian ('${descr}'); save it little-endian, e.g. arr.astype('<${m[2]}')`);
  return dtype;
}

/** `count` elements starting at element `first` (in C order). */
export function readNpyRange(file: string, header: NpyHeader, first: number, count: number): NpyArray {
  const out = allocate(header.dtype, count);
  const fd = openForReading(file);
  try {
    readFully(fd, new Uint8Array(out.buffer), header.dataOffset + first * itemSize(header.dtype), file);
  } finally {
    fs.closeSync(fd);
  }
  return out;
}

export function writeNpy(file: string, dtype: NpyDtype, shape: readonly number[], data: NpyArray): void {
  if (!(data instanceof KINDS[dtype].array)) throw new TypeError(`writeNpy: ${dtype} data must be a ${KINDS[dtype].array.name}`);
  if (data.length !== elementCount(shape)) throw new RangeError(`writeNpy: shape [${shape.join(', ')}] needs ${elementCount(shape)} elements, got ${data.length}`);
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const descr = `${itemSize(dtype) === 1 ? '|' : '<'}${KINDS[dtype].code}`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${tuple}, }`;
  // Version 1.0 stores the header length in 16 bits; longer headers (huge ranks) need 2.0.
  const major = dict.length + 12 <= 0xffff ? 1 : 2;
  const start = major === 1 ? 10 : 12;
  const headerLength = Math.ceil((start + dict.length + 1) / ALIGN) * ALIGN - start;
  const head = Buffer.alloc(start + headerLength, 0x20);
  MAGIC.copy(head, 0);
  head[6] = major;
  head[7] = 0;
  if (major === 1) head.writeUInt16LE(headerLength, 8);
  else head.writeUInt32LE(headerLength, 8);
  head.write(dict, start, 'latin1');
  head[head.length - 1] = 0x0a;
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

function openForReading(file: string): number {
  try {
    return fs.openSync(file, 'r');
  } catch (err) {
    throw new DataError(`${file}: cannot open (${(err as Error).message})`);
  }
}

/** Fills `target` (or its first `length` bytes) from `position`; running out of file means truncation. */
function readFully(fd: number, target: Uint8Array, position: number, file: string, length = target.length): void {
  for (let done = 0; done < length;) {
    const n = fs.readSync(fd, target, done, Math.min(length - done, MAX_READ), position + done);
    if (n === 0) throw new DataError(`${file}: truncated: the file ends at byte ${position + done} but the .npy header promises more; write it again`);
    done += n;
  }
}
