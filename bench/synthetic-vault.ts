import * as path from 'node:path';
import { subkey } from '../src/crypto/keys.js';
import { createVault } from '../src/format/vault.js';
import { writePagedMap } from '../src/meta/formats.js';
import { Inode, ROOT_INO, S_IFDIR, S_IFREG } from '../src/meta/inode.js';
import { entryKey, entryValue, inodeKey } from '../src/meta/kv.js';
import { LocalState } from '../src/meta/local-state.js';
import { MetaLog } from '../src/meta/metalog.js';
import { LocalStore } from '../src/store/local.js';
import { vaultEnv } from './lib.js';

const PER_DIR = 1000;

/**
 * A format-3 vault of `files` empty files in directories of 1,000 under
 * the root, written straight as pages (what a mount creating them would
 * leave after its checkpoint, without waiting an hour for it).
 */
export async function synthesizeVault(store: string, dir: string, files: number): Promise<NodeJS.ProcessEnv> {
  const env = vaultEnv(dir);
  const objects = new LocalStore(store);
  const { header, masterKey } = await createVault(objects, env.VEILFS_PASSPHRASE!, {});
  const log = new MetaLog(objects, subkey(masterKey, 'metadata'), header, new LocalState(path.join(dir, 'cache', 'veilfs', header.vaultId)));
  const dirs = Math.ceil(files / PER_DIR);
  const dirIno = (d: number) => ROOT_INO + d;
  const fileIno = (d: number, f: number) => ROOT_INO + dirs + (d - 1) * PER_DIR + f;
  // Names sort as strings ("d10" before "d2"): entries are generated in key order.
  const byName = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => i + 1).sort((a, b) => (`${prefix}${a}` < `${prefix}${b}` ? -1 : 1));
  const dirOrder = byName('d', dirs);
  const fileOrder = byName('f', PER_DIR);
  function* pairs(): Generator<[string, unknown]> {
    for (const d of dirOrder) yield [entryKey(ROOT_INO, `d${d}`), entryValue(dirIno(d), S_IFDIR)];
    for (let d = 1; d <= dirs; d++) for (const f of fileOrder) yield [entryKey(dirIno(d), `f${f}`), entryValue(fileIno(d, f), S_IFREG)];
    const root = new Inode(ROOT_INO, S_IFDIR | 0o755, 0, 0);
    root.nlink = 2 + dirs;
    yield [inodeKey(ROOT_INO), root.toRecord(true)];
    for (let d = 1; d <= dirs; d++) yield [inodeKey(dirIno(d)), new Inode(dirIno(d), S_IFDIR | 0o755, 0, 0).toRecord(true)];
    for (let d = 1; d <= dirs; d++) for (let f = 1; f <= PER_DIR; f++) yield [inodeKey(fileIno(d, f)), new Inode(fileIno(d, f), S_IFREG | 0o644, 0, 0).toRecord(true)];
  }
  await writePagedMap(log, pairs(), fileIno(dirs, PER_DIR) + 1, 1 + dirs + dirs * PER_DIR, 0);
  return env;
}
