import type { CommandModule } from 'yargs';
import { initDrive } from '../drive.js';
import { FORMAT_VERSION, SUPPORTED_VERSIONS } from '../format/vault.js';
import { formatSize } from '../util/size.js';
import { sizeArg, storeFromArgs, storeOptions, type StoreArgs } from './common.js';
import { getPassphrase } from './passphrase.js';

interface InitArgs extends StoreArgs {
  blockSize?: string;
  format: number;
}

export const initCommand: CommandModule<object, InitArgs> = {
  command: 'init',
  describe: 'Create a new encrypted vault in a store',
  builder: (y) => storeOptions(y)
    .option('format', { type: 'number', default: FORMAT_VERSION, choices: SUPPORTED_VERSIONS, describe: 'Vault format version (1 only to make a vault for an older veilfs)' })
    .option('block-size', { type: 'string', describe: 'Format 1 only: encryption block size, a power of two from 64K to 16M (default 1M)' })
    .example('$0 init', 'create a vault in ~/.local/share/veilfs/default')
    .example('$0 init --store /mnt/backup/vault', 'create a vault in a directory')
    .example('$0 init --store s3://my-bucket/vault', 'create a vault in an S3 bucket (credentials from AWS_* or ~/.aws)') as any,
  handler: async (argv) => {
    const blockSize = argv.blockSize === undefined ? undefined : sizeArg('block-size', argv.blockSize, 1);
    const store = storeFromArgs(argv);
    try {
      const passphrase = await getPassphrase(argv, { confirm: true, prompt: 'New passphrase: ' });
      const header = await initDrive(store, passphrase, { blockSize, cacheDir: argv.cacheDir, version: argv.format });
      const layout = header.version >= 2 ? `format ${header.version}: ${formatSize(header.blockSize)} segments in packs` : `format ${header.version}, block size ${formatSize(header.blockSize)}`;
      process.stdout.write(`created vault ${header.vaultId} at ${store.location} (${layout})\n`);
    } finally {
      await store.close?.();
    }
  },
};
