// The screens rendered to markup against a store driven by the test host: what a person sees at
// each step, the options a backend refuses greyed out with the reason, and the chart fed rows.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { renderToStaticMarkup } from 'react-dom/server';
import { App } from '../../renderer/App';
import { axisBottom, axisTop, chartRows } from '../../renderer/charts/LayerChart';
import { StoreContext } from '../../renderer/context';
import { createStore } from 'zustand/vanilla';
import { createStudioStore, type Studio, type StudioStore } from '../../renderer/store';
import { recipeFor } from '../../shared/backends';
import type { LayerReport } from '../../shared/report';
import { testHost, type TestHost } from './test-host';

let host: TestHost;
before(() => {
  host = testHost();
});
after(() => host.close());

/**
 * Server rendering reads a zustand store's initial state (useSyncExternalStore's server snapshot),
 * so the markup is rendered from a store whose initial state is the live store's current one.
 */
function render(store: StudioStore): string {
  const snapshot = createStore<Studio>()(() => store.getState());
  return renderToStaticMarkup(<StoreContext.Provider value={snapshot}><App api={host.api} /></StoreContext.Provider>);
}

test('Import offers the drop zone, Open…, the sample and a path field', () => {
  const html = render(createStudioStore(host.api));
  assert.match(html, /Drop an <code>\.onnx<\/code> file here/);
  assert.match(html, />Open…<\/button>/);
  assert.match(html, />Try the sample model<\/button>/);
  assert.match(html, /id="model-path"/);
  // Later steps are not reachable before a model is open.
  assert.match(html, /<button type="button" disabled="">3\. Configure<\/button>/);
});

test('Import shows why a model could not be opened, in place', async () => {
  const store = createStudioStore(host.api);
  await store.getState().openPath('/nonexistent/model.onnx');
  assert.match(render(store), /data-testid="import-error">\/nonexistent\/model\.onnx: no such file; check the path</);
});

test('Model shows inputs, outputs, opset, op histogram and the pre-flight', async () => {
  const store = createStudioStore(host.api);
  await store.getState().openSample();
  await store.getState().refreshPlan();
  const html = render(store);
  assert.match(html, /<h2 id="model-title">cls\.onnx<\/h2>/);
  assert.match(html, /<caption>Inputs<\/caption>.*<td>x<\/td><td>float<\/td>/);
  assert.match(html, /<dt>Opset<\/dt><dd>9 \(IR \d+\)<\/dd>/);
  assert.match(html, /<span class="op">Conv<\/span>.*<span class="n">53<\/span>/);
  assert.match(html, /Pre-flight: XNNPACK, static/);
  assert.match(html, /<strong>\d+<\/strong> quantized/);
  // The pre-flight counts the prepared graph: the sample's 250 Constant nodes and 35 folded BatchNorms are not in it.
  assert.match(html, /data-testid="preflight-total">of 186 nodes on /);
  assert.match(html, /data-testid="node-counts">Counted after prepare: the model has 471 nodes; Constant nodes become initializers/);
});

test('Configure greys out what the backend refuses, with the reason', async () => {
  const store = createStudioStore(host.api);
  await store.getState().openSample();
  store.getState().chooseBackend('xnnpack', 'a8w8');
  store.getState().go('configure');
  const html = render(store);
  assert.match(html, /<option value="uint16" disabled="" title="xnnpack: activations cannot be uint16; allowed: int8">uint16 — activations cannot be uint16; allowed: int8<\/option>/);
  assert.match(html, /<option value="weight-only" disabled=""[^>]*>weight-only — /);
  assert.match(html, /class="chosen" aria-pressed="true" data-preset="xnnpack:a8w8"/);
  assert.match(html, /<button type="button" class="primary" data-testid="run">Quantize<\/button>/, 'the sample comes with its calibration data');
  store.getState().setData({ kind: 'random' });
  assert.match(render(store), /Random data gives poor calibration ranges/);
  store.getState().setData({ kind: 'images', path: '' });
  assert.match(render(store), /data-testid="run" disabled="">Quantize/);
});

test('Run shows one row per stage, Cancel, where a cancelled run stopped, and a failure in words', () => {
  const store = createStudioStore(host.api);
  store.setState({ status: 'running', screen: 'run', runId: 'run-9', stages: { load: { done: 1, total: 1 }, calibrate: { done: 8, total: 24, rate: 4 } } });
  let html = render(store);
  assert.match(html, /data-stage="load".*<span class="stage-text">done<\/span>/);
  assert.match(html, /data-stage="calibrate".*8\/24 samples, 4\.0\/s, 4 s left/);
  assert.match(html, /data-stage="evaluate".*waiting/);
  assert.match(html, /data-testid="cancel">Cancel<\/button>/);
  store.setState({ status: 'cancelled' });
  html = render(store);
  assert.match(html, /data-stage="calibrate".*<span class="stage-text">stopped at 8\/24 samples<\/span>/, 'no stale rate or time left beside Cancelled');
  assert.match(html, /Cancelled\. Nothing was written\./);
  store.setState({ status: 'failed', failure: { stage: 'calibrate', message: 'x.png: not a PNG or JPEG image' } });
  html = render(store);
  assert.match(html, /role="alert">Calibrate failed: x\.png: not a PNG or JPEG image</);
  assert.match(html, /data-testid="cancel" disabled="">Cancel/);
  store.setState({ status: 'done', failure: undefined, stages: { load: { done: 1, total: 1 }, calibrate: { done: 0, total: 0, skipped: true } } });
  assert.match(render(store), /data-stage="calibrate".*skipped: re-uses the saved ranges/);
});

