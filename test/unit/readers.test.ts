import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { readNpyHeader, readNpyRange, writeNpy, type NpyArray } from '../../main/data/npy';
import { DataError, guessBatchSize, openSource, type SampleSource } from '../../main/data/readers';
import type { PreprocessSpec } from '../../shared/preprocess';
import { commonShapes, feedSamples, rebatched, sameSampleShapes, type Feed, type InputSpec } from '../../main/base/feed';

const RANDOM_WARNING = 'random data gives poor calibration ranges; use real samples (a .npy file, a folder of images or .npy files, or a manifest)';

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'qs-readers-'));
}

function input(name: string, shape: Array<number | string>, type = 'float32'): InputSpec {
  return { name, type, shape };
}

function iota(n: number, from = 0): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => from + i);
}

async function collect(source: SampleSource, batchSize: number): Promise<Feed[]> {
  const feeds: Feed[] = [];
  for await (const feed of source.batches(batchSize)) feeds.push(feed);
  return feeds;
}

/** Pixels as [r, g, b] per pixel, row after row. */
async function writeImage(file: string, width: number, height: number, pixels: number[][], format: 'png' | 'jpeg' = 'png'): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const image = sharp(Buffer.from(pixels.flat()), { raw: { width, height, channels: 3 } });
  await (format === 'png' ? image.png() : image.jpeg({ quality: 100 })).toFile(file);
}

/** A .npy with a hand-written header, for header variants writeNpy never produces. */
function rawNpy(file: string, dict: string, body: Buffer, major = 1): void {
  const lengthBytes = major === 1 ? 2 : 4;
  const text = Buffer.from(`${dict}\n`, major === 3 ? 'utf8' : 'latin1');
  const head = Buffer.alloc(8 + lengthBytes);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = major;
  if (major === 1) head.writeUInt16LE(text.length, 8);
  else head.writeUInt32LE(text.length, 8);
  fs.writeFileSync(file, Buffer.concat([head, text, body]));
}

async function rejectsWith(fn: () => unknown, pattern: RegExp): Promise<void> {
  await assert.rejects(async () => fn(), (err: unknown) => err instanceof DataError && pattern.test(err.message));
}

function near(actual: ArrayLike<number>, expected: number[], tolerance = 1e-6): void {
  assert.equal(actual.length, expected.length);
  expected.forEach((e, i) => assert.ok(Math.abs(actual[i] - e) <= tolerance, `element ${i}: ${actual[i]} vs ${e}`));
}

test('writeNpy and the reader agree for every dtype, and the data is 64-byte aligned like numpy writes it', () => {
  const dir = tempDir();
  const cases: Array<[Parameters<typeof writeNpy>[1], number[], NpyArray]> = [
    ['float32', [2, 3], Float32Array.from([1.5, -2, 3, 4, 5, 6])],
    ['float64', [3], Float64Array.from([0.1, 0.2, 0.3])],
    ['int64', [2], BigInt64Array.from([-5n, 2n ** 40n])],
    ['int32', [1, 2], Int32Array.from([-7, 7])],
    ['int8', [2], Int8Array.from([-128, 127])],
    ['uint8', [2, 1], Uint8Array.from([0, 255])],
    ['bool', [3], Uint8Array.from([1, 0, 1])],
    ['float32', [], Float32Array.from([42])],
  ];
  for (const [dtype, shape, data] of cases) {
    const file = path.join(dir, `${dtype}-${shape.length}.npy`);
    writeNpy(file, dtype, shape, data);
    const header = readNpyHeader(file);
    assert.deepEqual({ dtype: header.dtype, shape: header.shape }, { dtype, shape });
    assert.equal(header.dataOffset % 64, 0);
    assert.deepEqual(readNpyRange(file, header, 0, data.length), data);
  }
  const file = path.join(dir, 'range.npy');
  writeNpy(file, 'int32', [4, 2], Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7]));
  assert.deepEqual(readNpyRange(file, readNpyHeader(file), 4, 3), Int32Array.from([4, 5, 6]));
  assert.throws(() => writeNpy(file, 'int32', [3], Int32Array.from([1])), RangeError);
  assert.throws(() => writeNpy(file, 'int64', [1], Int32Array.from([1])), TypeError);
});

