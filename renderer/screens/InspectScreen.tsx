import { useCallback, useMemo } from 'react';
import { findBackend } from '../../shared/backends';
import { figureLabel, NUMERICS_WORDS } from '../../shared/numerics';
import { dbNumber, layerAlgorithmEntries, layerAlgorithms, layersWithoutAlgorithms, weightChangeWords, type LayerReport, type Report } from '../../shared/report';
import { Histogram } from '../charts/Histogram';
import { LayerChart } from '../charts/LayerChart';
import { useStudio } from '../context';
import { opColours, opLegend } from '../../shared/colours';
import { db, fileName } from '../format';
import { refusal, sixteenBitFor } from '../store';
import { layerTableRows } from '../../shared/layer-table';
import { recipeChanges } from '../../shared/recipe';
import { AlgorithmsSection, AnalysisSection, AnalyzeControl, HistoryTable, RepairControl, RepairSection, runDifference, WeightValues } from './InspectTools';
import { LayerTable } from './LayerTable';
import { GraphPane } from '../graph/GraphPane';
import { graphOverlay } from '../../shared/graph';
import type { OverlayMode } from '../../shared/graph-svg';

const rank = (l: LayerReport) => dbNumber(l.sqnr);

function LayerPanel() {
  const detail = useStudio((s) => s.detail);
  const error = useStudio((s) => s.detailError);
  const selected = useStudio((s) => s.selected);
  const current = useStudio((s) => s.current);
  const previous = useStudio((s) => s.previous);
  const status = useStudio((s) => s.status);
  const override = useStudio((s) => s.overrideLayer);
  const select = useStudio((s) => s.selectLayer);
  if (!selected || !current) {
    return <aside className="layer-panel empty"><p className="muted">Click a bar (or a row of the layer table) to see its scale, range and values.</p></aside>;
  }
  const layer = detail?.layer ?? current.report.layers.find((l) => l.name === selected);
  const before = previous?.report.layers.find((l) => l.name === selected);
  const kind = current.report.recipe.kind;
  const sixteen = sixteenBitFor(current.report.recipe);
  // A full-integer backend has no float fallback: the record says so, in words.
  const floatRefused = refusal(current.report.recipe, { overrides: { ...current.report.recipe.overrides, [selected]: { float: true } } });
  const busy = status === 'running' || status === 'cancelling';
  return (
    <aside className="layer-panel" aria-labelledby="layer-title" data-testid="layer-panel">
      <div className="panel-head">
        <h3 id="layer-title" title={selected}>{selected}</h3>
        <button type="button" className="link" onClick={() => void select(undefined)} aria-label="Close the layer panel">×</button>
      </div>
      {layer && (
        <dl className="facts compact">
          <div><dt>Op</dt><dd>{layer.op} <span className="muted">{layer.node}</span></dd></div>
          <div><dt>SQNR</dt><dd data-testid="layer-sqnr">{db(layer.sqnr)} dB{before && before.sqnr !== layer.sqnr ? <span className="muted"> (was {db(before.sqnr)})</span> : null}</dd></div>
          {layer.keptInFloat && <div><dt>Kept in float</dt><dd>{db(layer.keptInFloat.sqnr)} dB from the quantized layers before it</dd></div>}
          <div><dt>Weight SQNR</dt><dd>{layer.weightSqnr === undefined ? '—' : `${db(layer.weightSqnr)} dB`}</dd></div>
          <div><dt>Type</dt><dd>{layer.type ?? 'float'}</dd></div>
          <div><dt>Scale / zero point</dt><dd>{layer.scale === undefined ? '—' : `${layer.scale.toPrecision(4)} / ${layer.zeroPoint}`}</dd></div>
          <div><dt>Range</dt><dd>{layer.range[0].toPrecision(4)} … {layer.range[1].toPrecision(4)}</dd></div>
          <LayerAlgorithms report={current.report} layer={layer} />
        </dl>
      )}
      {/* The slot keeps its height while an activation's values load; a note above a weight's values needs none. */}
      <div className={`hist-slot${detail?.weights && !detail.histogram ? ' note-only' : ''}`}>
        {error ? <p className="error" role="alert">{error}</p>
          : !detail ? <p className="muted">Reading the tensor's values…</p>
            : detail.histogram ? <Histogram bins={detail.histogram} />
              : <p className="muted" data-testid="layer-note">{detail.note}</p>}
        {detail?.histogram && <p className="muted small">{detail.samples} evaluation samples (those the SQNR is measured on), {detail.values.toLocaleString('en-US')} values per side</p>}
      </div>
      {detail?.weights && <WeightValues weights={detail.weights} />}
      <div className="row">
        <button type="button" data-testid="keep-float" disabled={busy || Boolean(layer?.keptInFloat) || Boolean(floatRefused)} title={floatRefused}
          onClick={() => void override(selected, 'float')}>
          Keep in float{floatRefused && <span className="muted"> (not on {current.report.backend})</span>}
        </button>
        {/* 16-bit is a static run's activation type: weight-only and dynamic runs have no activation scale to widen. */}
        {kind === 'static' && (
          <button type="button" data-testid="sixteen-bit" disabled={busy || !sixteen || Boolean(layer?.keptInFloat)} onClick={() => void override(selected, '16-bit')}
            title={sixteen ? `Quantize this tensor to ${sixteen}` : `${findBackend(current.report.backend)?.title ?? current.report.backend} has no 16-bit activations`}>
            16-bit{!sixteen && <span className="muted"> (not on {current.report.backend})</span>}
          </button>
        )}
      </div>
      {floatRefused && <p className="muted small">{floatRefused}</p>}
      <p className="muted small">{kind === 'static' ? 'Re-converts and re-evaluates from the saved ranges, without calibrating again.'
        : `Re-converts the weights and re-evaluates on the run's samples: a ${kind} run has nothing to calibrate.`}</p>
    </aside>
  );
}

