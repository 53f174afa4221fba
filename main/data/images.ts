// Images as model input: decoded by sharp (libvips: PNG, JPEG, WebP, TIFF, AVIF, GIF; EXIF
// orientation applied), refused from the header when they hold more pixels than the cap, then
// resized with the interpolation the model was trained with and normalised into NCHW or NHWC floats.
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { DataError } from './npy';
import type { Interpolation, PreprocessSpec } from '../../shared/preprocess';
import { roundHalfEven } from '../base/round';
import { luma, resize, type Pixels } from './resample';

export type { Pixels };

/** Everything preprocessing needs, resolved from the user's options and the model input. */
export interface ImageGeometry {
  height: number;
  width: number;
  layout: 'NCHW' | 'NHWC';
  channels: 'RGB' | 'BGR' | 'GRAY';
  resize: NonNullable<PreprocessSpec['resize']>;
  interpolation: Interpolation;
  /** Per output channel, in the order the model receives the channels. */
  mean: readonly number[];
  std: readonly number[];
}

/**
 * Decoded images may hold this many megapixels by default: a 50 MP photo is 150 MB of RGB, and
 * anything larger is a decompression bomb or a source no model input needs.
 */
export const DEFAULT_MAX_MEGAPIXELS = 50;

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.tif', '.tiff', '.avif', '.gif'];
const EXTENSIONS = new Set(IMAGE_EXTENSIONS);

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

/** Width and height after EXIF orientation, from the header alone; over the cap it is refused before any pixel is decoded. */
export async function imageSize(file: string, maxMegapixels = DEFAULT_MAX_MEGAPIXELS): Promise<{ width: number; height: number }> {
  const meta = await sharp(file, { limitInputPixels: false }).metadata().catch((err: Error) => {
    throw new DataError(`${file}: not an image sharp can read (${oneLine(err)}); convert it to PNG or JPEG, or move it out of the folder`);
  });
  const { width, height } = meta.autoOrient ?? meta;
  if (!width || !height) throw new DataError(`${file}: the image header gives no size; replace the file or move it out of the folder`);
  if (width * height > maxMegapixels * 1e6) {
    throw new DataError(`${file}: ${width}×${height} is ${((width * height) / 1e6).toFixed(1)} megapixels, over the ${maxMegapixels} MP cap on decoded images (a decompression bomb, or far larger than any model input); downscale it, or raise the cap (--max-megapixels; in the studio, Pixel cap)`);
  }
  return { width, height };
}

/**
 * The image as 8-bit RGB, upright. libvips applies the pixel cap from the header before decoding;
 * the file is opened once, and only a failure reads the header again, for the message that says why.
 */
export async function decodeImage(file: string, maxMegapixels = DEFAULT_MAX_MEGAPIXELS): Promise<Pixels> {
  try {
    // Alpha is dropped, as Pillow's convert('RGB') drops it; grey images become three equal channels.
    const { data, info } = await sharp(file, { limitInputPixels: Math.floor(maxMegapixels * 1e6), failOn: 'error' })
      .autoOrient().removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, channels: info.channels, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (err) {
    await imageSize(file, maxMegapixels);
    throw new DataError(`${file}: cannot decode this image (${oneLine(err as Error)}); replace it or move it out of the folder`);
  }
}

/** libvips reports over several lines; a message is one. */
function oneLine(err: Error): string {
  return err.message.replace(/\s+/g, ' ').trim();
}

/**
 * Writes one preprocessed image at `out[offset]`: (pixel/255 - mean) / std per channel, in the
 * order and layout the model takes. GRAY is the luma of the chosen library, computed before
 * resizing as a pipeline that opens the file in grey would.
 */
export function preprocessImage(image: Pixels, g: ImageGeometry, out: Float32Array | Float64Array, offset: number): void {
  const gray = g.channels === 'GRAY';
  const source = gray ? grayOf(image, g.interpolation) : image;
  const place = placement(source.width, source.height, g);
  const resized = resize(source, place.width, place.height, g.interpolation);
  const order = gray ? [0] : g.channels === 'BGR' ? [2, 1, 0] : [0, 1, 2];
  const c = resized.channels;
  order.forEach((from, ch) => {
    const mean = g.mean[ch];
    const std = g.std[ch];
    for (let y = 0; y < g.height; y++) {
      const sy = y + place.top;
      for (let x = 0; x < g.width; x++) {
        const sx = x + place.left;
        // Outside the resized image is padding: black.
        const pixel = sx >= 0 && sx < resized.width && sy >= 0 && sy < resized.height ? resized.data[(sy * resized.width + sx) * c + from] : 0;
        const at = g.layout === 'NCHW' ? (ch * g.height + y) * g.width + x : (y * g.width + x) * order.length + ch;
        out[offset + at] = (pixel / 255 - mean) / std;
      }
    }
  });
}

function grayOf(image: Pixels, interpolation: Interpolation): Pixels {
  const data = new Uint8Array(image.width * image.height);
  for (let i = 0; i < data.length; i++) data[i] = luma(image.data[3 * i], image.data[3 * i + 1], image.data[3 * i + 2], interpolation);
  return { width: image.width, height: image.height, channels: 1, data };
}

/**
 * The size to resize to and where the target window sits in it, as the usual pipelines do it:
 * stretch resizes to the target; crop is torchvision's Resize(shorter side) then CenterCrop (the
 * long side truncated, the crop offset rounded half to even, as Python rounds); pad fits the
 * longer side and centres the image on black.
 */
function placement(w: number, h: number, g: ImageGeometry): { width: number; height: number; left: number; top: number } {
  const { width: W, height: H } = g;
  if (g.resize === 'stretch') return { width: W, height: H, left: 0, top: 0 };
  const pad = g.resize === 'pad';
  const byWidth = pad ? W / w <= H / h : W / w >= H / h;
  // The other side, clamped to the target: float rounding must not make a cover smaller than it or a fit larger.
  const side = (target: number, exact: number) => (pad ? Math.max(1, Math.min(target, Math.trunc(exact))) : Math.max(target, Math.trunc(exact)));
  const width = byWidth ? W : side(W, (H * w) / h);
  const height = byWidth ? side(H, (W * h) / w) : H;
  if (pad) return { width, height, left: -Math.floor((W - width) / 2), top: -Math.floor((H - height) / 2) };
  return { width, height, left: roundHalfEven((width - W) / 2), top: roundHalfEven((height - H) / 2) };
}
