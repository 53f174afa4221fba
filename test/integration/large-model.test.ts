// Models past 2 GB take another path everywhere: their weights are read tensor by tensor from the
// external data file, ONNX Runtime loads them from files, and the quantized model is written as
// model.onnx + model.onnx.data. The threshold is lowered here so that a small model takes that path;
// every figure must be the one the ordinary path gives.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { recipeFor } from '../../shared/backends';
import { writeNpy } from '../../main/data/npy';
import { quantize } from '../../main/jobs/quantize';
import { largeModelBytes, saveModel, setLargeModelBytes } from '../../main/onnx/model';
import { buildModel, randomArray } from '../helpers/build';
import { trackedTempDirs } from '../helpers/cli';

const tempDir = trackedTempDirs();
const K = 256;

/** x → MatMul → Relu → MatMul → Relu → Gemm (transB): 1.3 MB of float weights. */
function mlp() {
  return buildModel({
    inputs: { x: ['n', K] }, outputs: { y: ['n', 64] },
    initializers: {
      w1: { dims: [K, 512], data: randomArray(K * 512, 1, 0.1) }, w2: { dims: [512, K], data: randomArray(512 * K, 2, 0.1) },
      w3: { dims: [64, K], data: randomArray(64 * K, 3, 0.1) }, b3: { dims: [64], data: randomArray(64, 4, 0.1) },
    },
    nodes: [
      { op: 'MatMul', inputs: ['x', 'w1'], outputs: ['h1'], name: 'fc1' }, { op: 'Relu', inputs: ['h1'], outputs: ['r1'], name: 'relu1' },
      { op: 'MatMul', inputs: ['r1', 'w2'], outputs: ['h2'], name: 'fc2' }, { op: 'Relu', inputs: ['h2'], outputs: ['r2'], name: 'relu2' },
      { op: 'Gemm', inputs: ['r2', 'w3', 'b3'], outputs: ['y'], name: 'fc3', attrs: { transB: 1 } },
    ],
  });
}

test('a model whose weights live in external data is quantized with GPTQ and statically, written as model.onnx + model.onnx.data, with the figures of the ordinary path', async () => {
  const dir = tempDir('large');
  const samples = 64;
  writeNpy(path.join(dir, 'x.npy'), 'float32', [samples, K], randomArray(samples * K, 9));
  const job = { calibration: path.join(dir, 'x.npy'), holdOut: 0.25, latency: false, saturationFix: false };
  const runs = async (model: string, tag: string) => ({
    gptq: (await quantize({ ...job, model, recipe: { ...recipeFor('cpu', 'w4'), algorithms: { gptq: { actOrder: true, damp: 0.01 } } }, out: path.join(dir, `${tag}-gptq.onnx`) })).report,
    static: (await quantize({ ...job, model, recipe: recipeFor('cpu', 'a8w8'), out: path.join(dir, `${tag}-static.onnx`) })).report,
  });
  const inline = path.join(dir, 'inline.onnx');
  saveModel(mlp(), inline);
  const ordinary = await runs(inline, 'ordinary');
  const limit = largeModelBytes();
  setLargeModelBytes(200_000);
  try {
    const external = path.join(dir, 'external.onnx');
    const saved = saveModel(mlp(), external);
    assert.ok(saved.dataFile && fs.statSync(saved.dataFile).size > 1_000_000 && fs.statSync(external).size < 10_000, 'the weights are in external.onnx.data');
    const large = await runs(external, 'large');
    for (const kind of ['gptq', 'static'] as const) {
      assert.deepEqual(large[kind].outputs, ordinary[kind].outputs, `${kind}: the same output figures`);
      assert.deepEqual(large[kind].layers.map((l) => l.sqnr), ordinary[kind].layers.map((l) => l.sqnr), `${kind}: the same layer figures`);
    }
    // The static model keeps 0.28 MB of 8-bit weights: past the lowered limit, so written with its data beside it.
    const written = path.join(dir, 'large-static.onnx');
    assert.ok(fs.existsSync(`${written}.data`), 'model.onnx.data written');
    assert.ok(large.static.artifacts.some((a) => a.file === written));
    const session = await ort.InferenceSession.create(written);
    const out = await session.run({ x: new ort.Tensor('float32', randomArray(2 * K, 5), [2, K]) });
    assert.deepEqual(out.y.dims, [2, 64]);
    await session.release();
  } finally {
    setLargeModelBytes(limit);
  }
});
