// The Inspect screen's analysis, repair and run-history sections. They read the store only; the
// engine does the work (analysis and repair are jobs of the studio service).
import { describeTarget, headlineMetric, lowerIsBetter, needsLabels, TARGET_METRICS, targetValueProblem, type TargetMetric } from '../../shared/metrics';
import { figureLabel } from '../../shared/numerics';
import { adaRoundWords, biasCorrectionSource, biasErrorRms, dbDelta, gptqWords, smoothQuantWords, deltaText, higherPrecisionLayers, withoutWords, repairCostWords, worstDb, type AnalysisReport, type CleReport, type CustomMetricReport, type Db, type Quality, type RepairReport, type Report } from '../../shared/report';
import type { WeightDetail } from '../../shared/ipc';
import { Histogram } from '../charts/Histogram';
import { useStudio } from '../context';
import { bytes, count, db } from '../format';
import type { HistoryEntry } from '../store';

const STAGE_TITLES: Record<string, string> = { load: 'loading', evaluate: 'measuring local and cumulative SQNR', sensitivity: 'one layer in float at a time' };

/** How many ranking rows the table shows: the top of the ranking is what a person acts on. */
const RANKING_ROWS = 10;

/** Why Analyze and Repair cannot start now, in words on screen (a tooltip alone is found by no keyboard user). */
function disabledWhy(kind: string, runStatus: string, analysing: boolean): string {
  if (kind !== 'static') return `needs static quantization: a ${kind} run has no calibrated activations`;
  if (runStatus === 'running' || runStatus === 'cancelling') return 'waits for the run in progress';
  return analysing ? 'waits for the analysis in progress' : '';
}

export function AnalyzeControl() {
  const current = useStudio((s) => s.current);
  const analysis = useStudio((s) => s.analysis);
  const analyzed = useStudio((s) => (s.current ? s.analyses[s.current.runId] : undefined));
  const analyze = useStudio((s) => s.analyze);
  const cancel = useStudio((s) => s.cancelAnalysis);
  const showLocal = useStudio((s) => s.showLocal);
  const setShowLocal = useStudio((s) => s.setShowLocal);
  const runStatus = useStudio((s) => s.status);
  if (!current) return null;
  const mine = analysis.of === current.runId;
  const running = mine && (analysis.status === 'running' || analysis.status === 'cancelling');
  const fraction = running && analysis.total > 0 ? analysis.done / analysis.total : 0;
  const staticRun = current.report.recipe.kind === 'static';
  const busy = runStatus === 'running' || runStatus === 'cancelling' || (analysis.status === 'running' && !mine);
  return (
    <div className="analyze-control" data-testid="analyze-control">
      {running ? (
        <button type="button" data-testid="analyze-cancel" onClick={() => void cancel()} disabled={analysis.status === 'cancelling'}>Cancel analysis</button>
      ) : (
        <button type="button" data-testid="analyze" onClick={() => void analyze()} disabled={busy || !staticRun}
          title={staticRun ? 'Local SQNR per layer and the output with each layer alone in float (from the saved ranges)' : `${current.report.recipe.kind} quantization has no calibrated activations to analyse`}>
          {analyzed ? 'Analyze again' : 'Analyze'}
        </button>
      )}
      {/* Always in the layout, so the toolbar does not move when the analysis starts or ends. */}
      <progress max={1} value={fraction} aria-label="Analysis progress" className={running ? '' : 'idle'} />
      <span className="muted small analyze-status" role="status" aria-live="polite">
        {running ? (analysis.status === 'cancelling' ? 'cancelling…' : `${STAGE_TITLES[analysis.stage ?? 'load'] ?? analysis.stage} ${analysis.total ? `${analysis.done}/${analysis.total}` : ''}`)
          : mine && analysis.status === 'cancelled' ? 'analysis cancelled'
            : analyzed ? `analysed on ${analyzed.samples} samples in ${(analyzed.timings.total / 1000).toFixed(1)} s` : ''}
      </span>
      <label className={analyzed ? '' : 'muted'}>
        <input type="checkbox" data-testid="show-local" checked={showLocal && Boolean(analyzed)} disabled={!analyzed} onChange={(e) => setShowLocal(e.target.checked)} />
        local SQNR ticks
      </label>
      {!running && (busy || !staticRun) && <span className="muted small" data-testid="analyze-why">{disabledWhy(current.report.recipe.kind, runStatus, analysis.status === 'running' && !mine)}</span>}
      {mine && analysis.status === 'failed' && <p className="error" role="alert">Analysis failed: {analysis.error}</p>}
    </div>
  );
}

