import t from 'tap';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { constants } from 'node:os';
import * as path from 'node:path';
import { LocalStore } from '../src/store/local.js';
import { ConflictError, keysOf, NotFoundError, StoreError } from '../src/store/types.js';
import { loadAddon } from '../src/util/native-addon.js';
import { tempDir } from './lib/tmp.js';

const osErrno = constants.errno;

t.test('put, get, ranges, stat, delete', async (t) => {
  const store = new LocalStore(path.join(tempDir(t), 's'));
  const data = Buffer.from('0123456789abcdef');
  await store.put('d/ab/obj', data);
  t.same((await store.get('d/ab/obj')).toString(), data.toString());
  t.same((await store.get('d/ab/obj', { offset: 4, length: 6 })).toString(), '456789');
  t.same((await store.get('d/ab/obj', { offset: 10, length: 100 })).toString(), 'abcdef', 'range past the end is short');
  t.same(await store.stat('d/ab/obj'), { size: 16 });
  t.equal(await store.stat('d/ab/none'), undefined);
  await store.delete('d/ab/obj');
  await store.delete('d/ab/obj'); // idempotent
  await t.rejects(store.get('d/ab/obj'), NotFoundError);
});

t.test('conditional create fails atomically when the key exists', async (t) => {
  const store = new LocalStore(path.join(tempDir(t), 's'));
  await store.put('m/1', Buffer.from('first'), { ifAbsent: true });
  await t.rejects(store.put('m/1', Buffer.from('second'), { ifAbsent: true }), ConflictError);
  t.equal((await store.get('m/1')).toString(), 'first', 'loser did not overwrite');
  const racers = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => store.put('m/2', Buffer.from(`w${i}`), { ifAbsent: true })));
  t.equal(racers.filter((r) => r.status === 'fulfilled').length, 1, 'exactly one concurrent creator wins');
  t.same(readdirSync(path.join(store.location, 'm')).sort(), ['1', '2'], 'no temporary files left behind');
});

t.test('list returns keys under a prefix, sorted, recursing into fan-out dirs', async (t) => {
  const store = new LocalStore(path.join(tempDir(t), 's'));
  for (const k of ['m/0002', 'm/0001', 'c/0001', 'd/aa/x1', 'd/bb/x2']) await store.put(k, Buffer.from(k));
  t.same(keysOf(await store.list('m/')), ['m/0001', 'm/0002']);
  t.same(keysOf(await store.list('d/')), ['d/aa/x1', 'd/bb/x2']);
  t.same(keysOf(await store.list('m/0002')), ['m/0002']);
  t.same(keysOf(await store.list('z/')), []);
});

t.test('keys that could escape the store are refused', async (t) => {
  const store = new LocalStore(path.join(tempDir(t), 's'));
  for (const key of ['../x', 'a/../../b', '/abs', 'a//b', '']) {
    await t.rejects(store.put(key, Buffer.from('x')), StoreError, JSON.stringify(key));
  }
});

t.test('what the kernel has in memory is read at once; what it would read from disk goes through the thread pool, with the same bytes', async (t) => {
  const io = loadAddon<{ readCached(path: string, offset: number, length: number, most: number): Buffer | number }>('veilfs_io');
  const store = new LocalStore(path.join(tempDir(t), 's'));
  const data = randomBytes(200 * 1024);
  await store.put('p/pack', data);
  const file = path.join(store.location, 'p/pack');
  const inMemory = io.readCached(file, 0, -1, 1 << 20);
  t.ok(Buffer.isBuffer(inMemory) && inMemory.equals(data), 'a file just written is read from memory, whole');
  const range = io.readCached(file, 70_000, 65_536, 1 << 20);
  t.ok(Buffer.isBuffer(range) && range.equals(data.subarray(70_000, 135_536)), 'and a range of it');
  t.equal(io.readCached(file, 0, -1, 1000), -osErrno.EAGAIN, 'a copy longer than allowed is left to the thread pool');
  await t.rejects(store.get('p/none'), NotFoundError);
  t.equal(io.readCached(path.join(store.location, 'p/none'), 0, -1, 1 << 20), -osErrno.ENOENT, 'a name the kernel knows is missing, at once');
  await t.rejects(store.get('p/none'), NotFoundError, 'and the store says so');
  t.equal(io.readCached(path.join(store.location, 'p'), 0, -1, 1 << 20), -osErrno.EISDIR);

  // Drops the file from the page cache (posix_fadvise DONTNEED): the next read would wait for the disk.
  execFileSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
  t.equal(io.readCached(file, 70_000, 65_536, 1 << 20), -osErrno.EAGAIN, 'a read that needs the disk is refused, not waited for');
  t.ok((await store.get('p/pack', { offset: 70_000, length: 65_536 })).equals(data.subarray(70_000, 135_536)), 'the store reads it through the thread pool');
  execFileSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
  t.ok((await store.get('p/pack')).equals(data), 'whole, too');
  await t.rejects(store.get('p'), StoreError, 'a directory is not an object, either way');
});
