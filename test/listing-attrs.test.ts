import t, { type Test } from 'tap';
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { cliEnv, driveStatus as status, mountDrive, run, veilfs } from './lib/cli.js';
import { fuseRequests } from './lib/fuse-trace.js';

/*
 * Directory listings carry each entry's attributes (READDIRPLUS) to a
 * process that reads attributes, sparing a lookup per entry, and names
 * only to one that does not (find -name), which would otherwise make the
 * daemon load every inode it lists. Either way the listing and the
 * attributes must be exactly what was written.
 */

/** ls -ln of a directory without its "total" line (blocks are the filesystem's own), times to the nanosecond (or none). */
const longListing = (dir: string, times = '%s.%N') => run(`ls -lnA --time-style=+${times} ${dir} | tail -n +2`);

t.test('a process that reads attributes gets them in the listing; find -name gets names only', async (t) => {
  const cli = cliEnv(t);
  t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0);
  const ref = path.join(cli.dir, 'ref');
  const m = path.join(cli.dir, 'mnt');
  mkdirSync(ref);
  // 400 files of distinct sizes and modes, a directory, a symlink, a hard link, a FIFO.
  await run(`cd ${ref} && for i in $(seq 1 400); do head -c $i /dev/zero > f$i; done && chmod 600 f1?? && chmod 755 f2?? && mkdir sub && echo x > sub/inner && ln -s f7 link && ln f9 hard && mkfifo fifo && touch -d '2001-02-03 04:05:06.123456789' f3`);
  let drive = await mountDrive(t, cli, m);
  await run(`cp -a ${ref} ${m}/top`);
  t.equal((await drive.unmount()).code, 0);
  // A fresh mount: the kernel holds nothing yet.
  drive = await mountDrive(t, cli, m);

  t.equal((await run(`find ${m}/top -name 'f*' | wc -l`)).trim(), '401', 'find -name lists every name');
  const afterFind = (await status(cli, m)).memory!.kernelInodes;
  t.ok(afterFind < 20, `find -name took names only: the kernel holds ${afterFind} inodes, not the 400 it listed`);

  const trace = fuseRequests(m);
  let listing = '';
  const count = async () => void (listing = await longListing(`${m}/top`));
  const requests = trace ? await trace.count(count) : (await count(), undefined);
  t.equal(listing, await longListing(ref), 'ls -l shows every name, size, mode, owner, link count and time as written');
  const afterLs = (await status(cli, m)).memory!.kernelInodes;
  t.ok(afterLs >= 403, `the listing handed the kernel every entry (403 inodes, with top and a hard link): it holds ${afterLs}`);
  if (requests) {
    t.ok((requests.get('READDIRPLUS') ?? 0) >= 1, 'the listing carried attributes');
    t.ok((requests.get('LOOKUP') ?? 0) <= 2, `ls -l of 404 entries sent ${requests.get('LOOKUP') ?? 0} lookups`);
    t.ok((requests.get('GETXATTR') ?? 0) <= 3, `and ${requests.get('GETXATTR') ?? 0} getxattr: ACLs and labels are unsupported, which ls remembers`);
  } else {
    t.comment('no fuse tracepoints here: request counts not checked');
  }

  // Attributes handed out in a listing follow later changes.
  await run(`echo more >> ${m}/top/f5 && chmod 640 ${m}/top/f6 && echo more >> ${ref}/f5 && chmod 640 ${ref}/f6`);
  t.equal(await run(`stat -c '%s %a' ${m}/top/f5 ${m}/top/f6`), '10 644\n6 640\n', 'a write and a chmod after the listing show');
  t.equal(await longListing(`${m}/top`, 'same'), await longListing(ref, 'same'), 'and the next listing agrees with the reference');
  t.equal(await run(`cat ${m}/top/sub/inner ${m}/top/link | wc -c`), '9\n', 'entries reached through a listing open and read');
  t.equal((await drive.unmount()).code, 0);
});

