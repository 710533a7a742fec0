import * as path from 'node:path';
import type { CommandModule } from 'yargs';
import { control } from '../control/client.js';
import type { SyncProgress } from '../control/protocol.js';
import { UserError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { controlSocket } from '../fuse/mounts.js';
import { countdown } from './progress.js';

export const syncCommand: CommandModule<object, { mountpoint: string }> = {
  command: 'sync <mountpoint>',
  describe: 'Wait until everything written to a mounted drive is in the store',
  builder: (y) => y.positional('mountpoint', { type: 'string', demandOption: true }) as any,
  handler: async (argv) => {
    const line = countdown('uploading');
    let last: SyncProgress;
    try {
      last = await control<SyncProgress>(controlSocket(path.resolve(argv.mountpoint)), { command: 'sync' }, (p) => line.update(p.pendingObjects, p.pendingBytes));
    } finally {
      line.stop();
    }
    if (last.error) throw new UserError(`sync failed: ${last.error}`, EXIT.STORE);
    if (!last.stored) throw new UserError(`the store is not taking uploads: ${last.pendingObjects} changes wait in the journal on this machine (see veilfs status)`, EXIT.STORE);
    if (process.stdout.isTTY) process.stdout.write('everything is in the store\n');
  },
};
