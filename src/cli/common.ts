import type { Argv } from 'yargs';
import { UserError } from '../errors.js';
import { openStore } from '../store/open.js';
import type { ObjectStore } from '../store/types.js';
import { parseSize } from '../util/size.js';
import { applyVault } from './vaults.js';
import { isShareLink } from '../share/link-word.js';

export interface StoreArgs {
  vault?: string;
  store?: string;
  passphraseFile?: string;
  passphraseCommand?: string;
  cacheDir?: string;
  s3Endpoint?: string;
  s3Addressing?: 'auto' | 'path' | 'virtual';
  storeTimeout: number;
}

export function storeOptions<T>(y: Argv<T>) {
  return y
    .option('vault', { type: 'string', describe: 'A named vault (veilfs vault add): its store and options, unless given here' })
    .option('store', { type: 'string', describe: 'Where the vault lives: a directory, file:///path or s3://BUCKET/PREFIX (default: ~/.local/share/veilfs/default)' })
    .option('passphrase-file', { type: 'string', describe: 'Read the passphrase from this file (else $VEILFS_PASSPHRASE, else ask)' })
    .option('passphrase-command', { type: 'string', describe: 'Run this command (sh -c) and take the first line it prints as the passphrase' })
    .option('cache-dir', { type: 'string', describe: 'Local state and journal directory (default: ~/.cache/veilfs)' })
    .option('s3-endpoint', { type: 'string', describe: 'S3 endpoint URL (default: $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, the profile\'s endpoint_url, else AWS)' })
    .option('s3-addressing', { choices: ['auto', 'path', 'virtual'] as const, default: 'auto' as const, describe: 'S3 bucket addressing: path-style or virtual-hosted (auto: path-style for custom endpoints)' })
    .option('store-timeout', { type: 'number', default: 30, describe: 'Seconds one store operation may take, retries included, before it fails (EIO)' })
    .group(['vault', 'store', 'passphrase-file', 'passphrase-command', 'cache-dir', 's3-endpoint', 's3-addressing', 'store-timeout'], 'Vault and store:')
    .middleware(async (argv: Record<string, unknown>) => {
      // `mount NAME MOUNTPOINT`: the first word names the vault.
      if (argv.target !== undefined && !isShareLink(argv.target as string)) {
        if (argv.mountpoint === undefined) argv.mountpoint = argv.target;
        else argv.vault ??= argv.target;
      }
      await applyVault(argv, argv.vault as string | undefined);
    });
}

export function storeFromArgs(argv: StoreArgs, log?: (message: string) => void): ObjectStore {
  if (!(argv.storeTimeout > 0)) throw new UserError('--store-timeout must be a positive number of seconds');
  return openStore(argv.store, { endpoint: argv.s3Endpoint, addressing: argv.s3Addressing, timeoutMs: argv.storeTimeout * 1000, log });
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
