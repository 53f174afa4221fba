import * as fs from 'node:fs';
import * as path from 'node:path';
import { onnx, toNumber } from './proto';
import { writeFileAtomic } from '../base/atomic';

/** ONNX's protobuf limit: a serialized ModelProto must stay under 2 GiB. */
export const PROTOBUF_LIMIT = 2 ** 31 - 1;

let largeBytes = PROTOBUF_LIMIT;

/**
 * Models of at least this many bytes of tensors are large: written as `model.onnx` +
 * `model.onnx.data`, and handed to ONNX Runtime as files rather than bytes. The protobuf limit;
 * tests lower it to take that path with small models.
 */
export function largeModelBytes(): number {
  return largeBytes;
}

export function setLargeModelBytes(bytes: number): void {
  largeBytes = bytes;
}

export class ModelLoadError extends Error {
  constructor(readonly file: string, reason: string) {
    super(`${file}: ${reason}`);
  }
}

export interface LoadedModel {
  model: onnx.ModelProto;
  file: string;
  /** Bytes of the .onnx file plus the external data it references. */
  bytes: number;
  /** The external data files it references, as absolute paths. */
  externalFiles?: string[];
}

function allTensors(graph: onnx.IGraphProto | null | undefined, out: onnx.TensorProto[] = []): onnx.TensorProto[] {
  if (!graph) return out;
  for (const t of graph.initializer ?? []) out.push(t as onnx.TensorProto);
  for (const node of graph.node ?? []) {
    for (const attr of node.attribute ?? []) {
      if (attr.t) out.push(attr.t as onnx.TensorProto);
      if (attr.g) allTensors(attr.g, out);
      for (const g of attr.graphs ?? []) allTensors(g, out);
    }
  }
  return out;
}

/** Drops the external-data fields so that encoding writes exactly what an inline tensor has. */
function makeInline(t: onnx.TensorProto): void {
  delete (t as Partial<onnx.TensorProto>).dataLocation;
  t.externalData = [];
}

function outside(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel.startsWith('..') || path.isAbsolute(rel);
}

export function decodeModel(bytes: Uint8Array, file = '<memory>'): onnx.ModelProto {
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new ModelLoadError(file, `not a readable ONNX model (${(err as Error).message}); is the file complete and really .onnx?`);
  }
  if (!model.graph || (model.graph.node.length === 0 && model.graph.output.length === 0)) {
    throw new ModelLoadError(file, 'not an ONNX model: it has no graph');
  }
  if (model.opsetImport.length === 0) throw new ModelLoadError(file, 'not an ONNX model: it imports no opset');
  const ir = toNumber(model.irVersion);
  if (!(ir >= 1)) throw new ModelLoadError(file, `ir_version ${ir} is not an ONNX IR version (they start at 1; IR 3 and later carry opsets); re-export the model`);
  return model;
}

/**
 * Reads a model and the external data its tensors reference, tensor by tensor from each side file
 * at its offset: no file is read whole, so a data file may pass the 2 GB a single read allows, and
 * the bytes no tensor references are never read.
 */
