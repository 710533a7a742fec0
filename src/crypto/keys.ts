import { hkdfSync, randomBytes } from 'node:crypto';
import { requireAddon } from '../util/native-addon.js';
import { randomBuffer } from './random-pool.js';
import { KEY_BYTES } from './xchacha.js';

/** native/veilfs-scrypt.c: scrypt on libsodium, on libuv's thread pool. */
interface ScryptAddon {
  scrypt(passphrase: Buffer, salt: Buffer, logN: number, r: number, p: number, keyLength: number): Promise<Buffer>;
}

let addon: ScryptAddon | undefined;

export interface ScryptParams {
  name: 'scrypt';
  /** log2 of the CPU/memory cost N. */
  logN: number;
  r: number;
  p: number;
  salt: string; // base64
}

/** ~128 MiB and about half a second here: the passphrase is the weak link. */
export const DEFAULT_LOG_N = 17;

export function newScryptParams(logN = DEFAULT_LOG_N): ScryptParams {
  return { name: 'scrypt', logN, r: 8, p: 1, salt: randomBytes(32).toString('base64') };
}

/**
 * scrypt (RFC 7914), native and off the event loop. libsodium's, not
 * node:crypto's: the same bytes about a third sooner, and it is most of the
 * time a mount takes (native/veilfs-scrypt.c).
 */
export async function passphraseKey(passphrase: string, params: ScryptParams): Promise<Buffer> {
  if (params.name !== 'scrypt' || params.logN < 10 || params.logN > 22 || params.r < 1 || params.r > 64 || params.p < 1 || params.p > 16) {
    throw new Error('unsupported key derivation parameters in vault header');
  }
  const secret = Buffer.from(passphrase.normalize('NFC'));
  // The passphrase's bytes do not outlive the derivation in this buffer (a string is beyond reach).
  return scryptNative(secret, Buffer.from(params.salt, 'base64'), params.logN, params.r, params.p, KEY_BYTES).finally(() => secret.fill(0));
}

/** scrypt of bytes, on libuv's thread pool; the caller has bounded the parameters. */
export function scryptNative(secret: Uint8Array, salt: Uint8Array, logN: number, r: number, p: number, keyLength: number): Promise<Buffer> {
  addon ??= requireAddon<ScryptAddon>('veilfs_scrypt', 'the key derivation (native/veilfs-scrypt.c)');
  const view = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return addon.scrypt(view(secret), view(salt), logN, r, p, keyLength);
}

/** One subkey per purpose, so no key is ever used in two constructions. */
export type KeyPurpose = 'metadata' | 'cache' | 'share';

export function subkey(master: Uint8Array, purpose: KeyPurpose): Buffer {
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `veilfs v1 ${purpose}`, KEY_BYTES));
}

export function randomKey(): Buffer {
  return randomBuffer(KEY_BYTES);
}
