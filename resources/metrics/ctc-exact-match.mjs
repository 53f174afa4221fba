// A metric module for quant-studio: CTC text exact match for PaddleOCR text recognizers
// (PP-OCRv3/v4 rec, output [1, T, classes] of per-step class probabilities), the way a user of
// such a model measures it.
//
//   quant-studio quantize rec.onnx --backend xnnpack --calibration lines/ --eval held-out/ \
//     --labels held-out.json --metric-module resources/metrics/ctc-exact-match.mjs --target-metric custom:0.95
//
// held-out.json is a JSON array with the text of each line, in the order the images are read
// (file names sorted). The score is the fraction of lines whose greedy CTC decode equals the text
// after trimming spaces. Class 0 is the CTC blank, class i >= 1 the dictionary's line i - 1, and the
// last class a space, as PaddleOCR's CTCLabelDecode does with use_space_char.
//
// A module's default export is { name, score({ float, quantized, labels }) }: `float` and
// `quantized` hold one entry per sample, each mapping output names to { dims, data } with batch
// dimension 1; `labels` one label per sample as the --labels file gives it; higher is better.
import { readFileSync } from 'node:fs';

const DICTIONARY = new URL('./ppocr_keys_v1.txt', import.meta.url);
const lines = readFileSync(DICTIONARY, 'utf8').split(/\r?\n/);
if (lines[lines.length - 1] === '') lines.pop();
const KEYS = ['', ...lines, ' '];

/** Greedy CTC: argmax per step, repeats collapsed, blanks dropped. */
function decode({ dims, data }) {
  if (dims.length !== 3) throw new Error(`a CTC output is [1, steps, classes], got [${dims.join(', ')}]`);
  const [, steps, classes] = dims;
  if (classes !== KEYS.length) throw new Error(`the output has ${classes} classes, the PaddleOCR dictionary ${KEYS.length} (blank + ${lines.length} characters + space): another dictionary?`);
  let text = '';
  let previous = -1;
  for (let t = 0; t < steps; t++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (data[t * classes + c] > data[t * classes + best]) best = c;
    if (best !== 0 && best !== previous) text += KEYS[best];
    previous = best;
  }
  return text;
}

export default {
  name: 'CTC exact match (PaddleOCR dictionary)',
  score({ quantized, labels }) {
    if (!labels) throw new Error('needs --labels: a JSON array with the text of each line');
    const output = Object.keys(quantized[0] ?? {})[0];
    let correct = 0;
    quantized.forEach((sample, i) => {
      if (decode(sample[output]).trim() === String(labels[i]).trim()) correct++;
    });
    return quantized.length ? correct / quantized.length : 0;
  },
};
