import { FsError } from '../errors.js';
import type { Inode } from '../meta/inode.js';

export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;
/** The kernel's limits (linux/limits.h): a name, one value, a whole list. */
const XATTR_NAME_MAX = 255;
const XATTR_SIZE_MAX = 65536;
/** What one inode may hold in all (names and values), like ext4 with large inodes refusing more with ENOSPC. */
const XATTR_INODE_MAX = 65536;

/**
 * Namespaces kept: user.* (the kernel allows it on files and directories
 * only), trusted.* (root only, checked by the kernel) and security.*.
 * system.* (POSIX ACLs) is refused: with default_permissions the kernel
 * would not enforce ACLs kept here, so storing them would be a lie.
 */
const KEPT_NAMESPACES = ['user.', 'trusted.', 'security.'];

/** Extended attributes, kept encrypted with the inode in the metadata. */
export class Xattrs {
  /** Every name that exists on some inode (a superset: names are never forgotten while mounted). */
  private readonly names = new Set<string>();
  /** Told of a name before the first setxattr of it returns. */
  onNewName?: (names: string[]) => void;

  constructor(
    private readonly lookup: (path: string) => Inode,
    private readonly writable: () => void,
    private readonly changed: (node: Inode) => void,
    existing: Iterable<Inode>,
  ) {
    for (const node of existing) for (const name of node.xattrs?.keys() ?? []) this.names.add(name);
  }

  knownNames(): string[] {
    return [...this.names];
  }

  set(path: string, name: string, value: Buffer, flags: number): void {
    checkName(name);
    if (value.length > XATTR_SIZE_MAX) throw new FsError('E2BIG');
    this.writable();
    const node = this.lookup(path);
    const existing = node.xattrs?.get(name);
    if (flags & XATTR_CREATE && existing) throw new FsError('EEXIST');
    if (flags & XATTR_REPLACE && !existing) throw new FsError('ENODATA');
    let total = Buffer.byteLength(name) + value.length;
    for (const [other, v] of node.xattrs ?? []) if (other !== name) total += Buffer.byteLength(other) + v.length;
    if (total > XATTR_INODE_MAX) throw new FsError('ENOSPC', 'extended attributes of one inode are full');
    node.xattrs ??= new Map();
    // The value arrives in a buffer the FUSE thread reuses: keep a copy.
    node.xattrs.set(name, Buffer.from(value));
    this.changed(node);
    if (!this.names.has(name)) {
      this.names.add(name);
      this.onNewName?.(this.knownNames());
    }
  }

  get(path: string, name: string): Buffer {
    checkName(name, false);
    const value = this.lookup(path).xattrs?.get(name);
    if (!value) throw new FsError('ENODATA');
    return value;
  }

  /** trusted.* is listed for root only, as ext4 lists it only with CAP_SYS_ADMIN. */
  list(path: string, callerUid = 0): string[] {
    const names = [...(this.lookup(path).xattrs?.keys() ?? [])];
    return callerUid === 0 ? names : names.filter((n) => !n.startsWith('trusted.'));
  }

  remove(path: string, name: string): void {
    checkName(name, false);
    this.writable();
    const node = this.lookup(path);
    if (!node.xattrs?.delete(name)) throw new FsError('ENODATA');
    if (node.xattrs.size === 0) node.xattrs = undefined;
    this.changed(node);
  }
}

/** Reading or removing a name that cannot exist is ENODATA (as on ext4); only storing one is refused. */
function checkName(name: string, storing = true): void {
  if (Buffer.byteLength(name) > XATTR_NAME_MAX || name.length === 0) throw new FsError('ERANGE');
  if (KEPT_NAMESPACES.includes(name)) throw new FsError('EINVAL', 'a namespace without a name');
  if (storing && !KEPT_NAMESPACES.some((ns) => name.startsWith(ns))) throw new FsError('EOPNOTSUPP');
}
