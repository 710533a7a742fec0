import t from 'tap';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { sealSegment } from '../src/format/segment.js';
import { packKey } from '../src/format/names.js';
import { fromBase64, newLinkKey, newPasswordParams, openManifest, openShareSegment, scryptJs, sealManifest, ShareIntegrityError, ShareKeyError, shareKey, toBase64, toBase64Url } from '../src/share/crypto.js';
import { scryptNode } from '../src/share/native-scrypt.js';
import { fetchRuns, openRun, parseManifest, parseRecord, segmentPlaces, type SharedFile, type ShareRecord } from '../src/share/manifest.js';
import { recordKey, writeRecord, packsHeldByShares } from '../src/share/records.js';
import { startGateway } from '../src/share/gateway.js';
import { parseLink } from '../src/share/link.js';
import { parseExpiry } from '../src/cli/share.js';
import { checkGateway } from '../src/share/service.js';
import { LocalStore } from '../src/store/local.js';
import { WrappingStore } from '../src/store/wrapping.js';
import { tempDir } from './lib/tmp.js';

const SEG = 64 * 1024;

t.test('the browser\'s segment opener reads what the mount seals, and nothing altered', async (t) => {
  const key = randomBytes(32);
  const fileId = randomBytes(16).toString('hex');
  const plain = randomBytes(SEG);
  const sealed = sealSegment(key, fileId, 7, 123456789, plain, SEG);
  t.ok(Buffer.from(openShareSegment(key, fileId, 7, 123456789, sealed)).equals(plain), 'same bytes');
  t.throws(() => openShareSegment(key, fileId, 8, 123456789, sealed), ShareIntegrityError, 'another position');
  t.throws(() => openShareSegment(key, fileId, 7, 123456790, sealed), ShareIntegrityError, 'another version');
  t.throws(() => openShareSegment(key, randomBytes(16).toString('hex'), 7, 123456789, sealed), ShareIntegrityError, 'another file');
  const flipped = Buffer.from(sealed);
  flipped[100] ^= 1;
  t.throws(() => openShareSegment(key, fileId, 7, 123456789, flipped), ShareIntegrityError, 'a flipped bit');
  t.throws(() => openShareSegment(key, fileId, 7, 123456789, sealed.subarray(0, 30)), ShareIntegrityError, 'truncated');
});

t.test('manifests open only with their key, share id and number; passwords count', async (t) => {
  const linkKey = newLinkKey();
  const key = await shareKey(linkKey);
  const id = randomBytes(16).toString('hex');
  const sealed = sealManifest(key, id, 5, { hello: 'world' });
  t.ok(sealed.length >= 1024 + 40 && ((sealed.length - 40) & (sealed.length - 41)) === 0, 'padded to a power of two');
  t.same(openManifest(key, id, 5, sealed), { hello: 'world' });
  t.throws(() => openManifest(key, id, 6, sealed), ShareKeyError, 'another record number');
  t.throws(() => openManifest(key, randomBytes(16).toString('hex'), 5, sealed), ShareKeyError, 'another share');
  const otherKey = await shareKey(newLinkKey());
  t.throws(() => openManifest(otherKey, id, 5, sealed), ShareKeyError, 'another link');
  const params = newPasswordParams(10);
  const withPassword = await shareKey(linkKey, { password: 'pw', params });
  t.notSame(Buffer.from(withPassword), Buffer.from(key), 'the password changes the key');
  t.same(Buffer.from(await shareKey(linkKey, { password: 'pw', params })), Buffer.from(withPassword), 'deterministic');
  t.notSame(Buffer.from(await shareKey(linkKey, { password: 'pX', params })), Buffer.from(withPassword), 'another password, another key');
  await t.rejects(shareKey(linkKey, { password: 'pw', params: { ...params, logN: 30 } }), /unsupported/, 'absurd parameters refused');
  await t.rejects(shareKey(linkKey.subarray(1)), /length/);
  t.equal(toBase64Url(fromBase64(toBase64Url(linkKey))), toBase64Url(linkKey), 'base64url round trip');
});

