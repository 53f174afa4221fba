// The hostile corpus (test/hostile/cases.json) through the CLI, as a shell runs it, and through the
// browser host as raw HTTP; then the two cases that need a clock: Ctrl-C during a session that
// takes minutes to create, and a kill in the middle of saving.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { startServer, type RunningServer } from '../../app/serve';
import { MAKERS } from '../hostile/files';
import { ROOT } from '../helpers/build';
import { BIN, trackedTempDirs } from '../helpers/cli';

const CORPUS = path.join(ROOT, 'test', 'hostile', 'cases.json');
const tempDir = trackedTempDirs();

interface CliCase { name: string; model: string; data?: string; args: string[]; exit: number; stderr?: string; stdout?: string; stdoutNot?: string; writes?: string[]; seconds?: number }
interface HostCase { name: string; raw?: string; path?: string; method?: string; body?: string; json?: boolean; bodyBytes?: number; status: number; message?: string }
const corpus = JSON.parse(fs.readFileSync(CORPUS, 'utf8')) as { cli: CliCase[]; host: HostCase[] };

interface Ran { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; seconds: number }

/** The CLI in a subprocess, its stderr watched as it comes: a test can act on what it prints (Ctrl-C after a stage). */
function runCli(args: string[], cwd: string, onStderr?: (text: string, child: ReturnType<typeof spawn>) => void): Promise<Ran> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
    onStderr?.(stderr, child);
  });
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, seconds: (performance.now() - t0) / 1000 })));
}

/** Every file under `dir` with the hash of its bytes (links by their target's path). */
function snapshot(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (folder: string) => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      const full = path.join(folder, entry.name);
      if (entry.isSymbolicLink()) files.set(full, `link:${fs.readlinkSync(full)}`);
      else if (entry.isDirectory()) {
        files.set(full, 'folder');
        walk(full);
      } else files.set(full, crypto.createHash('sha256').update(fs.readFileSync(full)).digest('hex'));
    }
  };
  walk(dir);
  return files;
}

function assertNoStack(text: string, what: string): void {
  assert.doesNotMatch(text, /\n\s+at .+:\d+:\d+\)?/, `${what}: a stack trace`);
}

function locked(dir: string): string {
  // Root writes through permission bits; /proc takes no new files from anyone.
  if (process.getuid?.() === 0) return '/proc/quant-studio-locked';
  const folder = path.join(dir, 'locked');
  fs.mkdirSync(folder, { mode: 0o555 });
  return folder;
}

for (const c of corpus.cli) {
  test(`CLI: ${c.name}`, { timeout: 60_000 }, async () => {
    const dir = tempDir('hostile');
    const model = MAKERS[c.model](dir);
    const data = c.data ? MAKERS[c.data](dir) : '';
    const lockedDir = c.args.some((a) => a.includes('$locked')) ? locked(dir) : '';
    const before = snapshot(dir);
    const args = c.args.map((a) => a.replace('$model', model).replace('$data', data).replace('$dir', dir).replace('$locked', lockedDir));
    const ran = await runCli(args, dir);
    const where = `${c.name}: ${ran.stderr}`;
    assert.equal(ran.signal, null, where);
    assert.equal(ran.code, c.exit, where);
    if (c.stderr) assert.match(ran.stderr, new RegExp(c.stderr), where);
    if (c.stdout) assert.match(ran.stdout, new RegExp(c.stdout), where);
    if (c.stdoutNot) assert.doesNotMatch(ran.stdout, new RegExp(c.stdoutNot), where);
    if (c.seconds) assert.ok(ran.seconds < c.seconds, `${c.name}: ${ran.seconds.toFixed(1)} s`);
    assertNoStack(ran.stderr + ran.stdout, c.name);
    const after = snapshot(dir);
    for (const [file, hash] of before) assert.equal(after.get(file), hash, `${c.name}: ${file} changed`);
    const added = [...after.keys()].filter((f) => !before.has(f)).map((f) => path.relative(dir, f));
    if (c.exit !== 0) assert.deepEqual(added, [], `${c.name}: wrote on failure`);
    for (const file of c.writes ?? []) assert.ok(added.includes(file), `${c.name}: ${file} not written`);
  });
}

let server: RunningServer;
before(async () => {
  server = await startServer({ uiDir: path.join(ROOT, 'dist', 'ui'), sampleDir: path.join(ROOT, 'resources', 'sample'), stateDir: tempDir('hostile-serve') });
});
after(() => server.close());

/** One request written byte for byte, as a client that does not follow the rules would send it. */
function raw(request: string | Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // Written, not ended: a half-closed socket is not what clients send, and the reply comes first.
    const socket = net.connect(server.port, '127.0.0.1', () => socket.write(request));
    socket.setTimeout(10_000, () => socket.destroy());
    let reply = '';
    socket.on('data', (c: Buffer) => { reply += c.toString(); });
    socket.on('error', reject);
    socket.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(reply)?.[1]);
      resolve({ status, body: reply.slice(reply.indexOf('\r\n\r\n') + 4) });
    });
  });
}

