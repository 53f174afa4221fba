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
import { saveModel } from '../../main/onnx/model';
import { tempDir } from '../helpers/build';
import { CHAR_LM, withOutlierChannels } from '../helpers/lm';

const LM = CHAR_LM;

interface Row {
  label: string;
  recipe: Recipe;
  /** The fixture with 40x outlier channels in its LayerNorms (test/helpers/lm.ts), as large LMs have. */
  outliers?: boolean;
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
  { label: 'outliers: static a8w8', recipe: recipeFor('cpu', 'a8w8'), outliers: true },
  { label: 'outliers: static a8w8 + SmoothQuant', recipe: { ...recipeFor('cpu', 'a8w8'), algorithms: { smoothquant: {} } }, outliers: true },
  {
    label: 'outliers: static a8w8, repaired', recipe: recipeFor('cpu', 'a8w8'), outliers: true,
    // The search runs on its own labelled text (search.npy, float 53.0%); the held-out text then judges what it chose.
    extra: { target: { kind: 'metric', metric: 'accuracy', value: 0.52 }, evaluation: path.join(LM, 'search.npy'), labels: path.join(LM, 'search-labels.npy') },
  },
];

/** Python with onnxruntime for the peer: QS_PEER_PYTHON, else python3. */
const PYTHON = process.env.QS_PEER_PYTHON ?? 'python3';

function line(label: string, r: Pick<Report, 'metrics' | 'outputs' | 'sizes'>, seconds: number): string {
  const m = r.metrics ?? {};
  const pct = (v: number | undefined, digits = 1) => (v === undefined ? '—' : `${(v * 100).toFixed(digits)}%`);
  return `${label.padEnd(40)} ${pct(m.accuracy, 2).padStart(8)} ${pct(m['argmax-agreement']).padStart(9)} ${(m.perplexity?.toFixed(3) ?? '—').padStart(10)} `
    + `${String(r.outputs[0].sqnr).padStart(9)} ${`${(r.sizes.quantizedBytes / 1e6).toFixed(2)} MB`.padStart(9)} ${`${seconds.toFixed(1)} s`.padStart(8)}`;
}

async function main(): Promise<void> {
  const dir = tempDir('lm-bench');
  const base: QuantizeJob = {
    model: path.join(LM, 'model.onnx'), recipe: recipeFor('cpu'), calibration: path.join(LM, 'calib.npy'),
    evaluation: path.join(LM, 'heldout.npy'), labels: path.join(LM, 'heldout-labels.npy'), latency: false, out: '',
  };
  console.log(`\ncharacter-level transformer LM (test/fixtures/char-lm), ${'next-character figures on 128 held-out windows of 64 characters; calibration on 64 windows of the training text'}`);
  console.log(`${'run'.padEnd(40)} ${'accuracy'.padStart(8)} ${'agreement'.padStart(9)} ${'perplexity'.padStart(10)} ${'output dB'.padStart(9)} ${'size'.padStart(9)} ${'time'.padStart(8)}`);
  const outliers = path.join(dir, 'outliers.onnx');
  saveModel(withOutlierChannels(40), outliers);
  let floatShown = false;
  for (const [i, row] of ROWS.entries()) {
    const started = performance.now();
    const out = path.join(dir, `run-${i}.onnx`);
    const model = row.outliers ? outliers : base.model;
    let report = (await quantize({ ...base, model, recipe: row.recipe, out, ...row.extra })).report;
    if (row.extra?.evaluation) {
      const heldOut = await evalPair({ float: model, quantized: out, data: base.evaluation!, labels: base.labels });
      report = { ...report, metrics: heldOut.metrics, outputs: heldOut.outputs };
    }
    if (!floatShown) {
      const m = report.metrics ?? {};
      console.log(line('float', { metrics: { accuracy: m['float-accuracy'], 'argmax-agreement': 1, perplexity: m['float-perplexity'] }, outputs: [{ name: '', sqnr: 'inf', maxAbsError: 0 }], sizes: { ...report.sizes, quantizedBytes: report.sizes.floatBytes } }, 0));
      floatShown = true;
    }
    const kept = report.repair ? ` (repair: ${report.repair.changes.map((c) => c.name).join(', ') || 'nothing changed'})` : '';
    console.log(line(row.label, report, (performance.now() - started) / 1000) + kept);
  }
  console.log('outliers: the same model with 3 channels of every LayerNorm feeding MatMuls 40x wider and the rows reading them 40x narrower (the same function)');
  console.log('(reference numerics; accuracy against the text, agreement with the float model\'s next character)');
  const check = spawnSync(PYTHON, ['-c', 'import onnxruntime.quantization, numpy'], { encoding: 'utf8' });
  if (check.status !== 0) {
    console.log(`peer: skipped, ONNX Runtime's Python quantizer is not installed for ${PYTHON} (pip install onnxruntime numpy onnx-ir, or point QS_PEER_PYTHON at a python that has them)`);
    return;
  }
  const peer = spawnSync(PYTHON, [path.join(LM, 'peer_lm.py')], { encoding: 'utf8', maxBuffer: 1 << 24 });
  console.log(`\nONNX Runtime's Python quantizer on the same model and data (peer_lm.py):\n${peer.status === 0 ? peer.stdout.split('\n').filter((l) => !l.startsWith('PEER_JSON')).join('\n') : `failed: ${peer.stderr.trim().split('\n').pop()}`}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
