import { randomBytes } from 'node:crypto';
import { subkey } from '../crypto/keys.js';
import { open, seal } from '../crypto/xchacha.js';
import { errorMessage, IntegrityError, UserError } from '../errors.js';
import type { VaultHeader } from '../format/vault.js';
import type { Changes } from '../meta/formats.js';
import type { Inode } from '../meta/inode.js';
import { ENTRY_PREFIX, entryOfKey } from '../meta/kv.js';
import type { Tree } from '../meta/tree.js';
import { NotFoundError, type ObjectStore } from '../store/types.js';
import { buildShare, type BuiltShare } from './build.js';
import { fromBase64, newLinkKey, newPasswordParams, openManifest, sealManifest, shareKey, toBase64, toBase64Url, type SharePasswordParams } from './crypto.js';
import { shareState, type ShareRecord, type ShareState } from './manifest.js';
import { scryptNode } from './native-scrypt.js';
import { listShareKeys, nextSeq, readRecord, recordKey, writeRecord } from './records.js';

/** Where links point when the vault names no gateway: a `veilfs serve` on this machine. */
export const DEFAULT_GATEWAY = 'http://127.0.0.1:8480';
const SETTINGS_KEY = 's/settings';

/** Sealed for the owner inside each record: enough to list, print and republish the share. */
interface OwnerPart {
  ino: number;
  path: string;
  linkKey: string; // base64url
  key: string; // base64: the share key (derived from the password too, if any)
  snapshot: boolean;
  gateway: string;
}

export interface ShareRequest {
  path: string;
  snapshot?: boolean;
  password?: string;
  expires?: number | null;
  /** Also becomes the vault's gateway for later shares. */
  gateway?: string;
}

export interface ShareInfo {
  id: string;
  path: string;
  link: string;
  created: number;
  expires: number | null;
  password: boolean;
  snapshot: boolean;
  state: ShareState;
}

interface Known {
  record: ShareRecord;
  keys: string[];
  owner?: OwnerPart;
  /** Live shares: the inodes the last manifest was built from, once built by this process. */
  inodes?: Set<number>;
  /** The manifest root last published, as JSON: what a rebuild is compared with (read from the store once after mount). */
  published?: string;
}

/**
 * The owner's side of share links: creates, lists, revokes, and (for live
 * shares) republishes records after commits that touched what they share.
 * Writes go through the given store, the journal when mounted, so a record
 * reaches the store after the data and commits it names.
 */
export class ShareService {
  private readonly known = new Map<string, Known>();
  private readonly ownerKey: Buffer;
  private chain: Promise<void> = Promise.resolve();
  private stale = new Set<string>();

  private constructor(
    private readonly store: ObjectStore,
    masterKey: Buffer,
    private readonly header: VaultHeader,
    private readonly tree: Tree,
    private readonly lookup: (path: string) => Promise<Inode>,
    private readonly log: (m: string) => void,
  ) {
    this.ownerKey = subkey(masterKey, 'share');
  }

  static async open(store: ObjectStore, masterKey: Buffer, header: VaultHeader, tree: Tree, lookup: (path: string) => Promise<Inode>, log: (m: string) => void): Promise<ShareService> {
    const service = new ShareService(store, masterKey, header, tree, lookup, log);
    if (header.version >= 2) await service.load();
    return service;
  }

  private async load(): Promise<void> {
    for (const [id, keys] of await listShareKeys(this.store)) {
      try {
        const record = await readRecord(this.store, keys[keys.length - 1], id);
        if (!record) continue;
        this.known.set(id, { record, keys, owner: record.owner ? this.openOwner(id, record.owner) : undefined });
      } catch (err) {
        this.log(`share ${id}: ${errorMessage(err)}; left as it is`);
      }
    }
  }

  /** Whether a live share exposes the pack (so the vault must not delete it). */
  holds(pack: string): boolean {
    for (const { record } of this.known.values()) if (shareState(record) === 'live' && record.ranges?.[pack]) return true;
    return false;
  }

