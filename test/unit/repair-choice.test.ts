// How the repair search tells a better model from a worse one: past the target, by the metric
// beyond the search samples' noise, and within it by output SQNR.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Target } from '../../shared/metrics';
import type { RunQuality } from '../../main/eval/sensitivity';
import { better, meets, pairedNoise } from '../../main/repair/search';

/** A run over `n` samples with `right` of them right (the first ones), at `sqnr` dB. */
function run(n: number, right: number[], sqnr: number): RunQuality {
  const each = new Float64Array(n);
  for (const i of right) each[i] = 1;
  return { sqnr, metrics: { custom: right.length / n }, perSample: { custom: each } };
}
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const target: Target = { kind: 'metric', metric: 'custom', value: 0.99 };

test('a metric difference of one sample in 256 is noise: the output SQNR decides', () => {
  const reranged = run(256, range(0, 248), 11.2);
  const adaround = run(256, [...range(0, 243), ...range(249, 253)], 17.0);
  assert.ok(pairedNoise(adaround.perSample!.custom, reranged.perSample!.custom) > 1 / 256);
  assert.equal(better(adaround, reranged, target), true);
  assert.equal(better(reranged, adaround, target), false);
});

test('a metric gain past the noise wins over output SQNR, and meeting the target over both', () => {
  const plain = run(256, range(0, 239), 9.2);
  const reranged = run(256, range(0, 248), 11.2);
  const sharper = run(256, range(0, 239), 14.0);
  // Nine samples gained and none lost: well past twice the standard error of the differences.
  assert.equal(better(reranged, plain, target), true);
  assert.equal(better(sharper, reranged, target), false);
  const meeting = run(256, range(0, 254), 5);
  assert.equal(better(meeting, reranged, { kind: 'metric', metric: 'custom', value: 0.99 }), true);
  assert.equal(better(reranged, meeting, { kind: 'metric', metric: 'custom', value: 0.99 }), false);
});

test('without per-sample values, and for an output-SQNR target, any gain counts', () => {
  const a: RunQuality = { sqnr: 20, metrics: { custom: 0.5 } };
  const b: RunQuality = { sqnr: 30, metrics: { custom: 0.49 } };
  assert.equal(pairedNoise(undefined, b.perSample?.custom), 0);
  assert.equal(better(a, b, target), true);
  assert.equal(better(b, a, { kind: 'sqnr', value: 40 }), true);
  assert.equal(better(a, a, { kind: 'sqnr', value: 40 }), false, 'a tie is no gain');
});

test('perplexity is met at or below its target, and the lower of two models is the better', () => {
  const at = (perplexity: number, sqnr: number): RunQuality => ({ sqnr, metrics: { perplexity } });
  const goal: Target = { kind: 'metric', metric: 'perplexity', value: 4.5 };
  assert.equal(meets(at(4.41, 20), goal), true);
  assert.equal(meets(at(4.5, 20), goal), true);
  assert.equal(meets(at(4.6, 30), goal), false);
  assert.equal(better(at(4.41, 20), at(4.6, 30), goal), true, 'meeting it beats a higher SQNR');
  assert.equal(better(at(4.8, 20), at(5.2, 30), { ...goal, value: 4.0 }), true, 'neither meets it: the lower perplexity');
});
