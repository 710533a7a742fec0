#!/usr/bin/env node
// Builds fuse-native's binding from its (patched) sources at install time:
// its prebuilt binary predates our patch (patches/fuse-native+*.patch) and
// would misread times and stats. Offline: npm's bundled node-gyp against the
// headers of the Node that runs this, nothing downloaded.
'use strict';
const { execFileSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const path = require('node:path');

const pkg = path.dirname(require.resolve('fuse-native/package.json'));

function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
    '/usr/share/nodejs/node-gyp/bin/node-gyp.js',
  ];
  const found = candidates.find((c) => c && existsSync(c));
  if (!found) fail('cannot find node-gyp (it ships with npm); run this through npm ci');
  return found;
}

function nodeHeaders() {
  for (const dir of [path.resolve(process.execPath, '../..'), '/usr']) {
    if (existsSync(path.join(dir, 'include/node/node_api.h'))) return dir;
  }
  fail(`no Node.js headers (include/node/node_api.h) next to ${process.execPath} or in /usr/include/node`);
}

function fail(message) {
  process.stderr.write(`veilfs: building the FUSE binding failed: ${message}\n`);
  process.exit(1);
}

try {
  execFileSync(process.execPath, [nodeGyp(), 'rebuild', `--nodedir=${nodeHeaders()}`], {
    cwd: pkg,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
} catch (err) {
  const detail = String(err.stderr ?? err.message).split('\n').filter((l) => /error/i.test(l)).slice(0, 5).join('\n');
  fail(`node-gyp rebuild in ${pkg} failed (needs g++, make and python3: apt-get install build-essential python3)\n${detail}`);
}
try {
  require('fuse-native');
} catch (err) {
  // libfuse2 missing is reported by the mount command with its own fix; anything else is a broken build.
  if (!/libfuse/.test(err.message)) fail(err.message);
}
