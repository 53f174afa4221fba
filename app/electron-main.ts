// The desktop host: one sandboxed window showing the renderer from the app:// protocol, an app
// menu, .onnx files from the command line or the OS, and the engine behind the typed IPC contract.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { app, BrowserWindow, dialog, ipcMain, Menu, net, protocol, session, shell, utilityProcess, type MenuItemConstructorOptions } from 'electron';
import { EVENT_CHANNEL, MENU_CHANNEL, type ExportResult, type MenuCommand } from '../shared/ipc';
import { RemoteStudio, type SpawnEngine } from '../main/studio/remote';
import { APP_ORIGIN, registerHandlers, type IpcMainLike } from './ipc-main';
import { CSP, UI_TYPES } from './serve';

const UI_DIR = path.join(__dirname, '..', 'ui');
const RESOURCES = app.isPackaged ? process.resourcesPath : path.join(__dirname, '..', '..', 'resources');

protocol.registerSchemesAsPrivileged([{ scheme: 'app', privileges: { standard: true, secure: true, supportFetchAPI: true } }]);

let win: BrowserWindow | undefined;
let pendingPath = modelFromArgv(process.argv);

function modelFromArgv(argv: string[]): string | undefined {
  return argv.slice(1).find((a) => /\.onnx$/i.test(a) && fs.existsSync(a));
}

function send(command: MenuCommand): void {
  win?.webContents.send(MENU_CHANNEL, command);
}

function openPath(file: string): void {
  if (win && !win.webContents.isLoading()) send({ command: 'open-path', path: path.resolve(file) });
  else pendingPath = file;
}

function serveUi(): void {
  protocol.handle('app', (request) => {
    const url = new URL(request.url);
    const file = path.resolve(UI_DIR, decodeURIComponent(url.pathname).replace(/^\/+/, '') || 'index.html');
    const type = UI_TYPES[path.extname(file)];
    if (url.host !== 'studio' || !file.startsWith(UI_DIR + path.sep) || !type) return new Response('not found', { status: 404 });
    return net.fetch(pathToFileURL(file).toString()).then((r) => new Response(r.body, {
      status: r.status, headers: { 'Content-Type': type, 'Content-Security-Policy': CSP, 'X-Content-Type-Options': 'nosniff' },
    }));
  });
}

/** The engine in an Electron utility process: a Node process without the RunAsNode fuse, which stays off. */
const utilityEngine: SpawnEngine = (script, args, env) => {
  const child = utilityProcess.fork(script, args, { serviceName: 'Quant Studio engine', stdio: 'inherit', env });
  return {
    send: (m) => child.postMessage(m),
    onMessage: (listener) => void child.on('message', listener),
    onExit: (listener) => void child.on('exit', (code) => listener(code, null)),
    kill: () => void child.kill(),
  };
};

function menu(): void {
  const template: MenuItemConstructorOptions[] = [
    {
      label: 'File',
      submenu: [
        { label: 'Open…', accelerator: 'CmdOrCtrl+O', click: () => send({ command: 'open' }) },
        { label: 'Open sample', click: () => send({ command: 'sample' }) },
        { label: 'Export', accelerator: 'CmdOrCtrl+E', click: () => send({ command: 'export' }) },
        { type: 'separator' },
        { role: 'quit' },
      ],
    },
    { role: 'editMenu' },
    {
      label: 'View',
      // DevTools only in a development build: in the packaged app they would hand the page's privileges to whoever sits at it.
      submenu: [
        { role: 'resetZoom' }, { role: 'zoomIn' }, { role: 'zoomOut' }, { type: 'separator' }, { role: 'togglefullscreen' },
        ...(app.isPackaged ? [] : [{ type: 'separator' } as const, { role: 'reload' } as const, { role: 'toggleDevTools' } as const]),
      ],
    },
  ];
  Menu.setApplicationMenu(Menu.buildFromTemplate(template));
}