  async create(request: ShareRequest): Promise<ShareInfo> {
    if (this.header.version < 2) throw new UserError('sharing needs format 2 or later: run "veilfs upgrade" first');
    const path = normalize(request.path);
    const node = await this.lookup(path);
    if (!node.isFile && !node.isDir) throw new UserError(`${path} is neither a regular file nor a folder`);
    const gateway = request.gateway ? checkGateway(request.gateway) : await this.gateway();
    if (request.gateway) await this.setGateway(gateway);
    const id = randomBytes(16).toString('hex');
    const linkKey = newLinkKey();
    const password: SharePasswordParams | null = request.password ? newPasswordParams() : null;
    const key = await shareKey(linkKey, password ? { password: request.password!, params: password } : undefined, scryptNode);
    const owner: OwnerPart = { ino: node.ino, path, linkKey: toBase64Url(linkKey), key: toBase64(key), snapshot: !!request.snapshot, gateway };
    const built = await buildShare(this.tree, node, rootName(path));
    const created = Date.now();
    const base: ShareRecord = { format: 'veilfs-share', version: 1, id, seq: 0, created, expires: request.expires ?? null, password };
    const record = await this.publish(base, owner, built, []);
    return this.info(record, owner);
  }

  async list(): Promise<ShareInfo[]> {
    await this.chain;
    const out: ShareInfo[] = [];
    for (const { record, owner } of this.known.values()) if (owner && record.revoked === undefined) out.push(this.info(record, owner));
    return out.sort((a, b) => a.created - b.created);
  }

  /** Revokes a share by id, or every share of a path; returns the ids revoked. */
  async revoke(idOrPath: string): Promise<string[]> {
    await this.chain;
    const path = idOrPath.startsWith('/') ? normalize(idOrPath) : undefined;
    const ids = [...this.known].filter(([id, k]) => k.record.revoked === undefined && (id === idOrPath || (path !== undefined && k.owner?.path === path))).map(([id]) => id);
    if (!ids.length) throw new UserError(`no share ${JSON.stringify(idOrPath)} (see "veilfs shares")`);
    for (const id of ids) {
      const k = this.known.get(id)!;
      const record: ShareRecord = { format: 'veilfs-share', version: 1, id, seq: nextSeq(k.record.seq), created: k.record.created, revoked: Date.now() };
      await writeRecord(this.store, record, k.keys);
      this.known.set(id, { record, keys: [recordKey(id, record.seq)] });
    }
    return ids;
  }

  /** After a commit: rebuild the live shares whose inodes or directory entries it changed. */
  afterCommit(changes: Changes): void {
    const touched = new Set<number>(changes.inodes.keys());
    for (const key of changes.keys.keys()) if (key.startsWith(ENTRY_PREFIX)) touched.add(entryOfKey(key).dir);
    for (const [id, k] of this.known) {
      if (!this.isLive(k)) continue;
      if (!k.inodes || [...touched].some((ino) => k.inodes!.has(ino))) this.stale.add(id);
    }
    if (this.stale.size) this.schedule();
  }

  /** Rebuilds every live share now (at mount: a crash may have come between a commit and its republish). */
  refreshAll(): Promise<void> {
    for (const [id, k] of this.known) if (this.isLive(k)) this.stale.add(id);
    return this.schedule();
  }

  /** Resolves once republishing queued so far is done. */
  settled(): Promise<void> {
    return this.chain;
  }

  private isLive(k: Known): boolean {
    return !!k.owner && !k.owner.snapshot && shareState(k.record) === 'live';
  }

  private schedule(): Promise<void> {
    this.chain = this.chain.then(async () => {
      const ids = [...this.stale];
      this.stale.clear();
      for (const id of ids) {
        await this.republish(id).catch((err) => this.log(`share ${id}: could not republish: ${errorMessage(err)} (retried after the next change)`));
      }
    });
    return this.chain;
  }

  private async republish(id: string): Promise<void> {
    const k = this.known.get(id);
    if (!k?.owner || !this.isLive(k)) return;
    const node = await this.tree.get(k.owner.ino);
    if (!node || (!node.isFile && !node.isDir)) {
      k.inodes = new Set();
      return; // gone: the link keeps what it last showed until revoked
    }
    k.published ??= JSON.stringify((openManifest(fromBase64(k.owner.key), id, k.record.seq, fromBase64(k.record.manifest!)) as { root: unknown }).root);
    const built = await buildShare(this.tree, node, rootName(k.owner.path));
    k.inodes = built.inodes;
    if (JSON.stringify(built.root) === k.published) return;
    await this.publish(k.record, k.owner, built, k.keys);
  }

