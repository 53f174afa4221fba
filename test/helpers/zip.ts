// A small ZIP reader for tests of main/base/zip.ts. It checks what third-party readers often skip:
// each data descriptor (Python's zipfile never reads them) as well as the central directory's CRC.
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { crc32 } from '../../main/base/zip';

const MAX32 = 0xffffffff;

export function readZip(file: string): Map<string, Buffer> {
  const zip = fs.readFileSync(file);
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error(`${file}: no end of central directory record`);
  let count = zip.readUInt16LE(eocd + 10);
  let cd = zip.readUInt32LE(eocd + 16);
  const locator = eocd - 20;
  if (locator >= 0 && zip.readUInt32LE(locator) === 0x07064b50) {
    const eocd64 = Number(zip.readBigUInt64LE(locator + 8));
    if (zip.readUInt32LE(eocd64) !== 0x06064b50) throw new Error(`${file}: zip64 locator points at no zip64 record`);
    count = Number(zip.readBigUInt64LE(eocd64 + 32));
    cd = Number(zip.readBigUInt64LE(eocd64 + 48));
  }

  const files = new Map<string, Buffer>();
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(cd) !== 0x02014b50) throw new Error(`${file}: central record ${i} has a bad signature`);
    const flags = zip.readUInt16LE(cd + 8);
    const crc = zip.readUInt32LE(cd + 16);
    let csize = zip.readUInt32LE(cd + 20);
    let usize = zip.readUInt32LE(cd + 24);
    const nameLength = zip.readUInt16LE(cd + 28);
    const extraLength = zip.readUInt16LE(cd + 30);
    let offset = zip.readUInt32LE(cd + 42);
    const name = zip.toString('utf8', cd + 46, cd + 46 + nameLength);
    for (let at = cd + 46 + nameLength; at < cd + 46 + nameLength + extraLength; at += 4 + zip.readUInt16LE(at + 2)) {
      if (zip.readUInt16LE(at) !== 1) continue;
      let field = at + 4;
      const wide = (v: number): number => (v === MAX32 ? Number(zip.readBigUInt64LE((field += 8) - 8)) : v);
      usize = wide(usize);
      csize = wide(csize);
      offset = wide(offset);
    }
    cd += 46 + nameLength + extraLength + zip.readUInt16LE(cd + 32);

    if (zip.readUInt32LE(offset) !== 0x04034b50) throw new Error(`${name}: local header has a bad signature`);
    const localExtra = zip.readUInt16LE(offset + 28);
    const zip64 = localExtra >= 4 && zip.readUInt16LE(offset + 30 + zip.readUInt16LE(offset + 26)) === 1;
    const start = offset + 30 + zip.readUInt16LE(offset + 26) + localExtra;
    const data = zlib.inflateRawSync(zip.subarray(start, start + csize));
    if (data.length !== usize) throw new Error(`${name}: ${data.length} bytes inflated, central directory says ${usize}`);
    if (crc32(data) !== crc) throw new Error(`${name}: CRC-32 mismatch`);
    if (flags & 8) {
      const d = start + csize;
      const sizes = zip64 ? [zip.readBigUInt64LE(d + 8), zip.readBigUInt64LE(d + 16)].map(Number) : [zip.readUInt32LE(d + 8), zip.readUInt32LE(d + 12)];
      if (zip.readUInt32LE(d) !== 0x08074b50 || zip.readUInt32LE(d + 4) !== crc || sizes[0] !== csize || sizes[1] !== usize) {
        throw new Error(`${name}: data descriptor disagrees with the central directory`);
      }
    }
    files.set(name, data);
  }
  return files;
}
