// npm start: the desktop app; where the Electron binary is missing (npm here installs packages
// without running their install scripts), the same studio in a browser.
'use strict';
const { spawn } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
let electron;
try {
  electron = require('electron');
} catch {
  electron = undefined;
}
const args = process.argv.slice(2);
if (typeof electron === 'string') {
  const child = spawn(electron, [path.join(root, 'dist', 'app', 'electron-main.js'), ...args], { stdio: 'inherit' });
  child.on('exit', (code) => process.exit(code ?? 0));
} else {
  process.stdout.write('The Electron binary is not installed (run "node node_modules/electron/install.js" where the network allows); starting the browser host instead.\n');
  const child = spawn(process.execPath, [path.join(root, 'bin', 'quant-studio.js'), 'serve', ...args], { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code) => process.exit(code ?? 0));
}
