/** What the data layer needs to know of a file; the metadata inode provides it. */
export interface DataFile {
  readonly ino: number;
  readonly fileId: string;
  readonly key: Buffer;
  size: number;
}

/**
 * How a format version seals, stores and finds file data. The block cache
 * speaks only this: a block is `blockSize` bytes of plaintext, stored under
 * an opaque reference (a string kept in the file's block map).
 */
export interface DataCodec {
  readonly blockSize: number;
  /**
   * Fetches and authenticates one block. `together` says the reader will
   * likely want what was stored next to it (a sequential reader, or a small
   * file among others), so fetching more at once pays.
   */
  load(file: DataFile, index: number, ref: string, together: boolean): Promise<Buffer>;
  /** How far past what a sequential reader has opened its stored bytes are worth fetching (0: not at all). */
  readonly fetchAheadBytes: number;
  /** Starts fetching the stored bytes that hold a block, without opening them (a later load finds them). */
  fetchAhead(ref: string): void;
  /** Seals (synchronously, before any await: the caller's buffer may change after) and stores a block. */
  save(file: DataFile, index: number, plain: Buffer, used: number): Promise<string>;
  /** What save() returned survives a crash of the daemon (called by close and fsync). */
  persist(): Promise<void>;
  /** Every reference returned so far can be committed: the store gets its bytes before the commit. */
  seal(): Promise<void>;
  /** A reference the next commit no longer refers to: its space may go once that commit is made. */
  free(ref: string): Promise<void>;
  /** A reference that no commit ever referred to (its block was truncated away while being stored). */
  abandon(ref: string): Promise<void>;
  /** Format 3: no committed record refers to this stored object any more (counted in the metadata). */
  unreferenced(objectId: string): Promise<void>;
  /** References the loaded tree holds (so freeing knows when shared storage is unused). */
  track(refs: Iterable<string>): void;
}
