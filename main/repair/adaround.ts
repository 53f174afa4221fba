// AdaRound (Nagel et al., "Up or Down? Adaptive Rounding for Post-Training Quantization", 2020):
// rounding each weight to nearest is not what minimises a layer's output error; choosing up or
// down per weight is. Per layer, a continuous h(V) = clip(1.2·sigmoid(V) − 0.1, 0, 1) in [0, 1]
// replaces the rounding, and the layer's output error plus λ·Σ(1 − |2h − 1|^β), β annealed from
// 20 to 2, is minimised with Adam; h ≥ 0.5 rounds up. The error is the quantized layer on the
// inputs the quantized model gives it against the float layer on float inputs (gram.ts has its
// moments), as AIMET measures it: rounding then also makes up for the error upstream, which on
// per-channel weights is most of it. One iteration is one run of a small ONNX Runtime graph built
// for the layer (the ΔW·H̃ product is the heavy part); the main thread only feeds it. A layer
// keeps nearest rounding where the learned one is not better on its own loss.
import * as ort from 'onnxruntime-node';
import type { AdaRoundReport } from '../../shared/report';
import { dbToJson } from '../../shared/report';
import { sampleCount, type Feed } from '../base/feed';
import { roundHalfEven } from '../base/round';
import { convertModel } from '../convert/convert';
import { throwIfAborted } from '../base/progress';
import { intAttr, makeNode, typedValueInfo } from '../onnx/edit';
import { GraphView } from '../onnx/graph';
import { DataType, onnx } from '../onnx/proto';
import { createSession, floatData, run } from '../onnx/session';
import { floatTensor, tensorDims, tensorToFloat32 } from '../onnx/tensor';
import type { QuantPlan, WeightSpec } from '../plan/plan';
import { groupParams, weightGrouping, type ChosenRounding } from '../plan/qmath';
import type { Range } from '../stats/range';
import { sqnrDb, sqnrOf } from '../stats/sqnr';
import { momentsOf, rowLayer, type LayerMoments, type RowLayer } from './gram';

/** AIMET's defaults for the regulariser and its annealing; Adam's learning rate is ours, for a few thousand iterations. */
const REG_WEIGHT = 0.01;
const BETA = [20, 2] as const;
const WARM_UP = 0.2;
const LEARNING_RATE = 0.01;
const ZETA = 1.1;
const GAMMA = -0.1;
/** A V far enough out that h(V) is exactly 0 or 1: hard roundings go through the loss graph as soft ones do. */
const SATURATED = 100;

/** Samples AdaRound measures its layers' inputs on, the calibration data's first ones: a layer's moments are means over every position of them. */
export const ADAROUND_SAMPLES = 256;

export interface AdaRoundResult {
  rounding: Map<string, ChosenRounding>;
  report: AdaRoundReport;
}

/** One layer to round: its rows, its weight spec, and per element (in row order) its scale, floor and whether it may move. */
interface Problem {
  layer: RowLayer;
  spec: WeightSpec;
  /** Row-ordered [rows * width]: the float weight, scale·(floor − zero point), scale where the element may round up (else 0). */
  w: Float32Array;
  down: Float32Array;
  step: Float32Array;
  /** Row-ordered fraction x/s − floor(x/s), and nearest rounding's up (1) or down (0). */
  frac: Float32Array;
  nearest: Uint8Array;
  /** Row-ordered: the integer (zero point taken off) `down` is the scale times, and that scale; DequantizeLinear's operands. */
  low: Int32Array;
  scale: Float32Array;
}

