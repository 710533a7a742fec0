import { LRUCache } from 'lru-cache';
import { IntegrityError } from '../errors.js';
import { assemblePack, PACK_SIZE } from '../format/pack.js';
import { packIdOfKey, packKey, newObjectId } from '../format/names.js';
import { formatRef, openSegment, parseRef, sealSegment, SEGMENT_SIZE, versionCounter, type SegmentRef } from '../format/segment.js';
import { getChecked } from '../store/checked-get.js';
import type { ObjectStore } from '../store/types.js';
import type { DataCodec, DataFile } from './codec.js';

/** Where the pieces of a pack still being filled are kept safe (the local journal). */
export interface PartJournal {
  appendPart(key: string, at: number, data: Uint8Array): Promise<void>;
  unfinishedObjects(): Promise<{ key: string; data: Buffer }[]>;
  /** Lets go of the pieces of an object the store has whole. */
  dropParts(key: string): void;
}

interface Pack {
  id: string;
  parts: Buffer[];
  /** Each part by where it starts, for reads before the pack is stored. */
  byOffset: Map<number, Buffer>;
  used: number;
  /** Bytes from the start already journaled as parts. */
  persisted: number;
}

interface Closing {
  pack: Pack;
  bytes: Buffer;
  done: Promise<void>;
}

export interface PackedOptions {
  /** Memory for whole packs fetched to be read together (sealed bytes). */
  packCacheBytes: number;
  journal?: PartJournal;
  log: (message: string) => void;
}

/**
 * Format 2: 64 KiB segments sealed one by one and stored back to back in
 * packs of up to 4 MiB. The pack being filled lives in memory (and, piece
 * by piece, in the journal) until a commit or a full pack closes it.
 */
export class PackedSegments implements DataCodec {
  readonly blockSize = SEGMENT_SIZE;
  private open: Pack = newPack();
  private readonly closing = new Map<string, Closing>();
  /** Segments of the current tree stored in each pack. */
  private readonly live = new Map<string, number>();
  private readonly nextVersion = versionCounter();
  private readonly packs: LRUCache<string, Buffer>;
  private persisting: Promise<void> = Promise.resolve();
  private lastFetchedAhead?: string;

  constructor(private readonly store: ObjectStore, private readonly opts: PackedOptions) {
    this.packs = new LRUCache<string, Buffer>({
      maxSize: Math.max(PACK_SIZE, opts.packCacheBytes),
      sizeCalculation: (buf) => Math.max(1, buf.length),
      ignoreFetchAbort: true,
      fetchMethod: (id) => this.store.get(packKey(id)),
    });
  }

  /** Packs a killed mount left half-filled in the journal: stored now, ahead of any commit that refers to them. */
  static async recover(store: ObjectStore, journal: PartJournal, log: (m: string) => void): Promise<void> {
    for (const { key, data } of await journal.unfinishedObjects()) {
      if (!packIdOfKey(key)) continue;
      // Its put went into a later stretch of the journal, since let go while this one stayed (it held
      // something else still needed): these pieces are older than the pack in the store, not unfinished.
      if (await store.stat(key)) {
        journal.dropParts(key);
        continue;
      }
      log(`journal: completing pack ${key} (${Math.ceil(data.length / 1024)} KiB) left by a mount that stopped`);
      await store.put(key, assemblePack([data], data.length));
    }
  }

  async load(file: DataFile, index: number, ref: string, together: boolean): Promise<Buffer> {
    const r = parseRef(ref);
    const what = `segment ${index} (pack ${r.pack} at ${r.offset}) of inode ${file.ino} failed authentication`;
    let attempt = 0;
    const fetch = async (): Promise<Buffer> => {
      const first = attempt++ === 0;
      const local = this.inMemory(r);
      if (local) return local;
      if (first) {
        // peek, not get: a pack keeps its place in the LRU from when it was
        // fetched, so the packs a sequential reader is done with go first and
        // not the ones fetched ahead for it, which nobody has touched yet.
        const whole = this.packs.peek(r.pack) ?? (together ? await this.packs.fetch(r.pack) : undefined);
        if (whole && whole.length >= r.offset + r.length) return whole.subarray(r.offset, r.offset + r.length);
      }
      // A retry gets a fresh copy of just this segment: the cached pack may be the bad copy.
      this.packs.delete(r.pack);
      return this.store.get(packKey(r.pack), { offset: r.offset, length: r.length });
    };
    try {
      return await getChecked(fetch, (sealed) => openSegment(file.key, file.fileId, index, r.version, sealed), {
        onRetry: () => this.opts.log(`${what}; fetching it again`),
      });
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      throw new IntegrityError(`${what}: the store returned damaged, moved or replaced data`);
    }
  }

  /**
   * Half the pack cache: the packs a sequential reader fetches ahead, while
   * the other half holds the ones it is opening.
   */
  get fetchAheadBytes(): number {
    return Math.floor(this.packs.maxSize / 2);
  }

  fetchAhead(ref: string): void {
    const { pack } = parseRef(ref);
    // Consecutive blocks share packs: one request per pack.
    if (pack === this.lastFetchedAhead) return;
    this.lastFetchedAhead = pack;
    if (pack === this.open.id || this.closing.has(pack) || this.packs.has(pack)) return;
    this.packs.fetch(pack).catch(() => {});
  }

