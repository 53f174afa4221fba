// A backend quantizer turns a model and a recipe into a QuantPlan: which tensors get which
// quantization, which nodes stay in float and why. Converting and evaluating read only the plan.
import { BACKENDS, DATA_MOVEMENT_OPS, findBackend, recipeProblems, type BackendCapability } from '../../shared/backends';
import type { QuantKind, QuantType, Recipe } from '../../shared/recipe';
import { attr, attrFloat, attrInt, type GraphNode, type GraphView } from '../onnx/graph';
import { DataType, dataTypeName, type onnx } from '../onnx/proto';
import { tensorDims, tensorToFloat32 } from '../onnx/tensor';
import { qRange, type QParams, type WeightGrid } from './qmath';

export interface ActivationSpec {
  tensor: string;
  type: QuantType;
  symmetric: boolean;
  method: string;
  /** Reuse another tensor's scale and zero point (data-movement ops keep their input's quantization). */
  sharedWith?: string;
  /** Scale and zero point the backend fixes for this op's output (QNN's 16-bit Sigmoid, TFLite's int8 Softmax…); not calibrated. */
  fixed?: QParams;
  /** The node that produces it, or the first consumer for a graph input. */
  node: string;
  op: string;
  index: number;
}

export interface WeightSpec extends WeightGrid {
  tensor: string;
  node: string;
  op: string;
  /** Constants of element-wise ops are quantized like activations, per tensor. */
  asActivation: boolean;
}

export interface BiasSpec {
  tensor: string;
  node: string;
  input: string;
  weight: string;
}

export interface DynamicSpec {
  node: string;
  op: string;
  /** Absent for a MatMul of two activations (recipe.activationMatMuls): both are quantized at run time. */
  weight?: string;
}

export interface WeightOnlySpec {
  node: string;
  op: string;
  weight: string;
  bits: 4 | 8;
}

export type NodeStatus = 'quantized' | 'float';

export interface NodePlan {
  node: string;
  op: string;
  status: NodeStatus;
  reason?: string;
}

export interface QuantPlan {
  backend: BackendCapability;
  recipe: Recipe;
  kind: QuantKind;
  activations: Map<string, ActivationSpec>;
  weights: Map<string, WeightSpec>;
  biases: Map<string, BiasSpec>;
  dynamic: DynamicSpec[];
  weightOnly: WeightOnlySpec[];
  nodes: NodePlan[];
}

export class PlanError extends Error {}

/** Where each op keeps its weight and bias, and which of its inputs carry activations. */
interface OpRole {
  activations: number[];
  weight?: number;
  bias?: number;
  weightAxis?: (node: GraphNode, rank: number) => number;
}

const CONV_AXIS = () => 0;

function opRole(node: GraphNode, view: GraphView): OpRole {
  switch (node.op) {
    case 'Conv': return { activations: [0], weight: 1, bias: 2, weightAxis: CONV_AXIS };
    // ConvTranspose weights are [C_in, C_out/group, ...]: the output channel is axis 1.
    case 'ConvTranspose': return { activations: [0], weight: 1, bias: 2, weightAxis: () => 1 };
    case 'Gemm': return { activations: [0], weight: 1, bias: 2, weightAxis: (n) => (attrInt(n.proto, 'transB', 0) ? 0 : 1) };
    case 'MatMul': {
      if (view.isConstant(node.inputs[1])) return { activations: [0], weight: 1, weightAxis: (_n, rank) => rank - 1 };
      return { activations: [0, 1] };
    }
    // The scale is a weight and the bias int32, as in ONNX Runtime's quantizer: QNN's HTP runs a
    // LayerNorm in fixed point only when its scale is quantized too (get_qnn_qdq_config's LayerNorm rule).
    case 'LayerNormalization': case 'InstanceNormalization':
      return view.isConstant(node.inputs[1]) ? { activations: [0], weight: 1, bias: 2 } : { activations: [0] };
    case 'Add': case 'Sub': case 'Mul': case 'Div': case 'Max': case 'Min': case 'Concat': return { activations: node.inputs.map((_, i) => i) };
    default: return { activations: [0] };
  }
}

/** Past this magnitude a value is a sentinel (float32's lowest, as an attention mask writes −inf), not a value to quantize. */
const SENTINEL_MAGNITUDE = 1e30;

