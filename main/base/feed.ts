// What the data readers hand to ONNX Runtime: one batch of samples per model input, as typed arrays.

/** The element types a feed can carry: exactly the .npy dtypes the readers support. */
export type ElementType = 'float32' | 'float64' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

export interface Feed {
  [input: string]: { type: ElementType; dims: number[]; data: Float32Array | Float64Array | BigInt64Array | Int32Array | Int8Array | Uint8Array };
}

export interface InputSpec {
  name: string;
  type: ElementType | string;
  /** String dims are symbolic (batch, sequence length, ...). */
  shape: Array<number | string>;
}

/** Each input's shape in every feed of a source: a number is a fixed size, null the batch size, which changes from feed to feed. */
export type InputShapes = Readonly<Record<string, ReadonlyArray<number | null>>>;

/** The shapes every one of these feeds has, null on the first axis where only the batch size differs; undefined when they differ otherwise. */
export function commonShapes(feeds: readonly Feed[]): InputShapes | undefined {
  if (feeds.length === 0) return undefined;
  const shapes: Record<string, Array<number | null>> = {};
  for (const [name, t] of Object.entries(feeds[0])) {
    const dims: Array<number | null> = [...t.dims];
    for (const feed of feeds) {
      const other = feed[name]?.dims;
      if (!other || other.length !== dims.length || other.some((d, i) => i > 0 && d !== dims[i])) return undefined;
      if (other[0] !== dims[0]) dims[0] = null;
    }
    shapes[name] = dims;
  }
  // One batch size per feed: first axes that vary must vary together, as stacked samples do.
  const batched = Object.keys(shapes).filter((name) => shapes[name][0] === null);
  if (feeds.some((feed) => batched.some((name) => feed[name].dims[0] !== feed[batched[0]].dims[0]))) return undefined;
  return shapes;
}

/** Whether feeds of these shapes hold samples of one shape: the same dims but for the batch size. */
export function sameSampleShapes(a: InputShapes | undefined, b: InputShapes | undefined): boolean {
  if (!a || !b) return false;
  const names = Object.keys(a);
  return names.length === Object.keys(b).length && names.every((name) => {
    const x = a[name];
    const y = b[name];
    return y !== undefined && x.length === y.length && x.every((d, i) => d === y[i] || (i === 0 && (d === null || y[i] === null)));
  });
}

/** Samples in a feed: its inputs share their first dim, the batch. */
export function feedSamples(feed: Feed): number {
  return Object.values(feed)[0].dims[0];
}

/** Samples in all of `feeds`. */
export function sampleCount(feeds: readonly Feed[]): number {
  return feeds.reduce((n, feed) => n + feedSamples(feed), 0);
}

/** Samples [from, from + n) of a feed whose every input holds its samples along the first axis. */
export function feedSlice(feed: Feed, from: number, n: number): Feed {
  const cut: Feed = {};
  for (const [name, t] of Object.entries(feed)) {
    const per = t.data.length / t.dims[0];
    cut[name] = { type: t.type, dims: [n, ...t.dims.slice(1)], data: t.data.slice(from * per, (from + n) * per) as Feed[string]['data'] };
  }
  return cut;
}

/** The same samples in the same order, in batches of at most `size`: a feed is split, never joined. */
export function rebatched(feeds: readonly Feed[], size: number): Feed[] {
  return feeds.flatMap((feed) => {
    const n = feedSamples(feed);
    return n <= size ? [feed] : Array.from({ length: Math.ceil(n / size) }, (_, k) => feedSlice(feed, k * size, Math.min(size, n - k * size)));
  });
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