function requestOf(c: HostCase): Buffer {
  if (c.raw) return Buffer.from(c.raw.replace('$port', String(server.port)));
  const body = c.bodyBytes ? Buffer.concat([Buffer.from('{"path":"'), Buffer.alloc(c.bodyBytes, 'a'), Buffer.from('"}')]) : Buffer.from(c.body ?? '');
  const head = `${c.method ?? 'GET'} ${c.path!.replace('$token', server.token)} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nConnection: close\r\n`
    + `${c.json ? 'Content-Type: application/json\r\n' : ''}Content-Length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head), body]);
}

for (const c of corpus.host) {
  test(`host: ${c.name}`, async () => {
    const reply = await raw(requestOf(c));
    assert.equal(reply.status, c.status, reply.body);
    if (c.message) assert.match(reply.body, new RegExp(c.message));
    assertNoStack(reply.body, c.name);
    const alive = await raw(`GET /${server.token}/ HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nConnection: close\r\n\r\n`);
    assert.equal(alive.status, 200, 'the host keeps serving');
  });
}

test('host: nothing of an upload lands outside the upload folder', async () => {
  const ok = await new Promise<string>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: server.port, path: `/${server.token}/upload?name=ok.onnx`, method: 'POST' }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end('x');
  });
  const uploads = path.dirname(path.dirname((JSON.parse(ok).value as { file: string }).file));
  const parent = path.dirname(uploads);
  const beforeNames = fs.readdirSync(parent);
  for (const name of ['..', '.', '.hidden', '../x']) await raw(requestOf({ name, path: `/$token/upload?name=${encodeURIComponent(name)}`, method: 'POST', body: 'x', status: 400 }));
  assert.deepEqual(fs.readdirSync(parent).filter((n) => n.endsWith('.part')), []);
  assert.deepEqual(fs.readdirSync(parent).filter((n) => !beforeNames.includes(n) && !n.startsWith('quant-studio')), []);
});

test('Ctrl-C while ONNX Runtime spends seconds creating a session: the CLI stops within a second, having written nothing', { timeout: 60_000 }, async () => {
  const dir = tempDir('hostile-sigint');
  const model = MAKERS['slow-to-open'](dir);
  const before = snapshot(dir);
  let sentAt = 0;
  // Evaluation creates the side-by-side session of two 4,000-node fans: the long native call.
  const ran = await runCli(['quantize', model, '--backend', 'cpu', '--calibration', 'random:2', '--out', path.join(dir, 'q.onnx')], dir, (text, child) => {
    if (!sentAt && /convert: done/.test(text)) {
      setTimeout(() => {
        sentAt = performance.now();
        child.kill('SIGINT');
      }, 500);
    }
  });
  const stopped = (performance.now() - sentAt) / 1000;
  assert.ok(sentAt > 0, ran.stderr);
  assert.equal(ran.code, 130, ran.stderr);
  assert.match(ran.stderr, /cancelled; nothing was written/);
  assert.ok(stopped < 1.2, `stopped ${stopped.toFixed(2)} s after Ctrl-C`);
  assert.deepEqual([...snapshot(dir).keys()].filter((f) => !before.has(f)), []);
});

test('SIGKILL while saving: no report in place vouches for a partial set, and the next export removes the dead staging folder', { timeout: 60_000 }, async () => {
  const dir = tempDir('hostile-kill');
  const model = MAKERS['tiny-conv'](dir);
  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  const args = ['quantize', model, '--backend', 'cpu', '--calibration', 'random:2', '--out', path.join(out, 'q.onnx'), '--quiet', '--no-latency'];
  // The engine in this process (as the CLI's own child runs it), killed the moment its staging folder appears.
  const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, stdio: 'ignore', env: { ...process.env, QUANT_STUDIO_ENGINE_CHILD: '1' } });
  const watcher = fs.watch(out, (_, name) => {
    if (name?.startsWith('.quant-studio-stage-')) child.kill('SIGKILL');
  });
  const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_, s) => resolve(s)));
  watcher.close();
  assert.equal(signal, 'SIGKILL');
  const left = fs.readdirSync(out);
  assert.ok(left.some((n) => n.startsWith(`.quant-studio-stage-${child.pid}-`)), `the staging folder of the killed job: ${left}`);
  assert.ok(!left.includes('q.report.json'), `no report vouches for what is in place: ${left}`);

  const rerun = await runCli(args, dir);
  assert.equal(rerun.code, 0, rerun.stderr);
  const names = fs.readdirSync(out);
  assert.deepEqual(names.filter((n) => n.startsWith('.quant-studio-')), [], 'the dead staging folder is gone');
  const report = JSON.parse(fs.readFileSync(path.join(out, 'q.report.json'), 'utf8')) as { artifacts: Array<{ file: string; bytes: number }> };
  for (const a of report.artifacts) assert.equal(fs.statSync(a.file).size, a.bytes, a.file);
});

test('an engine child whose CLI parent is SIGKILLed ends too', { timeout: 30_000 }, async () => {
  const dir = tempDir('hostile-orphan');
  const isolated = path.join(ROOT, 'dist', 'app', 'isolated.js');
  // The parent starts a child as runInChild does (an IPC channel that carries nothing), reports its pid, and is killed.
  const parentScript = path.join(dir, 'parent.js');
  const childScript = path.join(dir, 'child.js');
  fs.writeFileSync(childScript, `require(${JSON.stringify(isolated)}).exitWithParent(); setInterval(() => {}, 1000);`);
  fs.writeFileSync(parentScript, `const c = require('node:child_process').spawn(process.execPath, [${JSON.stringify(childScript)}], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] }); process.stdout.write(String(c.pid)); setInterval(() => {}, 1000);`);
  const parent = spawn(process.execPath, [parentScript], { stdio: ['ignore', 'pipe', 'ignore'] });
  const pid = Number(await new Promise<string>((resolve) => parent.stdout.once('data', (c: Buffer) => resolve(c.toString()))));
  await new Promise((r) => setTimeout(r, 300));
  parent.kill('SIGKILL');
  const alive = () => { try { process.kill(pid, 0); return true; } catch { return false; } };
  const t0 = performance.now();
  while (alive() && performance.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
  assert.equal(alive(), false, `child ${pid} outlived its parent`);
});
