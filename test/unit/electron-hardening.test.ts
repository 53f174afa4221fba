// The Electron layer's security settings, exercised: its binary cannot be downloaded here, so the
// built main process and preload run against a stand-in `electron` module that records what they
// ask of it (the calls are type-checked against Electron's own typings at build time). The
// packaged app is simulated: permissions denied, no DevTools, no external links, the OS shown only
// folders an export wrote, the preload forwarding only the contract's channels; the build's fuses
// and the pinned versions are read from the configuration.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import Module from 'node:module';
import * as path from 'node:path';
import { test } from 'node:test';
import { CHANNELS } from '../../shared/ipc';
import { ROOT } from '../helpers/build';
import { trackedTempDirs } from '../helpers/cli';

const tempDir = trackedTempDirs();

const DIST_APP = path.join(ROOT, 'dist', 'app');

/** Loads `file` fresh with `fake` as the `electron` module. */
function loadWith(file: string, fake: unknown): void {
  const load = (Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown })._load;
  (Module as unknown as { _load: typeof load })._load = (request, ...rest) => (request === 'electron' ? fake : load(request, ...rest));
  try {
    delete require.cache[require.resolve(file)];
    require(file);
  } finally {
    (Module as unknown as { _load: typeof load })._load = load;
  }
}

interface Recorded {
  permissionRequest?: (contents: unknown, permission: string, callback: (granted: boolean) => void) => void;
  permissionCheck?: (...args: unknown[]) => boolean;
  devicePermission?: (...args: unknown[]) => boolean;
  windowOptions?: { webPreferences: Record<string, unknown> };
  windowOpen?: (details: { url: string }) => { action: string };
  menu?: Array<{ label?: string; role?: string; submenu?: Array<{ role?: string }> }>;
  handlers: Map<string, (event: unknown, payload: unknown) => Promise<{ ok: boolean; value?: unknown; error?: string }>>;
  opened: string[];
  external: string[];
  engineMessages: Array<{ type: string; id?: number; channel?: string }>;
  engine?: EventEmitter;
}

function fakeElectron(rec: Recorded) {
  const webContents = Object.assign(new EventEmitter(), {
    id: 1, isLoading: () => false, send: () => undefined,
    setWindowOpenHandler: (h: Recorded['windowOpen']) => { rec.windowOpen = h; },
  });
  class BrowserWindow extends EventEmitter {
    webContents = webContents;
    constructor(options: Recorded['windowOptions']) {
      super();
      rec.windowOptions = options;
    }
    loadURL() { return Promise.resolve(); }
    show() { return undefined; }
    focus() { return undefined; }
  }
  const app = Object.assign(new EventEmitter(), {
    isPackaged: true, getPath: () => tempDir('electron-user'), requestSingleInstanceLock: () => true, quit: () => undefined,
    whenReady: () => Promise.resolve(),
  });
  return {
    app, BrowserWindow,
    dialog: { showOpenDialog: async () => ({ canceled: true, filePaths: [] }) },
    ipcMain: { handle: (channel: string, h: Recorded['handlers'] extends Map<string, infer H> ? H : never) => void rec.handlers.set(channel, h) },
    Menu: { buildFromTemplate: (t: Recorded['menu']) => { rec.menu = t; return t; }, setApplicationMenu: () => undefined },
    net: { fetch: async () => new Response('') },
    protocol: { registerSchemesAsPrivileged: () => undefined, handle: () => undefined },
    session: {
      defaultSession: {
        setPermissionRequestHandler: (h: Recorded['permissionRequest']) => { rec.permissionRequest = h; },
        setPermissionCheckHandler: (h: Recorded['permissionCheck']) => { rec.permissionCheck = h; },
        setDevicePermissionHandler: (h: Recorded['devicePermission']) => { rec.devicePermission = h; },
      },
    },
    shell: { openPath: async (p: string) => { rec.opened.push(p); return ''; }, openExternal: async (u: string) => { rec.external.push(u); } },
    utilityProcess: {
      fork: () => {
        const child = Object.assign(new EventEmitter(), {
          postMessage: (m: Recorded['engineMessages'][number]) => rec.engineMessages.push(m),
          kill: () => true,
        });
        rec.engine = child;
        return child;
      },
    },
  };
}

async function packagedMain(): Promise<Recorded> {
  const rec: Recorded = { handlers: new Map(), opened: [], external: [], engineMessages: [] };
  // A packaged app finds its resources (the sample) here.
  (process as { resourcesPath?: string }).resourcesPath = path.join(ROOT, 'resources');
  loadWith(path.join(DIST_APP, 'electron-main.js'), fakeElectron(rec));
  await new Promise((r) => setImmediate(r));
  return rec;
}

const fromWindow = { sender: { id: 1 }, senderFrame: { url: 'app://studio/index.html', parent: null } };

