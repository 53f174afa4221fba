// AdaRound: the input moments it learns from are the layers' real im2col rows, its loss falls and
// ends no higher than nearest rounding's, the layer output error it reports is the one ONNX Runtime
// measures, and on the trained MNIST CNN it keeps accuracy and raises the output SQNR.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { recipeFor } from '../../shared/backends';
import { adaRoundIterations } from '../../shared/recipe';
import { countedUnit, type Progress } from '../../shared/progress';
import type { Feed } from '../../main/base/feed';
import { convertModel } from '../../main/convert/convert';
import { quantize } from '../../main/jobs/quantize';
import { GraphView } from '../../main/onnx/graph';
import { typedValueInfo } from '../../main/onnx/edit';
import { encodeModel, loadModel } from '../../main/onnx/model';
import { numericsOptions } from '../../main/onnx/numerics';
import { DataType, onnx } from '../../main/onnx/proto';
import { tensorToFloat32 } from '../../main/onnx/tensor';
import { planQuantization } from '../../main/plan/plan';
import { adaRound } from '../../main/repair/adaround';
import { momentsOf, rowLayer, type LayerMoments } from '../../main/repair/gram';
import { htmlReport } from '../../main/export/html-report';
import { buildModel, randomArray, ROOT, type NodeSpec } from '../helpers/build';
import { trackedTempDirs } from '../helpers/cli';

const tempDir = trackedTempDirs();
const MNIST = path.join(ROOT, 'test', 'fixtures', 'mnist-cnn');

function feed(x: Float32Array, dims: number[]): Feed {
  return { x: { type: 'float32', data: x, dims } };
}

type ConvGeometry = { kernel: [number, number]; strides: [number, number]; pads: number[]; dilations: [number, number]; groups: number };

/** Σ over the batch of a bᵀ for one group's im2col rows a of `x` and b of `y` (same shape) of a 2-D conv, by definition. */
function bruteGram(x: Float32Array, y: Float32Array, [n, c, h, w]: number[], conv: ConvGeometry): { gram: Float64Array; rows: number } {
  const [kh, kw] = conv.kernel;
  const cg = c / conv.groups;
  const width = cg * kh * kw;
  const [ph, pw, , ] = conv.pads;
  const ho = Math.floor((h + conv.pads[0] + conv.pads[2] - conv.dilations[0] * (kh - 1) - 1) / conv.strides[0]) + 1;
  const wo = Math.floor((w + conv.pads[1] + conv.pads[3] - conv.dilations[1] * (kw - 1) - 1) / conv.strides[1]) + 1;
  const gram = new Float64Array(conv.groups * width * width);
  const [a, b] = [new Float64Array(width), new Float64Array(width)];
  for (let s = 0; s < n; s++) for (let g = 0; g < conv.groups; g++) for (let oy = 0; oy < ho; oy++) for (let ox = 0; ox < wo; ox++) {
    for (let ci = 0; ci < cg; ci++) for (let p = 0; p < kh; p++) for (let e = 0; e < kw; e++) {
      const yy = oy * conv.strides[0] - ph + p * conv.dilations[0];
      const xx = ox * conv.strides[1] - pw + e * conv.dilations[1];
      const inside = yy >= 0 && yy < h && xx >= 0 && xx < w;
      const at = ((s * c + g * cg + ci) * h + yy) * w + xx;
      a[(ci * kh + p) * kw + e] = inside ? x[at] : 0;
      b[(ci * kh + p) * kw + e] = inside ? y[at] : 0;
    }
    for (let i = 0; i < width; i++) for (let j = 0; j < width; j++) gram[(g * width + i) * width + j] += a[i] * b[j];
  }
  return { gram, rows: n * ho * wo };
}

