import { LRUCache } from 'lru-cache';
import type { DataCodec } from '../data/codec.js';
import { paddedLength } from '../format/block.js';
import { Limiter } from '../util/limiter.js';
import { Readahead } from './readahead.js';

/** What the cache needs to know of a file; the metadata inode provides it. */
export interface CachedFile {
  readonly ino: number;
  readonly fileId: string;
  readonly key: Buffer;
  readonly blocks: Map<number, string>;
  size: number;
  /** What a commit may record: kept consistent with the stored blocks by settle(). */
  durableSize: number;
  durableBlocks: number;
}

export interface CacheEvents {
  /** A block was stored under a new object id, replacing `previous`. */
  stored(file: CachedFile, index: number, objectId: string, previous: string | undefined): void;
  log(message: string): void;
}

export interface BlockCacheOptions {
  /** Bytes of plaintext kept in memory, clean and dirty together. */
  cacheSize: number;
  uploadConcurrency?: number;
}

interface DirtyBlock {
  file: CachedFile;
  index: number;
  buf: Buffer;
  generation: number;
  upload?: Promise<void>;
}

const EMPTY = Buffer.alloc(0);

interface FetchContext {
  file: CachedFile;
  index: number;
  /** Read with what was stored next to it (sequential, or a small file). */
  together: boolean;
}

/** Files up to this size are read with their neighbours in the store: small files are written, and read, together. */
const SMALL_FILE = 1024 * 1024;
/** What random reads landing twice in it fetch whole (Readahead.denseWindow): a pack of a file written in one go. */
const DENSE_WINDOW_BYTES = 4 * 1024 * 1024;

/**
 * Plaintext blocks in memory. Clean blocks sit in an LRU keyed by object id
 * (objects are immutable, so an entry never goes stale); concurrent readers
 * of one block share one fetch. Dirty blocks live outside the LRU, pinned
 * until stored, and writers wait when they would exceed their share.
 */
export class BlockCache {
  readonly blockSize: number;
  private readonly clean: LRUCache<string, Buffer>;
  private readonly dirty = new Map<string, DirtyBlock>();
  private readonly pendingDirty = new Map<string, Promise<DirtyBlock>>();
  private dirtyBytes = 0;
  /** Blocks read, and of those fetched from the store (cache misses). */
  private blockReads = 0;
  private blockFetches = 0;
  private readonly dirtyLimit: number;
  private readonly uploads: Limiter;
  private readonly drained: (() => void)[] = [];
  private readonly maxReadahead: number;
  private readonly loading = new Map<string, Promise<Buffer>>();

  constructor(private readonly codec: DataCodec, private readonly events: CacheEvents, opts: BlockCacheOptions) {
    this.blockSize = codec.blockSize;
    this.dirtyLimit = Math.max(4 * this.blockSize, Math.floor(opts.cacheSize / 4));
    const cleanSize = Math.max(2 * this.blockSize, opts.cacheSize - this.dirtyLimit);
    this.uploads = new Limiter(opts.uploadConcurrency ?? 4);
    this.clean = new LRUCache<string, Buffer>({
      maxSize: cleanSize,
      sizeCalculation: (buf) => Math.max(1, buf.length),
    });
    // Fetch ahead at most a quarter of what the cache holds, so prefetched blocks live until read.
    this.maxReadahead = Math.max(1, Math.min(32, Math.floor(cleanSize / 4 / this.blockSize)));
  }

  /** Sequential-read detection for one open file. */
  newReadahead(): Readahead {
    return new Readahead(this.maxReadahead, Math.max(1, Math.floor(DENSE_WINDOW_BYTES / this.blockSize)));
  }

  private dirtyKey(file: CachedFile, index: number): string {
    return `${file.ino}:${index}`;
  }

  /** Plaintext of a block (possibly shorter than the block size), or null for a hole. */
  private async blockData(file: CachedFile, index: number, sequential = false): Promise<Buffer | null> {
    this.blockReads++;
    const d = this.dirty.get(this.dirtyKey(file, index));
    if (d) return d.buf;
    const ref = file.blocks.get(index);
    if (!ref) return null;
    return this.clean.get(ref) ?? this.fetch(ref, { file, index, together: sequential || file.size <= SMALL_FILE });
  }

