import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { FaultConfig } from '../src/store/fault.js';
import { cliEnv, mountDrive, sh, veilfs, type CliEnv } from './lib/cli.js';

/** A vault whose store misbehaves as the control file says, while mounted. */
function faultyCli(t: Parameters<typeof cliEnv>[0]): { cli: CliEnv; faults(c: FaultConfig): Promise<void> } {
  const cli = cliEnv(t);
  const control = path.join(cli.dir, 'faults.json');
  // The daemon looks at the control file at most every 100 ms.
  const faults = async (c: FaultConfig) => {
    writeFileSync(control, JSON.stringify(c));
    await new Promise((r) => setTimeout(r, 250));
  };
  writeFileSync(control, '{}');
  return { cli: { ...cli, env: { ...cli.env, VEILFS_FAULTS: `@${control}` } }, faults };
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

t.test('store down: reads fail with EIO in bounded time, cached data stays, writes are journaled and uploaded later', async (t) => {
  const { cli, faults } = faultyCli(t);
  t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0);
  const m = path.join(cli.dir, 'mnt');
  const opts = ['--store-timeout', '2'];
  const cached = randomBytes(2 * 1024 * 1024);
  const cold = randomBytes(2 * 1024 * 1024);
  let drive = await mountDrive(t, cli, m, opts);
  writeFileSync(path.join(m, 'cached.bin'), cached);
  writeFileSync(path.join(m, 'cold.bin'), cold);
  t.equal((await drive.unmount()).code, 0);

  drive = await mountDrive(t, cli, m, opts);
  t.equal(Buffer.compare(readFileSync(path.join(m, 'cached.bin')), cached), 0, 'read once: now in the cache');
  await faults({ down: true });

  let started = Date.now();
  const failed = await sh(`cat ${m}/cold.bin > /dev/null`);
  const took = Date.now() - started;
  t.not(failed.code, 0, 'reading data the store cannot deliver fails');
  t.match(failed.stderr, /Input\/output error/, 'with EIO');
  t.ok(took < 10_000, `after the deadline, not a hang (${seconds(took)})`);
  t.equal(Buffer.compare(readFileSync(path.join(m, 'cached.bin')), cached), 0, 'cached data is still served');
  t.equal((await sh(`ls -l ${m}`)).code, 0, 'metadata is still served');

  const written = randomBytes(3 * 1024 * 1024 + 11);
  writeFileSync(path.join(cli.dir, 'src.bin'), written);
  started = Date.now();
  const dd = await sh(`dd if=${cli.dir}/src.bin of=${m}/written-while-down.bin bs=1M conv=fsync status=none && mkdir ${m}/dir-while-down`);
  t.equal(dd.code, 0, `writes and fsync succeed while the store is down (${seconds(Date.now() - started)}) ${dd.stderr}`);

  started = Date.now();
  const down = await drive.unmount();
  t.equal(down.code, 75, `unmount with the store down returns, failing as the store does (${seconds(Date.now() - started)})`);
  t.match(down.stderr, /the store did not take .*; they stay in this machine's journal, and the next mount of this vault uploads them/, 'and says what stays where');
  t.ok(Date.now() - started < 60_000, 'in bounded time');
  t.match(drive.stderr(), /stay in the journal/, 'and says the changes stay in the journal');

  await faults({});
  drive = await mountDrive(t, cli, m, opts);
  t.equal(Buffer.compare(readFileSync(path.join(m, 'written-while-down.bin')), written), 0, 'the next mount has them');
  t.equal((await drive.unmount()).code, 0);
  t.match(drive.stderr(), /everything is stored/, 'and uploads them');

  // Proof that the store itself has them: a machine without this journal sees them.
  const elsewhere = { ...cli, env: { ...cli.env, XDG_CACHE_HOME: path.join(cli.dir, 'other-machine') } };
  const other = await mountDrive(t, elsewhere, m, ['--read-only']);
  t.equal(Buffer.compare(readFileSync(path.join(m, 'written-while-down.bin')), written), 0, 'the store has the data written while it was down');
  t.equal((await sh(`test -d ${m}/dir-while-down`)).code, 0);
  await other.unmount();
});

t.test('a flaky store (errors, resets, latency spikes, lost writes, flipped and cut bytes) never loses or corrupts data', async (t) => {
  const { cli, faults } = faultyCli(t);
  t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0);
  const src = path.join(cli.dir, 'src');
  mkdirSync(src);
  for (let i = 0; i < 24; i++) writeFileSync(path.join(src, `f${i}`), randomBytes(Math.floor((i * 7919) % 700_000) + 1));
  // Big enough that random reads fetch single segments: many requests, so the faults surely hit reads too.
  writeFileSync(path.join(src, 'big'), randomBytes(6 * 2 ** 20));
  const m = path.join(cli.dir, 'mnt');
  await faults({ seed: 7, latencyMs: 1, jitterMs: 5, spikeRate: 0.01, spikeMs: 300, errorRate: 0.1, resetRate: 0.05, lostWriteRate: 0.1, flipRate: 0.02, truncateRate: 0.01 });
  let drive = await mountDrive(t, cli, m);
  t.equal((await sh(`cp -a ${src} ${m}/copy`)).code, 0, 'copy in');
  t.equal((await drive.unmount()).code, 0);
  t.match(drive.stderr(), /everything is stored/, 'every change reached the store despite the faults');
  drive = await mountDrive(t, cli, m);
  const randomReads = await sh(`for i in $(seq 80); do o=$(( (i * 7919) % 1536 )); cmp <(dd if=${src}/big bs=4096 skip=$o count=1 2>/dev/null) <(dd if=${m}/copy/big bs=4096 skip=$o count=1 2>/dev/null) || exit 1; done`);
  t.equal(randomReads.code, 0, `80 cold random 4 KiB reads identical ${randomReads.stdout}${randomReads.stderr}`);
  const diff = await sh(`diff -r ${src} ${m}/copy`);
  t.equal(diff.code, 0, `read back identical through the same faults ${diff.stdout}${diff.stderr}`);
  t.match(drive.stderr(), /injected fault|failed authentication/, 'faults did happen');
  await drive.unmount();
  await faults({});
  drive = await mountDrive(t, cli, m);
  t.equal((await sh(`diff -r ${src} ${m}/copy`)).code, 0, 'and identical from a healthy store');
  await drive.unmount();
});
