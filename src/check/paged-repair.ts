import { ROOT_INO, S_IFDIR, S_IFMT, type InodeRecord } from '../meta/inode.js';
import type { Changes } from '../meta/formats.js';
import { entryKey, entryOfKey, entryValue, inodeKey, type EntryValue } from '../meta/kv.js';
import type { PageTree } from '../meta/pagetree.js';
import { refsOf, setRefs } from '../meta/refs.js';
import type { FsckReport } from './fsck.js';
import type { Named, TreeFacts } from './paged-check.js';

const LOST_FOUND = 'lost+found';
/** Repairs listed one by one up to this many of a kind; the rest are counted. */
const DETAILED = 100;

export interface RepairInput {
  map: PageTree;
  facts: TreeFacts;
  /** Damaged block indexes of each file the block check found damaged. */
  damaged: Map<number, Set<number>>;
  nextIno: number;
  inodeCount: number;
  packed: boolean;
  report: FsckReport;
}

interface Adoption {
  ino: number;
  /** The name it asks for in /lost+found (made unique there). */
  want: string;
}

function newDirectory(ino: number, nlink: number): InodeRecord {
  const now = Date.now();
  return { ino, mode: S_IFDIR | 0o700, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, nlink, size: 0, atime: now, mtime: now, ctime: now };
}

/**
 * What makes the checked tree consistent, as map changes (nothing is
 * written here). Memory follows the damage, not the vault: the per-inode
 * counters are the check's, plus one pass over the directory entries.
 *
 * - Entries naming no inode, second names of directories, and entries of
 *   directories that do not exist are removed.
 * - What the root does not reach goes to /lost+found: a cut-off directory
 *   with everything under it (its top, not each inode in it), a loop of
 *   directories by one directory of the loop, a file no entry names.
 * - A damaged file loses its damaged blocks (holes: they read as zeros)
 *   and every name, and moves to /lost+found.
 * - Every link count is set to what the repaired tree holds.
 */
