// The engine switches off ONNX Runtime's graph passes that cannot change a model (idlePasses), to
// save their walks over the graph at session creation. The claim is that the graph ONNX Runtime
// runs is the one it would run with every pass on: checked on every session real jobs create, and
// on small graphs where the passes that must stay on have something to fuse.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { recipeFor } from '../../shared/backends';
import type { Recipe } from '../../shared/recipe';
import { quantize } from '../../main/jobs/quantize';
import { idlePasses } from '../../main/onnx/idle-passes';
import { createSession } from '../../main/onnx/session';
import { onnx } from '../../main/onnx/proto';
import { buildModel, MODELS, randomArray, ROOT } from '../helpers/build';
import { trackedTempDirs } from '../helpers/cli';
import { CHAR_LM } from '../helpers/lm';

const tempDir = trackedTempDirs();
const MNIST = path.join(ROOT, 'test', 'fixtures', 'mnist-cnn');
const SAMPLE = path.join(ROOT, 'resources', 'sample');

interface Created {
  model: Uint8Array;
  options: ort.InferenceSession.SessionOptions;
}

/** Every session `job` creates through ONNX Runtime, with the options it was given. */
async function sessionsOf(job: () => Promise<unknown>): Promise<Created[]> {
  const created: Created[] = [];
  const create = ort.InferenceSession.create;
  ort.InferenceSession.create = ((model: string | Uint8Array, options?: ort.InferenceSession.SessionOptions) => {
    // The engine encodes into memory it reuses for the next session: the bytes are copied here.
    created.push({ model: typeof model === 'string' ? fs.readFileSync(model) : Uint8Array.from(model), options: options ?? {} });
    return create.call(ort.InferenceSession, model as never, options as never);
  }) as typeof ort.InferenceSession.create;
  try {
    await job();
  } finally {
    ort.InferenceSession.create = create;
  }
  return created;
}

/** The graph as ONNX Runtime optimized it: every node, in subgraphs too, by op, domain, inputs and outputs. */
async function optimized(model: Uint8Array, options: ort.InferenceSession.SessionOptions, file: string): Promise<string[]> {
  const session = await ort.InferenceSession.create(model, { ...options, optimizedModelFilePath: file, logSeverityLevel: 3 });
  await session.release();
  const nodes: string[] = [];
  const walk = (graph: onnx.IGraphProto) => {
    for (const n of graph.node ?? []) {
      nodes.push(`${n.domain || 'ai.onnx'}.${n.opType}(${(n.input ?? []).join(',')}) -> ${(n.output ?? []).join(',')}`);
      for (const a of n.attribute ?? []) for (const g of [a.g, ...(a.graphs ?? [])]) if (g) walk(g);
    }
  };
  walk(onnx.ModelProto.decode(fs.readFileSync(file)).graph!);
  return nodes;
}

function withEveryPass(options: ort.InferenceSession.SessionOptions): ort.InferenceSession.SessionOptions {
  const extra = options.extra as { optimization?: Record<string, string> };
  return { ...options, extra: { ...extra, optimization: { ...extra.optimization, disable_specified_optimizers: '' } } };
}

const switchedOff = (options: ort.InferenceSession.SessionOptions) =>
  ((options.extra as { optimization?: Record<string, string> } | undefined)?.optimization?.disable_specified_optimizers ?? '');

/** Eight of the recognizer's calibration lines: its sessions are what the passes are switched off for. */
function recognizerLines(): string {
  const dir = tempDir('idle-passes-lines');
  const from = path.join(ROOT, 'test', 'fixtures', 'ocr-lines', 'calib');
  for (const f of fs.readdirSync(from).filter((f) => f.endsWith('.png')).sort().slice(0, 8)) fs.copyFileSync(path.join(from, f), path.join(dir, f));
  return dir;
}

const HALF = { mean: [0.5, 0.5, 0.5] as [number, number, number], std: [0.5, 0.5, 0.5] as [number, number, number] };

