#!/usr/bin/env node
// Bundles the share page (src/web) into dist/web with esbuild: app.js for the page, sw.js for its service worker.
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'web');
await mkdir(out, { recursive: true });
const common = { bundle: true, minify: true, sourcemap: true, target: ['chrome110', 'firefox115', 'safari16'], logLevel: 'warning', legalComments: 'linked' };
await build({ ...common, entryPoints: [join(root, 'src/web/app.ts')], outfile: join(out, 'app.js'), format: 'esm' });
await build({ ...common, entryPoints: [join(root, 'src/web/sw.ts')], outfile: join(out, 'sw.js'), format: 'iife' });
for (const name of ['index.html', 'app.css']) await copyFile(join(root, 'src/web', name), join(out, name));
