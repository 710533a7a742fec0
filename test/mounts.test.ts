import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import t from 'tap';
import { controlSocket, daemonPid, registerDaemon, unregisterDaemon } from '../src/fuse/mounts.js';
import { processRunning } from '../src/util/processes.js';

// `veilfs unmount` waits for the process daemonPid names: a daemon it fails
// to find is detached at once while it still stores, and a stranger it takes
// for the daemon is waited for (and signalled) for nothing.
t.test('the pid file names the daemon by pid and start time', async (t) => {
  const runtime = mkdtempSync(path.join(tmpdir(), 'veilfs-run-'));
  const saved = process.env.XDG_RUNTIME_DIR;
  process.env.XDG_RUNTIME_DIR = runtime;
  t.teardown(() => {
    if (saved === undefined) delete process.env.XDG_RUNTIME_DIR;
    else process.env.XDG_RUNTIME_DIR = saved;
    rmSync(runtime, { recursive: true, force: true });
  });
  const mnt = path.join(runtime, 'mnt');
  const pidFile = controlSocket(mnt).replace(/\.sock$/, '.pid');

  await registerDaemon(mnt);
  t.equal(await daemonPid(mnt), process.pid, 'the registering process is found');

  // A process whose command line says nothing of veilfs, as a daemon run
  // from a copy under another name would be: found by its start time.
  const other = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.teardown(() => other.kill('SIGKILL'));
  await new Promise((resolve) => other.once('spawn', resolve));
  const pid = other.pid!;
  t.notMatch(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /veilfs/);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const started = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  writeFileSync(pidFile, `${pid} ${started}\n`);
  t.equal(await daemonPid(mnt), pid, 'a daemon whatever its command line');

  writeFileSync(pidFile, `${pid} ${Number(started) + 1}\n`);
  t.equal(await daemonPid(mnt), undefined, 'another process that got the same pid later is not the daemon');

  // The format before start times: the command line has to name veilfs.
  writeFileSync(pidFile, `${pid}\n`);
  t.equal(await daemonPid(mnt), undefined, 'an old pid file naming a process that is not veilfs');

  writeFileSync(pidFile, `${pid} ${started}\n`);
  other.kill('SIGKILL');
  await new Promise((resolve) => other.once('exit', resolve));
  t.equal(await processRunning(pid), false, 'the process is gone');
  t.equal(await daemonPid(mnt), undefined, 'a daemon that exited is not found');

  await unregisterDaemon(mnt);
  t.equal(await daemonPid(mnt), undefined, 'nothing once unregistered');
});
