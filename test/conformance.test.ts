import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliEnv, mountDrive, sh, veilfs } from './lib/cli.js';
import { CASES, type Step } from './lib/conformance-cases.js';
import { tempDir } from './lib/tmp.js';

/*
 * POSIX conformance against the kernel's own ext4: the same system calls,
 * as several users, on a plain directory and on a mount (--allow-other),
 * and every result (value, errno, owner, mode, link count, inode identity,
 * all three times) must agree. Times are compared exactly when set
 * explicitly and as "moved / did not move" otherwise.
 */
const PROBE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib/posix_probe.py');
type Result = { ok?: unknown; err?: string };

if (process.getuid?.() !== 0) {
  t.plan(0, 'needs root: switches users and mounts');
} else {
  t.test('system calls on the mount give what they give on ext4', async (t) => {
    const { ref, mnt } = await mountedPair(t, ['--allow-other']);
    t.ok(mountOptionsOf(mnt).includes('default_permissions'), 'several users: the kernel checks permissions');
    await compareCases(t, ref, mnt, (steps) => steps);

    // Where the mount differs from ext4 on purpose: ACLs are not kept (the
    // kernel would not enforce them), so they are unsupported, as on ext4
    // mounted without them; so are SELinux labels while no file has one.
    // ls -l stops asking for either once told so.
    mkdirSync(path.join(mnt, 'unsupported'));
    chmodSync(path.join(mnt, 'unsupported'), 0o777);
    const [, acl, defaultAcl, label] = await probe(path.join(mnt, 'unsupported'), [
      ['alice', 'creat', 'f', 0o644], ['alice', 'getxattr', 'f', 'system.posix_acl_access', 100],
      ['alice', 'getxattr', '.', 'system.posix_acl_default', 100], ['alice', 'getxattr', 'f', 'security.selinux', 100],
    ] as Step[]);
    t.same([acl, defaultAcl, label], [{ err: 'ENOTSUP' }, { err: 'ENOTSUP' }, { err: 'ENOTSUP' }], 'ACLs and absent SELinux labels are unsupported');
  });

  // Mounted by root without --allow-other, only root reaches the mount and
  // the daemon answers access(2) itself (mount.ts says why): every case, all
  // of its calls made by root, must still give what ext4 gives root.
  t.test('as root on a mount only root reaches, system calls give what they give on ext4', async (t) => {
    const { ref, mnt } = await mountedPair(t, []);
    t.notOk(mountOptionsOf(mnt).includes('default_permissions'), 'root alone: the daemon checks access(2)');
    await compareCases(t, ref, mnt, (steps) => steps.map(([, ...call]) => ['root', ...call] as Step));
  });

  t.test('cp -a, rsync -aX and tar --xattrs keep modes, owners, times and xattrs, also across a remount', async (t) => {
    const cli = cliEnv(t);
    t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0);
    const src = path.join(cli.dir, 'src');
    await makeRichTree(src);
    const m = path.join(cli.dir, 'mnt');
    let drive = await mountDrive(t, cli, m);
    t.equal((await sh(`cp -a ${src} ${m}/cp`)).code, 0, 'cp -a');
    t.equal((await sh(`rsync -aHX ${src}/ ${m}/rsync/`)).code, 0, 'rsync -aHX');
    t.equal((await sh(`tar --xattrs --xattrs-include='*' -C ${src} -cf - . | (mkdir ${m}/tar && tar --xattrs --xattrs-include='*' -C ${m}/tar -xpf -)`)).code, 0, 'tar --xattrs');
    const want = await describeTree(src);
    const check = async (when: string) => {
      for (const copy of ['cp', 'rsync', 'tar']) t.equal(await describeTree(path.join(m, copy)), want, `${copy}: ${when}`);
      const again = await sh(`rsync -aiHX ${src}/ ${m}/rsync/`);
      t.equal(again.stdout, '', `a second rsync finds nothing to do ${when}`);
    };
    await check('right after copying');
    t.equal((await drive.unmount()).code, 0);
    drive = await mountDrive(t, cli, m);
    await check('after a remount');
    t.equal((await drive.unmount()).code, 0);
  });
}

async function compareCases(t: Test, ref: string, mnt: string, as: (steps: Step[]) => Step[]): Promise<void> {
  for (const [name, original] of Object.entries(CASES)) {
    const steps = as(original);
    const dir = name.replace(/[^a-z]+/gi, '-').slice(0, 40);
    const expected = normalize(await probe(path.join(ref, dir), steps));
    const actual = normalize(await probe(path.join(mnt, dir), steps));
    t.test(name, async (t) => {
      steps.forEach((step, i) => t.same(actual[i], expected[i], `${i}: ${JSON.stringify(step).slice(0, 120)}`));
    });
  }
}