function problemOf(view: GraphView, layer: RowLayer, spec: WeightSpec): Problem {
  const t = view.initializers.get(layer.weight)!;
  const weight = tensorToFloat32(t);
  const grouping = weightGrouping(tensorDims(t), spec);
  const { scales, zeroPoints } = groupParams(weight, spec.type, spec.symmetric, grouping, spec.range);
  const [qmin, qmax] = spec.range;
  const n = layer.rows * layer.width;
  const p: Problem = { layer, spec, w: new Float32Array(n), down: new Float32Array(n), step: new Float32Array(n), frac: new Float32Array(n), nearest: new Uint8Array(n), low: new Int32Array(n), scale: new Float32Array(n) };
  for (let r = 0, k = 0; r < layer.rows; r++) {
    for (let j = 0; j < layer.width; j++, k++) {
      const i = layer.index(r, j);
      const g = grouping.of(i);
      const s = scales[g];
      const x = Math.fround(weight[i] / s);
      const floor = Math.floor(x);
      const near = Math.min(qmax, Math.max(qmin, roundHalfEven(x) + zeroPoints[g])) - zeroPoints[g];
      // An element whose floor or ceiling the integer range clips has one value: nearest's.
      const free = floor + zeroPoints[g] >= qmin && floor + 1 + zeroPoints[g] <= qmax;
      p.w[k] = weight[i];
      p.low[k] = free ? floor : near;
      p.scale[k] = s;
      p.down[k] = s * p.low[k];
      p.step[k] = free ? s : 0;
      p.frac[k] = x - floor;
      p.nearest[k] = near - floor === 1 ? 1 : 0;
    }
  }
  return p;
}

const f = (name: string, value: number) => floatTensor(name, [], Float32Array.of(value));

/** The layer's weight as its graph takes it: [groups, rows per group, width]. */
const layerShape = (p: Problem) => [p.layer.groups, p.layer.rows / p.layer.groups, p.layer.width];

/**
 * The layer's graph (roundingModel) around `nodes`: h(V) = clip((ζ − γ)·σ(V) + γ, 0, 1), the weight
 * error D = Wq − W = Step·h + (Down − W), D·H̃, and B = W·Cross. The layer's output error is
 * rec = tr(D H̃ Dᵀ) + 2 tr(D Bᵀ) + input noise, and its gradient in Wq is 2·(D·H̃ + B). `nodes`
 * compute from V what the graph outputs: the loss, and a Loop of steps whose body reads the rest
 * from here. H̃ is an initializer, which ONNX Runtime packs once for the product of every step;
 * Cross is an input, read once a run to make B: as an initializer it was copied into the model's
 * bytes, ONNX Runtime's parse of them and its session (for the recognizer's last conv, 2880² of
 * it, the repair's peak).
 */
function layerGraph(p: Problem, moments: LayerMoments, nodes: onnx.NodeProto[], inits: onnx.TensorProto[],
  inputs: onnx.ValueInfoProto[], outputs: onnx.ValueInfoProto[]): onnx.ModelProto {
  const { groups, width } = p.layer;
  const shape = layerShape(p);
  const offset = Float32Array.from(p.down, (d, k) => d - p.w[k]);
  return onnx.ModelProto.create({
    irVersion: 8, opsetImport: [{ domain: '', version: 17 }], producerName: 'quant-studio adaround',
    graph: onnx.GraphProto.create({
      name: 'adaround',
      node: [makeNode('MatMul', ['W', 'Cross'], ['B']), ...nodes],
      initializer: [
        floatTensor('W', shape, p.w), floatTensor('Offset', shape, offset), floatTensor('Step', shape, p.step),
        floatTensor('H', [groups, width, width], moments.quantized),
        f('zeta_gamma', ZETA - GAMMA), f('gamma', GAMMA), f('zero', 0), f('one', 1), f('two', 2), ...inits,
      ],
      input: [typedValueInfo('V', DataType.FLOAT, shape), typedValueInfo('Cross', DataType.FLOAT, [groups, width, width]), ...inputs], output: outputs,
    }),
  });
}

/** h, D, D·H̃, t = 2h − 1 and a = |t| from the tensor `v`, each named with `prefix`. */
function roundingNodes(v: string, prefix = ''): onnx.NodeProto[] {
  const [sig, sigS, hRaw, h, up, d, dh, h2, t, a] = ['sig', 'sig_s', 'h_raw', 'h', 'up', 'D', 'DH', 'h2', 't', 'a'].map((name) => prefix + name);
  return [
    makeNode('Sigmoid', [v], [sig]), makeNode('Mul', [sig, 'zeta_gamma'], [sigS]), makeNode('Add', [sigS, 'gamma'], [hRaw]),
    makeNode('Clip', [hRaw, 'zero', 'one'], [h]),
    makeNode('Mul', ['Step', h], [up]), makeNode('Add', [up, 'Offset'], [d]), makeNode('MatMul', [d, 'H'], [dh]),
    makeNode('Mul', [h, 'two'], [h2]), makeNode('Sub', [h2, 'one'], [t]), makeNode('Abs', [t], [a]),
  ];
}