/**
 * Tensors that hold ±inf or sentinel magnitudes, each with the constant it comes from: float
 * constants holding one, and every float output of a node reading such a tensor, up to the Softmax
 * that turns a mask's −inf into 0. One such value in a tensor makes its 8-bit range infinite.
 */
function sentinelTensors(view: GraphView): ReadonlyMap<string, string> {
  const known = sentinelsOf.get(view);
  if (known) return known;
  const out = new Map<string, string>();
  const holds = (t: onnx.TensorProto | null | undefined) => {
    if (t?.dataType !== DataType.FLOAT) return false;
    const values = tensorToFloat32(t as onnx.TensorProto);
    for (let i = 0; i < values.length; i++) if (!(Math.abs(values[i]) <= SENTINEL_MAGNITUDE)) return true;
    return false;
  };
  for (const [name, t] of view.initializers) if (holds(t)) out.set(name, name);
  for (const node of view.nodes) {
    // torch.full(finfo.min) exports as ConstantOfShape.
    if (node.op === 'ConstantOfShape' && holds(attr(node.proto, 'value')?.t)) out.set(node.outputs[0], node.name);
    const source = BOUNDING_OPS.has(node.op) ? undefined : node.inputs.find((i) => out.has(i));
    if (source) for (const o of node.outputs) if (o && isFloatTensor(view, o)) out.set(o, out.get(source)!);
  }
  sentinelsOf.set(view, out);
  return out;
}

/** A view's sentinel tensors, found once: reading every weight took most of a plan's time, and a search plans on one view dozens of times. */
const sentinelsOf = new WeakMap<GraphView, ReadonlyMap<string, string>>();

/**
 * Ops whose output a sentinel input does not reach: Softmax turns a mask's −inf into 0, and a Clip,
 * Max or Min against ±FLT_MAX (a guard on the residual path) gives the other operand back.
 */
const BOUNDING_OPS = new Set(['Softmax', 'Clip', 'Max', 'Min']);

/**
 * The sentinel tensor a node reads or writes, where one makes it unquantizable. Clip's bounds are
 * not quantized, so a ±FLT_MAX bound does not; Max's and Min's constant operand is.
 */
function sentinelOf(node: GraphNode, sentinels: ReadonlyMap<string, string>): string | undefined {
  const inputs = node.op === 'Clip' ? node.inputs.slice(0, 1) : node.inputs;
  return [...inputs, ...node.outputs].find((t) => sentinels.has(t));
}

/** ONNX Runtime's reduce_range keeps weights to 7 bits; XNNPACK wants int8 weights in [-127, 127]. */
function weightRange(type: QuantType, narrow: boolean, reduce: boolean): [number, number] {
  const [qmin, qmax] = qRange(type, narrow);
  if (!reduce) return [qmin, qmax];
  return qmin < 0 ? [Math.ceil(qmin / 2), Math.floor(qmax / 2)] : [0, Math.floor(qmax / 2)];
}

function isFloatTensor(view: GraphView, name: string): boolean {
  const type = view.types.get(name);
  if (type !== undefined) return type === 'float';
  const constant = view.constantTensor(name);
  if (constant) return constant.dataType === DataType.FLOAT;
  // Unknown element type (no value_info): the ops we quantize produce float from float inputs.
  return true;
}

/** The recipe's backend, or the reasons it refuses the recipe; needs no model, so jobs call it before loading one. */
export function backendFor(recipe: Recipe): BackendCapability {
  const backend = findBackend(recipe.backend);
  if (!backend) throw new PlanError(`unknown backend "${recipe.backend}"; known: ${BACKENDS.map((b) => b.name).join(', ')}`);
  const problems = recipeProblems(backend, recipe);
  if (problems.length) throw new PlanError(problems.join('; '));
  return backend;
}

