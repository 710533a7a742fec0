import { FsError } from '../errors.js';
import type { BlockCache } from '../cache/block-cache.js';
import type { Readahead } from '../cache/readahead.js';
import { Inode, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, S_ISGID } from '../meta/inode.js';
import { fromTimespec, now, type Time } from '../meta/time.js';
import type { Tree } from '../meta/tree.js';
import { NOT_RESIDENT } from '../meta/pagetree.js';
import { checkAccess } from './access.js';
import { attrOf, type Attr } from './attr.js';
import { checkName, isWithin, PATH_MAX, splitPath, type Place, type Target } from './paths.js';
import { Xattrs } from './xattrs.js';
import { DirStreams, type DirPiece, type PlusListing } from './dir-streams.js';
import { BackgroundSync } from './background-sync.js';

export type { Place, Target } from './paths.js';

export const O_ACCMODE = 0o3;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;

/** Largest file offset we accept: numbers stay exact far beyond this. */
const MAX_FILE_SIZE = 2 ** 50;
/** utimensat(2)'s special tv_nsec values (Linux ABI). */
export const UTIME_NOW = (1 << 30) - 1;
export const UTIME_OMIT = (1 << 30) - 2;

const DAY_MS = 86_400_000;

/**
 * relatime, Linux's default: a read moves atime when atime is not newer
 * than mtime or ctime, or a day old; so "read since written" stays
 * visible without a metadata write for every read.
 */
function needsAccessTime(node: Inode): boolean {
  const notAfter = (a: Time, b: Time) => a.ms < b.ms || (a.ms === b.ms && a.ns <= b.ns);
  return notAfter(node.atime, node.mtime) || notAfter(node.atime, node.ctime) || Date.now() - node.atime.ms >= DAY_MS;
}

/** Who asks: new files, directories, links and nodes belong to the caller. */
export interface Caller {
  uid: number;
  gid: number;
}

/** A time as utimensat(2) takes it: [seconds, nanoseconds or UTIME_NOW / UTIME_OMIT]. */
export type Timespec = [number, number];

/** A name by path: its directory, the name, and every name of the path. */
interface NamePlace {
  dir: Inode;
  name: string;
  names: string[];
}

/** renameat2(2)'s flags (Filesystem.rename). */
export interface RenameFlags {
  noReplace?: boolean;
  exchange?: boolean;
}

/** What a rename moved, replaced, or swapped (Filesystem.rename). */
export interface Renamed {
  moved: number;
  replaced?: number;
  exchanged?: number;
}

interface Child {
  dir: Inode;
  name: string;
  node: Inode | undefined;
}

interface RenameOperands {
  src: NamePlace;
  dst: NamePlace;
  node: Inode;
  target: Inode | undefined;
  targetNotEmpty: boolean;
}

/** A path's names, which must name something below the root. */
function namesBelowRoot(path: string): string[] {
  const names = splitPath(path);
  if (names.length === 0) throw new FsError('EBUSY', 'the root directory');
  return names;
}

function namePlace(dir: Inode, names: string[]): NamePlace {
  if (!dir.isDir) throw new FsError('ENOTDIR');
  return { dir, name: names[names.length - 1], names };
}

/** A directory to make or remove a name in: it must still be one, and still linked. */
function linkedPlace(dir: Inode | undefined, name: string): { dir: Inode; name: string } {
  if (!dir) throw new FsError('ENOENT');
  if (!dir.isDir) throw new FsError('ENOTDIR');
  if (dir.nlink === 0) throw new FsError('ENOENT', 'the directory was removed');
  return { dir, name };
}

function missingInode(name: string, ino: number): never {
  throw new FsError('EIO', `directory entry "${name}" names inode ${ino}, which is missing (run "veilfs fsck")`);
}

interface Handle {
  node: Inode;
  flags: number;
  readahead: Readahead;
}

export interface FsOptions {
  readOnly?: boolean;
  uid?: number;
  gid?: number;
  log?: (message: string) => void;
  capacity?: () => Promise<{ total: number; free: number } | undefined>;
}