t.test("a share password's key is the same from Node's native scrypt as from the browser's", async (t) => {
  const linkKey = newLinkKey();
  const cases: [string, ReturnType<typeof newPasswordParams>][] = [
    ['pw', newPasswordParams(10)],
    ['', { ...newPasswordParams(11), r: 4, p: 2 }],
    ['Cafe\u0301 пароль 🔑', newPasswordParams(12)],
    ['x'.repeat(1000), { ...newPasswordParams(10), r: 16 }],
    ['the default cost', newPasswordParams()],
  ];
  for (const [password, params] of cases) {
    const browser = await shareKey(linkKey, { password, params }, scryptJs);
    const node = await shareKey(linkKey, { password, params }, scryptNode);
    t.same(Buffer.from(node), Buffer.from(browser), `logN ${params.logN}, r ${params.r}, p ${params.p}, ${password.length} characters`);
  }
});

function fileOf(size: number, segs: SharedFile['segs']): SharedFile {
  return { type: 'file', name: 'f', size, mtime: 0, fileId: randomBytes(16).toString('hex'), key: toBase64(randomBytes(32)), segs };
}

t.test('fetch runs group segments stored back to back, and leave holes', async (t) => {
  const pack = 'a'.repeat(32);
  const other = 'b'.repeat(32);
  const file = fileOf(6 * SEG, [[0, 3, pack, 0, 1000, 10], [4, 2, other, 500, 1000, 20]]);
  const runs = fetchRuns(segmentPlaces(file), 0, 5);
  t.same(runs.map((r) => ('hole' in r ? `hole ${r.hole}` : `${r.pack[0]}@${r.offset}x${r.segments.length}`)), ['a@0x3', 'hole 3', 'b@500x2']);
  t.same(fetchRuns(segmentPlaces(file), 1, 1).map((r) => ('hole' in r ? -1 : r.offset)), [1000], 'one segment from the middle');
  t.equal(fetchRuns(segmentPlaces(file), 0, 2, 1500).length, 3, 'bounded by bytes per request');
});

t.test('openRun cuts the last segment to the file size', async (t) => {
  const key = randomBytes(32);
  const fileId = randomBytes(16).toString('hex');
  const data = randomBytes(SEG + 10);
  const s0 = sealSegment(key, fileId, 0, 1, data.subarray(0, SEG), SEG);
  const s1 = sealSegment(key, fileId, 1, 2, data.subarray(SEG), 10);
  const file: SharedFile = { type: 'file', name: 'x', size: data.length, mtime: 0, fileId, key: toBase64(key), segs: [[0, 1, 'c'.repeat(32), 0, s0.length, 1], [1, 1, 'c'.repeat(32), s0.length, s1.length, 2]] };
  const runs = fetchRuns(segmentPlaces(file), 0, 1);
  t.equal(runs.length, 1, 'stored back to back: one request');
  const pieces = openRun(file, runs[0] as never, Buffer.concat([s0, s1]));
  t.ok(Buffer.concat(pieces.map((p) => Buffer.from(p))).equals(data));
  t.throws(() => openRun(file, runs[0] as never, s0), /short/, 'a short answer is an error');
});

