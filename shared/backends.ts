// Backend capability records: the facts the engine's quantizers and the UI both read.
import type { Granularity, QuantKind, QuantType, Recipe } from './recipe';

export interface Preset {
  name: string;
  title: string;
  recipe: Partial<Recipe>;
}

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
  /** Op types quantized, per kind. */
  opTypes: Record<QuantKind, string[]>;
  presets: Preset[];
  lowering: string;
  notes: string[];
}

/** Ops that only move or select data: their output keeps their input's quantization. */
export const DATA_MOVEMENT_OPS = ['Reshape', 'Transpose', 'Flatten', 'Squeeze', 'Unsqueeze', 'MaxPool', 'Slice', 'Gather',
  'Split', 'Identity', 'DepthToSpace', 'SpaceToDepth', 'Resize', 'Pad', 'Expand', 'Tile'];

const CPU_STATIC = ['Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'Add', 'Mul', 'Concat', 'MaxPool', 'AveragePool',
  'GlobalAveragePool', 'Relu', 'Clip', 'LeakyRelu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Softmax',
  'LayerNormalization', 'InstanceNormalization', 'Reshape', 'Transpose', 'Flatten', 'Squeeze', 'Unsqueeze', 'Slice',
  'Gather', 'Split', 'Resize', 'Pad', 'Identity', 'DepthToSpace', 'SpaceToDepth', 'ArgMax'];

const XNNPACK_STATIC = ['Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'Add', 'Mul', 'Concat', 'MaxPool', 'AveragePool',
  'GlobalAveragePool', 'Relu', 'Clip', 'Sigmoid', 'Softmax', 'Reshape', 'Transpose', 'Flatten', 'Squeeze', 'Unsqueeze',
  'Slice', 'Resize', 'Pad', 'Identity', 'DepthToSpace', 'SpaceToDepth'];

export const BACKENDS: BackendCapability[] = [
  {
    name: 'cpu',
    title: 'ONNX Runtime CPU',
    description: 'ONNX Runtime\'s default CPU execution provider: QDQ groups become fused integer kernels (QLinearConv, MatMulInteger…).',
    kinds: ['static', 'dynamic', 'weight-only'],
    activationTypes: ['uint8', 'int8', 'uint16', 'int16'],
    weightTypes: ['int8', 'uint8', 'int16', 'int4', 'uint4'],
    granularities: ['per-tensor', 'per-channel', 'per-block'],
    activationSymmetry: 'optional',
    weightSymmetry: 'optional',
    weightNarrowRange: false,
    opTypes: {
      static: CPU_STATIC,
      dynamic: ['MatMul', 'Gemm', 'Conv'],
      'weight-only': ['MatMul', 'Gemm', 'Conv'],
    },
    presets: [
      { name: 'a8w8', title: 'Static int8 (uint8 activations, int8 per-channel weights)', recipe: { kind: 'static', activationType: 'uint8', weightType: 'int8', granularity: 'per-channel', activationSymmetric: false, weightSymmetric: true } },
      { name: 'dynamic-int8', title: 'Dynamic int8 (weights ahead of time, activations at run time)', recipe: { kind: 'dynamic', activationType: 'uint8', weightType: 'int8', granularity: 'per-channel', activationSymmetric: false, weightSymmetric: true } },
      { name: 'w4', title: '4-bit weight-only MatMul (MatMulNBits, block 32)', recipe: { kind: 'weight-only', weightType: 'int4', granularity: 'per-block', blockSize: 32, weightSymmetric: true } },
      { name: 'w8', title: '8-bit weight-only (int8 weights dequantized at run time)', recipe: { kind: 'weight-only', weightType: 'int8', granularity: 'per-channel', weightSymmetric: true } },
    ],
    lowering: 'QDQ ONNX model for ONNX Runtime\'s CPU provider.',
    notes: [
      'Activations default to uint8 asymmetric, weights to int8 symmetric per channel, bias to int32 (ONNX Runtime\'s quantize_static defaults).',
      'reduceRange quantizes weights to 7 bits, for CPUs without VNNI where int8 x int8 products can saturate.',
      '4-bit weight-only uses com.microsoft MatMulNBits on MatMul with constant weights, blocks of 32, 64 or 128.',
    ],
  },
  {
    name: 'xnnpack',
    title: 'XNNPACK',
    description: 'Arm/x86 mobile CPUs through XNNPACK (ONNX Runtime\'s XNNPACK provider, ExecuTorch\'s XNNPACK delegate).',
    kinds: ['static', 'dynamic'],
    activationTypes: ['int8'],
    weightTypes: ['int8'],
    granularities: ['per-tensor', 'per-channel'],
    activationSymmetry: 'optional',
    weightSymmetry: 'required',
    weightNarrowRange: true,
    opTypes: {
      static: XNNPACK_STATIC,
      dynamic: ['MatMul', 'Gemm', 'Conv'],
      'weight-only': [],
    },
    presets: [
      { name: 'a8w8', title: 'Static int8 (int8 per-tensor activations, int8 symmetric per-channel weights)', recipe: { kind: 'static', activationType: 'int8', weightType: 'int8', granularity: 'per-channel', activationSymmetric: false, weightSymmetric: true } },
      { name: 'dynamic-int8', title: 'Dynamic int8 (Conv, Gemm, MatMul)', recipe: { kind: 'dynamic', activationType: 'int8', weightType: 'int8', granularity: 'per-channel', activationSymmetric: false, weightSymmetric: true } },
    ],
    lowering: 'QDQ ONNX model for ONNX Runtime\'s XNNPACK provider (the same graph ExecuTorch\'s XNNPACK quantizer produces).',
    notes: [
      'Activations are int8 per-tensor affine; weights int8 symmetric in [-127, 127], per channel or per tensor (ExecuTorch get_symmetric_quantization_config).',
      'Concat and pooling share their input\'s quantization so that XNNPACK runs them without requantizing.',
      'No 16-bit or 4-bit types and no weight-only mode.',
    ],
  },
];

