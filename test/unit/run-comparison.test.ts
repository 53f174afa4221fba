// Comparing two runs: what changed between their recipes, in words, and the metric a run is summed up by.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { recipeFor } from '../../shared/backends';
import { headlineMetric } from '../../shared/metrics';
import { recipeChanges, withHigherPrecision } from '../../shared/recipe';

test('recipe changes: a layer kept in float, a method, granularity and algorithms, each a line; none for the same recipe', () => {
  const base = recipeFor('xnnpack', 'a8w8');
  assert.deepEqual(recipeChanges(base, base), []);
  const kept = withHigherPrecision(base, [{ tensor: 'conv1_out', nodes: ['conv1'] }], 'float');
  assert.deepEqual(recipeChanges(base, kept), ['nodes kept in float: + conv1', 'conv1_out: as the recipe → float']);
  assert.deepEqual(recipeChanges(kept, base), ['nodes quantized again: conv1', 'conv1_out: float → as the recipe']);
  const other = { ...base, method: 'percentile:99.99', granularity: 'per-tensor' as const, algorithms: { cle: true, adaround: { iterations: 500 } } };
  assert.deepEqual(recipeChanges(base, other), ['granularity: per-channel → per-tensor', 'calibration method: minmax → percentile:99.99', 'algorithms: none → CLE + AdaRound (500 iterations)']);
  const sixteen = withHigherPrecision(base, [{ tensor: 'relu_out', nodes: ['relu'] }], 'uint16');
  assert.deepEqual(recipeChanges(base, sixteen), ['relu_out: as the recipe → uint16']);
});

test('the headline metric: the user\'s own, else accuracy, else agreement', () => {
  assert.equal(headlineMetric({ cosine: 1, 'argmax-agreement': 0.9, 'top1-agreement': 0.9, accuracy: 0.8, custom: 0.7 }), 'custom');
  assert.equal(headlineMetric({ cosine: 1, 'argmax-agreement': 0.9, 'top1-agreement': 0.9, accuracy: 0.8 }), 'accuracy');
  assert.equal(headlineMetric({ cosine: 1, 'argmax-agreement': 0.9 }), 'argmax-agreement');
  assert.equal(headlineMetric({ cosine: 1 }), undefined);
});
