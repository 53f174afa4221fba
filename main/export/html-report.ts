// A self-contained HTML report of a run: no scripts, no external files, the per-layer chart drawn
// as inline SVG, so that it opens anywhere and can be attached to a ticket or a review.
import * as path from 'node:path';
import ELK from 'elkjs/lib/elk.bundled.js';
import { DEFAULT_THRESHOLD_DB, NO_VALUE_COLOUR, opColours, opLegend, sqnrBands } from '../../shared/colours';
import { graphOverlay } from '../../shared/graph';
import { layoutGraph } from '../../shared/graph-layout';
import { ARROW_MARKER, escapeXml, graphLooks, graphMarkup } from '../../shared/graph-svg';
import { loadModel } from '../onnx/model';
import { modelGraph } from '../plan/model-graph';
import { figureLabel, hostWords } from '../../shared/numerics';
import { describeTarget } from '../../shared/metrics';
import { layerCellText, layerColumns, layerTableRows, sortLayerRows, type LayerColumn, type LayerTableRow } from '../../shared/layer-table';
import { adaRoundWords, algorithmGain, biasCorrectionSource, formatDb, gptqWords, smoothQuantWords, layerAlgorithms, layersWithoutAlgorithms, repairCostWords, weightChangeWords, withoutWords, type AnalysisReport, type Db, type Quality, type Report } from '../../shared/report';

const esc = escapeXml;

const kB = (bytes: number) => `${(bytes / 1e3).toFixed(1)} kB`;

/** A table row of cells already escaped. */
const row = (cells: string[]) => `<tr>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`;

function finite(v: Db | undefined): number | undefined {
  return typeof v === 'number' ? v : undefined;
}

function chart(report: Report): string {
  const layers = report.layers;
  const width = 960;
  const height = 260;
  const pad = { left: 40, right: 10, top: 10, bottom: 20 };
  const values = layers.map((l) => finite(l.sqnr));
  const top = Math.max(10, ...values.filter((v): v is number => v !== undefined)) * 1.1;
  const w = (width - pad.left - pad.right) / Math.max(1, layers.length);
  const y = (v: number) => pad.top + (height - pad.top - pad.bottom) * (1 - Math.max(0, Math.min(v, top)) / top);
  const colours = opColours(layers.map((l) => l.op));
  let changed = 0;
  const bars = layers.map((l, i) => {
    const v = finite(l.sqnr) ?? top;
    const x = pad.left + i * w;
    const by = layerAlgorithms(report.algorithms, l.nodes);
    const bar = `<rect x="${x.toFixed(2)}" y="${y(v).toFixed(2)}" width="${Math.max(0.5, w - 0.5).toFixed(2)}" height="${(y(0) - y(v)).toFixed(2)}" fill="${colours.get(l.op)}"><title>${esc(l.name)} (${esc(l.op)}): ${formatDb(l.sqnr)} dB${by.length ? `; changed by ${by.join(', ')}` : ''}</title></rect>`;
    if (!by.length) return bar;
    changed++;
    return `${bar}<rect class="changed" x="${x.toFixed(2)}" y="${(y(0) + 3).toFixed(2)}" width="${Math.max(1, w - 0.5).toFixed(2)}" height="5" fill="#111"/>`;
  });
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const v = top * f;
    return `<line x1="${pad.left}" x2="${width - pad.right}" y1="${y(v)}" y2="${y(v)}" stroke="#ccc" stroke-width="0.5"/><text x="${pad.left - 4}" y="${y(v) + 3}" text-anchor="end" font-size="10">${v.toFixed(0)}</text>`;
  });
  const legend = opLegend(layers.map((l) => l.op)).map((e) => `<span class="key"><i style="background:${e.colour}"></i>${esc(e.label)}</span>`).join(' ')
    + (changed ? ` <span class="key"><i style="background:#111;height:5px"></i>under a bar: ${changed} layers changed by an algorithm</span>` : '');
  return `<svg viewBox="0 0 ${width} ${height}" width="100%" role="img" aria-label="Per-layer SQNR in graph order">${ticks.join('')}${bars.join('')}<text x="4" y="${height / 2}" font-size="10" transform="rotate(-90 8 ${height / 2})">SQNR dB</text></svg><p>${legend}</p>`;
}

