import { UserError } from '../errors.js';
import { pageKey } from '../format/names.js';
import { getChecked } from '../store/checked-get.js';
import type { ObjectStore } from '../store/types.js';
import { putVerified } from '../store/verified-put.js';
import { Limiter } from '../util/limiter.js';
import { IoYield } from '../util/yield-to-io.js';
import { S_IFDIR, S_IFMT, type InodeRecord } from './inode.js';
import { type EntryValue, xattrNameKey, entryPrefix, inodeKey, INODE_PREFIX, inoOfKey, packCountKey, prefixEnd, recordsOfKv, recordToKv } from './kv.js';
import type { CommitMarker, MetaLog, Note } from './metalog.js';
import { buildPages, PageTree, type PageContent, type PageIo } from './pagetree.js';
import { packSegmentCounts } from './refs.js';

/** What a commit or a note carries: inode records (undefined: removed) and other keys of the map (undefined: removed). */
export interface Changes {
  inodes: Map<number, InodeRecord | undefined>;
  keys: Map<string, unknown>;
  nextIno: number;
  inodeCount: number;
}

export interface Loaded {
  /** The committed map. */
  pages: PageTree;
  nextIno: number;
  inodeCount: number;
  /** Journaled on this machine, not committed: the next commit must carry it. */
  noted: Changes;
}

/** How a format version keeps the map in the store. */
export interface MetaFormat {
  readonly canNote: boolean;
  load(): Promise<Loaded>;
  note(changes: Changes): Promise<void>;
  /** Where the notes a commit will not hold start: taken with its changes, between notes (none without notes). */
  beginCommit(): CommitMarker | undefined;
  /** Nothing is left to commit: every note holds only what the store has. */
  notesCovered(): void;
  /** Commits and applies the changes to the committed map; returns the packs no committed record refers to any more. */
  commit(changes: Changes, pages: PageTree, marker?: CommitMarker): Promise<string[]>;
  shouldCheckpoint(): boolean;
  checkpoint(pages: PageTree, nextIno: number, inodeCount: number): Promise<void>;
  sync(): Promise<void>;
}

/** A note as journaled since format 3 exists (for every format): map changes. Older ones carry whole records. */
interface KvNote {
  no: number;
  nextIno: number;
  inodeCount?: number;
  set?: [string, unknown][];
  del?: string[];
  upserts?: InodeRecord[];
  removes?: number[];
}

function emptyChanges(nextIno: number, inodeCount: number): Changes {
  return { inodes: new Map(), keys: new Map(), nextIno, inodeCount };
}

function pairsOf(changes: Changes): { set: [string, unknown][]; del: string[] } {
  const set: [string, unknown][] = [];
  const del: string[] = [];
  for (const [ino, r] of changes.inodes) if (r) set.push([inodeKey(ino), r]); else del.push(inodeKey(ino));
  for (const [key, v] of changes.keys) if (v === undefined) del.push(key); else set.push([key, v]);
  return { set, del };
}

/** Applies journaled notes: inode records stay in `noted` (the tree keeps them live), other keys too. */
async function applyNotes(pages: PageTree, notes: KvNote[], noted: Changes): Promise<void> {
  for (const note of notes) {
    for (const [key, value] of note.set ?? []) {
      if (key.startsWith(INODE_PREFIX)) noted.inodes.set(inoOfKey(key), value as InodeRecord);
      else noted.keys.set(key, value);
    }
    for (const key of note.del ?? []) {
      if (key.startsWith(INODE_PREFIX)) noted.inodes.set(inoOfKey(key), undefined);
      else noted.keys.set(key, undefined);
    }
    // A note written before format 3 existed: a directory's record lists all its entries, so the ones it lacks are gone.
    for (const r of note.upserts ?? []) {
      const [[, rest], ...entries] = recordToKv(r);
      noted.inodes.set(r.ino, rest as InodeRecord);
      if ((r.mode & S_IFMT) !== S_IFDIR) continue;
      const listed = new Set(entries.map(([k]) => k));
      for await (const [key] of pages.scan(entryPrefix(r.ino), prefixEnd(entryPrefix(r.ino)))) if (!listed.has(key)) noted.keys.set(key, undefined);
      for (const [key] of noted.keys) if (key.startsWith(entryPrefix(r.ino)) && !listed.has(key)) noted.keys.set(key, undefined);
      for (const [key, ino] of entries) noted.keys.set(key, ino);
    }
    for (const ino of note.removes ?? []) noted.inodes.set(ino, undefined);
    noted.nextIno = Math.max(noted.nextIno, note.nextIno);
    if (note.inodeCount !== undefined) noted.inodeCount = note.inodeCount;
  }
}

