// The layering the design asks for, checked on the sources: main/'s folders rank down the data path
// and each imports only those above it; hosts reach the engine through main/jobs and main/studio;
// the renderer reaches it only through shared/; only the Electron entry and preload import electron,
// and raw ipcMain/ipcRenderer appear only where the typed contract is wired.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { TOOL } from '../../shared/tool';
import { ROOT } from '../helpers/build';

function sources(dir: string): string[] {
  return fs.readdirSync(path.join(ROOT, dir), { recursive: true }).map(String)
    .filter((f) => /\.tsx?$/.test(f)).map((f) => path.join(dir, f));
}

function imports(file: string): string[] {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  return [...text.matchAll(/^\s*import\s[^'"]*['"]([^'"]+)['"]/gm)].map((m) => m[1]);
}

/** main/'s folders in rank order (docs/DESIGN.md): each may import shared/ and the folders listed for it. */
const ENGINE: Record<string, readonly string[]> = (() => {
  const rank = ['base', 'onnx', 'data', 'stats', 'plan', 'calib', 'convert', 'eval', 'repair', 'export', 'jobs', 'studio'];
  const above = (folder: string) => rank.slice(0, rank.indexOf(folder));
  return {
    base: [], onnx: ['base'], data: ['base', 'onnx'], stats: ['base'],
    ...Object.fromEntries(rank.slice(4).map((f) => [f, above(f)])),
    export: above('export').filter((f) => f !== 'repair'),
  };
})();

function importedFiles(file: string): string[] {
  return imports(file).filter((s) => s.startsWith('.')).map((s) => path.relative(ROOT, path.resolve(ROOT, path.dirname(file), s)));
}

test('each main/ folder imports only shared/ and the folders ranked above it', () => {
  const folders = fs.readdirSync(path.join(ROOT, 'main'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  assert.deepEqual(folders.sort(), Object.keys(ENGINE).sort(), 'every folder of main/ has its rank in the table');
  for (const file of sources('main')) {
    const folder = file.split(path.sep)[1];
    for (const target of importedFiles(file)) {
      const [top, other] = target.split(path.sep);
      if (top === 'shared') continue;
      assert.equal(top, 'main', `${file} imports ${target}`);
      assert.ok(other === folder || ENGINE[folder].includes(other), `${file} (main/${folder}) imports ${target}: main/${other} is not above it`);
    }
  }
});

test('the hosts reach the engine through main/jobs and main/studio only', () => {
  for (const file of sources('app')) {
    for (const target of importedFiles(file)) {
      if (!target.startsWith(`main${path.sep}`)) continue;
      assert.match(target, /^main[\\/](jobs|studio)([\\/]|$)/, `${file} imports ${target}`);
    }
  }
});

test('no engine function is longer than 120 lines', () => {
  for (const file of sources('main').filter((f) => !f.includes('generated'))) {
    const lines = fs.readFileSync(path.join(ROOT, file), 'utf8').split('\n');
    lines.forEach((line, i) => {
      const head = /^(\s*)(export )?(async )?(function \w+|(?:static |private |async )*\w+\(.*\)(: [^=]+)? \{$)/.exec(line);
      if (!head || !line.trimEnd().endsWith('{') || /^\s*(if|for|while|switch|catch|else|return|try)\b/.test(line)) return;
      const close = `${head[1]}}`;
      const end = lines.findIndex((l, j) => j > i && (l === close || l.startsWith(`${close})`) || l.startsWith(`${close};`)));
      assert.ok(end < 0 || end - i + 1 <= 120, `${file}:${i + 1} is ${end - i + 1} lines: ${line.trim().slice(0, 60)}`);
    });
  }
});

test('the tool version the reports carry is package.json\'s', () => {
  assert.equal(TOOL.version, JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
});

test('the renderer imports only shared/, itself and its UI libraries', () => {
  for (const file of sources('renderer')) {
    for (const spec of imports(file)) {
      if (!spec.startsWith('.')) {
        assert.match(spec, /^(react|react-dom|zustand|recharts|elkjs)(\/|$)/, `${file} imports ${spec}`);
        continue;
      }
      const target = path.relative(ROOT, path.resolve(ROOT, path.dirname(file), spec));
      assert.ok(target.startsWith('renderer') || target.startsWith('shared'), `${file} imports ${target}`);
    }
  }
});

test('shared/ imports nothing of the others, main/ never electron', () => {
  for (const file of sources('shared')) {
    for (const spec of imports(file)) assert.ok(spec.startsWith('./'), `${file} imports ${spec}`);
  }
  for (const file of sources('main')) {
    for (const spec of imports(file)) assert.ok(spec !== 'electron' && !spec.includes('renderer'), `${file} imports ${spec}`);
  }
});

test('electron appears only in the Electron entry and the preload; raw IPC only there and where the contract is wired', () => {
  for (const file of [...sources('app'), ...sources('main'), ...sources('renderer'), ...sources('shared')]) {
    const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
    const electron = imports(file).includes('electron');
    if (file === path.join('app', 'electron-main.ts') || file === path.join('app', 'preload.ts')) {
      assert.ok(electron, file);
      continue;
    }
    assert.ok(!electron, `${file} imports electron`);
    if (file !== path.join('app', 'ipc-main.ts')) assert.doesNotMatch(text, /\bipc(Main|Renderer)\./, `${file} uses raw IPC`);
  }
});

test('the bundled preload requires nothing but electron: a sandboxed preload can load no other module', () => {
  const bundle = fs.readFileSync(path.join(ROOT, 'dist', 'app', 'preload.js'), 'utf8');
  assert.deepEqual([...new Set([...bundle.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]))], ['electron']);
});
