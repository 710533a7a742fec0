import { randomBytes } from 'node:crypto';
import { EXIT } from '../exit-codes.js';
import { IntegrityError, UserError } from '../errors.js';
import { newScryptParams, passphraseKey, randomKey, type ScryptParams } from '../crypto/keys.js';
import { open, seal } from '../crypto/xchacha.js';
import { NotFoundError, type ObjectStore } from '../store/types.js';
import { getChecked } from '../store/checked-get.js';
import { putVerified } from '../store/verified-put.js';
import { HEADER_KEY } from './names.js';

export const FORMAT_NAME = 'veilfs';
/** New vaults are format 2; format 1 vaults keep mounting (and `veilfs upgrade` converts them). */
export const FORMAT_VERSION = 3;
export const SUPPORTED_VERSIONS = [1, 2, 3];
const SEGMENT_BLOCK_SIZE = 64 * 1024;
export const DEFAULT_BLOCK_SIZE = 1024 * 1024;
export const MIN_BLOCK_SIZE = 64 * 1024;
export const MAX_BLOCK_SIZE = 16 * 1024 * 1024;

/** The only object the store can read: no names, sizes or times in it. */
export interface VaultHeader {
  format: typeof FORMAT_NAME;
  version: number;
  vaultId: string; // 32 hex
  blockSize: number;
  kdf: ScryptParams;
  /** base64 of nonce || sealed master key || tag */
  masterKey: string;
}

export interface UnlockedVault {
  header: VaultHeader;
  masterKey: Buffer;
}

/** The public parameters are bound to the wrapped key as AAD. */
function headerAad(h: Pick<VaultHeader, 'vaultId' | 'blockSize' | 'version'>): Buffer {
  return Buffer.from(`veilfs v${h.version} master key\0${h.vaultId}\0${h.blockSize}`);
}

export function checkBlockSize(blockSize: number): void {
  if (!Number.isInteger(blockSize) || blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE || (blockSize & (blockSize - 1)) !== 0) {
    throw new UserError(`block size must be a power of two between 64K and 16M (got ${blockSize})`);
  }
}

async function wrap(header: Omit<VaultHeader, 'masterKey'>, masterKey: Buffer, passphrase: string): Promise<VaultHeader> {
  const kek = await passphraseKey(passphrase, header.kdf);
  return { ...header, masterKey: seal(kek, masterKey, headerAad(header)).toString('base64') };
}

export async function createVault(store: ObjectStore, passphrase: string, opts: { blockSize?: number; kdfLogN?: number; version?: number } = {}): Promise<UnlockedVault> {
  const version = opts.version ?? FORMAT_VERSION;
  if (!SUPPORTED_VERSIONS.includes(version)) throw new UserError(`format ${version} is not one this veilfs writes (${SUPPORTED_VERSIONS.join(', ')})`);
  const blockSize = version >= 2 ? SEGMENT_BLOCK_SIZE : opts.blockSize ?? DEFAULT_BLOCK_SIZE;
  if (version >= 2 && opts.blockSize !== undefined && opts.blockSize !== SEGMENT_BLOCK_SIZE) {
    throw new UserError('format 2 seals data in 64 KiB segments packed into larger objects: --block-size applies only to --format 1');
  }
  checkBlockSize(blockSize);
  if (await store.stat(HEADER_KEY)) throw new UserError(`a vault already exists at ${store.location}`);
  const masterKey = randomKey();
  const header = await wrap({
    format: FORMAT_NAME, version, vaultId: randomBytes(16).toString('hex'), blockSize, kdf: newScryptParams(opts.kdfLogN),
  }, masterKey, passphrase);
  await putVerified(store, HEADER_KEY, Buffer.from(JSON.stringify(header, null, 2) + '\n'), { ifAbsent: true });
  return { header, masterKey };
}

/** Reads and checks the header (plain JSON: damage in transit can fail any of its checks, even show another version). */
export function readHeader(store: ObjectStore): Promise<VaultHeader> {
  return getChecked(() => fetchHeader(store), (raw) => parseHeader(raw, store.location));
}

async function fetchHeader(store: ObjectStore): Promise<Buffer> {
  try {
    return await store.get(HEADER_KEY);
  } catch (err) {
    if (err instanceof NotFoundError) throw new UserError(`no vault at ${store.location} (create one with "veilfs init")`);
    throw err;
  }
}

