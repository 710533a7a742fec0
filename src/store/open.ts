import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.js';
import { LocalStore } from './local.js';
import type { ObjectStore } from './types.js';

/** The embedded default: $XDG_DATA_HOME/veilfs/default (~/.local/share/veilfs/default). */
export function defaultStorePath(): string {
  const base = process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(base, 'veilfs', 'default');
}

/** Turns --store (a path, file:// URL or s3:// URL) into a store. */
export function openStore(url: string | undefined): ObjectStore {
  if (!url) return new LocalStore(defaultStorePath());
  if (url.startsWith('file://')) return new LocalStore(fileURLToPath(url));
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    const scheme = url.slice(0, url.indexOf(':'));
    throw new UserError(`unsupported store "${scheme}://" (this version supports local directories and file:// URLs)`);
  }
  return new LocalStore(url);
}
