// The first sample of a data source as the model receives it, for the Configure screen: its
// shape, value range per channel, and for images a PNG stretched over those values, so that a wrong
// normalisation is visible before calibrating.
import sharp from 'sharp';
import type { InputPreview } from '../../shared/ipc';
import type { SampleSource } from './readers';

export async function previewInput(source: SampleSource): Promise<InputPreview | undefined> {
  for await (const feed of source.batches(1)) {
    const [input, tensor] = Object.entries(feed)[0];
    const data = tensor.data;
    if (data instanceof BigInt64Array) return { description: source.description, input, shape: tensor.dims, stats: [], warnings: source.warnings };
    const values = Float64Array.from(data as ArrayLike<number>);
    const dims = tensor.dims;
    const image = dims.length === 4 && (dims[1] === 1 || dims[1] === 3) ? 'NCHW' : dims.length === 4 && (dims[3] === 1 || dims[3] === 3) ? 'NHWC' : undefined;
    const channels = image === 'NCHW' ? dims[1] : image === 'NHWC' ? dims[3] : 1;
    const [h, w] = image === 'NCHW' ? [dims[2], dims[3]] : image === 'NHWC' ? [dims[1], dims[2]] : [0, 0];
    const at = (c: number, i: number) => (image === 'NHWC' ? values[i * channels + c] : values[c * h * w + i]);
    const stats = [];
    for (let c = 0; c < channels; c++) {
      const n = image ? h * w : values.length;
      let min = Infinity, max = -Infinity, sum = 0, sq = 0;
      for (let i = 0; i < n; i++) {
        const v = image ? at(c, i) : values[i];
        if (v < min) min = v;
        if (v > max) max = v;
        sum += v;
        sq += v * v;
      }
      const mean = sum / n;
      stats.push({ min, max, mean, std: Math.sqrt(Math.max(0, sq / n - mean * mean)) });
    }
    let png: string | undefined;
    if (image) {
      // Stretched over the values' own range: what the model sees, made visible, not the original picture.
      const lo = Math.min(...stats.map((s) => s.min));
      const hi = Math.max(...stats.map((s) => s.max));
      const rgb = Buffer.alloc(h * w * 3);
      for (let i = 0; i < h * w; i++) {
        for (let c = 0; c < 3; c++) rgb[i * 3 + c] = Math.round(((at(channels === 3 ? c : 0, i) - lo) / (hi - lo || 1)) * 255);
      }
      const encoded = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
      png = `data:image/png;base64,${encoded.toString('base64')}`;
    }
    return { description: source.description, input, shape: dims, image: png, stats, warnings: source.warnings };
  }
  return undefined;
}