/** Σ_r w_r G w_rᵀ over a layer's rows (row-major [groups, rows/groups, width]) with G per group. */
function rowForm(w: Float32Array, g: Float64Array, groups: number, width: number): number {
  const perGroup = w.length / width / groups;
  let total = 0;
  for (let gi = 0; gi < groups; gi++) for (let r = 0; r < perGroup; r++) {
    const row = w.subarray((gi * perGroup + r) * width, (gi * perGroup + r + 1) * width);
    for (let i = 0; i < width; i++) for (let j = 0; j < width; j++) total += row[i] * g[(gi * width + i) * width + j] * row[j];
  }
  return total;
}

for (const opset of [11, 17]) test(`the moments are those of each layer's im2col rows, float model against quantized: strided, padded, dilated, grouped Conv (by slices; for auto_pad and depthwise, by one-hot kernels), MatMul, and a layer after one whose weight is fed (opset ${opset})`, async () => {
  const dims = [2, 4, 7, 9];
  const geometry: ConvGeometry = { kernel: [2, 3], strides: [2, 1], pads: [1, 0, 1, 2], dilations: [1, 2], groups: 2 };
  const initializers = {
    w: { dims: [4, 2, 2, 3], data: randomArray(48, 1) }, w2: { dims: [4, 4, 3, 3], data: randomArray(144, 2) }, b: { dims: [9, 3], data: randomArray(27, 3) },
    w3: { dims: [3, 4, 1, 1], data: randomArray(12, 5) }, wd: { dims: [4, 1, 3, 3], data: randomArray(36, 6) }, four: { dims: [], data: [4] },
  };
  // The quantized model: the same layers, with the same names, on x rounded to quarters.
  const layers = (input: string): NodeSpec[] => [
    { op: 'Conv', inputs: [input, 'w'], outputs: ['y'], name: 'sliced', attrs: { kernel_shape: [2, 3], strides: [2, 1], pads: [1, 0, 1, 2], dilations: [1, 2], group: 2 } },
    { op: 'Conv', inputs: [input, 'w2'], outputs: ['z'], name: 'same', attrs: { kernel_shape: [3, 3], auto_pad: 'SAME_UPPER', strides: [2, 2] } },
    { op: 'MatMul', inputs: [input, 'b'], outputs: ['m'], name: 'matmul' },
    { op: 'Conv', inputs: ['y', 'w3'], outputs: ['v'], name: 'after' },
    { op: 'Conv', inputs: [input, 'wd'], outputs: ['d'], name: 'depthwise', attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 4 } },
  ];
  const io = { inputs: { x: ['n', 4, 7, 9] }, outputs: { y: ['n', 4, 'h', 'w'], z: ['n', 4, 'h2', 'w2'], m: ['n', 4, 7, 3], v: ['n', 3, 'h', 'w'], d: ['n', 4, 7, 9] }, initializers };
  const model = buildModel({ ...io, nodes: layers('x'), opset });
  const quantModel = buildModel({ ...io, opset, nodes: [{ op: 'Mul', inputs: ['x', 'four'], outputs: ['x4'] }, { op: 'Floor', inputs: ['x4'], outputs: ['x4f'] }, { op: 'Div', inputs: ['x4f', 'four'], outputs: ['xq'] }, ...layers('xq')] });
  const view = new GraphView(model);
  const rowLayers = view.nodes.map((n) => rowLayer(view, n)!);
  const rowWeights = rowLayers.map((l) => {
    const t = tensorToFloat32(view.initializers.get(l.weight)!);
    return Float32Array.from({ length: l.rows * l.width }, (_, k) => t[l.index(Math.floor(k / l.width), k % l.width)]);
  });
  const weights = rowLayers.map((l) => tensorToFloat32(view.initializers.get(l.weight)!));
  const x = randomArray(2 * 4 * 7 * 9, 4);
  const xq = x.map((v) => Math.floor(v * 4) / 4);
  const e = xq.map((v, i) => v - x[i]);
  const feeds = [feed(x.subarray(0, 252), [1, 4, 7, 9]), feed(x.subarray(252), [1, 4, 7, 9])];
  const moments = await momentsOf(model, quantModel, rowLayers, feeds);
  const measured: LayerMoments[] = [];
  for (const i of [0, 1, 2]) measured.push(await moments.measure(i, weights));
  await assert.rejects(moments.measure(1, weights), /asked for after layer 2's/);
  const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) => {
    assert.equal(a.length, b.length, what);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-5 * (1 + Math.abs(b[i])), `${what}[${i}]: ${a[i]} against ${b[i]}`);
  };
  const mean = (g: { gram: Float64Array; rows: number }) => Float64Array.from(g.gram, (v) => v / g.rows);
  // SAME_UPPER with stride 2 over 7x9: outputs 4x5, total padding 2 each way, the extra one at the end.
  const convs: ConvGeometry[] = [geometry, { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1], groups: 1 }];
  convs.forEach((g, i) => {
    const what = ['strided, padded, dilated, grouped conv', 'auto_pad conv'][i];
    close(measured[i].quantized, mean(bruteGram(xq, xq, dims, g)), `${what}: E[x̃x̃ᵀ]`);
    close(measured[i].cross, mean(bruteGram(e, xq, dims, g)), `${what}: E[(x̃ − x)x̃ᵀ]`);
    close([measured[i].power, measured[i].inputNoise], [rowForm(rowWeights[i], mean(bruteGram(x, x, dims, g)), g.groups, rowLayers[i].width), rowForm(rowWeights[i], mean(bruteGram(e, e, dims, g)), g.groups, rowLayers[i].width)], `${what}: power, input noise`);
  });
  const rows = (a: Float32Array, b: Float32Array) => {
    const out = new Float64Array(81);
    for (let r = 0; r < a.length / 9; r++) for (let i = 0; i < 9; i++) for (let j = 0; j < 9; j++) out[i * 9 + j] += a[r * 9 + i] * b[r * 9 + j];
    return out.map((v) => v / (a.length / 9));
  };
  close(measured[2].quantized, rows(xq, xq), 'matmul: E[x̃x̃ᵀ]');
  close(measured[2].cross, rows(e, xq), 'matmul: E[(x̃ − x)x̃ᵀ]');
  close([measured[2].power, measured[2].inputNoise], [rowForm(rowWeights[2], rows(x, x), 1, 9), rowForm(rowWeights[2], rows(e, e), 1, 9)], 'matmul: power, input noise');

  // The layer after `sliced` reads what the fed weight makes of the quantized input: zeros make zeros, whose error is the whole float output.
  const zeroed = await (await momentsOf(model, quantModel, rowLayers, feeds)).measure(3, weights.map((w, i) => (i === 0 ? new Float32Array(w.length) : w)));
  assert.ok(zeroed.quantized.every((v) => v === 0) && zeroed.cross.every((v) => v === 0), 'x̃ = 0');
  assert.ok(zeroed.power > 0 && Math.abs(zeroed.inputNoise - zeroed.power) <= 1e-5 * zeroed.power, `input noise ${zeroed.inputNoise} = power ${zeroed.power}`);
  // Walked on from layer 2, layer 3's part reads what the walk kept: the same moments as a walk that starts at layer 3.
  const fed = await moments.measure(3, weights);
  const alone = await (await momentsOf(model, quantModel, rowLayers, feeds)).measure(3, weights);
  close([...fed.quantized, ...fed.cross, fed.power, fed.inputNoise], [...alone.quantized, ...alone.cross, alone.power, alone.inputNoise], 'layer 3 walked to against alone');
  assert.ok(fed.quantized.some((v) => v !== 0) && fed.inputNoise < fed.power / 5, `the float weight fed: input noise ${fed.inputNoise} against power ${fed.power}`);

  // A depthwise conv's patches come from a grouped conv with one-hot kernels.
  const depthwise = await moments.measure(4, weights);
  const dw: ConvGeometry = { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], groups: 4 };
  close(depthwise.quantized, mean(bruteGram(xq, xq, dims, dw)), 'depthwise conv: E[x̃x̃ᵀ]');
  close(depthwise.cross, mean(bruteGram(e, xq, dims, dw)), 'depthwise conv: E[(x̃ − x)x̃ᵀ]');
  close([depthwise.power, depthwise.inputNoise], [rowForm(rowWeights[4], mean(bruteGram(x, x, dims, dw)), 4, 9), rowForm(rowWeights[4], mean(bruteGram(e, e, dims, dw)), 4, 9)], 'depthwise conv: power, input noise');
});