const dbOrDash = (v: Db | undefined) => (v === undefined ? '—' : db(v));

/** A weight-only or dynamic layer's weight: its float values against the stored ones dequantized, and the scales they are stored with. */
export function WeightValues({ weights: w }: { weights: WeightDetail }) {
  const spread = w.scales.median > 0 ? w.scales.max / w.scales.median : undefined;
  return (
    <section className="weight-values" aria-labelledby="weight-values-title" data-testid="weight-values">
      <h4 id="weight-values-title">Weight {w.name}: float against dequantized, as stored</h4>
      <Histogram bins={w.histogram} />
      <dl className="facts compact">
        <div><dt>Weights</dt><dd>{count(w.values)}</dd></div>
        <div><dt>Scales</dt><dd data-testid="weight-scales">{count(w.scales.count)}, {w.granularity}{w.blockSize ? `: ${w.blockSize} weights each` : ''}</dd></div>
        <div className="span2"><dt>Scale min / median / max</dt>
          <dd data-testid="weight-scale-stats">{w.scales.min.toPrecision(3)} / {w.scales.median.toPrecision(3)} / {w.scales.max.toPrecision(3)}{spread !== undefined && spread >= 4 ? <span className="muted"> (the largest {spread.toFixed(0)}× the median: an outlier widens its {w.blockSize ? 'block' : 'channel'}'s step)</span> : null}</dd>
        </div>
        <div><dt>Clipped</dt><dd data-testid="weight-clipped" title="weights further than half a step from their float value: cut at the end of the integer grid">{count(w.clipped)}{w.values ? ` (${((100 * w.clipped) / w.values).toFixed(2)}%)` : ''}</dd></div>
      </dl>
    </section>
  );
}

export function AnalysisSection({ analysis }: { analysis: AnalysisReport }) {
  const select = useStudio((s) => s.selectLayer);
  const selected = useStudio((s) => s.selected);
  const layers = useStudio((s) => s.current?.report.layers);
  const known = new Set(layers?.map((l) => l.name));
  const open = (name: string) => known.has(name) && void select(name);
  const link = (name: string) => (known.has(name)
    ? <button type="button" className="link" onClick={() => open(name)}>{name}</button>
    : <span>{name}</span>);
  const rows = analysis.sensitivity.slice(0, RANKING_ROWS);
  return (
    <section className="analysis" aria-labelledby="analysis-title" data-testid="analysis">
      <h3 id="analysis-title">Analysis</h3>
      <p data-testid="first-drop">
        {analysis.firstDrop
          ? <>Error starts at {link(analysis.firstDrop.name)}: cumulative SQNR falls from {db(analysis.firstDrop.from)} to {db(analysis.firstDrop.to)} dB.</>
          : 'No sharp drop: cumulative SQNR falls gradually, layer by layer.'}
      </p>
      <p data-testid="worst-local">Worst local SQNR (their own quantization, exact inputs): {analysis.worstLocal.map((n, i) => <span key={n}>{i ? ', ' : ''}{link(n)}</span>)}.</p>
      <table className="grid ranking" data-testid="ranking">
        <caption>Sensitivity: output SQNR with only that layer in float (baseline <span data-testid="analysis-baseline">{db(analysis.baseline.outputSqnr)} dB</span>, {figureLabel(analysis.numerics, analysis.samples)}; {analysis.skipped} layers skipped as unable to matter)</caption>
        <thead><tr><th className="num">#</th><th>layer</th><th>op</th><th className="num">only in float dB</th><th className="num">only quantized dB</th><th className="num">local dB</th></tr></thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.name} className={r.name === selected ? 'selected' : ''}>
              <td className="num">{r.rank}</td><td>{link(r.tensors[0] ?? r.name)}</td><td>{r.op}</td>
              <td className="num">{dbOrDash(r.onlyFloat)}</td><td className="num">{dbOrDash(r.onlyQuantized)}</td><td className="num">{dbOrDash(r.localSqnr)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {analysis.warnings.length > 0 && <ul className="warnings" aria-label="Analysis warnings">{analysis.warnings.map((w, i) => <li key={i}>{w}</li>)}</ul>}
    </section>
  );
}

export function RepairControl() {
  const current = useStudio((s) => s.current);
  const draft = useStudio((s) => s.repairDraft);
  const setDraft = useStudio((s) => s.setRepairDraft);
  const repair = useStudio((s) => s.repair);
  const status = useStudio((s) => s.status);
  const analysisRunning = useStudio((s) => s.analysis.status === 'running' || s.analysis.status === 'cancelling');
  if (!current) return null;
  const staticRun = current.report.recipe.kind === 'static';
  const custom = current.report.customMetric;
  // Accuracies where the run had class-id labels, the metric module's score where it had one.
  const offered = TARGET_METRICS.filter((m) => (m === 'custom' ? Boolean(custom) : !needsLabels(m) || current.report.metrics?.[m] !== undefined));
  const problem = draft.kind === 'sqnr' ? (Number.isFinite(draft.sqnr) ? undefined : 'a number of dB') : targetValueProblem(draft.metric, draft.metricValue);
  const valid = !problem;
  const busy = status === 'running' || status === 'cancelling' || analysisRunning;
  return (
    <form className="repair-control" aria-label="Repair to target" onSubmit={(e) => { e.preventDefault(); if (valid && !busy) void repair(); }}>
      <label>Repair to
        <select data-testid="repair-kind" value={draft.kind === 'sqnr' ? 'sqnr' : draft.metric}
          onChange={(e) => (e.target.value === 'sqnr' ? setDraft({ kind: 'sqnr' }) : setDraft({ kind: 'metric', metric: e.target.value as TargetMetric }))}>
          <option value="sqnr">output SQNR (dB) ≥</option>
          {offered.map((m) => <option key={m} value={m}>{m === 'custom' ? `${custom!.name} (custom)` : m} {lowerIsBetter(m) ? '≤' : '≥'}</option>)}
        </select>
      </label>
      {draft.kind === 'sqnr'
        ? <input type="number" data-testid="repair-value" aria-label="Target output SQNR in dB" step={1} value={draft.sqnr} onChange={(e) => setDraft({ sqnr: e.target.valueAsNumber })} />
        : <input type="number" data-testid="repair-value" aria-label={`Target ${draft.metric}`} step={0.01} {...(draft.metric === 'custom' ? {} : draft.metric === 'perplexity' ? { min: 1 } : { min: 0.01, max: 1 })} value={draft.metricValue} onChange={(e) => setDraft({ metricValue: e.target.valueAsNumber })} />}
      <button type="submit" data-testid="repair" disabled={!valid || busy || !staticRun}
        title={staticRun ? 'Calibrates again, re-chooses calibration methods, then moves the fewest layers to 16-bit or float until the target holds' : 'repair needs static quantization'}>
        Repair
      </button>
      {(busy || !staticRun) && <span className="muted small" data-testid="repair-why">{disabledWhy(current.report.recipe.kind, status, analysisRunning)}</span>}
      {problem && <span className="error small">{problem}</span>}
    </form>
  );
}

function quality(q: Quality, custom?: CustomMetricReport): string {
  const shown = ['top1-agreement', 'accuracy', 'perplexity', 'cosine', 'custom'];
  return `${db(q.outputSqnr)} dB${Object.entries(q.metrics).filter(([k]) => shown.includes(k)).map(([k, v]) => `, ${metricLabel(k, custom)} ${v.toFixed(3)}`).join('')}`;
}

/** A metric's name as a screen shows it: the module's own name for `custom`. */
export function metricLabel(key: string, custom?: CustomMetricReport): string {
  return key === 'custom' && custom ? custom.name : key;
}



const ACTION_WORDS = (action: string) => (action === 'float' ? 'kept in float' : action.startsWith('method:') ? `calibration method → ${action.slice(7)}`
  : action === 'algorithm:cle' ? 'cross-layer equalization applied' : action === 'algorithm:smoothquant' ? 'SmoothQuant applied' : action === 'algorithm:adaround' ? 'AdaRound applied' : action === 'algorithm:bias-correction' ? 'bias correction applied' : `activations to ${action}`);

export function RepairSection({ repair, report }: { repair: RepairReport; report: Report }) {
  const select = useStudio((s) => s.selectLayer);
  const known = new Set(report.layers.map((l) => l.name));
  const target = describeTarget(repair.target);
  return (
    <section className="repair" aria-labelledby="repair-title" data-testid="repair-result">
      <h3 id="repair-title">Repair ({target}): <span className={repair.met ? 'ok' : 'error'}>{repair.met ? 'met' : 'not met'}</span></h3>
      <p>{repair.reason}</p>
      <dl className="facts compact">
        <div><dt>Before</dt><dd data-testid="repair-before">{quality(repair.before, report.customMetric)}</dd></div>
        <div><dt>After</dt><dd data-testid="repair-after">{quality(repair.after, report.customMetric)}</dd></div>
        <div><dt>Measured in</dt><dd data-testid="repair-numerics">{figureLabel(repair.numerics, repair.before.samples)}</dd></div>
        <div><dt>Cost</dt><dd data-testid="repair-cost">{repairCostWords(repair, report)}</dd></div>
        <div><dt>Search</dt><dd>{repair.runs} runs, {repair.seconds.toFixed(1)} s</dd></div>
      </dl>
      {repair.changes.length > 0 && (
        <table className="grid" data-testid="repair-changes">
          <caption>What it changed</caption>
          <thead><tr><th>layer</th><th>op</th><th>change</th><th>why</th></tr></thead>
          <tbody>
            {repair.changes.map((c) => (
              <tr key={`${c.name}:${c.action}`}>
                <td>{known.has(c.name) ? <button type="button" className="link" onClick={() => void select(c.name)}>{c.name}</button> : c.name}</td>
                <td>{c.op}</td><td>{ACTION_WORDS(c.action)}</td><td>{c.why}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/**
 * The shown run minus the outlined one: output SQNR in dB and the headline task metric, where both
 * were measured in the same numerics on the same number of samples (else the difference would be
 * theirs, and there is none to give).
 */
export function runDifference(report: Report, outlined: Report): { sqnr?: string; metric?: string; title: string } {
  const label = figureLabel(report.numerics, report.samples.evaluation);
  const other = figureLabel(outlined.numerics, outlined.samples.evaluation);
  if (label !== other) return { title: `not comparable: this run is in ${label}, the outlined one in ${other}` };
  const key = report.metrics && headlineMetric(report.metrics);
  const was = key && outlined.metrics?.[key];
  return {
    sqnr: `${deltaText(dbDelta(worstOutput(report.outputs), worstOutput(outlined.outputs)))} dB`,
    ...(key && was !== undefined ? { metric: `${metricLabel(key, report.customMetric)} ${deltaText(report.metrics![key]! - was, 3)}` } : {}),
    title: `this run minus the outlined one, ${label}`,
  };
}

/** One line of what a run was: backend, types, method, and what it changed against its recipe. */
export function configSummary(entry: HistoryEntry): string {
  const r = entry.result.report.recipe;
  const types = r.kind === 'static' ? `${r.activationType}/${r.weightType}` : `${r.kind} ${r.weightType}`;
  const overrides = Object.values(r.overrides).filter((o) => o.float || o.type).length;
  const origin = entry.origin.kind === 'override' ? `, re-run of ${entry.origin.of}`
    : entry.origin.kind === 'repair' ? `, repair of ${entry.origin.of} to ${entry.origin.target.kind === 'sqnr' ? `${entry.origin.target.value} dB` : `${entry.origin.target.metric} ${entry.origin.target.value}`}` : '';
  return `${r.backend} ${types} ${r.method}${r.algorithms?.cle ? ' + CLE' : ''}${r.algorithms?.biasCorrection ? ' + bias correction' : ''}${r.algorithms?.adaround ? ' + AdaRound' : ''}${r.algorithms?.gptq ? ' + GPTQ' : ''}${r.algorithms?.smoothquant ? ' + SmoothQuant' : ''}${overrides ? `, ${overrides} override(s)` : ''}${origin}`;
}

function worstOutput(outputs: ReadonlyArray<{ sqnr: Db }>): Db {
  return worstDb(outputs.map((o) => o.sqnr));
}

function taskMetric(entry: HistoryEntry): string {
  const { metrics: m, customMetric } = entry.result.report;
  if (!m) return '—';
  const key = headlineMetric(m);
  // A language model's accuracy is next-token accuracy; its perplexity says how sure it stays.
  const perplexity = m.perplexity !== undefined ? `, perplexity ${m.perplexity.toFixed(2)} (float ${m['float-perplexity']!.toFixed(2)})` : '';
  return key ? `${metricLabel(key, customMetric)} ${m[key]!.toFixed(3)}${perplexity}` : '—';
}

export function HistoryTable() {
  const history = useStudio((s) => s.history);
  const current = useStudio((s) => s.current);
  const previous = useStudio((s) => s.previous);
  const show = useStudio((s) => s.showRun);
  const outline = useStudio((s) => s.outlineRun);
  const busy = useStudio((s) => s.status === 'running' || s.status === 'cancelling');
  if (history.length === 0) return null;
  return (
    <table className="grid history" data-testid="history">
      <caption>Runs of this session: pick one to show, another to outline under it</caption>
      <thead>
        <tr><th>run</th><th>configuration</th><th className="num">output SQNR dB</th><th className="num">as deployed dB</th><th>task metric</th><th className="num">size</th><th className="num">higher precision</th><th>show</th><th>outline</th></tr>
      </thead>
      <tbody>
        {history.map((h) => {
          const id = h.result.runId;
          const report = h.result.report;
          const repair = report.repair;
          return (
            <tr key={id} data-run={id} className={id === current?.runId ? 'selected' : ''}>
              <td>{id}</td>
              <td>{configSummary(h)}</td>
              <td className="num" title={figureLabel(report.numerics, report.samples.evaluation)}>{db(worstOutput(report.outputs))} <span className="muted small">{report.numerics}</span></td>
              <td className="num" title={report.deployed ? figureLabel(report.deployed.numerics, report.deployed.samples) : 'no runtime of this backend on this machine'}>
                {report.deployed ? <>{db(worstOutput(report.deployed.outputs))} <span className="muted small">{report.deployed.numerics}</span></> : '—'}
              </td>
              <td>{taskMetric(h)}</td>
              <td className="num">{bytes(report.sizes.quantizedBytes)}</td>
              <td className="num" title="layers kept in float or given more bits; for a repair, how many of them it moved">
                {higherPrecisionLayers(report)}{repair ? ` (repair moved ${repair.cost.unitsChanged}${repair.changes.some((c) => c.action.startsWith('method:')) ? ', re-ranged' : ''}{repair.changes.some((c) => c.action.startsWith('algorithm:')) ? ', + algorithms' : ''})` : ''}
              </td>
              <td><input type="radio" name="history-show" aria-label={`Show ${id}`} checked={id === current?.runId} disabled={busy} onChange={() => show(id)} /></td>
              <td><input type="checkbox" aria-label={`Outline ${id}`} checked={id === previous?.runId} disabled={id === current?.runId}
                onChange={(e) => outline(e.target.checked ? id : undefined)} /></td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

/** What the recipe's algorithms did to this run, in the words of the report. */
export function AlgorithmsSection({ report }: { report: Report }) {
  const a = report.algorithms;
  if (!a) return null;
  const worse = (p: CleReport['pairs'][number], k: 'before' | 'after') =>
    Math.min(...[p.weightSqnr.first?.[k], p.weightSqnr.second?.[k]].map((v) => (typeof v === 'number' ? v : Infinity)));
  const gained = a.cle?.pairs.filter((p) => worse(p, 'after') > worse(p, 'before')).length ?? 0;
  const absorbed = a.cle?.pairs.reduce((n, p) => n + p.absorbed, 0) ?? 0;
  return (
    <section className="algorithms" aria-labelledby="algorithms-title" data-testid="algorithms">
      <h3 id="algorithms-title">Algorithms</h3>
      <ul>
        {a.cle && <li>Cross-layer equalization: {a.cle.pairs.length} Conv pairs rescaled (the float model is the same function); the worse weight of {gained} of them gained SQNR{absorbed ? `; high bias of ${absorbed} channels absorbed into the next conv, which changes the float model where a channel falls below its BatchNorm mean − 3 std` : ''}, {a.cle.seconds.toFixed(2)} s.</li>}
        {a.biasCorrection && <li>Bias correction: {biasCorrectionSource(a.biasCorrection)}, RMS mean output error{a.biasCorrection.method === 'analytic' ? ' (predicted)' : ''} {biasErrorRms(a.biasCorrection, 'before').toPrecision(3)} → {biasErrorRms(a.biasCorrection, 'after').toPrecision(3)}, {a.biasCorrection.seconds.toFixed(1)} s.</li>}
        {a.adaround && <li>AdaRound: {adaRoundWords(a.adaround)}.</li>}
        {a.smoothquant && <li data-testid="algorithms-smoothquant">SmoothQuant: {smoothQuantWords(a.smoothquant)}.</li>}
        {a.gptq && <li data-testid="algorithms-gptq">GPTQ: {gptqWords(a.gptq)}.</li>}
        {a.without && <li data-testid="algorithms-without">Together, {withoutWords(a.without, report)}; outlined on the chart unless another run is.</li>}
        {a.withoutNote && <li>Per-layer baseline without the algorithms: {a.withoutNote}.</li>}
      </ul>
    </section>
  );
}