/** A run:export through the main process, the engine answering `result`. */
async function exportAnswered(rec: Recorded, result: unknown): Promise<void> {
  const reply = rec.handlers.get('run:export')!(fromWindow, { runId: 'r1', folder: '/anywhere' });
  await new Promise((r) => setImmediate(r));
  const call = rec.engineMessages.filter((m) => m.type === 'call').at(-1)!;
  rec.engine!.emit('message', { id: call.id, ok: true, value: result });
  assert.equal((await reply).ok, true);
}

test('packaged main: every permission denied, no DevTools, no second window, no link handed to the OS', async () => {
  const rec = await packagedMain();
  const answers: boolean[] = [];
  for (const permission of ['media', 'geolocation', 'notifications', 'clipboard-read', 'openExternal']) rec.permissionRequest!({}, permission, (granted) => answers.push(granted));
  assert.deepEqual(answers, [false, false, false, false, false]);
  assert.equal(rec.permissionCheck!({}, 'clipboard-sanitized-write'), false);
  assert.equal(rec.devicePermission!({ deviceType: 'usb' }), false);
  const prefs = rec.windowOptions!.webPreferences;
  assert.deepEqual([prefs.devTools, prefs.sandbox, prefs.contextIsolation, prefs.nodeIntegration], [false, true, true, false]);
  const roles = JSON.stringify(rec.menu);
  assert.doesNotMatch(roles, /toggleDevTools|viewMenu|reload/i);
  assert.deepEqual(rec.windowOpen!({ url: 'https://example.com/' }), { action: 'deny' });
  assert.deepEqual(rec.windowOpen!({ url: 'file:///etc/passwd' }), { action: 'deny' });
  assert.deepEqual(rec.external, []);
  assert.deepEqual([...rec.handlers.keys()].sort(), [...CHANNELS].sort());
});

test('packaged main: the OS is shown the folder an export wrote, never a folder its files are not in', async () => {
  const rec = await packagedMain();
  const folder = tempDir('electron-export');
  const file = path.join(folder, 'q.onnx');
  fs.writeFileSync(file, 'x');
  await exportAnswered(rec, { folder: '/etc', files: [{ file, bytes: 1, what: 'QDQ model' }], floatBytes: 1, quantizedBytes: 1, ratio: 1 });
  await exportAnswered(rec, { folder, files: [{ file: path.join(folder, 'missing.onnx'), bytes: 1, what: 'QDQ model' }], floatBytes: 1, quantizedBytes: 1, ratio: 1 });
  assert.deepEqual(rec.opened, []);
  await exportAnswered(rec, { folder, files: [{ file, bytes: 1, what: 'QDQ model' }], floatBytes: 1, quantizedBytes: 1, ratio: 1 });
  assert.deepEqual(rec.opened, [fs.realpathSync(folder)]);
});

test('preload: only the contract\'s channels reach ipcRenderer', async () => {
  const invoked: string[] = [];
  let api: { call: (channel: string, request: unknown) => Promise<unknown> } | undefined;
  loadWith(path.join(DIST_APP, 'preload.js'), {
    contextBridge: { exposeInMainWorld: (_name: string, value: typeof api) => { api = value; } },
    ipcRenderer: { invoke: async (channel: string) => { invoked.push(channel); return { ok: true, value: 'answered' }; }, on: () => undefined, removeListener: () => undefined },
    webUtils: { getPathForFile: () => '' },
  });
  await assert.rejects(api!.call('fs:rm', {}), /unknown channel "fs:rm"/);
  await assert.rejects(api!.call('__proto__', {}), /unknown channel/);
  assert.equal(await api!.call('model:recent', {}), 'answered');
  assert.deepEqual(invoked, ['model:recent']);
});

test('the build pins Electron ≥ 45 and electron-builder, and burns the fuses that close what the app does not use', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
  assert.ok(Number(/\d+/.exec(pkg.devDependencies.electron)![0]) >= 45, pkg.devDependencies.electron);
  assert.match(pkg.devDependencies['electron-builder'], /^\^?\d+\.\d+\.\d+$/);
  const builder = fs.readFileSync(path.join(ROOT, 'electron-builder.yml'), 'utf8');
  const fuses = Object.fromEntries([...builder.split('electronFuses:')[1].split(/\n\S/)[0].matchAll(/^\s+(\w+): (true|false)$/gm)].map((m) => [m[1], m[2] === 'true']));
  assert.deepEqual(fuses, {
    runAsNode: false, enableCookieEncryption: true, enableNodeOptionsEnvironmentVariable: false, enableNodeCliInspectArguments: false,
    onlyLoadAppFromAsar: true, enableEmbeddedAsarIntegrityValidation: true, grantFileProtocolExtraPrivileges: false,
  });
  assert.match(builder, /asarUnpack:[\s\S]*node_modules\/sharp\/\*\*\/\*[\s\S]*node_modules\/@img\/\*\*\/\*/);
});
