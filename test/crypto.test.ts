import t from 'tap';
import { randomBytes } from 'node:crypto';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { open, seal, NONCE_BYTES } from '../src/crypto/xchacha.js';
import { randomKey, subkey } from '../src/crypto/keys.js';
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

t.test('two encryptions of the same plaintext differ (random nonces)', async (t) => {
  const key = randomBytes(32);
  const a = seal(key, Buffer.from('same'), Buffer.alloc(0));
  const b = seal(key, Buffer.from('same'), Buffer.alloc(0));
  t.not(a.toString('hex'), b.toString('hex'));
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
