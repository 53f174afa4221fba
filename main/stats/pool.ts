import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Bounds } from './observers';
import type { CompareStats, ObserveSpec, ObservedRange, StatsRequest, StatsResponse } from './protocol';

/** Tensor data crossing to a worker is moved, never copied twice: the caller gives up the buffer. */
function owned(data: Float32Array): Float32Array {
  return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && !(data.buffer instanceof SharedArrayBuffer) ? data : data.slice();
}

/**
 * A few worker threads that hold the observers and SQNR accumulators. Each tensor always goes to
 * the same worker, so its state never moves; `flush` bounds how much work may be queued.
 */
export class StatsPool {
  private readonly workers: Worker[];
  private readonly assignment = new Map<string, number>();
  private readonly pending = new Map<number, { resolve: (r: StatsResponse) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private failure?: Error;
  private nextWorker = 0;

  // As many workers as cores: while ONNX Runtime runs they share the cores with it, and when it is
  // done (histogram searches at the end of calibration) they have the machine to themselves.
  constructor(size = Math.max(1, Math.min(4, os.availableParallelism()))) {
    const file = path.join(__dirname, 'worker.js');
    this.workers = Array.from({ length: size }, () => {
      const w = new Worker(file);
      w.on('message', (msg: StatsResponse) => this.onMessage(msg));
      w.on('error', (err) => this.fail(err));
      return w;
    });
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private onMessage(msg: StatsResponse): void {
    if (msg.op === 'error') {
      this.fail(new Error(msg.message));
      return;
    }
    const p = this.pending.get(msg.id);
    if (p) {
      this.pending.delete(msg.id);
      p.resolve(msg);
    }
  }

  private workerFor(name: string): Worker {
    let i = this.assignment.get(name);
    if (i === undefined) {
      i = this.nextWorker++ % this.workers.length;
      this.assignment.set(name, i);
    }
    return this.workers[i];
  }

  private post(worker: Worker, msg: StatsRequest, transfer: ArrayBuffer[] = []): void {
    if (this.failure) throw this.failure;
    worker.postMessage(msg, transfer);
  }

  private request(worker: Worker, make: (id: number) => StatsRequest): Promise<StatsResponse> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.pending.set(id, { resolve, reject });
      worker.postMessage(make(id));
    });
  }

  initObservers(specs: ObserveSpec[]): void {
    const byWorker = new Map<Worker, ObserveSpec[]>();
    for (const s of specs) {
      const w = this.workerFor(s.name);
      byWorker.set(w, [...(byWorker.get(w) ?? []), s]);
    }
    for (const [w, tensors] of byWorker) this.post(w, { op: 'observe-init', tensors });
  }

  /** `bounds`: the exact extremes of the data `data` samples (Observer.update). */
  observe(name: string, data: Float32Array, bounds?: Bounds): void {
    const d = owned(data);
    this.post(this.workerFor(name), { op: 'observe', name, data: d, bounds }, [d.buffer as ArrayBuffer]);
  }

  compare(name: string, ref: Float32Array, approx: Float32Array): void {
    const r = owned(ref);
    const a = owned(approx);
    this.post(this.workerFor(name), { op: 'compare', name, ref: r, approx: a }, r.buffer === a.buffer ? [r.buffer as ArrayBuffer] : [r.buffer as ArrayBuffer, a.buffer as ArrayBuffer]);
  }

  /** Resolves once every worker has processed what was sent before it. */
  async flush(): Promise<void> {
    await Promise.all(this.workers.map((w) => this.request(w, (id) => ({ op: 'flush', id }))));
  }

  async results(): Promise<{ ranges: Map<string, ObservedRange>; compares: Map<string, CompareStats> }> {
    const replies = await Promise.all(this.workers.map((w) => this.request(w, (id) => ({ op: 'result', id }))));
    const ranges = new Map<string, ObservedRange>();
    const compares = new Map<string, CompareStats>();
    for (const r of replies) {
      if (r.op !== 'result') continue;
      for (const [k, v] of Object.entries(r.ranges)) ranges.set(k, v);
      for (const [k, v] of Object.entries(r.compares)) compares.set(k, v);
    }
    return { ranges, compares };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
