import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cliEnv, mountDrive, veilfs } from './lib/cli.js';
import { testVault } from './lib/drive.js';
import { CountingStore } from './lib/counting-store.js';
import { tempDir } from './lib/tmp.js';
import { LocalStore } from '../src/store/local.js';
import { S_IFMT, S_IFREG } from '../src/meta/inode.js';
import type { Tree } from '../src/meta/tree.js';

const PROBE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib/dir_stream.py');
const pad = (i: number) => `f${String(i).padStart(5, '0')}`;

/** A vault over a counting store, mounted, with /d holding n files, the i-th of i % sizes bytes. */
async function vaultWithSizedFiles(t: Test, n: number, sizes: number) {
  const store = new CountingStore(new LocalStore(path.join(tempDir(t), 's')));
  const vault = await testVault(t, { store });
  const drive = await vault.open();
  await drive.fs.mkdir('/d', 0o755);
  for (let i = 0; i < n; i++) {
    const fd = await drive.fs.create(`/d/${pad(i)}`, 0o640);
    await drive.fs.write(fd, Buffer.alloc(i % sizes), 0);
    drive.fs.release(fd);
  }
  return { store, vault, drive };
}

/** An open drive of a fresh vault holding an empty /d; its filesystem. */
async function openWithDir(t: Test) {
  const drive = await (await testVault(t)).open();
  t.teardown(() => drive.close());
  await drive.fs.mkdir('/d', 0o755);
  return drive.fs;
}

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

t.test('a listing leaves out the attributes of the inodes the caller has, without loading them', async (t) => {
  const N = 2000;
  const { store, vault, drive: made } = await vaultWithSizedFiles(t, N, 7);
  let drive = made;
  await drive.close();
  /** The whole listing from a fresh open with a small page budget, and the store reads it took. */
  const listAll = async (known: (ino: number) => boolean) => {
    drive = await vault.open({ cacheSize: 1 << 20 });
    const before = store.gets;
    const fd = await drive.fs.opendir('/d');
    const all = { names: [] as string[], modes: [] as number[], sizes: [] as (number | undefined)[] };
    for (let cookie = 0; ;) {
      const piece = await drive.fs.readdirAt(fd, cookie, { bytes: 32768, attrs: true, known });
      if (piece.names.length === 0) break;
      all.names.push(...piece.names);
      all.modes.push(...piece.modes);
      all.sizes.push(...piece.attrs.map((a) => a?.size));
      cookie = piece.cookies[piece.cookies.length - 1];
    }
    drive.fs.releasedir(fd);
    const gets = store.gets - before;
    await drive.close();
    return { ...all, gets };
  };
  const known = await listAll(() => true);
  const unknown = await listAll(() => false);
  t.equal(known.names.length, N + 2, 'every entry and the dots');
  t.same(known.names, unknown.names, 'the same names either way');
  t.ok(known.sizes.every((s) => s === undefined), 'no attributes for the inodes the caller has');
  t.ok(known.modes.slice(2).every((m) => (m & S_IFMT) === S_IFREG), 'but each entry\'s type');
  t.same(unknown.sizes.slice(2), Array.from({ length: N }, (_, i) => i % 7), 'all attributes for the others');
  t.ok(known.gets * 2 < unknown.gets, `their inodes were not loaded: ${known.gets} store reads, against ${unknown.gets}`);
});

