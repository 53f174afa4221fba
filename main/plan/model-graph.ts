// The user's model as the graph view draws it: every node, bodies of If/Loop/Scan included, with
// what prepare will do to each before quantizing.
import type { GraphBody, GraphNodeInfo, ModelGraph } from '../../shared/graph';
import { GraphView, namesRead } from '../onnx/graph';
import type { onnx } from '../onnx/proto';
import { prepareModel } from './prepare';

/** Symbolic dims by name when short ("batch"), as ? when an exporter named them at length ("p2o.DynamicDimension.0"). */
function shapeText(shape: Array<number | string>): string {
  return shape.length ? shape.map((d) => (typeof d === 'string' && d.length > 8 ? '?' : d)).join('×') : 'scalar';
}

export function modelGraph(model: onnx.ModelProto): ModelGraph {
  const view = new GraphView(model);
  const prepared = prepareModel(model);
  const made = new Set(prepared.model.graph!.node.flatMap((n) => n.output));
  const absorbedBy = new Map(prepared.foldedBatchNorms.map((f) => [f.batchNorm, f.conv]));
  const shapes: Record<string, string> = {};
  for (const [name, shape] of view.shapes) if (!view.initializers.has(name)) shapes[name] = shapeText(shape);
  let nodeCount = 0;

  const body = (owner: string, attribute: string, g: onnx.GraphProto): GraphBody => {
    const scope = `${owner}/${attribute}`;
    const taken = new Set<string>();
    const nodes = g.node.map((p, i) => node(`${scope}/`, p, p.name || `${p.opType}_${i}`, taken));
    for (const vi of g.valueInfo) {
      const t = vi.type?.tensorType;
      if (t?.shape) shapes[vi.name] = shapeText(t.shape.dim!.map((d, k) => (d.dimParam || (d.dimValue !== undefined && d.dimValue !== null ? Number(d.dimValue) : `?${k}`))));
    }
    return { attribute, inputs: g.input.map((i) => i.name), outputs: g.output.map((o) => o.name), nodes };
  };

  const node = (prefix: string, p: onnx.NodeProto, name: string, taken: Set<string>): GraphNodeInfo => {
    nodeCount++;
    let id = `${prefix}${name}`;
    for (let k = 2; taken.has(id); k++) id = `${prefix}${name}#${k}`;
    taken.add(id);
    const graphs = p.attribute.flatMap((a) => [a.g, ...a.graphs].filter((x): x is onnx.GraphProto => !!x).map((g, k, all) => ({ attribute: all.length > 1 ? `${a.name}[${k}]` : a.name, g })));
    const bodies = graphs.map(({ attribute, g }) => body(id, attribute, g));
    const captured = graphs.length ? [...outerReads(graphs.map((x) => x.g))].filter((t) => !p.input.includes(t)) : [];
    const info: GraphNodeInfo = { id, name, op: p.domain && p.domain !== 'ai.onnx' ? `${p.domain}.${p.opType}` : p.opType, inputs: [...p.input.filter(Boolean), ...captured], outputs: p.output.filter(Boolean) };
    if (bodies.length) info.bodies = bodies;
    return info;
  };

  const top = new Set<string>();
  const nodes = view.nodes.map((n) => {
    const info = node('', n.proto, n.name, top);
    const into = absorbedBy.get(n.name);
    if (into) info.folded = `folded into ${into}, as every deployment runtime does`;
    else if (n.op === 'Constant' && !n.outputs.some((o) => made.has(o))) info.folded = 'a constant: becomes an initializer';
    return info;
  });
  return { inputs: view.inputs.map((i) => i.name), outputs: view.outputs.map((o) => o.name), nodes, shapes, nodeCount };
}

/** Tensors the bodies (and the bodies inside them) read but do not define: what they capture from outside. */
function outerReads(graphs: onnx.GraphProto[]): Set<string> {
  const defined = new Set<string>();
  const define = (g: onnx.GraphProto) => {
    for (const name of [...g.input.map((i) => i.name), ...g.initializer.map((t) => t.name), ...g.node.flatMap((n) => n.output)]) defined.add(name);
    for (const n of g.node) for (const a of n.attribute) for (const inner of [a.g, ...a.graphs]) if (inner) define(inner as onnx.GraphProto);
  };
  graphs.forEach(define);
  const read = namesRead(graphs.flatMap((g) => g.node as onnx.NodeProto[]));
  return new Set([...read].filter((name) => name && !defined.has(name)));
}
