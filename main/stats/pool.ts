import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Bounds } from './observers';
import { NonFiniteValues, type Observation, type ObserveSpec, type ObservedRange, type StatsRequest, type StatsResponse } from './protocol';
import { StatsState } from './state';

/**
 * The smallest piece of shared memory the pool copies tensor data into. Data goes to the workers
 * through memory the pool reuses once they have read it, never through a fresh buffer per
 * tensor: on the VMs this was measured on, a buffer's first touch cost 2.5 to 3.5 ms a megabyte,
 * 40 times the copy (a 24 MB buffer 60 to 87 ms against 1.5 ms), and calibrating the PaddleOCR
 * recognizer's histograms copied 71 MB a batch into fresh buffers.
 */
const STAGING_BYTES = 16 << 20;

/**
 * A few worker threads that hold the observers. Each tensor always goes to the same worker, so its
 * state never moves; `flush` bounds how much work may be queued. With no worker (size 0) they live
 * in this thread: for min/max calibration a batch is two numbers a tensor, and starting the workers
 * and a round trip a batch cost more than that (the sample model's min/max calibration: 0.34–0.43
 * s with workers, 0.27–0.31 s without); so do the histograms of a small model (calibrate.ts
 * IN_THREAD_VALUES).
 */
export class StatsPool {
  private readonly workers: Worker[];
  private readonly here?: StatsState;
  private readonly assignment = new Map<string, number>();
  private readonly pending = new Map<number, { resolve: (r: StatsResponse) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private failure?: Error;
  private nextWorker = 0;
  /** Shared memory written since the last flush, and memory the workers have read and that is free again. */
  private staged: Array<{ buffer: SharedArrayBuffer; used: number }> = [];
  private readonly free: SharedArrayBuffer[] = [];

  // As many workers as cores: while ONNX Runtime runs they share the cores with it, and when it is
  // done (histogram searches at the end of calibration) they have the machine to themselves.
  constructor(size = Math.max(1, Math.min(4, os.availableParallelism()))) {
    if (size === 0) this.here = new StatsState();
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
      this.fail(msg.tensor !== undefined ? new NonFiniteValues(msg.tensor) : new Error(msg.message));
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

  private post(worker: Worker, msg: StatsRequest): void {
    if (this.failure) throw this.failure;
    worker.postMessage(msg);
  }

  private request(worker: Worker, make: (id: number) => StatsRequest): Promise<StatsResponse> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.pending.set(id, { resolve, reject });
      worker.postMessage(make(id));
    });
  }

  /** Worker threads (0: the observers run in this thread). */
  get size(): number {
    return this.workers.length;
  }

  /** `together`: groups of tensors that share a worker, so that a buffer holding them all moves to it whole (observeAll). */
  initObservers(specs: ObserveSpec[], together: ReadonlyArray<readonly string[]> = []): void {
    together.forEach((names, k) => {
      for (const name of names) if (!this.assignment.has(name)) this.assignment.set(name, k % Math.max(1, this.workers.length));
    });
    if (this.here) {
      this.here.handle({ op: 'observe-init', tensors: specs });
      return;
    }
    const byWorker = new Map<Worker, ObserveSpec[]>();
    for (const s of specs) {
      const w = this.workerFor(s.name);
      byWorker.set(w, [...(byWorker.get(w) ?? []), s]);
    }
    for (const [w, tensors] of byWorker) this.post(w, { op: 'observe-init', tensors });
  }

  /** A copy of `data` in the pool's shared memory, which stays the workers' until the next flush resolves. */
  private stage(data: Float32Array): Float32Array {
    let last = this.staged[this.staged.length - 1];
    if (!last || last.buffer.byteLength - last.used < data.byteLength) {
      const reused = this.free.findIndex((b) => b.byteLength >= data.byteLength);
      last = { buffer: reused >= 0 ? this.free.splice(reused, 1)[0] : new SharedArrayBuffer(Math.max(STAGING_BYTES, data.byteLength)), used: 0 };
      this.staged.push(last);
    }
    const copy = new Float32Array(last.buffer, last.used, data.length);
    copy.set(data);
    last.used += data.byteLength;
    return copy;
  }

  /** `bounds`: the exact extremes of the data `data` samples (Observer.update). The caller keeps `data`. */
  observe(name: string, data: Float32Array, bounds?: Bounds, finite?: boolean): void {
    if (this.here) this.here.handle({ op: 'observe', name, data, bounds, finite });
    else this.post(this.workerFor(name), { op: 'observe', name, data: this.stage(data), bounds, finite });
  }

  /**
   * Observes views of `buffer`, which the pool takes over: the views of the worker with the most
   * bytes of them move to it with the buffer, without a copy, and the others are copied first.
   */
  observeAll(buffer: ArrayBuffer, items: readonly Observation[]): void {
    if (!items.length) return;
    if (this.here) {
      this.here.handle({ op: 'observe-all', items: [...items] });
      return;
    }
    const byWorker = new Map<Worker, Observation[]>();
    for (const o of items) {
      const w = this.workerFor(o.name);
      byWorker.set(w, [...(byWorker.get(w) ?? []), o]);
    }
    const bytes = (list: Observation[]) => list.reduce((n, o) => n + o.data.byteLength, 0);
    const [taker, taken] = [...byWorker].reduce((a, b) => (bytes(b[1]) > bytes(a[1]) ? b : a));
    for (const [w, list] of byWorker) if (w !== taker) for (const o of list) this.observe(o.name, o.data, o.bounds, o.finite);
    if (this.failure) throw this.failure;
    taker.postMessage({ op: 'observe-all', items: taken } satisfies StatsRequest, [buffer]);
  }

  /** Resolves once every worker has processed what was sent before it; the memory that carried it is then reused. Without workers, at once. */
  async flush(): Promise<void> {
    const read = this.staged.map((s) => s.buffer);
    this.staged = [];
    await Promise.all(this.workers.map((w) => this.request(w, (id) => ({ op: 'flush', id }))));
    this.free.push(...read);
  }

  async results(): Promise<Map<string, ObservedRange>> {
    const replies = this.here ? [this.here.handle({ op: 'result', id: 0 })!] : await Promise.all(this.workers.map((w) => this.request(w, (id) => ({ op: 'result', id }))));
    const ranges = new Map<string, ObservedRange>();
    for (const r of replies) {
      if (r.op !== 'result') continue;
      for (const [k, v] of Object.entries(r.ranges)) ranges.set(k, v);
    }
    return ranges;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
