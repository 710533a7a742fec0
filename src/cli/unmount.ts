import * as path from 'node:path';
import type { CommandModule } from 'yargs';
import { UserError } from '../errors.js';
import { countdown } from './progress.js';
import { control } from '../control/client.js';
import type { StatusReport } from '../control/protocol.js';
import { controlSocket, daemonPid, forceUnmount, heartbeatAgeMs, isMounted, processRunning, unregisterDaemon } from '../fuse/mounts.js';

const WAIT_LOG_MS = 5000;
const PROGRESS_MS = 500;
/** A daemon that ran no JavaScript for this long is wedged, not busy (it beats every 2 s). */
const WEDGED_MS = 30_000;

export const unmountCommand: CommandModule<object, { mountpoint: string }> = {
  command: 'unmount <mountpoint>',
  aliases: ['umount'],
  describe: 'Unmount a drive; waits until everything written is stored',
  builder: (y) => y.positional('mountpoint', { type: 'string', demandOption: true }) as any,
  handler: async (argv) => {
    const target = path.resolve(argv.mountpoint);
    const pid = await daemonPid(target);
    if (pid) {
      process.kill(pid, 'SIGTERM');
      const line = countdown('unmounting: uploading');
      let waited = 0;
      while (await processRunning(pid)) {
        await new Promise((r) => setTimeout(r, 50));
        waited += 50;
        if (waited % PROGRESS_MS === 0) {
          const status = await control<StatusReport>(controlSocket(target), { command: 'status' }, undefined, 1000).catch(() => undefined);
          if (status) line.update(status.upload.pendingObjects, status.upload.pendingBytes);
        }
        if (waited % WAIT_LOG_MS === 0 && !process.stderr.isTTY) process.stderr.write(`veilfs: waiting for the daemon (pid ${pid}) to store pending data…\n`);
        if (((await heartbeatAgeMs(target)) ?? 0) > WEDGED_MS) {
          // Everything acknowledged is in the local journal: killing loses nothing.
          line.stop();
          process.kill(pid, 'SIGKILL');
          if (await isMounted(target)) await forceUnmount(target);
          await unregisterDaemon(target);
          throw new UserError(`the daemon (pid ${pid}) stopped responding and was killed; what it had not uploaded stays in the journal and is uploaded at the next mount`);
        }
      }
      line.stop();
      if (await isMounted(target)) await forceUnmount(target);
      return;
    }
    if (await isMounted(target)) {
      // No daemon: it was killed. Detach the dead mount.
      await forceUnmount(target);
      return;
    }
    throw new UserError(`${target} is not mounted`);
  },
};
