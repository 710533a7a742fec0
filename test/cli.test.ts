import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { isMounted } from '../src/fuse/mounts.js';
import { DAEMON_V8_FLAGS } from '../src/cli/v8-flags.js';
import { BIN, cliEnv, mountDrive, sh, veilfs, type CliEnv } from './lib/cli.js';

/** One line on stderr, no stack trace, non-zero exit. */
function clearError(t: Test, r: { code: number; stderr: string }, pattern: RegExp, what: string): void {
  t.not(r.code, 0, `${what}: exit code ${r.code}`);
  t.match(r.stderr, pattern, `${what}: says why`);
  t.equal(r.stderr.trim().split('\n').length, 1, `${what}: one line (${r.stderr.trim()})`);
  t.notMatch(r.stderr, /\n\s+at /, `${what}: no stack trace`);
}

t.test('every command has real --help', async (t) => {
  const cli = cliEnv(t);
  const top = await veilfs(['--help'], cli.env);
  t.equal(top.code, 0);
  for (const cmd of ['init', 'mount', 'unmount', 'passwd', 'fsck', 'gc']) t.match(top.stdout, cmd);
  const expectations: Record<string, RegExp[]> = {
    init: [/--store/, /--block-size/, /--passphrase-file/],
    mount: [/--store/, /--cache-size/, /--read-only/, /--daemon/, /--journal-size/, /--s3-endpoint/, /mountpoint/],
    unmount: [/mountpoint/],
    passwd: [/--new-passphrase-file/],
    fsck: [/--repair/, /--store/],
    gc: [/--min-age/, /--dry-run/],
  };
  for (const [cmd, patterns] of Object.entries(expectations)) {
    const r = await veilfs([cmd, '--help'], cli.env);
    t.equal(r.code, 0, `${cmd} --help`);
    for (const p of patterns) t.match(r.stdout, p, `${cmd} --help mentions ${p}`);
  }
  clearError(t, await veilfs(['frobnicate'], cli.env), /Unknown argument|command/i, 'unknown command');
});

t.test('clear one-line errors for the usual mistakes', async (t) => {
  const cli = cliEnv(t);
  const m = path.join(cli.dir, 'mnt');
  mkdirSync(m);
  clearError(t, await veilfs(['mount', '--store', cli.store, m], cli.env), /no vault at/, 'no vault');
  t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0);
  clearError(t, await veilfs(['init', '--store', cli.store], cli.env), /already exists/, 'init twice');
  clearError(t, await veilfs(['mount', '--store', cli.store, m], { ...cli.env, VEILFS_PASSPHRASE: 'wrong' }), /wrong passphrase/, 'wrong passphrase');
  const noPass = { ...cli.env };
  delete noPass.VEILFS_PASSPHRASE;
  clearError(t, await veilfs(['mount', '--store', cli.store, m], noPass), /no passphrase/, 'no passphrase and no terminal');
  clearError(t, await veilfs(['mount', '--store', cli.store, path.join(cli.dir, 'missing')], cli.env), /does not exist/, 'missing mountpoint');
  writeFileSync(path.join(m, 'file'), 'x');
  clearError(t, await veilfs(['mount', '--store', cli.store, m], cli.env), /not empty/, 'non-empty mountpoint');
  clearError(t, await veilfs(['mount', '--store', cli.store, '--cache-size', 'lots', path.join(cli.dir, 'x')], cli.env), /cache-size/, 'bad size');
  clearError(t, await veilfs(['unmount', m], cli.env), /not mounted/, 'unmount of something not mounted');
  clearError(t, await veilfs(['init', '--store', 'ftp://host/x'], cli.env), /unsupported store/, 'unknown store scheme');
  const noCredentials = { ...cli.env, HOME: cli.dir, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_PROFILE: '' };
  clearError(t, await veilfs(['init', '--store', 's3://bucket/x'], noCredentials), /no S3 credentials/, 'S3 without credentials');
  const m2 = path.join(cli.dir, 'mnt2');
  const drive = await mountDrive(t, cli, m2);
  clearError(t, await veilfs(['mount', '--store', cli.store, m2], cli.env), /already mounted/, 'already mounted');
  await drive.unmount();
});