/** Task metrics, the metric module's under its own name. */
function metricsLine(report: Report): string {
  const m = report.metrics ?? {};
  const label = (k: string) => (k === 'custom' && report.customMetric ? `${report.customMetric.name} (custom)` : k === 'float-custom' && report.customMetric ? `${report.customMetric.name}, float model` : k);
  return Object.entries(m).map(([k, v]) => `${esc(label(k))} ${v.toFixed(4)}`).join(', ');
}

/** What the recipe's algorithms did: each equalized pair with its weights' SQNR, each corrected layer's mean error. */
function algorithmsSection(report: Report): string {
  const a = report.algorithms;
  if (!a) return '';
  const parts: string[] = [];
  if (a.cle) {
    const exact = a.cle.pairs.some((p) => p.absorbed) ? 'the scaling keeps the float model\'s function; high-bias absorption changes it where a channel falls below its BatchNorm mean − 3 std' : 'the float model computes the same function';
    parts.push(`<h2>Cross-layer equalization (${a.cle.pairs.length} Conv pairs, ${a.cle.seconds.toFixed(2)} s; ${exact})</h2>
<table><tr><th>first</th><th>weight SQNR dB</th><th>between</th><th>second</th><th>weight SQNR dB</th><th>high-bias channels absorbed</th></tr>
${a.cle.pairs.map((p) => row([esc(p.first), weightChangeWords(p.weightSqnr.first), esc(p.via.join(' → ')), esc(p.second), weightChangeWords(p.weightSqnr.second), String(p.absorbed)])).join('\n')}
</table>`);
  }
  if (a.biasCorrection) {
    const b = a.biasCorrection;
    parts.push(`<h2>Bias correction (${esc(biasCorrectionSource(b))}, ${b.seconds.toFixed(1)} s)</h2>
<table><tr><th>layer</th><th>RMS mean output error before${b.method === 'analytic' ? ' (predicted)' : ''}</th><th>after</th></tr>
${[...b.layers].sort((x, y) => y.before - x.before).slice(0, 25).map((l) => row([esc(l.node), l.before.toPrecision(3), l.after.toPrecision(3)])).join('\n')}
</table>`);
  }
  if (a.adaround) {
    const d = a.adaround;
    parts.push(`<h2>AdaRound (${d.layers.length} layers, ${d.iterations} iterations each on ${d.samples} calibration samples, ${d.seconds.toFixed(1)} s)</h2>
<p>${esc(adaRoundWords(d))}. Output SQNR: the quantized layer on the inputs the quantized model gives it (the layers before it rounded as learned) against the float layer, on the calibration samples, before its output is quantized.</p>
<table><tr><th>layer</th><th>rounding kept</th><th>weights rounded the other way</th><th>output SQNR dB</th><th>weight SQNR dB</th></tr>
${d.layers.map((l) => row([esc(l.node), l.kept, `${(l.changed * 100).toFixed(1)}%`, weightChangeWords(l.outputSqnr), weightChangeWords(l.weightSqnr)])).join('\n')}
</table>`);
  }
  if (a.smoothquant) {
    const s = a.smoothquant;
    parts.push(`<h2>SmoothQuant (α ${s.alpha}, ${s.layers.length} activations, ${s.samples} calibration samples, ${s.seconds.toFixed(1)} s)</h2>
<p>${esc(smoothQuantWords(s))}. Outlier ratio: the widest channel's range over the mean channel's, on the calibration samples, before → after.</p>
<table><tr><th>activation</th><th>divided in</th><th>read by</th><th>outlier ratio</th></tr>
${s.layers.map((l) => row([esc(l.input), esc(l.producer), esc(l.consumers.join(', ')), `${l.outlierRatio.before} → ${l.outlierRatio.after}`])).join('\n')}
</table>${s.skipped.length ? `<p>Not smoothed: ${s.skipped.map((k) => `${esc(k.input)} (${esc(k.reason)})`).join('; ')}.</p>` : ''}`);
  }
  if (a.gptq) {
    const g = a.gptq;
    parts.push(`<h2>GPTQ (${g.layers.length} layers, ${esc(g.grid)}${g.actOrder ? ', act-order' : ''}, damping ${g.damp}, on ${g.samples} calibration samples, ${g.seconds.toFixed(1)} s)</h2>
<p>${esc(gptqWords(g))}. Output SQNR: the layer's output on the float model's calibration inputs, its weight rounded to nearest → quantized by GPTQ.</p>
<table><tr><th>layer</th><th>weight</th><th>kept</th><th>output SQNR dB</th></tr>
${g.layers.map((l) => row([esc(l.node), esc(l.weight), l.kept + (l.note ? ` (${esc(l.note)})` : ''), weightChangeWords(l.outputSqnr)])).join('\n')}
</table>`);
  }
  if (a.without) {
    const gains = report.layers.flatMap((l) => {
      const g = algorithmGain(a.without!, l);
      return g === undefined ? [] : [{ l, g }];
    }).sort((x, y) => x.g - y.g);
    const shown = [...gains.slice(0, 10), ...gains.slice(Math.max(10, gains.length - 10))];
    parts.push(`<h2>Against the same recipe without the algorithms</h2>
<p>Together, ${esc(withoutWords(a.without, report))}. The layers that lost most and gained most, cumulative SQNR:</p>
<table><tr><th>tensor</th><th>op</th><th>without dB</th><th>with dB</th><th>gain dB</th></tr>
${shown.map(({ l, g }) => row([esc(l.name), esc(l.op), formatDb(a.without!.layers[l.name]), formatDb(l.sqnr), `${g >= 0 ? '+' : ''}${g.toFixed(2)}`])).join('\n')}
</table>`);
  }
  if (a.withoutNote) parts.push(`<p>Per-layer baseline without the algorithms: ${esc(a.withoutNote)}.</p>`);
  return parts.join('\n');
}

