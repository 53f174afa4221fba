// The full layer table: every quantized tensor of a run with its figures, the analysis's where
// there is one and the change against an outlined run. One definition serves the studio's table,
// its CSV export and the HTML report.
import { dbDelta, dbNumber, deltaText, type AnalysisReport, type Db, type LayerReport } from './report';

export interface LayerTableRow {
  name: string;
  op: string;
  node: string;
  /** Position in graph order. */
  index: number;
  /** The quantized type, or "float" for a tensor kept in float. */
  type: string;
  sqnr: Db;
  localSqnr?: Db;
  weightSqnr?: Db;
  scale?: number;
  zeroPoint?: number;
  range: [number, number];
  /** Output SQNR with only this layer in float, where the analysis measured it. */
  sensitivity?: Db;
  /** SQNR against the outlined run's, in dB; ±Infinity where one side is exact and the other not. */
  delta?: number;
}

export type LayerColumn = 'name' | 'op' | 'type' | 'sqnr' | 'localSqnr' | 'weightSqnr' | 'scale' | 'range' | 'sensitivity' | 'delta';

/** The table's columns in order: title, whether numeric, and the CSV header(s) it writes. */
export const LAYER_COLUMNS: ReadonlyArray<{ key: LayerColumn; title: string; numeric: boolean; csv: string[] }> = [
  { key: 'name', title: 'tensor', numeric: false, csv: ['tensor', 'node'] },
  { key: 'op', title: 'op', numeric: false, csv: ['op'] },
  { key: 'type', title: 'type', numeric: false, csv: ['type'] },
  { key: 'sqnr', title: 'SQNR dB', numeric: true, csv: ['sqnr_db'] },
  { key: 'localSqnr', title: 'local dB', numeric: true, csv: ['local_sqnr_db'] },
  { key: 'weightSqnr', title: 'weight dB', numeric: true, csv: ['weight_sqnr_db'] },
  { key: 'scale', title: 'scale', numeric: true, csv: ['scale', 'zero_point'] },
  { key: 'range', title: 'range', numeric: true, csv: ['range_min', 'range_max'] },
  { key: 'sensitivity', title: 'only in float dB', numeric: true, csv: ['only_in_float_db'] },
  { key: 'delta', title: 'Δ dB', numeric: true, csv: ['delta_db'] },
];

/** Columns a row may have no figure for. */
const OPTIONAL: readonly LayerColumn[] = ['localSqnr', 'weightSqnr', 'scale', 'sensitivity', 'delta'];

/** The columns worth showing for these rows: one no row has a figure for (local SQNR before an analysis, Δ without an outline) is left out. */
export function layerColumns(rows: readonly LayerTableRow[]): typeof LAYER_COLUMNS {
  return LAYER_COLUMNS.filter((c) => !OPTIONAL.includes(c.key) || rows.some((r) => r[c.key as keyof LayerTableRow] !== undefined));
}

/** A cell as a table shows it, figures in dB written by `dbText`; undefined where the row has no figure. */
export function layerCellText(row: LayerTableRow, key: LayerColumn, dbText: (v: Db) => string): string | undefined {
  const dbOf = (v: Db | undefined) => (v === undefined ? undefined : dbText(v));
  switch (key) {
    case 'name': return row.name;
    case 'op': return row.op;
    case 'type': return row.type;
    case 'sqnr': return dbText(row.sqnr);
    case 'localSqnr': return dbOf(row.localSqnr);
    case 'weightSqnr': return dbOf(row.weightSqnr);
    case 'scale': return row.scale === undefined ? undefined : `${row.scale.toPrecision(4)} / ${row.zeroPoint}`;
    case 'range': return `${row.range[0].toPrecision(4)} … ${row.range[1].toPrecision(4)}`;
    case 'sensitivity': return dbOf(row.sensitivity);
    case 'delta': return row.delta === undefined ? undefined : deltaText(row.delta);
  }
}

