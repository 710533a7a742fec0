import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StatusReport } from '../../src/control/protocol.js';
import { forceUnmount, isMounted } from '../../src/fuse/mounts.js';
import { newStoreUrl, removeAll, type StoreKind } from './stores.js';
import { tempDir } from './tmp.js';

export const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/veilfs');
export const PASSPHRASE = 'correct horse battery staple';

type T = Parameters<typeof tempDir>[0];

export interface CliEnv {
  dir: string;
  store: string;
  env: NodeJS.ProcessEnv;
}

/** A private HOME-like environment so tests never touch the user's vaults; the store is new and empty. */
export function cliEnv(t: T, kind: StoreKind = 'local'): CliEnv {
  const dir = tempDir(t, 'veilfs-cli');
  const store = newStoreUrl(kind, dir);
  t.teardown(() => removeAll(store));
  const env = {
    ...process.env,
    XDG_CACHE_HOME: path.join(dir, 'cache'),
    XDG_DATA_HOME: path.join(dir, 'data'),
    XDG_RUNTIME_DIR: path.join(dir, 'run'),
    XDG_CONFIG_HOME: path.join(dir, 'config'),
    VEILFS_PASSPHRASE: PASSPHRASE,
  };
  return { dir, store, env };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function veilfs(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 120_000, bin = BIN): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(bin, args, { env, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? Number((err as NodeJS.ErrnoException).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export function sh(command: string, opts: { cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile('bash', ['-o', 'pipefail', '-c', command], { cwd: opts.cwd, timeout: opts.timeoutMs ?? 600_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as NodeJS.ErrnoException & { code?: number }).code as unknown as number) || 1 : 0, stdout, stderr });
    });
  });
}

/** sh() that must succeed: its standard output, or a throw with its standard error. */
export async function run(command: string): Promise<string> {
  const r = await sh(command);
  if (r.code !== 0) throw new Error(`${command}: ${r.stderr}`);
  return r.stdout;
}

/** What `veilfs status --json` says of the drive mounted at m. */
export async function driveStatus(cli: CliEnv, m: string): Promise<StatusReport> {
  const r = await veilfs(['status', '--json', m], cli.env);
  if (r.code !== 0) throw new Error(`status failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as StatusReport[])[0];
}

export interface MountHandle {
  mountpoint: string;
  child: ChildProcess;
  stderr(): string;
  /** The daemon's exit code, once it exited. */
  exited: Promise<number | null>;
  /** Clean unmount through the CLI; resolves when the daemon has exited. */
  unmount(): Promise<RunResult>;
  /** kill -9 of the daemon, then detach the dead mount. */
  crash(): Promise<void>;
}

/** Runs `veilfs mount` in the foreground as a child and waits for the mount. */
export async function mountDrive(t: T, cli: CliEnv, mountpoint: string, extra: string[] = []): Promise<MountHandle> {
  mkdirSync(mountpoint, { recursive: true });
  const child = spawn(BIN, ['mount', '--store', cli.store, ...extra, mountpoint], { env: cli.env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let done = false;
  exited.then(() => (done = true));
  const deadline = Date.now() + 60_000;
  while (!(await isMounted(mountpoint))) {
    if (done) throw new Error(`veilfs mount exited early: ${stderr.trim()}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`mount did not come up: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const handle: MountHandle = {
    mountpoint,
    child,
    stderr: () => stderr,
    exited,
    unmount: async () => {
      const result = await veilfs(['unmount', mountpoint], cli.env);
      await exited;
      return result;
    },
    crash: async () => {
      child.kill('SIGKILL');
      await exited;
      await forceUnmount(mountpoint);
    },
  };
  t.teardown(async () => {
    if (await isMounted(mountpoint)) await veilfs(['unmount', mountpoint], cli.env).catch(() => {});
    if (await isMounted(mountpoint)) await forceUnmount(mountpoint).catch(() => {});
    if (!done) child.kill('SIGKILL');
  });
  return handle;
}
