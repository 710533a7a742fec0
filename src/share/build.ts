import { UserError } from '../errors.js';
import type { Inode } from '../meta/inode.js';
import type { Tree } from '../meta/tree.js';
import type { ShareRun, SharedDir, SharedNode } from './manifest.js';

/** A manifest's content, the pack ranges it exposes, and the inodes it was built from (to know when it is stale). */
export interface BuiltShare {
  root: SharedNode;
  ranges: Record<string, [number, number][]>;
  inodes: Set<number>;
}

/** Manifests are sealed whole: past this many entries a folder is too big to share as one (split it). */
export const MAX_SHARED_ENTRIES = 200_000;

/** Walks the shared file or folder in the tree as it is now (stored data only: what a commit records). */
export async function buildShare(tree: Tree, top: Inode, name: string): Promise<BuiltShare> {
  const inodes = new Set<number>();
  const perPack = new Map<string, [number, number][]>();
  const addRanges = (segs: ShareRun[]) => {
    for (const [, count, pack, offset, length] of segs) {
      const list = perPack.get(pack) ?? [];
      list.push([offset, count * length]);
      perPack.set(pack, list);
    }
  };
  const visit = async (node: Inode, nodeName: string): Promise<SharedNode | undefined> => {
    if (inodes.size >= MAX_SHARED_ENTRIES) throw new UserError(`the folder holds more than ${MAX_SHARED_ENTRIES} entries: share sub-folders instead`);
    inodes.add(node.ino);
    const mtime = node.mtime.ms;
    if (node.isFile) {
      const record = node.toRecord(true);
      const segs = (record.segs ?? []) as ShareRun[];
      addRanges(segs);
      return { type: 'file', name: nodeName, size: record.size, mtime, fileId: node.fileId, key: node.key.toString('base64'), segs };
    }
    if (!node.isDir) return undefined;
    const dir: SharedDir = { type: 'dir', name: nodeName, mtime, entries: [] };
    for (const [childName, [ino]] of await tree.listEntries(node.ino)) {
      const child = await tree.get(ino);
      if (!child) continue; // fsck's business; the share leaves it out
      const shared = await visit(child, childName);
      if (shared) dir.entries.push(shared);
    }
    return dir;
  };
  const root = await visit(top, name);
  if (!root) throw new UserError('only a regular file or a folder can be shared');
  return { root, ranges: mergeRanges(perPack), inodes };
}

/** Sorted, with touching or overlapping ranges joined: the gateway checks requests against these. */
function mergeRanges(perPack: Map<string, [number, number][]>): Record<string, [number, number][]> {
  const out: Record<string, [number, number][]> = {};
  for (const [pack, list] of [...perPack].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    list.sort((a, b) => a[0] - b[0]);
    const merged: [number, number][] = [];
    for (const [offset, length] of list) {
      const last = merged[merged.length - 1];
      if (last && offset <= last[0] + last[1]) last[1] = Math.max(last[1], offset + length - last[0]);
      else merged.push([offset, length]);
    }
    out[pack] = merged;
  }
  return out;
}
