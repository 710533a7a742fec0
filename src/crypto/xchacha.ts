import { IntegrityError } from '../errors.js';
import { requireAddon } from '../util/native-addon.js';
import { fillRandom } from './random-pool.js';

/**
 * XChaCha20-Poly1305 through native/veilfs-crypto.c, on the OpenSSL Node
 * carries: one reused cipher context instead of node:crypto's object per
 * message, which cost about 40 us per small message in the daemon (each
 * close journals one). A test keeps this byte-identical to @noble/ciphers'
 * xchacha20poly1305.
 */
interface CryptoAddon {
  /** out = ciphertext || tag; out.length must be plaintext.length + 16. */
  seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, out: Uint8Array): void;
  /** out = plaintext when the tag verifies (true); zeroed otherwise (false). */
  open(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array, aad: Uint8Array, out: Uint8Array): boolean;
}

let addon: CryptoAddon | undefined;

function native(): CryptoAddon {
  if (addon) return addon;
  return (addon = requireAddon<CryptoAddon>('veilfs_crypto', 'the cipher (native/veilfs-crypto.c)'));
}

export const KEY_BYTES = 32;
export const NONCE_BYTES = 24;
export const TAG_BYTES = 16;
export const OVERHEAD = NONCE_BYTES + TAG_BYTES;

/** Encrypts into one buffer laid out as nonce(24) || ciphertext || tag(16). */
export function seal(key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, nonce?: Uint8Array): Buffer {
  if (key.length !== KEY_BYTES) throw new Error('XChaCha20-Poly1305 needs a 32-byte key');
  const out = Buffer.allocUnsafe(NONCE_BYTES + plaintext.length + TAG_BYTES);
  const nonceBytes = out.subarray(0, NONCE_BYTES);
  if (nonce) nonceBytes.set(nonce);
  else fillRandom(nonceBytes);
  native().seal(key, nonceBytes, plaintext, aad, out.subarray(NONCE_BYTES));
  return out;
}

/** Reverses seal(); throws IntegrityError if the tag does not verify. */
export function open(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Buffer {
  if (key.length !== KEY_BYTES) throw new Error('XChaCha20-Poly1305 needs a 32-byte key');
  if (sealed.length < OVERHEAD) throw new IntegrityError('ciphertext too short');
  const body = sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES);
  const out = Buffer.allocUnsafe(body.length);
  if (!native().open(key, sealed.subarray(0, NONCE_BYTES), body, sealed.subarray(sealed.length - TAG_BYTES), aad, out)) {
    throw new IntegrityError('authentication tag mismatch');
  }
  return out;
}
