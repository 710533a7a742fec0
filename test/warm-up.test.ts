import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { warmUp } from '../src/fuse/warm-up.js';
import { tempDir } from './lib/tmp.js';

t.test('the warm-up answers every request of its script and leaves nothing behind', async (t) => {
  const parent = tempDir(t);
  const { requests, failures } = await warmUp(parent);
  t.same(failures, [], 'no request of the script failed: every path it means to warm ran to its reply');
  t.ok(requests > 600, `${requests} requests, on new and on reloaded inodes`);
  t.same(readdirSync(parent), [], 'its scratch vault is gone');
});

t.test('a scratch vault a killed daemon left is removed; one of a running daemon is not', async (t) => {
  const parent = tempDir(t);
  const exited = spawn(process.execPath, ['-e', '']);
  const deadPid = await new Promise<number>((resolve) => exited.on('exit', () => resolve(exited.pid!)));
  const running = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
  t.teardown(() => void running.kill('SIGKILL'));
  const left = `veilfs-warm-up-${deadPid}-abc`;
  const live = `veilfs-warm-up-${running.pid}-def`;
  for (const name of [left, live]) {
    mkdirSync(path.join(parent, name, 'store'), { recursive: true });
    writeFileSync(path.join(parent, name, 'store', 'object'), 'x');
  }
  writeFileSync(path.join(parent, 'veilfs-warm-up-notes'), 'not ours to remove');
  const { failures } = await warmUp(parent);
  t.same(failures, []);
  t.same(readdirSync(parent).sort(), [live, 'veilfs-warm-up-notes'].sort());
});

t.test('a warm-up that cannot make its vault says why and does not throw', async (t) => {
  const parent = path.join(tempDir(t), 'a-file');
  writeFileSync(parent, '');
  const { requests, failures } = await warmUp(parent);
  t.equal(requests, 0);
  t.match(failures[0], /warm-up: .*(ENOTDIR|not a directory)/);
});
