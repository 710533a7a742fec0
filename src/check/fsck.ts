import { errorMessage } from '../errors.js';
import { dataCodec } from '../drive.js';
import { DATA_PREFIX, objectIdOfDataKey, PACK_PREFIX, packIdOfKey } from '../format/names.js';
import { refsOf, setRefs } from '../meta/refs.js';
import { ROOT_INO, S_IFDIR, S_IFMT, S_IFREG, type InodeRecord } from '../meta/inode.js';
import { Limiter } from '../util/limiter.js';
import { addRefs, commitTree, readHistory, type History } from './history.js';
import type { MaintenanceSession } from './maintenance.js';
import { checkPagedTree } from './paged-check.js';

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
  /** Check from the whole tree in memory, as a repair does, even without repairing (to compare the two checks). */
  wholeTree?: boolean;
}

const LOST_FOUND = 'lost+found';

const isDir = (r: InodeRecord) => (r.mode & S_IFMT) === S_IFDIR;
const isFile = (r: InodeRecord) => (r.mode & S_IFMT) === S_IFREG;

/** The tree being checked, and what repairs changed in it. */
class TreeEdit {
  readonly changed = new Set<number>();
  private lostFound?: InodeRecord;

  constructor(readonly inodes: Map<number, InodeRecord>, public nextIno: number) {
    // A loop, not Math.max(...keys): a million arguments overflow the stack.
    let highest = nextIno;
    for (const ino of inodes.keys()) if (ino > highest) highest = ino;
    this.nextIno = highest + 1;
  }

  newDir(ino = this.nextIno++): InodeRecord {
    const now = Date.now();
    const dir: InodeRecord = { ino, mode: S_IFDIR | 0o700, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, nlink: 2, size: 0, atime: now, mtime: now, ctime: now, entries: [] };
    this.inodes.set(ino, dir);
    this.changed.add(ino);
    return dir;
  }

  /** /lost+found, made if need be. */
  lostAndFound(): InodeRecord {
    if (this.lostFound) return this.lostFound;
    const root = this.inodes.get(ROOT_INO)!;
    const existing = root.entries!.find(([n]) => n === LOST_FOUND);
    const node = existing && this.inodes.get(existing[1]);
    if (node && isDir(node)) {
      this.lostFound = node;
    } else {
      this.lostFound = this.newDir();
      root.entries = root.entries!.filter(([n]) => n !== LOST_FOUND);
      root.entries.push([LOST_FOUND, this.lostFound.ino]);
      root.nlink++;
      this.changed.add(ROOT_INO);
    }
    this.changed.add(this.lostFound.ino);
    return this.lostFound;
  }

  /** Puts an inode into /lost+found under name (replacing an entry of that name). */
  adopt(ino: number, name: string): void {
    const lf = this.lostAndFound();
    lf.entries = lf.entries!.filter(([n]) => n !== name);
    lf.entries.push([name, ino]);
    if (isDir(this.inodes.get(ino)!)) lf.nlink++;
    this.changed.add(ino);
  }
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
  // A check of format 3 reads the tree from its pages as it goes; a repair edits the whole tree in memory.
  const history = await readHistory(session.log, { whole: opts.repair || !!opts.wholeTree });
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
  if (history.map) {
    const blocks = new BlockChecker(session, report, opts);
    const { referenced, pathOf, resolvePaths } = await checkPagedTree(history.map, report, { file: (r) => blocks.add(r), scanned: opts.keysScanned });
    await resolvePaths(await blocks.settled());
    await blocks.finish(pathOf);
    await countOrphans(session, referenced, report, packed);
    return report;
  }
  const inodes = history.inodes;
  const edit = new TreeEdit(inodes, history.nextIno);
  const tree = checkTree(edit, report, opts.repair);
  const damagedBlocks = await checkBlocks(session, inodes, tree.paths, report, opts);
  await countOrphans(session, addRefs(new Set(), inodes.values()), report, packed);

