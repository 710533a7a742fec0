import { constants } from 'node:os';
import { FsError, IntegrityError } from '../errors.js';
import { StoreFullError } from '../store/types.js';

/** The errno value of an error code ('ENOENT'...), EIO for one unknown here. */
export function errnoOf(code: string): number {
  return constants.errno[code as keyof typeof constants.errno] ?? constants.errno.EIO;
}

/**
 * The one place where errors become errno values. Filesystem errors carry
 * their own code; a full store is ENOSPC; anything else (a store that is
 * down, data that failed authentication, a bug) is EIO, and worth a log line.
 */
export function toErrno(err: unknown, describe: () => string, log: (message: string) => void): number {
  if (err instanceof FsError) return -errnoOf(err.code);
  if (err instanceof StoreFullError) {
    log(`${describe()}: ${err.message}`);
    return -constants.errno.ENOSPC;
  }
  if (err instanceof IntegrityError) log(`${describe()}: data failed authentication (tampered or corrupt store): ${err.message}`);
  else log(`${describe()}: ${err instanceof Error ? err.message : String(err)}`);
  return -constants.errno.EIO;
}
