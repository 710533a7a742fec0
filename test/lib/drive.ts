import * as path from 'node:path';
import { initDrive, openDrive, type Drive } from '../../src/drive.js';
import { LocalStore } from '../../src/store/local.js';
import type { ObjectStore } from '../../src/store/types.js';
import { tempDir } from './tmp.js';

export const PASSPHRASE = 'test passphrase';

export interface TestVault {
  store: ObjectStore;
  cacheDir: string;
  open(opts?: { cacheSize?: number; readOnly?: boolean }): Promise<Drive>;
}

/** A vault in a temporary local store, with cheap scrypt for speed. */
export async function testVault(t: Parameters<typeof tempDir>[0], opts: { blockSize?: number; store?: ObjectStore; version?: number } = {}): Promise<TestVault> {
  const dir = tempDir(t);
  const store = opts.store ?? new LocalStore(path.join(dir, 'store'));
  const cacheDir = path.join(dir, 'cache');
  await initDrive(store, PASSPHRASE, { blockSize: opts.blockSize ?? 64 * 1024, kdfLogN: 10, cacheDir, version: opts.version });
  const logs: string[] = [];
  return {
    store,
    cacheDir,
    open: (o = {}) => openDrive(store, { passphrase: PASSPHRASE, cacheDir, log: (m) => logs.push(m), syncIntervalMs: 60_000, ...o }),
  };
}