  /** A segment of a pack not yet handed to the store. */
  private inMemory(r: SegmentRef): Buffer | undefined {
    const pack = r.pack === this.open.id ? this.open : this.closing.get(r.pack)?.pack;
    return pack?.byOffset.get(r.offset);
  }

  async save(file: DataFile, index: number, plain: Buffer, used: number): Promise<string> {
    const version = this.nextVersion();
    const sealed = sealSegment(file.key, file.fileId, index, version, plain, used);
    return this.copySealed(sealed, version);
  }

  /** Stores a sealed segment (also one copied unchanged by repacking: same version, new place). */
  async copySealed(sealed: Buffer, version: number): Promise<string> {
    const full = this.open.used + sealed.length > PACK_SIZE ? this.close() : undefined;
    const pack = this.open;
    const ref = formatRef({ pack: pack.id, offset: pack.used, length: sealed.length, version });
    pack.parts.push(sealed);
    pack.byOffset.set(pack.used, sealed);
    pack.used += sealed.length;
    this.live.set(pack.id, (this.live.get(pack.id) ?? 0) + 1);
    // Writers wait for a full pack to reach the journal: that is the back-pressure.
    if (full) await full.done;
    return ref;
  }

  /** Closes the pack being filled and hands it to the store. */
  private close(): Closing {
    const pack = this.open;
    this.open = newPack();
    const entry: Closing = { pack, bytes: assemblePack(pack.parts, pack.used), done: Promise.resolve() };
    entry.done = this.put(entry);
    // Awaited later (settleClosing takes closed packs one after another): a failure meanwhile must not count as unhandled, which ends the process.
    entry.done.catch(() => {});
    this.closing.set(pack.id, entry);
    return entry;
  }

  private async put(entry: Closing): Promise<void> {
    await this.store.put(packKey(entry.pack.id), entry.bytes);
    this.closing.delete(entry.pack.id);
  }

  /**
   * close() and fsync(): the new segments of the pack being filled go to
   * the journal as one part, and closed packs must be journaled too. One
   * append for any number of small files closed since the last one.
   */
  persist(): Promise<void> {
    const run = this.persisting.catch(() => {}).then(() => this.persistNow());
    this.persisting = run;
    return run;
  }

  private async persistNow(): Promise<void> {
    const pack = this.open;
    const journal = this.opts.journal;
    if (journal && pack.used > pack.persisted) {
      const from = pack.persisted;
      const bytes = Buffer.concat(partsFrom(pack, from));
      pack.persisted = pack.used;
      try {
        await journal.appendPart(packKey(pack.id), from, bytes);
      } catch (err) {
        pack.persisted = Math.min(pack.persisted, from);
        throw err;
      }
    }
    await this.settleClosing();
  }

  /** Waits for every closed pack to be in the store; a failed put is tried again (once per call). */
  private async settleClosing(): Promise<void> {
    for (const entry of [...this.closing.values()]) {
      try {
        await entry.done;
      } catch {
        entry.done = this.put(entry);
        await entry.done;
      }
    }
  }

  async seal(): Promise<void> {
    if (this.open.used > 0) this.close();
    await this.settleClosing();
  }

  /** Packs something outside the tree still exposes (a share link): the vault stops needing them, gc frees them later. */
  retained: (pack: string) => boolean = () => false;

  async free(ref: string): Promise<void> {
    const { pack } = parseRef(ref);
    const count = this.live.get(pack);
    // Never counted (not in the tree this mount loaded): leave it to gc.
    if (count === undefined) return;
    if (count > 1) {
      this.live.set(pack, count - 1);
      return;
    }
    this.live.delete(pack);
    if (pack === this.open.id || this.closing.has(pack) || this.retained(pack)) return;
    this.packs.delete(pack);
    await this.store.delete(packKey(pack));
  }

  async abandon(ref: string): Promise<void> {
    const { pack } = parseRef(ref);
    const count = this.live.get(pack);
    if (count !== undefined && count > 1) this.live.set(pack, count - 1);
    else this.live.delete(pack);
  }

  async unreferenced(pack: string): Promise<void> {
    // Written by this mount: its own count (which sees segments not committed yet) decides.
    if (this.live.has(pack) || pack === this.open.id || this.closing.has(pack) || this.retained(pack)) return;
    this.packs.delete(pack);
    await this.store.delete(packKey(pack));
  }

  track(refs: Iterable<string>): void {
    for (const ref of refs) {
      const { pack } = parseRef(ref);
      this.live.set(pack, (this.live.get(pack) ?? 0) + 1);
    }
  }
}

/** The parts of a pack from byte `from` on (parts are appended whole, so `from` is a part boundary). */
function partsFrom(pack: Pack, from: number): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const part of pack.parts) {
    if (at >= from) out.push(part);
    at += part.length;
  }
  return out;
}

function newPack(): Pack {
  return { id: newObjectId(), parts: [], byOffset: new Map(), used: 0, persisted: 0 };
}
