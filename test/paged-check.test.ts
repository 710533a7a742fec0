import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { fsck, isClean } from '../src/check/fsck.js';
import { openForMaintenance } from '../src/check/maintenance.js';
import { readHistory } from '../src/check/history.js';
import { S_IFDIR, S_IFMT, type InodeRecord } from '../src/meta/inode.js';
import { entryKey, inodeKey } from '../src/meta/kv.js';
import type { Filesystem } from '../src/vfs/filesystem.js';
import { PASSPHRASE, testVault } from './lib/drive.js';

/*
 * fsck on random trees broken at random (format 3 read page by page,
 * format 1 from its whole tree, both through the same check): the check
 * finds the damage, --repair leaves a tree the next check finds clean, and
 * nothing is lost: every file and directory that existed is reachable again
 * with its content, and every link count is what a walk of the repaired
 * tree counts.
 */
const seed = Number(process.env.VEILFS_SEED ?? Date.now() % 1e9);
let state = seed;
const random = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const pick = <T>(list: T[]): T => list[Math.floor(random() * list.length)];

t.comment(`seed ${seed} (VEILFS_SEED to replay)`);

const isDir = (mode: number) => (mode & S_IFMT) === S_IFDIR;

/** Every inode the tree reaches: how many names each has, its subdirectories, and each file's content hash. */
async function walk(fs: Filesystem): Promise<{ names: Map<number, number>; subdirs: Map<number, number>; nlink: Map<number, number>; content: Map<number, string> }> {
  const names = new Map<number, number>();
  const subdirs = new Map<number, number>();
  const nlink = new Map<number, number>();
  const content = new Map<number, string>();
  const queue = ['/'];
  for (let q = 0; q < queue.length; q++) {
    const dir = queue[q];
    const attr = await fs.getattr(dir);
    nlink.set(attr.ino, attr.nlink);
    subdirs.set(attr.ino, 0);
    for (const name of (await fs.readdir(dir)).names) {
      if (name === '.' || name === '..') continue;
      const where = `${dir === '/' ? '' : dir}/${name}`;
      const child = await fs.getattr(where);
      names.set(child.ino, (names.get(child.ino) ?? 0) + 1);
      if (isDir(child.mode)) {
        subdirs.set(attr.ino, subdirs.get(attr.ino)! + 1);
        // A directory met again (a loop, a second name) is counted, not walked twice.
        if (names.get(child.ino) === 1) queue.push(where);
        continue;
      }
      nlink.set(child.ino, child.nlink);
      const fd = await fs.open(where, 0);
      const buf = Buffer.alloc(child.size);
      await fs.read(fd, buf, child.size, 0);
      fs.release(fd);
      content.set(child.ino, createHash('sha256').update(buf).digest('hex'));
    }
  }
  return { names, subdirs, nlink, content };
}

