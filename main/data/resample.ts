// Resizing an 8-bit image the way the library a model was trained with resizes it, to the
// level: Pillow's antialiased filters (what torchvision uses on PIL images, its default pipeline),
// Pillow's nearest neighbour, and OpenCV's INTER_LINEAR. Each reproduces that library's
// fixed-point arithmetic, so a calibration image is the pixels the model saw in training; the
// fixture test/fixtures/resample holds the libraries' own outputs.
import type { Interpolation } from '../../shared/preprocess';
import { roundHalfEven } from '../base/round';

/** 8-bit pixels, channels interleaved, row after row. */
export interface Pixels {
  width: number;
  height: number;
  channels: number;
  data: Uint8Array;
}

export function resize(src: Pixels, width: number, height: number, interpolation: Interpolation): Pixels {
  if (src.width === width && src.height === height) return src;
  switch (interpolation) {
    case 'bilinear':
    case 'bicubic':
      return pilResample(src, width, height, PIL_FILTERS[interpolation]);
    case 'nearest':
      return pilNearest(src, width, height);
    case 'opencv-linear':
      return opencvLinear(src, width, height);
  }
}

/** Luma as the same library computes it, so that GRAY input matches the training pipeline too. */
export function luma(r: number, g: number, b: number, interpolation: Interpolation): number {
  // ITU-R 601 weights: Pillow's convert('L') in 16-bit fixed point; OpenCV 5's cvtColor RGB2GRAY in 15-bit.
  return interpolation === 'opencv-linear' ? (r * 9798 + g * 19235 + b * 3735 + 16384) >> 15 : (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

interface Filter {
  support: number;
  weight(x: number): number;
}

const PIL_FILTERS: Record<'bilinear' | 'bicubic', Filter> = {
  bilinear: { support: 1, weight: (x) => Math.max(0, 1 - Math.abs(x)) },
  bicubic: {
    support: 2,
    weight: (x) => {
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
};

/** Pillow's coefficients are doubles rounded to 22 fractional bits; sums start at one half of the last bit. */
const PIL_BITS = 22;
const PIL_ONE = 2 ** PIL_BITS;

interface Taps {
  first: Int32Array;
  count: Int32Array;
  /** `size` fixed-point weights per output pixel. */
  weights: Float64Array;
  size: number;
}

/**
 * Pillow's precompute_coeffs: a filter widened by the reduction factor when shrinking (the
 * antialias), centred on each output pixel's centre, normalised, then rounded to fixed point.
 */
function pilTaps(inSize: number, outSize: number, filter: Filter): Taps {
  const scale = inSize / outSize;
  const filterScale = Math.max(1, scale);
  const support = filter.support * filterScale;
  const size = Math.ceil(support) * 2 + 1;
  const taps: Taps = { first: new Int32Array(outSize), count: new Int32Array(outSize), weights: new Float64Array(outSize * size), size };
  const k = new Float64Array(size);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const min = Math.max(0, Math.trunc(center - support + 0.5));
    const count = Math.min(inSize, Math.trunc(center + support + 0.5)) - min;
    let sum = 0;
    for (let i = 0; i < count; i++) {
      k[i] = filter.weight((i + min - center + 0.5) / filterScale);
      sum += k[i];
    }
    for (let i = 0; i < count; i++) {
      const w = sum !== 0 ? k[i] / sum : k[i];
      taps.weights[o * size + i] = Math.trunc(w < 0 ? -0.5 + w * PIL_ONE : 0.5 + w * PIL_ONE);
    }
    taps.first[o] = min;
    taps.count[o] = count;
  }
  return taps;
}

const clip8 = (sum: number): number => Math.min(255, Math.max(0, Math.floor(sum / PIL_ONE)));

/** Pillow's ImagingResample: a horizontal pass into an 8-bit image, then a vertical pass, each only when the size changes along it. */
function pilResample(src: Pixels, width: number, height: number, filter: Filter): Pixels {
  const c = src.channels;
  let image = src;
  if (width !== src.width) {
    const t = pilTaps(src.width, width, filter);
    const out = new Uint8Array(width * src.height * c);
    for (let y = 0; y < src.height; y++) {
      const row = y * src.width * c;
      for (let x = 0; x < width; x++) {
        for (let ch = 0; ch < c; ch++) {
          let sum = PIL_ONE / 2;
          const from = row + t.first[x] * c + ch;
          for (let i = 0; i < t.count[x]; i++) sum += src.data[from + i * c] * t.weights[x * t.size + i];
          out[(y * width + x) * c + ch] = clip8(sum);
        }
      }
    }
    image = { width, height: src.height, channels: c, data: out };
  }
  if (height !== src.height) {
    const t = pilTaps(src.height, height, filter);
    const stride = width * c;
    const out = new Uint8Array(height * stride);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < stride; x++) {
        let sum = PIL_ONE / 2;
        for (let i = 0; i < t.count[y]; i++) sum += image.data[(t.first[y] + i) * stride + x] * t.weights[y * t.size + i];
        out[y * stride + x] = clip8(sum);
      }
    }
    image = { width, height, channels: c, data: out };
  }
  return image;
}

/**
 * Pillow's NEAREST resize is an affine scale: the source of output pixel i is floor of its centre
 * mapped back, with the position accumulated step by step as Pillow does, so the rare ties land
 * on the same side.
 */
function pilNearest(src: Pixels, width: number, height: number): Pixels {
  const sources = (inSize: number, outSize: number): Int32Array => {
    const step = inSize / outSize;
    const at = new Int32Array(outSize);
    let pos = step * 0.5;
    for (let i = 0; i < outSize; i++) {
      at[i] = Math.min(inSize - 1, Math.trunc(pos));
      pos += step;
    }
    return at;
  };
  const xs = sources(src.width, width);
  const ys = sources(src.height, height);
  const c = src.channels;
  const out = new Uint8Array(width * height * c);
  for (let y = 0; y < height; y++) {
    const row = ys[y] * src.width;
    for (let x = 0; x < width; x++) for (let ch = 0; ch < c; ch++) out[(y * width + x) * c + ch] = src.data[(row + xs[x]) * c + ch];
  }
  return { width, height, channels: c, data: out };
}

/** OpenCV's 8-bit resize keeps weights in 11 fractional bits. */
const CV_ONE = 2048;

/**
 * cv2.resize(..., interpolation=INTER_LINEAR) on uint8 as OpenCV 5's SIMD code computes it (x86
 * and Arm alike): two taps at half-pixel centres with no antialias, coordinates in float32,
 * weights rounded to 1/2048. Columns past the border clamp to the edge pixel; rows past it repeat
 * the edge row under the unclamped weights, and the vertical sum drops 4 bits before a high-half
 * multiply, which is where it parts from the exact sum. An exact 2× reduction is INTER_AREA's 2×2
 * mean, which OpenCV switches to there.
 */
function opencvLinear(src: Pixels, width: number, height: number): Pixels {
  const c = src.channels;
  const scaleX = 1 / (width / src.width);
  const scaleY = 1 / (height / src.height);
  if (scaleX === 2 && scaleY === 2) return areaHalf(src, width, height);
  const xs = cvTaps(src.width, width, scaleX, true);
  const ys = cvTaps(src.height, height, scaleY, false);
  // Horizontal pass in integers (pixel × 2048), as OpenCV buffers rows.
  const stride = width * c;
  const rows = new Int32Array(src.height * stride);
  for (let y = 0; y < src.height; y++) {
    const row = y * src.width * c;
    for (let x = 0; x < width; x++) {
      const s = row + xs.source[x] * c;
      const last = xs.source[x] + 1 >= src.width;
      for (let ch = 0; ch < c; ch++) rows[y * stride + x * c + ch] = src.data[s + ch] * xs.alpha[2 * x] + (last ? 0 : src.data[s + c + ch] * xs.alpha[2 * x + 1]);
    }
  }
  const edge = (y: number) => Math.min(src.height - 1, Math.max(0, y)) * stride;
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const s0 = edge(ys.source[y]);
    const s1 = edge(ys.source[y] + 1);
    const b0 = ys.alpha[2 * y];
    const b1 = ys.alpha[2 * y + 1];
    for (let x = 0; x < stride; x++) {
      const v = (Math.floor(((rows[s0 + x] >> 4) * b0) / 65536) + Math.floor(((rows[s1 + x] >> 4) * b1) / 65536) + 2) >> 2;
      out[y * stride + x] = Math.min(255, Math.max(0, v));
    }
  }
  return { width, height, channels: c, data: out };
}