const tensorInfo = (p: Problem, name: string) => typedValueInfo(name, DataType.FLOAT, layerShape(p));
const scalarInfo = (name: string) => typedValueInfo(name, DataType.FLOAT, []);
const scheduleInfo = (name: string) => typedValueInfo(name, DataType.FLOAT, ['iterations']);

/**
 * The layer's one graph for its loss and its steps, in one session: H̃ is as large as the layer's
 * rows are wide squared (2880² for the recognizer's last conv), and a session each held it twice.
 * From V and the scalar `beta` it gives the loss: `rec`, the output error, and `round` =
 * Σ|2h − 1|^β. From V and Adam's M and S it gives them
 * after as many Adam steps as the schedules `lr` (bias-corrected), `reg` (−2λβ, 0 while warming up)
 * and `beta2` (β − 2) are long, in one Loop: a run per iteration spent more handing V, m and v
 * across to JavaScript and back than computing the step (recognizer: 7.9 ms an iteration against
 * 4.9 ms of kernels). ONNX Runtime runs every node whichever outputs are fetched, so each run pays
 * for the other half too: one D·H̃ for the steps' run, an empty Loop for the loss's.
 * The regulariser's gradient in h is reg·sign(t)·|t|^(β − 1) = reg·t·|t|^(β − 2) with t = 2h − 1,
 * the power taken as exp((β − 2)·ln|t|): ONNX Runtime's Pow is a scalar loop, a quarter of the
 * step's time. |t| is kept off 0, where the product with t is 0 either way.
 */
