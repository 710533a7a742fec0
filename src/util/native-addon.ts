import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Loads one of the addons `npm ci` builds in native/ (bin/build-native.cjs).
 * The package's native/ sits above dist/ (or dist-bench/src/ for
 * benchmarks, or src/ for tests); throws with the reason.
 */
export function loadAddon<T>(name: string): T {
  const file = `native/build/Release/${name}.node`;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 4; up++, dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'native', 'binding.gyp'))) return createRequire(import.meta.url)(path.join(dir, file)) as T;
  }
  throw new Error(`Cannot find module ${file}`);
}
