import type { Argv } from 'yargs';
import { UserError } from '../errors.js';
import { parseSize } from '../util/size.js';

export interface StoreArgs {
  store?: string;
  passphraseFile?: string;
  cacheDir?: string;
}

export function storeOptions<T>(y: Argv<T>) {
  return y
    .option('store', { type: 'string', describe: 'Where the vault lives: a directory, file:///path (default: ~/.local/share/veilfs/default)' })
    .option('passphrase-file', { type: 'string', describe: 'Read the passphrase from this file (else $VEILFS_PASSPHRASE, else ask)' })
    .option('cache-dir', { type: 'string', describe: 'Local state directory (default: ~/.cache/veilfs)' });
}

export function sizeArg(name: string, text: string, min: number): number {
  let bytes: number;
  try {
    bytes = parseSize(text);
  } catch (err) {
    throw new UserError(`--${name}: ${(err as Error).message}`);
  }
  if (bytes < min) throw new UserError(`--${name} must be at least ${min} bytes`);
  return bytes;
}
