import t from 'tap';
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { LocalStore } from '../src/store/local.js';
import { ConflictError, keysOf, NotFoundError, StoreError } from '../src/store/types.js';
import { tempDir } from './lib/tmp.js';

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
