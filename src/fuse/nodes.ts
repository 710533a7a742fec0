import { ROOT_INO } from '../meta/inode.js';

/** The most one request to drop inodes names (native/veilfs-fuse.c takes no more). */
const PRUNE_BATCH = 512;

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
  /** When the kernel last got the inode with its name and attributes (Date.now()), 0: it may have dropped some attributes since. */
  attrsAt: number;
}

/**
 * The inodes the kernel holds, with the names it reached them by: the
 * kernel speaks in inode numbers, the filesystem in paths. The node id the
 * kernel sees is the inode number itself, so all names of a hard link are
 * one kernel inode, as on a local disk. An inode stays here until the
 * kernel forgets it; one whose names are all gone (open and unlinked, or
 * in a removed directory) has no path. One small object per inode: the
 * kernel may hold a million, unless told to drop some (limitTo).
 *
 * The map's order is the order of last lookup, oldest first: the inodes
 * asked to go are the ones no path has reached for longest.
 */
export class KernelNodes {
  private readonly nodes = new Map<number, KernelNode>();
  /**
   * How long after a lookup the kernel surely still has what it got: half
   * the validity the replies give, so it never runs out meanwhile.
   */
  private readonly freshMs: number;
  private limit = Infinity;
  private drop?: (inos: Float64Array, count: number) => boolean;
  private readonly candidates = new Float64Array(PRUNE_BATCH);
  /**
   * New inodes between two offers, so that the kernel's forgets of one
   * arrive before the next is chosen: a sixteenth of the bound, 16 to 256.
   */
  private step = 0;
  private sincePrune = 0;

  /** ttlSeconds: how long the replies let the kernel keep names and attributes. */
  constructor(ttlSeconds: number) {
    this.freshMs = (ttlSeconds * 1000) / 2;
  }

  /**
   * Keeps about limit inodes: past it, the ones looked up longest ago are
   * offered to drop(), a batch at a time; the kernel drops those it does
   * not use and forgets them (forget()). drop() returns false when the
   * kernel cannot do this, and nothing is offered again.
   */
  limitTo(limit: number, drop: (inos: Float64Array, count: number) => boolean): void {
    this.limit = limit;
    this.drop = drop;
    this.step = Math.min(256, Math.max(16, Math.floor(limit / 16)));
  }

  /** The bound the table is held to, or null: none, or the kernel cannot drop inodes. */
  get bound(): number | null {
    return this.drop ? this.limit : null;
  }

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
    const now = Date.now();
    if (!node) {
      this.nodes.set(ino, { lookups: 1, parent, name, attrsAt: now });
      if (this.nodes.size > this.limit && ++this.sincePrune >= this.step) this.offerOldest();
      return;
    }
    if (this.drop) {
      // To the young end of the order.
      this.nodes.delete(ino);
      this.nodes.set(ino, node);
    }
    node.lookups++;
    node.attrsAt = now;
    if (node.parent === parent && node.name === name) return;
    if (node.parent !== 0 && !node.aliases?.some(([p, n]) => p === parent && n === name)) (node.aliases ??= []).push([node.parent, node.name]);
    node.parent = parent;
    node.name = name;
  }

  /**
   * Offers the oldest inodes beyond the bound (and a step more) to the
   * kernel, and moves them to the young end: one the kernel keeps (open, a
   * cwd, a directory with cached entries) comes up again only after
   * everything else.
   */
  private offerOldest(): void {
    this.sincePrune = 0;
    const wanted = Math.min(PRUNE_BATCH, this.nodes.size - this.limit + this.step);
    let count = 0;
    for (const ino of this.nodes.keys()) {
      if (count === wanted) break;
      this.candidates[count++] = ino;
    }
    for (let i = 0; i < count; i++) {
      const ino = this.candidates[i];
      const node = this.nodes.get(ino)!;
      this.nodes.delete(ino);
      this.nodes.set(ino, node);
    }
    if (!this.drop!(this.candidates, count)) {
      this.limit = Infinity;
      this.drop = undefined;
    }
  }

  /** Returns true once the kernel holds ino no more. */
  forget(ino: number, count: number): boolean {
    const node = this.nodes.get(ino);
    if (!node || (node.lookups -= count) > 0) return false;
    this.nodes.delete(ino);
    return true;
  }

  holds(ino: number): boolean {
    return ino === ROOT_INO || this.nodes.has(ino);
  }

  /**
   * Whether the kernel surely has ino's current attributes: it was handed
   * them lately, and nothing has happened to the inode since that makes
   * the kernel drop some of them (attrsStale). A listing can leave them
   * out. A wrong false costs a listing entry's attributes, a wrong true a
   * GETATTR or a LOOKUP later, never a stale answer: the kernel decides by
   * its own cache.
   */
  attrsFresh(ino: number): boolean {
    const node = this.nodes.get(ino);
    return node !== undefined && node.attrsAt !== 0 && Date.now() - node.attrsAt < this.freshMs;
  }

  /**
   * Something happened to ino that makes the kernel drop cached attributes
   * (a write, a read's atime, a name made or removed in a directory).
   */
  attrsStale(ino: number): void {
    const node = this.nodes.get(ino);
    if (node) node.attrsAt = 0;
  }

  /** ino lost the name parent/name (unlink, rmdir, or replaced by a rename). */
  removed(ino: number, parent: number, name: string): void {
    const node = this.nodes.get(ino);
    if (!node) return;
    node.attrsAt = 0;
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
