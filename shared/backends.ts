// Backend capability records: the facts the engine's quantizers and the UI both read.
// Each record is what the target's own quantizer and execution-provider documentation say it runs,
// on a base of what most targets do; main/plan/ holds the rules data cannot say (the cpu backend on
// a saturating host) and main/export/ the lowerings a record names.
import { quantTypeBits, type Granularity, type QuantKind, type QuantType, type Recipe } from './recipe';

export interface Preset {
  name: string;
  title: string;
  recipe: Partial<Recipe>;
}

/** Output quantization the hardware fixes for an op, whatever calibration says. */
export interface FixedOutput {
  op: string;
  type: QuantType;
  scale: number;
  zeroPoint: number;
}

/** Where nodes run once the model is on the target. */
export interface DeviceRules {
  /** The accelerator's name in the pre-flight report ("Hexagon HTP", "Neural Engine / GPU"…). */
  name: string;
  /** Ops the device runs in float when they are not quantized; 'all', or 'none' when a float op cannot run at all. */
  floatOps: readonly string[] | 'all' | 'none';
  /** Where a node the device cannot run goes: the host CPU, or nowhere (the export is refused). */
  fallback: 'cpu' | 'error';
  /** The precision the device runs its unquantized ops in ("fp16" on the Hexagon HTP). */
  floatPrecision: 'float' | 'fp16';
  /** The device compiles fixed shapes: dynamic dimensions must be pinned before it can take the graph. */
  staticShapes: boolean;
  /** The device has no 64-bit integer tensors (shape arithmetic stays on the CPU unless folded away). */
  int64: boolean;
}

/**
 * ort-optimized: the model after ONNX Runtime's own graph optimizer (fused integer kernels).
 * qoperator: QLinearConv/QLinearMatMul in standard ONNX ops. integer-io: int8 inputs and outputs
 * with their scales in a JSON for the firmware.
 */
export type Lowering = 'ort-optimized' | 'qoperator' | 'integer-io';

export interface BackendCapability {
  name: string;
  title: string;
  description: string;
  kinds: QuantKind[];
  activationTypes: QuantType[];
  weightTypes: QuantType[];
  granularities: Granularity[];
  /** 'required': the backend only runs symmetric; 'optional': the recipe chooses. */
  activationSymmetry: 'required' | 'optional';
  weightSymmetry: 'required' | 'optional';
  /** Weights restricted to [-127, 127] so that int8 x int8 products cannot overflow the kernel's accumulators. */
  weightNarrowRange: boolean;
  /** 4-bit weights in a static (full-integer) graph, not only weight-only MatMulNBits. */
  staticInt4Weights: boolean;
  /** Op types quantized, per kind. */
  opTypes: Record<QuantKind, string[]>;
  /** Ops whose weights may take one scale per output channel; the others get one scale (absent: all). */
  perChannelOps?: string[];
  fixedOutputs: FixedOutput[];
  /**
   * 'inputs-and-outputs': every quantized op reads and writes quantized tensors. 'inputs': Q/DQ only
   * on the inputs of quantized ops; an op's output is quantized by whichever quantized op reads it.
   */
  placement: 'inputs-and-outputs' | 'inputs';
  /** The model's own inputs and outputs become integer tensors; firmware feeds and reads them with the recorded scale and zero point. */
  integerIO: boolean;
  /** Activation types a single tensor may be given by an override (16-bit for a sensitive layer). */
  overrideTypes: QuantType[];
  /** Whether a node may be kept in float. */
  keepFloat: boolean;
  /** Activation types that are always symmetric here (zero point 0), whatever the recipe says. */
  symmetricTypes: QuantType[];
  /**
   * Clamps folded into the quantization of the op before them where its range already clamps like
   * them (Conv → Relu as one quantized output): the backend's kernels fuse them so.
   */
  foldedClamps: Array<'Relu' | 'Clip'>;
  /** What the export writes besides the QDQ model (main/export/lowering.ts); qoperator only when asked. */
  lowerings: Lowering[];
  /**
   * The runtime the target deploys in that this machine may have: ONNX Runtime's own CPU kernels,
   * or its WebGPU provider. Absent for targets whose runtime is elsewhere (a phone, an NPU, an MCU).
   */
  localRuntime?: 'ort-cpu' | 'webgpu';
  device: DeviceRules;
  presets: Preset[];
  lowering: string;
  /** What the latency check measures for this backend. */
  latency: string;
  notes: string[];
}

