import { randomBytes } from 'node:crypto';

/**
 * Object keys. Data objects have random names, so the store learns nothing
 * from them; metadata keys carry only a sequence number.
 */
export const HEADER_KEY = 'veilfs.json';
export const LOG_PREFIX = 'm/';
export const CHECKPOINT_PREFIX = 'c/';
export const DATA_PREFIX = 'd/';

const SEQ_DIGITS = 16;

export function logKey(seq: number): string {
  return LOG_PREFIX + String(seq).padStart(SEQ_DIGITS, '0');
}

export function checkpointKey(seq: number): string {
  return CHECKPOINT_PREFIX + String(seq).padStart(SEQ_DIGITS, '0');
}

/** Sequence number of a log or checkpoint key, or undefined for other keys. */
export function seqOf(key: string, prefix: string): number | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const rest = key.slice(prefix.length);
  return /^\d{16}$/.test(rest) ? Number(rest) : undefined;
}

/** A fresh 128-bit object id, hex. Never reused, so it also names a version. */
export function newObjectId(): string {
  return randomBytes(16).toString('hex');
}

/** Two hex characters of fan-out keep directory-backed stores fast. */
export function dataKey(objectId: string): string {
  return `${DATA_PREFIX}${objectId.slice(0, 2)}/${objectId}`;
}

export function objectIdOfDataKey(key: string): string | undefined {
  const m = /^d\/[0-9a-f]{2}\/([0-9a-f]{32})$/.exec(key);
  return m ? m[1] : undefined;
}
