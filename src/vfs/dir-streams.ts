import { FsError } from '../errors.js';
import { S_IFDIR, S_IFMT, type Inode } from '../meta/inode.js';
import type { EntryValue } from '../meta/kv.js';
import { NOT_RESIDENT } from '../meta/pagetree.js';
import type { Tree } from '../meta/tree.js';
import type { Attr } from './attr.js';
import { WalkAhead } from './walk-ahead.js';

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
/**
 * How many entries past the piece being answered a listing with
 * attributes loads the inodes of, in the background: with a store far
 * away, the wait for each piece's pages is what makes `ls -l` slow.
 */
const AHEAD_ENTRIES = 4 * PIECE_ENTRIES;
/** Listings and walks load ahead while one of the last this many pieces waited for the store. */
const COLD_READS = 32;

/** The size of one entry in the kernel's listing buffer (struct fuse_dirent, 8-byte aligned). */
function direntBytes(name: string): number {
  return (24 + Buffer.byteLength(name) + 7) & ~7;
}

/** The same with attributes (struct fuse_direntplus: an entry_out of 128 bytes first). */
function direntPlusBytes(name: string): number {
  return 128 + direntBytes(name);
}

/** The inodes a listing with attributes loads for these entries: those the caller does not have. */
function inodesToLoad(entries: [string, EntryValue][], known: ((ino: number) => boolean) | undefined): number[] {
  const inos: number[] = [];
  for (const [, [ino]] of entries) if (!known?.(ino)) inos.push(ino);
  return inos;
}

/**
 * A piece chosen but not yet sent: its entries, with their types; which of
 * them need their inodes read when it goes out (reads: positions), and
 * whether for their attributes (attrs, one per read).
 */
interface Draft {
  names: string[];
  inos: number[];
  modes: number[];
  cookies: number[];
  /** How many of the entries are the dots. */
  dots: number;
  reads: number[];
  attrs: boolean[];
  /** The directory may hold more after it. */
  more: boolean;
  /** Choosing the entries loaded pages: the store is slowing the listing (DirStreams.storeIsSlowing). */
  loaded: boolean;
}

/** The next piece of a listing, drafted while the caller reads the last one, and what it was drafted for. */
interface NextDraft {
  cookie: number;
  plus: PlusListing | undefined;
  /** Tree.entryStamp when it was drafted: any entry made or removed since makes it stale. */
  stamp: number;
  draft?: Promise<Draft | undefined>;
}

interface DirStream {
  dir: Inode;
  /** Cookie → name (FIRST_NAME_COOKIE + i: names[i]): a cookie names a position in name order, so it stays valid while entries come and go. */
  names: string[];
  /** The greatest name handed out: listings go in name order, so a name past it is new to this stream and needs no look-up. */
  last?: string;
  /** Name → cookie, built the first time a name at or before `last` comes (a rewind, a seekdir back). */
  cookieOf?: Map<string, number>;
  /** The inodes loaded ahead of a listing with attributes: up to which name, which position, and whether a load is under way. */
  ahead?: { to: string; position: number; loading: boolean };
  /** The subdirectories this listing handed out, in order (WalkAhead). */
  subdirs?: number[];
  next?: NextDraft;
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
  private readonly walk = new WalkAhead((dir) => this.warm(dir));
  /** Pieces read so far, and the last one during which pages were loaded. */
  private reads = 0;
  private lastReadThatLoaded = -Infinity;
  /** Whether the last listing carried attributes, and which the kernel had: what the directories WalkAhead loads will need. */
  private walkWantsAttrs = false;
  private walkKnown?: (ino: number) => boolean;

  constructor(private readonly tree: Tree, private readonly attr: (node: Inode) => Attr) {}

  open(dir: Inode): number {
    if (!dir.isDir) throw new FsError('ENOTDIR');
    const fd = this.nextFd++;
    this.streams.set(fd, { dir, names: [] });
    this.walk.opened(dir.ino);
    return fd;
  }

  release(fd: number): void {
    const stream = this.streams.get(fd);
    // A closed listing loads and drafts nothing more ahead.
    if (stream?.ahead) stream.ahead.position = Infinity;
    if (stream) stream.next = undefined;
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
    const loads = this.tree.pageLoads;
    const draft = (await this.drafted(stream, cookie, plus)) ?? (await this.draft(stream, cookie, plus));
    const piece = await this.complete(stream, draft, plus);
    this.walkWantsAttrs = plus?.attrs === true;
    this.walkKnown = plus?.known;
    this.reads++;
    if (this.tree.pageLoads !== loads || draft.loaded) this.lastReadThatLoaded = this.reads;
    if (draft.more) {
      if (plus?.attrs && stream.last !== undefined && this.storeIsSlowing()) this.loadAhead(stream, plus.known);
      this.draftNext(stream, piece.cookies[piece.cookies.length - 1], plus);
    }
    return piece;
  }