export interface StatFs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  namemax: number;
}

/**
 * POSIX semantics over the in-memory tree and the block cache. Path based
 * (changes), with lookups and opens by inode number for the kernel, which
 * holds inodes; errors are FsError.
 */
export class Filesystem {
  private readonly handles = new Map<number, Handle>();
  private readonly openCount = new Map<number, number>();
  private nextFd = 1;
  private readonly readOnly: boolean;
  private readonly owner: Caller;
  readonly xattrs: Xattrs;
  private readonly dirs: DirStreams;
  /** Told when an inode's attributes change on their own (atime on read), for caches above (the kernel's). */
  onAttrChange?: (ino: number) => void;
  /**
   * Whether the kernel holds an inode by number (looked up, not forgotten).
   * A file whose last name goes while the kernel holds it stays until
   * forgotten(): the kernel opens what its lookup found by number, so an
   * open racing the unlink or rename that took the name still opens it,
   * as on a local disk.
   */
  heldByKernel?: (ino: number) => boolean;
  /** Files with no name left that the kernel still holds. */
  private readonly keptForKernel = new Map<number, Inode>();
  private readonly log: (message: string) => void;
  private backgroundSync?: BackgroundSync;

  constructor(private readonly tree: Tree, private readonly cache: BlockCache, private readonly opts: FsOptions = {}) {
    this.readOnly = !!opts.readOnly;
    this.owner = { uid: opts.uid ?? process.getuid?.() ?? 0, gid: opts.gid ?? process.getgid?.() ?? 0 };
    this.log = opts.log ?? (() => {});
    this.xattrs = new Xattrs((path) => this.lookup(path), () => this.writable(), (node) => this.touch(node, now(), false), tree);
    this.dirs = new DirStreams(tree, (node) => this.attr(node));
    tree.inUse = (node) => (this.openCount.get(node.ino) ?? 0) > 0 || (node.isFile && cache.hasDirty(node)) || this.keptForKernel.has(node.ino);
  }

  // ---- lookup ----

  /** @internal the inode a path or an inode number names (for the operation families split into their own files). */
  async lookup(target: Target): Promise<Inode> {
    if (typeof target === 'number') return this.inode(target);
    let node = this.tree.root;
    for (const name of splitPath(target)) node = await this.child(node, name);
    return node;
  }

  private async child(dir: Inode, name: string): Promise<Inode> {
    if (!dir.isDir) throw new FsError('ENOTDIR');
    const node = await this.entry(dir, name);
    if (!node) throw new FsError('ENOENT');
    return node;
  }

  /** The inode a directory entry names, or undefined if there is no such entry. */
  private async entry(dir: Inode, name: string): Promise<Inode | undefined> {
    const ino = await this.tree.lookup(dir.ino, name);
    if (ino === undefined) return undefined;
    return (await this.tree.get(ino)) ?? missingInode(name, ino);
  }

  /** As entry(), when that needs nothing from the store; else NOT_RESIDENT. */
  private entryInMemory(dir: Inode, name: string): Inode | undefined | typeof NOT_RESIDENT {
    const ino = this.tree.lookupInMemory(dir.ino, name);
    if (ino === undefined || ino === NOT_RESIDENT) return ino;
    return this.tree.getInMemory(ino) ?? missingInode(name, ino);
  }

  /** The directory and name a place names; a directory given by number must still be one, and still linked. */
  private async placeOf(place: Place): Promise<{ dir: Inode; name: string }> {
    if (typeof place === 'string') return this.parentOf(place);
    return linkedPlace(await this.tree.get(place.dir), place.name);
  }

  /** As placeOf(), when that needs nothing from the store; else NOT_RESIDENT. */
  private placeInMemory(place: Place): { dir: Inode; name: string } | typeof NOT_RESIDENT {
    if (typeof place === 'string') return this.parentInMemory(place);
    const dir = this.tree.getInMemory(place.dir);
    return dir === NOT_RESIDENT ? dir : linkedPlace(dir, place.name);
  }

