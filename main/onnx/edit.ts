// Small pieces for adding nodes to a model: the engine's calibration and comparison models add
// reductions next to the tensors they read.
import { onnx } from './proto';
import { int64Tensor } from './tensor';
import type { InputShapes } from '../base/feed';

/** A tensor's value info: its element type and, when given, its dims (a string names a dim that varies). */
export function typedValueInfo(name: string, elemType: number, dims?: ReadonlyArray<number | string>): onnx.ValueInfoProto {
  const dim = (d: number | string) => onnx.TensorShapeProto.Dimension.create(typeof d === 'string' ? { dimParam: d } : { dimValue: d });
  const shape = dims ? { shape: onnx.TensorShapeProto.create({ dim: dims.map(dim) }) } : {};
  return onnx.ValueInfoProto.create({ name, type: onnx.TypeProto.create({ tensorType: onnx.TypeProto.Tensor.create({ elemType, ...shape }) }) });
}

/** `base`, or `base_1`, `base_2`… the first name not in `taken`, which then holds it too. */
export function uniqueName(taken: Set<string>, base: string): string {
  let name = base;
  for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
  taken.add(name);
  return name;
}

/** An integer attribute. */
export function intAttr(name: string, value: number): onnx.AttributeProto {
  return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i: value });
}

/** An attribute of integers (perm, axes before opset 18). */
export function intsAttr(name: string, values: readonly number[]): onnx.AttributeProto {
  return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INTS, ints: [...values] });
}

/** A Reduce* op over `axes` (keepdims 0) as `output`: axes an input from opset 18 (ReduceSum's from 13), an attribute before; an axes initializer goes to `initializers`. */
export function reduceOver(op: string, input: string, axes: number[], output: string, opset: number, initializers: onnx.TensorProto[]): onnx.NodeProto {
  const keep = intAttr('keepdims', 0);
  if (opset < (op === 'ReduceSum' ? 13 : 18)) return makeNode(op, [input], [output], [keep, intsAttr('axes', axes)]);
  initializers.push(int64Tensor(`${output}_axes`, [axes.length], axes));
  return makeNode(op, [input, `${output}_axes`], [output], [keep]);
}

/** A node named after its first output, which the callers keep unique. */
export function makeNode(op: string, inputs: string[], outputs: string[], attrs: onnx.AttributeProto[] = []): onnx.NodeProto {
  return onnx.NodeProto.create({ opType: op, input: inputs, output: outputs, name: `${outputs[0]}_${op}`, attribute: attrs });
}

/** The shape [-1] that flattens a tensor for reducedCells, as an initializer named `name`. */
export function flatShape(name: string): onnx.TensorProto {
  return int64Tensor(name, [1], [-1]);
}

const KEEP_DIMS = [intAttr('keepdims', 1)];

/**
 * Reductions over the whole of the 1-D `flat`, each a [1] vector: cells of a joined output
 * (withJoinedAdditions), for a tensor whose leading dims are not known before the run.
 */
export function reducedCells(flat: string, cells: ReadonlyArray<{ op: string; output: string }>): onnx.NodeProto[] {
  return cells.map((c) => makeNode(c.op, [flat], [c.output], KEEP_DIMS));
}

/** A tensor's dims as ONNX Runtime's shape inference knows them: sizes, BATCH_DIM, or another name ('' too) for a size it does not know. */
export type InferredDims = ReadonlyArray<number | string>;

/** Dims of tensors, by name, as ONNX Runtime's shape inference finds them (session.ts inferredDims). */
export type KnownDims = ReadonlyMap<string, InferredDims>;

/** A tensor's shape for one sample, where shape inference knows every dim but the batch. */
export function sampleShape(dims: InferredDims | undefined): number[] | undefined {
  if (!dims || !dims.every((d) => typeof d === 'number' || d === BATCH_DIM)) return undefined;
  return dims.map((d) => (typeof d === 'number' ? d : 1));
}

/**
 * The leading dims whose product is a tensor's rows for reductions by row (rowCells): its first
 * dim, the batch for most, where it is known before the run and a sample has at most MAX_ROWS of
 * them; none for a scalar, a vector or a tensor of unknown rank. (Cut after two dims, into a row
 * per channel, min and max took twice as long as after one on the recognizer's activations.)
 */
