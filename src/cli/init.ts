import type { CommandModule } from 'yargs';
import { initDrive } from '../drive.js';
import { DEFAULT_BLOCK_SIZE } from '../format/vault.js';
import { formatSize } from '../util/size.js';
import { sizeArg, storeFromArgs, storeOptions, type StoreArgs } from './common.js';
import { getPassphrase } from './passphrase.js';

interface InitArgs extends StoreArgs {
  blockSize: string;
}

export const initCommand: CommandModule<object, InitArgs> = {
  command: 'init',
  describe: 'Create a new encrypted vault in a store',
  builder: (y) => storeOptions(y)
    .option('block-size', { type: 'string', default: formatSize(DEFAULT_BLOCK_SIZE), describe: 'Encryption block size, a power of two from 64K to 16M' })
    .example('$0 init', 'create a vault in ~/.local/share/veilfs/default')
    .example('$0 init --store /mnt/backup/vault', 'create a vault in a directory')
    .example('$0 init --store s3://my-bucket/vault', 'create a vault in an S3 bucket (credentials from AWS_* or ~/.aws)') as any,
  handler: async (argv) => {
    const blockSize = sizeArg('block-size', argv.blockSize, 1);
    const store = storeFromArgs(argv);
    try {
      const passphrase = await getPassphrase(argv, { confirm: true, prompt: 'New passphrase: ' });
      const header = await initDrive(store, passphrase, { blockSize, cacheDir: argv.cacheDir });
      process.stdout.write(`created vault ${header.vaultId} at ${store.location} (block size ${formatSize(header.blockSize)})\n`);
    } finally {
      await store.close?.();
    }
  },
};
