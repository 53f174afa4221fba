// Exports a browser downloads: the browser host writes an export into a folder of its own (the user
// may not see the host's disk) and streams it as one zip, on request, for as long as it keeps it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import { writeZip } from '../base/zip';

/** A new export folder's name: the run and the time, so that exporting again never writes over an earlier download. */
export function downloadName(runId: string, now = new Date()): string {
  return `${runId}-${now.toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}`;
}

/** The file name a browser saves a download as: the model's and the run's, e.g. cls.int8-run-3.zip. */
export function downloadFileName(folder: string): string {
  const model = fs.readdirSync(folder).find((f) => f.endsWith('.onnx'))?.replace(/\.onnx$/, '') ?? 'export';
  const run = /^(run-\d+)/.exec(path.basename(folder))?.[1] ?? path.basename(folder);
  return `${model}-${run}.zip`;
}

/** Streams every file of an export folder into `out` as a zip, bounded in memory whatever the model's size. */
export function zipExport(folder: string, out: Writable, signal?: AbortSignal): Promise<{ bytes: number }> {
  const entries = fs.readdirSync(folder).sort().map((name) => ({ name, file: path.join(folder, name) }));
  return writeZip(entries, out, { signal });
}