  /** A place and the inode its name stands for now (undefined: none). */
  private async entryAt(place: Place): Promise<Child> {
    const { dir, name } = await this.placeOf(place);
    return { dir, name, node: await this.entry(dir, name) };
  }

  /** As entryAt(), when that needs nothing from the store; else NOT_RESIDENT. */
  private entryAtInMemory(place: Place): Child | typeof NOT_RESIDENT {
    const at = this.placeInMemory(place);
    if (at === NOT_RESIDENT) return at;
    const node = this.entryInMemory(at.dir, at.name);
    return node === NOT_RESIDENT ? node : { dir: at.dir, name: at.name, node };
  }

  private async parentOf(path: string): Promise<NamePlace> {
    const names = namesBelowRoot(path);
    let { dir, walked } = this.walkInMemory(names);
    for (; walked < names.length - 1; walked++) dir = await this.child(dir, names[walked]);
    return namePlace(dir, names);
  }

  /** As parentOf(), when that needs nothing from the store; else NOT_RESIDENT. */
  private parentInMemory(path: string): NamePlace | typeof NOT_RESIDENT {
    const names = namesBelowRoot(path);
    const { dir, walked } = this.walkInMemory(names);
    return walked < names.length - 1 ? NOT_RESIDENT : namePlace(dir, names);
  }

  /** Walks the directories a name's path goes through as far as memory has them: where it got, and how many names that took. */
  private walkInMemory(names: string[]): { dir: Inode; walked: number } {
    let dir = this.tree.root;
    let walked = 0;
    for (; walked < names.length - 1; walked++) {
      if (!dir.isDir) throw new FsError('ENOTDIR');
      const next = this.entryInMemory(dir, names[walked]);
      if (next === NOT_RESIDENT) break;
      if (!next) throw new FsError('ENOENT');
      dir = next;
    }
    return { dir, walked };
  }

  private handle(fd: number): Handle {
    const h = this.handles.get(fd);
    if (!h) throw new FsError('EBADF');
    return h;
  }

  private writable(): void {
    if (this.readOnly) throw new FsError('EROFS');
  }

  private attr(node: Inode): Attr {
    return attrOf(node, this.cache.blockSize, node.isFile ? this.cache.unstoredBlocks(node) : 0);
  }

  /** A change of content moves mtime and ctime; a change of attributes ctime only. */
  private touch(node: Inode, time: Time = now(), content = true): void {
    if (content) node.mtime = time;
    node.ctime = time;
    this.tree.changed(node);
  }

  // ---- attributes ----

  async getattr(path: string): Promise<Attr> {
    return this.attr(await this.lookup(path));
  }

  /**
   * The kernel's lookup of a name in a directory it holds by number: its
   * attributes, or undefined when there is no such entry (an answer, not an
   * error: every create asks it first). When the directory, the entry and
   * the inode are all in memory the answer comes at once, not as a
   * promise: a lookup is most of what a shell does (PATH, includes, `mv`
   * checking its target), and on a machine idle a moment each step
   * through the event loop costs tens of microseconds.
   */
  lookupIn(dirIno: number, name: string): Attr | undefined | Promise<Attr | undefined> {
    checkName(name);
    const place = { dir: dirIno, name };
    const found = this.entryAtInMemory(place);
    return found === NOT_RESIDENT ? this.lookupStored(place) : found.node && this.attr(found.node);
  }

  private async lookupStored(place: Place): Promise<Attr | undefined> {
    const { node } = await this.entryAt(place);
    return node && this.attr(node);
  }

  private async inode(ino: number): Promise<Inode> {
    const node = await this.tree.get(ino);
    if (!node) throw new FsError('ENOENT');
    return node;
  }

  /** Attributes of an inode that may have no name left (open and unlinked). */
  async inodeAttr(ino: number): Promise<Attr> {
    return this.attr(await this.inode(ino));
  }

  fgetattr(fd: number): Attr {
    return this.attr(this.handle(fd).node);
  }

  /** access(2) of an inode for a caller; EACCES when its mode refuses (access.ts says how). */
  async inodeAccess(ino: number, mask: number, caller: Caller): Promise<void> {
    checkAccess(await this.inode(ino), mask, caller);
  }

