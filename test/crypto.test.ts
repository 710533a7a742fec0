import t from 'tap';
import { randomBytes, scryptSync } from 'node:crypto';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { open, seal, NONCE_BYTES } from '../src/crypto/xchacha.js';
import { newScryptParams, passphraseKey, randomKey, subkey } from '../src/crypto/keys.js';
import { loadAddon } from '../src/util/native-addon.js';
import { fillRandom, randomBuffer } from '../src/crypto/random-pool.js';
import { IntegrityError } from '../src/errors.js';

t.test('native-speed XChaCha20-Poly1305 is byte-identical to @noble/ciphers', async (t) => {
  for (const size of [0, 1, 15, 16, 63, 64, 65, 4096, 65536 + 7, 1024 * 1024]) {
    const key = randomBytes(32);
    const nonce = randomBytes(NONCE_BYTES);
    const aad = randomBytes(size % 40);
    const plain = randomBytes(size);
    const ours = seal(key, plain, aad, nonce);
    const noble = xchacha20poly1305(key, nonce, aad).encrypt(plain);
    t.same(Buffer.compare(ours.subarray(NONCE_BYTES), Buffer.from(noble)), 0, `ciphertext and tag match for ${size} bytes`);
    t.same(Buffer.compare(open(key, ours, aad), plain), 0, `round trip of ${size} bytes`);
    t.same(Buffer.compare(Buffer.from(xchacha20poly1305(key, nonce, aad).decrypt(ours.subarray(NONCE_BYTES))), plain), 0, 'noble decrypts ours');
  }
});

t.test('wrong key, wrong AAD and any flipped bit fail authentication', async (t) => {
  const key = randomBytes(32);
  const aad = Buffer.from('context');
  const sealed = seal(key, Buffer.from('secret data'), aad);
  t.throws(() => open(randomBytes(32), sealed, aad), IntegrityError);
  t.throws(() => open(key, sealed, Buffer.from('other')), IntegrityError);
  for (const i of [0, NONCE_BYTES, sealed.length - 1]) {
    const bad = Buffer.from(sealed);
    bad[i] ^= 1;
    t.throws(() => open(key, bad, aad), IntegrityError, `flipped byte ${i}`);
  }
  t.throws(() => open(key, sealed.subarray(0, 20), aad), IntegrityError, 'too short');
  t.throws(() => open(key, sealed.subarray(0, sealed.length - 1), aad), IntegrityError, 'truncated');
});

t.test('views into larger buffers are read and written where they point, and each call stands alone', async (t) => {
  const key = randomBytes(32);
  const nonce = randomBytes(NONCE_BYTES);
  const backing = randomBytes(4096);
  // Views at odd offsets of one allocation, as Buffer's pool hands out.
  const plain = backing.subarray(13, 13 + 1000);
  const aad = backing.subarray(2001, 2001 + 33);
  const keyView = Buffer.concat([randomBytes(7), key]).subarray(7);
  const sealed = seal(keyView, plain, aad, nonce);
  t.same(Buffer.compare(sealed.subarray(NONCE_BYTES), Buffer.from(xchacha20poly1305(key, nonce, Buffer.from(aad)).encrypt(Buffer.from(plain)))), 0, 'the same bytes as from copies');
  const inBig = Buffer.concat([randomBytes(5), sealed, randomBytes(5)]);
  t.same(Buffer.compare(open(key, inBig.subarray(5, 5 + sealed.length), aad), plain), 0, 'opened from a view');
  // A failed open leaves no state behind for the next one (the context is reused).
  const bad = Buffer.from(sealed);
  bad[NONCE_BYTES + 3] ^= 0x80;
  t.throws(() => open(key, bad, aad), IntegrityError);
  t.same(Buffer.compare(open(key, sealed, aad), plain), 0, 'the next open still succeeds');
  t.throws(() => seal(randomBytes(16), plain, aad), /32-byte key/, 'a short key is refused');
  t.throws(() => open(randomBytes(31), sealed, aad), /32-byte key/);
});

