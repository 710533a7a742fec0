import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.js';
import { EXIT } from '../exit-codes.js';

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

/**
 * An addon every command needs (the cipher, the key derivation): a missing
 * or broken build becomes one line saying what to do, not where it failed.
 */
export function requireAddon<T>(name: string, what: string): T {
  try {
    return loadAddon<T>(name);
  } catch (err) {
    const why = /Cannot find module/.test((err as Error).message) ? 'is not built' : `cannot be loaded (${(err as Error).message.split('\n')[0]})`;
    throw new UserError(`${what} ${why}: run "npm ci" (it needs build-essential, python3 and libsodium-dev)`, EXIT.UNAVAILABLE);
  }
}