/** Ops that only move or select data: their output keeps their input's quantization. */
export const DATA_MOVEMENT_OPS = ['Reshape', 'Transpose', 'Flatten', 'Squeeze', 'Unsqueeze', 'MaxPool', 'Slice', 'Gather',
  'Split', 'Identity', 'DepthToSpace', 'SpaceToDepth', 'Resize', 'Pad', 'Expand', 'Tile'];

const SHAPE_OPS = ['Reshape', 'Transpose', 'Flatten', 'Squeeze', 'Unsqueeze', 'Slice', 'Gather', 'Split', 'Identity',
  'DepthToSpace', 'SpaceToDepth', 'Resize', 'Pad'];

const CPU_STATIC = ['Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'Add', 'Mul', 'Concat', 'MaxPool', 'AveragePool',
  'GlobalAveragePool', 'Relu', 'Clip', 'LeakyRelu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Softmax',
  'LayerNormalization', 'InstanceNormalization', ...SHAPE_OPS, 'ArgMax'];

const XNNPACK_STATIC = ['Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'Add', 'Mul', 'Concat', 'MaxPool', 'AveragePool',
  'GlobalAveragePool', 'Relu', 'Clip', 'Sigmoid', 'Softmax', ...SHAPE_OPS.filter((op) => op !== 'Gather')];

// ONNX Runtime's QNN quantizer (get_qnn_qdq_config) quantizes every op but Cast; these are the ones
// the HTP runs in fixed point, from the QNN execution provider's operator table.
const QNN_STATIC = ['Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'Add', 'Sub', 'Mul', 'Div', 'Concat', 'MaxPool',
  'AveragePool', 'GlobalAveragePool', 'Relu', 'Clip', 'LeakyRelu', 'PRelu', 'Sigmoid', 'Tanh', 'HardSigmoid',
  'HardSwish', 'Gelu', 'Softmax', 'LayerNormalization', 'InstanceNormalization', 'ReduceMean', 'Max', 'Min', ...SHAPE_OPS];

const QNN_DEVICE_OPS = [...QNN_STATIC, 'Abs', 'And', 'ArgMax', 'ArgMin', 'BatchNormalization', 'Cast', 'Ceil', 'Cos',
  'CumSum', 'DequantizeLinear', 'Elu', 'Equal', 'Erf', 'Exp', 'Expand', 'Floor', 'GatherElements', 'GlobalMaxPool',
  'Greater', 'GreaterOrEqual', 'GridSample', 'Less', 'LessOrEqual', 'Log', 'LogSoftmax', 'LpNormalization', 'LRN', 'Mean',
  'Neg', 'Not', 'Or', 'Pow', 'QuantizeLinear', 'Reciprocal', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceSum', 'Round',
  'ScatterND', 'Sin', 'Sqrt', 'Sum', 'Tile', 'TopK', 'Where'];

const COREML_STATIC = ['Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'Add', 'Mul', 'Concat', 'MaxPool', 'AveragePool',
  'GlobalAveragePool', 'Relu', 'Clip', 'Sigmoid', ...SHAPE_OPS];

// ONNX Runtime's CoreML execution provider (ML Program) operator table.
const COREML_DEVICE_OPS = [...COREML_STATIC, 'ArgMax', 'BatchNormalization', 'Cast', 'DequantizeLinear', 'Div', 'Erf', 'Gelu',
  'GlobalMaxPool', 'GridSample', 'GroupNormalization', 'HardSigmoid', 'InstanceNormalization', 'LayerNormalization',
  'LeakyRelu', 'Max', 'Pow', 'PRelu', 'QuantizeLinear', 'Reciprocal', 'ReduceMax', 'ReduceMean', 'ReduceSum', 'Round',
  'Shape', 'Softmax', 'Sqrt', 'Sub', 'Tanh'];

