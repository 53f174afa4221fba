// npm run bench (second part): the PaddleOCR v4 recognizer, int8, before and after the automatic
// repair, in exact-match accuracy on held-out printed text lines. Calibration and the repair
// search see only the calibration lines; the figures are measured on the evaluation lines.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { recipeFor } from '../../shared/backends';
import { quantize } from '../../main/jobs/quantize';
import { MODELS, tempDir } from '../helpers/build';
import { exactMatch, LINES, PREPROCESS } from './ocr';

const TARGET = { kind: 'metric' as const, metric: 'argmax-agreement' as const, value: 0.99 };

async function main(): Promise<void> {
  const backends = process.argv.slice(2).length ? process.argv.slice(2) : ['xnnpack'];
  const dir = tempDir('repair-bench');
  try {
    const float = await exactMatch(MODELS.rec, 'eval');
    console.log(`\nPaddleOCR v4 recognition, int8: exact match on ${float.lines} held-out lines (calibrated and repaired on ${fs.readdirSync(path.join(LINES, 'calib')).filter((f) => f.endsWith('.png')).length} other lines)\n`);
    console.log(`float                                   ${float.accuracy.toFixed(1)}%`);
    for (const backend of backends) {
      const recipe = recipeFor(backend);
      const common = { model: MODELS.rec, calibration: path.join(LINES, 'calib'), evaluation: path.join(LINES, 'calib'), preprocess: PREPROCESS };
      for (const method of ['minmax', 'percentile:99.999']) {
        const plain = await quantize({ ...common, recipe: { ...recipe, method }, out: path.join(dir, `${backend}-${method.replace(':', '')}.onnx`) });
        const before = await exactMatch(plain.files.model, 'eval');
        console.log(`${backend} ${method.padEnd(18)} plain       ${before.accuracy.toFixed(1)}%   (output SQNR ${plain.report.outputs[0].sqnr} dB)`);
      }
      const start = performance.now();
      const repaired = await quantize({ ...common, recipe, target: TARGET, out: path.join(dir, `${backend}-repaired.onnx`) });
      const seconds = (performance.now() - start) / 1000;
      const after = await exactMatch(repaired.files.model, 'eval');
      const r = repaired.report.repair!;
      const moved = r.changes.filter((c) => !c.action.startsWith('method:'));
      const methods = r.changes.filter((c) => c.action.startsWith('method:')).map((c) => c.action.slice('method:'.length));
      console.log(`${backend} minmax, repaired to ${TARGET.metric} ≥ ${TARGET.value}: ${after.accuracy.toFixed(1)}%   (${float.accuracy - after.accuracy <= 3 ? 'within' : 'NOT within'} 3 points of float; target ${r.met ? 'met' : 'not met'})`);
      console.log(`  calibration: ${methods.length ? `ranges re-chosen by ${methods.join(', ')} from the saved histograms` : 'unchanged'}; higher precision: ${moved.length} of ${r.cost.unitsTotal || moved.length} quantized layers (${(r.cost.fraction * 100).toFixed(1)}%, ${r.cost.sixteenBit} to 16-bit, ${r.cost.nodesLeavingIntegerPath.length} nodes leave the integer path)`);
      for (const c of moved) console.log(`    ${c.action.padEnd(7)} ${c.name} (${c.op})`);
      console.log(`  search on ${r.before.samples} calibration lines: ${r.runs} runs, ${r.seconds.toFixed(0)} s; whole job (calibrate, search, convert, evaluate) ${seconds.toFixed(0)} s; size ${(repaired.report.sizes.quantizedBytes / 1e6).toFixed(2)} MB`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
