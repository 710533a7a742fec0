import { errorMessage } from '../errors.js';
import { pageIo, writePagedCheckpoint } from '../meta/formats.js';
import type { InodeRecord } from '../meta/inode.js';
import { INODE_PREFIX, recordsOfKv } from '../meta/kv.js';
import type { Batch, MetaLog } from '../meta/metalog.js';
import type { PageContent } from '../meta/pagetree.js';
import { objectsOf } from '../meta/refs.js';
import { Limiter } from '../util/limiter.js';

/** What the metadata in the store says, read object by object, damage included. */
export interface History {
  /** Newest readable checkpoint and the unbroken run of batches after it. */
  seq: number;
  nextIno: number;
  inodes: Map<number, InodeRecord>;
  checkpointSeq: number;
  /** Metadata objects that are unreadable, and why. */
  damaged: { key: string; reason: string }[];
  /** Batches after a gap or a damaged batch: changes that cannot be applied. */
  stranded: number[];
  /** Every data object any readable checkpoint or batch refers to. */
  everReferenced: Set<string>;
  checkpoints: number[];
  logs: number[];
  /** Format 3: every metadata page a readable checkpoint reaches. */
  pages: Set<string>;
}

/** Adds the data objects the records refer to. */
export function addRefs(into: Set<string>, records: Iterable<InodeRecord>): Set<string> {
  for (const r of records) for (const id of objectsOf(r)) into.add(id);
  return into;
}

export async function readHistory(log: MetaLog): Promise<History> {
  if (log.version >= 3) return readPagedHistory(log);
  const { checkpoints, logs } = await log.listSeqs();
  const damaged: History['damaged'] = [];
  const everReferenced = new Set<string>();
  let base: { seq: number; nextIno: number; inodes: InodeRecord[] } | undefined;
  for (const seq of [...checkpoints].reverse()) {
    try {
      const cp = await log.readCheckpoint(seq);
      addRefs(everReferenced, cp.inodes);
      base ??= cp;
    } catch (err) {
      damaged.push({ key: log.checkpointKey(seq), reason: errorMessage(err) });
    }
  }
  const inodes = new Map((base?.inodes ?? []).map((r) => [r.ino, r]));
  let nextIno = base?.nextIno ?? 2;
  const { seq, stranded } = await applyBatches<Batch>(log, logs, base?.seq, damaged, (s) => log.readBatch(s), (batch) => addRefs(everReferenced, batch.upserts), (batch) => {
    for (const r of batch.upserts) inodes.set(r.ino, r);
    for (const ino of batch.removes) inodes.delete(ino);
    nextIno = batch.nextIno;
  });
  return { seq, nextIno, inodes, checkpointSeq: base?.seq ?? -1, damaged, stranded, everReferenced, checkpoints, logs, pages: new Set() };
}

/**
 * Reads every batch (to learn what it refers to, damaged ones reported) and
 * applies the unbroken run after the base checkpoint; the rest is stranded.
 */
async function applyBatches<B>(
  log: MetaLog, logs: number[], baseSeq: number | undefined, damaged: History['damaged'],
  read: (seq: number) => Promise<B>, refer: (batch: B) => void, apply: (batch: B) => void,
): Promise<{ seq: number; stranded: number[] }> {
  let seq = baseSeq ?? -1;
  const stranded: number[] = [];
  for (const s of logs) {
    let batch: B | undefined;
    try {
      batch = await read(s);
      refer(batch);
    } catch (err) {
      damaged.push({ key: log.logKey(s), reason: errorMessage(err) });
    }
    if (s <= seq || baseSeq === undefined) continue;
    if (s !== seq + 1 || !batch || stranded.length) {
      stranded.push(s);
      continue;
    }
    apply(batch);
    seq = s;
  }
  return { seq, stranded };
}

interface PagedCheckpoint {
  seq: number;
  nextIno: number;
  root: string;
}

interface PagedBatch {
  nextIno: number;
  set: [string, unknown][];
  del: string[];
}

/**
 * Format 3: every page of every checkpoint (pages shared between
 * checkpoints are read once), the newest readable one as the base, and the
 * batches after it. The whole tree ends up in memory.
 */
async function readPagedHistory(log: MetaLog): Promise<History> {
  const { checkpoints, logs } = await log.listSeqs();
  const io = pageIo(log);
  const reads = new Limiter(16);
  const damaged: History['damaged'] = [];
  const everReferenced = new Set<string>();
  const pages = new Set<string>();
  let base: { seq: number; nextIno: number; pairs: Map<string, unknown> } | undefined;
  for (const seq of [...checkpoints].reverse()) {
    try {
      const cp = await log.decode<PagedCheckpoint>('checkpoint', seq, log.checkpointKey(seq));
      const pairs = base ? undefined : new Map<string, unknown>();
      const reached: string[] = [];
      const walk = async (id: string): Promise<void> => {
        // Shared with a checkpoint read already: its references are counted.
        if (!pairs && pages.has(id)) return;
        reached.push(id);
        const content: PageContent = await reads.run(() => io.read(id));
        if ('node' in content) {
          await Promise.all(content.node.map(([, child]) => walk(child)));
          return;
        }
        for (const [key, value] of content.leaf) {
          pairs?.set(key, value);
          if (key.startsWith(INODE_PREFIX)) addRefs(everReferenced, [value as InodeRecord]);
        }
      };
      await walk(cp.root);
      for (const id of reached) pages.add(id);
      if (pairs) base = { seq, nextIno: cp.nextIno, pairs };
    } catch (err) {
      damaged.push({ key: log.checkpointKey(seq), reason: errorMessage(err) });
    }
  }
  const pairs = base?.pairs ?? new Map<string, unknown>();
  let nextIno = base?.nextIno ?? 2;
  const read = (s: number) => log.decode<PagedBatch & { seq: number }>('log', s, log.logKey(s));
  const { seq, stranded } = await applyBatches(log, logs, base?.seq, damaged, read, (batch) => {
    for (const [key, value] of batch.set) if (key.startsWith(INODE_PREFIX)) addRefs(everReferenced, [value as InodeRecord]);
  }, (batch) => {
    for (const [key, value] of batch.set) pairs.set(key, value);
    for (const key of batch.del) pairs.delete(key);
    nextIno = batch.nextIno;
  });
  // Batches may add keys out of order: sorted once, at the end.
  const inodes = recordsOfKv([...pairs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return { seq, nextIno, inodes, checkpointSeq: base?.seq ?? -1, damaged, stranded, everReferenced, checkpoints, logs, pages };
}

/** Maintenance commits the changed records; format 3 writes the whole tree as the next checkpoint instead. */
export async function commitTree(log: MetaLog, history: History, changed: InodeRecord[], nextIno: number): Promise<void> {
  log.resume(history.seq, history.checkpointSeq);
  if (log.version >= 3) {
    await writePagedCheckpoint(log, history.inodes.values(), nextIno, history.seq, 'next');
    return;
  }
  await log.append(changed, [], nextIno);
  await log.checkpoint([...history.inodes.values()], nextIno);
}
