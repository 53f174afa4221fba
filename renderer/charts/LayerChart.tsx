// The per-layer SQNR chart: one bar per quantized tensor, coloured by op type, another run of the
// session outlined behind the shown one, local SQNR ticks once the run is analysed, a mark under
// each layer an accuracy-recovery algorithm changed, and a threshold line the user drags (or moves with the arrow
// keys). Zoomed in to a window of bars (panned with a slider), each bar is named under the axis. It takes pre-aggregated rows only; the whole chart lives behind this one component so a
// canvas chart can replace it if recharts gets slow on very large models.
import { memo, useCallback, useEffect, useMemo, useRef, useState, type KeyboardEvent, type PointerEvent } from 'react';
import { Bar, BarChart, ResponsiveContainer, Tooltip, XAxis, YAxis, type TooltipContentProps } from 'recharts';
import type { NameType, ValueType } from 'recharts/types/component/DefaultTooltipContent';
import { dbDelta, deltaText, type Db, type LayerReport } from '../../shared/report';
import { db, dbValue } from '../format';

export interface LayerRow {
  name: string;
  op: string;
  sqnr: number;
  /** The run outlined under this one; absent when there is none. */
  previous?: number;
  /** This layer's SQNR against the outlined run's, in words. */
  delta?: string;
  /** Local SQNR (only this tensor quantized), from an analysis; absent until there is one. */
  local?: number;
  localLabel?: string;
  label: string;
  weight: string;
  inf: boolean;
  /** The algorithms that changed this layer (CLE, AdaRound, bias correction), in words; absent when none did. */
  changedBy?: string;
}

export interface LayerChartProps {
  layers: LayerReport[];
  previous?: LayerReport[];
  /** Local SQNR per tensor, drawn as a tick over each bar. */
  local?: ReadonlyMap<string, Db>;
  /** Per tensor, the algorithms that changed it, marked under its bar. */
  changed?: ReadonlyMap<string, readonly string[]>;
  sort: 'graph' | 'worst';
  colours: Map<string, string>;
  threshold: number;
  selected?: string;
  onThreshold(db: number): void;
  onSelect(name: string): void;
}

export const CHART_HEIGHT = 320;
const MARK_HEIGHT = 5;
const MARGIN = { top: 12, right: 12, bottom: 8, left: 0 };
const Y_AXIS_WIDTH = 48;
/** Zoomed in to this many bars or fewer, each is labelled with its layer's name under the axis. */
export const LABELLED_BARS = 48;
const X_LABELS_HEIGHT = 72;
const LABEL_CHARS = 14;

export function chartRows(layers: LayerReport[], previous: LayerReport[] | undefined, sort: 'graph' | 'worst', top: number, local?: ReadonlyMap<string, Db>,
  changed?: ReadonlyMap<string, readonly string[]>): LayerRow[] {
  const before = new Map(previous?.map((l) => [l.name, l]));
  const rows = layers.map((l) => {
    const p = previous ? before.get(l.name) : undefined;
    const own = local?.get(l.name);
    const by = changed?.get(l.name);
    return {
      name: l.name, op: l.op, sqnr: dbValue(l.sqnr, top), inf: l.sqnr === 'inf', label: db(l.sqnr), weight: db(l.weightSqnr),
      ...(p ? { previous: dbValue(p.sqnr, top), delta: deltaText(dbDelta(l.sqnr, p.sqnr)) } : {}),
      ...(own !== undefined ? { local: dbValue(own, top), localLabel: db(own) } : {}),
      ...(by?.length ? { changedBy: by.join(', ') } : {}),
    };
  });
  return sort === 'worst' ? rows.sort((a, b) => (a.inf ? Infinity : a.sqnr) - (b.inf ? Infinity : b.sqnr)) : rows;
}

/** The axis top: a round number above the best finite SQNR, so "inf" bars stand out at the top. */
export function axisTop(layers: LayerReport[]): number {
  const finite = layers.map((l) => l.sqnr).filter((v): v is number => typeof v === 'number');
  return Math.max(10, Math.ceil((Math.max(0, ...finite) * 1.15) / 10) * 10);
}

/** The axis bottom: 0, or a round number below a negative SQNR (a layer worse than no signal at all). */
export function axisBottom(layers: LayerReport[]): number {
  const finite = layers.map((l) => l.sqnr).filter((v): v is number => typeof v === 'number');
  return Math.min(0, Math.floor(Math.min(0, ...finite) / 5) * 5);
}

