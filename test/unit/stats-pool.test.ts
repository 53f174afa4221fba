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
    const ref = joined.subarray(0, 1000);
    const approx = joined.subarray(1000, 2000);
    const sample = joined.subarray(2000);
    let signal = 0;
    let noise = 0;
    for (let i = 0; i < ref.length; i++) {
      signal += ref[i] * ref[i];
      noise += (ref[i] - approx[i]) ** 2;
    }
    const [min, max] = [Math.min(...sample), Math.max(...sample)];
    pool.initObservers([{ name: 't', method: 'minmax', symmetric: false, levels: 256 }]);
    pool.compare('c', ref, approx);
    pool.observe('t', sample);
    assert.equal(joined.length, 3000, 'not detached');
    joined.fill(1000);
    await pool.flush();
    const { ranges, compares } = await pool.results();
    assert.equal(compares.get('c')!.signal, signal);
    assert.equal(compares.get('c')!.noise, noise);
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
        pool.compare('c', x, randomArray(4096, 20 + b, b + 1));
        await pool.flush();
      }
      const { ranges, compares } = await pool.results();
      return { ranges: Object.fromEntries(ranges), compares: Object.fromEntries(compares) };
    } finally {
      await pool.close();
    }
  };
  assert.deepEqual(await figures(0), await figures(2));
});
