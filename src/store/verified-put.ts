import { ConflictError, StoreError, type ObjectStore, type PutOptions } from './types.js';

async function holds(store: ObjectStore, key: string, data: Uint8Array): Promise<boolean> {
  try {
    return Buffer.compare(await store.get(key), data) === 0;
  } catch {
    return false;
  }
}

/**
 * A put that reads the object back: for the few writes that bypass the
 * journal (creating a vault, changing the passphrase), where a store that
 * acknowledges a write and then does not have it would otherwise go unseen.
 */
export async function putVerified(store: ObjectStore, key: string, data: Uint8Array, options: PutOptions = {}, attempts = 3): Promise<void> {
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      await store.put(key, data, options);
    } catch (err) {
      // A create that finds its own bytes (an earlier attempt did land) succeeded.
      if (!(err instanceof ConflictError) || !(await holds(store, key, data))) throw err;
    }
    if (await holds(store, key, data)) return;
  }
  throw new StoreError(`the store acknowledged ${key} ${attempts} times but does not have it`, key);
}
