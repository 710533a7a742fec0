import { S_IFDIR, S_IFMT, S_IFREG, ROOT_INO, type InodeRecord } from '../meta/inode.js';
import { ENTRY_PREFIX, entryOfKey, INODE_PREFIX, inoOfKey, prefixEnd, type EntryValue } from '../meta/kv.js';
import type { PageTree } from '../meta/pagetree.js';
import { objectsOf } from '../meta/refs.js';
import type { FsckReport } from './fsck.js';
import { DIR, EXISTS, InoTable } from './ino-table.js';

/** Problems reported one by one up to this many of a kind; the rest are counted. */
const DETAILED = 100;
/** Entries naming no inode, kept until the walk tells which lie in reachable directories. */
const DANGLING_KEPT = 10_000;

export interface PagedCheckHooks {
  /** Every file record, in inode order (the block check). */
  file(record: InodeRecord): Promise<void>;
  /** Keys of the map read so far (a progress line). */
  scanned?(keys: number): void;
}

export interface Named {
  dir: number;
  name: string;
  ino: number;
}

/** What the check learnt: enough for a repair to plan without reading the records again. */
export interface TreeFacts {
  table: InoTable;
  /** Entries naming directories, grouped by the directory holding them (edgesOf: where each one's run is). */
  dirEdges: Named[];
  edgesOf: Map<number, [number, number]>;
  /** Every directory entry of the map, in key order. */
  entries: () => AsyncGenerator<[string, unknown]>;
  referenced: Set<string>;
  pathOf: (ino: number) => string | undefined;
  resolvePaths: (inos: Iterable<number>) => Promise<void>;
}

/**
 * The tree check of a format-3 vault read straight from its pages, in
 * memory that does not grow with the vault beyond a few bytes an inode:
 * one pass over the inode records, one over the directory entries (and
 * a second only if some directory is cut off from the root), then link
 * counts and reachability from per-inode counters. It finds what the
 * whole-tree check finds, with the same words; only what it reports needs
 * paths, and those are looked up at the end.
 */
