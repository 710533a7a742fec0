import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, unlinkSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { subkey } from '../src/crypto/keys.js';
import { dataKey, newObjectId } from '../src/format/names.js';
import { unlockVault } from '../src/format/vault.js';
import { LocalState } from '../src/meta/local-state.js';
import { MetaLog } from '../src/meta/metalog.js';
import { readHistory } from '../src/check/history.js';
import { entryKey, inodeKey } from '../src/meta/kv.js';
import { LocalStore } from '../src/store/local.js';
import { cliEnv, mountDrive, PASSPHRASE, sh, veilfs, type CliEnv } from './lib/cli.js';
import { blockKeys } from './lib/inspect.js';

const MiB = 1024 * 1024;

async function vaultWith(t: Test, files: Record<string, Buffer>, format = '1'): Promise<{ cli: CliEnv; m: string }> {
  const cli = cliEnv(t);
  t.equal((await veilfs(['init', '--store', cli.store, '--format', format], cli.env)).code, 0);
  const m = path.join(cli.dir, 'mnt');
  const drive = await mountDrive(t, cli, m);
  for (const [name, data] of Object.entries(files)) {
    await sh(`mkdir -p "$(dirname ${m}/${name})"`);
    writeFileSync(path.join(m, name), data);
  }
  t.equal((await drive.unmount()).code, 0);
  return { cli, m };
}

t.test('fsck finds damaged files; --repair moves them to /lost+found and the vault is consistent again', async (t) => {
  const good = randomBytes(3 * MiB);
  const hurt = randomBytes(3 * MiB);
  const { cli, m } = await vaultWith(t, { 'docs/good.bin': good, 'docs/hurt.bin': hurt, 'small.txt': Buffer.from('small') });
  const clean = await veilfs(['fsck', '--store', cli.store], cli.env);
  t.equal(clean.code, 0, 'a healthy vault: exit 0');
  t.match(clean.stdout, /checked 3 files, 7 blocks/);

  const store = new LocalStore(cli.store);
  const hurtKeys = await blockKeys(store, PASSPHRASE, '/docs/hurt.bin');
  unlinkSync(path.join(cli.store, hurtKeys[1]));
  // An object nothing refers to, as a crash between storing and committing leaves.
  await store.put(dataKey(newObjectId()), randomBytes(5000));

  const found = await veilfs(['fsck', '--store', cli.store], cli.env);
  t.equal(found.code, 4, 'damage: exit 4');
  t.match(found.stdout, /damaged: \/docs\/hurt\.bin: block 1 .*not found/);
  t.match(found.stdout, /1 unreferenced objects/);
  const repaired = await veilfs(['fsck', '--store', cli.store, '--repair'], cli.env);
  t.equal(repaired.code, 1, `repaired: exit 1 ${repaired.stderr}`);
  t.match(repaired.stdout, /moved to \/lost\+found\/hurt\.bin\.\d+/);
  t.equal((await veilfs(['fsck', '--store', cli.store], cli.env)).code, 0, 'consistent afterwards');

  const drive = await mountDrive(t, cli, m);
  t.equal(Buffer.compare(readFileSync(path.join(m, 'docs/good.bin')), good), 0, 'the rest is untouched');
  const moved = readdirSync(path.join(m, 'lost+found'));
  t.equal(moved.length, 1);
  const recovered = readFileSync(path.join(m, 'lost+found', moved[0]));
  t.equal(recovered.length, hurt.length, 'the damaged file keeps its size');
  t.equal(Buffer.compare(recovered.subarray(0, MiB), hurt.subarray(0, MiB)), 0, 'its good blocks are kept');
  t.ok(recovered.subarray(MiB, 2 * MiB).every((b) => b === 0), 'the lost block reads as zeros');
  t.equal(Buffer.compare(recovered.subarray(2 * MiB), hurt.subarray(2 * MiB)), 0);
  t.notOk(readdirSync(path.join(m, 'docs')).includes('hurt.bin'), 'no longer at its old place');
  await drive.unmount();
});

