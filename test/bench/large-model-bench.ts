// Models past 2 GB, and GPTQ at scale (part of npm run bench): a generated 2.5 GB MLP, its weights in
// external data, quantized to 4-bit weight-only end to end; and GPTQ on a generated 100M-parameter
// MLP against round-to-nearest. Each job runs in its own process so that its peak memory is its own,
// beside plain inference of the same model on the same samples. The models are made in a temporary
// folder and removed after.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { recipeFor } from '../../shared/backends';
import { GPTQ_DEFAULTS, type Recipe } from '../../shared/recipe';
import { writeNpy } from '../../main/data/npy';
import { quantize } from '../../main/jobs/quantize';
import { saveModel } from '../../main/onnx/model';
import { buildModel, randomArray, tempDir } from '../helpers/build';

interface Shape {
  title: string;
  width: number;
  layers: number;
  samples: number;
}

const SHAPES: Record<string, Shape> = {
  large: { title: 'generated MLP, 40 layers 4096x4096 (2.68 GB of float weights, external data)', width: 4096, layers: 40, samples: 16 },
  gptq: { title: 'generated MLP, 96 layers 1024x1024 (100.7M parameters)', width: 1024, layers: 96, samples: 64 },
};

interface Measure {
  seconds: number;
  peakBytes: number;
  outputSqnr?: number | string;
  bytes?: number;
}

/** x → (MatMul → Relu) × layers; He-scaled weights keep the activations' scale through the chain. */
function generate(shape: Shape, dir: string): { model: string; data: string } {
  const { width: d, layers } = shape;
  const initializers: Record<string, { dims: number[]; data: Float32Array }> = {};
  const nodes = [];
  let x = 'x';
  for (let i = 0; i < layers; i++) {
    initializers[`w${i}`] = { dims: [d, d], data: randomArray(d * d, 100 + i, Math.sqrt(6 / d)) };
    nodes.push({ op: 'MatMul', inputs: [x, `w${i}`], outputs: [`h${i}`], name: `fc${i}` });
    if (i < layers - 1) nodes.push({ op: 'Relu', inputs: [`h${i}`], outputs: [`r${i}`], name: `relu${i}` });
    x = `r${i}`;
  }
  const model = path.join(dir, 'model.onnx');
  saveModel(buildModel({ inputs: { x: ['n', d] }, outputs: { [`h${layers - 1}`]: ['n', d] }, initializers, nodes }), model);
  const data = path.join(dir, 'x.npy');
  writeNpy(data, 'float32', [shape.samples, d], randomArray(shape.samples * d, 7));
  return { model, data };
}

async function child(kind: string, model: string, data: string, out: string): Promise<Measure> {
  const start = performance.now();
  if (kind === 'inference') {
    const session = await ort.InferenceSession.create(model);
    const d = Number(process.env.QS_BENCH_WIDTH);
    const n = Number(process.env.QS_BENCH_SAMPLES);
    const x = randomArray(n * d, 7);
    for (let i = 0; i < n; i += 8) await session.run({ x: new ort.Tensor('float32', x.subarray(i * d, Math.min(n, i + 8) * d), [Math.min(8, n - i), d]) });
    await session.release();
    return { seconds: (performance.now() - start) / 1000, peakBytes: process.resourceUsage().maxRSS * 1024 };
  }
  const recipe: Recipe = { ...recipeFor('cpu', 'w4'), ...(kind === 'gptq' ? { algorithms: { gptq: GPTQ_DEFAULTS } } : {}) };
  const report = (await quantize({ model, calibration: data, holdOut: 0.25, recipe, out, latency: false })).report;
  const bytes = report.artifacts.filter((a) => a.kind === 'model').reduce((n, a) => n + a.bytes, 0) + (fs.existsSync(`${out}.data`) ? fs.statSync(`${out}.data`).size : 0);
  return { seconds: (performance.now() - start) / 1000, peakBytes: process.resourceUsage().maxRSS * 1024, outputSqnr: report.outputs[0].sqnr, bytes };
}

function once(kind: string, shape: Shape, files: { model: string; data: string }, out: string): Measure {
  const stdout = execFileSync(process.execPath, [__filename, '--child', kind, files.model, files.data, out], {
    encoding: 'utf8', maxBuffer: 1 << 20, env: { ...process.env, QS_BENCH_WIDTH: String(shape.width), QS_BENCH_SAMPLES: String(shape.samples) },
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as Measure;
}

const gb = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GB`;

function bench(name: string, kinds: string[]): void {
  const shape = SHAPES[name];
  const dir = tempDir(`bench-${name}`);
  try {
    const started = performance.now();
    const files = generate(shape, dir);
    const onDisk = fs.readdirSync(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
    console.log(`\n${shape.title}: generated in ${((performance.now() - started) / 1000).toFixed(0)} s, ${gb(onDisk)} on disk; ${shape.samples} random samples, a quarter held out`);
    const plain = once('inference', shape, files, '');
    console.log(`  plain inference of the ${shape.samples} samples: ${plain.seconds.toFixed(1)} s, peak ${gb(plain.peakBytes)}`);
    for (const kind of kinds) {
      const m = once(kind, shape, files, path.join(dir, `${kind}.onnx`));
      console.log(`  ${kind === 'gptq' ? '4-bit GPTQ (act-order, block 32)' : '4-bit round-to-nearest (block 32)'}: ${m.seconds.toFixed(1)} s (${(m.seconds / plain.seconds).toFixed(1)}x plain inference), peak ${gb(m.peakBytes)}, `
        + `written ${gb(m.bytes!)}, output SQNR on the held-out samples ${m.outputSqnr} dB (reference numerics)`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child') {
    process.stdout.write(JSON.stringify(await child(args[1], args[2], args[3], args[4])) + '\n');
    return;
  }
  const only = args[0];
  if (!only || only === 'large') bench('large', ['rtn']);
  if (!only || only === 'gptq') bench('gptq', ['rtn', 'gptq']);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