export function planQuantization(view: GraphView, recipe: Recipe): QuantPlan {
  const backend = backendFor(recipe);
  const plan: QuantPlan = {
    backend, recipe, kind: recipe.kind, activations: new Map(), weights: new Map(), biases: new Map(),
    dynamic: [], weightOnly: [], nodes: [],
  };
  const opTypes = new Set(recipe.opTypes.length ? recipe.opTypes : backend.opTypes[recipe.kind]);
  const excluded = new Set(recipe.excludeNodes);
  const knownNodes = new Set([...view.nodes, ...view.subgraphNodes].map((n) => n.name));
  const unknown = recipe.excludeNodes.filter((n) => !knownNodes.has(n));
  if (unknown.length) {
    throw new PlanError(`excluded node${unknown.length > 1 ? 's' : ''} not in the model: ${unknown.join(', ')} (node names are listed by "quant-studio inspect --nodes")`);
  }
  const knownTensors = new Set([...view.nodes, ...view.subgraphNodes].flatMap((n) => [...n.inputs, ...n.outputs]));
  const strays = Object.keys(recipe.overrides).filter((t) => !knownTensors.has(t));
  if (strays.length) {
    throw new PlanError(`override for tensor${strays.length > 1 ? 's' : ''} not in the model: ${strays.join(', ')} (each node's input and output tensors are listed by "quant-studio inspect --nodes --json")`);
  }
  const sentinels = recipe.kind === 'static' ? sentinelTensors(view) : new Map<string, string>();
  for (const node of view.nodes) {
    const carried = sentinelOf(node, sentinels);
    const reason = excluded.has(node.name) ? 'kept in float by the recipe'
      : carried ? `${carried} holds values no integer range can hold (±inf or past ±1e30, from the constant ${sentinels.get(carried)}: an attention mask), so it stays in float`
      : !opTypes.has(node.op) ? `${backend.name} does not quantize ${node.op}${recipe.opTypes.length ? ' (not in the recipe\'s op types)' : ''}`
        : node.domain && node.domain !== 'ai.onnx' ? `custom-domain op ${node.domain}.${node.op}` : undefined;
    if (reason) {
      plan.nodes.push({ node: node.name, op: node.op, status: 'float', reason });
      continue;
    }
    const status = recipe.kind === 'static' ? planStatic(view, plan, node) : recipe.kind === 'dynamic' ? planDynamic(view, plan, node) : planWeightOnly(view, plan, node);
    plan.nodes.push(status === true ? { node: node.name, op: node.op, status: 'quantized' } : { node: node.name, op: node.op, status: 'float', reason: status });
  }
  // Inside If/Loop bodies only the weights can be quantized: their activations never reach the
  // main graph's outputs, so calibration cannot observe them.
  for (const node of view.subgraphNodes) {
    if (!opTypes.has(node.op)) continue;
    const status = excluded.has(node.name) ? 'kept in float by the recipe'
      : recipe.kind === 'weight-only' ? planWeightOnly(view, plan, node)
        : `inside a control-flow subgraph: ${recipe.kind} quantization needs its activations; use weight-only`;
    plan.nodes.push(status === true ? { node: node.name, op: node.op, status: 'quantized' } : { node: node.name, op: node.op, status: 'float', reason: status });
  }
  return plan;
}

function activationType(plan: QuantPlan, tensor: string): { type: QuantType; symmetric: boolean; method: string } {
  const o = plan.recipe.overrides[tensor];
  // The recipe check cannot tell activations from weights without the model; here the type must be an activation one.
  if (o?.type && !plan.backend.overrideTypes.includes(o.type)) {
    throw new PlanError(`${plan.backend.name}: tensor ${tensor} is an activation and cannot be ${o.type}; allowed: ${plan.backend.overrideTypes.join(', ')}`);
  }
  if (o?.granularity && o.granularity !== 'per-tensor') {
    throw new PlanError(`${plan.backend.name}: tensor ${tensor} is an activation and takes one scale; ${o.granularity} applies to weights`);
  }
  const type = o?.type ?? plan.recipe.activationType;
  return {
    type,
    symmetric: plan.backend.symmetricTypes.includes(type) || (o?.symmetric ?? plan.recipe.activationSymmetric),
    method: o?.method ?? plan.recipe.method,
  };
}

function addActivation(view: GraphView, plan: QuantPlan, tensor: string, node: GraphNode, sharedWith?: string): boolean {
  if (plan.recipe.overrides[tensor]?.float) return false;
  if (plan.activations.has(tensor)) return true;
  const producer = view.producer.get(tensor) ?? node;
  const spec = activationType(plan, tensor);
  if (sharedWith) {
    const source = plan.activations.get(sharedWith)!;
    Object.assign(spec, { type: source.type, symmetric: source.symmetric });
  }
  const fixed = sharedWith || view.producer.get(tensor) !== producer ? undefined
    : plan.backend.fixedOutputs.find((f) => f.op === producer.op && f.type === spec.type);
  plan.activations.set(tensor, {
    tensor, ...spec, sharedWith, node: producer.name, op: producer.op, index: producer.index,
    ...(fixed ? { fixed: { scale: fixed.scale, zeroPoint: fixed.zeroPoint } } : {}),
  });
  return true;
}

