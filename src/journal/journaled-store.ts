import { errorMessage } from '../errors.js';
import { ConflictError, NotFoundError, StoreError, StoreFullError, type ByteRange, type ObjectInfo, type ObjectStore, type PutOptions } from '../store/types.js';
import { acquireLock, type Lock } from './lock.js';
import { Wal, type WalOp, type WalRecord } from './wal.js';

export interface JournalOptions {
  /** The journal's directory (one per vault on this machine). */
  dir: string;
  /** Local disk the journal may fill before writers wait for uploads. */
  maxBytes?: number;
  /** How long a writer waits for journal space before ENOSPC. */
  spaceWaitMs?: number;
  /** Uploads in flight at once. */
  uploadConcurrency?: number;
  /** Ask the store after each upload whether it really has the object. */
  verifyUploads?: boolean;
  /** Plaintext-free payload bytes kept in memory for uploads not yet done. */
  memoryBytes?: number;
  /** Size at which the log starts a new segment file (default 64 MiB). */
  segmentBytes?: number;
  log?: (message: string) => void;
}

interface Entry {
  id: number;
  record: WalRecord;
  /** The payload while it is cheap to keep; else it is read back from the log. */
  data?: Uint8Array;
  running: boolean;
  /** Must wait until every earlier entry is in the store. */
  ordered: boolean;
}

const MAX_BACKOFF_MS = 30_000;

/**
 * A write-back layer over a remote store. Every change is appended to a
 * local write-ahead log first (that is when put/delete return; sync() makes
 * them survive a power cut) and uploaded in the background. Reads see the
 * journal over the remote. Upload order keeps the remote a consistent
 * prefix of the history: plain puts of fresh keys go in parallel, while a
 * conditional put or a delete waits until everything before it is in the
 * store, and everything after it waits for it. Nothing leaves the journal
 * until the store has it; an unreachable store only delays the uploads,
 * which resume on the next mount if need be.
 */
export class JournaledStore implements ObjectStore {
  readonly location: string;
  /** Pending entries in log order (Map keeps insertion order). */
  private readonly pending = new Map<number, Entry>();
  /** Newest pending entry per key: what reads must see. */
  private readonly latest = new Map<string, Entry>();
  /** Unordered puts ready to go. */
  private readonly ready: Entry[] = [];
  /** Local-only records, oldest first, until dropNotes(). */
  private readonly notes: WalRecord[] = [];
  /** Pieces of objects still being filled, by key, until their put. */
  private readonly parts = new Map<string, WalRecord[]>();
  private nextId = 0;
  private running = 0;
  private memoryUsed = 0;
  private pausedUntil = 0;
  private failures = 0;
  private pumpTimer?: NodeJS.Timeout;
  private progressWaiters: (() => void)[] = [];
  private conflict?: string;
  private closed = false;
  private readonly maxBytes: number;
  private readonly spaceWaitMs: number;
  private readonly concurrency: number;
  private readonly verify: boolean;
  private readonly memoryBytes: number;
  private readonly log: (message: string) => void;
  /** Uploads completed since open, for progress checks. */
  uploaded = 0;
  /** Bytes of journal records uploaded since this store opened (for rates in `veilfs status`). */
  uploadedBytes = 0;

  private constructor(private readonly remote: ObjectStore, private readonly wal: Wal, private readonly lock: Lock, opts: JournalOptions) {
    this.location = remote.location;
    this.maxBytes = opts.maxBytes ?? 4 * 1024 ** 3;
    this.spaceWaitMs = opts.spaceWaitMs ?? 60_000;
    this.concurrency = opts.uploadConcurrency ?? 16;
    this.verify = opts.verifyUploads ?? true;
    this.memoryBytes = opts.memoryBytes ?? 64 * 1024 * 1024;
    this.log = opts.log ?? (() => {});
  }

