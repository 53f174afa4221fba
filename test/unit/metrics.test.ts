// Task metrics against hand-computed values: agreement, top-5, accuracy with labels, cosine, and
// the two label sources (a .npy of class ids, a folder-per-class image layout).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { writeNpy } from '../../main/data/npy';
import { readLabels } from '../../main/data/labels';
import { argmax, MetricAccumulator, referenceRows, topK } from '../../main/eval/metrics';
import { describeTarget, parseMetricTarget } from '../../shared/metrics';
import { tempDir } from '../helpers/build';

test('classifier metrics: top-1/top-5 agreement, accuracy and float accuracy from labels', () => {
  // 3 samples, 6 classes. Float argmaxes: 0, 1, 2. Quantized argmaxes: 0, 3, 2; sample 1's float
  // class 1 is quantized rank 2, inside its top 5.
  const ref = Float32Array.from([
    9, 1, 1, 1, 1, 1,
    1, 9, 1, 5, 1, 1,
    1, 1, 9, 1, 1, 1,
  ]);
  const quant = Float32Array.from([
    8, 1, 1, 1, 1, 1,
    1, 7, 1, 8, 1, 1,
    1, 1, 9, 1, 2, 1,
  ]);
  const m = new MetricAccumulator();
  // Labels 0, 1, 4: float gets samples 0 and 1 right, quantized only sample 0.
  m.add(ref, quant, [3, 6], Int32Array.from([0, 1, 4]));
  const r = m.result();
  assert.equal(r['top1-agreement'], 2 / 3);
  assert.equal(r['argmax-agreement'], 2 / 3);
  assert.equal(r['top5-agreement'], 1);
  assert.equal(r.accuracy, 1 / 3);
  assert.equal(r['float-accuracy'], 2 / 3);
  // Top-5 of row 2 holds class 4 in both (quantized: 2, 4, 0, 1, 3; float: 2, 0, 1, 3, 4 on ties).
  assert.equal(r['top5-accuracy'], 1);
  assert.equal(r['float-top5-accuracy'], 1);
});

test('cosine per sample, averaged; sequences count argmax agreement per step and have no top-1', () => {
  const m = new MetricAccumulator();
  // Two samples of 2 steps x 2 classes. Sample 0 identical (cosine 1); sample 1 orthogonal (cosine 0).
  const ref = Float32Array.from([1, 0, 0, 1, 1, 0, 1, 0]);
  const quant = Float32Array.from([1, 0, 0, 1, 0, 1, 0, 1]);
  m.add(ref, quant, [2, 2, 2]);
  const r = m.result();
  assert.equal(r.cosine, 0.5);
  assert.equal(r['argmax-agreement'], 2 / 4);
  assert.equal(r['top1-agreement'], undefined);
  assert.equal(r.accuracy, undefined);
});

test('each sample\'s metrics, where asked for, average to the whole figures', () => {
  const m = new MetricAccumulator({ perSample: true });
  // Batch 1: two samples of 2 steps x 2 classes (sample 0 agrees on both steps, sample 1 on one);
  // batch 2: one sample agreeing on none.
  m.add(Float32Array.from([1, 0, 0, 1, 1, 0, 1, 0]), Float32Array.from([1, 0, 0, 1, 1, 0, 0, 1]), [2, 2, 2]);
  m.add(Float32Array.from([1, 0, 0, 1]), Float32Array.from([0, 1, 1, 0]), [1, 2, 2]);
  const each = m.perSample();
  assert.deepEqual([...each['argmax-agreement']!], [1, 0.5, 0]);
  assert.equal(m.result()['argmax-agreement'], 3 / 6);
  assert.equal(each.cosine!.length, 3);
  assert.equal(each['top1-agreement'], undefined);
  const classes = new MetricAccumulator({ perSample: true });
  classes.add(Float32Array.from([9, 1, 1, 9]), Float32Array.from([9, 1, 9, 1]), [2, 2], Int32Array.from([0, 1]));
  assert.deepEqual([...classes.perSample().accuracy!], [1, 0]);
  assert.deepEqual([...classes.perSample()['top1-agreement']!], [1, 0]);
  assert.deepEqual(new MetricAccumulator().perSample(), {}, 'nothing kept unless asked');
});