/** Format 1 and 2: whole records in batches and checkpoints; the map lives in memory, built at mount. */
export class WholeTreeFormat implements MetaFormat {
  constructor(private readonly log: MetaLog) {}

  get canNote(): boolean {
    return this.log.canNote;
  }

  async load(): Promise<Loaded> {
    const { nextIno, inodes, notes } = await this.log.loadRecords();
    const pages = await inMemoryMap(inodes.values());
    const noted = emptyChanges(nextIno, inodes.size);
    await applyNotes(pages, notes as KvNote[], noted);
    return { pages, nextIno: noted.nextIno, inodeCount: noted.inodeCount, noted };
  }

  note(changes: Changes): Promise<void> {
    return this.log.noteBody({ nextIno: changes.nextIno, inodeCount: changes.inodeCount, ...pairsOf(changes) });
  }

  beginCommit(): CommitMarker | undefined {
    return this.log.beginCommit();
  }

  notesCovered(): void {
    this.log.dropNotes();
  }

  async commit(changes: Changes, pages: PageTree, marker?: CommitMarker): Promise<string[]> {
    await applyToPages(pages, changes);
    // These formats store whole records: every inode and directory the changes touch is written again.
    const touched = new Set<number>();
    for (const [ino, r] of changes.inodes) if (r) touched.add(ino);
    for (const key of changes.keys.keys()) if (key.startsWith('e')) touched.add(inoOfKey(key));
    const upserts: InodeRecord[] = [];
    for (const ino of touched) {
      const r = await wholeRecord(pages, ino);
      if (r) upserts.push(r);
    }
    const removes = [...changes.inodes].filter(([, r]) => !r).map(([ino]) => ino);
    await this.log.appendBody({ nextIno: changes.nextIno, upserts, removes }, marker);
    return [];
  }

  shouldCheckpoint(): boolean {
    return this.log.shouldCheckpoint();
  }

  async checkpoint(pages: PageTree, nextIno: number): Promise<void> {
    const pairs: [string, unknown][] = [];
    for await (const pair of pages.scan('', '\uffff')) pairs.push(pair);
    await this.log.checkpointBody({ nextIno, inodes: [...recordsOfKv(pairs).values()] });
  }

  sync(): Promise<void> {
    return this.log.sync();
  }
}

const unwritable: PageIo = {
  read: () => Promise.reject(new Error('format 1 and 2 keep no pages')),
  write: () => Promise.reject(new Error('format 1 and 2 keep no pages')),
};

async function wholeRecord(pages: PageTree, ino: number): Promise<InodeRecord | undefined> {
  const value = (await pages.get(inodeKey(ino))) as InodeRecord | undefined;
  if (!value || (value.mode & S_IFMT) !== S_IFDIR) return value;
  const entries: [string, number][] = [];
  const prefix = entryPrefix(ino);
  for await (const [key, child] of pages.scan(prefix, prefixEnd(prefix))) entries.push([key.slice(prefix.length), (child as EntryValue)[0]]);
  return { ...value, entries };
}

async function applyToPages(pages: PageTree, changes: Changes, only?: (key: string) => boolean): Promise<void> {
  const { set, del } = pairsOf(changes);
  const pause = new IoYield();
  for (const [key, value] of set) {
    if (!only || only(key)) await pages.set(key, value, 'upkeep');
    await pause.step();
  }
  for (const key of del) {
    if (!only || only(key)) await pages.delete(key, 'upkeep');
    await pause.step();
  }
}

/** Checkpoint of format 3: the root page of the map. */
interface PagedCheckpoint {
  seq: number;
  nextIno: number;
  inodeCount: number;
  root: string;
  height: number;
}

