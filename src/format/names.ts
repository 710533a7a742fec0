import { randomBytes } from 'node:crypto';

/**
 * Object keys. Data objects have random names, so the store learns nothing
 * from them; metadata keys carry only a sequence number.
 */
export const HEADER_KEY = 'veilfs.json';
export const LOG_PREFIX = 'm/';
export const CHECKPOINT_PREFIX = 'c/';
export const DATA_PREFIX = 'd/';
/** Format 2: packs of sealed segments, and metadata under names a format-1 reader never looks at. */
export const PACK_PREFIX = 'p/';
export const LOG_PREFIX_V2 = 'm2/';
export const CHECKPOINT_PREFIX_V2 = 'c2/';
/** Format 3: paged metadata. Checkpoints name a root page; pages have random names. */
export const LOG_PREFIX_V3 = 'm3/';
export const CHECKPOINT_PREFIX_V3 = 'c3/';
export const PAGE_PREFIX = 't/';

/** Where a format version keeps its metadata. */
export interface MetaNames {
  log: string;
  checkpoint: string;
}

export function metaNames(version: number): MetaNames {
  if (version >= 3) return { log: LOG_PREFIX_V3, checkpoint: CHECKPOINT_PREFIX_V3 };
  return version >= 2 ? { log: LOG_PREFIX_V2, checkpoint: CHECKPOINT_PREFIX_V2 } : { log: LOG_PREFIX, checkpoint: CHECKPOINT_PREFIX };
}

const SEQ_DIGITS = 16;

export function logKey(seq: number, names: MetaNames = metaNames(1)): string {
  return names.log + String(seq).padStart(SEQ_DIGITS, '0');
}

export function checkpointKey(seq: number, names: MetaNames = metaNames(1)): string {
  return names.checkpoint + String(seq).padStart(SEQ_DIGITS, '0');
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

export function packKey(packId: string): string {
  return `${PACK_PREFIX}${packId.slice(0, 2)}/${packId}`;
}

export function packIdOfKey(key: string): string | undefined {
  const m = /^p\/[0-9a-f]{2}\/([0-9a-f]{32})$/.exec(key);
  return m ? m[1] : undefined;
}

export function pageKey(pageId: string): string {
  return `${PAGE_PREFIX}${pageId.slice(0, 2)}/${pageId}`;
}

export function pageIdOfKey(key: string): string | undefined {
  const m = /^t\/[0-9a-f]{2}\/([0-9a-f]{32})$/.exec(key);
  return m ? m[1] : undefined;
}