  async chmod(target: Target, mode: number): Promise<void> {
    this.writable();
    const node = await this.lookup(target);
    node.mode = (node.mode & S_IFMT) | (mode & 0o7777);
    this.touch(node, now(), false);
  }

  async chown(target: Target, uid: number, gid: number): Promise<void> {
    this.writable();
    const node = await this.lookup(target);
    // (uid_t)-1 means "leave unchanged".
    if (uid !== -1 && uid !== 0xffffffff) node.uid = uid;
    if (gid !== -1 && gid !== 0xffffffff) node.gid = gid;
    this.touch(node, now(), false);
  }

  /** utimensat(2): each time given, UTIME_NOW or UTIME_OMIT (permission checks are the kernel's). */
  async utimens(target: Target, atime: Timespec, mtime: Timespec): Promise<void> {
    this.writable();
    const node = await this.lookup(target);
    if (atime[1] === UTIME_OMIT && mtime[1] === UTIME_OMIT) return;
    const time = now();
    const pick = ([sec, nsec]: Timespec, old: Time) => (nsec === UTIME_OMIT ? old : nsec === UTIME_NOW ? time : fromTimespec(sec, nsec));
    node.atime = pick(atime, node.atime);
    node.mtime = pick(mtime, node.mtime);
    node.ctime = time;
    this.tree.changed(node);
  }

  async statfs(): Promise<StatFs> {
    const bsize = 4096;
    const cap = (await this.opts.capacity?.()) ?? { total: 2 ** 50, free: 2 ** 50 };
    const files = 2 ** 32 - 1;
    return {
      bsize, frsize: bsize, blocks: Math.floor(cap.total / bsize), bfree: Math.floor(cap.free / bsize), bavail: Math.floor(cap.free / bsize),
      files, ffree: files - this.tree.size, favail: files - this.tree.size, namemax: 255,
    };
  }

  // ---- directories ----

  /** A whole listing at once (tests, tools): the pieces of one stream, joined. */
  async readdir(path: string): Promise<{ names: string[] }> {
    const fd = await this.opendir(path);
    try {
      const names: string[] = [];
      for (let cookie = 0; ;) {
        const piece = await this.readdirAt(fd, cookie);
        if (piece.names.length === 0) return { names };
        names.push(...piece.names);
        cookie = piece.cookies[piece.cookies.length - 1];
      }
    } finally {
      this.releasedir(fd);
    }
  }

  /** opendir(3): a listing read a piece at a time with readdirAt. */
  async opendir(path: string): Promise<number> {
    return this.dirs.open(await this.lookup(path));
  }

  async opendirIno(ino: number): Promise<number> {
    return this.dirs.open(await this.inode(ino));
  }

  /**
   * The entries after the one `cookie` came with (0: from the start), each
   * with its own cookie; with plus, as many as fill the kernel's
   * READDIRPLUS buffer, with all their attributes if plus.attrs (but for
   * the inodes plus.known names).
   */
  readdirAt(fd: number, cookie: number, plus?: PlusListing): Promise<DirPiece> {
    return this.dirs.read(fd, cookie, plus);
  }

  releasedir(fd: number): void {
    this.dirs.release(fd);
  }

  private addEntry(dir: Inode, name: string, node: Inode, time: Time): void {
    this.tree.setEntry(dir, name, node);
    if (node.isDir) dir.nlink++;
    this.touch(dir, time);
  }

  /**
   * A new inode owned by the caller, as on a kernel filesystem: in a
   * set-group-ID directory it takes the directory's group, and a new
   * directory there inherits the set-group-ID bit. (The kernel has already
   * applied the umask and stripped set-group-ID where the caller may not
   * set it.)
   */
  private async makeNode(place: Place, mode: number, caller: Caller = this.owner): Promise<Inode> {
    this.writable();
    const { dir, name } = await this.placeOf(place);
    checkName(name);
    if ((await this.tree.lookup(dir.ino, name)) !== undefined) throw new FsError('EEXIST');
    let gid = caller.gid;
    if (dir.mode & S_ISGID) {
      gid = dir.gid;
      if ((mode & S_IFMT) === S_IFDIR) mode |= S_ISGID;
    }
    const node = this.tree.create(mode, caller.uid, gid);
    this.addEntry(dir, name, node, node.ctime);
    return node;
  }

