import t from 'tap';
import { buildPages, FANOUT, LEAF_BYTES, PageTree, type PageContent, type PageIo } from '../src/meta/pagetree.js';

/** Pages as a store would keep them: copies, so the tree never shares objects with what it wrote. */
class MemoryPages implements PageIo {
  readonly pages = new Map<string, string>();
  reads = 0;
  async read(id: string): Promise<PageContent> {
    const json = this.pages.get(id);
    if (json === undefined) throw new Error(`page ${id} is missing`);
    this.reads++;
    await new Promise((r) => setImmediate(r));
    return JSON.parse(json);
  }
  async write(id: string, content: PageContent): Promise<void> {
    if (this.pages.has(id)) throw new Error(`page ${id} written twice`);
    await new Promise((r) => setImmediate(r));
    this.pages.set(id, JSON.stringify(content));
  }
  /** Pages reachable from a root: everything else is garbage. */
  reachable(root: string): Set<string> {
    const seen = new Set<string>();
    const walk = (id: string) => {
      seen.add(id);
      const c = JSON.parse(this.pages.get(id)!) as PageContent;
      if ('node' in c) for (const [, child] of c.node) walk(child);
    };
    walk(root);
    return seen;
  }
}

/** A seeded generator, so a failure replays. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const key = (n: number) => `k${String(n).padStart(7, '0')}`;

t.test('random sets, deletes and scans match a plain map, across flushes, reopenings and eviction', async (t) => {
  const io = new MemoryPages();
  const random = rng(7);
  const model = new Map<string, unknown>();
  // A tiny budget: leaves are evicted and loaded again all the time.
  let tree = PageTree.empty(io, 64 * 1024);
  let live = new Set<string>();
  const wrongDeletes: string[] = [];
  for (let round = 0; round < 12; round++) {
    const ops = 4000;
    await Promise.all(Array.from({ length: 8 }, async () => {
      for (let i = 0; i < ops / 8; i++) {
        const k = key(Math.floor(random() * (round < 6 ? 20000 : 6000)));
        if (random() < (round < 6 ? 0.8 : 0.3)) {
          const v = { n: round, pad: 'x'.repeat(Math.floor(random() * 300)) };
          model.set(k, v);
          await tree.set(k, v);
        } else {
          const had = model.delete(k);
          if ((await tree.delete(k)) !== had) wrongDeletes.push(k);
        }
      }
    }));
    t.same(wrongDeletes, [], `deletes report what was there (round ${round})`);
    const probe = key(Math.floor(random() * 20000));
    t.same(await tree.get(probe), model.get(probe), `get ${probe} after round ${round}`);
    const scanned: [string, unknown][] = [];
    for await (const e of tree.scan(key(1000), key(9000))) scanned.push(e);
    const expected = [...model].filter(([k]) => k >= key(1000) && k < key(9000)).sort(([a], [b]) => (a < b ? -1 : 1));
    t.same(scanned, expected, `range scan after round ${round}`);
    const { root, height, replaced } = await tree.flush();
    const reachable = io.reachable(root);
    t.same(replaced.filter((id) => reachable.has(id)), [], 'no replaced page is reachable from the new root');
    // Every page the old root reached is either still reached or named as replaced: nothing leaks.
    const freed = new Set(replaced);
    t.same([...live].filter((id) => !reachable.has(id) && !freed.has(id)), [], 'no page leaks');
    for (const id of replaced) io.pages.delete(id);
    live = reachable;
    tree = PageTree.open(io, root, height, 64 * 1024);
    t.ok(tree.residentBytes === 0, 'a reopened tree holds nothing in memory');
  }
  const all: [string, unknown][] = [];
  for await (const e of tree.scan('', '\uffff')) all.push(e);
  t.same(all, [...model].sort(([a], [b]) => (a < b ? -1 : 1)), 'everything, in order, after the last reopening');
  t.ok(tree.depth >= 2, `the tree has inner pages (depth ${tree.depth})`);
});

t.test('leaves past the budget that are all dirty stay; a flush, and loads, let eviction work again', async (t) => {
  const io = new MemoryPages();
  const budget = 64 * 1024;
  let tree = PageTree.empty(io, budget);
  const value = (i: number) => ({ ino: i, pad: 'y'.repeat(100) });
  for (let i = 0; i < 3000; i++) await tree.set(key(i), value(i));
  t.ok(tree.residentBytes > budget, `unflushed changes stay in memory (${tree.residentBytes} bytes)`);
  let { root, height } = await tree.flush();
  t.ok(tree.residentBytes <= budget, `after the flush, clean leaves go (${tree.residentBytes} bytes)`);
  for (let i = 3000; i < 6000; i++) await tree.set(key(i), value(i));
  t.ok(tree.residentBytes > budget, 'new changes past the budget stay too');
  ({ root, height } = await tree.flush());
  t.ok(tree.residentBytes <= budget, `the next flush lets them go as well (${tree.residentBytes} bytes)`);
  tree = PageTree.open(io, root, height, budget);
  // Changes first, past the budget; then reads that load clean leaves: those are what can go.
  for (let i = 6000; i < 9000; i++) await tree.set(key(i), value(i));
  const dirtyBytes = tree.residentBytes;
  for (let i = 0; i < 6000; i += 7) t.same(await tree.get(key(i)), value(i), `key ${i}`, { diagnostic: false });
  t.ok(tree.residentBytes < dirtyBytes + budget / 2, `loaded leaves are evicted although the dirty ones exceed the budget (${tree.residentBytes} bytes, ${dirtyBytes} dirty)`);
});

t.test('a flush writes only the changed path, and a read loads only its path', async (t) => {
  const io = new MemoryPages();
  let tree = PageTree.empty(io);
  for (let i = 0; i < 100_000; i++) await tree.set(key(i), { ino: i, mode: 0o100644, size: i });
  let { root, height } = await tree.flush();
  t.ok(height >= 3, `100,000 records need ${height} levels (fan-out ${FANOUT})`);
  tree = PageTree.open(io, root, height, 1 << 20);
  const before = io.pages.size;
  await tree.set(key(50_000), { ino: 50_000, mode: 0o100600, size: 1 });
  t.equal(io.reads, height, 'one page read per level');
  const result = await tree.flush();
  t.equal(io.pages.size - before, height, 'one page written per level');
  t.equal(result.replaced.length, height, 'and the pages they replace are named');
  ({ root, height } = result);
  tree = PageTree.open(io, root, height);
  t.same(await tree.get(key(50_000)), { ino: 50_000, mode: 0o100600, size: 1 });
  t.same(await tree.get(key(49_999)), { ino: 49_999, mode: 0o100644, size: 49_999 });
});

t.test('deleting everything collapses the tree to one empty page', async (t) => {
  const io = new MemoryPages();
  const tree = PageTree.empty(io);
  for (let i = 0; i < 20_000; i++) await tree.set(key(i), i);
  await tree.flush();
  for (let i = 0; i < 20_000; i++) await tree.delete(key(i));
  const { root, height, replaced } = await tree.flush();
  t.equal(height, 1);
  t.same(JSON.parse(io.pages.get(root)!), { leaf: [] });
  for (const id of replaced) io.pages.delete(id);
  t.equal(io.pages.size, 1, 'only the empty root is left');
});

t.test('a failed flush leaves every change for the next one', async (t) => {
  const io = new MemoryPages();
  const tree = PageTree.empty(io);
  for (let i = 0; i < 5000; i++) await tree.set(key(i), i);
  const write = io.write.bind(io);
  let fail = true;
  io.write = async (id, content) => {
    if (fail) throw new Error('disk full');
    return write(id, content);
  };
  await t.rejects(tree.flush(), /disk full/);
  t.ok(tree.hasChanges);
  fail = false;
  const { root, height } = await tree.flush();
  const reopened = PageTree.open(io, root, height);
  t.equal(await reopened.get(key(4321)), 4321);
});

t.test('a bulk load writes a tree that reads, changes and flushes like any other', async (t) => {
  const io = new MemoryPages();
  const pairs: [string, unknown][] = Array.from({ length: 30_000 }, (_, i) => [key(i), { n: i }]);
  const { root, height } = await buildPages(io, pairs);
  t.ok(height >= 2, `${height} levels`);
  const tree = PageTree.open(io, root, height);
  t.same(await tree.get(key(12_345)), { n: 12_345 });
  const scanned: string[] = [];
  for await (const [k] of tree.scan(key(29_990), '\uffff')) scanned.push(k);
  t.same(scanned, pairs.slice(29_990).map(([k]) => k));
  await tree.delete(key(0));
  await tree.set(key(40_000), 'new');
  const flushed = await tree.flush();
  const again = PageTree.open(io, flushed.root, flushed.height);
  t.equal(await again.get(key(0)), undefined);
  t.equal(await again.get(key(40_000)), 'new');
  await t.rejects(buildPages(io, [['b', 1], ['a', 2]]), /out of order/);
});

/** 60,000 keys in pages, opened with room for about 16 leaves: the walks of the tests below read far more than that. */
async function smallBudgetTree(): Promise<{ io: MemoryPages; pairs: [string, unknown][]; tree: PageTree; budget: number }> {
  const io = new MemoryPages();
  const pairs: [string, unknown][] = Array.from({ length: 60_000 }, (_, i) => [key(i), { n: i, pad: 'p'.repeat(40) }]);
  const { root, height } = await buildPages(io, pairs);
  const budget = 16 * 12 * 1024;
  return { io, pairs, tree: PageTree.open(io, root, height, budget), budget };
}

