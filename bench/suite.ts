import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { openStore } from '../src/store/open.js';
import { Limiter } from '../src/util/limiter.js';
import { available, gocryptfs, median, nullFs, on, plainDirectory, rcloneCrypt, rounds, securefs, sh, timed, veilfs, type Target, type TargetFactory } from './lib.js';
import { S3Proxy } from './proxy.js';

/*
 * The benchmark of issue "format v2 data path": every workload on every
 * filesystem, interleaved rounds after a discarded warm-up, one table of
 * medians and ratios to the best encrypted peer (and to the binding's
 * null filesystem, the ceiling of the binding).
 * Local: plain directory (reference), null fs (ceiling), gocryptfs,
 * securefs (format 4), veilfs on its local store. S3 (the Ceph gateway of
 * S3_ENDPOINT, through a proxy that adds RTT and counts requests): veilfs
 * and rclone crypt, at 0 and BENCH_RTT_MS added round trip.
 * Env: BENCH_ROUNDS (2), BENCH_FILES (5000), BENCH_S3_FILES (as many), BENCH_SEQ_MIB (1024),
 * BENCH_S3_SEQ_MIB (256), BENCH_RANDOM_SECONDS (5), BENCH_RTT_MS (50),
 * BENCH_ONLY (comma list of variant name fragments).
 */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const FILES = Number(process.env.BENCH_FILES ?? 5000);
const S3_FILES = Number(process.env.BENCH_S3_FILES ?? FILES);
const SEQ_MIB = Number(process.env.BENCH_SEQ_MIB ?? 1024);
const S3_SEQ_MIB = Number(process.env.BENCH_S3_SEQ_MIB ?? 256);
const RANDOM_SECONDS = Number(process.env.BENCH_RANDOM_SECONDS ?? 5);
const RTT_MS = Number(process.env.BENCH_RTT_MS ?? 50);
const ONLY = process.env.BENCH_ONLY?.split(',').filter(Boolean);

type Result = Record<string, number>;