  if (opts.repair) {
    repairFiles(edit, damagedBlocks, tree.parents, report, packed);
    await commitRepairs(session, history, edit, report, seen);
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

interface TreeShape {
  /** A path for every reachable inode. */
  paths: Map<number, string>;
  /** Every (directory, name) that refers to an inode. */
  parents: Map<number, { dir: number; name: string }[]>;
}

function subdirectories(inodes: Map<number, InodeRecord>, dir: InodeRecord): number {
  return (dir.entries ?? []).filter(([, c]) => {
    const child = inodes.get(c);
    return child !== undefined && isDir(child);
  }).length;
}

function checkTree(edit: TreeEdit, report: FsckReport, repair: boolean): TreeShape {
  const { inodes, changed } = edit;
  const paths = new Map<number, string>();
  const parents = new Map<number, { dir: number; name: string }[]>();
  const links = new Map<number, number>();
  let root = inodes.get(ROOT_INO);
  if (!root || !isDir(root)) {
    report.tree.push('the root directory is missing');
    if (!repair) return { paths, parents };
    root = edit.newDir(ROOT_INO);
    report.repaired.push('made a new, empty root directory');
  }
  paths.set(ROOT_INO, '/');
  const queue = [ROOT_INO];
  while (queue.length) {
    const dirIno = queue.shift()!;
    const dir = inodes.get(dirIno)!;
    for (const [name, ino] of [...(dir.entries ?? [])]) {
      const where = `${paths.get(dirIno) === '/' ? '' : paths.get(dirIno)}/${name}`;
      const node = inodes.get(ino);
      const dropEntry = (why: string) => {
        report.tree.push(`${where}: ${why}`);
        if (repair) {
          dir.entries = dir.entries!.filter(([n]) => n !== name);
          changed.add(dirIno);
          report.repaired.push(`removed the entry ${where}`);
        }
      };
      if (!node) {
        dropEntry(`refers to inode ${ino}, which does not exist`);
        continue;
      }
      if (isDir(node) && paths.has(ino)) {
        dropEntry(`a second name for directory ${paths.get(ino)}`);
        continue;
      }
      links.set(ino, (links.get(ino) ?? 0) + 1);
      parents.set(ino, [...(parents.get(ino) ?? []), { dir: dirIno, name }]);
      if (!paths.has(ino)) paths.set(ino, where);
      if (isDir(node)) queue.push(ino);
    }
  }
  const unreachable = [...inodes.keys()].filter((ino) => !paths.has(ino));
  if (unreachable.length) {
    report.tree.push(`${unreachable.length} inodes are not reachable from the root`);
    if (repair) {
      for (const ino of unreachable) {
        const name = `#${ino}`;
        edit.adopt(ino, name);
        links.set(ino, 1);
        paths.set(ino, `/${LOST_FOUND}/${name}`);
        parents.set(ino, [{ dir: edit.lostAndFound().ino, name }]);
      }
      report.repaired.push(`moved ${unreachable.length} unreachable inodes to /${LOST_FOUND}`);
    }
  }
  for (const [ino, node] of inodes) {
    if (!paths.has(ino)) continue;
    // Second names of directories were dropped above, so every directory entry is a subdirectory's only one.
    const want = isDir(node) ? 2 + subdirectories(inodes, node) : links.get(ino) ?? 0;
    if (node.nlink !== want) {
      report.tree.push(`${paths.get(ino)}: link count ${node.nlink}, should be ${want}`);
      if (repair) {
        node.nlink = want;
        changed.add(ino);
      }
    }
  }
  return { paths, parents };
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

/** Fetches and authenticates every block; returns the damaged block indexes per file. */
async function checkBlocks(session: MaintenanceSession, inodes: Map<number, InodeRecord>, paths: Map<number, string>, report: FsckReport, opts: FsckOptions): Promise<Map<number, Set<number>>> {
  const checker = new BlockChecker(session, report, opts);
  for (const r of inodes.values()) if (isFile(r)) await checker.add(r);
  return checker.finish((ino) => paths.get(ino));
}

/** Damaged files: their bad blocks become holes and the file moves to /lost+found. */
function repairFiles(edit: TreeEdit, damaged: Map<number, Set<number>>, parents: Map<number, { dir: number; name: string }[]>, report: FsckReport, packed: boolean): void {
  for (const [ino, bad] of damaged) {
    const file = edit.inodes.get(ino)!;
    setRefs(file, refsOf(file).filter(([index]) => !bad.has(index)), packed);
    const names = parents.get(ino) ?? [];
    for (const { dir, name } of names) {
      const d = edit.inodes.get(dir)!;
      d.entries = d.entries!.filter(([n, i]) => !(n === name && i === ino));
      edit.changed.add(dir);
    }
    const name = `${names[0]?.name ?? 'file'}.${ino}`;
    edit.adopt(ino, name);
    file.nlink = 1;
    report.repaired.push(`${report.files.find((f) => f.ino === ino)?.path ?? `inode ${ino}`}: ${bad.size} damaged blocks now read as zeros; moved to /${LOST_FOUND}/${name}`);
  }
}

async function commitRepairs(session: MaintenanceSession, history: History, edit: TreeEdit, report: FsckReport, seen: number): Promise<void> {
  const log = session.log;
  // What cannot be applied goes, so the next number is free for the repair.
  const unusable = new Set([...history.damaged.map((d) => d.key), ...history.stranded.map((s) => log.logKey(s))]);
  unusable.delete(log.checkpointKey(history.checkpointSeq));
  for (const key of unusable) {
    await session.store.delete(key);
    report.repaired.push(`deleted the unusable metadata object ${key}`);
  }
  log.resume(history.seq, history.checkpointSeq);
  if (edit.changed.size) await commitTree(log, history, [...edit.changed].map((i) => edit.inodes.get(i)!), edit.nextIno);
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
