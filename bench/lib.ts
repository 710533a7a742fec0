import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { forceUnmount, isMounted } from '../src/fuse/mounts.js';
import { openStore } from '../src/store/open.js';

/*
 * What the benchmarks share: the filesystems under test ("targets"), each
 * set up in its own fresh directory, and interleaved rounds with a
 * discarded warm-up (on this VM the order of runs otherwise decides the
 * result, see the guide).
 */
const here = path.dirname(fileURLToPath(import.meta.url));
export const BIN = path.resolve(here, '../../bin/veilfs');
const run = promisify(execFile);

export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

export const sh = (command: string, cwd?: string, env?: NodeJS.ProcessEnv) => run('bash', ['-o', 'pipefail', '-c', command], { cwd, env, maxBuffer: 256 << 20 });

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** A filesystem to measure, mounted (or just present) at `mnt`. */
export interface Target {
  mnt: string;
  /** A remount does not empty this target's cache (the plain disk): cold reads need O_DIRECT. */
  coldNeedsDirectIo?: boolean;
  /** Returns once everything written is in the backing store; afterwards the caches of the filesystem are gone. */
  unmount(): Promise<void>;
  mount(): Promise<void>;
  /** Unmounts (forcibly if need be) and removes what the target left outside its directory. */
  dispose(): Promise<void>;
  /** S3 targets: where their objects are in S3_BUCKET. */
  objectsPrefix?: string;
}

export type TargetFactory = (dir: string) => Promise<Target>;

async function waitMounted(mnt: string, child: ChildProcess | undefined, log: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await isMounted(mnt))) {
    if ((child && child.exitCode !== null) || Date.now() > deadline) throw new Error(`mount of ${mnt} failed: ${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function startChild(command: string, args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; log: () => string; exited: Promise<void> } {
  const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return { child, log: () => log, exited };
}

async function cleanUp(mnt: string): Promise<void> {
  if (await isMounted(mnt)) await forceUnmount(mnt);
}

/** The plain disk: no FUSE at all, and no cache of its own to empty. */
export const plainDirectory: TargetFactory = async (dir) => {
  const mnt = path.join(dir, 'plain');
  mkdirSync(mnt);
  return { mnt, coldNeedsDirectIo: true, unmount: () => sh('sync').then(() => {}), mount: async () => {}, dispose: async () => {} };
};

/** A filesystem on veilfs's FUSE binding that does nothing: the binding's ceiling. It keeps only a file size, so it stays mounted throughout. */
export const nullFs: TargetFactory = async (dir) => {
  const mnt = path.join(dir, 'mnt');
  mkdirSync(mnt);
  const fs = startChild(process.execPath, [path.join(here, 'null-fs.js'), mnt], process.env);
  await waitMounted(mnt, fs.child, fs.log);
  return {
    mnt,
    unmount: async () => {},
    mount: async () => {},
    dispose: async () => {
      fs.child.kill('SIGTERM');
      await fs.exited;
      await cleanUp(mnt);
    },
  };
};

export function gocryptfsAvailable(): Promise<boolean> {
  return available('gocryptfs');
}

/** gocryptfs from Debian over a local directory: the encrypted peer. */
export const gocryptfs: TargetFactory = async (dir) => {
  const cipher = path.join(dir, 'cipher');
  const mnt = path.join(dir, 'mnt');
  const passfile = path.join(dir, 'pass');
  mkdirSync(cipher);
  mkdirSync(mnt);
  writeFileSync(passfile, 'bench\n');
  await run('gocryptfs', ['-init', '-q', '-passfile', passfile, cipher]);
  const mount = async () => {
    await run('gocryptfs', ['-q', '-passfile', passfile, cipher, mnt]);
  };
  await mount();
  return {
    mnt,
    // gocryptfs writes through to the directory; what its unmount waits for is the same as for veilfs.
    unmount: async () => {
      await run('fusermount', ['-u', mnt]);
    },
    mount,
    dispose: () => cleanUp(mnt),
  };
};

/** Where a benchmark's veilfs keeps its state and finds its passphrase. */
export function vaultEnv(dir: string): NodeJS.ProcessEnv {
  return { ...process.env, VEILFS_PASSPHRASE: 'bench', XDG_CACHE_HOME: path.join(dir, 'cache'), XDG_CONFIG_HOME: path.join(dir, 'config') };
}

/** veilfs on the local store, or on the S3 server of S3_BUCKET reached at `endpoint` (default AWS_ENDPOINT_URL: bench/proxy.ts adds RTT). */
export function veilfs(store: 'local' | 's3', endpoint?: string, existing?: { store: string; env: NodeJS.ProcessEnv }): TargetFactory {
  return async (dir) => {
    const url = existing?.store ?? (store === 'local' ? path.join(dir, 'store') : `s3://${process.env.S3_BUCKET}/bench-${path.basename(dir)}`);
    const env: NodeJS.ProcessEnv = existing?.env ?? vaultEnv(dir);
    if (endpoint) env.AWS_ENDPOINT_URL = endpoint;
    const mnt = path.join(dir, 'mnt');
    mkdirSync(mnt, { recursive: true });
    if (!existing) await run(BIN, ['init', '--store', url], { env });
    let daemon: ReturnType<typeof startChild> | undefined;
    const target: Target = {
      mnt,
      objectsPrefix: store === 's3' ? `bench-${path.basename(dir)}/` : undefined,
      mount: async () => {
        daemon = startChild(BIN, ['mount', '--store', url, mnt], env);
        await waitMounted(mnt, daemon.child, daemon.log);
      },
      // veilfs unmount returns once the daemon has uploaded everything and exited.
      unmount: async () => {
        await run(BIN, ['unmount', mnt], { env });
        await daemon?.exited;
        daemon = undefined;
      },
      dispose: async () => {
        await cleanUp(mnt);
        daemon?.child.kill('SIGKILL');
        if (store === 's3') await emptyPrefix(`bench-${path.basename(dir)}/`);
      },
    };
    await target.mount();
    return target;
  };
}

