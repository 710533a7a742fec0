import type { Inode } from '../meta/inode.js';
import { toTimespec } from '../meta/time.js';

export interface Attr {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  size: number;
  blocks: number;
  blksize: number;
  rdev: number;
  /** [seconds, nanoseconds] since the epoch. */
  atime: [number, number];
  mtime: [number, number];
  ctime: [number, number];
}

/**
 * st_blocks counts 512-byte units actually stored: a sparse file reports
 * less than its size, and it never reports more than the size rounded up.
 */
export function attrOf(node: Inode, blockSize: number, unstoredBlocks: number): Attr {
  let allocated: number;
  if (node.isFile) allocated = Math.min((node.blocks.size + unstoredBlocks) * blockSize, Math.ceil(node.size / 512) * 512);
  else if (node.isDir) allocated = 4096;
  else allocated = 0;
  return {
    ino: node.ino, mode: node.mode, uid: node.uid, gid: node.gid, nlink: node.nlink,
    size: node.isDir ? 4096 : node.size, blocks: Math.ceil(allocated / 512), blksize: Math.min(blockSize, 131072),
    rdev: node.rdev,
    atime: toTimespec(node.atime), mtime: toTimespec(node.mtime), ctime: toTimespec(node.ctime),
  };
}
