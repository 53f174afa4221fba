import { createObserver, parseMethod, type Observer } from './observers';
import { NonFiniteValues, type Observation, type StatsRequest, type StatsResponse } from './protocol';

/**
 * The observers of a pool and the requests they answer: in a worker thread
 * (worker.ts) or, where the work per batch is a few numbers, in the pool's own thread. The data a
 * request carries is read while it is handled and not kept; only bounded state (ranges,
 * histograms, sums) stays.
 */
export class StatsState {
  private readonly observers = new Map<string, Observer>();

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
      case 'flush':
        return { op: 'flushed', id: msg.id };
      case 'result': {
        const ranges: Extract<StatsResponse, { op: 'result' }>['ranges'] = {};
        for (const [name, o] of this.observers) {
          const r = o.range();
          const h = o.histogram();
          ranges[name] = { min: r.min, max: r.max, count: o.count, histogram: h };
        }
        return { op: 'result', id: msg.id, ranges };
      }
    }
  }
}
