import { errorMessage } from '../errors.js';
import { inMemoryMap, PagedFormat, pageIo, WholeTreeFormat, type Changes } from '../meta/formats.js';
import type { InodeRecord } from '../meta/inode.js';
import { INODE_PREFIX, prefixEnd, recordsOfKv } from '../meta/kv.js';
import type { Batch, MetaLog } from '../meta/metalog.js';
import { PageTree, type PageContent } from '../meta/pagetree.js';
import { objectsOf } from '../meta/refs.js';

/** What the metadata in the store says, read object by object, damage included. */
export interface History {
  /** Newest readable checkpoint and the unbroken run of batches after it. */
  seq: number;
  nextIno: number;
  /** Inodes in the tree (format 3 keeps the count; older formats count the records). */
  inodeCount: number;
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
  /**
   * Format 3 read without `inodes` (readHistory's `whole: false`): the
   * current map as pages, loaded as they are read within a memory budget,
   * with the batches after the base checkpoint applied on top.
   */
  map?: PageTree;
}

/** Memory for the pages of a map read for maintenance: it reads in key order, a few pages at a time. */
const MAINTENANCE_PAGE_BUDGET = 8 * 2 ** 20;

/** Adds the data objects the records refer to. */
export function addRefs(into: Set<string>, records: Iterable<InodeRecord>): Set<string> {
  for (const r of records) for (const id of objectsOf(r)) into.add(id);
  return into;
}

/**
 * The metadata in the store. `whole: false` (format 3) leaves the tree in
 * its pages (History.map) instead of in memory: what a million-file vault
 * needs for a check that runs in bounded memory.
 */
export async function readHistory(log: MetaLog, opts: { whole?: boolean } = {}): Promise<History> {
  if (log.version >= 3) return readPagedHistory(log, opts.whole ?? true);
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
  return { seq, nextIno, inodeCount: inodes.size, inodes, checkpointSeq: base?.seq ?? -1, damaged, stranded, everReferenced, checkpoints, logs, pages: new Set() };
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
  inodeCount: number;
  root: string;
  height: number;
}

interface PagedBatch {
  nextIno: number;
  inodeCount: number;
  set: [string, unknown][];
  del: string[];
}

/**
 * Format 3: every page of every checkpoint (pages shared between
 * checkpoints are read once), the newest readable one as the base, and the
 * batches after it. The whole tree ends up in memory.
 */
async function readPagedHistory(log: MetaLog, whole: boolean): Promise<History> {
  const { checkpoints, logs } = await log.listSeqs();
  const io = pageIo(log);
  const damaged: History['damaged'] = [];
  const everReferenced = new Set<string>();
  const pages = new Set<string>();
  let base: { seq: number; nextIno: number; inodeCount: number; pairs?: Map<string, unknown>; root: string; height: number } | undefined;
  for (const seq of [...checkpoints].reverse()) {
    try {
      const cp = await log.decode<PagedCheckpoint>('checkpoint', seq, log.checkpointKey(seq));
      const pairs = base || !whole ? undefined : new Map<string, unknown>();
      const reached: string[] = [];
      // Level by level, 16 pages at a time: a recursive walk queues a pending read for every page at once (at 1,000,000 files it peaked 35-60 MB higher).
      for (let level = [cp.root]; level.length > 0;) {
        const below: string[] = [];
        await inParallel(level, 16, async (id) => {
          // Shared with a checkpoint read already: its references are counted.
          if (base && pages.has(id)) return;
          reached.push(id);
          const content: PageContent = await io.read(id);
          if ('node' in content) {
            for (const [, child] of content.node) below.push(child);
            return;
          }
          for (const [key, value] of content.leaf) {
            pairs?.set(key, value);
            if (key.startsWith(INODE_PREFIX)) addRefs(everReferenced, [value as InodeRecord]);
          }
        });
        level = below;
      }
      for (const id of reached) pages.add(id);
      base ??= { seq, nextIno: cp.nextIno, inodeCount: cp.inodeCount, pairs, root: cp.root, height: cp.height };
    } catch (err) {
      damaged.push({ key: log.checkpointKey(seq), reason: errorMessage(err) });
    }
  }
  const pairs = base?.pairs ?? new Map<string, unknown>();
  const applied: PagedBatch[] = [];
  let nextIno = base?.nextIno ?? 2;
  let inodeCount = base?.inodeCount ?? 0;
  const read = (s: number) => log.decode<PagedBatch & { seq: number }>('log', s, log.logKey(s));
  const { seq, stranded } = await applyBatches(log, logs, base?.seq, damaged, read, (batch) => {
    for (const [key, value] of batch.set) if (key.startsWith(INODE_PREFIX)) addRefs(everReferenced, [value as InodeRecord]);
  }, (batch) => {
    if (whole) {
      for (const [key, value] of batch.set) pairs.set(key, value);
      for (const key of batch.del) pairs.delete(key);
    } else applied.push(batch);
    nextIno = batch.nextIno;
    inodeCount = batch.inodeCount;
  });
  const history: History = { seq, nextIno, inodeCount, inodes: new Map(), checkpointSeq: base?.seq ?? -1, damaged, stranded, everReferenced, checkpoints, logs, pages };
  if (!whole) {
    if (base) {
      const map = PageTree.open(io, base.root, base.height, MAINTENANCE_PAGE_BUDGET);
      // The log after a checkpoint is small (a checkpoint comes once it holds half a mount's page budget).
      for (const batch of applied) {
        for (const [key, value] of batch.set) await map.set(key, value);
        for (const key of batch.del) await map.delete(key);
      }
      history.map = map;
    }
    return history;
  }
  // Batches may add keys out of order: sorted once, at the end.
  history.inodes = recordsOfKv([...pairs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return history;
}

/** Every inode record of a map, in inode order, read a page at a time. */
export async function* mapRecords(map: PageTree): AsyncGenerator<InodeRecord> {
  for await (const [, value] of map.scan(INODE_PREFIX, prefixEnd(INODE_PREFIX))) yield value as InodeRecord;
}

/** Runs fn on every item, `parallel` at a time, taking the items in order. */
async function inParallel<T>(items: T[], parallel: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, worker));
}

/** The tree as a map to edit: format 3's own pages, read as needed; older formats' records (in memory anyway) laid out as one. */
export async function editableMap(history: History): Promise<PageTree> {
  return history.map ?? (await inMemoryMap(history.inodes.values()));
}

/**
 * Maintenance commits what it changed as a mount does: one batch, then a
 * checkpoint, which in format 3 writes only the pages the changes touched.
 */
export async function commitChanges(log: MetaLog, history: History, map: PageTree, changes: Changes): Promise<void> {
  log.resume(history.seq, history.checkpointSeq);
  const format = log.version >= 3 ? new PagedFormat(log, MAINTENANCE_PAGE_BUDGET) : new WholeTreeFormat(log);
  await format.commit(changes, map);
  await format.checkpoint(map, changes.nextIno, changes.inodeCount);
}