/** What the run's algorithms did to this layer: its SQNR without them, the pair CLE rescaled it in, its bias correction, its AdaRound rounding. */
function LayerAlgorithms({ report, layer }: { report: Report; layer: LayerReport }) {
  const base = report.algorithms?.without?.layers[layer.name];
  const { pair, corrected, rounded, gptq } = layerAlgorithmEntries(report.algorithms, layer.nodes);
  return (
    <>
      {base !== undefined && (
        <div className="span2" data-testid="layer-without"><dt>Without the algorithms</dt><dd>{db(base)} dB (the same recipe, the same samples)</dd></div>
      )}
      {pair && <div className="span2"><dt>Equalized</dt><dd>{layer.nodes.includes(pair.first) ? `with ${pair.second}, after it` : `with ${pair.first}, before it`}</dd></div>}
      {corrected && <div className="span2"><dt>Bias correction</dt><dd>mean output error {corrected.before.toPrecision(3)} → {corrected.after.toPrecision(3)}</dd></div>}
      {rounded && (
        <div className="span2" data-testid="layer-adaround"><dt>AdaRound</dt>
          <dd>layer output {weightChangeWords(rounded.outputSqnr, ' dB')} (on its quantized inputs, against float); {(rounded.changed * 100).toFixed(1)}% of weights rounded the other way{rounded.kept === 'nearest' ? '; nearest kept, the learned rounding was not better' : ''}</dd>
        </div>
      )}
      {gptq && (
        <div className="span2" data-testid="layer-gptq"><dt>GPTQ</dt>
          <dd>layer output {weightChangeWords(gptq.outputSqnr, ' dB')} (nearest rounding → GPTQ, on the float calibration inputs){gptq.note ? `; ${gptq.note}` : ''}</dd>
        </div>
      )}
    </>
  );
}

