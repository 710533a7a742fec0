import t from 'tap';
import { KernelNodes } from '../src/fuse/nodes.js';

// Inode numbers as the kernel would hand them back: 1 is the root.
t.test('paths follow renames of any ancestor, one change each', async (t) => {
  const n = new KernelNodes();
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
  const n = new KernelNodes();
  n.remember(1, 'old', 20);
  n.remember(1, 'new', 21);
  n.removed(20, 1, 'old');
  n.renamed(21, 1, 'new', 1, 'old');
  t.equal(n.pathOf(21), '/old');
  t.equal(n.pathOf(20), undefined, 'the replaced file has no path, only its number');
});

t.test('hard links: one inode, any of its names; removing one keeps the others', async (t) => {
  const n = new KernelNodes();
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
  const n = new KernelNodes();
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
  const n = new KernelNodes();
  n.remember(1, 'gone', 50);
  n.remember(50, 'child', 51);
  n.removed(50, 1, 'gone');
  t.equal(n.pathOf(51), undefined);
  t.equal(n.childPath(50, 'new'), undefined);
});
