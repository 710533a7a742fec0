import { FsError } from '../errors.js';

export const NAME_MAX = 255;
export const PATH_MAX = 4096;

/** Splits an absolute path as FUSE hands it over ("/a/b") into checked names. */
export function splitPath(path: string): string[] {
  // No PATH_MAX check: the kernel limits each call's path, and libfuse hands
  // over the whole path from the mount's root, which may be longer (a deep
  // directory reached through a relative path or a descriptor).
  if (!path.startsWith('/')) throw new FsError('EINVAL', `not an absolute path: ${path}`);
  const names = path.split('/').filter((n) => n.length > 0);
  for (const name of names) checkName(name);
  return names;
}

export function checkName(name: string): void {
  if (Buffer.byteLength(name) > NAME_MAX) throw new FsError('ENAMETOOLONG');
  if (name === '.' || name === '..') throw new FsError('EINVAL', `"${name}" is not a valid entry name`);
}

/** True if `inner` is `outer` itself or lies below it. */
export function isWithin(inner: string[], outer: string[]): boolean {
  if (inner.length < outer.length) return false;
  return outer.every((name, i) => inner[i] === name);
}

/**
 * An existing inode: by path, or by number as the kernel names what it
 * reached (no walk from the root, and still right after a rename).
 */
export type Target = string | number;

/** A name to make or remove: a path, or a directory's inode number and the name in it. */
export type Place = string | { dir: number; name: string };
