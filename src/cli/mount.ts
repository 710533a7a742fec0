import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { openSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { CommandModule } from 'yargs';
import { DEFAULT_CACHE_SIZE, openDrive } from '../drive.js';
import { errorMessage, UserError } from '../errors.js';
import { checkMountpoint, mountFilesystem } from '../fuse/mount.js';
import { heartbeat, isMounted, registerDaemon, unregisterDaemon } from '../fuse/mounts.js';
import { defaultCacheDir } from '../meta/local-state.js';
import { unlockVault } from '../format/vault.js';
import { formatSize } from '../util/size.js';
import { sizeArg, storeFromArgs, storeOptions, type StoreArgs } from './common.js';
import { daemonLog } from './log.js';
import { getPassphrase } from './passphrase.js';
import { daemonExecArgv } from './v8-flags.js';

interface MountArgs extends StoreArgs {
  mountpoint: string;
  cacheSize: string;
  journalSize: string;
  commitInterval: number;
  checkpointInterval: number;
  readOnly: boolean;
  allowOther: boolean;
  daemon: boolean;
}

const DAEMON_CHILD = 'VEILFS_DAEMON_CHILD';
const READY_TIMEOUT_MS = 120_000;

export const mountCommand: CommandModule<object, MountArgs> = {
  command: 'mount <mountpoint>',
  describe: 'Mount a vault as a drive (runs in the foreground until unmounted, unless --daemon)',
  builder: (y) => storeOptions(y)
    .positional('mountpoint', { type: 'string', demandOption: true, describe: 'An empty directory' })
    .option('cache-size', { type: 'string', default: formatSize(DEFAULT_CACHE_SIZE), describe: 'Memory for decrypted blocks (e.g. 64M, 1G)' })
    .option('journal-size', { type: 'string', default: '4G', describe: 'Local disk for changes not yet uploaded; writers wait when it is full' })
    .option('commit-interval', { type: 'number', default: 2, describe: 'Seconds between commits of changes to the store (close and fsync journal them locally at once)' })
    .option('checkpoint-interval', { type: 'number', default: 128, describe: 'Commits between checkpoints of the whole tree (fewer: faster mounts, more: less rewriting)' })
    .option('read-only', { type: 'boolean', default: false, describe: 'Mount read-only' })
    .option('allow-other', { type: 'boolean', default: false, describe: 'Let other users use the mount (needs user_allow_other in /etc/fuse.conf unless root)' })
    .option('daemon', { alias: 'd', type: 'boolean', default: false, describe: 'Detach and return once the mount is live' })
    .example('$0 mount ~/drive', 'mount the default vault on ~/drive') as any,
  handler: async (argv) => {
    const cacheSize = sizeArg('cache-size', argv.cacheSize, 16 * 1024 * 1024);
    const journalBytes = sizeArg('journal-size', argv.journalSize, 64 * 1024 * 1024);
    const passphrase = process.env[DAEMON_CHILD] ? await passphraseFromParent() : await getPassphrase(argv);
    if (argv.daemon && !process.env[DAEMON_CHILD]) {
      // Fail here, in the user's terminal, on a wrong passphrase or a bad mountpoint.
      const store = storeFromArgs(argv);
      await unlockVault(store, passphrase).finally(() => store.close?.());
      return detach(await checkMountpoint(argv.mountpoint), passphrase, argv.cacheDir);
    }
    await runMount(argv, passphrase, cacheSize, journalBytes);
  },
};

/** The detached daemon gets the passphrase through a pipe, not its environment. */
async function passphraseFromParent(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function runMount(argv: MountArgs, passphrase: string, cacheSize: number, journalBytes: number): Promise<void> {
  // Cheap checks first: a bad mountpoint should not cost a key derivation.
  await checkMountpoint(argv.mountpoint);
  const store = storeFromArgs(argv, daemonLog);
  if (!(argv.commitInterval > 0)) throw new UserError('--commit-interval must be a positive number of seconds');
  const drive = await openDrive(store, {
    passphrase, cacheSize, journalBytes, readOnly: argv.readOnly, cacheDir: argv.cacheDir, log: daemonLog,
    syncIntervalMs: argv.commitInterval * 1000,
    checkpointInterval: Math.max(1, Math.floor(argv.checkpointInterval)),
    // Unmount gives up uploading (the journal keeps the rest) when nothing moved for this long.
    drainStallMs: Math.max(10_000, 2 * argv.storeTimeout * 1000),
  });
  const mountpoint = await checkMountpoint(argv.mountpoint).catch(async (err) => {
    await drive.close();
    throw err;
  });
  const mounted = await mountFilesystem(drive.fs, mountpoint, { readOnly: argv.readOnly, allowOther: argv.allowOther, log: daemonLog });
  await registerDaemon(mountpoint);
  const beat = setInterval(() => void heartbeat(mountpoint), 2000);
  beat.unref();
  daemonLog(`mounted ${store.location} at ${mountpoint} (pid ${process.pid})`);
  let signals = 0;
  const stop = (signal: string) => {
    if (++signals > 1) {
      // Everything acknowledged is in the local journal; the next mount uploads it.
      daemonLog(`${signal} again: exiting without waiting for uploads; the journal keeps what is not stored yet`);
      unregisterDaemon(mountpoint).finally(() => process.exit(1));
      return;
    }
    daemonLog(`${signal}: unmounting ${mountpoint}`);
    mounted.unmount().catch((err) => daemonLog(`unmount failed: ${errorMessage(err)}`));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', stop);
  await mounted.gone;
  try {
    const { entries } = drive.backlog();
    if (entries > 0) daemonLog(`unmounted ${mountpoint}; uploading ${entries} pending changes (signal again to leave them in the journal for the next mount)`);
    if (await drive.close()) daemonLog(`unmounted ${mountpoint}; everything is stored`);
  } catch (err) {
    process.exitCode = 1;
    daemonLog(`unmounted ${mountpoint}, but not everything could be stored: ${errorMessage(err)}`);
  } finally {
    await unregisterDaemon(mountpoint);
  }
  process.exit();
}

/** Starts this same command in the background and waits until its mount is live. */
async function detach(mountpoint: string, passphrase: string, cacheDir: string | undefined): Promise<void> {
  const logDir = path.join(cacheDir ?? defaultCacheDir(), 'logs');
  await fs.mkdir(logDir, { recursive: true, mode: 0o700 });
  const logFile = path.join(logDir, `mount-${createHash('sha256').update(mountpoint).digest('hex').slice(0, 12)}.log`);
  const out = openSync(logFile, 'a', 0o600);
  const child = spawn(process.execPath, [...daemonExecArgv(process.execArgv), process.argv[1], ...process.argv.slice(2).filter((a) => a !== '--daemon' && a !== '-d')], {
    detached: true,
    stdio: ['pipe', out, out],
    env: { ...process.env, [DAEMON_CHILD]: '1' },
  });
  child.stdin!.end(passphrase);
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (await isMounted(mountpoint)) {
      child.unref();
      process.stdout.write(`mounted at ${mountpoint} (pid ${child.pid}, log ${logFile})\n`);
      return;
    }
    if (exited !== undefined) {
      const lines = (await fs.readFile(logFile, 'utf8')).trim().split('\n');
      throw new UserError(lines[lines.length - 1]?.replace(/^\S+ veilfs: /, '') || `mount failed (exit ${exited})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGTERM');
  throw new UserError(`the mount did not come up within ${READY_TIMEOUT_MS / 1000} s; see ${logFile}`);
}