t.test('records and manifests are checked before use', async (t) => {
  const id = randomBytes(16).toString('hex');
  const good = { format: 'veilfs-share', version: 1, id, seq: 1, created: 1, expires: null, password: null, ranges: {}, manifest: '' };
  t.ok(parseRecord(good, id));
  t.throws(() => parseRecord({ ...good, id: 'x' }), /not a veilfs share/);
  t.throws(() => parseRecord(good, randomBytes(16).toString('hex')), /not a veilfs share/, 'the id of another share');
  t.throws(() => parseRecord({ ...good, ranges: { 'zz': [[0, 1]] } }), /malformed/);
  t.throws(() => parseRecord({ ...good, ranges: { ['a'.repeat(32)]: [[0, -1]] } }), /malformed/);
  const record = parseRecord(good, id);
  const file = fileOf(1, []);
  t.ok(parseManifest({ id, seq: 1, root: { type: 'dir', name: 'top', mtime: 0, entries: [file] } }, record));
  t.throws(() => parseManifest({ id, seq: 2, root: file }, record), /another share/);
  for (const name of ['..', '.', 'a/b', '']) {
    t.throws(() => parseManifest({ id, seq: 1, root: { type: 'dir', name: 'top', mtime: 0, entries: [{ ...file, name }] } }, record), /malformed/, `a child named ${JSON.stringify(name)}`);
  }
  t.throws(() => parseManifest({ id, seq: 1, root: { ...file, segs: [[0, 1, '../../x', 0, 1, 1]] } }, record), /malformed/, 'a pack that is not an id');
});

t.test('the gateway address is checked when it is set', async (t) => {
  t.equal(checkGateway('https://share.example.org/'), 'https://share.example.org');
  t.equal(checkGateway('http://127.0.0.1:8480'), 'http://127.0.0.1:8480');
  t.throws(() => checkGateway('https://example.org/shares'), /root of its address/);
  t.throws(() => checkGateway('ftp://example.org'), /http/);
  t.throws(() => checkGateway('example.org'), /not a URL/);
});

t.test('links and expiry parse, with clear errors', async (t) => {
  const key = toBase64Url(newLinkKey());
  const link = parseLink(`https://share.example.org/base/s/${'d'.repeat(32)}#${key}`);
  t.equal(link.gateway, 'https://share.example.org/base');
  t.equal(link.id, 'd'.repeat(32));
  t.throws(() => parseLink(`https://x/s/${'d'.repeat(32)}`), /key after "#"/);
  t.throws(() => parseLink(`https://x/s/${'d'.repeat(32)}#${key.slice(3)}`), /damaged/);
  t.throws(() => parseLink('not a link'), /not a share link/);
  t.equal(parseExpiry('7d', 1000), 1000 + 7 * 86_400_000);
  t.equal(parseExpiry('90s', 0), 90_000);
  t.throws(() => parseExpiry('soon'), /--expires/);
  t.throws(() => parseExpiry('2001-01-01'), /past/);
});

