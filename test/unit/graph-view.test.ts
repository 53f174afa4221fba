// The graph view's model: every node of the user's model (bodies of an If included), what prepare
// folds, the tensors a body captures, the layout (every node placed, a body inside its owner's
// box), search order, the SQNR bands, and how a run's layers, recipe and pre-flight land on nodes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import ELK from 'elkjs/lib/elk.bundled.js';
import { modelGraph } from '../../main/plan/model-graph';
import { DEFAULT_THRESHOLD_DB, sqnrBands, sqnrColour } from '../../shared/colours';
import { allNodes, graphOverlay, overlayValue, searchGraph } from '../../shared/graph';
import type { AnalysisReport, LayerReport, Report } from '../../shared/report';
import { layoutGraph } from '../../shared/graph-layout';
import { escapeXml, graphLooks, graphMarkup } from '../../shared/graph-svg';
import { checkRequest } from '../../shared/ipc';
import { controlFlowModel } from '../helpers/build';

test('the graph holds every node, bodies included, with what prepare folds and what a body captures', () => {
  const graph = modelGraph(controlFlowModel());
  assert.equal(graph.nodeCount, 7, '5 in the main graph, one in each branch');
  assert.deepEqual(graph.nodes.map((n) => n.id), ['conv', 'bn', 'relu', 'scale_const', 'choose']);
  assert.deepEqual(allNodes(graph).map((n) => n.id).slice(5), ['choose/then_branch/double', 'choose/else_branch/same']);
  const by = new Map(allNodes(graph).map((n) => [n.id, n]));
  assert.match(by.get('bn')!.folded!, /folded into conv/);
  assert.match(by.get('scale_const')!.folded!, /becomes an initializer/);
  assert.equal(by.get('conv')!.folded, undefined, 'the Conv absorbs the BatchNormalization: it stays');
  assert.equal(by.get('relu')!.folded, undefined);
  // The If reads cond itself, relu and scale through its branches: both are edges into it.
  assert.deepEqual(by.get('choose')!.inputs, ['cond', 'relu', 'scale']);
  assert.equal(graph.shapes.x, '1×2×4×4');
  assert.deepEqual(graph.inputs, ['x', 'cond']);
});

