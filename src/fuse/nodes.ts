import { ROOT_INO } from '../meta/inode.js';

/** A name: the inode number of its directory, and the name in it. */
type Name = [parent: number, name: string];

interface KernelNode {
  /** How many times the kernel was handed this inode (FUSE's nlookup). */
  lookups: number;
  /** The name paths go through; parent 0 once the inode has no name left. */
  parent: number;
  name: string;
  /** Other names of a hard link the kernel reached it by. */
  aliases?: Name[];
}

/**
 * The inodes the kernel holds, with the names it reached them by: the
 * kernel speaks in inode numbers, the filesystem in paths. The node id the
 * kernel sees is the inode number itself, so all names of a hard link are
 * one kernel inode, as on a local disk. An inode stays here until the
 * kernel forgets it; one whose names are all gone (open and unlinked, or
 * in a removed directory) has no path. One small object per inode: the
 * kernel may hold a million.
 */
export class KernelNodes {
  private readonly nodes = new Map<number, KernelNode>();

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
      const node = this.nodes.get(at);
      if (!node || node.parent === 0) return undefined;
      parts.push(node.name);
      at = node.parent;
      // A cycle would mean a bug above; a path that long cannot exist anyway.
      if (parts.length > 4096) return undefined;
    }
    return `/${parts.reverse().join('/')}`;
  }

  /** The kernel was handed ino under this name (a lookup or a create): one more lookup to forget. */
  remember(parent: number, name: string, ino: number): void {
    if (ino === ROOT_INO) return;
    const node = this.nodes.get(ino);
    if (!node) {
      this.nodes.set(ino, { lookups: 1, parent, name });
      return;
    }
    node.lookups++;
    if (node.parent === parent && node.name === name) return;
    if (node.parent !== 0 && !node.aliases?.some(([p, n]) => p === parent && n === name)) (node.aliases ??= []).push([node.parent, node.name]);
    node.parent = parent;
    node.name = name;
  }

  forget(ino: number, count: number): void {
    const node = this.nodes.get(ino);
    if (node && (node.lookups -= count) <= 0) this.nodes.delete(ino);
  }

  /** ino lost the name parent/name (unlink, rmdir, or replaced by a rename). */
  removed(ino: number, parent: number, name: string): void {
    const node = this.nodes.get(ino);
    if (!node) return;
    if (node.parent === parent && node.name === name) {
      const next = node.aliases?.pop();
      [node.parent, node.name] = next ?? [0, ''];
    } else {
      node.aliases = node.aliases?.filter(([p, n]) => p !== parent || n !== name);
    }
    if (node.aliases?.length === 0) delete node.aliases;
  }

  /** ino's name parent/name is now newParent/newName. */
  renamed(ino: number, parent: number, name: string, newParent: number, newName: string): void {
    this.removed(ino, parent, name);
    const node = this.nodes.get(ino);
    if (!node) return;
    if (node.parent !== 0) (node.aliases ??= []).push([node.parent, node.name]);
    node.parent = newParent;
    node.name = newName;
  }

  /** How many inodes the kernel holds. */
  get size(): number {
    return this.nodes.size;
  }
}