  async mkdir(place: Place, mode: number, caller?: Caller): Promise<void> {
    await this.makeNode(place, S_IFDIR | (mode & 0o7777), caller);
  }

  /** FIFOs, sockets, character and block devices (and regular files): the kernel does their I/O. */
  async mknod(place: Place, mode: number, rdev: number, caller?: Caller): Promise<void> {
    const type = mode & S_IFMT;
    if (![S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK, S_IFREG].includes(type)) throw new FsError('EINVAL', `mknod of type ${type.toString(8)}`);
    const node = await this.makeNode(place, type | (mode & 0o7777), caller);
    if (type === S_IFCHR || type === S_IFBLK) node.rdev = rdev;
  }

  /** Returns the inode number the name had. */
  async rmdir(place: Place): Promise<number> {
    this.writable();
    const { dir, name } = await this.placeOf(place);
    const node = await this.entry(dir, name);
    if (!node) throw new FsError('ENOENT');
    if (!node.isDir) throw new FsError('ENOTDIR');
    if (await this.tree.hasEntries(node.ino)) throw new FsError('ENOTEMPTY');
    // The checks above waited: the entry may have changed meanwhile.
    if ((await this.tree.lookup(dir.ino, name)) !== node.ino) throw new FsError('ENOENT');
    this.tree.setEntry(dir, name, undefined);
    dir.nlink--;
    this.touch(dir);
    node.nlink = 0;
    this.tree.destroy(node);
    return node.ino;
  }

  async symlink(target: string, place: Place, caller?: Caller): Promise<void> {
    if (Buffer.byteLength(target) >= PATH_MAX) throw new FsError('ENAMETOOLONG');
    const node = await this.makeNode(place, S_IFLNK | 0o777, caller);
    node.target = target;
    node.size = Buffer.byteLength(target);
  }

  async readlink(target: Target): Promise<string> {
    const node = await this.lookup(target);
    if (!node.isSymlink) throw new FsError('EINVAL');
    return node.target;
  }

  async link(existing: Target, place: Place): Promise<void> {
    this.writable();
    const node = await this.lookup(existing);
    if (node.isDir) throw new FsError('EPERM', 'hard links to directories are not allowed');
    const { dir, name } = await this.placeOf(place);
    checkName(name);
    if ((await this.tree.lookup(dir.ino, name)) !== undefined) throw new FsError('EEXIST');
    node.nlink++;
    this.touch(node, now(), false);
    this.addEntry(dir, name, node, node.ctime);
  }

  /**
   * Returns the inode number the name had. When the directory, the entry
   * and the inode are in memory the name goes at once, not as a promise
   * (lookupIn says why): `rm -rf` is an unlink per file.
   */
  unlink(place: Place): number | Promise<number> {
    this.writable();
    const found = this.entryAtInMemory(place);
    return found === NOT_RESIDENT ? this.unlinkStored(place) : this.unlinkFile(found);
  }

  private async unlinkStored(place: Place): Promise<number> {
    return this.unlinkFile(await this.entryAt(place));
  }

  private unlinkFile({ dir, name, node }: Child): number {
    if (!node) throw new FsError('ENOENT');
    if (node.isDir) throw new FsError('EISDIR');
    this.tree.setEntry(dir, name, undefined);
    const time = now();
    this.touch(dir, time);
    this.dropLink(node, time);
    return node.ino;
  }

  private dropLink(node: Inode, time: Time): void {
    node.nlink--;
    node.ctime = time;
    this.tree.changed(node);
    this.destroyIfUnused(node);
  }

  private destroyIfUnused(node: Inode): void {
    if (node.nlink > 0 || (this.openCount.get(node.ino) ?? 0) > 0) return;
    if (this.heldByKernel?.(node.ino)) {
      this.keptForKernel.set(node.ino, node);
      return;
    }
    this.destroy(node);
  }

