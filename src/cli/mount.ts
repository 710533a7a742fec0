import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, promises as fs, writeSync } from 'node:fs';
import type { Readable } from 'node:stream';
import * as path from 'node:path';
import type { CommandModule } from 'yargs';
import { DEFAULT_CACHE_SIZE } from '../cache/default-size.js';
import type { Drive } from '../drive.js';
import type { Mounted } from '../fuse/mount.js';
import { errorMessage, UserError } from '../errors.js';
import { checkMountpoint } from '../fuse/mountpoint.js';
import { controlSocket, heartbeat, leaveOutcome, registerDaemon, unregisterDaemon, type UnmountOutcome } from '../fuse/mounts.js';
import { defaultCacheDir } from '../meta/local-state.js';
import { unlockVault, type DerivedKey, type VaultSecret } from '../format/vault.js';
import { isShareLink } from '../share/link-word.js';
import type { ObjectStore } from '../store/types.js';
import { formatSize } from '../util/size.js';
import { sizeArg, storeFromArgs, storeOptions, type StoreArgs } from './common.js';
import { daemonLog, LOG_LEVELS, rotateLog, setLogLevel, type LogLevel } from './log.js';
import { getPassphrase } from './passphrase.js';
import { daemonExecArgv } from './v8-flags.js';

export interface MountArgs extends StoreArgs {
  /** The first word: a mountpoint, a vault name, or a share link. */
  target: string;
  mountpoint: string;
  cacheSize?: string;
  metadataCacheSize?: string;
  journalSize: string;
  commitInterval: number;
  checkpointInterval: number;
  readOnly: boolean;
  allowOther: boolean;
  daemon: boolean;
  logLevel: LogLevel;
}

export const DAEMON_CHILD = 'VEILFS_DAEMON_CHILD';
/** Tells a detached daemon where its output goes, for `veilfs status`. */
const LOG_FILE_ENV = 'VEILFS_LOG_FILE';
const READY_TIMEOUT_MS = 120_000;
/** A detached daemon's descriptor 3: it writes one line there once its drive is usable. */
const READY_FD = 3;

export const mountCommand: CommandModule<object, MountArgs> = {
  command: 'mount <target> [mountpoint]',
  describe: 'Mount a vault as a drive (runs in the foreground until unmounted, unless --daemon)',
  builder: (y) => storeOptions(y)
    .positional('target', { type: 'string', demandOption: true, describe: 'An empty directory to mount on; or, with a second word, the name of a vault (veilfs vault add) or a share link' })
    .positional('mountpoint', { type: 'string', describe: 'Where to mount the named vault' })
    .option('cache-size', { type: 'string', describe: `Memory for decrypted blocks (e.g. 64M, 1G; default ${formatSize(DEFAULT_CACHE_SIZE)})` })
    .option('metadata-cache-size', { type: 'string', describe: 'Memory for metadata pages in use (format 3; default 1/16 of --cache-size, at least 8M); also bounds the files the kernel holds through the mount to one per 128 bytes of it' })
    .option('journal-size', { type: 'string', default: '4G', describe: 'Local disk for changes not yet uploaded; writers wait when it is full' })
    .option('commit-interval', { type: 'number', default: 2, describe: 'Seconds between commits of changes to the store (sooner once 4096 files changed); a commit or checkpoint due while the drive is busy with reads waits for a pause, at most one more interval (close and fsync journal changes locally at once)' })
    .option('checkpoint-interval', { type: 'number', default: 128, describe: 'Commits between checkpoints of the whole tree (fewer: faster mounts, more: less rewriting)' })
    .option('read-only', { type: 'boolean', default: false, describe: 'Mount read-only' })
    .option('allow-other', { type: 'boolean', default: false, describe: 'Let other users use the mount (needs user_allow_other in /etc/fuse.conf unless root)' })
    .option('daemon', { alias: 'd', type: 'boolean', default: false, describe: 'Detach and return once the mount is live' })
    .option('log-level', { choices: LOG_LEVELS, default: 'info' as LogLevel, describe: 'What the daemon logs: errors only, warnings too (retries), or everything' })
    .example('$0 mount ~/drive', 'mount the default vault on ~/drive')
    .example('$0 mount photos ~/photos', 'mount the vault named photos (veilfs vault add)')
    .example("$0 mount 'https://share.example.org/s/ID#KEY' ~/shared", 'mount a share link read-only') as any,
  handler: async (argv) => {
    setLogLevel(argv.logLevel);
    const cacheSize = sizeArg('cache-size', argv.cacheSize ?? formatSize(DEFAULT_CACHE_SIZE), 16 * 1024 * 1024);
    if (isShareLink(argv.target)) return (await import('./mount-link.js')).mountLink(argv, cacheSize);
    const journalBytes = sizeArg('journal-size', argv.journalSize, 64 * 1024 * 1024);
    const metadataCacheBytes = argv.metadataCacheSize === undefined ? undefined : sizeArg('metadata-cache-size', argv.metadataCacheSize, 64 * 1024);
    if (!(argv.commitInterval > 0)) throw new UserError('--commit-interval must be a positive number of seconds');
    if (process.env[DAEMON_CHILD]) {
      // The terminal that started this daemon derives the key meanwhile.
      const modules = loadMountModules();
      const text = await passphraseFromParent();
      // It went away (Ctrl-C at the prompt, a wrong passphrase) and said so there.
      if (text === '') return;
      const store = storeFromArgs(argv, (m) => daemonLog(m, 'warn'));
      return runMount(await modules, argv, store, secretFromParent(text), cacheSize, journalBytes, metadataCacheBytes);
    }
    // Cheap checks first: a bad mountpoint should not cost a passphrase prompt or a key derivation.
    const mountpoint = await checkMountpoint(argv.mountpoint);
    if (argv.daemon) return mountInBackground(argv, mountpoint);
    const secret = await getPassphrase(argv);
    const store = storeFromArgs(argv, (m) => daemonLog(m, 'warn'));
    // The key derivation (about 0.4 s) runs on libuv's threads while this one loads the modules of the mount.
    const [modules, { derived }] = await Promise.all([loadMountModules(), unlockVault(store, secret)]);
    await runMount(modules, argv, store, derived, cacheSize, journalBytes, metadataCacheBytes);
  },
};

