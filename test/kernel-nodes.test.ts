import t from 'tap';
import { KernelNodes } from '../src/fuse/nodes.js';

// Inode numbers as the kernel would hand them back: 1 is the root.
t.test('paths follow renames of any ancestor, one change each', async (t) => {
  const n = new KernelNodes(600);
  n.remember(1, 'a', 10);
  n.remember(10, 'b', 11);
  n.remember(11, 'f', 12);
  t.equal(n.pathOf(12), '/a/b/f');
  t.equal(n.childPath(11, 'g'), '/a/b/g');
  n.renamed(10, 1, 'a', 1, 'z');
  t.equal(n.pathOf(12), '/z/b/f', 'a descendant moves with its directory');
  n.renamed(11, 10, 'b', 1, 'top');
  t.equal(n.pathOf(12), '/top/f');
  t.equal(n.pathOf(10), '/z');
  t.equal(n.pathOf(1), '/');
});

t.test('a rename over a name takes that name from the inode it had', async (t) => {
  const n = new KernelNodes(600);
  n.remember(1, 'old', 20);
  n.remember(1, 'new', 21);
  n.removed(20, 1, 'old');
  n.renamed(21, 1, 'new', 1, 'old');
  t.equal(n.pathOf(21), '/old');
  t.equal(n.pathOf(20), undefined, 'the replaced file has no path, only its number');
});

t.test('hard links: one inode, any of its names; removing one keeps the others', async (t) => {
  const n = new KernelNodes(600);
  n.remember(1, 'd', 5);
  n.remember(5, 'x', 30);
  n.remember(1, 'y', 30);
  t.equal(n.pathOf(30), '/y', 'the newest name first');
  n.removed(30, 1, 'y');
  t.equal(n.pathOf(30), '/d/x');
  n.remember(1, 'y', 30);
  n.removed(30, 5, 'x');
  t.equal(n.pathOf(30), '/y', 'removing a name other than the one in use');
  n.renamed(30, 1, 'y', 5, 'z');
  t.equal(n.pathOf(30), '/d/z');
  n.removed(30, 5, 'z');
  t.equal(n.pathOf(30), undefined);
  t.equal(n.size, 2, 'still held by the kernel until it forgets');
});

t.test('forget drops an inode only when every lookup is forgotten', async (t) => {
  const n = new KernelNodes(600);
  n.remember(1, 'f', 40);
  n.remember(1, 'f', 40);
  n.forget(40, 1);
  t.equal(n.pathOf(40), '/f');
  n.forget(40, 1);
  t.equal(n.pathOf(40), undefined);
  t.equal(n.size, 0);
  n.forget(40, 1);
  t.equal(n.size, 0, 'forgetting an unknown inode is harmless');
});

t.test('a directory removed while held leaves its children without paths', async (t) => {
  const n = new KernelNodes(600);
  n.remember(1, 'gone', 50);
  n.remember(50, 'child', 51);
  n.removed(50, 1, 'gone');
  t.equal(n.pathOf(51), undefined);
  t.equal(n.childPath(50, 'new'), undefined);
});

t.test('past its bound the table offers the inodes looked up longest ago, and stays near the bound', async (t) => {
  const n = new KernelNodes(600);
  const offered: number[][] = [];
  // A kernel that drops every inode offered except 1000 (say, an open file).
  n.limitTo(64, (inos, count) => {
    const batch = [...inos.subarray(0, count)];
    offered.push(batch);
    for (const ino of batch) if (ino !== 1000) n.forget(ino, 1);
    return true;
  });
  n.remember(1, 'open', 1000);
  for (let i = 0; i < 64; i++) n.remember(1, `f${i}`, 2000 + i);
  t.equal(offered.length, 0, 'nothing is offered up to the bound');
  t.equal(n.bound, 64);
  n.remember(1, 'f0', 2000);
  for (let i = 64; i < 400; i++) n.remember(1, `f${i}`, 2000 + i);
  t.ok(offered.length > 0);
  t.equal(offered[0][0], 1000, 'the oldest goes first');
  t.notOk(offered[0].includes(2000), 'a name looked up again is young again');
  t.ok(n.size <= 64 + 16 && n.size >= 64 - 16, `the table stays near its bound (${n.size})`);
  t.equal(n.pathOf(1000), '/open', 'an inode the kernel keeps stays');
  t.equal(n.pathOf(2399), '/f399', 'the newest stay');
  t.equal(offered.filter((b) => b.includes(1000)).length < offered.length, true, 'one the kernel keeps is not offered every time');
});

t.test('a kernel that cannot drop inodes is asked once', async (t) => {
  const n = new KernelNodes(600);
  let calls = 0;
  n.limitTo(16, () => (calls++, false));
  for (let i = 0; i < 500; i++) n.remember(1, `f${i}`, 100 + i);
  t.equal(calls, 1);
  t.equal(n.size, 500, 'then the table holds what the kernel holds');
  t.equal(n.bound, null, 'and reports no bound');
});

t.test('attributes the kernel was handed stay fresh until something makes it drop them, or half their validity passed', async (t) => {
  const n = new KernelNodes(0.04); // valid 40 ms: fresh for 20
  t.notOk(n.attrsFresh(30), 'nothing handed yet');
  n.remember(1, 'a', 30);
  n.remember(1, 'b', 31);
  n.remember(1, 'c', 32);
  t.ok(n.attrsFresh(30), 'just looked up');
  n.attrsStale(30);
  t.notOk(n.attrsFresh(30), 'after a write, a read, a name made in it...');
  n.remember(1, 'a', 30);
  t.ok(n.attrsFresh(30), 'handed again');
  n.removed(31, 1, 'b');
  t.notOk(n.attrsFresh(31), 'a name gone: its link count changed');
  n.renamed(32, 1, 'c', 1, 'd');
  t.notOk(n.attrsFresh(32), 'renamed: its ctime changed');
  await new Promise((r) => setTimeout(r, 30));
  t.notOk(n.attrsFresh(30), 'past half the validity');
  n.forget(30, 2);
  n.remember(1, 'a', 30);
  t.ok(n.attrsFresh(30), 'forgotten and looked up again');
});