  /**
   * Loads a block into the clean cache; concurrent readers share one load.
   * A block evicted before its load completes still reaches its readers.
   * (Our own map rather than the LRU's fetch(): that costs an AbortController
   * per call, and a sequential reader calls it for every block.)
   */
  private fetch(ref: string, context: FetchContext): Promise<Buffer> {
    const loading = this.loading.get(ref);
    if (loading) return loading;
    this.blockFetches++;
    const load = this.codec.load(context.file, context.index, ref, context.together).then(
      (buf) => {
        this.loading.delete(ref);
        this.clean.set(ref, buf);
        return buf;
      },
      (err: unknown) => {
        this.loading.delete(ref);
        throw err;
      },
    );
    this.loading.set(ref, load);
    return load;
  }

  /**
   * Reads up to length bytes at offset into out; returns the count (short
   * at EOF). With a readahead, a sequential reader also starts fetching the
   * blocks it will want next.
   */
  async read(file: CachedFile, offset: number, length: number, out: Buffer, readahead?: Readahead): Promise<number> {
    const end = Math.min(offset + length, file.size);
    if (end <= offset) return 0;
    const bs = this.blockSize;
    const first = Math.floor(offset / bs);
    const last = Math.floor((end - 1) / bs);
    const ahead = readahead?.next(offset, end - offset) ?? 0;
    if (readahead && ahead > 0) {
      this.prefetch(file, last + 1, ahead, readahead);
      if (ahead === readahead.maxBlocks) this.fetchAhead(file, last + 1 + ahead, readahead);
    } else if (readahead && file.size <= this.clean.maxSize / 2) {
      // Only in a file the cache can hold: in a larger one, a window fetched whole is evicted before reads come back to it.
      const from = readahead.denseWindow(first);
      if (from >= 0) this.fetchWindow(file, from, readahead.windowBlocks, first, last);
    }
    const parts: Promise<Buffer | null>[] = [];
    for (let i = first; i <= last; i++) parts.push(this.blockData(file, i, ahead > 0));
    const blocks = await Promise.all(parts);
    let pos = offset;
    for (let i = first; i <= last; i++) {
      const within = pos - i * bs;
      const n = Math.min(bs - within, end - pos);
      const data = blocks[i - first];
      const outAt = pos - offset;
      const avail = data ? Math.max(0, Math.min(n, data.length - within)) : 0;
      if (avail > 0) data!.copy(out, outAt, within, within + avail);
      if (avail < n) out.fill(0, outAt + avail, outAt + n);
      pos += n;
    }
    return end - offset;
  }

  /** Where `count` blocks from `from` end, within the file. */
  private blocksEnd(file: CachedFile, from: number, count: number): number {
    return Math.min(from + count, Math.ceil(file.size / this.blockSize));
  }

  /** Starts fetching blocks [from, end) not in memory, each with its neighbours in the store (one request per pack). */
  private fetchTogether(file: CachedFile, from: number, end: number): void {
    for (let i = from; i < end; i++) {
      if (this.dirty.has(this.dirtyKey(file, i))) continue;
      const ref = file.blocks.get(i);
      if (ref && !this.clean.has(ref)) this.fetch(ref, { file, index: i, together: true }).catch(() => {});
    }
  }

  /** Starts fetching blocks a sequential reader will want next. */
  private prefetch(file: CachedFile, fromIndex: number, count: number, readahead: Readahead): void {
    const end = this.blocksEnd(file, fromIndex, count);
    this.fetchTogether(file, readahead.near.firstUnrequested(fromIndex, end), end);
  }

  /**
   * Starts fetching the blocks of a window that random reads keep coming
   * back to, but for those being read now (readingFrom to readingTo),
   * which load on their own without waiting for the rest.
   */
  private fetchWindow(file: CachedFile, from: number, count: number, readingFrom: number, readingTo: number): void {
    const end = this.blocksEnd(file, from, count);
    this.fetchTogether(file, from, Math.min(readingFrom, end));
    this.fetchTogether(file, Math.max(readingTo + 1, from), end);
  }

