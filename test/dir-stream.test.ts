import t from 'tap';
import { execFile } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cliEnv, mountDrive, veilfs } from './lib/cli.js';
import { testVault } from './lib/drive.js';

const PROBE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib/dir_stream.py');
const pad = (i: number) => `f${String(i).padStart(5, '0')}`;

t.test('listing a piece at a time: cookies stay valid while entries come and go', async (t) => {
  const vault = await testVault(t);
  // A small page budget: the listing crosses many pages, loaded and evicted as it goes.
  const drive = await vault.open({ cacheSize: 1 << 20 });
  t.teardown(() => drive.close());
  const fs = drive.fs;
  await fs.mkdir('/d', 0o755);
  const N = 3000;
  for (let i = 0; i < N; i += 2) fs.release(await fs.create(`/d/${pad(i)}`, 0o644));
  await fs.sync(); // half of them committed to pages, the other half only in memory
  for (let i = 1; i < N; i += 2) fs.release(await fs.create(`/d/${pad(i)}`, 0o644));

  const fd = await fs.opendir('/d');
  const seen: string[] = [];
  const cookieOf = new Map<string, number>();
  const removed = new Set<string>();
  let cookie = 0;
  for (let round = 0; ; round++) {
    const piece = await fs.readdirAt(fd, cookie);
    if (piece.names.length === 0) break;
    t.ok(piece.names.length < 400, 'a piece, not the whole directory');
    piece.names.forEach((n, i) => cookieOf.set(n, piece.cookies[i]));
    seen.push(...piece.names);
    cookie = piece.cookies[piece.cookies.length - 1];
    // Between pieces: remove a name not reached yet, add one, and commit now and then.
    const victim = pad(Math.min(N - 1, 2 * seen.length + round));
    if (!cookieOf.has(victim) && !removed.has(victim)) {
      await fs.unlink(`/d/${victim}`);
      removed.add(victim);
    }
    fs.release(await fs.create(`/d/g${round}`, 0o644));
    if (round % 3 === 0) await fs.sync();
  }
  t.equal(new Set(seen).size, seen.length, 'no entry listed twice');
  const expected = ['.', '..', ...Array.from({ length: N }, (_, i) => pad(i)).filter((n) => !removed.has(n))];
  t.same(seen.filter((n) => !n.startsWith('g')), expected, 'every entry present throughout, in order, none removed');
  t.ok(removed.size > 5, `names were removed ahead of the reader (${removed.size})`);
  t.ok(seen.some((n) => n.startsWith('g')), 'names added ahead of the reader are listed');

  // seekdir back to an early cookie: the listing resumes right after that name.
  const back = seen[100];
  const resumed = await fs.readdirAt(fd, cookieOf.get(back)!);
  t.same(resumed.names.slice(0, 3), seen.slice(101, 104), 'resumes after the name the cookie came with');
  // ...even once that name itself is gone.
  await fs.unlink(`/d/${back}`);
  t.same((await fs.readdirAt(fd, cookieOf.get(back)!)).names.slice(0, 3), seen.slice(101, 104), 'and after that name is removed');
  t.same((await fs.readdirAt(fd, 987_654)).names, [], 'a cookie never handed out lists nothing');
  fs.releasedir(fd);
  await t.rejects(fs.readdirAt(fd, 0), { code: 'EBADF' }, 'a closed stream');
  await t.rejects(fs.opendir(`/d/${pad(1)}`), { code: 'ENOTDIR' });
});

t.test('seekdir and telldir through a real mount, while the directory changes', async (t) => {
  const cli = cliEnv(t);
  t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0);
  const m = path.join(cli.dir, 'mnt');
  const drive = await mountDrive(t, cli, m);
  t.teardown(() => drive.unmount());
  const dir = path.join(m, 'big');
  mkdirSync(dir);
  const N = 5000;
  for (let i = 0; i < N; i++) closeSync(openSync(path.join(dir, pad(i)), 'w'));

  const { stdout } = await promisify(execFile)('python3', [PROBE, dir], { maxBuffer: 64 << 20 });
  const r = JSON.parse(stdout) as { first: string[]; middle: string; after_seek: string[]; second_pass: string[]; added: string[]; removed: string[] };
  const removed = new Set(r.removed);
  t.ok(r.removed.length >= 5 && r.added.length >= 5, `the directory changed during the listing (${r.removed.length} removed, ${r.added.length} added)`);
  t.equal(new Set(r.first).size, r.first.length, 'no entry listed twice');
  const stayed = Array.from({ length: N }, (_, i) => pad(i)).filter((n) => !removed.has(n));
  t.same(r.first.filter((n) => n.startsWith('f')).sort(), stayed, 'every file present throughout is listed, and none removed before it was reached');
  t.same(r.first.filter((n) => n.startsWith('new')).sort(), r.added, 'names added ahead of the reader are listed');
  const now = r.second_pass;
  t.same([...now].sort(), ['.', '..', ...stayed, ...r.added].sort(), 'a fresh listing shows the directory as it is');
  t.same(r.after_seek, now.slice(now.indexOf(r.middle) + 1), 'seekdir to a telldir position resumes right after its entry');
});
