import { randomFillSync } from 'node:crypto';

// One getrandom call serves many small draws (nonces, file ids and keys):
// a call per draw showed up in profiles of small-file creates.
const pool = Buffer.allocUnsafe(8192);
let used = pool.length;

/** Fills into with fresh random bytes (at most the pool's size at once). */
export function fillRandom(into: Uint8Array): void {
  if (into.length > pool.length) {
    randomFillSync(into);
    return;
  }
  if (used + into.length > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  into.set(pool.subarray(used, used + into.length));
  // Never hand out the same bytes twice.
  pool.fill(0, used, used + into.length);
  used += into.length;
}

/** n fresh random bytes. */
export function randomBuffer(n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  fillRandom(out);
  return out;
}