function roundingModel(p: Problem, moments: LayerMoments): onnx.ModelProto {
  const at = (schedule: string) => makeNode('Gather', [schedule, 'iteration'], [`${schedule}_now`]);
  const body = onnx.GraphProto.create({
    name: 'adaround_iteration',
    node: [
      at('lr'), at('reg'), at('beta2'), makeNode('Identity', ['going'], ['going_on']),
      ...roundingNodes('V_in'),
      makeNode('Max', ['a', 'tiny'], ['a_off_zero']), makeNode('Log', ['a_off_zero'], ['a_log']), makeNode('Mul', ['a_log', 'beta2_now'], ['a_pow_log']),
      makeNode('Exp', ['a_pow_log'], ['a_pow']), makeNode('Mul', ['a_pow', 't'], ['reg_dir']), makeNode('Mul', ['reg_dir', 'reg_now'], ['g_reg']),
      makeNode('Add', ['DH', 'B'], ['DH_B']), makeNode('Mul', ['DH_B', 'Step2'], ['g_rec']), makeNode('Add', ['g_rec', 'g_reg'], ['g_h']),
      // dh/dV: (ζ − γ)·σ(1 − σ) where the clip is not active, which is where it leaves h_raw as it is.
      makeNode('Equal', ['h', 'h_raw'], ['inside_b']), makeNode('Cast', ['inside_b'], ['inside'], [intAttr('to', DataType.FLOAT)]),
      makeNode('Sub', ['one', 'sig'], ['sig_c']), makeNode('Mul', ['sig_s', 'sig_c'], ['dsig']), makeNode('Mul', ['dsig', 'inside'], ['dh']), makeNode('Mul', ['g_h', 'dh'], ['g']),
      makeNode('Mul', ['M_in', 'b1'], ['m_old']), makeNode('Mul', ['g', 'b1c'], ['m_new']), makeNode('Add', ['m_old', 'm_new'], ['M_out']),
      makeNode('Mul', ['g', 'g'], ['g2']), makeNode('Mul', ['S_in', 'b2'], ['s_old']), makeNode('Mul', ['g2', 'b2c'], ['s_new']), makeNode('Add', ['s_old', 's_new'], ['S_out']),
      makeNode('Sqrt', ['S_out'], ['s_root']), makeNode('Add', ['s_root', 'eps'], ['s_den']), makeNode('Div', ['M_out', 's_den'], ['dir']), makeNode('Mul', ['dir', 'lr_now'], ['delta']),
      makeNode('Sub', ['V_in', 'delta'], ['V_out']),
    ],
    input: [typedValueInfo('iteration', DataType.INT64, []), typedValueInfo('going', DataType.BOOL, []), tensorInfo(p, 'V_in'), tensorInfo(p, 'M_in'), tensorInfo(p, 'S_in')],
    output: [typedValueInfo('going_on', DataType.BOOL, []), tensorInfo(p, 'V_out'), tensorInfo(p, 'M_out'), tensorInfo(p, 'S_out')],
  });
  const sum = (input: string, output: string) => makeNode('ReduceSum', [input], [output], [intAttr('keepdims', 0)]);
  const nodes = [
    makeNode('Shape', ['lr'], ['count_1d']), makeNode('Squeeze', ['count_1d'], ['count']),
    makeNode('Loop', ['count', '', 'V', 'M', 'S'], ['V_next', 'M_next', 'S_next'], [onnx.AttributeProto.create({ name: 'body', type: onnx.AttributeProto.AttributeType.GRAPH, g: body })]),
    ...roundingNodes('V', 'loss_'),
    makeNode('Mul', ['loss_D', 'loss_DH'], ['DDH']), makeNode('Mul', ['loss_D', 'B'], ['DB']), makeNode('Mul', ['DB', 'two'], ['DB2']), makeNode('Add', ['DDH', 'DB2'], ['err']),
    sum('err', 'rec_d'), makeNode('Add', ['rec_d', 'input_noise'], ['rec']),
    makeNode('Pow', ['loss_a', 'beta'], ['a_beta']), sum('a_beta', 'round'),
  ];
  const step2 = Float32Array.from(p.step, (s) => 2 * s);
  const inits = [
    floatTensor('Step2', layerShape(p), step2), f('b1', 0.9), f('b1c', 0.1), f('b2', 0.999), f('b2c', 0.001), f('eps', 1e-8), f('tiny', 1e-30),
    f('input_noise', moments.inputNoise),
  ];
  return layerGraph(p, moments, nodes, inits,
    [tensorInfo(p, 'M'), tensorInfo(p, 'S'), scheduleInfo('lr'), scheduleInfo('reg'), scheduleInfo('beta2'), scalarInfo('beta')],
    [tensorInfo(p, 'V_next'), tensorInfo(p, 'M_next'), tensorInfo(p, 'S_next'), scalarInfo('rec'), scalarInfo('round')]);
}

/** V with h(V) = the fraction each element rounds off, where AdaRound starts. */
function initialV(frac: Float32Array): Float32Array {
  return Float32Array.from(frac, (x) => {
    const p = Math.min(1 - 1e-6, Math.max(1e-6, (x - GAMMA) / (ZETA - GAMMA)));
    return Math.log(p / (1 - p));
  });
}

function saturatedV(up: Uint8Array): Float32Array {
  return Float32Array.from(up, (u) => (u ? SATURATED : -SATURATED));
}

interface Rounded {
  up: Uint8Array;
  /** The layer's output error with nearest and with the kept rounding. */
  nearest: number;
  kept: number;
  /** The soft loss every tenth of the way, for the report and the test that it falls. */
  trace: number[];
}

