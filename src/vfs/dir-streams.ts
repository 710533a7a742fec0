import { FsError } from '../errors.js';
import type { Inode } from '../meta/inode.js';
import type { Tree } from '../meta/tree.js';
import type { Attr } from './attr.js';

/** A piece of a listing: each entry's name, number, mode and cookie (to resume after it), and attributes when asked for. */
export interface DirPiece {
  names: string[];
  inos: number[];
  /** The type is all a plain listing gives the kernel of it. */
  modes: number[];
  /** With plus.attrs, each entry's attributes; undefined for the dots and for what plus.known says the caller has. */
  attrs: (Attr | undefined)[];
  cookies: number[];
}

/** A READDIRPLUS listing: the kernel's buffer size, and whether entries carry all their attributes. */
export interface PlusListing {
  bytes: number;
  attrs: boolean;
  /**
   * Inodes whose attributes the caller already has: their entries go
   * without them, which spares loading the inode (the kernel holds
   * everything a `find` right after creating the files needs).
   */
  known?: (ino: number) => boolean;
}

const DOT = 1;
const DOTDOT = 2;
const FIRST_NAME_COOKIE = 3;
/** A piece fills the kernel's listing buffer (a page) with room to spare; what does not fit is asked for again. */
const PIECE_BYTES = 8192;
const PIECE_ENTRIES = 256;

/** The size of one entry in the kernel's listing buffer (struct fuse_dirent, 8-byte aligned). */
function direntBytes(name: string): number {
  return (24 + Buffer.byteLength(name) + 7) & ~7;
}

/** The same with attributes (struct fuse_direntplus: an entry_out of 128 bytes first). */
function direntPlusBytes(name: string): number {
  return 128 + direntBytes(name);
}

interface DirStream {
  dir: Inode;
  /** Cookie → name (FIRST_NAME_COOKIE + i: names[i]): a cookie names a position in name order, so it stays valid while entries come and go. */
  names: string[];
  /** The greatest name handed out: listings go in name order, so a name past it is new to this stream and needs no look-up. */
  last?: string;
  /** Name → cookie, built the first time a name at or before `last` comes (a rewind, a seekdir back). */
  cookieOf?: Map<string, number>;
}

/**
 * Open directories read a piece at a time. A cookie (what telldir returns
 * and seekdir takes) stands for the name it was handed out with, and a
 * listing resumes after that name in name order: entries added or removed
 * meanwhile never make it skip or repeat another entry. The cookies of an
 * open directory are kept until it is closed.
 */
export class DirStreams {
  private readonly streams = new Map<number, DirStream>();
  private nextFd = 1;

  constructor(private readonly tree: Tree, private readonly attr: (node: Inode) => Attr) {}

  open(dir: Inode): number {
    if (!dir.isDir) throw new FsError('ENOTDIR');
    const fd = this.nextFd++;
    this.streams.set(fd, { dir, names: [] });
    return fd;
  }

  release(fd: number): void {
    this.streams.delete(fd);
  }

  /**
   * The entries after the one `cookie` was handed out with (0: from the
   * start). With plus, no more than fill plus.bytes of READDIRPLUS entries
   * (an inode loaded for an entry the kernel has no room for would be
   * wasted), and with plus.attrs each with all its attributes.
   */
  async read(fd: number, cookie: number, plus?: PlusListing): Promise<DirPiece> {
    const stream = this.streams.get(fd);
    if (!stream) throw new FsError('EBADF');
    const piece: DirPiece = { names: [], inos: [], modes: [], attrs: [], cookies: [] };
    const [budget, sizeOf] = plus ? [plus.bytes, direntPlusBytes] : [PIECE_BYTES, direntBytes];
    const withAttrs = plus?.attrs === true;
    let bytes = 0;
    const add = (name: string, ino: number, mode: number, attr: Attr | undefined, next: number) => {
      piece.names.push(name);
      piece.inos.push(ino);
      piece.modes.push(mode);
      piece.attrs.push(attr);
      piece.cookies.push(next);
      bytes += sizeOf(name);
    };
    if (cookie < DOT) add('.', stream.dir.ino, stream.dir.mode, undefined, DOT);
    if (cookie < DOTDOT) add('..', stream.dir.ino, stream.dir.mode, undefined, DOTDOT);
    let after: string | undefined;
    if (cookie >= FIRST_NAME_COOKIE) {
      after = stream.names[cookie - FIRST_NAME_COOKIE];
      // Not a cookie this stream handed out: nothing follows it.
      if (after === undefined) return piece;
    }
    // A removed directory lists nothing more, even while still open.
    if (stream.dir.nlink === 0) return piece;
    for (const [name, [ino, type]] of await this.tree.entriesAfter(stream.dir.ino, after, PIECE_ENTRIES)) {
      if (piece.names.length > 0 && bytes + sizeOf(name) > budget) break;
      let mode = type << 12;
      let attr: Attr | undefined;
      // Entries written before types were kept in them name only the inode.
      if (!type || (withAttrs && !plus.known?.(ino))) {
        const node = await this.tree.get(ino);
        // An entry whose inode is missing is fsck's to report; listing goes on.
        if (!node) continue;
        mode = node.mode;
        if (withAttrs) attr = this.attr(node);
      }
      add(name, ino, mode, attr, this.cookie(stream, name));
    }
    return piece;
  }

  private cookie(stream: DirStream, name: string): number {
    if (stream.last === undefined || name > stream.last) {
      stream.last = name;
      return this.newCookie(stream, name);
    }
    stream.cookieOf ??= new Map(stream.names.map((n, i) => [n, FIRST_NAME_COOKIE + i]));
    return stream.cookieOf.get(name) ?? this.newCookie(stream, name);
  }

  private newCookie(stream: DirStream, name: string): number {
    const cookie = FIRST_NAME_COOKIE + stream.names.length;
    stream.names.push(name);
    stream.cookieOf?.set(name, cookie);
    return cookie;
  }
}
