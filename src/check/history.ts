import { errorMessage } from '../errors.js';
import type { InodeRecord } from '../meta/inode.js';
import type { MetaLog } from '../meta/metalog.js';
import { objectsOf } from '../meta/refs.js';

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
}

/** Adds the data objects the records refer to. */
export function addRefs(into: Set<string>, records: Iterable<InodeRecord>): Set<string> {
  for (const r of records) for (const id of objectsOf(r)) into.add(id);
  return into;
}

export async function readHistory(log: MetaLog): Promise<History> {
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
  let seq = base?.seq ?? -1;
  let nextIno = base?.nextIno ?? 2;
  const stranded: number[] = [];
  for (const s of logs) {
    let batch;
    try {
      batch = await log.readBatch(s);
      addRefs(everReferenced, batch.upserts);
    } catch (err) {
      damaged.push({ key: log.logKey(s), reason: errorMessage(err) });
    }
    if (s <= seq || !base) continue;
    if (s !== seq + 1 || !batch || stranded.length) {
      stranded.push(s);
      continue;
    }
    for (const r of batch.upserts) inodes.set(r.ino, r);
    for (const ino of batch.removes) inodes.delete(ino);
    nextIno = batch.nextIno;
    seq = s;
  }
  return { seq, nextIno, inodes, checkpointSeq: base?.seq ?? -1, damaged, stranded, everReferenced, checkpoints, logs };
}