t.test('a listing without attributes gives those of the subdirectories in memory, and loads none', async (t) => {
  const store = new CountingStore(new LocalStore(path.join(tempDir(t), 's')));
  const vault = await testVault(t, { store });
  const made = await vault.open();
  await made.fs.mkdir('/d', 0o755);
  const N = 1500;
  for (let i = 0; i < N; i++) {
    if (i % 3 === 0) await made.fs.mkdir(`/d/${pad(i)}`, 0o750);
    else made.fs.release(await made.fs.create(`/d/${pad(i)}`, 0o640));
  }
  await made.close();
  // A small page budget: most inode pages are still in the store when the listing comes.
  const drive = await vault.open({ cacheSize: 1 << 20 });
  t.teardown(() => drive.close());
  const list = async (known: (ino: number) => boolean) => {
    const before = store.gets;
    const fd = await drive.fs.opendir('/d');
    const attrs = new Map<string, number | undefined>();
    for (let cookie = 0; ;) {
      const piece = await drive.fs.readdirAt(fd, cookie, { bytes: 32768, attrs: false, known });
      if (piece.names.length === 0) break;
      piece.names.forEach((n, i) => attrs.set(n, piece.attrs[i]?.mode));
      cookie = piece.cookies[piece.cookies.length - 1];
    }
    drive.fs.releasedir(fd);
    return { attrs, gets: store.gets - before };
  };
  const dirs = Array.from({ length: N }, (_, i) => pad(i)).filter((_, i) => i % 3 === 0);
  const cold = await list(() => false);
  const listed = [...cold.attrs.values()].filter((m) => m !== undefined).length;
  t.ok(listed < dirs.length / 2, `a cold listing leaves out most subdirectories (${listed} of ${dirs.length} given)`);
  // A walk reaches some of them: their inodes (and the pages they sit in) are in memory now.
  const walked = dirs.slice(0, 40);
  for (const d of walked) await drive.fs.getattr(`/d/${d}`);
  const warm = await list(() => false);
  t.same(walked.map((d) => warm.attrs.get(d)), walked.map(() => 0o040750), 'the walked subdirectories come with their attributes');
  t.ok([...warm.attrs].every(([n, m]) => m === undefined || dirs.includes(n)), 'files never do');
  t.equal(warm.gets, 0, 'and the listing read nothing from the store for them');
  const known = await list(() => true);
  t.ok([...known.attrs.values()].every((m) => m === undefined), 'nor anything the caller has');
});

t.test('the next piece is chosen while the caller reads the last, and what changes meanwhile still shows', async (t) => {
  const fs = await openWithDir(t);
  const N = 3000;
  for (let i = 0; i < N; i++) fs.release(await fs.create(`/d/${pad(i)}`, 0o644));
  await fs.sync();
  // Counts the tree's listing calls: a drafted piece needs none when its request comes.
  const tree = (fs as unknown as { tree: Tree }).tree;
  const entriesAfter = tree.entriesAfter.bind(tree);
  let calls = 0;
  tree.entriesAfter = (...args) => (calls++, entriesAfter(...args));
  const readerPause = () => new Promise((resolve) => setImmediate(resolve));
  const plus = { bytes: 32768, attrs: true, known: () => false };

  const fd = await fs.opendir('/d');
  const first = await fs.readdirAt(fd, 0, plus);
  const next = (name: string) => pad(Number(name.slice(1)) + 1);
  await readerPause();
  calls = 0;
  // Between the pieces: a file of the next piece changes mode, so its drafted entry must not carry the old one.
  const changed = next(first.names.at(-1)!);
  await fs.chmod((await fs.getattr(`/d/${changed}`)).ino, 0o600);
  const second = await fs.readdirAt(fd, first.cookies.at(-1)!, plus);
  t.equal(calls, 0, 'the second piece was chosen ahead');
  t.equal(second.names[0], changed, 'and starts right after the first');
  t.equal(second.attrs[0]!.mode & 0o777, 0o600, 'with the mode it has now, not the one it had when it was chosen');

  // A name made and one removed in the next piece's range: the draft is stale and not used.
  await readerPause();
  const gone = next(second.names.at(-1)!);
  await fs.unlink(`/d/${gone}`);
  fs.release(await fs.create(`/d/${gone}x`, 0o644));
  calls = 0;
  const third = await fs.readdirAt(fd, second.cookies.at(-1)!, plus);
  t.ok(calls > 0, 'after a change in the directory the piece is chosen again');
  t.notOk(third.names.includes(gone), 'the removed name is not listed');
  t.ok(third.names.includes(`${gone}x`), 'the made one is');

  // The whole listing, drafts and all, is the directory in order.
  const all = [...first.names, ...second.names, ...third.names];
  for (let cookie = third.cookies.at(-1)!; ;) {
    await readerPause();
    const piece = await fs.readdirAt(fd, cookie, plus);
    if (piece.names.length === 0) break;
    all.push(...piece.names);
    cookie = piece.cookies.at(-1)!;
  }
  fs.releasedir(fd);
  const expected = [...Array.from({ length: N }, (_, i) => pad(i)).filter((n) => n !== gone), `${gone}x`].sort();
  t.same(all.slice(2), expected, 'every name once, in order');
});

