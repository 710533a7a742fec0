import t from 'tap';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import { toErrno } from '../src/fuse/errno.js';
import { openDrive, initDrive } from '../src/drive.js';
import { RetryingStore } from '../src/store/retry.js';
import { resolveS3Config } from '../src/store/s3-config.js';
import { S3Store } from '../src/store/s3.js';
import { ConflictError, keysOf, NotFoundError, StoreError, TransientStoreError } from '../src/store/types.js';
import { FaultProxy } from './lib/fault-proxy.js';
import { removeAll, s3Skip } from './lib/stores.js';
import { tempDir } from './lib/tmp.js';

const skip = s3Skip();

/** A store on a fresh prefix of the test bucket, optionally through a proxy; emptied afterwards. */
function s3(t: Parameters<typeof tempDir>[0], endpoint = process.env.S3_ENDPOINT!, opts: { requestTimeoutMs?: number } = {}) {
  const url = `s3://${process.env.S3_BUCKET}/unit-${randomBytes(5).toString('hex')}`;
  const raw = new S3Store(resolveS3Config(url, { endpoint }), opts);
  t.teardown(async () => {
    await raw.close();
    await removeAll(url);
  });
  return { url, raw };
}

t.test('the real S3 server', { skip: skip ? `skipped: ${skip}` : false }, async (t) => {
  t.test('get with ranges at block edges, stat, delete, not found', async (t) => {
    const { raw } = s3(t);
    const data = randomBytes(3 * 65536 + 7);
    await raw.put('d/ab/obj', data);
    t.equal(Buffer.compare(await raw.get('d/ab/obj'), data), 0, 'whole object');
    for (const [offset, length] of [[0, 65536], [65536, 65536], [65535, 2], [3 * 65536, 7], [3 * 65536, 100], [data.length - 1, 1]]) {
      const got = await raw.get('d/ab/obj', { offset, length });
      const want = data.subarray(offset, Math.min(offset + length, data.length));
      t.equal(Buffer.compare(got, want), 0, `range ${offset}+${length}`);
    }
    t.equal((await raw.get('d/ab/obj', { offset: data.length + 10, length: 5 })).length, 0, 'a range past the end is empty');
    t.same(await raw.stat('d/ab/obj'), { size: data.length });
    t.equal(await raw.stat('d/ab/none'), undefined);
    await t.rejects(raw.get('d/ab/none'), NotFoundError);
    await raw.delete('d/ab/obj');
    await raw.delete('d/ab/obj');
    await t.rejects(raw.get('d/ab/obj'), NotFoundError, 'gone, and deleting twice is fine');
  });

  t.test('listing goes past 1000 keys and reports sizes and times', async (t) => {
    const { raw } = s3(t);
    const keys = Array.from({ length: 1105 }, (_, i) => `d/${String(i).padStart(5, '0')}`);
    for (let i = 0; i < keys.length; i += 32) await Promise.all(keys.slice(i, i + 32).map((k) => raw.put(k, Buffer.alloc(3))));
    await raw.put('m/0000000000000001', Buffer.alloc(10));
    const listed = await raw.list('d/');
    t.equal(listed.length, 1105, 'all keys, over two pages');
    t.same(keysOf(listed), keys, 'in order, prefix stripped');
    t.ok(listed.every((i) => i.size === 3 && i.mtime > Date.now() - 600_000), 'sizes and modification times');
    t.same(keysOf(await raw.list('m/')), ['m/0000000000000001']);
    t.same(await raw.list('c/'), []);
  });

  t.test('conditional create: one winner, losers get ConflictError and change nothing', async (t) => {
    const { raw } = s3(t);
    await raw.put('m/1', Buffer.from('first'), { ifAbsent: true });
    await t.rejects(raw.put('m/1', Buffer.from('second'), { ifAbsent: true }), ConflictError);
    t.equal((await raw.get('m/1')).toString(), 'first');
    const racers = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => raw.put('m/2', Buffer.from(`w${i}`), { ifAbsent: true })));
    t.equal(racers.filter((r) => r.status === 'fulfilled').length, 1, 'exactly one of 8 concurrent creators wins');
    t.ok(racers.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason instanceof ConflictError));
  });

  t.test('5xx and resets are retried, other 4xx are not; a hang becomes a timeout', async (t) => {
    const proxy = new FaultProxy(new URL(process.env.S3_ENDPOINT!));
    const endpoint = await proxy.start();
    t.teardown(() => proxy.close());
    const { raw } = s3(t, endpoint, { requestTimeoutMs: 1000 });
    const store = new RetryingStore(raw, { attempts: 5, deadlineMs: 4000, baseDelayMs: 20, maxDelayMs: 100 });
    await store.put('d/x', Buffer.from('payload'));

    for (const status of [500, 503]) {
      proxy.inject('status', 2, status);
      proxy.requests = 0;
      t.equal((await store.get('d/x')).toString(), 'payload', `two ${status}s, then success`);
      t.equal(proxy.requests, 3, 'three attempts');
    }
    proxy.inject('reset', 2);
    proxy.requests = 0;
    t.equal((await store.get('d/x')).toString(), 'payload', 'two dropped connections, then success');
    t.equal(proxy.requests, 3);

    proxy.inject('status', 1, 403);
    proxy.requests = 0;
    const denied = await store.get('d/x').then(() => undefined, (e: unknown) => e);
    t.ok(denied instanceof StoreError && !(denied instanceof TransientStoreError), 'a final store error');
    t.match((denied as Error).message, /403/);
    t.equal(proxy.requests, 1, 'a 403 is final');

    proxy.inject('hang', Infinity);
    const started = Date.now();
    await t.rejects(store.get('d/x'), TransientStoreError, 'a server that never answers fails');
    const took = Date.now() - started;
    t.ok(took < 6000, `within the deadline (${took} ms)`);
    proxy.clear();
  });

  t.test('a store that stops answering gives EIO at the filesystem, never a hang; cached data stays readable', async (t) => {
    const proxy = new FaultProxy(new URL(process.env.S3_ENDPOINT!));
    const endpoint = await proxy.start();
    t.teardown(() => proxy.close());
    const { raw } = s3(t, endpoint, { requestTimeoutMs: 1000 });
    const store = new RetryingStore(raw, { attempts: 3, deadlineMs: 2500, baseDelayMs: 20, maxDelayMs: 100 });
    const cacheDir = tempDir(t);
    await initDrive(store, 'pw', { blockSize: 65536, kdfLogN: 10, cacheDir });
    // Over 1 MiB, so that a random read fetches its own segment (smaller files come with their whole pack).
    const data = randomBytes(40 * 65536);
    {
      const drive = await openDrive(store, { passphrase: 'pw', cacheDir, log: () => {} });
      const fd = await drive.fs.create('/f', 0o644);
      await drive.fs.write(fd, data, 0);
      drive.fs.release(fd);
      t.ok(await drive.close(), 'stored');
    }
    const logs: string[] = [];
    const drive = await openDrive(store, { passphrase: 'pw', cacheDir, log: (m) => logs.push(m), drainStallMs: 500 });
    const fd = await drive.fs.open('/f', 0);
    const buf = Buffer.alloc(65536);
    // Not from the start: a reader that starts at 0 counts as sequential and gets whole packs.
    t.equal(await drive.fs.read(fd, buf, 65536, 10 * 65536), 65536, 'a block read while the store works');
    proxy.inject('hang', Infinity);
    const started = Date.now();
    const err = await drive.fs.read(fd, buf, 65536, 30 * 65536).then(() => undefined, (e: unknown) => e);
    const took = Date.now() - started;
    t.ok(err, 'the read of an uncached block fails');
    t.equal(toErrno(err, () => 'read /f', (m) => logs.push(m)), -constants.errno.EIO, 'as EIO');
    t.ok(took < 5000, `after the deadline, not a hang (${took} ms)`);
    t.match(logs.join('\n'), /read \/f/, 'with a log line naming the file');
    t.equal(await drive.fs.read(fd, buf, 65536, 10 * 65536), 65536, 'the cached block is still served');
    t.equal(Buffer.compare(buf, data.subarray(10 * 65536, 11 * 65536)), 0);
    drive.fs.release(fd);
    proxy.clear();
    await drive.close();
  });

  t.test('wrong credentials and a missing bucket give clear errors without secrets', async (t) => {
    const url = `s3://${process.env.S3_BUCKET}/x`;
    const bad = new S3Store(resolveS3Config(url, {}, { ...process.env, AWS_SECRET_ACCESS_KEY: 'not-the-secret-0123456789' }));
    const err = await bad.stat('veilfs.json').then(() => undefined, (e: Error) => e);
    t.ok(err instanceof StoreError, 'a store error');
    t.match(err!.message, /403|SignatureDoesNotMatch|AccessDenied/);
    t.notMatch(err!.message, /not-the-secret|veilfs-test-secret/, 'no secret in the message');
    await bad.close();
    const missing = new S3Store(resolveS3Config('s3://no-such-bucket-here/x', {}));
    await t.rejects(missing.list(''), /does not exist|NoSuchBucket/);
    await missing.close();
  });
});
