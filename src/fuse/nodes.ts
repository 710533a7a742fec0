import { ROOT_INO } from '../meta/inode.js';

/** A name of an inode: its directory's inode and the name in it. */
type NameKey = string;
const keyOf = (parent: number, name: string): NameKey => `${parent}/${name}`;

interface KernelNode {
  /** How many times the kernel was handed this inode (FUSE's nlookup). */
  lookups: number;
  /** The names the kernel knows it by, first one used for paths; more than one for hard links. */
  names: NameKey[];
}

/**
 * The inodes the kernel holds, with the names it reached them by: the
 * kernel speaks in inode numbers, the filesystem in paths. The node id the
 * kernel sees is the inode number itself, so all names of a hard link are
 * one kernel inode, as on a local disk. An inode stays here until the
 * kernel forgets it; one whose names are all gone (open and unlinked, or
 * in a removed directory) has no path.
 */
export class KernelNodes {
  private readonly nodes = new Map<number, KernelNode>();
  private readonly names = new Map<NameKey, number>();

  /** The path of a name in a directory the kernel holds. */
  childPath(parent: number, name: string): string | undefined {
    const dir = this.pathOf(parent);
    if (dir === undefined) return undefined;
    return dir === '/' ? `/${name}` : `${dir}/${name}`;
  }

  pathOf(ino: number): string | undefined {
    if (ino === ROOT_INO) return '/';
    const parts: string[] = [];
    for (let at = ino; at !== ROOT_INO;) {
      const key = this.nodes.get(at)?.names[0];
      if (key === undefined) return undefined;
      const slash = key.indexOf('/');
      parts.push(key.slice(slash + 1));
      at = Number(key.slice(0, slash));
      // A cycle would mean a bug above; a path that long cannot exist anyway.
      if (parts.length > 4096) return undefined;
    }
    return `/${parts.reverse().join('/')}`;
  }

  /** The kernel was handed ino under this name (a lookup or a create): one more lookup to forget. */
  remember(parent: number, name: string, ino: number): void {
    if (ino === ROOT_INO) return;
    const key = keyOf(parent, name);
    const previous = this.names.get(key);
    if (previous !== undefined && previous !== ino) this.dropName(key, previous);
    this.names.set(key, ino);
    const node = this.nodes.get(ino);
    if (!node) {
      this.nodes.set(ino, { lookups: 1, names: [key] });
      return;
    }
    node.lookups++;
    if (!node.names.includes(key)) node.names.unshift(key);
  }

  forget(ino: number, count: number): void {
    const node = this.nodes.get(ino);
    if (!node) return;
    node.lookups -= count;
    if (node.lookups > 0) return;
    for (const key of node.names) if (this.names.get(key) === ino) this.names.delete(key);
    this.nodes.delete(ino);
  }

  /** The name is gone (unlink, rmdir). */
  removed(parent: number, name: string): void {
    const key = keyOf(parent, name);
    const ino = this.names.get(key);
    if (ino !== undefined) this.dropName(key, ino);
  }

  /** The name moved; a file it replaced lost its name. */
  renamed(parent: number, name: string, newParent: number, newName: string): void {
    const from = keyOf(parent, name);
    const to = keyOf(newParent, newName);
    if (from === to) return;
    this.removed(newParent, newName);
    const ino = this.names.get(from);
    if (ino === undefined) return;
    this.names.delete(from);
    this.names.set(to, ino);
    const node = this.nodes.get(ino)!;
    node.names = node.names.map((key) => (key === from ? to : key));
  }

  /** How many inodes the kernel holds (for tests and status). */
  get size(): number {
    return this.nodes.size;
  }

  private dropName(key: NameKey, ino: number): void {
    this.names.delete(key);
    const node = this.nodes.get(ino);
    if (node) node.names = node.names.filter((k) => k !== key);
  }
}
