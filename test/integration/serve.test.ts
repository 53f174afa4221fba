// The browser host's guard: 127.0.0.1 only, the token on every request, no other origins or Host
// names, payloads validated; and with all that right, it answers.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { after, before, test } from 'node:test';
import { startServer, type RunningServer } from '../../app/serve';
import { recipeFor } from '../../shared/backends';
import type { ExportResult, SessionState } from '../../shared/ipc';
import { readZip } from '../helpers/zip';
import { ROOT, tempDir } from '../helpers/build';

let server: RunningServer;
before(async () => {
  server = await startServer({ uiDir: path.join(ROOT, 'dist', 'ui'), sampleDir: path.join(ROOT, 'resources', 'sample'), stateDir: tempDir('qs-serve-') });
});
after(() => server.close());

interface Reply { status: number; body: string; type?: string }

function request(pathname: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: server.port, path: pathname, method: options.method ?? 'GET', headers: options.headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode!, body, type: res.headers['content-type'] }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

const api = (channel: string, payload: unknown, headers: Record<string, string> = {}) => request(`/${server.token}/api/${channel}`, {
  method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(payload),
});

test('listens on 127.0.0.1 only', async () => {
  assert.equal(server.host, '127.0.0.1');
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/[\w-]{40,}\/$/);
  // Linux answers the whole 127/8 on loopback: a server bound to 127.0.0.1 alone refuses 127.0.0.2.
  const refused = await new Promise<boolean>((resolve) => {
    const socket = net.connect({ host: '127.0.0.2', port: server.port });
    socket.once('connect', () => { socket.destroy(); resolve(false); });
    socket.once('error', () => resolve(true));
  });
  assert.equal(refused, true, 'a connection to 127.0.0.2 is refused');
});

test('requests without the token or with a wrong one are refused', async () => {
  for (const p of ['/', '/index.html', '/app.js', '/api/model:sample', '/events', `/${server.token.slice(0, -1)}x/`, `/${server.token}x/index.html`]) {
    const r = p.includes('api') ? await request(p, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' }) : await request(p);
    assert.equal(r.status, 403, p);
    assert.match(JSON.parse(r.body).error, /missing or wrong token/);
  }
  const upload = await request('/upload?name=x.onnx', { method: 'POST', body: 'x' });
  assert.equal(upload.status, 403);
});

test('other origins and other Host names are refused even with the token', async () => {
  const evil = await api('model:sample', {}, { Origin: 'http://evil.example' });
  assert.equal(evil.status, 403);
  assert.match(JSON.parse(evil.body).error, /requests from http:\/\/evil\.example are refused/);
  const otherPort = await api('model:sample', {}, { Origin: 'http://127.0.0.1:1' });
  assert.equal(otherPort.status, 403);
  const rebound = await request(`/${server.token}/`, { headers: { Host: `attacker.example:${server.port}` } });
  assert.equal(rebound.status, 403);
  assert.match(JSON.parse(rebound.body).error, /wrong Host header/);
  const crossSite = await api('model:sample', {}, { 'Sec-Fetch-Site': 'cross-site' });
  assert.equal(crossSite.status, 403);
});

test('with the token, the page and the API answer; the page carries a strict CSP', async () => {
  const page = await request(`/${server.token}/`);
  assert.equal(page.status, 200);
  assert.match(page.type!, /text\/html/);
  assert.match(page.body, /<div id="root">/);
  const sample = await api('model:sample', {}, { Origin: `http://127.0.0.1:${server.port}` });
  assert.equal(sample.status, 200);
  const reply = JSON.parse(sample.body);
  assert.equal(reply.ok, true);
  assert.equal(reply.value.model.name, 'cls.onnx');
  const headers = await new Promise<http.IncomingHttpHeaders>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: server.port, path: `/${server.token}/` }, (res) => { res.resume(); resolve(res.headers); }).on('error', reject);
  });
  assert.match(String(headers['content-security-policy']), /default-src 'self'/);
  assert.equal(headers['referrer-policy'], 'no-referrer');
});

