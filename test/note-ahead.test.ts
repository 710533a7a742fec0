import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cliEnv, mountDrive, veilfs } from './lib/cli.js';

/*
 * A change through a file still open for writing (touch, cp -p, tar set
 * times before the close) is journaled right after its reply, so the close
 * that follows waits for less. The commit interval here is long: only that
 * early note can explain a file that outlives a kill -9 of the daemon while
 * it is still open.
 */
t.test('times set through an open file outlive a kill -9 before the close', async (t) => {
  const cli = cliEnv(t);
  t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0);
  const m = path.join(cli.dir, 'mnt');
  const drive = await mountDrive(t, cli, m, ['--commit-interval', '600']);
  const when = new Date('2001-02-03T04:05:06Z');
  const fd = fs.openSync(path.join(m, 'held-open'), 'w');
  fs.futimesSync(fd, when, when);
  t.equal(fs.fstatSync(fd).mtime.getTime(), when.getTime(), 'the mount shows the times at once');
  // The note goes out after the reply: give it a moment, far less than any commit.
  await new Promise((r) => setTimeout(r, 300));
  await drive.crash();
  try {
    fs.closeSync(fd);
  } catch {
    // The daemon is gone: the close cannot flush, which is the point.
  }

  const again = await mountDrive(t, cli, m);
  const st = fs.statSync(path.join(m, 'held-open'), { throwIfNoEntry: false });
  t.ok(st, 'the file created and changed before the kill is there');
  t.equal(st?.mtime.getTime(), when.getTime(), 'with the times set through the open file');
  t.equal(st?.size, 0);
  t.equal((await again.unmount()).code, 0);
});
