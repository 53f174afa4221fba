// npm run bench (third part): the peer side by side on accuracy. ONNX Runtime's Python quantizer
// makes its int8 PaddleOCR v4 recognizer from the same 64 calibration lines (QDQ, uint8 activations,
// int8 per-channel weights), and the same scorer as ours measures exact match on the 100 held-out
// lines. Needs python3 with onnxruntime and pillow; says so and stops where they are missing.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { recipeFor } from '../../shared/backends';
import { quantize } from '../../main/jobs/quantize';
import { MODELS, ROOT, tempDir } from '../helpers/build';
import { exactMatch, LINES, PREPROCESS } from './ocr';

const METHODS: Array<[peer: string, ours: string]> = [['minmax', 'minmax'], ['percentile', 'percentile:99.999'], ['entropy', 'entropy']];
const gb = (b: number) => `${(b / 2 ** 30).toFixed(1)} GB`;

async function main(): Promise<void> {
  const check = spawnSync('python3', ['-c', 'import onnxruntime.quantization, PIL'], { encoding: 'utf8' });
  if (check.status !== 0) {
    console.log('\npeer accuracy: skipped, ONNX Runtime\'s Python quantizer is not installed (pip install onnxruntime pillow)');
    return;
  }
  const dir = tempDir('peer-accuracy');
  try {
    const float = await exactMatch(MODELS.rec, 'eval');
    console.log(`\nPaddleOCR v4 recognition, plain int8 (no repair): exact match on ${float.lines} held-out lines, calibrated on 64 others; float ${float.accuracy.toFixed(1)}%\n`);
    console.log(`${'method'.padEnd(12)} ${'ONNX Runtime Python'.padEnd(36)} quant-studio cpu a8w8`);
    for (const [peerMethod, ours] of METHODS) {
      const peerModel = path.join(dir, `peer-${peerMethod}.onnx`);
      const script = path.join(ROOT, 'test', 'bench', 'peer_ort_rec_quantize.py');
      const r = spawnSync('python3', [script, MODELS.rec, path.join(LINES, 'calib'), peerModel, peerMethod], { encoding: 'utf8', maxBuffer: 1 << 24 });
      let peerText: string;
      if (r.status !== 0) {
        peerText = `failed: ${(r.stderr || '').trim().split('\n').pop()}`;
      } else {
        const m = JSON.parse(r.stdout.trim().split('\n').pop()!) as { seconds: number; peakBytes: number };
        peerText = `${(await exactMatch(peerModel, 'eval')).accuracy.toFixed(1)}% (${m.seconds.toFixed(0)} s, peak ${gb(m.peakBytes)})`;
      }
      const start = performance.now();
      const outcome = await quantize({
        model: MODELS.rec, recipe: { ...recipeFor('cpu'), method: ours }, calibration: path.join(LINES, 'calib'), preprocess: PREPROCESS,
        out: path.join(dir, `ours-${peerMethod}.onnx`), latency: false,
      });
      const seconds = (performance.now() - start) / 1000;
      const accuracy = (await exactMatch(outcome.files.model, 'eval')).accuracy;
      console.log(`${peerMethod.padEnd(12)} ${peerText.padEnd(36)} ${accuracy.toFixed(1)}% (${seconds.toFixed(0)} s, output SQNR ${outcome.report.outputs[0].sqnr} dB)`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