// TensorRT's explicit quantization: Q/DQ in front of the layers it runs in int8.
const TENSORRT_STATIC = ['Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'AveragePool', 'GlobalAveragePool', 'Add', 'Concat'];

// What Arm's int8 runtimes (TFLite Micro with CMSIS-NN, Ethos-U Vela) run as integer kernels.
const MCU_STATIC = ['Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'Add', 'Sub', 'Mul', 'Concat', 'MaxPool', 'AveragePool',
  'GlobalAveragePool', 'ReduceMean', 'Relu', 'Clip', 'LeakyRelu', 'Sigmoid', 'Tanh', 'HardSwish', 'Softmax', ...SHAPE_OPS];

const WEBGPU_STATIC = ['Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'Add', 'Mul', 'Concat', 'MaxPool', 'AveragePool',
  'GlobalAveragePool', 'Relu', 'Clip', 'Sigmoid', 'Softmax', ...SHAPE_OPS];

const A8W8 = { kind: 'static', activationType: 'uint8', weightType: 'int8', granularity: 'per-channel', activationSymmetric: false, weightSymmetric: true } as const;

const CPU_LATENCY = 'Measured here: ONNX Runtime\'s CPU provider runs the exported model, so the latency check is the real figure.';
const elsewhere = (hw: string) => `Needs ${hw}: the latency check here runs the exported QDQ model on this machine's CPU, which says nothing about ${hw}.`;

/** What a record does not say is what most targets do. */
const DEFAULTS = {
  activationSymmetry: 'optional', weightSymmetry: 'required', weightNarrowRange: true, staticInt4Weights: false, fixedOutputs: [],
  placement: 'inputs-and-outputs', integerIO: false, keepFloat: true, symmetricTypes: [], foldedClamps: ['Relu', 'Clip'], lowerings: [],
} satisfies Partial<BackendCapability>;
const DEVICE_DEFAULTS = { fallback: 'cpu', floatPrecision: 'float', staticShapes: false, int64: false } satisfies Partial<DeviceRules>;

type Given = Omit<BackendCapability, keyof typeof DEFAULTS | 'device'> & Partial<Pick<BackendCapability, keyof typeof DEFAULTS>>
  & { device: Omit<DeviceRules, keyof typeof DEVICE_DEFAULTS> & Partial<DeviceRules> };

function record(given: Given): BackendCapability {
  return { ...DEFAULTS, ...given, device: { ...DEVICE_DEFAULTS, ...given.device } };
}

export const BACKENDS: BackendCapability[] = [
  record({
    name: 'cpu',
    title: 'ONNX Runtime CPU',
    description: 'ONNX Runtime\'s default CPU execution provider: QDQ groups become fused integer kernels (QLinearConv, MatMulInteger…).',
    kinds: ['static', 'dynamic', 'weight-only'],
    activationTypes: ['uint8', 'int8', 'uint16', 'int16'],
    weightTypes: ['int8', 'uint8', 'int16', 'int4', 'uint4'],
    granularities: ['per-tensor', 'per-channel', 'per-block'],
    weightSymmetry: 'optional',
    weightNarrowRange: false,
    opTypes: {
      static: CPU_STATIC,
      dynamic: ['MatMul', 'Gemm', 'Conv'],
      'weight-only': ['MatMul', 'Gemm', 'Conv'],
    },
    overrideTypes: ['uint8', 'int8', 'uint16', 'int16'],
    device: { name: 'CPU', floatOps: 'all', int64: true },
    lowerings: ['ort-optimized', 'qoperator'],
    localRuntime: 'ort-cpu',
    presets: [
      { name: 'a8w8', title: 'Static int8 (uint8 activations, int8 per-channel weights)', recipe: A8W8 },
      { name: 'dynamic-int8', title: 'Dynamic int8 (weights ahead of time, activations at run time)', recipe: { ...A8W8, kind: 'dynamic' } },
      { name: 'w4', title: '4-bit weight-only MatMul (MatMulNBits, block 32)', recipe: { kind: 'weight-only', weightType: 'int4', granularity: 'per-block', blockSize: 32, weightSymmetric: true } },
      { name: 'w8', title: '8-bit weight-only (int8 weights dequantized at run time)', recipe: { kind: 'weight-only', weightType: 'int8', granularity: 'per-channel', weightSymmetric: true } },
    ],
    lowering: 'The QDQ model, and the lowered model: the QDQ model after ONNX Runtime\'s own graph optimizer, where QDQ groups are fused integer kernels (QLinearConv, MatMulInteger…); optionally the QOperator form (QLinearConv/QLinearMatMul in standard ONNX).',
    latency: CPU_LATENCY,
    notes: [
      'Activations default to uint8 asymmetric, weights to int8 symmetric per channel, bias to int32 (ONNX Runtime\'s quantize_static defaults).',
      'reduceRange quantizes weights to 7 bits, one of ONNX Runtime\'s remedies for x86 CPUs without VNNI, whose fused u8×s8 kernels saturate; on such a CPU the studio uses the other, uint8 weights, by default: it keeps all 8 bits.',
      '4-bit weight-only uses com.microsoft MatMulNBits on MatMul with constant weights, blocks of 32, 64 or 128.',
    ],
  }),
  record({
    name: 'xnnpack',
    title: 'XNNPACK',
    description: 'Arm/x86 mobile CPUs through XNNPACK (ONNX Runtime\'s XNNPACK provider, ExecuTorch\'s XNNPACK delegate).',
    kinds: ['static', 'dynamic'],
    activationTypes: ['int8'],
    weightTypes: ['int8'],
    granularities: ['per-tensor', 'per-channel'],
    opTypes: {
      static: XNNPACK_STATIC,
      dynamic: ['MatMul', 'Gemm', 'Conv'],
      'weight-only': [],
    },
    overrideTypes: ['int8'],
    device: {
      name: 'XNNPACK',
      // ExecuTorch's XNNPACK partitioner's float operators, by their ONNX names.
      floatOps: ['Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'Add', 'Sub', 'Mul', 'Div', 'Concat', 'MaxPool', 'AveragePool',
        'GlobalAveragePool', 'ReduceMean', 'Relu', 'Clip', 'LeakyRelu', 'Elu', 'HardSwish', 'Sigmoid', 'Softmax', 'Abs', 'Neg',
        'Ceil', 'Floor', 'Sqrt', 'Max', 'Min', ...SHAPE_OPS.filter((op) => op !== 'Gather')],
    },
    presets: [
      { name: 'a8w8', title: 'Static int8 (int8 per-tensor activations, int8 symmetric per-channel weights)', recipe: { ...A8W8, activationType: 'int8' } },
      { name: 'dynamic-int8', title: 'Dynamic int8 (Conv, Gemm, MatMul)', recipe: { ...A8W8, kind: 'dynamic', activationType: 'int8' } },
    ],
    lowering: 'QDQ ONNX model for ONNX Runtime\'s XNNPACK provider (the same graph ExecuTorch\'s XNNPACK quantizer produces).',
    latency: elsewhere('an Arm device with XNNPACK'),
    notes: [
      'Activations are int8 per-tensor affine; weights int8 symmetric in [-127, 127], per channel or per tensor (ExecuTorch get_symmetric_quantization_config).',
      'MaxPool and the data-movement ops share their input\'s quantization; Concat and average pooling calibrate their own output.',
      'No 16-bit or 4-bit types and no weight-only mode.',
    ],
  }),
  record({
    name: 'qnn-htp',
    title: 'Qualcomm QNN (Hexagon HTP)',
    description: 'Snapdragon NPUs through ONNX Runtime\'s QNN execution provider, HTP backend: fixed-point only, 8- or 16-bit activations.',
    kinds: ['static'],
    activationTypes: ['uint8', 'uint16'],
    weightTypes: ['int8', 'int4'],
    granularities: ['per-tensor', 'per-channel', 'per-block'],
    staticInt4Weights: true,
    opTypes: { static: QNN_STATIC, dynamic: [], 'weight-only': [] },
    perChannelOps: ['Conv', 'ConvTranspose'],
    fixedOutputs: [
      { op: 'Sigmoid', type: 'uint16', scale: 1 / 65536, zeroPoint: 0 },
      { op: 'Tanh', type: 'uint16', scale: 1 / 32768, zeroPoint: 32768 },
    ],
    overrideTypes: ['uint8', 'uint16'],
    device: { name: 'Hexagon HTP', floatOps: QNN_DEVICE_OPS, staticShapes: true, floatPrecision: 'fp16' },
    presets: [
      { name: 'a8w8', title: 'uint8 activations, int8 symmetric weights (per-channel Conv)', recipe: A8W8 },
      { name: 'a16w8', title: 'uint16 activations, int8 symmetric weights (per-channel Conv)', recipe: { ...A8W8, activationType: 'uint16' } },
      { name: 'a16w4', title: 'uint16 activations, int4 symmetric weights (per-channel Conv)', recipe: { ...A8W8, activationType: 'uint16', weightType: 'int4' } },
      { name: 'a16w4-block', title: 'uint16 activations, int4 block-wise weights (blocks of 64 along the input channels; opset 21)', recipe: { ...A8W8, activationType: 'uint16', weightType: 'int4', granularity: 'per-block', blockSize: 64 } },
    ],
    lowering: 'QDQ ONNX model for the QNN execution provider (HTP); 16-bit and 4-bit Q/DQ use opset 21 or the com.microsoft domain below it. The context binary is compiled on a machine with the QNN SDK.',
    latency: elsewhere('a Snapdragon device'),
    notes: [
      'Full-integer static only (the HTP runs fixed point; float layers run in fp16 on v69+ HTPs or fall back to the CPU).',
      'Per-channel weights only for Conv and ConvTranspose: the HTP has no per-channel MatMul or Gemm (ONNX Runtime\'s get_qnn_qdq_config does the same).',
      'uint16 Sigmoid outputs use scale 1/65536, zero point 0; uint16 Tanh outputs scale 1/32768, zero point 32768 (QNN\'s fixed encodings).',
      'Symmetric int8 weights use [-127, 127], int4 [-7, 7] (ONNX Runtime\'s symmetric weight ranges).',
    ],
  }),
  record({
    name: 'coreml',
    title: 'Apple Core ML',
    description: 'iPhone/Mac Neural Engine and GPU through ONNX Runtime\'s CoreML execution provider (ML Program).',
    kinds: ['static', 'weight-only'],
    activationTypes: ['uint8'],
    weightTypes: ['int8'],
    granularities: ['per-channel', 'per-tensor'],
    opTypes: { static: COREML_STATIC, dynamic: [], 'weight-only': ['Conv', 'ConvTranspose', 'Gemm', 'MatMul'] },
    overrideTypes: ['uint8'],
    device: { name: 'Neural Engine / GPU', floatOps: COREML_DEVICE_OPS },
    presets: [
      { name: 'a8w8', title: 'uint8 activations, int8 symmetric per-channel weights', recipe: A8W8 },
      { name: 'w8', title: 'int8 weight-only (activations stay float; 4x smaller weights)', recipe: { kind: 'weight-only', weightType: 'int8', granularity: 'per-channel', weightSymmetric: true } },
    ],
    lowering: 'QDQ ONNX model for ONNX Runtime\'s CoreML provider; weight-only keeps activations float with int8 weights and a DequantizeLinear in front of each.',
    latency: elsewhere('an Apple device'),
    notes: [
      'Weights int8 symmetric per channel (coremltools linear_symmetric), activations uint8.',
      'The Neural Engine needs fixed shapes; flexible shapes run on the GPU or CPU.',
    ],
  }),
  record({
    name: 'tensorrt',
    title: 'NVIDIA TensorRT',
    description: 'NVIDIA GPUs and Jetson through TensorRT\'s explicit quantization (Q/DQ in the ONNX graph).',
    kinds: ['static'],
    activationTypes: ['int8'],
    weightTypes: ['int8'],
    granularities: ['per-channel', 'per-tensor'],
    activationSymmetry: 'required',
    opTypes: { static: TENSORRT_STATIC, dynamic: [], 'weight-only': [] },
    placement: 'inputs',
    overrideTypes: ['int8'],
    device: { name: 'NVIDIA GPU', floatOps: 'all', int64: true },
    presets: [
      { name: 'a8w8', title: 'int8 symmetric everywhere, per-channel weights, percentile calibration', recipe: { ...A8W8, activationType: 'int8', activationSymmetric: true, method: 'percentile:99.999' } },
    ],
    lowering: 'QDQ ONNX model for TensorRT (explicit quantization): Q/DQ only on the inputs of quantized layers, all zero points 0. Build the engine with trtexec --int8 --fp16 on the target.',
    latency: elsewhere('an NVIDIA GPU'),
    notes: [
      'Every zero point is 0: TensorRT supports symmetric quantization only.',
      'Q/DQ go on the inputs of quantized layers; TensorRT fuses each output into the next layer\'s input quantization.',
      'Percentile calibration (99.999) by default; TensorRT\'s own calibrator uses entropy (KL), which this engine also offers but which clips hard on long-tailed activations (the PaddleOCR classifier drops to 0 dB with it, 52 dB with percentile).',
    ],
  }),
  record({
    name: 'mcu-int8',
    title: 'Microcontroller int8',
    description: 'Arm Cortex-M / Ethos-U class and STM32-style int8 runtimes: the whole graph integer, model inputs and outputs included.',
    kinds: ['static'],
    activationTypes: ['int8'],
    weightTypes: ['int8'],
    granularities: ['per-channel', 'per-tensor'],
    opTypes: { static: MCU_STATIC, dynamic: [], 'weight-only': [] },
    // The TensorFlow Lite int8/int16 quantization spec fixes these outputs.
    fixedOutputs: [
      { op: 'Sigmoid', type: 'int8', scale: 1 / 256, zeroPoint: -128 },
      { op: 'Softmax', type: 'int8', scale: 1 / 256, zeroPoint: -128 },
      { op: 'Tanh', type: 'int8', scale: 1 / 128, zeroPoint: 0 },
      { op: 'Sigmoid', type: 'int16', scale: 1 / 32768, zeroPoint: 0 },
      { op: 'Softmax', type: 'int16', scale: 1 / 32768, zeroPoint: 0 },
      { op: 'Tanh', type: 'int16', scale: 1 / 32768, zeroPoint: 0 },
    ],
    integerIO: true,
    lowerings: ['integer-io'],
    overrideTypes: ['int8', 'int16'],
    keepFloat: false,
    // TensorFlow Lite's 16x8 kernels take symmetric int16 activations.
    symmetricTypes: ['int16'],
    device: { name: 'MCU', floatOps: 'none', fallback: 'error', staticShapes: true },
    presets: [
      { name: 'a8w8', title: 'Full integer: int8 activations and I/O, int8 symmetric per-channel weights', recipe: { ...A8W8, activationType: 'int8' } },
    ],
    lowering: 'The integer-I/O QDQ model (int8 inputs and outputs) and a JSON with each input\'s and output\'s scale and zero point for the firmware.',
    latency: elsewhere('the microcontroller'),
    notes: [
      'Full integer: a layer that cannot be quantized is an error, never a silent float fallback; a sensitive layer can take int16 activations (16x8 kernels, symmetric).',
      'Inputs and outputs are int8: the firmware quantizes its input and dequantizes the output with the exported scale and zero point.',
      'Sigmoid and Softmax outputs use scale 1/256, zero point -128; Tanh 1/128, 0 (the TensorFlow Lite int8 spec).',
    ],
  }),
  record({
    name: 'webgpu',
    title: 'ONNX Runtime Web (WebGPU)',
    description: 'Browsers through ONNX Runtime Web\'s WebGPU provider: 4-bit block-wise MatMul weights for transformers, static QDQ otherwise.',
    kinds: ['weight-only', 'static'],
    activationTypes: ['uint8', 'int8'],
    weightTypes: ['int4', 'uint4', 'int8'],
    granularities: ['per-block', 'per-channel', 'per-tensor'],
    weightSymmetry: 'optional',
    weightNarrowRange: false,
    opTypes: { static: WEBGPU_STATIC, dynamic: [], 'weight-only': ['MatMul'] },
    overrideTypes: ['uint8', 'int8'],
    device: { name: 'WebGPU', floatOps: 'all', int64: true },
    localRuntime: 'webgpu',
    presets: [
      { name: 'w4', title: '4-bit block-wise MatMul weights (MatMulNBits, block 32)', recipe: { kind: 'weight-only', weightType: 'int4', granularity: 'per-block', blockSize: 32, weightSymmetric: true } },
      { name: 'a8w8', title: 'Static QDQ (uint8 activations, int8 per-channel weights)', recipe: A8W8 },
    ],
    lowering: 'ONNX model for ONNX Runtime Web: MatMulNBits (4-bit) or QDQ; WebGPU dequantizes in its kernels, so static QDQ shrinks the download more than it speeds up compute.',
    latency: elsewhere('a browser with WebGPU'),
    notes: [
      '4-bit weight-only MatMulNBits is ONNX Runtime Web\'s path for transformer weights (blocks of 32 by default).',
      'Ops WebGPU lacks run on ONNX Runtime Web\'s wasm CPU provider.',
    ],
  }),
];

export function findBackend(name: string): BackendCapability | undefined {
  return BACKENDS.find((b) => b.name === name);
}

function isFourBit(type: QuantType): boolean {
  return type === 'int4' || type === 'uint4';
}

/**
 * Reasons a backend refuses a recipe, in the words the CLI prints and the UI shows beside a
 * disabled option. Empty when the recipe is allowed.
 */
export function recipeProblems(backend: BackendCapability, recipe: Recipe): string[] {
  const problems: string[] = [];
  const b = backend.name;
  if (!backend.kinds.includes(recipe.kind)) {
    const why = recipe.kind === 'dynamic' && backend.kinds.length === 1 && backend.kinds[0] === 'static'
      ? `; ${backend.device.name} needs fixed-point activations — use static ${backend.presets.filter((p) => p.recipe.kind === 'static').map((p) => p.name).join(' or ')}`
      : `; use ${backend.kinds.join(' or ')}`;
    problems.push(`${b}: ${recipe.kind} quantization is not supported${why}`);
    return problems;
  }
  if (recipe.kind === 'static' && !backend.activationTypes.includes(recipe.activationType)) {
    problems.push(`${b}: activations cannot be ${recipe.activationType}; allowed: ${backend.activationTypes.join(', ')}`);
  }
  if (!backend.weightTypes.includes(recipe.weightType)) {
    problems.push(`${b}: weights cannot be ${recipe.weightType}; allowed: ${backend.weightTypes.join(', ')}`);
  }
  if (!backend.granularities.includes(recipe.granularity)) {
    problems.push(`${b}: ${recipe.granularity} weights are not supported; allowed: ${backend.granularities.join(', ')}`);
  }
  if (backend.weightSymmetry === 'required' && !recipe.weightSymmetric) {
    problems.push(`${b}: weights must be symmetric`);
  }
  if (backend.activationSymmetry === 'required' && !recipe.activationSymmetric) {
    problems.push(`${b}: activations must be symmetric (every zero point 0)`);
  }
  const fourBit = isFourBit(recipe.weightType);
  const staticFourBit = fourBit && recipe.kind === 'static' && backend.staticInt4Weights;
  if (fourBit && recipe.kind !== 'weight-only' && !staticFourBit) {
    problems.push(`${b}: 4-bit weights are only supported weight-only (MatMulNBits); use kind weight-only`);
  }
  if (recipe.granularity === 'per-block' && !fourBit) {
    problems.push(`${b}: per-block weights are only supported for 4-bit weights`);
  }
  if (fourBit && recipe.kind === 'weight-only' && recipe.granularity !== 'per-block') {
    problems.push(`${b}: 4-bit weight-only needs per-block granularity (MatMulNBits)`);
  }
  if (fourBit && recipe.kind === 'weight-only' && ![16, 32, 64, 128, 256].includes(recipe.blockSize)) {
    problems.push(`${b}: MatMulNBits block size must be 16, 32, 64, 128 or 256`);
  }
  if (recipe.kind === 'dynamic' && recipe.weightType !== 'int8' && recipe.weightType !== 'uint8') {
    problems.push(`${b}: dynamic quantization uses 8-bit weights`);
  }
  for (const op of recipe.opTypes) {
    if (!backend.opTypes[recipe.kind].includes(op)) problems.push(`${b}: does not quantize ${op} in ${recipe.kind} mode`);
  }
  if (!backend.keepFloat && recipe.excludeNodes.length) {
    problems.push(`${b}: cannot keep ${recipe.excludeNodes.join(', ')} in float — the whole graph runs integer; give ${recipe.excludeNodes.length > 1 ? 'them' : 'it'} ${sixteenBitType(backend, recipe) ?? 'a wider range'} instead`);
  }
  for (const [tensor, o] of Object.entries(recipe.overrides)) {
    if (o.float && !backend.keepFloat) {
      problems.push(`${b}: cannot keep tensor ${tensor} in float — the whole graph runs integer; give it ${sixteenBitType(backend, recipe) ?? 'a wider range'} instead`);
    }
    if (o.type && !backend.overrideTypes.includes(o.type) && !backend.weightTypes.includes(o.type)) {
      problems.push(`${b}: tensor ${tensor} cannot be ${o.type}; allowed: ${backend.overrideTypes.join(', ')}${backend.keepFloat ? ', or kept in float' : ''}`);
    }
    if (o.symmetric === false && backend.activationSymmetry === 'required') {
      problems.push(`${b}: tensor ${tensor} must be symmetric (every zero point 0)`);
    }
    if (o.granularity && !backend.granularities.includes(o.granularity)) {
      problems.push(`${b}: tensor ${tensor} cannot be ${o.granularity}; allowed: ${backend.granularities.join(', ')}`);
    }
  }
  return problems;
}

/** The 16-bit activation type a backend offers for a sensitive layer, if any. */
/**
 * The 16-bit activation type the backend allows for one tensor of a static recipe, of the same
 * signedness as the recipe's activations where it can; none when the recipe is already 16-bit.
 */
export function sixteenBitType(backend: BackendCapability, recipe: Recipe): QuantType | undefined {
  if (recipe.kind !== 'static' || quantTypeBits(recipe.activationType) >= 16) return undefined;
  const preferred: QuantType = recipe.activationType.startsWith('u') ? 'uint16' : 'int16';
  return [preferred, preferred === 'uint16' ? 'int16' : 'uint16'].find((t): t is QuantType => backend.overrideTypes.includes(t as QuantType));
}

export const DEFAULT_RECIPE: Omit<Recipe, 'backend'> = {
  version: 1,
  kind: 'static',
  activationType: 'uint8',
  weightType: 'int8',
  granularity: 'per-channel',
  blockSize: 32,
  activationSymmetric: false,
  weightSymmetric: true,
  method: 'minmax',
  opTypes: [],
  excludeNodes: [],
  overrides: {},
  reduceRange: false,
  calibrationSamples: 0,
};

/** A complete recipe: the backend's first preset (or the named one) over the defaults. */
export function recipeFor(backendName: string, presetName?: string): Recipe {
  const backend = findBackend(backendName);
  if (!backend) throw new Error(`unknown backend "${backendName}"; known: ${BACKENDS.map((x) => x.name).join(', ')}`);
  const preset = presetName ? backend.presets.find((p) => p.name === presetName) : backend.presets[0];
  if (!preset) throw new Error(`${backendName}: unknown preset "${presetName}"; known: ${backend.presets.map((p) => p.name).join(', ')}`);
  return { ...DEFAULT_RECIPE, backend: backend.name, ...preset.recipe };
}
