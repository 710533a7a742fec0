import { IntegrityError, UserError } from '../errors.js';
import { open, seal } from '../crypto/xchacha.js';
import { checkpointKey, logKey, metaNames, seqOf, type MetaNames } from '../format/names.js';
import { ConflictError, keysOf, type ObjectStore } from '../store/types.js';
import { getChecked } from '../store/checked-get.js';
import { putVerified } from '../store/verified-put.js';
import type { InodeRecord } from './inode.js';
import type { LocalState } from './local-state.js';

/** One committed batch of changes: full records of changed inodes. */
export interface Batch {
  seq: number;
  nextIno: number;
  upserts: InodeRecord[];
  removes: number[];
}

export interface Checkpoint {
  seq: number;
  nextIno: number;
  inodes: InodeRecord[];
}

/** Changes journaled on this machine since commit `base`, not yet committed (format 1 and 2 before 0.4: whole records). */
export interface Note {
  base: number;
  no: number;
  nextIno: number;
  upserts: InodeRecord[];
  removes: number[];
}

/** Where notes live: the local journal. */
export interface NoteJournal {
  note(data: Uint8Array): Promise<void>;
  pendingNotes(): Promise<Buffer[]>;
  /** How many notes it holds (written, not dropped). */
  readonly noteCount: number;
  /** Drops the oldest `count` notes (default: all). */
  dropNotes(count?: number): void;
}

/** Where the notes not in a commit start, taken when the commit takes its changes. */
export interface CommitMarker {
  /** The number of the first note (of the current base) written after the commit took its changes. */
  notesFrom: number;
  /** How many notes the journal held then: what the commit lets go. */
  notesBefore: number;
}

/** Raised when another writer took the next log sequence number first. */
export class CommitConflictError extends Error {
  constructor(seq: number) {
    super(`another mount committed metadata #${seq} first; this mount cannot merge concurrent writers yet`);
    this.name = 'CommitConflictError';
  }
}

type Kind = 'log' | 'checkpoint' | 'note' | 'page';
/** What every batch and checkpoint may carry besides its format's fields. */
type Stamped = { seq?: number; notesFrom?: number };
const MIN_PAD = 1024;
const NOTE_HEADER = 16;

/**
 * The encrypted metadata: an append-only log of batches m/<seq>, created
 * with create-if-absent, plus checkpoints c/<seq> of the whole tree. Each
 * object's AAD names its kind, vault and sequence number, so objects cannot
 * be swapped or renumbered; the highest number seen is remembered locally,
 * so a log rolled back by the store is refused. Between commits, changes
 * are kept as notes in the local journal, so a crash of the daemon loses
 * nothing that was closed or fsynced.
 */
export class MetaLog {
  seq = 0;
  checkpointSeq = 0;
  bytesSinceCheckpoint = 0;
  private noteNo = 0;
  /** Where the notes after the newest commit start (its batch's notesFrom): repeated by a checkpoint at its seq. */
  private notesFrom: number | undefined;
  /** Commits between checkpoints: more means less rewriting of the whole tree, longer log replays. */
  checkpointInterval = 128;

  private readonly vaultId: string;
  /** The vault's format version: it names the metadata objects and their AADs. */
  readonly version: number;
  private readonly names: MetaNames;

  constructor(
    private readonly store: ObjectStore,
    private readonly key: Buffer,
    vault: { vaultId: string; version: number },
    private readonly localState: LocalState,
    private readonly notes?: NoteJournal,
  ) {
    this.vaultId = vault.vaultId;
    this.version = vault.version;
    this.names = metaNames(vault.version);
  }

  logKey(seq: number): string {
    return logKey(seq, this.names);
  }

  checkpointKey(seq: number): string {
    return checkpointKey(seq, this.names);
  }

  private aad(kind: Kind, id: string): Buffer {
    return Buffer.from(`veilfs v${this.version} meta ${kind}\0${this.vaultId}\0${id}`);
  }

  /** Seals a metadata object; every kind but notes is padded to a power of two. */
  encode(kind: Kind, id: string, value: unknown): Buffer {
    const json = JSON.stringify(value);
    // Notes stay on this machine: padding hides sizes from the store only.
    if (kind === 'note') return seal(this.key, Buffer.from(json), this.aad(kind, id));
    let padded = MIN_PAD;
    while (padded < Buffer.byteLength(json)) padded *= 2;
    // Trailing spaces are valid JSON, and hide the exact size of the change.
    const plain = Buffer.alloc(padded, 0x20);
    plain.write(json, 0, 'utf8');
    return seal(this.key, plain, this.aad(kind, id));
  }

