import { FsError } from '../errors.js';
import type { Inode } from '../meta/inode.js';
import type { Target } from './paths.js';

/** Where the names of extended attributes in use are kept (the tree: in the metadata). */
export interface XattrNames {
  knownXattrNames(): string[];
  hasXattrName(name: string): boolean;
  /** True if the name is new. */
  addXattrName(name: string): boolean;
}

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
  /** Told of a name before the first setxattr of it returns. */
  onNewName?: (names: string[]) => void;

  constructor(
    private readonly lookup: (target: Target) => Promise<Inode>,
    private readonly writable: () => void,
    private readonly changed: (node: Inode) => void,
    /** Every name that exists on some inode (a superset: names are never forgotten). */
    private readonly names: XattrNames,
  ) {}

  knownNames(): string[] {
    return this.names.knownXattrNames();
  }

  async set(target: Target, name: string, value: Buffer, flags: number): Promise<void> {
    checkName(name);
    if (value.length > XATTR_SIZE_MAX) throw new FsError('E2BIG');
    this.writable();
    // The value arrives in a buffer the FUSE thread reuses: keep a copy before waiting.
    const copy = Buffer.from(value);
    const node = await this.lookup(target);
    const existing = node.xattrs?.get(name);
    if (flags & XATTR_CREATE && existing) throw new FsError('EEXIST');
    if (flags & XATTR_REPLACE && !existing) throw new FsError('ENODATA');
    let total = Buffer.byteLength(name) + value.length;
    for (const [other, v] of node.xattrs ?? []) if (other !== name) total += Buffer.byteLength(other) + v.length;
    if (total > XATTR_INODE_MAX) throw new FsError('ENOSPC', 'extended attributes of one inode are full');
    node.xattrs ??= new Map();
    node.xattrs.set(name, copy);
    this.changed(node);
    if (this.names.addXattrName(name)) this.onNewName?.(this.knownNames());
  }

  async get(target: Target, name: string): Promise<Buffer> {
    checkName(name, false);
    const value = (await this.lookup(target)).xattrs?.get(name);
    if (!value) throw new FsError(missingXattrError(name, this.names.hasXattrName(name)));
    return value;
  }

  /** trusted.* is listed for root only, as ext4 lists it only with CAP_SYS_ADMIN. */
  async list(target: Target, callerUid = 0): Promise<string[]> {
    const names = [...((await this.lookup(target)).xattrs?.keys() ?? [])];
    return callerUid === 0 ? names : names.filter((n) => !n.startsWith('trusted.'));
  }

  async remove(target: Target, name: string): Promise<void> {
    checkName(name, false);
    this.writable();
    const node = await this.lookup(target);
    if (!node.xattrs?.delete(name)) throw new FsError('ENODATA');
    if (node.xattrs.size === 0) node.xattrs = undefined;
    this.changed(node);
  }
}

/**
 * What reading a name an inode lacks says. system.* (ACLs) is never kept,
 * so it is unsupported, as on a filesystem mounted without ACLs; so are
 * SELinux labels while no file holds one (FUSE mounts are labelled per
 * mount, so only a copy of a labelled tree brings them). ls -l asks for
 * both on every file unless told they are unsupported, once per drive:
 * two round trips to the daemon per file.
 */
export function missingXattrError(name: string, someFileHasIt: boolean): 'ENODATA' | 'EOPNOTSUPP' {
  if (name.startsWith('system.')) return 'EOPNOTSUPP';
  if (name === SELINUX_LABEL && !someFileHasIt) return 'EOPNOTSUPP';
  return 'ENODATA';
}
const SELINUX_LABEL = 'security.selinux';

/** Removing a name that cannot exist is ENODATA (as on ext4); only storing one is refused. */
function checkName(name: string, storing = true): void {
  if (Buffer.byteLength(name) > XATTR_NAME_MAX || name.length === 0) throw new FsError('ERANGE');
  if (KEPT_NAMESPACES.includes(name)) throw new FsError('EINVAL', 'a namespace without a name');
  if (storing && !KEPT_NAMESPACES.some((ns) => name.startsWith(ns))) throw new FsError('EOPNOTSUPP');
}