/** Deletes a benchmark's objects from the S3 server. */
async function emptyPrefix(prefix: string): Promise<void> {
  const s3 = openStore(`s3://${process.env.S3_BUCKET}/${prefix}`);
  const keys = (await s3.list('')).map((i) => i.key);
  for (let i = 0; i < keys.length; i += 32) await Promise.all(keys.slice(i, i + 32).map((k) => s3.delete(k)));
  await s3.close?.();
}

export function available(command: string): Promise<boolean> {
  return sh(`command -v ${command}`).then(() => true, () => false);
}

/** securefs (Debian) in its fastest format ("lite", format 4) over a local directory: the other encrypted peer. */
export const securefs: TargetFactory = async (dir) => {
  const cipher = path.join(dir, 'cipher');
  const mnt = path.join(dir, 'mnt');
  mkdirSync(cipher);
  mkdirSync(mnt);
  await run('securefs', ['create', '--format', '4', '--pass', 'bench', '--pbkdf', 'pkcs5-pbkdf2-hmac-sha256', '-r', '1000', cipher]);
  let child: ReturnType<typeof startChild> | undefined;
  const mount = async () => {
    child = startChild('securefs', ['mount', '--pass', 'bench', cipher, mnt], process.env);
    await waitMounted(mnt, child.child, child.log);
  };
  await mount();
  return {
    mnt,
    unmount: async () => {
      await run('fusermount', ['-u', mnt]);
      await child?.exited;
    },
    mount,
    dispose: async () => {
      await cleanUp(mnt);
      child?.child.kill('SIGKILL');
    },
  };
};

/** rclone crypt (Debian) over the same S3 server, with its write cache: the cloud peer. */
export function rcloneCrypt(endpoint: string): TargetFactory {
  return async (dir) => {
    const mnt = path.join(dir, 'mnt');
    mkdirSync(mnt);
    const prefix = `bench-${path.basename(dir)}`;
    const password = (await run('rclone', ['obscure', 'bench'])).stdout.trim();
    // Only its own settings: the AWS SDK inside rclone would also take AWS_* (a CA bundle, an endpoint) from the environment.
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
    const env: NodeJS.ProcessEnv = {
      ...inherited,
      RCLONE_CONFIG_BS3_TYPE: 's3', RCLONE_CONFIG_BS3_PROVIDER: 'Ceph', RCLONE_CONFIG_BS3_ENDPOINT: endpoint,
      RCLONE_CONFIG_BS3_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID, RCLONE_CONFIG_BS3_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY,
      RCLONE_CONFIG_BCRYPT_TYPE: 'crypt', RCLONE_CONFIG_BCRYPT_REMOTE: `bs3:${process.env.S3_BUCKET}/${prefix}`, RCLONE_CONFIG_BCRYPT_PASSWORD: password,
      RCLONE_CONFIG: path.join(dir, 'rclone.conf'),
    };
    let child: ReturnType<typeof startChild> | undefined;
    const mount = async () => {
      child = startChild('rclone', ['mount', 'bcrypt:', mnt, '--vfs-cache-mode', 'writes', '--vfs-write-back', '0s', '--cache-dir', path.join(dir, 'cache')], env);
      await waitMounted(mnt, child.child, child.log);
    };
    await mount();
    return {
      mnt,
      objectsPrefix: `${prefix}/`,
      // rclone uploads a file once it is closed; its unmount waits for the uploads. Its cache goes
      // too, so that reads after a remount are cold, as for the others.
      unmount: async () => {
        child?.child.kill('SIGTERM');
        await child?.exited;
        await cleanUp(mnt);
        rmSync(path.join(dir, 'cache'), { recursive: true, force: true });
      },
      mount,
      dispose: async () => {
        await cleanUp(mnt);
        child?.child.kill('SIGKILL');
        await emptyPrefix(`${prefix}/`);
      },
    };
  };
}

/** Sets up a target in dir, runs the workload on it, and always disposes of it. */
export function on<R>(factory: TargetFactory, workload: (target: Target) => Promise<R>): (dir: string) => Promise<R> {
  return async (dir) => {
    const target = await factory(dir);
    try {
      return await workload(target);
    } finally {
      await target.dispose();
    }
  };
}

/**
 * Runs every variant once per round, round 0 being a discarded warm-up, in
 * an order rotated each round so no variant always follows a big unmount.
 * Each run gets a fresh directory, removed afterwards.
 */
export async function rounds<R>(variants: [string, (dir: string) => Promise<R>][], count: number, describe: (r: R) => string): Promise<Map<string, R[]>> {
  const results = new Map<string, R[]>(variants.map(([name]) => [name, []]));
  for (let round = 0; round <= count; round++) {
    const order = variants.map((_, i) => variants[(i + round) % variants.length]);
    for (const [name, fn] of order) {
      const dir = mkdtempSync(path.join(tmpdir(), 'veilfs-bench-'));
      try {
        const r = await fn(dir);
        process.stderr.write(`round ${round}${round === 0 ? ' (warm-up, discarded)' : ''}: ${name}: ${describe(r)}\n`);
        if (round > 0) results.get(name)!.push(r);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  return results;
}