function LayerTooltip({ active, payload }: TooltipContentProps<ValueType, NameType>) {
  const row = active && payload?.[0]?.payload as LayerRow | undefined;
  if (!row) return null;
  return (
    <div className="tooltip" role="status">
      <strong>{row.name}</strong>
      <div>{row.op}</div>
      <div>SQNR {row.label} dB{row.weight !== '—' ? ` · weight ${row.weight} dB` : ''}</div>
      {row.delta && <div>{row.delta} dB against the outlined run</div>}
      {row.localLabel && <div>local {row.localLabel} dB (only this tensor quantized)</div>}
      {row.changedBy && <div>changed by {row.changedBy}</div>}
    </div>
  );
}

function LayerChartImpl({ layers, previous, local, changed, sort, colours, threshold, selected, onThreshold, onSelect }: LayerChartProps) {
  const top = useMemo(() => axisTop([...layers, ...(previous ?? [])]), [layers, previous]);
  const bottom = useMemo(() => axisBottom([...layers, ...(previous ?? [])]), [layers, previous]);
  const rows = useMemo(() => chartRows(layers, previous, sort, top, local, changed), [layers, previous, sort, top, local, changed]);
  // The window of bars shown, by position in the current order; none is every bar.
  const [view, setView] = useState<{ from: number; size: number }>();
  useEffect(() => setView(undefined), [sort, rows.length]);
  const size = view ? Math.min(view.size, rows.length) : rows.length;
  const from = view ? Math.max(0, Math.min(view.from, rows.length - size)) : 0;
  const shown = useMemo(() => (view ? rows.slice(from, from + size) : rows), [rows, view, from, size]);
  // A layer selected elsewhere (the table, the analysis) outside the window moves the window to it;
  // only a new selection does, so that the user can still pan away from the selected bar.
  useEffect(() => {
    const at = selected ? rows.findIndex((r) => r.name === selected) : -1;
    setView((v) => {
      if (!v || at < 0) return v;
      const n = Math.min(v.size, rows.length);
      const f = Math.max(0, Math.min(v.from, rows.length - n));
      return at >= f && at < f + n ? v : { from: Math.max(0, Math.min(rows.length - n, at - Math.floor(n / 2))), size: n };
    });
  }, [selected]);
  const zoom = (factor: number) => {
    const next = Math.max(8, Math.round(size * factor));
    if (next >= rows.length) return setView(undefined);
    const at = rows.findIndex((r) => r.name === selected);
    const centre = at >= from && at < from + size ? at : from + size / 2;
    setView({ from: Math.max(0, Math.min(rows.length - next, Math.round(centre - next / 2))), size: next });
  };
  const labelled = shown.length <= LABELLED_BARS;
  const plot = useRef<HTMLDivElement>(null);
  const plotHeight = CHART_HEIGHT - MARGIN.top - MARGIN.bottom - (labelled ? X_LABELS_HEIGHT : 0);
  const clamp = (v: number) => Math.max(bottom, Math.min(top, v));
  const lineY = MARGIN.top + plotHeight * (1 - (clamp(threshold) - bottom) / (top - bottom));

  const fromPointer = useCallback((e: PointerEvent<HTMLDivElement>) => {
    const box = plot.current?.getBoundingClientRect();
    if (!box) return;
    const y = e.clientY - box.top - MARGIN.top;
    onThreshold(Math.max(bottom, Math.min(top, bottom + (top - bottom) * (1 - y / plotHeight))));
  }, [onThreshold, top, bottom, plotHeight]);

  const onKey = (e: KeyboardEvent<HTMLDivElement>) => {
    const step = e.shiftKey ? 5 : 0.5;
    if (e.key === 'ArrowUp') onThreshold(Math.min(top, threshold + step));
    else if (e.key === 'ArrowDown') onThreshold(Math.max(bottom, threshold - step));
    else return;
    e.preventDefault();
  };

  // Custom shapes carry the layer name, so a click, a test or a screen reader finds the bar; a
  // negative SQNR hangs below the zero line, so its height arrives negative.
  const renderBar = useCallback((props: unknown) => {
    const { x, y, width, height, payload } = props as { x: number; y: number; width: number; height: number; payload: LayerRow };
    const below = !payload.inf && payload.sqnr < threshold;
    const bar = (
      <rect x={x} y={Math.min(y, y + height)} width={Math.max(width, 0.5)} height={Math.abs(height)} fill={colours.get(payload.op) ?? '#888'}
        className={`bar${below ? ' below' : ''}${payload.inf ? ' inf' : ''}${payload.name === selected ? ' selected' : ''}`}
        data-layer={payload.name} data-sqnr={payload.label} onClick={() => onSelect(payload.name)} />
    );
    if (!payload.changedBy) return bar;
    // A strip along the axis bottom, inside the plot (recharts clips bars to it): it covers the foot of the bar, never its top.
    return (
      <g>
        {bar}
        <rect x={x} y={MARGIN.top + plotHeight - MARK_HEIGHT} width={Math.max(width, 1)} height={MARK_HEIGHT} className="bar-changed" data-changed={payload.name} data-algorithms={payload.changedBy} />
      </g>
    );
  }, [colours, threshold, selected, onSelect, plotHeight]);

  const renderPrevious = useCallback((props: unknown) => {
    const { x, y, width, height } = props as { x: number; y: number; width: number; height: number };
    return <rect x={x} y={Math.min(y, y + height)} width={Math.max(width, 0.5)} height={Math.abs(height)} className="bar-previous" />;
  }, []);

  // Local SQNR as a tick at its height: the gap down to the bar is the error that earlier layers pass on.
  const renderLocal = useCallback((props: unknown) => {
    const { x, y, width, height, payload } = props as { x: number; y: number; width: number; height: number; payload: LayerRow };
    if (payload.local === undefined) return <g />;
    const at = height < 0 ? y + height : y;
    return <line x1={x - 1} x2={x + Math.max(width, 0.5) + 1} y1={at} y2={at} className="bar-local" data-local={payload.name} data-local-sqnr={payload.localLabel} />;
  }, []);

  return (
    <>
    <div className="layer-chart" ref={plot} style={{ height: CHART_HEIGHT }} data-bars={shown.length}>
      <ResponsiveContainer width="100%" height={CHART_HEIGHT}>
        <BarChart data={shown} margin={MARGIN} barGap="-100%" barCategoryGap={shown.length > 200 ? 0 : '10%'}>
          {/* The first name, slanted, would run past the left edge without the padding. */}
          <XAxis dataKey="name" hide={!labelled} height={labelled ? X_LABELS_HEIGHT : 0} interval={0} angle={-45} textAnchor="end" padding={{ left: labelled ? 24 : 0, right: 0 }}
            tickFormatter={(name: string) => (name.length > LABEL_CHARS ? `${name.slice(0, LABEL_CHARS - 1)}…` : name)} />
          <YAxis width={Y_AXIS_WIDTH} domain={[bottom, top]} allowDataOverflow tickCount={6} unit=" dB" />
          <Tooltip content={LayerTooltip} isAnimationActive={false} cursor={{ className: 'chart-cursor' }} />
          <Bar dataKey="sqnr" isAnimationActive={false} shape={renderBar} />
          {previous && <Bar dataKey="previous" isAnimationActive={false} shape={renderPrevious} />}
          {local && <Bar dataKey="local" isAnimationActive={false} shape={renderLocal} />}
        </BarChart>
      </ResponsiveContainer>
      <div className="threshold" role="slider" tabIndex={0} aria-label="SQNR threshold" aria-valuemin={bottom} aria-valuemax={top}
        aria-valuenow={threshold} aria-valuetext={`${threshold.toFixed(1)} dB`} style={{ top: lineY, left: Y_AXIS_WIDTH }}
        onKeyDown={onKey}
        onPointerDown={(e) => { e.currentTarget.setPointerCapture(e.pointerId); fromPointer(e); }}
        onPointerMove={(e) => { if (e.currentTarget.hasPointerCapture(e.pointerId)) fromPointer(e); }}>
        <span>{threshold.toFixed(1)} dB</span>
      </div>
    </div>
    <div className="chart-zoom" role="group" aria-label="Zoom the chart">
      <button type="button" onClick={() => zoom(0.5)} disabled={size <= 8} data-testid="zoom-in">Zoom in</button>
      <button type="button" onClick={() => zoom(2)} disabled={!view} data-testid="zoom-out">Zoom out</button>
      <button type="button" onClick={() => setView(undefined)} disabled={!view} data-testid="zoom-fit">Fit</button>
      {view && (
        <input type="range" min={0} max={rows.length - size} value={from} aria-label="Pan along the layers" data-testid="zoom-pan"
          onChange={(e) => setView({ from: Number(e.target.value), size })} />
      )}
      <span className="muted small" data-testid="zoom-window">
        {view ? `bars ${from + 1}–${from + size} of ${rows.length}${labelled ? '' : `; zoom in to ${LABELLED_BARS} or fewer to name them`}` : `all ${rows.length} bars${labelled ? '' : '; zoom in to name them'}`}
      </span>
    </div>
    </>
  );
}

export const LayerChart = memo(LayerChartImpl);