for (const format of ['1', '3']) t.test(`fsck repairs a broken tree (format ${format}): dangling entries, unreachable inodes, wrong link counts`, async (t) => {
  const { cli, m } = await vaultWith(t, { 'a.txt': Buffer.from('a'), 'dir/b.txt': Buffer.from('b') }, format);
  // Write metadata a buggy or hostile writer could leave behind (validly encrypted).
  const store = new LocalStore(cli.store);
  const { header, masterKey } = await unlockVault(store, PASSPHRASE);
  const log = new MetaLog(store, subkey(masterKey, 'metadata'), header, new LocalState(path.join(cli.dir, 'cache', 'veilfs', header.vaultId)));
  const history = await readHistory(log);
  const { entries: _entries, ...root } = history.inodes.get(1)!;
  const now = Date.now();
  const stray = { ino: 900, mode: 0o100644, uid: 0, gid: 0, nlink: 1, size: 0, atime: now, mtime: now, ctime: now, fileId: randomBytes(16).toString('hex'), key: randomBytes(32).toString('base64') };
  // A root with a wrong link count, an entry naming nothing, a file no entry names.
  log.resume(history.seq, history.checkpointSeq);
  if (format === '3') {
    await log.appendBody({ nextIno: 901, inodeCount: history.inodes.size + 1, set: [[inodeKey(1), { ...root, nlink: 7 }], [entryKey(1, 'ghost'), [777, 8]], [inodeKey(900), { ...stray, segs: [] }]], del: [] });
  } else {
    await log.append([{ ...root, nlink: 7, entries: [..._entries!, ['ghost', 777]] }, { ...stray, blocks: [] }], [], 901);
  }

  const found = await veilfs(['fsck', '--store', cli.store], cli.env);
  t.equal(found.code, 4, found.stderr);
  t.match(found.stdout, /tree: \/ghost: refers to inode 777, which does not exist/);
  t.match(found.stdout, /tree: 1 inodes are not reachable from the root/);
  t.match(found.stdout, /tree: \/: link count 7, should be 3/);
  const repaired = await veilfs(['fsck', '--store', cli.store, '--repair'], cli.env);
  t.equal(repaired.code, 1, repaired.stderr);
  t.equal((await veilfs(['fsck', '--store', cli.store], cli.env)).code, 0, 'consistent afterwards');
  const drive = await mountDrive(t, cli, m);
  t.same(readdirSync(m).sort(), ['a.txt', 'dir', 'lost+found']);
  t.same(readdirSync(path.join(m, 'lost+found')), ['#900'], 'the unreachable file is adopted');
  t.equal((await sh(`stat -c %h ${m}`)).stdout.trim(), '4', 'root link count right (a subdirectory more: lost+found)');
  await drive.unmount();
});

t.test('fsck drops an unreadable log batch and what depends on it, and says so', async (t) => {
  const cli = cliEnv(t);
  t.equal((await veilfs(['init', '--store', cli.store, '--format', '1'], cli.env)).code, 0);
  const m = path.join(cli.dir, 'mnt');
  const drive = await mountDrive(t, cli, m, ['--commit-interval', '0.2']);
  for (let i = 0; i < 4; i++) {
    writeFileSync(path.join(m, `f${i}`), `file ${i}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  await drive.crash(); // no checkpoint: the log batches stay in the store
  const store = new LocalStore(cli.store);
  await veilfs(['gc', '--store', cli.store, '--dry-run'], cli.env); // uploads the journal
  const logs = (await store.list('m/')).map((i) => i.key);
  t.ok(logs.length >= 3, `log batches in the store: ${logs.join(' ')}`);
  const victim = path.join(cli.store, logs[1]);
  const bytes = readFileSync(victim);
  bytes[50] ^= 1;
  writeFileSync(victim, bytes);
  t.not((await veilfs(['mount', '--store', cli.store, m], cli.env)).code, 0, 'the mount refuses');
  const found = await veilfs(['fsck', '--store', cli.store], cli.env);
  t.equal(found.code, 4);
  t.match(found.stdout, new RegExp(`metadata: ${logs[1]} is unreadable`));
  t.match(found.stdout, /cannot be applied/);
  t.equal((await veilfs(['fsck', '--store', cli.store, '--repair'], cli.env)).code, 1);
  t.equal((await veilfs(['fsck', '--store', cli.store], cli.env)).code, 0);
  const again = await mountDrive(t, cli, m);
  t.equal(readFileSync(path.join(m, 'f0'), 'utf8'), 'file 0', 'what the good batches hold is there');
  await again.unmount();
});

t.test('gc deletes old unreferenced objects only, and not while the vault is mounted here', async (t) => {
  const data = randomBytes(2 * MiB);
  const { cli, m } = await vaultWith(t, { 'keep.bin': data });
  const store = new LocalStore(cli.store);
  const orphan = dataKey(newObjectId());
  await store.put(orphan, randomBytes(3000));
  const before = (await store.list('d/')).length;

  const young = await veilfs(['gc', '--store', cli.store, '--min-age', '1h'], cli.env);
  t.equal(young.code, 0);
  t.match(young.stdout, /deleted 0 unreferenced objects/);
  t.match(young.stdout, /kept 1 unreferenced objects younger than 1h/);
  t.ok(await store.stat(orphan), 'a young orphan is kept: a mount elsewhere may be about to commit it');

  const drive = await mountDrive(t, cli, m);
  const busy = await veilfs(['gc', '--store', cli.store, '--min-age', '0s'], cli.env);
  t.not(busy.code, 0, 'refused while mounted on this machine');
  t.match(busy.stderr, /in use by another veilfs process/);
  await drive.unmount();

  const old = await veilfs(['gc', '--store', cli.store, '--min-age', '0s'], cli.env);
  t.equal(old.code, 0);
  t.match(old.stdout, /deleted 1 unreferenced objects/);
  t.equal(await store.stat(orphan), undefined, 'the orphan is gone');
  t.equal((await store.list('d/')).length, before - 1, 'nothing else');
  const again = await mountDrive(t, cli, m);
  t.equal(Buffer.compare(readFileSync(path.join(m, 'keep.bin')), data), 0, 'referenced data intact');
  await again.unmount();
  t.equal((await veilfs(['fsck', '--store', cli.store], cli.env)).code, 0);
});
