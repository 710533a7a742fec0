import { errorMessage } from '../errors.js';
import { dataCodec } from '../drive.js';
import { DATA_PREFIX, objectIdOfDataKey, PACK_PREFIX, packIdOfKey } from '../format/names.js';
import type { Changes } from '../meta/formats.js';
import type { InodeRecord } from '../meta/inode.js';
import type { PageTree } from '../meta/pagetree.js';
import { refsOf } from '../meta/refs.js';
import { Limiter } from '../util/limiter.js';
import { commitChanges, editableMap, readHistory, type History } from './history.js';
import type { MaintenanceSession } from './maintenance.js';
import { checkPagedTree } from './paged-check.js';
import { planRepairs } from './paged-repair.js';

export interface FileProblem {
  path: string;
  ino: number;
  problems: string[];
}

export interface FsckReport {
  /** Problems with the metadata objects themselves. */
  metadata: string[];
  /** Problems with the shape of the tree. */
  tree: string[];
  /** Files with missing or damaged blocks. */
  files: FileProblem[];
  /** Data objects nothing refers to ("veilfs gc" removes them). */
  orphans: { count: number; bytes: number };
  checked: { files: number; blocks: number; bytes: number };
  /** What --repair did. */
  repaired: string[];
}

export interface FsckOptions {
  repair: boolean;
  blockSize: number;
  concurrency?: number;
  progress?: (message: string) => void;
  /** Blocks checked so far of how many, as the check goes. */
  blocksDone?: (done: number, total: number) => void;
  /** Format 3: metadata keys read so far. */
  keysScanned?: (keys: number) => void;
}

/**
 * Checks every metadata object, the tree and every block of every file
 * (fetched and authenticated). With repair, makes the vault consistent
 * again: unreadable metadata after the last good state is dropped (and
 * reported), dangling entries removed, link counts fixed, and files with
 * damaged blocks moved to /lost+found with those blocks turned into holes.
 */
export async function fsck(session: MaintenanceSession, opts: FsckOptions): Promise<FsckReport> {
  const report: FsckReport = { metadata: [], tree: [], files: [], orphans: { count: 0, bytes: 0 }, checked: { files: 0, blocks: 0, bytes: 0 }, repaired: [] };
  // Format 3 is read from its pages as the check goes (older formats hold the whole tree in one object).
  const history = await readHistory(session.log, { whole: false });
  for (const d of history.damaged) report.metadata.push(`${d.key} is unreadable: ${d.reason}`);
  if (history.checkpointSeq < 0) {
    report.metadata.push('no readable checkpoint: the tree cannot be recovered from this store');
    return report;
  }
  if (history.stranded.length) {
    report.metadata.push(`metadata changes #${history.stranded[0]}..#${history.stranded[history.stranded.length - 1]} cannot be applied (a batch before them is missing or damaged)`);
  }
  const seen = await session.localState.highestSeq();
  if (history.seq < seen) report.metadata.push(`the store's metadata (#${history.seq}) is older than what this machine has seen (#${seen}): rolled back or lost`);

  const packed = session.header.version >= 2;
  const map = await editableMap(history);
  const blocks = new BlockChecker(session, report, opts);
  const facts = await checkPagedTree(map, report, { file: (r) => blocks.add(r), scanned: opts.keysScanned });
  await facts.resolvePaths(await blocks.settled());
  const damaged = await blocks.finish(facts.pathOf);
  await countOrphans(session, facts.referenced, report, packed);
  if (opts.repair) {
    const changes = await planRepairs({ map, facts, damaged, nextIno: history.nextIno, inodeCount: history.inodeCount, packed, report });
    await commitRepairs(session, history, map, changes, report, seen);
  }
  return report;
}

/** Data objects in the store that no record refers to. */
async function countOrphans(session: MaintenanceSession, referenced: Set<string>, report: FsckReport, packed: boolean): Promise<void> {
  for (const info of await session.store.list(packed ? PACK_PREFIX : DATA_PREFIX)) {
    const id = packed ? packIdOfKey(info.key) : objectIdOfDataKey(info.key);
    if (id && !referenced.has(id)) {
      report.orphans.count++;
      report.orphans.bytes += info.size;
    }
  }
}

/**
 * Fetches and authenticates every block of the files given to it, a bounded
 * number at a time; what is damaged is noted per file.
 */
