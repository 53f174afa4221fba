import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blockGrouping, channelGrouping, computeQParams, fakeQuantize, packNibbles, quantizeGrouped, qRange, quantizeBias, quantizeValue, quantizeWeight } from '../../main/plan/qmath';
import { roundHalfEven } from '../../main/base/round';
import { addComparison, emptyComparison, sqnrDb, sqnrOf } from '../../main/stats/sqnr';

test('rounds half to even like ONNX QuantizeLinear', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, 2.6, -2.6].map(roundHalfEven), [0, 2, 2, 0, -2, -2, 2, 3, -3]);
  // Where v + 0.5 is inexact: just below a half, and odd integers past 2^52.
  assert.deepEqual([0.49999999999999994, -0.49999999999999994, 2 ** 52 + 1, -(2 ** 52 + 1), 2 ** 53 + 2, 1e300].map(roundHalfEven), [0, 0, 2 ** 52 + 1, -(2 ** 52 + 1), 2 ** 53 + 2, 1e300]);
  assert.ok(Number.isNaN(roundHalfEven(NaN)));
  assert.deepEqual([Infinity, -Infinity].map(roundHalfEven), [Infinity, -Infinity]);
  // Against Math.round, which takes halves up, on random values of every magnitude and on halves.
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let k = 0; k < 20000; k++) {
    const v = (random() - 0.5) * 2 ** (random() * 60);
    for (const x of [v, Math.fround(v), Math.round(v) + 0.5]) {
      const up = Math.round(x);
      const expected = Math.abs(x % 1) === 0.5 && up % 2 !== 0 ? up - 1 : up;
      assert.ok(roundHalfEven(x) === expected, `${x}: ${roundHalfEven(x)}, not ${expected}`);
    }
  }
});

test('quantize saturates at the type range', () => {
  const [qmin, qmax] = qRange('int8');
  assert.equal(quantizeValue(1000, 0.1, 0, qmin, qmax), 127);
  assert.equal(quantizeValue(-1000, 0.1, 0, qmin, qmax), -128);
  assert.equal(quantizeValue(0.25, 0.1, 3, qmin, qmax), 5); // 2.5 rounds to 2, plus zero point 3
  assert.deepEqual(qRange('uint16'), [0, 65535]);
  assert.deepEqual(qRange('int4'), [-8, 7]);
  assert.deepEqual(qRange('int8', true), [-127, 127]);
});

test('asymmetric uint8 parameters include zero and map the range ends', () => {
  const p = computeQParams(-1, 3, 'uint8', false);
  assert.equal(p.scale, Math.fround(4 / 255));
  assert.equal(p.zeroPoint, 64); // round(0 - (-1) / (4/255)) = round(63.75)
  const positive = computeQParams(2, 5, 'uint8', false); // widened to [0, 5]
  assert.equal(positive.zeroPoint, 0);
  assert.equal(positive.scale, Math.fround(5 / 255));
  assert.ok(Math.abs(fakeQuantize(5, positive, 0, 255) - 5) < 1e-6);
  assert.equal(fakeQuantize(0, p, 0, 255), 0);
});

test('symmetric parameters: zero point 0 for signed, midpoint for unsigned', () => {
  const s = computeQParams(-2, 1, 'int8', true);
  assert.equal(s.zeroPoint, 0);
  assert.equal(s.scale, Math.fround(2 / 127.5));
  const u = computeQParams(-2, 1, 'uint8', true);
  assert.equal(u.zeroPoint, 128);
  const narrow = computeQParams(-2, 1, 'int8', true, qRange('int8', true));
  assert.equal(narrow.scale, Math.fround(2 / 127));
});

test('a grouping\'s runs give every element the group of() gives it, in order, once', () => {
  const groupings = [
    ['per tensor', [4, 3, 2], channelGrouping([4, 3, 2], undefined)],
    ['channel first', [4, 3, 2], channelGrouping([4, 3, 2], 0)],
    ['channel between', [4, 3, 2], channelGrouping([4, 3, 2], 1)],
    ['channel last', [5, 3], channelGrouping([5, 3], 1)],
    ['blocks of the first axis', [7, 3], blockGrouping([7, 3], 0, 2)],
    ['blocks of the last axis', [3, 7], blockGrouping([3, 7], 1, 4)],
    ['blocks between', [2, 5, 3], blockGrouping([2, 5, 3], 1, 2)],
  ] as const;
  for (const [what, dims, grouping] of groupings) {
    const length = dims.reduce((a, b) => a * b, 1);
    const seen: number[] = [];
    grouping.runs(length, (start, end, group, step) => {
      assert.equal(start, seen.length, `${what}: runs in order`);
      for (let i = start, g = group; i < end; i++, g += step) seen.push(g);
    });
    assert.deepEqual(seen, Array.from({ length }, (_, i) => grouping.of(i)), what);
  }
});

