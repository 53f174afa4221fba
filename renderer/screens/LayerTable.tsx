// Every quantized tensor of the run in one table: sortable by any column, filtered by op and by
// name, moved through with the arrow keys, exported as CSV. It shares the chart's selection: a row
// opens the layer panel and highlights the bar, a bar scrolls its row into view.
import { useEffect, useMemo, useRef, useState, type KeyboardEvent } from 'react';
import { filterLayerRows, layerCellText, layerColumns, layersCsv, sortLayerRows, type LayerColumn, type LayerTableRow } from '../../shared/layer-table';
import { db } from '../format';

interface Props {
  rows: LayerTableRow[];
  selected?: string;
  onSelect: (name: string) => void;
  /** What the Δ column compares with, in words; no Δ column without it. */
  outline?: string;
  /** The CSV file's name. */
  fileName: string;
}

function download(text: string, fileName: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.click();
  // The click has handed the data to the download before the next task.
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

export function LayerTable({ rows, selected, onSelect, outline, fileName }: Props) {
  const [sort, setSort] = useState<{ key: LayerColumn; descending: boolean }>({ key: 'sqnr', descending: false });
  const [op, setOp] = useState<string>();
  const [text, setText] = useState('');
  const ops = useMemo(() => [...new Set(rows.map((r) => r.op))].sort(), [rows]);
  const columns = useMemo(() => layerColumns(rows), [rows]);
  const shown = useMemo(() => sortLayerRows(filterLayerRows(rows, op, text), sort.key, sort.descending), [rows, op, text, sort]);
  const body = useRef<HTMLTableSectionElement>(null);
  useEffect(() => {
    const row = selected ? body.current?.querySelector<HTMLElement>(`tr[data-layer="${CSS.escape(selected)}"]`) : undefined;
    row?.scrollIntoView({ block: 'nearest' });
  }, [selected, shown]);
  const onKey = (e: KeyboardEvent) => {
    const at = shown.findIndex((r) => r.name === selected);
    const next = e.key === 'ArrowDown' ? at + 1 : e.key === 'ArrowUp' ? (at < 0 ? 0 : at - 1) : e.key === 'Home' ? 0 : e.key === 'End' ? shown.length - 1 : undefined;
    if (next === undefined || shown.length === 0) return;
    e.preventDefault();
    onSelect(shown[Math.max(0, Math.min(shown.length - 1, next))].name);
  };
  const by = (key: LayerColumn) => setSort((s) => ({ key, descending: s.key === key ? !s.descending : false }));
  return (
    <section className="layer-table" aria-labelledby="layer-table-title" data-testid="layer-table">
      <div className="toolbar">
        <h3 id="layer-table-title">Layers</h3>
        <label>op <select value={op ?? ''} onChange={(e) => setOp(e.target.value || undefined)} data-testid="layer-op-filter">
          <option value="">all</option>
          {ops.map((o) => <option key={o} value={o}>{o}</option>)}
        </select></label>
        <label>name <input type="search" value={text} onChange={(e) => setText(e.target.value)} placeholder="tensor or node" data-testid="layer-text-filter" /></label>
        <span className="muted small" data-testid="layer-count">{shown.length} of {rows.length} layers{outline ? `; Δ against ${outline}` : ''}</span>
        <button type="button" data-testid="layer-csv" onClick={() => download(layersCsv(shown), fileName)}>Export CSV</button>
      </div>
      <div className="table-scroll" tabIndex={0} onKeyDown={onKey} aria-label="Layers: the arrow keys move the selection">
        <table className="grid layers">
          <thead>
            <tr>
              {columns.map((c) => (
                <th key={c.key} className={c.numeric ? 'num' : undefined} aria-sort={sort.key === c.key ? (sort.descending ? 'descending' : 'ascending') : 'none'}>
                  <button type="button" className="link" onClick={() => by(c.key)}>{c.title}{sort.key === c.key ? (sort.descending ? ' ▼' : ' ▲') : ''}</button>
                </th>
              ))}
            </tr>
          </thead>
          <tbody ref={body}>
            {shown.map((r) => (
              <tr key={r.name} data-layer={r.name} className={r.name === selected ? 'selected' : undefined} aria-selected={r.name === selected} onClick={() => onSelect(r.name)}>
                {columns.map((c) => <td key={c.key} className={c.numeric ? 'num' : c.key === 'name' ? 'name' : undefined}>{layerCellText(r, c.key, db) ?? '—'}</td>)}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