test('a layer with fewer positions than its rows are wide gathers its rows over the batches: a grouped strided conv and a MatMul, the same moments multiplied out once or a batch at a time', async () => {
  const dims = [3, 8, 5, 5];
  const conv: ConvGeometry = { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1], groups: 2 };
  const initializers = { w: { dims: [6, 4, 3, 3], data: randomArray(216, 31) }, b: { dims: [5, 3], data: randomArray(15, 32) }, four: { dims: [], data: [4] } };
  const layers = (input: string): NodeSpec[] => [
    { op: 'Conv', inputs: [input, 'w'], outputs: ['y'], name: 'grouped', attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], group: 2 } },
    { op: 'MatMul', inputs: [input, 'b'], outputs: ['m'], name: 'matmul' },
  ];
  const io = { inputs: { x: ['n', 8, 5, 5] }, outputs: { y: ['n', 6, 3, 3], m: ['n', 8, 5, 3] }, initializers };
  const model = buildModel({ ...io, nodes: layers('x') });
  const quantModel = buildModel({ ...io, nodes: [{ op: 'Mul', inputs: ['x', 'four'], outputs: ['x4'] }, { op: 'Floor', inputs: ['x4'], outputs: ['x4f'] }, { op: 'Div', inputs: ['x4f', 'four'], outputs: ['xq'] }, ...layers('xq')] });
  const view = new GraphView(model);
  const rowLayers = view.nodes.map((n) => rowLayer(view, n)!);
  const weights = rowLayers.map((l) => tensorToFloat32(view.initializers.get(l.weight)!));
  const x = randomArray(3 * 200, 33);
  const xq = x.map((v) => Math.floor(v * 4) / 4);
  const e = xq.map((v, i) => v - x[i]);
  const feeds = [0, 1, 2].map((k) => feed(x.subarray(k * 200, (k + 1) * 200), [1, 8, 5, 5]));
  const measured = async (bytes?: number) => {
    const moments = await momentsOf(model, quantModel, rowLayers, feeds, bytes);
    return [await moments.measure(0, weights), await moments.measure(1, weights)];
  };
  const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) => {
    assert.equal(a.length, b.length, what);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-5 * (1 + Math.abs(b[i])), `${what}[${i}]: ${a[i]} against ${b[i]}`);
  };
  const mean = (g: { gram: Float64Array; rows: number }) => Float64Array.from(g.gram, (v) => v / g.rows);
  const rows = (a: Float32Array, b: Float32Array) => {
    const out = new Float64Array(25);
    for (let r = 0; r < a.length / 5; r++) for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) out[i * 5 + j] += a[r * 5 + i] * b[r * 5 + j];
    return out.map((v) => v / (a.length / 5));
  };
  // Once with every batch's rows, then a product a batch (each batch's rows already past a budget of one byte).
  for (const bytes of [undefined, 1]) {
    const [grouped, matmul] = await measured(bytes);
    const how = bytes ? 'a product a batch' : 'one product';
    close(grouped.quantized, mean(bruteGram(xq, xq, dims, conv)), `grouped conv, ${how}: E[x̃x̃ᵀ]`);
    close(grouped.cross, mean(bruteGram(e, xq, dims, conv)), `grouped conv, ${how}: E[(x̃ − x)x̃ᵀ]`);
    close(matmul.quantized, rows(xq, xq), `matmul, ${how}: E[x̃x̃ᵀ]`);
    close(matmul.cross, rows(e, xq), `matmul, ${how}: E[(x̃ − x)x̃ᵀ]`);
  }
});