export function findBackend(name: string): BackendCapability | undefined {
  return BACKENDS.find((b) => b.name === name);
}

/**
 * Reasons a backend refuses a recipe, in the words the CLI prints and the UI shows beside a
 * disabled option. Empty when the recipe is allowed.
 */
export function recipeProblems(backend: BackendCapability, recipe: Recipe): string[] {
  const problems: string[] = [];
  const b = backend.name;
  if (!backend.kinds.includes(recipe.kind)) {
    problems.push(`${b}: ${recipe.kind} quantization is not supported; use ${backend.kinds.join(' or ')}`);
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
    problems.push(`${b}: activations must be symmetric`);
  }
  const fourBit = recipe.weightType === 'int4' || recipe.weightType === 'uint4';
  if (fourBit && recipe.kind !== 'weight-only') {
    problems.push(`${b}: 4-bit weights are only supported weight-only (MatMulNBits); use kind weight-only`);
  }
  if (recipe.granularity === 'per-block' && !fourBit) {
    problems.push(`${b}: per-block weights are only supported for 4-bit weight-only`);
  }
  if (fourBit && recipe.granularity !== 'per-block') {
    problems.push(`${b}: 4-bit weights need per-block granularity (MatMulNBits)`);
  }
  if (fourBit && ![16, 32, 64, 128, 256].includes(recipe.blockSize)) {
    problems.push(`${b}: MatMulNBits block size must be 16, 32, 64, 128 or 256`);
  }
  if (recipe.kind === 'dynamic' && recipe.weightType !== 'int8' && recipe.weightType !== 'uint8') {
    problems.push(`${b}: dynamic quantization uses 8-bit weights`);
  }
  for (const op of recipe.opTypes) {
    if (!backend.opTypes[recipe.kind].includes(op)) problems.push(`${b}: does not quantize ${op} in ${recipe.kind} mode`);
  }
  return problems;
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