  /** Decrypts and parses a sealed metadata object; IntegrityError if it is not what it claims. */
  decodeBytes<T>(kind: Kind, id: string, sealed: Uint8Array, expectSeq?: number): T {
    const value = JSON.parse(open(this.key, sealed, this.aad(kind, id)).toString('utf8'));
    if (expectSeq !== undefined && value?.seq !== expectSeq) throw new IntegrityError('sequence number mismatch');
    return value as T;
  }

  async decode<T extends { seq?: number }>(kind: 'log' | 'checkpoint', seq: number, key: string): Promise<T> {
    return getChecked(() => this.store.get(key), (sealed) => {
      try {
        return this.decodeBytes<T>(kind, String(seq), sealed, seq);
      } catch (err) {
        throw new UserError(`metadata object ${key} is damaged or was tampered with (${(err as Error).message}); run "veilfs fsck"`);
      }
    });
  }

  /** Writes the first checkpoint of a new vault (or of an upgraded one, at its current number). */
  async initialize(inodes: InodeRecord[], nextIno: number, seq = 0): Promise<void> {
    await this.initializeBody({ nextIno, inodes }, seq);
  }

  async initializeBody(fields: object, seq = 0): Promise<void> {
    await putVerified(this.store, this.checkpointKey(seq), this.encode('checkpoint', String(seq), { seq, ...fields }), { ifAbsent: true });
    this.seq = seq;
    this.checkpointSeq = seq;
    this.notesFrom = undefined;
    await this.localState.recordSeq(seq);
  }

  /** Sequence numbers of the checkpoints and log batches in the store, ascending. */
  async listSeqs(): Promise<{ checkpoints: number[]; logs: number[] }> {
    const seqs = async (prefix: string) => keysOf(await this.store.list(prefix))
      .map((k) => seqOf(k, prefix)).filter((s): s is number => s !== undefined).sort((a, b) => a - b);
    return { checkpoints: await seqs(this.names.checkpoint), logs: await seqs(this.names.log) };
  }

  async readCheckpoint(seq: number): Promise<Checkpoint> {
    return this.decode<Checkpoint>('checkpoint', seq, this.checkpointKey(seq));
  }

  async readBatch(seq: number): Promise<Batch> {
    return this.decode<Batch>('log', seq, this.logKey(seq));
  }

  /**
   * Newest checkpoint, every batch after it in order (a gap refuses), a
   * check against rollback, then this machine's notes after the last
   * batch: the format says what a checkpoint and a batch mean.
   */
  async replay<S, N extends { no: number }>(
    start: (checkpoint: any) => S | Promise<S>,
    apply: (state: S, batch: any) => void | Promise<void>,
    opts: { allowRollback?: boolean } = {},
  ): Promise<{ state: S; seq: number; notes: N[] }> {
    const { checkpoints, logs } = await this.listSeqs();
    if (checkpoints.length === 0) throw new UserError('vault metadata is missing from the store (no checkpoint found); run "veilfs fsck"');
    const cpSeq = checkpoints[checkpoints.length - 1];
    const checkpoint = await this.decode<Stamped>('checkpoint', cpSeq, this.checkpointKey(cpSeq));
    let notesFrom = checkpoint.notesFrom;
    const state = await start(checkpoint);
    let seq = cpSeq;
    for (const s of logs.filter((n) => n > cpSeq)) {
      if (s !== seq + 1) throw new UserError(`metadata log has a gap after #${seq} (next is #${s}); run "veilfs fsck"`);
      const batch = await this.decode<Stamped>('log', s, this.logKey(s));
      await apply(state, batch);
      notesFrom = batch.notesFrom;
      seq = s;
    }
    const seen = await this.localState.highestSeq();
    if (seq < seen && !opts.allowRollback) {
      throw new UserError(`the store's metadata (#${seq}) is older than what this machine has seen (#${seen}): it was rolled back or lost, or this machine's journal (~/.cache/veilfs) was removed; refusing to mount (see "veilfs fsck")`);
    }
    const notes = await this.readNotes<N & { base: number }>(seq, notesFrom);
    this.noteNo = notes.filter((n) => n.base === seq).length;
    this.notesFrom = notesFrom;
    this.seq = seq;
    this.checkpointSeq = cpSeq;
    this.bytesSinceCheckpoint = 0;
    await this.localState.recordSeq(seq);
    return { state, seq, notes };
  }

