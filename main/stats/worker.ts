// Runs in a worker thread: observers for calibration and SQNR accumulators for evaluation.
// Tensors arrive as views of the pool's shared memory, which it reuses once a flush has answered:
// nothing here keeps them; only bounded state (ranges, histograms, sums) stays.
import { parentPort } from 'node:worker_threads';
import { createObserver, parseMethod, type Observer } from './observers';
import type { StatsRequest, StatsResponse, CompareStats } from './protocol';

const observers = new Map<string, Observer>();
const compares = new Map<string, CompareStats>();

function compare(name: string, ref: Float32Array, approx: Float32Array): void {
  let s = compares.get(name);
  if (!s) {
    s = { signal: 0, noise: 0, maxAbsError: 0, refMin: Infinity, refMax: -Infinity };
    compares.set(name, s);
  }
  if (ref.length !== approx.length) throw new Error(`tensor ${name}: float has ${ref.length} values, quantized ${approx.length}`);
  let signal = 0;
  let noise = 0;
  let maxAbs = s.maxAbsError;
  let lo = s.refMin;
  let hi = s.refMax;
  for (let i = 0; i < ref.length; i++) {
    const x = ref[i];
    const d = x - approx[i];
    signal += x * x;
    noise += d * d;
    const a = d < 0 ? -d : d;
    if (a > maxAbs) maxAbs = a;
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  s.signal += signal;
  s.noise += noise;
  s.maxAbsError = maxAbs;
  s.refMin = lo;
  s.refMax = hi;
}

function handle(msg: StatsRequest): StatsResponse | undefined {
  switch (msg.op) {
    case 'observe-init':
      for (const t of msg.tensors) {
        observers.set(t.name, createObserver(parseMethod(t.method), { symmetric: t.symmetric, bins: t.bins, levels: t.levels }));
      }
      return undefined;
    case 'observe':
      observers.get(msg.name)!.update(msg.data, msg.bounds);
      return undefined;
    case 'compare':
      compare(msg.name, msg.ref, msg.approx);
      return undefined;
    case 'flush':
      return { op: 'flushed', id: msg.id };
    case 'result': {
      const ranges: Extract<StatsResponse, { op: 'result' }>['ranges'] = {};
      for (const [name, o] of observers) {
        const r = o.range();
        const h = o.histogram();
        ranges[name] = { min: r.min, max: r.max, count: o.count, histogram: h ? { min: h.min, max: h.max, counts: Array.from(h.counts) } : undefined };
      }
      return { op: 'result', id: msg.id, ranges, compares: Object.fromEntries(compares) };
    }
  }
}

parentPort!.on('message', (msg: StatsRequest) => {
  try {
    const reply = handle(msg);
    if (reply) parentPort!.postMessage(reply);
  } catch (err) {
    parentPort!.postMessage({ op: 'error', message: (err as Error).message } satisfies StatsResponse);
  }
});
