import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import type { Filesystem } from '../vfs/filesystem.js';
import { loadBinding, type FuseBinding, type Session } from './binding.js';
import { kernelHandlers, MAX_READ } from './operations.js';
import { forceUnmount, isMounted } from './mounts.js';
import { checkMountpoint } from './mountpoint.js';

export interface MountOptions {
  readOnly?: boolean;
  allowOther?: boolean;
  /** About how many inodes the kernel may hold (default: no bound). */
  kernelInodes?: number;
  log: (message: string) => void;
  /** Facts worth a line at the info level. */
  note?: (message: string) => void;
}

export interface Mounted {
  mountpoint: string;
  /** Resolves when the mount went away, by unmount() or from outside. */
  gone: Promise<void>;
  /** The inodes the kernel holds now, and the bound it is held to (null: none). */
  kernelInodes(): { held: number; limit: number | null };
  unmount(): Promise<void>;
}

async function loadFuse(): Promise<FuseBinding> {
  try {
    await fs.access('/dev/fuse');
  } catch {
    throw new UserError('/dev/fuse is missing: load the FUSE kernel module (modprobe fuse), or give the container the device (--device /dev/fuse)', EXIT.UNAVAILABLE);
  }
  try {
    return loadBinding();
  } catch (err) {
    const msg = (err as Error).message ?? '';
    if (/libfuse/.test(msg)) throw new UserError('libfuse2 is not installed: install it with "sudo apt-get install libfuse2 fuse3"', EXIT.UNAVAILABLE);
    if (/Cannot find module/.test(msg)) throw new UserError('the FUSE binding is not built: run "npm ci" (it needs build-essential and libfuse-dev)', EXIT.UNAVAILABLE);
    throw new UserError(`cannot load the FUSE binding: ${msg.split('\n')[0]} (rebuild it with "npm ci")`, EXIT.UNAVAILABLE);
  }
}

const MAX_IO = MAX_READ;
/** FUSE 7.45 (Linux 6.18) added the request to drop unused inodes. */
const PRUNE_PROTOCOL_MINOR = 45;

/**
 * Cached for 10 minutes: every change comes in through the kernel, which
 * updates its caches as it makes it; the few the daemon makes on its own
 * (atime on read) are pushed to it. `find` stats 6x faster than with 1 s.
 * With 30 s, a `find` right after creating 100,000 files (which takes a
 * minute or two) looked up two thirds of them again: 66,002 lookups, 11 s.
 */
const CACHE_TTL_S = 600;

/**
 * Whether the kernel checks permissions (default_permissions), or leaves
 * them to the daemon. With it, the kernel drops a directory's attributes
 * after every change in it and asks for them again before the next check:
 * one more round trip per create, unlink or rename. A mount without
 * allow_other serves only processes whose user and group ids are all the
 * mounting user's; when that user is root, the kernel's check lets
 * everything through but running a file with no execute bit, which the
 * kernel checks without default_permissions too, and access(2), which
 * then comes to the daemon (checkAccess). Any other user keeps the
 * kernel's check: their own mode bits bind them. What is lost: a root
 * process that gave up CAP_DAC_OVERRIDE or CAP_FOWNER is not held to modes
 * and owners here (README lists it).
 */
export function kernelChecksPermissions(opts: Pick<MountOptions, 'allowOther'>, uid = process.getuid?.() ?? -1): boolean {
  return Boolean(opts.allowOther) || uid !== 0;
}

function mountOptions(opts: MountOptions): string {
  const options = ['fsname=veilfs', 'subtype=veilfs', `max_read=${MAX_IO}`, 'big_writes', `max_write=${MAX_IO}`];
  if (kernelChecksPermissions(opts)) options.push('default_permissions');
  if (opts.readOnly) options.push('ro');
  if (opts.allowOther) options.push('allow_other');
  return options.join(',');
}

export async function mountFilesystem(filesystem: Filesystem, mountpoint: string, opts: MountOptions): Promise<Mounted> {
  const binding = await loadFuse();
  const target = await checkMountpoint(mountpoint);
  let closed = false;
  let resolveGone!: () => void;
  const gone = new Promise<void>((resolve) => (resolveGone = resolve));
  let initialized!: (protocolMinor: number) => void;
  const init = new Promise<number>((resolve) => (initialized = resolve));
  const kernel = kernelHandlers(filesystem, { binding, log: opts.log, ttl: CACHE_TTL_S, live: () => !closed }, (minor) => initialized(minor));
  let session: Session;
  try {
    session = binding.mount(target, mountOptions(opts), kernel.handlers, () => resolveGone());
  } catch (err) {
    throw new UserError(`cannot mount ${target}: ${(err as Error).message}`);
  }
  const protocolMinor = await init;
  if (opts.kernelInodes !== undefined) {
    const unbounded = 'the daemon keeps about 100 bytes for each file the kernel holds';
    if (protocolMinor >= PRUNE_PROTOCOL_MINOR) {
      kernel.nodes.limitTo(opts.kernelInodes, (inos, count) => {
        const res = binding.prune(session, inos, count);
        if (res === 0 || closed) return true;
        opts.note?.(`the kernel refused to drop inodes (errno ${-res}): from now on ${unbounded}`);
        return false;
      });
    } else {
      opts.note?.(`this kernel (FUSE 7.${protocolMinor}) cannot be asked to drop inodes (that needs Linux 6.18): ${unbounded}`);
    }
  }
  // Lets the adapter answer the kernel's many getxattr calls for names no file has.
  kernel.setXattrNames(filesystem.xattrs.knownNames());
  filesystem.xattrs.onNewName = kernel.setXattrNames;
  filesystem.onAttrChange = (ino) => {
    kernel.nodes.attrsStale(ino);
    binding.invalidate(session, ino);
  };
  filesystem.heldByKernel = (ino) => kernel.nodes.holds(ino);

  // Someone may unmount us lazily (umount -l) while files are open: notice and finish.
  const watch = setInterval(() => {
    isMounted(target).then((still) => {
      if (!still) resolveGone();
    }, () => {});
  }, 500);
  void gone.then(() => clearInterval(watch));

  let unmounting: Promise<void> | undefined;
  const unmount = () => (unmounting ??= (async () => {
    clearInterval(watch);
    closed = true;
    binding.unmount(session);
    if (await isMounted(target)) await forceUnmount(target);
    resolveGone();
  })());
  return { mountpoint: target, gone, unmount, kernelInodes: () => ({ held: kernel.nodes.size, limit: kernel.nodes.bound }) };
}