/**
 * What a mount runs on beyond the command line: the drive, FUSE and the
 * control socket. Once loaded, their code is warmed up (warm-up.ts says
 * why) while the key is derived; the mount never waits for that.
 * VEILFS_WARM_UP=0 leaves the code cold, for measuring.
 */
async function loadMountModules() {
  const [drive, fuse, control, warm] = await Promise.all([
    import('../drive.js'), import('../fuse/mount.js'), import('../control/server.js'), import('../fuse/warm-up.js'),
  ]);
  if (process.env.VEILFS_WARM_UP !== '0') {
    void warm.warmUp().then(({ failures }) => {
      if (failures.length) daemonLog(`the first requests may be slower: the warm-up failed (${failures[0]})`);
    });
  }
  return { openDrive: drive.openDrive, mountFilesystem: fuse.mountFilesystem, startControlServer: control.startControlServer };
}
type MountModules = Awaited<ReturnType<typeof loadMountModules>>;

/**
 * The daemon starts first, so that its start (Node, then its modules: about
 * 0.4 s) overlaps the prompt and the key derivation here (about as long);
 * it waits for the key on its standard input. A wrong passphrase or a bad
 * mountpoint fails here, in the user's terminal.
 */
async function mountInBackground(argv: MountArgs, mountpoint: string): Promise<void> {
  const daemon = await startDaemon(mountpoint, argv.cacheDir);
  let derived: DerivedKey;
  try {
    const secret = await getPassphrase(argv);
    const store = storeFromArgs(argv);
    ({ derived } = await unlockVault(store, secret).finally(() => store.close?.()));
  } catch (err) {
    daemon.cancel();
    throw err;
  }
  await daemon.unlock(secretForDaemon(derived));
}

/**
 * The daemon gets the key derived from the passphrase, not the passphrase:
 * the slow derivation ran once already, in the user's terminal. A
 * passphrase is one line, so it never starts with this marker line.
 */
const DERIVED_KEY_LINE = 'veilfs-derived-key\n';

function secretForDaemon(derived: DerivedKey): string {
  return DERIVED_KEY_LINE + JSON.stringify({ kdf: derived.kdf, key: derived.key.toString('base64') });
}

