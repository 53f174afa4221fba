// Runs every compiled *.test.js under dist/test with node's test runner, one file at a time:
// the machine has two cores and the integration tests already use both through ONNX Runtime.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..', 'dist', 'test');
const filter = process.argv.slice(2);
const files = [];
(function walk(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(full);
    else if (entry.name.endsWith('.test.js') && (filter.length === 0 || filter.some((f) => full.includes(f)))) files.push(full);
  }
})(root);
files.sort();
// With no files, node --test would discover test files across the whole checkout instead.
if (files.length === 0) {
  console.error(`no compiled test file under ${root} matches ${filter.join(', ') || 'anything'}: run npm run build first, or check the name`);
  process.exit(1);
}
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