const work = mkdtempSync(path.join(tmpdir(), 'veilfs-bench-src-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const npmTree = ['/usr/lib/node_modules/npm', '/usr/share/nodejs/npm'].find((p) => existsSync(p));
if (!npmTree) throw new Error('npm\'s own tree is needed for the tar workloads (apt-get install npm)');
const tarball = path.join(work, 'tree.tar');
await sh(`tar cf ${tarball} -C ${path.dirname(npmTree)} ${path.basename(npmTree)}`);
const treeFiles = Number((await sh(`tar tf ${tarball} | grep -vc '/$'`)).stdout.trim());

/** FILES files of 4 KiB in 50 directories, written by a bash loop (builtins only: no process per file). */
const createSmall = (root: string, files = FILES) => sh(`data=$(head -c 4096 /dev/zero | tr '\\0' a); for d in $(seq 0 49); do mkdir ${root}/d$d; for f in $(seq 1 ${Math.ceil(files / 50)}); do printf '%s' "$data" > ${root}/d$d/f$f; done; done`);
const fio = async (file: string, mib: number, direct: boolean) => {
  const r = await sh(`fio --name=random --filename=${file} --rw=randread --bs=4k --size=${mib}M --runtime=${RANDOM_SECONDS} --time_based --ioengine=psync --direct=${direct ? 1 : 0} --output-format=json`);
  return JSON.parse(r.stdout).jobs[0].read.iops as number;
};
const mbps = (mib: number, seconds: number) => (mib * 1.048576) / seconds;
async function remount(t: Target): Promise<void> {
  await t.unmount();
  await t.mount();
}

async function localWorkloads(t: Target): Promise<Result> {
  const small = path.join(t.mnt, 'small');
  mkdirSync(small);
  const r: Result = {};
  r.create = await timed(() => createSmall(small));
  r.tarx = await timed(() => sh(`tar xf ${tarball} -C ${t.mnt}`));
  const big = path.join(t.mnt, 'big');
  const write = await timed(() => sh(`dd if=/dev/zero of=${big} bs=1M count=${SEQ_MIB} conv=fsync status=none`));
  r.seqwrite = mbps(SEQ_MIB, write + (await timed(() => t.unmount())));
  await t.mount();
  r.tarc = await timed(() => sh(`tar cf - -C ${t.mnt} ${path.basename(npmTree!)} > /dev/null`));
  await remount(t);
  r.iops = await fio(big, SEQ_MIB, !!t.coldNeedsDirectIo);
  await remount(t);
  r.seqread = mbps(SEQ_MIB, await timed(() => sh(`dd if=${big} of=/dev/null bs=1M status=none${t.coldNeedsDirectIo ? ' iflag=direct' : ''}`)));
  r.rm = await timed(() => sh(`rm -rf ${small}`));
  return r;
}

/** Raw parallel GETs of every object a target stored: what the network and server allow. */
async function rawGets(prefix: string, endpoint: string): Promise<{ bytes: number; seconds: number }> {
  const saved = process.env.AWS_ENDPOINT_URL;
  process.env.AWS_ENDPOINT_URL = endpoint;
  const s3 = openStore(`s3://${process.env.S3_BUCKET}/${prefix}`);
  process.env.AWS_ENDPOINT_URL = saved;
  const objects = await s3.list('');
  const limiter = new Limiter(16);
  let bytes = 0;
  const seconds = await timed(() => Promise.all(objects.map((o) => limiter.run(async () => {
    // Not `bytes += await ...`: that reads `bytes` before the await, and parallel GETs would overwrite each other's counts.
    const got = await s3.get(o.key);
    bytes += got.length;
  }))));
  await s3.close?.();
  return { bytes, seconds };
}

function s3Workloads(proxy: S3Proxy, endpoint: string): (t: Target) => Promise<Result> {
  return async (t) => {
    const small = path.join(t.mnt, 'small');
    // Never block this process on a mount: the S3 proxy the mount waits for runs here.
    await mkdir(small);
    const r: Result = {};
    proxy.take();
    r.create = await timed(() => createSmall(small, S3_FILES));
    r.createStored = r.create + (await timed(() => t.unmount()));
    const put = proxy.take();
    r.puts = put.PUT ?? 0;
    await t.mount();
    proxy.take();
    r.listSmall = await timed(() => sh(`ls -lR ${small} | wc -l`));
    const listed = proxy.take();
    r.listRequests = (listed.GET ?? 0) + (listed.HEAD ?? 0);
    await remount(t);
    proxy.take();
    r.readSmall = await timed(() => sh(`find ${small} -type f -print0 | xargs -0 cat > /dev/null`));
    const got = proxy.take();
    r.requestsPerMiB = ((got.GET ?? 0) + (got.HEAD ?? 0)) / ((S3_FILES * 4096) / 2 ** 20);
    const big = path.join(t.mnt, 'big');
    await sh(`dd if=/dev/urandom of=${big} bs=1M count=${S3_SEQ_MIB} status=none`);
    await remount(t);
    r.iops = await fio(big, S3_SEQ_MIB, false);
    await remount(t);
    r.seqread = mbps(S3_SEQ_MIB, await timed(() => sh(`dd if=${big} of=/dev/null bs=1M status=none`)));
    const raw = await rawGets(t.objectsPrefix!, endpoint);
    r.rawread = raw.bytes / 1e6 / raw.seconds;
    return r;
  };
}

// ---- variants ----
const variants: [string, (dir: string) => Promise<Result>][] = [];
const add = (name: string, factory: TargetFactory, workload: (t: Target) => Promise<Result>) => {
  if (!ONLY || ONLY.some((o) => name.includes(o))) variants.push([name, on(factory, workload)]);
};
add('plain directory', plainDirectory, localWorkloads);
add('binding null fs', nullFs, localWorkloads);
if (await available('gocryptfs')) add('gocryptfs', gocryptfs, localWorkloads);
else process.stderr.write('gocryptfs is not installed (apt-get install gocryptfs): left out\n');
if (await available('securefs')) add('securefs (format 4)', securefs, localWorkloads);
else process.stderr.write('securefs is not installed (apt-get install securefs): left out\n');
add('veilfs, local store', veilfs('local'), localWorkloads);

const proxies: S3Proxy[] = [];
if (process.env.S3_ENDPOINT) {
  for (const rtt of [0, RTT_MS]) {
    const proxy = new S3Proxy(new URL(process.env.S3_ENDPOINT));
    proxy.rttMs = rtt;
    const endpoint = await proxy.start();
    proxies.push(proxy);
    add(`veilfs, S3 +${rtt} ms`, veilfs('s3', endpoint), s3Workloads(proxy, endpoint));
    if (await available('rclone')) add(`rclone crypt, S3 +${rtt} ms`, rcloneCrypt(endpoint), s3Workloads(proxy, endpoint));
  }
  if (!(await available('rclone'))) process.stderr.write('rclone is not installed (apt-get install rclone): left out\n');
} else {
  process.stderr.write('no S3_ENDPOINT: the S3 workloads are left out (bench/run starts a server)\n');
}
for (const need of ['fio']) if (!(await available(need))) throw new Error(`${need} is not installed (apt-get install ${need})`);

const results = await rounds(variants, ROUNDS, (r) => Object.entries(r).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', '));
for (const p of proxies) await p.close();

// ---- the table ----
const med = (name: string, key: string) => {
  const xs = results.get(name)?.map((r) => r[key]).filter((x) => x !== undefined);
  return xs?.length ? median(xs) : undefined;
};
interface Row { workload: string; key: string; unit: string; higherIsBetter: boolean; ours: string; peers: string[]; ceiling?: string }
const local = ['gocryptfs', 'securefs (format 4)'];
const rows: Row[] = [
  { workload: `create ${FILES} small files`, key: 'create', unit: 's', higherIsBetter: false, ours: 'veilfs, local store', peers: local, ceiling: 'binding null fs' },
  { workload: `tar x of ${treeFiles}-file tree`, key: 'tarx', unit: 's', higherIsBetter: false, ours: 'veilfs, local store', peers: local, ceiling: 'binding null fs' },
  { workload: 'cold tar c of it', key: 'tarc', unit: 's', higherIsBetter: false, ours: 'veilfs, local store', peers: local, ceiling: 'binding null fs' },
  { workload: `rm -rf of the ${FILES} files`, key: 'rm', unit: 's', higherIsBetter: false, ours: 'veilfs, local store', peers: local, ceiling: 'binding null fs' },
  { workload: 'random 4 KiB reads (IOPS)', key: 'iops', unit: 'IOPS', higherIsBetter: true, ours: 'veilfs, local store', peers: local, ceiling: 'binding null fs' },
  { workload: `seq write ${SEQ_MIB} MiB, durable`, key: 'seqwrite', unit: 'MB/s', higherIsBetter: true, ours: 'veilfs, local store', peers: local, ceiling: 'binding null fs' },
  { workload: 'cold seq read', key: 'seqread', unit: 'MB/s', higherIsBetter: true, ours: 'veilfs, local store', peers: local, ceiling: 'binding null fs' },
];
for (const rtt of [0, RTT_MS]) {
  const ours = `veilfs, S3 +${rtt} ms`;
  const peers = [`rclone crypt, S3 +${rtt} ms`];
  rows.push(
    { workload: `S3 +${rtt} ms: create ${S3_FILES} small, stored`, key: 'createStored', unit: 's', higherIsBetter: false, ours, peers },
    { workload: `S3 +${rtt} ms: PUTs for them`, key: 'puts', unit: 'PUTs', higherIsBetter: false, ours, peers },
    { workload: `S3 +${rtt} ms: cold ls -lR of them`, key: 'listSmall', unit: 's', higherIsBetter: false, ours, peers },
    { workload: `S3 +${rtt} ms: requests for it`, key: 'listRequests', unit: 'req', higherIsBetter: false, ours, peers },
    { workload: `S3 +${rtt} ms: cold read of them`, key: 'readSmall', unit: 's', higherIsBetter: false, ours, peers },
    { workload: `S3 +${rtt} ms: requests per MiB read`, key: 'requestsPerMiB', unit: 'req', higherIsBetter: false, ours, peers },
    { workload: `S3 +${rtt} ms: random 4 KiB reads`, key: 'iops', unit: 'IOPS', higherIsBetter: true, ours, peers },
    { workload: `S3 +${rtt} ms: cold seq read`, key: 'seqread', unit: 'MB/s', higherIsBetter: true, ours, peers },
    { workload: `S3 +${rtt} ms: raw parallel GETs (ours)`, key: 'rawread', unit: 'MB/s', higherIsBetter: true, ours, peers: [] },
  );
}
const fmt = (x: number | undefined) => (x === undefined ? '–' : x >= 100 ? x.toFixed(0) : x.toFixed(2));
const ratioOf = (row: Row, ours: number, other: number) => (row.higherIsBetter ? ours / other : other / ours);
console.log(`\nveilfs benchmark: medians of ${ROUNDS} interleaved rounds after a discarded warm-up; ratio > 1 means veilfs is better`);
console.log(`${'workload'.padEnd(40)}${'veilfs'.padStart(10)}  ${'best encrypted peer'.padEnd(30)}${'ratio'.padStart(7)}${'null fs'.padStart(10)}${'÷ceil'.padStart(7)}`);
for (const row of rows) {
  const ours = med(row.ours, row.key);
  if (ours === undefined) continue;
  const peerValues = row.peers.map((p) => [p, med(p, row.key)] as const).filter((p): p is readonly [string, number] => p[1] !== undefined);
  const best = peerValues.sort((a, b) => (row.higherIsBetter ? b[1] - a[1] : a[1] - b[1]))[0];
  const ceiling = row.ceiling ? med(row.ceiling, row.key) : undefined;
  console.log(`${row.workload.padEnd(40)}${`${fmt(ours)} ${row.unit}`.padStart(10)}  ${(best ? `${best[0]}: ${fmt(best[1])}` : '–').padEnd(30)}${(best ? ratioOf(row, ours, best[1]).toFixed(2) : '–').padStart(7)}${fmt(ceiling).padStart(10)}${(ceiling ? ratioOf(row, ours, ceiling).toFixed(2) : '–').padStart(7)}`);
}
if (results.get('veilfs, S3 +0 ms')?.length) {
  for (const rtt of [0, RTT_MS]) {
    const seq = med(`veilfs, S3 +${rtt} ms`, 'seqread');
    const raw = med(`veilfs, S3 +${rtt} ms`, 'rawread');
    if (seq && raw) console.log(`S3 +${rtt} ms: cold sequential read is ${(seq / raw).toFixed(2)}× raw parallel GETs of the same objects`);
  }
}
