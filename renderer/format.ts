import type { Db, OutputReport } from '../shared/report';

/** Decimal units, as the command line prints them, so the two agree on a model's size. */
export function bytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} MB`;
  return `${(n / 1e3).toFixed(1)} kB`;
}

export function db(v: Db | undefined): string {
  return v === undefined ? '—' : v === 'inf' ? 'inf' : `${v.toFixed(2)}`;
}

/** The output SQNR of a run, one figure per output. */
export function outputsText(outputs: readonly Pick<OutputReport, 'sqnr'>[]): string {
  return outputs.map((o) => `${db(o.sqnr)} dB`).join(', ');
}

/** The file's name without its folders, whichever separator the host's paths use. */
export function fileName(file: string): string {
  return file.split(/[\\/]/).pop() ?? file;
}

/** The folder a file is in, whichever separator the host's paths use. */
export function folderOf(file: string): string {
  return file.slice(0, Math.max(0, file.length - fileName(file).length - 1));
}

/** A file named `name` in a host folder, with the separator the folder's path uses. */
export function inFolder(folder: string, name: string): string {
  return `${folder}${folder.includes('\\') && !folder.includes('/') ? '\\' : '/'}${name}`;
}

export function count(n: number): string {
  return n.toLocaleString('en-US');
}

export function shape(dims: Array<number | string> | undefined): string {
  return dims ? `[${dims.join(', ')}]` : 'unknown';
}

export function seconds(s: number): string {
  if (!Number.isFinite(s)) return '—';
  return s < 60 ? `${Math.ceil(s)} s` : `${Math.floor(s / 60)} min ${Math.ceil(s % 60)} s`;
}

/** A number an SQNR chart can draw: "inf" sits at the top of the axis. */
export function dbValue(v: Db | undefined, top: number): number {
  return v === undefined ? 0 : v === 'inf' ? top : v;
}
