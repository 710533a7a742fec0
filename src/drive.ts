import { BlockCache } from './cache/block-cache.js';
import { subkey } from './crypto/keys.js';
import { dataKey } from './format/names.js';
import { createVault, unlockVault, type VaultHeader } from './format/vault.js';
import { defaultCacheDir, LocalState } from './meta/local-state.js';
import { MetaLog } from './meta/metalog.js';
import { Tree } from './meta/tree.js';
import type { ObjectStore } from './store/types.js';
import { Filesystem } from './vfs/filesystem.js';

export const DEFAULT_CACHE_SIZE = 256 * 1024 * 1024;

export interface DriveOptions {
  passphrase: string;
  cacheSize?: number;
  readOnly?: boolean;
  /** Where this machine keeps per-vault state (default ~/.cache/veilfs). */
  cacheDir?: string;
  log?: (message: string) => void;
  syncIntervalMs?: number;
}

export interface Drive {
  header: VaultHeader;
  fs: Filesystem;
  /** Stores and commits everything; the drive is unusable afterwards. */
  close(): Promise<void>;
}

function metaLog(store: ObjectStore, masterKey: Buffer, header: VaultHeader, cacheDir?: string): MetaLog {
  return new MetaLog(store, subkey(masterKey, 'metadata'), header.vaultId, new LocalState(cacheDir ?? defaultCacheDir(), header.vaultId));
}

/** Creates a vault with an empty root directory. */
export async function initDrive(store: ObjectStore, passphrase: string, opts: { blockSize?: number; kdfLogN?: number; cacheDir?: string } = {}): Promise<VaultHeader> {
  const { header, masterKey } = await createVault(store, passphrase, opts);
  const { records, nextIno } = Tree.initialRecords(process.getuid?.() ?? 0, process.getgid?.() ?? 0);
  await metaLog(store, masterKey, header, opts.cacheDir).initialize(records, nextIno);
  return header;
}

/** Unlocks a vault and assembles the layers: tree, cache, filesystem. */
export async function openDrive(store: ObjectStore, opts: DriveOptions): Promise<Drive> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`veilfs: ${m}\n`));
  const { header, masterKey } = await unlockVault(store, opts.passphrase);
  const tree = await Tree.load(metaLog(store, masterKey, header, opts.cacheDir), (id) => store.delete(dataKey(id)), log);
  const cache = new BlockCache(store, {
    stored: (file, _index, _objectId, previous) => {
      const node = tree.get(file.ino);
      if (node) tree.changed(node);
      if (previous) tree.release(previous);
    },
    log,
  }, { blockSize: header.blockSize, cacheSize: opts.cacheSize ?? DEFAULT_CACHE_SIZE });
  const fs = new Filesystem(tree, cache, { readOnly: opts.readOnly, log, capacity: store.capacity ? () => store.capacity!() : undefined });
  if (!opts.readOnly) fs.startBackgroundSync(opts.syncIntervalMs ?? 2000);
  return { header, fs, close: () => fs.close() };
}
