import * as ort from 'onnxruntime-node';

import type { GraphView } from './graph';
import { encodeModel } from './model';
import type { onnx } from './proto';
import { Feed, InputSpec } from '../base/feed';

export class RunError extends Error {}

export async function createSession(model: onnx.ModelProto, what: string, options: ort.InferenceSession.SessionOptions = {}): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(encodeModel(model), { graphOptimizationLevel: 'all', ...options });
  } catch (err) {
    throw new RunError(`ONNX Runtime cannot load the ${what}: ${firstLine((err as Error).message)}`);
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

export async function run(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, what: string): Promise<ort.InferenceSession.OnnxValueMapType> {
  try {
    return await session.run(feeds);
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
