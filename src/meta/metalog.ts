import { IntegrityError, UserError } from '../errors.js';
import { open, seal } from '../crypto/xchacha.js';
import { CHECKPOINT_PREFIX, checkpointKey, LOG_PREFIX, logKey, seqOf } from '../format/names.js';
import { ConflictError, keysOf, type ObjectStore } from '../store/types.js';
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

export interface LoadedTree {
  seq: number;
  nextIno: number;
  inodes: Map<number, InodeRecord>;
}

/** Raised when another writer took the next log sequence number first. */
export class CommitConflictError extends Error {
  constructor(seq: number) {
    super(`another mount committed metadata #${seq} first; this mount cannot merge concurrent writers yet`);
    this.name = 'CommitConflictError';
  }
}

const MIN_PAD = 1024;

/**
 * The encrypted metadata: an append-only log of batches m/<seq>, created
 * with create-if-absent, plus checkpoints c/<seq> of the whole tree. Each
 * object's AAD names its kind, vault and sequence number, so objects cannot
 * be swapped or renumbered; the highest number seen is remembered locally,
 * so a log rolled back by the store is refused.
 */
export class MetaLog {
  seq = 0;
  checkpointSeq = 0;
  bytesSinceCheckpoint = 0;

  constructor(
    private readonly store: ObjectStore,
    private readonly key: Buffer,
    private readonly vaultId: string,
    private readonly localState: LocalState,
  ) {}

  private aad(kind: 'log' | 'checkpoint', seq: number): Buffer {
    return Buffer.from(`veilfs v1 meta ${kind}\0${this.vaultId}\0${seq}`);
  }

  private encode(kind: 'log' | 'checkpoint', seq: number, value: unknown): Buffer {
    const json = JSON.stringify(value);
    let padded = MIN_PAD;
    while (padded < Buffer.byteLength(json)) padded *= 2;
    // Trailing spaces are valid JSON, and hide the exact size of the change.
    const plain = Buffer.alloc(padded, 0x20);
    plain.write(json, 0, 'utf8');
    return seal(this.key, plain, this.aad(kind, seq));
  }

  private async decode<T>(kind: 'log' | 'checkpoint', seq: number, key: string): Promise<T> {
    const sealed = await this.store.get(key);
    try {
      const value = JSON.parse(open(this.key, sealed, this.aad(kind, seq)).toString('utf8'));
      if (value?.seq !== seq) throw new IntegrityError('sequence number mismatch');
      return value as T;
    } catch (err) {
      throw new UserError(`metadata object ${key} is damaged or was tampered with (${(err as Error).message}); run "veilfs fsck"`);
    }
  }

  /** Writes the first checkpoint of a new vault. */
  async initialize(inodes: InodeRecord[], nextIno: number): Promise<void> {
    await this.store.put(checkpointKey(0), this.encode('checkpoint', 0, { seq: 0, nextIno, inodes } satisfies Checkpoint), { ifAbsent: true });
    await this.localState.recordSeq(0);
  }

  async load(): Promise<LoadedTree> {
    const checkpoints = keysOf(await this.store.list(CHECKPOINT_PREFIX))
      .map((k) => seqOf(k, CHECKPOINT_PREFIX)).filter((s): s is number => s !== undefined);
    if (checkpoints.length === 0) throw new UserError('vault metadata is missing from the store (no checkpoint found); run "veilfs fsck"');
    const cpSeq = Math.max(...checkpoints);
    const cp = await this.decode<Checkpoint>('checkpoint', cpSeq, checkpointKey(cpSeq));
    const inodes = new Map(cp.inodes.map((r) => [r.ino, r]));
    let nextIno = cp.nextIno;
    let seq = cpSeq;
    const logSeqs = keysOf(await this.store.list(LOG_PREFIX))
      .map((k) => seqOf(k, LOG_PREFIX)).filter((s): s is number => s !== undefined && s > cpSeq).sort((a, b) => a - b);
    for (const s of logSeqs) {
      if (s !== seq + 1) throw new UserError(`metadata log has a gap after #${seq} (next is #${s}); run "veilfs fsck"`);
      const batch = await this.decode<Batch>('log', s, logKey(s));
      for (const r of batch.upserts) inodes.set(r.ino, r);
      for (const ino of batch.removes) inodes.delete(ino);
      nextIno = batch.nextIno;
      seq = s;
    }
    const seen = await this.localState.highestSeq();
    if (seq < seen) {
      throw new UserError(`the store's metadata (#${seq}) is older than what this machine has seen (#${seen}): it was rolled back or lost; refusing to mount`);
    }
    this.seq = seq;
    this.checkpointSeq = cpSeq;
    this.bytesSinceCheckpoint = 0;
    await this.localState.recordSeq(seq);
    return { seq, nextIno, inodes };
  }

  /** Appends one batch; throws CommitConflictError if the number was taken. */
  async append(upserts: InodeRecord[], removes: number[], nextIno: number): Promise<void> {
    const seq = this.seq + 1;
    const body = this.encode('log', seq, { seq, nextIno, upserts, removes } satisfies Batch);
    try {
      await this.store.put(logKey(seq), body, { ifAbsent: true });
    } catch (err) {
      if (err instanceof ConflictError) throw new CommitConflictError(seq);
      throw err;
    }
    this.seq = seq;
    this.bytesSinceCheckpoint += body.length;
    await this.localState.recordSeq(seq);
  }

  /** Everything committed so far survives a power cut. */
  async sync(): Promise<void> {
    await this.store.sync?.();
  }

  shouldCheckpoint(): boolean {
    return this.seq - this.checkpointSeq >= 512 || this.bytesSinceCheckpoint >= 32 * 1024 * 1024;
  }

  /**
   * Writes the whole tree as of the current sequence number, then drops the
   * log entries and checkpoints it supersedes. A crash in between leaves
   * extra objects that the next checkpoint removes.
   */
  async checkpoint(inodes: InodeRecord[], nextIno: number): Promise<void> {
    const seq = this.seq;
    if (seq === this.checkpointSeq) return;
    // Create-only: a checkpoint never changes once written, and a journal
    // uploads a create only after everything it refers to.
    await this.store.put(checkpointKey(seq), this.encode('checkpoint', seq, { seq, nextIno, inodes } satisfies Checkpoint), { ifAbsent: true });
    this.checkpointSeq = seq;
    this.bytesSinceCheckpoint = 0;
    const stale = [
      ...keysOf(await this.store.list(LOG_PREFIX)).filter((k) => (seqOf(k, LOG_PREFIX) ?? Infinity) <= seq),
      ...keysOf(await this.store.list(CHECKPOINT_PREFIX)).filter((k) => (seqOf(k, CHECKPOINT_PREFIX) ?? Infinity) < seq),
    ];
    for (const key of stale) await this.store.delete(key);
  }
}
