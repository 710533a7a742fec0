import { FsError } from '../errors.js';
import { S_IFDIR, S_IFMT } from '../meta/inode.js';
import type { Caller } from './filesystem.js';

/** access(2)'s mask bits. */
export const R_OK = 4;
export const W_OK = 2;
export const X_OK = 1;

/** What a file's owner, group and mode say of it: all access(2) needs to know. */
export interface AccessSubject {
  mode: number;
  uid: number;
  gid: number;
}

/**
 * access(2) for one caller, as the kernel's generic check answers it: root
 * may read and write anything and run anything that has an execute bit
 * (directories: always); anyone else gets the owner's, the group's or the
 * others' bits, the first class they are in. Supplementary groups are not
 * consulted: only a mount that one user alone can reach asks the daemon
 * (mount.ts says when), and that user's own files are in the owner class.
 */
export function checkAccess(file: AccessSubject, mask: number, caller: Caller): void {
  const wanted = mask & (R_OK | W_OK | X_OK);
  if (wanted === 0) return;
  if (caller.uid === 0) {
    const isDir = (file.mode & S_IFMT) === S_IFDIR;
    if (!(wanted & X_OK) || isDir || file.mode & 0o111) return;
    throw new FsError('EACCES', 'no execute bit is set');
  }
  const shift = caller.uid === file.uid ? 6 : caller.gid === file.gid ? 3 : 0;
  const granted = (file.mode >> shift) & 7;
  if ((granted & wanted) !== wanted) throw new FsError('EACCES');
}
