// npm run bench: calibration cost against plain inference of the same model on the same data,
// and peak memory with N and 4N samples, on the PaddleOCR v4 recognition model and printed text
// lines. Each measurement runs in its own process so that peaks do not mix. Where ONNX Runtime's
// Python quantizer is installed, it runs on the same data and is printed beside us.
import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { calibrate } from '../../main/calib/calibrate';
import { openSource } from '../../main/data/readers';
import { inputSpecs, toOrtFeeds } from '../../main/onnx/session';
import { GraphView } from '../../main/onnx/graph';
import { loadModel } from '../../main/onnx/model';
import { calibrationTensors, planQuantization } from '../../main/plan/plan';
import { prepareModel } from '../../main/plan/prepare';
import { recipeFor } from '../../shared/backends';
import { MODELS, ROOT } from '../helpers/build';

const LINES = path.join(ROOT, 'test', 'fixtures', 'ocr-lines');
const PREPROCESS = { mean: [0.5, 0.5, 0.5] as [number, number, number], std: [0.5, 0.5, 0.5] as [number, number, number] };
const BATCH = 8;

interface Measure {
  seconds: number;
  peakBytes: number;
  tensors?: number;
}

/** Child mode: one measurement, printed as JSON. */
async function child(kind: string, samples: number): Promise<Measure> {
  const loaded = loadModel(MODELS.rec);
  // The same preparation as the product's static path (opset 10, BatchNorm folded).
  const prepared = prepareModel(loaded.model, { forQdq: true }).model;
  const view = new GraphView(prepared);
  // Both image folders: 64 + 100 lines, enough for 4N with N = 32.
  const source = await openSource(path.join(LINES, samples > 64 ? '.' : 'calib'), inputSpecs(view), { preprocess: PREPROCESS, limit: samples });
  const start = performance.now();
  let tensors: number | undefined;
  if (kind === 'inference') {
    const session = await ort.InferenceSession.create(MODELS.rec);
    for await (const feed of source.batches(BATCH)) await session.run(toOrtFeeds(feed));
  } else {
    const plan = planQuantization(view, { ...recipeFor('xnnpack'), method: kind });
    const needed = calibrationTensors(plan);
    tensors = needed.length;
    await calibrate(prepared, needed, source, { batchSize: BATCH });
  }
  return { seconds: (performance.now() - start) / 1000, peakBytes: process.resourceUsage().maxRSS * 1024, tensors };
}

function measure(kind: string, samples: number): Measure {
  const out = execFileSync(process.execPath, [__filename, '--child', kind, String(samples)], { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').pop()!) as Measure;
}

function peer(method: string, samples: number): Measure | string {
  const script = path.join(ROOT, 'test', 'bench', 'peer_ort_quant.py');
  const check = spawnSync('python3', ['-c', 'import onnxruntime.quantization, PIL'], { encoding: 'utf8' });
  if (check.status !== 0) return 'not installed (pip install onnxruntime pillow)';
  const r = spawnSync('python3', [script, MODELS.rec, path.join(LINES, 'calib'), String(samples), method], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) return `failed: ${(r.stderr || '').trim().split('\n').pop()}`;
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Measure;
}

const gb = (b: number) => `${(b / 2 ** 30).toFixed(2)} GB`;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child') {
    process.stdout.write(JSON.stringify(await child(args[1], Number(args[2]))) + '\n');
    return;
  }
  const n = 64;
  console.log(`PaddleOCR v4 recognition (${path.basename(MODELS.rec)}), ${n} printed text lines, batch ${BATCH}, ${require('node:os').availableParallelism()} cores\n`);
  const base = measure('inference', n);
  console.log(`plain inference              ${base.seconds.toFixed(2)} s   peak ${gb(base.peakBytes)}`);
  const rows: Array<[string, number]> = [['minmax', 1.5], ['percentile:99.999', 2.5], ['entropy', 2.5], ['mse', 2.5]];
  const results: Record<string, Measure> = {};
  for (const [method, aim] of rows) {
    const m = measure(method, n);
    results[method] = m;
    console.log(`calibrate ${method.padEnd(18)} ${m.seconds.toFixed(2)} s   ratio ${(m.seconds / base.seconds).toFixed(2)} (aim ≤ ${aim})   peak ${gb(m.peakBytes)}   ${m.tensors} tensors`);
  }
  console.log('\npeak memory against the number of samples (entropy):');
  const small = measure('entropy', n / 4 * 2);
  const large = measure('entropy', n * 2);
  console.log(`  N = ${n / 2}: ${gb(small.peakBytes)}   4N = ${n * 2}: ${gb(large.peakBytes)}   ratio ${(large.peakBytes / small.peakBytes).toFixed(2)} (flat ≈ 1)`);
  console.log('\nONNX Runtime\'s Python quantizer on the same model and lines:');
  for (const method of ['entropy', 'percentile']) {
    const p = peer(method, n);
    const ours = results[method === 'entropy' ? 'entropy' : 'percentile:99.999'];
    if (typeof p === 'string') console.log(`  ${method}: ${p}`);
    else console.log(`  ${method.padEnd(10)} peer ${p.seconds.toFixed(1)} s, peak ${gb(p.peakBytes)}   |   quant-studio ${ours.seconds.toFixed(1)} s, peak ${gb(ours.peakBytes)}   (${(p.seconds / ours.seconds).toFixed(1)}x faster, ${(p.peakBytes / ours.peakBytes).toFixed(1)}x less memory)`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
