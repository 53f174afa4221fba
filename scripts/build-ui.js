// Bundles the renderer (dist/ui: index.html, app.js, app.css, the graph layout's elk-worker.js) and the Electron preload, which a
// sandboxed renderer loads as one file: it may require nothing but 'electron'.
'use strict';
const esbuild = require('esbuild');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const ui = path.join(root, 'dist', 'ui');

async function main() {
  fs.mkdirSync(ui, { recursive: true });
  await esbuild.build({
    entryPoints: [path.join(root, 'renderer', 'main.tsx')],
    bundle: true, minify: true, sourcemap: true, format: 'iife', target: 'chrome120',
    outfile: path.join(ui, 'app.js'), jsx: 'automatic', define: { 'process.env.NODE_ENV': '"production"' }, logLevel: 'warning',
  });
  fs.copyFileSync(path.join(root, 'renderer', 'index.html'), path.join(ui, 'index.html'));
  fs.copyFileSync(path.join(root, 'renderer', 'styles.css'), path.join(ui, 'app.css'));
  // The graph view's layout engine runs in this worker (renderer/graph/layout-client.ts).
  fs.copyFileSync(require.resolve('elkjs/lib/elk-worker.min.js'), path.join(ui, 'elk-worker.js'));
  await esbuild.build({
    entryPoints: [path.join(root, 'app', 'preload.ts')],
    bundle: true, platform: 'node', format: 'cjs', target: 'node20', external: ['electron'],
    outfile: path.join(root, 'dist', 'app', 'preload.js'), logLevel: 'warning',
  });
}

main().catch((err) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
