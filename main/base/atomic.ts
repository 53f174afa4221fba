import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Writes to a temporary name in the target folder and renames it into place, so a reader never
 * sees half a file and a failure or cancel leaves the previous file (or nothing) behind.
 */
export function writeFileAtomic(file: string, data: Uint8Array | string | readonly Uint8Array[]): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    const chunks = typeof data === 'string' ? [Buffer.from(data)] : data instanceof Uint8Array ? [data] : data;
    for (const chunk of chunks) {
      for (let done = 0; done < chunk.byteLength;) done += fs.writeSync(fd, chunk, done, chunk.byteLength - done);
    }
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
}

/** Copies a file of any size (the kernel streams it) to a temporary name, then renames it into place. */
export function copyFileAtomic(from: string, to: string): void {
  fs.mkdirSync(path.dirname(path.resolve(to)), { recursive: true });
  const tmp = `${to}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    fs.copyFileSync(from, tmp);
    const fd = fs.openSync(tmp, 'r+');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.renameSync(tmp, to);
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}
