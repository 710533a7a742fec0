import { Inode, ROOT_INO, S_IFDIR, type InodeRecord } from './inode.js';
import type { Changes, MetaFormat } from './formats.js';
import { entryKey, entryPrefix, entryValue, inodeKey, INODE_PREFIX, prefixEnd, XATTR_NAME_PREFIX, xattrNameKey, ENTRY_PREFIX, entryOfKey, type EntryValue } from './kv.js';
import { NOT_RESIDENT, type PageTree } from './pagetree.js';
import { refsOf } from './refs.js';
import { LayerMerges } from './layer-merges.js';

/** What Tree.changedEntry returns for a name the changes since the last commit do not touch. */
const UNCHANGED = Symbol('unchanged');

export interface Logger {
  (message: string): void;
}

/** What the tree asks of the data layer around notes and commits. */
export interface TreeData {
  /** Before a note: the data it refers to survives a crash too. */
  persist(): Promise<void>;
  /** Before a commit: the data it refers to reaches the store first. */
  seal(): Promise<void>;
  /** After the commit that stopped referring to it. */
  free(ref: string): Promise<void>;
  /** After the commit that left no committed record referring to any segment in it (format 3). */
  unreferenced?(pack: string): Promise<void>;
}

/** Directory entry changes not in the committed map yet: directory → name → entry (undefined: removed). */
type EntryLayer = Map<number, Map<string, EntryValue | undefined>>;

/** Changes not yet in a note (or taken from those by a note or a commit under way). */
interface Unnoted {
  inodes: Set<number>;
  removed: Set<number>;
  entries: EntryLayer;
  names: Set<string>;
}

const noUnnoted = (): Unnoted => ({ inodes: new Set(), removed: new Set(), entries: new Map(), names: new Set() });
const isEmpty = (u: Unnoted) => u.inodes.size === 0 && u.removed.size === 0 && u.entries.size === 0 && u.names.size === 0;

function setIn(layer: EntryLayer, dir: number, name: string, ino: EntryValue | undefined): void {
  let names = layer.get(dir);
  if (!names) layer.set(dir, (names = new Map()));
  names.set(name, ino);
}

const NO_CHANGES: ReadonlyMap<string, EntryValue | undefined> = new Map();