t.test('cookies survive a rewind: the same name keeps its cookie, a name made since gets one that works', async (t) => {
  const fs = await openWithDir(t);
  for (let i = 0; i < 600; i += 2) fs.release(await fs.create(`/d/${pad(i)}`, 0o644));
  const fd = await fs.opendir('/d');
  const read = async () => {
    const cookies = new Map<string, number>();
    for (let cookie = 0; ;) {
      const piece = await fs.readdirAt(fd, cookie);
      if (piece.names.length === 0) return cookies;
      piece.names.forEach((n, i) => cookies.set(n, piece.cookies[i]));
      cookie = piece.cookies[piece.cookies.length - 1];
    }
  };
  const first = await read();
  fs.release(await fs.create(`/d/${pad(301)}`, 0o644));
  const second = await read();
  t.same([...first].filter(([n]) => second.get(n) !== first.get(n)), [], 'every name listed before has its old cookie');
  const added = second.get(pad(301));
  t.ok(added !== undefined && ![...first.values()].includes(added), 'the new name has a cookie of its own');
  t.same((await fs.readdirAt(fd, added!)).names.slice(0, 2), [pad(302), pad(304)], 'and the listing resumes right after it');
  fs.releasedir(fd);
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

t.test('with a slow store, a listing with attributes loads inodes ahead, and a walk the directories it goes to next', async (t) => {
  const N = 3000;
  const { store, vault, drive: made } = await vaultWithSizedFiles(t, N, 5);
  let drive = made;
  const SUBDIRS = 9;
  await drive.fs.mkdir('/t', 0o755);
  for (let s = 1; s <= SUBDIRS; s++) {
    await drive.fs.mkdir(`/t/s${s}`, 0o755);
    for (let i = 0; i < 300; i++) drive.fs.release(await drive.fs.create(`/t/s${s}/${pad(i)}`, 0o640));
  }
  await drive.close();
  drive = await vault.open();
  t.teardown(() => drive.close());
  const fs = drive.fs;
  const listAll = async (dir: string) => {
    const fd = await fs.opendir(dir);
    const names: string[] = [];
    const sizes: (number | undefined)[] = [];
    for (let cookie = 0; ;) {
      const piece = await fs.readdirAt(fd, cookie, { bytes: 32768, attrs: true, known: () => false });
      if (piece.names.length === 0) break;
      names.push(...piece.names);
      sizes.push(...piece.attrs.map((a) => a?.size));
      cookie = piece.cookies[piece.cookies.length - 1];
    }
    fs.releasedir(fd);
    return { names, sizes };
  };
  const settled = async () => {
    for (let quiet = 0; quiet < 3; quiet = store.inFlight === 0 ? quiet + 1 : 0) await new Promise((r) => setTimeout(r, 20));
  };

  store.getDelayMs = 3;
  const big = await listAll('/d');
  t.same(big.names.slice(2), Array.from({ length: N }, (_, i) => pad(i)), 'every name, in order');
  t.same(big.sizes.slice(2), Array.from({ length: N }, (_, i) => i % 5), 'every size');
  t.ok(store.maxInFlight >= 8, `pages loaded many at once (${store.maxInFlight})`);

  const top = await listAll('/t');
  t.equal(top.names.length, SUBDIRS + 2);
  await settled();
  const first = await listAll('/t/s1');
  t.equal(first.names.length, 302);
  await settled();
  const gets = store.gets;
  for (let s = 2; s <= SUBDIRS; s++) t.equal((await listAll(`/t/s${s}`)).names.length, 302, `s${s} listed whole`);
  t.equal(store.gets - gets, 0, 'the directories after the first were loaded while it was listed');
});