function parseHeader(raw: Buffer, location: string): VaultHeader {
  let header: VaultHeader;
  try {
    header = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new UserError(`vault header at ${location} is damaged (not JSON)`);
  }
  if (header?.format !== FORMAT_NAME) throw new UserError(`${location} does not hold a veilfs vault`);
  if (!Number.isInteger(header.version)) throw new UserError(`vault header at ${location} is damaged (no version)`);
  if (!SUPPORTED_VERSIONS.includes(header.version)) throw new UserError(`vault format version ${header.version} is not supported by this veilfs (supports ${SUPPORTED_VERSIONS.join(', ')})`);
  if (header.version >= 2 && header.blockSize !== SEGMENT_BLOCK_SIZE) throw new UserError(`vault header at ${location} is damaged (formats 2 and later have 64 KiB segments)`);
  const k = header.kdf;
  if (typeof header.vaultId !== 'string' || !/^[0-9a-f]{32}$/.test(header.vaultId) || typeof header.masterKey !== 'string'
    || k?.name !== 'scrypt' || !Number.isInteger(k.logN) || !Number.isInteger(k.r) || !Number.isInteger(k.p) || typeof k.salt !== 'string') {
    throw new UserError(`vault header at ${location} is damaged`);
  }
  try {
    checkBlockSize(header.blockSize);
  } catch (err) {
    throw new UserError(`vault header at ${location} is damaged: ${(err as Error).message}`);
  }
  return header;
}

/**
 * The key derived from the passphrase for one set of KDF parameters:
 * `mount --daemon` checks the passphrase and hands this to its daemon, so
 * the slow derivation runs once.
 */
export interface DerivedKey {
  /** The parameters it was derived with (the header's, as JSON). */
  kdf: string;
  key: Buffer;
}

/** What unlocks a vault: the passphrase, or the key already derived from it. */
export type VaultSecret = string | DerivedKey;

/**
 * Unwraps the master key. A copy of the header damaged in transit looks
 * like a wrong passphrase, so a failure counts only once two fetched
 * copies agree; the slow KDF runs once per distinct set of parameters.
 */
export function unlockVault(store: ObjectStore, secret: VaultSecret): Promise<UnlockedVault & { derived: DerivedKey }> {
  const keks = new Map<string, Promise<Buffer>>();
  return getChecked(() => fetchHeader(store), async (raw) => {
    const header = parseHeader(raw, store.location);
    const params = JSON.stringify(header.kdf);
    if (typeof secret !== 'string') {
      if (secret.kdf !== params) throw new UserError('the vault header changed while mounting (a new passphrase?): mount again');
      keks.set(params, Promise.resolve(secret.key));
    } else if (!keks.has(params)) {
      keks.set(params, passphraseKey(secret, header.kdf).catch((err) => {
        // A derivation that cannot run here at all (its addon is not built) says so itself.
        if (err instanceof UserError) throw err;
        throw new UserError(`vault header at ${store.location} is damaged: ${(err as Error).message}`);
      }));
    }
    const kek = await keks.get(params)!;
    try {
      return { header, masterKey: open(kek, Buffer.from(header.masterKey, 'base64'), headerAad(header)), derived: { kdf: params, key: kek } };
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      throw new UserError('wrong passphrase (or a tampered vault header)', EXIT.WRONG_PASSPHRASE);
    }
  });
}

/** Rewrites the header as another format version (same master key, new salt): the single put that switches an upgraded vault. */
export async function rewriteHeaderVersion(store: ObjectStore, header: VaultHeader, masterKey: Buffer, passphrase: string, version: number): Promise<VaultHeader> {
  const { masterKey: _old, ...rest } = header;
  const blockSize = version >= 2 ? SEGMENT_BLOCK_SIZE : header.blockSize;
  const next = await wrap({ ...rest, version, blockSize, kdf: newScryptParams(header.kdf.logN) }, masterKey, passphrase);
  await putVerified(store, HEADER_KEY, Buffer.from(JSON.stringify(next, null, 2) + '\n'));
  return next;
}

/** Re-wraps the master key under a new passphrase; data is untouched. */
export async function changePassphrase(store: ObjectStore, oldPassphrase: string, newPassphrase: string, kdfLogN?: number): Promise<void> {
  const { header, masterKey } = await unlockVault(store, oldPassphrase);
  const { masterKey: _old, ...rest } = header;
  const next = await wrap({ ...rest, kdf: newScryptParams(kdfLogN ?? header.kdf.logN) }, masterKey, newPassphrase);
  await putVerified(store, HEADER_KEY, Buffer.from(JSON.stringify(next, null, 2) + '\n'));
}
