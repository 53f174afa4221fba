// Sensitivity: how much each quantized layer costs the model's output. One "switch model" holds
// the quantized graph with every dequantized value behind a switch (an If that dequantizes or
// passes the float value): a boolean vector fed at run time picks which units run quantized. Every configuration of a
// sensitivity sweep or a mixed-precision search is then one run of one ONNX Runtime session on a
// small fixed subset kept in memory: no model rebuild, no session creation, no re-calibration.
import { metricScore } from '../../shared/metrics';
import { idsOf, type ClassIds } from '../data/labels';
import * as ort from 'onnxruntime-node';

import type { GraphView } from '../onnx/graph';
import { makeNode, readsOf, typedValueInfo } from '../onnx/edit';
import { DataType, onnx } from '../onnx/proto';
import { makeTensor } from '../onnx/tensor';
import { encodeModel } from '../onnx/model';
import { convertModel, type ConvertResult } from '../convert/convert';
import { planQuantization, rootOf, withBorrowedRanges, type QuantPlan } from '../plan/plan';
import type { WeightRounding } from '../plan/qmath';
import { withHigherPrecision, type LayerMove } from '../../shared/recipe';
import { dbToJson, type Quality } from '../../shared/report';

import { CustomScore, perSample, type BatchOutputs, type CustomScoring } from './custom-metric';
import { MetricAccumulator, referenceRows, type MetricValues, type ReferenceRows, type SampleValues } from './metrics';
import type { MainNumerics } from '../../shared/numerics';
import { numericsOptions } from '../onnx/numerics';
import { floatData, run, shapedSession, toOrtFeeds } from '../onnx/session';
import { throwIfAborted } from '../base/progress';
import type { Progress } from '../../shared/progress';
import { commonShapes, sampleCount, type Feed, type InputShapes } from '../base/feed';
import type { Range } from '../stats/range';
import { sqnrDb } from '../stats/sqnr';

export interface SwitchUnit {
  /** The calibrated tensor the unit is named after (or the node, for a weight with no quantized output). */
  id: string;
  /** That tensor; absent for a weight with no quantized output. */
  tensor?: string;
  node: string;
  op: string;
  index: number;
  /** Activation tensors (float names) quantized in this unit: the root and those sharing its quantization. */
  tensors: string[];
  /** Float weights and biases of the unit's nodes. */
  weights: string[];
  /**
   * Nodes whose weights belong to the unit: what moving it to float keeps in float with its
   * tensors. A node without weights needs no exclusion: with its output unquantized it computes in
   * float already, and excluding it would also unquantize its neighbours' tensors.
   */
  nodes: string[];
}

export const SWITCH_INPUT = 'qs_switch';

/** The boolean a unit's switched dequantizes read: element `unit` of SWITCH_INPUT. */
const switchName = (unit: number) => `qs_switch_${unit}`;

/** What each dequantized value of the converted graph guards: the float value it stands for, and its unit. */
type Guards = Map<onnx.NodeProto, { source: string; unit: SwitchUnit }>;

/**
 * Units group what a user would move together: an activation with the tensors that share its scale
 * (data movement after it) and the weights of the node that produces it (a Conv and its folded
 * Relu are one unit). In graph order.
 */
