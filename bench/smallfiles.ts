import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { gocryptfs, gocryptfsAvailable, median, on, plainDirectory, rounds, sh, timed, veilfs, type Target } from './lib.js';

/*
 * What file managers, git and tar feel: creating many small files,
 * listing a cold tree, reading small files cold, and random 4 KiB reads
 * in a big file (fio). Same rounds and interleaving as the throughput
 * benchmark; medians, with ratios to gocryptfs measured in the same run.
 * Env: BENCH_FILES (5000), BENCH_ROUNDS (3), BENCH_RANDOM_MIB (256),
 * BENCH_RANDOM_SECONDS (5); S3 as for the throughput benchmark.
 */
const FILES = Number(process.env.BENCH_FILES ?? 5000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const RANDOM_MIB = Number(process.env.BENCH_RANDOM_MIB ?? 256);
const RANDOM_SECONDS = Number(process.env.BENCH_RANDOM_SECONDS ?? 5);

interface Result {
  /** Seconds for tar to create FILES files of 4 KiB. */
  create: number;
  /** Seconds until they were in the store. */
  stored: number;
  /** Seconds for `ls -lR` of the cold tree. */
  list: number;
  /** Seconds to read every file of the cold tree. */
  readAll: number;
  /** Random 4 KiB reads per second in a cold big file. */
  iops: number;
}

const work = mkdtempSync(path.join(tmpdir(), 'veilfs-bench-src-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const tarball = path.join(work, 'small.tar');
{
  const src = path.join(work, 'small');
  for (let i = 0; i < FILES; i++) {
    const dir = path.join(src, `d${Math.floor(i / 100)}`);
    if (i % 100 === 0) mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, `f${i}`), randomBytes(4096));
  }
  await sh(`tar cf ${tarball} -C ${src} .`);
}

async function smallFiles(target: Target): Promise<Result> {
  const tree = path.join(target.mnt, 'tree');
  const big = path.join(target.mnt, 'big');
  mkdirSync(tree);
  await sh(`dd if=/dev/urandom of=${big} bs=1M count=${RANDOM_MIB} status=none`);
  const create = await timed(() => sh(`tar xf ${tarball} -C ${tree}`));
  const upload = await timed(() => target.unmount());
  await target.mount();
  const list = await timed(() => sh(`ls -lR ${tree} > /dev/null`));
  const readAll = await timed(() => sh(`find ${tree} -type f -print0 | xargs -0 cat > /dev/null`));
  const fio = await sh(`fio --name=random --filename=${big} --rw=randread --bs=4k --size=${RANDOM_MIB}M --runtime=${RANDOM_SECONDS} --time_based --ioengine=psync --direct=${target.coldNeedsDirectIo ? 1 : 0} --output-format=json`);
  const iops = JSON.parse(fio.stdout).jobs[0].read.iops as number;
  return { create, stored: create + upload, list, readAll, iops };
}

const variants: [string, (dir: string) => Promise<Result>][] = [
  ['plain directory (this disk)', on(plainDirectory, smallFiles)],
  ['veilfs, local store', on(veilfs('local'), smallFiles)],
  ['veilfs, S3 (RGW on loopback)', on(veilfs('s3'), smallFiles)],
];
const peer = 'gocryptfs (Debian), local dir';
const havePeer = await gocryptfsAvailable();
if (havePeer) variants.splice(1, 0, [peer, on(gocryptfs, smallFiles)]);
else process.stderr.write('gocryptfs is not installed (apt-get install gocryptfs): no ratios\n');
await sh('command -v fio').catch(() => {
  throw new Error('fio is not installed (apt-get install fio)');
});

const results = await rounds(variants, ROUNDS, (r) =>
  `create ${r.create.toFixed(2)} s, stored ${r.stored.toFixed(2)} s, ls -lR ${r.list.toFixed(2)} s, read all ${r.readAll.toFixed(2)} s, ${r.iops.toFixed(0)} IOPS`);

type Key = keyof Result;
const med = (name: string, key: Key) => median(results.get(name)!.map((r) => r[key]));
const cols: [string, Key, (x: number) => string][] = [
  ['create s', 'create', (x) => x.toFixed(2)],
  ['stored s', 'stored', (x) => x.toFixed(2)],
  ['ls -lR s', 'list', (x) => x.toFixed(2)],
  ['read all s', 'readAll', (x) => x.toFixed(2)],
  ['4K IOPS', 'iops', (x) => x.toFixed(0)],
];
console.log(`\n${FILES} files of 4 KiB (tar x), cold ls -lR and cat of all, fio 4 KiB random reads over ${RANDOM_MIB} MiB for ${RANDOM_SECONDS} s;`);
console.log(`medians of ${ROUNDS} interleaved rounds after a warm-up; "cold" = after a remount (the plain disk: page cache warm, fio with O_DIRECT)`);
console.log(`${'variant'.padEnd(32)}${cols.map(([h]) => h.padStart(11)).join('')}${havePeer ? '   vs gocryptfs (time: peer/ours, IOPS: ours/peer)' : ''}`);
for (const [name] of variants) {
  const values = cols.map(([, key, fmt]) => fmt(med(name, key)).padStart(11)).join('');
  const ratios = havePeer
    ? '   ' + cols.map(([, key]) => (key === 'iops' ? med(name, key) / med(peer, key) : med(peer, key) / med(name, key)).toFixed(2)).join(' ')
    : '';
  console.log(`${name.padEnd(32)}${values}${ratios}`);
}
