// The layering the design asks for, checked on the sources: the renderer reaches the engine only
// through shared/, only the Electron entry and preload import electron, and raw ipcMain/ipcRenderer
// appear only where the typed contract is wired.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers/build';

function sources(dir: string): string[] {
  return fs.readdirSync(path.join(ROOT, dir), { recursive: true }).map(String)
    .filter((f) => /\.tsx?$/.test(f)).map((f) => path.join(dir, f));
}

function imports(file: string): string[] {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  return [...text.matchAll(/^\s*import\s[^'"]*['"]([^'"]+)['"]/gm)].map((m) => m[1]);
}

test('the renderer imports only shared/, itself and its UI libraries', () => {
  for (const file of sources('renderer')) {
    for (const spec of imports(file)) {
      if (!spec.startsWith('.')) {
        assert.match(spec, /^(react|react-dom|zustand|recharts)(\/|$)/, `${file} imports ${spec}`);
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
