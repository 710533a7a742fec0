import { randomBytes } from 'node:crypto';
import { randomKey } from '../crypto/keys.js';

export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFDIR = 0o040000;
export const S_IFLNK = 0o120000;
export const ROOT_INO = 1;

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
  /** Files: random id bound into every block's AAD, and the file's key. */
  fileId?: string;
  key?: string; // base64
  /** Files: [block index, object id] for every stored block; holes are absent. */
  blocks?: [number, string][];
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
  atime: number;
  mtime: number;
  ctime: number;
  fileId = '';
  key: Buffer = Buffer.alloc(0);
  blocks = new Map<number, string>();
  entries = new Map<string, number>();
  target = '';

  constructor(ino: number, mode: number, uid: number, gid: number, now = Date.now()) {
    this.ino = ino;
    this.mode = mode;
    this.uid = uid;
    this.gid = gid;
    this.nlink = (mode & S_IFMT) === S_IFDIR ? 2 : 1;
    this.size = 0;
    this.atime = this.mtime = this.ctime = now;
    if (this.isFile) {
      this.fileId = randomBytes(16).toString('hex');
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

  toRecord(): InodeRecord {
    const r: InodeRecord = {
      ino: this.ino, mode: this.mode, uid: this.uid, gid: this.gid, nlink: this.nlink,
      size: this.size, atime: this.atime, mtime: this.mtime, ctime: this.ctime,
    };
    if (this.isFile) {
      r.fileId = this.fileId;
      r.key = this.key.toString('base64');
      r.blocks = [...this.blocks];
    } else if (this.isDir) {
      r.entries = [...this.entries];
    } else if (this.isSymlink) {
      r.target = this.target;
    }
    return r;
  }

  static fromRecord(r: InodeRecord): Inode {
    const node = Object.create(Inode.prototype) as Inode;
    Object.assign(node, {
      ino: r.ino, mode: r.mode, uid: r.uid, gid: r.gid, nlink: r.nlink, size: r.size,
      atime: r.atime, mtime: r.mtime, ctime: r.ctime,
      fileId: r.fileId ?? '', key: Buffer.from(r.key ?? '', 'base64'),
      blocks: new Map(r.blocks ?? []), entries: new Map(r.entries ?? []), target: r.target ?? '',
    });
    return node;
  }
}
