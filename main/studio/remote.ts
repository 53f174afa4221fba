// The hosts' handle on the studio service, which runs in a process of its own (engine.ts): a native
// crash inside ONNX Runtime takes that process down, never the host. The handle then reports the job
// that was running as failed with the cause, removes its folder, and starts a fresh engine over the
// same work folder, which reloads the finished runs from it. A cancel that the engine cannot hear
// (busy in native code) ends the engine the same way, after a grace period.
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { JobEvent, RequestChannels } from '../../shared/ipc';
import type { Stage } from '../../shared/progress';
import { CANCEL_GRACE_MS } from '../base/progress';
import { engineEnv } from '../base/engine-env';
import type { EngineChannel } from './service';

export type ToEngine = { type: 'call'; id: number; channel: EngineChannel; request: unknown } | { type: 'close' };
export type FromEngine = { event: JobEvent } | { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string } | { closed: true };

/** What the engine process is started with. */
export interface EngineArgs {
  stateDir: string;
  sampleDir: string;
  workRoot: string;
}

/** A running engine process as the handle sees it: Node's fork for the CLI and the browser host, Electron's utilityProcess for the desktop app. */
export interface EngineProcess {
  send(message: ToEngine): void;
  onMessage(listener: (message: FromEngine) => void): void;
  onExit(listener: (code: number | null, signal: string | null) => void): void;
  kill(): void;
}

/** `env`: the environment the engine starts in (engineEnv). */
export type SpawnEngine = (script: string, args: string[], env: NodeJS.ProcessEnv) => EngineProcess;

export const forkEngine: SpawnEngine = (script, args, env) => {
  // No inherited flags: under node --test the child would otherwise start as a test runner.
  const child = fork(script, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [], env });
  return {
    send: (m) => {
      if (child.connected) child.send(m);
    },
    onMessage: (listener) => void child.on('message', listener as (m: unknown) => void),
    onExit: (listener) => void child.on('exit', listener),
    kill: () => void child.kill('SIGKILL'),
  };
};


export interface RemoteOptions {
  stateDir: string;
  sampleDir: string;
  emit: (event: JobEvent) => void;
  spawn?: SpawnEngine;
}

export class RemoteStudio {
  /** Runs' folders, kept across engines; removed when the handle closes. */
  readonly workRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'quant-studio-'));
  private engine: EngineProcess;
  private readonly pending = new Map<number, { channel: EngineChannel; resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private next = 0;
  private closing?: Promise<void>;
  /** The job in progress, from its events: what a crash report names. */
  private active?: { id: string; model: string; stage: Stage; cancelled?: boolean };
  private readonly models = new Map<string, string>();
  /** Engines started, the first included. */
  engines = 0;

  constructor(private readonly options: RemoteOptions) {
    this.engine = this.start();
  }

  private start(): EngineProcess {
    this.engines++;
    const args: EngineArgs = { stateDir: this.options.stateDir, sampleDir: this.options.sampleDir, workRoot: this.workRoot };
    const engine = (this.options.spawn ?? forkEngine)(path.join(__dirname, 'engine.js'), [JSON.stringify(args)], engineEnv());
    engine.onMessage((m) => this.onMessage(m));
    engine.onExit((code, signal) => this.onExit(engine, code, signal));
    return engine;
  }

  private onMessage(m: FromEngine): void {
    if ('event' in m) {
      this.track(m.event);
      this.options.emit(m.event);
    } else if ('id' in m) {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.ok) p?.resolve(m.value);
      else p?.reject(new Error(m.error));
    }
  }

  private track(event: JobEvent): void {
    switch (event.type) {
      case 'started':
        this.models.set(event.runId, event.request.model);
        this.active = { id: event.runId, model: event.request.model, stage: 'load' };
        break;
      case 'analysis-started':
        this.active = { id: event.runId, model: this.models.get(event.of) ?? event.of, stage: 'load' };
        break;
      case 'progress':
        if (this.active?.id === event.runId) this.active.stage = event.stage;
        break;
      case 'done': case 'analyzed': case 'failed': case 'cancelled':
        if (this.active?.id === event.runId) this.active = undefined;
        break;
    }
  }

  private onExit(engine: EngineProcess, code: number | null, signal: string | null): void {
    if (engine !== this.engine || this.closing) return;
    const job = this.active;
    this.active = undefined;
    const cause = signal ? `signal ${signal}` : `exit code ${code}`;
    const message = job
      ? `ONNX Runtime crashed while running ${job.model} (${cause}); the studio started a fresh engine and kept nothing of this ${job.id.startsWith('analysis') ? 'analysis' : 'run'}`
      : `the engine stopped (${cause}); the studio started a fresh one`;
    for (const p of this.pending.values()) {
      if (p.channel === 'run:cancel' && job?.cancelled) p.resolve({ cancelled: true });
      else p.reject(new Error(message));
    }
    this.pending.clear();
    if (job) {
      for (const dir of fs.readdirSync(this.workRoot)) if (dir.startsWith(`${job.id}-`)) fs.rmSync(path.join(this.workRoot, dir), { recursive: true, force: true });
      this.options.emit(job.cancelled ? { runId: job.id, type: 'cancelled' } : { runId: job.id, type: 'failed', stage: job.stage, message });
    }
    this.engine = this.start();
  }

  handle<C extends EngineChannel>(channel: C, request: RequestChannels[C]['request']): Promise<RequestChannels[C]['response']> {
    if (this.closing) return Promise.reject(new Error('the studio is shutting down'));
    const id = ++this.next;
    if (channel === 'run:cancel') this.cancelling((request as RequestChannels['run:cancel']['request']).runId);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { channel, resolve: resolve as (v: unknown) => void, reject });
      this.engine.send({ type: 'call', id, channel, request });
    });
  }

  /** A job blocked in native code (a session being created) cannot hear its cancel: its engine is ended instead. */
  private cancelling(runId: string): void {
    const job = this.active;
    if (job?.id !== runId) return;
    job.cancelled = true;
    const engine = this.engine;
    setTimeout(() => {
      if (this.active === job && this.engine === engine) engine.kill();
    }, CANCEL_GRACE_MS).unref();
  }

  /**
   * Cancels a run in progress, removes the work folders and stops the engine. An engine busy in a
   * long native step is ended after a grace period.
   */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.engine.kill();
        fs.rmSync(this.workRoot, { recursive: true, force: true });
        resolve();
      };
      const timer = setTimeout(done, 5000);
      this.engine.onMessage((m) => 'closed' in m && done());
      this.engine.onExit(() => done());
      this.engine.send({ type: 'close' });
    });
    return this.closing;
  }
}