t.test('a walk through many leaves in order evicts its own leaves before one used alone', async (t) => {
  const { io, tree, budget } = await smallBudgetTree();
  t.same(await tree.get(key(59_000)), { n: 59_000, pad: 'p'.repeat(40) }, 'a lookup far from the walk');
  const leavesRead = io.reads;
  let walked = 0;
  for (let i = 0; i < 40_000; i += 7) if ((await tree.get(key(i))) !== undefined) walked++;
  t.equal(walked, Math.ceil(40_000 / 7), 'the walk read every key it asked for');
  t.ok(io.reads - leavesRead > 40, `the walk loaded ${io.reads - leavesRead} pages, many times the budget`);
  t.ok(tree.residentBytes <= budget, `and stayed within the budget (${tree.residentBytes} bytes)`);
  const before = io.reads;
  t.same(await tree.get(key(59_001)), { n: 59_001, pad: 'p'.repeat(40) });
  t.equal(io.reads - before, 0, 'the leaf used alone is still in memory after the walk');
  const again = io.reads;
  await tree.get(key(20_000));
  t.equal(io.reads - again, 1, 'a leaf from the middle of the walk was evicted');
  // Loaded again on its own, a leaf that was part of a walk counts as used alone.
  for (let i = 40_000; i < 58_000; i += 7) await tree.get(key(i));
  const afterSecondWalk = io.reads;
  await tree.get(key(20_000));
  t.equal(io.reads - afterSecondWalk, 0, 'and then it outlives the next walk');
});

