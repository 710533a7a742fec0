import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import type { Filesystem } from '../vfs/filesystem.js';
import { fuseOperations } from './operations.js';
import { forceUnmount, isMounted } from './mounts.js';

export interface MountOptions {
  readOnly?: boolean;
  allowOther?: boolean;
  log: (message: string) => void;
}

export interface Mounted {
  mountpoint: string;
  /** Resolves when the mount went away, by unmount() or from outside. */
  gone: Promise<void>;
  unmount(): Promise<void>;
}

async function loadFuse(): Promise<typeof import('fuse-native').default> {
  try {
    await fs.access('/dev/fuse');
  } catch {
    throw new UserError('/dev/fuse is missing: load the FUSE kernel module (modprobe fuse), or give the container the device (--device /dev/fuse)', EXIT.UNAVAILABLE);
  }
  let Fuse;
  try {
    Fuse = (await import('fuse-native')).default;
  } catch (err) {
    const msg = (err as Error).message ?? '';
    if (/libfuse/.test(msg)) throw new UserError('libfuse2 is not installed: install it with "sudo apt-get install libfuse2 fuse3"', EXIT.UNAVAILABLE);
    throw new UserError(`cannot load fuse-native: ${msg.split('\n')[0]} (reinstall with "npm ci")`, EXIT.UNAVAILABLE);
  }
  // Without our patch, times, owners and inode numbers would be stored wrong, silently.
  if (Fuse.features !== FUSE_FEATURES) throw new UserError('fuse-native is not the patched build veilfs needs: reinstall with "npm ci"', EXIT.UNAVAILABLE);
  return Fuse;
}

/** The JS <-> C contract of patches/fuse-native+2.2.6.patch. */
const FUSE_FEATURES = 6;

export async function checkMountpoint(mountpoint: string): Promise<string> {
  const target = path.resolve(mountpoint);
  let st;
  try {
    st = await fs.stat(target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`mountpoint ${target} does not exist (create it with mkdir)`);
    if (code === 'ENOTCONN') throw new UserError(`${target} is a dead mount (its daemon was killed): run "veilfs unmount ${target}" first`);
    throw new UserError(`cannot use mountpoint ${target}: ${(err as Error).message}`);
  }
  if (!st.isDirectory()) throw new UserError(`mountpoint ${target} is not a directory`);
  if (await isMounted(target)) throw new UserError(`${target} is already mounted`);
  if ((await fs.readdir(target)).length > 0) throw new UserError(`mountpoint ${target} is not empty`);
  return target;
}

const MAX_IO = 128 * 1024;
const UNMOUNT_WAIT_MS = 10_000;

export async function mountFilesystem(filesystem: Filesystem, mountpoint: string, opts: MountOptions): Promise<Mounted> {
  const Fuse = await loadFuse();
  const target = await checkMountpoint(mountpoint);
  let fuse: InstanceType<typeof Fuse> | undefined;
  const caller = () => fuse!.context();
  const invalidate = (ino: number) => void fuse!.invalidateInode(ino);
  fuse = new Fuse(target, fuseOperations(filesystem, { log: opts.log, caller, invalidate }), {
    timeout: false, // our own layers bound every wait; see the guide
    maxRead: MAX_IO,
    maxWrite: MAX_IO,
    bigWrites: true, // else the kernel sends 4 KiB writes
    useIno: true, // every name of a file shows its inode number
    preciseTimes: true,
    readOnly: opts.readOnly,
    fsname: 'veilfs',
    subtype: 'veilfs',
    defaultPermissions: true,
    allowOther: opts.allowOther,
    // Cached for 30 s: every change comes in through the kernel, which
    // updates its caches as it makes it; the few the daemon makes on its
    // own (atime on read, other names of a hard link) are pushed to it
    // (operations.ts, invalidate). `find` stats 6x faster than with 1 s.
    attrTimeout: 30,
    entryTimeout: 30,
  });
  await new Promise<void>((resolve, reject) => fuse!.mount((err) => (err ? reject(new UserError(`cannot mount ${target}: ${err.message}`)) : resolve())));
  // Lets the binding answer the kernel's many getxattr calls for names no file has.
  fuse.setXattrNames(filesystem.xattrs.knownNames());
  filesystem.xattrs.onNewName = (names) => fuse!.setXattrNames(names);
  filesystem.onAttrChange = invalidate;

  let resolveGone!: () => void;
  const gone = new Promise<void>((resolve) => (resolveGone = resolve));
  // Someone may unmount us with umount/fusermount: notice and finish.
  const watch = setInterval(() => {
    isMounted(target).then((still) => {
      if (!still) {
        clearInterval(watch);
        resolveGone();
      }
    }, () => {});
  }, 500);

  let unmounting: Promise<void> | undefined;
  const unmount = () => (unmounting ??= (async () => {
    clearInterval(watch);
    // fuse-native's unmount runs fusermount; never let it hold up shutdown.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => fuse!.unmount(() => resolve())),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, UNMOUNT_WAIT_MS))),
    ]);
    clearTimeout(timer);
    if (await isMounted(target)) await forceUnmount(target);
    resolveGone();
  })());
  return { mountpoint: target, gone, unmount };
}
