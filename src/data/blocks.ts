import { IntegrityError } from '../errors.js';
import { decryptBlock, encryptBlock } from '../format/block.js';
import { dataKey, newObjectId } from '../format/names.js';
import { getChecked } from '../store/checked-get.js';
import type { ObjectStore } from '../store/types.js';
import type { DataCodec, DataFile } from './codec.js';

/** Format 1: one object per block, the reference is the object id. */
export class BlockObjects implements DataCodec {
  /** One object per block: a load is one GET, and the block cache's own readahead overlaps those. */
  readonly fetchAheadBytes = 0;

  constructor(private readonly store: ObjectStore, readonly blockSize: number, private readonly log: (m: string) => void) {}

  async load(file: DataFile, index: number, objectId: string): Promise<Buffer> {
    const addr = { fileId: file.fileId, index, objectId };
    const what = `block ${index} (object ${objectId}) of inode ${file.ino} failed authentication`;
    try {
      return await getChecked(() => this.store.get(dataKey(objectId)), (sealed) => decryptBlock(file.key, addr, sealed, this.blockSize), {
        onRetry: () => this.log(`${what}; fetching it again`),
      });
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      throw new IntegrityError(`${what}: the store returned damaged, moved or replaced data`);
    }
  }

  fetchAhead(): void {}

  async save(file: DataFile, index: number, plain: Buffer, used: number): Promise<string> {
    const objectId = newObjectId();
    const sealed = encryptBlock(file.key, { fileId: file.fileId, index, objectId }, plain, used, this.blockSize);
    await this.store.put(dataKey(objectId), sealed);
    return objectId;
  }

  async persist(): Promise<void> {}

  async seal(): Promise<void> {}

  free(objectId: string): Promise<void> {
    return this.store.delete(dataKey(objectId));
  }

  /** Format 1 counts references at mount, not in its metadata: never told. */
  async unreferenced(): Promise<void> {}

  abandon(objectId: string): Promise<void> {
    return this.store.delete(dataKey(objectId));
  }

  track(): void {}
}
