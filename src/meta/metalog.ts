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
  dropNotes(): void;
}

/** Raised when another writer took the next log sequence number first. */
export class CommitConflictError extends Error {
  constructor(seq: number) {
    super(`another mount committed metadata #${seq} first; this mount cannot merge concurrent writers yet`);
    this.name = 'CommitConflictError';
  }
}

type Kind = 'log' | 'checkpoint' | 'note' | 'page';
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
    const state = await start(await this.decode('checkpoint', cpSeq, this.checkpointKey(cpSeq)));
    let seq = cpSeq;
    for (const s of logs.filter((n) => n > cpSeq)) {
      if (s !== seq + 1) throw new UserError(`metadata log has a gap after #${seq} (next is #${s}); run "veilfs fsck"`);
      await apply(state, await this.decode('log', s, this.logKey(s)));
      seq = s;
    }
    const seen = await this.localState.highestSeq();
    if (seq < seen && !opts.allowRollback) {
      throw new UserError(`the store's metadata (#${seq}) is older than what this machine has seen (#${seen}): it was rolled back or lost, or this machine's journal (~/.cache/veilfs) was removed; refusing to mount (see "veilfs fsck")`);
    }
    const notes = await this.readNotes<N>(seq);
    this.noteNo = notes.length ? notes[notes.length - 1].no + 1 : 0;
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

  /** The notes written after commit `seq`, in order; older ones are covered by commits. */
  async readNotes<T extends { no: number } = Note>(seq: number): Promise<T[]> {
    if (!this.notes) return [];
    const out: T[] = [];
    for (const bytes of await this.notes.pendingNotes()) {
      const base = Number(bytes.readBigUInt64BE(0));
      const no = Number(bytes.readBigUInt64BE(8));
      if (base !== seq) continue;
      // Notes are a chain: a missing or damaged one ends what can be applied.
      if (no !== out.length) break;
      try {
        out.push(this.decodeBytes<T>('note', `${base}.${no}`, bytes.subarray(NOTE_HEADER)));
      } catch {
        break;
      }
    }
    return out;
  }

  /**
   * How many notes in the journal hold changes the store has no commit for
   * yet (left by a mount that was killed); older notes are covered.
   */
  async uncommittedNotes(): Promise<number> {
    if (!this.notes) return 0;
    const { checkpoints, logs } = await this.listSeqs();
    const newest = Math.max(-1, ...checkpoints, ...logs);
    return (await this.notes.pendingNotes()).filter((bytes) => Number(bytes.readBigUInt64BE(0)) >= newest).length;
  }

  /** Continues a log read by other means (fsck) at this state. */
  resume(seq: number, checkpointSeq: number): void {
    this.seq = seq;
    this.checkpointSeq = checkpointSeq;
    this.noteNo = 0;
  }

  /** Journals uncommitted changes locally (survives a crash of the daemon): a note of any shape (the format's); base and number are added. */
  async noteBody(body: object): Promise<void> {
    if (!this.notes) throw new Error('no journal for notes');
    const no = this.noteNo;
    const header = Buffer.alloc(NOTE_HEADER);
    header.writeBigUInt64BE(BigInt(this.seq), 0);
    header.writeBigUInt64BE(BigInt(no), 8);
    const sealed = this.encode('note', `${this.seq}.${no}`, { base: this.seq, no, ...body });
    await this.notes.note(Buffer.concat([header, sealed]));
    this.noteNo = no + 1;
  }

  get canNote(): boolean {
    return !!this.notes;
  }

  /** Appends one batch; throws CommitConflictError if the number was taken. */
  async append(upserts: InodeRecord[], removes: number[], nextIno: number): Promise<void> {
    await this.appendBody({ nextIno, upserts, removes });
  }

  /** Appends a batch of any shape (the format's); the sequence number is added. */
  async appendBody(fields: object): Promise<void> {
    const seq = this.seq + 1;
    const body = this.encode('log', String(seq), { seq, ...fields });
    try {
      await this.store.put(this.logKey(seq), body, { ifAbsent: true });
    } catch (err) {
      if (err instanceof ConflictError) throw new CommitConflictError(seq);
      throw err;
    }
    this.seq = seq;
    this.noteNo = 0;
    this.notes?.dropNotes();
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
    await this.store.put(this.checkpointKey(seq), this.encode('checkpoint', String(seq), { seq, ...fields }), { ifAbsent: true });
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