function secretFromParent(text: string): VaultSecret {
  if (!text.startsWith(DERIVED_KEY_LINE)) return text;
  const { kdf, key } = JSON.parse(text.slice(DERIVED_KEY_LINE.length)) as { kdf: string; key: string };
  return { kdf, key: Buffer.from(key, 'base64') };
}

/** The detached daemon gets its secret through a pipe, not its environment. */
export async function passphraseFromParent(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function runMount(
  { openDrive, mountFilesystem, startControlServer }: MountModules, argv: MountArgs, store: ObjectStore,
  passphrase: VaultSecret, cacheSize: number, journalBytes: number, metadataCacheBytes: number | undefined,
): Promise<void> {
  // Unmount and sync give up uploading (the journal keeps the rest) when nothing moved for this long.
  const drainStallMs = Math.max(10_000, 2 * argv.storeTimeout * 1000);
  const drive = await openDrive(store, {
    passphrase, cacheSize, metadataCacheBytes, journalBytes, readOnly: argv.readOnly, cacheDir: argv.cacheDir, log: daemonLog,
    syncIntervalMs: argv.commitInterval * 1000,
    checkpointInterval: Math.max(1, Math.floor(argv.checkpointInterval)),
    drainStallMs,
  });
  const mountpoint = await checkMountpoint(argv.mountpoint).catch(async (err) => {
    await drive.close();
    throw err;
  });
  const mounted = await mountFilesystem(drive.fs, mountpoint, {
    readOnly: argv.readOnly, allowOther: argv.allowOther, kernelInodes: kernelInodeLimit(drive.metadataCacheBytes),
    log: (m) => daemonLog(m, 'error'), note: (m) => daemonLog(m),
  });
  await registerDaemon(mountpoint);
  const control = await serveControl(startControlServer, drive, mounted, { mountpoint, store: store.location, readOnly: argv.readOnly, stallMs: drainStallMs });
  const beat = setInterval(() => {
    void heartbeat(mountpoint);
    control.keepReachable().catch((err) => daemonLog(`could not serve the control socket again: ${errorMessage(err)}`, 'warn'));
  }, 2000);
  beat.unref();
  notifySystemd(mountpoint);
  tellStarterReady();
  daemonLog(`mounted ${store.location} at ${mountpoint} (pid ${process.pid})`);
  let signals = 0;
  const stop = (signal: string) => {
    if (++signals > 1) {
      // Everything acknowledged is in the local journal; the next mount uploads it.
      daemonLog(`${signal} again: exiting without waiting for uploads; the journal keeps what is not stored yet`);
      clearInterval(beat);
      leaveOutcome(mountpoint, outcomeNow(false, 'told to leave them'))
        .then(() => unregisterDaemon(mountpoint))
        .finally(() => process.exit(1));
      return;
    }
    daemonLog(`${signal}: unmounting ${mountpoint}`);
    mounted.unmount().catch((err) => daemonLog(`unmount failed: ${errorMessage(err)}`));
  };
  /** What the journal still holds, and why (the store's last error). */
  function outcomeNow(stored: boolean, reason?: string): UnmountOutcome {
    try {
      const { entries, bytes } = drive.backlog();
      const errors = drive.status().store.recentErrors;
      return { stored, pendingObjects: entries, pendingBytes: bytes, reason: stored ? undefined : reason ?? errors[errors.length - 1]?.message };
    } catch {
      return { stored, pendingObjects: 0, pendingBytes: 0, reason };
    }
  }
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', stop);
  await mounted.gone;
  let outcome: UnmountOutcome;
  try {
    const { entries } = drive.backlog();
    if (entries > 0) daemonLog(`unmounted ${mountpoint}; uploading ${entries} pending changes (signal again to leave them in the journal for the next mount)`);
    const stored = await drive.close();
    if (stored) daemonLog(`unmounted ${mountpoint}; everything is stored`);
    outcome = outcomeNow(stored);
  } catch (err) {
    process.exitCode = 1;
    daemonLog(`unmounted ${mountpoint}, but not everything could be stored: ${errorMessage(err)}`);
    outcome = outcomeNow(false, errorMessage(err));
  } finally {
    clearInterval(beat);
  }
  await leaveOutcome(mountpoint, outcome);
  await unregisterDaemon(mountpoint);
  process.exit();
}

/**
 * The files the kernel may hold at once, out of the metadata budget: the
 * daemon keeps about 100 bytes for each, and V8 some more between
 * collections. 16 MiB (the default with the default cache) allows 131,072:
 * a 100,000-file directory stays in the kernel's caches whole.
 */
export function kernelInodeLimit(metadataCacheBytes: number): number {
  return Math.max(512, Math.floor(metadataCacheBytes / 128));
}

/**
 * Type=notify units: tell systemd the drive is usable. systemd-notify sends
 * from its own pid, so the unit needs NotifyAccess=all (README).
 */
function notifySystemd(mountpoint: string): void {
  if (!process.env.NOTIFY_SOCKET) return;
  const child = spawn('systemd-notify', ['--ready', `--pid=${process.pid}`, `--status=mounted at ${mountpoint}`], { stdio: 'ignore' });
  child.on('error', (err) => daemonLog(`could not tell systemd the mount is ready: ${errorMessage(err)}`));
}

/**
 * A detached daemon tells the terminal that started it that the drive is
 * usable (mounted, and answering `veilfs status`): that terminal returns at
 * once instead of looking for the mount now and then.
 */
export function tellStarterReady(): void {
  if (!process.env[DAEMON_CHILD]) return;
  try {
    writeSync(READY_FD, 'ready\n');
    closeSync(READY_FD);
  } catch {
    // That terminal is gone (Ctrl-C while waiting): nobody to tell.
  }
}

/** The control socket that `veilfs status`, `sync` and `unmount` talk to. */
async function serveControl(startControlServer: MountModules['startControlServer'], drive: Drive, mounted: Mounted, about: { mountpoint: string; store: string; readOnly: boolean; stallMs: number }): Promise<{ keepReachable(): Promise<void> }> {
  const since = new Date().toISOString();
  const uploads = new UploadRate(() => drive.status().uploadedBytes);
  const socket = controlSocket(about.mountpoint);
  const handlers: Parameters<MountModules['startControlServer']>[1] = {
    status: () => {
      const s = drive.status();
      const inodes = mounted.kernelInodes();
      const rate = uploads.bytesPerSecond();
      return {
        mountpoint: about.mountpoint, store: about.store, pid: process.pid, mountedSince: since, readOnly: about.readOnly,
        logFile: process.env[LOG_FILE_ENV] ?? 'standard error (mounted in the foreground)',
        cache: {
          size: s.cache.size, used: s.cache.cleanBytes + s.cache.dirtyBytes, dirtyBytes: s.cache.dirtyBytes,
          hitRate: s.cache.blockReads === 0 ? null : 1 - Math.min(1, s.cache.blockFetches / s.cache.blockReads),
        },
        upload: {
          pendingObjects: s.pending.entries, pendingBytes: s.pending.bytes, bytesPerSecond: rate,
          etaSeconds: s.pending.bytes === 0 ? 0 : rate > 0 ? s.pending.bytes / rate : null,
        },
        lastCommit: s.lastCommitAt ? new Date(s.lastCommitAt).toISOString() : null,
        storeLatencyMs: s.store.latencyMs ?? null,
        storeErrors: s.store.recentErrors,
        journalBytes: s.pending.bytes,
        memory: { residentBytes: process.memoryUsage.rss(), kernelInodes: inodes.held, kernelInodeLimit: inodes.limit },
      };
    },
    pending: () => drive.backlog(),
    sync: () => drive.flush(about.stallMs),
    shares: {
      // A link is printed once what it shows is in the store: data, commit, then the record.
      create: async (request) => {
        await drive.fs.sync();
        const share = await drive.shares.create(request);
        await drive.flush(about.stallMs);
        return share;
      },
      list: () => drive.shares.list(),
      revoke: async (target) => {
        const ids = await drive.shares.revoke(target);
        await drive.flush(about.stallMs);
        return ids;
      },
    },
  };
  let server = await startControlServer(socket, handlers, daemonLog);
  return {
    /**
     * Without $XDG_RUNTIME_DIR the socket lives in ~/.cache: cleared while
     * mounted, it is served again, or status, sync and share could no
     * longer reach this mount.
     */
    keepReachable: async () => {
      if (await fs.lstat(socket).then(() => true, (err: NodeJS.ErrnoException) => err.code !== 'ENOENT')) return;
      server.close();
      await fs.mkdir(path.dirname(socket), { recursive: true, mode: 0o700 });
      server = await startControlServer(socket, handlers, daemonLog);
      daemonLog(`the control socket ${socket} was removed while mounted; it is served again`);
    },
  };
}

/** Upload rate over the last few seconds, sampled once a second. */
class UploadRate {
  private readonly samples: [number, number][] = [];

  constructor(private readonly total: () => number) {
    setInterval(() => {
      this.samples.push([Date.now(), this.total()]);
      if (this.samples.length > 10) this.samples.shift();
    }, 1000).unref();
  }

  bytesPerSecond(): number {
    if (this.samples.length < 2) return 0;
    const [t0, b0] = this.samples[0];
    const [t1, b1] = this.samples[this.samples.length - 1];
    return t1 > t0 ? ((b1 - b0) * 1000) / (t1 - t0) : 0;
  }
}

export interface StartingDaemon {
  /** Hands the daemon its secret, then waits until its mount is live. */
  unlock(secret: string): Promise<void>;
  /** Stops the daemon before it was handed anything. */
  cancel(): void;
}

/** Starts this same command in the background; it waits on its standard input for the secret. */
export async function startDaemon(mountpoint: string, cacheDir: string | undefined): Promise<StartingDaemon> {
  const logDir = path.join(cacheDir ?? defaultCacheDir(), 'logs');
  await fs.mkdir(logDir, { recursive: true, mode: 0o700 });
  const logFile = path.join(logDir, `mount-${createHash('sha256').update(mountpoint).digest('hex').slice(0, 12)}.log`);
  await rotateLog(logFile);
  const out = openSync(logFile, 'a', 0o600);
  const child = spawn(process.execPath, [...daemonExecArgv(process.execArgv), process.argv[1], ...process.argv.slice(2).filter((a) => a !== '--daemon' && a !== '-d')], {
    detached: true,
    stdio: ['pipe', out, out, 'pipe'],
    env: { ...process.env, [DAEMON_CHILD]: '1', [LOG_FILE_ENV]: logFile },
  });
  // Should this terminal die first, the daemon reads an empty secret and leaves quietly.
  child.stdin!.on('error', () => {});
  return {
    cancel: () => {
      child.stdin!.destroy();
      if (!hasExited(child)) child.kill('SIGTERM');
    },
    unlock: async (secret) => {
      child.stdin!.end(secret);
      const outcome = await readyOrExit(child);
      if (outcome === 'ready') {
        child.unref();
        process.stdout.write(`mounted at ${mountpoint} (pid ${child.pid}, log ${logFile})\n`);
        return;
      }
      if (outcome === 'exited') {
        const lines = (await fs.readFile(logFile, 'utf8')).trim().split('\n');
        // Its last line: a log line (a time, then "veilfs: ") or the error it exited with ("veilfs: ").
        throw new UserError(lines[lines.length - 1]?.replace(/^(\S+ )?veilfs: /, '') || `mount failed (exit ${child.exitCode ?? child.signalCode})`);
      }
      child.kill('SIGTERM');
      throw new UserError(`the mount did not come up within ${READY_TIMEOUT_MS / 1000} s; see ${logFile}`);
    },
  };
}

/**
 * Waits for the daemon's "ready" line, its exit, or the deadline. Its exit,
 * not the end of the pipe: a helper it started (fusermount) may hold the
 * pipe open after it died.
 */
function readyOrExit(child: ChildProcess): Promise<'ready' | 'exited' | 'timeout'> {
  const channel = child.stdio[READY_FD] as Readable;
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish('timeout'), READY_TIMEOUT_MS);
    const onExit = () => finish('exited');
    const onData = () => finish('ready');
    function finish(outcome: 'ready' | 'exited' | 'timeout') {
      clearTimeout(timer);
      child.off('exit', onExit);
      channel.off('data', onData);
      channel.destroy();
      resolve(outcome);
    }
    channel.on('error', () => {});
    channel.once('data', onData);
    if (hasExited(child)) finish('exited');
    else child.once('exit', onExit);
  });
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Starts this same command in the background, hands it its secret, and waits until its mount is live. */
export async function detach(mountpoint: string, secret: string, cacheDir: string | undefined): Promise<void> {
  await (await startDaemon(mountpoint, cacheDir)).unlock(secret);
}