function cvTaps(inSize: number, outSize: number, scale: number, clamp: boolean): { source: Int32Array; alpha: Int32Array } {
  const source = new Int32Array(outSize);
  const alpha = new Int32Array(2 * outSize);
  const f32 = Math.fround;
  for (let o = 0; o < outSize; o++) {
    let fx = f32((o + 0.5) * scale - 0.5);
    let sx = Math.floor(fx);
    fx = f32(fx - sx);
    if (clamp && sx < 0) {
      fx = 0;
      sx = 0;
    }
    if (clamp && sx >= inSize - 1) {
      fx = 0;
      sx = inSize - 1;
    }
    source[o] = sx;
    alpha[2 * o] = roundHalfEven(f32(f32(1 - fx) * CV_ONE));
    alpha[2 * o + 1] = roundHalfEven(f32(fx * CV_ONE));
  }
  return { source, alpha };
}

function areaHalf(src: Pixels, width: number, height: number): Pixels {
  const c = src.channels;
  const stride = src.width * c;
  const out = new Uint8Array(width * height * c);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width * c; x++) {
      const i = 2 * y * stride + 2 * (x - (x % c)) + (x % c);
      out[y * width * c + x] = (src.data[i] + src.data[i + c] + src.data[i + stride] + src.data[i + stride + c] + 2) >> 2;
    }
  }
  return { width, height, channels: c, data: out };
}
