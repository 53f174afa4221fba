// npm run bench: every stage of a job against plain inference of the same model on the same data,
// measured in the same run, with peak memory, on the PaddleOCR v4 recognizer (64 printed text
// lines) and the sample model (24 images); peak memory with N and 4N samples. Each measurement
// runs in its own process so that peaks do not mix. Where ONNX Runtime's Python quantizer is
// installed, it runs on the same data and is printed beside us.
import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { calibrate } from '../../main/calib/calibrate';
import { convertModel } from '../../main/convert/convert';
import { evaluate } from '../../main/eval/evaluate';
import { rowPairs } from '../../main/eval/layer-rows';
import { quantize } from '../../main/jobs/quantize';
import { analyze } from '../../main/jobs/analyze';
import { openSource } from '../../main/data/readers';
import { inputSpecs, toOrtFeeds } from '../../main/onnx/session';
import { GraphView } from '../../main/onnx/graph';
import { loadModel } from '../../main/onnx/model';
import { calibrationTensors, planQuantization } from '../../main/plan/plan';
import { prepareModel } from '../../main/plan/prepare';
import { recipeFor } from '../../shared/backends';
import { MODELS, ROOT, tempDir } from '../helpers/build';
import { engineEnv } from '../../main/base/engine-env';
import * as fs from 'node:fs';

const LINES = path.join(ROOT, 'test', 'fixtures', 'ocr-lines');
const BATCH = 8;

interface Subject {
  title: string;
  model: string;
  /** The data of N samples, and of more than 64 (both image folders), for the 4N memory check. */
  data: (samples: number) => string;
  preprocess: { mean: [number, number, number]; std: [number, number, number]; size?: [number, number] };
  samples: number;
}

const SUBJECTS: Record<string, Subject> = {
  rec: {
    title: `PaddleOCR v4 recognition (${path.basename(MODELS.rec)}), printed text lines`, model: MODELS.rec,
    data: (n) => path.join(LINES, n > 64 ? '.' : 'calib'), preprocess: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }, samples: 64,
  },
  sample: {
    title: 'the sample model (PaddleOCR text-direction classifier), its calibration images', model: path.join(ROOT, 'resources', 'sample', 'cls.onnx'),
    data: () => path.join(ROOT, 'resources', 'sample', 'calibration'), preprocess: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], size: [48, 192] }, samples: 24,
  },
};

interface Measure {
  seconds: number;
  peakBytes: number;
  tensors?: number;
}

