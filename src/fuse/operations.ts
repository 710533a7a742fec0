import type { Filesystem } from '../vfs/filesystem.js';
import type { Attr } from '../vfs/attr.js';
import { toErrno } from './errno.js';

type Callback = (err: number, ...values: unknown[]) => void;

function stat(a: Attr): Record<string, number> {
  return { ...a, dev: 0, rdev: 0 };
}

/**
 * libfuse's path-based API keeps a file that is unlinked while open alive by
 * renaming it to ".fuse_hiddenNNNN" and unlinking that name on the last
 * close. The filesystem keeps open-unlinked files alive by itself, so the
 * hiding rename becomes a plain unlink here (the name vanishes at once, as
 * POSIX says) and the later unlink of the hidden name is a no-op.
 */
const HIDDEN_NAME = /\/\.fuse_hidden[0-9a-f]{16}$/;

/**
 * fuse-native callbacks, each translated to one Filesystem call. Results
 * (sync or async) and errors go back through `reply`, the only path to the
 * kernel.
 */
export function fuseOperations(fs: Filesystem, log: (message: string) => void): Record<string, (...args: any[]) => void> {
  /** Hidden name → inode number, while the file is open. */
  const hidden = new Map<string, number>();
  function reply<T>(op: string, path: string, cb: Callback, run: () => T | Promise<T>, shape: (v: T) => unknown[] = () => []): void {
    const fail = (err: unknown) => cb(toErrno(err, () => `${op} ${path}`, log));
    try {
      const result = run();
      if (result instanceof Promise) result.then((v) => cb(0, ...shape(v)), fail);
      else cb(0, ...shape(result));
    } catch (err) {
      fail(err);
    }
  }

  /** read and write return their byte count in the status slot. */
  function count(op: string, path: string, cb: Callback, run: () => Promise<number>): void {
    run().then((n) => cb(n), (err) => cb(toErrno(err, () => `${op} ${path}`, log)));
  }

  return {
    init: (cb: Callback) => cb(0),
    getattr: (path: string, cb: Callback) => reply('getattr', path, cb, () => {
      const ino = hidden.get(path);
      return ino === undefined ? fs.getattr(path) : fs.inodeAttr(ino);
    }, (a) => [stat(a)]),
    fgetattr: (path: string, fd: number, cb: Callback) => reply('fgetattr', path, cb, () => fs.fgetattr(fd), (a) => [stat(a)]),
    access: (path: string, _mode: number, cb: Callback) => reply('access', path, cb, () => fs.access(path)),
    statfs: (path: string, cb: Callback) => reply('statfs', path, cb, () => fs.statfs(), (s) => [s]),
    readdir: (path: string, cb: Callback) => reply('readdir', path, cb, () => fs.readdir(path), (r) => [r.names, r.attrs.map(stat)]),
    opendir: (path: string, _flags: number, cb: Callback) => reply('opendir', path, cb, () => fs.getattr(path), () => [0]),
    releasedir: (_path: string, _fd: number, cb: Callback) => cb(0),
    fsyncdir: (path: string, _datasync: number, _fd: number, cb: Callback) => reply('fsyncdir', path, cb, () => fs.sync()),
    mkdir: (path: string, mode: number, cb: Callback) => reply('mkdir', path, cb, () => fs.mkdir(path, mode)),
    rmdir: (path: string, cb: Callback) => reply('rmdir', path, cb, () => fs.rmdir(path)),
    unlink: (path: string, cb: Callback) => reply('unlink', path, cb, () => (hidden.delete(path) ? undefined : fs.unlink(path))),
    rename: (from: string, to: string, cb: Callback) => reply('rename', from, cb, () => {
      // libfuse hides only open files; a user's own file of such a name is renamed as usual.
      if (!HIDDEN_NAME.test(to) || !fs.isOpen(from)) return fs.rename(from, to);
      const { ino } = fs.getattr(from);
      fs.unlink(from);
      hidden.set(to, ino);
    }),
    link: (from: string, to: string, cb: Callback) => reply('link', from, cb, () => fs.link(from, to)),
    symlink: (target: string, path: string, cb: Callback) => reply('symlink', path, cb, () => fs.symlink(target, path)),
    readlink: (path: string, cb: Callback) => reply('readlink', path, cb, () => fs.readlink(path), (t) => [t]),
    chmod: (path: string, mode: number, cb: Callback) => reply('chmod', path, cb, () => fs.chmod(path, mode)),
    chown: (path: string, uid: number, gid: number, cb: Callback) => reply('chown', path, cb, () => fs.chown(path, uid, gid)),
    utimens: (path: string, atime: number, mtime: number, cb: Callback) => reply('utimens', path, cb, () => fs.utimens(path, atime, mtime)),
    truncate: (path: string, size: number, cb: Callback) => reply('truncate', path, cb, () => fs.truncate(path, size)),
    ftruncate: (path: string, fd: number, size: number, cb: Callback) => reply('ftruncate', path, cb, () => fs.ftruncate(fd, size)),
    create: (path: string, mode: number, cb: Callback) => reply('create', path, cb, () => fs.create(path, mode), (fd) => [fd]),
    open: (path: string, flags: number, cb: Callback) => reply('open', path, cb, () => fs.open(path, flags), (fd) => [fd]),
    read: (path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Callback) =>
      count('read', path, cb, () => fs.read(fd, buf, len, pos)),
    write: (path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Callback) =>
      count('write', path, cb, () => fs.write(fd, len === buf.length ? buf : buf.subarray(0, len), pos)),
    flush: (path: string, fd: number, cb: Callback) => reply('flush', path, cb, () => fs.flush(fd)),
    fsync: (path: string, _datasync: number, fd: number, cb: Callback) => reply('fsync', path, cb, () => fs.fsync(fd)),
    release: (path: string, fd: number, cb: Callback) => reply('release', path, cb, () => fs.release(fd)),
  };
}
