import type { ObjectStore } from '../store/types.js';
import { Limiter } from '../util/limiter.js';

/** Deletes keys, several at a time, counting progress (gc and upgrade). */
export async function deleteKeys(store: ObjectStore, keys: string[], progress?: (done: number, total: number) => void, concurrency = 16): Promise<void> {
  const limiter = new Limiter(concurrency);
  let done = 0;
  await Promise.all(keys.map((key) => limiter.run(async () => {
    await store.delete(key);
    progress?.(++done, keys.length);
  })));
}
