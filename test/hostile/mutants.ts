// Seeded mutants of a model for the bounded fuzzer: flipped, dropped and inserted bytes anywhere
// in the file, and structural edits of the decoded graph (dims, types, ops, attributes, edges,
// initializers) that a byte flip rarely reaches. The same seed always makes the same mutant.
import { mulberry32 } from '../../main/data/readers';
import { onnx } from '../../main/onnx/proto';

const OPS = ['Conv', 'Einsum', 'Gemm', 'MatMul', 'Reshape', 'Transpose', 'Concat', 'Split', 'Gather', 'Slice', 'Resize', 'Loop', 'If', 'Pad', 'TopK', 'QuantizeLinear', 'DequantizeLinear', 'Softmax', 'NonZero', 'Unknown'];
const DIMS = [0, -1, -7, 1, 3, 46341, 2 ** 31, 2 ** 40];

type Rand = () => number;
const pick = <T>(r: Rand, list: readonly T[]): T => list[Math.floor(r() * list.length)];

function mutateBytes(bytes: Uint8Array, r: Rand): Uint8Array {
  const out = Array.from(bytes);
  const edits = 1 + Math.floor(r() * 16);
  for (let k = 0; k < edits; k++) {
    const at = Math.floor(r() * out.length);
    const kind = r();
    if (kind < 0.6) out[at] = Math.floor(r() * 256);
    else if (kind < 0.8) out.splice(at, 1 + Math.floor(r() * 8));
    else out.splice(at, 0, ...Array.from({ length: 1 + Math.floor(r() * 8) }, () => Math.floor(r() * 256)));
  }
  if (r() < 0.1) out.length = Math.floor(r() * out.length);
  return Uint8Array.from(out);
}

function mutateGraph(model: onnx.ModelProto, r: Rand): void {
  const g = model.graph!;
  const node = g.node.length ? pick(r, g.node) : undefined;
  const tensors = [...g.input, ...g.output, ...g.valueInfo];
  switch (Math.floor(r() * 10)) {
    case 0: {
      const dims = pick(r, tensors)?.type?.tensorType?.shape?.dim;
      if (dims?.length) pick(r, dims).dimValue = pick(r, DIMS);
      break;
    }
    case 1: {
      const t = pick(r, tensors)?.type?.tensorType;
      if (t) t.elemType = Math.floor(r() * 25);
      break;
    }
    case 2:
      if (node) node.opType = pick(r, OPS);
      break;
    case 3:
      if (node?.attribute.length) {
        const a = pick(r, node.attribute);
        a.i = pick(r, DIMS);
        a.ints = a.ints.map(() => pick(r, DIMS));
        a.f = pick(r, [NaN, Infinity, -1, 0, 1e30]);
      }
      break;
    case 4:
      if (node?.input.length) node.input[Math.floor(r() * node.input.length)] = pick(r, [...g.node.flatMap((n) => n.output), 'nowhere', '']);
      break;
    case 5:
      if (g.initializer.length) g.initializer.splice(Math.floor(r() * g.initializer.length), 1);
      break;
    case 6:
      if (g.initializer.length) {
        const t = pick(r, g.initializer);
        if (r() < 0.5) t.dims = t.dims.map(() => pick(r, DIMS));
        else t.dataType = Math.floor(r() * 25);
      }
      break;
    case 7:
      if (node) g.node.push(onnx.NodeProto.create({ ...node, name: `${node.name}-copy` }));
      break;
    case 8:
      model.opsetImport = [{ domain: '', version: pick(r, [1, 6, 9, 10, 13, 21, 22, 99, -1]) }];
      break;
    default:
      if (g.output.length) g.output[0].name = pick(r, [...g.node.flatMap((n) => n.input), 'nowhere']);
  }
}

/** Mutant `seed` of `bytes`: a third are structural edits, the rest byte edits. */
export function mutant(bytes: Uint8Array, seed: number): Uint8Array {
  const r = mulberry32(seed);
  if (r() < 1 / 3) {
    try {
      const model = onnx.ModelProto.decode(bytes);
      for (let k = 1 + Math.floor(r() * 3); k > 0; k--) mutateGraph(model, r);
      return onnx.ModelProto.encode(model).finish();
    } catch {
      return mutateBytes(bytes, r);
    }
  }
  return mutateBytes(bytes, r);
}
