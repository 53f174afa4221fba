// Runs the saturation probe and quantizes the MNIST CNN for the cpu backend, with the saturation
// fix and without, and prints what the reports say as JSON. The numerics test runs this script on
// an emulated x86 CPU without VNNI (qemu-x86_64 -cpu EPYC-Rome…), where ONNX Runtime's fused
// u8×s8 kernels saturate as they do on such hardware, whatever the machine running the suite.
import * as path from 'node:path';
import { recipeFor } from '../../shared/backends';
import { readNpyHeader, readNpyRange, writeNpy } from '../../main/data/npy';
import { hostNumerics } from '../../main/onnx/numerics';
import { quantize } from '../../main/jobs/quantize';
import type { Report } from '../../shared/report';
import { ROOT, tempDir } from './build';

export const EMULATED_CPU = 'EPYC-Rome,-rdseed,-sha-ni,-rdpid,-fxsr-opt,-misalignsse,-3dnowprefetch,-osvw,-topoext,-perfctr-core,-clzero,-xsaveerptr,-wbnoinvd,-ibpb,-amd-stibp,-nrip-save,-xsavec,-xsaves';

const MNIST = path.join(ROOT, 'test', 'fixtures', 'mnist-cnn');

export interface EmulatedFigures {
  host: Awaited<ReturnType<typeof hostNumerics>>;
  runs: Record<'fixed' | 'unfixed', Pick<Report, 'numerics' | 'outputs' | 'deployed' | 'host'> & { weightType: string }>;
}

async function main(): Promise<void> {
  const dir = tempDir('emulated');
  const source = path.join(MNIST, 'eval.npy');
  const header = readNpyHeader(source);
  const evaluation = path.join(dir, 'eval64.npy');
  writeNpy(evaluation, 'float32', [64, 1, 28, 28], readNpyRange(source, header, 0, 64 * 784) as Float32Array);
  const runs = {} as EmulatedFigures['runs'];
  for (const [name, saturationFix] of [['fixed', true], ['unfixed', false]] as const) {
    const { report } = await quantize({
      model: path.join(MNIST, 'model.onnx'), recipe: { ...recipeFor('cpu', 'a8w8'), calibrationSamples: 64 }, calibration: path.join(MNIST, 'calib.npy'),
      evaluation, out: path.join(dir, `${name}.onnx`), latency: false, saturationFix,
    });
    runs[name] = { numerics: report.numerics, outputs: report.outputs, deployed: report.deployed, host: report.host, weightType: report.recipe.weightType };
  }
  const figures: EmulatedFigures = { host: await hostNumerics(), runs };
  process.stdout.write(JSON.stringify(figures));
}

if (require.main === module) main().catch((err: Error) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
