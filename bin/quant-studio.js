#!/usr/bin/env node
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const cli = path.join(__dirname, '..', 'dist', 'app', 'cli.js');
if (!fs.existsSync(cli)) {
  process.stderr.write('quant-studio: not built yet; run "npm run build" first\n');
  process.exit(1);
}
// Exit only once stdout has drained: on a pipe, writes are asynchronous and process.exit would cut
// a long --json report short.
require(cli).main(process.argv.slice(2)).then((code) => process.stdout.write('', () => process.exit(code)));
