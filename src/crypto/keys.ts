import { hkdfSync, randomBytes, scrypt as scryptCb } from 'node:crypto';
import { promisify } from 'node:util';
import { randomBuffer } from './random-pool.js';
import { KEY_BYTES } from './xchacha.js';

const scrypt = promisify(scryptCb) as (
  password: string | Buffer, salt: Buffer, keylen: number, opts: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;

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
 * scrypt from node:crypto: the same function as @noble/hashes' scrypt but
 * native, so mounting does not stall the event loop for seconds.
 */
export async function passphraseKey(passphrase: string, params: ScryptParams): Promise<Buffer> {
  if (params.name !== 'scrypt' || params.logN < 10 || params.logN > 22 || params.r < 1 || params.p < 1) {
    throw new Error('unsupported key derivation parameters in vault header');
  }
  const N = 2 ** params.logN;
  return scrypt(passphrase.normalize('NFC'), Buffer.from(params.salt, 'base64'), KEY_BYTES, {
    N, r: params.r, p: params.p, maxmem: 256 * N * params.r + 64 * 1024 * 1024,
  });
}

/** One subkey per purpose, so no key is ever used in two constructions. */
export type KeyPurpose = 'metadata' | 'cache' | 'share';

export function subkey(master: Uint8Array, purpose: KeyPurpose): Buffer {
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `veilfs v1 ${purpose}`, KEY_BYTES));
}

export function randomKey(): Buffer {
  return randomBuffer(KEY_BYTES);
}