/** Names in the order of the map's keys (UTF-16 code units, as string comparison). */
const compareNames = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The index of the first name in sorted that sorts after `after` (or, inclusive, is `after`). */
function firstAfter(sorted: string[], after: string, inclusive = false): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (inclusive ? sorted[mid] < after : sorted[mid] <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Inodes kept in memory when nothing pins them; more are dropped oldest first. */
const LIVE_INODES = 20_000;

/**
 * The metadata as the filesystem sees it: inodes by number, directory
 * entries by (directory, name). Committed state lives in the format's map
 * of pages (loaded on demand in format 3); changes since the last commit
 * live here, in inodes kept in memory until committed and in layers of
 * entry changes above the map. commit() group-commits: callers that arrive
 * while a commit waits to start share it.
 */
export class Tree {
  private readonly live = new Map<number, Inode>();
  /** Changed since the last commit, and in the commit under way. */
  private dirty = new Set<number>();
  private removed = new Set<number>();
  private committingInodes = new Set<number>();
  private committingRemoved = new Set<number>();
  private entries: EntryLayer = new Map();
  private committing: EntryLayer = new Map();
  private newNames = new Set<string>();
  /** Changed since the last note (or commit). */
  private unnoted = noUnnoted();
  /** Objects that the next commit makes unreferenced: deleted after it. */
  private pendingDeletes: string[] = [];
  /**
   * Notes and commits go one at a time each, but notes do not wait for a
   * commit: a close journals its changes while the commit that took them
   * is still writing (the batch says which notes it does not hold).
   */
  private notes: Promise<void> = Promise.resolve();
  private commits: Promise<void> = Promise.resolve();
  private queued: Promise<void> | null = null;
  /**
   * The last note while it has not settled. It took the unnoted changes
   * when it started: a close that finds nothing left to note must wait for
   * it, not return before its changes are written.
   */
  private noting: Promise<void> | null = null;
  /** What the commit under way took from the unnoted changes, until a note or the commit holds it. */
  private taken: Unnoted | null = null;
  private readonly xattrNames = new Set<string>();
  private evictAt = LIVE_INODES;
  /** Whether something outside the tree still holds an inode (open, or data not yet stored): it must stay the one object. */
  inUse: (node: Inode) => boolean = () => false;
  /** Told of every commit's changes once they are committed (live share links follow them). */
  onCommit?: (changes: Changes) => void;

  private constructor(
    private readonly format: MetaFormat,
    private readonly pages: PageTree,
    private nextIno: number,
    private inodeCount: number,
    private readonly data: TreeData,
    private readonly logger: Logger,
    private readonly packed: boolean,
  ) {}

  /** Format 2 and later record segment runs instead of block ids. */
  private record(node: Inode): InodeRecord {
    return node.toRecord(this.packed);
  }

  static initialRecords(uid: number, gid: number): { records: InodeRecord[]; nextIno: number } {
    const root = new Inode(ROOT_INO, S_IFDIR | 0o755, uid, gid);
    return { records: [{ ...root.toRecord(), entries: [] }], nextIno: ROOT_INO + 1 };
  }

  static async load(format: MetaFormat, data: TreeData, logger: Logger, opts: { packed: boolean }): Promise<Tree> {
    const loaded = await format.load();
    const tree = new Tree(format, loaded.pages, loaded.nextIno, loaded.inodeCount, data, logger, opts.packed);
    // Noted changes are not in the store yet: the next commit must carry them.
    for (const [ino, r] of loaded.noted.inodes) {
      if (r) tree.live.set(ino, Inode.fromRecord(r));
      else tree.removed.add(ino);
      tree.dirty.add(ino);
    }
    for (const ino of tree.removed) tree.dirty.delete(ino);
    for (const [key, value] of loaded.noted.keys) {
      if (key.startsWith(ENTRY_PREFIX)) {
        const { dir, name } = entryOfKey(key);
        setIn(tree.entries, dir, name, value as EntryValue | undefined);
      } else if (key.startsWith(XATTR_NAME_PREFIX) && value !== undefined) {
        tree.newNames.add(key.slice(1));
      }
    }
    for await (const [key] of loaded.pages.scan(XATTR_NAME_PREFIX, prefixEnd(XATTR_NAME_PREFIX))) tree.xattrNames.add(key.slice(1));
    for (const name of tree.newNames) tree.xattrNames.add(name);
    const root = await tree.get(ROOT_INO);
    if (!root?.isDir) throw new Error('vault metadata has no root directory');
    tree.rootNode = root;
    return tree;
  }

  private rootNode!: Inode;

  get root(): Inode {
    return this.rootNode;
  }

  get size(): number {
    return this.inodeCount;
  }

  /** The inode numbered ino, loaded if need be; undefined if there is none. */
  async get(ino: number): Promise<Inode | undefined> {
    const node = this.live.get(ino);
    if (node) return node;
    if (this.removed.has(ino) || this.committingRemoved.has(ino)) return undefined;
    return this.adopt(ino, (await this.pages.get(inodeKey(ino))) as InodeRecord | undefined);
  }

  /** The inode's one object, made from the record just read unless another call made it (or removed the inode) meanwhile. */
  private adopt(ino: number, r: InodeRecord | undefined): Inode | undefined {
    const again = this.live.get(ino);
    if (again) return again;
    if (!r || this.removed.has(ino) || this.committingRemoved.has(ino)) return undefined;
    const loaded = Inode.fromRecord(r);
    this.live.set(ino, loaded);
    this.evict();
    return loaded;
  }

  /** Loads the pages of these inodes together, ahead of get()s of them (a listing's). */
  async prefetch(inos: Iterable<number>): Promise<void> {
    const keys: string[] = [];
    for (const ino of inos) if (!this.live.has(ino)) keys.push(inodeKey(ino));
    if (keys.length > 1) await this.pages.prefetch(keys);
  }

  /** Metadata pages loaded from the store since mount. */
  get pageLoads(): number {
    return this.pages.loadsStarted;
  }

  /** A loaded inode, if it is in memory (no waiting). */
  cached(ino: number): Inode | undefined {
    return this.live.get(ino);
  }

  /** The inode numbered ino if that needs nothing from the store (as get), else NOT_RESIDENT. */
  getInMemory(ino: number): Inode | undefined | typeof NOT_RESIDENT {
    const node = this.live.get(ino);
    if (node) return node;
    if (this.removed.has(ino) || this.committingRemoved.has(ino)) return undefined;
    const r = this.pages.peek(inodeKey(ino));
    return r === NOT_RESIDENT ? r : this.adopt(ino, r as InodeRecord | undefined);
  }

  /** The inode a directory entry names (as lookup) if that needs nothing from the store, else NOT_RESIDENT. */
  lookupInMemory(dir: number, name: string): number | undefined | typeof NOT_RESIDENT {
    const changed = this.changedEntry(dir, name);
    const value = changed !== UNCHANGED ? changed : this.pages.peek(entryKey(dir, name));
    return value === NOT_RESIDENT ? value : (value as EntryValue | undefined)?.[0];
  }

  /** A directory entry as the changes since the last commit have it (undefined: removed), or UNCHANGED. */
  private changedEntry(dir: number, name: string): EntryValue | undefined | typeof UNCHANGED {
    let names = this.entries.get(dir);
    if (names?.has(name)) return names.get(name);
    names = this.committing.get(dir);
    if (names?.has(name)) return names.get(name);
    return UNCHANGED;
  }

  /** The inode a directory entry names, or undefined. */
  async lookup(dir: number, name: string): Promise<number | undefined> {
    return (await this.entry(dir, name))?.[0];
  }

  /** A directory entry: its inode and type. */
  async entry(dir: number, name: string): Promise<EntryValue | undefined> {
    const changed = this.changedEntry(dir, name);
    if (changed !== UNCHANGED) return changed;
    return (await this.pages.get(entryKey(dir, name))) as EntryValue | undefined;
  }

  /** Adds or replaces (node) or removes (undefined) a directory entry. */
  setEntry(dir: Inode, name: string, node: Inode | undefined): void {
    const value = node && entryValue(node.ino, node.mode);
    this.entryChanges++;
    setIn(this.entries, dir.ino, name, value);
    setIn(this.unnoted.entries, dir.ino, name, value);
  }

  /** The layers of entry changes above the map, oldest first, as they are now. */
  private layers(): EntryLayer[] {
    return [this.committing, this.entries];
  }

  /**
   * One directory's entry changes above the map, newest winning. A commit
   * may move layers into the map while a caller waits on pages: the layers
   * seen before and now both apply (the older ones are in the map by then).
   */
  private dirChanges(dir: number, before: EntryLayer[]): ReadonlyMap<string, EntryValue | undefined> {
    const present: Map<string, EntryValue | undefined>[] = [];
    for (const layer of new Set([...before, ...this.layers()])) {
      const names = layer.get(dir);
      if (names) present.push(names);
    }
    // The common case, one layer: the layer itself (callers only read it), which stays current as names are added.
    if (present.length <= 1) return present[0] ?? NO_CHANGES;
    return this.merges.merged(dir, present, this.entryChanges);
  }

  private readonly merges = new LayerMerges<EntryValue>();

  /** Moves whenever a directory entry is made, removed or replaced, in any directory. */
  get entryStamp(): number {
    return this.entryChanges;
  }

  /** Moves on every entry change: a merge of layers made before may be out of date. */
  private entryChanges = 0;

  /**
   * The names of a directory's pending changes in order, sorted again only
   * when a name was added since: a listing of a big directory created since
   * the last commit reads it piece by piece, and sorting every change for
   * every piece made that quadratic.
   */
  private sortedNames(changes: ReadonlyMap<string, EntryValue | undefined>): string[] {
    const cached = this.sortedChanges.get(changes);
    if (cached && cached.size === changes.size) return cached.names;
    const names = [...changes.keys()].sort(compareNames);
    this.sortedChanges.set(changes, { size: changes.size, names });
    return names;
  }

  private readonly sortedChanges = new WeakMap<ReadonlyMap<string, EntryValue | undefined>, { size: number; names: string[] }>();

  /**
   * A directory's pending changes as of now, for a caller that waits on
   * pages between looks: merged again only when a commit has swapped the
   * layers meanwhile (the ones seen first and the ones now both apply).
   */
  private pendingChanges(dir: number): () => ReadonlyMap<string, EntryValue | undefined> {
    const before = this.layers();
    let seen = before;
    let changes = this.dirChanges(dir, before);
    return () => {
      const now = this.layers();
      if (now[0] !== seen[0] || now[1] !== seen[1]) {
        seen = now;
        changes = this.dirChanges(dir, before);
      }
      return changes;
    };
  }

  /** A directory's entries (name, inode, type), in name order of the map (changes since the last commit last). */
  async listEntries(dir: number): Promise<[string, EntryValue][]> {
    const before = this.layers();
    const prefix = entryPrefix(dir);
    const result = new Map<string, EntryValue>();
    for await (const [key, value] of this.pages.scan(prefix, prefixEnd(prefix))) result.set(key.slice(prefix.length), value as EntryValue);
    for (const [name, value] of this.dirChanges(dir, before)) {
      if (value === undefined) result.delete(name);
      else result.set(name, value);
    }
    return [...result];
  }

  /**
   * Up to `limit` of a directory's entries whose names sort after `after`
   * (all of them: undefined), in name order: a listing read a piece at a
   * time, so its cost follows the piece, not the directory.
   */
  async entriesAfter(dir: number, after: string | undefined, limit: number): Promise<[string, EntryValue][]> {
    const prefix = entryPrefix(dir);
    // '\0' sorts before every character a name may hold: the first key past `after`.
    let cursor: string | undefined = after === undefined ? prefix : `${prefix}${after}\0`;
    // Changes since the last commit override the map: drop what they remove or replace, merge in what they add.
    const changesNow = this.pendingChanges(dir);
    let changes = changesNow();
    let kept: [string, EntryValue][] = [];
    let last: string | undefined;
    // Stored entries that changes override count too: while a commit puts a big directory's new names into the
    // map, every stored name is also a change, and reading on until `limit` were kept read the whole directory.
    let read = 0;
    const [firstChanges, firstSize] = [changes, changes.size];
    while (cursor !== undefined && read < limit) {
      const { entries, next } = await this.pages.page(cursor, prefixEnd(prefix), limit - read);
      changes = changesNow();
      read += entries.length;
      // Both in name order: a walk along the changes, rather than a hash lookup per entry in a map of
      // thousands of names (scattered over the heap: most of a listing's time right after creating them).
      const changed = this.sortedNames(changes);
      let c = entries.length ? firstAfter(changed, entries[0][0].slice(prefix.length), true) : 0;
      for (const [key, value] of entries) {
        last = key.slice(prefix.length);
        while (c < changed.length && changed[c] < last) c++;
        if (changed[c] !== last) kept.push([last, value as EntryValue]);
      }
      cursor = next;
    }
    // Names are only ever added to a layer: the same layer, as big as when the listing began, overrides nothing more.
    if (changes !== firstChanges || changes.size !== firstSize) kept = kept.filter(([name]) => !changes.has(name));
    const complete = cursor === undefined;
    // At most `limit` added names can go into this piece: the first ones past `after`, and (unless
    // the directory was read to its end) none past the last stored name read.
    const added: [string, EntryValue][] = [];
    const names = this.sortedNames(changes);
    for (let k = after === undefined ? 0 : firstAfter(names, after); k < names.length && added.length < limit; k++) {
      if (!complete && last !== undefined && names[k] > last) break;
      const value = changes.get(names[k]);
      if (value !== undefined) added.push([names[k], value]);
    }
    if (added.length === 0 && (kept.length > 0 || complete)) return kept;
    // Past the last stored entry read, the map may hold names not read yet: added ones beyond it wait for the next piece.
    const merged: [string, EntryValue][] = [];
    let i = 0;
    let j = 0;
    while (merged.length < limit && (i < kept.length || j < added.length)) {
      const takeAdded = j < added.length && (i >= kept.length || added[j][0] < kept[i][0]);
      merged.push(takeAdded ? added[j++] : kept[i++]);
    }
    // Every entry read was overridden by changes: never an empty piece before the end.
    if (merged.length === 0 && !complete) return this.entriesAfter(dir, last, limit);
    return merged;
  }

  /** Whether a directory has any entry (stops at the first). */
  async hasEntries(dir: number): Promise<boolean> {
    const changesNow = this.pendingChanges(dir);
    for (const value of changesNow().values()) if (value !== undefined) return true;
    const prefix = entryPrefix(dir);
    for await (const [key] of this.pages.scan(prefix, prefixEnd(prefix))) {
      const changes = changesNow();
      const name = key.slice(prefix.length);
      // In the map and not removed since the last commit (or added again).
      if (!changes.has(name) || changes.get(name) !== undefined) return true;
    }
    return false;
  }

  create(mode: number, uid: number, gid: number): Inode {
    const node = new Inode(this.nextIno++, mode, uid, gid);
    this.live.set(node.ino, node);
    this.inodeCount++;
    this.changed(node);
    return node;
  }

  changed(node: Inode): void {
    this.inodeChanges++;
    this.dirty.add(node.ino);
    this.unnoted.inodes.add(node.ino);
  }

  /** Forgets an inode whose last link and last handle are gone. */
  destroy(node: Inode): void {
    this.inodeChanges++;
    this.live.delete(node.ino);
    this.dirty.delete(node.ino);
    this.unnoted.inodes.delete(node.ino);
    this.removed.add(node.ino);
    this.unnoted.removed.add(node.ino);
    this.inodeCount--;
    for (const objectId of node.blocks.values()) this.pendingDeletes.push(objectId);
  }

  /** An object that the last commit may still reference, free after the next. */
  release(objectId: string): void {
    this.pendingDeletes.push(objectId);
  }

  /** Every extended attribute name some inode may have (names are never forgotten). */
  knownXattrNames(): string[] {
    return [...this.xattrNames];
  }

  hasXattrName(name: string): boolean {
    return this.xattrNames.has(name);
  }

  addXattrName(name: string): boolean {
    if (this.xattrNames.has(name)) return false;
    this.xattrNames.add(name);
    this.newNames.add(name);
    this.unnoted.names.add(name);
    return true;
  }

  /** Every stored reference of the tree (formats 1 and 2, which count them at mount). */
  async allRefs(): Promise<string[]> {
    const refs: string[] = [];
    for await (const [key, r] of this.pages.scan(INODE_PREFIX, prefixEnd(INODE_PREFIX))) {
      const ino = parseInt(key.slice(1), 16);
      if (!this.live.has(ino) && !this.removed.has(ino)) for (const [, ref] of refsOf(r as InodeRecord)) refs.push(ref);
    }
    for (const node of this.live.values()) refs.push(...node.blocks.values());
    return refs;
  }

  /** Changed since the last note: what a close must journal (also what only a commit under way holds). */
  get hasUnnoted(): boolean {
    return !isEmpty(this.unnoted) || this.taken !== null;
  }

  /** Takes the unnoted changes (for a note, or a commit): handed over whole, not copied. */
  private takeUnnoted(): Unnoted {
    const out = this.unnoted;
    this.unnoted = noUnnoted();
    return out;
  }

  /** Puts changes back among the unnoted ones (a note or commit that took them failed), under any made since. */
  private giveBack(changes: Unnoted): void {
    for (const ino of changes.inodes) if (this.live.has(ino)) this.unnoted.inodes.add(ino);
    for (const ino of changes.removed) this.unnoted.removed.add(ino);
    this.unnoted.entries = merge(changes.entries, this.unnoted.entries);
    for (const name of changes.names) this.unnoted.names.add(name);
  }

  /** Moves on every change made: whether the drive is being written to. */
  get changeStamp(): number {
    return this.inodeChanges + this.entryChanges;
  }

  private inodeChanges = 0;

  /** Inodes changed or removed since the last commit: what the next one will write records for. */
  get inodesToCommit(): number {
    return this.dirty.size + this.removed.size;
  }

  get hasChanges(): boolean {
    return this.dirty.size > 0 || this.removed.size > 0 || this.entries.size > 0 || this.newNames.size > 0 || this.pendingDeletes.length > 0;
  }

  private changes(inodes: Set<number>, removed: Set<number>, entries: EntryLayer, names: Set<string>): Changes {
    const changes: Changes = { inodes: new Map(), keys: new Map(), nextIno: this.nextIno, inodeCount: this.inodeCount };
    for (const ino of inodes) {
      const node = this.live.get(ino);
      if (node) changes.inodes.set(ino, this.record(node));
    }
    for (const ino of removed) changes.inodes.set(ino, undefined);
    for (const [dir, names] of entries) for (const [name, ino] of names) changes.keys.set(entryKey(dir, name), ino);
    for (const name of names) changes.keys.set(xattrNameKey(name), 1);
    return changes;
  }

  /**
   * Journals the changes since the last note on this machine, without a
   * commit to the store: cheap, and enough to survive a crash of the daemon.
   * Without a journal (read-only), it commits.
   */
  note(): Promise<void> {
    if (!this.hasUnnoted) {
      // If the note under way fails, the changes it took are back: note them then.
      const noting = this.noting;
      return noting ? noting.then(() => {}, () => this.note()) : Promise.resolve();
    }
    if (!this.format.canNote) return this.commit();
    const next = this.notes.catch(() => {}).then(() => this.noteNow());
    this.notes = next;
    this.noting = next;
    const settled = () => {
      if (this.noting === next) this.noting = null;
    };
    next.then(settled, settled);
    return next;
  }

  /** Journals now what a later note would; a failure is left for that note to report. */
  noteEarly(): void {
    if (this.format.canNote) this.note().catch(() => {});
  }

  private async noteNow(): Promise<void> {
    // What a commit under way took goes into this note too: a crash before that commit completes keeps it.
    if (this.taken) this.giveBack(this.taken);
    this.taken = null;
    if (!this.hasUnnoted) return;
    const taken = this.takeUnnoted();
    const changes = this.changes(taken.inodes, taken.removed, taken.entries, taken.names);
    try {
      await this.data.persist();
      await this.format.note(changes);
    } catch (err) {
      this.giveBack(taken);
      throw err;
    }
  }

  /** Makes everything committed or noted survive a power cut. */
  sync(): Promise<void> {
    return this.format.sync();
  }

  commit(): Promise<void> {
    if (this.queued) return this.queued;
    const next = this.commits.then(() => {
      this.queued = null;
      return this.commitNow();
    });
    // The checkpoint a commit makes due comes before the next commit, but the callers of this one do not wait for it.
    this.commits = next.then(() => (this.checkpointAfterCommit ? this.checkpointIfDue() : undefined), () => {});
    this.queued = next;
    return next;
  }

  /**
   * Whether a commit that makes a checkpoint due runs it (the default), or
   * leaves it to checkpoint(): a mounted drive's BackgroundSync runs it
   * when the drive is not busy serving reads.
   */
  checkpointAfterCommit = true;

  get checkpointDue(): boolean {
    return this.format.shouldCheckpoint();
  }

  /** Runs the checkpoint that is due, if any, after the commits asked for so far (a failure is logged, and retried later). */
  checkpoint(): Promise<void> {
    const next = this.commits.then(() => this.checkpointIfDue());
    this.commits = next;
    return next;
  }

  /** Resolves once the commits asked for so far, and the checkpoint they made due, are done. */
  settled(): Promise<void> {
    return this.commits;
  }

  private async checkpointIfDue(): Promise<void> {
    if (!this.format.shouldCheckpoint()) return;
    await this.format.checkpoint(this.pages, this.nextIno, this.inodeCount)
      .catch((err) => this.logger(`checkpoint failed, will retry: ${(err as Error).message}`));
  }

  /** When the last commit reached the journal (ms since the epoch). */
  lastCommitAt: number | undefined;

  private async commitNow(): Promise<void> {
    // Changes are taken between notes: each note is then wholly in the commit, or wholly after it.
    while (this.noting) await this.noting.catch(() => {});
    if (!this.hasChanges) {
      // Notes written while the last commit was under way hold nothing newer than it: they stay no longer.
      this.format.notesCovered();
      return;
    }
    const marker = this.format.beginCommit();
    const dirty = this.dirty;
    const removed = this.removed;
    const names = this.newNames;
    const deletes = this.pendingDeletes;
    const changes = this.changes(dirty, removed, this.entries, names);
    // Until the map has them, lookups see the changes in the layer being committed.
    this.committing = this.entries;
    this.committingInodes = dirty;
    this.committingRemoved = removed;
    this.entries = new Map();
    this.dirty = new Set();
    this.removed = new Set();
    this.newNames = new Set();
    this.pendingDeletes = [];
    // The commit holds the unnoted changes once it completes; until then a close notes them (noteNow).
    const taken = this.takeUnnoted();
    this.taken = isEmpty(taken) ? null : taken;
    let unused: string[] = [];
    try {
      if (changes.inodes.size || changes.keys.size) {
        // The records refer only to data stored so far: sealing now puts it ahead of the batch.
        await this.data.seal();
        unused = await this.format.commit(changes, this.pages, marker);
      }
      this.taken = null;
    } catch (err) {
      for (const ino of dirty) if (this.live.has(ino)) this.dirty.add(ino);
      for (const ino of removed) this.removed.add(ino);
      this.entries = merge(this.committing, this.entries);
      for (const name of names) this.newNames.add(name);
      if (this.taken) this.giveBack(this.taken);
      this.taken = null;
      this.pendingDeletes.unshift(...deletes);
      throw err;
    } finally {
      this.merges.clear();
      this.committing = new Map();
      this.committingInodes = new Set();
      this.committingRemoved = new Set();
    }
    this.lastCommitAt = Date.now();
    if (changes.inodes.size || changes.keys.size) this.onCommit?.(changes);
    for (const objectId of deletes) {
      await this.data.free(objectId).catch((err) => this.logger(`could not delete unreferenced object ${objectId}: ${(err as Error).message} (veilfs gc will)`));
    }
    for (const pack of unused) {
      await this.data.unreferenced?.(pack).catch((err) => this.logger(`could not delete unused pack ${pack}: ${(err as Error).message} (veilfs gc will)`));
    }
    this.evictAt = LIVE_INODES;
    this.evict();
  }

  /** Checkpoints now (on unmount), so the next mount replays no log. */
  async compact(): Promise<void> {
    await this.commit();
    await this.settled();
    await this.format.checkpoint(this.pages, this.nextIno, this.inodeCount);
  }

  /** Drops inodes beyond the budget that nothing pins, oldest loaded first. */
  private evict(): void {
    if (this.live.size <= this.evictAt) return;
    for (const [ino, node] of this.live) {
      if (this.live.size <= LIVE_INODES * 0.9) break;
      if (ino === ROOT_INO || this.dirty.has(ino) || this.unnoted.inodes.has(ino) || this.committingInodes.has(ino) || this.inUse(node)) continue;
      this.live.delete(ino);
    }
    // What is pinned stays until the next commit: no new pass over it before the set has grown by half.
    this.evictAt = Math.max(LIVE_INODES, Math.floor(this.live.size * 1.5));
  }
}

/** Two layers of entry changes as one: the newer wins. */
function merge(older: EntryLayer, newer: EntryLayer): EntryLayer {
  const out: EntryLayer = new Map();
  for (const layer of [older, newer]) for (const [dir, names] of layer) for (const [name, ino] of names) setIn(out, dir, name, ino);
  return out;
}
