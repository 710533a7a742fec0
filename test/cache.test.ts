import t from 'tap';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { BlockCache, type CachedFile } from '../src/cache/block-cache.js';
import { LocalStore } from '../src/store/local.js';
import { CountingStore } from './lib/counting-store.js';
import { tempDir } from './lib/tmp.js';

const BS = 64 * 1024;

function newFile(ino: number): CachedFile {
  return { ino, fileId: randomBytes(16).toString('hex'), key: randomBytes(32), blocks: new Map(), size: 0 };
}

function setup(t: Parameters<typeof tempDir>[0], cacheSize = 16 * BS) {
  const store = new CountingStore(new LocalStore(path.join(tempDir(t), 's')));
  const released: string[] = [];
  const cache = new BlockCache(store, {
    stored: (_f, _i, _id, previous) => previous && released.push(previous),
    log: () => {},
  }, { blockSize: BS, cacheSize });
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
  const cold = new BlockCache(store, { stored: () => {}, log: () => {} }, { blockSize: BS, cacheSize: 16 * BS });
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
