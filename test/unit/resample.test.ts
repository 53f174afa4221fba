import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { trackedTempDirs } from '../helpers/cli';
import { MAKERS } from '../hostile/files';
import { decodeImage, imageSize, preprocessImage, type ImageGeometry } from '../../main/data/images';
import { DataError } from '../../main/data/npy';
import { luma, resize, type Pixels } from '../../main/data/resample';
import type { Interpolation } from '../../shared/preprocess';

// Made by test/fixtures/resample/make_fixture.py with Pillow, OpenCV, torch and torchvision.
const tempDir = trackedTempDirs();
const FIXTURE = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'resample', 'resample.json');

interface Case {
  library: string;
  interpolation: Interpolation;
  gray?: boolean;
  resize?: ImageGeometry['resize'];
  width: number;
  height: number;
  data: string;
}

const fixture = JSON.parse(fs.readFileSync(FIXTURE, 'utf8')) as { source: { width: number; height: number; data: string }; cases: Case[]; pipelines: Case[] };
const source: Pixels = { width: fixture.source.width, height: fixture.source.height, channels: 3, data: new Uint8Array(Buffer.from(fixture.source.data, 'base64')) };

function grayOf(image: Pixels, interpolation: Interpolation): Pixels {
  const data = new Uint8Array(image.width * image.height);
  for (let i = 0; i < data.length; i++) data[i] = luma(image.data[3 * i], image.data[3 * i + 1], image.data[3 * i + 2], interpolation);
  return { ...image, channels: 1, data };
}

/** How many of the values differ from the library's, and by how much at most. */
function compare(actual: ArrayLike<number>, expected: Uint8Array): { differ: number; max: number } {
  assert.equal(actual.length, expected.length);
  let differ = 0;
  let max = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (d) differ++;
    max = Math.max(max, d);
  }
  return { differ, max };
}

const label = (c: Case) => `${c.library} ${c.interpolation} ${c.gray ? 'grey' : 'RGB'} ${fixture.source.width}x${fixture.source.height} → ${c.width}x${c.height}`;

test('Pillow (bilinear, bicubic, nearest, in RGB and grey) and OpenCV INTER_LINEAR are reproduced to the level', () => {
  const exact = fixture.cases.filter((c) => c.library === 'pillow' || c.library === 'opencv');
  assert.equal(exact.length, 40);
  for (const c of exact) {
    const input = c.gray ? grayOf(source, c.interpolation) : source;
    const out = resize(input, c.width, c.height, c.interpolation);
    assert.deepEqual(compare(out.data, new Uint8Array(Buffer.from(c.data, 'base64'))), { differ: 0, max: 0 }, label(c));
  }
});

test("torch's uint8 antialiased resize (torchvision on tensors) is within one level of Pillow's", () => {
  // torch keeps fewer fractional bits than Pillow, so a few values round the other way.
  const cases = fixture.cases.filter((c) => c.library === 'torch');
  assert.equal(cases.length, 20);
  let differ = 0;
  let total = 0;
  for (const c of cases) {
    const input = c.gray ? grayOf(source, c.interpolation) : source;
    const expected = new Uint8Array(Buffer.from(c.data, 'base64'));
    const r = compare(resize(input, c.width, c.height, c.interpolation).data, expected);
    assert.ok(r.max <= 1, `${label(c)}: off by ${r.max}`);
    differ += r.differ;
    total += expected.length;
  }
  assert.ok(differ / total < 0.03, `${differ} of ${total} values differ`);
});

test("torchvision's Resize(S) + CenterCrop(S) is shorter-side-then-center-crop, to the level", () => {
  assert.equal(fixture.pipelines.length, 4);
  for (const c of fixture.pipelines) {
    const g: ImageGeometry = { width: c.width, height: c.height, layout: 'NHWC', channels: 'RGB', resize: c.resize!, interpolation: c.interpolation, mean: [0, 0, 0], std: [1, 1, 1] };
    const out = new Float64Array(c.width * c.height * 3);
    preprocessImage(source, g, out, 0);
    assert.deepEqual(compare(out.map((v) => Math.round(v * 255)), new Uint8Array(Buffer.from(c.data, 'base64'))), { differ: 0, max: 0 }, label(c));
  }
});

test('an image over the pixel cap is refused from its header, before a pixel is decoded; the cap is configurable', async () => {
  const dir = tempDir('images');
  const bomb = path.join(MAKERS['png-bomb-header'](dir), 'bomb.png');
  const t0 = performance.now();
  await assert.rejects(decodeImage(bomb), (err: unknown) => err instanceof DataError
    && err.message === `${bomb}: 20000×20000 is 400.0 megapixels, over the 50 MP cap on decoded images (a decompression bomb, or far larger than any model input); downscale it, or raise the cap (--max-megapixels; in the studio, Pixel cap)`);
  assert.ok(performance.now() - t0 < 1000, 'refused from the header');
  const photo = path.join(dir, 'photo.png');
  await sharp({ create: { width: 400, height: 300, channels: 3, background: { r: 9, g: 8, b: 7 } } }).png().toFile(photo);
  await assert.rejects(decodeImage(photo, 0.1), /photo\.png: 400×300 is 0\.1 megapixels, over the 0\.1 MP cap/);
  assert.equal((await decodeImage(photo, 0.12)).width, 400);
});

test('EXIF orientation is applied; alpha is dropped and grey images come as three equal channels; WebP and TIFF read as written', async () => {
  const dir = tempDir('images');
  // 3 wide, 1 tall, stored with orientation 6 (rotate 90° clockwise to view): upright it is 1×3.
  const rotated = path.join(dir, 'rotated.jpg');
  await sharp(Buffer.from([255, 0, 0, 0, 255, 0, 0, 0, 255]), { raw: { width: 3, height: 1, channels: 3 } }).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toFile(rotated);
  assert.deepEqual(await imageSize(rotated), { width: 1, height: 3 });
  const upright = await decodeImage(rotated);
  assert.deepEqual([upright.width, upright.height, upright.channels], [1, 3, 3]);

  const rgba = path.join(dir, 'alpha.webp');
  await sharp(Buffer.from([10, 20, 30, 0, 40, 50, 60, 128]), { raw: { width: 2, height: 1, channels: 4 } }).webp({ lossless: true, exact: true }).toFile(rgba);
  assert.deepEqual(Array.from((await decodeImage(rgba)).data), [10, 20, 30, 40, 50, 60]);

  const grey = path.join(dir, 'grey.png');
  await sharp(Buffer.from([7, 200]), { raw: { width: 2, height: 1, channels: 1 } }).toColourspace('b-w').png().toFile(grey);
  assert.deepEqual(Array.from((await decodeImage(grey)).data), [7, 7, 7, 200, 200, 200]);

  const tiff = path.join(dir, 'colour.tiff');
  await sharp(Buffer.from([1, 2, 3, 250, 251, 252]), { raw: { width: 2, height: 1, channels: 3 } }).tiff({ compression: 'lzw' }).toFile(tiff);
  assert.deepEqual(Array.from((await decodeImage(tiff)).data), [1, 2, 3, 250, 251, 252]);
});
