// The character-level transformer fixture (test/fixtures/char-lm) and the activation outliers that
// large language models grow: a few LayerNorm channels tens of times wider than the rest.
import * as path from 'node:path';
import { GraphView } from '../../main/onnx/graph';
import { loadModel } from '../../main/onnx/model';
import { onnx } from '../../main/onnx/proto';
import { floatTensor, tensorDims, tensorToFloat32 } from '../../main/onnx/tensor';
import { ROOT } from './build';

export const CHAR_LM = path.join(ROOT, 'test', 'fixtures', 'char-lm');

/**
 * The fixture with `channels` of every LayerNorm that feeds only MatMuls made `factor` times wider
 * (its scale and bias), and the rows of those MatMuls' weights that read them made as much
 * narrower: the same function in float, with the outlier channels an LLM's activations have
 * (Dettmers et al., 2022), which one 8-bit scale per tensor cannot hold.
 */
export function withOutlierChannels(factor: number, channels: readonly number[] = [7, 42, 99]): onnx.ModelProto {
  const model = loadModel(path.join(CHAR_LM, 'model.onnx')).model;
  const view = new GraphView(model);
  const replaced = new Map<string, onnx.TensorProto>();
  const scaled = (name: string, factorOf: (i: number, dims: number[]) => number) => {
    const t = view.initializers.get(name)!;
    const dims = tensorDims(t);
    replaced.set(name, floatTensor(name, dims, Float32Array.from(tensorToFloat32(t), (v, i) => v * factorOf(i, dims))));
  };
  for (const ln of view.nodes.filter((n) => n.op === 'LayerNormalization')) {
    const readers = view.consumers.get(ln.outputs[0]) ?? [];
    if (!readers.length || !readers.every((r) => r.op === 'MatMul' && view.initializers.has(r.inputs[1]))) continue;
    for (const slot of [1, 2]) scaled(ln.inputs[slot], (i) => (channels.includes(i) ? factor : 1));
    for (const r of readers) scaled(r.inputs[1], (i, dims) => (channels.includes(Math.floor(i / dims[1])) ? 1 / factor : 1));
  }
  return onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...model.graph!, initializer: model.graph!.initializer.map((t) => replaced.get(t.name) ?? t) }) });
}
