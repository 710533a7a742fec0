import { IntegrityError } from '../errors.js';
import { open, OVERHEAD, seal } from '../crypto/xchacha.js';

/**
 * A block is one object: nonce || XChaCha20-Poly1305(plaintext padded) || tag.
 * The AAD binds it to its file, its index in the file and its own object id,
 * so a block moved to another file or index, or an older version of the
 * block put back under a newer name, fails to authenticate.
 */
const AAD_LABEL = Buffer.from('veilfs v1 block\0');
const MIN_BUCKET = 4096;

export interface BlockAddress {
  fileId: string; // 32 hex
  index: number;
  objectId: string; // 32 hex
}

export function blockAad(addr: BlockAddress): Buffer {
  const aad = Buffer.alloc(AAD_LABEL.length + 16 + 8 + 16);
  AAD_LABEL.copy(aad, 0);
  aad.write(addr.fileId, AAD_LABEL.length, 16, 'hex');
  aad.writeBigUInt64BE(BigInt(addr.index), AAD_LABEL.length + 16);
  aad.write(addr.objectId, AAD_LABEL.length + 24, 16, 'hex');
  return aad;
}

/**
 * Plaintext is padded with zeros to a power of two (at least 4 KiB, at most
 * the block size) so the store sees only a size bucket, not the exact size.
 */
export function paddedLength(used: number, blockSize: number): number {
  let bucket = MIN_BUCKET;
  while (bucket < used) bucket *= 2;
  return Math.min(bucket, blockSize);
}

/** The first `used` bytes, zero-padded to their bucket (a view when `plain` is long enough: its tail must be zeros). */
export function paddedPlaintext(plain: Uint8Array, used: number, maxSize: number): Uint8Array {
  const padded = paddedLength(used, maxSize);
  if (plain.length >= padded) return plain.subarray(0, padded);
  const buf = Buffer.alloc(padded);
  buf.set(plain.subarray(0, used));
  return buf;
}

export function encryptBlock(fileKey: Uint8Array, addr: BlockAddress, plain: Uint8Array, used: number, blockSize: number): Buffer {
  return seal(fileKey, paddedPlaintext(plain, used, blockSize), blockAad(addr));
}

export function decryptBlock(fileKey: Uint8Array, addr: BlockAddress, sealed: Uint8Array, blockSize: number): Buffer {
  const plain = open(fileKey, sealed, blockAad(addr));
  if (plain.length > blockSize) throw new IntegrityError('block larger than the block size');
  return plain;
}

export const BLOCK_OVERHEAD = OVERHEAD;
