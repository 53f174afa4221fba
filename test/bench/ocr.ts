// Text-recognition accuracy of the PaddleOCR v4 recognizer on the rendered lines: CTC greedy
// decode against the dictionary that ships with the model, exact match after trimming blanks.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { openSource } from '../../main/data/readers';
import type { MainNumerics } from '../../shared/numerics';
import { numericsOptions } from '../../main/onnx/numerics';
import { inputSpecs, toOrtFeeds } from '../../main/onnx/session';
import { GraphView } from '../../main/onnx/graph';
import { encodeModel, loadModel } from '../../main/onnx/model';
import type { onnx } from '../../main/onnx/proto';
import { MODELS, ROOT } from '../helpers/build';

export const LINES = path.join(ROOT, 'test', 'fixtures', 'ocr-lines');
export const PREPROCESS = { mean: [0.5, 0.5, 0.5] as [number, number, number], std: [0.5, 0.5, 0.5] as [number, number, number] };

/** Index 0 is the CTC blank, index i >= 1 is the dictionary's line i - 1, and the last index is a space. */
export function ocrKeys(): string[] {
  const keys = fs.readFileSync(MODELS.ocrKeys, 'utf8').split(/\r?\n/);
  if (keys[keys.length - 1] === '') keys.pop();
  return ['', ...keys, ' '];
}

/** Greedy CTC: argmax per step, collapse repeats, drop blanks. */
export function ctcGreedy(probs: Float32Array, steps: number, classes: number, keys: string[]): string {
  let text = '';
  let previous = -1;
  for (let t = 0; t < steps; t++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (probs[t * classes + c] > probs[t * classes + best]) best = c;
    if (best !== 0 && best !== previous) text += keys[best] ?? '';
    previous = best;
  }
  return text;
}

/** Exact-match accuracy (percent) of a model, given as a file or a model object, on one folder of lines, in named numerics. */
export async function exactMatch(model: string | onnx.ModelProto, split: 'calib' | 'search' | 'eval', numerics: MainNumerics = 'reference'): Promise<{ accuracy: number; lines: number }> {
  const labels = JSON.parse(fs.readFileSync(path.join(LINES, `${split}.labels.json`), 'utf8')) as Record<string, string>;
  const view = new GraphView(loadModel(MODELS.rec).model);
  const source = await openSource(path.join(LINES, split), inputSpecs(view), { preprocess: PREPROCESS });
  const names = fs.readdirSync(path.join(LINES, split)).filter((f) => f.endsWith('.png')).sort();
  const options = numericsOptions(numerics);
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model, options) : await ort.InferenceSession.create(encodeModel(model), options);
  const keys = ocrKeys();
  let correct = 0;
  let i = 0;
  try {
    for await (const feed of source.batches(8)) {
      const out = await session.run(toOrtFeeds(feed));
      const probs = out[session.outputNames[0]] as ort.Tensor;
      const [n, steps, classes] = probs.dims;
      const data = probs.data as Float32Array;
      for (let s = 0; s < n; s++, i++) {
        const text = ctcGreedy(data.subarray(s * steps * classes, (s + 1) * steps * classes), steps, classes, keys);
        if (text.trim() === (labels[names[i]] ?? '').trim()) correct++;
      }
    }
  } finally {
    await session.release();
  }
  return { accuracy: (100 * correct) / i, lines: i };
}
