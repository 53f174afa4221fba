// The hostile inputs of test/hostile/cases.json, made in code: tiny models and files, each the
// smallest thing that shows one way an input can go wrong.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { deflateSync } from 'node:zlib';
import { writeNpy } from '../../main/data/npy';
import { saveModel } from '../../main/onnx/model';
import { onnx } from '../../main/onnx/proto';
import { buildModel, randomArray } from '../helpers/build';

const conv = (extra: Partial<Parameters<typeof buildModel>[0]> = {}) => buildModel({
  inputs: { x: ['batch', 3, 8, 8] }, outputs: { y: ['batch', 4, 8, 8] },
  initializers: { w: { dims: [4, 3, 3, 3], data: randomArray(108, 3, 0.5) } },
  nodes: [{ op: 'Conv', inputs: ['x', 'w'], outputs: ['y'], name: 'conv', attrs: { pads: [1, 1, 1, 1] } }],
  ...extra,
});

/** A Conv (something to quantize), then an Einsum whose equation crashes ONNX Runtime 1.30 natively (SIGSEGV). */
function einsumCrash(): onnx.ModelProto {
  const m = buildModel({
    inputs: { x: [2, 1, 1, 1] }, outputs: { y: [2, 3] },
    initializers: { w: { dims: [3, 1, 1, 1], data: [1, 2, 3] }, b: { dims: [3], data: [1, 1, 1] }, shape: { dims: [2], data: BigInt64Array.of(2n, 3n) } },
    nodes: [
      { op: 'Conv', inputs: ['x', 'w'], outputs: ['c'], name: 'conv' },
      { op: 'Reshape', inputs: ['c', 'shape'], outputs: ['r'], name: 'reshape' },
      { op: 'Einsum', inputs: ['r', 'b'], outputs: ['y'], name: 'einsum', attrs: { equation: 'ab...,...->...zz' } },
    ],
    opset: 13,
  });
  m.graph!.output[0].type!.tensorType!.shape = null;
  return m;
}

