/**
 * Per-inode numbers for a check of a vault too big to hold in memory as
 * records: a few typed arrays indexed by inode number (17 bytes an
 * inode), grown as higher numbers show up.
 */
export class InoTable {
  private size = 0;
  /** EXISTS and DIR bits. */
  flags = new Uint8Array(0);
  /** The link count its record says. */
  nlink = new Uint32Array(0);
  /** Directory entries naming it (in reachable directories, once counted). */
  links = new Uint32Array(0);
  /** Directories: entries naming directories in it. */
  subdirs = new Uint32Array(0);
  /** Directories: the directory holding its (first) name; 0: none seen. */
  parent = new Uint32Array(0);

  ensure(ino: number): void {
    if (ino < this.size) return;
    let size = Math.max(1024, this.size);
    while (size <= ino) size *= 2;
    const grow = <A extends Uint8Array | Uint32Array>(old: A, make: (n: number) => A): A => {
      const fresh = make(size);
      fresh.set(old);
      return fresh;
    };
    this.flags = grow(this.flags, (n) => new Uint8Array(n));
    this.nlink = grow(this.nlink, (n) => new Uint32Array(n));
    this.links = grow(this.links, (n) => new Uint32Array(n));
    this.subdirs = grow(this.subdirs, (n) => new Uint32Array(n));
    this.parent = grow(this.parent, (n) => new Uint32Array(n));
    this.size = size;
  }

  get length(): number {
    return this.size;
  }

  exists(ino: number): boolean {
    return ino < this.size && (this.flags[ino] & EXISTS) !== 0;
  }

  isDir(ino: number): boolean {
    return ino < this.size && (this.flags[ino] & DIR) !== 0;
  }
}

export const EXISTS = 1;
export const DIR = 2;
