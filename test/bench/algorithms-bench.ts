// npm run bench (fourth part): the accuracy-recovery algorithms on the PaddleOCR v4 recognizer,
// int8, in exact-match accuracy on held-out text lines. Calibration, bias correction and AdaRound
// see only the 64 calibration lines; the figures are measured on the 300 evaluation lines. Each
// row reports the job's time and the process's peak memory (resident set) so far.
import * as path from 'node:path';
import { recipeFor } from '../../shared/backends';
import { adaRoundIterations, type Algorithms } from '../../shared/recipe';
import { adaRoundWords } from '../../shared/report';
import { quantize } from '../../main/jobs/quantize';
import { MODELS, tempDir } from '../helpers/build';
import { exactMatch, LINES, PREPROCESS } from './ocr';
import * as fs from 'node:fs';

const ROWS: Array<{ backend: string; granularity: 'per-tensor' | 'per-channel'; algorithms?: Algorithms }> = [
  { backend: 'cpu', granularity: 'per-tensor' },
  { backend: 'cpu', granularity: 'per-tensor', algorithms: { cle: true, biasCorrection: true } },
  { backend: 'cpu', granularity: 'per-tensor', algorithms: { adaround: { iterations: adaRoundIterations('per-tensor') } } },
  { backend: 'cpu', granularity: 'per-tensor', algorithms: { cle: true, biasCorrection: true, adaround: { iterations: adaRoundIterations('per-tensor') } } },
  { backend: 'xnnpack', granularity: 'per-channel' },
  { backend: 'xnnpack', granularity: 'per-channel', algorithms: { adaround: { iterations: adaRoundIterations('per-channel') } } },
];

function names(a: Algorithms | undefined): string {
  const parts = [a?.cle && 'CLE', a?.biasCorrection && 'bias correction', a?.adaround && `AdaRound ${a.adaround.iterations}`].filter(Boolean);
  return parts.length ? parts.join(' + ') : 'none';
}

async function main(): Promise<void> {
  const dir = tempDir('algorithms-bench');
  try {
    const float = await exactMatch(MODELS.rec, 'eval');
    console.log(`\nPaddleOCR v4 recognition, int8, reference numerics: exact match on ${float.lines} held-out lines (calibrated on 64 other lines); float ${float.accuracy.toFixed(1)}%\n`);
    for (const [i, row] of ROWS.entries()) {
      const start = performance.now();
      const out = path.join(dir, `row${i}.onnx`);
      const recipe = { ...recipeFor(row.backend), granularity: row.granularity, ...(row.algorithms ? { algorithms: row.algorithms } : {}) };
      // Evaluated on the calibration lines: the held-out figure below is the bench's own, on lines the job never sees.
      const r = await quantize({ model: MODELS.rec, recipe, calibration: path.join(LINES, 'calib'), evaluation: path.join(LINES, 'calib'), preprocess: PREPROCESS, latency: false, out });
      const seconds = (performance.now() - start) / 1000;
      const em = await exactMatch(out, 'eval');
      const peak = process.resourceUsage().maxRSS / 1024;
      console.log(`${`${row.backend} ${row.granularity}`.padEnd(22)} ${names(row.algorithms).padEnd(42)} ${em.accuracy.toFixed(1).padStart(5)}%   output SQNR ${r.report.outputs[0].sqnr} dB; job ${seconds.toFixed(0)} s, peak ${peak.toFixed(0)} MB`);
      const a = r.report.algorithms;
      if (a?.biasCorrection) console.log(`${' '.repeat(25)}bias correction ${a.biasCorrection.seconds.toFixed(1)} s`);
      if (a?.adaround) console.log(`${' '.repeat(25)}AdaRound: ${adaRoundWords(a.adaround)}`);
      for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
