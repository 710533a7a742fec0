import t from 'tap';
import { randomBytes } from 'node:crypto';
import { fsck, type FsckReport } from '../src/check/fsck.js';
import { openForMaintenance } from '../src/check/maintenance.js';
import { readHistory } from '../src/check/history.js';
import { entryKey, inodeKey } from '../src/meta/kv.js';
import { PASSPHRASE, testVault } from './lib/drive.js';

/*
 * The check of a format-3 vault that reads the tree page by page must find
 * what the whole-tree check finds, in the same words: both run on the same
 * broken trees, built at random.
 */
const seed = Number(process.env.VEILFS_SEED ?? Date.now() % 1e9);
let state = seed;
const random = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const pick = <T>(list: T[]): T => list[Math.floor(random() * list.length)];

t.comment(`seed ${seed} (VEILFS_SEED to replay)`);

for (let round = 0; round < 4; round++) {
  t.test(`round ${round}: a random tree, broken at random, checked both ways`, async (t) => {
    const vault = await testVault(t);
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
        await fs.write(fd, randomBytes(100), 0);
        await fs.flush(fd);
        fs.release(fd);
        files.push(where);
      }
    }
    await drive.close();

    const session = await openForMaintenance(vault.store, PASSPHRASE, vault.cacheDir, () => {});
    t.teardown(() => session.finish());
    const history = await readHistory(session.log);
    const inos = [...history.inodes.keys()];
    const dirInos = inos.filter((ino) => history.inodes.get(ino)!.entries !== undefined);
    const entriesOf = (dir: number) => history.inodes.get(dir)!.entries ?? [];
    const set: [string, unknown][] = [];
    const del: string[] = [];
    const kinds: string[] = [];
    for (let k = 0; k < 5; k++) {
      const kind = pick(['dangling', 'nlink', 'cut', 'second', 'loop', 'stray']);
      kinds.push(kind);
      const dir = pick(dirInos);
      if (kind === 'dangling') set.push([entryKey(dir, `ghost${k}`), [100_000 + k, 8]]);
      if (kind === 'nlink') {
        const { entries: _e, ...r } = history.inodes.get(pick(inos))!;
        set.push([inodeKey(r.ino), { ...r, nlink: r.nlink + 1 + k }]);
      }
      if (kind === 'cut' && entriesOf(dir).length) del.push(entryKey(dir, pick(entriesOf(dir))[0]));
      const sub = dirInos.filter((d) => d !== 1);
      if (kind === 'second' && sub.length) set.push([entryKey(dir, `again${k}`), [pick(sub), 4]]);
      if (kind === 'loop' && sub.length) {
        // A directory named again inside itself, its old name gone: a loop cut off from the root.
        const d = pick(sub);
        const holder = dirInos.find((p) => entriesOf(p).some(([, c]) => c === d))!;
        const [name] = entriesOf(holder).find(([, c]) => c === d)!;
        del.push(entryKey(holder, name));
        set.push([entryKey(d, `self${k}`), [d, 4]]);
      }
      if (kind === 'stray') {
        const now = Date.now();
        set.push([inodeKey(50_000 + k), { ino: 50_000 + k, mode: 0o100644, uid: 0, gid: 0, nlink: 1, size: 0, atime: now, mtime: now, ctime: now, fileId: randomBytes(16).toString('hex'), key: randomBytes(32).toString('base64'), segs: [] }]);
      }
    }
    session.log.resume(history.seq, history.checkpointSeq);
    await session.log.appendBody({ nextIno: 60_000, inodeCount: inos.length, set, del });

    t.ok((await readHistory(session.log, { whole: false })).map, 'format 3: the check reads the tree from its pages');
    const opts = { repair: false, blockSize: 64 * 1024 };
    const whole = await fsck(session, { ...opts, wholeTree: true });
    const paged = await fsck(session, opts);
    const shape = (r: FsckReport) => ({ tree: [...r.tree].sort(), files: r.checked.files, blocks: r.checked.blocks, orphans: r.orphans.count, damaged: r.files.length });
    t.ok(whole.tree.length > 0, `the broken tree is found broken (${kinds.join(', ')})`);
    t.same(shape(paged), shape(whole), 'the paged check reports exactly what the whole-tree check reports');
  });
}
