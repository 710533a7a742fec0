import { constants as fsConstants, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { initDrive, openDrive, type Drive } from '../drive.js';
import { ROOT_INO } from '../meta/inode.js';
import { LocalStore } from '../store/local.js';
import { processRunning } from '../util/processes.js';
import type { FuseBinding, Req } from './binding.js';
import { kernelHandlers } from './operations.js';

/*
 * V8 runs a function slowly the first times: it compiles it, allocates its
 * feedback, misses every inline cache, builds the hidden classes of the
 * objects it makes, and throws away optimized code whose assumptions a new
 * kind of object breaks. A fresh daemon paid all of that on its user's
 * first requests: the first rename after a mount and an `ls -lR` took
 * about 0.7 ms (securefs: 0.2), the first write of 100 KB about 4 ms.
 *
 * So while the key is being derived (mount.ts), the daemon sends the
 * requests users send first (lookups of present and missing names, mkdir,
 * create, write, read, listings, renames) through the same kernel handlers
 * to a scratch vault of its own: once on new inodes, once on inodes loaded
 * back from its store. Nothing of the user's vault is touched, and a
 * warm-up that fails only leaves the daemon cold.
 */

/** Rounds of requests per pass: more did not make the first rename faster (measured 10-60). */
const ROUNDS = 20;
const PREFIX = 'veilfs-warm-up-';
const SECRET = 'warm-up';

export interface WarmUpResult {
  /** Requests answered, and those answered with an error (a script that no longer fits the code). */
  requests: number;
  failures: string[];
}

/** Where the scratch vault goes: memory if the system has a place for it (the warm-up writes and syncs). */
async function scratchParent(): Promise<string> {
  for (const dir of [process.env.XDG_RUNTIME_DIR, '/dev/shm']) {
    if (dir && (await fs.access(dir, fsConstants.W_OK).then(() => true, () => false))) return dir;
  }
  return tmpdir();
}

/** Runs the warm-up in a scratch directory under `parent`; never throws. */
export async function warmUp(parent?: string): Promise<WarmUpResult> {
  const result: WarmUpResult = { requests: 0, failures: [] };
  let dir: string | undefined;
  try {
    parent ??= await scratchParent();
    await removeLeftovers(parent);
    dir = await fs.mkdtemp(path.join(parent, `${PREFIX}${process.pid}-`));
    const store = new LocalStore(path.join(dir, 'store'));
    const cacheDir = path.join(dir, 'cache');
    await initDrive(store, SECRET, { kdfLogN: 10, cacheDir });
    const open = () => openDrive(store, { passphrase: SECRET, cacheDir, log: () => {}, syncIntervalMs: 3_600_000 });
    for (const fresh of [true, false]) {
      const drive = await open();
      try {
        await requests(drive, fresh, result);
      } finally {
        await drive.close();
      }
    }
  } catch (err) {
    result.failures.push(`warm-up: ${(err as Error).message}`);
  } finally {
    if (dir) await fs.rm(dir, { recursive: true, force: true }).catch(() => {});
  }
  return result;
}

/** Scratch directories of daemons killed during their warm-up. */
async function removeLeftovers(parent: string): Promise<void> {
  const names = await fs.readdir(parent).catch(() => [] as string[]);
  for (const name of names) {
    const pid = name.startsWith(PREFIX) ? Number.parseInt(name.slice(PREFIX.length), 10) : NaN;
    if (pid && pid !== process.pid && !(await processRunning(pid))) {
      await fs.rm(path.join(parent, name), { recursive: true, force: true }).catch(() => {});
    }
  }
}

/** A listing reply's names are joined by '/', which no name holds: all of them fit. */
const entryCount = (names: string) => (names === '' ? 0 : names.split('/').length);

/** The replies a handler sends, as promises: a number (a handle, a count) or a failure. */
function scratchBinding(result: WarmUpResult) {
  const waiting = new Map<Req, { op: string; resolve: (value: number) => void }>();
  let nextReq = 1;
  const settle = (req: Req, value: number) => {
    const w = waiting.get(req);
    waiting.delete(req);
    w?.resolve(value);
  };
  const binding: Partial<FuseBinding> = {
    replyErr: (req, errno) => {
      if (errno !== 0) result.failures.push(`${waiting.get(req)?.op}: errno ${errno}`);
      settle(req, errno === 0 ? 0 : -1);
    },
    replyEntry: (req) => settle(req, 0),
    replyAttr: (req) => settle(req, 0),
    replyCreate: (req, _ttl, fh) => settle(req, fh),
    replyOpen: (req, fh) => settle(req, fh),
    replyData: (req, _data, length) => settle(req, length),
    replyWrite: (req, count) => settle(req, count),
    replyDir: (req, _size, names) => (settle(req, 0), entryCount(names)),
    replyDirPlus: (req, _size, _ttl, names) => (settle(req, 0), entryCount(names)),
  };
  const send = (op: string, request: (req: Req) => void) => new Promise<number>((resolve) => {
    const req = nextReq++;
    waiting.set(req, { op, resolve });
    result.requests++;
    request(req);
  });
  return { binding: binding as FuseBinding, send };
}

async function requests(drive: Drive, fresh: boolean, result: WarmUpResult): Promise<void> {
  const { binding, send } = scratchBinding(result);
  const { handlers: k } = kernelHandlers(drive.fs, { binding, log: () => {}, ttl: 600, live: () => true }, () => {});
  const inoOf = async (dir: number, name: string) => (await drive.fs.lookupIn(dir, name))?.ino ?? 0;
  const bytes = Buffer.alloc(100_000, 7);
  if (fresh) {
    await send('lookup', (q) => k.lookup(q, ROOT_INO, 'd'));
    await send('mkdir', (q) => k.mkdir(q, ROOT_INO, 'd', 0o755));
  }
  const d = await inoOf(ROOT_INO, 'd');
  for (const name of fresh ? ['f', 'g'] : []) {
    await send('lookup', (q) => k.lookup(q, d, name));
    const fh = await send('create', (q) => k.create(q, d, name, 0o644, 2));
    await send('write', (q) => k.write(q, 0, fh, bytes, 0));
    await send('flush', (q) => k.flush(q, 0, fh));
    await send('release', (q) => k.release(q, 0, fh));
  }
  const f = await inoOf(d, 'f');
  for (let round = 0; round < ROUNDS; round++) {
    await send('lookup', (q) => k.lookup(q, ROOT_INO, 'd'));
    await send('getattr', (q) => k.getattr(q, d));
    await send('lookup', (q) => k.lookup(q, d, 'g'));
    await send('getattr', (q) => k.getattr(q, f));
    const fh = await send('open', (q) => k.open(q, f, 0));
    await send('read', (q) => k.read(q, f, fh, 128 * 1024, 0));
    await send('release', (q) => k.release(q, f, fh));
    const dh = await send('opendir', (q) => k.opendir(q, d));
    await send('readdirplus', (q) => k.readdirplus(q, d, dh, 4096, 0));
    await send('releasedir', (q) => k.releasedir(q, d, dh));
    // A directory and a file renamed to names looked up first and found missing, as mv does.
    await send('lookup', (q) => k.lookup(q, ROOT_INO, 'e'));
    await send('rename', (q) => k.rename(q, ROOT_INO, 'd', ROOT_INO, 'e'));
    await send('lookup', (q) => k.lookup(q, ROOT_INO, 'd'));
    await send('rename', (q) => k.rename(q, ROOT_INO, 'e', ROOT_INO, 'd'));
    await send('lookup', (q) => k.lookup(q, d, 'h'));
    await send('rename', (q) => k.rename(q, d, 'f', d, 'h'));
    await send('rename', (q) => k.rename(q, d, 'h', d, 'f'));
  }
}
