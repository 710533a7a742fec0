import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMounted } from '../src/fuse/mounts.js';
import { BIN, cliEnv, driveStatus as status, mountDrive, PASSPHRASE, sh, veilfs, type RunResult } from './lib/cli.js';
import { s3Skip } from './lib/stores.js';

/*
 * Living with the drive: named vaults, status and sync through the control
 * socket, an fstab mount through the mount helper, and one clear line with
 * a documented exit code for each way a mount commonly fails.
 */
const HELPER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/mount.fuse.veilfs');
const root = process.getuid?.() === 0;

/**
 * Runs a command as a user would: through `env -i`, so that none of the
 * test runner's hooks (it injects itself into every node child) speak too.
 */
function run(file: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<RunResult> {
  const keep = Object.entries(env).filter(([k, v]) => v !== undefined && (/^(PATH|HOME|XDG_.*|VEILFS_.*|AWS_.*)$/.test(k)));
  return new Promise((resolve) => {
    execFile('env', ['-i', ...keep.map(([k, v]) => `${k}=${v}`), file, ...args], { cwd, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as NodeJS.ErrnoException).code ?? 1) : 0, stdout, stderr });
    });
  });
}

t.test('a named vault mounts by name; status counts the upload down; sync waits until the store has it', async (t) => {
  const cli = cliEnv(t);
  t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0);
  t.equal((await veilfs(['vault', 'add', 'work', '--store', cli.store], cli.env)).code, 0, 'vault add');
  t.match((await veilfs(['vault', 'list'], cli.env)).stdout, /^work\t.*store$/m, 'vault list');
  const m = path.join(cli.dir, 'mnt');
  mkdirSync(m);
  // A slow store, so that uploads are still pending when we look.
  const slow = { ...cli.env, VEILFS_FAULTS: JSON.stringify({ latencyMs: 300 }) };
  const mounted = await veilfs(['mount', '--daemon', 'work', m], slow);
  t.equal(mounted.code, 0, `mount by name ${mounted.stderr}`);
  t.teardown(async () => {
    if (await isMounted(m)) await veilfs(['unmount', m], cli.env);
  });
  t.equal((await sh(`dd if=/dev/urandom of=${m}/big bs=1M count=48 status=none`)).code, 0, 'copy 48 MiB');
  const during = await status(cli, m);
  t.equal(during.mountpoint, m);
  t.equal(during.store, cli.store);
  t.ok(during.upload.pendingObjects > 0 && during.upload.pendingBytes > 0, `uploads pending right after the copy (${during.upload.pendingObjects})`);
  t.ok(existsSync(during.logFile), 'the log file it names exists');
  t.equal(during.cache.size, 256 * 2 ** 20);
  const later = await status(cli, m);
  t.ok(later.upload.pendingObjects <= during.upload.pendingObjects, 'the count goes down');
  const synced = await veilfs(['sync', m], cli.env);
  t.equal(synced.code, 0, `sync ${synced.stderr}`);
  const after = await status(cli, m);
  t.same([after.upload.pendingObjects, after.upload.pendingBytes], [0, 0], 'nothing pending after sync');
  t.ok(after.lastCommit !== null && Date.parse(after.lastCommit) <= Date.now(), 'a commit happened');
  t.ok(after.storeLatencyMs !== null && after.storeLatencyMs >= 300, `store latency measured (${after.storeLatencyMs} ms)`);
  const human = await veilfs(['status'], cli.env);
  t.match(human.stdout, /everything is in the store/, 'human status');
  t.equal((await veilfs(['unmount', m], cli.env)).code, 0, 'unmount');
  t.equal((await veilfs(['status'], cli.env)).code, 1, 'no drive mounted any more');
});

