import t from 'tap';
import { testVault } from './lib/drive.js';

/*
 * A lookup whose directory, entry and inode are in memory is answered at
 * once (no promise); any other goes through the store. Both must give the
 * same answer, whatever layer the entry sits in: committed, made or
 * removed since the last commit.
 */

t.test('a lookup in memory answers at once, and as the stored lookup does', async (t) => {
  const vault = await testVault(t);
  let drive = await vault.open();
  let fs = drive.fs;
  await fs.mkdir('/d', 0o755);
  for (let i = 0; i < 500; i++) fs.release(await fs.create(`/d/f${i}`, 0o640));
  await fs.sync();
  fs.release(await fs.create('/d/new', 0o600)); // made since the commit
  await fs.unlink('/d/f7'); // removed since the commit
  const d = (await fs.getattr('/d')).ino;
  const names = ['f1', 'f499', 'new', 'f7', 'missing'];
  const answers = async () => {
    const out: (string | undefined)[] = [];
    for (const name of names) {
      const a = await fs.lookupIn(d, name);
      out.push(a && `${a.ino} ${(a.mode & 0o777).toString(8)}`);
    }
    return out;
  };
  const atOnce = names.map((name) => fs.lookupIn(d, name));
  t.ok(atOnce.every((a) => !(a instanceof Promise)), 'every lookup in a directory in memory came at once');
  const warm = await answers();
  t.same(warm.map((a) => a !== undefined), [true, true, true, false, false], 'committed and new names found, removed and missing ones not');
  t.equal(warm[2]?.split(' ')[1], '600', 'with their attributes');

  // A removed directory, still known by number: the lookup fails as it did.
  await fs.mkdir('/gone', 0o755);
  const gone = (await fs.getattr('/gone')).ino;
  await fs.rmdir('/gone');
  await t.rejects(Promise.resolve().then(() => fs.lookupIn(gone, 'x')), { code: 'ENOENT' }, 'a removed directory');
  const file = (await fs.getattr('/d/f1')).ino;
  await t.rejects(Promise.resolve().then(() => fs.lookupIn(file, 'x')), { code: 'ENOTDIR' }, 'a file');

  // The same answers from a fresh open with a small page budget: through the store.
  await drive.close();
  drive = await vault.open({ cacheSize: 1 << 20 });
  t.teardown(() => drive.close());
  fs = drive.fs;
  t.ok(fs.lookupIn(d, 'f250') instanceof Promise, 'a lookup whose pages are in the store waits for them');
  t.same(await answers(), warm, 'and every answer is the same');
});