const JOBS: Array<[string, { model: string; recipe: Recipe; data: string; preprocess?: { mean: [number, number, number]; std: [number, number, number] } }]> = [
  ['MNIST CNN, cpu (reference and ort-cpu)', { model: path.join(MNIST, 'model.onnx'), recipe: recipeFor('cpu', 'a8w8'), data: path.join(MNIST, 'calib.npy') }],
  ['the sample, xnnpack, entropy', { model: path.join(SAMPLE, 'cls.onnx'), recipe: { ...recipeFor('xnnpack', 'a8w8'), method: 'entropy' }, data: path.join(SAMPLE, 'calibration'), preprocess: HALF }],
  ['the PaddleOCR recognizer, cpu, percentile (reference and ort-cpu)', { model: MODELS.rec, recipe: { ...recipeFor('cpu', 'a8w8'), method: 'percentile:99.999' }, data: recognizerLines(), preprocess: HALF }],
  ['the character LM, cpu 4-bit weights', { model: path.join(CHAR_LM, 'model.onnx'), recipe: recipeFor('cpu', 'w4'), data: path.join(CHAR_LM, 'calib.npy') }],
  ['the character LM, xnnpack a8w8', { model: path.join(CHAR_LM, 'model.onnx'), recipe: recipeFor('xnnpack', 'a8w8'), data: path.join(CHAR_LM, 'calib.npy') }],
];

for (const [title, job] of JOBS) {
  test(`every session of a quantize job on ${title} runs the graph it would with every pass on`, async () => {
    const dir = tempDir('idle-passes');
    const sessions = await sessionsOf(() => quantize({ ...job, calibration: job.data, out: path.join(dir, 'q.onnx'), latency: false }));
    const compared = sessions.filter((s) => s.options.graphOptimizationLevel !== 'disabled' && switchedOff(s.options));
    assert.ok(compared.length >= 2, `${sessions.length} sessions, ${compared.length} with passes switched off`);
    for (const [i, s] of compared.entries()) {
      const mine = await optimized(s.model, s.options, path.join(dir, `${i}-idle.onnx`));
      const every = await optimized(s.model, withEveryPass(s.options), path.join(dir, `${i}-every.onnx`));
      assert.deepEqual(mine, every, `session ${i} (${switchedOff(s.options)})`);
    }
  });
}

/** x → x/√2 → Erf → +1 → ·x → ·½: GELU as exporters write it, which ONNX Runtime fuses into one Gelu. */
function geluModel(wrapped: boolean): onnx.ModelProto {
  const gelu = [
    { op: 'Div', inputs: ['x', 'sqrt2'], outputs: ['d'] }, { op: 'Erf', inputs: ['d'], outputs: ['e'] },
    { op: 'Add', inputs: ['e', 'one'], outputs: ['a'] }, { op: 'Mul', inputs: ['x', 'a'], outputs: ['m'] }, { op: 'Mul', inputs: ['m', 'half'], outputs: ['y'] },
  ];
  const initializers = { sqrt2: { dims: [], data: [Math.SQRT2] }, one: { dims: [], data: [1] }, half: { dims: [], data: [0.5] } };
  if (!wrapped) return buildModel({ inputs: { x: [2, 8] }, outputs: { y: [2, 8] }, initializers, nodes: gelu });
  // The same GELU inside an If's branches: the pass must stay on for a subgraph's ops too.
  const branch = buildModel({ inputs: {}, outputs: { y: [2, 8] }, initializers, nodes: gelu }).graph!;
  const model = buildModel({ inputs: { x: [2, 8], c: [] }, outputs: { y: [2, 8] }, nodes: [{ op: 'If', inputs: ['c'], outputs: ['y'] }] });
  model.graph!.input[1].type!.tensorType!.elemType = onnx.TensorProto.DataType.BOOL;
  model.graph!.node[0].attribute = ['then_branch', 'else_branch'].map((name) => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.GRAPH, g: branch }));
  return model;
}