test('format versions 2.0 and 3.0 are read', () => {
  const dir = tempDir();
  const body = Buffer.from(Float32Array.from([1, 2, 3, 4]).buffer);
  for (const major of [2, 3]) {
    const file = path.join(dir, `v${major}.npy`);
    rawNpy(file, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", body, major);
    const header = readNpyHeader(file);
    assert.deepEqual(header.shape, [2, 2]);
    assert.deepEqual(readNpyRange(file, header, 0, 4), Float32Array.from([1, 2, 3, 4]));
  }
});

test('unsupported, malformed and truncated .npy files are DataErrors naming the file', async () => {
  const dir = tempDir();
  const body = Buffer.alloc(16);
  const file = (name: string): string => path.join(dir, name);
  rawNpy(file('fortran.npy'), "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", body);
  rawNpy(file('big.npy'), "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }", body);
  rawNpy(file('half.npy'), "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2), }", body);
  rawNpy(file('short.npy'), "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", body);
  fs.writeFileSync(file('text.npy'), 'just some text, not an array');
  const x = [input('x', ['batch', 2])];
  await rejectsWith(() => openSource(file('fortran.npy'), x), /fortran\.npy: .*Fortran order.*ascontiguousarray/);
  await rejectsWith(() => openSource(file('big.npy'), x), /big\.npy: .*big-endian/);
  await rejectsWith(() => openSource(file('half.npy'), x), /half\.npy: dtype '<f2' is not supported/);
  await rejectsWith(() => openSource(file('short.npy'), x), /short\.npy: truncated/);
  await rejectsWith(() => openSource(file('text.npy'), x), /text\.npy: not a \.npy file/);
});

test('a .npy stack yields batches of 4, 4 and 2 with the samples in order', async () => {
  const file = path.join(tempDir(), 'x.npy');
  writeNpy(file, 'float32', [10, 3, 2, 2], iota(120));
  const source = await openSource(file, [input('x', ['batch', 3, 2, 2])]);
  assert.equal(source.count, 10);
  assert.equal(source.description, `10 samples from ${file}`);
  assert.deepEqual(source.warnings, []);
  assert.deepEqual(source.feedShapes, { x: [null, 3, 2, 2] }, 'every feed has these shapes, null for the batch size');
  const feeds = await collect(source, 4);
  assert.deepEqual(feeds.map((f) => f.x.dims), [[4, 3, 2, 2], [4, 3, 2, 2], [2, 3, 2, 2]]);
  assert.ok(feeds.every((f) => f.x.type === 'float32' && f.x.data instanceof Float32Array));
  assert.deepEqual(Float32Array.from(feeds.flatMap((f) => Array.from(f.x.data as Float32Array))), iota(120));
});

test('the limit caps the samples', async () => {
  const file = path.join(tempDir(), 'x.npy');
  writeNpy(file, 'float32', [10, 2], iota(20));
  const source = await openSource(file, [input('x', ['N', 2])], { limit: 3 });
  assert.equal(source.count, 3);
  assert.equal(source.description, `3 of 10 samples from ${file}`);
  const feeds = await collect(source, 2);
  assert.deepEqual(feeds.map((f) => f.x.dims), [[2, 2], [1, 2]]);
  assert.deepEqual(feeds[1].x.data, Float32Array.from([4, 5]));
});

test('samples are read when their batch is, not when the source is opened', async () => {
  const file = path.join(tempDir(), 'x.npy');
  writeNpy(file, 'float32', [2, 2], iota(4));
  const source = await openSource(file, [input('x', ['batch', 2])]);
  writeNpy(file, 'float32', [2, 2], iota(4, 100));
  const [feed] = await collect(source, 2);
  assert.deepEqual(feed.x.data, iota(4, 100));
});

test('a fixed first dim of 1 gives batches of one sample whatever the batch size asked for', async () => {
  const file = path.join(tempDir(), 'x.npy');
  writeNpy(file, 'float32', [3, 4], iota(12));
  const inputs = [input('x', [1, 4])];
  assert.equal(guessBatchSize(inputs), 1);
  const source = await openSource(file, inputs);
  assert.deepEqual(source.feedShapes, { x: [1, 4] });
  const feeds = await collect(source, 4);
  assert.deepEqual(feeds.map((f) => f.x.dims), [[1, 4], [1, 4], [1, 4]]);
  assert.deepEqual(feeds[2].x.data, Float32Array.from([8, 9, 10, 11]));
});

test('an input whose first dim is fixed and not 1 takes whole tensors, one sample per batch', async () => {
  const file = path.join(tempDir(), 'h.npy');
  writeNpy(file, 'float32', [2, 2, 1, 3], iota(12));
  const source = await openSource(file, [input('h', [2, 'batch', 3])]);
  assert.deepEqual(source.feedShapes, { h: [2, 1, 3] });
  const feeds = await collect(source, 8);
  assert.deepEqual(feeds.map((f) => f.h.dims), [[2, 1, 3], [2, 1, 3]]);
  assert.deepEqual(feeds[1].h.data, iota(6, 6));
});

test('guessBatchSize: 8 when every input has a symbolic first dim, else 1', () => {
  assert.equal(guessBatchSize([input('x', ['batch', 3, 224, 224])]), 8);
  assert.equal(guessBatchSize([input('x', ['batch', 3]), input('y', [1, 3])]), 1);
  assert.equal(guessBatchSize([input('h', [2, 'batch', 64])]), 1);
  assert.equal(guessBatchSize([input('sr', [], 'int64')]), 1);
});

test('a shape mismatch names the file, the input, and the expected and found shapes', async () => {
  const file = path.join(tempDir(), 'x.npy');
  writeNpy(file, 'float32', [10, 3, 32, 192], new Float32Array(10 * 3 * 32 * 192));
  // PaddleOCR's recognition model: an exporter-generated dim name shows as "?", a readable one as itself.
  await assert.rejects(async () => openSource(file, [input('x', ['p2o.DynamicDimension.0', 3, 48, 192])]), (err: unknown) => {
    assert.ok(err instanceof DataError);
    assert.equal(err.message, `${file}: input "x" expects [?, 3, 48, 192] (float32) but the file holds [10, 3, 32, 192] (float32)`);
    return true;
  });
  await rejectsWith(() => openSource(file, [input('x', ['batch', 3, 48, 192])]), /input "x" expects \[batch, 3, 48, 192\] \(float32\)/);
  await rejectsWith(() => openSource(file, [input('x', [1, 3, 48, 192])]), /input "x" expects \[\?, 3, 48, 192\] \(float32\)/);
});

test('types: float64 and integers convert to float inputs, integers widen, floats never feed integer inputs', async () => {
  const dir = tempDir();
  const f64 = path.join(dir, 'f64.npy');
  writeNpy(f64, 'float64', [2, 2], Float64Array.from([0.1, 0.2, 0.3, 0.4]));
  const [asFloat] = await collect(await openSource(f64, [input('x', ['batch', 2], 'float')]), 2);
  assert.deepEqual(asFloat.x.data, Float32Array.from([0.1, 0.2, 0.3, 0.4]));

  const u8 = path.join(dir, 'u8.npy');
  writeNpy(u8, 'uint8', [1, 2], Uint8Array.from([0, 255]));
  const [pixels] = await collect(await openSource(u8, [input('x', ['batch', 2])]), 1);
  assert.deepEqual(pixels.x.data, Float32Array.from([0, 255]));

  const i32 = path.join(dir, 'ids.npy');
  writeNpy(i32, 'int32', [3, 2], Int32Array.from([1, 2, 3, 4, -5, 6]));
  const [ids] = await collect(await openSource(i32, [input('ids', ['batch', 2], 'int64')]), 3);
  assert.equal(ids.ids.type, 'int64');
  assert.deepEqual(ids.ids.data, BigInt64Array.from([1n, 2n, 3n, 4n, -5n, 6n]));

  const f32 = path.join(dir, 'f32.npy');
  writeNpy(f32, 'float32', [3, 2], iota(6));
  await assert.rejects(async () => openSource(f32, [input('ids', ['batch', 2], 'int64')]), (err: unknown) => {
    assert.ok(err instanceof DataError);
    assert.equal(err.message, `${f32}: input "ids" expects [batch, 2] (int64) but the file holds [3, 2] (float32); integer inputs need integer data: save it with arr.astype('int64')`);
    return true;
  });
  await rejectsWith(() => openSource(f32, [input('x', ['batch', 2], 'float16')]), /input "x" is float16; only float32, .* can be fed/);
});

test('one .npy file for a model with several inputs asks for a folder or a manifest', async () => {
  const file = path.join(tempDir(), 'x.npy');
  writeNpy(file, 'float32', [2, 2], iota(4));
  await rejectsWith(() => openSource(file, [input('a', ['batch', 2]), input('b', ['batch', 2])]),
    /x\.npy: one \.npy file feeds a single input, but the model has 2 \("a", "b"\); use a folder with one <input>\.npy per input, or a JSON manifest/);
});

test('a folder of .npy files named after the inputs feeds each input its stack', async () => {
  const dir = tempDir();
  writeNpy(path.join(dir, 'a.npy'), 'float32', [4, 2], iota(8));
  writeNpy(path.join(dir, 'b.npy'), 'int64', [4], BigInt64Array.from([7n, 8n, 9n, 10n]));
  writeNpy(path.join(dir, 'labels.npy'), 'int64', [4], new BigInt64Array(4));
  const inputs = [input('a', ['batch', 2]), input('b', ['batch'], 'int64')];
  const feeds = await collect(await openSource(dir, inputs), 3);
  assert.deepEqual(feeds.map((f) => [f.a.dims, f.b.dims]), [[[3, 2], [3]], [[1, 2], [1]]]);
  assert.deepEqual(feeds[1].a.data, Float32Array.from([6, 7]));
  assert.deepEqual(feeds[1].b.data, BigInt64Array.from([10n]));

  writeNpy(path.join(dir, 'b.npy'), 'int64', [5], new BigInt64Array(5));
  await rejectsWith(() => openSource(dir, inputs), /input "a" has 4 samples \(.*a\.npy\) but input "b" has 5 \(.*b\.npy\); every input needs the same number of samples/);
  fs.rmSync(path.join(dir, 'b.npy'));
  await rejectsWith(() => openSource(dir, inputs), /has no b\.npy; a folder of per-input stacks needs one <input>\.npy for every input/);
  await rejectsWith(() => openSource(dir, [input('p', ['batch', 2]), input('q', ['batch', 2])]), /the model has 2 inputs \("p", "q"\); give a folder with one <input>\.npy stack per input, or a JSON manifest/);
});

test('a folder of .npy files not named after the input holds one sample per file, in name order', async () => {
  const dir = tempDir();
  writeNpy(path.join(dir, 's10.npy'), 'float32', [3], iota(3, 30));
  writeNpy(path.join(dir, 's02.npy'), 'float32', [1, 3], iota(3, 20));
  writeNpy(path.join(dir, 's01.npy'), 'float32', [3], iota(3, 10));
  fs.writeFileSync(path.join(dir, 'README.txt'), 'not data');
  const source = await openSource(dir, [input('x', ['batch', 3])]);
  assert.equal(source.count, 3);
  const [feed] = await collect(source, 8);
  assert.deepEqual(feed.x.dims, [3, 3]);
  assert.deepEqual(feed.x.data, Float32Array.from([10, 11, 12, 20, 21, 22, 30, 31, 32]));

  writeNpy(path.join(dir, 's03.npy'), 'float32', [2, 3], iota(6));
  await rejectsWith(() => openSource(dir, [input('x', ['batch', 3])]),
    /s03\.npy: input "x" expects one sample of \[3\] \(float32\) but the file holds \[2, 3\] \(float32\); each \.npy file in a folder is one sample/);
});

test('per-sample files that differ in a dynamic dim go to separate batches', async () => {
  const dir = tempDir();
  writeNpy(path.join(dir, 'a.npy'), 'float32', [2, 2], iota(4));
  writeNpy(path.join(dir, 'b.npy'), 'float32', [2, 2], iota(4, 4));
  writeNpy(path.join(dir, 'c.npy'), 'float32', [2, 3], iota(6, 8));
  const source = await openSource(dir, [input('x', ['batch', 2, 'width'])]);
  assert.equal(source.feedShapes, undefined, 'no one shape for every feed');
  const feeds = await collect(source, 4);
  assert.deepEqual(feeds.map((f) => f.x.dims), [[2, 2, 2], [1, 2, 3]]);
  assert.deepEqual(feeds[1].x.data, iota(6, 8));
});

test('commonShapes: the batch size varies alone or the feeds have no common shapes; sameSampleShapes compares all but the batch size', () => {
  const feed = (dims: Record<string, number[]>): Feed => Object.fromEntries(Object.entries(dims).map(([n, d]) => [n, { type: 'float32', dims: d, data: new Float32Array(0) }]));
  assert.deepEqual(commonShapes([feed({ x: [8, 3, 4], h: [2, 5] }), feed({ x: [8, 3, 4], h: [2, 5] })]), { x: [8, 3, 4], h: [2, 5] });
  assert.deepEqual(commonShapes([feed({ x: [8, 3, 4], y: [8, 2] }), feed({ x: [5, 3, 4], y: [5, 2] })]), { x: [null, 3, 4], y: [null, 2] });
  assert.equal(commonShapes([feed({ x: [8, 3, 4] }), feed({ x: [8, 3, 5] })]), undefined);
  assert.equal(commonShapes([feed({ x: [8, 3], y: [8, 2] }), feed({ x: [5, 3], y: [4, 2] })]), undefined, 'two first axes varying apart are not one batch');
  assert.equal(commonShapes([]), undefined);
  assert.ok(sameSampleShapes({ x: [null, 3, 4] }, { x: [8, 3, 4] }));
  assert.ok(!sameSampleShapes({ x: [null, 3, 4] }, { x: [null, 3, 5] }));
  assert.ok(!sameSampleShapes({ x: [null, 3] }, { x: [null, 3], y: [1] }));
  assert.ok(!sameSampleShapes(undefined, { x: [1] }));
});

test('rebatched: the same samples in the same order, a feed split into batches of at most the size, never joined', () => {
  const feed = (n: number, from: number): Feed => ({
    x: { type: 'float32', dims: [n, 2], data: Float32Array.from({ length: 2 * n }, (_, i) => from * 2 + i) },
    ids: { type: 'int64', dims: [n], data: BigInt64Array.from({ length: n }, (_, i) => BigInt(from + i)) },
  });
  const cut = rebatched([feed(8, 0), feed(2, 8)], 3);
  assert.deepEqual(cut.map(feedSamples), [3, 3, 2, 2]);
  assert.deepEqual(cut.flatMap((f) => [...f.x.data]), Array.from({ length: 20 }, (_, i) => i));
  assert.deepEqual(cut.flatMap((f) => [...(f.ids.data as BigInt64Array)].map(Number)), Array.from({ length: 10 }, (_, i) => i));
  assert.deepEqual(cut[2].x.dims, [2, 2]);
  const whole = [feed(2, 0)];
  assert.equal(rebatched(whole, 8)[0], whole[0], 'a feed that fits is the same object');
});

const PIXELS = [[10, 20, 30], [40, 50, 60], [70, 80, 90], [200, 210, 220]];

async function firstImage(dir: string, spec: InputSpec, preprocess?: PreprocessSpec): Promise<Feed[string]> {
  const [feed] = await collect(await openSource(dir, [spec], { preprocess }), 1);
  return feed[spec.name];
}

test('image preprocessing: (x/255 - mean) / std per channel, in NCHW, NHWC, BGR and GRAY', async () => {
  const dir = tempDir();
  await writeImage(path.join(dir, 'img.png'), 2, 2, PIXELS);
  const mean: [number, number, number] = [0.1, 0.2, 0.3];
  const std: [number, number, number] = [0.5, 0.25, 2];
  const value = (p: number, c: number, source = c): number => Math.fround((PIXELS[p][source] / 255 - mean[c]) / std[c]);

  const nchw = await firstImage(dir, input('x', ['batch', 3, 2, 2]), { mean, std });
  assert.deepEqual(nchw.dims, [1, 3, 2, 2]);
  assert.deepEqual(Array.from(nchw.data as Float32Array), [0, 1, 2].flatMap((c) => [0, 1, 2, 3].map((p) => value(p, c))));

  const nhwc = await firstImage(dir, input('x', ['batch', 2, 2, 3]), { mean, std });
  assert.deepEqual(nhwc.dims, [1, 2, 2, 3]);
  assert.deepEqual(Array.from(nhwc.data as Float32Array), [0, 1, 2, 3].flatMap((p) => [0, 1, 2].map((c) => value(p, c))));

  const bgr = await firstImage(dir, input('x', ['batch', 3, 2, 2]), { mean, std, channels: 'BGR' });
  assert.deepEqual(Array.from(bgr.data as Float32Array), [0, 1, 2].flatMap((c) => [0, 1, 2, 3].map((p) => value(p, c, 2 - c))));

  const gray = await firstImage(dir, input('x', ['batch', 1, 2, 2]), { mean, std });
  assert.deepEqual(gray.dims, [1, 1, 2, 2]);
  // Pillow's convert('L'): ITU-R 601 luma in 16-bit fixed point, an 8-bit grey value.
  near(gray.data as Float32Array, PIXELS.map(([r, g, b]) => (((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16) / 255 - 0.1) / 0.5));

  const f64 = await firstImage(dir, input('x', ['batch', 3, 2, 2], 'double'));
  assert.ok(f64.data instanceof Float64Array);
  assert.deepEqual(Array.from(f64.data).slice(0, 4), PIXELS.map((p) => p[0] / 255));

  await rejectsWith(() => openSource(dir, [input('x', ['batch', 3, 2, 2])], { preprocess: { channels: 'GRAY' } }), /GRAY images have 1 channel but the input has 3 in NCHW layout; use RGB or BGR channels/);
  await rejectsWith(() => openSource(dir, [input('x', ['batch', 5, 2, 2])]), /cannot tell where the channels are/);
  await rejectsWith(() => openSource(dir, [input('x', ['batch', 3, 2, 2])], { preprocess: { size: [4, 4] } }), /takes 2 by 2 images but the size asked for is 4x4/);
  await rejectsWith(() => openSource(dir, [input('x', ['batch', 3, 2, 2])], { preprocess: { std: [0, 1, 1] } }), /image preprocessing: std must be 3 non-zero numbers, got \[0,1,1\]/);
});

test('bilinear resize: interpolates when enlarging, averages when shrinking (to 8-bit levels, as Pillow), crops and pads centred', async () => {
  const dir = tempDir();
  const row = [0, 40, 80, 120];
  // 4 wide and 2 tall, both rows the same, the same value in every channel.
  await writeImage(path.join(dir, 'img.png'), 4, 2, [...row, ...row].map((v) => [v, v, v]));
  const x = input('x', ['batch', 3, 'h', 'w']);
  const channel0 = (f: Feed[string]): number[] => Array.from(f.data as Float32Array).slice(0, f.dims[2] * f.dims[3]).map((v) => v * 255);

  const enlarged = await firstImage(dir, x, { size: [2, 8] });
  // Output pixel centres fall at input x = 0.25, 0.75, 1.25, ...; the outermost ones clamp to the edge.
  const interpolated = [0, 10, 30, 50, 70, 90, 110, 120];
  near(channel0(enlarged), [...interpolated, ...interpolated], 1e-4);

  const shrunk = await firstImage(dir, x, { size: [2, 2] });
  // Shrinking by 2 widens the triangle filter to 2 pixels: weights 0.75, 0.75, 0.25 around each
  // output centre; the result is an 8-bit level, as Pillow stores it.
  const left = Math.round((0.75 * 0 + 0.75 * 40 + 0.25 * 80) / 1.75);
  const right = Math.round((0.25 * 40 + 0.75 * 80 + 0.75 * 120) / 1.75);
  near(channel0(shrunk), [left, right, left, right], 1e-4);

  const cropped = await firstImage(dir, x, { size: [2, 2], resize: 'shorter-side-then-center-crop' });
  near(channel0(cropped), [40, 80, 40, 80], 1e-4);

  const padded = await firstImage(dir, x, { size: [4, 4], resize: 'pad', mean: [0.5, 0.5, 0.5] });
  // Black bars above and below, normalised like the image: (0/255 - 0.5), times 255 here.
  const bar = [-127.5, -127.5, -127.5, -127.5];
  const line = row.map((v) => v - 127.5);
  near(channel0(padded), [...bar, ...line, ...line, ...bar], 1e-4);
});

test('a dynamic image width follows the first image at the fixed height, with a warning', async () => {
  const dir = tempDir();
  await writeImage(path.join(dir, 'img.png'), 4, 2, Array.from({ length: 8 }, () => [1, 2, 3]));
  const source = await openSource(dir, [input('x', ['batch', 3, 1, 'w'])]);
  assert.deepEqual(source.warnings, [`input "x" has a dynamic width: every image is resized to 1x2, after ${path.join(dir, 'img.png')}; pass a size (HxW) to choose another`]);
  assert.deepEqual(source.feedShapes, { x: [null, 3, 1, 2] }, 'every image comes at that size');
  const [feed] = await collect(source, 1);
  assert.deepEqual(feed.x.dims, [1, 3, 1, 2]);
});

test('an image folder walks subfolders in name order, reads PNG and JPEG, and ignores other files', async () => {
  const dir = tempDir();
  await writeImage(path.join(dir, 'dog', 'c.png'), 2, 2, Array.from({ length: 4 }, () => [0, 0, 255]));
  await writeImage(path.join(dir, 'cat', 'b.jpeg'), 8, 8, Array.from({ length: 64 }, () => [0, 255, 0]), 'jpeg');
  await writeImage(path.join(dir, 'cat', 'a.png'), 2, 2, Array.from({ length: 4 }, () => [255, 0, 0]));
  fs.writeFileSync(path.join(dir, 'cat', 'notes.txt'), 'not an image');
  fs.writeFileSync(path.join(dir, '.thumbnail.png'), 'not an image either');
  const source = await openSource(dir, [input('x', ['batch', 3, 2, 2])]);
  assert.equal(source.count, 3);
  assert.match(source.description, /^3 samples from .*; "x": images resized to 2x2 \(stretch, bilinear\), RGB NCHW, mean \[0, 0, 0\], std \[1, 1, 1\]$/);
  const feeds = await collect(source, 2);
  assert.deepEqual(feeds.map((f) => f.x.dims), [[2, 3, 2, 2], [1, 3, 2, 2]]);
  const data = Array.from(feeds[0].x.data as Float32Array).concat(Array.from(feeds[1].x.data as Float32Array));
  const colours = [0, 1, 2].map((k) => [0, 1, 2].map((c) => data[k * 12 + c * 4]));
  near(colours[0], [1, 0, 0]);
  near(colours[1], [0, 1, 0], 3 / 255);
  near(colours[2], [0, 0, 1]);
});

test('an unreadable image is a DataError naming the file when its batch is read', async () => {
  const dir = tempDir();
  await writeImage(path.join(dir, 'a.png'), 2, 2, PIXELS);
  const good = fs.readFileSync(path.join(dir, 'a.png'));
  const x = [input('x', ['batch', 3, 2, 2])];
  const cases: Array<[string, Buffer, RegExp]> = [
    ['b.png', good.subarray(0, good.length - 20), /b\.png: cannot decode this image \(.*libpng.*\); replace it or move it out of the folder/],
    ['b.jpg', Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 5]), /b\.jpg: not an image sharp can read \(.*\); convert it to PNG or JPEG, or move it out of the folder/],
    ['b.jpeg', Buffer.from('hello'), /b\.jpeg: not an image sharp can read/],
  ];
  for (const [name, bytes, pattern] of cases) {
    const file = path.join(dir, name);
    fs.writeFileSync(file, bytes);
    await assert.rejects(collect(await openSource(dir, x), 1), (err: unknown) => err instanceof DataError && pattern.test(err.message));
    fs.rmSync(file);
  }
});

