import type { Caller, Filesystem, Timespec } from '../vfs/filesystem.js';
import type { Attr } from '../vfs/attr.js';
import { S_IFDIR, S_IFMT } from '../meta/inode.js';
import { toErrno } from './errno.js';

type Callback = (err: number, ...values: unknown[]) => void;

function stat(a: Attr): Attr & { dev: number } {
  return { ...a, dev: 0 };
}

/**
 * libfuse's path-based API keeps a file that is unlinked while open alive by
 * renaming it to ".fuse_hiddenNNNN" and unlinking that name on the last
 * close. The filesystem keeps open-unlinked files alive by itself, so the
 * hiding rename becomes a plain unlink here (the name vanishes at once, as
 * POSIX says) and the later unlink of the hidden name is a no-op.
 */
const HIDDEN_NAME = /\/(\.fuse_hidden[0-9a-f]{16})$/;
/**
 * libfuse builds hidden names from its node id and a mount-wide counter, so
 * the name alone identifies the file, wherever its directory has moved since.
 */
const hiddenName = (path: string): string | undefined => HIDDEN_NAME.exec(path)?.[1];

/** What the adapter needs from the binding besides the filesystem. */
export interface KernelLink {
  log: (message: string) => void;
  /** Who called the operation being dispatched (valid synchronously only). */
  caller: () => Caller;
  /** Drops the kernel's cached attributes of every name of an inode. */
  invalidate: (ino: number) => void;
}

/**
 * fuse-native callbacks, each translated to one Filesystem call. Results
 * (sync or async) and errors go back through `reply`, the only path to the
 * kernel.
 */