t.test('the control socket refuses another user', { skip: !root && 'needs root to switch users' }, async (t) => {
  const cli = cliEnv(t);
  await veilfs(['init', '--store', cli.store], cli.env);
  const m = path.join(cli.dir, 'mnt');
  await mountDrive(t, cli, m);
  t.equal((await veilfs(['status', m], cli.env)).code, 0, 'the owner may ask');
  const other = await run('setpriv', ['--reuid=1001', '--regid=1001', '--clear-groups', BIN, 'status', m], cli.env);
  t.equal(other.code, 77, 'exit code 77 (permission)');
  t.match(other.stderr, /^veilfs: this drive was mounted by another user/);
  t.equal(other.stderr.trim().split('\n').length, 1, 'one line');
});

t.test('an fstab line mounts through the mount helper, with the passphrase from a file', { skip: !root && 'needs root to mount' }, async (t) => {
  const cli = cliEnv(t);
  await veilfs(['init', '--store', cli.store], cli.env);
  const installed = '/sbin/mount.fuse.veilfs';
  if (!existsSync(installed)) {
    symlinkSync(HELPER, installed);
    t.teardown(() => unlinkSync(installed));
  } else {
    t.ok(lstatSync(installed).isSymbolicLink(), `${installed} is a link (to this or another checkout)`);
  }
  const pass = path.join(cli.dir, 'pass');
  writeFileSync(pass, `${PASSPHRASE}\n`, { mode: 0o600 });
  const env = { ...cli.env, VEILFS_PASSPHRASE: undefined };
  const m = path.join(cli.dir, 'mnt');
  mkdirSync(m);
  t.teardown(async () => {
    if (await isMounted(m)) await veilfs(['unmount', m], cli.env);
  });
  const mounted = await run('mount', ['-t', 'fuse.veilfs', cli.store, m, '-o', `passphrase_file=${pass},_netdev,noatime,x-systemd.automount`], env);
  t.equal(mounted.code, 0, `mount -t fuse.veilfs ${mounted.stderr}`);
  writeFileSync(path.join(m, 'hello'), 'from fstab');
  t.equal(readFileSync(path.join(m, 'hello'), 'utf8'), 'from fstab');
  t.equal((await veilfs(['unmount', m], cli.env)).code, 0, 'unmount');
  t.notOk(await isMounted(m));
  const bad = await run('mount', ['-t', 'fuse.veilfs', cli.store, m, '-o', 'colour=blue'], env);
  t.not(bad.code, 0, 'an unknown option is refused');
  t.match(bad.stderr, /unknown option "colour=blue"/);
});

