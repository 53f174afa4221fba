// Labels of evaluation samples: a .npy of class ids, the class folders of a folder-per-class
// image set (both for accuracy metrics), or a JSON array of any values for the user's metric module.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { listImages } from './images';
import { DataError, readNpyHeader, readNpyRange } from './npy';

/**
 * Class ids, `steps` per sample in sample order: one for a classifier; one per position for a
 * sequence model (a language model's next token at every position; a negative id, as PyTorch's
 * ignore_index -100, marks a position not scored).
 */
export interface ClassIds {
  ids: Int32Array;
  steps: number;
}

/** The ids of `count` samples from sample `first`. */
export function idsOf(labels: ClassIds, first: number, count: number): Int32Array {
  return labels.ids.subarray(first * labels.steps, (first + count) * labels.steps);
}

/** The ids of the samples at `indices`, in that order. */
export function pickIds(labels: ClassIds, indices: readonly number[]): ClassIds {
  const ids = new Int32Array(indices.length * labels.steps);
  indices.forEach((i, k) => ids.set(idsOf(labels, i, 1), k * labels.steps));
  return { ids, steps: labels.steps };
}

export interface Labels {
  /** Class ids, where every label is one: what the accuracy metrics compare with. */
  labels?: ClassIds;
  /** Every label as given, one per sample: what a metric module receives. */
  values: unknown[];
  /** The class folder names, for a folder-per-class image set. */
  classes?: string[];
}

const FORMS = 'a .npy of class ids ([N], or [N, T] for a sequence model\'s next token at each of T positions), a folder with one subfolder of images per class, or a .json array with one label per sample';

/**
 * Labels, one per sample, in the order the data readers yield samples: a .npy of integers, for
 * a folder-per-class image layout the index of each image's class folder among the sorted class
 * folder names, or a JSON array of any values (the text of each line, a box list).
 */
export function readLabels(spec: string): Labels {
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(spec);
  } catch {
    throw new DataError(`${spec}: no such labels file or folder; give ${FORMS}`);
  }
  if (stat.isDirectory()) {
    const images = listImages(spec);
    const classOf = images.map((f) => path.relative(spec, f).split(path.sep));
    if (images.length === 0 || classOf.some((parts) => parts.length < 2)) {
      throw new DataError(`${spec}: a labelled image folder needs one subfolder per class with the images inside (found ${images.length} images, ${classOf.filter((p) => p.length < 2).length} of them not in a class folder)`);
    }
    const classes = [...new Set(classOf.map((p) => p[0]))].sort();
    const index = new Map(classes.map((c, i) => [c, i]));
    return classIds(Int32Array.from(classOf, (p) => index.get(p[0])!), classes);
  }
  const lower = spec.toLowerCase();
  if (lower.endsWith('.json')) return jsonLabels(spec);
  if (!lower.endsWith('.npy')) throw new DataError(`${spec}: labels must be ${FORMS}`);
  const header = readNpyHeader(spec);
  if (header.shape.length !== 1 && header.shape.length !== 2) {
    throw new DataError(`${spec}: labels must be one class id per sample ([N]) or one per position ([N, T], a sequence model's next tokens), found [${header.shape.join(', ')}]`);
  }
  if (!/^(int|uint)/.test(header.dtype)) throw new DataError(`${spec}: labels must be integer class ids, found ${header.dtype}`);
  const n = header.shape[0];
  const steps = header.shape[1] ?? 1;
  const data = readNpyRange(spec, header, 0, n * steps);
  return classIds(Int32Array.from(data as ArrayLike<number | bigint>, (v) => Number(v)), undefined, steps);
}

function classIds(ids: Int32Array, classes?: string[], steps = 1): Labels {
  const values = steps === 1 ? Array.from(ids) : Array.from({ length: ids.length / steps }, (_, i) => Array.from(ids.subarray(i * steps, (i + 1) * steps)));
  return { labels: { ids, steps }, values, ...(classes ? { classes } : {}) };
}

/** Labels files are small; past this a file is more likely the wrong one than labels. */
const MAX_JSON_LABELS_BYTES = 256 * 2 ** 20;

function jsonLabels(spec: string): Labels {
  const bytes = fs.statSync(spec).size;
  if (bytes > MAX_JSON_LABELS_BYTES) throw new DataError(`${spec}: ${(bytes / 2 ** 20).toFixed(0)} MB is too large for a labels file (at most ${MAX_JSON_LABELS_BYTES / 2 ** 20} MB)`);
  let values: unknown;
  try {
    values = JSON.parse(fs.readFileSync(spec, 'utf8'));
  } catch (err) {
    throw new DataError(`${spec}: not valid JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(values)) {
    throw new DataError(`${spec}: labels JSON must be an array with one label per sample, in the order the samples are read (image files sorted by name), found ${values === null ? 'null' : typeof values}`);
  }
  const ids = values.every((v) => Number.isInteger(v) && v >= 0 && v <= 2 ** 31 - 1);
  return { values, ...(ids && values.length ? { labels: { ids: Int32Array.from(values as number[]), steps: 1 } } : {}) };
}
