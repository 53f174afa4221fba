import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import * as protobuf from 'protobufjs/minimal';

import type { GraphView } from './graph';
import { encodeModel, largeModelBytes, saveModel, tensorBytes } from './model';
import { onnx } from './proto';
import { BATCH_DIM, typedValueInfo, withInputShapes, type InferredDims } from './edit';
import { throwIfAborted } from '../base/progress';
import { elementCount, Feed, InputShapes, InputSpec } from '../base/feed';
import { tensorDims } from './tensor';
import { idlePasses } from './idle-passes';

export class RunError extends Error {}

/**
 * A session of `model`. A large model (largeModelBytes) cannot be one protobuf message: it is
 * written with its weights in a data file beside it, in a temporary folder ONNX Runtime loads it
 * from and that is removed once the session holds the weights.
 */
export async function createSession(model: onnx.ModelProto, what: string, options: ort.InferenceSession.SessionOptions = {}): Promise<ort.InferenceSession> {
  const large = tensorBytes(model) >= largeModelBytes();
  const dir = large ? fs.mkdtempSync(path.join(os.tmpdir(), 'quant-studio-session-')) : undefined;
  try {
    const all = withoutIdlePasses(model, { graphOptimizationLevel: 'all', ...options });
    return dir ? await ort.InferenceSession.create(saveModel(model, path.join(dir, 'model.onnx')).file, all) : await withEncoded(model, (bytes) => ort.InferenceSession.create(bytes, all));
  } catch (err) {
    throw new RunError(`ONNX Runtime cannot load the ${what}: ${firstLine((err as Error).message)}`);
  } finally {
    // A folder that cannot be removed yet (a file ONNX Runtime keeps mapped on some systems) is the temporary folder's to clear, not a failed session.
    if (dir) try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* left to the OS */ }
  }
}

/**
 * Memory models are encoded into for their sessions, kept from one session to the next: ONNX
 * Runtime reads a model's bytes only while it creates the session, and a repair or an analysis
 * creates dozens of sessions of models that size. Encoding the recognizer's side-by-side model
 * (14 MB) into fresh memory took 24 to 217 ms on the VMs this was measured on, into this 7 to 13 ms.
 * A model larger than KEPT_ENCODING_BYTES, or one encoded while another session is being created,
 * gets memory of its own.
 */
const encoding: { buffer?: Uint8Array; busy: boolean } = { busy: false };
const KEPT_ENCODING_BYTES = 64 << 20;

async function withEncoded<T>(model: onnx.ModelProto, use: (bytes: Uint8Array) => Promise<T>): Promise<T> {
  if (encoding.busy) return use(encodeModel(model));
  encoding.busy = true;
  try {
    const writer = protobuf.Writer.create();
    if (encoding.buffer) writer.buf = encoding.buffer;
    onnx.ModelProto.encode(model, writer);
    encoding.buffer = writer.buf.length <= KEPT_ENCODING_BYTES ? writer.buf : undefined;
    return await use(writer.finish(true));
  } finally {
    encoding.busy = false;
  }
}

/** `options` with the graph passes that cannot change `model` switched off (idlePasses). */
function withoutIdlePasses(model: onnx.ModelProto, options: ort.InferenceSession.SessionOptions): ort.InferenceSession.SessionOptions {
  const idle = idlePasses(model, Object.keys(options.freeDimensionOverrides ?? {}).length > 0);
  const extra = (options.extra ?? {}) as { optimization?: Record<string, string> };
  const off = [extra.optimization?.disable_specified_optimizers, idle].filter(Boolean).join(';');
  return { ...options, extra: { ...extra, optimization: { ...extra.optimization, disable_specified_optimizers: off } } };
}

/**
 * `options` with ONNX Runtime's graph passes run once: by default, once the later levels changed
 * the graph, the first levels' passes run over it again. On the engine's own models of the
 * PaddleOCR recognizer (the float model, the quantized one, both side by side with the pairs'
 * sums) that second loop changed no node, and it cost 12% of creating the side-by-side session.
 */
function onePass(options: ort.InferenceSession.SessionOptions): ort.InferenceSession.SessionOptions {
  const extra = (options.extra ?? {}) as { session?: Record<string, string> };
  return { ...options, extra: { ...extra, session: { ...extra.session, graph_optimizations_loop_level: '0' } } };
}