t.test('--passphrase-file and passwd', async (t) => {
  const cli = cliEnv(t);
  const env = { ...cli.env };
  delete env.VEILFS_PASSPHRASE;
  const oldFile = path.join(cli.dir, 'old');
  const newFile = path.join(cli.dir, 'new');
  writeFileSync(oldFile, 'first passphrase\n');
  writeFileSync(newFile, 'second passphrase\n');
  t.equal((await veilfs(['init', '--store', cli.store, '--passphrase-file', oldFile], env)).code, 0);
  const m = path.join(cli.dir, 'mnt');
  const drive = await mountDrive(t, { ...cli, env: { ...env, VEILFS_PASSPHRASE: 'first passphrase' } }, m);
  writeFileSync(path.join(m, 'kept.txt'), 'kept across passwd');
  await drive.unmount();
  const r = await veilfs(['passwd', '--store', cli.store, '--passphrase-file', oldFile, '--new-passphrase-file', newFile], env);
  t.equal(r.code, 0, `passwd ${r.stderr}`);
  clearError(t, await veilfs(['passwd', '--store', cli.store, '--passphrase-file', oldFile, '--new-passphrase-file', newFile], env), /wrong passphrase/, 'old passphrase no longer works');
  const again = await mountDrive(t, { ...cli, env: { ...env, VEILFS_PASSPHRASE: 'second passphrase' } }, m);
  t.equal((await sh(`cat ${m}/kept.txt`)).stdout, 'kept across passwd', 'data readable with the new passphrase');
  await again.unmount();
});