test('random:N is deterministic per seed, whatever the batch size, and warns', async () => {
  const inputs = [input('x', ['batch', 2, 3]), input('ids', ['batch', 4], 'int64'), input('h', [2, 'batch', 3])];
  const source = await openSource('random:5', inputs, { seed: 7 });
  assert.equal(source.count, 5);
  assert.equal(source.description, '5 random samples (seed 7)');
  assert.deepEqual(source.warnings, [RANDOM_WARNING]);
  const byOne = await collect(source, 1);
  const byFour = await collect(await openSource('random:5', inputs, { seed: 7 }), 4);
  assert.deepEqual(byOne.map((f) => f.x.dims), [[1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, 3]]);
  assert.deepEqual(byOne.map((f) => f.h.dims)[0], [2, 1, 3]);
  const xs = byOne.flatMap((f) => Array.from(f.x.data as Float32Array));
  assert.deepEqual(xs, byFour.flatMap((f) => Array.from(f.x.data as Float32Array)));
  assert.ok(xs.every((v) => v >= 0 && v < 1));
  assert.ok(new Set(xs).size > 20);
  const ids = byOne.flatMap((f) => Array.from(f.ids.data as BigInt64Array));
  assert.ok(ids.every((v) => v >= 0n && v <= 9n));
  assert.equal(byOne[0].ids.data.constructor, BigInt64Array);
  const other = await collect(await openSource('random:5', inputs, { seed: 8 }), 5);
  assert.notDeepEqual(Array.from(other[0].x.data as Float32Array), xs);

  await rejectsWith(() => openSource('random:8', [input('audio', ['batch', 'sequence'])]), /random:8: input "audio" \[batch, sequence\] has a dynamic dim 1 \(sequence\) that random data cannot size; give real samples/);
  await rejectsWith(() => openSource('random:lots', inputs), /random:N needs a whole number/);
});

