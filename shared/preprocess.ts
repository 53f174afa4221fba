// Image preprocessing: the one spec the data readers apply, the CLI's flags fill, a manifest or the
// studio sends, and the one check of it, whichever of them it came from.

export interface PreprocessSpec {
  /** [height, width] to resize to; default: from the input's static shape. */
  size?: [number, number];
  /** Default stretch. */
  resize?: (typeof RESIZE_MODES)[number];
  /** The resize the model was trained with; default bilinear. */
  interpolation?: Interpolation;
  /** Applied after scaling to [0,1]: (x/255 - mean) / std, per channel in the order the model receives them; default [0,0,0]. */
  mean?: [number, number, number];
  /** Default [1,1,1]. */
  std?: [number, number, number];
  /** Default: guessed from the input shape (dim 1 of 1 or 3 → NCHW, last dim of 1 or 3 → NHWC). */
  layout?: 'NCHW' | 'NHWC';
  /** Default RGB, or GRAY when the channel dim is 1. */
  channels?: 'RGB' | 'BGR' | 'GRAY';
}

/** stretch to the size; cover it and cut the centre out (torchvision's Resize then CenterCrop); fit inside it on black. */
export const RESIZE_MODES = ['stretch', 'shorter-side-then-center-crop', 'pad'] as const;

export const RESIZE_WORDS: Record<(typeof RESIZE_MODES)[number], string> = {
  stretch: 'stretch to the size',
  'shorter-side-then-center-crop': 'shorter side, centre crop',
  pad: 'fit inside, pad black',
};

/**
 * bilinear, bicubic, nearest: Pillow's (what torchvision runs on PIL images, and on uint8 tensors
 * with antialias, its default); opencv-linear: cv2.resize with INTER_LINEAR, no antialias.
 */
export const INTERPOLATIONS = ['bilinear', 'bicubic', 'nearest', 'opencv-linear'] as const;
export type Interpolation = (typeof INTERPOLATIONS)[number];

/** Short enough for a select; the field's title says which pipelines each one is. */
export const INTERPOLATION_WORDS: Record<Interpolation, string> = {
  bilinear: 'Pillow bilinear',
  bicubic: 'Pillow bicubic',
  nearest: 'Pillow nearest',
  'opencv-linear': 'OpenCV linear',
};

/** Images wider or taller than this are not a preprocessing size anyone means. */
export const MAX_IMAGE_SIDE = 8192;

const numbers = (v: unknown, n: number, ok: (x: number) => boolean) => Array.isArray(v) && v.length === n && v.every((x) => typeof x === 'number' && ok(x));

const RULES: Record<keyof PreprocessSpec, { ok: (v: unknown) => boolean; expected: string }> = {
  size: { ok: (v) => numbers(v, 2, (x) => Number.isInteger(x) && x > 0 && x <= MAX_IMAGE_SIDE), expected: `[height, width] in whole pixels, at most ${MAX_IMAGE_SIDE}` },
  resize: { ok: (v) => RESIZE_MODES.includes(v as (typeof RESIZE_MODES)[number]), expected: RESIZE_MODES.map((m) => `"${m}"`).join(', ') },
  interpolation: { ok: (v) => INTERPOLATIONS.includes(v as Interpolation), expected: INTERPOLATIONS.map((i) => `"${i}"`).join(', ') },
  mean: { ok: (v) => numbers(v, 3, Number.isFinite), expected: '3 numbers' },
  std: { ok: (v) => numbers(v, 3, (x) => Number.isFinite(x) && x !== 0), expected: '3 non-zero numbers' },
  layout: { ok: (v) => v === 'NCHW' || v === 'NHWC', expected: '"NCHW" or "NHWC"' },
  channels: { ok: (v) => v === 'RGB' || v === 'BGR' || v === 'GRAY', expected: '"RGB", "BGR" or "GRAY"' },
};

export const PREPROCESS_KEYS = Object.keys(RULES) as Array<keyof PreprocessSpec>;

/** What is wrong with a preprocessing spec from outside (a manifest, a payload), in words, or undefined when it is right. */
export function preprocessProblem(value: unknown, where: string): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return `${where} must be an object such as {"size": [224, 224], "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}`;
  }
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined) continue;
    const rule = RULES[key as keyof PreprocessSpec];
    if (!rule) return `${where}: unknown option "${key}"; the options are ${PREPROCESS_KEYS.join(', ')}`;
    if (!rule.ok(v)) return `${where}: ${key} must be ${rule.expected}, got ${JSON.stringify(v)}`;
  }
  return undefined;
}