  /**
   * Opens the journal (one process at a time per directory) and resumes
   * the uploads that an earlier mount left behind.
   */
  static async open(remote: ObjectStore, opts: JournalOptions): Promise<JournaledStore> {
    const lock = await acquireLock(opts.dir);
    try {
      const { wal, records } = await Wal.open(opts.dir, { log: opts.log, segmentBytes: opts.segmentBytes, onDirRemade: () => lock.renew() });
      const store = new JournaledStore(remote, wal, lock, opts);
      for (const record of records) {
        if (record.op === 'note') store.notes.push(record);
        else if (record.op === 'part') store.addPart(record);
        else {
          if (record.op === 'put') store.dropParts(record.key);
          store.enqueue(record);
        }
      }
      if (records.length) {
        opts.log?.(`journal: resuming ${records.length} changes (${Math.ceil(wal.bytes / 1024)} KiB) not yet in the store`);
      }
      store.pump();
      return store;
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  private enqueue(record: WalRecord, data?: Uint8Array): Entry {
    const earlier = this.latest.get(record.key);
    const entry: Entry = {
      id: this.nextId++,
      record,
      running: false,
      // Fresh keys can go in any order; anything that may touch an existing key cannot.
      ordered: record.op === 'delete' || !!record.ifAbsent || earlier !== undefined,
    };
    if (data && this.memoryUsed + data.length <= this.memoryBytes) {
      entry.data = data;
      this.memoryUsed += data.length;
    }
    this.pending.set(entry.id, entry);
    this.latest.set(record.key, entry);
    if (!entry.ordered) this.ready.push(entry);
    return entry;
  }

  // ---- reads: the journal over the remote ----

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    const entry = this.latest.get(key);
    if (entry?.record.op === 'delete') throw new NotFoundError(key);
    if (entry) {
      if (entry.data) return sliceRange(Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength), range);
      try {
        return await this.wal.read(entry.record, range);
      } catch {
        // Uploaded and released meanwhile: the remote has it now.
      }
    }
    return this.remote.get(key, range);
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    const entry = this.latest.get(key);
    if (entry) return entry.record.op === 'delete' ? undefined : { size: entry.record.length };
    return this.remote.stat(key);
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    // Journal first, store second: an upload that completes in between is
    // then in the store's listing, instead of in neither.
    const journaled = [...this.latest].filter(([key]) => key.startsWith(prefix));
    const byKey = new Map((await this.remote.list(prefix)).map((i) => [i.key, i]));
    const now = Date.now();
    for (const [key, entry] of journaled) {
      if (entry.record.op === 'delete') byKey.delete(key);
      else byKey.set(key, { key, size: entry.record.length, mtime: now });
    }
    return [...byKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  // ---- writes: into the log, then uploaded ----

  async put(key: string, data: Uint8Array, options: PutOptions = {}): Promise<void> {
    this.checkOpen();
    const entry = this.latest.get(key);
    if (options.ifAbsent && entry && entry.record.op === 'put') throw new ConflictError(key);
    if (!options.ifAbsent) await this.waitForSpace(key, data.length);
    const record = await this.append({ op: 'put', key, ifAbsent: options.ifAbsent || undefined }, data, key);
    this.dropParts(key);
    this.enqueue(record, data);
    this.pump();
  }

  async delete(key: string): Promise<void> {
    this.checkOpen();
    const record = await this.append({ op: 'delete', key }, new Uint8Array(0), key);
    this.enqueue(record);
    this.pump();
  }

  /**
   * Keeps bytes in the journal only, never uploaded: what the metadata
   * layer needs to rebuild changes that are not yet committed to the store.
   */
  async note(data: Uint8Array): Promise<void> {
    this.checkOpen();
    this.notes.push(await this.append({ op: 'note', key: '' }, data, 'note'));
  }

  /**
   * Journals a piece of an object that is still being filled (the pack a
   * small file's segments went into), so that it survives a crash before
   * the whole object is put. The put of the key drops its pieces.
   */
  async appendPart(key: string, at: number, data: Uint8Array): Promise<void> {
    this.checkOpen();
    this.addPart(await this.append({ op: 'part', key, at }, data, key));
  }

  private addPart(record: WalRecord): void {
    const list = this.parts.get(record.key) ?? [];
    list.push(record);
    this.parts.set(record.key, list);
  }

  /** Lets go of the pieces of an object: its put holds them, or the store has it whole. */
  dropParts(key: string): void {
    for (const record of this.parts.get(key) ?? []) this.wal.release(record);
    this.parts.delete(key);
  }

  /** Objects left half-filled by a mount that stopped: their pieces, in order, as one buffer each. */
  async unfinishedObjects(): Promise<{ key: string; data: Buffer }[]> {
    const out = [];
    for (const [key, records] of this.parts) {
      const end = Math.max(...records.map((r) => (r.at ?? 0) + r.length));
      const data = Buffer.alloc(end);
      for (const r of records) (await this.wal.read(r)).copy(data, r.at ?? 0);
      out.push({ key, data });
    }
    return out;
  }

  /** The notes not yet dropped, oldest first. */
  async pendingNotes(): Promise<Buffer[]> {
    const out = [];
    for (const record of this.notes) out.push(await this.wal.read(record));
    return out;
  }

  get noteCount(): number {
    return this.notes.length;
  }

  /** The oldest `count` notes (all by default) are covered by a commit: they may go. */
  dropNotes(count = this.notes.length): void {
    // In place: a note being written holds this list and pushes into it when its write completes.
    for (const record of this.notes.splice(0, count)) this.wal.release(record);
  }

  private async append(op: WalOp, data: Uint8Array, key: string): Promise<WalRecord> {
    try {
      return await this.wal.append(op, data);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT') throw new StoreFullError(key, `no space left for the local journal in ${this.wal.dir}`);
      throw new StoreError(`cannot write the local journal in ${this.wal.dir}: ${errorMessage(err)}`, key);
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreError('the journal is closed');
  }

  private async waitForSpace(key: string, size: number): Promise<void> {
    const deadline = Date.now() + this.spaceWaitMs;
    while (this.wal.bytes + size > this.maxBytes && this.wal.bytes > 0) {
      if (Date.now() > deadline) {
        throw new StoreFullError(key, `the local journal is full (${Math.round(this.wal.bytes / 2 ** 20)} MiB waiting) and the store is not taking uploads`);
      }
      await this.nextProgress(Math.max(10, Math.min(1000, deadline - Date.now())));
    }
  }

  /** Survives a power cut: everything put or deleted so far. */
  async sync(): Promise<void> {
    await this.wal.sync();
  }

  // ---- uploads ----

  private pump(): void {
    if (this.closed || this.conflict) return;
    const now = Date.now();
    if (now < this.pausedUntil) {
      if (!this.pumpTimer) {
        this.pumpTimer = setTimeout(() => {
          this.pumpTimer = undefined;
          this.pump();
        }, this.pausedUntil - now);
      }
      return;
    }
    // Ordered entries at the head may start: one create, or a run of deletes
    // (deletes of distinct keys do not depend on each other).
    for (const entry of this.pending.values()) {
      if (this.running >= this.concurrency || !entry.ordered) break;
      if (!entry.running) {
        if (entry.record.op !== 'delete' && entry !== this.pending.values().next().value) break;
        this.start(entry);
      }
      if (entry.record.op !== 'delete') break;
    }
    while (this.running < this.concurrency) {
      const next = this.ready.shift();
      if (!next) break;
      if (!next.running && this.pending.has(next.id)) this.start(next);
    }
  }

  private start(entry: Entry): void {
    entry.running = true;
    this.running++;
    this.upload(entry).then(
      () => this.finished(entry),
      (err) => this.failed(entry, err),
    );
  }

  private async upload(entry: Entry): Promise<void> {
    const { record } = entry;
    if (record.op === 'delete') {
      await this.remote.delete(record.key);
      return;
    }
    const data = entry.data ?? (await this.wal.read(record));
    try {
      await this.remote.put(record.key, data, { ifAbsent: record.ifAbsent });
    } catch (err) {
      // A retried or replayed create may find its own earlier upload.
      if (!(err instanceof ConflictError) || !(await this.remoteHas(record.key, data))) throw err;
      return;
    }
    if (this.verify) {
      const st = await this.remote.stat(record.key);
      if (!st || st.size !== data.length) throw new LostWriteError(record.key);
    }
  }

  /**
   * Whether the store's object under key is these bytes. A read that came
   * back damaged (a flipped bit, cut short) is made again: taken at its
   * word, it would pass for another writer's object, and this mount would
   * stop uploading.
   */
  private async remoteHas(key: string, data: Uint8Array): Promise<boolean> {
    let previous: Buffer | undefined;
    for (let attempt = 0; attempt < 3; attempt++) {
      const stored = await this.remote.get(key).catch(() => undefined);
      if (stored && Buffer.compare(stored, data) === 0) return true;
      // The same other bytes twice: another writer's object, not a bad read.
      if (stored && previous?.equals(stored)) return false;
      previous = stored;
    }
    return false;
  }

  private finished(entry: Entry): void {
    this.running--;
    this.pending.delete(entry.id);
    if (this.latest.get(entry.record.key) === entry) this.latest.delete(entry.record.key);
    if (entry.data) {
      this.memoryUsed -= entry.data.length;
      entry.data = undefined;
    }
    this.wal.release(entry.record);
    this.uploaded++;
    this.uploadedBytes += entry.record.length;
    if (this.failures > 0) {
      this.log(`journal: the store takes uploads again (${this.pending.size} changes still waiting)`);
      this.failures = 0;
    }
    this.notifyProgress();
    this.pump();
  }

  private failed(entry: Entry, err: unknown): void {
    this.running--;
    entry.running = false;
    if (err instanceof ConflictError) {
      this.conflict = `another writer created ${entry.record.key} in the store`;
      this.log(`journal: ${this.conflict}; this mount's later changes stay in the journal (${this.wal.dir}) and are not uploaded (one writer per vault)`);
      this.notifyProgress();
      return;
    }
    this.failures++;
    const backoff = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(this.failures - 1, 5));
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + backoff);
    if (this.failures === 1 || this.failures % 10 === 0) {
      this.log(`journal: upload of ${entry.record.key} failed (${errorMessage(err)}); ${this.pending.size} changes (${Math.ceil(this.wal.bytes / 2 ** 20)} MiB) wait in the journal, retrying in ${Math.round(backoff / 1000)} s`);
    }
    if (!entry.ordered) this.ready.unshift(entry);
    this.notifyProgress();
    this.pump();
  }

  private notifyProgress(): void {
    for (const wake of this.progressWaiters.splice(0)) wake();
  }

  private nextProgress(maxWaitMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, maxWaitMs);
      this.progressWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Changes not yet in the store. */
  get backlog(): { entries: number; bytes: number } {
    return { entries: this.pending.size, bytes: this.wal.bytes };
  }

  /**
   * Waits until every change is in the store, giving up when no upload has
   * completed for stallMs. Returns whether the journal is empty.
   */
  async drain(stallMs: number): Promise<boolean> {
    let lastCount = this.uploaded;
    let lastProgress = Date.now();
    this.pausedUntil = 0;
    this.pump();
    while (this.pending.size > 0 && !this.conflict) {
      await this.nextProgress(Math.min(1000, stallMs));
      if (this.uploaded !== lastCount) {
        lastCount = this.uploaded;
        lastProgress = Date.now();
      } else if (Date.now() - lastProgress >= stallMs) {
        return false;
      }
    }
    return this.pending.size === 0;
  }

  /** Stops uploading; what is not in the store yet stays in the journal for the next mount. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    await this.wal.close();
    await this.lock.release();
    await this.remote.close?.();
  }

  capacity(): Promise<{ total: number; free: number } | undefined> {
    return this.remote.capacity?.() ?? Promise.resolve(undefined);
  }
}

/** The store acknowledged a put but does not have the object. */
export class LostWriteError extends StoreError {
  constructor(key: string) {
    super(`the store acknowledged ${key} but does not have it`, key);
    this.name = 'LostWriteError';
  }
}

function sliceRange(buf: Buffer, range?: ByteRange): Buffer {
  if (!range) return buf;
  return buf.subarray(Math.min(range.offset, buf.length), Math.min(range.offset + range.length, buf.length));
}
