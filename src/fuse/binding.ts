import { loadAddon } from '../util/native-addon.js';
import type { Attr } from '../vfs/attr.js';
import type { Caller } from '../vfs/filesystem.js';

/** A request from the kernel, to be answered exactly once through a reply function. */
export type Req = number;
/** One mount served by the binding. */
export type Session = { readonly __session: unique symbol };

/** native/veilfs-fuse.c, as JavaScript sees it. */
export interface FuseBinding {
  readonly contract: number;
  setSlots(attr: Float64Array, context: Float64Array): void;
  mount(mountpoint: string, options: string, handlers: Record<string, (...args: any[]) => void>, onGone: () => void): Session;
  unmount(session: Session): void;
  invalidate(session: Session, ino: number): number;
  /** Asks the kernel to drop the inodes of inos[0..count) it does not use; 0 or -errno. */
  prune(session: Session, inos: Float64Array, count: number): number;
  replyErr(req: Req, errno: number): void;
  replyEntry(req: Req, timeout: number): void;
  replyAttr(req: Req, timeout: number): void;
  replyCreate(req: Req, timeout: number, fh: number): void;
  /** noFlush: close(2) of this handle need not ask the daemon to flush it. */
  replyOpen(req: Req, fh: number, keepCache: boolean, noFlush: boolean): void;
  replyData(req: Req, data: Buffer, length: number): void;
  replyReadlink(req: Req, target: string): void;
  replyWrite(req: Req, count: number): void;
  replyXattrSize(req: Req, size: number): void;
  replyStatfs(req: Req, bsize: number, frsize: number, blocks: number, bfree: number, bavail: number, files: number, ffree: number, favail: number, namemax: number): void;
  /** Returns how many entries fitted in size bytes. */
  replyDir(req: Req, size: number, names: string, meta: Float64Array): number;
  /**
   * Answers a readdirplus request: PLUS_FIELDS numbers per name (putPlusEntry).
   * Returns how many entries fitted; the kernel now holds each of those
   * sent with attributes but "." and "..".
   */
  replyDirPlus(req: Req, size: number, timeout: number, names: string, meta: Float64Array): number;
}

/** The contract version of native/veilfs-fuse.c this code speaks. */
const CONTRACT = 5;

const attrSlot = new Float64Array(15);
const contextSlot = new Float64Array(4);

let loaded: FuseBinding | undefined;

/** Loads the addon built by `npm ci` (bin/build-native.cjs); throws with the reason. */
export function loadBinding(): FuseBinding {
  if (loaded) return loaded;
  const binding = loadAddon<FuseBinding>('veilfs_fuse');
  if (binding.contract !== CONTRACT) throw new Error(`native/veilfs-fuse.c speaks contract ${binding.contract}, this code ${CONTRACT}: rebuild it with "npm ci"`);
  binding.setSlots(attrSlot, contextSlot);
  return (loaded = binding);
}

/** Numbers per entry of replyDirPlus: the attributes, the cookie, and 1 for an entry with attributes. */
export const PLUS_FIELDS = 17;
const PLUS_COOKIE = 15;
const PLUS_WITH_ATTRS = 16;

/** Puts a replyDirPlus entry at `at`: with all of attrs, or else only its number and mode (the type). */
export function putPlusEntry(meta: Float64Array, at: number, ino: number, mode: number, cookie: number, attrs: Attr | undefined): void {
  if (attrs) putAttr(attrs, meta, at);
  else {
    meta[at] = ino;
    meta[at + 1] = mode;
  }
  meta[at + PLUS_COOKIE] = cookie;
  meta[at + PLUS_WITH_ATTRS] = attrs ? 1 : 0;
}

/** Puts attributes where the next replyEntry/replyAttr/replyCreate takes them from (or at `at` in another array). */
export function putAttr(a: Attr, into: Float64Array = attrSlot, at = 0): void {
  into[at] = a.ino;
  into[at + 1] = a.mode;
  into[at + 2] = a.nlink;
  into[at + 3] = a.uid;
  into[at + 4] = a.gid;
  into[at + 5] = a.rdev;
  into[at + 6] = a.size;
  into[at + 7] = a.blocks;
  into[at + 8] = a.blksize;
  into[at + 9] = a.atime[0];
  into[at + 10] = a.atime[1];
  into[at + 11] = a.mtime[0];
  into[at + 12] = a.mtime[1];
  into[at + 13] = a.ctime[0];
  into[at + 14] = a.ctime[1];
}

/** Makes the next replyEntry say that the name stands for nothing (inode 0). */
export function putAbsent(): void {
  attrSlot.fill(0);
}

/** Who sent the request being dispatched: valid synchronously inside a handler only. */
export function currentCaller(): Caller {
  return { uid: contextSlot[0], gid: contextSlot[1] };
}

/** The thread that sent the request being dispatched (0: the kernel itself); valid as currentCaller. */
export function currentPid(): number {
  return contextSlot[2];
}
