import { UserError } from '../errors.js';
import { checkpointKey, DATA_PREFIX, logKey, objectIdOfDataKey } from '../format/names.js';
import { Limiter } from '../util/limiter.js';
import { readHistory } from './history.js';
import type { MaintenanceSession } from './maintenance.js';

export interface GcOptions {
  /** Unreferenced objects younger than this stay: a mount elsewhere may be about to commit a reference. */
  minAgeMs: number;
  dryRun?: boolean;
  concurrency?: number;
  /** Objects deleted so far of how many. */
  deleted?: (done: number, total: number) => void;
}

export interface GcReport {
  deleted: { count: number; bytes: number };
  /** Unreferenced, but too young to delete. */
  kept: { count: number; bytes: number };
  /** Metadata objects superseded by the newest checkpoint. */
  staleMetadata: number;
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
  const history = await readHistory(session.log);
  if (history.damaged.length || history.stranded.length || history.checkpointSeq < 0) {
    throw new UserError('some metadata is unreadable, so gc cannot tell what is referenced; run "veilfs fsck" first');
  }
  // The current tree is built from those same checkpoints and batches, so it is covered.
  const referenced = history.everReferenced;
  const cutoff = Date.now() - opts.minAgeMs;
  const report: GcReport = { deleted: { count: 0, bytes: 0 }, kept: { count: 0, bytes: 0 }, staleMetadata: 0 };
  const doomed: string[] = [];
  for (const info of await session.store.list(DATA_PREFIX)) {
    const id = objectIdOfDataKey(info.key);
    if (!id || referenced.has(id)) continue;
    const bucket = info.mtime <= cutoff ? report.deleted : report.kept;
    bucket.count++;
    bucket.bytes += info.size;
    if (info.mtime <= cutoff) doomed.push(info.key);
  }
  // Log batches and checkpoints the newest checkpoint supersedes (left by a crash mid-checkpoint).
  const newest = history.checkpointSeq;
  doomed.push(...history.logs.filter((s) => s <= newest).map((s) => session.log.logKey(s)), ...history.checkpoints.filter((s) => s < newest).map((s) => session.log.checkpointKey(s)));
  report.staleMetadata = doomed.length - report.deleted.count;
  if (!opts.dryRun) {
    const limiter = new Limiter(opts.concurrency ?? 16);
    let done = 0;
    await Promise.all(doomed.map((key) => limiter.run(async () => {
      await session.store.delete(key);
      opts.deleted?.(++done, doomed.length);
    })));
  }
  return report;
}
