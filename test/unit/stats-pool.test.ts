// The stats workers' pool: what it is handed stays the caller's, the figures are those of the data
// as it was when handed over, and the shared memory that carries data to the workers is reused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StatsPool } from '../../main/stats/pool';
import { randomArray } from '../helpers/build';

test('the pool copies what it is handed: the caller keeps its arrays, and changing them later changes no figure', async () => {
  const pool = new StatsPool(2);
  try {
    // Cells of one joined output, as a measuring run returns them.
    const joined = randomArray(3000, 7);
    const sample = joined.subarray(2000);
    const [min, max] = [Math.min(...sample), Math.max(...sample)];
    pool.initObservers([{ name: 't', method: 'minmax', symmetric: false, levels: 256 }]);
    pool.observe('t', sample);
    assert.equal(joined.length, 3000, 'not detached');
    joined.fill(1000);
    await pool.flush();
    const ranges = await pool.results();
    assert.deepEqual([ranges.get('t')!.min, ranges.get('t')!.max], [min, max]);
  } finally {
    await pool.close();
  }
});

test('the memory carrying data to the workers is reused after each flush: 48 MB in 4 MB batches leaves no more than two batches\' worth', async () => {
  const pool = new StatsPool(2);
  try {
    pool.initObservers([{ name: 'a', method: 'minmax', symmetric: false, levels: 256 }, { name: 'b', method: 'minmax', symmetric: false, levels: 256 }]);
    const batch = randomArray(1 << 19, 3);
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 12; i++) {
      pool.observe('a', batch);
      pool.observe('b', batch);
      await pool.flush();
    }
    const grown = process.memoryUsage().arrayBuffers - before;
    // One staging piece (16 MB) holds a batch; a leak would have kept all 48 MB.
    assert.ok(grown <= 20 * 2 ** 20, `${(grown / 2 ** 20).toFixed(1)} MB more`);
  } finally {
    await pool.close();
  }
});

test('memory handed to the workers is not reused before they have answered the flush that covers it', async () => {
  const pool = new StatsPool(1);
  try {
    // The pool's own staging step, reached past its privacy: the property is about its memory.
    const stage = (data: Float32Array) => (pool as unknown as { stage(d: Float32Array): Float32Array }).stage(data);
    const first = stage(new Float32Array(4));
    const answered = pool.flush();
    const second = stage(new Float32Array(4));
    assert.notEqual(second.buffer, first.buffer, 'a flush that has not answered yet keeps its memory');
    await answered;
    await pool.flush();
    assert.ok([first.buffer, second.buffer].includes(stage(new Float32Array(4)).buffer), 'answered: reused');
  } finally {
    await pool.close();
  }
});

test('a pool without workers gives the figures its workers give', async () => {
  const figures = async (size: number) => {
    const pool = new StatsPool(size);
    try {
      pool.initObservers([{ name: 'm', method: 'minmax', symmetric: false, levels: 256 }, { name: 'p', method: 'percentile:99.9', symmetric: true, levels: 256 }]);
      for (let b = 0; b < 5; b++) {
        const x = randomArray(4096, 10 + b, b + 1);
        pool.observe('m', x);
        // Bounds wider than the data: they set the histogram's span, so a path that dropped them would differ.
        pool.observe('p', x, { min: Math.min(...x) - 1, max: Math.max(...x) + 1 });
        await pool.flush();
      }
      return Object.fromEntries(await pool.results());
    } finally {
      await pool.close();
    }
  };
  assert.deepEqual(await figures(0), await figures(2));
});

test('a buffer handed over whole moves to the worker of its tensors: no copy, the same figures as observed one by one', async () => {
  const names = ['a', 'b', 'c', 'd'];
  const specs = names.map((name) => ({ name, method: 'percentile:99.9', symmetric: false, levels: 256 }));
  const batches = [0, 1, 2].map((b) => randomArray(4 * 1000, 30 + b, b + 1));
  const figures = async (handOver: (pool: StatsPool, batch: Float32Array) => void, together: string[][] = []) => {
    const pool = new StatsPool(2);
    try {
      pool.initObservers(specs, together);
      for (const batch of batches) {
        handOver(pool, batch);
        await pool.flush();
      }
      return Object.fromEntries(await pool.results());
    } finally {
      await pool.close();
    }
  };
  const views = (batch: Float32Array) => names.map((name, i) => ({ name, data: batch.subarray(i * 1000, (i + 1) * 1000) }));
  const oneByOne = await figures((pool, batch) => {
    for (const o of views(batch)) pool.observe(o.name, o.data);
  });
  const moved: Float32Array[] = [];
  // a and b share a worker and c and d the other: each buffer moves with the two views of its
  // taker; the other worker's two are copied before it goes.
  const whole = await figures((pool, batch) => {
    const copy = batch.slice();
    pool.observeAll(copy.buffer, views(copy));
    moved.push(copy);
  }, [['a', 'b'], ['c', 'd']]);
  assert.deepEqual(whole, oneByOne);
  for (const m of moved) assert.equal(m.length, 0, 'the buffer moved: detached here');
  const inThread = new StatsPool(0);
  try {
    inThread.initObservers(specs);
    for (const batch of batches) {
      const copy = batch.slice();
      inThread.observeAll(copy.buffer, views(copy));
    }
    assert.deepEqual(Object.fromEntries(await inThread.results()), oneByOne, 'without workers');
  } finally {
    await inThread.close();
  }
});