/** A store that can be held back: reads wait until released. */
class SlowStore extends WrappingStore {
  gate: Promise<void> | undefined;
  async get(key: string, range?: { offset: number; length: number }) {
    await this.gate;
    return this.inner.get(key, range);
  }
  put(key: string, data: Uint8Array, options?: { ifAbsent?: boolean }) {
    return this.inner.put(key, data, options);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  stat(key: string) {
    return this.inner.stat(key);
  }
}

t.test('the gateway serves exactly the exposed ranges of live shares', async (t) => {
  const store = new LocalStore(path.join(tempDir(t, 'veilfs-gateway'), 'store'));
  const slow = new SlowStore(store);
  const pack = randomBytes(16).toString('hex');
  const otherPack = randomBytes(16).toString('hex');
  const packBytes = randomBytes(64 * 1024);
  await store.put(packKey(pack), packBytes);
  await store.put(packKey(otherPack), randomBytes(1024));
  await store.put('veilfs.json', Buffer.from('{"secret":"header"}'));
  const id = randomBytes(16).toString('hex');
  const record: ShareRecord = { format: 'veilfs-share', version: 1, id, seq: 1, created: Date.now(), expires: null, password: null, ranges: { [pack]: [[1000, 5000], [20000, 100]] }, manifest: 'AAAA', owner: 'owner-secret' };
  await writeRecord(store, record, []);
  const expiredId = randomBytes(16).toString('hex');
  await writeRecord(store, { ...record, id: expiredId, expires: Date.now() - 1 }, []);
  const lines: string[] = [];
  const server = await startGateway({ store: slow, log: (l) => lines.push(l), recordTtlMs: 0, concurrency: 2, queueLimit: 2 }, { host: '127.0.0.1', port: 0 });
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const get = (p: string, range?: string, method = 'GET') => fetch(`${base}${p}`, { method, headers: range ? { range } : {} });

  const ok = await get(`/api/s/${id}/p/${pack}`, 'bytes=1000-5999');
  t.equal(ok.status, 206);
  t.ok(Buffer.from(await ok.arrayBuffer()).equals(packBytes.subarray(1000, 6000)), 'the exact bytes');
  t.match(ok.headers.get('cache-control'), /immutable/, 'cacheable by a CDN');
  t.equal(ok.headers.get('etag'), `"${pack}"`);
  t.equal((await get(`/api/s/${id}/p/${pack}`, 'bytes=20000-20099')).status, 206, 'the second range');
  for (const [range, why] of [['bytes=999-1500', 'one byte before'], ['bytes=5000-6000', 'one byte after'], ['bytes=6000-19999', 'between ranges'], ['bytes=1000-1100,2000-2100', 'two ranges'], ['bytes=-100', 'a suffix'], ['items=0-1', 'another unit']] as const) {
    t.ok([404, 416].includes((await get(`/api/s/${id}/p/${pack}`, range)).status), why);
  }
  t.equal((await get(`/api/s/${id}/p/${otherPack}`, 'bytes=0-10')).status, 404, 'a pack the share does not expose');
  const visible = await (await get(`/api/s/${id}`)).json() as Record<string, unknown>;
  t.equal(visible.owner, undefined, 'the owner part stays in the store');
  t.equal(visible.manifest, 'AAAA');
  t.equal((await get(`/api/s/${expiredId}`)).status, 410, 'expired');
  t.equal((await get(`/api/s/${expiredId}/p/${pack}`, 'bytes=1000-1999')).status, 410, 'an expired share exposes nothing');
  t.same(await packsHeldByShares(store), new Set([pack]), 'gc keeps the packs of live shares only');
  await writeRecord(store, { format: 'veilfs-share', version: 1, id, seq: 2, created: record.created, revoked: Date.now() }, [recordKey(id, 1)]);
  t.same(await (await get(`/api/s/${id}`)).json(), { error: 'revoked' });
  t.equal((await get(`/api/s/${id}/p/${pack}`, 'bytes=1000-1999')).status, 410, 'revoked: nothing');
  t.same(await packsHeldByShares(store), new Set(), 'revoked: released');
  for (const p of ['/veilfs.json', '/api/s/settings', `/api/s/${'0'.repeat(32)}`, '/api/s/%2e%2e/p/x', `/api/s/${id}/p/..%2fveilfs.json`, '/s/xyz', '/../veilfs.json']) {
    t.equal((await get(p)).status, 404, `404 for ${p}`);
  }
  t.equal((await get(`/api/s/${id}`, undefined, 'DELETE')).status, 405);

  // A flood: two at a time, two waiting, the rest turned away at once, and the server still answers after.
  await writeRecord(store, { ...record, seq: 3 }, [recordKey(id, 2)]);
  let release!: () => void;
  slow.gate = new Promise((resolve) => (release = resolve));
  const flood = Array.from({ length: 20 }, () => get(`/api/s/${id}/p/${pack}`, 'bytes=1000-1999').then((r) => r.status));
  await new Promise((r) => setTimeout(r, 300));
  release();
  slow.gate = undefined;
  const statuses = await Promise.all(flood);
  t.ok(statuses.filter((s) => s === 429).length >= 10, `most of a flood is turned away with 429 (${statuses.join(' ')})`);
  t.equal((await get(`/api/s/${id}/p/${pack}`, 'bytes=1000-1999')).status, 206, 'and the gateway still serves');
  t.notOk(lines.join('\n').includes('owner-secret'), 'the log holds no record content');
});