test('topK keeps the k largest, largest first, lower index on ties; its first is the argmax', () => {
  assert.deepEqual(topK([3, 9, 1, 9, 7, 0], 0, 6, 3), [1, 3, 4]);
  assert.deepEqual(topK([5, 4], 0, 2, 5), [0, 1]);
  assert.deepEqual(topK([2, 2, 1, 3, 3, 3, 0], 0, 7, 5), [3, 4, 5, 0, 1]);
  // Rows of few distinct values, where ties are the rule.
  let seed = 7;
  const next = () => (seed = (seed * 48271) % 2147483647) % 4;
  for (let r = 0; r < 200; r++) {
    const row = Float32Array.from({ length: 12 }, next);
    assert.equal(topK(row, 0, 12, 5)[0], argmax(row, 0, 12), `row ${[...row]}`);
  }
});

test('the float rows computed once give the same metrics, and a batch returns its comparison sums', () => {
  // Two samples of 2 steps x 3 classes, labelled at every step.
  const ref = Float32Array.from([1, 5, 2, 0, 1, 3, 4, 4, 1, 2, 0, 1]);
  const quant = Float32Array.from([1, 4, 3, 1, 1, 2, 4, 3, 2, 1, 2, 1]);
  const labels = Int32Array.from([1, 2, 0, 2]);
  const fresh = new MetricAccumulator({ perSample: true });
  const kept = new MetricAccumulator({ perSample: true });
  const rows = referenceRows(ref, [2, 2, 3]);
  assert.deepEqual([...rows.argmax], [1, 2, 0, 0]);
  assert.deepEqual([...rows.power], [1 + 25 + 4 + 0 + 1 + 9, 16 + 16 + 1 + 4 + 0 + 1]);
  const sums = { signal: 40 + 38, noise: ref.reduce((sum, x, i) => sum + (x - quant[i]) ** 2, 0), maxAbsError: 2, refMin: 0, refMax: 5 };
  assert.deepEqual(fresh.add(ref, quant, [2, 2, 3], labels), sums);
  assert.deepEqual(kept.add(ref, quant, [2, 2, 3], labels, rows), sums);
  assert.deepEqual(kept.result(), fresh.result());
  assert.deepEqual(kept.perSample(), fresh.perSample());
  assert.equal(fresh.result()['argmax-agreement'], 3 / 4, 'the last step\'s argmax moved');
});

test('labels from a .npy of class ids and from a folder per class', async () => {
  const dir = tempDir('labels');
  const npy = path.join(dir, 'labels.npy');
  writeNpy(npy, 'int64', [4], BigInt64Array.from([3n, 0n, 2n, 2n]));
  assert.deepEqual(Array.from(readLabels(npy).labels!.ids), [3, 0, 2, 2]);
  assert.deepEqual(readLabels(npy).values, [3, 0, 2, 2]);
  const floats = path.join(dir, 'floats.npy');
  writeNpy(floats, 'float32', [2], Float32Array.from([1, 2]));
  assert.throws(() => readLabels(floats), /integer class ids/);
  const images = path.join(dir, 'images');
  const png = await sharp(Buffer.alloc(12, 255), { raw: { width: 2, height: 2, channels: 3 } }).png().toBuffer();
  for (const [cls, file] of [['dog', 'b.png'], ['cat', 'z.png'], ['dog', 'a.png'], ['cat', 'a.png']]) {
    fs.mkdirSync(path.join(images, cls), { recursive: true });
    fs.writeFileSync(path.join(images, cls, file), png);
  }
  // Sorted by path: cat/a, cat/z, dog/a, dog/b — the order the image reader yields them.
  const folder = readLabels(images);
  assert.deepEqual(folder.classes, ['cat', 'dog']);
  assert.deepEqual(Array.from(folder.labels!.ids), [0, 0, 1, 1]);
  fs.writeFileSync(path.join(images, 'loose.png'), png);
  assert.throws(() => readLabels(images), /one subfolder per class/);
  assert.throws(() => readLabels(path.join(dir, 'missing.npy')), /no such labels file/);
});

test('labels from a JSON array: any values for a metric module, class ids where all are', () => {
  const dir = tempDir('json-labels');
  const write = (name: string, text: string) => {
    fs.writeFileSync(path.join(dir, name), text);
    return path.join(dir, name);
  };
  const text = readLabels(write('text.json', JSON.stringify(['hello', 'world', { box: [1, 2] }])));
  assert.deepEqual(text.values, ['hello', 'world', { box: [1, 2] }]);
  assert.equal(text.labels, undefined, 'text is no class id');
  const ids = readLabels(write('ids.json', '[2, 0, 1]'));
  assert.deepEqual(Array.from(ids.labels!.ids), [2, 0, 1]);
  assert.throws(() => readLabels(write('object.json', '{"a.png": "hello"}')), /must be an array with one label per sample.*found object/);
  assert.throws(() => readLabels(write('broken.json', '[1, 2')), /broken\.json: not valid JSON/);
  assert.throws(() => readLabels(write('labels.txt', 'a')), /\.json array/);
});

