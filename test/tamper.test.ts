import t from 'tap';
import { randomBytes } from 'node:crypto';
import { closeSync, cpSync, openSync, readFileSync, readSync, renameSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { LocalStore } from '../src/store/local.js';
import { cliEnv, mountDrive, PASSPHRASE, sh, veilfs } from './lib/cli.js';
import { blockKeys } from './lib/inspect.js';

const MiB = 1024 * 1024;

t.test('a store that changes data behind the drive\'s back gets EIO and a log line naming the file, never wrong bytes', async (t) => {
  const cli = cliEnv(t);
  t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0);
  const m = path.join(cli.dir, 'mnt');
  const names = ['intact', 'flipped', 'truncated', 'swapped-inside', 'swap-a', 'swap-b', 'replayed', 'deleted'];
  const contents = new Map(names.map((n) => [n, randomBytes(2 * MiB + 4096)]));
  let drive = await mountDrive(t, cli, m);
  for (const [n, data] of contents) writeFileSync(path.join(m, n), data);
  t.equal((await drive.unmount()).code, 0);

  const store = new LocalStore(cli.store);
  const keys = async (n: string) => blockKeys(store, PASSPHRASE, `/${n}`);
  const file = (key: string) => path.join(cli.store, key);

  // An older version of a block: keep its bytes, overwrite the block through the drive.
  const oldBytes = readFileSync(file((await keys('replayed'))[0]));
  drive = await mountDrive(t, cli, m);
  const newer = Buffer.from(contents.get('replayed')!);
  newer.fill(7, 0, 1000);
  writeFileSync(path.join(m, 'replayed'), newer);
  t.equal((await drive.unmount()).code, 0);

  const flipped = file((await keys('flipped'))[0]);
  const bytes = readFileSync(flipped);
  bytes[bytes.length >> 1] ^= 0x20;
  writeFileSync(flipped, bytes);
  truncateSync(file((await keys('truncated'))[1]), 1000);
  const [s0, s1] = (await keys('swapped-inside')).map(file);
  renameSync(s0, `${s0}.tmp`);
  renameSync(s1, s0);
  renameSync(`${s0}.tmp`, s1);
  const a = file((await keys('swap-a'))[0]);
  const b = file((await keys('swap-b'))[0]);
  const aBytes = readFileSync(a);
  writeFileSync(a, readFileSync(b));
  writeFileSync(b, aBytes);
  writeFileSync(file((await keys('replayed'))[0]), oldBytes);
  unlinkSync(file((await keys('deleted'))[2]));

  drive = await mountDrive(t, cli, m);
  t.equal(Buffer.compare(readFileSync(path.join(m, 'intact')), contents.get('intact')!), 0, 'an untouched file reads fine');
  const cases: [string, string][] = [
    ['flipped', 'a flipped byte'], ['truncated', 'a truncated block'], ['swapped-inside', 'two blocks of one file swapped'],
    ['swap-a', 'blocks swapped between files'], ['swap-b', 'blocks swapped between files (other side)'],
    ['replayed', 'an older version of a block put back'], ['deleted', 'a deleted block'],
  ];
  for (const [n, what] of cases) {
    const r = await sh(`cat ${m}/${n} > /dev/null`);
    t.not(r.code, 0, `${what}: the read fails`);
    t.match(r.stderr, /Input\/output error/, `${what}: with EIO`);
    t.match(drive.stderr(), new RegExp(`read /${n}: `), `${what}: the daemon log names /${n}`);
  }
  // Bytes before the damaged block are still served: each block stands alone.
  const fd = openSync(path.join(m, 'deleted'), 'r');
  const head = Buffer.alloc(MiB);
  t.equal(readSync(fd, head, 0, MiB, 0), MiB);
  closeSync(fd);
  t.equal(Buffer.compare(head, contents.get('deleted')!.subarray(0, MiB)), 0, 'undamaged blocks of a damaged file stay readable');
  t.equal((await drive.unmount()).code, 0);

  const fsck = await veilfs(['fsck', '--store', cli.store], cli.env);
  t.equal(fsck.code, 4, 'fsck exits 4: damage found');
  for (const n of names.slice(1)) t.match(fsck.stdout, new RegExp(`damaged: /${n}: `), `fsck names /${n}`);
  t.notMatch(fsck.stdout, /damaged: \/intact/, 'and not the intact file');
});

t.test('tampered or rolled-back metadata refuses to mount, with a clear message', async (t) => {
  const cli = cliEnv(t);
  t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0);
  const m = path.join(cli.dir, 'mnt');
  let drive = await mountDrive(t, cli, m);
  writeFileSync(path.join(m, 'first'), 'first session');
  t.equal((await drive.unmount()).code, 0);
  const snapshot = path.join(cli.dir, 'old-store');
  cpSync(cli.store, snapshot, { recursive: true });
  drive = await mountDrive(t, cli, m);
  writeFileSync(path.join(m, 'second'), 'second session');
  t.equal((await drive.unmount()).code, 0);

  // The store goes back to an older, perfectly valid state.
  const current = path.join(cli.dir, 'current-store');
  renameSync(cli.store, current);
  cpSync(snapshot, cli.store, { recursive: true });
  const rolledBack = await veilfs(['mount', '--store', cli.store, m], cli.env);
  t.not(rolledBack.code, 0, 'a rolled-back store is refused');
  t.match(rolledBack.stderr, /older than what this machine has seen/);
  t.equal(rolledBack.stderr.trim().split('\n').length, 1, 'one line');
  t.equal((await veilfs(['fsck', '--store', cli.store], cli.env)).code, 4, 'fsck reports the rollback');

  rmSync(cli.store, { recursive: true });
  renameSync(current, cli.store);
  const checkpoint = (await new LocalStore(cli.store).list('c/'))[0].key;
  const bytes = readFileSync(path.join(cli.store, checkpoint));
  bytes[100] ^= 1;
  writeFileSync(path.join(cli.store, checkpoint), bytes);
  const damaged = await veilfs(['mount', '--store', cli.store, m], cli.env);
  t.not(damaged.code, 0, 'a tampered checkpoint is refused');
  t.match(damaged.stderr, /is damaged or was tampered with/);
  t.equal(damaged.stderr.trim().split('\n').length, 1, 'one line');
});
