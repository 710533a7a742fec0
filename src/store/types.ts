/**
 * The narrow interface every object store implements. Stores move opaque
 * bytes under opaque keys; they know nothing about encryption or files.
 */
export interface ByteRange {
  offset: number;
  length: number;
}

export interface PutOptions {
  /** Fail with ConflictError if the key already exists (atomic create). */
  ifAbsent?: boolean;
}

export interface ObjectInfo {
  key: string;
  size: number;
  /** Last modification, ms since the epoch. */
  mtime: number;
}

export interface ObjectStore {
  /** Human-readable location for messages (never contains secrets). */
  readonly location: string;
  /** Throws NotFoundError if the key does not exist. */
  get(key: string, range?: ByteRange): Promise<Buffer>;
  put(key: string, data: Uint8Array, options?: PutOptions): Promise<void>;
  /** Deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Every object whose key starts with prefix, in lexicographic key order. */
  list(prefix: string): Promise<ObjectInfo[]>;
  /** Size of the object, or undefined if it does not exist. */
  stat(key: string): Promise<{ size: number } | undefined>;
  /** Makes every completed put and delete survive a power cut (where the store can tell the difference). */
  sync?(): Promise<void>;
  /** Capacity, where the store can tell. */
  capacity?(): Promise<{ total: number; free: number } | undefined>;
  close?(): Promise<void>;
}

export class StoreError extends Error {
  constructor(message: string, readonly key?: string) {
    super(message);
    this.name = 'StoreError';
  }
}

/** A failure worth retrying: a 5xx, a throttle, a reset connection, a timeout. */
export class TransientStoreError extends StoreError {
  constructor(message: string, key?: string) {
    super(message, key);
    this.name = 'TransientStoreError';
  }
}

export class NotFoundError extends StoreError {
  constructor(key: string) {
    super(`object ${key} not found`, key);
    this.name = 'NotFoundError';
  }
}

export class ConflictError extends StoreError {
  constructor(key: string) {
    super(`object ${key} already exists`, key);
    this.name = 'ConflictError';
  }
}

export class StoreFullError extends StoreError {
  constructor(key: string, detail = 'store is full') {
    super(`${detail} (writing ${key})`, key);
    this.name = 'StoreFullError';
  }
}

/** Keys are ASCII paths made by the format layer; anything else is a bug. */
export function checkKey(key: string): void {
  if (!/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(key) || key.split('/').some((p) => p === '..' || p === '.')) {
    throw new StoreError(`invalid object key ${JSON.stringify(key)}`, key);
  }
}

/** Just the keys of a listing. */
export function keysOf(infos: ObjectInfo[]): string[] {
  return infos.map((i) => i.key);
}
