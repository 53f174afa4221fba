// GPTQ (Frantar et al., 2022) for MatMulNBits weights: each layer's weight is quantized one input
// row at a time, and the error each row's rounding leaves is pushed onto the rows not yet quantized
// through the inverse Hessian of the layer's least-squares loss, H = Σ x xᵀ over the calibration
// inputs x of the layer. Round-to-nearest minimizes each weight's error; GPTQ the layer output's.
import * as ort from 'onnxruntime-node';
import type { GptqSettings } from '../../shared/recipe';
import type { Feed } from '../base/feed';
import { int64Tensor } from '../onnx/tensor';
import { intAttr, intsAttr, makeNode, typedValueInfo } from '../onnx/edit';
import { DataType, onnx } from '../onnx/proto';
import { createSession, floatData, run, runAdditions, type Additions } from '../onnx/session';
import { weightAsKN, type LinearWeight } from '../plan/plan';
import { groupParams, nbitsBlockParams, nbitsLevel, packMatMulNBits, quantizeGrouped, quantizeValue, weightGrouping, type MatMulNBitsWeight, type WeightGrid } from '../plan/qmath';

/** The recipe's GPTQ settings with the MatMulNBits grid: blocks along K, symmetric or not. The damping keeps H's inverse finite where inputs are collinear. */
export interface GptqOptions extends GptqSettings {
  blockSize: number;
  symmetric: boolean;
}

/** Rows quantized before their errors reach the rest of the weight at once: a multiple of every block size, so a block's rows see all earlier updates. */
const LAZY_ROWS = 128;

/** Σ x xᵀ of a layer input over every row x (the input's last axis), and how many rows it summed. */
export interface InputMoments {
  h: Float64Array;
  k: number;
  rows: number;
}

/**
 * H of each input tensor in `inputs` (name → K, its last dim) over `batches`: one session of the
 * float model up to those tensors, each reshaped to [rows, K] and multiplied by its transpose in
 * ONNX Runtime, summed across batches in float64. Memory: the K×K sums and one batch, never all the inputs.
 */
export async function inputMoments(model: onnx.ModelProto, inputs: ReadonlyMap<string, number>, batches: AsyncIterable<Feed>, signal?: AbortSignal): Promise<Map<string, InputMoments>> {
  const additions: Additions = { nodes: [], initializers: [], outputs: [] };
  const names = [...inputs.keys()];
  names.forEach((name, i) => {
    const k = inputs.get(name)!;
    const p = `qs_gptq_${i}`;
    additions.initializers.push(int64Tensor(`${p}_shape`, [2], [-1, k]));
    additions.nodes.push(
      makeNode('Reshape', [name, `${p}_shape`], [`${p}_rows`]),
      makeNode('Transpose', [`${p}_rows`], [`${p}_cols`], [intsAttr('perm', [1, 0])]),
      makeNode('MatMul', [`${p}_cols`, `${p}_rows`], [`${p}_h`]),
      makeNode('Shape', [`${p}_rows`], [`${p}_n`]),
    );
    additions.outputs.push(typedValueInfo(`${p}_h`, DataType.FLOAT, [k, k]), typedValueInfo(`${p}_n`, DataType.INT64, [2]));
  });
  const sums = names.map((name) => ({ h: new Float64Array(inputs.get(name)! ** 2), k: inputs.get(name)!, rows: 0 }));
  await runAdditions(model, additions, batches, 'model that measures the layers\' input moments for GPTQ', (out) => sums.forEach((sum, i) => {
    const h = floatData(out[`qs_gptq_${i}_h`] as ort.Tensor, `qs_gptq_${i}_h`);
    for (let j = 0; j < h.length; j++) sum.h[j] += h[j];
    sum.rows += Number((out[`qs_gptq_${i}_n`] as ort.Tensor).data[0]);
  }), signal);
  return new Map(names.map((name, i) => [name, sums[i]]));
}

/** In place: the lower Cholesky factor L of the symmetric positive definite a (n×n), L Lᵀ = a; false if a is not positive definite. */
function cholesky(a: Float64Array, n: number): boolean {
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j];
    for (let p = 0; p < j; p++) d -= a[j * n + p] * a[j * n + p];
    if (!(d > 0)) return false;
    const l = Math.sqrt(d);
    a[j * n + j] = l;
    for (let i = j + 1; i < n; i++) {
      let s = a[i * n + j];
      for (let p = 0; p < j; p++) s -= a[i * n + p] * a[j * n + p];
      a[i * n + j] = s / l;
    }
    for (let i = 0; i < j; i++) a[i * n + j] = 0;
  }
  return true;
}

