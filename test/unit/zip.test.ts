// The streaming ZIP writer behind "Export downloads a zip": round trip through an independent
// reader (which also checks every data descriptor), CRC-32, name refusals and cancel.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { crc32, writeZip } from '../../main/base/zip';
import { tempDir } from '../helpers/build';
import { readZip } from '../helpers/zip';

function files(dir: string, contents: Record<string, Buffer | string>): string[] {
  return Object.entries(contents).map(([name, data]) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, data);
    return file;
  });
}

test('crc32 of "123456789" is the check value 0xCBF43926, also when fed in pieces', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  assert.equal(crc32(Buffer.from('6789'), crc32(Buffer.from('12345'))), 0xcbf43926);
  assert.equal(crc32(Buffer.alloc(0)), 0);
});

test('writeZip round trip: empty, 3 MB random, text and a UTF-8 name in a subfolder', async (t) => {
  const dir = tempDir('zip');
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const random = randomBytes(3 * 1024 * 1024);
  const text = 'layer,sqnr\nconv1,31.2\n'.repeat(2000);
  const json = JSON.stringify({ modèle: 'è' });
  const [empty, big, csv, meta] = files(dir, { empty: '', big: random, csv: text, meta: json });
  const zipFile = path.join(dir, 'out.zip');
  const { bytes } = await writeZip(
    [
      { name: 'empty.bin', file: empty },
      { name: 'weights.bin', file: big },
      { name: 'report/layers.csv', file: csv },
      { name: 'modèle/è.json', file: meta },
    ],
    fs.createWriteStream(zipFile),
  );
  assert.equal(bytes, fs.statSync(zipFile).size);
  const read = readZip(zipFile);
  assert.deepEqual([...read.keys()], ['empty.bin', 'weights.bin', 'report/layers.csv', 'modèle/è.json']);
  assert.equal(read.get('empty.bin')!.length, 0);
  assert.ok(read.get('weights.bin')!.equals(random));
  assert.equal(read.get('report/layers.csv')!.toString(), text);
  assert.equal(read.get('modèle/è.json')!.toString(), json);
  assert.ok(bytes < 3 * 1024 * 1024 + 64 * 1024, 'text is compressed and random data barely grows');
});

test('writeZip refuses duplicate, absolute and ".." names before writing anything', async (t) => {
  const dir = tempDir('zip');
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const [a] = files(dir, { a: 'a' });
  let written = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      written += chunk.length;
      cb();
    },
  });
  await assert.rejects(writeZip([{ name: 'x/a', file: a }, { name: 'x/a', file: a }], sink), /"x\/a" appears twice/);
  for (const name of ['../x', 'a/../../x', '/etc/x', 'C:\\x', 'a\\..\\x', '']) {
    await assert.rejects(writeZip([{ name, file: a }], sink), /must be a relative path with no "\.\." segment/, name);
  }
  assert.equal(written, 0);
});

test('writeZip rejects with "cancelled" when its signal aborts mid-file', async (t) => {
  const dir = tempDir('zip');
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const [big] = files(dir, { big: randomBytes(3 * 1024 * 1024) });
  const controller = new AbortController();
  let writes = 0;
  const sink = new Writable({
    highWaterMark: 1024,
    write(_chunk, _enc, cb) {
      if (++writes === 3) controller.abort();
      setImmediate(cb);
    },
  });
  await assert.rejects(writeZip([{ name: 'big', file: big }, { name: 'again', file: big }], sink, { signal: controller.signal }), { message: 'cancelled' });
  assert.ok(writes < 20, `stopped soon after the abort, not after ${writes} writes`);
});
