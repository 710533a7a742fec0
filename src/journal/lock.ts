import { constants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.js';
import { processIdentity, processRunning, runningProcess } from '../util/processes.js';

export interface Lock {
  release(): Promise<void>;
  /** Writes the lock file again if it was removed (with its directory) while held. */
  renew(): Promise<void>;
}

/** Locks this process holds: a second holder in the same process is a bug too. */
const held = new Set<string>();

/**
 * One process at a time may write a vault's journal on this machine. The
 * lock file names the owner by pid and start time; a lock left by a killed
 * process is taken over, even while the process is a zombie not yet reaped
 * or once its pid went to another process.
 */
export async function acquireLock(dir: string): Promise<Lock> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(path.resolve(dir), 'lock');
  if (held.has(file)) throw new UserError(`this vault is in use by another veilfs process on this machine (pid ${process.pid}); unmount it first`);
  const identity = await processIdentity();
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeLock(file, identity);
      held.add(file);
      let released = false;
      return {
        release: async () => {
          if (released) return;
          released = true;
          held.delete(file);
          await fs.unlink(file).catch(() => {});
        },
        // Another process that took the lock meanwhile keeps it: the store's conditional writes then tell the two apart.
        renew: async () => {
          if (!released) await writeLock(file, identity).catch(() => {});
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    // A bare pid (a lock of an earlier version) is believed while that process runs.
    const owner = await runningProcess(await fs.readFile(file, 'utf8').catch(() => ''), processRunning);
    if (owner !== undefined && owner !== process.pid) {
      throw new UserError(`this vault is in use by another veilfs process on this machine (pid ${owner}); unmount it first`);
    }
    await fs.unlink(file).catch(() => {});
  }
  throw new UserError(`cannot lock ${dir}: another process keeps taking the lock`);
}

/** Creates the lock file, failing with EEXIST if there is one. */
async function writeLock(file: string, identity: string): Promise<void> {
  const handle = await fs.open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await handle.writeFile(`${identity}\n`);
  } finally {
    await handle.close();
  }
}
