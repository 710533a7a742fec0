import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { defaultCacheDir } from '../meta/local-state.js';
import { processIdentity, runningProcess } from '../util/processes.js';

const run = promisify(execFile);

/** Mount points as the kernel lists them (octal escapes decoded). */
export async function mountedPaths(): Promise<Map<string, string>> {
  const text = await fs.readFile('/proc/self/mounts', 'utf8');
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    if (fields.length < 3) continue;
    const decode = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
    out.set(decode(fields[1]), fields[2]);
  }
  return out;
}

export async function isMounted(mountpoint: string): Promise<boolean> {
  return (await mountedPaths()).has(path.resolve(mountpoint));
}

/** Where a running daemon leaves its pid, so `veilfs unmount` can find it. */
function registryFile(mountpoint: string): string {
  const dir = process.env.XDG_RUNTIME_DIR ? path.join(process.env.XDG_RUNTIME_DIR, 'veilfs') : path.join(defaultCacheDir(), 'run');
  return path.join(dir, createHash('sha256').update(path.resolve(mountpoint)).digest('hex').slice(0, 24) + '.pid');
}

/** The daemon's control socket (src/control), next to its pid file. */
export function controlSocket(mountpoint: string): string {
  return registryFile(mountpoint).replace(/\.pid$/, '.sock');
}

/** veilfs mounts whose daemon registered with this user's runtime directory. */
export async function liveMountpoints(): Promise<string[]> {
  const out: string[] = [];
  for (const [mountpoint, type] of await mountedPaths()) {
    if (type === 'fuse.veilfs' && (await daemonPid(mountpoint)) !== undefined) out.push(mountpoint);
  }
  return out;
}

export async function registerDaemon(mountpoint: string): Promise<void> {
  const file = registryFile(mountpoint);
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await fs.writeFile(file, `${await processIdentity()}\n`);
  // An outcome nobody took, from an earlier mount here, is not this one's.
  await fs.unlink(outcomeFile(mountpoint)).catch(() => {});
}

/** How a daemon's unmount ended: whether the store has everything, and what stays in the journal if not. */
export interface UnmountOutcome {
  stored: boolean;
  pendingObjects: number;
  pendingBytes: number;
  reason?: string;
}

function outcomeFile(mountpoint: string): string {
  return registryFile(mountpoint).replace(/\.pid$/, '.outcome');
}

/** Left by an exiting daemon, before it unregisters, for the `veilfs unmount` waiting on it. */
export async function leaveOutcome(mountpoint: string, outcome: UnmountOutcome): Promise<void> {
  await fs.writeFile(outcomeFile(mountpoint), JSON.stringify(outcome)).catch(() => {});
}

export async function takeOutcome(mountpoint: string): Promise<UnmountOutcome | undefined> {
  const file = outcomeFile(mountpoint);
  try {
    const outcome = JSON.parse(await fs.readFile(file, 'utf8')) as UnmountOutcome;
    await fs.unlink(file).catch(() => {});
    return outcome;
  } catch {
    return undefined;
  }
}

/**
 * The daemon touches its pid file every few seconds from its event loop; a
 * file that stops changing means a daemon that no longer runs JavaScript
 * (wedged), which `veilfs unmount` must not wait for forever. A daemon
 * stops beating before it unregisters, or it would register again.
 */
export async function heartbeat(mountpoint: string): Promise<void> {
  const now = new Date();
  await fs.utimes(registryFile(mountpoint), now, now).catch(async (err: NodeJS.ErrnoException) => {
    // Removed while mounted (someone cleared ~/.cache): without it, `veilfs unmount` would not wait for this daemon.
    if (err.code === 'ENOENT') await registerDaemon(mountpoint).catch(() => {});
  });
}

export async function heartbeatAgeMs(mountpoint: string): Promise<number | undefined> {
  try {
    return Date.now() - (await fs.stat(registryFile(mountpoint))).mtimeMs;
  } catch {
    return undefined;
  }
}

export async function unregisterDaemon(mountpoint: string): Promise<void> {
  await fs.unlink(registryFile(mountpoint)).catch(() => {});
  await fs.unlink(controlSocket(mountpoint)).catch(() => {});
}

/**
 * The daemon serving a mount point, if it still runs. The pid file names
 * it by pid and start time: a daemon started any way at all (bin/veilfs,
 * `node dist/cli/main.js`, a copy under another name) is found, and a
 * later process that reused the pid is not taken for it.
 */
export async function daemonPid(mountpoint: string): Promise<number | undefined> {
  const identity = await fs.readFile(registryFile(mountpoint), 'utf8').catch(() => '');
  // A pid file without a start time, from a daemon of an earlier version: its command line must name veilfs.
  return runningProcess(identity, async (pid) => (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).includes('veilfs'));
}

/**
 * Unmounts as `umount` does: refused while a file there is open or a
 * process works in it ('busy'). 'failed' when no way of unmounting works
 * (none installed, or each took too long).
 */
export async function unmountIfIdle(mountpoint: string): Promise<'unmounted' | 'busy' | 'failed'> {
  const target = path.resolve(mountpoint);
  let busy = false;
  for (const [cmd, args] of [['fusermount', ['-u', target]], ['fusermount3', ['-u', target]], ['umount', [target]]] as const) {
    try {
      await run(cmd, [...args], { timeout: 15_000 });
    } catch (err) {
      if (/busy/i.test(String((err as { stderr?: string }).stderr ?? ''))) busy = true;
    }
    if (!(await isMounted(target))) return 'unmounted';
  }
  return busy ? 'busy' : 'failed';
}

/**
 * The processes that keep a mount busy: a file open in it, or their
 * current or root directory there (as far as this user may see them).
 */
export async function processesUsing(mountpoint: string): Promise<{ pid: number; command: string }[]> {
  const target = path.resolve(mountpoint);
  const inside = (p: string) => p === target || p.startsWith(`${target}/`);
  const found: { pid: number; command: string }[] = [];
  for (const name of await fs.readdir('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const base = `/proc/${pid}`;
    const links = [`${base}/cwd`, `${base}/root`];
    links.push(...(await fs.readdir(`${base}/fd`).catch(() => [] as string[])).map((fd) => `${base}/fd/${fd}`));
    for (const link of links) {
      if (!inside(await fs.readlink(link).catch(() => ''))) continue;
      const command = (await fs.readFile(`${base}/comm`, 'utf8').catch(() => '?')).trim();
      found.push({ pid, command });
      break;
    }
  }
  return found;
}

/** Detaches a FUSE mount whose daemon is gone (or never answers). */
export async function forceUnmount(mountpoint: string): Promise<void> {
  const target = path.resolve(mountpoint);
  if ((await unmountIfIdle(target)) === 'unmounted') return;
  // Busy, or no plain way worked: detach it lazily.
  for (const [cmd, args] of [['fusermount', ['-uz', target]], ['umount', ['-l', target]]] as const) {
    await run(cmd, [...args], { timeout: 15_000 }).catch(() => {});
    if (!(await isMounted(target))) return;
  }
  throw new Error(`could not unmount ${target}`);
}