  /** Seals and stores the next record of a share. */
  private async publish(base: ShareRecord, owner: OwnerPart, built: BuiltShare, older: string[]): Promise<ShareRecord> {
    const seq = older.length ? nextSeq(base.seq) : nextSeq(undefined);
    const manifest = { id: base.id, seq, created: base.created, expires: base.expires ?? null, snapshot: owner.snapshot, root: built.root };
    const record: ShareRecord = {
      format: 'veilfs-share', version: 1, id: base.id, seq, created: base.created, expires: base.expires ?? null, password: base.password ?? null,
      ranges: built.ranges,
      manifest: toBase64(sealManifest(fromBase64(owner.key), base.id, seq, manifest)),
      owner: this.sealOwner(base.id, owner).toString('base64'),
    };
    await writeRecord(this.store, record, older);
    this.known.set(base.id, { record, keys: [recordKey(base.id, seq)], owner, inodes: built.inodes, published: JSON.stringify(built.root) });
    return record;
  }

  private info(record: ShareRecord, owner: OwnerPart): ShareInfo {
    return {
      id: record.id, path: owner.path, link: `${owner.gateway}/s/${record.id}#${owner.linkKey}`, created: record.created,
      expires: record.expires ?? null, password: !!record.password, snapshot: owner.snapshot, state: shareState(record),
    };
  }

  private ownerAad(id: string): Buffer {
    return Buffer.from(`veilfs share owner\0${this.header.vaultId}\0${id}`);
  }

  private sealOwner(id: string, owner: OwnerPart): Buffer {
    return seal(this.ownerKey, Buffer.from(JSON.stringify(owner)), this.ownerAad(id));
  }

  private openOwner(id: string, sealed: string): OwnerPart | undefined {
    try {
      return JSON.parse(open(this.ownerKey, Buffer.from(sealed, 'base64'), this.ownerAad(id)).toString('utf8')) as OwnerPart;
    } catch (err) {
      if (err instanceof IntegrityError) return undefined; // another vault's share in the same store, or damaged
      throw err;
    }
  }

  private settingsAad(): Buffer {
    return Buffer.from(`veilfs share settings\0${this.header.vaultId}`);
  }

  /** The gateway links of this vault point at (a setting kept, sealed, in the store). */
  async gateway(): Promise<string> {
    try {
      const sealed = await this.store.get(SETTINGS_KEY);
      const settings = JSON.parse(open(this.ownerKey, sealed, this.settingsAad()).toString('utf8')) as { gateway?: string };
      return settings.gateway ?? DEFAULT_GATEWAY;
    } catch (err) {
      if (err instanceof NotFoundError) return DEFAULT_GATEWAY;
      if (err instanceof IntegrityError) throw new UserError('the share settings in the store do not authenticate: set the gateway again with --gateway');
      throw err;
    }
  }

  async setGateway(gateway: string): Promise<void> {
    await this.store.put(SETTINGS_KEY, seal(this.ownerKey, Buffer.from(JSON.stringify({ gateway: checkGateway(gateway) })), this.settingsAad()));
  }
}

/** What the recipient sees the shared file or folder named. */
function rootName(path: string): string {
  return path === '/' ? 'drive' : path.slice(path.lastIndexOf('/') + 1);
}

function normalize(path: string): string {
  const parts = path.split('/').filter((p) => p && p !== '.');
  if (parts.includes('..')) throw new UserError(`${path}: ".." is not allowed in a shared path`);
  return `/${parts.join('/')}`;
}

export function checkGateway(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UserError(`${JSON.stringify(url)} is not a URL (e.g. https://share.example.org)`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UserError('the gateway must be an http:// or https:// address');
  // The page loads its script, worker and data from the root of its origin.
  if (parsed.pathname !== '/' || parsed.search || parsed.hash) throw new UserError('the gateway must be the root of its address (https://share.example.org, no path): serve it from its own host name');
  return parsed.origin;
}
