import t from 'tap';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmdirSync } from 'node:fs';
import { constants } from 'node:os';
import * as path from 'node:path';
import { LocalStore } from '../src/store/local.js';
import { ConflictError, keysOf, NotFoundError, StoreError, TransientStoreError } from '../src/store/types.js';
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

t.test('a store whose directory went away, or was replaced, is unavailable: nothing written in its place, nothing read as missing', async (t) => {
  const base = tempDir(t);
  const root = path.join(base, 'vault');
  // A store created where nothing is yet (veilfs init) makes its directory.
  const store = new LocalStore(root);
  await store.put('p/aa/pack1', Buffer.from('one'));
  await t.rejects(store.get('p/aa/nothing'), NotFoundError, 'a missing object is just missing');

  // The disk it was on is unmounted: its path is gone.
  renameSync(root, path.join(base, 'away'));
  const gone = /store's directory .*vault is gone/;
  await t.rejects(store.put('p/bb/pack2', Buffer.from('two')), gone, 'a put into a new subdirectory');
  await t.rejects(store.put('p/aa/pack3', Buffer.from('three')), gone, 'a put into a subdirectory it had');
  t.notOk(existsSync(root), 'nothing was made in its place');
  await t.rejects(store.get('p/aa/pack1'), gone, 'a get is not told the object is missing');
  await t.rejects(store.get('p/aa/pack1', { offset: 0, length: 2 }), gone, 'nor a ranged get');
  await t.rejects(store.stat('p/aa/pack1'), gone, 'nor a stat');
  await t.rejects(store.list('p/'), gone, 'a listing is not empty, it fails');
  await t.rejects(store.delete('p/aa/pack1'), gone, 'a delete does not pretend');
  const err = await store.put('p/cc/pack4', Buffer.from('four')).catch((e: unknown) => e);
  t.type(err, TransientStoreError, 'retried, like an unreachable server');

  // The empty mount point of that disk is at its path now.
  mkdirSync(root);
  const replaced = /no longer the directory the store was opened on/;
  await t.rejects(store.put('p/aa/pack3', Buffer.from('three')), replaced, 'a put into the directory now at its path');
  await t.rejects(store.get('p/aa/pack1'), replaced);
  t.same(readdirSync(root), [], 'it stays empty');

  // The disk is back.
  rmdirSync(root);
  renameSync(path.join(base, 'away'), root);
  await store.put('p/bb/pack2', Buffer.from('two'));
  t.equal(String(await store.get('p/aa/pack1')), 'one', 'everything is there again');
  t.equal(String(await store.get('p/bb/pack2')), 'two');
});