function png(width: number, height: number, idat: Buffer): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type), data])));
    return Buffer.concat([len, Buffer.from(type), data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
}

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

/** Each maker writes its file(s) into `dir` and returns the path the case names. */
export const MAKERS: Record<string, (dir: string) => string> = {
  'tiny-conv': (dir) => save(dir, 'model.onnx', conv()),
  'einsum-crash': (dir) => save(dir, 'crash.onnx', einsumCrash()),
  'ir-version-0': (dir) => save(dir, 'ir0.onnx', onnx.ModelProto.create({ ...conv(), irVersion: 0 })),
  'ir-version-negative': (dir) => save(dir, 'irneg.onnx', onnx.ModelProto.create({ ...conv(), irVersion: -3 })),
  'control-names': (dir) => {
    const m = conv();
    m.graph!.input[0].name = 'x\x1b]0;owned\x07';
    m.graph!.node[0].input[0] = m.graph!.input[0].name;
    m.graph!.node[0].name = 'conv\nquantized tensors: 999 (fake line)';
    return save(dir, 'names.onnx', m);
  },
  'huge-dim': (dir) => save(dir, 'huge.onnx', buildModel({
    inputs: { x: [1, 46341, 46341] }, outputs: { y: [1, 46341, 46341] }, initializers: { s: { dims: [], data: [2] } },
    nodes: [{ op: 'Mul', inputs: ['x', 's'], outputs: ['y'], name: 'mul' }],
  })),
  'external-symlink': (dir) => {
    const outside = fs.mkdtempSync(path.join(path.dirname(dir), 'outside-'));
    const model = conv();
    const w = model.graph!.initializer[0];
    const data = Buffer.from(w.rawData);
    fs.writeFileSync(path.join(outside, 'secret.bin'), data);
    fs.mkdirSync(path.join(dir, 'ext'), { recursive: true });
    fs.symlinkSync(path.join(outside, 'secret.bin'), path.join(dir, 'ext', 'weights.bin'));
    w.rawData = new Uint8Array(0);
    w.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    w.externalData = [{ key: 'location', value: 'weights.bin' }, { key: 'offset', value: '0' }, { key: 'length', value: String(data.length) }];
    fs.writeFileSync(path.join(dir, 'ext', 'model.onnx'), onnx.ModelProto.encode(model).finish());
    return path.join(dir, 'ext', 'model.onnx');
  },
  'nan-data': (dir) => npy(dir, 'nan.npy', (d) => { d[5] = NaN; }),
  'inf-data': (dir) => npy(dir, 'inf.npy', (d) => { d[200] = -Infinity; d[201] = Infinity; }),
  'huge-value-data': (dir) => npy(dir, 'huge.npy', (d) => { d[7] = 3e38; }),
  'int64-data': (dir) => {
    const file = path.join(dir, 'ints.npy');
    writeNpy(file, 'int64', [4, 3, 8, 8], BigInt64Array.from({ length: 4 * 192 }, (_, i) => BigInt(i % 255)));
    return file;
  },
  'png-bomb-header': (dir) => {
    const folder = path.join(dir, 'bomb');
    fs.mkdirSync(folder, { recursive: true });
    fs.writeFileSync(path.join(folder, 'bomb.png'), png(20000, 20000, deflateSync(Buffer.alloc(16))));
    return folder;
  },
  'png-bomb-real': (dir) => {
    // 8000×8000 black pixels compress to about 200 kB; decoded they are 192 MB of RGB.
    const folder = path.join(dir, 'bomb-real');
    fs.mkdirSync(folder, { recursive: true });
    const row = Buffer.alloc(1 + 8000 * 3);
    fs.writeFileSync(path.join(folder, 'bomb.png'), png(8000, 8000, deflateSync(Buffer.concat(Array.from({ length: 8000 }, () => row)), { level: 9 })));
    return folder;
  },
  'calib-npy': (dir) => npy(dir, 'calib.npy', () => undefined),
  'external-data': (dir) => {
    // The weights in model.onnx.data beside the model, as exporters write large models.
    const model = conv();
    const w = model.graph!.initializer[0];
    fs.writeFileSync(path.join(dir, 'model.onnx.data'), Buffer.from(w.rawData));
    w.externalData = [{ key: 'location', value: 'model.onnx.data' }, { key: 'offset', value: '0' }, { key: 'length', value: String(w.rawData.length) }];
    w.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    w.rawData = new Uint8Array(0);
    fs.writeFileSync(path.join(dir, 'model.onnx'), onnx.ModelProto.encode(model).finish());
    return path.join(dir, 'model.onnx');
  },
  'symlink-to-model': (dir) => {
    const file = save(dir, 'model.onnx', conv());
    fs.symlinkSync(file, path.join(dir, 'link.onnx'));
    return file;
  },
  'slow-to-open': (dir) => {
    // A MatMul to quantize, then a chain of n ReLUs with a Neg branching off each link, the branches
    // listed after the chain. ONNX Runtime keeps the nodes ready to visit in a list sorted by index
    // and walks it on each insertion: every branch becomes ready early and waits behind the chain, so
    // each of its graph passes is quadratic in n. Creating a session of the model takes 0.9 s (ONNX
    // Runtime 1.30), the side-by-side one (two such graphs) 17 s: a long native call Cancel has to end.
    const n = 2000;
    return save(dir, 'fan-out.onnx', buildModel({
      inputs: { x: ['batch', 4] }, outputs: { y: ['batch', 4] },
      initializers: { w: { dims: [4, 4], data: randomArray(16, 9, 0.5) } },
      nodes: [
        { op: 'MatMul', inputs: ['x', 'w'], outputs: ['t0'], name: 'matmul' },
        ...Array.from({ length: n }, (_, i) => ({ op: 'Relu', inputs: [`t${i}`], outputs: [`t${i + 1}`], name: `relu${i}` })),
        ...Array.from({ length: n }, (_, i) => ({ op: 'Neg', inputs: [`t${i + 1}`], outputs: [`b${i}`], name: `neg${i}` })),
        { op: 'Sum', inputs: Array.from({ length: n }, (_, i) => `b${i}`), outputs: ['y'], name: 'sum' },
      ],
    }));
  },
  'a-folder': (dir) => {
    const folder = path.join(dir, 'a-folder.onnx');
    fs.mkdirSync(folder, { recursive: true });
    return folder;
  },
};

function save(dir: string, name: string, model: onnx.ModelProto): string {
  const file = path.join(dir, name);
  saveModel(model, file);
  return file;
}

function npy(dir: string, name: string, spoil: (data: Float32Array) => void): string {
  const data = randomArray(4 * 192, 5);
  spoil(data);
  const file = path.join(dir, name);
  writeNpy(file, 'float32', [4, 3, 8, 8], data);
  return file;
}