export function switchUnits(view: GraphView, plan: QuantPlan, converted: ConvertResult): { units: SwitchUnit[]; guards: Guards } {
  const g = converted.model.graph!;
  const producer = new Map<string, onnx.NodeProto>();
  const consumers = new Map<string, onnx.NodeProto[]>();
  for (const n of g.node) {
    for (const o of n.output) producer.set(o, n);
    for (const i of n.input) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  }
  const floatNodes = new Map(view.nodes.map((n) => [n.name, n]));
  const layerOf = new Map(converted.layers.map((l) => [l.quant, l]));
  const units = new Map<string, SwitchUnit>();
  const addNode = (unit: SwitchUnit, node: string | undefined) => node && !unit.nodes.includes(node) && unit.nodes.push(node);
  const unitFor = (tensor: string): SwitchUnit => {
    const root = rootOf(plan, tensor);
    let u = units.get(root);
    if (!u) {
      const spec = plan.activations.get(root)!;
      u = { id: root, tensor: root, node: spec.node, op: spec.op, index: spec.index, tensors: [], weights: [], nodes: [] };
      units.set(root, u);
    }
    return u;
  };
  // The dequantized output of the Q/DQ pair that quantizes `tensor` in the converted graph.
  const quantizedAs = (tensor: string): string | undefined => {
    for (const q of consumers.get(tensor) ?? []) {
      if (q.opType !== 'QuantizeLinear') continue;
      const dq = (consumers.get(q.output[0]) ?? []).find((n) => n.opType === 'DequantizeLinear');
      if (dq) return dq.output[0];
    }
    return undefined;
  };
  const guards: Guards = new Map();
  for (const dq of g.node) {
    if (dq.opType !== 'DequantizeLinear') continue;
    const q = producer.get(dq.input[0]);
    if (q?.opType === 'QuantizeLinear') {
      const layer = layerOf.get(dq.output[0]);
      if (!layer) continue;
      const unit = unitFor(layer.float);
      unit.tensors.push(layer.float);
      guards.set(dq, { source: q.input[0], unit });
      continue;
    }
    // A weight or bias: its float value is the same-named float node's input at the same place.
    const user = (consumers.get(dq.output[0]) ?? []).find((n) => floatNodes.has(n.name));
    if (!user) continue;
    const source = floatNodes.get(user.name)!.inputs[user.input.indexOf(dq.output[0])];
    if (!source) continue;
    const made = quantizedAs(user.output[0]);
    const layer = made ? layerOf.get(made) : undefined;
    let unit: SwitchUnit;
    if (layer) {
      unit = unitFor(layer.float);
    } else {
      const f = floatNodes.get(user.name)!;
      unit = units.get(`node:${user.name}`) ?? { id: `node:${user.name}`, node: user.name, op: f.op, index: f.index, tensors: [], weights: [], nodes: [] };
      units.set(unit.id, unit);
    }
    if (!unit.weights.includes(source)) unit.weights.push(source);
    addNode(unit, user.name);
    guards.set(dq, { source, unit });
  }
  return { units: [...units.values()].sort((a, b) => a.index - b.index), guards };
}

/**
 * `dq` behind `switchName`: an If whose then-branch dequantizes (and runs the QuantizeLinear
 * `quantize` that only this DequantizeLinear reads) and whose else-branch passes the float value
 * `source`. Where(switch, dequantized, float) took half the switch model's time on the PaddleOCR
 * recognizer, as a broadcasting copy of every element, and both of its sides ran whatever it picked.
 */
function switchedDequantize(dq: onnx.NodeProto, quantize: onnx.NodeProto | undefined, source: string, switchName: string): onnx.NodeProto {
  const out = dq.output[0];
  const branch = (name: string, node: onnx.NodeProto[], output: string) => onnx.GraphProto.create({ name, node, output: [typedValueInfo(output, DataType.FLOAT)] });
  const graph = (name: string, g: onnx.GraphProto) => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.GRAPH, g });
  return onnx.NodeProto.create({
    opType: 'If', name: `${out}__qs_switched`, input: [switchName], output: [out],
    attribute: [
      graph('then_branch', branch(`${out}__qs_quantized`, [...(quantize ? [quantize] : []), onnx.NodeProto.create({ ...dq, output: [`${out}__qs_q`] })], `${out}__qs_q`)),
      graph('else_branch', branch(`${out}__qs_float`, [makeNode('Identity', [source], [`${out}__qs_f`])], `${out}__qs_f`)),
    ],
  });
}

/**
 * The converted model with a switch per unit: every dequantized value becomes the If of
 * switchedDequantize, a Relu/Clip folded into its producer comes back on the float side, and the
 * float weights the converted model no longer holds come back for it.
 */
