import { FsError } from '../errors.js';
import { S_IFDIR, S_IFMT } from '../meta/inode.js';
import type { Attr } from '../vfs/attr.js';
import { UTIME_NOW, UTIME_OMIT, type Filesystem, type Place, type Timespec } from '../vfs/filesystem.js';
import { missingXattrError } from '../vfs/xattrs.js';
import { AttributeReaders } from './attribute-readers.js';
import { currentCaller, currentPid, PLUS_FIELDS, putAbsent, putAttr, putPlusEntry, type FuseBinding, type Req } from './binding.js';
import { errnoOf, toErrno } from './errno.js';
import { KernelNodes } from './nodes.js';

// struct fuse_lowlevel_ops' setattr: which fields to set.
const SET_MODE = 1 << 0;
const SET_UID = 1 << 1;
const SET_GID = 1 << 2;
const SET_SIZE = 1 << 3;
const SET_ATIME = 1 << 4;
const SET_MTIME = 1 << 5;
const SET_ATIME_NOW = 1 << 7;
const SET_MTIME_NOW = 1 << 8;
/**
 * The kernel never asks for more in one read (mount.ts sets max_read to
 * it, and native/veilfs-fuse.c asks for requests that large).
 */
export const MAX_READ = 1024 * 1024;
/** Most reads are no larger than this: page cache readahead and 128 KiB buffers. */
const COMMON_READ = 128 * 1024;
/** renameat2(2)'s flags; RENAME_WHITEOUT (for overlayfs) is refused with EINVAL, as the kernel does without RENAME2. */
const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;

/** What the adapter needs besides the filesystem. */
export interface KernelLink {
  binding: FuseBinding;
  log: (message: string) => void;
  /**
   * How long the kernel may keep names and attributes. Every change comes
   * in through the kernel, which updates its caches as it makes it; the few
   * the daemon makes on its own (atime on read) are pushed to it.
   */
  ttl: number;
  /** False once unmounted: a late answer would go to freed memory in libfuse. */
  live: () => boolean;
}

/** Reply buffers of one size, and how many of them are kept for reuse. */
interface ReadPool {
  size: number;
  kept: number;
  free: Buffer[];
}

const timeOf = (valid: number, given: number, now: number, sec: number, nsec: number): Timespec =>
  valid & now ? [0, UTIME_NOW] : valid & given ? [sec, nsec] : [0, UTIME_OMIT];

/**
 * The kernel's requests, each translated to Filesystem calls: node ids to
 * paths (KernelNodes), results to replies. Every request gets exactly one
 * reply, and errors become errno values in errno.ts only.
 */