  /**
   * The entries of a piece, chosen as read() would choose them, without
   * what may change before it goes out: the inodes of entries that need
   * theirs (attributes, or the type of an entry from before types were
   * kept) are read when it does (complete).
   */
  private async draft(stream: DirStream, cookie: number, plus: PlusListing | undefined): Promise<Draft> {
    const draft: Draft = { names: [], inos: [], modes: [], cookies: [], dots: 0, reads: [], attrs: [], more: false, loaded: false };
    const [budget, sizeOf] = plus ? [plus.bytes, direntPlusBytes] : [PIECE_BYTES, direntBytes];
    const withAttrs = plus?.attrs === true;
    let bytes = 0;
    const add = (name: string, ino: number, mode: number, next: number) => {
      draft.names.push(name);
      draft.inos.push(ino);
      draft.modes.push(mode);
      draft.cookies.push(next);
      bytes += sizeOf(name);
    };
    if (cookie < DOT) add('.', stream.dir.ino, stream.dir.mode, DOT);
    if (cookie < DOTDOT) add('..', stream.dir.ino, stream.dir.mode, DOTDOT);
    draft.dots = draft.names.length;
    let after: string | undefined;
    if (cookie >= FIRST_NAME_COOKIE) {
      after = stream.names[cookie - FIRST_NAME_COOKIE];
      // Not a cookie this stream handed out: nothing follows it.
      if (after === undefined) return draft;
    }
    // A removed directory lists nothing more, even while still open.
    if (stream.dir.nlink === 0) return draft;
    const loads = this.tree.pageLoads;
    const entries = await this.tree.entriesAfter(stream.dir.ino, after, PIECE_ENTRIES);
    draft.loaded = this.tree.pageLoads !== loads;
    draft.more = entries.length === PIECE_ENTRIES;
    for (let i = 0; i < entries.length; i++) {
      const [name, [ino, type]] = entries[i];
      if (draft.names.length > 0 && bytes + sizeOf(name) > budget) {
        draft.more = true;
        break;
      }
      const mode = type << 12;
      const wantsAttr = withAttrs || (plus !== undefined && this.walkedInto(mode, ino));
      // Entries written before types were kept in them name only the inode.
      if (!type || (wantsAttr && !plus?.known?.(ino))) {
        draft.reads.push(draft.names.length);
        draft.attrs.push(wantsAttr);
      }
      add(name, ino, mode, this.cookie(stream, name));
    }
    return draft;
  }

  /** The piece a draft stands for, with the inodes it needs read now. */
  private async complete(stream: DirStream, draft: Draft, plus: PlusListing | undefined): Promise<DirPiece> {
    const attrs: (Attr | undefined)[] = new Array(draft.names.length).fill(undefined);
    // A draft goes out once (drafted() takes it off the stream): its modes are completed in place.
    const modes = draft.modes;
    let missing: Set<number> | undefined;
    let prefetched = false;
    for (let r = 0; r < draft.reads.length; r++) {
      const i = draft.reads[r];
      const ino = draft.inos[i];
      // The first inode not in memory: the rest of the piece's load with it, rather than one wait each.
      if (plus?.attrs && !prefetched && !this.tree.cached(ino)) {
        prefetched = true;
        await this.tree.prefetch(draft.reads.slice(r).map((j) => draft.inos[j]));
      }
      const node = await this.tree.get(ino);
      // An entry whose inode is missing is fsck's to report; listing goes on.
      if (!node) {
        (missing ??= new Set()).add(i);
        continue;
      }
      modes[i] = node.mode;
      if (draft.attrs[r]) attrs[i] = this.attr(node);
    }
    for (let i = draft.dots; i < modes.length; i++) {
      if ((modes[i] & S_IFMT) === S_IFDIR && !missing?.has(i)) this.walk.listed(draft.inos[i], (stream.subdirs ??= []));
    }
    const keep = (_: unknown, i: number) => !missing?.has(i);
    const of = <T>(xs: T[]) => (missing ? xs.filter(keep) : xs);
    return { names: of(draft.names), inos: of(draft.inos), modes: of(modes), attrs: of(attrs), cookies: of(draft.cookies) };
  }