/**
 * A session of `model` built for the data's input shapes (every dim but the batch fixed,
 * withInputShapes), as the engine's own sessions are: ONNX Runtime then plans its memory, and
 * runs its graph passes once (onePass). A model that cannot take those shapes (a detector whose
 * sizes must be multiples of 32, fed 48×320 lines) fails to load, and the message says which
 * shapes it was given. Without `shapes`, the model is the exported one, in a session as a
 * deployment makes it.
 */
export async function shapedSession(model: onnx.ModelProto, shapes: InputShapes | undefined, what: string, options: ort.InferenceSession.SessionOptions = {}): Promise<ort.InferenceSession> {
  try {
    return await createSession(withInputShapes(model, shapes), what, shapes ? onePass(options) : options);
  } catch (err) {
    if (!shapes || !(err instanceof RunError)) throw err;
    const given = Object.entries(shapes).map(([name, dims]) => `${name} ${dims.map((d) => d ?? 'N').join('×')}`).join(', ');
    throw new RunError(`${err.message} (its inputs fixed to the data's shapes: ${given}; the model may not accept inputs of that size)`);
  }
}

/** Initializers of fewer elements stay in the model shape inference runs on: shape targets, Slice bounds, scales. */
const INFERENCE_KEEPS = 1024;

/**
 * Batch sizes shape inference is run at, two primes no model fixes: a dim that is the first in one
 * run and the second in the other is the batch, one equal in both is a size, any other (twice the
 * batch, the data's) is unknown.
 */
const PROBE_BATCHES = [7, 11] as const;

/**
 * Each of `tensors`' dims as ONNX Runtime's shape inference finds them, without running the model
 * and without its weights (large initializers become inputs of their shape; inference needs only
 * those). With the batch fixed, ONNX Runtime's basic passes fold a Shape of a known tensor and
 * the arithmetic on it into constants, so that a Reshape to `[Shape(x)[0:2], -1]` has a shape
 * too: the PaddleOCR recognizer's SVTR blocks left 75 of its 350 calibrated tensors unknown with
 * a symbolic batch, none with the batch fixed. Where the data's shapes vary (`shapes` undefined),
 * the data fixes the batch itself (a subset read in equal batches) or the model refuses the probe
 * batches, inference runs once without graph passes, as it did before: with every shape static,
 * the side-by-side session over 32 lines of the recognizer, its sums on the SVTR tensors directly,
 * took 3.4 GB and 8.9 s against 0.35 GB and 2.7 s. ONNX Runtime folds the SVTR blocks' Shape
 * arithmetic into constants at static shapes, and its order (a reverse walk from the graph's
 * leaves) then runs 400 float nodes before the first quantized one, so tapped tensors wait for
 * their pairs and its elementwise kernels write into fresh memory (a Div 25x slower). Those
 * sessions with the batch symbolic instead took 3.0 s, no faster than with the old shapes. Where
 * ONNX Runtime cannot load the model at all, nothing is known and the callers measure instead:
 * the run that follows reports why.
 */
export async function inferredDims(model: onnx.ModelProto, shapes: InputShapes | undefined, tensors: readonly string[]): Promise<Map<string, InferredDims>> {
  const skeleton = weightless(model, tensors);
  if (shapes && Object.values(shapes).some((dims) => dims.includes(null))) {
    const [a, b] = await Promise.all(PROBE_BATCHES.map((batch) => outputDims(withInputShapes(skeleton, withBatch(shapes, batch)), 'basic')));
    if (a && b) return new Map([...a].flatMap(([name, dims]) => (b.has(name) ? [[name, batchDims(dims, b.get(name)!)] as const] : [])));
  }
  return (await outputDims(withInputShapes(skeleton, shapes), 'disabled')) ?? new Map();
}