test('metric targets name the metric and a value in (0, 1]', () => {
  assert.deepEqual(parseMetricTarget('top1-agreement:0.99'), { kind: 'metric', metric: 'top1-agreement', value: 0.99 });
  assert.throws(() => parseMetricTarget('top1:0.99'), /top1-agreement, top5-agreement/);
  assert.throws(() => parseMetricTarget('cosine:2'), /VALUE in \(0, 1\]/);
  // A metric module's scale is its own: a WER-like score may be negative, a count above 1.
  assert.deepEqual(parseMetricTarget('custom:-0.25'), { kind: 'metric', metric: 'custom', value: -0.25 });
  assert.deepEqual(parseMetricTarget('custom:42'), { kind: 'metric', metric: 'custom', value: 42 });
  assert.throws(() => parseMetricTarget('custom:lots'), /not a metric target/);
});

test('a language model\'s labels, the next token at every position: next-token accuracy, perplexity, and positions labelled -100 not scored', () => {
  // [2 samples, 3 positions, 4 tokens] of logits; the quantized model is the float one, a little off at one position.
  const ref = Float32Array.from([
    2, 0, 0, 0, /**/ 0, 1, 0, 0, /**/ 0, 0, 3, 0,
    0, 0, 0, 1, /**/ 1, 0, 0, 0, /**/ 0, 2, 0, 0,
  ]);
  const quant = Float32Array.from(ref);
  quant[4 + 1] = -1; // sample 0, position 1: token 0 (ties go to the lowest) instead of 1
  const labels = Int32Array.from([0, 1, 2, /**/ 3, -100, 1]);
  const m = new MetricAccumulator({ perSample: true });
  m.add(ref, quant, [2, 3, 4], labels);
  const r = m.result();
  const nll = (row: number[], label: number) => Math.log(row.reduce((s, v) => s + Math.exp(v), 0)) - row[label];
  const rows = (data: Float32Array) => Array.from({ length: 6 }, (_, i) => Array.from(data.subarray(i * 4, i * 4 + 4)));
  const scored = [0, 1, 2, 3, 5];
  const [q, f] = [rows(quant), rows(ref)];
  assert.equal(r.accuracy, 4 / 5);
  assert.equal(r['float-accuracy'], 1);
  assert.ok(Math.abs(r.perplexity! - Math.exp(scored.reduce((s, i) => s + nll(q[i], labels[i]), 0) / 5)) < 1e-9);
  assert.ok(Math.abs(r['float-perplexity']! - Math.exp(scored.reduce((s, i) => s + nll(f[i], labels[i]), 0) / 5)) < 1e-9);
  assert.ok(r.perplexity! > r['float-perplexity']!);
  assert.equal(r['argmax-agreement'], 5 / 6, 'agreement with the float model counts every position');
  assert.deepEqual(Array.from(m.perSample().accuracy!), [2 / 3, 1]);
  assert.throws(() => new MetricAccumulator().add(ref, quant, [2, 3, 4], Int32Array.of(0, 1)), /give one per position, \[N, 3\]/);
  assert.throws(() => new MetricAccumulator().add(ref, quant, [2, 3, 4], Int32Array.of(0, 1, 2, 3, 4, 1)), /class id 4 .* 4 classes/);
});

test('perplexity targets are met at or below their value, at least 1', () => {
  assert.deepEqual(parseMetricTarget('perplexity:4.5'), { kind: 'metric', metric: 'perplexity', value: 4.5 });
  assert.throws(() => parseMetricTarget('perplexity:0.5'), /perplexity: at least 1/);
  assert.equal(describeTarget({ kind: 'metric', metric: 'perplexity', value: 4.5 }), 'perplexity ≤ 4.5');
});

test('[N, T] labels read as T class ids per sample, and each sample\'s row for a metric module', () => {
  const file = path.join(tempDir('seq-labels'), 'next.npy');
  writeNpy(file, 'int64', [2, 3], BigInt64Array.of(1n, 2n, 3n, 4n, 5n, -100n));
  const l = readLabels(file);
  assert.deepEqual(l.labels, { ids: Int32Array.of(1, 2, 3, 4, 5, -100), steps: 3 });
  assert.deepEqual(l.values, [[1, 2, 3], [4, 5, -100]]);
});