export function switchModel(view: GraphView, plan: QuantPlan, converted: ConvertResult): { model: onnx.ModelProto; units: SwitchUnit[] } {
  const { units, guards } = switchUnits(view, plan, converted);
  const g = converted.model.graph!;
  const floatNodes = new Map(view.nodes.map((n) => [n.name, n]));
  const position = new Map(units.map((u, i) => [u, i]));
  const initializers: onnx.TensorProto[] = [];
  const nodes: onnx.NodeProto[] = units.map((_, i) => {
    initializers.push(makeTensor(`qs_switch_index_${i}`, DataType.INT64, [], BigInt64Array.of(BigInt(i))));
    return makeNode('Gather', [SWITCH_INPUT, `qs_switch_index_${i}`], [switchName(i)]);
  });
  // A folded clamp clamps nothing on the float side: it comes back there, which changes nothing on
  // the quantized side since the folded range already lies inside it.
  const clamps = new Map(converted.folded.map((f) => [f.into, floatNodes.get(f.node)!.proto]));
  const extraConstants: string[] = [];
  // A QuantizeLinear read by one guarded DequantizeLinear alone runs in that one's branch.
  const readers = new Map<string, number>();
  for (const n of g.node) for (const i of n.input) readers.set(i, (readers.get(i) ?? 0) + 1);
  const producer = new Map(g.node.flatMap((n) => n.output.map((o) => [o, n] as const)));
  const branched = new Map<onnx.NodeProto, onnx.NodeProto>();
  for (const dq of guards.keys()) {
    const q = producer.get(dq.input[0]);
    if (q?.opType === 'QuantizeLinear' && readers.get(q.output[0]) === 1) branched.set(dq, q);
  }
  const inBranch = new Set(branched.values());
  for (const n of g.node) {
    if (inBranch.has(n)) continue;
    const clamp = clamps.get(n.name);
    const guard = guards.get(n);
    if (clamp) {
      const unclamped = `${n.output[0]}__qs_unclamped`;
      nodes.push(onnx.NodeProto.create({ ...n, output: [unclamped] }));
      nodes.push(onnx.NodeProto.create({ ...clamp, name: `${clamp.name}__qs_float_side`, input: [unclamped, ...clamp.input.slice(1)], output: [n.output[0]] }));
      extraConstants.push(...clamp.input.slice(1).filter(Boolean));
    } else if (guard) {
      nodes.push(switchedDequantize(n, branched.get(n), guard.source, switchName(position.get(guard.unit)!)));
    } else {
      nodes.push(n);
    }
  }
  const switchInput = typedValueInfo(SWITCH_INPUT, DataType.BOOL, [units.length]);
  const present = new Set([...g.initializer.map((t) => t.name), ...g.node.flatMap((n) => n.output)]);
  for (const source of [...[...guards.values()].map((x) => x.source), ...extraConstants]) {
    const t = present.has(source) ? undefined : view.constantTensor(source);
    if (t) {
      initializers.push(t);
      present.add(source);
    }
  }
  const graph = onnx.GraphProto.create({ ...g, node: nodes, input: [...g.input, switchInput], initializer: [...g.initializer, ...initializers] });
  return { model: onnx.ModelProto.create({ ...converted.model, graph }), units };
}

/**
 * The switch model with every switch fixed by `on`: each switched dequantize becomes the branch it
 * picks, inline, and what no node reads any more is left out. Each If copies its tensor out of its
 * branch; without them a configuration with few units quantized runs at nearly the float model's
 * speed, which pays for a session of its own (SwitchRunner.measure).
 */