/** Runs the layer's AdaRound iterations; returns the better of the learned and nearest rounding on the layer's loss. */
async function roundLayer(p: Problem, moments: LayerMoments, iterations: number, signal?: AbortSignal): Promise<Rounded> {
  const shape = layerShape(p);
  const what = `AdaRound graph of ${p.layer.node}`;
  const session = await createSession(roundingModel(p, moments), what);
  const tensor = (data: Float32Array) => new ort.Tensor('float32', data, shape);
  const scalar = (v: number) => new ort.Tensor('float32', Float32Array.of(v), []);
  const vector = (data: Float32Array) => new ort.Tensor('float32', data, [data.length]);
  const zeros = () => new Float32Array(p.w.length);
  const cross = new ort.Tensor('float32', moments.cross, [p.layer.groups, p.layer.width, p.layer.width]);
  type State = { v: Float32Array; m: Float32Array; s: Float32Array };
  const steps = async (state: State, lr: Float32Array, reg: Float32Array, beta2: Float32Array): Promise<State> => {
    const out = await run(session, { V: tensor(state.v), Cross: cross, M: tensor(state.m), S: tensor(state.s), lr: vector(lr), reg: vector(reg), beta2: vector(beta2), beta: scalar(2) }, what, ['V_next', 'M_next', 'S_next']);
    return { v: floatData(out.V_next as ort.Tensor, 'V'), m: floatData(out.M_next as ort.Tensor, 'M'), s: floatData(out.S_next as ort.Tensor, 'S') };
  };
  // The loss's runs take no steps: Adam's state is not read, and the schedules are empty.
  const [idle, none] = [tensor(zeros()), vector(new Float32Array(0))];
  const loss = async (v: Float32Array, beta: number) => {
    const out = await run(session, { V: tensor(v), Cross: cross, M: idle, S: idle, lr: none, reg: none, beta2: none, beta: scalar(beta) }, what, ['rec', 'round']);
    return { rec: Number((out.rec as ort.Tensor).data[0]), round: Number((out.round as ort.Tensor).data[0]) };
  };
  const warm = Math.round(iterations * WARM_UP);
  // β and whether the regulariser is on at iteration t.
  const annealing = (t: number) => {
    const annealed = t < warm ? undefined : (t - warm) / Math.max(1, iterations - warm);
    return { on: annealed !== undefined, beta: annealed === undefined ? BETA[0] : BETA[1] + (BETA[0] - BETA[1]) * (1 - annealed) };
  };
  try {
    const { rec: nearest } = await loss(saturatedV(p.nearest), 2);
    let state: State = { v: initialV(p.frac), m: zeros(), s: zeros() };
    const trace: number[] = [];
    // The loss is traced every tenth of the way: the iterations between two points are one run.
    const every = Math.max(1, Math.floor(iterations / 10));
    for (let t = 0; t < iterations; t += every) {
      throwIfAborted(signal);
      const now = annealing(t);
      const at = await loss(state.v, now.beta);
      trace.push(at.rec + (now.on ? REG_WEIGHT * (p.w.length - at.round) : 0));
      const count = Math.min(every, iterations - t);
      const [lr, reg, beta2] = [new Float32Array(count), new Float32Array(count), new Float32Array(count)];
      for (let k = 0; k < count; k++) {
        const { on, beta } = annealing(t + k);
        lr[k] = LEARNING_RATE * Math.sqrt(1 - 0.999 ** (t + k + 1)) / (1 - 0.9 ** (t + k + 1));
        reg[k] = on ? -2 * REG_WEIGHT * beta : 0;
        beta2[k] = beta - 2;
      }
      state = await steps(state, lr, reg, beta2);
    }
    const learned = Uint8Array.from(hOf(state.v), (h, k) => (p.step[k] && h >= 0.5 ? 1 : p.step[k] ? 0 : p.nearest[k]));
    const kept = (await loss(saturatedV(learned), 2)).rec;
    return kept < nearest ? { up: learned, nearest, kept, trace } : { up: p.nearest, nearest, kept: nearest, trace };
  } finally {
    await session.release();
  }
}

function hOf(v: Float32Array): Float32Array {
  return Float32Array.from(v, (x) => Math.min(1, Math.max(0, (ZETA - GAMMA) / (1 + Math.exp(-x)) + GAMMA)));
}