  /**
   * A steady sequential reader: the stored bytes of the blocks past the
   * opened window are fetched too, so that several round trips to a distant
   * store overlap; they are opened only when the window reaches them.
   */
  private fetchAhead(file: CachedFile, fromIndex: number, readahead: Readahead): void {
    const blocks = Math.floor(this.codec.fetchAheadBytes / this.blockSize);
    const end = this.blocksEnd(file, fromIndex, blocks);
    for (let i = readahead.far.firstUnrequested(fromIndex, end); i < end; i++) {
      const ref = file.blocks.get(i);
      if (ref && !this.dirty.has(this.dirtyKey(file, i)) && !this.clean.has(ref)) this.codec.fetchAhead(ref);
    }
  }

  async write(file: CachedFile, offset: number, data: Uint8Array): Promise<void> {
    const bs = this.blockSize;
    let pos = 0;
    while (pos < data.length) {
      const at = offset + pos;
      const index = Math.floor(at / bs);
      const within = at - index * bs;
      const n = Math.min(bs - within, data.length - pos);
      const block = await this.dirtyBlock(file, index, within === 0 && n === bs);
      this.ensureCapacity(block, within + n);
      block.buf.set(data.subarray(pos, pos + n), within);
      block.generation++;
      pos += n;
      if (at + n > file.size) file.size = at + n;
      // A block written up to its end is likely complete: store it now, in
      // the background, so large copies stream instead of piling up.
      if (within + n === bs) this.startUpload(block);
    }
    if (this.dirtyBytes > this.dirtyLimit) await this.relievePressure();
  }

  private async dirtyBlock(file: CachedFile, index: number, overwriteAll: boolean): Promise<DirtyBlock> {
    const key = this.dirtyKey(file, index);
    const existing = this.dirty.get(key);
    if (existing) return existing;
    const pending = this.pendingDirty.get(key);
    if (pending) return pending;
    const creating = (async () => {
      let buf = EMPTY;
      if (!overwriteAll && file.blocks.has(index)) {
        const old = await this.blockData(file, index);
        if (old) buf = Buffer.from(old.subarray(0, this.blockSize));
      }
      const block: DirtyBlock = { file, index, buf, generation: 0 };
      this.dirty.set(key, block);
      this.dirtyBytes += buf.length;
      return block;
    })();
    this.pendingDirty.set(key, creating);
    try {
      return await creating;
    } finally {
      this.pendingDirty.delete(key);
    }
  }

  /**
   * Dirty buffers start small and grow by powers of two, so a small file
   * costs kilobytes, not a whole block. Bytes past the old end are zeros.
   * (Buffer.alloc, not allocUnsafe: the padding is stored, and must be zeros.)
   */
  private ensureCapacity(block: DirtyBlock, needed: number): void {
    if (block.buf.length >= needed) return;
    // Past the first block the file is big: growing step by step would only copy.
    const size = block.index > 0 ? this.blockSize : paddedLength(needed, this.blockSize);
    const grown = Buffer.alloc(size);
    block.buf.copy(grown);
    this.dirtyBytes += size - block.buf.length;
    block.buf = grown;
  }

  private startUpload(block: DirtyBlock): void {
    this.upload(block).catch((err) => this.events.log(`background upload of block ${block.index} of inode ${block.file.ino} failed, will retry: ${(err as Error).message}`));
  }

  /** Stores one dirty block; resolves once the version current at call time is stored. */
  private upload(block: DirtyBlock): Promise<void> {
    if (block.upload) {
      // Another upload is running; if it stores an older version, go again.
      return block.upload.then(() => (this.isDirty(block) ? this.upload(block) : undefined));
    }
    const run = this.uploads.run(() => this.store1(block));
    block.upload = run.finally(() => {
      block.upload = undefined;
    });
    return block.upload;
  }

  private isDirty(block: DirtyBlock): boolean {
    return this.dirty.get(this.dirtyKey(block.file, block.index)) === block;
  }

  private async store1(block: DirtyBlock): Promise<void> {
    const { file, index } = block;
    if (!this.isDirty(block)) return;
    const used = Math.min(this.blockSize, file.size - index * this.blockSize);
    if (used <= 0) {
      this.forget(block);
      return;
    }
    const generation = block.generation;
    // Sealing is synchronous, so it captures a consistent snapshot.
    const objectId = await this.codec.save(file, index, block.buf, used);
    if (!this.isDirty(block)) {
      // Truncated or deleted while uploading: nothing refers to this block.
      await this.codec.abandon(objectId).catch(() => {});
      return;
    }
    const previous = file.blocks.get(index);
    file.blocks.set(index, objectId);
    this.events.stored(file, index, objectId, previous);
    if (block.generation === generation) {
      this.forget(block);
      this.clean.set(objectId, block.buf);
      this.settle(file);
    }
  }