export function InspectScreen() {
  const current = useStudio((s) => s.current);
  const previous = useStudio((s) => s.previous);
  const sort = useStudio((s) => s.sort);
  const setSort = useStudio((s) => s.setSort);
  const threshold = useStudio((s) => s.threshold);
  const setThreshold = useStudio((s) => s.setThreshold);
  const selected = useStudio((s) => s.selected);
  const select = useStudio((s) => s.selectLayer);
  const go = useStudio((s) => s.go);
  const analysis = useStudio((s) => (s.current ? s.analyses[s.current.runId] : undefined));
  const showLocal = useStudio((s) => s.showLocal);
  const layers = current?.report.layers;
  const local = useMemo(() => (analysis && showLocal ? new Map(analysis.layers.flatMap((l) => (l.localSqnr === undefined ? [] : [[l.name, l.localSqnr] as const]))) : undefined), [analysis, showLocal]);
  const colours = useMemo(() => opColours((layers ?? []).map((l) => l.op)), [layers]);
  const algorithms = current?.report.algorithms;
  // Without another run outlined, the chart outlines the same recipe without its algorithms.
  const without = algorithms?.without;
  const outline = useMemo(() => previous?.report.layers ?? (current ? layersWithoutAlgorithms(current.report) : undefined), [previous, current]);
  const changed = useMemo(() => new Map((layers ?? []).flatMap((l) => {
    const by = layerAlgorithms(algorithms, l.nodes);
    return by.length ? [[l.name, by] as const] : [];
  })), [layers, algorithms]);
  const difference = previous && current ? runDifference(current.report, previous.report) : undefined;
  const changes = useMemo(() => (previous && current ? recipeChanges(previous.report.recipe, current.report.recipe) : []), [previous, current]);
  const tableRows = useMemo(() => layerTableRows(layers ?? [], { analysis, outline }), [layers, analysis, outline]);
  const below = useMemo(() => (layers ?? []).filter((l) => rank(l) < threshold).length, [layers, threshold]);
  const onSelect = useCallback((name: string) => void select(name), [select]);
  const view = useStudio((s) => s.inspectView);
  const setView = useStudio((s) => s.setInspectView);
  const graph = useStudio((s) => s.graph?.value);
  const overlay = useMemo(() => (graph && current ? graphOverlay(graph, current.report, analysis) : undefined), [graph, current, analysis]);
  const graphOutline = useMemo(() => (outline ? { label: previous ? previous.runId : 'the recipe without its algorithms', layers: outline } : undefined), [outline, previous]);
  const modes = useMemo<OverlayMode[]>(() => ['sqnr', ...(analysis ? ['local' as const] : []), 'placement', 'op'], [analysis]);
  if (!current || !layers) return null;
  return (
    <section className="screen inspect" aria-labelledby="inspect-title" data-run={current.runId}>
      <div className="toolbar">
        <h2 id="inspect-title">Per-layer SQNR</h2>
        <span className="muted" data-testid="layer-numerics" title={NUMERICS_WORDS[current.report.numerics]}>{figureLabel(current.report.numerics, current.report.samples.evaluation)}</span>
        <div className="segmented" role="radiogroup" aria-label="Order of the bars">
          <label><input type="radio" name="sort" checked={sort === 'graph'} onChange={() => setSort('graph')} />graph order</label>
          <label><input type="radio" name="sort" checked={sort === 'worst'} onChange={() => setSort('worst')} />worst first</label>
        </div>
        <span className="muted" data-testid="below">{below} of {layers.length} below {threshold.toFixed(1)} dB</span>
        {previous ? <span className="legend-previous" data-testid="outline-legend">outline: {previous.runId}</span>
          : without && <span className="legend-previous" data-testid="outline-legend">outline: without the algorithms</span>}
        {local && <span className="legend-local">tick: local SQNR</span>}
        {layers.some((l) => l.sqnr === 'inf') && <span className="legend-inf">dashed bar: inf, no quantization error at it</span>}
        {changed.size > 0 && <span className="legend-changed" data-testid="changed-legend">mark under a bar: {changed.size} layers changed by {[...new Set([...changed.values()].flat())].join(', ')}</span>}
        {current.report.latency && (
          <span className="muted" title={current.report.latency.note}>
            {current.report.latency.models.map((m) => `${m.label} ${m.medianMs.toFixed(2)} ms`).join(' · ')} ({current.report.latency.where})
          </span>
        )}
      </div>
      {previous && (
        <p className="run-changes">
          <span data-testid="run-delta" title={difference?.title}>
            Against {previous.runId}: {difference?.sqnr ? `output SQNR ${difference.sqnr}${difference.metric ? `, ${difference.metric}` : ''}` : difference?.title}.
          </span>{' '}
          <span data-testid="run-changes">{changes.length ? `Changed: ${changes.join('; ')}` : 'The same recipe.'}</span>
        </p>
      )}
      <div className="toolbar tools">
        <AnalyzeControl />
        <RepairControl />
      </div>
      <div className="inspect-body">
        <div className="chart-column">
          <div className="segmented view-switch" role="radiogroup" aria-label="Show the layers as">
            <label><input type="radio" name="inspect-view" checked={view === 'chart'} onChange={() => setView('chart')} data-testid="show-chart" />bar chart</label>
            <label><input type="radio" name="inspect-view" checked={view === 'graph'} onChange={() => setView('graph')} data-testid="show-graph" />graph</label>
          </div>
          {view === 'graph' ? <GraphPane overlay={overlay} modes={modes} threshold={threshold} outline={graphOutline} selected={selected} onSelect={onSelect} /> : (
            <>
              <LayerChart layers={layers} previous={outline} local={local} changed={changed} sort={sort} colours={colours} threshold={threshold}
                selected={selected} onThreshold={setThreshold} onSelect={onSelect} />
              <ul className="legend" aria-label="Op types">
                {opLegend(layers.map((l) => l.op)).map((e) => <li key={e.label}><i style={{ background: e.colour }} />{e.label}</li>)}
              </ul>
            </>
          )}
          <AlgorithmsSection report={current.report} />
          {current.report.repair && <RepairSection repair={current.report.repair} report={current.report} />}
          {analysis && <AnalysisSection analysis={analysis} />}
          <LayerTable rows={tableRows} selected={selected} onSelect={onSelect} outline={previous ? previous.runId : without ? 'the recipe without its algorithms' : undefined}
            fileName={`${fileName(current.report.model.file).replace(/\.onnx$/i, '')}.${current.runId}.layers.csv`} />
        </div>
        <LayerPanel />
      </div>
      <HistoryTable />
      <div className="actions"><button type="button" className="primary" onClick={() => go('export')}>Export →</button></div>
    </section>
  );
}