test('the layout places every node; an opened If holds its branches inside its box', async () => {
  const graph = modelGraph(controlFlowModel());
  const elk = new ELK();
  const closed = await layoutGraph(elk, graph);
  assert.deepEqual(closed.nodes.filter((n) => n.kind === 'op').map((n) => n.id).sort(), graph.nodes.map((n) => n.id).sort());
  assert.deepEqual(closed.nodes.filter((n) => n.kind !== 'op').map((n) => n.id).sort(), ['in:cond', 'in:x', 'out:y']);
  assert.equal(closed.nodes.find((n) => n.id === 'choose')!.expanded, false);
  for (const n of closed.nodes) assert.ok(n.x >= 0 && n.y >= 0 && n.x + n.width <= closed.width && n.y + n.height <= closed.height, `${n.id} inside the drawing`);
  const conv = closed.nodes.find((n) => n.id === 'conv')!;
  const relu = closed.nodes.find((n) => n.id === 'relu')!;
  assert.ok(relu.y > conv.y, 'top-down: relu under conv');
  assert.ok(closed.edges.some((e) => e.tensor === 'relu' && e.id.startsWith('relu->choose')), 'a captured tensor is an edge into the If');

  const open = await layoutGraph(elk, graph, new Set(['choose']));
  assert.equal(open.nodes.filter((n) => n.kind === 'op').length, graph.nodeCount);
  const owner = open.nodes.find((n) => n.id === 'choose')!;
  assert.equal(owner.expanded, true);
  for (const id of ['choose/then_branch/double', 'choose/else_branch/same']) {
    const n = open.nodes.find((m) => m.id === id)!;
    assert.ok(n.x >= owner.x && n.y >= owner.y && n.x + n.width <= owner.x + owner.width && n.y + n.height <= owner.y + owner.height, `${id} inside its If`);
  }
  assert.deepEqual(open.bodies.map((b) => b.title), ['then_branch', 'else_branch']);
  // Inside the then branch, the captured relu and scale are inputs of the body.
  assert.ok(open.nodes.some((n) => n.id === 'choose/then_branch/in:relu'));
  assert.ok(open.nodes.some((n) => n.id === 'choose/then_branch/in:scale'));

  const markup = graphMarkup(open, graphLooks(graph, undefined, 'op', DEFAULT_THRESHOLD_DB), graph.shapes);
  assert.equal((markup.match(/class="gnode gop/g) ?? []).length, graph.nodeCount, 'one drawn box per node');
  assert.match(markup, /data-toggle="choose"/);
  assert.match(markup, /class="gnode gop gfolded[^"]*" data-node="bn"/);
});

test('search: exact names first, then names, then tensors made, then tensors read', () => {
  const graph = modelGraph(controlFlowModel());
  assert.deepEqual(searchGraph(graph, 'RELU').map((n) => n.id), ['relu', 'choose', 'choose/then_branch/double', 'choose/else_branch/same']);
  assert.deepEqual(searchGraph(graph, 'doubled').map((n) => n.id), ['choose/then_branch/double']);
  assert.deepEqual(searchGraph(graph, 'c').map((n) => n.id)[0], 'conv');
  assert.deepEqual(searchGraph(graph, '  '), []);
  assert.deepEqual(searchGraph(graph, 'nothing-like-it'), []);
});

test('SQNR bands: red below the threshold, then 10 dB steps, inf with the best', () => {
  const bands = sqnrBands(20);
  assert.deepEqual(bands.map((b) => b.label), ['below 20 dB', '20–30 dB', '30–40 dB', '40 dB and more, inf']);
  assert.equal(sqnrColour(19.99, 20), bands[0].colour);
  assert.equal(sqnrColour(20, 20), bands[1].colour);
  assert.equal(sqnrColour(35, 20), bands[2].colour);
  assert.equal(sqnrColour(Infinity, 20), bands[3].colour);
  assert.equal(sqnrColour(-Infinity, 20), bands[0].colour);
  assert.equal(escapeXml('<a & "b">'), '&lt;a &amp; &quot;b&quot;&gt;');
});

test('model:graph takes a model path and nothing else', () => {
  assert.deepEqual(checkRequest('model:graph', { model: '/m.onnx' }), { model: '/m.onnx' });
  assert.throws(() => checkRequest('model:graph', { model: '' }), /model:graph: "model" must be a non-empty string/);
  assert.throws(() => checkRequest('model:graph', { model: '/m.onnx', recipe: {} }), /unexpected field "recipe"/);
});

test('the overlay: a layer on the node that makes it and on its unit, inputs, float and 16-bit marks, local SQNR, placement', () => {
  const graph = modelGraph(controlFlowModel());
  const layer = (name: string, node: string, nodes: string[], sqnr: number | 'inf', extra: Partial<LayerReport> = {}): LayerReport =>
    ({ name, node, nodes, op: 'Conv', index: 0, type: 'uint8', sqnr, range: [0, 1], ...extra });
  const report = {
    layers: [
      layer('x', 'conv', [], 40),
      // Prepare folds bn into conv: the quantized tensor is bn's output, made by conv after prepare.
      layer('bn', 'conv', ['conv'], 25),
      layer('relu', 'relu', [], 'inf', { keptInFloat: { sqnr: 12.5 } }),
      layer('y', 'choose', [], 31, { type: 'uint16' }),
    ],
    preflight: { nodes: [{ node: 'conv', op: 'Conv', placement: 'quantized' }, { node: 'choose', op: 'If', placement: 'cpu', reason: 'no If kernel' }] },
  } as unknown as Report;
  const analysis = { layers: [{ name: 'bn', localSqnr: 33 }] } as unknown as AnalysisReport;
  const overlay = graphOverlay(graph, report, analysis);
  assert.equal(overlay.get('in:x')!.layer!.name, 'x', 'a quantized graph input is its input pill');
  assert.equal(overlay.get('bn')!.layer!.name, 'bn');
  assert.equal(overlay.get('bn')!.status, 'folded', 'folded, yet coloured by the tensor it made');
  assert.equal(overlay.get('conv')!.layer!.name, 'bn', 'the Conv that absorbed it carries its layer');
  assert.equal(overlay.get('conv')!.status, 'quantized');
  assert.equal(overlay.get('conv')!.placement, 'quantized');
  assert.equal(overlay.get('relu')!.status, 'float');
  assert.equal(overlay.get('choose')!.status, '16-bit');
  assert.deepEqual([overlay.get('choose')!.placement, overlay.get('choose')!.reason], ['cpu', 'no If kernel']);
  assert.equal(overlay.get('scale_const')!.status, 'folded');
  assert.equal(overlay.get('choose/then_branch/double')!.status, 'unquantized');
  assert.equal(overlayValue(overlay.get('relu'), 'sqnr'), 12.5, 'kept in float: coloured by the error that reaches it');
  assert.equal(overlayValue(overlay.get('conv'), 'local'), 33);
  assert.equal(overlayValue(overlay.get('choose'), 'local'), undefined, 'not analysed');

  const look = graphLooks(graph, overlay, 'sqnr', 20, { label: 'run-1', layers: [layer('bn', 'conv', ['conv'], 28)] });
  const conv = look({ id: 'conv', kind: 'op', x: 0, y: 0, width: 1, height: 1, title: 'Conv', subtitle: 'conv' });
  assert.equal(conv.value, '25.00');
  assert.equal(conv.fill, sqnrColour(25, 20));
  assert.ok(conv.lines.includes('−3.00 dB against run-1 (28.0 dB)'), conv.lines.join(' | '));
  const placed = graphLooks(graph, overlay, 'placement', 20)({ id: 'choose', kind: 'op', x: 0, y: 0, width: 1, height: 1, title: 'If', subtitle: 'choose' });
  assert.equal(placed.value, 'cpu');
  assert.equal(placed.tag, '16-bit');
});