t.test('two encryptions of the same plaintext differ (random nonces)', async (t) => {
  const key = randomBytes(32);
  const a = seal(key, Buffer.from('same'), Buffer.alloc(0));
  const b = seal(key, Buffer.from('same'), Buffer.alloc(0));
  t.not(a.toString('hex'), b.toString('hex'));
});

t.test('the key derivation is scrypt (RFC 7914): its test vector, and the same bytes as node:crypto for any passphrase and parameters', async (t) => {
  // RFC 7914 section 12, N = 1024, r = 8, p = 16: the first 32 of its 64 bytes (PBKDF2's first block).
  const rfc = await passphraseKey('password', { name: 'scrypt', logN: 10, r: 8, p: 16, salt: Buffer.from('NaCl').toString('base64') });
  t.equal(rfc.toString('hex'), 'fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162', 'RFC 7914 test vector');
  const cases: [string, number, number, number][] = [
    ['', 10, 8, 1], ['correct horse battery staple', 12, 8, 1], ['pa\u0301ssword', 11, 1, 1], ['ключ 🔑', 10, 4, 3], ['x'.repeat(1000), 13, 8, 2],
  ];
  // All at once: each derivation has its own buffers on the thread pool.
  const derived = await Promise.all(cases.map(([passphrase, logN, r, p]) => {
    const params = { ...newScryptParams(logN), r, p };
    return passphraseKey(passphrase, params).then((key) => ({ key, passphrase, params }));
  }));
  for (const { key, passphrase, params } of derived) {
    const reference = scryptSync(passphrase.normalize('NFC'), Buffer.from(params.salt, 'base64'), 32, { N: 2 ** params.logN, r: params.r, p: params.p, maxmem: 2 ** 28 });
    t.equal(key.toString('hex'), reference.toString('hex'), `logN ${params.logN}, r ${params.r}, p ${params.p}, ${passphrase.length} characters`);
  }
  // NFC: the same passphrase typed as a precomposed or a decomposed character gives the same key.
  const salt = newScryptParams(10);
  t.equal((await passphraseKey('\u00e9t\u00e9', salt)).toString('hex'), (await passphraseKey('e\u0301te\u0301', salt)).toString('hex'));
  await t.rejects(passphraseKey('x', { ...salt, logN: 23 }), /unsupported key derivation parameters/);
  await t.rejects(passphraseKey('x', { ...salt, p: 0 }), /unsupported key derivation parameters/);
  const addon = loadAddon<{ scrypt: (...args: unknown[]) => Promise<Buffer> }>('veilfs_scrypt');
  t.throws(() => addon.scrypt('x', Buffer.alloc(32), 10, 8, 1, 32), TypeError, 'a passphrase that is not a Buffer');
  t.throws(() => addon.scrypt(Buffer.from('x'), Buffer.alloc(32), 0, 8, 1, 32), TypeError, 'N = 1');
  t.throws(() => addon.scrypt(Buffer.from('x'), Buffer.alloc(32), 10, 8, 1), TypeError, 'a missing argument');
});

t.test('subkeys differ per purpose and are deterministic', async (t) => {
  const master = randomBytes(32);
  t.not(subkey(master, 'metadata').toString('hex'), subkey(master, 'cache').toString('hex'));
  t.equal(subkey(master, 'metadata').toString('hex'), subkey(master, 'metadata').toString('hex'));
});

t.test('the random pool never hands out the same bytes twice, across refills and for any size', async (t) => {
  // 24-byte nonces, 16-byte file ids and 32-byte keys, interleaved: well past several refills of the pool.
  const seen = new Set<string>();
  for (let i = 0; i < 3000; i++) {
    for (const draw of [randomBuffer(NONCE_BYTES), randomBuffer(16), randomKey()]) seen.add(draw.toString('hex'));
  }
  t.equal(seen.size, 9000, 'every draw is new');
  const big = Buffer.alloc(64 * 1024);
  fillRandom(big);
  t.ok(big.filter((b) => b === 0).length < 1024, 'a draw bigger than the pool is filled too');
  const nonces = new Set(Array.from({ length: 600 }, () => seal(randomKey(), Buffer.from('x'), Buffer.alloc(0)).subarray(0, NONCE_BYTES).toString('hex')));
  t.equal(nonces.size, 600, 'seal draws a fresh nonce each time');
});
