import { dataTypeName, onnx, toNumber } from './proto';
import { tensorDims } from './tensor';

export type Dim = number | string;

export interface ValueInfo {
  name: string;
  type: string;
  /** Known dims; symbolic names for dynamic ones; undefined when the rank is unknown. */
  shape?: Dim[];
}

export interface GraphNode {
  /** Position in topological order. */
  index: number;
  /** The node's name, or a stable made-up one (`op_index`) when the model leaves it empty. */
  name: string;
  op: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  proto: onnx.NodeProto;
  /** For a node inside a control-flow subgraph (If/Loop/Scan): its graph's own initializers. */
  scope?: Map<string, onnx.TensorProto>;
}

/**
 * A read-only view of a model's main graph: nodes in topological order, who produces and who
 * consumes each tensor, initializers, and the shapes known so far.
 */
export class GraphView {
  readonly nodes: GraphNode[];
  readonly producer = new Map<string, GraphNode>();
  readonly consumers = new Map<string, GraphNode[]>();
  readonly initializers = new Map<string, onnx.TensorProto>();
  readonly inputs: ValueInfo[];
  readonly outputs: ValueInfo[];
  readonly shapes = new Map<string, Dim[]>();
  readonly types = new Map<string, string>();
  /** Nodes inside control-flow subgraphs, named `owner/attribute/node`; not part of `nodes`. */
  readonly subgraphNodes: GraphNode[] = [];

  constructor(readonly model: onnx.ModelProto) {
    const graph = model.graph!;
    for (const t of graph.initializer) this.initializers.set(t.name, t as onnx.TensorProto);
    for (const vi of [...graph.input, ...graph.output, ...graph.valueInfo]) {
      const info = valueInfo(vi as onnx.ValueInfoProto);
      if (info.shape) this.shapes.set(info.name, info.shape);
      this.types.set(info.name, info.type);
    }
    for (const t of this.initializers.values()) {
      this.shapes.set(t.name, tensorDims(t));
      this.types.set(t.name, dataTypeName(t.dataType));
    }
    this.inputs = graph.input.filter((i) => !this.initializers.has(i.name)).map((i) => valueInfo(i as onnx.ValueInfoProto));
    this.outputs = graph.output.map((o) => valueInfo(o as onnx.ValueInfoProto));
    this.nodes = topologicalOrder(graph.node as onnx.NodeProto[], new Set([...this.initializers.keys(), ...this.inputs.map((i) => i.name)]));
    for (const node of this.nodes) {
      for (const out of node.outputs) if (out) this.producer.set(out, node);
      for (const input of node.inputs) {
        if (!input) continue;
        const list = this.consumers.get(input) ?? [];
        if (!list.includes(node)) list.push(node);
        this.consumers.set(input, list);
      }
      for (const a of node.proto.attribute) {
        for (const g of [a.g, ...a.graphs].filter((x): x is onnx.GraphProto => !!x)) this.collectSubgraph(`${node.name}/${a.name}`, g);
      }
      this.inferTypes(node);
    }
  }

  /**
   * Element types of outputs the model does not declare, from each op's type rule: enough to tell
   * float tensors (which get quantized) from shape arithmetic in int64 or masks in bool.
   */
  private inferTypes(node: GraphNode): void {
    const first = node.inputs.find((i) => i && this.types.has(i));
    let type: string | undefined;
    switch (node.op) {
      case 'Shape': case 'Size': case 'NonZero': case 'ArgMax': case 'ArgMin': type = 'int64'; break;
      case 'Cast': type = dataTypeName(attrInt(node.proto, 'to', 1)); break;
      case 'Equal': case 'Less': case 'Greater': case 'LessOrEqual': case 'GreaterOrEqual': case 'Not': case 'And': case 'Or': case 'Xor': case 'IsNaN': case 'IsInf': type = 'bool'; break;
      case 'Constant': {
        const t = attr(node.proto, 'value')?.t;
        type = t ? dataTypeName(t.dataType) : attr(node.proto, 'value_ints') ? 'int64' : 'float';
        break;
      }
      case 'ConstantOfShape': {
        const t = attr(node.proto, 'value')?.t;
        type = t ? dataTypeName(t.dataType) : 'float';
        break;
      }
      case 'DynamicQuantizeLinear': case 'QuantizeLinear': return;
      case 'DequantizeLinear': type = 'float'; break;
      case 'Where': type = node.inputs[1] ? this.types.get(node.inputs[1]) : undefined; break;
      default: type = first ? this.types.get(first) : undefined;
    }
    if (!type) return;
    for (const out of node.outputs) if (out && !this.types.has(out)) this.types.set(out, type);
    // The second outputs of MaxPool and TopK are int64 indices.
    if ((node.op === 'MaxPool' || node.op === 'TopK') && node.outputs[1] && this.types.get(node.outputs[1]) === type) this.types.set(node.outputs[1], 'int64');
  }

  private collectSubgraph(prefix: string, graph: onnx.GraphProto): void {
    const scope = new Map(graph.initializer.map((t) => [t.name, t]));
    graph.node.forEach((p, i) => {
      const name = `${prefix}/${p.name || `${p.opType}_${i}`}`;
      this.subgraphNodes.push({ index: -1, name, op: p.opType, domain: p.domain || '', inputs: [...p.input], outputs: [...p.output], proto: p, scope });
      for (const a of p.attribute) {
        for (const g of [a.g, ...a.graphs].filter((x): x is onnx.GraphProto => !!x)) this.collectSubgraph(`${name}/${a.name}`, g);
      }
    });
  }

