import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { openStore } from '../../src/store/open.js';
import type { ObjectStore } from '../../src/store/types.js';

/** The stores every integration test runs against. */
export type StoreKind = 'local' | 's3';

/** S3 tests run against the server test/run starts; VEILFS_TEST_S3=0 skips them on purpose. */
export function s3Skip(): string | false {
  if (process.env.VEILFS_TEST_S3 === '0') return 'VEILFS_TEST_S3=0';
  if (!process.env.S3_ENDPOINT || !process.env.S3_BUCKET) {
    throw new Error('the S3 tests need a server: run them through "npm test" (test/run starts one) or set S3_ENDPOINT/S3_BUCKET and AWS_* (VEILFS_TEST_S3=0 skips them)');
  }
  return false;
}

/** A fresh, empty place for a vault: a directory under dir, or a new prefix in the test bucket. */
export function newStoreUrl(kind: StoreKind, dir: string): string {
  if (kind === 'local') return path.join(dir, 'store');
  return `s3://${process.env.S3_BUCKET}/test-${randomBytes(6).toString('hex')}`;
}

export function openTestStore(url: string): ObjectStore {
  return openStore(url, { timeoutMs: 30_000 });
}

/** Every object of a store, bytes included. */
export async function allObjects(url: string): Promise<{ key: string; data: Buffer }[]> {
  const store = openTestStore(url);
  try {
    const out = [];
    for (const { key } of await store.list('')) out.push({ key, data: await store.get(key) });
    return out;
  } finally {
    await store.close?.();
  }
}

/** Empties an S3 prefix after a test, so the in-memory test server does not fill up. */
export async function removeAll(url: string): Promise<void> {
  if (!url.startsWith('s3://')) return;
  const store = openTestStore(url);
  try {
    const keys = (await store.list('')).map((i) => i.key);
    for (let i = 0; i < keys.length; i += 32) await Promise.all(keys.slice(i, i + 32).map((k) => store.delete(k)));
  } finally {
    await store.close?.();
  }
}