/** What a repair changed and why: its target, before → after on its search samples, the cost, each change. */
function repairSection(report: Report): string {
  const rep = report.repair;
  if (!rep) return '';
  const quality = (q: Quality) => `output SQNR ${formatDb(q.outputSqnr)} dB${Object.entries(q.metrics).map(([k, v]) => `, ${k === 'custom' && report.customMetric ? report.customMetric.name : k} ${v.toFixed(4)}`).join('')}`;
  return `<h2>Repair to ${esc(describeTarget(rep.target))}: ${rep.met ? 'met' : 'not met'}</h2>
<p>${esc(rep.reason)}. On ${rep.before.samples} search samples, ${esc(rep.numerics)} numerics: ${esc(quality(rep.before))} → ${esc(quality(rep.after))}. ${esc(repairCostWords(rep, report))}; ${rep.runs} runs, ${rep.seconds.toFixed(0)} s.</p>
${rep.changes.length ? `<table><tr><th>change</th><th>what</th><th>why</th></tr>
${rep.changes.map((c) => row([esc(c.action), esc(`${c.name}${c.node ? ` (${c.op} ${c.node})` : ''}`), esc(c.why)])).join('\n')}
</table>` : ''}`;
}

/** Every quantized tensor, worst first, with the studio's columns; Δ against the recipe without its algorithms where the run measured it. */
function layerTable(report: Report): string {
  const rows = sortLayerRows(layerTableRows(report.layers, { outline: layersWithoutAlgorithms(report) }), 'sqnr', false);
  const kept = new Map(report.layers.map((l) => [l.name, l.keptInFloat]));
  const columns = layerColumns(rows);
  const cell = (r: LayerTableRow, key: LayerColumn): string => {
    const float = key === 'sqnr' ? kept.get(r.name) : undefined;
    return float ? `inf (kept in float; ${formatDb(float.sqnr)} from upstream)` : esc(layerCellText(r, key, formatDb) ?? '');
  };
  const head = `<tr>${columns.map((c) => `<th>${esc(c.key === 'delta' ? 'Δ dB vs without the algorithms' : c.title)}</th>`).join('')}</tr>`;
  return `<table>${head}\n${rows.map((r) => row(columns.map((c) => cell(r, c.key)))).join('\n')}\n</table>`;
}

