// The per-layer figures as the evaluation reduces them inside ONNX Runtime (one sums vector, pairs
// reduced in graph order) against a plain computation: every compared tensor of both halves
// copied out and summed in JavaScript in double precision, with its local error through the
// layer's own scale and zero point. On the sample model and the MNIST CNN they agree within 0.1 dB,
// and the float ranges measured beside them are exactly the tensors' extremes.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { recipeFor } from '../../shared/backends';
import type { PreprocessSpec } from '../../shared/preprocess';
import type { Recipe } from '../../shared/recipe';
import { calibrate } from '../../main/calib/calibrate';
import { convertModel, type LayerMapping } from '../../main/convert/convert';
import type { SampleSource } from '../../main/data/readers';
import { comparisonModel, QUANTIZED_PREFIX } from '../../main/eval/compare-model';
import { evaluate, localSqnr } from '../../main/eval/evaluate';
import { rowPairs } from '../../main/eval/layer-rows';
import { loadForJob } from '../../main/jobs/job';
import { typedValueInfo } from '../../main/onnx/edit';
import { DataType, onnx } from '../../main/onnx/proto';
import { numericsOptions } from '../../main/onnx/numerics';
import { createSession, toOrtFeeds } from '../../main/onnx/session';
import { qRange } from '../../main/plan/qmath';
import { calibrationTensors } from '../../main/plan/plan';
import { sqnrDb } from '../../main/stats/sqnr';
import { memorySource } from '../../main/data/subset';
import { buildModel, ROOT } from '../helpers/build';

const BOUND_DB = 0.1;

/** ONNX QuantizeLinear then DequantizeLinear of one value: round half to even, saturate. */
function fakeQuantize(x: number, layer: LayerMapping): number {
  const { scale, zeroPoint } = layer.params!;
  const [lo, hi] = qRange(layer.type);
  const v = Math.fround(x / scale);
  const r = Math.round(v);
  const even = Math.abs(v - Math.trunc(v)) === 0.5 ? 2 * Math.round(v / 2) : r;
  return Math.fround((Math.min(hi, Math.max(lo, even + zeroPoint)) - zeroPoint) * scale);
}

async function plainSums(floatModel: onnx.ModelProto, quantModel: onnx.ModelProto, layers: LayerMapping[], source: SampleSource) {
  const { model } = comparisonModel(floatModel, quantModel, []);
  const inputs = new Set(quantModel.graph!.input.map((i) => i.name));
  const quantName = (l: LayerMapping) => (inputs.has(l.quant) ? l.quant : QUANTIZED_PREFIX + l.quant);
  const names = new Set(model.graph!.output.map((o) => o.name));
  for (const l of layers) for (const n of [l.float, quantName(l)]) if (!names.has(n)) { names.add(n); model.graph!.output.push(typedValueInfo(n, DataType.FLOAT)); }
  const session = await createSession(model, 'side by side', numericsOptions('reference'));
  const sums = new Map(layers.map((l) => [l.float, { signal: 0, noise: 0, local: 0, min: Infinity, max: -Infinity }]));
  for await (const feed of source.batches(1)) {
    const out = await session.run(toOrtFeeds(feed));
    for (const l of layers) {
      const x = (out[l.float] as ort.Tensor).data as Float32Array;
      const y = (out[quantName(l)] as ort.Tensor).data as Float32Array;
      const s = sums.get(l.float)!;
      for (let i = 0; i < x.length; i++) {
        s.signal += x[i] * x[i];
        s.noise += (x[i] - y[i]) ** 2;
        s.local += (x[i] - fakeQuantize(x[i], l)) ** 2;
        s.min = Math.min(s.min, x[i]);
        s.max = Math.max(s.max, x[i]);
      }
    }
  }
  await session.release();
  return sums;
}

