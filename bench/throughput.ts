import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { forceUnmount, isMounted } from '../src/fuse/mounts.js';
import { openStore } from '../src/store/open.js';

/*
 * Sequential throughput through the mount: write SIZE with dd (time until
 * dd returns, and until the data is in the store, i.e. until unmount has
 * uploaded everything), then a cold read after a remount. Variants run
 * interleaved, round by round; round 0 is a discarded warm-up; the table
 * shows medians and ratios to the fuse-native ceiling of the same run.
 * Env: BENCH_SIZE_MIB (1024), BENCH_ROUNDS (3), BENCH_RTT_MS (50), and the
 * S3 server's S3_ENDPOINT/S3_BUCKET/AWS_* (bench/run starts one).
 */
const SIZE_MIB = Number(process.env.BENCH_SIZE_MIB ?? 1024);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const RTT_MS = Number(process.env.BENCH_RTT_MS ?? 50);
const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(here, '../../bin/veilfs');
const run = promisify(execFile);

interface Result {
  /** Seconds until dd (with conv=fsync) returned. */
  write: number;
  /** Seconds until the data was in the store. */
  durable: number;
  /** Seconds for a cold sequential read. */
  read: number;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

const dd = (args: string) => run('bash', ['-c', `dd ${args} status=none`], { maxBuffer: 1 << 20 });
const ddWrite = (file: string) => dd(`if=/dev/zero of=${file} bs=1M count=${SIZE_MIB} conv=fsync`);
const ddRead = (file: string, flags = '') => dd(`if=${file} of=/dev/null bs=1M ${flags}`);

async function waitMounted(mnt: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await isMounted(mnt))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`mount failed: ${log()}`);
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

async function ceiling(dir: string): Promise<Result> {
  const mnt = path.join(dir, 'mnt');
  mkdirSync(mnt);
  const fs = startChild(process.execPath, [path.join(here, 'null-fs.js'), mnt, '0'], process.env);
  await waitMounted(mnt, fs.child, fs.log);
  try {
    const write = await timed(() => ddWrite(`${mnt}/data`));
    const read = await timed(() => ddRead(`${mnt}/data`));
    return { write, durable: write, read };
  } finally {
    fs.child.kill('SIGTERM');
    await fs.exited;
    if (await isMounted(mnt)) await forceUnmount(mnt);
  }
}

async function plainDirectory(dir: string): Promise<Result> {
  const write = await timed(() => ddWrite(`${dir}/data`));
  // O_DIRECT: a cold read from the disk, not from the page cache.
  const read = await timed(() => ddRead(`${dir}/data`, 'iflag=direct'));
  return { write, durable: write, read };
}

function veilfs(store: 'local' | 's3', rttMs: number) {
  return async (dir: string): Promise<Result> => {
    const url = store === 'local' ? path.join(dir, 'store') : `s3://${process.env.S3_BUCKET}/bench-${path.basename(dir)}`;
    const env: NodeJS.ProcessEnv = { ...process.env, VEILFS_PASSPHRASE: 'bench', XDG_CACHE_HOME: path.join(dir, 'cache') };
    // A store-level delay: half the round trip before each call, half after.
    if (rttMs) env.VEILFS_FAULTS = JSON.stringify({ latencyMs: rttMs / 2 });
    const mnt = path.join(dir, 'mnt');
    mkdirSync(mnt);
    await run(BIN, ['init', '--store', url], { env });
    const mount = async () => {
      const m = startChild(BIN, ['mount', '--store', url, mnt], env);
      await waitMounted(mnt, m.child, m.log);
      return async () => {
        await run(BIN, ['unmount', mnt], { env });
        await m.exited;
      };
    };
    try {
      let unmount = await mount();
      const write = await timed(() => ddWrite(`${mnt}/data`));
      const upload = await timed(unmount);
      unmount = await mount();
      const read = await timed(() => ddRead(`${mnt}/data`));
      await unmount();
      return { write, durable: write + upload, read };
    } finally {
      if (await isMounted(mnt)) await forceUnmount(mnt);
      if (store === 's3') {
        const s3 = openStore(url);
        const keys = (await s3.list('')).map((i) => i.key);
        for (let i = 0; i < keys.length; i += 32) await Promise.all(keys.slice(i, i + 32).map((k) => s3.delete(k)));
        await s3.close?.();
      }
    }
  };
}

const variants: [string, (dir: string) => Promise<Result>][] = [
  ['fuse-native ceiling (does nothing)', ceiling],
  ['plain directory (this disk)', plainDirectory],
  ['veilfs, local store', veilfs('local', 0)],
  ['veilfs, S3 (RGW on loopback)', veilfs('s3', 0)],
  [`veilfs, S3 + ${RTT_MS} ms RTT`, veilfs('s3', RTT_MS)],
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = new Map<string, Result[]>(variants.map(([name]) => [name, []]));
for (let round = 0; round <= ROUNDS; round++) {
  // Rotate the order each round, so no variant always runs right after a big unmount.
  const order = variants.map((_, i) => variants[(i + round) % variants.length]);
  for (const [name, fn] of order) {
    const dir = mkdtempSync(path.join(tmpdir(), 'veilfs-bench-'));
    try {
      const r = await fn(dir);
      process.stderr.write(`round ${round}${round === 0 ? ' (warm-up, discarded)' : ''}: ${name}: write ${r.write.toFixed(2)} s, stored ${r.durable.toFixed(2)} s, read ${r.read.toFixed(2)} s\n`);
      if (round > 0) results.get(name)!.push(r);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

const mbps = (seconds: number) => (SIZE_MIB * 1.048576) / seconds;
const ceilingResult = results.get(variants[0][0])!;
const ceil = { write: mbps(median(ceilingResult.map((r) => r.write))), read: mbps(median(ceilingResult.map((r) => r.read))) };
const pad = (s: string, n: number) => s.padEnd(n);
const num = (x: number) => x.toFixed(0).padStart(8);
const ratio = (x: number) => x.toFixed(2).padStart(7);
console.log(`\n${SIZE_MIB} MiB sequential, dd bs=1M; medians of ${ROUNDS} interleaved rounds after a warm-up; MB/s = 10^6 bytes/s`);
console.log(`${pad('variant', 36)} write(app) write(stored)  cold read   write/ceil  read/ceil`);
for (const [name] of variants) {
  const rs = results.get(name)!;
  const w = mbps(median(rs.map((r) => r.write)));
  const d = mbps(median(rs.map((r) => r.durable)));
  const rd = mbps(median(rs.map((r) => r.read)));
  console.log(`${pad(name, 36)} ${num(w)}    ${num(d)}     ${num(rd)}    ${ratio(w / ceil.write)}    ${ratio(rd / ceil.read)}`);
}
