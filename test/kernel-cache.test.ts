import t from 'tap';
import * as path from 'node:path';
import { cliEnv, mountDrive, run, sh, veilfs } from './lib/cli.js';
import { fuseRequests } from './lib/fuse-trace.js';

/*
 * The kernel remembers that a name stands for nothing, as it remembers
 * names that stand for something, and `mv` renames in one request
 * (renameat2 with RENAME_NOREPLACE reaches the daemon). What the kernel
 * remembers must never hide a name made later, by any kind of call.
 */

t.test('a missing name is asked for once, and every way of making it shows at once', async (t) => {
  const cli = cliEnv(t);
  t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0, 'init');
  const m = path.join(cli.dir, 'mnt');
  const drive = await mountDrive(t, cli, m);
  const trace = fuseRequests(m);
  if (!trace) t.comment('no fuse tracepoints here: request counts not checked');

  const statMissing = () => sh(`for i in 1 2 3 4 5; do stat ${m}/missing; done`);
  let missing = await statMissing();
  if (trace) {
    const requests = await trace.count(async () => (missing = await statMissing()));
    t.equal(requests.get('LOOKUP') ?? 0, 0, 'five more stats of a name found missing sent no lookup');
  }
  t.equal((missing.stderr.match(/No such file or directory/g) ?? []).length, 5, 'and each said the name is missing');

  // Each name below is looked for (and found missing) first, then made.
  const makers: [name: string, how: string, make: string][] = [
    ['n1', 'touch', `touch ${m}/n1`],
    ['n2', 'mkdir', `mkdir ${m}/n2`],
    ['n3', 'ln -s', `ln -s n1 ${m}/n3`],
    ['n4', 'ln', `ln ${m}/n1 ${m}/n4`],
    ['n5', 'mkfifo', `mkfifo ${m}/n5`],
    ['n6', 'mv', `touch ${m}/src && mv ${m}/src ${m}/n6`],
    ['n7', 'a write through >', `echo hi > ${m}/n7`],
  ];
  for (const [name, how, make] of makers) {
    t.not((await sh(`stat ${m}/${name}`)).code, 0, `${name} is missing before ${how}`);
    t.equal((await sh(make)).code, 0, how);
    t.equal((await sh(`stat ${m}/${name}`)).code, 0, `${how}: the name shows right after`);
  }
  t.equal(await run(`ls ${m}`), 'n1\nn2\nn3\nn4\nn5\nn6\nn7\n', 'and the listing has every one');
  t.equal(await run(`cat ${m}/n7`), 'hi\n', 'what was written reads back');

  // A removed name, looked for, and made again.
  t.equal((await sh(`rm ${m}/n1 && ! stat ${m}/n1 2>/dev/null && echo back > ${m}/n1 && cat ${m}/n3`)).stdout, 'back\n', 'a name removed and made again is found, through a symlink too');

  const mv = () => run(`mkdir ${m}/dir && mv ${m}/dir ${m}/dir-moved`);
  if (trace) {
    const requests = await trace.count(mv);
    t.equal(requests.get('RENAME2') ?? 0, 1, 'mv renames with RENAME_NOREPLACE in one request');
    t.equal(requests.get('RENAME') ?? 0, 0, 'and does not fall back to a plain rename');
    t.ok((requests.get('LOOKUP') ?? 0) <= 2, `mkdir and mv looked up ${requests.get('LOOKUP') ?? 0} names (dir and dir-moved)`);
  } else {
    await mv();
  }
  t.equal(await run(`ls ${m} | grep dir`), 'dir-moved\n', 'the directory moved');
  t.equal((await drive.unmount()).code, 0, 'unmount');
});
