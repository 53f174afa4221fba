// A streaming ZIP writer for "Export downloads a zip": each file is deflated straight into the
// response, so a model of several GB never sits in memory and the download starts at once.
// Layout and field order follow PKWARE's APPNOTE 6.3.x (4.3 structure, 4.5.3 zip64 extra).
import { once } from 'node:events';
import * as fs from 'node:fs';
import type { Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { CancelledError, throwIfAborted } from './progress';

export interface ZipEntry {
  /** Path inside the archive: forward slashes, UTF-8. */
  name: string;
  /** File on disk. */
  file: string;
}

const CRC_TABLE = Int32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});

/** CRC-32 as ZIP uses it; pass the previous result to continue over the next chunk (Node 20 has no zlib.crc32). */
export function crc32(buf: Uint8Array, prev = 0): number {
  let c = ~prev;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

// 0xffffffff itself is the "look in the zip64 extra" marker, so a value equal to it already overflows.
const MAX32 = 0xffffffff;
// Whether an entry is zip64 must be settled in its local header, before its compressed size is known.
// Deflate can grow incompressible data by about 0.03% (zlib's deflateBound): 1.3 MB at 4 GiB.
const ZIP64_FROM = MAX32 - 16 * 1024 * 1024;
const FLAGS = 0x0808; // bit 3: CRC and sizes follow the data; bit 11: names are UTF-8
const DEFLATE = 8;

function le(fields: Array<[number, 2 | 4 | 8]>, ...tails: Buffer[]): Buffer {
  const head = Buffer.alloc(fields.reduce((n, [, width]) => n + width, 0));
  let at = 0;
  for (const [value, width] of fields) {
    if (width === 8) head.writeBigUInt64LE(BigInt(value), at);
    else if (width === 4) head.writeUInt32LE(value, at);
    else head.writeUInt16LE(value, at);
    at += width;
  }
  return Buffer.concat([head, ...tails]);
}

function dosTime(d: Date): [time: number, date: number] {
  if (d.getFullYear() < 1980) return [0, (1 << 5) | 1];
  return [
    (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1),
    (Math.min(d.getFullYear() - 1980, 127) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
  ];
}

function checkNames(entries: ZipEntry[]): void {
  const seen = new Set<string>();
  for (const { name } of entries) {
    // Extractors join the name onto their target folder, so these would write outside it ("zip slip");
    // backslashes count as separators because Windows extractors treat them so.
    if (!name || /^([a-zA-Z]:|[\\/])/.test(name) || name.split(/[\\/]/).includes('..')) {
      throw new Error(`zip entry name "${name}" must be a relative path with no ".." segment`);
    }
    if (Buffer.byteLength(name) > 0xffff) throw new Error(`zip entry name "${name.slice(0, 60)}…" is longer than 65535 bytes`);
    if (seen.has(name)) throw new Error(`zip entry name "${name}" appears twice`);
    seen.add(name);
  }
}

/**
 * Streams a deflated archive of `entries` to `out` and ends it. On failure or cancel `out` is left
 * open: the caller should destroy a response so the browser marks the download failed rather than
 * keeping a truncated archive.
 */
export async function writeZip(
  entries: ZipEntry[],
  out: NodeJS.WritableStream | Writable,
  options: { signal?: AbortSignal } = {},
): Promise<{ bytes: number }> {
  const { signal } = options;
  checkNames(entries);
  // Settles early only if `out` errors or closes under us; put() races it so a gone client stops the work.
  const done = finished(out, { readable: false, cleanup: true });
  let outFailed: unknown;
  // Kept because pipeline() reports a torn-down output as a bare AbortError.
  done.catch((err) => (outFailed = err));
  let bytes = 0;
  const put = async (buf: Buffer): Promise<void> => {
    bytes += buf.length;
    if (!out.write(buf)) await Promise.race([once(out, 'drain', { signal }), done]);
  };
  const central: Buffer[] = [];
  try {
    for (const { name, file } of entries) {
      throwIfAborted(signal);
      const stat = await fs.promises.stat(file);
      const zip64 = stat.size >= ZIP64_FROM;
      const version = zip64 ? 45 : 20;
      const [time, date] = dosTime(stat.mtime);
      const nameBytes = Buffer.from(name);
      const offset = bytes;
      // A zip64 local header carries zeroed 8-byte sizes: that is what tells a reader the data descriptor has 8-byte sizes.
      const localExtra = zip64 ? le([[1, 2], [16, 2], [0, 8], [0, 8]]) : Buffer.alloc(0);
      const size32 = zip64 ? MAX32 : 0;
      await put(le([[0x04034b50, 4], [version, 2], [FLAGS, 2], [DEFLATE, 2], [time, 2], [date, 2], [0, 4], [size32, 4], [size32, 4],
        [nameBytes.length, 2], [localExtra.length, 2]], nameBytes, localExtra));

      let crc = 0;
      let usize = 0;
      let csize = 0;
      await pipeline(
        fs.createReadStream(file, { highWaterMark: 1 << 20 }),
        async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            crc = crc32(chunk, crc);
            usize += chunk.length;
            yield chunk;
          }
        },
        zlib.createDeflateRaw({ level: 6 }),
        async (source: AsyncIterable<Buffer>) => {
          for await (const chunk of source) {
            csize += chunk.length;
            await put(chunk);
          }
        },
        { signal },
      );
      if (!zip64 && Math.max(usize, csize) >= MAX32) throw new Error(`${file} grew past 4 GiB while it was being zipped`);
      const w = zip64 ? 8 : 4;
      await put(le([[0x08074b50, 4], [crc, 4], [csize, w], [usize, w]]));

      // The central zip64 extra lists only the fields marked 0xffffffff, in the order usize, csize, offset.
      const wide = [...(zip64 ? [usize, csize] : []), ...(offset >= MAX32 ? [offset] : [])];
      const extra = wide.length ? le([[1, 2], [wide.length * 8, 2], ...wide.map((v): [number, 8] => [v, 8])]) : Buffer.alloc(0);
      const needs = wide.length ? 45 : 20;
      central.push(le([[0x02014b50, 4], [needs, 2], [needs, 2], [FLAGS, 2], [DEFLATE, 2], [time, 2], [date, 2], [crc, 4],
        [zip64 ? MAX32 : csize, 4], [zip64 ? MAX32 : usize, 4], [nameBytes.length, 2], [extra.length, 2], [0, 2], [0, 2], [0, 2], [0, 4],
        [Math.min(offset, MAX32), 4]], nameBytes, extra));
    }

    const cdOffset = bytes;
    for (const record of central) await put(record);
    const cdSize = bytes - cdOffset;
    const n = central.length;
    if (n >= 0xffff || cdOffset >= MAX32 || cdSize >= MAX32) {
      const eocd64 = bytes;
      await put(le([[0x06064b50, 4], [44, 8], [45, 2], [45, 2], [0, 4], [0, 4], [n, 8], [n, 8], [cdSize, 8], [cdOffset, 8]]));
      await put(le([[0x07064b50, 4], [0, 4], [eocd64, 8], [1, 4]]));
    }
    await put(le([[0x06054b50, 4], [0, 2], [0, 2], [Math.min(n, 0xffff), 2], [Math.min(n, 0xffff), 2],
      [Math.min(cdSize, MAX32), 4], [Math.min(cdOffset, MAX32), 4], [0, 2]]));
    out.end();
    await done;
    return { bytes };
  } catch (err) {
    if (signal?.aborted) throw new CancelledError();
    throw outFailed ?? err;
  }
}