for (const version of [3, 1]) {
  for (let round = 0; round < 3; round++) {
    t.test(`format ${version}, round ${round}: a random tree, broken at random, checked, repaired, checked again`, async (t) => {
      const vault = await testVault(t, { version });
      const drive = await vault.open({ cacheSize: 4 << 20 });
      const fs = drive.fs;
      const dirs = ['/'];
      const files: string[] = [];
      for (let i = 0; i < 60; i++) {
        const parent = pick(dirs);
        const where = `${parent === '/' ? '' : parent}/n${i}`;
        if (random() < 0.3) {
          await fs.mkdir(where, 0o755);
          dirs.push(where);
        } else if (random() < 0.15 && files.length) {
          await fs.link(pick(files), where);
          files.push(where);
        } else {
          const fd = await fs.create(where, 0o644);
          await fs.write(fd, randomBytes(100 + Math.floor(random() * 5000)), 0);
          await fs.flush(fd);
          fs.release(fd);
          files.push(where);
        }
      }
      const before = await walk(fs);
      await drive.close();

      const session = await openForMaintenance(vault.store, PASSPHRASE, vault.cacheDir, () => {});
      t.teardown(() => session.finish());
      const history = await readHistory(session.log);
      // Whole records, edited here, then written in the vault's own batch form.
      const records = new Map([...history.inodes].map(([ino, r]) => [ino, structuredClone(r)]));
      const inos = [...records.keys()];
      const dirInos = inos.filter((ino) => isDir(records.get(ino)!.mode));
      const entriesOf = (dir: number) => records.get(dir)!.entries!;
      const touched = new Set<number>();
      const addEntry = (dir: number, name: string, ino: number) => {
        entriesOf(dir).push([name, ino]);
        touched.add(dir);
      };
      const removeEntry = (dir: number, name: string) => {
        records.get(dir)!.entries = entriesOf(dir).filter(([n]) => n !== name);
        touched.add(dir);
      };
      const kinds: string[] = [];
      const strays: number[] = [];
      for (let k = 0; k < 5; k++) {
        const kind = pick(['dangling', 'nlink', 'cut', 'second', 'loop', 'stray']);
        kinds.push(kind);
        const dir = pick(dirInos);
        const sub = dirInos.filter((d) => d !== 1);
        if (kind === 'dangling') addEntry(dir, `ghost${k}`, 100_000 + k);
        if (kind === 'nlink') {
          const r = records.get(pick(inos))!;
          r.nlink += 1 + k;
          touched.add(r.ino);
        }
        if (kind === 'cut' && entriesOf(dir).length) removeEntry(dir, pick(entriesOf(dir))[0]);
        if (kind === 'second' && sub.length) addEntry(dir, `again${k}`, pick(sub));
        if (kind === 'loop' && sub.length) {
          // A directory named again inside itself, its old name gone: a loop cut off from the root.
          const d = pick(sub);
          const holder = dirInos.find((p) => entriesOf(p).some(([, c]) => c === d));
          if (holder) removeEntry(holder, entriesOf(holder).find(([, c]) => c === d)![0]);
          addEntry(d, `self${k}`, d);
        }
        if (kind === 'stray') {
          const now = Date.now();
          const ino = 50_000 + k;
          records.set(ino, { ino, mode: 0o100644, uid: 0, gid: 0, nlink: 1, size: 0, atime: now, mtime: now, ctime: now, fileId: randomBytes(16).toString('hex'), key: randomBytes(32).toString('base64'), ...(version >= 2 ? { segs: [] } : { blocks: [] }) });
          touched.add(ino);
          strays.push(ino);
        }
      }
      session.log.resume(history.seq, history.checkpointSeq);
      if (version >= 3) {
        const set: [string, unknown][] = [];
        const del: string[] = [];
        for (const ino of touched) {
          const { entries, ...rest } = records.get(ino)!;
          set.push([inodeKey(ino), rest]);
          if (!entries) continue;
          const was = new Set((history.inodes.get(ino)?.entries ?? []).map(([n]) => n));
          for (const [name, child] of entries) set.push([entryKey(ino, name), [child, isDir(records.get(child)?.mode ?? 0o100000) ? 4 : 8]]);
          for (const name of was) if (!entries.some(([n]) => n === name)) del.push(entryKey(ino, name));
        }
        await session.log.appendBody({ nextIno: 60_000, inodeCount: records.size, set, del });
      } else {
        await session.log.append([...touched].map((ino) => records.get(ino) as InodeRecord), [], 60_000);
      }

      const opts = { blockSize: 64 * 1024 };
      const found = await fsck(session, { ...opts, repair: false });
      t.ok(found.tree.length > 0, `the broken tree is found broken (${kinds.join(', ')}): ${found.tree.join('; ')}`);
      const repaired = await fsck(session, { ...opts, repair: true });
      t.ok(repaired.repaired.length > 0, `repairs made: ${repaired.repaired.join('; ')}`);
      const after = await fsck(session, { ...opts, repair: false });
      t.ok(isClean(after), `clean after the repair: ${[...after.metadata, ...after.tree].join('; ')}`);
      await session.finish();

      const again = await vault.open({ cacheSize: 4 << 20 });
      t.teardown(() => again.close());
      const now = await walk(again.fs);
      const lost = [...before.names.keys()].filter((ino) => !now.names.has(ino));
      t.same(lost, [], 'every inode reached before the damage is reached again');
      t.same(strays.filter((ino) => !now.names.has(ino)), [], 'stray inodes are adopted');
      const changed = [...before.content].filter(([ino, hash]) => now.content.get(ino) !== hash).map(([ino]) => ino);
      t.same(changed, [], 'every file holds what it held');
      const wrong: string[] = [];
      for (const [ino, n] of now.names) if (n > 1 && now.subdirs.has(ino)) wrong.push(`directory ${ino}: ${n} names`);
      for (const [ino, n] of now.nlink) {
        const want = now.subdirs.has(ino) ? 2 + now.subdirs.get(ino)! : now.names.get(ino)!;
        if (n !== want) wrong.push(`inode ${ino}: ${n}, counted ${want}`);
      }
      t.same(wrong, [], 'one name for each directory, and link counts that are what the repaired tree holds');
    });
  }
}

t.test('a root that is no directory any more: a new root, and everything under /lost+found', async (t) => {
  const vault = await testVault(t);
  const drive = await vault.open({ cacheSize: 4 << 20 });
  await drive.fs.mkdir('/docs', 0o755);
  const fd = await drive.fs.create('/docs/a.txt', 0o644);
  await drive.fs.write(fd, Buffer.from('kept'), 0);
  await drive.fs.flush(fd);
  drive.fs.release(fd);
  const before = await walk(drive.fs);
  await drive.close();

  const session = await openForMaintenance(vault.store, PASSPHRASE, vault.cacheDir, () => {});
  t.teardown(() => session.finish());
  const history = await readHistory(session.log, { whole: false });
  const root = (await history.map!.get(inodeKey(1))) as InodeRecord;
  session.log.resume(history.seq, history.checkpointSeq);
  await session.log.appendBody({ nextIno: history.nextIno, inodeCount: history.inodeCount, set: [[inodeKey(1), { ...root, mode: 0o100644 }]], del: [] });
  const opts = { blockSize: 64 * 1024 };
  const found = await fsck(session, { ...opts, repair: false });
  t.ok(found.tree.includes('the root directory is missing'), found.tree.join('; '));
  const repaired = await fsck(session, { ...opts, repair: true });
  t.ok(repaired.repaired.includes('made a new, empty root directory'), repaired.repaired.join('; '));
  t.ok(isClean(await fsck(session, { ...opts, repair: false })), 'clean after the repair');
  await session.finish();

  const again = await vault.open({ cacheSize: 4 << 20 });
  t.teardown(() => again.close());
  const now = await walk(again.fs);
  t.same([...before.names.keys()].filter((ino) => !now.names.has(ino)), [], 'what the old root held is reached again');
  t.same([...before.content].filter(([ino, hash]) => now.content.get(ino) !== hash), [], 'with its content');
  t.same((await again.fs.readdir('/')).names.filter((n) => n !== '.' && n !== '..'), ['lost+found']);
});