/**
 * U, upper triangular with Uᵀ U = H⁻¹, from H (n×n, damped): the rows of U are what GPTQ spreads a
 * row's error with. With P the reversal of rows, P H P = L Lᵀ gives H⁻¹ = (P L⁻¹ P)ᵀ (P L⁻¹ P), so
 * U = P L⁻¹ P: one Cholesky factor and one triangular inverse, never H⁻¹ itself.
 */
function inverseFactor(h: Float64Array, n: number): Float64Array | undefined {
  // K×K arrays dominate GPTQ's memory (11008² doubles are 1 GB): L's buffer is reused for U.
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) l[i * n + j] = h[(n - 1 - i) * n + (n - 1 - j)];
  if (!cholesky(l, n)) return undefined;
  // M = L⁻¹ row by row (forward substitution on the identity): row i only reads rows above it, contiguously.
  const m = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const row = i * n;
    m[row + i] = 1;
    for (let p = 0; p < i; p++) {
      const f = l[row + p];
      if (f === 0) continue;
      const src = p * n;
      for (let c = 0; c <= p; c++) m[row + c] -= f * m[src + c];
    }
    const d = 1 / l[row + i];
    for (let c = 0; c <= i; c++) m[row + c] *= d;
  }
  const u = l;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) u[i * n + j] = m[(n - 1 - i) * n + (n - 1 - j)];
  return u;
}

export interface GptqLayerResult<T> {
  weight: T;
  /** The layer's output SQNR on the calibration inputs (from H: tr(W H Wᵀ) / tr(D H Dᵀ)), to nearest and with GPTQ, dB. */
  outputSqnr: { nearest: number; gptq: number };
  /** Where H was singular even after damping: the layer fell back to nearest rounding. */
  fellBack?: string;
}

/** One session for every layer: the quadratic forms in float32, in ONNX Runtime's GEMM. */
let powersSession: Promise<ort.InferenceSession> | undefined;

function powersModel(): onnx.ModelProto {
  const input = (name: string, shape: string[]) => onnx.ValueInfoProto.create({
    name, type: onnx.TypeProto.create({ tensorType: onnx.TypeProto.Tensor.create({ elemType: DataType.FLOAT, shape: onnx.TensorShapeProto.create({ dim: shape.map((d) => onnx.TensorShapeProto.Dimension.create({ dimParam: d })) }) }) }),
  });
  return onnx.ModelProto.create({
    irVersion: 8, opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: 13 })],
    graph: onnx.GraphProto.create({
      name: 'gptq_output_powers',
      input: [input('d', ['t', 'n', 'k']), input('h', ['k', 'k'])],
      output: [typedValueInfo('powers', DataType.FLOAT)],
      initializer: [int64Tensor('axes', [2], [1, 2])],
      node: [makeNode('MatMul', ['d', 'h'], ['dh']), makeNode('Mul', ['dh', 'd'], ['dhd']), makeNode('ReduceSum', ['dhd', 'axes'], ['powers'], [intAttr('keepdims', 0)])],
    }),
  });
}

/**
 * tr(D H Dᵀ) over B[K, N] (row-major) for D = a and for D = a − each of `approximations`: the
 * layer's summed squared output, and its squared output error with each (float32, in ONNX Runtime).
 */
async function outputPowers(h: Float64Array, k: number, n: number, a: Float32Array, approximations: readonly Float32Array[]): Promise<number[]> {
  const t = approximations.length + 1;
  const d = new Float32Array(t * n * k);
  for (let r = 0; r < k; r++) {
    for (let col = 0; col < n; col++) {
      const v = a[r * n + col];
      d[col * k + r] = v;
      for (let x = 1; x < t; x++) d[(x * n + col) * k + r] = v - approximations[x - 1][r * n + col];
    }
  }
  const session = await (powersSession ??= createSession(powersModel(), 'model that measures GPTQ\'s output error'));
  const out = await run(session, { d: new ort.Tensor('float32', d, [t, n, k]), h: new ort.Tensor('float32', Float32Array.from(h), [k, k]) }, 'model that measures GPTQ\'s output error');
  return Array.from(floatData(out.powers as ort.Tensor, 'powers'));
}

function db(power: number, noise: number): number {
  return noise <= 0 ? Infinity : 10 * Math.log10(power / noise);
}

/**
 * The integer grid GPTQ rounds onto, per output column c and input row r of B[K, N]: the group
 * whose scale and zero point a weight takes, and the level a value rounds to. `refresh`, where
 * given, sets a group's parameters from the weight as updated when the group's first row comes
 * (MatMulNBits blocks without act-order); otherwise they are fixed from the float weight.
 */