t.test('prefetches for many keys evict their own leaves before one a lookup used', async (t) => {
  const { io, pairs, tree, budget } = await smallBudgetTree();
  await tree.get(key(59_000));
  // A listing's inodes: scattered keys, as many leaves per prefetch as it loads at once (a quarter of the budget), each then looked up.
  const before = io.reads;
  for (let piece = 0; piece < 50; piece++) {
    const keys = Array.from({ length: 3 }, (_, i) => key((piece * 3 + i) * 331));
    await tree.prefetch(keys);
    for (const k of keys) await tree.get(k);
  }
  t.ok(io.reads - before > 100, `the prefetches loaded ${io.reads - before} pages, many times the budget`);
  t.ok(tree.residentBytes <= budget, `and stayed within the budget (${tree.residentBytes} bytes)`);
  const after = io.reads;
  t.same(await tree.get(key(59_001)), pairs[59_001][1]);
  t.equal(io.reads - after, 0, 'the leaf the lookup used is still in memory');
});

t.test('applying commits to leaves in memory does not make them newer than a leaf a lookup used', async (t) => {
  const { io, pairs, tree } = await smallBudgetTree();
  // Leaves far apart (about 11 leaves), so that no load looks like a walk and reads ahead.
  const upkept = Array.from({ length: 8 }, (_, i) => key(20_000 + i * 2000));
  for (const k of upkept) await tree.get(k, 'upkeep');
  await tree.get(key(59_000));
  // A commit changes the leaves it loaded before the lookup (records of new files, the kernel already holds them).
  for (let round = 0; round < 3; round++) for (const k of upkept) await tree.set(k, { n: round, pad: 'p'.repeat(40) }, 'upkeep');
  await tree.flush();
  // Lookups elsewhere fill the budget (16 leaves): eviction drops down to 12, oldest first.
  for (let j = 0; j < 9; j++) await tree.get(key(36_000 + j * 2000));
  const before = io.reads;
  t.same(await tree.get(key(59_001)), pairs[59_001][1]);
  t.equal(io.reads - before, 0, 'the leaf the lookup used is still in memory');
  const upkeepReads = io.reads;
  for (const k of upkept) await tree.get(k);
  t.ok(io.reads - upkeepReads >= 4, `the leaves only the commits changed went first (${io.reads - upkeepReads} of 8 read again)`);
});