export async function planRepairs(input: RepairInput): Promise<Changes | undefined> {
  const { map, facts, damaged, report } = input;
  const { table, edgesOf } = facts;
  const size = table.length;
  const changes: Changes = { inodes: new Map(), keys: new Map(), nextIno: input.nextIno, inodeCount: input.inodeCount };
  for (let ino = size - 1; ino > 0; ino--) {
    if (!table.exists(ino)) continue;
    changes.nextIno = Math.max(changes.nextIno, ino + 1);
    break;
  }

  const freshRoot = !table.isDir(ROOT_INO);
  if (freshRoot) {
    if (!table.exists(ROOT_INO)) changes.inodeCount++;
    report.repaired.push('made a new, empty root directory');
  }

  // Directories from the root, then from each cut-off top, then loops: the first name met is kept.
  const placed = new Uint8Array(size);
  const subdirs = new Uint32Array(size);
  /** A placed directory's parent and name in the repaired tree (tops: /lost+found and their adoption). */
  const parent = new Uint32Array(size);
  const dirName = new Map<number, string>();
  const drops: Named[] = [];
  const walk = (start: number) => {
    placed[start] = 1;
    const queue = [start];
    for (let q = 0; q < queue.length; q++) {
      const dir = queue[q];
      const [from, to] = edgesOf.get(dir) ?? [0, 0];
      for (let i = from; i < to; i++) {
        const edge = facts.dirEdges[i];
        if (placed[edge.ino]) {
          drops.push(edge);
          continue;
        }
        placed[edge.ino] = 1;
        subdirs[dir]++;
        parent[edge.ino] = dir;
        dirName.set(edge.ino, edge.name);
        queue.push(edge.ino);
      }
    }
  };
  walk(ROOT_INO);
  const adoptions: Adoption[] = [];
  /** A cut-off directory's name in another cut-off directory (0: none). */
  const namer = new Uint32Array(size);
  for (const edge of facts.dirEdges) if (!placed[edge.dir]) namer[edge.ino] = edge.dir;
  const adopt = (ino: number) => {
    adoptions.push({ ino, want: `#${ino}` });
    walk(ino);
  };
  for (let ino = 0; ino < size; ino++) if (table.isDir(ino) && !placed[ino] && !namer[ino]) adopt(ino);
  // What is left hangs under a loop: climbing the names from any of it reaches a directory of the loop.
  for (let ino = 0; ino < size; ino++) {
    if (!table.isDir(ino) || placed[ino]) continue;
    const climbed = new Set<number>();
    let top = ino;
    while (!climbed.has(top)) {
      climbed.add(top);
      top = namer[top];
    }
    adopt(top);
  }
  const adoptedDirs = adoptions.length;

  // Every directory is placed now: file names are counted in all of them.
  const links = new Uint32Array(size);
  const firstName = new Map<number, string>();
  let foreignEntries = 0;
  let lostFoundEntry: number | undefined;
  for await (const [key, value] of facts.entries()) {
    const { dir, name } = entryOfKey(key);
    const [ino] = value as EntryValue;
    if (!table.isDir(dir)) {
      changes.keys.set(key, undefined);
      foreignEntries++;
      continue;
    }
    if (dir === ROOT_INO && name === LOST_FOUND) lostFoundEntry = ino;
    // A root that was no directory is replaced: names of it go with it.
    if (!table.exists(ino) || (freshRoot && ino === ROOT_INO)) drops.push({ dir, name, ino });
    else if (table.isDir(ino)) continue;
    else if (damaged.has(ino)) {
      if (!firstName.has(ino)) firstName.set(ino, name);
      drops.push({ dir, name, ino });
    } else links[ino]++;
  }
  for (const d of drops) changes.keys.set(entryKey(d.dir, d.name), undefined);

  const orphans: number[] = [];
  for (let ino = 0; ino < size; ino++) if (table.exists(ino) && !table.isDir(ino) && links[ino] === 0 && !damaged.has(ino) && ino !== ROOT_INO) orphans.push(ino);

  let lostFound = 0;
  let lostFoundIsNew = false;
  let rootSubdirsAdded = 0;
  if (adoptions.length || orphans.length || damaged.size) {
    const usable = lostFoundEntry !== undefined && table.isDir(lostFoundEntry) && !drops.some((d) => d.dir === ROOT_INO && d.name === LOST_FOUND);
    if (usable) lostFound = lostFoundEntry!;
    else {
      lostFound = changes.nextIno++;
      lostFoundIsNew = true;
      changes.inodeCount++;
      rootSubdirsAdded = 1;
      changes.keys.set(entryKey(ROOT_INO, LOST_FOUND), entryValue(lostFound, S_IFDIR));
      // A file of that name gives it up; with no other name, it moves in.
      if (lostFoundEntry !== undefined && table.exists(lostFoundEntry) && !table.isDir(lostFoundEntry) && !damaged.has(lostFoundEntry) && --links[lostFoundEntry] === 0) orphans.push(lostFoundEntry);
    }
  }
  const adoptedFiles = new Set<number>();
  for (const ino of orphans) {
    adoptions.push({ ino, want: `#${ino}` });
    adoptedFiles.add(ino);
  }
  for (const ino of damaged.keys()) {
    adoptions.push({ ino, want: `${firstName.get(ino) ?? 'file'}.${ino}` });
    adoptedFiles.add(ino);
  }

  /** A name in /lost+found that nothing holds, neither before nor after this repair. */
  const freeName = async (want: string): Promise<string> => {
    for (let n = 1; ; n++) {
      const name = n === 1 ? want : `${want}~${n}`;
      const key = entryKey(lostFound, name);
      const taken = changes.keys.has(key) ? changes.keys.get(key) !== undefined : (await map.get(key)) !== undefined;
      if (!taken) return name;
    }
  };
  const adoptedAs = new Map<number, string>();
  for (const { ino, want } of adoptions) {
    const name = await freeName(want);
    const record = (await map.get(inodeKey(ino))) as InodeRecord;
    changes.keys.set(entryKey(lostFound, name), entryValue(ino, record.mode));
    adoptedAs.set(ino, name);
    if ((record.mode & S_IFMT) === S_IFDIR) {
      parent[ino] = lostFound;
      dirName.set(ino, name);
    }
  }

  const pathOfDir = (dir: number): string => {
    if (dir === ROOT_INO) return '/';
    if (dir === lostFound) return `/${LOST_FOUND}`;
    return `${pathOfDir(parent[dir]).replace(/\/$/, '')}/${dirName.get(dir)}`;
  };
  for (const d of drops.slice(0, DETAILED)) {
    const where = placed[d.dir] ? pathOfDir(d.dir).replace(/\/$/, '') : `(inode ${d.dir})`;
    report.repaired.push(`removed the entry ${where}/${d.name}`);
  }
  if (drops.length > DETAILED) report.repaired.push(`...and removed ${drops.length - DETAILED} more entries`);
  if (foreignEntries) report.repaired.push(`removed ${foreignEntries} entries of directories that do not exist`);
  const unreachable = adoptedDirs + orphans.length;
  if (unreachable) report.repaired.push(`moved ${unreachable} unreachable inodes to /${LOST_FOUND} (directories with what they hold)`);

  // Link counts as the repaired tree has them; damaged files lose their damaged blocks too.
  let relinked = 0;
  for (let ino = 0; ino < size; ino++) {
    if (!table.exists(ino) || (ino === ROOT_INO && freshRoot)) continue;
    const dir = table.isDir(ino);
    const want = dir ? 2 + subdirs[ino] + (ino === ROOT_INO ? rootSubdirsAdded : 0) + (ino === lostFound ? adoptedDirs : 0) : adoptedFiles.has(ino) ? 1 : links[ino];
    const bad = damaged.get(ino);
    if (table.nlink[ino] === want && !bad) continue;
    const record = { ...((await map.get(inodeKey(ino))) as InodeRecord), nlink: want };
    if (table.nlink[ino] !== want) relinked++;
    if (bad) {
      setRefs(record, refsOf(record).filter(([index]) => !bad.has(index)), input.packed);
      const path = report.files.find((f) => f.ino === ino)?.path ?? `inode ${ino}`;
      report.repaired.push(`${path}: ${bad.size} damaged blocks now read as zeros; moved to /${LOST_FOUND}/${adoptedAs.get(ino)}`);
    }
    changes.inodes.set(ino, record);
  }
  if (relinked) report.repaired.push(`set ${relinked} link counts to what the tree holds`);
  if (freshRoot) changes.inodes.set(ROOT_INO, newDirectory(ROOT_INO, 2 + subdirs[ROOT_INO] + rootSubdirsAdded));
  if (lostFoundIsNew) changes.inodes.set(lostFound, newDirectory(lostFound, 2 + adoptedDirs));
  return changes.inodes.size || changes.keys.size ? changes : undefined;
}