/** Pids of the detached daemons (mount --daemon's children) serving mountpoint m. */
function daemonsOf(m: string): number[] {
  const out: number[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(m)) continue;
      if (readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes('VEILFS_DAEMON_CHILD=1')) out.push(Number(pid));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** The daemons of m still there after up to 10 s. */
async function daemonsGone(m: string): Promise<number[]> {
  for (let i = 0; i < 100 && daemonsOf(m).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  return daemonsOf(m);
}

/** A new vault and an empty mountpoint, unmounted at teardown should a test leave it mounted. */
async function newVaultAndMountpoint(t: Test): Promise<{ cli: CliEnv; m: string }> {
  const cli = cliEnv(t);
  await veilfs(['init', '--store', cli.store], cli.env);
  const m = path.join(cli.dir, 'mnt');
  mkdirSync(m);
  t.teardown(async () => {
    if (await isMounted(m)) await veilfs(['unmount', m], cli.env);
  });
  return { cli, m };
}

t.test('an install whose native addons were not built: one line saying what to do', async (t) => {
  // The package as it is before `npm ci` built native/: the code, its dependencies, no build.
  const root = path.dirname(path.dirname(BIN));
  const copy = path.join(cliEnv(t).dir, 'unbuilt');
  for (const part of ['bin', 'dist', 'package.json']) cpSync(path.join(root, part), path.join(copy, part), { recursive: true });
  mkdirSync(path.join(copy, 'native'));
  cpSync(path.join(root, 'native', 'binding.gyp'), path.join(copy, 'native', 'binding.gyp'));
  symlinkSync(path.join(root, 'node_modules'), path.join(copy, 'node_modules'));
  const cli = cliEnv(t);
  const unbuilt = (args: string[]) => veilfs(args, cli.env, 120_000, path.join(copy, 'bin', 'veilfs'));
  const notBuilt = (what: string) => new RegExp(`^veilfs: ${what} is not built: run "npm ci" \\(it needs build-essential, python3 and libsodium-dev\\)\n$`);
  const init = await unbuilt(['init', '--store', cli.store]);
  t.equal(init.code, 69, 'init: EX_UNAVAILABLE');
  t.match(init.stderr, notBuilt('the key derivation \\(native/veilfs-scrypt\\.c\\)'), init.stderr.trim());
  // Opening an existing vault: the reason, not "the vault header is damaged".
  t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0);
  const fsck = await unbuilt(['fsck', '--store', cli.store]);
  t.equal(fsck.code, 69, 'fsck: EX_UNAVAILABLE');
  // It reads the vault before it derives a key.
  t.match(fsck.stderr, notBuilt('the local store reader \\(native/veilfs-io\\.c\\)'), fsck.stderr.trim());
});

t.test('mount --daemon whose terminal dies before the key: the early daemon leaves, nothing mounted', async (t) => {
  const cli = cliEnv(t);
  await veilfs(['init', '--store', cli.store], cli.env);
  const m = path.join(cli.dir, 'mnt');
  mkdirSync(m);
  const { VEILFS_PASSPHRASE: _unused, ...env } = cli.env;
  // The passphrase command stands for a user who has not typed it yet.
  const terminal = spawn(BIN, ['mount', '--daemon', '--store', cli.store, '--passphrase-command', 'sleep 30; echo never', m], { env, stdio: 'ignore' });
  t.teardown(() => {
    terminal.kill('SIGKILL');
    for (const pid of daemonsOf(m)) process.kill(pid, 'SIGKILL');
  });
  let waiting: number[] = [];
  for (let i = 0; i < 100 && waiting.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    waiting = daemonsOf(m);
  }
  t.equal(waiting.length, 1, 'the daemon starts while the terminal waits for the passphrase');
  terminal.kill('SIGKILL');
  t.same(await daemonsGone(m), [], 'it leaves once its terminal is gone');
  t.notOk(await isMounted(m), 'nothing was mounted');
});

t.test('a daemon that fails after the key was handed over: the terminal shows its reason and returns', async (t) => {
  const { cli, m } = await newVaultAndMountpoint(t);
  // A file where the vault's journal directory goes: only the daemon, past the key derivation, opens it.
  const { vaultId } = JSON.parse(readFileSync(path.join(cli.store, 'veilfs.json'), 'utf8')) as { vaultId: string };
  const stateDir = path.join(cli.dir, 'cache', 'veilfs', vaultId);
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(path.join(stateDir, 'journal'), 'not a directory');
  const started = Date.now();
  const r = await veilfs(['mount', '--daemon', '--store', cli.store, m], cli.env);
  t.not(r.code, 0, 'the mount fails');
  t.match(r.stderr, /^veilfs: a file is where veilfs keeps a directory \(.*journal\): move it away\n$/, `the daemon's reason reaches the terminal once: ${r.stderr.trim()}`);
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
  t.ok(Date.now() - started < 30_000, 'the terminal returns, not at the 120 s deadline');
  t.notOk(await isMounted(m), 'nothing mounted');
  t.same(await daemonsGone(m), [], 'no daemon left');
});

t.test('--daemon returns once the mount is live; unmount waits for the daemon', async (t) => {
  const { cli, m } = await newVaultAndMountpoint(t);
  const r = await veilfs(['mount', '--daemon', '--store', cli.store, m], cli.env);
  t.equal(r.code, 0, `mount --daemon ${r.stderr}`);
  t.ok(await isMounted(m), 'mounted when the command returns');
  const status = await veilfs(['status', m], cli.env);
  t.equal(status.code, 0, `the daemon answers veilfs status as soon as mount returns ${status.stderr}`);
  const pid = /\(pid (\d+)/.exec(r.stdout)?.[1];
  const daemonArgs = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  const shebang = readFileSync(BIN, 'utf8').split('\n')[0];
  for (const flag of DAEMON_V8_FLAGS) {
    t.ok(daemonArgs.includes(flag), `the daemon runs with ${flag}`);
    t.ok(shebang.split(' ').includes(flag), `bin/veilfs starts node with ${flag}`);
  }
  writeFileSync(path.join(m, 'f'), 'daemon data');
  t.equal((await veilfs(['unmount', m], cli.env)).code, 0);
  t.notOk(await isMounted(m));
  clearError(t, await veilfs(['mount', '--daemon', '--store', cli.store, m], { ...cli.env, VEILFS_PASSPHRASE: 'nope' }), /wrong passphrase/, 'daemon with a wrong passphrase fails in the foreground');
  t.same(await daemonsGone(m), [], 'the daemon started meanwhile is gone after a wrong passphrase');
  t.equal((await veilfs(['mount', '--daemon', '--store', cli.store, m], cli.env)).code, 0);
  t.equal((await sh(`cat ${m}/f`)).stdout, 'daemon data');
  t.equal((await veilfs(['unmount', m], cli.env)).code, 0);
});