test('AdaRound\'s loss falls, ends no higher than nearest rounding\'s, moves each weight by at most one step, and reports the output error ONNX Runtime measures', async () => {
  const model = buildModel({
    inputs: { x: [1, 6, 8, 8] }, outputs: { y: [1, 5, 8, 8] },
    initializers: { w: { dims: [5, 6, 3, 3], data: randomArray(270, 11) } },
    nodes: [{ op: 'Conv', inputs: ['x', 'w'], outputs: ['y'], name: 'conv', attrs: { pads: [1, 1, 1, 1] } }],
  });
  const view = new GraphView(model);
  const plan = planQuantization(view, { ...recipeFor('cpu', 'a8w8'), granularity: 'per-tensor' });
  // Correlated inputs, as real activations are: that is where nearest rounding is not the best.
  const feeds = [0, 1, 2, 3].map((k) => {
    const x = randomArray(384, 20 + k);
    for (let i = 64; i < x.length; i++) x[i] = 0.7 * x[i - 64] + 0.3 * x[i];
    return feed(x, [1, 6, 8, 8]);
  });
  const ranges = new Map([['x', { min: -1, max: 1 }], ['y', { min: -10, max: 10 }]]);
  const result = await adaRound(model, plan, ranges, feeds, { iterations: 300 });
  const [layer] = result.report.layers;
  assert.equal(layer.kept, 'learned');
  const warm = layer.loss.slice(2);
  assert.ok(warm[warm.length - 1] < warm[0], `loss after warm-up ${warm[0]} → ${warm[warm.length - 1]}`);
  assert.ok((layer.outputSqnr.after as number) > (layer.outputSqnr.before as number) + 0.5, `layer output SQNR ${layer.outputSqnr.before} → ${layer.outputSqnr.after} dB`);
  assert.ok(layer.changed > 0 && layer.changed < 0.5, `share rounded the other way: ${layer.changed}`);
  assert.equal(layer.loss.length, 10, 'the loss every tenth of the way');
  // The iterations between two points of the loss are one run: 307 end on a run of 7.
  const odd = (await adaRound(model, plan, ranges, feeds, { iterations: 307 })).report.layers[0];
  assert.equal(odd.loss.length, 11);
  assert.ok((odd.outputSqnr.after as number) > (layer.outputSqnr.before as number) + 0.5, `307 iterations: ${odd.outputSqnr.after} dB`);

  // The reported output SQNR is the conv's, measured: the float conv against the converted one on its quantized input, before its output is quantized.
  const nearest = convertModel(view, plan, ranges);
  const rounded = convertModel(view, plan, ranges, result.rounding);
  const run = async (m: typeof model) => {
    const s = await ort.InferenceSession.create(encodeModel(m), numericsOptions('reference'));
    const outs = [];
    for (const f of feeds) outs.push((await s.run({ x: new ort.Tensor('float32', f.x.data as Float32Array, f.x.dims) })).y.data as Float32Array);
    return outs;
  };
  const measured = async (m: typeof model) => {
    const [ref, got] = [await run(model), await run(m)];
    let signal = 0;
    let noise = 0;
    ref.forEach((r, b) => r.forEach((v, i) => {
      signal += v * v;
      noise += (v - got[b][i]) ** 2;
    }));
    return 10 * Math.log10(signal / noise);
  };
  const layerOnly = (converted: typeof model, output: 'y' | 'weight') => {
    const graph = converted.graph!;
    const conv = graph.node.find((n) => n.opType === 'Conv')!;
    const dq = graph.node.find((n) => n.opType === 'DequantizeLinear' && n.input[0].startsWith('w_'))!;
    const before = graph.node.slice(0, graph.node.indexOf(conv));
    const nodes = output === 'y' ? [...before, onnx.NodeProto.create({ ...conv, output: ['y'] })] : [dq];
    const out = output === 'y' ? graph.output[0] : typedValueInfo(dq.output[0], DataType.FLOAT);
    return onnx.ModelProto.create({ ...converted, graph: onnx.GraphProto.create({ ...graph, node: nodes, output: [out] }) });
  };
  assert.ok(Math.abs(await measured(layerOnly(nearest.model, 'y')) - (layer.outputSqnr.before as number)) < 0.01, 'nearest: reported = measured');
  assert.ok(Math.abs(await measured(layerOnly(rounded.model, 'y')) - (layer.outputSqnr.after as number)) < 0.01, 'AdaRound: reported = measured');
  const weight = async (m: typeof model) => {
    const s = await ort.InferenceSession.create(encodeModel(layerOnly(m, 'weight')));
    return Object.values(await s.run({ x: new ort.Tensor('float32', feeds[0].x.data as Float32Array, feeds[0].x.dims) }))[0].data as Float32Array;
  };
  const [a, b] = [await weight(nearest.model), await weight(rounded.model)];
  const scale = tensorToFloat32(nearest.model.graph!.initializer.find((t) => t.name.startsWith('w_scale'))!)[0];
  assert.equal(a.length, 270);
  assert.ok(a.every((v, i) => Math.abs(v - b[i]) <= scale * 1.0001), 'each weight moves by at most one grid step');
  assert.ok(a.some((v, i) => v !== b[i]));
  // Conversions keep the weights they quantized, by grid and rounding: converted again, each gives what it gave, and another grid its own.
  assert.deepEqual(await weight(convertModel(view, plan, ranges).model), a);
  assert.deepEqual(await weight(convertModel(view, plan, ranges, result.rounding).model), b);
  const perChannel = convertModel(view, planQuantization(view, recipeFor('cpu', 'a8w8')), ranges, result.rounding).model;
  assert.equal(tensorToFloat32(perChannel.graph!.initializer.find((t) => t.name.startsWith('w_scale'))!).length, 5, 'per channel: a scale per output channel');
  assert.ok((await weight(perChannel)).some((v, i) => v !== a[i] && v !== b[i]), 'the per-tensor rounding does not apply on the per-channel grid');
});