interface Grid {
  groupOf(c: number, r: number): number;
  scales: Float32Array;
  zeroPoints: Int32Array;
  level(v: number, scale: number, zeroPoint: number): number;
  refresh?: { rows: number; set(group: number, first: number, value: (r: number) => number): void };
}

/** The levels GPTQ gives B[K, N] on `grid`, [N, K] (column c's row r at c·K + r); undefined where H is singular even after damping. */
function gptqLevels(b: Float32Array, k: number, n: number, moments: InputMoments, options: GptqSettings, grid: Grid): Int32Array | undefined {
  // H is damped in place: the caller's moments stay as measured, for the figures.
  const h = Float64Array.from(moments.h);
  // W[N, K]: row c is column c of B.
  const w = new Float64Array(n * k);
  for (let r = 0; r < k; r++) for (let c = 0; c < n; c++) w[c * k + r] = b[r * n + c];
  // An input that is always zero carries no information: its weights cannot matter, and H needs a non-zero diagonal.
  let diagSum = 0;
  for (let i = 0; i < k; i++) {
    if (h[i * k + i] === 0) {
      h[i * k + i] = 1;
      for (let c = 0; c < n; c++) w[c * k + i] = 0;
    }
    diagSum += h[i * k + i];
  }
  const order = Array.from({ length: k }, (_, i) => i);
  if (options.actOrder) order.sort((x, y) => h[y * k + y] - h[x * k + x] || x - y);
  // H in the rows' order, damped: a second K×K array only where act-order reorders it.
  const damp = options.damp * diagSum / k;
  const hp = options.actOrder ? new Float64Array(k * k) : h;
  if (options.actOrder) for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) hp[i * k + j] = h[order[i] * k + order[j]];
  for (let i = 0; i < k; i++) hp[i * k + i] += damp;
  const u = inverseFactor(hp, k);
  if (!u) return undefined;
  const wp = new Float64Array(n * k);
  for (let c = 0; c < n; c++) for (let i = 0; i < k; i++) wp[c * k + i] = w[c * k + order[i]];
  const inverse = new Int32Array(k);
  order.forEach((orig, i) => { inverse[orig] = i; });

  const refresh = options.actOrder ? undefined : grid.refresh;
  const levels = new Int32Array(n * k);
  const lazy = Math.max(LAZY_ROWS, refresh?.rows ?? 0);
  const err = new Float64Array(n * lazy);
  for (let i1 = 0; i1 < k; i1 += lazy) {
    const i2 = Math.min(k, i1 + lazy);
    for (let i = i1; i < i2; i++) {
      const orig = order[i];
      // Without act-order rows come in order, so a group's first row is where its parameters are set.
      if (refresh && orig % refresh.rows === 0) {
        for (let c = 0; c < n; c++) refresh.set(grid.groupOf(c, orig), orig, (r) => wp[c * k + inverse[r]]);
      }
      const d = u[i * k + i];
      for (let c = 0; c < n; c++) {
        const g = grid.groupOf(c, orig);
        const v = wp[c * k + i];
        const q = grid.level(v, grid.scales[g], grid.zeroPoints[g]);
        levels[c * k + orig] = q;
        const e = (v - Math.fround((q - grid.zeroPoints[g]) * grid.scales[g])) / d;
        err[c * lazy + (i - i1)] = e;
        for (let j = i + 1; j < i2; j++) wp[c * k + j] -= e * u[i * k + j];
      }
    }
    // The lazy block's errors reach every later row at once.
    for (let c = 0; c < n; c++) {
      for (let i = i1; i < i2; i++) {
        const e = err[c * lazy + (i - i1)];
        if (e === 0) continue;
        for (let j = i2; j < k; j++) wp[c * k + j] -= e * u[i * k + j];
      }
    }
  }
  return levels;
}

/** The layer's output SQNR to nearest and with GPTQ; nearest kept, with why, where GPTQ ends worse or could not run. */
async function judged<T>(b: Float32Array, k: number, n: number, moments: InputMoments, nearest: { weight: T; dequantized: Float32Array },
  gptq: { weight: T; dequantized: Float32Array } | undefined): Promise<GptqLayerResult<T>> {
  const [power, nearestError, gptqError] = await outputPowers(moments.h, k, n, b, [nearest.dequantized, (gptq ?? nearest).dequantized]);
  const [nearestDb, gptqDb] = [db(power, nearestError), db(power, gptqError)];
  if (!gptq) return { weight: nearest.weight, outputSqnr: { nearest: nearestDb, gptq: nearestDb }, fellBack: 'its input moments are singular even after damping; rounded to nearest' };
  // The loss GPTQ minimizes is H's; where it ends worse than nearest rounding (a damped H far from the data's), nearest is kept.
  if (gptqDb < nearestDb) return { weight: nearest.weight, outputSqnr: { nearest: nearestDb, gptq: gptqDb }, fellBack: `GPTQ's output SQNR ${gptqDb.toFixed(1)} dB was below nearest rounding's; rounded to nearest` };
  return { weight: gptq.weight, outputSqnr: { nearest: nearestDb, gptq: gptqDb } };
}