/** The options /proc/mounts shows for a mount point. */
function mountOptionsOf(mnt: string): string[] {
  const line = readFileSync('/proc/self/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === mnt);
  return line?.split(' ')[3]?.split(',') ?? [];
}

async function mountedPair(t: Test, mountArgs: string[]): Promise<{ ref: string; mnt: string }> {
  const cli = cliEnv(t);
  // Other users must reach both trees.
  chmodSync(cli.dir, 0o755);
  const ref = path.join(cli.dir, 'ext4');
  mkdirSync(ref, { mode: 0o777 });
  t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0, 'init');
  const mnt = path.join(cli.dir, 'mnt');
  await mountDrive(t, cli, mnt, mountArgs);
  for (const root of [ref, mnt]) {
    chmodSync(root, 0o777);
    for (const name of Object.keys(CASES)) {
      const dir = path.join(root, name.replace(/[^a-z]+/gi, '-').slice(0, 40));
      mkdirSync(dir);
      chmodSync(dir, 0o777);
    }
  }
  return { ref, mnt };
}

function probe(root: string, steps: Step[]): Promise<Result[]> {
  return new Promise((resolve, reject) => {
    const child = execFile('python3', [PROBE], { maxBuffer: 64 * 1024 * 1024, timeout: 300_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`probe failed: ${stderr || err.message}`));
      else resolve(JSON.parse(stdout) as Result[]);
    });
    child.stdin!.end(JSON.stringify({ root, steps }));
  });
}

/**
 * Inode numbers become the order of first sight; a time far from now (set
 * explicitly) stays exact, a recent one becomes whether it moved since the
 * last look at the same inode.
 */
function normalize(results: Result[]): Result[] {
  const inos = new Map<number, string>();
  const seen = new Map<string, number>();
  const now = Date.now() * 1e6;
  return results.map((r) => {
    const st = r.ok as Record<string, unknown> | undefined;
    if (!st || typeof st !== 'object' || Array.isArray(st) || !('ino' in st)) return r;
    const ino = st.ino as number;
    if (!inos.has(ino)) inos.set(ino, `inode ${inos.size + 1}`);
    const token = inos.get(ino)!;
    const out: Record<string, unknown> = { ...st, ino: token };
    for (const field of ['atime', 'mtime', 'ctime']) {
      const value = st[field] as number;
      if (Math.abs(value - now) > 86_400e9) continue;
      const key = `${token} ${field}`;
      const before = seen.get(key);
      out[field] = before === undefined ? 'recent' : value > before ? 'moved' : value === before ? 'kept' : 'went back';
      seen.set(key, value);
    }
    return { ok: out };
  });
}

/** A small tree with every kind of entry, odd modes, owners, times to the nanosecond, xattrs and hard links. */
async function makeRichTree(src: string): Promise<void> {
  mkdirSync(path.join(src, 'dir/sub'), { recursive: true });
  writeFileSync(path.join(src, 'dir/file'), 'content\n');
  writeFileSync(path.join(src, 'exec'), '#!/bin/sh\n');
  const steps = [
    `cd ${src}`,
    'chmod 4755 exec', 'chmod 2750 dir/sub', 'chown 1001:3000 dir/file', 'ln dir/file hardlink',
    'ln -s dir/file symlink', 'ln -s /nowhere dangling', 'mkfifo fifo', 'mknod chr c 1 3',
    "setfattr -n user.colour -v blue dir/file", "setfattr -n user.empty dir", "setfattr -n trusted.secret -v 42 exec",
    "setfattr -n user.bin -v 0x00ff10 exec",
    // Every time set: rsync leaves a symlink's time alone when it is in the same second as the copy's (on ext4 too).
    "touch -h -d '1969-07-20 20:17:40.123456789' dangling", "touch -h -d '2003-04-05 06:07:08.25' symlink",
    "touch -m -d '2001-02-03 04:05:06.987654321' dir/file", "touch -a -d '2099-12-31 23:59:59.5' dir/file",
    "touch -d '1999-01-01 00:00:00.000000001' fifo chr dir/sub dir exec",
  ];
  const made = await sh(steps.join(' && '));
  if (made.code !== 0) throw new Error(`could not make the source tree: ${made.stderr}`);
}

/** Everything a faithful copy keeps (not atime: cp and tar read the source). */
async function describeTree(root: string): Promise<string> {
  const listing = await sh(`cd ${root} && { find . -mindepth 1 ! -type d -printf '%p %y %M %U %G %n %s %T@ [%l]\\n'; find . -mindepth 1 -type d -printf '%p %y %M %U %G %n %T@\\n'; } | sort`);
  const inodes = await sh(`cd ${root} && [ "$(stat -c %i hardlink)" = "$(stat -c %i dir/file)" ] && echo same-inode`);
  const xattrs = await sh(`cd ${root} && find . | sort | while read -r f; do getfattr -h -d -m - -e hex "$f" 2>/dev/null; done | grep -v '^$' || true`);
  return [listing.stdout, inodes.stdout, xattrs.stdout].join('--\n');
}
