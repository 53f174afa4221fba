import { attr, GraphView, type ValueInfo } from './graph';
import type { LoadedModel } from './model';
import { toNumber } from './proto';
import { tensorDims } from './tensor';
import { elementCount } from '../base/feed';

export interface ModelInfo {
  file: string;
  bytes: number;
  irVersion: number;
  producer: string;
  opsets: Array<{ domain: string; version: number }>;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  ops: Record<string, number>;
  nodeCount: number;
  /** Weight values, in initializers and Constant nodes. */
  parameters: number;
  initializers: number;
  nodes: Array<{ name: string; op: string; inputs: string[]; outputs: string[] }>;
}

export function inspectModel(loaded: LoadedModel): ModelInfo {
  const view = new GraphView(loaded.model);
  const ops: Record<string, number> = {};
  for (const n of view.nodes) ops[n.domain ? `${n.domain}.${n.op}` : n.op] = (ops[n.domain ? `${n.domain}.${n.op}` : n.op] ?? 0) + 1;
  // Exporters such as Paddle's keep every weight in Constant nodes rather than initializers.
  let parameters = 0;
  for (const t of view.initializers.values()) parameters += elementCount(tensorDims(t));
  for (const n of view.nodes) {
    const value = n.op === 'Constant' ? attr(n.proto, 'value')?.t : undefined;
    if (value) parameters += elementCount(tensorDims(value));
  }
  const m = loaded.model;
  return {
    file: loaded.file,
    bytes: loaded.bytes,
    irVersion: toNumber(m.irVersion),
    producer: [m.producerName, m.producerVersion].filter(Boolean).join(' '),
    opsets: m.opsetImport.map((o) => ({ domain: o.domain, version: toNumber(o.version) })),
    inputs: view.inputs,
    outputs: view.outputs,
    ops,
    nodeCount: view.nodes.length,
    parameters,
    initializers: view.initializers.size,
    nodes: view.nodes.map((n) => ({ name: n.name, op: n.op, inputs: n.inputs, outputs: n.outputs })),
  };
}