export function rowDims(dims: InferredDims | undefined): InferredDims {
  if (!dims || dims.length < 2) return [];
  const [first] = dims;
  return (typeof first === 'number' && first <= MAX_ROWS) || first === BATCH_DIM ? [first] : [];
}

/** Rows per sample above which a tensor is reduced whole: each row is a value handed to JavaScript per reduction. */
const MAX_ROWS = 1024;

/**
 * The product of `dims` (sizes and BATCH_DIM) in a run of `batch` samples: the rows of a tensor
 * whose leading dims they are (rowDims), or the elements of one with those dims.
 */
export function rowCount(dims: InferredDims, batch: number): number {
  return dims.reduce<number>((n, d) => n * (typeof d === 'number' ? d : batch), 1);
}

/**
 * Reductions of `input`, a tensor of `rank` dims, by rows: its first dim (rowDims) kept and the
 * others reduced, each cell a [rows] vector of a joined output (withJoinedAdditions), or with
 * `keepDims` [rows, 1, …], which JavaScript then reduces. ONNX Runtime computes ReduceMin and
 * ReduceMax of a whole tensor on one thread, and by rows on all of them: on the PaddleOCR
 * recognizer's activations they take a third of the time. Not so ReduceSumSquare, which by rows
 * leaves its fast path and takes three times as long as whole. No Flatten first: it would be a
 * node per tensor for ONNX Runtime's graph passes to visit. `axes` names the shared initializer
 * (rowAxes) of the reduced axes, which opset 18 takes as an input.
 */
export function rowCells(input: string, rank: number, cells: ReadonlyArray<{ op: string; output: string }>, opset: number, axes: string, keepDims = false): onnx.NodeProto[] {
  const keep = intAttr('keepdims', keepDims ? 1 : 0);
  return cells.map((c) => (opset < 18
    ? makeNode(c.op, [input], [c.output], [keep, intsAttr('axes', reducedAxes(rank))])
    : makeNode(c.op, [input, axes], [c.output], [keep])));
}

function reducedAxes(rank: number): number[] {
  return Array.from({ length: rank - 1 }, (_, i) => i + 1);
}

/** The axes rowCells' reductions of a tensor of `rank` dims take as an input from opset 18. */
export function rowAxes(name: string, rank: number): onnx.TensorProto {
  return int64Tensor(name, [rank - 1], reducedAxes(rank));
}

/**
 * Each cell's values in a joined output whose cells hold `lengths` values this run, in order
 * (rowCount gives a cell of rows). `parts` are the outputs it was split into (joinedOutputs), the
 * cells from each of `starts` on in the next part.
 */
export function cellValues(parts: readonly Float32Array[], lengths: readonly number[], starts: readonly number[] = []): (cell: number) => Float32Array {
  const where: Array<{ part: number; at: number }> = [];
  let part = 0;
  let at = 0;
  const check = () => {
    // Shape inference said how many values each cell holds; a run that disagrees would shift every cell after it.
    const which = parts.length > 1 ? ` in part ${part + 1} of ${parts.length} of its joined output` : '';
    if (at !== parts[part].length) throw new Error(`a measuring run returned ${parts[part].length} values${which} where shape inference gave ${at}`);
  };
  lengths.forEach((length, cell) => {
    if (cell === starts[part]) {
      check();
      part++;
      at = 0;
    }
    where.push({ part, at });
    at += length;
  });
  check();
  return (cell) => parts[where[cell].part].subarray(where[cell].at, where[cell].at + lengths[cell]);
}

/** The outputs of a joined output split into `parts`, in the order of their cells. */
export function joinedOutputs(output: string, parts: number): string[] {
  return Array.from({ length: parts }, (_, k) => (k === 0 ? output : `${output}_${k}`));
}

/**
 * The additions made for each tensor, then `nodes`, then Concats of their 1-D results `joined`:
 * one, `output`, or one per part when `starts` (the cells that begin a new part) split it
 * (joinedOutputs). The Concats, the graph's leaves, also order ONNX Runtime's execution: it walks
 * back from the leaves, last leaf first, taking a node's inputs highest node index first. With the
 * blocks in reverse, and the first part's Concat last, the walk computes the first block's tensor
 * first and frees each tensor soon after its block reduced it; a leaf per block (or blocks placed
 * after their producers) would instead keep every tensor of the batch alive until the end. The
 * blocks come before the nodes that make their inputs (ONNX Runtime does not need the list in
 * topological order): its graph passes also sort the nodes by index, and blocks after the model
 * waited there, hundreds at once, in a list each insertion walks. On the PaddleOCR recognizer's
 * side-by-side model that made creating the session 0.65 s instead of 0.30 s; the execution order
 * is the same.
 */
