import t from 'tap';
import { closeSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { cliEnv, driveStatus as status, mountDrive, run, sh, veilfs } from './lib/cli.js';

/*
 * The daemon keeps an entry for each inode the kernel holds; past its
 * bound it asks the kernel to drop the ones looked up longest ago (Linux
 * 6.18's prune request). With the smallest metadata budget the bound is
 * 512, so a few thousand files push every kind of inode through it: files
 * that are open, a directory that is a shell's cwd, hard links, a
 * directory renamed after its children were dropped. Everything must read
 * back as written, through this mount and the next.
 */
const SMALL = ['--metadata-cache-size', '64K'];

t.test('past its bound the kernel drops inodes; every kind still works, now and after a remount', async (t) => {
  const cli = cliEnv(t);
  t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0);
  const ref = path.join(cli.dir, 'ref');
  const m = path.join(cli.dir, 'mnt');
  mkdirSync(ref);
  // 40 directories of 50 small files: 2,040 inodes, four times the bound.
  await run(`cd ${ref} && for d in $(seq 1 40); do mkdir d$d; (cd d$d && for f in $(seq 1 50); do echo "$d/$f" > f$f; done); done`);
  let drive = await mountDrive(t, cli, m, SMALL);

  const early = await status(cli, m);
  const release = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  const [major, minor] = release.split('.').map(Number);
  if (early.memory?.kernelInodeLimit === null) {
    // Only a kernel from before the prune request may leave the daemon unbounded.
    t.ok(major < 6 || (major === 6 && minor < 18), `Linux ${release} cannot be asked to drop inodes (6.18 and later can)`);
    return;
  }
  t.equal(early.memory?.kernelInodeLimit, 512, 'the smallest metadata budget bounds the kernel to 512 inodes');

  // Held across everything below: an open file, a shell's cwd, a hard link.
  await run(`echo first > ${m}/open.txt && mkdir ${m}/cwd && echo here > ${m}/cwd/inside && echo linked > ${m}/a && ln ${m}/a ${m}/b`);
  const fd = openSync(path.join(m, 'open.txt'), 'r+');
  await run(`cp -a ${ref}/. ${m}/`);
  const after = await status(cli, m);
  const held = after.memory!.kernelInodes;
  t.ok(held <= 512 + 32 && held >= 512 - 2 * 32, `the kernel holds ${held} inodes after 2,040 were made: about the bound of 512, the most recent ones`);

  writeSync(fd, 'written after the kernel dropped its neighbours', 0);
  t.equal(readFileSync(path.join(m, 'open.txt'), 'utf8'), 'written after the kernel dropped its neighbours', 'an open file survives');
  const inCwd = await run(`cd ${m}/cwd && ls ${m}/d1 > /dev/null && cp -a ${ref}/d2 ${m}/d2-again && cat inside && ls | wc -l`);
  t.equal(inCwd, 'here\n1\n', "a shell's cwd survives the drops its own commands cause");
  t.equal(statSync(path.join(m, 'a')).ino, statSync(path.join(m, 'b')).ino, 'both names of a hard link are one inode');
  t.equal(statSync(path.join(m, 'b')).nlink, 2);
  await run(`echo changed > ${m}/b`);
  t.equal(readFileSync(path.join(m, 'a'), 'utf8'), 'changed\n', 'a write through one name reads back through the other');

  const names = (await run(`cd ${m} && find d1 d40 -type f | sort`)).trim().split('\n');
  t.equal(names.length, 100, 'listing directories whose children were dropped finds them all');
  await run(`mv ${m}/d1 ${m}/renamed && mv ${ref}/d1 ${ref}/renamed`);
  t.equal((await sh(`diff -r ${ref} ${m} | grep -v '^Only in ${m}'`)).stdout, '', 'names and contents match the reference after a rename of a dropped directory');
  t.equal(readFileSync(path.join(m, 'renamed', 'f7'), 'utf8'), '1/7\n');

  closeSync(fd);
  t.equal((await drive.unmount()).code, 0, 'unmount');
  drive = await mountDrive(t, cli, m, SMALL);
  t.equal((await sh(`diff -r ${ref} ${m} | grep -v '^Only in ${m}'`)).stdout, '', 'and after a remount');
  t.equal(readFileSync(path.join(m, 'a'), 'utf8'), 'changed\n');
  t.equal(readFileSync(path.join(m, 'open.txt'), 'utf8'), 'written after the kernel dropped its neighbours');
});
