import { randomFillSync } from 'node:crypto';

/** Packs close before they would pass this size. */
export const PACK_SIZE = 4 * 1024 * 1024;
const MIN_PACK_BUCKET = 16 * 1024;

/** A pack's stored size: a power of two, so the store learns a bucket and not how much is in it. */
export function packBucket(used: number): number {
  let bucket = MIN_PACK_BUCKET;
  while (bucket < used) bucket *= 2;
  return Math.max(bucket, used);
}

/** Sealed segments back to back, then random bytes up to the bucket (zeros would show where the data ends). */
export function assemblePack(parts: Uint8Array[], used: number): Buffer {
  const out = Buffer.allocUnsafe(packBucket(used));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  randomFillSync(out, at);
  return out;
}