export async function checkPagedTree(map: PageTree, report: FsckReport, hooks: PagedCheckHooks): Promise<TreeFacts> {
  const table = new InoTable();
  const referenced = new Set<string>();
  let scanned = 0;
  const tick = () => {
    if (++scanned % 1000 === 0) hooks.scanned?.(scanned);
  };

  for await (const [key, value] of map.scan(INODE_PREFIX, prefixEnd(INODE_PREFIX))) {
    tick();
    const r = value as InodeRecord;
    const ino = inoOfKey(key);
    table.ensure(ino);
    const type = r.mode & S_IFMT;
    table.flags[ino] = EXISTS | (type === S_IFDIR ? DIR : 0);
    table.nlink[ino] = r.nlink;
    if (type === S_IFREG) {
      for (const id of objectsOf(r)) referenced.add(id);
      await hooks.file(r);
    }
  }

  // Files' names are only counted; names of directories are kept (directories are few next to files), to walk the tree from the root.
  const dirEdges: Named[] = [];
  const dangling: Named[] = [];
  let danglingCount = 0;
  const entries = () => map.scan(ENTRY_PREFIX, prefixEnd(ENTRY_PREFIX));
  for await (const [key, value] of entries()) {
    tick();
    const { dir, name } = entryOfKey(key);
    // Entries of a directory that does not exist are out of the tree's reach, as in the whole-tree check.
    if (!table.isDir(dir)) continue;
    const [ino] = value as EntryValue;
    if (!table.exists(ino)) {
      if (danglingCount++ < DANGLING_KEPT) dangling.push({ dir, name, ino });
    } else if (table.isDir(ino)) dirEdges.push({ dir, name, ino });
    else table.links[ino]++;
  }

  // Directories, breadth first from the root (as the whole-tree check walks): the first name reached is a
  // directory's name, any later one a second name. Entries come in key order, so a directory's are together.
  const UNREACHED = 0;
  const REACHABLE = 1;
  const reach = new Uint8Array(table.length);
  /** Where each reachable directory came in the walk: a file's path is its name in the first one. */
  const walkOrder = new Uint32Array(table.length);
  const dirNames = new Map<number, string>();
  const edgesOf = new Map<number, [number, number]>();
  for (let i = 0; i < dirEdges.length; i++) {
    const range = edgesOf.get(dirEdges[i].dir);
    if (range) range[1] = i + 1;
    else edgesOf.set(dirEdges[i].dir, [i, i + 1]);
  }
  const secondNames: { at: Named; first: number }[] = [];
  let secondNameCount = 0;
  if (!table.isDir(ROOT_INO)) report.tree.push('the root directory is missing');
  else {
    reach[ROOT_INO] = REACHABLE;
    const queue = [ROOT_INO];
    for (let q = 0; q < queue.length; q++) {
      const dir = queue[q];
      const [from, to] = edgesOf.get(dir) ?? [0, 0];
      for (let i = from; i < to; i++) {
        const edge = dirEdges[i];
        table.subdirs[dir]++;
        if (reach[edge.ino] === REACHABLE) {
          if (secondNameCount++ < DETAILED) secondNames.push({ at: edge, first: edge.ino });
          continue;
        }
        reach[edge.ino] = REACHABLE;
        walkOrder[edge.ino] = queue.length;
        table.parent[edge.ino] = dir;
        dirNames.set(edge.ino, edge.name);
        queue.push(edge.ino);
      }
    }
  }
  let cutOffDirs = 0;
  for (let ino = 0; ino < table.length; ino++) if (table.isDir(ino) && reach[ino] === UNREACHED) cutOffDirs++;
  if (cutOffDirs > 0) {
    // Names in cut-off directories do not count: count again, from reachable directories only.
    table.links.fill(0);
    for await (const [key, value] of entries()) {
      const [ino] = value as EntryValue;
      if (reach[entryOfKey(key).dir] === REACHABLE && table.exists(ino) && !table.isDir(ino)) table.links[ino]++;
    }
  }

  const names = new Map<number, Named>();
  /** A reachable directory's path: its parents lead to the root, with no loop (they come from the walk). */
  const pathOfDir = (ino: number): string => {
    if (ino === ROOT_INO) return '/';
    const parts: string[] = [];
    for (let at = ino; at !== ROOT_INO && at !== 0; at = table.parent[at]) parts.unshift(dirNames.get(at)!);
    return `/${parts.join('/')}`;
  };
  const under = (dir: number, name: string) => `${dir === ROOT_INO ? '' : pathOfDir(dir)}/${name}`;
  const pathOf = (ino: number): string | undefined => {
    if (table.isDir(ino)) return reach[ino] === REACHABLE ? pathOfDir(ino) : undefined;
    const named = names.get(ino);
    return named && under(named.dir, named.name);
  };
  /** Finds the name of files that a report will show: the one the walk from the root meets first (one more pass over the entries, only when there are such files). */
  const resolvePaths = async (inos: Iterable<number>) => {
    const wanted = new Set([...inos].filter((ino) => !table.isDir(ino) && !names.has(ino)));
    if (wanted.size === 0) return;
    for await (const [key, value] of entries()) {
      const [ino] = value as EntryValue;
      if (!wanted.has(ino)) continue;
      const { dir, name } = entryOfKey(key);
      if (reach[dir] !== REACHABLE) continue;
      const known = names.get(ino);
      if (!known || walkOrder[dir] < walkOrder[known.dir]) names.set(ino, { dir, name, ino });
    }
  };

  const reachableDangling = dangling.filter((d) => reach[d.dir] === REACHABLE);
  for (const d of reachableDangling.slice(0, DETAILED)) report.tree.push(`${under(d.dir, d.name)}: refers to inode ${d.ino}, which does not exist`);
  if (reachableDangling.length > DETAILED) report.tree.push(`...and ${reachableDangling.length - DETAILED} more entries that refer to inodes that do not exist`);
  for (const { at, first } of secondNames) report.tree.push(`${under(at.dir, at.name)}: a second name for directory ${pathOfDir(first)}`);
  if (secondNameCount > DETAILED) report.tree.push(`...and ${secondNameCount - DETAILED} more second names of directories`);

  let unreachable = 0;
  const wrongLinks: { ino: number; have: number; want: number }[] = [];
  let wrongLinkCount = 0;
  for (let ino = 0; ino < table.length; ino++) {
    if (!table.exists(ino)) continue;
    const dir = table.isDir(ino);
    const reachable = dir ? reach[ino] === REACHABLE : table.links[ino] > 0;
    if (!reachable) {
      unreachable++;
      continue;
    }
    const want = dir ? 2 + table.subdirs[ino] : table.links[ino];
    if (table.nlink[ino] !== want && wrongLinkCount++ < DETAILED) wrongLinks.push({ ino, have: table.nlink[ino], want });
  }
  if (unreachable) report.tree.push(`${unreachable} inodes are not reachable from the root`);
  await resolvePaths(wrongLinks.map((w) => w.ino));
  for (const w of wrongLinks) report.tree.push(`${pathOf(w.ino) ?? `inode ${w.ino}`}: link count ${w.have}, should be ${w.want}`);
  if (wrongLinkCount > DETAILED) report.tree.push(`...and ${wrongLinkCount - DETAILED} more wrong link counts`);
  return { table, dirEdges, edgesOf, entries, referenced, pathOf, resolvePaths };
}
