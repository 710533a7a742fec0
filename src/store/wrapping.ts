import type { ByteRange, ObjectInfo, ObjectStore, PutOptions } from './types.js';

/** A store that adds behaviour around another: durability, capacity and closing pass through. */
export abstract class WrappingStore implements ObjectStore {
  readonly location: string;

  constructor(protected readonly inner: ObjectStore) {
    this.location = inner.location;
  }

  abstract get(key: string, range?: ByteRange): Promise<Buffer>;
  abstract put(key: string, data: Uint8Array, options?: PutOptions): Promise<void>;
  abstract delete(key: string): Promise<void>;
  abstract list(prefix: string): Promise<ObjectInfo[]>;
  abstract stat(key: string): Promise<{ size: number } | undefined>;

  async sync(): Promise<void> {
    await this.inner.sync?.();
  }

  async capacity(): Promise<{ total: number; free: number } | undefined> {
    return this.inner.capacity?.();
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }
}