function planStatic(view: GraphView, plan: QuantPlan, node: GraphNode): true | string {
  const { recipe, backend } = plan;
  if (DATA_MOVEMENT_OPS.includes(node.op)) {
    const input = node.inputs[0];
    // A full-integer target takes the model's inputs as integers, so a leading Transpose or Reshape
    // (NHWC images, flattened features) quantizes the input itself rather than staying in float.
    if (backend.integerIO && view.inputs.some((i) => i.name === input) && isFloatTensor(view, input)) addActivation(view, plan, input, node);
    if (!plan.activations.has(input)) return 'its input is not quantized, so it stays in float';
    if (!isFloatTensor(view, node.outputs[0])) return 'its output is not float';
    // Only float outputs: MaxPool's Indices and the like are int64.
    for (const out of node.outputs.filter((o) => o && isFloatTensor(view, o))) addActivation(view, plan, out, node, input);
    return true;
  }
  const role = opRole(node, view);
  const floatInputs = role.activations.filter((i) => node.inputs[i] && isFloatTensor(view, node.inputs[i]));
  if (floatInputs.length === 0) return 'it has no float inputs';
  if (!isFloatTensor(view, node.outputs[0])) return 'its output is not float';
  if (role.weight !== undefined) {
    const w = node.inputs[role.weight];
    if (!view.isConstant(w)) return 'its weight is not a constant';
    if (!isFloatTensor(view, w)) return 'its weight is not float';
    if (recipe.overrides[w]?.float) return `weight ${w} is kept in float by an override`;
  }
  for (const i of floatInputs) {
    const tensor = node.inputs[i];
    if (view.isConstant(tensor)) {
      if (!plan.weights.has(tensor)) {
        const spec = activationType(plan, tensor);
        plan.weights.set(tensor, { tensor, node: node.name, op: node.op, type: spec.type, symmetric: spec.symmetric, range: qRange(spec.type), asActivation: true });
      }
    } else if (!addActivation(view, plan, tensor, node)) {
      return `input ${tensor} is kept in float by an override`;
    }
  }
  if (role.weight !== undefined) {
    const w = node.inputs[role.weight];
    const rank = view.shapes.get(w)?.length ?? 2;
    const o = recipe.overrides[w];
    // A grouped ConvTranspose's weight axis 1 holds only C_out / group channels, which neither
    // names an output channel nor lines up with the bias: it takes one scale.
    const grouped = node.op === 'ConvTranspose' && attrInt(node.proto, 'group', 1) > 1;
    const granularity = o?.granularity ?? recipe.granularity;
    const channelsAllowed = !backend.perChannelOps || backend.perChannelOps.includes(node.op);
    if (o?.granularity === 'per-channel' && !channelsAllowed) {
      throw new PlanError(`${backend.name}: ${node.op} weights take one scale (per-channel only for ${backend.perChannelOps!.join(', ')}); the override asks per-channel for ${w}`);
    }
    const perChannel = granularity === 'per-channel' && channelsAllowed && !grouped;
    const block = granularity === 'per-block' && rank > 1 && !grouped ? blockAxis(node, rank) : undefined;
    if (block !== undefined && view.opset < 21) {
      throw new PlanError(`${backend.name}: per-block weights need a model at opset 21 or later (blocked DequantizeLinear); the model is opset ${view.opset} — re-export it at opset 21, or use per-channel weights`);
    }
    if (o?.type && !backend.weightTypes.includes(o.type)) {
      throw new PlanError(`${backend.name}: tensor ${w} is a weight and cannot be ${o.type}; allowed: ${backend.weightTypes.join(', ')}`);
    }
    if (!plan.weights.has(w)) {
      plan.weights.set(w, {
        tensor: w, node: node.name, op: node.op, type: o?.type ?? recipe.weightType, symmetric: o?.symmetric ?? recipe.weightSymmetric,
        axis: perChannel && rank > 1 && role.weightAxis ? role.weightAxis(node, rank) : undefined,
        ...(block !== undefined ? { block: { axis: block, size: recipe.blockSize } } : {}),
        range: weightRange(o?.type ?? recipe.weightType, backend.weightNarrowRange, recipe.reduceRange), asActivation: false,
      });
    }
    const b = role.bias !== undefined ? node.inputs[role.bias] : undefined;
    // A block-wise weight has many scales per output channel, so no single int32 bias scale exists: its bias stays float.
    if (b && view.isConstant(b) && (view.shapes.get(b)?.length ?? 1) === 1 && node.op !== 'MatMul' && !plan.weights.get(w)!.block) {
      plan.biases.set(b, { tensor: b, node: node.name, input: node.inputs[floatInputs[0]], weight: w });
    }
  }
  if (node.op !== 'ArgMax' && backend.placement === 'inputs-and-outputs') addActivation(view, plan, node.outputs[0], node);
  return true;
}