export function kernelHandlers(fs: Filesystem, { binding: b, log, ttl, live }: KernelLink, onInit: (protocolMinor: number) => void) {
  const nodes = new KernelNodes(ttl);
  const attributeReaders = new AttributeReaders();
  const readsAttributes = () => attributeReaders.saw(currentPid());
  const kernelHasAttrs = (ino: number) => nodes.attrsFresh(ino);
  /** Walking into directories is what find -name does too; reaching anything else is reading attributes. */
  const sawAttributesRead = (pid: number, a: Attr) => {
    if ((a.mode & S_IFMT) !== S_IFDIR) attributeReaders.saw(pid);
  };
  /** The extended attribute names some file has (a superset). */
  const knownXattrs = new Set<string>();
  const setXattrNames = (names: string[]) => {
    knownXattrs.clear();
    for (const n of names) knownXattrs.add(n);
  };

  const fail = (req: Req, op: string, what: () => string) => (err: unknown) => {
    if (live()) b.replyErr(req, -toErrno(err, () => `${op} ${what()}`, log));
  };
  /**
   * Runs work and answers req with ok(result), or with the errno of what
   * it threw. Each ok() replies as its last step, so a throw in it means
   * no reply went out yet: the kernel is never left waiting.
   */
  function answer<T>(req: Req, op: string, what: () => string, work: () => T | Promise<T>, ok: (value: T) => void): void {
    const failed = fail(req, op, what);
    const succeed = (value: T) => {
      if (!live()) return;
      try {
        ok(value);
      } catch (err) {
        failed(err);
      }
    };
    try {
      const result = work();
      if (result instanceof Promise) result.then(succeed, failed);
      else succeed(result);
    } catch (err) {
      failed(err);
    }
  }
  const childOf = (parent: number, name: string): string => {
    const path = nodes.childPath(parent, name);
    if (path === undefined) throw new FsError('ENOENT');
    return path;
  };
  /**
   * Read buffers, reused once their reply has gone out (the reply copies
   * into the kernel): a 128 KiB allocation per read showed up as garbage.
   * A read that fails drops its buffer. Buffers for reads over
   * COMMON_READ are kept apart, and fewer of them.
   */
  const readPools: readonly ReadPool[] = [
    { size: COMMON_READ, kept: 16, free: [] },
    { size: MAX_READ, kept: 4, free: [] },
  ];
  /** The numbers of a listing reply, reused the same way (the reply copies them); grown, never shrunk. */
  let listing = new Float64Array(0);
  const listingNumbers = (count: number) => (listing.length >= count ? listing : (listing = new Float64Array(count)));

  /** How log lines name an inode: by its path while it has one. */
  const nameOf = (ino: number) => nodes.pathOf(ino) ?? `inode ${ino} (no name left)`;
  const done = (req: Req) => () => b.replyErr(req, 0);
  const replyAttr = (req: Req, a: Attr) => {
    putAttr(a);
    b.replyAttr(req, ttl);
  };
  /** reader: the pid that asked, when asking counts as reading attributes (lookup, getattr). */
  const attrReply = (req: Req, reader?: number) => (a: Attr) => {
    if (reader !== undefined) sawAttributesRead(reader, a);
    replyAttr(req, a);
  };
  /**
   * A name now stands for an inode (the reply hands it to the kernel), or
   * for nothing. The kernel keeps an absence as long as a name: the same
   * missing names are looked for again and again (a compiler's include
   * path, PATH, `mv` checking its target), and every name made later comes
   * in through the kernel, which then forgets the absence itself.
   */
  const entryReply = (req: Req, parent: number, name: string, reader?: number) => (a: Attr | undefined) => {
    if (!a) {
      putAbsent();
      return b.replyEntry(req, ttl);
    }
    if (reader !== undefined) sawAttributesRead(reader, a);
    nodes.remember(parent, name, a.ino);
    putAttr(a);
    b.replyEntry(req, ttl);
  };
  /** How log lines name parent/name. */
  const childName = (parent: number, name: string) => () => nodes.childPath(parent, name) ?? name;
  /** Makes something at parent/name and answers with what it made. */
  const make = (req: Req, op: string, parent: number, name: string, run: (place: Place) => Promise<void>) => {
    answer(req, op, childName(parent, name), async () => {
      await run({ dir: parent, name });
      nodes.attrsStale(parent);
      return fs.lookupIn(parent, name);
    }, entryReply(req, parent, name));
  };

  /** Removes parent/name; the kernel keeps the inode (by number) until it forgets it. */
  const remove = (req: Req, op: string, parent: number, name: string, run: (place: Place) => number | Promise<number>) => {
    answer(req, op, childName(parent, name), () => run({ dir: parent, name }), (ino) => {
      nodes.removed(ino, parent, name);
      nodes.attrsStale(parent);
      b.replyErr(req, 0);
    });
  };

  return {
    nodes,
    setXattrNames,
    handlers: {
      init: onInit,
      lookup: (req: Req, parent: number, name: string) =>
        answer(req, 'lookup', childName(parent, name), () => fs.lookupIn(parent, name), entryReply(req, parent, name, currentPid())),
      forget: (ino: number, count: number) => {
        if (nodes.forget(ino, count)) fs.forgotten(ino);
      },
      getattr: (req: Req, ino: number) => answer(req, 'getattr', () => nameOf(ino), () => fs.inodeAttr(ino), attrReply(req, currentPid())),
      setattr: (req: Req, ino: number, fh: number, valid: number, mode: number, uid: number, gid: number, size: number,
        atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number) => {
        answer(req, 'setattr', () => nameOf(ino), async () => {
          if (valid & SET_MODE) await fs.chmod(ino, mode);
          if (valid & (SET_UID | SET_GID)) await fs.chown(ino, valid & SET_UID ? uid : -1, valid & SET_GID ? gid : -1);
          if (valid & SET_SIZE) await (fh >= 0 ? fs.ftruncate(fh, size) : fs.truncate(ino, size));
          if (valid & (SET_ATIME | SET_MTIME | SET_ATIME_NOW | SET_MTIME_NOW)) {
            await fs.utimens(ino, timeOf(valid, SET_ATIME, SET_ATIME_NOW, atimeSec, atimeNsec), timeOf(valid, SET_MTIME, SET_MTIME_NOW, mtimeSec, mtimeNsec));
          }
          return fh >= 0 ? fs.fgetattr(fh) : fs.inodeAttr(ino);
        }, (a) => {
          replyAttr(req, a);
          fs.noteAhead(ino);
        });
      },
      readlink: (req: Req, ino: number) => {
        nodes.attrsStale(ino);
        answer(req, 'readlink', () => nameOf(ino), () => fs.readlink(ino), (t) => b.replyReadlink(req, t));
      },
      mknod: (req: Req, parent: number, name: string, mode: number, rdev: number) => {
        const caller = currentCaller();
        make(req, 'mknod', parent, name, (place) => fs.mknod(place, mode, rdev, caller));
      },
      mkdir: (req: Req, parent: number, name: string, mode: number) => {
        const caller = currentCaller();
        make(req, 'mkdir', parent, name, (place) => fs.mkdir(place, mode, caller));
      },
      symlink: (req: Req, target: string, parent: number, name: string) => {
        const caller = currentCaller();
        make(req, 'symlink', parent, name, (place) => fs.symlink(target, place, caller));
      },
      link: (req: Req, ino: number, parent: number, name: string) => make(req, 'link', parent, name, (place) => fs.link(ino, place)),
      unlink: (req: Req, parent: number, name: string) => remove(req, 'unlink', parent, name, (place) => fs.unlink(place)),
      rmdir: (req: Req, parent: number, name: string) => remove(req, 'rmdir', parent, name, (place) => fs.rmdir(place)),
      // flags: renameat2's, when the kernel sent RENAME2 (native/veilfs-fuse.c).
      rename: (req: Req, parent: number, name: string, newParent: number, newName: string, flags = 0) => {
        if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return b.replyErr(req, errnoOf('EINVAL'));
        let path = '';
        answer(req, 'rename', () => path, () => {
          path = childOf(parent, name);
          return fs.rename(path, childOf(newParent, newName), {
            noReplace: (flags & RENAME_NOREPLACE) !== 0,
            exchange: (flags & RENAME_EXCHANGE) !== 0,
          });
        }, ({ moved, replaced, exchanged }) => {
          nodes.attrsStale(parent);
          nodes.attrsStale(newParent);
          if (replaced !== undefined) nodes.removed(replaced, newParent, newName);
          nodes.renamed(moved, parent, name, newParent, newName);
          if (exchanged !== undefined && exchanged !== moved) nodes.renamed(exchanged, newParent, newName, parent, name);
          b.replyErr(req, 0);
        });
      },
      create: (req: Req, parent: number, name: string, mode: number, flags: number) => {
        const caller = currentCaller();
        answer(req, 'create', childName(parent, name), () => fs.create({ dir: parent, name }, mode, flags, caller), (fd) => {
          nodes.attrsStale(parent);
          const a = fs.fgetattr(fd);
          nodes.remember(parent, name, a.ino);
          putAttr(a);
          b.replyCreate(req, ttl, fd);
        });
      },
      // Opening (O_TRUNC), reading (atime), writing and changing extended
      // attributes (ctime) make the kernel drop some of its attributes.
      open: (req: Req, ino: number, flags: number) => {
        nodes.attrsStale(ino);
        answer(req, 'open', () => nameOf(ino), () => fs.openIno(ino, flags), (fd) => b.replyOpen(req, fd, false, !fs.flushes(fd)));
      },
      read: (req: Req, ino: number, fh: number, size: number, offset: number) => {
        nodes.attrsStale(ino);
        const pool = readPools[size > COMMON_READ ? 1 : 0];
        const buf = pool.free.pop() ?? Buffer.allocUnsafe(pool.size);
        const keep = () => void (pool.free.length < pool.kept && pool.free.push(buf));
        answer(req, 'read', () => nameOf(ino), () => fs.read(fh, buf, Math.min(size, buf.length), offset), (n) => {
          b.replyData(req, buf, n);
          keep();
        });
      },
      write: (req: Req, ino: number, fh: number, data: Buffer, offset: number) => {
        nodes.attrsStale(ino);
        answer(req, 'write', () => nameOf(ino), () => fs.write(fh, data, offset), (n) => b.replyWrite(req, n));
      },
      flush: (req: Req, ino: number, fh: number) => answer(req, 'flush', () => nameOf(ino), () => fs.flush(fh), done(req)),
      release: (req: Req, ino: number, fh: number) => answer(req, 'release', () => nameOf(ino), () => fs.release(fh), done(req)),
      fsync: (req: Req, ino: number, fh: number) => answer(req, 'fsync', () => nameOf(ino), () => fs.fsync(fh), done(req)),
      opendir: (req: Req, ino: number) =>
        answer(req, 'opendir', () => nameOf(ino), () => fs.opendirIno(ino), (fd) => b.replyOpen(req, fd, false, false)),
      // Listing a directory is reading it: the kernel drops its atime.
      readdir: (req: Req, ino: number, fh: number, size: number, offset: number) => {
        nodes.attrsStale(ino);
        answer(req, 'readdir', () => nameOf(ino), () => fs.readdirAt(fh, offset), (piece) => {
          const meta = listingNumbers(piece.names.length * 3);
          for (let i = 0; i < piece.names.length; i++) {
            meta[i * 3] = piece.inos[i];
            meta[i * 3 + 1] = piece.modes[i];
            meta[i * 3 + 2] = piece.cookies[i];
          }
          b.replyDir(req, size, piece.names.join('/'), meta);
        });
      },
      // A listing that carries each entry's attributes: what `ls -l` and
      // `find` would otherwise ask for with a lookup per entry. Only for a
      // caller that reads attributes (AttributeReaders says why), and only
      // those the kernel may not have (KernelNodes.attrsFresh).
      readdirplus: (req: Req, ino: number, fh: number, size: number, offset: number) => {
        nodes.attrsStale(ino);
        const attrs = attributeReaders.has(currentPid());
        answer(req, 'readdir', () => nameOf(ino), () => fs.readdirAt(fh, offset, { bytes: size, attrs, known: kernelHasAttrs }), (piece) => {
          const meta = listingNumbers(piece.names.length * PLUS_FIELDS);
          for (let i = 0; i < piece.names.length; i++) {
            putPlusEntry(meta, i * PLUS_FIELDS, piece.inos[i], piece.modes[i], piece.cookies[i], piece.attrs[i]);
          }
          const sent = b.replyDirPlus(req, size, ttl, piece.names.join('/'), meta);
          // After the reply: the kernel's forgets of these come as later requests.
          for (let i = 0; i < sent; i++) {
            if (piece.attrs[i]) nodes.remember(ino, piece.names[i], piece.inos[i]);
          }
        });
      },
      releasedir: (req: Req, ino: number, fh: number) => answer(req, 'releasedir', () => nameOf(ino), () => fs.releasedir(fh), done(req)),
      fsyncdir: (req: Req) => answer(req, 'fsyncdir', () => 'directory', () => fs.sync(), done(req)),
      statfs: (req: Req) => answer(req, 'statfs', () => '/', () => fs.statfs(), (s) =>
        b.replyStatfs(req, s.bsize, s.frsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.favail, s.namemax)),
      access: (req: Req, ino: number, mask: number) => {
        const caller = currentCaller();
        answer(req, 'access', () => nameOf(ino), () => fs.inodeAccess(ino, mask, caller), done(req));
      },
      setxattr: (req: Req, ino: number, name: string, value: Buffer, flags: number) => {
        nodes.attrsStale(ino);
        answer(req, 'setxattr', () => nameOf(ino), () => fs.xattrs.set(ino, name, value, flags), done(req));
      },
      getxattr: (req: Req, ino: number, name: string, size: number) => {
        readsAttributes();
        // The kernel asks for security.* and ACL names on every write and
        // every ls -l; names no file has are answered without a lookup.
        if (!knownXattrs.has(name)) return b.replyErr(req, errnoOf(missingXattrError(name, false)));
        answer(req, 'getxattr', () => nameOf(ino), () => fs.xattrs.get(ino, name), (v) => xattrReply(req, v, size));
      },
      listxattr: (req: Req, ino: number, size: number) => {
        readsAttributes();
        const caller = currentCaller();
        answer(req, 'listxattr', () => nameOf(ino), () => fs.xattrs.list(ino, caller.uid),
          (names) => xattrReply(req, Buffer.from(names.map((n) => `${n}\0`).join('')), size));
      },
      removexattr: (req: Req, ino: number, name: string) => {
        nodes.attrsStale(ino);
        answer(req, 'removexattr', () => nameOf(ino), () => fs.xattrs.remove(ino, name), done(req));
      },
    },
  };

  /** getxattr/listxattr: size 0 asks how big the value is; a smaller buffer than the value is ERANGE. */
  function xattrReply(req: Req, value: Buffer, size: number): void {
    if (size === 0) b.replyXattrSize(req, value.length);
    else if (value.length > size) b.replyErr(req, errnoOf('ERANGE'));
    else b.replyData(req, value, value.length);
  }
}
