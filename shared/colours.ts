// Op types get colours keyed by their name, readable on light and dark backgrounds, so the same op
// has the same colour on every model, in the studio's chart and in the exported HTML report. The
// ops that make most quantized layers have a colour each; the rare ones share their group's, so the
// legend never needs more hues than the eye tells apart.
const OPS: Record<string, string> = {
  Conv: '#4e79a7', ConvTranspose: '#a0cbe8', MatMul: '#f28e2b', Gemm: '#ffbe7d', Add: '#59a14f', Mul: '#8cd17d',
  Relu: '#e15759', Clip: '#ff9da7', HardSwish: '#b07aa1', HardSigmoid: '#d4a6c8', Sigmoid: '#d37295', Softmax: '#edc948',
};

/** The rest, by what they do: each group one colour. */
const GROUPS: Array<{ name: string; colour: string; ops: readonly string[] }> = [
  { name: 'other activations', colour: '#9c755f', ops: ['Tanh', 'LeakyRelu', 'PRelu', 'Elu', 'Selu', 'Gelu', 'Erf', 'Softplus', 'Softsign', 'Mish', 'ThresholdedRelu', 'Celu', 'LogSoftmax', 'Exp', 'Log'] },
  { name: 'pooling', colour: '#76b7b2', ops: ['MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'LpPool', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceSum'] },
  { name: 'normalization', colour: '#b6992d', ops: ['BatchNormalization', 'LayerNormalization', 'InstanceNormalization', 'GroupNormalization', 'LRN', 'SimplifiedLayerNormalization'] },
  { name: 'other arithmetic', colour: '#86bcb6', ops: ['Sub', 'Div', 'Pow', 'Sqrt', 'Neg', 'Abs', 'Max', 'Min', 'Sum', 'Mean', 'Reciprocal'] },
  { name: 'data movement', colour: '#1f9e89', ops: ['Reshape', 'Transpose', 'Concat', 'Split', 'Slice', 'Squeeze', 'Unsqueeze', 'Flatten', 'Gather', 'Resize', 'Upsample', 'Pad', 'Expand', 'Tile', 'DepthToSpace', 'SpaceToDepth', 'Identity'] },
];

const OTHER = { name: 'other', colour: '#8c8c8c' };

/** The colour of an op type, the same on every model. */
export function opColour(op: string): string {
  return OPS[op] ?? GROUPS.find((g) => g.ops.includes(op))?.colour ?? OTHER.colour;
}

/** Colours of the ops given, in order of first appearance (graph order for a report's layers). */
export function opColours(ops: Iterable<string>): Map<string, string> {
  const colours = new Map<string, string>();
  for (const op of ops) if (!colours.has(op)) colours.set(op, opColour(op));
  return colours;
}

/**
 * The legend for the ops given: an op with a colour of its own under its name, rare ones under
 * their group's name with the ops it holds here.
 */
export function opLegend(ops: Iterable<string>): Array<{ label: string; colour: string; ops: string[] }> {
  const entries = new Map<string, { label: string; colour: string; ops: string[] }>();
  for (const op of new Set(ops)) {
    const group = OPS[op] ? undefined : GROUPS.find((g) => g.ops.includes(op)) ?? OTHER;
    const key = group?.name ?? op;
    const entry = entries.get(key) ?? { label: key, colour: group?.colour ?? OPS[op], ops: [] };
    entry.ops.push(op);
    entries.set(key, entry);
  }
  return [...entries.values()].map((e) => (e.label === e.ops[0] ? e : { ...e, label: `${e.label} (${e.ops.join(', ')})` }));
}

/** The SQNR a layer is called poor below until the user drags the line: the chart's, the graph's and the report's. */
export const DEFAULT_THRESHOLD_DB = 20;

/**
 * The graph overlay's SQNR bands around the user's threshold: red below it, then orange, olive and
 * green in steps of 10 dB. Bands rather than a gradient, so that a colour reads as a range on the
 * legend and two nodes in one band look alike.
 */
export function sqnrBands(threshold: number): Array<{ from: number; label: string; colour: string }> {
  const t = (n: number) => `${Number(n.toFixed(1))}`;
  return [
    { from: -Infinity, label: `below ${t(threshold)} dB`, colour: '#d62728' },
    { from: threshold, label: `${t(threshold)}–${t(threshold + 10)} dB`, colour: '#ff7f0e' },
    { from: threshold + 10, label: `${t(threshold + 10)}–${t(threshold + 20)} dB`, colour: '#bcbd22' },
    { from: threshold + 20, label: `${t(threshold + 20)} dB and more, inf`, colour: '#2ca02c' },
  ];
}

export function sqnrColour(value: number, threshold: number): string {
  const bands = sqnrBands(threshold);
  return bands.reduce((colour, band) => (value >= band.from ? band.colour : colour), bands[0].colour);
}

/** Where the pre-flight places a node, as the graph's second overlay colours it. */
export const PLACEMENT_COLOURS = { quantized: '#2ca02c', device: '#1f77b4', cpu: '#ff7f0e', unsupported: '#d62728' } as const;

/** A node the overlay has no value for: not quantized, or folded away by prepare. */
export const NO_VALUE_COLOUR = '#9aa0a6';