/** Child mode: one measurement, printed as JSON. */
async function child(subject: Subject, kind: string, samples: number): Promise<Measure> {
  const loaded = loadModel(subject.model);
  // The same preparation as the product's static path (opset 11, BatchNorm folded).
  const prepared = prepareModel(loaded.model, { forQdq: true }).model;
  const view = new GraphView(prepared);
  const source = await openSource(subject.data(samples), inputSpecs(view), { preprocess: subject.preprocess, limit: samples });
  const recipe = recipeFor('xnnpack');
  let start = performance.now();
  let tensors: number | undefined;
  if (kind === 'inference') {
    const session = await ort.InferenceSession.create(subject.model);
    for await (const feed of source.batches(BATCH)) await session.run(toOrtFeeds(feed));
  } else if (kind === 'evaluate') {
    // Evaluation alone, on ranges calibrated (untimed) just before: what every re-run and repair step pays.
    const plan = planQuantization(view, recipe);
    const { ranges, shapes } = await calibrate(prepared, calibrationTensors(plan), source, { batchSize: BATCH, sized: [...plan.activations.keys()] });
    const converted = convertModel(view, plan, ranges);
    tensors = converted.layers.length;
    start = performance.now();
    // The tensor shapes come from that calibration, as in a job that evaluates after calibrating.
    await evaluate(prepared, converted.model, rowPairs(converted.layers), source, { batchSize: BATCH, numerics: 'reference', shapes });
  } else if (kind.startsWith('run:')) {
    // One studio run as the quantize job does it: load, calibrate, convert, evaluate, write (no latency timing).
    const dir = tempDir('bench-run');
    try {
      const done = await quantize({ model: subject.model, recipe: { ...recipe, method: kind.slice(4) }, calibration: subject.data(samples), preprocess: subject.preprocess, out: path.join(dir, 'q.onnx'), latency: false });
      tensors = done.report.layers.length;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  } else if (kind in JOBS) {
    const dir = tempDir('bench-job');
    try {
      const job = JOBS[kind];
      const setup = await job.setup?.(subject, dir);
      start = performance.now();
      tensors = await job.run(subject, dir, setup);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  } else {
    const plan = planQuantization(view, { ...recipe, method: kind });
    const needed = calibrationTensors(plan);
    tensors = needed.length;
    await calibrate(prepared, needed, source, { batchSize: BATCH });
  }
  return { seconds: (performance.now() - start) / 1000, peakBytes: process.resourceUsage().maxRSS * 1024, tensors };
}

/**
 * Each time is the fastest of this many runs, each in a fresh process: on a shared VM the same run
 * takes up to twice as long when a neighbour is busy, and the fastest is the one least disturbed.
 * Peaks are the largest of them.
 */
const REPEATS = 3;

/** Whole jobs as the CLI runs them; their aims are in seconds. */
const JOBS: Record<string, { setup?: (s: Subject, dir: string) => Promise<string>; run: (s: Subject, dir: string, setup?: string) => Promise<number> }> = {
  // A re-run: the ranges of an earlier run, 16 held-out lines to evaluate on.
  rerun16: {
    setup: async (s, dir) => {
      await quantize({ model: s.model, recipe: recipeFor('cpu'), calibration: s.data(64), preprocess: s.preprocess, out: path.join(dir, 'first.onnx'), latency: false });
      const lines = path.join(dir, 'lines');
      fs.mkdirSync(lines);
      for (const f of fs.readdirSync(path.join(LINES, 'eval')).filter((f) => f.endsWith('.png')).sort().slice(0, 16)) fs.copyFileSync(path.join(LINES, 'eval', f), path.join(lines, f));
      return lines;
    },
    run: async (s, dir, lines) => (await quantize({ model: s.model, recipe: recipeFor('cpu'), ranges: path.join(dir, 'first.ranges.json'), evaluation: lines, preprocess: s.preprocess, out: path.join(dir, 'again.onnx'), latency: false })).report.layers.length,
  },
  analyze: {
    run: async (s) => (await analyze({ model: s.model, recipe: recipeFor('cpu'), calibration: s.data(64), preprocess: s.preprocess })).layers.length,
  },
  // xnnpack searches in reference numerics: every configuration is one run of the switch model.
  'analyze-xnnpack': {
    run: async (s) => (await analyze({ model: s.model, recipe: recipeFor('xnnpack'), calibration: s.data(64), preprocess: s.preprocess })).layers.length,
  },
  repair: {
    run: async (s, dir) => (await quantize({ model: s.model, recipe: recipeFor('cpu'), calibration: s.data(64), preprocess: s.preprocess, out: path.join(dir, 'q.onnx'), latency: false, target: { kind: 'sqnr', value: 30 } })).report.layers.length,
  },
};

function once(subject: string, kind: string, samples: number): Measure {
  // In the environment the product's engine processes get.
  const out = execFileSync(process.execPath, [__filename, '--child', subject, kind, String(samples)], { encoding: 'utf8', maxBuffer: 1 << 20, env: engineEnv() });
  return JSON.parse(out.trim().split('\n').pop()!) as Measure;
}

function fastest(runs: Measure[]): Measure {
  return { ...runs.reduce((a, b) => (b.seconds < a.seconds ? b : a)), peakBytes: Math.max(...runs.map((r) => r.peakBytes)) };
}

function measure(subject: string, kind: string, samples: number, repeats = REPEATS): Measure {
  return fastest(Array.from({ length: repeats }, () => once(subject, kind, samples)));
}

/** A stage and plain inference, each run right before the other, so that both see the same neighbours; the ratio is of their fastest. */
function paired(subject: string, kind: string, samples: number): { stage: Measure; plain: Measure } {
  const runs = Array.from({ length: REPEATS }, () => ({ plain: once(subject, 'inference', samples), stage: once(subject, kind, samples) }));
  return { stage: fastest(runs.map((r) => r.stage)), plain: fastest(runs.map((r) => r.plain)) };
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

const STAGES: Array<[label: string, kind: string, aim: number]> = [
  ['calibrate minmax', 'minmax', 1.5], ['calibrate percentile:99.999', 'percentile:99.999', 2.5], ['calibrate entropy', 'entropy', 2.5], ['calibrate mse', 'mse', 2.5],
  ['evaluate (per-layer SQNR)', 'evaluate', 4], ['one run, percentile', 'run:percentile:99.999', 8],
];

function table(name: string): Record<string, Measure> {
  const subject = SUBJECTS[name];
  const n = subject.samples;
  console.log(`\n${subject.title}: ${n} samples, batch ${BATCH}, ${require('node:os').availableParallelism()} cores, reference numerics\n`);
  console.log(`${'stage'.padEnd(30)} ${'time'.padStart(8)}   × plain inference (aim)   peak memory   plain inference beside it`);
  const results: Record<string, Measure> = {};
  for (const [label, kind, aim] of STAGES) {
    const { stage: m, plain } = paired(name, kind, n);
    results[kind] = m;
    const ratio = m.seconds / plain.seconds;
    console.log(`${label.padEnd(30)} ${m.seconds.toFixed(2).padStart(6)} s   ${ratio.toFixed(2).padStart(5)} (≤ ${aim}) ${ratio <= aim ? 'met' : 'NOT met'}${''.padEnd(ratio <= aim ? 7 : 3)}${gb(m.peakBytes)}     ${plain.seconds.toFixed(2)} s, ${gb(plain.peakBytes)}   ${m.tensors} tensors`);
  }
  return results;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child') {
    process.stdout.write(JSON.stringify(await child(SUBJECTS[args[1]], args[2], Number(args[3]))) + '\n');
    return;
  }
  const results = table('rec');
  table('sample');
  const n = SUBJECTS.rec.samples;
  console.log('\npeak memory against the number of samples (recognizer):');
  for (const kind of ['entropy', 'evaluate']) {
    const small = measure('rec', kind, n / 2);
    const large = measure('rec', kind, n * 2);
    console.log(`  ${kind.padEnd(9)} N = ${n / 2}: ${gb(small.peakBytes)}   4N = ${n * 2}: ${gb(large.peakBytes)}   ratio ${(large.peakBytes / small.peakBytes).toFixed(2)} (flat ≈ 1)`);
  }
  console.log('\nwhole jobs on the recognizer, 64 calibration lines (analyze and repair: one run each, their aims are minutes):');
  const jobs = [
    ['cpu: re-run from saved ranges, 16 lines', 'rerun16', 5], ['cpu: analyze, 32 lines, in ort-cpu', 'analyze', 90],
    ['xnnpack: analyze, 32 lines, switch model', 'analyze-xnnpack', 90], ['cpu: repair to output SQNR ≥ 30 dB', 'repair', 120],
  ] as const;
  for (const [label, kind, aim] of jobs) {
    const m = measure('rec', kind, n, kind === 'rerun16' ? REPEATS : 1);
    console.log(`  ${label.padEnd(44)} ${m.seconds.toFixed(1).padStart(6)} s (aim ≤ ${aim} s) ${m.seconds <= aim ? 'met' : 'NOT met'}   peak ${gb(m.peakBytes)}`);
  }
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