  /** Format 1 and 2: newest checkpoint and every batch after it, as whole records (notes are the caller's). */
  async loadRecords(opts: { allowRollback?: boolean } = {}): Promise<{ seq: number; nextIno: number; inodes: Map<number, InodeRecord>; notes: Note[] }> {
    const { state, seq, notes } = await this.replay<{ nextIno: number; inodes: Map<number, InodeRecord> }, Note>(
      (cp: Checkpoint) => ({ nextIno: cp.nextIno, inodes: new Map(cp.inodes.map((r) => [r.ino, r])) }),
      (st, batch: Batch) => {
        for (const r of batch.upserts) st.inodes.set(r.ino, r);
        for (const ino of batch.removes) st.inodes.delete(ino);
        st.nextIno = batch.nextIno;
      },
      opts,
    );
    return { seq, nextIno: state.nextIno, inodes: state.inodes, notes };
  }

  /**
   * The notes that commit `seq` does not hold, in order: those written
   * while it was under way (base seq - 1, from number `notesFrom` on), then
   * those written after it. Older ones are covered by commits.
   */
  async readNotes<T extends { no: number } = Note>(seq: number, notesFrom?: number): Promise<T[]> {
    if (!this.notes) return [];
    const all = await this.notes.pendingNotes();
    const chain = (base: number, first: number): T[] => {
      const out: T[] = [];
      for (const bytes of all) {
        const no = Number(bytes.readBigUInt64BE(8));
        if (Number(bytes.readBigUInt64BE(0)) !== base || no < first) continue;
        // Notes are a chain: a missing or damaged one ends what can be applied.
        if (no !== first + out.length) break;
        try {
          out.push(this.decodeBytes<T>('note', `${base}.${no}`, bytes.subarray(NOTE_HEADER)));
        } catch {
          break;
        }
      }
      return out;
    };
    const during = notesFrom !== undefined && seq > 0 ? chain(seq - 1, notesFrom) : [];
    return [...during, ...chain(seq, 0)];
  }

  /** Where the notes not held by the newest state in the store start (its notesFrom). */
  private async notesFromOf(seq: number, hasBatch: boolean): Promise<number | undefined> {
    const body = hasBatch ? await this.decode<Stamped>('log', seq, this.logKey(seq)) : await this.decode<Stamped>('checkpoint', seq, this.checkpointKey(seq));
    return body.notesFrom;
  }

  /**
   * How many notes in the journal hold changes the store has no commit for
   * yet (left by a mount that was killed); older notes are covered.
   */
  async uncommittedNotes(): Promise<number> {
    if (!this.notes) return 0;
    const { checkpoints, logs } = await this.listSeqs();
    const newest = Math.max(-1, ...checkpoints, ...logs);
    if (newest < 0) return 0;
    const notesFrom = await this.notesFromOf(newest, logs.includes(newest));
    const written = await this.notes.pendingNotes();
    const after = written.filter((bytes) => Number(bytes.readBigUInt64BE(0)) >= newest).length;
    // Notes written while the newest commit was under way count too (any of them, readable or not).
    const during = notesFrom === undefined ? 0 : written.filter((bytes) => Number(bytes.readBigUInt64BE(0)) === newest - 1 && Number(bytes.readBigUInt64BE(8)) >= notesFrom).length;
    return after + during;
  }

  /** Continues a log read by other means (fsck) at this state. */
  resume(seq: number, checkpointSeq: number): void {
    this.seq = seq;
    this.checkpointSeq = checkpointSeq;
    this.noteNo = 0;
    this.notesFrom = undefined;
  }

