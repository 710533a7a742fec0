import { randomBytes } from 'node:crypto';
import { close as closeFd, constants, open as openCb, promises as fs, read as readCb, statSync, type Stats } from 'node:fs';
import { constants as osConstants } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { requireAddon } from '../util/native-addon.js';
import { checkKey, ConflictError, NotFoundError, StoreError, StoreFullError, TransientStoreError, type ByteRange, type ObjectInfo, type ObjectStore, type PutOptions } from './types.js';

const TEMP_PREFIX = '.tmp-';
const errnos = osConstants.errno;
const openFd = promisify(openCb);
const readFd = promisify(readCb);
/** A whole pack, and a little more: larger copies are better made off the event loop. */
const IN_PLACE_MAX = 5 * 1024 * 1024;

interface IoAddon {
  /** The bytes, or -errno; -EAGAIN when the kernel would have to wait for a disk (native/veilfs-io.c). */
  readCached(path: string, offset: number, length: number, most: number): Buffer | number;
}
let io: IoAddon | undefined;
const ioAddon = () => (io ??= requireAddon<IoAddon>('veilfs_io', 'the local store reader (native/veilfs-io.c)'));

/** A directory as (device, inode): what tells it from another one put at the same path. */
const identityOf = (st: Stats | undefined) => (st?.isDirectory() ? `${st.dev}:${st.ino}` : undefined);

/**
 * Objects as files under a directory. Every put is durable when it returns:
 * the data is written to a temporary file, fsynced, then moved into place
 * (rename, or link() for create-if-absent, which fails atomically if the
 * name exists), and the directory is fsynced.
 *
 * The directory must stay the one the store was opened on: if it goes (a
 * disk unmounted, a directory moved) or another one takes its path (the
 * empty mount point of that disk), nothing is written there and nothing
 * reads as missing; the store is unavailable until it comes back.
 */
export class LocalStore implements ObjectStore {
  readonly location: string;
  /** The root as first seen; undefined until it exists (a vault being created makes it). */
  private rootIdentity: string | undefined;

  constructor(readonly root: string) {
    this.location = path.resolve(root);
    this.rootIdentity = identityOf(statSync(this.location, { throwIfNoEntry: false }));
  }

  /**
   * Called when a name is missing: throws unless the root is still the
   * directory the store was opened on (and takes it as that directory
   * when none was seen yet).
   */
  private async checkRoot(): Promise<void> {
    const now = identityOf(await fs.stat(this.location).catch(() => undefined));
    if (this.rootIdentity === undefined || now === this.rootIdentity) {
      this.rootIdentity ??= now;
      return;
    }
    throw new TransientStoreError(now === undefined
      ? `the store's directory ${this.location} is gone (a disk unmounted, or the directory moved?); nothing is written in its place until it is back`
      : `${this.location} is no longer the directory the store was opened on (a disk unmounted, or the directory replaced?); nothing is written to it until the store's directory is back`);
  }

  /** A missing object, as an error: NotFoundError, or the reason the whole store is missing. */
  private async missing(key: string): Promise<never> {
    await this.checkRoot();
    throw new NotFoundError(key);
  }

  private pathOf(key: string): string {
    checkKey(key);
    return path.join(this.location, key);
  }