export function withJoinedAdditions(nodes: readonly onnx.NodeProto[], blocks: ReadonlyArray<onnx.NodeProto[]>, joined: string[], output: string, starts: readonly number[] = []): onnx.NodeProto[] {
  const all = [...[...blocks].reverse().flat(), ...nodes];
  if (!joined.length) return all;
  const bounds = [0, ...starts, joined.length];
  const concats = joinedOutputs(output, bounds.length - 1).map((name, k) =>
    onnx.NodeProto.create({ opType: 'Concat', input: joined.slice(bounds[k], bounds[k + 1]), output: [name], name, attribute: [intAttr('axis', 0)] }));
  return [...all, ...concats.reverse()];
}

/** The name every batch dim gets (withInputShapes), so that ONNX Runtime knows them to be one size. */
export const BATCH_DIM = 'qs_batch';

/**
 * A copy of the model whose graph inputs have the given shapes; outputs and value infos with a dim
 * named like a changed input dim ("batch") follow it. Without `shapes`, the model itself.
 */
export function withInputShapes(model: onnx.ModelProto, shapes: InputShapes | undefined): onnx.ModelProto {
  if (!shapes) return model;
  const graph = model.graph!;
  const dimOf = (d: number | null) => onnx.TensorShapeProto.Dimension.create(d === null ? { dimParam: BATCH_DIM } : { dimValue: d });
  const named = new Map<string, onnx.TensorShapeProto.Dimension>();
  const withDims = (vi: onnx.IValueInfoProto, dims: Array<onnx.TensorShapeProto.Dimension | undefined>): onnx.ValueInfoProto => {
    const tensorType = vi.type!.tensorType!;
    const old = tensorType.shape?.dim ?? [];
    const shape = onnx.TensorShapeProto.create({ dim: dims.map((d, i) => d ?? onnx.TensorShapeProto.Dimension.create({ ...old[i] })) });
    return onnx.ValueInfoProto.create({ ...vi, type: onnx.TypeProto.create({ tensorType: onnx.TypeProto.Tensor.create({ ...tensorType, shape }) }) });
  };
  const input = graph.input.map((vi) => {
    const dims = shapes[vi.name];
    if (!dims || !vi.type?.tensorType) return vi as onnx.ValueInfoProto;
    (vi.type.tensorType.shape?.dim ?? []).forEach((d, i) => d.dimParam && i < dims.length && named.set(d.dimParam, dimOf(dims[i])));
    return withDims(vi, dims.map(dimOf));
  });
  const follow = (vi: onnx.IValueInfoProto) => {
    const dims = vi.type?.tensorType?.shape?.dim;
    if (!dims || !dims.some((d) => d.dimParam && named.has(d.dimParam))) return vi as onnx.ValueInfoProto;
    return withDims(vi, dims.map((d) => (d.dimParam ? named.get(d.dimParam) : undefined)));
  };
  return onnx.ModelProto.create({ ...model, graph: onnx.GraphProto.create({ ...graph, input, output: graph.output.map(follow), valueInfo: graph.valueInfo.map(follow) }) });
}

/**
 * A copy of the model whose graph inputs have the fixed shapes of a sample feed (for devices that
 * compile fixed shapes). Output dimensions named like a pinned input dimension ("batch") take its value.
 */
export function pinInputShapes(model: onnx.ModelProto, feed: Readonly<Record<string, { dims: readonly number[] }>>): onnx.ModelProto {
  return withInputShapes(model, Object.fromEntries(Object.entries(feed).map(([name, t]) => [name, t.dims])));
}

/** Every name a node reads: its inputs and, for If/Loop/Scan, what its bodies read from outside. */
export function readsOf(node: onnx.NodeProto): string[] {
  const bodies = node.attribute.flatMap((a) => [...(a.g ? [a.g] : []), ...a.graphs]);
  return [...node.input.filter(Boolean), ...bodies.flatMap((g) => g.node.flatMap(readsOf))];
}
