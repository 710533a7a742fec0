import { UserError } from '../errors.js';
import { CHECKPOINT_PREFIX, CHECKPOINT_PREFIX_V2, DATA_PREFIX, LOG_PREFIX, LOG_PREFIX_V2, objectIdOfDataKey, PACK_PREFIX, packIdOfKey, PAGE_PREFIX, pageIdOfKey } from '../format/names.js';
import { repack, type RepackReport } from './repack.js';
import { deleteKeys } from './delete-keys.js';
import { packsHeldByShares } from '../share/records.js';
import { readHistory } from './history.js';
import type { MaintenanceSession } from './maintenance.js';

export interface GcOptions {
  /** Unreferenced objects younger than this stay: a mount elsewhere may be about to commit a reference. */
  minAgeMs: number;
  dryRun?: boolean;
  concurrency?: number;
  /** Format 2: rewrite packs whose live share is below this (0 turns repacking off). */
  repackBelow?: number;
  repacked?: (done: number, total: number) => void;
  /** Objects deleted so far of how many. */
  deleted?: (done: number, total: number) => void;
}

export interface GcReport {
  deleted: { count: number; bytes: number };
  /** Unreferenced, but too young to delete. */
  kept: { count: number; bytes: number };
  /** Metadata objects superseded by the newest checkpoint. */
  staleMetadata: number;
  repacked: RepackReport;
}

/**
 * Deletes data objects that nothing refers to. The rule (see FORMAT.md):
 * an object is deleted only if no readable checkpoint or log batch in the
 * store refers to it (not just the newest tree: a mount that loaded an
 * older state may still read it), and it is older than minAge (a mount
 * stores blocks before the commit that refers to them). gc refuses to run
 * while any metadata object is unreadable, since it could not know what
 * that object refers to.
 */
export async function gc(session: MaintenanceSession, opts: GcOptions): Promise<GcReport> {
  // Format 3 keeps the tree in its pages: what gc needs (what is referenced) comes from reading them, not holding them.
  let history = await readHistory(session.log, { whole: false });
  const readable = () => {
    if (history.damaged.length || history.stranded.length || history.checkpointSeq < 0) {
      throw new UserError('some metadata is unreadable, so gc cannot tell what is referenced; run "veilfs fsck" first');
    }
  };
  readable();
  const packed = session.header.version >= 2;
  let repacked: RepackReport = { packs: 0, bytes: 0, liveBytes: 0 };
  const repackOpts = { below: opts.repackBelow ?? 0.5, minAgeMs: opts.minAgeMs, dryRun: opts.dryRun, progress: opts.repacked };
  if (packed && repackOpts.below > 0) {
    repacked = await repack(session, history, repackOpts);
    // Once the new packs are in the store, nothing left in it refers to the old ones.
    if (repacked.packs && !opts.dryRun) {
      if (!(await session.drain())) throw new UserError('the store stopped taking uploads while gc repacked; the rest is journaled and uploaded by the next mount or gc');
      history = await readHistory(session.log, { whole: false });
      readable();
    }
  }
  // The current tree is built from those same checkpoints and batches, so it is covered.
  const referenced = history.everReferenced;
  // Packs a live share link exposes stay, though the vault may not need them any more.
  const shared = packed ? await packsHeldByShares(session.store) : new Set<string>();
  const cutoff = Date.now() - opts.minAgeMs;
  const report: GcReport = { deleted: { count: 0, bytes: 0 }, kept: { count: 0, bytes: 0 }, staleMetadata: 0, repacked };
  const doomed: string[] = [];
  for (const info of await session.store.list(packed ? PACK_PREFIX : DATA_PREFIX)) {
    const id = packed ? packIdOfKey(info.key) : objectIdOfDataKey(info.key);
    if (!id || referenced.has(id) || shared.has(id)) continue;
    const bucket = info.mtime <= cutoff ? report.deleted : report.kept;
    bucket.count++;
    bucket.bytes += info.size;
    if (info.mtime <= cutoff) doomed.push(info.key);
  }
  // Log batches and checkpoints the newest checkpoint supersedes (left by a crash mid-checkpoint).
  const newest = history.checkpointSeq;
  doomed.push(...history.logs.filter((s) => s <= newest).map((s) => session.log.logKey(s)), ...history.checkpoints.filter((s) => s < newest).map((s) => session.log.checkpointKey(s)));
  if (session.header.version >= 3) {
    // Pages no checkpoint reaches: replaced ones a crash left, or those of a tree rewritten by maintenance.
    for (const info of await session.store.list(PAGE_PREFIX)) {
      const id = pageIdOfKey(info.key);
      if (id && !history.pages.has(id) && info.mtime <= cutoff) doomed.push(info.key);
    }
  }
  let leftovers = 0;
  if (packed) {
    // Objects of older formats: left by an upgrade that stopped before cleaning up; nothing reads them.
    const older = session.header.version >= 3 ? [DATA_PREFIX, LOG_PREFIX, CHECKPOINT_PREFIX, LOG_PREFIX_V2, CHECKPOINT_PREFIX_V2] : [DATA_PREFIX, LOG_PREFIX, CHECKPOINT_PREFIX];
    for (const prefix of older) {
      for (const info of await session.store.list(prefix)) {
        doomed.push(info.key);
        leftovers++;
      }
    }
  }
  report.staleMetadata = doomed.length - report.deleted.count - leftovers;
  report.deleted.count += leftovers;
  if (!opts.dryRun) await deleteKeys(session.store, doomed, opts.deleted, opts.concurrency);
  return report;
}