  private destroy(node: Inode): void {
    this.keptForKernel.delete(node.ino);
    if (node.isFile) this.cache.discard(node);
    this.tree.destroy(node);
  }

  /** The kernel let go of an inode (heldByKernel is false for it now). */
  forgotten(ino: number): void {
    const node = this.keptForKernel.get(ino);
    if (node) this.destroyIfUnused(node);
  }

  /**
   * Returns the inode number of what moved, and of what it replaced if
   * anything. renameat2(2)'s flags: noReplace fails with EEXIST rather than
   * replace; exchange swaps the two names, both of which must exist
   * (`exchanged`: the inode that went the other way). Either is decided in
   * the same step as the move. When everything it looks at is in memory the
   * rename is made at once, not as a promise (lookupIn says why).
   */
  rename(from: string, to: string, flags: RenameFlags = {}): Renamed | Promise<Renamed> {
    this.writable();
    if (flags.noReplace && flags.exchange) throw new FsError('EINVAL');
    const operands = this.renameOperandsInMemory(from, to);
    return operands === NOT_RESIDENT ? this.renameStored(from, to, flags) : this.moveName(operands, flags);
  }

  /** The names and inodes a rename works on, when memory has all of them; else NOT_RESIDENT. */
  private renameOperandsInMemory(from: string, to: string): RenameOperands | typeof NOT_RESIDENT {
    const src = this.parentInMemory(from);
    if (src === NOT_RESIDENT) return src;
    const dst = this.parentInMemory(to);
    if (dst === NOT_RESIDENT) return dst;
    checkName(dst.name);
    const node = this.entryInMemory(src.dir, src.name);
    if (node === NOT_RESIDENT) return node;
    if (!node) throw new FsError('ENOENT');
    const target = this.entryInMemory(dst.dir, dst.name);
    // Whether a directory has entries can take a scan of the store: that goes the stored way.
    if (target === NOT_RESIDENT || target?.isDir) return NOT_RESIDENT;
    return { src, dst, node, target, targetNotEmpty: false };
  }

  private async renameStored(from: string, to: string, flags: RenameFlags): Promise<Renamed> {
    const src = await this.parentOf(from);
    const dst = await this.parentOf(to);
    checkName(dst.name);
    const node = await this.entry(src.dir, src.name);
    if (!node) throw new FsError('ENOENT');
    const target = await this.entry(dst.dir, dst.name);
    const targetNotEmpty = target?.isDir ? await this.tree.hasEntries(target.ino) : false;
    // The lookups above waited: what they found must still hold when the change is made, all at once.
    if ((await this.tree.lookup(src.dir.ino, src.name)) !== node.ino || (await this.tree.lookup(dst.dir.ino, dst.name)) !== target?.ino) {
      throw new FsError('EBUSY', 'the directory changed during rename');
    }
    return this.moveName({ src, dst, node, target, targetNotEmpty }, flags);
  }

  private moveName({ src, dst, node, target, targetNotEmpty }: RenameOperands, { noReplace = false, exchange = false }: RenameFlags): Renamed {
    const ino = node.ino;
    if (node.isDir && isWithin(dst.names, src.names) && dst.names.length > src.names.length) {
      throw new FsError('EINVAL', 'cannot move a directory into itself');
    }
    const time = now();
    if (exchange) return this.exchange(src, dst, node, target, time);
    if (target) {
      if (noReplace) throw new FsError('EEXIST');
      if (target.ino === ino) return { moved: ino };
      if (node.isDir) {
        if (!target.isDir) throw new FsError('ENOTDIR');
        if (targetNotEmpty) throw new FsError('ENOTEMPTY');
      } else if (target.isDir) {
        throw new FsError('EISDIR');
      }
      this.tree.setEntry(dst.dir, dst.name, undefined);
      if (target.isDir) {
        dst.dir.nlink--;
        target.nlink = 0;
        this.tree.destroy(target);
      } else {
        this.dropLink(target, time);
      }
    }
    this.tree.setEntry(src.dir, src.name, undefined);
    if (node.isDir) src.dir.nlink--;
    this.touch(src.dir, time);
    this.addEntry(dst.dir, dst.name, node, time);
    this.touch(node, time, false);
    return { moved: ino, replaced: target?.ino };
  }

