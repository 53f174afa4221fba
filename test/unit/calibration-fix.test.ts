// Ranges recomputed from a saved histogram, as a repair does without running the model again:
// 10 000 values spread over [0, 10) and one outlier at 999.5.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rerange } from '../../main/calib/rerange';
import type { ActivationSpec } from '../../main/plan/plan';

const counts = new Array<number>(1000).fill(0);
for (let j = 0; j < 10; j++) counts[j] = 1000;
counts[999] = 1;
const histogram = { min: 0, max: 1000, counts };
const spec = (symmetric: boolean): ActivationSpec => ({ tensor: 't', type: 'uint8', symmetric, method: 'minmax', node: 'n', op: 'Conv', index: 0 });
const histograms = new Map([['t', histogram]]);
const current = new Map([['t', { min: 0, max: 1000 }], ['u', { min: -1, max: 1 }]]);

test('min/max keeps the outlier, percentile 99.9 clips it, MSE keeps it when clipping would cost more', () => {
  const at = (method: string, symmetric = false) => rerange([spec(symmetric)], current, histograms, method).get('t')!;
  assert.ok(Math.abs(at('minmax').max - 1000) < 1e-9 && at('minmax').min === 0);
  const p = at('percentile:99.9');
  assert.ok(p.max > 9.9 && p.max <= 10, `percentile:99.9 → ${p.max}`);
  // Clipping the outlier to 10 costs 990² once; keeping it costs (1000/255)²/12 on 10 000 values.
  assert.ok(at('mse').max > 900, `mse → ${at('mse').max}`);
  const s = at('percentile:99.9', true);
  assert.equal(s.min, -s.max);
});

test('tensors without a saved histogram keep their range', () => {
  const out = rerange([spec(false), { ...spec(false), tensor: 'u' }], current, histograms, 'percentile:99.9');
  assert.deepEqual(out.get('u'), { min: -1, max: 1 });
});
