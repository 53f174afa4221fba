import { createObserver, parseMethod, type Observer } from './observers';
import { NonFiniteValues, type CompareStats, type Observation, type StatsRequest, type StatsResponse } from './protocol';

/**
 * The observers and SQNR accumulators of a pool and the requests they answer: in a worker thread
 * (worker.ts) or, where the work per batch is a few numbers, in the pool's own thread. The data a
 * request carries is read while it is handled and not kept; only bounded state (ranges,
 * histograms, sums) stays.
 */
export class StatsState {
  private readonly observers = new Map<string, Observer>();
  private readonly compares = new Map<string, CompareStats>();

  private compare(name: string, ref: Float32Array, approx: Float32Array): void {
    let s = this.compares.get(name);
    if (!s) {
      s = { signal: 0, noise: 0, maxAbsError: 0, refMin: Infinity, refMax: -Infinity };
      this.compares.set(name, s);
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

  private observe(o: Observation): void {
    const observer = this.observers.get(o.name)!;
    const before = observer.count;
    observer.update(o.data, o.bounds);
    if (o.finite && observer.count - before !== o.data.length) throw new NonFiniteValues(o.name);
  }

  handle(msg: StatsRequest): StatsResponse | undefined {
    switch (msg.op) {
      case 'observe-init':
        for (const t of msg.tensors) {
          this.observers.set(t.name, createObserver(parseMethod(t.method), { symmetric: t.symmetric, bins: t.bins, levels: t.levels }));
        }
        return undefined;
      case 'observe':
        this.observe(msg);
        return undefined;
      case 'observe-all':
        for (const o of msg.items) this.observe(o);
        return undefined;
      case 'compare':
        this.compare(msg.name, msg.ref, msg.approx);
        return undefined;
      case 'flush':
        return { op: 'flushed', id: msg.id };
      case 'result': {
        const ranges: Extract<StatsResponse, { op: 'result' }>['ranges'] = {};
        for (const [name, o] of this.observers) {
          const r = o.range();
          const h = o.histogram();
          ranges[name] = { min: r.min, max: r.max, count: o.count, histogram: h };
        }
        return { op: 'result', id: msg.id, ranges, compares: Object.fromEntries(this.compares) };
      }
    }
  }
}
