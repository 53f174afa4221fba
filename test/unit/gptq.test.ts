import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gptqMatMulNBits, type InputMoments } from '../../main/convert/gptq';
import { quantizeMatMulNBits } from '../../main/plan/qmath';
import { randomArray } from '../helpers/build';

const K = 64;
const N = 16;
const ROWS = 512;

/** Rows that live near an 8-dimensional subspace of R^K, as a layer's inputs do: strongly correlated. */
function correlatedRows(): Float64Array {
  const z = randomArray(ROWS * 8, 1);
  const a = randomArray(8 * K, 2);
  const noise = randomArray(ROWS * K, 3, 0.05);
  const x = new Float64Array(ROWS * K);
  for (let r = 0; r < ROWS; r++) for (let j = 0; j < K; j++) {
    let s = noise[r * K + j];
    for (let p = 0; p < 8; p++) s += z[r * 8 + p] * a[p * K + j];
    x[r * K + j] = s;
  }
  return x;
}

function moments(x: Float64Array): InputMoments {
  const h = new Float64Array(K * K);
  for (let r = 0; r < ROWS; r++) for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) h[i * K + j] += x[r * K + i] * x[r * K + j];
  return { h, k: K, rows: ROWS };
}

/** ‖X (B − B̂)‖² over every row: the layer's summed squared output error. */
function outputError(x: Float64Array, b: Float32Array, q: Float32Array): number {
  let total = 0;
  for (let r = 0; r < ROWS; r++) for (let c = 0; c < N; c++) {
    let s = 0;
    for (let j = 0; j < K; j++) s += x[r * K + j] * (b[j * N + c] - q[j * N + c]);
    total += s * s;
  }
  return total;
}

for (const [symmetric, actOrder] of [[true, true], [true, false], [false, true], [false, false]] as const) {
  test(`GPTQ (${symmetric ? 'symmetric' : 'asymmetric'}, ${actOrder ? 'act-order' : 'in order'}) cuts a layer's output error on correlated inputs well below nearest rounding`, async () => {
    const x = correlatedRows();
    const b = randomArray(K * N, 4, 0.5);
    const nearest = quantizeMatMulNBits(b, K, N, 32, symmetric);
    const r = await gptqMatMulNBits(b, K, N, moments(x), { actOrder, damp: 0.01, blockSize: 32, symmetric }, nearest);
    assert.equal(r.fellBack, undefined);
    const [eNearest, eGptq] = [outputError(x, b, nearest.dequantized), outputError(x, b, r.weight.dequantized)];
    assert.ok(eGptq < eNearest / 3, `output error ${eGptq.toFixed(3)} against nearest ${eNearest.toFixed(3)}`);
    // The reported figures are this error, measured through H.
    let power = 0;
    for (let row = 0; row < ROWS; row++) for (let c = 0; c < N; c++) {
      let s = 0;
      for (let j = 0; j < K; j++) s += x[row * K + j] * b[j * N + c];
      power += s * s;
    }
    assert.ok(Math.abs(r.outputSqnr.gptq - 10 * Math.log10(power / eGptq)) < 0.01, 'the figures are measured in float32');
    assert.ok(Math.abs(r.outputSqnr.nearest - 10 * Math.log10(power / eNearest)) < 0.01);
    // One scale per column and block of 32 along K.
    assert.equal(r.weight.scales.length, N * 2);
  });
}

test('with uncorrelated inputs of equal energy (H = I) GPTQ has no error to spread and rounds exactly as nearest', async () => {
  const h = new Float64Array(K * K);
  for (let i = 0; i < K; i++) h[i * K + i] = 1;
  const b = randomArray(K * N, 5);
  for (const actOrder of [true, false]) {
    const nearest = quantizeMatMulNBits(b, K, N, 32, true);
    const r = await gptqMatMulNBits(b, K, N, { h, k: K, rows: 1 }, { actOrder, damp: 0.01, blockSize: 32, symmetric: true }, nearest);
    assert.deepEqual(r.weight.packed, nearest.packed);
  }
});

test('an input that is always zero leaves H singular there; GPTQ still quantizes, and its weights do not matter', async () => {
  const x = correlatedRows();
  for (let r = 0; r < ROWS; r++) x[r * K + 5] = 0;
  const b = randomArray(K * N, 6, 0.5);
  const nearest = quantizeMatMulNBits(b, K, N, 32, true);
  const r = await gptqMatMulNBits(b, K, N, moments(x), { actOrder: true, damp: 0.01, blockSize: 32, symmetric: true }, nearest);
  assert.equal(r.fellBack, undefined);
  assert.ok(outputError(x, b, r.weight.dequantized) < outputError(x, b, nearest.dequantized));
});