test('quantize --adaround on the trained MNIST CNN, per-tensor int8: every layer\'s output error falls, accuracy holds and output SQNR rises on held-out digits', async () => {
  const dir = tempDir('adaround-mnist');
  const base = { ...recipeFor('cpu', 'a8w8'), granularity: 'per-tensor' as const };
  const job = { model: path.join(MNIST, 'model.onnx'), calibration: path.join(MNIST, 'calib.npy'), evaluation: path.join(MNIST, 'eval.npy'), labels: path.join(MNIST, 'eval_labels.npy'), latency: false, saturationFix: false };
  const plain = (await quantize({ ...job, recipe: base, out: path.join(dir, 'plain.onnx') })).report;
  const rounded = (await quantize({ ...job, recipe: { ...base, algorithms: { adaround: { iterations: 300 } } }, out: path.join(dir, 'adaround.onnx') })).report;
  const a = rounded.algorithms!.adaround!;
  assert.deepEqual(a.layers.map((l) => l.node), ['/conv1/Conv', '/conv2/Conv', '/fc1/Gemm', '/fc2/Gemm']);
  for (const l of a.layers) assert.ok((l.outputSqnr.after as number) >= (l.outputSqnr.before as number), `${l.node}: ${l.outputSqnr.before} → ${l.outputSqnr.after} dB`);
  assert.equal(a.iterations, 300);
  assert.ok(rounded.metrics!.accuracy >= plain.metrics!.accuracy - 0.005, `accuracy ${plain.metrics!.accuracy} → ${rounded.metrics!.accuracy}`);
  assert.ok((rounded.outputs[0].sqnr as number) > (plain.outputs[0].sqnr as number), `output SQNR ${plain.outputs[0].sqnr} → ${rounded.outputs[0].sqnr} dB`);
  assert.match(htmlReport(rounded), /AdaRound \(4 layers, 300 iterations each/);

  // A re-run from the saved ranges (a layer kept in float with its node, as the layer panel does) converts with the saved rounding instead of learning it again.
  const ranges = path.join(dir, 'adaround.ranges.json');
  assert.equal(Object.keys(JSON.parse(fs.readFileSync(ranges, 'utf8')).adaround.weights).length, 4);
  const fc2 = rounded.layers.find((l) => l.node === '/fc2/Gemm')!.name;
  const rerun = (await quantize({ ...job, calibration: undefined, ranges, recipe: { ...base, algorithms: { adaround: { iterations: 300 } }, overrides: { [fc2]: { float: true } }, excludeNodes: ['/fc2/Gemm'] }, out: path.join(dir, 'rerun.onnx') })).report;
  assert.equal(rerun.algorithms!.adaround!.reusedFrom, ranges);
  assert.ok(rerun.algorithms!.without, 'without CLE, the ranges file alone gives the baseline');
  assert.deepEqual(rerun.algorithms!.adaround!.layers.map((l) => l.node), ['/conv1/Conv', '/conv2/Conv', '/fc1/Gemm'], 'fc2 is in float now');
  const weights = (file: string) => new Map(loadModel(file).model.graph!.initializer.filter((t) => t.name.endsWith('_quantized')).map((t) => [t.name, Buffer.from(t.rawData).toString('hex')]));
  const [first, again] = [weights(path.join(dir, 'adaround.onnx')), weights(path.join(dir, 'rerun.onnx'))];
  for (const [name, bytes] of again) assert.equal(bytes, first.get(name), `${name}: the same integers as the run that learned them`);
  assert.ok(again.size >= 3);
  // Another grid (per-channel) is not the one the rounding was learned on: without calibration samples to learn a new one, the job says so.
  await assert.rejects(quantize({ ...job, calibration: undefined, ranges, recipe: { ...base, granularity: 'per-channel', algorithms: { adaround: { iterations: 300 } } }, out: path.join(dir, 'other.onnx') }),
    /AdaRound learns from calibration samples: pass --calibration with the saved ranges/);
});

test('a repair tries AdaRound and bias correction before moving layers: on MNIST per-tensor it meets an output-SQNR target with every layer still quantized', async () => {
  const dir = tempDir('adaround-repair');
  const recipe = { ...recipeFor('cpu', 'a8w8'), granularity: 'per-tensor' as const };
  const job = { model: path.join(MNIST, 'model.onnx'), calibration: path.join(MNIST, 'calib.npy'), evaluation: path.join(MNIST, 'eval.npy'), latency: false, saturationFix: false };
  // Reference numerics: the search's figures are the same on a CPU whose int8 kernels saturate.
  const progress: Progress[] = [];
  const repaired = (await quantize({ ...job, recipe, target: { kind: 'sqnr', value: 39 }, numerics: 'reference', out: path.join(dir, 'repaired.onnx'), onProgress: (p) => progress.push(p) })).report;
  const r = repaired.repair!;
  assert.ok(r.met, r.reason);
  assert.ok((r.before.outputSqnr as number) < 39, `before: ${r.before.outputSqnr} dB`);
  // MSE ranges gain 0.2 dB on the 32 search digits, short of 39 dB; AdaRound, learned on the job's
  // own min/max ranges rather than on those, meets it.
  assert.deepEqual(r.changes.map((c) => c.action), ['algorithm:adaround'], r.changes.map((c) => c.why).join('; '));
  assert.equal(r.cost.unitsChanged, 0);
  // The search's AdaRound trial shows its layers on the search's bar, counted as layers.
  const trial = progress.filter((p) => p.stage === 'sensitivity' && p.unit === 'layers');
  assert.deepEqual(trial.map((p) => `${p.done}/${p.total}`), ['0/4', '1/4', '2/4', '3/4', '4/4']);
  assert.equal(countedUnit('sensitivity', trial[0].unit), 'layers');
  assert.deepEqual(repaired.recipe.algorithms, { adaround: { iterations: adaRoundIterations('per-tensor') } }, 'the written recipe reproduces it');
  // The job converts with the rounding the search learned rather than learning it again.
  assert.equal(repaired.algorithms!.adaround!.layers.length, 4);
  assert.ok((repaired.outputs[0].sqnr as number) > 37.5, `output SQNR on the 500 digits ${repaired.outputs[0].sqnr} dB`);
});
