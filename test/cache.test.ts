import t from 'tap';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { BlockObjects } from '../src/data/blocks.js';
import { PackedSegments } from '../src/data/packed.js';
import { BlockCache, type CachedFile } from '../src/cache/block-cache.js';
import { LocalStore } from '../src/store/local.js';
import { CountingStore } from './lib/counting-store.js';
import { tempDir } from './lib/tmp.js';

const BS = 64 * 1024;

function newFile(ino: number): CachedFile {
  return { ino, fileId: randomBytes(16).toString('hex'), key: randomBytes(32), blocks: new Map(), size: 0, durableSize: 0, durableBlocks: 0 };
}

function setup(t: Parameters<typeof tempDir>[0], cacheSize = 16 * BS) {
  const store = new CountingStore(new LocalStore(path.join(tempDir(t), 's')));
  const released: string[] = [];
  const cache = new BlockCache(new BlockObjects(store, BS, () => {}), {
    stored: (_f, _i, _id, previous) => previous && released.push(previous),
    log: () => {},
  }, { cacheSize });
  return { store, cache, released };
}

async function readAll(cache: BlockCache, file: CachedFile): Promise<Buffer> {
  const out = Buffer.alloc(file.size);
  const n = await cache.read(file, 0, file.size, out);
  return out.subarray(0, n);
}

t.test('writes across block edges read back, before and after storing', async (t) => {
  const { cache } = setup(t);
  const file = newFile(2);
  const data = randomBytes(3 * BS + 123);
  await cache.write(file, 0, data.subarray(0, BS - 10));
  await cache.write(file, BS - 10, data.subarray(BS - 10));
  t.equal(Buffer.compare(await readAll(cache, file), data), 0, 'from dirty blocks');
  await cache.flush(file);
  t.notOk(cache.hasDirty(file));
  t.equal(file.blocks.size, 4);
  t.equal(Buffer.compare(await readAll(cache, file), data), 0, 'from stored blocks');
});

t.test('partial overwrite of a stored block reads, modifies and writes it', async (t) => {
  const { cache, released } = setup(t);
  const file = newFile(2);
  const data = randomBytes(BS);
  await cache.write(file, 0, data);
  await cache.flush(file);
  const first = file.blocks.get(0);
  await cache.write(file, 100, Buffer.from('PATCH'));
  await cache.flush(file);
  data.write('PATCH', 100);
  t.not(file.blocks.get(0), first, 'copy on write: a new object');
  t.same(released, [first], 'the old object is reported for deletion');
  t.equal(Buffer.compare(await readAll(cache, file), data), 0);
});

t.test('holes read as zeros and past EOF reads are short', async (t) => {
  const { cache } = setup(t);
  const file = newFile(2);
  await cache.write(file, 5 * BS + 1, Buffer.from('x'));
  const all = await readAll(cache, file);
  t.equal(all.length, 5 * BS + 2);
  t.ok(all.subarray(0, 5 * BS + 1).every((b) => b === 0));
  t.equal(await cache.read(file, 5 * BS + 2, 10, Buffer.alloc(10)), 0);
  await cache.flush(file);
  t.same([...file.blocks.keys()], [5], 'only the written block is stored');
});

t.test('truncate down then up reads zeros in the regrown part', async (t) => {
  const { cache } = setup(t);
  const file = newFile(2);
  await cache.write(file, 0, Buffer.alloc(2 * BS, 0xaa));
  await cache.flush(file);
  const released = await cache.truncate(file, 100);
  t.equal(released.length, 1, 'block past the end released');
  await cache.flush(file);
  await cache.truncate(file, 2 * BS);
  const all = await readAll(cache, file);
  t.ok(all.subarray(0, 100).every((b) => b === 0xaa));
  t.ok(all.subarray(100).every((b) => b === 0), 'no stale bytes reappear');
});

t.test('concurrent readers of one block share one fetch', async (t) => {
  const { cache, store } = setup(t);
  const writer = newFile(2);
  await cache.write(writer, 0, randomBytes(BS));
  await cache.flush(writer);
  // A second cache over the same store starts cold.
  const cold = new BlockCache(new BlockObjects(store, BS, () => {}), { stored: () => {}, log: () => {} }, { cacheSize: 16 * BS });
  store.gets = 0;
  store.getDelayMs = 20;
  await Promise.all(Array.from({ length: 10 }, () => cold.read(writer, 0, 100, Buffer.alloc(100))));
  t.equal(store.gets, 1, 'ten readers, one GET');
  await cold.read(writer, 200, 100, Buffer.alloc(100));
  t.equal(store.gets, 1, 'then served from memory');
});

t.test('clean blocks are evicted to stay within the cache size', async (t) => {
  const cacheSize = 8 * BS;
  const { cache } = setup(t, cacheSize);
  const file = newFile(2);
  await cache.write(file, 0, randomBytes(32 * BS));
  await cache.flush(file);
  t.ok(cache.stats().cleanBytes <= cacheSize, `clean ${cache.stats().cleanBytes} <= ${cacheSize}`);
  t.equal(cache.stats().dirtyBytes, 0);
  const data = await readAll(cache, file);
  t.equal(data.length, 32 * BS, 'evicted blocks are fetched again');
});