export function loadModel(file: string): LoadedModel {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ModelLoadError(file, code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder, not a model' : (err as Error).message);
  }
  if (bytes.byteLength === 0) throw new ModelLoadError(file, 'the file is empty');
  const model = decodeModel(bytes, file);
  let total = bytes.byteLength;
  const sideFiles = new Map<string, { fd: number; size: number }>();
  const dir = path.dirname(file);
  for (const t of allTensors(model.graph)) {
    if (t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) continue;
    const info = Object.fromEntries(t.externalData.map((e) => [e.key, e.value]));
    const location = info.location;
    if (!location) throw new ModelLoadError(file, `tensor ${t.name} is external but names no location`);
    const resolved = path.resolve(dir, location);
    if (outside(dir, resolved)) throw new ModelLoadError(file, `tensor ${t.name}: external data "${location}" lies outside the model's folder`);
    // A symlink inside the folder may still point anywhere: its target must stay beside the model too.
    if (fs.existsSync(resolved) && outside(fs.realpathSync(dir), fs.realpathSync(resolved))) {
      throw new ModelLoadError(file, `tensor ${t.name}: external data "${location}" is a link to ${fs.realpathSync(resolved)}, outside the model's folder; copy the data file next to the model`);
    }
    let side = sideFiles.get(resolved);
    if (!side) {
      try {
        const fd = fs.openSync(resolved, 'r');
        side = { fd, size: fs.fstatSync(fd).size };
      } catch {
        closeAll(sideFiles);
        throw new ModelLoadError(file, `tensor ${t.name}: external data file "${location}" is missing; keep it next to the model`);
      }
      sideFiles.set(resolved, side);
      total += side.size;
    }
    const offset = Number(info.offset ?? 0);
    const length = info.length !== undefined ? Number(info.length) : side.size - offset;
    if (!(offset >= 0 && length >= 0) || offset + length > side.size) {
      closeAll(sideFiles);
      throw new ModelLoadError(file, `tensor ${t.name}: external data "${location}" is shorter than the model says (truncated?)`);
    }
    const raw = Buffer.allocUnsafe(length);
    for (let done = 0; done < length;) {
      const n = fs.readSync(side.fd, raw, done, length - done, offset + done);
      if (n === 0) {
        closeAll(sideFiles);
        throw new ModelLoadError(file, `tensor ${t.name}: external data "${location}" ended while it was read (changed on disk?)`);
      }
      done += n;
    }
    t.rawData = raw;
    makeInline(t);
  }
  closeAll(sideFiles);
  return { model, file, bytes: total, externalFiles: [...sideFiles.keys()] };
}

function closeAll(files: ReadonlyMap<string, { fd: number }>): void {
  for (const f of files.values()) fs.closeSync(f.fd);
}

export interface SaveOptions {
  /** Write initializers to `<file>.data` when the model would pass this many bytes (default: largeModelBytes()). */
  externalDataThreshold?: number;
  /** Tensors smaller than this stay inline when external data is used. */
  externalMinTensorBytes?: number;
}

export interface SavedModel {
  file: string;
  bytes: number;
  dataFile?: string;
  dataBytes?: number;
}

/** The bytes of the model's tensors, subgraphs included: what decides whether it is large. */
export function tensorBytes(model: onnx.ModelProto): number {
  let size = 0;
  for (const t of allTensors(model.graph)) size += t.rawData?.byteLength ?? 0;
  return size;
}

/** Writes the model atomically; a model over the threshold goes to `file` + `file.data`. */
export function saveModel(model: onnx.ModelProto, file: string, options: SaveOptions = {}): SavedModel {
  const threshold = options.externalDataThreshold ?? largeBytes;
  if (tensorBytes(model) < threshold) {
    const bytes = onnx.ModelProto.encode(model).finish();
    if (bytes.byteLength < threshold) {
      writeFileAtomic(file, bytes);
      return { file, bytes: bytes.byteLength };
    }
  }
  const minBytes = options.externalMinTensorBytes ?? 1024;
  const dataName = path.basename(file) + '.data';
  const dataFile = path.join(path.dirname(file), dataName);
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const moved: Array<{ t: onnx.TensorProto; raw: Uint8Array; location?: number; external: onnx.StringStringEntryProto[] }> = [];
  for (const t of allTensors(model.graph)) {
    const raw = t.rawData;
    if (!raw || raw.byteLength < minBytes) continue;
    const pad = (4096 - (offset % 4096)) % 4096;
    if (pad) chunks.push(new Uint8Array(pad));
    offset += pad;
    chunks.push(raw);
    moved.push({ t, raw, location: Object.prototype.hasOwnProperty.call(t, 'dataLocation') ? t.dataLocation : undefined, external: t.externalData });
    t.rawData = new Uint8Array(0);
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.externalData = [
      { key: 'location', value: dataName },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(raw.byteLength) },
    ];
    offset += raw.byteLength;
  }
  try {
    writeFileAtomic(dataFile, chunks);
    const bytes = onnx.ModelProto.encode(model).finish();
    writeFileAtomic(file, bytes);
    return { file, bytes: bytes.byteLength, dataFile, dataBytes: offset };
  } finally {
    for (const { t, raw, location, external } of moved) {
      t.rawData = raw;
      makeInline(t);
      if (location !== undefined) t.dataLocation = location;
      t.externalData = external;
    }
  }
}

export function encodeModel(model: onnx.ModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}
