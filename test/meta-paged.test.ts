import t from 'tap';
import * as path from 'node:path';
import { subkey } from '../src/crypto/keys.js';
import { initDrive, openDrive } from '../src/drive.js';
import { unlockVault } from '../src/format/vault.js';
import { PagedFormat } from '../src/meta/formats.js';
import { PageTree } from '../src/meta/pagetree.js';
import { LocalState } from '../src/meta/local-state.js';
import { MetaLog } from '../src/meta/metalog.js';
import { Tree } from '../src/meta/tree.js';
import { LocalStore } from '../src/store/local.js';
import type { ByteRange, ObjectStore, PutOptions } from '../src/store/types.js';
import { Inode, S_IFREG } from '../src/meta/inode.js';
import { PASSPHRASE } from './lib/drive.js';
import { tempDir } from './lib/tmp.js';

/** A store that counts what is put under each prefix, and can be told to fail puts of one prefix after some. */
class Recording implements ObjectStore {
  bytes = new Map<string, number>();
  failPrefix?: string;
  failAfter = 0;
  constructor(private readonly inner: ObjectStore) {}
  get location() {
    return this.inner.location;
  }
  get(key: string, range?: ByteRange) {
    return this.inner.get(key, range);
  }
  stat(key: string) {
    return this.inner.stat(key);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  async put(key: string, data: Buffer, opts?: PutOptions) {
    if (this.failPrefix && key.startsWith(this.failPrefix) && this.failAfter-- <= 0) throw new Error(`injected failure putting ${key}`);
    const prefix = key.split('/')[0];
    this.bytes.set(prefix, (this.bytes.get(prefix) ?? 0) + data.length);
    return this.inner.put(key, data, opts);
  }
  reset() {
    this.bytes.clear();
  }
}

const noData = { persist: async () => {}, seal: async () => {}, free: async () => {} };

async function pagedTree(store: ObjectStore, dir: string, budget = 1 << 20): Promise<Tree> {
  const { header, masterKey } = await unlockVault(store, PASSPHRASE);
  const log = new MetaLog(store, subkey(masterKey, 'metadata'), header, new LocalState(path.join(dir, 'state')));
  log.checkpointInterval = 1000;
  return Tree.load(new PagedFormat(log, budget), noData, () => {}, { packed: true });
}

/** Adds files to the root directory, as the filesystem would (without data). */
function addFiles(tree: Tree, from: number, count: number): Inode[] {
  const made: Inode[] = [];
  for (let i = from; i < from + count; i++) {
    const node = tree.create(S_IFREG | 0o644, 0, 0);
    tree.setEntry(tree.root, `file-${i}`, node);
    made.push(node);
  }
  tree.changed(tree.root);
  return made;
}

t.test('format 3: a commit costs the change, a checkpoint the changed pages, a mount the root', async (t) => {
  const dir = tempDir(t);
  const store = new Recording(new LocalStore(path.join(dir, 'store')));
  await initDrive(store, PASSPHRASE, { kdfLogN: 10, cacheDir: path.join(dir, 'cache') });
  let tree = await pagedTree(store, dir);
  addFiles(tree, 0, 30_000);
  await tree.compact();
  t.ok((store.bytes.get('t') ?? 0) > 1_000_000, 'the first checkpoint writes every page');

  tree = await pagedTree(store, dir);
  store.reset();
  const node = (await tree.get((await tree.lookup(1, 'file-12345'))!))!;
  node.mode = S_IFREG | 0o600;
  tree.changed(node);
  await tree.commit();
  t.ok((store.bytes.get('m3') ?? 0) <= 2048, `a commit of one changed file: ${store.bytes.get('m3')} bytes`);
  await tree.compact();
  const pages = store.bytes.get('t') ?? 0;
  t.ok(pages < 64 * 1024, `its checkpoint writes ${pages} bytes of pages`);
  t.ok((store.bytes.get('c3') ?? 0) <= 1100, `and a root of ${store.bytes.get('c3')} bytes`);

  store.reset();
  tree = await pagedTree(store, dir, 64 * 1024);
  t.equal((await tree.get((await tree.lookup(1, 'file-12345'))!))!.mode, S_IFREG | 0o600, 'the change is there after a mount');
  t.equal((await tree.listEntries(1)).length, 30_000, 'every entry, listed through a 64 KiB page cache');
  t.equal(tree.size, 30_001, 'inode count kept in the metadata');
});

t.test('format 3: a checkpoint that fails midway leaves the last commit intact', async (t) => {
  const dir = tempDir(t);
  const store = new Recording(new LocalStore(path.join(dir, 'store')));
  await initDrive(store, PASSPHRASE, { kdfLogN: 10, cacheDir: path.join(dir, 'cache') });
  // A page budget big enough that the commits below do not checkpoint by themselves.
  let tree = await pagedTree(store, dir, 64 << 20);
  addFiles(tree, 0, 5000);
  await tree.compact();
  addFiles(tree, 5000, 5000);
  await tree.commit();
  for (const [prefix, after] of [['t/', 3], ['c3/', 0]] as const) {
    store.failPrefix = prefix;
    store.failAfter = after;
    await t.rejects(tree.compact(), /injected failure/, `a checkpoint failing at ${prefix}`);
    store.failPrefix = undefined;
    const fresh = await pagedTree(store, dir);
    t.equal((await fresh.listEntries(1)).length, 10_000, `after a failure at ${prefix}: the committed tree, from the older checkpoint and the log`);
  }
  await tree.compact();
  tree = await pagedTree(store, dir);
  t.equal((await tree.listEntries(1)).length, 10_000, 'and after the retried checkpoint');
});

t.test('format 3 drive: a big directory, renamed and emptied, and inodes beyond the memory budget', async (t) => {
  const dir = tempDir(t);
  const store = new LocalStore(path.join(dir, 'store'));
  const cacheDir = path.join(dir, 'cache');
  await initDrive(store, PASSPHRASE, { kdfLogN: 10, cacheDir });
  const open = () => openDrive(store, { passphrase: PASSPHRASE, cacheDir, log: () => {}, syncIntervalMs: 60_000, metadataCacheBytes: 64 * 1024 });
  let drive = await open();
  await drive.fs.mkdir('/big', 0o755);
  const N = 25_000;
  for (let i = 0; i < N; i++) drive.fs.release(await drive.fs.create(`/big/f${i}`, 0o644));
  await drive.fs.sync();
  await drive.close();
  drive = await open();
  t.equal((await drive.fs.readdir('/big')).names.length, N + 2, 'every entry after a remount');
  await drive.fs.rename('/big', '/moved');
  t.equal((await drive.fs.getattr('/moved/f24999')).mode & 0o777, 0o644, 'reached through the new name');
  await t.rejects(drive.fs.getattr('/big/f1'), { code: 'ENOENT' });
  for (let i = 0; i < N; i += 2) await drive.fs.unlink(`/moved/f${i}`);
  await t.rejects(drive.fs.rmdir('/moved'), { code: 'ENOTEMPTY' });
  await drive.close();
  drive = await open();
  const left = (await drive.fs.readdir('/moved')).names.slice(2);
  t.equal(left.length, N / 2, 'half the entries left');
  t.ok(left.every((n) => Number(n.slice(1)) % 2 === 1), 'the odd ones');
  for (const n of left) await drive.fs.unlink(`/moved/${n}`);
  await drive.fs.rmdir('/moved');
  t.same((await drive.fs.readdir('/')).names, ['.', '..']);
  const stat = await drive.fs.statfs();
  t.equal(stat.files - stat.ffree, 1, 'only the root is left');
  await drive.close();
});

t.test('Inode records of format 3 carry no entries', async (t) => {
  const dir = new Inode(9, 0o040755, 0, 0);
  t.notOk('entries' in dir.toRecord(true));
});

t.test('format 3: a commit whose log outgrows half the page budget checkpoints, so changed pages do not pile up in memory', async (t) => {
  const dir = tempDir(t);
  const store = new Recording(new LocalStore(path.join(dir, 'store')));
  await initDrive(store, PASSPHRASE, { kdfLogN: 10, cacheDir: path.join(dir, 'cache') });
  const tree = await pagedTree(store, dir, 256 * 1024);
  store.reset();
  addFiles(tree, 0, 2000);
  await tree.commit();
  await tree.settled();
  t.ok((store.bytes.get('c3') ?? 0) > 0, 'a checkpoint without waiting for 128 commits or unmount');
  store.reset();
  addFiles(tree, 2000, 10);
  await tree.commit();
  await tree.settled();
  t.equal(store.bytes.get('c3') ?? 0, 0, 'a small commit after it does not');
});

t.test('a close while a commit is still writing notes its changes without waiting; the notes written meanwhile survive a crash on either side of the commit', async (t) => {
  const dir = tempDir(t);
  const store = new LocalStore(path.join(dir, 'store'));
  await initDrive(store, PASSPHRASE, { kdfLogN: 10, cacheDir: path.join(dir, 'cache') });
  const { header, masterKey } = await unlockVault(store, PASSPHRASE);
  let journal: Buffer[] = [];
  const notes = {
    note: async (data: Uint8Array) => void journal.push(Buffer.from(data)),
    pendingNotes: async () => journal,
    get noteCount() {
      return journal.length;
    },
    dropNotes: (count = journal.length) => void (journal = journal.slice(count)),
  };
  const metaLog = () => new MetaLog(store, subkey(masterKey, 'metadata'), header, new LocalState(path.join(dir, 'state')), notes);
  // A commit stops where it seals the data it refers to, until let go (or failed); `held` false lets commits through.
  let held = true;
  let release: (err?: Error) => void = () => {};
  const data = { ...noData, seal: () => (held ? new Promise<void>((resolve, reject) => (release = (err) => (err ? reject(err) : resolve()))) : Promise.resolve()) };
  const tree = await Tree.load(new PagedFormat(metaLog(), 1 << 20), data, () => {}, { packed: true });
  const ticks = async () => {
    for (let i = 0; i < 5; i++) await new Promise(setImmediate);
  };
  /** What a mount after a kill -9 now would find: the store's commits and a copy of the journal's notes. */
  const afterCrash = async () => {
    const saved = journal;
    journal = [...saved];
    const found = await Tree.load(new PagedFormat(metaLog(), 1 << 20), noData, () => {}, { packed: true });
    journal = saved;
    return async (name: string) => (await found.lookup(1, name)) !== undefined;
  };

  addFiles(tree, 0, 3);
  const committing = tree.commit();
  await ticks();
  let closed = false;
  const closing = tree.note().then(() => void (closed = true));
  await ticks();
  t.ok(closed, 'the close returns while the commit that took its changes still writes');
  t.equal(journal.length, 1, 'because it noted them');
  let exists = await afterCrash();
  t.ok(await exists('file-2'), 'a crash before the commit completes keeps them (the note)');
  addFiles(tree, 100, 2);
  await tree.note();
  t.equal(journal.length, 2, 'a change made meanwhile is noted too');
  release();
  await committing;
  await closing;
  t.equal(journal.length, 2, 'the commit keeps the notes written after it took its changes');
  exists = await afterCrash();
  t.ok(await exists('file-2'), 'a crash after the commit: its files are there');
  t.ok(await exists('file-101'), 'and so is the file noted while it was writing (the batch says where its notes start)');

  held = false;
  addFiles(tree, 200, 1);
  await tree.commit();
  t.equal(journal.length, 0, 'the next commit holds everything and lets all notes go');
  exists = await afterCrash();
  t.ok((await exists('file-101')) && (await exists('file-200')), 'and has it all');

  held = true;
  addFiles(tree, 300, 2);
  const failing = tree.commit();
  await ticks();
  await tree.note();
  t.equal(journal.length, 1, 'a close while a commit writes notes the changes it took');
  release(new Error('injected: store unreachable'));
  await t.rejects(failing, /injected/, 'the commit fails');
  t.notOk(tree.hasUnnoted, 'the note holds them: nothing is left to note');
  exists = await afterCrash();
  t.ok(await exists('file-301'), 'a crash after the failed commit keeps them');
  held = false;
  await tree.commit();
  t.equal(journal.length, 0, 'the next commit holds them');
  exists = await afterCrash();
  t.ok(await exists('file-301'), 'and the store has them');
});

// The daemon has one thread: a commit that applied its changes without a
// pause held up every request of the kernel until it was done (a `find`
// right after creating 100,000 files waited 100 ms for one).
t.test('a commit of many changes lets waiting I/O callbacks run while it applies them', async (t) => {
  const dir = tempDir(t);
  const store = new LocalStore(path.join(dir, 'store'));
  const cacheDir = path.join(dir, 'cache');
  await initDrive(store, PASSPHRASE, { kdfLogN: 10, cacheDir });
  const drive = await openDrive(store, { passphrase: PASSPHRASE, cacheDir, log: () => {}, syncIntervalMs: 600_000 });
  t.teardown(() => drive.close());
  await drive.fs.mkdir('/d', 0o755);
  for (let i = 0; i < 20_000; i++) drive.fs.release(await drive.fs.create(`/d/f${i}`, 0o644));
  // Changes applied to the map between two I/O-phase callbacks, at most.
  const set = PageTree.prototype.set;
  t.teardown(() => void (PageTree.prototype.set = set));
  let applied = 0;
  let most = 0;
  let total = 0;
  PageTree.prototype.set = function (this: PageTree, ...args: Parameters<PageTree['set']>) {
    applied++;
    total++;
    return set.apply(this, args);
  };
  let committed = false;
  const tick = () => {
    most = Math.max(most, applied);
    applied = 0;
    if (!committed) setImmediate(tick);
  };
  setImmediate(tick);
  await drive.fs.sync();
  committed = true;
  tick();
  t.ok(total >= 40_000, `the commit applied ${total} changes (an inode and an entry per file)`);
  t.ok(most <= 1024, `at most ${most} of them without a pause`);
});

t.test('a listing while a commit of the directory is half applied reads each stored name about once, and lists every name once', async (t) => {
  const dir = tempDir(t);
  const store = new LocalStore(path.join(dir, 'store'));
  await initDrive(store, PASSPHRASE, { kdfLogN: 10, cacheDir: path.join(dir, 'cache') });
  const tree = await pagedTree(store, dir);
  const names = addFiles(tree, 0, 3000).map((_, i) => `file-${i}`).sort();
  // The commit stops once half the entries are in the map, the names all still in the layer it took.
  const set = PageTree.prototype.set;
  const page = PageTree.prototype.page;
  t.teardown(() => {
    PageTree.prototype.set = set;
    PageTree.prototype.page = page;
  });
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let halfway!: () => void;
  const reached = new Promise<void>((resolve) => (halfway = resolve));
  let entriesSet = 0;
  PageTree.prototype.set = async function (this: PageTree, ...args: Parameters<PageTree['set']>) {
    if (args[0].startsWith('e') && ++entriesSet === 1500) {
      halfway();
      await held;
    }
    return set.apply(this, args);
  };
  const committed = tree.commit();
  await reached;
  let read = 0;
  PageTree.prototype.page = async function (this: PageTree, ...args: Parameters<PageTree['page']>) {
    const got = await page.apply(this, args);
    read += got.entries.length;
    return got;
  };
  const listed: string[] = [];
  let pieces = 0;
  // A piece that does not move on would list forever: the bound turns that into a failure.
  for (let piece = await tree.entriesAfter(tree.root.ino, undefined, 256); piece.length > 0 && pieces < 100; piece = await tree.entriesAfter(tree.root.ino, listed.at(-1), 256)) {
    listed.push(...piece.map(([name]) => name));
    pieces++;
  }
  t.same(listed, names, 'every name, once, in order');
  t.ok(read <= 2 * names.length, `${read} stored entries read for ${names.length} names (each piece used to read every stored one)`);
  release();
  await committed;
});


t.test('a listing in pieces merges stored names with changes since the commit: added, removed, replaced, and made between its pages', async (t) => {
  const dir = tempDir(t);
  const store = new LocalStore(path.join(dir, 'store'));
  await initDrive(store, PASSPHRASE, { kdfLogN: 10, cacheDir: path.join(dir, 'cache') });
  const tree = await pagedTree(store, dir, 64 * 1024);
  const random = (seed: number) => () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const rand = random(11);
  const expected = new Map<string, number>();
  const put = (name: string) => {
    const node = tree.create(S_IFREG | 0o644, 0, 0);
    tree.setEntry(tree.root, name, node);
    expected.set(name, node.ino);
  };
  const remove = (name: string) => {
    tree.setEntry(tree.root, name, undefined);
    expected.delete(name);
  };
  for (let i = 0; i < 3000; i++) put(`n${Math.floor(rand() * 1e6)}`);
  tree.changed(tree.root);
  await tree.commit();
  await tree.settled();
  // Changes since the commit: new names among the stored ones, stored names removed or pointed elsewhere.
  const stored = [...expected.keys()];
  for (let i = 0; i < 600; i++) put(`n${Math.floor(rand() * 1e6)}`);
  for (let i = 0; i < 300; i++) remove(stored[Math.floor(rand() * stored.length)]);
  for (let i = 0; i < 300; i++) put(stored[Math.floor(rand() * stored.length)]);
  // Pages read one at a time: each wait lets a name be made ahead of the listing (or behind it).
  const page = PageTree.prototype.page;
  t.teardown(() => {
    PageTree.prototype.page = page;
  });
  let listed: string[] = [];
  const madeAhead: string[] = [];
  let changedBehind = 0;
  let lastPage: string[] = [];
  PageTree.prototype.page = async function (this: PageTree, ...args: Parameters<PageTree['page']>) {
    const got = await page.apply(this, args);
    const name = `n${Math.floor(rand() * 1e6)}`;
    if (!expected.has(name) && name > (listed.at(-1) ?? '')) {
      put(name);
      madeAhead.push(name);
    }
    // A stored name from the page read before this one, not listed yet: removed or pointed elsewhere while this one loads.
    const behind = lastPage.map((key) => key.slice(key.indexOf('/') + 1)).filter((n) => n > (listed.at(-1) ?? '') && expected.has(n));
    if (behind.length && rand() < 0.5) {
      const victim = behind[Math.floor(rand() * behind.length)];
      if (rand() < 0.5) remove(victim);
      else put(victim);
      changedBehind++;
    }
    lastPage = got.entries.map(([key]) => key);
    return got;
  };
  for (const limit of [7, 64, 1000]) {
    listed = [];
    for (let piece = await tree.entriesAfter(tree.root.ino, undefined, limit); piece.length > 0; piece = await tree.entriesAfter(tree.root.ino, listed.at(-1), limit)) {
      t.ok(piece.length <= limit, 'no more than asked for');
      for (const [name, [ino]] of piece) {
        if (listed.length && name <= listed.at(-1)!) t.fail(`${name} out of order after ${listed.at(-1)}`);
        listed.push(name);
        if (expected.get(name) !== ino) t.fail(`${name} listed with inode ${ino}, expected ${expected.get(name)}`);
      }
    }
    const missing = [...expected.keys()].filter((n) => !listed.includes(n));
    t.same(missing, [], `pieces of ${limit}: every name there is listed, the removed ones are not`);
  }
  t.ok(madeAhead.length > 10, `names were made ahead of the listing between its pages (${madeAhead.length})`);
  t.ok(changedBehind > 10, `stored names read by a piece were removed or replaced before it was done (${changedBehind})`);
});
