import { IntegrityError } from '../errors.js';
import { PackedSegments } from '../data/packed.js';
import { packIdOfKey, packKey, PACK_PREFIX } from '../format/names.js';
import { packBucket } from '../format/pack.js';
import { openSegment, parseRef } from '../format/segment.js';
import type { InodeRecord } from '../meta/inode.js';
import { refsOf, setRefs } from '../meta/refs.js';
import { commitChanges, editableMap, mapRecords, type History } from './history.js';
import type { Changes } from '../meta/formats.js';
import type { MaintenanceSession } from './maintenance.js';
import type { ObjectInfo } from '../store/types.js';

export interface RepackOptions {
  /** Packs whose live segments fill less than this share of them are rewritten. */
  below: number;
  /** Packs younger than this are left alone. */
  minAgeMs: number;
  dryRun?: boolean;
  progress?: (done: number, total: number) => void;
}

export interface RepackReport {
  packs: number;
  /** Bytes of the rewritten packs, and of the live segments copied out of them. */
  bytes: number;
  liveBytes: number;
}

interface Holder {
  record: InodeRecord;
  index: number;
  ref: string;
}

/** Bytes of live segments in each pack, from the records that refer to them. */
async function liveBytes(records: Iterable<InodeRecord> | AsyncIterable<InodeRecord>): Promise<Map<string, number>> {
  const live = new Map<string, number>();
  for await (const record of records) {
    for (const [, ref] of refsOf(record)) {
      const r = parseRef(ref);
      live.set(r.pack, (live.get(r.pack) ?? 0) + r.length);
    }
  }
  return live;
}

/** Packs old enough whose live segments fill less than `below` of them, and would fit a smaller one: what a repack rewrites. */
async function findSparsePacks(session: MaintenanceSession, records: Iterable<InodeRecord> | AsyncIterable<InodeRecord>, opts: Pick<RepackOptions, 'below' | 'minAgeMs'>): Promise<{ sparse: ObjectInfo[]; live: Map<string, number> }> {
  const live = await liveBytes(records);
  const cutoff = Date.now() - opts.minAgeMs;
  const sparse = (await session.store.list(PACK_PREFIX)).filter((info) => {
    const id = packIdOfKey(info.key);
    if (!id || !live.has(id) || info.mtime > cutoff) return false;
    // A pack whose live data would need a bucket as big as its own frees nothing: rewriting it would only repeat at every gc.
    return live.get(id)! < opts.below * info.size && packBucket(live.get(id)!) < info.size;
  });
  return { sparse, live };
}

/**
 * Rewrites sparse packs (see "Freeing space" in FORMAT.md): live segments
 * are copied, still sealed, into new packs, then one batch and a checkpoint
 * point the files at the copies. The old packs are left for gc's deletion
 * pass, which deletes them only once no readable metadata refers to them.
 * The tree is read twice in key order, a page at a time (format 3); only
 * the records of files with data in a sparse pack are held.
 */
export async function repack(session: MaintenanceSession, history: History, opts: RepackOptions): Promise<RepackReport> {
  const report: RepackReport = { packs: 0, bytes: 0, liveBytes: 0 };
  // Format 2's records are in memory already: laid out as a map only when there is something to rewrite.
  const { sparse, live } = await findSparsePacks(session, history.map ? mapRecords(history.map) : history.inodes.values(), opts);
  if (sparse.length === 0 || opts.dryRun) {
    for (const info of sparse) {
      report.packs++;
      report.bytes += info.size;
      report.liveBytes += live.get(packIdOfKey(info.key)!)!;
    }
    return report;
  }
  const map = await editableMap(history);
  const sparseIds = new Set(sparse.map((info) => packIdOfKey(info.key)!));
  const holders = new Map<string, Holder[]>();
  const records = new Map<number, InodeRecord>();
  for await (const stored of mapRecords(map)) {
    for (const [index, ref] of refsOf(stored)) {
      const r = parseRef(ref);
      if (!sparseIds.has(r.pack)) continue;
      // A copy: the one in the map is the page's, which a commit replaces rather than edits.
      let record = records.get(stored.ino);
      if (!record) records.set(stored.ino, (record = structuredClone(stored)));
      const list = holders.get(r.pack) ?? [];
      list.push({ record, index, ref });
      holders.set(r.pack, list);
    }
  }
  const writer = new PackedSegments(session.store, { packCacheBytes: 0, log: () => {} });
  const moved = new Map<InodeRecord, Map<number, string>>();
  for (const info of sparse) {
    const id = packIdOfKey(info.key)!;
    const pack = await session.store.get(packKey(id));
    for (const { record, index, ref } of holders.get(id)!) {
      const r = parseRef(ref);
      const sealed = pack.subarray(r.offset, r.offset + r.length);
      // A damaged segment is not copied: its pack stays, for fsck to report.
      try {
        openSegment(Buffer.from(record.key ?? '', 'base64'), record.fileId!, index, r.version, sealed);
      } catch (err) {
        if (err instanceof IntegrityError) throw new IntegrityError(`pack ${id} holds a damaged segment; run "veilfs fsck" before gc`);
        throw err;
      }
      const copy = await writer.copySealed(Buffer.from(sealed), r.version);
      moved.set(record, (moved.get(record) ?? new Map()).set(index, copy));
    }
    report.packs++;
    report.bytes += info.size;
    report.liveBytes += live.get(id)!;
    opts.progress?.(report.packs, sparse.length);
  }
  await writer.seal();
  const changes: Changes = { inodes: new Map(), keys: new Map(), nextIno: history.nextIno, inodeCount: history.inodeCount };
  for (const [record, copies] of moved) {
    setRefs(record, refsOf(record).map(([index, ref]) => [index, copies.get(index) ?? ref]), true);
    changes.inodes.set(record.ino, record);
  }
  // The journal uploads the new packs before this batch, and the batch before the checkpoint.
  await commitChanges(session.log, history, map, changes);
  await session.localState.recordSeq(session.log.seq);
  return report;
}
