// Draws resources/icon.png (512x512): a per-layer SQNR bar chart with its threshold line, the
// studio's picture of itself. Run once; the PNG is committed for electron-builder.
'use strict';
const path = require('node:path');
const sharp = require('sharp');

const size = 512;
const png = { data: Buffer.alloc(size * size * 4) };
const put = (x, y, [r, g, b, a = 255]) => {
  const i = (y * size + x) * 4;
  png.data[i] = r; png.data[i + 1] = g; png.data[i + 2] = b; png.data[i + 3] = a;
};
const radius = 96;
for (let y = 0; y < size; y++) {
  for (let x = 0; x < size; x++) {
    // Rounded square background.
    const dx = Math.max(radius - x, x - (size - 1 - radius), 0);
    const dy = Math.max(radius - y, y - (size - 1 - radius), 0);
    put(x, y, dx * dx + dy * dy <= radius * radius ? [28, 33, 40] : [0, 0, 0, 0]);
  }
}
const bars = [0.55, 0.8, 0.35, 0.7, 0.9, 0.45, 0.75];
const colours = [[78, 121, 167], [242, 142, 43], [89, 161, 79], [225, 87, 89], [118, 183, 178], [237, 201, 72], [176, 122, 161]];
const left = 80, bottom = 432, width = 352, gap = 10;
const w = Math.floor((width - gap * (bars.length - 1)) / bars.length);
bars.forEach((h, i) => {
  const x0 = left + i * (w + gap);
  const top = bottom - Math.round(h * 320);
  for (let y = top; y < bottom; y++) for (let x = x0; x < x0 + w; x++) put(x, y, colours[i]);
});
const line = bottom - Math.round(0.5 * 320);
for (let x = 64; x < 448; x++) if (Math.floor((x - 64) / 16) % 2 === 0) for (let t = -3; t <= 3; t++) put(x, line + t, [255, 138, 128]);
sharp(png.data, { raw: { width: size, height: size, channels: 4 } }).png().toFile(path.join(__dirname, '..', 'resources', 'icon.png'));
