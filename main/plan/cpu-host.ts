// The cpu backend runs where the studio runs: on an x86 CPU whose fused u8×s8 kernels saturate, an
// int8-weight model loses accuracy there that no other machine would show. ONNX Runtime documents
// two remedies, 7-bit weights (reduce_range) and U8U8 (uint8 weights). Measured on such a CPU
// (README, "Numerics"): uint8 weights give the non-saturating figures exactly (PaddleOCR cls 48.3 dB,
// MNIST 38.0 dB) at 5–15% more instructions per inference; 7-bit weights lose 2–4 dB. So uint8.
import { findBackend } from '../../shared/backends';
import type { HostNumerics } from '../../shared/numerics';
import { quantTypeBits, type Recipe } from '../../shared/recipe';
import type { HostReport } from '../../shared/report';

export function saturationFix(recipe: Recipe, host: HostNumerics): { recipe: Recipe; fix?: NonNullable<HostReport['saturationFix']> } {
  const affected = findBackend(recipe.backend)?.localRuntime === 'ort-cpu' && host.int8Saturates && recipe.kind !== 'weight-only' && recipe.weightType === 'int8'
    && !recipe.reduceRange && quantTypeBits(recipe.activationType) === 8;
  if (!affected) return { recipe };
  return {
    recipe: { ...recipe, weightType: 'uint8' },
    fix: {
      applied: 'uint8-weights',
      words: `weights quantized as uint8 instead of int8: ${host.cpu}'s fused u8×s8 kernels saturate (no VNNI), u8×u8 ones do not, so the exported model is right on this machine; `
        + 'turn it off (--no-saturation-fix) for an int8-weight model, and deploy that on such CPUs with the session option session.x64quantprecision=1',
    },
  };
}