export class BlockChecker {
  private readonly limiter: Limiter;
  private readonly codec;
  private readonly pending = new Set<Promise<void>>();
  readonly damaged = new Map<number, Set<number>>();
  readonly problems = new Map<number, string[]>();
  private queued = 0;
  private done = 0;

  constructor(session: MaintenanceSession, private readonly report: FsckReport, private readonly opts: FsckOptions) {
    this.limiter = new Limiter(opts.concurrency ?? 16);
    // Whole packs are read once and kept while their segments are checked.
    this.codec = dataCodec(session.store, session.header, { cacheSize: 512 * 2 ** 20, log: () => {} });
  }

  private note(ino: number, index: number, problem: string): void {
    this.damaged.set(ino, (this.damaged.get(ino) ?? new Set()).add(index));
    this.problems.set(ino, [...(this.problems.get(ino) ?? []), problem]);
  }

  /** Queues a file's blocks; waits while many are in flight, so memory stays bounded however many files come. */
  async add(r: InodeRecord): Promise<void> {
    this.report.checked.files++;
    const file = { ino: r.ino, fileId: r.fileId!, key: Buffer.from(r.key ?? '', 'base64'), size: r.size };
    for (const [index, objectId] of refsOf(r)) {
      if (index * this.opts.blockSize >= r.size) {
        this.note(r.ino, index, `block ${index} lies past the end of the file`);
        continue;
      }
      this.queued++;
      const job: Promise<void> = this.limiter.run(async () => {
        try {
          // Fetched again when a copy fails: a bit flipped in transit must not send a good file to lost+found.
          const plain = await this.codec.load(file, index, objectId, true);
          this.report.checked.blocks++;
          this.report.checked.bytes += plain.length;
        } catch (err) {
          this.note(r.ino, index, `block ${index} (object ${objectId}): ${errorMessage(err)}`);
        }
        this.opts.blocksDone?.(++this.done, this.queued);
      }).finally(() => this.pending.delete(job));
      this.pending.add(job);
      if (this.pending.size >= 256) await Promise.race(this.pending);
    }
  }

  /** Waits for every queued block; the files with damage. */
  async settled(): Promise<number[]> {
    await Promise.all(this.pending);
    return [...this.problems.keys()];
  }

  async finish(pathOf: (ino: number) => string | undefined): Promise<Map<number, Set<number>>> {
    await this.settled();
    for (const [ino, list] of this.problems) this.report.files.push({ ino, path: pathOf(ino) ?? `(unreachable inode ${ino})`, problems: list.sort() });
    this.report.files.sort((a, b) => (a.path < b.path ? -1 : 1));
    return this.damaged;
  }
}

async function commitRepairs(session: MaintenanceSession, history: History, map: PageTree, changes: Changes | undefined, report: FsckReport, seen: number): Promise<void> {
  const log = session.log;
  // What cannot be applied goes, so the next number is free for the repair.
  const unusable = new Set([...history.damaged.map((d) => d.key), ...history.stranded.map((s) => log.logKey(s))]);
  unusable.delete(log.checkpointKey(history.checkpointSeq));
  for (const key of unusable) {
    await session.store.delete(key);
    report.repaired.push(`deleted the unusable metadata object ${key}`);
  }
  log.resume(history.seq, history.checkpointSeq);
  if (changes) await commitChanges(log, history, map, changes);
  if (history.seq < seen) report.repaired.push(`accepted the store's metadata #${history.seq} as current on this machine`);
  await session.localState.recordSeq(log.seq);
}

/** The report as text, one finding a line. */
export function formatReport(r: FsckReport): string[] {
  const lines = [
    ...r.metadata.map((m) => `metadata: ${m}`),
    ...r.tree.map((m) => `tree: ${m}`),
    ...r.files.flatMap((f) => f.problems.map((p) => `damaged: ${f.path}: ${p}`)),
  ];
  lines.push(`checked ${r.checked.files} files, ${r.checked.blocks} blocks (${Math.ceil(r.checked.bytes / 2 ** 20)} MiB)`);
  if (r.orphans.count) lines.push(`${r.orphans.count} unreferenced objects (${Math.ceil(r.orphans.bytes / 2 ** 20)} MiB): "veilfs gc" removes them`);
  lines.push(...r.repaired.map((m) => `repaired: ${m}`));
  return lines;
}

export function isClean(r: FsckReport): boolean {
  return r.metadata.length === 0 && r.tree.length === 0 && r.files.length === 0;
}
