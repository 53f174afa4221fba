// Images as model input: PNG (pngjs) and JPEG (jpeg-js) decoded in plain JS, so that no native
// module is needed, then resampled with a bilinear filter and normalised into NCHW or NHWC floats.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { DataError } from './npy';
import { PreprocessSpec } from '../../shared/preprocess';

export interface Rgba {
  width: number;
  height: number;
  /** 4 bytes per pixel, row after row. */
  data: Uint8Array;
}

/** Everything preprocessing needs, resolved from the user's options and the model input. */
export interface ImageGeometry {
  height: number;
  width: number;
  layout: 'NCHW' | 'NHWC';
  channels: 'RGB' | 'BGR' | 'GRAY';
  resize: NonNullable<PreprocessSpec['resize']>;
  /** Per output channel, in the order the model receives the channels. */
  mean: readonly number[];
  std: readonly number[];
}

const EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);

/** The images under `dir`, subfolders included so that a folder-per-class layout works, sorted by path. */
export function listImages(dir: string): string[] {
  const found: string[] = [];
  const walk = (folder: string): void => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      // Dot files include macOS's "._photo.jpg" resource forks, which are not images.
      if (entry.name.startsWith('.')) continue;
      const full = path.join(folder, entry.name);
      if (entry.isDirectory() || (entry.isSymbolicLink() && fs.statSync(full, { throwIfNoEntry: false })?.isDirectory())) walk(full);
      else if (EXTENSIONS.has(path.extname(entry.name).toLowerCase())) found.push(full);
    }
  };
  walk(dir);
  return found.sort();
}

export function decodeImage(file: string): Rgba {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new DataError(`${file}: cannot read (${(err as Error).message})`);
  }
  // Decided by content rather than extension: images saved under the wrong extension are common.
  const png = bytes.length >= 4 && bytes.readUInt32BE(0) === 0x89504e47;
  const jpg = bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
  if (!png && !jpg) throw new DataError(`${file}: not a PNG or JPEG image; convert it or move it out of the folder`);
  try {
    const image = png ? PNG.sync.read(bytes) : jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true });
    return { width: image.width, height: image.height, data: image.data };
  } catch (err) {
    throw new DataError(`${file}: cannot decode this ${png ? 'PNG' : 'JPEG'} image (${(err as Error).message}); replace it or move it out of the folder`);
  }
}

/**
 * Writes one preprocessed image at `out[offset]`: (pixel/255 - mean) / std per channel. Alpha is
 * dropped, as PIL's convert('RGB') does; GRAY is ITU-R 601 luma, as PIL's convert('L') computes it.
 */
export function preprocessImage(image: Rgba, g: ImageGeometry, out: Float32Array | Float64Array, offset: number): void {
  const { width: w, height: h, data } = image;
  const { width: W, height: H } = g;
  const place = placement(w, h, g);
  const xTaps = taps(w, W, place.scaleX, place.shiftX);
  const yTaps = taps(h, H, place.scaleY, place.shiftY);
  const sources = g.channels === 'GRAY' ? [-1] : g.channels === 'BGR' ? [2, 1, 0] : [0, 1, 2];
  const plane = new Float64Array(w * h);
  sources.forEach((source, c) => {
    for (let i = 0; i < w * h; i++) {
      plane[i] = source < 0 ? 0.299 * data[4 * i] + 0.587 * data[4 * i + 1] + 0.114 * data[4 * i + 2] : data[4 * i + source];
    }
    const pixels = resample(plane, w, h, xTaps, yTaps);
    const mean = g.mean[c];
    const std = g.std[c];
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const at = g.layout === 'NCHW' ? (c * H + y) * W + x : (y * W + x) * sources.length + c;
        out[offset + at] = (pixels[y * W + x] / 255 - mean) / std;
      }
    }
  });
}

/** How the w×h image maps onto the W×H target: output x = input x × scale + shift. */
function placement(w: number, h: number, g: ImageGeometry): { scaleX: number; scaleY: number; shiftX: number; shiftY: number } {
  if (g.resize === 'stretch') return { scaleX: g.width / w, scaleY: g.height / h, shiftX: 0, shiftY: 0 };
  // Keep the aspect ratio and centre the image: scaled to cover the target with the overflow cut
  // off (the shorter side fits), or scaled to fit inside it with the rest left as padding.
  const s = g.resize === 'pad' ? Math.min(g.width / w, g.height / h) : Math.max(g.width / w, g.height / h);
  return { scaleX: s, scaleY: s, shiftX: (g.width - w * s) / 2, shiftY: (g.height - h * s) / 2 };
}

interface Tap {
  start: number;
  weights: Float64Array;
}

/**
 * Triangle-filter weights from each output pixel to input pixels along one axis, as PIL's
 * BILINEAR computes them: when enlarging this is the usual interpolation between the two nearest
 * pixel centres; when shrinking the filter widens by the reduction factor, so every input pixel
 * counts and thin strokes do not alias away. Output pixels whose centre falls outside the scaled
 * image get no tap: they are padding.
 */
function taps(inSize: number, outSize: number, scale: number, shift: number): Array<Tap | undefined> {
  const support = Math.max(1, 1 / scale);
  return Array.from({ length: outSize }, (_, i) => {
    const center = (i + 0.5 - shift) / scale;
    if (center < 0 || center > inSize) return undefined;
    const start = Math.max(0, Math.floor(center - support));
    const end = Math.min(inSize, Math.ceil(center + support));
    const weights = new Float64Array(end - start);
    let sum = 0;
    for (let j = start; j < end; j++) {
      weights[j - start] = Math.max(0, 1 - Math.abs(j + 0.5 - center) / support);
      sum += weights[j - start];
    }
    return { start, weights: weights.map((v) => v / sum) };
  });
}

/** Separable resampling: rows first, then columns. Padding stays 0, i.e. black. */
function resample(plane: Float64Array, w: number, h: number, xTaps: Array<Tap | undefined>, yTaps: Array<Tap | undefined>): Float64Array {
  const W = xTaps.length;
  const rows = new Float64Array(h * W);
  for (let y = 0; y < h; y++) {
    xTaps.forEach((t, x) => {
      if (!t) return;
      let v = 0;
      for (let k = 0; k < t.weights.length; k++) v += plane[y * w + t.start + k] * t.weights[k];
      rows[y * W + x] = v;
    });
  }
  const out = new Float64Array(yTaps.length * W);
  yTaps.forEach((t, y) => {
    if (!t) return;
    for (let k = 0; k < t.weights.length; k++) {
      const from = (t.start + k) * W;
      for (let x = 0; x < W; x++) out[y * W + x] += rows[from + x] * t.weights[k];
    }
  });
  return out;
}
