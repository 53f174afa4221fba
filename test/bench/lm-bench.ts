// npm run bench (language model): the character-level transformer fixture (test/fixtures/char-lm)
// quantized every way the studio offers for transformers, scored on held-out text neither
// calibration nor any search saw: next-character accuracy against the text, agreement with the
// float model, perplexity, output SQNR, size and time. ONNX Runtime's Python quantizer runs on the
// same model and data beside it where python3 has onnxruntime (peer_lm.py).
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { recipeFor } from '../../shared/backends';
import { GPTQ_DEFAULTS, type Recipe } from '../../shared/recipe';
import type { Report } from '../../shared/report';
import { evalPair } from '../../main/jobs/eval';
import { quantize, type QuantizeJob } from '../../main/jobs/quantize';
import { ROOT, tempDir } from '../helpers/build';

const LM = path.join(ROOT, 'test', 'fixtures', 'char-lm');

interface Row {
  label: string;
  recipe: Recipe;
  extra?: Partial<QuantizeJob>;
}

const w4 = (blockSize: number, gptq: boolean): Recipe => ({ ...recipeFor('cpu', 'w4'), blockSize, ...(gptq ? { algorithms: { gptq: GPTQ_DEFAULTS } } : {}) });

const ROWS: Row[] = [
  { label: 'dynamic int8', recipe: recipeFor('cpu', 'dynamic-int8') },
  { label: '4-bit RTN, block 32', recipe: w4(32, false) },
  { label: '4-bit GPTQ, block 32', recipe: w4(32, true) },
  { label: '4-bit RTN, block 128', recipe: w4(128, false) },
  { label: '4-bit GPTQ, block 128', recipe: w4(128, true) },
  { label: 'static a8w8', recipe: recipeFor('cpu', 'a8w8') },
  { label: 'static a8w8 + SmoothQuant', recipe: { ...recipeFor('cpu', 'a8w8'), algorithms: { smoothquant: {} } } },
  {
    label: 'static a8w8 + SmoothQuant, repaired', recipe: { ...recipeFor('cpu', 'a8w8'), algorithms: { smoothquant: {} } },
    // The search runs on its own labelled text (search.npy); the held-out text then judges what it chose.
    extra: { target: { kind: 'metric', metric: 'accuracy', value: 0.5 }, evaluation: path.join(LM, 'search.npy'), labels: path.join(LM, 'search-labels.npy') },
  },
];

function line(label: string, r: Pick<Report, 'metrics' | 'outputs' | 'sizes'>, seconds: number): string {
  const m = r.metrics ?? {};
  const pct = (v: number | undefined) => (v === undefined ? '—' : `${(v * 100).toFixed(1)}%`);
  return `${label.padEnd(40)} ${pct(m.accuracy).padStart(7)} ${pct(m['argmax-agreement']).padStart(9)} ${(m.perplexity?.toFixed(2) ?? '—').padStart(10)} `
    + `${String(r.outputs[0].sqnr).padStart(9)} ${`${(r.sizes.quantizedBytes / 1e6).toFixed(2)} MB`.padStart(9)} ${`${seconds.toFixed(1)} s`.padStart(8)}`;
}

async function main(): Promise<void> {
  const dir = tempDir('lm-bench');
  const base: QuantizeJob = {
    model: path.join(LM, 'model.onnx'), recipe: recipeFor('cpu'), calibration: path.join(LM, 'calib.npy'),
    evaluation: path.join(LM, 'heldout.npy'), labels: path.join(LM, 'heldout-labels.npy'), latency: false, out: '',
  };
  console.log(`\ncharacter-level transformer LM (test/fixtures/char-lm), ${'next-character figures on 128 held-out windows of 64 characters; calibration on 64 windows of the training text'}`);
  console.log(`${'run'.padEnd(40)} ${'accuracy'.padStart(7)} ${'agreement'.padStart(9)} ${'perplexity'.padStart(10)} ${'output dB'.padStart(9)} ${'size'.padStart(9)} ${'time'.padStart(8)}`);
  let floatShown = false;
  for (const [i, row] of ROWS.entries()) {
    const started = performance.now();
    const out = path.join(dir, `run-${i}.onnx`);
    let report = (await quantize({ ...base, recipe: row.recipe, out, ...row.extra })).report;
    if (row.extra?.evaluation) {
      const heldOut = await evalPair({ float: base.model, quantized: out, data: base.evaluation!, labels: base.labels });
      report = { ...report, metrics: heldOut.metrics, outputs: heldOut.outputs };
    }
    if (!floatShown) {
      const m = report.metrics ?? {};
      console.log(line('float', { metrics: { accuracy: m['float-accuracy'], 'argmax-agreement': 1, perplexity: m['float-perplexity'] }, outputs: [{ name: '', sqnr: 'inf', maxAbsError: 0 }], sizes: { ...report.sizes, quantizedBytes: report.sizes.floatBytes } }, 0));
      floatShown = true;
    }
    console.log(line(row.label, report, (performance.now() - started) / 1000));
  }
  console.log('(reference numerics; accuracy against the text, agreement with the float model\'s next character)');
  const check = spawnSync('python3', ['-c', 'import onnxruntime.quantization, numpy'], { encoding: 'utf8' });
  if (check.status !== 0) {
    console.log('peer: skipped, ONNX Runtime\'s Python quantizer is not installed (pip install onnxruntime numpy)');
    return;
  }
  const peer = spawnSync('python3', [path.join(LM, 'peer_lm.py')], { encoding: 'utf8', maxBuffer: 1 << 24 });
  console.log(`\nONNX Runtime's Python quantizer on the same model and data (peer_lm.py):\n${peer.status === 0 ? peer.stdout.split('\n').filter((l) => !l.startsWith('PEER_JSON')).join('\n') : `failed: ${peer.stderr.trim().split('\n').pop()}`}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