/** The sensitivity analysis as Inspect shows it, with every ranked unit rather than the top ten. */
function analysisSection(a: AnalysisReport): string {
  const d = (v: Db | undefined) => (v === undefined ? '—' : formatDb(v));
  return `<h2>Analysis (${a.sensitivity.length} units ranked; ${esc(figureLabel(a.numerics, a.samples))})</h2>
<p>${a.firstDrop ? `Error starts at ${esc(a.firstDrop.name)}: cumulative SQNR falls from ${formatDb(a.firstDrop.from)} to ${formatDb(a.firstDrop.to)} dB.` : 'No sharp drop: cumulative SQNR falls gradually, layer by layer.'}
Worst local SQNR (their own quantization, exact inputs): ${a.worstLocal.map(esc).join(', ')}.</p>
<p>Sensitivity: output SQNR with only that layer in float (baseline ${formatDb(a.baseline.outputSqnr)} dB; ${a.skipped} layers skipped as unable to matter; ${a.runs} runs).</p>
<table><tr><th>#</th><th>layer</th><th>op</th><th>only in float dB</th><th>only quantized dB</th><th>local dB</th></tr>
${a.sensitivity.map((r) => row([String(r.rank), esc(r.tensors[0] ?? r.name), esc(r.op), d(r.onlyFloat), d(r.onlyQuantized), d(r.localSqnr)])).join('\n')}
</table>
${a.warnings.length ? `<ul>${a.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` : ''}`;
}

/** Past this many nodes the report leaves the graph to the studio: its SVG would run to megabytes. */
export const REPORT_GRAPH_NODES = 5000;

/**
 * The model's graph coloured by each node's cumulative SQNR, as the studio's graph view draws it,
 * laid out here with ELK: an SVG section of the report, or a sentence saying why there is none.
 */
export async function reportGraph(modelFile: string, report: Report, analysis?: AnalysisReport): Promise<string> {
  const graph = modelGraph(loadModel(modelFile).model);
  if (graph.nodeCount > REPORT_GRAPH_NODES) {
    return `<p>The model has ${graph.nodeCount} nodes, more than the report draws (${REPORT_GRAPH_NODES}): the studio's graph view shows them.</p>`;
  }
  const layout = await layoutGraph(new ELK(), graph);
  const overlay = graphOverlay(graph, report, analysis);
  const body = graphMarkup(layout, graphLooks(graph, overlay, 'sqnr', DEFAULT_THRESHOLD_DB), graph.shapes);
  const legend = [...sqnrBands(DEFAULT_THRESHOLD_DB), { label: 'not quantized', colour: NO_VALUE_COLOUR }]
    .map((b) => `<span class="key"><i style="background:${b.colour}"></i>${esc(b.label)}</span>`).join(' ');
  const w = Math.ceil(layout.width);
  const h = Math.ceil(layout.height);
  return `<p>Each node coloured by the cumulative SQNR of the tensor it makes (${esc(figureLabel(report.numerics, report.samples.evaluation))}); dashed: folded by prepare; tagged: kept in float or 16-bit. Hover a node for its figures.</p>
<p>${legend}</p>
<div class="graph"><svg class="graph-svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="Graph of the model, coloured by SQNR"><defs>${ARROW_MARKER}</defs>${body}</svg></div>`;
}

/** The report's graph section and analysis, when the export has them. */
export interface ReportExtras {
  analysis?: AnalysisReport;
  /** From reportGraph. */
  graph?: string;
}

export function htmlReport(report: Report, extras: ReportExtras = {}): string {
  const r = report.recipe;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Quant Studio report: ${esc(path.basename(report.model.file))}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1000px;padding:0 1rem;color:#1d232a;background:#fff}
@media (prefers-color-scheme:dark){body{color:#e6e9ee;background:#15191e}td,th{border-color:#333}}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}td,th{border-bottom:1px solid #ddd;padding:.2rem .5rem;text-align:left;font-variant-numeric:tabular-nums}
.key{display:inline-block;margin-right:.8rem}.key i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:-1px}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
.graph{overflow:auto;max-height:80vh;border:1px solid #ddd}
.graph-svg text{font:10px system-ui,sans-serif;fill:#111}.graph-svg .gop{font-size:12px;font-weight:600;text-anchor:middle}.graph-svg .gname{text-anchor:middle}
.graph-svg .gdark text{fill:#fff}.graph-svg .gnode>rect{stroke:rgba(0,0,0,.35)}.graph-svg .gfolded>rect{stroke-dasharray:4 3;opacity:.55}
.graph-svg .gtag{font-size:8px;font-weight:700;text-anchor:end}.graph-svg .gedge{fill:none;stroke:#888}.graph-svg marker path{fill:#888}
.graph-svg .gshape{font-size:9px;fill:#777}.graph-svg .gbody rect{fill:none;stroke:#888;stroke-dasharray:3 3}.graph-svg .gtoggle{display:none}
</style></head><body>
<h1>${esc(path.basename(report.model.file))} → ${esc(report.backend)} ${esc(r.kind)}</h1>
<table>
${row([`Output SQNR, ${esc(figureLabel(report.numerics, report.samples.evaluation))}`, report.outputs.map((o) => `${esc(o.name)}: <b>${formatDb(o.sqnr)} dB</b> (max abs error ${o.maxAbsError.toPrecision(3)})`).join('<br>')])}
${report.metrics && Object.keys(report.metrics).length ? row([`Task metrics, ${esc(figureLabel(report.numerics, report.samples.evaluation))}`, metricsLine(report)]) : ''}
${report.deployed ? row([`As deployed, ${esc(figureLabel(report.deployed.numerics, report.deployed.samples))}`, report.deployed.outputs.map((o) => `${esc(o.name)}: <b>${formatDb(o.sqnr)} dB</b> (max abs error ${o.maxAbsError.toPrecision(3)})`).join('<br>') + (report.deployed.note ? `<br>${esc(report.deployed.note)}` : '')]) : ''}
${row(['This machine', esc([hostWords(report.host, report.backend), report.host.saturationFix?.words, report.host.webgpu].filter(Boolean).join(' '))])}
${row(['Size', `${kB(report.sizes.floatBytes)} → ${kB(report.sizes.quantizedBytes)} (${(report.sizes.ratio * 100).toFixed(1)}%)`])}
${row(['Recipe', esc(`activations ${r.activationType}, weights ${r.weightType} ${r.granularity}, method ${r.method}${r.excludeNodes.length ? `, ${r.excludeNodes.length} node(s) excluded` : ''}${Object.keys(r.overrides).length ? `, ${Object.keys(r.overrides).length} tensor override(s)` : ''}${r.algorithms?.cle ? ', cross-layer equalization' : ''}${r.algorithms?.biasCorrection ? ', bias correction' : ''}${r.algorithms?.adaround ? `, AdaRound (${r.algorithms.adaround.iterations} iterations)` : ''}${r.algorithms?.smoothquant ? ', SmoothQuant' : ''}${r.algorithms?.gptq ? ', GPTQ' : ''}`)])}
${row(['Data', esc(`calibration: ${report.data.calibration} (${report.samples.calibration} samples); evaluation: ${report.data.evaluation}`)])}
${row(['Placement', esc(`${Object.entries(report.preflight.counts).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`).join(', ')} of ${report.preflight.total} nodes on ${report.preflight.device}`)])}
${report.latency ? row(['Latency', esc(`${report.latency.models.map((m) => `${m.label} ${m.medianMs.toFixed(2)} ms`).join(', ')} (${report.latency.where})`)]) : ''}
${row(['Time', esc(`load ${report.timings.load} ms, calibrate ${report.timings.calibrate} ms, convert ${report.timings.convert} ms, evaluate ${report.timings.evaluate} ms`)])}
</table>
<h2>Per-layer SQNR (${report.layers.length} quantized tensors, graph order; ${esc(figureLabel(report.numerics, report.samples.evaluation))})</h2>
${chart(report)}
<h2>Layers, worst first (${report.layers.length})</h2>
${layerTable(report)}
${repairSection(report)}
${algorithmsSection(report)}
${extras.analysis ? analysisSection(extras.analysis) : ''}
${extras.graph ? `<h2>Graph (${report.layers.length} quantized tensors coloured by SQNR)</h2>\n${extras.graph}` : ''}
<h2>Nodes left in float (${report.float.length})</h2>
<table><tr><th>node</th><th>op</th><th>why</th></tr>
${report.float.map((f) => row([esc(f.node), esc(f.op), esc(f.reason)])).join('\n')}
</table>
${report.warnings.length ? `<h2>Warnings</h2><ul>${report.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` : ''}
<p><small>${esc(report.tool.name)} ${esc(report.tool.version)}</small></p>
</body></html>
`;
}
