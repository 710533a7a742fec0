import { IntegrityError } from '../errors.js';
import { NotFoundError, type ObjectStore } from '../store/types.js';
import { parseRecord, SHARE_ID, shareState, type ShareRecord } from './manifest.js';

/** Share records: `s/<share id>/<seq:16 digits>`, the newest counts (FORMAT.md, "Shares"). */
export const SHARE_PREFIX = 's/';

export function recordKey(id: string, seq: number): string {
  return `${SHARE_PREFIX}${id}/${String(seq).padStart(16, '0')}`;
}

function parseKey(key: string): { id: string; seq: number } | undefined {
  const m = /^s\/([0-9a-f]{32})\/(\d{16})$/.exec(key);
  return m ? { id: m[1], seq: Number(m[2]) } : undefined;
}

/** Every share's record keys, oldest first. */
export async function listShareKeys(store: ObjectStore, id?: string): Promise<Map<string, string[]>> {
  if (id !== undefined && !SHARE_ID.test(id)) return new Map();
  const byId = new Map<string, string[]>();
  for (const info of await store.list(id ? `${SHARE_PREFIX}${id}/` : SHARE_PREFIX)) {
    const parsed = parseKey(info.key);
    if (!parsed) continue;
    const keys = byId.get(parsed.id) ?? [];
    keys.push(info.key);
    byId.set(parsed.id, keys);
  }
  return byId;
}

/** The newest record of one share, or undefined if there is none. */
export async function readNewestRecord(store: ObjectStore, id: string): Promise<ShareRecord | undefined> {
  const keys = (await listShareKeys(store, id)).get(id);
  if (!keys?.length) return undefined;
  return readRecord(store, keys[keys.length - 1], id);
}

export async function readRecord(store: ObjectStore, key: string, id: string): Promise<ShareRecord | undefined> {
  let bytes: Buffer;
  try {
    bytes = await store.get(key);
  } catch (err) {
    if (err instanceof NotFoundError) return undefined; // replaced meanwhile
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new IntegrityError(`share record ${key} is not JSON`);
  }
  const record = parseRecord(json, id);
  if (key !== recordKey(record.id, record.seq)) throw new IntegrityError(`share record ${key} names another number`);
  return record;
}

/** Stores the next record of a share (create-if-absent) and then deletes the ones before it. */
export async function writeRecord(store: ObjectStore, record: ShareRecord, older: string[]): Promise<void> {
  const key = recordKey(record.id, record.seq);
  await store.put(key, Buffer.from(JSON.stringify(record)), { ifAbsent: true });
  for (const old of older) if (old !== key) await store.delete(old);
}

/** A record number above every earlier one; a clock keeps two machines from picking the same. */
export function nextSeq(previous: number | undefined): number {
  return Math.max((previous ?? -1) + 1, Date.now());
}

/** The packs the newest record of every share that is neither revoked nor expired exposes: gc keeps them. */
export async function packsHeldByShares(store: ObjectStore): Promise<Set<string>> {
  const held = new Set<string>();
  for (const [id, keys] of await listShareKeys(store)) {
    const record = await readRecord(store, keys[keys.length - 1], id);
    if (!record || shareState(record) !== 'live') continue;
    for (const pack of Object.keys(record.ranges ?? {})) held.add(pack);
  }
  return held;
}