  get opset(): number {
    return defaultOpset(this.model);
  }

  isConstant(name: string, node?: GraphNode): boolean {
    if (node?.scope?.has(name) || this.initializers.has(name)) return true;
    const p = this.producer.get(name);
    return p !== undefined && p.op === 'Constant';
  }

  /** The constant tensor behind a name: an initializer or a Constant node's value. */
  constantTensor(name: string, node?: GraphNode): onnx.TensorProto | undefined {
    const init = node?.scope?.get(name) ?? this.initializers.get(name);
    if (init) return init;
    const p = this.producer.get(name);
    if (p?.op === 'Constant') {
      const attr = p.proto.attribute.find((a) => a.name === 'value');
      return (attr?.t as onnx.TensorProto | undefined) ?? undefined;
    }
    return undefined;
  }

  recordShape(name: string, dims: readonly number[]): void {
    this.shapes.set(name, [...dims]);
  }
}

function shapeOf(type: onnx.ITypeProto | null | undefined): { type: string; shape?: Dim[] } {
  const tensor = type?.tensorType;
  if (!tensor) return { type: type?.sequenceType ? 'sequence' : type?.mapType ? 'map' : 'unknown' };
  const shape = tensor.shape
    ? tensor.shape.dim!.map((d, i) => (d.dimValue !== undefined && d.dimValue !== null && Object.prototype.hasOwnProperty.call(d, 'dimValue')
      ? toNumber(d.dimValue) : d.dimParam || `?${i}`))
    : undefined;
  return { type: dataTypeName(tensor.elemType ?? 0), shape };
}

export function valueInfo(vi: onnx.ValueInfoProto): ValueInfo {
  return { name: vi.name, ...shapeOf(vi.type) };
}

function topologicalOrder(protos: onnx.NodeProto[], available: Set<string>): GraphNode[] {
  const known = new Set(available);
  const producedBy = new Map<string, number>();
  protos.forEach((n, i) => n.output.forEach((o) => o && producedBy.set(o, i)));
  const external = (x: string) => x !== '' && producedBy.has(x) && !known.has(x);
  const pending = protos.map((n) => new Set(n.input.filter(external)).size);
  const waiting = new Map<string, number[]>();
  protos.forEach((n, i) => {
    for (const x of new Set(n.input.filter(external))) waiting.set(x, [...(waiting.get(x) ?? []), i]);
  });
  const ready: number[] = [];
  pending.forEach((c, i) => c === 0 && ready.push(i));
  const order: GraphNode[] = [];
  const names = new Set<string>();
  while (ready.length) {
    ready.sort((a, b) => a - b);
    const i = ready.shift()!;
    const p = protos[i];
    let name = p.name || `${p.opType}_${i}`;
    while (names.has(name)) name = `${name}_${i}`;
    names.add(name);
    order.push({ index: order.length, name, op: p.opType, domain: p.domain || '', inputs: [...p.input], outputs: [...p.output], proto: p });
    for (const out of p.output) {
      for (const j of waiting.get(out) ?? []) if (--pending[j] === 0) ready.push(j);
    }
  }
  if (order.length !== protos.length) {
    const placed = new Set(order.map((n) => n.proto));
    const stuck = protos.find((p) => !placed.has(p))!;
    const produced = new Set([...available, ...protos.flatMap((p) => p.output)]);
    const missing = stuck.input.filter((t) => t && !produced.has(t));
    const why = missing.length ? `reads ${missing.map((t) => `"${t}"`).join(', ')}, which no node, input or initializer produces` : 'is part of a cycle';
    throw new Error(`the graph cannot run: node "${stuck.name || stuck.opType}" (${stuck.opType}) ${why} (${protos.length - order.length} of ${protos.length} nodes unreachable); re-export the model`);
  }
  return order;
}

export function attr(node: onnx.NodeProto, name: string): onnx.AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name) as onnx.AttributeProto | undefined;
}

export function attrInt(node: onnx.NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a && Object.prototype.hasOwnProperty.call(a, 'i') ? toNumber(a.i) : fallback;
}

/** A string attribute (auto_pad, mode), decoded. */
export function attrString(node: onnx.NodeProto, name: string, fallback: string): string {
  const a = attr(node, name);
  return a?.s?.length ? Buffer.from(a.s).toString() : fallback;
}

/** An attribute of integers, or undefined where the node has none. */
export function attrInts(node: onnx.NodeProto, name: string): number[] | undefined {
  const a = attr(node, name);
  return a && a.ints.length ? a.ints.map((v) => toNumber(v)) : undefined;
}

export function attrFloat(node: onnx.NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a && Object.prototype.hasOwnProperty.call(a, 'f') ? a.f : fallback;
}

/** Every tensor name that nodes read, subgraphs included (they may read outer-scope values). */
export function namesRead(nodes: readonly onnx.NodeProto[], into = new Set<string>()): Set<string> {
  for (const n of nodes) {
    for (const i of n.input) into.add(i);
    for (const a of n.attribute) for (const g of [a.g, ...a.graphs]) if (g) namesRead(g.node, into);
  }
  return into;
}

/** The model's ai.onnx opset version. */
export function defaultOpset(model: Pick<onnx.IModelProto, 'opsetImport'>): number {
  return toNumber((model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx')?.version);
}
