// The CLI runs every command that touches a model in a child process of itself: a native crash in
// ONNX Runtime (a malformed Einsum, a corrupted kernel input) then ends the child with a signal,
// and this process says what happened instead of dying with it. Ctrl-C reaches the child, which
// cancels; a child too busy in native code to hear it is ended after a grace period.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CANCEL_GRACE_MS, engineEnv, STAGE_PREFIX } from '../main/jobs';

/** Set in the child's environment: it runs the command itself. */
export const ENGINE_CHILD_ENV = 'QUANT_STUDIO_ENGINE_CHILD';

export function runInChild(bin: string, argv: string[], write: (message: string) => void): Promise<number> {
  // The IPC channel carries nothing: it closes when this process dies, however it dies, and the child then stops too.
  const child = spawn(process.execPath, [bin, ...argv], { stdio: ['inherit', 'inherit', 'inherit', 'ipc'], env: { ...engineEnv(), [ENGINE_CHILD_ENV]: '1' } });
  let cancelled = false;
  const forward = (signal: NodeJS.Signals) => () => {
    cancelled = true;
    child.kill(signal);
    setTimeout(() => child.kill('SIGKILL'), CANCEL_GRACE_MS).unref();
  };
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      if (code !== null) return resolve(code);
      removeStages(argv, child.pid);
      if (cancelled) {
        write('\nquant-studio: cancelled; nothing was written\n');
        return resolve(130);
      }
      write(`\nquant-studio: ONNX Runtime crashed while running ${modelOf(argv)} (signal ${signal}); nothing was written. The model or its data makes ONNX Runtime fail natively: check the model with "quant-studio inspect", or try another opset or ONNX Runtime version\n`);
      resolve(1);
    });
    child.on('error', (err) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      write(`\nquant-studio: could not start the engine process: ${err.message}\n`);
      resolve(1);
    });
  });
}

/** In the engine child: a parent that is gone (killed, even by SIGKILL) leaves no one to report to, so the job ends with it. */
export function exitWithParent(): void {
  if (!process.connected || process.listenerCount('disconnect') > 0) return;
  process.once('disconnect', () => process.exit(1));
}

/** The model a command names: its first .onnx argument, else its first positional one. */
function modelOf(argv: string[]): string {
  const args = argv.slice(1);
  return args.find((a) => /\.onnx$/i.test(a)) ?? args.find((a) => !a.startsWith('-')) ?? 'the model';
}

/** The crashed child's staging folders, where its output would have gone. */
function removeStages(argv: string[], pid: number | undefined): void {
  if (pid === undefined) return;
  const flag = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
  };
  const dirs = new Set([flag('--out'), flag('--report'), modelOf(argv)].filter((f): f is string => Boolean(f)).map((f) => path.dirname(path.resolve(f))));
  for (const dir of dirs) {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) if (name.startsWith(`${STAGE_PREFIX}${pid}-`)) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
  }
}
