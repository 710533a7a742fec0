import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { BlockCache } from './cache/block-cache.js';
import { subkey } from './crypto/keys.js';
import type { DataCodec } from './data/codec.js';
import { BlockObjects } from './data/blocks.js';
import { PackedSegments, type PartJournal } from './data/packed.js';
import { createVault, unlockVault, type VaultHeader, type VaultSecret } from './format/vault.js';
import { JournaledStore } from './journal/journaled-store.js';
import { defaultCacheDir, LocalState } from './meta/local-state.js';
import { MetaLog, type NoteJournal } from './meta/metalog.js';
import { PagedFormat, WholeTreeFormat, writePagedCheckpoint, type MetaFormat } from './meta/formats.js';
import { Tree } from './meta/tree.js';
import { MeteredStore, type StoreMeter } from './store/metered.js';
import type { ObjectStore } from './store/types.js';
import { Filesystem } from './vfs/filesystem.js';
import { ShareService } from './share/service.js';
import { DEFAULT_CACHE_SIZE } from './cache/default-size.js';

export interface DriveOptions {
  passphrase: VaultSecret;
  cacheSize?: number;
  /** Format 3: memory for metadata pages in use (default 1/16 of cacheSize, at least 8 MiB). */
  metadataCacheBytes?: number;
  readOnly?: boolean;
  /** Where this machine keeps per-vault state and journals (default ~/.cache/veilfs). */
  cacheDir?: string;
  log?: (message: string) => void;
  syncIntervalMs?: number;
  /** On close, give up uploading when the store made no progress for this long (the rest stays journaled). */
  drainStallMs?: number;
  /** Local disk the journal may fill before writers wait. */
  journalBytes?: number;
  /** Commits between checkpoints of the whole tree. */
  checkpointInterval?: number;
}

/** What `veilfs status` shows of a mounted drive. */
export interface DriveStatus {
  cache: { size: number; cleanBytes: number; dirtyBytes: number; blockReads: number; blockFetches: number };
  /** Journaled on this machine, not yet in the store. */
  pending: { entries: number; bytes: number };
  /** Bytes uploaded since the mount began. */
  uploadedBytes: number;
  lastCommitAt: number | undefined;
  store: StoreMeter;
}

export interface Drive {
  header: VaultHeader;
  fs: Filesystem;
  shares: ShareService;
  /** The memory for metadata in use (--metadata-cache-size, or its default). */
  metadataCacheBytes: number;
  /** Changes journaled on this machine but not yet in the store. */
  backlog(): { entries: number; bytes: number };
  status(): DriveStatus;
  /** Commits everything and waits until the store has it (or gives up after stallMs without progress). */
  flush(stallMs: number): Promise<boolean>;
  /** Stores and commits everything; the drive is unusable afterwards. Resolves to whether the store has it all. */
  close(): Promise<boolean>;
}

/** Format 2 keeps whole sealed packs for readers of neighbouring data: this share of the cache budget. */
function packCacheBytes(header: VaultHeader, cacheSize: number): number {
  return header.version >= 2 ? Math.floor(cacheSize / 8) : 0;
}

/** The data layer of the vault's format version. */
export function dataCodec(store: ObjectStore, header: VaultHeader, opts: { cacheSize: number; journal?: PartJournal; log: (m: string) => void }): DataCodec {
  if (header.version < 2) return new BlockObjects(store, header.blockSize, opts.log);
  return new PackedSegments(store, { packCacheBytes: packCacheBytes(header, opts.cacheSize), journal: opts.journal, log: opts.log });
}

/** The metadata layout of the vault's format version; format 3 pages it within a share of the cache budget. */
function metaFormat(log: MetaLog, header: VaultHeader, pageBytes: number): MetaFormat {
  return header.version >= 3 ? new PagedFormat(log, pageBytes) : new WholeTreeFormat(log);
}

function metaLog(store: ObjectStore, masterKey: Buffer, header: VaultHeader, stateDir: string, notes?: NoteJournal): MetaLog {
  return new MetaLog(store, subkey(masterKey, 'metadata'), header, new LocalState(stateDir), notes);
}

/** Per-vault state on this machine: highest metadata number seen, the journal. */
export function vaultStateDir(cacheDir: string | undefined, vaultId: string): string {
  return path.join(cacheDir ?? defaultCacheDir(), vaultId);
}

export function journalDir(stateDir: string): string {
  return path.join(stateDir, 'journal');
}

function hasJournaledChanges(dir: string): boolean {
  return existsSync(dir) && readdirSync(dir).some((n) => n.endsWith('.wal'));
}