t.test('keys that only grow fill their pages; keys in random order still split in half', async (t) => {
  /** Leaves, and the fewest leaves the pairs would fit in, once `keys` are set in that order. */
  const leavesFor = async (keys: string[]) => {
    const io = new MemoryPages();
    const tree = PageTree.empty(io);
    let bytes = 0;
    for (const k of keys) {
      const v = { n: k, pad: 'q'.repeat(60) };
      bytes += k.length + JSON.stringify(v).length + 6;
      await tree.set(k, v);
    }
    const { root } = await tree.flush();
    const leaves = [...io.reachable(root)].filter((id) => 'leaf' in JSON.parse(io.pages.get(id)!)).length;
    return { leaves, fewest: Math.ceil(bytes / LEAF_BYTES) };
  };
  const growing = await leavesFor(Array.from({ length: 20_000 }, (_, i) => key(i)));
  t.ok(growing.leaves <= growing.fewest * 1.1, `growing keys: ${growing.leaves} leaves, ${growing.fewest} at the fewest`);
  const random = rng(3);
  const shuffled = Array.from({ length: 20_000 }, (_, i) => key(i)).sort(() => random() - 0.5);
  const mixed = await leavesFor(shuffled);
  t.ok(mixed.leaves > growing.leaves * 1.2, `random order leaves room in each page (${mixed.leaves} leaves)`);
});

t.test('prefetch loads the pages of many keys at once, and a failed page only fails its lookup', async (t) => {
  const pairs: [string, unknown][] = Array.from({ length: 40_000 }, (_, i) => [key(i), { n: i, pad: 'p'.repeat(40) }]);
  let inFlight = 0;
  let most = 0;
  let broken = '';
  const io = new MemoryPages();
  const { root, height } = await buildPages(io, pairs);
  const slow: PageIo = {
    read: async (id) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 2));
      inFlight--;
      if (id === broken) throw new Error('store unreachable');
      return io.read(id);
    },
    write: (id, content) => io.write(id, content),
  };
  const tree = PageTree.open(slow, root, height);
  const wanted = Array.from({ length: 40 }, (_, i) => key(i * 997));
  await tree.prefetch(wanted);
  t.ok(most >= 20, `the leaves loaded together (${most} at once)`);
  const reads = io.reads;
  for (const k of wanted) t.same(await tree.get(k), pairs[Number(k.slice(1))][1]);
  t.equal(io.reads, reads, 'the lookups after it load nothing');

  const other = PageTree.open(slow, root, height);
  await other.get(key(0)); // the inner pages
  const path = [...io.reachable(root)];
  broken = path.find((id) => {
    const content = JSON.parse(io.pages.get(id)!) as PageContent;
    return 'leaf' in content && content.leaf.some(([k]) => k === key(30_000));
  })!;
  await t.resolves(other.prefetch([key(30_000), key(31_000)]), 'a page that fails to load does not fail the prefetch');
  await t.rejects(other.get(key(30_000)), /unreachable/, 'the lookup that needs it reports the failure');
  t.same(await other.get(key(31_000)), pairs[31_000][1], 'the other key is there');
});