function layer(i: number, sqnr: LayerReport['sqnr'], op = i % 3 ? 'Conv' : 'Add'): LayerReport {
  return { name: `t${i}`, node: `n${i}`, nodes: [`n${i}`], op, index: i, type: 'int8', sqnr, range: [-1, 1] };
}

test('chart rows: graph order or worst first, inf at the top, the previous run alongside', () => {
  const layers = [layer(0, 30), layer(1, 'inf'), layer(2, 12.5)];
  const top = axisTop(layers);
  assert.equal(top, 40);
  assert.equal(axisBottom(layers), 0);
  assert.equal(axisBottom([layer(0, -0.2), layer(1, 12)]), -5, 'a negative SQNR stays on the chart');
  assert.deepEqual(chartRows(layers, undefined, 'graph', top).map((r) => r.name), ['t0', 't1', 't2']);
  const worst = chartRows(layers, [layer(0, 29), layer(1, 10), layer(2, 12)], 'worst', top);
  assert.deepEqual(worst.map((r) => [r.name, r.sqnr, r.previous, r.label]), [['t2', 12.5, 12, '12.50'], ['t0', 30, 29, '30.00'], ['t1', 40, 10, 'inf']]);
});

test('2,000 layers: rows for the chart in a few milliseconds', () => {
  const layers = Array.from({ length: 2000 }, (_, i) => layer(i, (i * 7919) % 60));
  const previous = layers.map((l) => ({ ...l, sqnr: 50 }));
  const t0 = performance.now();
  for (let k = 0; k < 10; k++) chartRows(layers, previous, 'worst', axisTop(layers));
  const ms = (performance.now() - t0) / 10;
  assert.ok(ms < 20, `${ms.toFixed(1)} ms per sort`);
});

test('the header keeps output SQNR and sizes visible', async () => {
  const store = createStudioStore(host.api);
  await store.getState().openSample();
  assert.match(render(store), /data-testid="output-sqnr">—</);
  store.setState({
    current: { runId: 'run-1', report: {
      numerics: 'reference', samples: { calibration: 8, evaluation: 8 }, outputs: [{ name: 'y', sqnr: 41.234, maxAbsError: 0.1 }],
      deployed: { numerics: 'ort-cpu', samples: 8, outputs: [{ name: 'y', sqnr: 40.1, maxAbsError: 0.1 }] },
      sizes: { floatBytes: 2000, quantizedBytes: 1000, ratio: 0.5 },
    } as never },
  });
  const html = render(store);
  assert.match(html, /data-testid="output-numerics"[^>]*> reference</);
  assert.match(html, /data-testid="output-sqnr" title="reference numerics, 8 samples">41\.23 dB</);
  assert.match(html, /data-testid="deployed-numerics"> ort-cpu</);
  assert.match(html, /data-testid="deployed-sqnr">40\.10 dB</);
  assert.match(html, /2\.0 kB → 1\.0 kB/);
});

test('the layer panel of a weight-only run shows the weight as stored and offers only what re-converts without calibration', async () => {
  const store = createStudioStore(host.api);
  await store.getState().openSample();
  const recipe = recipeFor('cpu', 'w4');
  const bins = (n: number) => Array.from({ length: 8 }, (_, i) => (i === 3 ? n : 1));
  store.setState({
    screen: 'inspect', selected: 't1',
    current: { runId: 'run-1', report: {
      model: { file: 'model.onnx' }, backend: 'cpu', recipe, numerics: 'reference', samples: { calibration: 0, evaluation: 8 }, outputs: [{ name: 'y', sqnr: 41, maxAbsError: 0.1 }],
      sizes: { floatBytes: 2000, quantizedBytes: 1000, ratio: 0.5 }, layers: [layer(1, 30)], weights: [], float: [],
    } as never },
    detail: {
      layer: layer(1, 30), samples: 0, values: 0, note: 'Weight-only: this activation stays in float; only the weight is stored quantized',
      weights: { name: 'w1', histogram: { min: -1, max: 1, float: bins(8185), quantized: bins(8185) }, granularity: 'per-block (32)', blockSize: 32,
        scales: { count: 256, min: 0.0125, median: 0.025, max: 0.5 }, values: 8192, clipped: 3 },
    },
  });
  const html = render(store);
  assert.match(html, /data-testid="keep-float">Keep in float<\/button>/, 'offered, enabled: it re-converts without calibrated ranges');
  assert.doesNotMatch(html, /16-bit<\/button>/, 'no 16-bit: a weight-only run has no activation type to widen');
  assert.match(html, /Re-converts the weights and re-evaluates on the run&#x27;s samples: a weight-only run has nothing to calibrate/);
  assert.match(html, /data-testid="layer-note">Weight-only: this activation stays in float/);
  assert.doesNotMatch(html, /at run time/);
  assert.match(html, /<h4 id="weight-values-title">Weight w1: float against dequantized, as stored<\/h4><div class="histogram"/);
  assert.match(html, /data-testid="weight-scales">256, per-block \(32\): 32 weights each</);
  assert.match(html, /data-testid="weight-scale-stats">0\.0125 \/ 0\.0250 \/ 0\.500<span class="muted"> \(the largest 20× the median/);
  assert.match(html, /data-testid="weight-clipped"[^>]*>3 \(0\.04%\)</);
  // Why Analyze and Repair are greyed out is on screen, not only in a tooltip.
  assert.match(html, /data-testid="analyze-why">needs static quantization: a weight-only run has no calibrated activations</);
  assert.match(html, /data-testid="repair-why">needs static quantization: a weight-only run has no calibrated activations</);
});