export function withSwitchesFixed(model: onnx.ModelProto, units: number, on: (unit: number) => boolean): onnx.ModelProto {
  const g = model.graph!;
  const unitOf = new Map(Array.from({ length: units }, (_, i) => [switchName(i), i]));
  const nodes: onnx.NodeProto[] = [];
  for (const n of g.node) {
    if (n.opType === 'Gather' && n.input[0] === SWITCH_INPUT) continue;
    const unit = n.opType === 'If' ? unitOf.get(n.input[0]) : undefined;
    if (unit === undefined) {
      nodes.push(n);
      continue;
    }
    const branch = n.attribute.find((a) => a.name === (on(unit) ? 'then_branch' : 'else_branch'))!.g!;
    const result = branch.output[0].name;
    for (const b of branch.node) nodes.push(onnx.NodeProto.create({ ...b, output: b.output.map((o) => (o === result ? n.output[0] : o)) }));
  }
  const read = new Set([...nodes.flatMap(readsOf), ...g.output.map((o) => o.name)]);
  const graph = onnx.GraphProto.create({
    ...g, node: nodes, input: g.input.filter((i) => i.name !== SWITCH_INPUT), initializer: g.initializer.filter((t) => read.has(t.name)),
  });
  return onnx.ModelProto.create({ ...model, graph });
}

export interface RunQuality {
  /** Output SQNR over every float output and sample of the subset. */
  sqnr: number;
  metrics: MetricValues;
  /** Each sample's metrics, where the measure was asked for them: a search judges a difference between two models against them. */
  perSample?: SampleValues;
}

/**
 * A fixed subset of samples with the float model's outputs on it: every configuration of an
 * analysis or a search is measured against the same reference.
 */
export class Subset {
  /** The subset's input shapes, which the reference-numerics sessions over it are built for. */
  readonly shapes?: InputShapes;

  /** Per batch, the referenceRows of its first float output, which the task metrics compare; and Σx² over every float output: what each measure would compute of them again. */
  private readonly rows: Array<ReferenceRows | undefined>;
  private readonly power: number;

  private constructor(readonly read: Feed[], readonly feeds: Array<Record<string, ort.Tensor>>, readonly samples: number,
    private readonly reference: BatchOutputs[], private readonly labels?: ClassIds,
    private readonly custom?: CustomScoring) {
    this.shapes = commonShapes(read);
    this.rows = reference.map((outputs) => {
      const [first] = Object.values(outputs);
      return first && referenceRows(first.data, first.dims);
    });
    let power = 0;
    for (const outputs of reference) for (const { data } of Object.values(outputs)) for (let i = 0; i < data.length; i++) power += data[i] * data[i];
    this.power = power;
  }

  /** `custom`: the user's metric module and its labels, scored on every measure as `custom`. */
  static async create(floatModel: onnx.ModelProto, feeds: Feed[], labels?: ClassIds, custom?: CustomScoring): Promise<Subset> {
    const ortFeeds = feeds.map(toOrtFeeds);
    const samples = sampleCount(feeds);
    if (labels && labels.ids.length < samples * labels.steps) throw new Error(`labels: ${labels.ids.length / labels.steps} samples' class ids for ${samples} samples`);
    const session = await shapedSession(floatModel, commonShapes(feeds), 'float model');
    const reference: BatchOutputs[] = [];
    try {
      for (const feed of ortFeeds) {
        const out = await run(session, feed, 'float model');
        const kept: BatchOutputs = {};
        for (const name of session.outputNames) {
          const t = out[name] as ort.Tensor;
          if (t.type === 'float32') kept[name] = { dims: t.dims, data: floatData(t, name).slice() };
        }
        reference.push(kept);
      }
    } finally {
      await session.release();
    }
    return new Subset(feeds, ortFeeds, samples, reference, labels, custom);
  }

  /** The same samples, labels and metric module against another float model's outputs. */
  against(floatModel: onnx.ModelProto): Promise<Subset> {
    return Subset.create(floatModel, this.read, this.labels, this.custom);
  }

