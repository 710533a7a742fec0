import t from 'tap';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { readHistory } from '../src/check/history.js';
import { subkey } from '../src/crypto/keys.js';
import { PAGE_PREFIX } from '../src/format/names.js';
import { unlockVault } from '../src/format/vault.js';
import { ROOT_INO, type InodeRecord } from '../src/meta/inode.js';
import { entryKey, inodeKey } from '../src/meta/kv.js';
import { LocalState } from '../src/meta/local-state.js';
import { MetaLog } from '../src/meta/metalog.js';
import { LocalStore } from '../src/store/local.js';
import { cliEnv, mountDrive, PASSPHRASE, sh, veilfs } from './lib/cli.js';

/*
 * Maintenance that changes the tree of a format-3 vault commits what it
 * changed, as a mount does: a repair or a repack of a few files writes a
 * few pages, however many the tree has.
 */
t.test('fsck --repair and a repacking gc write the pages they change, not the whole tree', async (t) => {
  const cli = cliEnv(t);
  t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0);
  const m = path.join(cli.dir, 'mnt');
  const store = new LocalStore(cli.store);
  const pages = async () => new Set((await store.list(PAGE_PREFIX)).map((i) => i.key));
  const written = (before: Set<string>, after: Set<string>) => [...after].filter((k) => !before.has(k)).length;

  let drive = await mountDrive(t, cli, m);
  await sh(`mkdir ${m}/many && cd ${m}/many && seq -f 'f%.0f' 1 4000 | xargs touch`);
  const data = new Map<string, Buffer>();
  for (let i = 0; i < 40; i++) {
    data.set(`d${i}`, randomBytes(60_000));
    writeFileSync(path.join(m, `d${i}`), data.get(`d${i}`)!);
  }
  t.equal((await drive.unmount()).code, 0);
  drive = await mountDrive(t, cli, m);
  for (let i = 0; i < 40; i++) {
    if (i % 4 === 0) continue;
    rmSync(path.join(m, `d${i}`));
    data.delete(`d${i}`);
  }
  t.equal((await drive.unmount()).code, 0);

  const beforeGc = await pages();
  t.ok(beforeGc.size >= 40, `the tree has ${beforeGc.size} pages`);
  const gc = await veilfs(['gc', '--store', cli.store, '--min-age', '0s'], cli.env);
  t.equal(gc.code, 0, gc.stderr);
  t.match(gc.stdout, /repacked [1-9]\d* packs/);
  const afterGc = await pages();
  t.ok(written(beforeGc, afterGc) <= 6, `the repack of 10 files wrote ${written(beforeGc, afterGc)} of ${afterGc.size} pages`);
  t.equal((await veilfs(['fsck', '--store', cli.store], cli.env)).code, 0, 'clean after the repack');

  // Damage as a buggy writer could leave it: the root names nothing under "ghost", a file has a wrong link count.
  const { header, masterKey } = await unlockVault(store, PASSPHRASE);
  const log = new MetaLog(store, subkey(masterKey, 'metadata'), header, new LocalState(path.join(cli.dir, 'cache', 'veilfs', header.vaultId)));
  const history = await readHistory(log, { whole: false });
  const many = (await history.map!.get(entryKey(ROOT_INO, 'many'))) as [number, number];
  const someFile = (await history.map!.get(entryKey(many[0], 'f1234'))) as [number, number];
  const record = (await history.map!.get(inodeKey(someFile[0]))) as InodeRecord;
  log.resume(history.seq, history.checkpointSeq);
  await log.appendBody({ nextIno: history.nextIno, inodeCount: history.inodeCount, set: [[inodeKey(record.ino), { ...record, nlink: 3 }], [entryKey(ROOT_INO, 'ghost'), [history.nextIno + 5, 8]]], del: [] });
  const found = await veilfs(['fsck', '--store', cli.store], cli.env);
  t.equal(found.code, 4, found.stdout);
  t.match(found.stdout, /\/many\/f1234: link count 3, should be 1/);

  const beforeRepair = await pages();
  const repaired = await veilfs(['fsck', '--store', cli.store, '--repair'], cli.env);
  t.equal(repaired.code, 1, repaired.stderr);
  t.match(repaired.stdout, /repaired: removed the entry \/ghost/);
  const afterRepair = await pages();
  t.ok(written(beforeRepair, afterRepair) <= 6, `the repair wrote ${written(beforeRepair, afterRepair)} of ${afterRepair.size} pages`);
  t.equal((await veilfs(['fsck', '--store', cli.store], cli.env)).code, 0, 'clean after the repair');

  drive = await mountDrive(t, cli, m);
  t.equal(readdirSync(path.join(m, 'many')).length, 4000, 'every file is still there');
  t.equal((await sh(`stat -c %h ${m}/many/f1234`)).stdout.trim(), '1');
  let wrong = 0;
  for (const [name, bytes] of data) if (Buffer.compare(readFileSync(path.join(m, name)), bytes) !== 0) wrong++;
  t.equal(wrong, 0, 'the repacked files hold their bytes');
  t.equal((await drive.unmount()).code, 0);
});