export function fuseOperations(fs: Filesystem, { log, caller, invalidate }: KernelLink): Record<string, (...args: any[]) => void> {
  /** Hidden name (without its directory) → inode number, while the file is open. */
  const hidden = new Map<string, number>();
  // getattr is the hottest call: no pattern match unless some file is hidden.
  const hiddenIno = (path: string) => {
    const name = hidden.size > 0 ? hiddenName(path) : undefined;
    return name === undefined ? undefined : hidden.get(name);
  };
  /**
   * libfuse gives each name of a hard link its own kernel inode, which
   * caches attributes: after a change that other names show (link count,
   * ctime, size, mode...), the kernel is told before the reply goes out.
   */
  const refresh = (...inos: (number | undefined)[]) => {
    for (const ino of inos) if (ino !== undefined) invalidate(ino);
  };
  /**
   * After a change to what path names: its attributes, read once (libfuse
   * asks for them right after each change that makes or alters a file, and
   * the reply carries them, so the binding answers that ask itself), and
   * the file's other names refreshed in the kernel if it has any.
   */
  const changed = async (change: Promise<unknown>, path: string): Promise<Attr | undefined> => {
    await change;
    // The change is done either way: without the attributes, libfuse asks for them itself.
    const attr = await fs.getattr(path).catch(() => undefined);
    if (attr && attr.nlink > 1 && (attr.mode & S_IFMT) !== S_IFDIR) refresh(attr.ino);
    return attr;
  };
  const attrOut = (a: Attr | undefined) => (a ? [stat(a)] : []);
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
      const ino = hiddenIno(path);
      return ino === undefined ? fs.getattr(path) : fs.inodeAttr(ino);
    }, (a) => [stat(a)]),
    // The kernel's stat of a node it knows: by inode, as a file that lost
    // its path (its directory was removed while it was open) has none.
    getattrByIno: (ino: number, path: string, cb: Callback) => reply('getattr', path, cb, () => fs.inodeAttr(ino), (a) => [stat(a)]),
    fgetattr: (path: string, fd: number, cb: Callback) => reply('fgetattr', path, cb, () => fs.fgetattr(fd), (a) => [stat(a)]),
    access: (path: string, _mode: number, cb: Callback) => reply('access', path, cb, () => fs.access(path)),
    statfs: (path: string, cb: Callback) => reply('statfs', path, cb, () => fs.statfs(), (s) => [s]),
    readdir: (path: string, fd: number, cookie: number, cb: Callback) =>
      reply('readdir', path, cb, () => fs.readdirAt(fd, cookie), (r) => [r.names, r.attrs.map(stat), r.cookies]),
    opendir: (path: string, _flags: number, cb: Callback) => reply('opendir', path, cb, () => fs.opendir(path), (fd) => [fd]),
    releasedir: (path: string, fd: number, cb: Callback) => reply('releasedir', path, cb, () => fs.releasedir(fd)),
    fsyncdir: (path: string, _datasync: number, _fd: number, cb: Callback) => reply('fsyncdir', path, cb, () => fs.sync()),
    mkdir: (path: string, mode: number, cb: Callback) => reply('mkdir', path, cb, () => changed(fs.mkdir(path, mode, caller()), path), attrOut),
    mknod: (path: string, mode: number, rdev: number, cb: Callback) => reply('mknod', path, cb, () => changed(fs.mknod(path, mode, rdev, caller()), path), attrOut),
    rmdir: (path: string, cb: Callback) => reply('rmdir', path, cb, () => fs.rmdir(path)),
    unlink: (path: string, cb: Callback) => reply('unlink', path, cb, async () => {
      const name = hidden.size > 0 ? hiddenName(path) : undefined;
      if (name !== undefined && hidden.delete(name)) return;
      const others = await fs.linkedIno(path);
      await fs.unlink(path);
      refresh(others);
    }),
    rename: (from: string, to: string, cb: Callback) => reply('rename', from, cb, async () => {
      const moved = await fs.linkedIno(from);
      // libfuse hides only open files; a user's own file of such a name is renamed as usual.
      if (!HIDDEN_NAME.test(to) || !(await fs.isOpen(from))) {
        const replaced = await fs.linkedIno(to);
        await fs.rename(from, to);
        return refresh(moved, replaced);
      }
      const { ino } = await fs.getattr(from);
      await fs.unlink(from);
      hidden.set(hiddenName(to)!, ino);
      refresh(moved);
    }),
    link: (from: string, to: string, cb: Callback) => reply('link', from, cb, () => changed(fs.link(from, to), to), attrOut),
    symlink: (target: string, path: string, cb: Callback) => reply('symlink', path, cb, () => changed(fs.symlink(target, path, caller()), path), attrOut),
    readlink: (path: string, cb: Callback) => reply('readlink', path, cb, () => fs.readlink(path), (t) => [t]),
    chmod: (path: string, mode: number, cb: Callback) => reply('chmod', path, cb, () => changed(fs.chmod(path, mode), path), attrOut),
    chown: (path: string, uid: number, gid: number, cb: Callback) => reply('chown', path, cb, () => changed(fs.chown(path, uid, gid), path), attrOut),
    utimens: (path: string, atime: Timespec, mtime: Timespec, cb: Callback) =>
      reply('utimens', path, cb, () => changed(fs.utimens(path, atime, mtime), path), attrOut),
    truncate: (path: string, size: number, cb: Callback) => reply('truncate', path, cb, () => changed(fs.truncate(path, size), path), attrOut),
    ftruncate: (path: string, fd: number, size: number, cb: Callback) =>
      reply('ftruncate', path, cb, () => fs.ftruncate(fd, size).then(() => (refresh(fs.linkedInoOfHandle(fd)), fs.fgetattr(fd))), attrOut),
    create: (path: string, mode: number, flags: number, cb: Callback) =>
      reply('create', path, cb, () => fs.create(path, mode, flags, caller()), (fd) => [fd, stat(fs.fgetattr(fd))]),
    open: (path: string, flags: number, cb: Callback) => reply('open', path, cb, () => fs.open(path, flags), (fd) => [fd]),
    read: (path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Callback) =>
      count('read', path, cb, () => fs.read(fd, buf, len, pos)),
    write: (path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Callback) =>
      count('write', path, cb, () => fs.write(fd, len === buf.length ? buf : buf.subarray(0, len), pos).then((n) => (refresh(fs.linkedInoOfHandle(fd)), n))),
    flush: (path: string, fd: number, cb: Callback) => reply('flush', path, cb, () => fs.flush(fd)),
    fsync: (path: string, _datasync: number, fd: number, cb: Callback) => reply('fsync', path, cb, () => fs.fsync(fd)),
    release: (path: string, fd: number, cb: Callback) => reply('release', path, cb, () => fs.release(fd)),
    setxattr: (path: string, name: string, value: Buffer, _position: number, flags: number, cb: Callback) =>
      reply('setxattr', path, cb, () => changed(fs.xattrs.set(path, name, value, flags), path)),
    getxattr: (path: string, name: string, _position: number, cb: Callback) => reply('getxattr', path, cb, () => fs.xattrs.get(path, name), (v) => [v]),
    listxattr: (path: string, cb: Callback) => reply('listxattr', path, cb, () => fs.xattrs.list(path, caller().uid), (names) => [names]),
    removexattr: (path: string, name: string, cb: Callback) => reply('removexattr', path, cb, () => changed(fs.xattrs.remove(path, name), path)),
  };
}
