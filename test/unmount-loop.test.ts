import t from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { isMounted } from '../src/fuse/mounts.js';
import { cliEnv, sh, veilfs } from './lib/cli.js';

/*
 * The README's own steps, over and over: mount --daemon, write, df,
 * unmount. Every unmount must return promptly with the daemon gone and
 * the data kept (a shutdown that hung once in five tries is why this
 * exists). VEILFS_UNMOUNT_CYCLES sets the count (CI: 20; 300 by hand).
 */
const CYCLES = Number(process.env.VEILFS_UNMOUNT_CYCLES ?? 20);
const UNMOUNT_LIMIT_MS = 60_000;

t.test(`${CYCLES} cycles of mount --daemon, write, df, unmount`, { timeout: 60_000 + CYCLES * 15_000 }, async (t) => {
  const cli = cliEnv(t);
  t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0, 'init');
  const m = path.join(cli.dir, 'mnt');
  await sh(`mkdir -p ${m}`);
  t.teardown(async () => {
    if (await isMounted(m)) await veilfs(['unmount', m], cli.env);
  });
  let failures = 0;
  for (let i = 1; i <= CYCLES && failures === 0; i++) {
    const mounted = await veilfs(['mount', '--daemon', '--store', cli.store, m], cli.env);
    const pid = Number(/pid (\d+)/.exec(mounted.stdout)?.[1]);
    if (mounted.code !== 0 || !pid) {
      failures++;
      t.fail(`cycle ${i}: mount failed: ${mounted.stderr}`);
      break;
    }
    if (i > 1 && readFileSync(path.join(m, 'last'), 'utf8') !== `cycle ${i - 1}`) {
      failures++;
      t.fail(`cycle ${i}: the previous cycle's file is not there`);
    }
    writeFileSync(path.join(m, 'last'), `cycle ${i}`);
    writeFileSync(path.join(m, `f${i % 5}`), Buffer.alloc(100_000 + i, i));
    if ((await sh(`df ${m} >/dev/null && ls -la ${m} >/dev/null`)).code !== 0) failures++;
    const started = Date.now();
    const unmounted = await veilfs(['unmount', m], cli.env, UNMOUNT_LIMIT_MS);
    const took = Date.now() - started;
    const daemonGone = !existsSync(`/proc/${pid}`) || /\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    if (unmounted.code !== 0 || took >= UNMOUNT_LIMIT_MS || !daemonGone || (await isMounted(m))) {
      failures++;
      t.fail(`cycle ${i}: unmount code ${unmounted.code} after ${took} ms, daemon gone ${daemonGone}: ${unmounted.stderr}`);
    }
  }
  t.equal(failures, 0, `every one of ${CYCLES} unmounts returned, the daemon gone and the data kept`);
});
