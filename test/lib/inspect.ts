import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { subkey } from '../../src/crypto/keys.js';
import { dataKey, packKey } from '../../src/format/names.js';
import { parseRef } from '../../src/format/segment.js';
import { refsOf } from '../../src/meta/refs.js';
import { unlockVault } from '../../src/format/vault.js';
import { LocalState } from '../../src/meta/local-state.js';
import { MetaLog } from '../../src/meta/metalog.js';
import { readHistory } from '../../src/check/history.js';
import type { ObjectStore } from '../../src/store/types.js';

/**
 * Reads a vault's metadata the way a mount does, to find which store keys
 * hold a file's blocks (tests that tamper with the store need them).
 */
export async function blockKeys(store: ObjectStore, passphrase: string, filePath: string): Promise<string[]> {
  return [...new Set((await storedPieces(store, passphrase, filePath)).map((p) => p.key))];
}

/** Where each block (format 1) or segment (format 2) of a file lies: an object, and a byte range in it. */
export interface StoredPiece {
  key: string;
  offset: number;
  length: number;
}

export async function storedPieces(store: ObjectStore, passphrase: string, filePath: string): Promise<StoredPiece[]> {
  const { header, masterKey } = await unlockVault(store, passphrase);
  const stateDir = mkdtempSync(path.join(tmpdir(), 'veilfs-inspect-'));
  try {
    const { inodes } = await readHistory(new MetaLog(store, subkey(masterKey, 'metadata'), header, new LocalState(stateDir)));
    let node = inodes.get(1)!;
    for (const name of filePath.split('/').filter(Boolean)) {
      const ino = new Map(node.entries ?? []).get(name);
      if (ino === undefined) throw new Error(`${filePath}: no such file in the vault`);
      node = inodes.get(ino)!;
    }
    const pieces: StoredPiece[] = [];
    for (const [, ref] of refsOf(node).sort((a, b) => a[0] - b[0])) {
      if (ref.includes('.')) {
        const r = parseRef(ref);
        pieces.push({ key: packKey(r.pack), offset: r.offset, length: r.length });
      } else {
        pieces.push({ key: dataKey(ref), offset: 0, length: (await store.stat(dataKey(ref)))!.size });
      }
    }
    return pieces;
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
}