/** Creates a vault with an empty root directory. */
export async function initDrive(store: ObjectStore, passphrase: string, opts: { blockSize?: number; kdfLogN?: number; cacheDir?: string; version?: number } = {}): Promise<VaultHeader> {
  const { header, masterKey } = await createVault(store, passphrase, opts);
  const { records, nextIno } = Tree.initialRecords(process.getuid?.() ?? 0, process.getgid?.() ?? 0);
  const log = metaLog(store, masterKey, header, vaultStateDir(opts.cacheDir, header.vaultId));
  if (header.version >= 3) await writePagedCheckpoint(log, records, nextIno, 0);
  else await log.initialize(records, nextIno);
  return header;
}

/** Unlocks a vault and assembles the layers: journal, tree, cache, filesystem. */
export async function openDrive(unmetered: ObjectStore, opts: DriveOptions): Promise<Drive> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`veilfs: ${m}\n`));
  const remote = new MeteredStore(unmetered);
  const cacheSize = opts.cacheSize ?? DEFAULT_CACHE_SIZE;
  const { header, masterKey } = await unlockVault(remote, opts.passphrase);
  const stateDir = vaultStateDir(opts.cacheDir, header.vaultId);
  let store: ObjectStore = remote;
  let journal: JournaledStore | undefined;
  if (opts.readOnly) {
    if (hasJournaledChanges(journalDir(stateDir))) {
      log('changes from an earlier read-write mount wait in the journal on this machine; this read-only mount does not show them (mount read-write to upload them)');
    }
  } else {
    journal = await JournaledStore.open(remote, { dir: journalDir(stateDir), log, maxBytes: opts.journalBytes });
    store = journal;
  }
  try {
    const metadata = metaLog(store, masterKey, header, stateDir, journal);
    if (opts.checkpointInterval) metadata.checkpointInterval = opts.checkpointInterval;
    // Packs a killed mount left half-filled go to the store before anything refers to them in a commit.
    if (journal && header.version >= 2) await PackedSegments.recover(store, journal, log);
    const codec = dataCodec(store, header, { cacheSize, journal, log });
    const cache = new BlockCache(codec, {
      stored: (file, _index, _objectId, previous) => {
        const node = tree.cached(file.ino);
        if (node) tree.changed(node);
        if (previous) tree.release(previous);
      },
      log,
    }, { cacheSize: cacheSize - packCacheBytes(header, cacheSize) });
    const metadataCacheBytes = opts.metadataCacheBytes ?? Math.max(8 * 2 ** 20, Math.floor(cacheSize / 16));
    const tree = await Tree.load(metaFormat(metadata, header, metadataCacheBytes), {
      persist: () => cache.persist(),
      seal: () => cache.seal(),
      free: (ref) => codec.free(ref),
      unreferenced: (pack) => codec.unreferenced(pack),
    }, log, { packed: header.version >= 2 });
    // Formats 1 and 2 count references at mount; format 3 keeps counts in its metadata.
    if (header.version < 3) codec.track(await tree.allRefs());
    const fs = new Filesystem(tree, cache, { readOnly: opts.readOnly, log, capacity: remote.capacity ? () => remote.capacity!() : undefined });
    const shares = await ShareService.open(store, masterKey, header, tree, (p) => fs.lookup(p), log);
    if (codec instanceof PackedSegments) codec.retained = (pack) => shares.holds(pack);
    if (!opts.readOnly) {
      tree.onCommit = (changes) => shares.afterCommit(changes);
      void shares.refreshAll();
    }
    if (!opts.readOnly) fs.startBackgroundSync(opts.syncIntervalMs ?? 2000);
    return {
      header,
      fs,
      shares,
      metadataCacheBytes,
      backlog: () => journal?.backlog ?? { entries: 0, bytes: 0 },
      status: () => ({
        cache: { size: cacheSize, ...cache.stats() },
        pending: journal?.backlog ?? { entries: 0, bytes: 0 },
        uploadedBytes: journal?.uploadedBytes ?? 0,
        lastCommitAt: tree.lastCommitAt,
        store: remote.meter,
      }),
      flush: async (stallMs) => {
        await fs.sync();
        return journal ? journal.drain(stallMs) : true;
      },
      close: async () => {
        try {
          await shares.settled();
          await fs.close();
          await shares.settled();
          if (!journal) return true;
          await journal.sync();
          const drained = await journal.drain(opts.drainStallMs ?? 60_000);
          if (!drained) {
            const { entries, bytes } = journal.backlog;
            log(`the store is not taking uploads: ${entries} changes (${Math.ceil(bytes / 2 ** 20)} MiB) stay in the journal (${journalDir(stateDir)}) and are uploaded on the next mount`);
          }
          return drained;
        } finally {
          await (journal ?? remote).close?.();
        }
      },
    };
  } catch (err) {
    await journal?.close();
    throw err;
  }
}