/** The weights AdaRound rounds: each quantized one that is a Conv's, or a MatMul's or Gemm's constant B, read by that layer alone. */
export function roundableWeights(view: GraphView, plan: QuantPlan): Array<{ layer: RowLayer; spec: WeightSpec }> {
  return [...plan.weights.values()].flatMap((spec) => {
    const node = view.nodes.find((n) => n.name === spec.node);
    const layer = node && !spec.asActivation && (view.consumers.get(spec.tensor) ?? []).length === 1 ? rowLayer(view, node) : undefined;
    return layer && layer.weight === spec.tensor ? [{ layer, spec }] : [];
  });
}

/**
 * AdaRound for every quantized weight of `floatModel` that is a Conv's, or a MatMul's or Gemm's
 * constant B, read by that layer alone: the moments of each layer's inputs on `feeds`, the float
 * model against its conversion with `ranges`, then the layers one by one. Returns the chosen
 * roundings by weight name, for convertModel.
 */
export async function adaRound(floatModel: onnx.ModelProto, plan: QuantPlan, ranges: ReadonlyMap<string, Range>, feeds: readonly Feed[],
  options: { iterations: number; signal?: AbortSignal; onLayer?: (done: number, of: number) => void }): Promise<AdaRoundResult> {
  const start = performance.now();
  const view = new GraphView(floatModel);
  const problems = roundableWeights(view, plan).map(({ layer, spec }) => problemOf(view, layer, spec));
  // Layer by layer in graph order, each measured on the inputs the layers before it give with the
  // rounding they learned: measured on nearest rounding throughout instead, each layer makes up for
  // upstream errors its upstream layers then remove too (recognizer per-channel: 95% → 33% exact match).
  const dequantized = problems.map((p) => inLayout(p, p.nearest));
  const moments = await momentsOf(floatModel, convertModel(view, plan, ranges).model, problems.map((p) => p.layer), feeds);
  const rounding = new Map<string, ChosenRounding>();
  const layers: AdaRoundReport['layers'] = [];
  for (const [i, p] of problems.entries()) {
    options.onLayer?.(i, problems.length);
    const began = performance.now();
    const m = await moments.measure(i, dequantized, options.signal);
    const r = await roundLayer(p, m, options.iterations, options.signal);
    dequantized[i] = inLayout(p, r.up);
    const up = new Uint8Array(p.w.length);
    for (let row = 0, k = 0; row < p.layer.rows; row++) for (let j = 0; j < p.layer.width; j++, k++) up[p.layer.index(row, j)] = r.up[k];
    const { type, symmetric, axis, block, range } = p.spec;
    rounding.set(p.spec.tensor, { type, symmetric, axis, block, range, up });
    layers.push({
      node: p.layer.node, weight: p.spec.tensor, kept: r.up === p.nearest ? 'nearest' : 'learned',
      changed: r.up.reduce((n, u, k) => n + (u !== p.nearest[k] ? 1 : 0), 0) / r.up.length,
      // The graph's sums can round a zero error to a hair below it.
      outputSqnr: { before: dbToJson(sqnrDb(m.power, Math.max(0, r.nearest))), after: dbToJson(sqnrDb(m.power, Math.max(0, r.kept))) },
      weightSqnr: { before: dbToJson(weightDb(p, p.nearest)), after: dbToJson(weightDb(p, r.up)) },
      loss: r.trace, seconds: (performance.now() - began) / 1000,
    });
  }
  options.onLayer?.(problems.length, problems.length);
  const samples = sampleCount(feeds);
  return { rounding, report: { iterations: options.iterations, samples, layers, seconds: (performance.now() - start) / 1000 } };
}

/** The weight rounded by `up` (row order) in its initializer's layout, dequantized as DequantizeLinear does: one float product. */
function inLayout(p: Problem, up: Uint8Array): Float32Array {
  const out = new Float32Array(p.w.length);
  for (let row = 0, k = 0; row < p.layer.rows; row++) for (let j = 0; j < p.layer.width; j++, k++) out[p.layer.index(row, j)] = p.scale[k] * (p.low[k] + (p.step[k] ? up[k] : 0));
  return out;
}

/** SQNR of the weight rounded by `up` (row order). */
function weightDb(p: Problem, up: Uint8Array): number {
  return sqnrOf(p.w, p.down.map((d, k) => d + p.step[k] * up[k]));
}