  private exchange(src: NamePlace, dst: NamePlace, node: Inode, target: Inode | undefined, time: Time): { moved: number; exchanged: number } {
    if (!target) throw new FsError('ENOENT');
    if (target.ino === node.ino) return { moved: node.ino, exchanged: node.ino };
    if (target.isDir && isWithin(src.names, dst.names) && src.names.length > dst.names.length) {
      throw new FsError('EINVAL', 'cannot move a directory into itself');
    }
    this.tree.setEntry(src.dir, src.name, target);
    this.tree.setEntry(dst.dir, dst.name, node);
    // A directory that changes parent takes its ".." link along.
    if (src.dir.ino !== dst.dir.ino && node.isDir !== target.isDir) {
      const [from, to] = node.isDir ? [src.dir, dst.dir] : [dst.dir, src.dir];
      from.nlink--;
      to.nlink++;
    }
    this.touch(src.dir, time);
    this.touch(dst.dir, time);
    this.touch(node, time, false);
    this.touch(target, time, false);
    return { moved: node.ino, exchanged: target.ino };
  }

  // ---- files ----

  private newHandle(node: Inode, flags: number): number {
    const fd = this.nextFd++;
    this.handles.set(fd, { node, flags, readahead: this.cache.newReadahead() });
    this.openCount.set(node.ino, (this.openCount.get(node.ino) ?? 0) + 1);
    return fd;
  }

  async create(place: Place, mode: number, flags = O_RDWR, caller?: Caller): Promise<number> {
    const node = await this.makeNode(place, S_IFREG | (mode & 0o7777), caller);
    return this.newHandle(node, flags);
  }

  async open(path: string, flags: number): Promise<number> {
    return this.openNode(await this.lookup(path), flags);
  }

  /**
   * open(2) of an inode the kernel reached earlier: by number, as its name
   * may have moved or gone since (an open racing a rename).
   */
  async openIno(ino: number, flags: number): Promise<number> {
    return this.openNode(await this.inode(ino), flags);
  }

  private async openNode(node: Inode, flags: number): Promise<number> {
    if (node.isDir) {
      if ((flags & O_ACCMODE) !== 0) throw new FsError('EISDIR');
    } else if (!node.isFile) {
      // FIFOs and devices are opened by the kernel; a symlink is never opened itself.
      throw new FsError(node.isSymlink ? 'ELOOP' : 'ENXIO');
    }
    const writes = (flags & O_ACCMODE) !== 0;
    if (writes) this.writable();
    if (writes && flags & O_TRUNC && node.size > 0) await this.resize(node, 0);
    return this.newHandle(node, flags);
  }

  async read(fd: number, buf: Buffer, length: number, position: number): Promise<number> {
    const h = this.handle(fd);
    if (!h.node.isFile) throw new FsError('EISDIR');
    const n = await this.cache.read(h.node, position, length, buf, h.readahead);
    if (!this.readOnly && needsAccessTime(h.node)) {
      h.node.atime = now();
      this.tree.changed(h.node);
      this.onAttrChange?.(h.node.ino);
    }
    return n;
  }

  async write(fd: number, data: Buffer, position: number): Promise<number> {
    this.writable();
    const h = this.handle(fd);
    if ((h.flags & O_ACCMODE) === 0) throw new FsError('EBADF');
    const node = h.node;
    const at = h.flags & O_APPEND ? node.size : position;
    if (at + data.length > MAX_FILE_SIZE) throw new FsError('EFBIG');
    if (data.length === 0) return 0;
    await this.cache.write(node, at, data);
    this.touch(node);
    return data.length;
  }

  /** Like ext4, even a truncate to the current size moves mtime and ctime. */
  private async resize(node: Inode, size: number): Promise<void> {
    if (size < 0) throw new FsError('EINVAL');
    if (size > MAX_FILE_SIZE) throw new FsError('EFBIG');
    if (size !== node.size) for (const objectId of await this.cache.truncate(node, size)) this.tree.release(objectId);
    this.touch(node);
  }

