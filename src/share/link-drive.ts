import { BlockCache } from '../cache/block-cache.js';
import { PackedSegments } from '../data/packed.js';
import { FixedFormat } from '../meta/formats.js';
import { ROOT_INO, S_IFDIR, S_IFREG, type InodeRecord } from '../meta/inode.js';
import { Tree } from '../meta/tree.js';
import { Filesystem } from '../vfs/filesystem.js';
import type { ShareLink } from './link.js';
import { LinkStore } from './link-store.js';
import type { Manifest, ShareRecord, SharedNode } from './manifest.js';

/** A share's manifest as whole inode records: a folder is the root; a file alone sits in a root folder of its own. */
export function recordsOfManifest(manifest: Manifest, uid: number, gid: number): { records: InodeRecord[]; nextIno: number } {
  const records: InodeRecord[] = [];
  let next = ROOT_INO;
  const add = (node: SharedNode): number => {
    const ino = next++;
    const times = { atime: node.mtime, mtime: node.mtime, ctime: node.mtime };
    if (node.type === 'file') {
      records.push({ ino, mode: S_IFREG | 0o444, uid, gid, nlink: 1, size: node.size, ...times, fileId: node.fileId, key: node.key, segs: node.segs });
      return ino;
    }
    const record: InodeRecord = { ino, mode: S_IFDIR | 0o555, uid, gid, nlink: 2, size: 0, ...times, entries: [] };
    records.push(record);
    for (const child of node.entries) {
      record.entries!.push([child.name, add(child)]);
      if (child.type === 'dir') record.nlink++;
    }
    return ino;
  };
  const root = manifest.root;
  add(root.type === 'dir' ? root : { type: 'dir', name: '', mtime: root.mtime, entries: [root] });
  return { records, nextIno: next };
}

/** A share opened read-only on the vault's own layers: the gateway as the store, the manifest as the tree. */
export async function openLinkDrive(link: ShareLink, record: ShareRecord, manifest: Manifest, opts: { cacheSize: number; log: (m: string) => void }): Promise<Filesystem> {
  const store = new LinkStore(link, record.ranges ?? {});
  const packBytes = Math.floor(opts.cacheSize / 8);
  const codec = new PackedSegments(store, { packCacheBytes: packBytes, log: opts.log });
  const cache = new BlockCache(codec, { stored: () => {}, log: opts.log }, { cacheSize: opts.cacheSize - packBytes });
  const { records, nextIno } = recordsOfManifest(manifest, process.getuid?.() ?? 0, process.getgid?.() ?? 0);
  const noop = async () => {};
  const tree = await Tree.load(new FixedFormat(records, nextIno), { persist: noop, seal: noop, free: noop }, opts.log, { packed: true });
  return new Filesystem(tree, cache, { readOnly: true, log: opts.log });
}
