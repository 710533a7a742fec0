import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
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
  replyOpen(req: Req, fh: number, keepCache: boolean): void;
  replyData(req: Req, data: Buffer, length: number): void;
  replyReadlink(req: Req, target: string): void;
  replyWrite(req: Req, count: number): void;
  replyXattrSize(req: Req, size: number): void;
  replyStatfs(req: Req, bsize: number, frsize: number, blocks: number, bfree: number, bavail: number, files: number, ffree: number, favail: number, namemax: number): void;
  /** Returns how many entries fitted in size bytes. */
  replyDir(req: Req, size: number, names: string, meta: Float64Array): number;
}

/** The contract version of native/veilfs-fuse.c this code speaks. */
const CONTRACT = 2;
const ADDON = 'native/build/Release/veilfs_fuse.node';

const attrSlot = new Float64Array(15);
const contextSlot = new Float64Array(4);

let loaded: FuseBinding | undefined;

/** Loads the addon built by `npm ci` (bin/build-native.cjs); throws with the reason. */
export function loadBinding(): FuseBinding {
  if (loaded) return loaded;
  const binding = createRequire(import.meta.url)(addonPath()) as FuseBinding;
  if (binding.contract !== CONTRACT) throw new Error(`native/veilfs-fuse.c speaks contract ${binding.contract}, this code ${CONTRACT}: rebuild it with "npm ci"`);
  binding.setSlots(attrSlot, contextSlot);
  return (loaded = binding);
}

/** The addon sits in the package's native/ build, above dist/ (or dist-bench/src/ for benchmarks). */
function addonPath(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 4; up++, dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'native', 'binding.gyp'))) return path.join(dir, ADDON);
  }
  throw new Error('Cannot find module native/build/Release/veilfs_fuse.node');
}

/** Puts attributes where the next replyEntry/replyAttr/replyCreate takes them from. */
export function putAttr(a: Attr): void {
  attrSlot[0] = a.ino;
  attrSlot[1] = a.mode;
  attrSlot[2] = a.nlink;
  attrSlot[3] = a.uid;
  attrSlot[4] = a.gid;
  attrSlot[5] = a.rdev;
  attrSlot[6] = a.size;
  attrSlot[7] = a.blocks;
  attrSlot[8] = a.blksize;
  attrSlot[9] = a.atime[0];
  attrSlot[10] = a.atime[1];
  attrSlot[11] = a.mtime[0];
  attrSlot[12] = a.mtime[1];
  attrSlot[13] = a.ctime[0];
  attrSlot[14] = a.ctime[1];
}

/** Who sent the request being dispatched: valid synchronously inside a handler only. */
export function currentCaller(): Caller {
  return { uid: contextSlot[0], gid: contextSlot[1] };
}