function planDynamic(view: GraphView, plan: QuantPlan, node: GraphNode): true | string {
  if (node.op !== 'Conv') {
    const linear = linearWeight(view, node);
    const activations = node.op === 'MatMul' && node.inputs.every((i) => !view.constantTensor(i, node) && isFloatTensor(view, i));
    if (activations && plan.recipe.activationMatMuls) {
      plan.dynamic.push({ node: node.name, op: node.op });
      return true;
    }
    if (typeof linear === 'string') return activations ? `${linear}; recipe.activationMatMuls (--activation-matmuls) quantizes it at run time` : linear;
    if (!isFloatTensor(view, node.inputs[0])) return 'it is not a float op';
    plan.dynamic.push({ node: node.name, op: node.op, weight: linear.weight });
    return true;
  }
  const w = node.inputs[1];
  if (!w || !view.isConstant(w)) return 'its weight is not a constant';
  if (!isFloatTensor(view, w) || !isFloatTensor(view, node.inputs[0])) return 'it is not a float op';
  if ((view.shapes.get(w)?.length ?? 0) !== 4) return 'dynamic Conv needs a 2-D convolution';
  if (view.opset < 11) return `dynamic Conv needs DynamicQuantizeLinear (opset 11); the model is opset ${view.opset}`;
  if (plan.recipe.granularity === 'per-channel' && !plan.recipe.weightSymmetric) {
    return 'ConvInteger takes one weight zero point, so per-channel weights must be symmetric';
  }
  plan.dynamic.push({ node: node.name, op: node.op, weight: w });
  return true;
}

/**
 * A MatMul or Gemm as y = x·B (+ bias) with B a float constant [K, N], stored as it is
 * (`transposed`: stored [N, K], Gemm's transB): what MatMulNBits, DynamicQuantizeMatMul and GPTQ
 * take. Otherwise why not, in words for the pre-flight.
 */
export interface LinearWeight {
  weight: string;
  k: number;
  n: number;
  transposed: boolean;
  /** Gemm's C when it is a constant of N values (beta 1): the kernel's bias. */
  bias?: string;
}

/** The weight's values as B[K, N], row-major: a copy when it is stored transposed. */
export function weightAsKN(data: Float32Array, linear: LinearWeight): Float32Array {
  if (!linear.transposed) return data;
  const { k, n } = linear;
  const out = new Float32Array(k * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) out[j * n + i] = data[i * k + j];
  return out;
}