  /**
   * Drafts the piece after this one, once the reply to this one is out:
   * a caller listing a big directory (find, ls -l, rsync) spends a while
   * on each piece before it asks for the next, and with the next one's
   * entries chosen meanwhile the daemon has only their inodes left to read
   * when the request comes.
   */
  private draftNext(stream: DirStream, cookie: number, plus: PlusListing | undefined): void {
    const next: NextDraft = { cookie, plus, stamp: this.tree.entryStamp };
    stream.next = next;
    setImmediate(() => {
      if (stream.next !== next || this.tree.entryStamp !== next.stamp) return;
      // Only a head start: what fails here fails again, and is reported, when the request comes.
      next.draft = this.draft(stream, cookie, plus).catch(() => undefined);
    });
  }

  /** The draft made ahead for this request, if it is for it and still holds. */
  private async drafted(stream: DirStream, cookie: number, plus: PlusListing | undefined): Promise<Draft | undefined> {
    const next = stream.next;
    stream.next = undefined;
    const fits = next?.draft && next.cookie === cookie && next.plus?.bytes === plus?.bytes && next.plus?.attrs === plus?.attrs && next.plus?.known === plus?.known;
    if (!fits) return undefined;
    const draft = await next.draft;
    // The stamp was taken before the draft was begun: any entry change since, even while it was made, shows.
    return next.stamp === this.tree.entryStamp ? draft : undefined;
  }

  /**
   * A subdirectory whose inode is in memory goes with its attributes even
   * to a caller that reads none: a walk stats every directory it enters
   * (find, du, ls --color), and the kernel drops a directory's atime each
   * time it is listed and its times each time a name in it changes, so
   * without them each directory of a walk costs a GETATTR (or a LOOKUP) of
   * its own. An inode whose page is still in the store is left out:
   * loading it would make a plain `ls` of a cold directory wait for it.
   * (One in memory is taken as it is looked at: the piece needs it anyway.)
   */
  private walkedInto(mode: number, ino: number): boolean {
    return (mode & S_IFMT) === S_IFDIR && this.tree.getInMemory(ino) !== NOT_RESIDENT;
  }

  /**
   * Whether one of the last few pieces waited for the store. If none did
   * (a walk of what was just made), loading ahead would only do the
   * listing's work twice.
   */
  private storeIsSlowing(): boolean {
    return this.reads - this.lastReadThatLoaded <= COLD_READS;
  }

  /** Loads a directory's first piece and its inodes, ahead of a walk that is expected to list it. */
  private warm(dir: number): void {
    if (!this.storeIsSlowing()) return;
    const withAttrs = this.walkWantsAttrs;
    const known = this.walkKnown;
    this.tree.entriesAfter(dir, undefined, PIECE_ENTRIES)
      .then((entries) => (withAttrs ? this.tree.prefetch(inodesToLoad(entries, known)) : undefined))
      .catch(() => {});
  }

  /**
   * Keeps the inodes of up to 2 × AHEAD_ENTRIES entries past the listing's
   * position loading: the names a window at a time, each window's inodes
   * all at once while the next window's names load.
   */
  private loadAhead(stream: DirStream, known: ((ino: number) => boolean) | undefined): void {
    const ahead = (stream.ahead ??= { to: stream.last!, position: stream.names.length, loading: false });
    if (ahead.loading) return;
    // The listing overtook what was loaded (or went back): load on from where it is.
    if (ahead.to <= stream.last!) Object.assign(ahead, { to: stream.last!, position: stream.names.length });
    ahead.loading = true;
    const load = async () => {
      while (ahead.position - stream.names.length < 2 * AHEAD_ENTRIES) {
        const entries = await this.tree.entriesAfter(stream.dir.ino, ahead.to, AHEAD_ENTRIES);
        if (entries.length > 0) ahead.to = entries[entries.length - 1][0];
        // At the end of the directory: nothing more to load ahead.
        ahead.position = entries.length < AHEAD_ENTRIES ? Infinity : ahead.position + entries.length;
        this.tree.prefetch(inodesToLoad(entries, known)).catch(() => {});
      }
    };
    // Only a head start: what fails here fails again, and is reported, when the listing gets there.
    load().catch(() => {}).finally(() => {
      ahead.loading = false;
    });
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