  async get(key: string, range?: ByteRange): Promise<Buffer> {
    const file = this.pathOf(key);
    // What the kernel has in memory is read at once, here: through the
    // thread pool, each call is a wake-up of another thread and back
    // (veilfs-io.c says what that costs a random read). The rest, and
    // every error but a missing object, take the thread pool as before.
    const cached = ioAddon().readCached(file, range?.offset ?? 0, range?.length ?? -1, IN_PLACE_MAX);
    if (typeof cached !== 'number') return cached;
    if (cached === -errnos.ENOENT) return this.missing(key);
    // Whole objects: fs.readFile is much cheaper than a FileHandle (measured 2x).
    if (!range) return fs.readFile(file).catch((err) => this.failed(err, key));
    // Plain descriptors, not a FileHandle, and a close nobody waits for: a
    // ranged read is then two trips to the thread pool instead of three
    // (random reads of packs are made of these).
    let fd: number;
    try {
      fd = await openFd(file, constants.O_RDONLY);
    } catch (err) {
      return this.failed(err, key);
    }
    try {
      const buf = Buffer.allocUnsafe(range.length);
      let done = 0;
      while (done < range.length) {
        const { bytesRead } = await readFd(fd, buf, done, range.length - done, range.offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done === range.length ? buf : buf.subarray(0, done);
    } catch (err) {
      throw translate(err, key);
    } finally {
      closeFd(fd, () => {});
    }
  }

  async put(key: string, data: Uint8Array, options: PutOptions = {}): Promise<void> {
    const file = this.pathOf(key);
    const dir = path.dirname(file);
    const temp = path.join(dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    await this.writeSynced(temp, data, dir);
    try {
      if (options.ifAbsent) {
        await fs.link(temp, file).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'EEXIST') throw new ConflictError(key);
          throw err;
        });
        await fs.unlink(temp);
      } else {
        await fs.rename(temp, file);
      }
      await syncDir(dir);
    } catch (err) {
      await fs.unlink(temp).catch(() => {});
      throw translate(err, key);
    }
  }

  private async writeSynced(temp: string, data: Uint8Array, dir: string): Promise<void> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(temp, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw translate(err, temp);
      // A new subdirectory, or the root of a vault being created; never a root that went away.
      await this.checkRoot();
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      // The root a new vault just made is the one from now on.
      if (this.rootIdentity === undefined) await this.checkRoot();
      handle = await fs.open(temp, 'wx', 0o600);
    }
    try {
      await handle.writeFile(data);
      await handle.sync();
    } catch (err) {
      await handle.close().catch(() => {});
      await fs.unlink(temp).catch(() => {});
      throw translate(err, temp);
    }
    await handle.close();
  }

  async delete(key: string): Promise<void> {
    try {
      await fs.unlink(this.pathOf(key));
    } catch (err) {
      // Deleting what is not there is done, unless the whole store is not there.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw translate(err, key);
      await this.checkRoot();
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    // Walk only the directory the prefix names; its last part filters names.
    const slash = prefix.lastIndexOf('/');
    const dirKey = slash >= 0 ? prefix.slice(0, slash) : '';
    const out: ObjectInfo[] = [];
    await this.walk(dirKey, prefix, out);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  private async walk(dirKey: string, prefix: string, out: ObjectInfo[]): Promise<void> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(path.join(this.location, dirKey), { withFileTypes: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return this.checkRoot();
      throw translate(err, dirKey);
    }
    for (const entry of entries) {
      if (entry.name.startsWith(TEMP_PREFIX)) continue;
      const key = dirKey ? `${dirKey}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await this.walk(key, prefix, out);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        const st = await fs.stat(path.join(this.location, key)).catch(() => undefined);
        if (st) out.push({ key, size: st.size, mtime: st.mtimeMs });
      }
    }
  }

  async stat(key: string): Promise<{ size: number } | undefined> {
    try {
      const st = await fs.stat(this.pathOf(key));
      return { size: st.size };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return this.checkRoot().then(() => undefined);
      throw translate(err, key);
    }
  }

  /** An error of the file system, as the store's: a missing file is checked against a missing store. */
  private failed(err: unknown, key: string): Promise<never> {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? this.missing(key) : Promise.reject(translate(err, key));
  }

  async capacity(): Promise<{ total: number; free: number } | undefined> {
    try {
      const st = await fs.statfs(this.location);
      return { total: st.blocks * st.bsize, free: st.bavail * st.bsize };
    } catch {
      return undefined;
    }
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function translate(err: unknown, key: string): Error {
  if (err instanceof StoreError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return new NotFoundError(key);
  if (e.code === 'ENOSPC' || e.code === 'EDQUOT') return new StoreFullError(key);
  return new StoreError(`local store: ${e.code ?? ''} ${e.message}`.trim(), key);
}
