import t from 'tap';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FaultConfig } from '../src/store/fault.js';
import { cliEnv, mountDrive, sh, veilfs } from './lib/cli.js';
import { prng } from './lib/model.js';

/*
 * kill -9 of the daemon at random moments (mid-write, mid-upload, mid-commit,
 * mid-checkpoint), then a new mount must show every fsynced byte and every
 * closed file, a consistent tree, and no torn block. VEILFS_CRASH_CYCLES sets
 * the number of cycles (CI: 50), VEILFS_CRASH_SEED replays a run.
 */
const CYCLES = Number(process.env.VEILFS_CRASH_CYCLES ?? 50);
const SEED = Number(process.env.VEILFS_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
const BS = 256 * 1024;

/** What a file may look like after a crash. */
interface Expectation {
  /** Versions a crash may leave: exact contents, or null for "absent". */
  versions: (Buffer | null)[];
  /** Writes not covered by an fsync yet: blocks may also still be holes (zeros). */
  zeros?: boolean;
}

/** Every block is whole: one of the versions' block at that place, or (if allowed) zeros; never a mix inside a block. */
function plausible(actual: Buffer, e: Expectation): boolean {
  const candidates = e.versions.filter((v): v is Buffer => v !== null);
  if (candidates.some((v) => Buffer.compare(v, actual) === 0)) return true;
  if (!e.zeros || actual.length > Math.max(0, ...candidates.map((v) => v.length))) return false;
  for (let at = 0; at < actual.length; at += BS) {
    const block = actual.subarray(at, at + BS);
    const whole = candidates.some((v) => at + block.length <= v.length && Buffer.compare(block, v.subarray(at, at + block.length)) === 0);
    if (!whole && !block.every((b) => b === 0)) return false;
  }
  return true;
}

t.test(`${CYCLES} cycles of write, fsync and kill -9 at random points`, async (t) => {
  t.comment(`crash loop seed ${SEED} (replay with VEILFS_CRASH_SEED=${SEED})`);
  const base = cliEnv(t);
  const control = path.join(base.dir, 'faults.json');
  fs.writeFileSync(control, '{}');
  const cli = { ...base, env: { ...base.env, VEILFS_FAULTS: `@${control}` } };
  t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0);
  const m = path.join(cli.dir, 'mnt');
  const random = prng(SEED);
  const int = (n: number) => Math.floor(random() * n);
  const expect = new Map<string, Expectation>();
  let serial = 0;
  let failures = 0;

  for (let cycle = 1; cycle <= CYCLES && failures === 0; cycle++) {
    // Every other cycle, a slow and flaky store: uploads are in flight when the kill comes.
    const faults: FaultConfig = cycle % 2 ? { latencyMs: 3, jitterMs: 10, errorRate: 0.05 } : {};
    fs.writeFileSync(control, JSON.stringify(faults));
    const drive = await mountDrive(t, cli, m, ['--commit-interval', String(0.1 + random() * 0.5), '--checkpoint-interval', String(1 + int(6)), '--store-timeout', '5']);

    // Verify what the last crash left.
    for (const [name, e] of expect) {
      let actual: Buffer | null = null;
      try {
        actual = fs.readFileSync(path.join(m, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
          t.fail(`cycle ${cycle} (seed ${SEED}): reading ${name} failed: ${(err as Error).message}`);
          failures++;
          continue;
        }
      }
      const fine = actual === null ? e.versions.includes(null) : plausible(actual, e);
      if (!fine) {
        t.fail(`cycle ${cycle} (seed ${SEED}): ${name} is ${actual === null ? 'missing' : `${actual.length} bytes that match no allowed version`} (allowed: ${e.versions.map((v) => (v ? v.length : 'absent')).join(', ')}${e.zeros ? ', with holes' : ''})`);
        failures++;
      }
      // Settle: from now on the file is what it is.
      if (actual === null) expect.delete(name);
      else expect.set(name, { versions: [actual] });
    }
    // A leftover temp file from an interrupted replace is not part of the model.
    fs.rmSync(path.join(m, 'tmp'), { force: true });
    const walk = await sh(`find ${m} -type f -exec cat {} + > /dev/null`);
    if (walk.code !== 0) {
      t.fail(`cycle ${cycle} (seed ${SEED}): the tree does not read cleanly: ${walk.stderr.slice(0, 300)}`);
      failures++;
    }

    // Work, and a kill -9 at a random moment in the middle of it (from outside: our I/O is synchronous).
    const killAfter = 50 + int(1200);
    const killer = spawn('sh', ['-c', `sleep ${killAfter / 1000}; kill -9 ${drive.child.pid}`], { stdio: 'ignore' });
    let killed = false;
    killer.on('exit', () => (killed = true));
    const p = (name: string) => path.join(m, name);
    try {
      while (!killed) {
        // Let the killer's exit through: the work below is synchronous.
        await new Promise((r) => setImmediate(r));
        const names = [...expect.keys()];
        // Keep the tree small: each cycle reads all of it back.
        const r = names.length > 24 ? 0.75 + random() * 0.15 : random();
        if (r < 0.35 || names.length < 3) {
          const name = `f${serial++}`;
          const data = randomBytes(int(3 * BS + 100));
          const synced = random() < 0.6;
          expect.set(name, { versions: [null, data], zeros: true });
          const fd = fs.openSync(p(name), 'w');
          for (let at = 0; at < data.length; at += 65536) fs.writeSync(fd, data, at, Math.min(65536, data.length - at), at);
          if (synced) fs.fsyncSync(fd);
          fs.closeSync(fd);
          // Once close returns, the file is in the journal, which a kill -9 of the daemon does not touch (promise 3).
          expect.set(name, { versions: [data] });
        } else if (r < 0.55) {
          const name = names[int(names.length)];
          const old = expect.get(name)!.versions[0];
          if (!old || expect.get(name)!.versions.length > 1) continue;
          const patch = randomBytes(1 + int(BS + 10));
          const at = int(old.length + 1);
          const next = Buffer.alloc(Math.max(old.length, at + patch.length));
          old.copy(next);
          patch.copy(next, at);
          expect.set(name, { versions: [old, next], zeros: true });
          const fd = fs.openSync(p(name), 'r+');
          fs.writeSync(fd, patch, 0, patch.length, at);
          fs.fsyncSync(fd);
          fs.closeSync(fd);
          expect.set(name, { versions: [next] });
        } else if (r < 0.75) {
          const name = names[int(names.length)];
          const old = expect.get(name)!.versions[0];
          if (!old || expect.get(name)!.versions.length > 1) continue;
          const next = randomBytes(int(2 * BS));
          expect.set(name, { versions: [old, next] });
          fs.writeFileSync(p('tmp'), next);
          const fd = fs.openSync(p('tmp'), 'r');
          fs.fsyncSync(fd);
          fs.closeSync(fd);
          fs.renameSync(p('tmp'), p(name));
          const dir = fs.openSync(m, 'r');
          fs.fsyncSync(dir);
          fs.closeSync(dir);
          expect.set(name, { versions: [next] });
        } else if (r < 0.9) {
          const name = names[int(names.length)];
          const e = expect.get(name)!;
          if (e.versions.length > 1) continue;
          expect.set(name, { versions: [...e.versions, null] });
          fs.unlinkSync(p(name));
          const dir = fs.openSync(m, 'r');
          fs.fsyncSync(dir);
          fs.closeSync(dir);
          expect.delete(name);
        } else {
          await new Promise((r) => setTimeout(r, int(30)));
        }
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTCONN' && code !== 'ECONNABORTED' && code !== 'ENOENT') {
        t.fail(`cycle ${cycle} (seed ${SEED}): unexpected error while working: ${(err as Error).message}`);
        failures++;
      }
    }
    await drive.crash();
    killer.kill();
  }
  t.equal(failures, 0, `${CYCLES} crash cycles: every fsynced byte and closed file survived, no torn block, the tree always read cleanly`);

  fs.writeFileSync(control, '{}');
  const last = await mountDrive(t, cli, m);
  await sh(`rm -f ${m}/tmp`);
  t.equal((await last.unmount()).code, 0, 'a clean unmount after all that');
  const fsck = await veilfs(['fsck', '--store', cli.store], cli.env);
  t.equal(fsck.code, 0, `fsck finds the vault consistent: ${fsck.stdout.split('\n').slice(-4).join(' ')}`);
});
