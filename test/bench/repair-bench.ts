// npm run bench (second part): the PaddleOCR v4 recognizer, int8, before and after the automatic
// repair, in exact-match accuracy on held-out printed text lines. Calibration and the repair
// search see only the calibration lines, except the custom-metric rows, whose search scores the
// labelled search lines; the figures are measured on the evaluation lines, which nothing else sees.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { recipeFor } from '../../shared/backends';
import { quantize } from '../../main/jobs/quantize';
import { MODELS, ROOT, tempDir } from '../helpers/build';
import { describeTarget, type Target } from '../../shared/metrics';
import { movesLayer } from '../../shared/report';
import { exactMatch, LINES, PREPROCESS } from './ocr';

const TARGET = { kind: 'metric' as const, metric: 'argmax-agreement' as const, value: 0.97 };
// min/max is the default; percentile and entropy are what ONNX Runtime's Python quantizer turns
// into 54% and 5% exact match on this model.
const METHODS = ['minmax', 'percentile:99.999', 'entropy'];
// An output-SQNR target the calibration fix alone does not reach: the precision step must move layers.
const SQNR_TARGET = { kind: 'sqnr' as const, value: 13 };
// The user's own metric: the shipped CTC exact-match module, on the 256 labelled search lines
// (neither calibration nor the figures see them); the issue's aim is within 2 points of float on the held-out lines.
const CUSTOM_TARGET = { kind: 'metric' as const, metric: 'custom' as const, value: 0.95 };
// Float's level on the search lines (float reads 97.7% there): the ranges alone do not reach it, so
// the search learns the algorithms, and picks between them and the re-chosen ranges.
const FLOAT_LEVEL_TARGET = { kind: 'metric' as const, metric: 'custom' as const, value: 0.97 };
const CTC_MODULE = path.join(ROOT, 'resources', 'metrics', 'ctc-exact-match.mjs');

async function main(): Promise<void> {
  // Arguments: backends (xnnpack by default), and --target=METRIC:VALUE (or sqnr:DB) to run only that target's rows.
  const args = process.argv.slice(2);
  const only = args.find((a) => a.startsWith('--target='))?.slice('--target='.length);
  const named = args.filter((a) => !a.startsWith('--'));
  const backends = named.length ? named : ['xnnpack'];
  const dir = tempDir('repair-bench');
  try {
    const float = await exactMatch(MODELS.rec, 'eval');
    // The search lines' text in the order the image reader yields them (file names sorted).
    const searchText = JSON.parse(fs.readFileSync(path.join(LINES, 'search.labels.json'), 'utf8')) as Record<string, string>;
    const labels = path.join(dir, 'search.labels.json');
    fs.writeFileSync(labels, JSON.stringify(Object.keys(searchText).sort().map((k) => searchText[k])));
    const floatSearch = await exactMatch(MODELS.rec, 'search');
    console.log(`\nPaddleOCR v4 recognition, int8: exact match on ${float.lines} held-out lines (calibrated and repaired on ${fs.readdirSync(path.join(LINES, 'calib')).filter((f) => f.endsWith('.png')).length} other lines)\n`);
    console.log(`${'float'.padEnd(30)}           ${float.accuracy.toFixed(1).padStart(5)}%   (on the ${floatSearch.lines} search lines of the custom-metric rows: ${floatSearch.accuracy.toFixed(1)}%)`);
    for (const backend of backends) {
      const recipe = recipeFor(backend);
      const common = { model: MODELS.rec, calibration: path.join(LINES, 'calib'), evaluation: path.join(LINES, 'calib'), preprocess: PREPROCESS, searchSamples: 16 };
      const rows: Array<[string, Target]> = [...METHODS.map((m): [string, Target] => [m, TARGET]), ['entropy', SQNR_TARGET], ...METHODS.map((m): [string, Target] => [m, CUSTOM_TARGET]), ['minmax', FLOAT_LEVEL_TARGET]];
      for (const [method, target] of rows.filter(([, t]) => !only || only === `${t.kind === 'sqnr' ? 'sqnr' : t.metric}:${t.value}`)) {
        const name = `${backend} ${method}`.padEnd(30);
        if (target === TARGET) {
          const plain = await quantize({ ...common, recipe: { ...recipe, method }, out: path.join(dir, `${backend}-${method.replace(':', '')}.onnx`) });
          const before = await exactMatch(plain.files.model, 'eval');
          console.log(`${name} plain     ${before.accuracy.toFixed(1).padStart(5)}%   output SQNR ${plain.report.outputs[0].sqnr} dB`);
        }
        const start = performance.now();
        const onSearchLines = target === CUSTOM_TARGET || target === FLOAT_LEVEL_TARGET;
        const custom = onSearchLines ? { evaluation: path.join(LINES, 'search'), labels, metricModule: CTC_MODULE, searchSamples: 256 } : {};
        const repaired = await quantize({ ...common, ...custom, recipe: { ...recipe, method }, target, out: path.join(dir, `${backend}-${method.replace(':', '')}-repaired.onnx`) });
        const seconds = (performance.now() - start) / 1000;
        const after = await exactMatch(repaired.files.model, 'eval');
        const r = repaired.report.repair!;
        const moved = r.changes.filter((c) => movesLayer(c.action));
        const methods = r.changes.filter((c) => c.action.startsWith('method:')).map((c) => c.action.slice('method:'.length));
        const gap = float.accuracy - after.accuracy;
        const aim = onSearchLines ? `${describeTarget(target)} (${repaired.report.customMetric!.name})` : describeTarget(target);
        console.log(`${name} repaired  ${after.accuracy.toFixed(1).padStart(5)}%   ${gap > 0 ? `${gap.toFixed(1)} points below` : 'at or above'} float; output SQNR ${repaired.report.outputs[0].sqnr} dB; ${aim} ${r.met ? 'met' : 'not met'} on ${r.before.samples} search lines`);
        console.log(`${' '.repeat(30)}   ranges: ${methods.length ? `re-chosen by ${methods.join(', ')} from the saved histograms` : 'unchanged'}; higher precision: ${moved.length} of ${r.cost.unitsTotal} quantized layers (${(r.cost.fraction * 100).toFixed(1)}%), ${r.cost.nodesLeavingIntegerPath.length} nodes leave the integer path; search ${r.runs} runs, ${r.seconds.toFixed(0)} s; job ${seconds.toFixed(0)} s`);
        for (const c of moved) console.log(`${' '.repeat(33)}${c.action.padEnd(7)} ${c.name} (${c.op})`);
        for (const c of r.changes.filter((x) => x.action.startsWith('algorithm:'))) console.log(`${' '.repeat(33)}${c.name} kept: ${c.why}`);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