  async truncate(target: Target, size: number): Promise<void> {
    this.writable();
    const node = await this.lookup(target);
    if (node.isDir) throw new FsError('EISDIR');
    if (!node.isFile) throw new FsError('EINVAL');
    await this.resize(node, size);
  }

  async ftruncate(fd: number, size: number): Promise<void> {
    this.writable();
    const h = this.handle(fd);
    if ((h.flags & O_ACCMODE) === 0) throw new FsError('EBADF');
    await this.resize(h.node, size);
  }

  /** Whether close(2) of this handle has anything to flush: a read-only one never has, so the kernel need not ask. */
  flushes(fd: number): boolean {
    const h = this.handle(fd);
    return h.node.isFile && (h.flags & O_ACCMODE) !== 0;
  }

  /**
   * close(2) of one descriptor: what was written through it goes to the
   * local journal before close returns, so it survives a crash of the
   * daemon; the store gets it within seconds.
   */
  async flush(fd: number): Promise<void> {
    if (!this.flushes(fd)) return;
    const { node } = this.handle(fd);
    if (this.cache.hasDirty(node)) await this.cache.flush(node);
    await this.tree.note();
  }

  /**
   * Journals the pending changes now, while the caller is still reading the
   * reply, when a close of this inode is sure to follow and would otherwise
   * wait for them: a change to a file that is open (touch, cp -p and tar set
   * times through the descriptor before they close). Called after the reply went out.
   * Not after a create: the change that usually follows it would wait
   * instead, and the note would be written twice.
   */
  noteAhead(ino: number): void {
    if ((this.openCount.get(ino) ?? 0) > 0) this.tree.noteEarly();
  }

  private writeBack(node: Inode): void {
    if (!node.isFile || !this.cache.hasDirty(node)) return;
    this.cache.flush(node).catch((err) => this.log(`writing back inode ${node.ino} failed, will retry: ${(err as Error).message}`));
  }

  /** Everything written to this file so far survives a crash and a power cut (journaled and synced). */
  async fsync(fd: number): Promise<void> {
    const h = this.handle(fd);
    if (h.node.isFile) await this.cache.flush(h.node);
    await this.tree.note();
    await this.tree.sync();
  }

  release(fd: number): void {
    const { node } = this.handle(fd);
    this.handles.delete(fd);
    const count = (this.openCount.get(node.ino) ?? 1) - 1;
    if (count > 0) this.openCount.set(node.ino, count);
    else this.openCount.delete(node.ino);
    if (node.nlink === 0) this.destroyIfUnused(node);
    else this.writeBack(node);
  }

  // ---- whole filesystem ----

  /** Stores all dirty data, commits the metadata and syncs the journal. */
  async sync(): Promise<void> {
    await this.cache.flush();
    await this.tree.commit();
    await this.tree.sync();
  }

  startBackgroundSync(intervalMs: number): void {
    this.backgroundSync = new BackgroundSync({
      pending: () => this.cache.hasDirty() || this.tree.hasChanges,
      changeStamp: () => this.tree.changeStamp,
      sync: () => this.sync().catch((err) => this.log(`background sync failed, will retry: ${(err as Error).message}`)),
      backlog: () => this.tree.inodesToCommit,
      checkpointDue: () => this.tree.checkpointDue,
      checkpoint: () => this.tree.checkpoint(),
    }, intervalMs);
    this.tree.checkpointAfterCommit = false;
    this.backgroundSync.start();
  }

  /** On unmount: everything stored, committed and checkpointed. */
  async close(): Promise<void> {
    this.backgroundSync?.stop();
    if (this.readOnly) return;
    // Unmounted: the kernel holds nothing now, and says so with no forget.
    for (const node of [...this.keptForKernel.values()]) {
      if ((this.openCount.get(node.ino) ?? 0) === 0) this.destroy(node);
    }
    await this.sync();
    await this.tree.compact();
  }
}
