// Lowering for ONNX Runtime's CPU provider: the QDQ model as ONNX Runtime's own optimizer rewrites
// it (QDQ groups fused into QLinearConv, QLinearMatMul, com.microsoft QLinearAdd…), and a QOperator
// form in standard ONNX ops only, for runtimes without the com.microsoft domain.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../onnx/model';
import { onnx } from '../onnx/proto';
import { firstLine } from '../onnx/session';

export class LoweringError extends Error {}

/**
 * Runs ONNX Runtime's graph optimizer on the model and saves what it produced. The "extended" level
 * fuses QDQ groups into integer kernels but stops before the layout transforms that tie a file to
 * one CPU's instruction set. Written to a temporary name and renamed, so a failure leaves nothing.
 */
export async function lowerWithOnnxRuntime(model: onnx.ModelProto, file: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  // The first file of the export: its folder may not exist yet, as for every other artifact.
  fs.mkdirSync(path.dirname(file), { recursive: true });
  try {
    const session = await ort.InferenceSession.create(encodeModel(model), { graphOptimizationLevel: 'extended', optimizedModelFilePath: tmp });
    await session.release();
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new LoweringError(`ONNX Runtime could not lower the model for the CPU: ${firstLine((err as Error).message)}`);
  }
}

const QLINEAR_TYPES = new Set([onnx.TensorProto.DataType.UINT8, onnx.TensorProto.DataType.INT8]);

/**
 * QOperator form: each Conv or MatMul whose inputs come from DequantizeLinear and whose only reader
 * is a QuantizeLinear becomes QLinearConv / QLinearMatMul on the integer tensors. Only standard
 * ai.onnx ops; the rest of the graph keeps its Q/DQ pairs. 8-bit only, as the QLinear ops are.
 */
export function toQOperator(model: onnx.ModelProto): { model: onnx.ModelProto; fused: number } {
  const graph = model.graph!;
  const nodes = graph.node as onnx.NodeProto[];
  const producer = new Map<string, onnx.NodeProto>();
  const readers = new Map<string, onnx.NodeProto[]>();
  for (const n of nodes) {
    for (const o of n.output) producer.set(o, n);
    for (const i of n.input) if (i) readers.set(i, [...(readers.get(i) ?? []), n]);
  }
  const outputs = new Set(graph.output.map((o) => o.name));
  const inits = new Map(graph.initializer.map((t) => [t.name, t]));
  const elemType = (name: string) => inits.get(name)?.dataType;
  const dqOf = (tensor: string): onnx.NodeProto | undefined => {
    const p = producer.get(tensor);
    return p && p.opType === 'DequantizeLinear' && (p.domain === '' || p.domain === 'com.microsoft') && !p.attribute.some((a) => a.name === 'block_size') ? p : undefined;
  };
  const removed = new Set<onnx.NodeProto>();
  const replaced = new Map<onnx.NodeProto, onnx.NodeProto>();
  for (const n of nodes) {
    if ((n.opType !== 'Conv' && n.opType !== 'MatMul') || n.domain) continue;
    const x = dqOf(n.input[0]);
    const w = dqOf(n.input[1]);
    const bias = n.opType === 'Conv' && n.input[2] ? dqOf(n.input[2]) : undefined;
    if (!x || !w || (n.opType === 'Conv' && n.input[2] && !bias)) continue;
    const out = n.output[0];
    const q = readers.get(out);
    if (!q || q.length !== 1 || q[0].opType !== 'QuantizeLinear' || q[0].domain || outputs.has(out)) continue;
    const types = [x.input[2], w.input[2], q[0].input[2]].map(elemType);
    if (!types.every((t) => t !== undefined && QLINEAR_TYPES.has(t))) continue;
    // QLinearMatMul takes a 2-D weight's scales per tensor or per column (axis 1), nothing else.
    const axis = w.attribute.find((a) => a.name === 'axis');
    const wDims = inits.get(w.input[0])?.dims.length;
    if (n.opType === 'MatMul' && (inits.get(w.input[1])?.dims.length ?? 0) > 0 && (wDims !== 2 || (axis && Number(axis.i) !== 1 && Number(axis.i) !== -1))) continue;
    const inputs = [...x.input.slice(0, 3), ...w.input.slice(0, 3), q[0].input[1], q[0].input[2]];
    if (bias) inputs.push(bias.input[0]);
    replaced.set(n, onnx.NodeProto.create({
      name: `${n.name}_qlinear`, opType: n.opType === 'Conv' ? 'QLinearConv' : 'QLinearMatMul', domain: '',
      input: inputs, output: [q[0].output[0]], attribute: n.opType === 'Conv' ? n.attribute : [],
    }));
    removed.add(q[0]);
  }
  let body = nodes.filter((n) => !removed.has(n)).map((n) => replaced.get(n) ?? n);
  // DequantizeLinear nodes nobody reads any more (weights, biases, inputs now read as integers).
  for (let changed = true; changed;) {
    const read = new Set([...body.flatMap((n) => n.input), ...outputs]);
    const next = body.filter((n) => n.opType !== 'DequantizeLinear' || n.output.some((o) => read.has(o)));
    changed = next.length !== body.length;
    body = next;
  }
  const read = new Set(body.flatMap((n) => n.input));
  return {
    model: onnx.ModelProto.create({
      ...model,
      graph: onnx.GraphProto.create({ ...graph, node: body, initializer: graph.initializer.filter((t) => read.has(t.name)), valueInfo: [] }),
    }),
    fused: replaced.size,
  };
}