/** `model` with `tensors` as its outputs and its large initializers as inputs of their shape. */
function weightless(model: onnx.ModelProto, tensors: readonly string[]): onnx.ModelProto {
  const graph = model.graph!;
  const large = new Set(graph.initializer.filter((t) => elementCount(tensorDims(t)) >= INFERENCE_KEEPS));
  const inputs = new Set(graph.input.map((i) => i.name));
  return onnx.ModelProto.create({
    ...model,
    graph: onnx.GraphProto.create({
      ...graph,
      initializer: graph.initializer.filter((t) => !large.has(t)),
      input: [...graph.input, ...[...large].filter((t) => !inputs.has(t.name)).map((t) => typedValueInfo(t.name, t.dataType, tensorDims(t)))],
      output: tensors.map((name) => onnx.ValueInfoProto.create({ name })),
    }),
  });
}

function withBatch(shapes: InputShapes, batch: number): InputShapes {
  return Object.fromEntries(Object.entries(shapes).map(([name, dims]) => [name, dims.map((d) => d ?? batch)]));
}

/** The dims of a tensor from its dims at the two probe batches. */
function batchDims(a: InferredDims, b: InferredDims): InferredDims {
  if (a.length !== b.length) return a.map(() => '');
  return a.map((d, i) => {
    if (typeof d !== 'number' || typeof b[i] !== 'number') return '';
    if (d === b[i]) return d;
    return d === PROBE_BATCHES[0] && b[i] === PROBE_BATCHES[1] ? BATCH_DIM : '';
  });
}

/** The dims of `model`'s outputs after ONNX Runtime's passes of `level`; undefined where it cannot load the model. */
async function outputDims(model: onnx.ModelProto, level: 'basic' | 'disabled'): Promise<Map<string, InferredDims> | undefined> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(encodeModel(model), { graphOptimizationLevel: level });
  } catch {
    return undefined;
  }
  try {
    return new Map(session.outputMetadata.flatMap((m) => (m.isTensor && m.shape.length ? [[m.name, m.shape] as const] : [])));
  } finally {
    await session.release();
  }
}

/** Nodes, initializers and outputs added to a model: what a measuring session computes beside it. */
export interface Additions {
  nodes: onnx.NodeProto[];
  initializers: onnx.TensorProto[];
  outputs: onnx.ValueInfoProto[];
}

/**
 * `model` with `additions`, its outputs theirs alone, run once per batch in one session; each
 * batch's outputs go to `onBatch`, so that only what it keeps stays in memory.
 */
export async function runAdditions(model: onnx.ModelProto, additions: Additions, batches: AsyncIterable<Feed>, what: string,
  onBatch: (out: ort.InferenceSession.OnnxValueMapType) => void, signal?: AbortSignal): Promise<void> {
  const graph = model.graph!;
  const measuring = onnx.ModelProto.create({
    ...model,
    graph: onnx.GraphProto.create({ ...graph, node: [...graph.node, ...additions.nodes], initializer: [...graph.initializer, ...additions.initializers], output: additions.outputs }),
  });
  const session = await createSession(measuring, what);
  try {
    for await (const feed of batches) {
      throwIfAborted(signal);
      onBatch(await run(session, toOrtFeeds(feed), what));
    }
  } finally {
    await session.release();
  }
}

export function firstLine(message: string): string {
  return message.split('\n')[0].replace(/^\[ONNXRuntimeError\] : \d+ : \w+ : /, '');
}

export function toOrtFeeds(feed: Feed): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feed)) out[name] = new ort.Tensor(t.type as never, t.data as never, t.dims);
  return out;
}

/**
 * `fetches`, where given, names the outputs to hand back; ONNX Runtime runs every node either way.
 * No tensor to write an output into: the Node binding copies every output into new memory, even one
 * written into a buffer given for it.
 */
export async function run(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, what: string, fetches?: readonly string[]): Promise<ort.InferenceSession.OnnxValueMapType> {
  try {
    return await (fetches ? session.run(feeds, fetches) : session.run(feeds));
  } catch (err) {
    throw new RunError(`the ${what} failed to run: ${firstLine((err as Error).message)}`);
  }
}

/** The model inputs as the data readers need them. */
export function inputSpecs(view: GraphView): InputSpec[] {
  return view.inputs.map((i) => ({ name: i.name, type: i.type, shape: i.shape ?? [] }));
}

export function floatData(t: ort.Tensor, name: string): Float32Array {
  if (t.type !== 'float32') throw new RunError(`tensor ${name} is ${t.type}, expected float32`);
  return t.data as Float32Array;
}
