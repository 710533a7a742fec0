import { randomKey } from '../crypto/keys.js';
import { randomBuffer } from '../crypto/random-pool.js';
import type { SegmentRun } from '../format/segment.js';
import { refsOf, setRefs } from './refs.js';
import { now, type Time } from './time.js';

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;
export const S_IFIFO = 0o010000;
export const S_IFSOCK = 0o140000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
export const S_IXGRP = 0o0010;
export const ROOT_INO = 1;
/** The key of an inode that is not a file (never written into: keys are replaced whole). */
const NO_KEY = Buffer.alloc(0);

/** What one inode looks like inside the encrypted metadata. */
export interface InodeRecord {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  size: number;
  atime: number; // ms since the epoch
  mtime: number;
  ctime: number;
  /** Nanoseconds within the millisecond above; absent when 0. */
  atimeNs?: number;
  mtimeNs?: number;
  ctimeNs?: number;
  /** Character and block devices: the device number. */
  rdev?: number;
  /** Extended attributes: [name, base64 value]; absent when none. */
  xattrs?: [string, string][];
  /** Files: random id bound into every block's AAD, and the file's key. */
  fileId?: string;
  key?: string; // base64
  /** Format 1 files: [block index, object id] for every stored block; holes are absent. */
  blocks?: [number, string][];
  /** Format 2 files: runs of segments (see FORMAT.md); holes are absent. */
  segs?: SegmentRun[];
  /** Formats 1 and 2: a directory's entries (format 3 keeps each as its own key, see kv.ts). */
  entries?: [string, number][];
  target?: string;
}

export class Inode {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  size: number;
  /**
   * Files: the size and block count that the stored blocks are consistent
   * with (set by the block cache). A commit records these, not the live
   * size: a write racing a background upload must not leave a committed
   * size that covers bytes whose block was stored before they were written.
   */
  durableSize = 0;
  durableBlocks = 0;
  atime: Time;
  mtime: Time;
  ctime: Time;
  rdev = 0;
  xattrs?: Map<string, Buffer>;
  fileId = '';
  key: Buffer = NO_KEY;
  blocks = new Map<number, string>();
  target = '';

  /** keyed: a new file gets its id and key here; a loaded one takes them from its record. */
  constructor(ino: number, mode: number, uid: number, gid: number, time: Time = now(), keyed = true) {
    this.ino = ino;
    this.mode = mode;
    this.uid = uid;
    this.gid = gid;
    this.nlink = (mode & S_IFMT) === S_IFDIR ? 2 : 1;
    this.size = 0;
    this.atime = this.mtime = this.ctime = time;
    if (keyed && this.isFile) {
      this.fileId = randomBuffer(16).toString('hex');
      this.key = randomKey();
    }
  }

  get isDir(): boolean {
    return (this.mode & S_IFMT) === S_IFDIR;
  }

  get isFile(): boolean {
    return (this.mode & S_IFMT) === S_IFREG;
  }

  get isSymlink(): boolean {
    return (this.mode & S_IFMT) === S_IFLNK;
  }

  /** `packed`: format 2, whose files record segment runs. */
  toRecord(packed = false): InodeRecord {
    const r: InodeRecord = {
      ino: this.ino, mode: this.mode, uid: this.uid, gid: this.gid, nlink: this.nlink,
      size: this.isFile ? this.durableSize : this.size, atime: this.atime.ms, mtime: this.mtime.ms, ctime: this.ctime.ms,
    };
    if (this.atime.ns) r.atimeNs = this.atime.ns;
    if (this.mtime.ns) r.mtimeNs = this.mtime.ns;
    if (this.ctime.ns) r.ctimeNs = this.ctime.ns;
    if (this.rdev) r.rdev = this.rdev;
    if (this.xattrs?.size) r.xattrs = [...this.xattrs].map(([name, value]) => [name, value.toString('base64')]);
    if (this.isFile) {
      r.fileId = this.fileId;
      r.key = this.key.toString('base64');
      setRefs(r, [...this.blocks].filter(([index]) => index < this.durableBlocks), packed);
    } else if (this.isSymlink) {
      r.target = this.target;
    }
    return r;
  }

  /**
   * Built through the constructor, as a new inode is, so loaded and new
   * inodes share one hidden class: code V8 optimized for one then runs
   * for the other instead of being thrown away (a rename of a directory
   * loaded from the store, after working on new ones, deoptimized eight
   * functions on its way).
   */
  static fromRecord(r: InodeRecord): Inode {
    const blocks = refsOf(r);
    const node = new Inode(r.ino, r.mode, r.uid, r.gid, { ms: r.mtime, ns: r.mtimeNs ?? 0 }, false);
    node.nlink = r.nlink;
    node.size = r.size;
    node.durableSize = r.size;
    node.durableBlocks = blockCount(blocks);
    node.atime = { ms: r.atime, ns: r.atimeNs ?? 0 };
    node.ctime = { ms: r.ctime, ns: r.ctimeNs ?? 0 };
    node.rdev = r.rdev ?? 0;
    if (r.xattrs) node.xattrs = new Map(r.xattrs.map(([name, value]) => [name, Buffer.from(value, 'base64')]));
    node.fileId = r.fileId ?? '';
    if (r.key) node.key = Buffer.from(r.key, 'base64');
    for (const [index, id] of blocks) node.blocks.set(index, id);
    node.target = r.target ?? '';
    return node;
  }
}

/** One past the highest block index (no spread: a 200 GB file has 200,000 blocks, past Math.max's argument limit). */
function blockCount(blocks: [number, string][]): number {
  let count = 0;
  for (const [index] of blocks) if (index + 1 > count) count = index + 1;
  return count;
}
