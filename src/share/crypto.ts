/**
 * The cryptography of share links (FORMAT.md, "Shares"). This file runs in
 * the recipient's browser as well as in Node, so it uses only @noble and
 * Uint8Array: no Buffer, no node:crypto.
 */
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { scryptAsync } from '@noble/hashes/scrypt.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from '@noble/hashes/utils.js';

export const LINK_KEY_BYTES = 32;
const NONCE_BYTES = 24;
const TAG_BYTES = 16;
const SEGMENT_SIZE = 64 * 1024;

export interface SharePasswordParams {
  name: 'scrypt';
  logN: number;
  r: number;
  p: number;
  salt: string; // base64
}

/** 64 MiB: memory-hard, yet derivable in a phone's browser in a second or two. */
export const SHARE_PASSWORD_LOG_N = 16;

const text = new TextEncoder();
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function newPasswordParams(logN = SHARE_PASSWORD_LOG_N): SharePasswordParams {
  return { name: 'scrypt', logN, r: 8, p: 1, salt: toBase64(randomBytes(32)) };
}

export function newLinkKey(): Uint8Array {
  return randomBytes(LINK_KEY_BYTES);
}

/**
 * scrypt of a password's UTF-8 bytes to 32 bytes, with parameters shareKey
 * has checked. The browser has @noble's (scryptJs); Node passes native code
 * (src/share/native-scrypt.ts) that runs off its event loop: @noble's holds
 * the loop 10-30 ms at a time for a few hundred ms, and the daemon that
 * makes a share must keep answering the kernel meanwhile.
 */
export type PasswordScrypt = (password: Uint8Array, salt: Uint8Array, params: SharePasswordParams) => Promise<Uint8Array>;

export const scryptJs: PasswordScrypt = (password, salt, params) =>
  scryptAsync(password, salt, { N: 2 ** params.logN, r: params.r, p: params.p, dkLen: 32, maxmem: 2 ** params.logN * params.r * 128 + 2 ** 20 });

/** The key a manifest is sealed with: from the link key alone, or from the link key and the password. */
export async function shareKey(linkKey: Uint8Array, password?: { password: string; params: SharePasswordParams }, scrypt: PasswordScrypt = scryptJs): Promise<Uint8Array> {
  if (linkKey.length !== LINK_KEY_BYTES) throw new ShareFormatError('the link key has the wrong length');
  if (!password) return hkdf(sha256, linkKey, new Uint8Array(0), text.encode('veilfs share v1 key'), 32);
  const { params } = password;
  if (params.name !== 'scrypt' || !Number.isInteger(params.logN) || params.logN < 10 || params.logN > 20 || params.r < 1 || params.r > 32 || params.p < 1 || params.p > 4) {
    throw new ShareFormatError('unsupported password parameters');
  }
  const secret = text.encode(password.password.normalize('NFC'));
  const stretched = await scrypt(secret, fromBase64(params.salt), params).finally(() => secret.fill(0));
  const ikm = new Uint8Array(LINK_KEY_BYTES + stretched.length);
  ikm.set(linkKey, 0);
  ikm.set(stretched, LINK_KEY_BYTES);
  return hkdf(sha256, ikm, new Uint8Array(0), text.encode('veilfs share v1 password key'), 32);
}

function manifestAad(id: string, seq: number): Uint8Array {
  return text.encode(`veilfs share manifest\0${id}\0${seq}`);
}

/** Seals a manifest (any JSON) padded to a power of two, so its size says little. */
export function sealManifest(key: Uint8Array, id: string, seq: number, manifest: unknown): Uint8Array {
  const json = text.encode(JSON.stringify(manifest));
  let size = 1024;
  while (size < json.length) size *= 2;
  const padded = new Uint8Array(size).fill(0x20);
  padded.set(json, 0);
  const nonce = randomBytes(NONCE_BYTES);
  const sealed = xchacha20poly1305(key, nonce, manifestAad(id, seq)).encrypt(padded);
  const out = new Uint8Array(NONCE_BYTES + sealed.length);
  out.set(nonce, 0);
  out.set(sealed, NONCE_BYTES);
  return out;
}

/** Opens a sealed manifest; throws ShareKeyError when the key (or password) is wrong or the bytes were changed. */
export function openManifest(key: Uint8Array, id: string, seq: number, sealed: Uint8Array): unknown {
  const plain = openSealed(key, sealed, manifestAad(id, seq));
  if (!plain) throw new ShareKeyError('the manifest does not open with this key');
  return JSON.parse(utf8.decode(plain));
}

function openSealed(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | undefined {
  if (sealed.length < NONCE_BYTES + TAG_BYTES) return undefined;
  try {
    return xchacha20poly1305(key, sealed.subarray(0, NONCE_BYTES), aad).decrypt(sealed.subarray(NONCE_BYTES));
  } catch {
    return undefined;
  }
}

const SEGMENT_LABEL = text.encode('veilfs v2 segment\0');

/** Opens one sealed segment of a shared file (FORMAT.md, version 2 "Segments"); throws ShareIntegrityError. */
export function openShareSegment(fileKey: Uint8Array, fileId: string, index: number, version: number, sealed: Uint8Array): Uint8Array {
  const aad = new Uint8Array(SEGMENT_LABEL.length + 32);
  aad.set(SEGMENT_LABEL, 0);
  aad.set(fromHex(fileId), SEGMENT_LABEL.length);
  const view = new DataView(aad.buffer);
  view.setBigUint64(SEGMENT_LABEL.length + 16, BigInt(index));
  view.setBigUint64(SEGMENT_LABEL.length + 24, BigInt(version));
  const plain = openSealed(fileKey, sealed, aad);
  if (!plain || plain.length > SEGMENT_SIZE) throw new ShareIntegrityError(`segment ${index} failed authentication`);
  return plain;
}

export class ShareFormatError extends Error {
  override name = 'ShareFormatError';
}
/** Wrong link key or password. */
export class ShareKeyError extends Error {
  override name = 'ShareKeyError';
}
/** Data that does not authenticate: tampered, truncated or swapped. */
export class ShareIntegrityError extends Error {
  override name = 'ShareIntegrityError';
}

export function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export function fromBase64(value: string): Uint8Array {
  let s: string;
  try {
    s = atob(value.replace(/-/g, '+').replace(/_/g, '/'));
  } catch {
    throw new ShareFormatError('not base64');
  }
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export function toBase64Url(bytes: Uint8Array): string {
  return toBase64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromHex(hex: string): Uint8Array {
  if (!/^[0-9a-f]{32}$/.test(hex)) throw new ShareFormatError('malformed file id');
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