/** Batch of format 3: changes to the map. */
interface PagedBatch {
  seq: number;
  nextIno: number;
  inodeCount: number;
  set: [string, unknown][];
  del: string[];
}

/** Sealed pages in the store, bound to their ids. */
export function pageIo(log: MetaLog, verified = false): PageIo {
  const store = log.objectStore;
  return {
    read: (id) => getChecked(() => store.get(pageKey(id)), (sealed) => {
      try {
        return log.decodePage<PageContent>(id, sealed);
      } catch (err) {
        throw new UserError(`metadata page ${pageKey(id)} is damaged or was tampered with (${(err as Error).message}); run "veilfs fsck"`);
      }
    }),
    write: (id, content) => (verified ? putVerified : (s: ObjectStore, key: string, data: Buffer) => s.put(key, data))(store, pageKey(id), log.encodePage(id, content)),
  };
}

/**
 * Format 3: checkpoints name the root of a tree of pages; a checkpoint
 * writes only the pages changed since the last one; batches carry map
 * changes, so a commit costs what changed. Packs keep a count of the
 * segments the committed tree has in them, so a mount that never loaded
 * the whole tree still knows when a pack is unused.
 */
export class PagedFormat implements MetaFormat {
  private readonly io: PageIo;
  private readonly writers = new Limiter(16);

  constructor(private readonly log: MetaLog, private readonly pageBudget: number) {
    this.io = pageIo(log);
  }

  get canNote(): boolean {
    return this.log.canNote;
  }

  async load(): Promise<Loaded> {
    const { state, notes } = await this.log.replay<{ pages: PageTree; nextIno: number; inodeCount: number }, KvNote>(
      (cp: PagedCheckpoint) => ({ pages: PageTree.open(this.io, cp.root, cp.height, this.pageBudget), nextIno: cp.nextIno, inodeCount: cp.inodeCount }),
      async (st, batch: PagedBatch) => {
        for (const [key, value] of batch.set) await st.pages.set(key, value, 'upkeep');
        for (const key of batch.del) await st.pages.delete(key, 'upkeep');
        st.nextIno = batch.nextIno;
        st.inodeCount = batch.inodeCount;
      },
    );
    const noted = emptyChanges(state.nextIno, state.inodeCount);
    await applyNotes(state.pages, notes, noted);
    return { pages: state.pages, nextIno: noted.nextIno, inodeCount: noted.inodeCount, noted };
  }

  note(changes: Changes): Promise<void> {
    return this.log.noteBody({ nextIno: changes.nextIno, inodeCount: changes.inodeCount, ...pairsOf(changes) });
  }

  beginCommit(): CommitMarker | undefined {
    return this.log.beginCommit();
  }

  notesCovered(): void {
    this.log.dropNotes();
  }

  async commit(changes: Changes, pages: PageTree, marker?: CommitMarker): Promise<string[]> {
    const deltas = new Map<string, number>();
    const add = (r: InodeRecord | undefined, sign: number) => {
      if (r) for (const [pack, n] of packSegmentCounts(r)) deltas.set(pack, (deltas.get(pack) ?? 0) + sign * n);
    };
    const pause = new IoYield();
    for (const [ino, r] of changes.inodes) {
      add((await pages.get(inodeKey(ino), 'upkeep')) as InodeRecord | undefined, -1);
      add(r, 1);
      await pause.step();
    }
    const counts = new Map<string, unknown>();
    const unused: string[] = [];
    for (const [pack, delta] of deltas) {
      if (delta === 0) continue;
      const count = (((await pages.get(packCountKey(pack), 'upkeep')) as number | undefined) ?? 0) + delta;
      counts.set(packCountKey(pack), count > 0 ? count : undefined);
      if (count <= 0) unused.push(pack);
    }
    const all: Changes = { ...changes, keys: new Map([...changes.keys, ...counts]) };
    await this.log.appendBody({ nextIno: changes.nextIno, inodeCount: changes.inodeCount, ...pairsOf(all) }, marker);
    await applyToPages(pages, all);
    return unused;
  }

