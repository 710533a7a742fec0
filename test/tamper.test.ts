import t from 'tap';
import { randomBytes } from 'node:crypto';
import { closeSync, cpSync, openSync, readFileSync, readSync, renameSync, rmSync, truncateSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { LocalStore } from '../src/store/local.js';
import { cliEnv, mountDrive, PASSPHRASE, sh, veilfs } from './lib/cli.js';
import { storedPieces, type StoredPiece } from './lib/inspect.js';

const MiB = 1024 * 1024;

for (const format of [1, 2]) t.test(`format ${format}: a store that changes data behind the drive's back gets EIO and a log line naming the file, never wrong bytes`, async (t) => {
  const cli = cliEnv(t);
  t.equal((await veilfs(['init', '--store', cli.store, '--format', String(format)], cli.env)).code, 0);
  const m = path.join(cli.dir, 'mnt');
  const names = ['intact', 'flipped', 'truncated', 'swapped-inside', 'swap-a', 'swap-b', 'replayed', 'deleted'];
  const contents = new Map(names.map((n) => [n, randomBytes(2 * MiB + 4096)]));
  let drive;
  // One mount each, so that in format 2 every file has packs of its own and damage to one touches no other.
  for (const [n, data] of contents) {
    drive = await mountDrive(t, cli, m);
    writeFileSync(path.join(m, n), data);
    t.equal((await drive.unmount()).code, 0);
  }

  const store = new LocalStore(cli.store);
  const pieces = async (n: string) => storedPieces(store, PASSPHRASE, `/${n}`);
  const file = (key: string) => path.join(cli.store, key);
  const readPiece = (p: StoredPiece) => {
    const out = Buffer.alloc(p.length);
    const fd = openSync(file(p.key), 'r');
    readSync(fd, out, 0, p.length, p.offset);
    closeSync(fd);
    return out;
  };
  const writePiece = (p: StoredPiece, bytes: Buffer) => {
    const fd = openSync(file(p.key), 'r+');
    writeSync(fd, bytes, 0, bytes.length, p.offset);
    closeSync(fd);
  };

  // An older version of a block: keep its bytes, overwrite the block through the drive.
  const oldBytes = readPiece((await pieces('replayed'))[0]);
  drive = await mountDrive(t, cli, m);
  const newer = Buffer.from(contents.get('replayed')!);
  newer.fill(7, 0, 1000);
  writeFileSync(path.join(m, 'replayed'), newer);
  t.equal((await drive.unmount()).code, 0);

  const [flipped] = await pieces('flipped');
  const bytes = readPiece(flipped);
  bytes[bytes.length >> 1] ^= 0x20;
  writePiece(flipped, bytes);
  const truncatedAt = (await pieces('truncated'))[1];
  truncateSync(file(truncatedAt.key), truncatedAt.offset + 1000);
  const [s0, s1] = await pieces('swapped-inside');
  const [b0, b1] = [readPiece(s0), readPiece(s1)];
  writePiece(s0, b1);
  writePiece(s1, b0);
  const [a] = await pieces('swap-a');
  const [b] = await pieces('swap-b');
  const [aBytes, bBytes] = [readPiece(a), readPiece(b)];
  writePiece(a, bBytes);
  writePiece(b, aBytes);
  writePiece((await pieces('replayed'))[0], oldBytes);
  unlinkSync(file((await pieces('deleted'))[2].key));

  drive = await mountDrive(t, cli, m);
  t.equal(Buffer.compare(readFileSync(path.join(m, 'intact')), contents.get('intact')!), 0, 'an untouched file reads fine');
  const cases: [string, string][] = [
    ['flipped', 'a flipped byte'], ['truncated', 'a truncated object'], ['swapped-inside', 'two blocks of one file swapped'],
    ['swap-a', 'blocks swapped between files'], ['swap-b', 'blocks swapped between files (other side)'],
    ['replayed', 'an older version of a block put back'], ['deleted', 'a deleted object'],
  ];
  for (const [n, what] of cases) {
    const r = await sh(`cat ${m}/${n} > /dev/null`);
    t.not(r.code, 0, `${what}: the read fails`);
    t.match(r.stderr, /Input\/output error/, `${what}: with EIO`);
    t.match(drive.stderr(), new RegExp(`read /${n}: `), `${what}: the daemon log names /${n}`);
  }
  // Bytes before the damaged block are still served: each block (segment) stands alone.
  const headBytes = truncatedAt.length > 2 ** 20 ? MiB : 64 * 1024;
  const fd = openSync(path.join(m, 'truncated'), 'r');
  const head = Buffer.alloc(headBytes);
  t.equal(readSync(fd, head, 0, headBytes, 0), headBytes);
  closeSync(fd);
  t.equal(Buffer.compare(head, contents.get('truncated')!.subarray(0, headBytes)), 0, 'undamaged blocks of a damaged file stay readable');
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
  const checkpoint = (await new LocalStore(cli.store).list('c3/'))[0].key;
  const bytes = readFileSync(path.join(cli.store, checkpoint));
  bytes[100] ^= 1;
  writeFileSync(path.join(cli.store, checkpoint), bytes);
  const damaged = await veilfs(['mount', '--store', cli.store, m], cli.env);
  t.not(damaged.code, 0, 'a tampered checkpoint is refused');
  t.match(damaged.stderr, /is damaged or was tampered with/);
  t.equal(damaged.stderr.trim().split('\n').length, 1, 'one line');
});
