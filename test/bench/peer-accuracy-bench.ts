// npm run bench (third part): the peer side by side on accuracy. ONNX Runtime's Python quantizer
// makes its int8 PaddleOCR v4 recognizer from the same 64 calibration lines (QDQ, uint8 activations,
// int8 per-channel weights), and the same scorer as ours measures exact match on the 100 held-out
// lines. Needs python3 with onnxruntime and pillow; says so and stops where they are missing.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { recipeFor } from '../../shared/backends';
import { hostNumerics } from '../../main/onnx/numerics';
import { quantize } from '../../main/jobs/quantize';
import { MODELS, ROOT, tempDir } from '../helpers/build';
import { exactMatch, LINES, PREPROCESS } from './ocr';

const METHODS: Array<[peer: string, ours: string]> = [['minmax', 'minmax'], ['percentile', 'percentile:99.999'], ['entropy', 'entropy']];
const gb = (b: number) => `${(b / 2 ** 30).toFixed(1)} GB`;

async function bothNumerics(model: string): Promise<string> {
  const reference = await exactMatch(model, 'eval', 'reference');
  const fused = await exactMatch(model, 'eval', 'ort-cpu');
  return `${reference.accuracy.toFixed(1)}% / ${fused.accuracy.toFixed(1)}%`;
}

async function main(): Promise<void> {
  const check = spawnSync('python3', ['-c', 'import onnxruntime.quantization, PIL'], { encoding: 'utf8' });
  if (check.status !== 0) {
    console.log('\npeer accuracy: skipped, ONNX Runtime\'s Python quantizer is not installed (pip install onnxruntime pillow)');
    return;
  }
  const dir = tempDir('peer-accuracy');
  try {
    const float = await exactMatch(MODELS.rec, 'eval');
    const host = await hostNumerics();
    console.log(`\nPaddleOCR v4 recognition, plain int8 (no repair): exact match on ${float.lines} held-out lines, calibrated on 64 others; float ${float.accuracy.toFixed(1)}%`);
    console.log(`each model scored in reference numerics / in ort-cpu (ONNX Runtime's fused kernels on ${host.cpu}, int8 ${host.int8Saturates ? 'saturating' : 'exact'})\n`);
    console.log(`${'method'.padEnd(12)} ${'ONNX Runtime Python'.padEnd(44)} quant-studio cpu a8w8`);
    for (const [peerMethod, ours] of METHODS) {
      const peerModel = path.join(dir, `peer-${peerMethod}.onnx`);
      const script = path.join(ROOT, 'test', 'bench', 'peer_ort_rec_quantize.py');
      const r = spawnSync('python3', [script, MODELS.rec, path.join(LINES, 'calib'), peerModel, peerMethod], { encoding: 'utf8', maxBuffer: 1 << 24 });
      let peerText: string;
      if (r.status !== 0) {
        peerText = `failed: ${(r.stderr || '').trim().split('\n').pop()}`;
      } else {
        const m = JSON.parse(r.stdout.trim().split('\n').pop()!) as { seconds: number; peakBytes: number };
        peerText = `${await bothNumerics(peerModel)} (${m.seconds.toFixed(0)} s, peak ${gb(m.peakBytes)})`;
      }
      const start = performance.now();
      const outcome = await quantize({
        model: MODELS.rec, recipe: { ...recipeFor('cpu'), method: ours }, calibration: path.join(LINES, 'calib'), preprocess: PREPROCESS,
        out: path.join(dir, `ours-${peerMethod}.onnx`), latency: false,
      });
      const seconds = (performance.now() - start) / 1000;
      const sqnr = `output SQNR ${outcome.report.outputs[0].sqnr} / ${outcome.report.deployed?.outputs[0].sqnr} dB`;
      console.log(`${peerMethod.padEnd(12)} ${peerText.padEnd(44)} ${await bothNumerics(outcome.files.model)} (${seconds.toFixed(0)} s, ${sqnr}${outcome.report.host.saturationFix ? ', uint8 weights: this CPU saturates' : ''})`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