t.test('dirty blocks are pinned until stored, and writers wait for room', async (t) => {
  const cacheSize = 16 * BS;
  const { cache, store } = setup(t, cacheSize);
  const file = newFile(2);
  store.holdPuts();
  const data = randomBytes(12 * BS);
  let finished = false;
  const writing = cache.write(file, 0, data).then(() => (finished = true));
  await new Promise((r) => setTimeout(r, 100));
  t.notOk(finished, 'writer is held back while the store does not accept data');
  t.ok(cache.stats().dirtyBytes >= 12 * BS, 'all written blocks are still in memory, none evicted');
  t.equal(Buffer.compare((await readAll(cache, file)).subarray(0, 4 * BS), data.subarray(0, 4 * BS)), 0, 'dirty data readable');
  store.releasePuts();
  await writing;
  await cache.flush(file);
  t.equal(cache.stats().dirtyBytes, 0);
  t.equal(Buffer.compare(await readAll(cache, file), data), 0);
});

t.test('discard drops a deleted file without storing it', async (t) => {
  const { cache, store } = setup(t);
  const file = newFile(2);
  await cache.write(file, 0, Buffer.from('short'));
  cache.discard(file);
  await cache.flush();
  t.equal(store.puts, 0);
  t.notOk(cache.hasDirty());
});

t.test('a sequential reader fetches ahead with several blocks in flight; a random reader only what it touches', async (t) => {
  const { cache, store } = setup(t, 64 * BS);
  const file = newFile(2);
  await cache.write(file, 0, randomBytes(40 * BS));
  await cache.flush(file);
  const cold = () => new BlockCache(new BlockObjects(store, BS, () => {}), { stored: () => {}, log: () => {} }, { cacheSize: 64 * BS });
  store.getDelayMs = 30;

  let reader = cold();
  const ra = reader.newReadahead();
  store.gets = 0;
  const chunk = Buffer.alloc(16 * 1024);
  let maxInFlight = 0;
  const started = Date.now();
  for (let at = 0; at < 40 * BS; at += chunk.length) {
    await reader.read(file, at, chunk.length, chunk, ra);
    maxInFlight = Math.max(maxInFlight, store.inFlight);
  }
  const took = Date.now() - started;
  t.equal(store.gets, 40, 'every block fetched once');
  t.ok(maxInFlight >= 4, `several fetches in flight (${maxInFlight})`);
  t.ok(took < 40 * 30 / 2, `faster than one fetch at a time (${took} ms for 40 blocks at 30 ms each)`);

  // Jumps of more than 4 MiB forward or 1 MiB back are random access.
  await cache.write(file, 40 * BS, randomBytes(160 * BS));
  await cache.flush(file);
  reader = cold();
  const random = reader.newReadahead();
  store.gets = 0;
  // Each in a different 4 MiB window (64 blocks): none comes back to a region read before.
  for (const block of [150, 10, 90, 195]) await reader.read(file, block * BS + 100, 4096, chunk, random);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(store.gets, 4, 'random reads fetch only the blocks they touch');
  // Back in the window of block 10, but the file is more than the cache holds: what a whole window brought would go before it was read.
  await reader.read(file, 20 * BS, 4096, chunk, random);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(store.gets, 5, 'in a file larger than the cache, a window read again is not fetched whole');
});

/** A file of random bytes written in format 2 (segments in packs) and sealed, and a maker of readers' codecs on its store. */
async function packedFile(t: Parameters<typeof tempDir>[0], bytes: number) {
  const store = new CountingStore(new LocalStore(path.join(tempDir(t), 's')));
  const packed = (packCacheBytes: number) => new PackedSegments(store, { packCacheBytes, log: () => {} });
  const writer = packed(0);
  const cache = new BlockCache(writer, { stored: () => {}, log: () => {} }, { cacheSize: 64 * 2 ** 20 });
  const file = newFile(2);
  const data = randomBytes(bytes);
  await cache.write(file, 0, data);
  await cache.flush(file);
  await writer.seal();
  return { store, packed, file, data };
}

t.test('random reads that come back to a 4 MiB window fetch it whole, with one request per pack', async (t) => {
  const { store, packed, file, data } = await packedFile(t, 16 * 2 ** 20);
  const reader = new BlockCache(packed(8 * 2 ** 20), { stored: () => {}, log: () => {} }, { cacheSize: 64 * 2 ** 20 });
  const random = reader.newReadahead();
  const chunk = Buffer.alloc(4096);
  const readAt = async (block: number) => {
    await reader.read(file, block * BS + 512, chunk.length, chunk, random);
    t.equal(Buffer.compare(chunk, data.subarray(block * BS + 512, block * BS + 512 + chunk.length)), 0, `block ${block} reads back`);
  };
  const settle = () => new Promise((r) => setTimeout(r, 200));
  store.gets = 0;
  await readAt(70);
  await readAt(200);
  await settle();
  t.equal(store.gets, 2, 'reads in two windows: a request each');
  await readAt(100);
  await settle();
  const packsOfWindow = new Set(Array.from({ length: 64 }, (_, i) => file.blocks.get(64 + i)!.split('.')[0])).size;
  t.equal(store.gets, 3 + packsOfWindow, `back in the window of block 70: it is fetched whole (${packsOfWindow} pack(s))`);
  const before = store.gets;
  // Backwards by more than 1 MiB: still random reads, which would fetch nothing ahead.
  for (let block = 127; block >= 64; block -= 17) await readAt(block);
  t.equal(store.gets, before, 'and the rest of it reads from memory');
});