  /**
   * Output SQNR over every float output, and task metrics of the first, for a session over the
   * subset; with `eachSample`, each sample's metrics too.
   */
  async measure(session: ort.InferenceSession, extra: Record<string, ort.Tensor> = {}, signal?: AbortSignal, eachSample = false): Promise<RunQuality> {
    let e = 0;
    const metric = new MetricAccumulator({ perSample: eachSample });
    const custom = this.custom ? new CustomScore(this.custom) : undefined;
    let offset = 0;
    for (let b = 0; b < this.feeds.length; b++) {
      throwIfAborted(signal);
      const out = await run(session, { ...this.feeds[b], ...extra }, 'model');
      let first = true;
      const quantized: BatchOutputs = {};
      for (const [name, ref] of Object.entries(this.reference[b])) {
        const t = out[name] as ort.Tensor;
        const y = floatData(t, name);
        quantized[name] = { dims: t.dims, data: y };
        if (first) {
          const n = t.dims[0];
          e += metric.add(ref.data, y, t.dims, this.labels && idsOf(this.labels, offset, n), this.rows[b]).noise;
          offset += n;
          first = false;
        } else {
          for (let i = 0; i < ref.data.length; i++) e += (ref.data[i] - y[i]) * (ref.data[i] - y[i]);
        }
      }
      if (custom) {
        const n = Object.values(this.reference[b])[0]?.dims[0] ?? 0;
        custom.add(perSample(this.reference[b], n), perSample(quantized, n));
      }
    }
    const metrics = metric.result();
    if (!eachSample) {
      if (custom) metrics.custom = await custom.score(signal);
      return { sqnr: sqnrDb(this.power, e), metrics };
    }
    const each = metric.perSample();
    if (custom) {
      const scored = await custom.scoreEach(signal);
      metrics.custom = scored.value;
      if (scored.each) each.custom = scored.each;
    }
    return { sqnr: sqnrDb(this.power, e), metrics, perSample: each };
  }

  /** The same measure for a whole model in named numerics; with `eachSample`, each sample's metrics too. */
  async measureModel(model: onnx.ModelProto, what: string, numerics: MainNumerics, signal?: AbortSignal, eachSample = false): Promise<RunQuality> {
    // ort-cpu figures are the exported model's, as it is written; reference ones may plan for the subset's shapes.
    const session = await shapedSession(model, numerics === 'reference' ? this.shapes : undefined, what, numericsOptions(numerics));
    try {
      return await this.measure(session, {}, signal, eachSample);
    } finally {
      await session.release();
    }
  }
}

/**
 * Measures configurations of one quantized model: which units run quantized, the others float.
 * Every measurement of one runner is in its numerics, so a search that uses one never mixes two.
 */
export interface ConfigRunner {
  readonly numerics: MainNumerics;
  readonly units: number;
  runs: number;
  /** Output SQNR and task metrics with the units for which `on` is true quantized, the others float. */
  measure(on: (unit: number) => boolean, signal?: AbortSignal): Promise<RunQuality>;
  release(): Promise<void>;
}

/**
 * Reference numerics: one session of the switch model, each run picks which units are quantized.
 * A configuration with fewer than half the units quantized (an analysis's "alone quantized") runs
 * the switch model with its switches fixed instead, in a session of its own: on the PaddleOCR
 * recognizer's 32 lines 0.75–0.9 s, session included, against 1.0–1.9 s for the switch model's run.
 * With more units quantized the two cost the same, and the switch model keeps its one session.
 */
export class SwitchRunner implements ConfigRunner {
  readonly numerics = 'reference';
  runs = 0;

  private constructor(private readonly model: onnx.ModelProto, private readonly session: ort.InferenceSession, private readonly subset: Subset, readonly units: number) {}

  static async create(model: onnx.ModelProto, units: number, subset: Subset): Promise<SwitchRunner> {
    // The Q/DQ pairs inside If branches are out of reach of ONNX Runtime's fusions already; the option says so outright.
    return new SwitchRunner(model, await shapedSession(model, subset.shapes, 'model with a switch per quantized layer', numericsOptions('reference')), subset, units);
  }