test('per-channel weights get one scale per output channel', () => {
  // Two channels of two values: channel 0 spans ±1, channel 1 spans ±4.
  const w = quantizeWeight(new Float32Array([1, -1, 4, -2]), [2, 2], 'int8', true, 0, qRange('int8', true));
  assert.deepEqual(Array.from(w.scales), [Math.fround(1 / 127), Math.fround(4 / 127)]);
  assert.deepEqual(Array.from(w.values), [127, -127, 127, -64]);
  assert.deepEqual(Array.from(w.zeroPoints), [0, 0]);
  const perTensor = quantizeWeight(new Float32Array([1, -1, 4, -2]), [2, 2], 'int8', true, undefined, qRange('int8', true));
  assert.equal(perTensor.scales.length, 1);
  assert.ok(sqnrOf([1, -1, 4, -2], w.dequantized) > sqnrOf([1, -1, 4, -2], perTensor.dequantized));
});

test('bias is int32 with scale = input scale x weight scale', () => {
  const b = quantizeBias(new Float32Array([0.5, -0.25]), 0.01, new Float32Array([0.1, 0.2]));
  assert.deepEqual(Array.from(b.scales), [Math.fround(0.001), Math.fround(0.002)]);
  assert.deepEqual(Array.from(b.values), [500, -125]);
});

test('int4 packing puts the first value in the low nibble', () => {
  assert.deepEqual(Array.from(packNibbles([1, 2, -1, 7, 3])), [0x21, 0x7f, 0x03]);
});

test('SQNR follows 20·log10(‖x‖/‖x−y‖) and is +inf for identical tensors', () => {
  assert.equal(sqnrOf([1, 2, 3], [1, 2, 3]), Infinity);
  const x = [3, 4];
  const y = [3, 3.5];
  assert.ok(Math.abs(sqnrOf(x, y) - 20 * Math.log10(5 / 0.5)) < 1e-9);
  assert.equal(sqnrDb(100, 1), 20);
});

test('a comparison taken span by span into running sums gives the sums of the whole, and a NaN leaves Σx² not finite', () => {
  const ref = Float32Array.from([1, -2, 3, 0.5, -4, 2]);
  const approx = Float32Array.from([1.5, -2, 2, 0.5, -3, 2.25]);
  const sums = emptyComparison();
  const first = addComparison(sums, ref, approx, 0, 3);
  const second = addComparison(sums, ref, approx, 3, 6);
  assert.deepEqual(first, { dot: 1.5 + 4 + 6, approxPower: 2.25 + 4 + 4 });
  assert.deepEqual(second, { dot: 0.25 + 12 + 4.5, approxPower: 0.25 + 9 + 5.0625 });
  assert.deepEqual(sums, { signal: 1 + 4 + 9 + 0.25 + 16 + 4, noise: 0.25 + 1 + 1 + 0.0625, maxAbsError: 1, refMin: -4, refMax: 3 });
  assert.equal(sqnrDb(sums.signal, sums.noise), sqnrOf(ref, approx));
  addComparison(sums, Float32Array.from([NaN]), Float32Array.from([0]));
  assert.ok(!Number.isFinite(sums.signal));
});

test('block-wise weights: one scale per block along the axis and per position of the other axes', () => {
  // A [5, 2] MatMul weight in blocks of 2 along K (axis 0): blocks rows {0,1}, {2,3}, {4}; scales [3, 2].
  const g = blockGrouping([5, 2], 0, 2);
  assert.deepEqual(g.dims, [3, 2]);
  assert.equal(g.count, 6);
  assert.deepEqual(Array.from({ length: 10 }, (_, i) => g.of(i)), [0, 1, 0, 1, 2, 3, 2, 3, 4, 5]);
  const data = Float32Array.from([1, -2, 7, 0.5, 3, 4, -3, 0.25, 0.7, 1]);
  const q = quantizeGrouped(data, 'int4', true, g, [-7, 7]);
  assert.deepEqual(Array.from(q.scales), [Math.fround(7 / 7), Math.fround(2 / 7), Math.fround(3 / 7), Math.fround(4 / 7), Math.fround(0.7 / 7), Math.fround(1 / 7)]);
  assert.equal(q.values[2], 7, 'each block\'s largest magnitude maps to the end of the range');
  // A [2, 4, 1, 1] Conv weight in blocks of 2 along its input channels (axis 1).
  const conv = blockGrouping([2, 4, 1, 1], 1, 2);
  assert.deepEqual(conv.dims, [2, 2, 1, 1]);
  assert.deepEqual(Array.from({ length: 8 }, (_, i) => conv.of(i)), [0, 0, 1, 1, 2, 2, 3, 3]);
});