function createWindow(): void {
  win = new BrowserWindow({
    width: 1360, height: 900, show: false, title: 'Quant Studio',
    webPreferences: {
      preload: path.join(__dirname, 'preload.js'), contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true, spellcheck: false,
      devTools: !app.isPackaged,
    },
  });
  // The studio's pages link nowhere: no second window, and nothing handed to the OS to open.
  win.webContents.setWindowOpenHandler(() => ({ action: 'deny' }));
  win.webContents.on('will-navigate', (e) => e.preventDefault());
  win.webContents.on('will-redirect', (e) => e.preventDefault());
  win.once('ready-to-show', () => win?.show());
  win.webContents.on('did-finish-load', () => {
    if (pendingPath) openPath(pendingPath);
    pendingPath = undefined;
  });
  win.on('closed', () => {
    win = undefined;
  });
  void win.loadURL(`${APP_ORIGIN}/index.html`);
}

app.on('open-file', (e, file) => {
  e.preventDefault();
  openPath(file);
});

if (!app.requestSingleInstanceLock()) app.quit();
app.on('second-instance', (_e, argv) => {
  const file = modelFromArgv(argv);
  if (file) openPath(file);
  win?.focus();
});

/** The studio uses no camera, microphone, notification, geolocation, clipboard or other permission: every request is denied. */
function denyPermissions(): void {
  session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  session.defaultSession.setPermissionCheckHandler(() => false);
  session.defaultSession.setDevicePermissionHandler(() => false);
}

/**
 * Shows the folder an export just wrote, and nothing else: the folder is the engine's answer, and is
 * opened only when every file it lists is there, inside it (real paths), so that no path from the
 * renderer reaches the OS's file opener.
 */
function showExport(result: ExportResult): void {
  const real = (p: string) => (fs.existsSync(p) ? fs.realpathSync(p) : undefined);
  const folder = real(result.folder);
  if (!folder || !fs.statSync(folder).isDirectory()) return;
  if (result.files.length > 0 && result.files.every((f) => { const file = real(f.file); return file !== undefined && path.dirname(file) === folder; })) void shell.openPath(folder);
}

app.whenReady().then(() => {
  denyPermissions();
  serveUi();
  menu();
  // The engine runs in a utility process: the main process only relays, and outlives an engine crash.
  const service = new RemoteStudio({
    stateDir: app.getPath('userData'), sampleDir: path.join(RESOURCES, 'sample'),
    emit: (event) => win?.webContents.send(EVENT_CHANNEL, event), spawn: utilityEngine,
  });
  registerHandlers(ipcMain as unknown as IpcMainLike, () => win?.webContents.id, {
    'model:open': (r) => service.handle('model:open', r),
    'model:sample': (r) => service.handle('model:sample', r),
    'model:recent': (r) => service.handle('model:recent', r),
    'model:plan': (r) => service.handle('model:plan', r),
    'model:graph': (r) => service.handle('model:graph', r),
    'data:preview': (r) => service.handle('data:preview', r),
    'run:start': (r) => service.handle('run:start', r),
    'run:cancel': (r) => service.handle('run:cancel', r),
    'run:layer': (r) => service.handle('run:layer', r),
    'run:analyze': (r) => service.handle('run:analyze', r),
    'session:get': (r) => service.handle('session:get', r),
    'session:save': (r) => service.handle('session:save', r),
    'run:export': async (r) => {
      const result = await service.handle('run:export', r);
      showExport(result);
      return result;
    },
    'dialog:model': async () => {
      const picked = await dialog.showOpenDialog(win!, { properties: ['openFile'], filters: [{ name: 'ONNX model', extensions: ['onnx'] }] });
      return picked.canceled ? null : picked.filePaths[0] ?? null;
    },
    'dialog:folder': async () => {
      const picked = await dialog.showOpenDialog(win!, { properties: ['openDirectory', 'createDirectory'] });
      return picked.canceled ? null : picked.filePaths[0] ?? null;
    },
  });
  createWindow();
  // Quitting waits for a run in progress to stop and for the work folders to go.
  let closed = false;
  app.on('before-quit', (e) => {
    if (closed) return;
    e.preventDefault();
    void service.close().finally(() => {
      closed = true;
      app.quit();
    });
  });
  app.on('window-all-closed', () => app.quit());
});
