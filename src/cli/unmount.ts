import * as path from 'node:path';
import type { CommandModule } from 'yargs';
import { UserError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { humanBytes } from '../util/human.js';
import { countdown } from './progress.js';
import { control } from '../control/client.js';
import type { StatusReport } from '../control/protocol.js';
import { controlSocket, daemonPid, forceUnmount, heartbeatAgeMs, isMounted, mountedPaths, processesUsing, takeOutcome, unmountIfIdle, unregisterDaemon } from '../fuse/mounts.js';
import { processRunning } from '../util/processes.js';

const WAIT_LOG_MS = 5000;
const PROGRESS_MS = 500;
/** A daemon that ran no JavaScript for this long is wedged, not busy (it beats every 2 s). */
const WEDGED_MS = 30_000;
/**
 * A store error this recent is why uploads wait: the journal retries at
 * least every 30 s, and each failed try is recorded again.
 */
const STUCK_ERROR_MS = 45_000;

type Args = { mountpoint: string; leavePending: boolean; lazy: boolean };

export const unmountCommand: CommandModule<object, Args> = {
  command: 'unmount <mountpoint>',
  aliases: ['umount'],
  describe: 'Unmount a drive; waits until everything written is stored',
  builder: (y) =>
    y.positional('mountpoint', { type: 'string', demandOption: true })
      .option('leave-pending', {
        type: 'boolean',
        default: false,
        describe: 'do not wait for uploads: the daemon stops, and the next mount of the vault uploads what its journal holds',
      })
      .option('lazy', {
        type: 'boolean',
        default: false,
        describe: 'detach the drive even while files are open there (their programs then get errors), as umount -l does',
      }) as any,
  handler: async (argv) => {
    const target = path.resolve(argv.mountpoint);
    const pid = await daemonPid(target);
    // As umount does, a drive in use stays mounted: detaching it would fail every program with a file open there.
    if (pid && !argv.lazy && (await isMounted(target)) && (await unmountIfIdle(target)) === 'busy') throw await busyError(target);
    if (pid) return stopDaemon(target, pid, argv.leavePending);
    if (await isMounted(target)) {
      // No daemon: it was killed. Detach the dead mount.
      await forceUnmount(target);
      return;
    }
    throw new UserError(`${target} is not mounted`);
  },
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function busyError(target: string): Promise<UserError> {
  const nested = [...(await mountedPaths()).keys()].filter((p) => p.startsWith(`${target}/`));
  if (nested.length > 0) return new UserError(`${target} is busy: ${nested.join(', ')} ${nested.length === 1 ? 'is' : 'are'} mounted inside it; unmount ${nested.length === 1 ? 'that' : 'those'} first`);
  const users = await processesUsing(target);
  const shown = users.slice(0, 5).map((u) => `${u.command} (pid ${u.pid})`).join(', ');
  const who = users.length === 0 ? 'a file is open there, or a process works in it' : `in use by ${shown}${users.length > 5 ? ` and ${users.length - 5} more` : ''}`;
  return new UserError(`${target} is busy: ${who}. Close those files or leave that directory, or "veilfs unmount --lazy" detaches it now (they then get errors)`);
}

/** A daemon that exits on its own meanwhile needs no signal: not an error. */
function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/**
 * The daemon's first signal unmounts (lazily) and then uploads what is
 * pending; a second one makes it leave that to the next mount. A daemon
 * whose drive is unmounted already (just now, by unmountIfIdle, or by an
 * earlier `veilfs unmount` that stopped waiting) uploads on its own and
 * is only waited for, unless leavePending.
 */
async function stopDaemon(target: string, pid: number, leavePending: boolean): Promise<void> {
  const mounted = await isMounted(target);
  if (mounted) signal(pid, 'SIGTERM');
  if (leavePending) {
    while (mounted && (await isMounted(target)) && (await processRunning(pid))) await sleep(50);
    const report = await status(target);
    await signalUntilGone(pid);
    if (await isMounted(target)) await forceUnmount(target);
    const outcome = (await takeOutcome(target)) ?? (report && { stored: false, ...report.upload });
    if (outcome && outcome.pendingObjects > 0) process.stderr.write(`veilfs: left ${describePending(outcome)} in the journal; the next mount of this vault uploads them\n`);
    return;
  }
  await waitForUploads(target, pid);
}

/** A daemon told to leave its uploads exits at the next signal (one sent too early may have counted as the first). */
async function signalUntilGone(pid: number): Promise<void> {
  for (let tries = 0; await processRunning(pid); tries++) {
    if (tries % 20 === 0) signal(pid, 'SIGTERM');
    await sleep(50);
  }
}

function status(target: string): Promise<StatusReport | undefined> {
  return control<StatusReport>(controlSocket(target), { command: 'status' }, undefined, 1000).catch(() => undefined);
}

function describePending({ pendingObjects: objects, pendingBytes: bytes }: { pendingObjects: number; pendingBytes: number }): string {
  return `${objects} ${objects === 1 ? 'change' : 'changes'} (${humanBytes(bytes)})`;
}

/** Why uploads are not going ahead: the store's latest error, if recent. */
function stuckOn(report: StatusReport | undefined): string | undefined {
  const last = report?.storeErrors[report.storeErrors.length - 1];
  if (!last || report.upload.pendingObjects === 0 || Date.now() - Date.parse(last.at) > STUCK_ERROR_MS) return undefined;
  return last.message;
}

/** A store error without the names of the objects and temporary files it is about: the same reason for every object. */
export const sameReason = (message: string | undefined) => message?.replace(/\S*[0-9a-f]{16,}\S*/g, '…');

async function waitForUploads(target: string, pid: number): Promise<void> {
  const line = countdown('unmounting: uploading');
  let report: StatusReport | undefined;
  let toldReason: string | undefined;
  // Ctrl-C ends the wait, not the uploads: the journal holds everything, and the daemon goes on.
  const stopWaiting = () => {
    line.stop();
    process.stderr.write(`veilfs: stopped waiting; the daemon (pid ${pid}) goes on storing ${report ? describePending(report.upload) : 'what is pending'}. ` +
      `"veilfs unmount --leave-pending ${target}" stops it, and the next mount uploads the rest\n`);
    process.exit(EXIT.CANCELLED);
  };
  process.once('SIGINT', stopWaiting);
  let waited = 0;
  while (await processRunning(pid)) {
    await sleep(50);
    waited += 50;
    if (waited % PROGRESS_MS === 0) {
      report = (await status(target)) ?? report;
      if (report) line.update(report.upload.pendingObjects, report.upload.pendingBytes);
      const reason = stuckOn(report);
      // Said at once, and again only for another reason (not for each object that fails the same way): an unmount that waits on a full or unreachable store must not look hung.
      if (reason && sameReason(reason) !== sameReason(toldReason)) {
        line.log(`veilfs: the store refuses uploads (${reason}); ${describePending(report!.upload)} wait in the journal, retried for as long as the store takes some of them. ` +
          `Free space or fix the store, or press Ctrl-C to stop waiting`);
      }
      toldReason = reason;
    }
    if (waited % WAIT_LOG_MS === 0 && !process.stderr.isTTY) {
      process.stderr.write(`veilfs: waiting for the daemon (pid ${pid}) to store ${report ? describePending(report.upload) : 'pending data'}…\n`);
    }
    if (((await heartbeatAgeMs(target)) ?? 0) > WEDGED_MS) {
      // Everything acknowledged is in the local journal: killing loses nothing.
      line.stop();
      signal(pid, 'SIGKILL');
      if (await isMounted(target)) await forceUnmount(target);
      await unregisterDaemon(target);
      throw new UserError(`the daemon (pid ${pid}) stopped responding and was killed; what it had not uploaded stays in the journal and is uploaded at the next mount`);
    }
  }
  process.off('SIGINT', stopWaiting);
  line.stop();
  if (await isMounted(target)) await forceUnmount(target);
  // A daemon gives up on a store that takes nothing for a while (twice --store-timeout): the unmount must not then look like a success.
  const outcome = await takeOutcome(target);
  if (outcome && !outcome.stored) {
    throw new UserError(`the store did not take ${describePending(outcome)}${outcome.reason ? ` (${outcome.reason})` : ''}; they stay in this machine's journal, and the next mount of this vault uploads them`, EXIT.STORE);
  }
}
