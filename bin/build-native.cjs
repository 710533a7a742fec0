#!/usr/bin/env node
// Builds veilfs's addons (native/) at install time: the FUSE binding, the
// cipher (on the OpenSSL inside Node), reads of the local store that never
// wait for a disk, and scrypt (on libsodium). Offline: npm's bundled node-gyp
// against the headers of the Node that runs this and the system's libfuse 2
// (libfuse-dev) and libsodium (libsodium-dev), nothing downloaded.
'use strict';
const { execFileSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const path = require('node:path');

const pkg = path.join(__dirname, '..', 'native');

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
  process.stderr.write(`veilfs: building the native addons failed: ${message}\n`);
  process.exit(1);
}

try {
  execFileSync(process.execPath, [nodeGyp(), 'rebuild', `--nodedir=${nodeHeaders()}`], {
    cwd: pkg,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
} catch (err) {
  const detail = String(err.stderr ?? err.message).split('\n').filter((l) => /error/i.test(l)).slice(0, 5).join('\n');
  fail(`node-gyp rebuild in ${pkg} failed (needs g++, make, python3 and the headers of libfuse 2 and libsodium: apt-get install build-essential python3 libfuse-dev libsodium-dev)\n${detail}`);
}
for (const addon of ['veilfs_crypto', 'veilfs_io']) {
  try {
    require(path.join(pkg, `build/Release/${addon}.node`));
  } catch (err) {
    fail(err.message);
  }
}
try {
  require(path.join(pkg, 'build/Release/veilfs_fuse.node'));
} catch (err) {
  // libfuse2 missing is reported by the mount command with its own fix; anything else is a broken build.
  if (!/libfuse/.test(err.message)) fail(err.message);
}