  /**
   * Pages changed since the last checkpoint stay in memory until the next
   * one, so checkpoints (cheap here: they write the changed pages only)
   * also come once the log since the last holds half a page budget.
   */
  shouldCheckpoint(): boolean {
    return this.log.shouldCheckpoint() || this.log.bytesSinceCheckpoint >= this.pageBudget / 2;
  }

  async checkpoint(pages: PageTree, nextIno: number, inodeCount: number): Promise<void> {
    if (this.log.seq === this.log.checkpointSeq) return;
    const { root, height, replaced } = await pages.flush((tasks) => Promise.all(tasks.map((task) => this.writers.run(task))).then(() => {}));
    await this.log.checkpointBody({ nextIno, inodeCount, root, height } satisfies Omit<PagedCheckpoint, 'seq'>);
    // After the root that stops reaching them (the journal deletes in order).
    const store = this.log.objectStore;
    await Promise.all(replaced.map((id) => this.writers.run(() => store.delete(pageKey(id)))));
  }

  sync(): Promise<void> {
    return this.log.sync();
  }
}

/** Pages that are never written are never evicted: the whole tree stays in memory. */
export async function inMemoryMap(records: Iterable<InodeRecord>): Promise<PageTree> {
  const { pairs } = mapOfRecords(records, false);
  const pages = PageTree.empty(unwritable, Infinity);
  for (const [key, value] of pairs) await pages.set(key, value);
  return pages;
}

/** A fixed tree of whole records held in memory (a share mounted from its link): read-only, nothing is ever stored. */
export class FixedFormat implements MetaFormat {
  readonly canNote = false;

  constructor(private readonly records: InodeRecord[], private readonly nextIno: number) {}

  async load(): Promise<Loaded> {
    const pages = await inMemoryMap(this.records);
    return { pages, nextIno: this.nextIno, inodeCount: this.records.length, noted: emptyChanges(this.nextIno, this.records.length) };
  }

  note(): Promise<void> {
    return Promise.reject(new Error('a mounted share is read-only'));
  }

  beginCommit(): undefined {
    return undefined;
  }

  notesCovered(): void {}

  commit(): Promise<string[]> {
    return Promise.reject(new Error('a mounted share is read-only'));
  }

  shouldCheckpoint(): boolean {
    return false;
  }

  async checkpoint(): Promise<void> {}

  async sync(): Promise<void> {}
}

/** The map of whole records, sorted: with the extended attribute names in use, and (format 3) the segment count of every pack. */
function mapOfRecords(records: Iterable<InodeRecord>, packCounts: boolean): { pairs: [string, unknown][]; inodeCount: number } {
  const pairs: [string, unknown][] = [];
  const names = new Set<string>();
  const counts = new Map<string, number>();
  let inodeCount = 0;
  const all = [...records];
  const modes = new Map(all.map((r) => [r.ino, r.mode]));
  for (const r of all) {
    pairs.push(...recordToKv(r, (ino) => modes.get(ino)));
    inodeCount++;
    for (const [name] of r.xattrs ?? []) names.add(name);
    if (packCounts) for (const [pack, n] of packSegmentCounts(r)) counts.set(pack, (counts.get(pack) ?? 0) + n);
  }
  for (const name of names) pairs.push([xattrNameKey(name), 1]);
  for (const [pack, n] of counts) pairs.push([packCountKey(pack), n]);
  pairs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { pairs, inodeCount };
}

/** A new format-3 map from whole records (init, upgrade). */
export async function writePagedCheckpoint(log: MetaLog, records: Iterable<InodeRecord>, nextIno: number, seq: number): Promise<void> {
  const { pairs, inodeCount } = mapOfRecords(records, true);
  await writePagedMap(log, pairs, nextIno, inodeCount, seq);
}

/** Writes a whole map (pairs in key order) as the pages and first checkpoint `seq` of a format-3 vault. */
export async function writePagedMap(log: MetaLog, pairs: Iterable<[string, unknown]>, nextIno: number, inodeCount: number, seq: number): Promise<void> {
  // A new vault's pages go to the store directly, not through a journal that checks them: read each back.
  const { root, height } = await buildPages(pageIo(log, true), pairs);
  await log.initializeBody({ nextIno, inodeCount, root, height }, seq);
}
