import Fuse from 'fuse-native';
import { constants } from 'node:os';

/*
 * The fuse-native ceiling: a filesystem that keeps names, types and sizes
 * and nothing else (reads return zeros, written bytes are dropped),
 * mounted with the same options as veilfs. Whatever veilfs reaches, on
 * data or metadata workloads, is measured against it.
 * Usage: node null-fs.js MOUNTPOINT
 */
const [mountpoint] = process.argv.slice(2);
const now = new Date();
interface Node { dir: boolean; size: number; ino: number; target?: string }
const nodes = new Map<string, Node>([['/', { dir: true, size: 4096, ino: 1 }]]);
let nextIno = 2;
const ENOENT = -constants.errno.ENOENT;
const stat = (n: Node) => ({
  mode: n.dir ? 0o040755 : n.target !== undefined ? 0o120777 : 0o100644, uid: 0, gid: 0, size: n.size, dev: 0, nlink: n.dir ? 2 : 1, ino: n.ino, rdev: 0,
  blksize: 4096, blocks: Math.ceil(n.size / 512), atime: now, mtime: now, ctime: now,
});
const parentOf = (p: string) => p.slice(0, p.lastIndexOf('/')) || '/';
const children = (dir: string) => {
  const prefix = dir === '/' ? '/' : `${dir}/`;
  return [...nodes.keys()].filter((p) => p !== '/' && parentOf(p) === dir).map((p) => p.slice(prefix.length));
};
const add = (p: string, dir: boolean) => nodes.set(p, { dir, size: dir ? 4096 : 0, ino: nextIno++ });
type Cb = (err: number, ...values: unknown[]) => void;
const withNode = (p: string, cb: Cb, fn: (n: Node) => void) => {
  const n = nodes.get(p);
  if (n) fn(n);
  else cb(ENOENT);
};
const ops = {
  getattr: (p: string, cb: Cb) => withNode(p, cb, (n) => cb(0, stat(n))),
  fgetattr: (p: string, _fd: number, cb: Cb) => withNode(p, cb, (n) => cb(0, stat(n))),
  readdir: (p: string, cb: Cb) => cb(0, children(p)),
  opendir: (_p: string, _flags: number, cb: Cb) => cb(0, 0),
  releasedir: (_p: string, _fd: number, cb: Cb) => cb(0),
  mkdir: (p: string, _mode: number, cb: Cb) => { add(p, true); cb(0); },
  rmdir: (p: string, cb: Cb) => { nodes.delete(p); cb(0); },
  unlink: (p: string, cb: Cb) => { nodes.delete(p); cb(0); },
  rename: (from: string, to: string, cb: Cb) => {
    for (const [p, n] of [...nodes]) {
      if (p === from || p.startsWith(`${from}/`)) {
        nodes.delete(p);
        nodes.set(to + p.slice(from.length), n);
      }
    }
    cb(0);
  },
  open: (_p: string, _flags: number, cb: Cb) => cb(0, 1),
  create: (p: string, _mode: number, cb: Cb) => { add(p, false); cb(0, 1); },
  truncate: (p: string, len: number, cb: Cb) => withNode(p, cb, (n) => { n.size = len; cb(0); }),
  ftruncate: (p: string, _fd: number, len: number, cb: Cb) => withNode(p, cb, (n) => { n.size = len; cb(0); }),
  read: (p: string, _fd: number, buf: Buffer, len: number, pos: number, cb: Cb) => {
    const n = Math.max(0, Math.min(len, (nodes.get(p)?.size ?? 0) - pos));
    buf.fill(0, 0, n);
    cb(n);
  },
  write: (p: string, _fd: number, _buf: Buffer, len: number, pos: number, cb: Cb) => withNode(p, cb, (n) => { n.size = Math.max(n.size, pos + len); cb(len); }),
  flush: (_p: string, _fd: number, cb: Cb) => cb(0),
  fsync: (_p: string, _d: number, _fd: number, cb: Cb) => cb(0),
  release: (_p: string, _fd: number, cb: Cb) => cb(0),
  utimens: (_p: string, _a: unknown, _m: unknown, cb: Cb) => cb(0),
  chmod: (_p: string, _m: number, cb: Cb) => cb(0),
  chown: (_p: string, _u: number, _g: number, cb: Cb) => cb(0),
  symlink: (target: string, p: string, cb: Cb) => { add(p, false); nodes.get(p)!.target = target; nodes.get(p)!.size = target.length; cb(0); },
  readlink: (p: string, cb: Cb) => withNode(p, cb, (n) => cb(0, n.target ?? '')),
};
const fuse = new Fuse(mountpoint, ops, {
  timeout: false, maxRead: 131072, maxWrite: 131072, bigWrites: true, useIno: true, fsname: 'nullfs', defaultPermissions: true, attrTimeout: 1, entryTimeout: 1,
});
fuse.mount((err) => {
  if (err) {
    process.stderr.write(`null-fs: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write('ready\n');
});
const stop = () => fuse.unmount(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