export function linearWeight(view: GraphView, node: GraphNode): LinearWeight | string {
  const w = node.inputs[1];
  const t = w ? view.constantTensor(w, node) : undefined;
  if (!t) {
    return node.op === 'MatMul' && view.constantTensor(node.inputs[0], node)
      ? 'its constant is the left operand; the integer kernels take x·B with B constant' : 'its weight is not a constant (it is computed from the inputs)';
  }
  if (t.dataType !== DataType.FLOAT) return `its weight is ${dataTypeName(t.dataType)}, not float`;
  const dims = tensorDims(t);
  if (dims.length !== 2) return `its weight is ${dims.length}-D ([${dims.join(', ')}]); the integer kernels take a 2-D one`;
  if (node.op === 'MatMul') return { weight: w, k: dims[0], n: dims[1], transposed: false };
  if (attrInt(node.proto, 'transA', 0)) return 'Gemm with transA: the integer kernels take A as it is';
  const alpha = attrFloat(node.proto, 'alpha', 1);
  if (alpha !== 1) return `Gemm with alpha ${alpha}: the integer kernels have no scale of their own`;
  const transposed = attrInt(node.proto, 'transB', 0) === 1;
  const [k, n] = transposed ? [dims[1], dims[0]] : dims;
  const c = node.inputs[2];
  if (!c) return { weight: w, k, n, transposed };
  const ct = view.constantTensor(c, node);
  const cDims = ct ? tensorDims(ct) : [];
  const beta = attrFloat(node.proto, 'beta', 1);
  if (!ct || ct.dataType !== DataType.FLOAT || cDims.reduce((a, b) => a * b, 1) !== n || (cDims.length === 2 && cDims[0] !== 1) || cDims.length > 2) {
    return 'Gemm whose C is not a constant bias of N values';
  }
  if (beta !== 1) return `Gemm with beta ${beta}: the integer kernels add the bias as it is`;
  return { weight: w, k, n, transposed, bias: c };
}

function planWeightOnly(view: GraphView, plan: QuantPlan, node: GraphNode): true | string {
  const fourBit = plan.recipe.weightType === 'int4' || plan.recipe.weightType === 'uint4';
  if (fourBit) {
    if (node.op !== 'MatMul' && node.op !== 'Gemm') return '4-bit weight-only applies to MatMul and Gemm (MatMulNBits)';
    const linear = linearWeight(view, node);
    if (typeof linear === 'string') return linear;
    if (linear.k < 16) return `K=${linear.k} is too small for ${plan.recipe.blockSize}-wide blocks`;
    plan.weightOnly.push({ node: node.name, op: node.op, weight: linear.weight, bits: 4 });
    return true;
  }
  const w = node.inputs[1];
  const t = w ? view.constantTensor(w, node) : undefined;
  if (!t || t.dataType !== DataType.FLOAT) return 'its weight is not a float constant';
  const rank = tensorDims(t).length;
  plan.weightOnly.push({ node: node.name, op: node.op, weight: w, bits: 8 });
  const axisOf = opRole(node, view).weightAxis;
  plan.weights.set(node.scope ? `${node.name}:${w}` : w, {
    tensor: w, node: node.name, op: node.op, type: plan.recipe.weightType, symmetric: plan.recipe.weightSymmetric,
    axis: plan.recipe.granularity === 'per-channel' && rank > 1 && axisOf ? axisOf(node, rank) : undefined,
    range: weightRange(plan.recipe.weightType, plan.backend.weightNarrowRange, plan.recipe.reduceRange), asActivation: false,
  });
  return true;
}

/** The tensor whose quantization `tensor` borrows, following the chain to its end (itself when it borrows none). */
export function rootOf(plan: QuantPlan, tensor: string): string {
  let t = tensor;
  for (let spec = plan.activations.get(t); spec?.sharedWith; spec = plan.activations.get(t)) t = spec.sharedWith;
  return t;
}

/**
 * `ranges` with a range for every tensor that borrows one under `plan`: its lender's. A recipe that
 * moves the lender to higher precision leaves the borrower to be quantized on its own, and the
 * lender's range is the one it had (data-movement ops keep their input's values).
 */
export function withBorrowedRanges<R>(plan: QuantPlan, ranges: ReadonlyMap<string, R>): Map<string, R> {
  const out = new Map(ranges);
  for (const spec of plan.activations.values()) {
    const lent = spec.sharedWith && !out.has(spec.tensor) ? ranges.get(rootOf(plan, spec.tensor)) : undefined;
    if (lent) out.set(spec.tensor, lent);
  }
  return out;
}

/** Tensors that calibration must observe: the activations that neither borrow another's range nor have one fixed by the backend. */
export function calibrationTensors(plan: QuantPlan): ActivationSpec[] {
  return [...plan.activations.values()].filter((a) => !a.sharedWith && !a.fixed);
}

/** The reduction (input-channel) axis of a weight, along which block-wise scales are cut. */
function blockAxis(node: GraphNode, rank: number): number {
  switch (node.op) {
    case 'Conv': return 1;
    case 'ConvTranspose': return 0;
    case 'Gemm': return attrInt(node.proto, 'transB', 0) ? 1 : 0;
    default: return rank - 2;
  }
}
