// The hosts' handle on the studio service running in a worker thread (see worker.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { JobEvent, RequestChannels } from '../../shared/ipc';
import type { EngineChannel } from './service';

export type ToWorker = { type: 'call'; id: number; channel: EngineChannel; request: unknown } | { type: 'close' };
type FromWorker = { workRoot: string } | { event: JobEvent } | { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string } | { closed: true };

export class RemoteStudio {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private next = 0;
  private closing?: Promise<void>;
  private workRoot?: string;

  constructor(options: { stateDir: string; sampleDir: string; emit: (event: JobEvent) => void }) {
    this.worker = new Worker(path.join(__dirname, 'worker.js'), { workerData: { stateDir: options.stateDir, sampleDir: options.sampleDir } });
    this.worker.on('message', (m: FromWorker) => {
      if ('workRoot' in m) this.workRoot = m.workRoot;
      else if ('event' in m) options.emit(m.event);
      else if ('id' in m) {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.ok) p?.resolve(m.value);
        else p?.reject(new Error(m.error));
      }
    });
    this.worker.on('error', (err) => this.failAll(`the engine stopped: ${err.message}`));
    this.worker.on('exit', (code) => this.failAll(`the engine stopped (exit code ${code})`));
  }

  private failAll(message: string): void {
    for (const p of this.pending.values()) p.reject(new Error(message));
    this.pending.clear();
  }

  handle<C extends EngineChannel>(channel: C, request: RequestChannels[C]['request']): Promise<RequestChannels[C]['response']> {
    if (this.closing) return Promise.reject(new Error('the studio is shutting down'));
    const id = ++this.next;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ type: 'call', id, channel, request } satisfies ToWorker);
    });
  }

  /**
   * Cancels a run in progress, removes the work folders and stops the worker. A worker busy in a
   * long synchronous step is stopped after a grace period, and its folders removed from here.
   */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      const done = () => void this.worker.terminate().then(() => {
        if (this.workRoot) fs.rmSync(this.workRoot, { recursive: true, force: true });
        resolve();
      });
      const timer = setTimeout(done, 5000);
      this.worker.on('message', (m: FromWorker) => {
        if ('closed' in m) {
          clearTimeout(timer);
          done();
        }
      });
      this.worker.postMessage({ type: 'close' } satisfies ToWorker);
    });
    return this.closing;
  }
}