  async measure(on: (unit: number) => boolean, signal?: AbortSignal): Promise<RunQuality> {
    const switches = Uint8Array.from({ length: this.units }, (_, i) => (on(i) ? 1 : 0));
    this.runs++;
    if (2 * switches.reduce((a, b) => a + b, 0) < this.units) {
      // Below 'all': ONNX Runtime's layout transformer would run the float convolutions in its
      // blocked layout, which the switch model's Ifs keep it from, and "alone quantized" figures
      // then moved by up to 0.2 dB on the recognizer; at 'extended' they are the switch model's to 1e-4 dB.
      const fixed = withSwitchesFixed(this.model, this.units, (i) => switches[i] === 1);
      const session = await shapedSession(fixed, this.subset.shapes, 'model with its switches fixed', { ...numericsOptions('reference'), graphOptimizationLevel: 'extended' });
      try {
        return await this.subset.measure(session, {}, signal);
      } finally {
        await session.release();
      }
    }
    return this.subset.measure(this.session, { [SWITCH_INPUT]: new ort.Tensor('bool', switches, [this.units]) }, signal);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * ort-cpu numerics: fused integer kernels cannot be switched at run time, so each configuration is
 * converted with its float units and run as the exported model would be. Slower than the switch
 * model by a conversion and a session per configuration, and exact in the numerics of the target.
 */
export class ExportRunner implements ConfigRunner {
  runs = 0;
  private readonly seen = new Map<string, RunQuality>();

  /** `measured`: a model the caller measured on the same subset in the same numerics, which a configuration that builds it byte for byte need not measure again. */
  constructor(readonly numerics: MainNumerics, readonly units: number, private readonly subset: Subset,
    private readonly build: (floatUnits: number[]) => onnx.ModelProto, private readonly measured?: { model: onnx.ModelProto; quality: RunQuality }) {}

  async measure(on: (unit: number) => boolean, signal?: AbortSignal): Promise<RunQuality> {
    const floatUnits = Array.from({ length: this.units }, (_, i) => i).filter((i) => !on(i));
    const key = floatUnits.join(',');
    const known = this.seen.get(key);
    if (known) return known;
    throwIfAborted(signal);
    const model = this.build(floatUnits);
    // Only the all-quantized configuration is worth comparing: the caller measured the model it converted.
    const q = floatUnits.length === 0 && this.measured && sameBytes(model, this.measured.model) ? this.measured.quality
      : await this.subset.measureModel(model, `quantized model with ${floatUnits.length} layer(s) in float`, this.numerics, signal);
    if (q !== this.measured?.quality) this.runs++;
    this.seen.set(key, q);
    return q;
  }

  async release(): Promise<void> {
    this.seen.clear();
  }
}

export interface SensitivityOptions {
  /** Units measured, most suspect first by `prior`; the rest are ranked after them in prior order. */
  candidates: number;
  /** Also measure each candidate with only itself quantized (analysis), not only with only itself in float (search). */
  onlyQuantized: boolean;
  /** A task metric to rank by instead of output SQNR (higher is better). */
  metric?: string;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
}

export interface SensitivityRun {
  unit: number;
  onlyFloat: RunQuality;
  onlyQuantized?: RunQuality;
}

export interface SensitivityResult {
  all: RunQuality;
  rows: SensitivityRun[];
  /** Unit indices, most sensitive first: measured units by what keeping them in float gains, then the rest in prior order. */
  ranking: number[];
  skipped: number;
}

export function score(q: RunQuality, metric?: string): number {
  const value = metric ? q.metrics[metric as keyof RunQuality['metrics']] : q.sqnr;
  return value === undefined ? -Infinity : metric ? metricScore(metric, value) : value;
}

/**
 * Measures the `candidates` most suspect units (by `prior`, e.g. worst local SQNR first): the output
 * with only that unit in float, and for analysis with only that unit quantized. Units past the
 * candidates are skipped: their own error is small, and measuring all ~300 layers of a large model
 * would cost an hour where the candidates cost a minute.
 */
export async function sensitivity(runner: ConfigRunner, prior: number[], options: SensitivityOptions): Promise<SensitivityResult> {
  const all = await runner.measure(() => true, options.signal);
  const measured = prior.slice(0, options.candidates);
  const total = measured.length * (options.onlyQuantized ? 2 : 1);
  const start = performance.now();
  let done = 0;
  const rows: SensitivityRun[] = [];
  for (const unit of measured) {
    const row: SensitivityRun = { unit, onlyFloat: await runner.measure((i) => i !== unit, options.signal) };
    done++;
    if (options.onlyQuantized) {
      row.onlyQuantized = await runner.measure((i) => i === unit, options.signal);
      done++;
    }
    rows.push(row);
    options.onProgress?.({ stage: 'sensitivity', done, total, rate: done / ((performance.now() - start) / 1000) });
  }
  const ranked = [...rows].sort((a, b) => score(b.onlyFloat, options.metric) - score(a.onlyFloat, options.metric) || b.onlyFloat.sqnr - a.onlyFloat.sqnr).map((r) => r.unit);
  const seen = new Set(ranked);
  return { all, rows, ranking: [...ranked, ...prior.filter((u) => !seen.has(u))], skipped: prior.length - measured.length };
}

/** A measured configuration as the reports write it: output SQNR and metrics, with their numerics and samples. */
export function quality(q: RunQuality, samples: number, numerics: MainNumerics): Quality {
  const metrics: Record<string, number> = {};
  for (const [k, v] of Object.entries(q.metrics)) if (v !== undefined) metrics[k] = Number(v.toFixed(5));
  return { numerics, outputSqnr: dbToJson(q.sqnr), metrics, samples };
}

/** Worst local SQNR of a unit's tensors: the order in which units are worth measuring. */
export function priorOrder(units: SwitchUnit[], local: ReadonlyMap<string, number>): number[] {
  const worst = units.map((u) => Math.min(...u.tensors.map((t) => local.get(t) ?? Infinity)));
  return units.map((_, i) => i).sort((a, b) => worst[a] - worst[b] || a - b);
}

/** Units measured one by one when the caller does not say: a tenth of them, at least 16. */
export function defaultCandidates(units: number): number {
  return Math.min(units, Math.max(16, Math.ceil(units / 10)));
}

/** The move of a unit to higher precision, in the terms of the one rule (shared/recipe.ts). */
export function unitMove(unit: SwitchUnit): LayerMove {
  return { tensor: unit.tensor, nodes: unit.nodes };
}

function sameBytes(a: onnx.ModelProto, b: onnx.ModelProto): boolean {
  return Buffer.from(encodeModel(a)).equals(encodeModel(b));
}

/**
 * The runner a search measures configurations with, and its units: the switch model in reference
 * numerics, a conversion per configuration in ort-cpu numerics. `measured`: `converted`'s quality
 * on `subset` in `numerics`, where the caller has it.
 */
export async function configRunner(numerics: MainNumerics, view: GraphView, plan: QuantPlan, ranges: ReadonlyMap<string, Range>,
  converted: ConvertResult, subset: Subset, rounding?: WeightRounding, measured?: RunQuality): Promise<{ runner: ConfigRunner; units: SwitchUnit[] }> {
  const { model, units } = switchModel(view, plan, converted);
  if (numerics === 'reference') return { runner: await SwitchRunner.create(model, units.length, subset), units };
  // A layer moved to float leaves the tensors that borrowed its range to be quantized on their own.
  const borrowed = withBorrowedRanges(plan, ranges);
  const build = (floatUnits: number[]) => convertModel(view, planQuantization(view, withHigherPrecision(plan.recipe, floatUnits.map((i) => unitMove(units[i])), 'float')), borrowed, rounding).model;
  return { runner: new ExportRunner(numerics, units.length, subset, build, measured && { model: converted.model, quality: measured }), units };
}