test('a JSON manifest feeds each input from its own source, relative to the manifest', async () => {
  const dir = tempDir();
  await writeImage(path.join(dir, 'data', 'images', 'a.png'), 2, 2, PIXELS);
  await writeImage(path.join(dir, 'data', 'images', 'b.png'), 2, 2, PIXELS);
  writeNpy(path.join(dir, 'data', 'ids.npy'), 'int64', [2, 3], BigInt64Array.from([1n, 2n, 3n, 4n, 5n, 6n]));
  const manifest = path.join(dir, 'data', 'manifest.json');
  fs.writeFileSync(manifest, JSON.stringify({ inputs: { image: 'images', ids: 'ids.npy' }, preprocess: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] } }));
  const inputs = [input('image', ['batch', 3, 2, 2]), input('ids', ['batch', 3], 'int64')];
  const source = await openSource(manifest, inputs, { preprocess: { std: [1, 1, 1] } });
  assert.equal(source.count, 2);
  const feeds = await collect(source, 2);
  assert.equal(feeds.length, 1);
  assert.deepEqual(feeds[0].ids.data, BigInt64Array.from([1n, 2n, 3n, 4n, 5n, 6n]));
  assert.deepEqual(feeds[0].image.dims, [2, 3, 2, 2]);
  // The manifest's mean, the command's std.
  assert.equal((feeds[0].image.data as Float32Array)[0], Math.fround(10 / 255 - 0.5));

  writeNpy(path.join(dir, 'data', 'ids.npy'), 'int64', [3, 3], new BigInt64Array(9));
  await assert.rejects(async () => openSource(manifest, inputs), (err: unknown) => {
    assert.ok(err instanceof DataError);
    assert.equal(err.message, `${manifest}: input "image" has 2 samples (${path.join(dir, 'data', 'images')}) but input "ids" has 3 (${path.join(dir, 'data', 'ids.npy')}); every input needs the same number of samples`);
    return true;
  });
  fs.writeFileSync(manifest, JSON.stringify({ inputs: { image: 'images' } }));
  await rejectsWith(() => openSource(manifest, [...inputs, input('mask', ['batch'])]), /manifest\.json: no source for input "ids", "mask"; add them under "inputs"/);
  fs.writeFileSync(manifest, JSON.stringify({ inputs: { image: 'images', ids: 'ids.npy', idz: 'ids.npy' } }));
  await rejectsWith(() => openSource(manifest, inputs), /manifest\.json: the model has no input "idz"; its inputs are "image", "ids"/);
  fs.writeFileSync(manifest, JSON.stringify({ inputs: { image: 'images', ids: 'nowhere.npy' } }));
  await rejectsWith(() => openSource(manifest, inputs), /the source of input "ids", .*nowhere\.npy, does not exist/);
  fs.writeFileSync(manifest, '{ "inputs": ');
  await rejectsWith(() => openSource(manifest, inputs), /manifest\.json: not a readable JSON manifest/);
});

test('sources that do not exist or hold nothing say what to give instead, and unused preprocessing is flagged', async () => {
  const dir = tempDir();
  const x = [input('x', ['batch', 2])];
  await rejectsWith(() => openSource(path.join(dir, 'missing.npy'), x), /missing\.npy: no such file or folder; give a \.npy file, a folder of images or \.npy files, a \.json manifest, or random:N/);
  await rejectsWith(() => openSource(dir, x), /no \.npy files or images \(\.png, \.jpg, \.jpeg, \.webp, \.tif, \.tiff, \.avif, \.gif\) in it/);
  const file = path.join(dir, 'x.npy');
  writeNpy(file, 'float32', [1, 2], iota(2));
  assert.deepEqual((await openSource(file, x, { preprocess: { mean: [0.5, 0.5, 0.5] } })).warnings, [`image preprocessing (mean) is ignored: ${file} holds no images`]);
  writeNpy(file, 'float32', [0, 2], iota(0));
  await rejectsWith(() => openSource(file, x), /x\.npy: holds no samples/);
});