t.test('each common failure gets one line with its fix and a documented exit code', async (t) => {
  const cli = cliEnv(t);
  await veilfs(['init', '--store', cli.store], cli.env);
  await veilfs(['vault', 'add', 'mine', '--store', cli.store], cli.env);
  const m = path.join(cli.dir, 'mnt');
  mkdirSync(m);
  const expect = (what: string, r: RunResult, code: number, line: RegExp) => {
    t.equal(r.code, code, `${what}: exit ${code}`);
    t.match(r.stderr, line, `${what}: says why`);
    t.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line`);
  };
  writeFileSync(path.join(m, 'stray'), 'x');
  expect('a non-empty mountpoint', await veilfs(['mount', 'mine', m], cli.env), 1, /mountpoint .* is not empty/);
  unlinkSync(path.join(m, 'stray'));
  expect('a store that is not a vault', await veilfs(['mount', '--store', path.join(cli.dir, 'nothing'), m], cli.env), 1, /no vault at .*veilfs init/);
  expect('an unknown vault name', await veilfs(['mount', 'nosuch', m], cli.env), 1, /no vault named "nosuch"/);
  expect('a wrong passphrase', await veilfs(['mount', 'mine', m], { ...cli.env, VEILFS_PASSPHRASE: 'wrong' }), 2, /wrong passphrase/);
  expect('a bad option', await veilfs(['mount', 'mine', m, '--cache-size', 'lots'], cli.env), 1, /--cache-size: invalid size/);
  const gone = path.join(cli.dir, 'gone');
  mkdirSync(gone);
  expect('a current directory that went away', await run('sh', ['-c', `cd ${gone} && rmdir ${gone} && exec ${BIN} status`], cli.env), 1, /current directory no longer exists/);
  if (root) {
    const drive = await mountDrive(t, cli, m);
    expect('an already mounted mountpoint', await veilfs(['mount', 'mine', m], cli.env), 1, /already mounted/);
    await drive.unmount();
    expect('no /dev/fuse', await run('unshare', ['-m', 'sh', '-c', `mount -t tmpfs none /dev && exec ${BIN} mount mine ${m}`], cli.env), 69, /\/dev\/fuse is missing/);
    // A full disk under the journal is ENOSPC for the writer, not EIO.
    const small = path.join(cli.dir, 'small');
    mkdirSync(small);
    t.equal((await sh(`mount -t tmpfs -o size=6m tmpfs ${small}`)).code, 0);
    t.teardown(() => sh(`umount ${small}`).then(() => {}));
    const full = await mountDrive(t, cli, m, ['--cache-dir', small]);
    const dd = await sh(`dd if=/dev/zero of=${m}/big bs=1M count=24 conv=fsync 2>&1`);
    t.not(dd.code, 0, 'the copy fails');
    t.match(dd.stdout, /No space left on device/, 'with ENOSPC');
    t.match(full.stderr(), /no space left for the local journal/, 'and the log says where');
    await full.unmount();
  }
});

t.test('an unmount that waits on a full store says why; Ctrl-C stops the wait, --leave-pending the daemon, and the next mount uploads the rest', { skip: !root && 'needs root (a small tmpfs for the store)' }, async (t) => {
  const cli = cliEnv(t);
  const small = path.join(cli.dir, 'small');
  mkdirSync(small);
  t.equal((await sh(`mount -t tmpfs -o size=8m tmpfs ${small}`)).code, 0);
  t.teardown(() => sh(`umount ${small}`).then(() => {}));
  const full = { ...cli, store: path.join(small, 'store') };
  t.equal((await veilfs(['init', '--store', full.store], cli.env)).code, 0);
  const m = path.join(cli.dir, 'mnt');
  const drive = await mountDrive(t, full, m);
  const data = path.join(cli.dir, 'data.bin');
  t.equal((await sh(`head -c 20000000 /dev/urandom > ${data} && cp ${data} ${m}/data.bin`)).code, 0, 'the copy goes into the journal');

  const waiting = spawn(BIN, ['unmount', m], { env: cli.env, stdio: ['ignore', 'ignore', 'pipe'] });
  let said = '';
  waiting.stderr!.on('data', (d) => (said += d));
  const waitedOut = new Promise<number | null>((resolve) => waiting.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while (!/the store refuses uploads/.test(said) && Date.now() < deadline && waiting.exitCode === null) await new Promise((r) => setTimeout(r, 100));
  t.match(said, /^veilfs: the store refuses uploads \(store is full .*\); \d+ changes? \(.*B\) wait in the journal, .*press Ctrl-C to stop waiting$/m, 'the wait says what it waits for, and why');
  await new Promise((r) => setTimeout(r, 2000));
  t.equal(said.match(/the store refuses uploads/g)?.length, 1, 'said once, not once per object that fails');
  t.notOk(await isMounted(m), 'the drive is unmounted meanwhile');
  waiting.kill('SIGINT');
  t.equal(await waitedOut, 130, 'Ctrl-C ends the wait');
  t.match(said, /stopped waiting; the daemon \(pid \d+\) goes on storing \d+ changes? .*"veilfs unmount --leave-pending /, 'and says what goes on, and how to stop it');
  t.equal(drive.child.exitCode, null, 'the daemon still runs, retrying');

  const leave = await veilfs(['unmount', '--leave-pending', m], cli.env);
  t.equal(leave.code, 0, `unmount --leave-pending ${leave.stderr}`);
  t.match(leave.stderr, /left \d+ changes? \(.*\) in the journal; the next mount of this vault uploads them/);
  t.equal(await drive.exited, 1, 'the daemon stopped without waiting for the store');

  // Space again: the next mount (at once: the lock of the daemon that just exited is no obstacle) uploads the journal.
  t.equal((await sh(`mount -o remount,size=128m ${small}`)).code, 0);
  const again = await mountDrive(t, full, m);
  t.equal((await sh(`cmp ${data} ${m}/data.bin`)).code, 0, 'the data is all there');
  const done = await again.unmount();
  t.equal(done.code, 0, `a plain unmount now finishes ${done.stderr}`);
  t.match(again.stderr(), /everything is stored/);
  const check = await veilfs(['fsck', '--store', full.store], cli.env);
  t.equal(check.code, 0, `the store holds a sound vault ${check.stdout}${check.stderr}`);
});

t.test('clearing ~/.cache while mounted loses nothing: the journal and the pid file are made again, and unmount still waits for the uploads', async (t) => {
  const cli = cliEnv(t);
  t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0);
  const m = path.join(cli.dir, 'mnt');
  const drive = await mountDrive(t, cli, m);
  const data = path.join(cli.dir, 'data.bin');
  t.equal((await sh(`head -c 100000000 /dev/urandom > ${data} && cp ${data} ${m}/a`)).code, 0);
  // What a user clearing space does; the runtime directory (pid file, control socket) goes too, as on a machine without one.
  rmSync(cli.env.XDG_CACHE_HOME!, { recursive: true, force: true });
  rmSync(cli.env.XDG_RUNTIME_DIR!, { recursive: true, force: true });
  t.equal((await sh(`cp ${data} ${m}/b && echo small > ${m}/c && sync ${m}/c`)).code, 0, 'writes after it are acknowledged');
  t.match(drive.stderr(), /journal: its directory .* was removed while in use, and is made again/, 'the log says what happened');
  // The daemon registers again, and serves its control socket again, at its next heartbeat (every 2 s).
  await new Promise((r) => setTimeout(r, 2500));
  const seen = await veilfs(['status', m], cli.env);
  t.equal(seen.code, 0, `veilfs status reaches the mount again ${seen.stderr}`);
  t.match(drive.stderr(), /the control socket .* was removed while mounted; it is served again/);
  const done = await veilfs(['unmount', m], cli.env);
  t.equal(done.code, 0, `unmount ${done.stderr}`);
  t.equal(await Promise.race([drive.exited, new Promise((r) => setTimeout(() => r('still running'), 5000))]), 0, 'unmount waited for the daemon, which exited cleanly');
  t.match(drive.stderr(), /everything is stored/);
  t.notMatch(drive.stderr(), /\n\s+at /, 'no stack trace');
  const again = await mountDrive(t, cli, m);
  t.equal((await sh(`cmp ${data} ${m}/a && cmp ${data} ${m}/b && cat ${m}/c`)).stdout, 'small\n', 'every file is whole');
  t.equal((await again.unmount()).code, 0);
  const check = await veilfs(['fsck', '--store', cli.store], cli.env);
  t.equal(check.code, 0, `fsck ${check.stdout}${check.stderr}`);
});

t.test('a drive in use is not unmounted from under its programs, unless asked to (--lazy)', async (t) => {
  const cli = cliEnv(t);
  t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0);
  const m = path.join(cli.dir, 'mnt');
  const drive = await mountDrive(t, cli, m);
  const writer = spawn('bash', ['-c', `exec 3>${m}/log; for i in $(seq 1 30); do echo "line $i" >&3 || exit 1; sleep 0.1; done`], { stdio: 'ignore' });
  const wrote = new Promise<number | null>((resolve) => writer.on('exit', (code) => resolve(code)));
  t.teardown(() => writer.kill('SIGKILL'));
  await new Promise((r) => setTimeout(r, 500));
  const busy = await veilfs(['unmount', m], cli.env);
  t.equal(busy.code, 1, 'refused');
  t.match(busy.stderr, new RegExp(`is busy: in use by bash \\(pid ${writer.pid}\\).*veilfs unmount --lazy`), `says by whom, and what else to do: ${busy.stderr.trim()}`);
  t.ok(await isMounted(m), 'still mounted');
  t.equal(await wrote, 0, 'the program writing there went on to its end');
  const idle = await veilfs(['unmount', m], cli.env);
  t.equal(idle.code, 0, `once idle it unmounts ${idle.stderr}`);
  t.equal(await drive.exited, 0, 'and the daemon is gone when unmount returns');
  t.match(drive.stderr(), /everything is stored/);

  const again = await mountDrive(t, cli, m);
  t.equal((await sh(`wc -l < ${m}/log`)).stdout.trim(), '30', 'every line is there');
  if (root) {
    mkdirSync(path.join(m, 'inner'));
    t.equal((await sh(`mount -t tmpfs none ${m}/inner`)).code, 0);
    const nested = await veilfs(['unmount', m], cli.env);
    t.equal(nested.code, 1, 'a drive with a filesystem mounted inside it stays mounted');
    t.match(nested.stderr, /is busy: .*\/inner is mounted inside it; unmount that first/);
    t.equal((await sh(`umount ${m}/inner`)).code, 0);
  }
  const holder = spawn('sleep', ['30'], { cwd: m, stdio: 'ignore' });
  t.teardown(() => holder.kill('SIGKILL'));
  await new Promise((r) => setTimeout(r, 200));
  const lazy = await veilfs(['unmount', '--lazy', m], cli.env);
  t.equal(lazy.code, 0, `--lazy detaches it all the same ${lazy.stderr}`);
  t.notOk(await isMounted(m));
  t.equal(await again.exited, 0);
});

t.test('an unmount whose daemon gives up on a store that takes nothing fails, saying what stays in the journal', async (t) => {
  const cli = cliEnv(t);
  t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0);
  const m = path.join(cli.dir, 'mnt');
  const faults = path.join(cli.dir, 'faults.json');
  writeFileSync(faults, '{}');
  const broken = { ...cli, env: { ...cli.env, VEILFS_FAULTS: `@${faults}` } };
  // --store-timeout 5: the daemon gives up after 10 s without progress.
  const drive = await mountDrive(t, broken, m, ['--store-timeout', '5']);
  writeFileSync(faults, JSON.stringify({ down: true }));
  const data = path.join(cli.dir, 'data.bin');
  t.equal((await sh(`head -c 3000000 /dev/urandom > ${data} && cp ${data} ${m}/a`)).code, 0, 'writes go to the journal');
  const done = await veilfs(['unmount', m], cli.env);
  t.equal(done.code, 75, `the unmount fails as the store does (exit 75) ${done.stderr}`);
  t.match(done.stderr, /the store did not take \d+ changes? \(.*\) \(.*\); they stay in this machine's journal, and the next mount of this vault uploads them/);
  t.equal(await drive.exited, 0);
  writeFileSync(faults, '{}');
  const again = await mountDrive(t, broken, m);
  t.equal((await sh(`cmp ${data} ${m}/a`)).code, 0, 'the next mount has it all');
  const last = await veilfs(['unmount', m], cli.env);
  t.equal(last.code, 0, `and stores it ${last.stderr}`);
  t.match(again.stderr(), /everything is stored/);
});

const s3 = s3Skip();
t.test('S3: a missing bucket and refused credentials say so', { skip: s3 && `skipped: ${s3}` }, async (t) => {
  const cli = cliEnv(t, 's3');
  const m = path.join(cli.dir, 'mnt');
  mkdirSync(m);
  const missing = await veilfs(['mount', '--store', `s3://no-such-bucket-${process.pid}/vault`, m], cli.env);
  t.equal(missing.code, 75, 'exit 75 (store)');
  t.match(missing.stderr, /S3 bucket no-such-bucket-\d+ does not exist/);
  const refused = await veilfs(['init', '--store', cli.store], { ...cli.env, AWS_SECRET_ACCESS_KEY: 'not-the-secret' });
  t.equal(refused.code, 75, 'exit 75 (store)');
  t.match(refused.stderr, /S3 refused the credentials \((SignatureDoesNotMatch|HTTP 403)\): check AWS_ACCESS_KEY_ID/);
  t.notMatch(refused.stderr, /not-the-secret/, 'the secret is never shown');
});