// Entries whose attributes the kernel was handed lately (made through it,
// not changed since) are listed without them (KernelNodes.attrsFresh); the
// others with them. Leaving out one the kernel has dropped would cost a
// GETATTR per entry, and so would show in the count below.
/** A fresh vault mounted, and a plain reference directory beside it: make runs on both (in that directory). */
async function mountedWithReference(t: Test, make: (dir: string) => Promise<unknown>) {
  const cli = cliEnv(t);
  t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0);
  const ref = path.join(cli.dir, 'ref');
  const m = path.join(cli.dir, 'mnt');
  const drive = await mountDrive(t, cli, m);
  mkdirSync(ref);
  await make(ref);
  await make(m);
  return { ref, m, drive };
}

t.test('a listing right after making the files: exact, and no request per entry', async (t) => {
  // Made, then: written (the kernel drops size and times), chmod (it gets the new ones), linked, renamed.
  const make = (dir: string) => run(`mkdir ${dir}/top && cd ${dir}/top && seq -f 'f%.0f' 1 300 | xargs touch && for i in $(seq 5 14); do echo data$i >> f$i; done && chmod 600 f2? && ln f30 hard && mv f31 g31 && mkdir sub && touch sub/inner`);
  const { ref, m, drive } = await mountedWithReference(t, make);
  const listing = (dir: string) => run(`cd ${dir} && find top -printf '%p %s %m %n %y\\n' | sort`);
  const trace = fuseRequests(m);
  let seen = '';
  const requests = trace ? await trace.count(async () => void (seen = await listing(m))) : (seen = await listing(m), undefined);
  t.equal(seen, await listing(ref), 'every name, size, mode, link count and type as on the reference');
  if (requests) {
    t.ok((requests.get('READDIRPLUS') ?? 0) >= 1, 'the listing went by READDIRPLUS');
    t.equal(requests.get('LOOKUP') ?? 0, 0, 'no lookups');
    // top and sub themselves changed (names were made in them): find stats those two.
    t.ok((requests.get('GETATTR') ?? 0) <= 2, `${requests.get('GETATTR') ?? 0} getattr for 304 entries`);
  } else {
    t.comment('no fuse tracepoints here: request counts not checked');
  }
  t.equal((await drive.unmount()).code, 0);
});

// A walk stats each directory it enters, and the kernel drops a
// directory's times whenever it lists it or a name in it changes. The
// listing of its parent hands them back (the daemon has the inode in
// memory), so a walk costs no GETATTR per directory, and what it shows
// is current.
t.test('a walk of many directories, again and after changes: no GETATTR per directory, and current times', async (t) => {
  const make = (dir: string) => run(`mkdir ${dir}/top && cd ${dir}/top && for d in $(seq 1 60); do mkdir d$d && touch d$d/a d$d/b && mkdir d$d/s; done`);
  const { ref, m, drive } = await mountedWithReference(t, make);
  const walk = (dir: string) => run(`cd ${dir} && find top -printf '%p %m %n %y\\n' | sort`);
  const trace = fuseRequests(m);
  const walkCounted = async () => {
    let seen = '';
    const requests = trace ? await trace.count(async () => void (seen = await walk(m))) : (seen = await walk(m), undefined);
    t.equal(seen, await walk(ref), 'every directory and file, with its mode, link count and type, as on the reference');
    return requests;
  };
  const getattrs = (requests: Map<string, number> | undefined, when: string) => {
    if (!requests) return t.comment('no fuse tracepoints here: request counts not checked');
    // top itself: its own listing dropped its times, and the root's listing is not part of the walk.
    t.ok((requests.get('GETATTR') ?? 0) <= 2, `${when}: ${requests.get('GETATTR') ?? 0} getattr for 121 directories`);
    t.equal(requests.get('LOOKUP') ?? 0, 0, `${when}: no lookups`);
  };
  getattrs(await walkCounted(), 'right after making them');
  getattrs(await walkCounted(), 'walked again');
  // Names made in some directories after the walks: their times and link counts change.
  const mtime = async (p: string) => Number((await run(`stat -c %.9Y ${m}/top/${p}`)).trim());
  const before = await mtime('d5');
  const change = (dir: string) => run(`cd ${dir}/top && touch d5/new && mkdir d7/t && rmdir d9/s`);
  await change(ref);
  await change(m);
  getattrs(await walkCounted(), 'after changes in three of them');
  const after = await mtime('d5');
  t.ok(after > before && after <= await mtime('d5/new'), `the walk brought the directory's new time (${before} -> ${after})`);
  t.equal((await drive.unmount()).code, 0);
});
