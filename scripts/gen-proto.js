// Generates the ONNX protobuf codec from the vendored schema (proto/onnx.proto, ONNX 1.23, IR 14).
// The JavaScript goes straight into dist/ (it is not TypeScript); the typings sit beside the
// sources so that tsc can check every use of the schema.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const schema = path.join(root, 'proto', 'onnx.proto');
const js = path.join(root, 'dist', 'main', 'onnx', 'generated', 'onnx.js');
const dts = path.join(root, 'main', 'onnx', 'generated', 'onnx.d.ts');
const bin = (name) => path.join(root, 'node_modules', 'protobufjs-cli', 'bin', name);

const fresh = (target) => fs.existsSync(target) && fs.statSync(target).mtimeMs >= fs.statSync(schema).mtimeMs;
if (fresh(js) && fresh(dts)) process.exit(0);

fs.mkdirSync(path.dirname(js), { recursive: true });
fs.mkdirSync(path.dirname(dts), { recursive: true });
execFileSync(process.execPath, [bin('pbjs'), '-t', 'static-module', '-w', 'commonjs', '--no-verify', '--no-delimited',
  '--no-convert', '--no-service', '--force-message', '-o', js, schema], { stdio: 'inherit' });
execFileSync(process.execPath, [bin('pbts'), '-o', dts, js], { stdio: 'inherit' });
