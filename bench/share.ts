import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import puppeteer from 'puppeteer-core';
import { BIN, median, sh, vaultEnv } from './lib.js';

/*
 * The benchmark of issue "share by link": a shared file of BENCH_SHARE_MB
 * (1024) MiB on the local store, served by `veilfs serve` on loopback,
 * fetched three ways in interleaved rounds after a discarded warm-up:
 * plain curl of the same (encrypted) byte ranges from the same gateway —
 * the transfer ceiling —, `veilfs get`, and headless Chromium clicking
 * Download. Reports time to the first byte on disk and MB/s of the whole
 * download, with ratios to curl.
 * Env: BENCH_SHARE_MB (1024), BENCH_ROUNDS (1), CHROMIUM_PATH.
 */
const SIZE = Number(process.env.BENCH_SHARE_MB ?? 1024) * 2 ** 20;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1);
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

interface Result {
  firstByte: number;
  seconds: number;
}

const now = () => Number(process.hrtime.bigint()) / 1e9;

async function waitFor(check: () => boolean, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 2));
  }
}

const work = mkdtempSync(path.join(tmpdir(), 'veilfs-bench-share-'));
const env = vaultEnv(work);
const store = path.join(work, 'store');
const mnt = path.join(work, 'mnt');
mkdirSync(mnt);
let gateway: ReturnType<typeof spawn> | undefined;
try {
  await sh(`${BIN} init --store ${store}`, undefined, env);
  await sh(`${BIN} mount --daemon --store ${store} ${mnt}`, undefined, env);
  await sh(`head -c ${SIZE} /dev/urandom > ${mnt}/big.bin`);
  const link = (await sh(`${BIN} share ${mnt}/big.bin`, undefined, env)).stdout.trim();
  await sh(`${BIN} unmount ${mnt}`, undefined, env);
  gateway = spawn(BIN, ['serve', '--store', store, '--listen', '127.0.0.1:0', '--quiet'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let said = '';
  gateway.stderr!.on('data', (d) => (said += d));
  await waitFor(() => /on http:\/\/[\d.:]+/.test(said), 30_000);
  const base = /on (http:\/\/[\d.:]+)/.exec(said)![1];
  const localLink = link.replace(/^http:\/\/[^/]+/, base);
  const id = /\/s\/([0-9a-f]{32})/.exec(link)![1];
  const record = (await (await fetch(`${base}/api/s/${id}`)).json()) as { ranges: Record<string, [number, number][]> };

  // The same bytes a reader fetches, as 1 MiB ranges, 6 at a time (what veilfs get does).
  const curlConfig = path.join(work, 'curl.cfg');
  const lines: string[] = [];
  for (const [pack, ranges] of Object.entries(record.ranges)) {
    for (const [offset, length] of ranges) {
      for (let at = offset; at < offset + length; at += 2 ** 20) {
        const last = Math.min(at + 2 ** 20, offset + length) - 1;
        lines.push(`url = "${base}/api/s/${id}/p/${pack}"`, `header = "Range: bytes=${at}-${last}"`, 'output = "/dev/null"', 'next');
      }
    }
  }
  // `next` separates requests; one after the last would start an empty one.
  writeFileSync(curlConfig, lines.slice(0, -1).join('\n'));

  const browser = await puppeteer.launch({
    executablePath: CHROMIUM, headless: true, userDataDir: path.join(work, 'chromium'),
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  const variants: [string, () => Promise<Result>][] = [
    ['curl (ciphertext, same ranges)', async () => {
      const [pack, [[offset]]] = Object.entries(record.ranges)[0];
      const firstByte = Number((await sh(`curl -s -o /dev/null -w '%{time_starttransfer}' -H 'Range: bytes=${offset}-${offset + 2 ** 20 - 1}' ${base}/api/s/${id}/p/${pack}`)).stdout);
      const start = now();
      await sh(`curl -s --parallel --parallel-max 6 -K ${curlConfig}`);
      return { firstByte, seconds: now() - start };
    }],
    ['veilfs get', async () => {
      const dest = path.join(work, 'got.bin');
      rmSync(dest, { force: true });
      const start = now();
      const child = spawn(BIN, ['get', localLink, dest], { env, stdio: 'ignore' });
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      const part = `${dest}.veilfs-part`;
      await waitFor(() => existsSync(part) && statSync(part).size > 0);
      const firstByte = now() - start;
      if ((await exited) !== 0) throw new Error('veilfs get failed');
      const seconds = now() - start;
      if (statSync(dest).size !== SIZE) throw new Error('veilfs get: wrong size');
      rmSync(dest);
      return { firstByte, seconds };
    }],
    ['browser (Chromium)', async () => {
      const downloads = path.join(work, 'downloads');
      rmSync(downloads, { recursive: true, force: true });
      mkdirSync(downloads);
      const page = await browser.newPage();
      const cdp = await page.createCDPSession();
      await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads });
      await page.goto(localLink);
      await page.waitForSelector('#viewer:not([hidden])');
      const start = now();
      await page.click('#download');
      const partial = () => readdirSync(downloads).find((n) => n.endsWith('.crdownload'));
      await waitFor(() => {
        const p = partial();
        return (!!p && statSync(path.join(downloads, p)).size > 0) || existsSync(path.join(downloads, 'big.bin'));
      });
      const firstByte = now() - start;
      await waitFor(() => existsSync(path.join(downloads, 'big.bin')) && !partial());
      const seconds = now() - start;
      if (statSync(path.join(downloads, 'big.bin')).size !== SIZE) throw new Error('browser: wrong size');
      await page.close();
      return { firstByte, seconds };
    }],
  ];
  const results = new Map<string, Result[]>(variants.map(([name]) => [name, []]));
  for (let round = 0; round <= ROUNDS; round++) {
    for (let i = 0; i < variants.length; i++) {
      const [name, fn] = variants[(i + round) % variants.length];
      const r = await fn();
      process.stderr.write(`round ${round}${round === 0 ? ' (warm-up, discarded)' : ''}: ${name}: first byte ${(r.firstByte * 1000).toFixed(0)} ms, ${(SIZE / 1e6 / r.seconds).toFixed(1)} MB/s\n`);
      if (round > 0) results.get(name)!.push(r);
    }
  }
  await browser.close();
  const curl = median(results.get(variants[0][0])!.map((r) => r.seconds));
  process.stdout.write(`\nshared file of ${SIZE / 2 ** 20} MiB through veilfs serve on loopback (local store), median of ${ROUNDS} round(s)\n`);
  process.stdout.write(`${'reader'.padEnd(32)}${'first byte'.padStart(12)}${'MB/s'.padStart(10)}${'vs curl'.padStart(10)}\n`);
  for (const [name, rs] of results) {
    const seconds = median(rs.map((r) => r.seconds));
    process.stdout.write(`${name.padEnd(32)}${`${(median(rs.map((r) => r.firstByte)) * 1000).toFixed(0)} ms`.padStart(12)}${(SIZE / 1e6 / seconds).toFixed(1).padStart(10)}${(curl / seconds).toFixed(2).padStart(10)}\n`);
  }
} finally {
  gateway?.kill('SIGTERM');
  await sh(`${BIN} unmount ${mnt}`, undefined, env).catch(() => {});
  rmSync(work, { recursive: true, force: true });
}
