import { gocryptfs, gocryptfsAvailable, median, nullFs, on, plainDirectory, rounds, sh, timed, veilfs, type Target } from './lib.js';

/*
 * Sequential throughput through the mount: write SIZE with dd (time until
 * dd returns, and until the data is in the store, i.e. until unmount has
 * uploaded everything), then a cold read after a remount. The table shows
 * medians and ratios to the fuse-native ceiling of the same run.
 * Env: BENCH_SIZE_MIB (1024), BENCH_ROUNDS (3), BENCH_RTT_MS (50), and the
 * S3 server's S3_ENDPOINT/S3_BUCKET/AWS_* (bench/run starts one).
 */
const SIZE_MIB = Number(process.env.BENCH_SIZE_MIB ?? 1024);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const RTT_MS = Number(process.env.BENCH_RTT_MS ?? 50);

interface Result {
  /** Seconds until dd (with conv=fsync) returned. */
  write: number;
  /** Seconds until the data was in the store. */
  durable: number;
  /** Seconds for a cold sequential read. */
  read: number;
}

const dd = (args: string) => sh(`dd ${args} status=none`);

async function sequential(target: Target): Promise<Result> {
  const file = `${target.mnt}/data`;
  const write = await timed(() => dd(`if=/dev/zero of=${file} bs=1M count=${SIZE_MIB} conv=fsync`));
  const upload = await timed(() => target.unmount());
  await target.mount();
  const read = await timed(() => dd(`if=${file} of=/dev/null bs=1M${target.coldNeedsDirectIo ? ' iflag=direct' : ''}`));
  return { write, durable: write + upload, read };
}

const variants: [string, (dir: string) => Promise<Result>][] = [
  ['fuse-native ceiling (does nothing)', on(nullFs, sequential)],
  ['plain directory (this disk)', on(plainDirectory, sequential)],
  ['veilfs, local store', on(veilfs('local'), sequential)],
  ['veilfs, S3 (RGW on loopback)', on(veilfs('s3'), sequential)],
  [`veilfs, S3 + ${RTT_MS} ms RTT`, on(veilfs('s3', RTT_MS), sequential)],
];
if (await gocryptfsAvailable()) variants.splice(2, 0, ['gocryptfs (Debian), local dir', on(gocryptfs, sequential)]);
else process.stderr.write('gocryptfs is not installed (apt-get install gocryptfs): its row is left out\n');

const results = await rounds(variants, ROUNDS, (r) => `write ${r.write.toFixed(2)} s, stored ${r.durable.toFixed(2)} s, read ${r.read.toFixed(2)} s`);

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
