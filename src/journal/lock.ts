import { constants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.js';

export interface Lock {
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Locks this process holds: a second holder in the same process is a bug too. */
const held = new Set<string>();

/**
 * One process at a time may write a vault's journal on this machine. The
 * lock file holds the owner's pid; a lock left by a killed process is taken
 * over.
 */
export async function acquireLock(dir: string): Promise<Lock> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(path.resolve(dir), 'lock');
  if (held.has(file)) throw new UserError(`this vault is in use by another veilfs process on this machine (pid ${process.pid}); unmount it first`);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await fs.open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      held.add(file);
      let released = false;
      return {
        release: async () => {
          if (released) return;
          released = true;
          held.delete(file);
          await fs.unlink(file).catch(() => {});
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) {
      throw new UserError(`this vault is in use by another veilfs process on this machine (pid ${owner}); unmount it first`);
    }
    await fs.unlink(file).catch(() => {});
  }
  throw new UserError(`cannot lock ${dir}: another process keeps taking the lock`);
}
