// The layer table's rows, order, filter and CSV, and op colours that do not depend on the model.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { opColour, opColours, opLegend } from '../../shared/colours';
import { filterLayerRows, layerCellText, layerColumns, layersCsv, layerTableRows, sortLayerRows } from '../../shared/layer-table';
import { dbDelta, deltaText } from '../../shared/report';
import type { AnalysisReport, LayerReport } from '../../shared/report';

const layer = (name: string, index: number, sqnr: LayerReport['sqnr'], extra: Partial<LayerReport> = {}): LayerReport => ({
  name, node: `${name}_node`, nodes: [`${name}_node`], op: 'Conv', index, type: 'int8', sqnr, range: [-1, 1], scale: 0.5, zeroPoint: 0, ...extra,
});

const layers = [
  layer('b', 1, 12.5, { op: 'Relu', weightSqnr: undefined }),
  layer('a,"quoted"', 0, 30, { weightSqnr: 41.25 }),
  layer('c', 2, 'inf', { type: undefined, scale: undefined, zeroPoint: undefined, keptInFloat: { sqnr: 20 } }),
];

test('rows in graph order, with the analysis\'s local SQNR and sensitivity and the delta against an outline', () => {
  const analysis = { layers: [{ ...layers[0], localSqnr: 33 }], sensitivity: [{ name: 'b', onlyFloat: 19.5 }] } as unknown as AnalysisReport;
  const outline = [layer('a,"quoted"', 0, 29), layer('b', 1, 'inf'), layer('c', 2, 10)];
  const rows = layerTableRows(layers, { analysis, outline });
  assert.deepEqual(rows.map((r) => r.name), ['a,"quoted"', 'b', 'c']);
  assert.equal(rows[1].localSqnr, 33);
  assert.equal(rows[1].sensitivity, 19.5);
  assert.equal(rows[2].type, 'float');
  assert.deepEqual(rows.map((r) => r.delta), [1, -Infinity, Infinity]);
  assert.equal(dbDelta('inf', 'inf'), 0);
  assert.deepEqual([1.234, -0.5, 0, Infinity, -Infinity].map((d) => deltaText(d)), ['+1.23', '−0.50', '±0.00', '+inf', '−inf']);
  assert.equal(layerTableRows(layers)[0].delta, undefined, 'no outline, no delta');
  // Columns no row has a figure for are left out; a cell without a figure is undefined, for the table to fill.
  assert.deepEqual(layerColumns(rows).map((c) => c.key), ['name', 'op', 'type', 'sqnr', 'localSqnr', 'weightSqnr', 'scale', 'range', 'sensitivity', 'delta']);
  assert.deepEqual(layerColumns(layerTableRows(layers)).map((c) => c.key), ['name', 'op', 'type', 'sqnr', 'weightSqnr', 'scale', 'range']);
  assert.deepEqual(['sqnr', 'scale', 'range', 'delta'].map((k) => layerCellText(rows[2], k as never, (v) => String(v))), ['inf', undefined, '-1.000 … 1.000', '+inf']);
});

test('sorting by any column, absent figures last either way; filtering by op and by name', () => {
  const rows = layerTableRows(layers);
  assert.deepEqual(sortLayerRows(rows, 'sqnr', false).map((r) => r.name), ['b', 'a,"quoted"', 'c']);
  assert.deepEqual(sortLayerRows(rows, 'sqnr', true).map((r) => r.name), ['c', 'a,"quoted"', 'b']);
  assert.deepEqual(sortLayerRows(rows, 'weightSqnr', true).map((r) => r.name), ['a,"quoted"', 'b', 'c']);
  assert.deepEqual(sortLayerRows(rows, 'name', false).map((r) => r.name), ['a,"quoted"', 'b', 'c']);
  assert.deepEqual(sortLayerRows(rows, 'op', true).map((r) => r.op), ['Relu', 'Conv', 'Conv']);
  assert.deepEqual(filterLayerRows(rows, 'Conv', '').map((r) => r.name), ['a,"quoted"', 'c']);
  assert.deepEqual(filterLayerRows(rows, undefined, ' B_NO').map((r) => r.name), ['b'], 'by node name too, case-insensitive');
});

test('CSV: every column, full precision, inf, and fields with commas and quotes quoted', () => {
  const csv = layersCsv(layerTableRows(layers, { outline: [layer('b', 1, 12)] }));
  const lines = csv.trimEnd().split('\r\n');
  assert.equal(lines[0], 'tensor,node,op,type,sqnr_db,local_sqnr_db,weight_sqnr_db,scale,zero_point,range_min,range_max,only_in_float_db,delta_db');
  assert.equal(lines[1], '"a,""quoted""","a,""quoted""_node",Conv,int8,30,,41.25,0.5,0,-1,1,,');
  assert.equal(lines[2], 'b,b_node,Relu,int8,12.5,,,0.5,0,-1,1,,0.5');
  assert.equal(lines[3], 'c,c_node,Conv,float,inf,,,,,-1,1,,');
  assert.ok(csv.endsWith('\r\n'));
});

test('an op has one colour on every model; rare ops share their group\'s, and the legend names the group', () => {
  assert.equal(opColours(['Relu', 'Conv']).get('Conv'), opColours(['Conv']).get('Conv'));
  assert.notEqual(opColour('Conv'), opColour('Relu'));
  assert.equal(opColour('MaxPool'), opColour('AveragePool'));
  assert.equal(opColour('SomeCustomOp'), opColour('AnotherOne'));
  assert.deepEqual(opLegend(['Conv', 'MaxPool', 'Conv', 'AveragePool', 'Relu']).map((e) => e.label), ['Conv', 'pooling (MaxPool, AveragePool)', 'Relu']);
  const colours = new Set(opLegend(['Conv', 'MatMul', 'Relu', 'Tanh', 'MaxPool', 'Reshape', 'Sub', 'BatchNormalization', 'X']).map((e) => e.colour));
  assert.equal(colours.size, 9, 'every legend entry its own colour');
});
