import Fuse from 'fuse-native';
import { constants } from 'node:os';

/*
 * The fuse-native ceiling: a filesystem that does nothing (one file,
 * reads return the buffer as it is, writes are dropped), mounted with the
 * same options as veilfs. Whatever veilfs reaches is measured against it.
 * Usage: node null-fs.js MOUNTPOINT SIZE_BYTES
 */
const [mountpoint, sizeText] = process.argv.slice(2);
let size = Number(sizeText);
const now = new Date();
const dirStat = { mode: 0o040755, uid: 0, gid: 0, size: 4096, dev: 0, nlink: 2, ino: 1, rdev: 0, blksize: 4096, blocks: 8, atime: now, mtime: now, ctime: now };
const fileStat = () => ({ ...dirStat, mode: 0o100644, nlink: 1, ino: 2, size, blocks: Math.ceil(size / 512) });
type Cb = (err: number, ...values: unknown[]) => void;
const ops = {
  getattr: (path: string, cb: Cb) => (path === '/' ? cb(0, dirStat) : path === '/data' ? cb(0, fileStat()) : cb(-constants.errno.ENOENT)),
  fgetattr: (_p: string, _fd: number, cb: Cb) => cb(0, fileStat()),
  readdir: (_p: string, cb: Cb) => cb(0, ['data']),
  open: (_p: string, _flags: number, cb: Cb) => cb(0, 1),
  create: (_p: string, _mode: number, cb: Cb) => cb(0, 1),
  truncate: (_p: string, len: number, cb: Cb) => { size = len; cb(0); },
  ftruncate: (_p: string, _fd: number, len: number, cb: Cb) => { size = len; cb(0); },
  read: (_p: string, _fd: number, _buf: Buffer, len: number, pos: number, cb: Cb) => cb(Math.max(0, Math.min(len, size - pos))),
  write: (_p: string, _fd: number, _buf: Buffer, len: number, pos: number, cb: Cb) => { size = Math.max(size, pos + len); cb(len); },
  flush: (_p: string, _fd: number, cb: Cb) => cb(0),
  fsync: (_p: string, _d: number, _fd: number, cb: Cb) => cb(0),
  release: (_p: string, _fd: number, cb: Cb) => cb(0),
  utimens: (_p: string, _a: number, _m: number, cb: Cb) => cb(0),
  chmod: (_p: string, _m: number, cb: Cb) => cb(0),
};
const fuse = new Fuse(mountpoint, ops, { timeout: false, maxRead: 131072, fsname: 'nullfs,big_writes,max_write=131072', defaultPermissions: true });
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
