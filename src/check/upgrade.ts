import { subkey } from '../crypto/keys.js';
import { UserError } from '../errors.js';
import { BlockObjects } from '../data/blocks.js';
import { PackedSegments } from '../data/packed.js';
import { CHECKPOINT_PREFIX, CHECKPOINT_PREFIX_V2, CHECKPOINT_PREFIX_V3, DATA_PREFIX, LOG_PREFIX, LOG_PREFIX_V2, LOG_PREFIX_V3, PACK_PREFIX, PAGE_PREFIX } from '../format/names.js';
import { SEGMENT_SIZE } from '../format/segment.js';
import { FORMAT_VERSION, rewriteHeaderVersion, type VaultHeader } from '../format/vault.js';
import { writePagedCheckpoint } from '../meta/formats.js';
import type { InodeRecord } from '../meta/inode.js';
import { MetaLog } from '../meta/metalog.js';
import { refsOf, setRefs } from '../meta/refs.js';
import { Limiter } from '../util/limiter.js';
import { deleteKeys } from './delete-keys.js';
import { readHistory } from './history.js';
import type { MaintenanceSession } from './maintenance.js';

export interface UpgradeOptions {
  /** Plaintext bytes converted so far, of how many. */
  progress?: (done: number, total: number) => void;
  /** Old objects deleted so far, of how many. */
  cleaned?: (done: number, total: number) => void;
}

export interface UpgradeReport {
  from: number;
  to: number;
  files: number;
  bytes: number;
  /** Objects of the old format deleted after the switch. */
  deleted: number;
}

async function deleteAll(session: MaintenanceSession, prefixes: string[], progress?: (done: number, total: number) => void): Promise<number> {
  const keys: string[] = [];
  for (const prefix of prefixes) for (const info of await session.store.list(prefix)) keys.push(info.key);
  await deleteKeys(session.store, keys, progress);
  return keys.length;
}

/** Objects of the formats before the current one. */
const OLD_METADATA = [CHECKPOINT_PREFIX, LOG_PREFIX, DATA_PREFIX, CHECKPOINT_PREFIX_V2, LOG_PREFIX_V2];

/**
 * Converts a vault to format 3 in place (FORMAT.md, "Upgrading"): format 1
 * data is cut into packed segments, and the metadata of either is written
 * as pages. The header put is the switch: before it the vault is intact in
 * its old format, after it an intact format 3; running again after a crash
 * finishes the job.
 */
export async function upgrade(session: MaintenanceSession, passphrase: string, opts: UpgradeOptions = {}): Promise<UpgradeReport> {
  const header: VaultHeader = session.header;
  if (header.version >= FORMAT_VERSION) {
    // Already switched: only the cleanup of older objects may be left.
    const deleted = await deleteAll(session, OLD_METADATA, opts.cleaned);
    return { from: header.version, to: header.version, files: 0, bytes: 0, deleted };
  }
  const history = await readHistory(session.log);
  if (history.damaged.length || history.stranded.length || history.checkpointSeq < 0) {
    throw new UserError('some metadata is unreadable; run "veilfs fsck" (and --repair) before upgrading');
  }
  // Left by an upgrade that stopped before the switch: nothing refers to them.
  await deleteAll(session, [CHECKPOINT_PREFIX_V3, LOG_PREFIX_V3, PAGE_PREFIX, ...(header.version < 2 ? [PACK_PREFIX] : [])]);
  const converted = header.version < 2 ? await packBlocks(session, history.inodes.values(), opts) : { files: 0, bytes: 0 };
  const next: VaultHeader = { ...header, version: FORMAT_VERSION, blockSize: SEGMENT_SIZE };
  const log = new MetaLog(session.store, subkey(session.masterKey, 'metadata'), next, session.localState);
  await writePagedCheckpoint(log, history.inodes.values(), history.nextIno, history.seq);
  // Everything the new header makes the vault depend on must be in the store before it.
  if (!(await session.drain())) throw new UserError('the store stopped taking uploads; nothing was switched: run "veilfs upgrade" again');
  await rewriteHeaderVersion(session.remote, header, session.masterKey, passphrase, FORMAT_VERSION);
  const deleted = await deleteAll(session, OLD_METADATA, opts.cleaned);
  return { from: header.version, to: FORMAT_VERSION, ...converted, deleted };
}

/** Format 1: every block of the tree is read, cut into segments and packed; the records point at them. */
async function packBlocks(session: MaintenanceSession, records: Iterable<InodeRecord>, opts: UpgradeOptions): Promise<{ files: number; bytes: number }> {
  const header = session.header;
  const oldData = new BlockObjects(session.store, header.blockSize, () => {});
  const newData = new PackedSegments(session.store, { packCacheBytes: 0, log: () => {} });
  const files = [...records].filter((r) => r.fileId && r.key);
  const total = files.reduce((n, r) => n + refsOf(r).length * header.blockSize, 0);
  let done = 0;
  const perBlock = header.blockSize / SEGMENT_SIZE;
  const fetches = new Limiter(8);
  for (const record of files) {
    const file = { ino: record.ino, fileId: record.fileId!, key: Buffer.from(record.key!, 'base64'), size: record.size };
    const blocks = refsOf(record).sort((a, b) => a[0] - b[0]);
    // Fetch ahead in parallel, store in order: segments of a file stay together in its packs.
    const plains = blocks.map(([index, id]) => fetches.run(() => oldData.load(file, index, id)));
    const segments: [number, string][] = [];
    for (let b = 0; b < blocks.length; b++) {
      const plain = await plains[b];
      const first = blocks[b][0] * perBlock;
      for (let s = 0; s < perBlock; s++) {
        const index = first + s;
        const start = index * SEGMENT_SIZE;
        if (start >= record.size) break;
        const bytes = plain.subarray(s * SEGMENT_SIZE, (s + 1) * SEGMENT_SIZE);
        // All zeros (or past the stored padding) reads the same as a hole.
        if (bytes.length === 0 || bytes.every((x) => x === 0)) continue;
        segments.push([index, await newData.save(file, index, bytes, Math.min(SEGMENT_SIZE, record.size - start, bytes.length))]);
      }
      done += header.blockSize;
      opts.progress?.(done, total);
    }
    setRefs(record, segments, true);
  }
  await newData.seal();
  return { files: files.length, bytes: done };
}
