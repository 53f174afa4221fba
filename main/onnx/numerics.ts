// Sessions in named numerics, and what this machine's runtime does to int8 arithmetic.
//
// ONNX Runtime fuses DequantizeLinear → op → QuantizeLinear groups into integer kernels
// (QLinearConv, MatMulIntegerToFloat, QLinearSoftmax…). Those are what a CPU deployment runs, but
// on x86 without VNNI their u8×s8 products go through VPMADDUBSW, which saturates each pair of
// products at 16 bits: the figures then measure this host's kernels, not quantization. With
// `session.disable_quant_qdq` the same graph runs as written, which is the reference.
import * as os from 'node:os';
import * as ort from 'onnxruntime-node';
import type { HostNumerics, Numerics } from '../../shared/numerics';
import { typedValueInfo } from './edit';
import { encodeModel } from './model';
import { DataType, onnx } from './proto';
import { floatTensor, makeTensor } from './tensor';
import { firstLine } from './session';

export function numericsOptions(numerics: Numerics): ort.InferenceSession.SessionOptions {
  switch (numerics) {
    case 'reference': return { extra: { session: { disable_quant_qdq: '1' } } };
    case 'ort-cpu': return {};
    case 'webgpu': return { executionProviders: ['webgpu'] };
  }
}

/** Reduction length of the probe: 32 pairs of 255 × 127, each pair 64770 against int16's 32767. */
const PROBE_K = 64;
/** The probe's Conv output scale: its exact sum lands on the uint8 grid at 253, a saturated one at 128. */
const PROBE_OUT_SCALE = 8192;

/**
 * Exact answers of the probe model, by hand: every input 255 (uint8, scale 1), every weight 127
 * (int8, scale 1), reduced over PROBE_K. MatMul's output stays float; Conv's is requantized.
 */
export function probeExpected(): number[] {
  const sum = 255 * 127 * PROBE_K;
  return [sum, Math.min(255, Math.round(sum / PROBE_OUT_SCALE)) * PROBE_OUT_SCALE];
}

/** A QDQ MatMul (fused into MatMulIntegerToFloat) and a QDQ Conv (fused into QLinearConv) over the same u8 × s8 values. */
export function probeModel(): onnx.ModelProto {
  const node = (op: string, input: string[], output: string) => onnx.NodeProto.create({ opType: op, input, output: [output], name: output });
  const graph = onnx.GraphProto.create({
    name: 'int8-saturation-probe',
    input: [typedValueInfo('x_mm', DataType.FLOAT, [1, PROBE_K]), typedValueInfo('x_conv', DataType.FLOAT, [1, PROBE_K, 1, 1])],
    output: [typedValueInfo('y_mm', DataType.FLOAT), typedValueInfo('y_conv', DataType.FLOAT)],
    initializer: [
      floatTensor('one', [], Float32Array.of(1)), floatTensor('out_scale', [], Float32Array.of(PROBE_OUT_SCALE)),
      makeTensor('zp_u8', DataType.UINT8, [], Uint8Array.of(0)), makeTensor('zp_s8', DataType.INT8, [], Int8Array.of(0)),
      makeTensor('w_mm', DataType.INT8, [PROBE_K, 1], new Int8Array(PROBE_K).fill(127)),
      makeTensor('w_conv', DataType.INT8, [1, PROBE_K, 1, 1], new Int8Array(PROBE_K).fill(127)),
    ],
    node: [
      node('QuantizeLinear', ['x_mm', 'one', 'zp_u8'], 'x_mm_q'), node('DequantizeLinear', ['x_mm_q', 'one', 'zp_u8'], 'x_mm_dq'),
      node('DequantizeLinear', ['w_mm', 'one', 'zp_s8'], 'w_mm_dq'), node('MatMul', ['x_mm_dq', 'w_mm_dq'], 'y_mm'),
      node('QuantizeLinear', ['x_conv', 'one', 'zp_u8'], 'x_conv_q'), node('DequantizeLinear', ['x_conv_q', 'one', 'zp_u8'], 'x_conv_dq'),
      node('DequantizeLinear', ['w_conv', 'one', 'zp_s8'], 'w_conv_dq'), node('Conv', ['x_conv_dq', 'w_conv_dq'], 'y_conv_f'),
      node('QuantizeLinear', ['y_conv_f', 'out_scale', 'zp_u8'], 'y_conv_q'), node('DequantizeLinear', ['y_conv_q', 'out_scale', 'zp_u8'], 'y_conv'),
    ],
  });
  return onnx.ModelProto.create({ irVersion: 8, producerName: 'quant-studio', graph, opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: 13 })] });
}

/** Runs the probe with ONNX Runtime's fusions on, as a CPU deployment would. */
export async function runProbe(options: ort.InferenceSession.SessionOptions = {}): Promise<HostNumerics> {
  const session = await ort.InferenceSession.create(encodeModel(probeModel()), { graphOptimizationLevel: 'all', ...options });
  try {
    const out = await session.run({
      x_mm: new ort.Tensor('float32', new Float32Array(PROBE_K).fill(255), [1, PROBE_K]),
      x_conv: new ort.Tensor('float32', new Float32Array(PROBE_K).fill(255), [1, PROBE_K, 1, 1]),
    });
    const fused = [(out.y_mm as ort.Tensor).data[0] as number, (out.y_conv as ort.Tensor).data[0] as number];
    const expected = probeExpected();
    return { cpu: cpuName(), int8Saturates: fused.some((v, i) => v !== expected[i]), probe: { expected, fused } };
  } finally {
    await session.release();
  }
}

export function cpuName(): string {
  return os.cpus()[0]?.model.trim() || os.arch();
}

let host: Promise<HostNumerics> | undefined;

/** This machine's answer, measured once per process. */
export function hostNumerics(): Promise<HostNumerics> {
  host ??= runProbe().catch((err: Error) => {
    host = undefined;
    throw new Error(`the int8 saturation probe failed to run in ONNX Runtime: ${firstLine(err.message)}`);
  });
  return host;
}

let webgpu: Promise<{ available: true } | { available: false; reason: string }> | undefined;

/** Whether ONNX Runtime's bundled WebGPU provider finds a GPU adapter here; asked once per process. */
export function webgpuAdapter(): Promise<{ available: true } | { available: false; reason: string }> {
  webgpu ??= ort.InferenceSession.create(encodeModel(probeModel()), numericsOptions('webgpu')).then(
    async (session) => {
      await session.release();
      return { available: true } as const;
    },
    (err: Error) => ({ available: false, reason: firstLine(err.message).replace(/^.*?(Failed to get a WebGPU adapter)/, '$1') } as const),
  );
  return webgpu;
}