t.test('format 2: a sequential reader fetches packs ahead, several at once, each once', async (t) => {
  const { store, packed, file, data } = await packedFile(t, 24 * 2 ** 20);
  const packs = new Set([...file.blocks.values()].map((ref) => ref.split('.')[0])).size;
  t.ok(packs >= 6, `${packs} packs`);

  store.getDelayMs = 200;
  store.gets = 0;
  const reader = new BlockCache(packed(32 * 2 ** 20), { stored: () => {}, log: () => {} }, { cacheSize: 64 * 2 ** 20 });
  const ra = reader.newReadahead();
  const chunk = Buffer.alloc(128 * 1024);
  const out = Buffer.alloc(data.length);
  let maxInFlight = 0;
  const started = Date.now();
  for (let at = 0; at < data.length; at += chunk.length) {
    const n = await reader.read(file, at, chunk.length, chunk, ra);
    chunk.copy(out, at, 0, n);
    maxInFlight = Math.max(maxInFlight, store.inFlight);
  }
  const took = Date.now() - started;
  t.equal(Buffer.compare(out, data), 0, 'the bytes read are the bytes written');
  t.equal(store.gets, packs, 'every pack fetched once, none again after it was fetched ahead');
  t.ok(maxInFlight >= 2, `packs fetched ahead while one is read (${maxInFlight} in flight)`);
  t.ok(took < packs * 200, `faster than one pack at a time (${took} ms for ${packs} packs at 200 ms each)`);
});

t.test('the readahead window doubles while sequential, forgives small seeks, resets on a jump', async (t) => {
  const { Readahead } = await import('../src/cache/readahead.js');
  const ra = new Readahead(8);
  const k = 128 * 1024;
  t.same([0, 1, 2, 3, 4].map((i) => ra.next(i * k, k)), [1, 2, 4, 8, 8], 'grows to the cap');
  t.equal(ra.next(5 * k + 512 * 1024, k), 8, 'a small forward skip keeps the window');
  t.equal(ra.next(4 * k, k), 8, 'so does a small step back (reordered reads)');
  t.equal(ra.next(900 * k, k), 0, 'a far jump: random access');
  t.equal(ra.next(901 * k, k), 1, 'sequential again: starts small');
});

t.test('a block that fails authentication is fetched again, then reported, never returned', async (t) => {
  const { cache, store } = setup(t);
  const file = newFile(2);
  await cache.write(file, 0, randomBytes(BS));
  await cache.flush(file);
  const logs: string[] = [];
  const flaky = { ...store, location: 'x', get: async (key: string) => {
    const data = Buffer.from(await store.get(key));
    if (flips-- > 0) data[100] ^= 1;
    return data;
  } } as unknown as typeof store;
  let flips = 1;
  const reader = new BlockCache(new BlockObjects(flaky, BS, (m) => logs.push(m)), { stored: () => {}, log: (m) => logs.push(m) }, { cacheSize: 16 * BS });
  t.equal(await reader.read(file, 0, 10, Buffer.alloc(10)), 10, 'a bit flipped in transit: the next fetch succeeds');
  t.match(logs.join('\n'), /failed authentication; fetching it again/);
  flips = 3;
  const again = new BlockCache(new BlockObjects(flaky, BS, () => {}), { stored: () => {}, log: () => {} }, { cacheSize: 16 * BS });
  await t.rejects(again.read(file, 0, 10, Buffer.alloc(10)), { name: 'IntegrityError', message: /block 0 .* of inode 2/ });
});

t.test('the size a commit may record never covers bytes written after their block was stored', async (t) => {
  const { cache } = setup(t);
  const file = newFile(7);
  await cache.write(file, 0, Buffer.alloc(BS / 2, 1));
  await cache.flush(file);
  t.same([file.durableSize, file.durableBlocks], [BS / 2, 1], 'nothing dirty: the live size is durable');
  // The block is stored with half its bytes; the rest is written while another block waits.
  await cache.write(file, BS / 2, Buffer.alloc(BS / 2, 2));
  await cache.write(file, 3 * BS, Buffer.alloc(10, 3));
  t.equal(file.durableSize, BS / 2, 'dirty blocks: the durable size stays where the stored blocks are whole');
  await cache.flush(file);
  t.same([file.durableSize, file.durableBlocks], [3 * BS + 10, 4], 'all stored: durable again');
  await cache.truncate(file, 100);
  t.same([file.durableSize, file.durableBlocks], [100, 1], 'a truncate shrinks it at once');
});
