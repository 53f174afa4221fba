// Labels of evaluation samples, for accuracy metrics: a .npy of class ids, or the class folders
// of a folder-per-class image set.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { listImages } from './images';
import { DataError, readNpyHeader, readNpyRange } from './npy';

/**
 * Class ids, one per sample, in the order the data readers yield samples: a .npy of integers, or
 * for a folder-per-class image layout the index of each image's class folder among the sorted
 * class folder names.
 */
export function readLabels(spec: string): { labels: Int32Array; classes?: string[] } {
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(spec);
  } catch {
    throw new DataError(`${spec}: no such labels file or folder; give a .npy of class ids or a folder with one subfolder of images per class`);
  }
  if (stat.isDirectory()) {
    const images = listImages(spec);
    const classOf = images.map((f) => path.relative(spec, f).split(path.sep));
    if (images.length === 0 || classOf.some((parts) => parts.length < 2)) {
      throw new DataError(`${spec}: a labelled image folder needs one subfolder per class with the images inside (found ${images.length} images, ${classOf.filter((p) => p.length < 2).length} of them not in a class folder)`);
    }
    const classes = [...new Set(classOf.map((p) => p[0]))].sort();
    const index = new Map(classes.map((c, i) => [c, i]));
    return { labels: Int32Array.from(classOf, (p) => index.get(p[0])!), classes };
  }
  if (!spec.toLowerCase().endsWith('.npy')) throw new DataError(`${spec}: labels must be a .npy of class ids or a folder-per-class image folder`);
  const header = readNpyHeader(spec);
  if (header.shape.length !== 1 && !(header.shape.length === 2 && header.shape[1] === 1)) {
    throw new DataError(`${spec}: labels must be one class id per sample (shape [N] or [N, 1]), found [${header.shape.join(', ')}]`);
  }
  if (!/^(int|uint)/.test(header.dtype)) throw new DataError(`${spec}: labels must be integer class ids, found ${header.dtype}`);
  const n = header.shape[0];
  const data = readNpyRange(spec, header, 0, n);
  return { labels: Int32Array.from(data as ArrayLike<number | bigint>, (v) => Number(v)) };
}
