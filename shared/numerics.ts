// Numerics: the arithmetic a figure was measured in. Every SQNR, metric, baseline and before/after
// the studio shows carries one of these names, and no report, chart or search mixes two.
import { findBackend } from './backends';

/**
 * reference: the QDQ graph as written (DequantizeLinear → float op → QuantizeLinear), what PT2E's
 * converted model computes and what a correct integer kernel approximates. ort-cpu: the exported
 * model in ONNX Runtime's CPU provider with its fused integer kernels, on this machine. webgpu: the
 * exported model in ONNX Runtime's WebGPU provider, where this machine has a GPU adapter.
 */
export type Numerics = 'reference' | 'ort-cpu' | 'webgpu';

/** Numerics a report's layers and outputs can be measured in (WebGPU measures outputs only). */
export type MainNumerics = Exclude<Numerics, 'webgpu'>;
export const MAIN_NUMERICS: readonly MainNumerics[] = ['reference', 'ort-cpu'];

export const NUMERICS_WORDS: Record<Numerics, string> = {
  reference: 'reference numerics: the QDQ graph as written (dequantize, float op, quantize)',
  'ort-cpu': 'ort-cpu: ONNX Runtime\'s CPU provider with its fused integer kernels, on this machine',
  webgpu: 'webgpu: ONNX Runtime\'s WebGPU provider on this machine\'s GPU',
};

/** What a figure is, in a few words: "reference numerics, 24 samples". */
export function figureLabel(numerics: Numerics, samples: number): string {
  return `${numerics} numerics, ${samples} sample${samples === 1 ? '' : 's'}`;
}

/**
 * Where a search (analysis, repair) measures by default: in the numerics the target deploys in that
 * this machine can run — ONNX Runtime's own CPU kernels for the cpu backend, the reference for the
 * others, whose kernels run elsewhere.
 */
export function searchNumerics(backend: string, asked?: MainNumerics): MainNumerics {
  return asked ?? (findBackend(backend)?.localRuntime === 'ort-cpu' ? 'ort-cpu' : 'reference');
}

/** What this machine's runtime does to int8 figures: the CPU, whether its u8×s8 kernels saturate, and WebGPU. */
export interface HostNumerics {
  cpu: string;
  /**
   * True where ONNX Runtime's fused u8×s8 kernels saturate pairs of products into 16 bits (x86 with
   * AVX2 or AVX-512 but no VNNI), measured by running a model whose exact integer answer is known.
   */
  int8Saturates: boolean;
  /** The probe's exact answers and what the fused kernels gave. */
  probe: { expected: number[]; fused: number[] };
}

/** One sentence on what the host means for a backend's figures. */
export function hostWords(host: HostNumerics, backend: string): string {
  if (!host.int8Saturates) return `${host.cpu}: ONNX Runtime's int8 kernels are exact here (no saturation of u8×s8 products).`;
  if (findBackend(backend)?.localRuntime === 'ort-cpu') {
    return `${host.cpu}: ONNX Runtime's fused u8×s8 kernels saturate pairs of products here (x86 without VNNI); int8-weight models lose accuracy on such CPUs unless their weights are 7-bit (reduce-range) or uint8, or the session sets session.x64quantprecision=1.`;
  }
  return `${host.cpu}: ONNX Runtime's fused u8×s8 kernels saturate here (x86 without VNNI); this does not touch ${backend}'s figures, which are in reference numerics.`;
}