/**
 * The rows of a run's layers, in graph order. An `analysis` gives local SQNR (over the report's)
 * and sensitivity; `outline` is the run the deltas are against.
 */
export function layerTableRows(layers: readonly LayerReport[], options: { analysis?: AnalysisReport; outline?: readonly LayerReport[] } = {}): LayerTableRow[] {
  const local = new Map(options.analysis?.layers.flatMap((l) => (l.localSqnr === undefined ? [] : [[l.name, l.localSqnr] as const])) ?? []);
  const sensitivity = new Map(options.analysis?.sensitivity.flatMap((r) => (r.onlyFloat === undefined ? [] : [[r.name, r.onlyFloat] as const])) ?? []);
  const outline = options.outline && new Map(options.outline.map((l) => [l.name, l.sqnr]));
  return [...layers].sort((a, b) => a.index - b.index).map((l) => {
    const was = outline?.get(l.name);
    const localSqnr = local.get(l.name) ?? l.localSqnr;
    const only = sensitivity.get(l.name);
    return {
      name: l.name, op: l.op, node: l.node, index: l.index, type: l.type ?? 'float', sqnr: l.sqnr, range: l.range,
      ...(localSqnr !== undefined ? { localSqnr } : {}), ...(l.weightSqnr !== undefined ? { weightSqnr: l.weightSqnr } : {}),
      ...(l.scale !== undefined ? { scale: l.scale, zeroPoint: l.zeroPoint } : {}), ...(only !== undefined ? { sensitivity: only } : {}),
      ...(was !== undefined ? { delta: dbDelta(l.sqnr, was) } : {}),
    };
  });
}

/** The value a column sorts by: numbers ascending with absent ones last, text by locale. */
function sortValue(row: LayerTableRow, key: LayerColumn): number | string | undefined {
  switch (key) {
    case 'name': case 'op': case 'type': return row[key];
    case 'range': return row.range[1] - row.range[0];
    case 'sqnr': case 'localSqnr': case 'weightSqnr': case 'sensitivity': return row[key] === undefined ? undefined : dbNumber(row[key]);
    default: return row[key];
  }
}

export function sortLayerRows(rows: readonly LayerTableRow[], key: LayerColumn, descending: boolean): LayerTableRow[] {
  const sign = descending ? -1 : 1;
  return [...rows].sort((a, b) => {
    const x = sortValue(a, key);
    const y = sortValue(b, key);
    if (x === undefined || y === undefined) return x === y ? a.index - b.index : x === undefined ? 1 : -1;
    const order = typeof x === 'string' ? x.localeCompare(y as string) : x === y ? 0 : x < (y as number) ? -1 : 1;
    return sign * order || a.index - b.index;
  });
}

/** Rows whose op is `op` (any when undefined) and whose tensor or node name holds `text`, case-insensitive. */
export function filterLayerRows(rows: readonly LayerTableRow[], op: string | undefined, text: string): LayerTableRow[] {
  const needle = text.trim().toLowerCase();
  return rows.filter((r) => (!op || r.op === op) && (!needle || r.name.toLowerCase().includes(needle) || r.node.toLowerCase().includes(needle)));
}

const dbText = (v: Db | undefined) => (v === undefined ? '' : String(v));
const numberText = (v: number | undefined) => (v === undefined ? '' : v === Infinity ? 'inf' : v === -Infinity ? '-inf' : String(v));

/** RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled. */
function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The rows as CSV, every column, figures at the report's full precision ("inf" where exact). */
export function layersCsv(rows: readonly LayerTableRow[]): string {
  const header = LAYER_COLUMNS.flatMap((c) => c.csv);
  const lines = rows.map((r) => [
    r.name, r.node, r.op, r.type, dbText(r.sqnr), dbText(r.localSqnr), dbText(r.weightSqnr), numberText(r.scale), numberText(r.zeroPoint),
    String(r.range[0]), String(r.range[1]), dbText(r.sensitivity), numberText(r.delta),
  ].map(csvField).join(','));
  return [header.join(','), ...lines].join('\r\n') + '\r\n';
}