async function compareWithPlain(model: string, calibration: string, evaluation: string, recipe: Recipe, preprocess?: PreprocessSpec) {
  const m = await loadForJob({ model, recipe, preprocess }, recipe, () => {});
  const { ranges } = await calibrate(m.floatModel, calibrationTensors(m.plan), await m.open(calibration, 'calibration'), { batchSize: 8 });
  const converted = convertModel(m.view, m.plan, ranges);
  const source = await m.open(evaluation, 'evaluation');
  // Every pair measures its float range too, as rows without a calibrated range do: by rows where shape inference knows the dims.
  const pairs = rowPairs(converted.layers).map((p) => ({ ...p, measureRange: true }));
  const result = await evaluate(m.floatModel, converted.model, pairs, source, { batchSize: 8, numerics: 'reference', local: true });
  const plain = await plainSums(m.floatModel, converted.model, converted.layers, source);
  // The local figure alone, as a repair ranks by it: the float model with the Q/DQs, no quantized half.
  const alone = await localSqnr(m.floatModel, converted.model, pairs, source, { batchSize: 8, numerics: 'reference' });
  assert.equal(alone.size, converted.layers.length, 'every layer\'s quantizer takes constant parameters');
  let worst = 0;
  for (const l of converted.layers) {
    const e = result.layers.get(l.float)!;
    const p = plain.get(l.float)!;
    for (const [what, ours, theirs] of [['cumulative', e.sqnr, sqnrDb(p.signal, p.noise)], ['local', e.localSqnr!, sqnrDb(p.signal, p.local)], ['local alone', alone.get(l.float)!, sqnrDb(p.signal, p.local)]] as const) {
      if (!Number.isFinite(theirs) && ours === theirs) continue;
      const delta = Math.abs(ours - theirs);
      worst = Math.max(worst, delta);
      assert.ok(delta <= BOUND_DB, `${l.float}: ${what} SQNR ${ours.toFixed(3)} dB reduced in ONNX Runtime against ${theirs.toFixed(3)} dB summed in JavaScript`);
    }
    assert.deepEqual(e.range, { min: p.min, max: p.max }, `${l.float}: measured range`);
  }
  return { layers: converted.layers.length, worst, samples: result.samples };
}

test('sample model: per-layer SQNR reduced in ONNX Runtime within 0.1 dB of the plain computation', async () => {
  const dir = path.join(ROOT, 'resources', 'sample');
  const r = await compareWithPlain(path.join(dir, 'cls.onnx'), path.join(dir, 'calibration'), path.join(dir, 'calibration'), recipeFor('xnnpack'),
    { size: [48, 192], mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
  console.log(`sample: ${r.layers} layers over ${r.samples} samples, worst difference ${r.worst.toFixed(4)} dB`);
  assert.ok(r.layers >= 50);
});

test('MNIST CNN: per-layer SQNR reduced in ONNX Runtime within 0.1 dB of the plain computation', async () => {
  const dir = path.join(ROOT, 'test', 'fixtures', 'mnist-cnn');
  const r = await compareWithPlain(path.join(dir, 'model.onnx'), path.join(dir, 'calib.npy'), path.join(dir, 'eval.npy'), recipeFor('cpu', 'a8w8'));
  console.log(`MNIST: ${r.layers} layers over ${r.samples} samples, worst difference ${r.worst.toFixed(4)} dB`);
  assert.ok(r.layers >= 5);
});

test('an output that becomes +inf, -inf or NaN on some sample stops the evaluation, naming the output and the samples; finite outputs pass', async () => {
  // y = Log(x): -inf at 0, NaN below it; z = Exp(x): +inf past 89.
  const model = buildModel({
    inputs: { x: ['N', 3] }, outputs: { y: ['N', 3], z: ['N', 3] },
    nodes: [{ op: 'Log', inputs: ['x'], outputs: ['y'] }, { op: 'Exp', inputs: ['x'], outputs: ['z'] }],
  });
  const source = (rows: number[][]) => memorySource(rows.map((r) => ({ x: { type: 'float32', data: Float32Array.from(r), dims: [1, 3] } })), `${rows.length} rows`);
  const fine = await evaluate(model, model, [], source([[1, 2, 3], [0.5, 4, 80]]), { batchSize: 1, numerics: 'reference' });
  assert.equal(fine.samples, 2);
  for (const [row, output] of [[[1, 0, 3], 'y'], [[1, -2, 3], 'y'], [[1, 2, 100], 'z']] as const) {
    await assert.rejects(evaluate(model, model, [], source([[1, 2, 3], [...row]]), { batchSize: 1, numerics: 'reference' }),
      new RegExp(`tensor "${output}" of the model becomes NaN or infinite .* on sample 2, whose inputs reach`), `${row}`);
  }
});