  /** Journals uncommitted changes locally (survives a crash of the daemon): a note of any shape (the format's); base and number are added. */
  async noteBody(body: object): Promise<void> {
    if (!this.notes) throw new Error('no journal for notes');
    // A commit may complete while this is written: the note keeps the base it was numbered in.
    const base = this.seq;
    const no = this.noteNo;
    const header = Buffer.alloc(NOTE_HEADER);
    header.writeBigUInt64BE(BigInt(base), 0);
    header.writeBigUInt64BE(BigInt(no), 8);
    const sealed = this.encode('note', `${base}.${no}`, { base, no, ...body });
    await this.notes.note(Buffer.concat([header, sealed]));
    if (this.seq === base) this.noteNo = no + 1;
  }

  /** Every note holds only what the store has (nothing is left to commit): they may all go. */
  dropNotes(): void {
    this.notes?.dropNotes();
  }

  /**
   * Taken by a commit at the moment it takes its changes, which must be
   * between notes (the caller waits for the note being written): every
   * note written before is in the commit, every one after is not.
   */
  beginCommit(): CommitMarker | undefined {
    return this.notes && { notesFrom: this.noteNo, notesBefore: this.notes.noteCount };
  }

  get canNote(): boolean {
    return !!this.notes;
  }

  /** Appends one batch; throws CommitConflictError if the number was taken. */
  async append(upserts: InodeRecord[], removes: number[], nextIno: number): Promise<void> {
    await this.appendBody({ nextIno, upserts, removes });
  }

  /**
   * Appends a batch of any shape (the format's); the sequence number is
   * added, and with a marker, where the notes it does not hold start.
   * Without one, every note so far is taken as held (no note is written
   * meanwhile: maintenance, and formats that commit without notes).
   */
  async appendBody(fields: object, marker?: CommitMarker): Promise<void> {
    const seq = this.seq + 1;
    const notesFrom = marker?.notesFrom;
    const body = this.encode('log', String(seq), { seq, ...fields, ...(notesFrom !== undefined && { notesFrom }) });
    try {
      await this.store.put(this.logKey(seq), body, { ifAbsent: true });
    } catch (err) {
      if (err instanceof ConflictError) throw new CommitConflictError(seq);
      throw err;
    }
    this.seq = seq;
    // Notes written meanwhile (numbered from notesFrom in the old base) stay until the next commit holds them.
    this.noteNo = 0;
    this.notesFrom = notesFrom;
    this.notes?.dropNotes(marker?.notesBefore);
    this.bytesSinceCheckpoint += body.length;
    await this.localState.recordSeq(seq);
  }

  /** Everything committed or noted so far survives a power cut. */
  async sync(): Promise<void> {
    await this.store.sync?.();
  }

  shouldCheckpoint(): boolean {
    return this.seq - this.checkpointSeq >= this.checkpointInterval || this.bytesSinceCheckpoint >= 32 * 1024 * 1024;
  }

  /**
   * Writes the whole tree as of the current sequence number, then drops the
   * log entries and the checkpoint it supersedes (known from memory: no
   * listing, so it works while the store is away). A crash in between
   * leaves extra objects for "veilfs gc".
   */
  async checkpoint(inodes: InodeRecord[], nextIno: number): Promise<void> {
    await this.checkpointBody({ nextIno, inodes });
  }

  /** Stores a checkpoint of any shape (the format's) at the current number and drops what it supersedes. */
  async checkpointBody(fields: object): Promise<boolean> {
    const seq = this.seq;
    const previous = this.checkpointSeq;
    if (seq === previous) return false;
    // Create-only: a checkpoint never changes once written, and a journal
    // uploads a create only after everything it refers to.
    const notesFrom = this.notesFrom;
    await this.store.put(this.checkpointKey(seq), this.encode('checkpoint', String(seq), { seq, ...fields, ...(notesFrom !== undefined && { notesFrom }) }), { ifAbsent: true });
    this.checkpointSeq = seq;
    this.bytesSinceCheckpoint = 0;
    for (let s = previous + 1; s <= seq; s++) await this.store.delete(this.logKey(s));
    await this.store.delete(this.checkpointKey(previous));
    return true;
  }

  /** Seals a page of the paged metadata (format 3): bound to its id, padded like the rest. */
  encodePage(id: string, content: unknown): Buffer {
    return this.encode('page', id, content);
  }

  decodePage<T>(id: string, sealed: Uint8Array): T {
    return this.decodeBytes<T>('page', id, sealed);
  }

  get vault(): string {
    return this.vaultId;
  }

  get objectStore(): ObjectStore {
    return this.store;
  }
}