  private forget(block: DirtyBlock): void {
    if (!this.isDirty(block)) return;
    this.dirty.delete(this.dirtyKey(block.file, block.index));
    this.dirtyBytes -= block.buf.length;
    if (this.dirtyBytes <= this.dirtyLimit) for (const wake of this.drained.splice(0)) wake();
  }

  private async relievePressure(): Promise<void> {
    // Store the oldest dirty blocks (Map order is insertion order).
    for (const block of this.dirty.values()) {
      if (this.dirtyBytes - this.inFlightBytes() <= this.dirtyLimit / 2) break;
      if (!block.upload) this.startUpload(block);
    }
    while (this.dirtyBytes > this.dirtyLimit) {
      await new Promise<void>((resolve) => {
        this.drained.push(resolve);
        setTimeout(resolve, 1000).unref();
      });
      if (this.dirtyBytes > this.dirtyLimit) {
        for (const block of this.dirty.values()) if (!block.upload) this.startUpload(block);
      }
    }
  }

  private inFlightBytes(): number {
    let n = 0;
    for (const block of this.dirty.values()) if (block.upload) n += block.buf.length;
    return n;
  }

  /** Stores every dirty block of one file (or of all files). */
  async flush(file?: CachedFile): Promise<void> {
    const blocks = [...this.dirty.values()].filter((b) => !file || b.file === file);
    const results = await Promise.allSettled(blocks.map((b) => this.upload(b)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** What was stored survives a crash of the daemon (close, fsync). */
  persist(): Promise<void> {
    return this.codec.persist();
  }

  /** Everything stored may be committed: the store gets it first. */
  seal(): Promise<void> {
    return this.codec.seal();
  }

  /**
   * Once a file has no dirty block left, every stored block matches its
   * current size: that size becomes what commits record.
   */
  private settle(file: CachedFile): void {
    if (!this.hasDirty(file)) this.makeDurable(file, file.size);
  }

  private makeDurable(file: CachedFile, size: number): void {
    file.durableSize = size;
    file.durableBlocks = Math.ceil(size / this.blockSize);
  }

  /** Dirty blocks of a file that have never been stored (for st_blocks). */
  unstoredBlocks(file: CachedFile): number {
    let n = 0;
    for (const b of this.dirty.values()) if (b.file === file && !file.blocks.has(b.index)) n++;
    return n;
  }

  hasDirty(file?: CachedFile): boolean {
    if (!file) return this.dirty.size > 0;
    for (const b of this.dirty.values()) if (b.file === file) return true;
    return false;
  }

  /**
   * Cuts a file to newSize: dirty blocks past the end are dropped, and the
   * tail of the new last block is zeroed so that growing the file again
   * reads zeros. Returns the object ids no longer referenced.
   */
  async truncate(file: CachedFile, newSize: number): Promise<string[]> {
    const bs = this.blockSize;
    const released: string[] = [];
    if (newSize < file.size) {
      const keep = Math.ceil(newSize / bs);
      for (const block of [...this.dirty.values()]) if (block.file === file && block.index >= keep) this.forget(block);
      for (const [index, objectId] of [...file.blocks]) {
        if (index >= keep) {
          file.blocks.delete(index);
          released.push(objectId);
        }
      }
      const within = newSize % bs;
      if (within !== 0 && (file.blocks.has(keep - 1) || this.dirty.has(this.dirtyKey(file, keep - 1)))) {
        const block = await this.dirtyBlock(file, keep - 1, false);
        block.buf.fill(0, within);
        block.generation++;
      }
    }
    file.size = newSize;
    if (newSize < file.durableSize) this.makeDurable(file, newSize);
    this.settle(file);
    return released;
  }

  /** Drops everything of a deleted file without storing it. */
  discard(file: CachedFile): void {
    for (const block of [...this.dirty.values()]) if (block.file === file) this.forget(block);
  }

  stats(): { cleanBytes: number; dirtyBytes: number; blockReads: number; blockFetches: number } {
    return { cleanBytes: this.clean.calculatedSize ?? 0, dirtyBytes: this.dirtyBytes, blockReads: this.blockReads, blockFetches: this.blockFetches };
  }
}
