import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.js';
import { isMounted } from './mounts.js';

/** The absolute mountpoint, once it is an empty directory nothing is mounted on; else why not, in words. */
export async function checkMountpoint(mountpoint: string): Promise<string> {
  const target = path.resolve(mountpoint);
  let st;
  try {
    st = await fs.stat(target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`mountpoint ${target} does not exist (create it with mkdir)`);
    if (code === 'ENOTCONN') throw new UserError(`${target} is a dead mount (its daemon was killed): run "veilfs unmount ${target}" first`);
    throw new UserError(`cannot use mountpoint ${target}: ${(err as Error).message}`);
  }
  if (!st.isDirectory()) throw new UserError(`mountpoint ${target} is not a directory`);
  if (await isMounted(target)) throw new UserError(`${target} is already mounted`);
  if ((await fs.readdir(target)).length > 0) throw new UserError(`mountpoint ${target} is not empty`);
  return target;
}
