import t, { type Test } from 'tap';
import type { Filesystem } from '../src/vfs/filesystem.js';
import { testVault } from './lib/drive.js';

/*
 * A rename or unlink whose directories, entries and inodes are in memory
 * is made at once (no promise); any other goes through the store. Both
 * ways must end in the same drive and fail with the same errors.
 */

async function build(t: Test) {
  const vault = await testVault(t);
  const drive = await vault.open();
  const fs = drive.fs;
  await fs.mkdir('/d', 0o755);
  for (const dir of ['sub', 'empty', 'full']) await fs.mkdir(`/d/${dir}`, 0o755);
  fs.release(await fs.create('/d/full/inside', 0o644));
  for (let i = 0; i < 500; i++) fs.release(await fs.create(`/d/f${i}`, 0o644));
  await drive.close();
  return vault;
}

type Outcome = { label: string; atOnce: boolean; result: string };

/** Runs each change, noting whether it came at once and how it ended (a code, or what it moved). */
async function changes(fs: Filesystem, d: number): Promise<Outcome[]> {
  const steps: [string, () => unknown][] = [
    ['rename to a new name', () => fs.rename('/d/f1', '/d/g1')],
    ['rename over a file', () => fs.rename('/d/f2', '/d/f3')],
    ['rename a directory into itself', () => fs.rename('/d/sub', '/d/sub/x')],
    ['rename a file over a directory', () => fs.rename('/d/f4', '/d/empty')],
    ['rename over a directory with something in it', () => fs.rename('/d/sub', '/d/full')],
    ['rename over an empty directory', () => fs.rename('/d/sub', '/d/empty')],
    ['rename a missing name', () => fs.rename('/d/missing', '/d/x')],
    ['rename without replacing', () => fs.rename('/d/f5', '/d/f6', { noReplace: true })],
    ['exchange', () => fs.rename('/d/f7', '/d/f8', { exchange: true })],
    ['unlink', () => fs.unlink('/d/f9')],
    ['unlink it again', () => fs.unlink('/d/f9')],
    ['unlink a directory', () => fs.unlink('/d/full')],
    ['unlink by directory number', () => fs.unlink({ dir: d, name: 'f10' })],
  ];
  const out: Outcome[] = [];
  for (const [label, step] of steps) {
    let atOnce = true;
    let result: string;
    try {
      let value = step();
      if (value instanceof Promise) {
        atOnce = false;
        value = await value;
      }
      result = typeof value === 'number' ? 'unlinked' : Object.keys(value as object).filter((k) => (value as Record<string, unknown>)[k] !== undefined).join('+');
    } catch (err) {
      result = (err as { code?: string }).code ?? String(err);
    }
    out.push({ label, atOnce, result });
  }
  return out;
}

/** The directory as a user sees it: names, types and link counts (inode numbers left out: the two drives number alike but need not). */
async function state(fs: Filesystem): Promise<string[]> {
  const out: string[] = [];
  for (const dir of ['/d', '/d/empty', '/d/full']) {
    for (const name of (await fs.readdir(dir)).names.filter((n) => n !== '.' && n !== '..').sort()) {
      const a = await fs.getattr(`${dir}/${name}`);
      out.push(`${dir}/${name} ${(a.mode >> 12).toString(8)} ${a.nlink}`);
    }
  }
  return out;
}

t.test('renames and unlinks in memory come at once, and end as through the store', async (t) => {
  // In memory: every page of /d read once before.
  const warmVault = await build(t);
  const warmDrive = await warmVault.open();
  t.teardown(() => warmDrive.close());
  const warm = warmDrive.fs;
  await state(warm);
  const d = (await warm.getattr('/d')).ino;
  const f7 = (await warm.getattr('/d/f7')).ino;
  const inMemory = await changes(warm, d);

  // Through the store: a fresh open with a small page budget, nothing read yet.
  const coldVault = await build(t);
  const coldDrive = await coldVault.open({ cacheSize: 1 << 20 });
  t.teardown(() => coldDrive.close());
  const cold = coldDrive.fs;
  const stored = await changes(cold, d);

  t.same(inMemory.map((o) => `${o.label}: ${o.result}`), [
    'rename to a new name: moved',
    'rename over a file: moved+replaced',
    'rename a directory into itself: EINVAL',
    'rename a file over a directory: EISDIR',
    'rename over a directory with something in it: ENOTEMPTY',
    'rename over an empty directory: moved+replaced',
    'rename a missing name: ENOENT',
    'rename without replacing: EEXIST',
    'exchange: moved+exchanged',
    'unlink: unlinked',
    'unlink it again: ENOENT',
    'unlink a directory: EISDIR',
    'unlink by directory number: unlinked',
  ], 'each change ends as rename(2) and unlink(2) do');
  t.same(stored.map((o) => o.result), inMemory.map((o) => o.result), 'and the same through the store');
  t.same(await state(cold), await state(warm), 'both drives end alike');

  const overDirectory = /over (a|an empty) directory|with something in it/;
  t.same(inMemory.filter((o) => !o.atOnce).map((o) => o.label), inMemory.filter((o) => overDirectory.test(o.label)).map((o) => o.label),
    'in memory, all come at once but those onto a directory (whether it is empty can take a scan)');
  t.notOk(stored[0].atOnce, 'a change whose pages are in the store waits for them');

  const after = await state(warm);
  t.ok(after.includes('/d/g1 10 1') && !after.some((l) => l.startsWith('/d/f1 ')), 'the renamed file has its new name only');
  t.ok(!after.some((l) => l.startsWith('/d/f2 ')) && after.includes('/d/f3 10 1'), 'the replaced one is gone');
  t.ok(!after.some((l) => l.startsWith('/d/f9 ') || l.startsWith('/d/f10 ')), 'unlinked names are gone');
  t.ok(after.includes('/d/empty 4 2') && !after.some((l) => l.startsWith('/d/sub ')), 'the directory took the empty one\'s place');
  t.equal((await warm.getattr('/d/f8')).ino, f7, 'exchanged names swapped their inodes');
  t.ok(after.includes('/d/full/inside 10 1'), 'the refused rename left the full directory as it was');
});