test('malformed payloads, unknown channels and path traversal are refused', async () => {
  const bad = await api('model:open', { path: 7 });
  assert.equal(bad.status, 400);
  assert.match(JSON.parse(bad.body).error, /model:open: "path" must be a non-empty string/);
  const notJson = await request(`/${server.token}/api/model:open`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{path:' });
  assert.equal(notJson.status, 400);
  const unknown = await api('fs:rm', {});
  assert.equal(unknown.status, 404);
  const form = await request(`/${server.token}/api/model:sample`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: '{}' });
  assert.equal(form.status, 415);
  const traversal = await request(`/${server.token}/..%2f..%2fpackage.json`);
  assert.equal(traversal.status, 404);
});

test('an uploaded file that is not a model gets a clear error from the engine', async () => {
  const up = await request(`/${server.token}/upload?name=${encodeURIComponent('../../notes.onnx')}`, { method: 'POST', body: 'plain text' });
  assert.equal(up.status, 200);
  const { file, folder } = JSON.parse(up.body).value as { file: string; folder: string };
  assert.equal(path.dirname(file), folder);
  assert.equal(path.basename(file), 'notes.onnx', 'the name cannot climb out of the upload folder');
  const opened = JSON.parse((await api('model:open', { path: file })).body);
  assert.equal(opened.ok, false);
  assert.match(opened.error, /notes\.onnx: not a readable ONNX model/);
});

/** Bytes of a POST or GET, for uploads and the zip. */
function binary(pathname: string, method: string, body?: Buffer): Promise<{ status: number; body: Buffer; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: server.port, path: pathname, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks), headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('a model and a folder of images uploaded, a run on them, and its export downloaded as a zip whose model loads', { timeout: 120_000 }, async () => {
  const sample = path.join(ROOT, 'resources', 'sample');
  const model = JSON.parse((await binary(`/${server.token}/upload?name=cls.onnx`, 'POST', fs.readFileSync(path.join(sample, 'cls.onnx')))).body.toString()).value as { file: string };
  const batch = 'abcdef0123456789';
  let folder = '';
  for (const name of fs.readdirSync(path.join(sample, 'calibration')).slice(0, 6)) {
    const up = await binary(`/${server.token}/upload?batch=${batch}&name=${encodeURIComponent(`lines/${name}`)}`, 'POST', fs.readFileSync(path.join(sample, 'calibration', name)));
    assert.equal(up.status, 200, up.body.toString());
    folder = (JSON.parse(up.body.toString()).value as { folder: string }).folder;
  }
  assert.equal(fs.readdirSync(path.join(folder, 'lines')).length, 6, 'a batch keeps its subfolders');
  for (const bad of [`batch=short&name=x.png`, `batch=${batch}&name=${encodeURIComponent('lines/../../x.png')}`, `batch=${batch}&name=${encodeURIComponent('.git/x')}`]) {
    assert.equal((await binary(`/${server.token}/upload?${bad}`, 'POST', Buffer.from('x'))).status, 400, bad);
  }

  const recipe = recipeFor('xnnpack');
  const started = JSON.parse((await api('run:start', { model: model.file, recipe, calibration: path.join(folder, 'lines'), holdOut: 0.5, preprocess: { size: [48, 192], mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] } })).body);
  assert.equal(started.ok, true, started.error);
  const runId = started.value.runId as string;
  // The session tells how a job ended to whoever asks, as it does a page that reloads.
  let ended: { type: string; message?: string } | undefined;
  for (let i = 0; i < 600 && !ended; i++) {
    await new Promise((r) => setTimeout(r, 100));
    ended = (JSON.parse((await api('session:get', {})).body).value as SessionState).ended.find((e) => e.runId === runId);
  }
  assert.equal(ended?.type, 'done', ended?.message);

  const exported = JSON.parse((await api('run:export', { runId })).body).value as ExportResult;
  assert.match(exported.download!, /^download\/run-\d+-\d{8}T\d{6}\.zip$/);
  assert.ok(!exported.folder.startsWith(os.tmpdir() + path.sep) || exported.folder.includes('qs-serve-'), 'the export is in the host\'s state folder, not a temporary one');
  const zip = await binary(`/${server.token}/${exported.download}`, 'GET');
  assert.equal(zip.status, 200);
  assert.equal(zip.headers['content-type'], 'application/zip');
  assert.match(String(zip.headers['content-disposition']), /attachment; filename="cls\.xnnpack-static-run-\d+\.zip"/);
  const file = path.join(tempDir('qs-serve-zip-'), 'export.zip');
  fs.writeFileSync(file, zip.body);
  const entries = readZip(file);
  assert.deepEqual([...entries.keys()].sort(), exported.files.map((f) => path.basename(f.file)).sort());
  for (const f of exported.files) assert.ok(entries.get(path.basename(f.file))!.equals(fs.readFileSync(f.file)), f.file);
  const onnxFiles = [...entries.keys()].filter((n) => n.endsWith('.onnx'));
  assert.ok(onnxFiles.length > 0);
  for (const name of onnxFiles) await (await ort.InferenceSession.create(entries.get(name)!)).release();
  assert.equal((await binary(`/${server.token}/download/run-999-20260101T000000.zip`, 'GET')).status, 404);
});