/**
 * GPTQ of B[K, N] (row-major, y = x·B) against H = Σ x xᵀ (K×K), into MatMulNBits' 4-bit blocks of
 * `blockSize` along K. With act-order the block scales are fixed from the float weight first (a
 * block's rows are then quantized out of order); without it, each block's scale is set from the
 * weight as updated when its first row comes.
 */
export async function gptqMatMulNBits(b: Float32Array, k: number, n: number, moments: InputMoments, options: GptqOptions, nearest: MatMulNBitsWeight): Promise<GptqLayerResult<MatMulNBitsWeight>> {
  const { blockSize, symmetric } = options;
  const blocks = Math.ceil(k / blockSize);
  const scales = new Float32Array(n * blocks);
  const zeroPoints = new Int32Array(n * blocks);
  const setParams = (group: number, first: number, value: (r: number) => number) => {
    let min = 0;
    let max = 0;
    for (let r = first; r < Math.min(k, first + blockSize); r++) {
      const v = value(r);
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const p = nbitsBlockParams(min, max, symmetric);
    scales[group] = p.scale;
    zeroPoints[group] = p.zeroPoint;
  };
  const groupOf = (c: number, r: number) => c * blocks + Math.floor(r / blockSize);
  for (let c = 0; c < n; c++) for (let blk = 0; blk < blocks; blk++) setParams(c * blocks + blk, blk * blockSize, (r) => b[r * n + c]);
  const levels = gptqLevels(b, k, n, moments, options, { groupOf, scales, zeroPoints, level: nbitsLevel, refresh: { rows: blockSize, set: setParams } });
  const weight = levels && packMatMulNBits(Uint8Array.from(levels), scales, Uint8Array.from(zeroPoints), k, n, blockSize, symmetric);
  return judged(b, k, n, moments, { weight: nearest, dequantized: nearest.dequantized }, weight && { weight, dequantized: weight.dequantized });
}

/**
 * GPTQ of a weight quantized on its DequantizeLinear grid (8-bit weight-only: per channel, per
 * tensor or per block), the grid's scales and zero points fixed from the float weight as nearest
 * rounding sets them. `data` is the initializer as stored ([K, N], or [N, K] for Gemm's transB);
 * the levels come back in that layout, for convert.
 */
export async function gptqOnGrid(data: Float32Array, linear: LinearWeight, moments: InputMoments, options: GptqSettings, spec: WeightGrid): Promise<GptqLayerResult<Int32Array>> {
  const { k, n } = linear;
  const dims = linear.transposed ? [n, k] : [k, n];
  const at = (c: number, r: number) => (linear.transposed ? c * k + r : r * n + c);
  const grouping = weightGrouping(dims, spec);
  const { scales, zeroPoints } = groupParams(data, spec.type, spec.symmetric, grouping, spec.range);
  const [qmin, qmax] = spec.range;
  const b = weightAsKN(data, linear);
  const inLayout = (levels: Int32Array | ArrayLike<number>, ofKN: boolean) => {
    const out = new Int32Array(k * n);
    for (let c = 0; c < n; c++) for (let r = 0; r < k; r++) out[at(c, r)] = ofKN ? levels[r * n + c] : levels[c * k + r];
    return out;
  };
  const dequantize = (levels: Int32Array) => {
    const out = new Float32Array(k * n);
    for (let c = 0; c < n; c++) for (let r = 0; r < k; r++) {
      const g = grouping.of(at(c, r));
      out[r * n + c] = Math.fround((levels[at(c, r)] - zeroPoints[g]) * scales[g]);
    }
    return out;
  };
  const nearestLevels = Int32Array.from(quantizeGrouped(data, spec.type, spec.symmetric, grouping, spec.range).values);
  const grid: Grid = {
    groupOf: (c, r) => grouping.of(at(c, r)), scales, zeroPoints: Int32Array.from(zeroPoints),
    level: (v, scale, zeroPoint) => quantizeValue(v, scale, zeroPoint, qmin, qmax),
  };
  const found = gptqLevels(b, k, n, moments, options, grid);
  const levels = found && inLayout(found, false);
  return judged(b, k, n, moments, { weight: nearestLevels, dequantized: dequantize(nearestLevels) }, levels && { weight: levels, dequantized: dequantize(levels) });
}