/** x → MatMul → Add → MatMul → Add on 3-D x: MatMulAddFusion makes Reshape → Gemm → Reshape of each pair, and ReshapeFusion merges the two Reshapes between them. */
function linearPairs(): onnx.ModelProto {
  return buildModel({
    inputs: { x: [2, 4, 8] }, outputs: { y: [2, 4, 8] },
    initializers: { w1: { dims: [8, 8], data: randomArray(64, 1) }, b1: { dims: [8], data: randomArray(8, 2) }, w2: { dims: [8, 8], data: randomArray(64, 3) }, b2: { dims: [8], data: randomArray(8, 4) } },
    nodes: [
      { op: 'MatMul', inputs: ['x', 'w1'], outputs: ['m1'] }, { op: 'Add', inputs: ['m1', 'b1'], outputs: ['a1'] },
      { op: 'MatMul', inputs: ['a1', 'w2'], outputs: ['m2'] }, { op: 'Add', inputs: ['m2', 'b2'], outputs: ['y'] },
    ],
  });
}

test('where a pass fuses what the model has or what another pass makes of it, the session runs the graph every pass makes: GELU (also in If branches), linear layers on 3-D inputs', async () => {
  const dir = tempDir('idle-passes-fused');
  for (const [name, model, fused] of [['gelu', geluModel(false), 'com.microsoft.Gelu'], ['gelu-in-if', geluModel(true), 'com.microsoft.Gelu'], ['linear-pairs', linearPairs(), 'ai.onnx.Gemm']] as const) {
    const sessions = await sessionsOf(async () => (await createSession(model, `${name} model`)).release());
    const [s] = sessions;
    const mine = await optimized(s.model, s.options, path.join(dir, `${name}-idle.onnx`));
    assert.deepEqual(mine, await optimized(s.model, withEveryPass(s.options), path.join(dir, `${name}-every.onnx`)), name);
    assert.ok(mine.some((n) => n.startsWith(`${fused}(`)), `${name}: ${mine.join(' ')}`);
  }
  const idle = idlePasses(geluModel(true), false).split(';');
  for (const pass of ['GeluFusionL1', 'GeluFusionL2', 'BiasGeluFusion']) assert.ok(!idle.includes(pass), pass);
  assert.ok(!idlePasses(linearPairs(), false).split(';').includes('ReshapeFusion'));
});

test('what decides a pass is idle: its op, an op a pass makes it from, Q/DQ, 4-bit DQ, free-dimension overrides, providers the engine never uses', () => {
  const model = (ops: string[]) => onnx.ModelProto.create({ graph: onnx.GraphProto.create({ node: ops.map((opType) => onnx.NodeProto.create({ opType })) }) });
  const idle = (ops: string[], overrides = false) => new Set(idlePasses(model(ops), overrides).split(';'));
  const conv = idle(['Conv', 'Relu']);
  for (const pass of ['GeluFusionL1', 'BiasGeluFusion', 'FastGeluFusion', 'QDQSelectorActionTransformer', 'DoubleQDQPairsRemover', 'MatMulNBitsFusion', 'FreeDimensionOverrideTransformer']) assert.ok(conv.has(pass), pass);
  assert.ok(!idle(['Tanh']).has('BiasGeluFusion'), 'FastGeluFusion makes FastGelu from Tanh');
  assert.ok(!idle(['ReduceMean']).has('BiasSkipLayerNormFusion'), 'LayerNormFusion makes LayerNormalization from ReduceMean, SkipLayerNormFusion a SkipLayerNormalization from that');
  assert.ok(!idle(['MatMul']).has('GemmActivationFusion'), 'MatMulAddFusion makes Gemm from MatMul');
  assert.ok(!idle(['Mish']).has('FastGeluFusion') && !idle(['Swish']).has('QuickGeluFusion'), 'ONNX Runtime expands Mish and Swish into bodies with Tanh and Sigmoid');
  assert.ok(idle(['MatMul', 'Add', 'Softmax', 'Dropout']).has('BiasSoftmaxFusion'), 'a pass for CUDA only');
  assert.ok(!idle(['DequantizeLinear']).has('QDQSelectorActionTransformer'));
  assert.ok(!idle(['DequantizeLinear']).has('MatMulNBitsFusion'), 'QDQ selection makes MatMulNBits from a 4-bit DequantizeLinear');
  assert.ok(!idle(['Conv'], true).has('FreeDimensionOverrideTransformer'));
});
