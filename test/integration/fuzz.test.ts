// The bounded fuzzer: seeded mutants of two small models (the hostile corpus's conv and the MNIST
// CNN) through `inspect` and `quantize`, in a worker that runs the CLI's commands as its engine
// child does. Whatever a mutant is, the user sees exit 0, 1 or 2 with a message and no stack
// trace; a native crash ends the worker, which the CLI reports as exit 1 (its message is the
// hostile corpus's first case); the input's bytes never change and a failure writes nothing.
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { mutant } from '../hostile/mutants';
import { MAKERS } from '../hostile/files';
import { ROOT } from '../helpers/build';
import { trackedTempDirs } from '../helpers/cli';

const MUTANTS_PER_MODEL = 400;

interface Outcome { code: number; printed: string; crashed?: string }

class Worker {
  private child?: ChildProcess;
  crashes = 0;

  run(argv: string[]): Promise<Outcome> {
    const child = (this.child ??= fork(path.join(__dirname, '..', 'hostile', 'fuzz-worker.js'), [], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'], execArgv: [] }));
    return new Promise((resolve) => {
      const onMessage = (m: Outcome) => {
        child.off('exit', onExit);
        resolve(m);
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        child.off('message', onMessage);
        this.child = undefined;
        this.crashes++;
        resolve({ code: 1, printed: '', crashed: signal ?? `exit code ${code}` });
      };
      child.once('message', onMessage);
      child.once('exit', onExit);
      child.send(argv);
    });
  }

  close(): void {
    this.child?.kill();
  }
}

const hash = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

test(`${2 * MUTANTS_PER_MODEL} seeded mutants of two models: exit 0/1/2 with a message, no stack trace, the input unchanged, nothing written on failure`, { timeout: 180_000 }, async () => {
  const t0 = performance.now();
  const dir = trackedTempDirs()('fuzz');
  const seeds = [
    { name: 'conv', bytes: fs.readFileSync(MAKERS['tiny-conv'](dir)) },
    { name: 'mnist', bytes: fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'mnist-cnn', 'model.onnx')) },
  ];
  const worker = new Worker();
  const codes = new Map<number, number>();
  try {
    for (const seed of seeds) {
      for (let k = 0; k < MUTANTS_PER_MODEL; k++) {
        const model = path.join(dir, `${seed.name}-${k}.onnx`);
        const out = path.join(dir, `out-${seed.name}-${k}`);
        fs.writeFileSync(model, mutant(seed.bytes, 1000 * k + seed.bytes.length));
        const before = hash(model);
        for (const argv of [['inspect', model], ['quantize', model, '--backend', 'cpu', '--calibration', 'random:2', '--no-latency', '--quiet', '--out', path.join(out, 'q.onnx')]]) {
          const r = await worker.run(argv);
          const what = `${seed.name} mutant ${k}, ${argv[0]}: exit ${r.code}${r.crashed ? ` (worker ended: ${r.crashed})` : ''}\n${r.printed}`;
          codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
          assert.ok([0, 1, 2].includes(r.code), what);
          // Only a native crash may end the worker; a JavaScript path that exits would hide a failure.
          assert.doesNotMatch(r.crashed ?? '', /^exit/, what);
          assert.doesNotMatch(r.printed, /\n\s+at .+:\d+:\d+\)?|TypeError|RangeError|ReferenceError|Cannot read propert/, what);
          if (r.code !== 0 && !r.crashed) assert.match(r.printed, /quant-studio: \S/, what);
          assert.equal(hash(model), before, `${what}: the input changed`);
          if (r.code !== 0 && fs.existsSync(out)) assert.deepEqual(fs.readdirSync(out), [], `${what}: wrote on failure`);
        }
        fs.rmSync(out, { recursive: true, force: true });
      }
    }
  } finally {
    worker.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  // Both outcomes occur, or the mutants test nothing: some load and quantize, most are refused.
  assert.ok((codes.get(0) ?? 0) > 0 && (codes.get(1) ?? 0) > 0, JSON.stringify([...codes]));
  process.stdout.write(`# fuzz: ${2 * MUTANTS_PER_MODEL} mutants, ${[...codes].map(([c, n]) => `exit ${c}: ${n}`).join(', ')}, native crashes: ${worker.crashes}, ${seconds.toFixed(1)} s\n`);
});
