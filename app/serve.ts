// The browser host: the built renderer and the studio API over HTTP, for machines without a
// display and for the end-to-end tests. Any web page the user opens could send requests to a local
// port, so the server binds 127.0.0.1 only, requires a random per-run token as the first path
// segment of every request, and refuses other origins and other Host names (DNS rebinding).
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { checkRequest, isChannel, KEPT_DAYS, PayloadError, type Envelope, type ExportRequest, type JobEvent } from '../shared/ipc';
import { downloadFileName, downloadName, zipExport } from '../main/studio/downloads';
import { RemoteStudio } from '../main/studio/remote';
import type { EngineChannel } from '../main/studio/service';

export interface ServeOptions {
  port?: number;
  /** The built renderer (dist/ui). */
  uiDir: string;
  sampleDir: string;
  stateDir: string;
  /** A fixed token, for tests; default: 32 random bytes. */
  token?: string;
}

export interface RunningServer {
  url: string;
  /** The address the server listens on. */
  host: string;
  port: number;
  token: string;
  service: RemoteStudio;
  close(): Promise<void>;
}

export const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

/** Content types of the files the built UI holds; anything else is not served. */
export const UI_TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.png': 'image/png', '.svg': 'image/svg+xml', '.map': 'application/json' };
const MAX_JSON = 1 << 20;
/** Uploads stream to disk; past this a model is not something anyone uploads to a local studio. */
export const MAX_UPLOAD = 16 * 2 ** 30;

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const token = options.token ?? crypto.randomBytes(32).toString('base64url');
  const streams = new Set<http.ServerResponse>();
  const uploads = keptFolder(options.stateDir, 'uploads');
  const downloads = keptFolder(options.stateDir, 'exports');
  const service = new RemoteStudio({
    stateDir: options.stateDir, sampleDir: options.sampleDir,
    emit: (event: JobEvent) => {
      const line = `data: ${JSON.stringify(event)}\n\n`;
      for (const s of streams) s.write(line);
    },
  });
  const server = http.createServer();
  let port = 0;

  const send = (res: http.ServerResponse, status: number, body: string | Buffer, type = 'application/json; charset=utf-8') => {
    res.writeHead(status, {
      'Content-Type': type, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer',
      'Content-Security-Policy': CSP, 'Cross-Origin-Resource-Policy': 'same-origin',
    });
    res.end(body);
  };
  const reply = (res: http.ServerResponse, status: number, envelope: Envelope<unknown>) => send(res, status, JSON.stringify(envelope));
  const refuse = (res: http.ServerResponse, status: number, error: string) => reply(res, status, { ok: false, error });

  const sameToken = (candidate: string) => {
    const a = Buffer.from(candidate);
    const b = Buffer.from(token);
    return a.length === b.length && crypto.timingSafeEqual(a, b);
  };

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const allowedHosts = [`127.0.0.1:${port}`, `localhost:${port}`];
    if (!allowedHosts.includes(req.headers.host ?? '')) return refuse(res, 403, 'wrong Host header: the studio answers only to 127.0.0.1');
    const origin = req.headers.origin;
    if (origin !== undefined && !allowedHosts.map((h) => `http://${h}`).includes(origin)) return refuse(res, 403, `requests from ${origin} are refused`);
    if (req.headers['sec-fetch-site'] === 'cross-site') return refuse(res, 403, 'cross-site requests are refused');
    let url: URL;
    let first: string;
    let rest: string[];
    try {
      url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
      [, first, ...rest] = url.pathname.split('/').map(decodeURIComponent);
    } catch {
      return refuse(res, 400, 'malformed request path');
    }
    if (!first || !sameToken(first)) return refuse(res, 403, 'missing or wrong token: open the URL that "quant-studio serve" printed');
    handle(req, res, rest.join('/'), url).catch((err: Error) => {
      if (res.headersSent) return res.destroy();
      refuse(res, err instanceof HttpError ? err.status : 500, err.message);
    });
  });
  // Requests that are not even HTTP get a 400 and the connection closed; the server keeps serving.
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, route: string, url: URL): Promise<void> {
    if (req.method === 'GET' && route === 'events') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
      res.write(': connected\n\n');
      streams.add(res);
      req.on('close', () => streams.delete(res));
      return;
    }
    if (req.method === 'POST' && route.startsWith('api/')) {
      const channel = route.slice(4);
      if (!isChannel(channel)) return refuse(res, 404, `unknown channel "${channel}"`);
      if (!(req.headers['content-type'] ?? '').startsWith('application/json')) return refuse(res, 415, 'requests must be application/json');
      const body = await readBody(req, MAX_JSON);
      let payload: unknown;
      try {
        payload = JSON.parse(body.toString('utf8'));
        checkRequest(channel, payload);
      } catch (err) {
        return refuse(res, 400, err instanceof PayloadError ? err.message : `${channel}: malformed JSON payload`);
      }
      // A browser has no native dialogs on the host's machine: the page falls back to upload or a typed path.
      if (channel === 'dialog:model' || channel === 'dialog:folder') return reply(res, 200, { ok: true, value: null });
      // An export with no folder named goes to a folder of the host's own, which the page downloads as a zip: a browser user may not see the host's disk at all.
      const bundle = channel === 'run:export' && !(payload as ExportRequest).folder ? downloadName((payload as ExportRequest).runId) : undefined;
      try {
        if (bundle === undefined) return reply(res, 200, { ok: true, value: await service.handle(channel as EngineChannel, payload as never) });
        const result = await service.handle('run:export', { ...(payload as ExportRequest), folder: path.join(downloads, bundle) });
        return reply(res, 200, { ok: true, value: { ...result, download: `download/${bundle}.zip` } });
      } catch (err) {
        return reply(res, 200, { ok: false, error: (err as Error).message });
      }
    }
    if (req.method === 'POST' && route === 'upload') {
      const asked = url.searchParams.get('name') ?? '';
      const batch = url.searchParams.get('batch');
      // A batch is a folder the page fills file by file (a picked folder keeps its subfolders, as folder-per-class labels need); a lone file gets a folder of its own.
      if (batch !== null && !/^[A-Za-z0-9_-]{8,64}$/.test(batch)) return refuse(res, 400, `upload: batch "${batch}" must be 8 to 64 letters, digits, - or _`);
      // Letters of any script stay: class folders named in Chinese must not all become "_" and merge.
      const segments = (batch === null ? [path.basename(asked)] : asked.split('/')).map((s) => s.replace(/[^\p{L}\p{N}_.\- ()[\]+,=@]/gu, '_'));
      // A name that is not a file's ("..", ".", ".hidden") would put the upload outside its folder or out of sight.
      if (segments.some((s) => !s || s.startsWith('.')) || segments.length > 8) return refuse(res, 400, `upload: "${asked}" is not a file name; give the file's own name (?name=model.onnx), or its path inside the folder of a batch`);
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > MAX_UPLOAD) return refuse(res, 413, `upload: ${declared} bytes is over the ${MAX_UPLOAD} the studio takes`);
      const folder = batch === null ? fs.mkdtempSync(path.join(uploads, 'u-')) : path.join(uploads, `b-${batch}`);
      const file = path.join(folder, ...segments);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      try {
        await streamToFile(req, file, MAX_UPLOAD);
      } catch (err) {
        if (batch === null) fs.rmSync(folder, { recursive: true, force: true });
        throw err;
      }
      return reply(res, 200, { ok: true, value: { file, folder } });
    }
    const download = /^download\/([\w-]+)\.zip$/.exec(route);
    if (req.method === 'GET' && download) {
      const folder = path.join(downloads, download[1]);
      if (!fs.existsSync(folder)) return refuse(res, 404, `no export "${download[1]}" (exports are kept ${KEPT_DAYS} days): export the run again`);
      res.writeHead(200, {
        'Content-Type': 'application/zip', 'Content-Disposition': contentDisposition(downloadFileName(folder)),
        'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', 'Content-Security-Policy': CSP,
      });
      const gone = new AbortController();
      res.on('close', () => gone.abort());
      await zipExport(folder, res, gone.signal);
      res.end();
      return;
    }
    if (req.method === 'GET') {
      const ui = path.resolve(options.uiDir);
      const file = path.resolve(ui, route === '' ? 'index.html' : route);
      if (!file.startsWith(ui + path.sep) || !UI_TYPES[path.extname(file)] || !fs.existsSync(file)) return refuse(res, 404, `no such file: /${route}`);
      return send(res, 200, fs.readFileSync(file), UI_TYPES[path.extname(file)]);
    }
    refuse(res, 405, `${req.method} /${route} is not something the studio answers`);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  port = address.port;
  return {
    url: `http://127.0.0.1:${port}/${token}/`, host: address.address, port, token, service,
    async close() {
      for (const s of streams) s.end();
      await service.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
}

/** A header holds ASCII only: the name in UTF-8 as RFC 6266 says, with an ASCII one for older clients. */
function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

/**
 * Uploads and exports live in the state folder, not a temporary one, so that an uploaded model is a
 * recent model, its runs read their data after a restart and an export is there to download again;
 * those older than KEPT_DAYS go.
 */
function keptFolder(stateDir: string, name: string): string {
  const folder = path.join(stateDir, name);
  fs.mkdirSync(folder, { recursive: true });
  const cutoff = Date.now() - KEPT_DAYS * 86_400_000;
  for (const entry of fs.readdirSync(folder)) {
    const dir = path.join(folder, entry);
    if (fs.statSync(dir).mtimeMs < cutoff) fs.rmSync(dir, { recursive: true, force: true });
  }
  return folder;
}

/** The request body; past `limit` it is read to its end and dropped, so that the client hears 413 rather than a reset connection. */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
    });
    req.on('end', () => (size > limit ? reject(new HttpError(413, `a request body of ${size} bytes is over the ${limit} the studio takes`)) : resolve(Buffer.concat(chunks))));
    req.on('error', reject);
  });
}

/** Streams an upload to a temporary name and renames it into place: a broken or oversized upload leaves no file. */
function streamToFile(req: http.IncomingMessage, file: string, limit: number): Promise<void> {
  const tmp = `${file}.part`;
  return new Promise((resolve, reject) => {
    const out = fs.createWriteStream(tmp);
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) fail(new HttpError(413, `upload: over the ${limit} bytes the studio takes`));
    });
    req.pipe(out);
    out.on('finish', () => {
      fs.renameSync(tmp, file);
      resolve();
    });
    const fail = (err: Error) => {
      out.destroy();
      fs.rmSync(tmp, { force: true });
      reject(err);
    };
    req.on('error', fail);
    out.on('error', fail);
  });
}
