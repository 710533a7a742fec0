import type { CommandModule } from 'yargs';
import { initDrive } from '../drive.js';
import { DEFAULT_BLOCK_SIZE } from '../format/vault.js';
import { openStore } from '../store/open.js';
import { formatSize } from '../util/size.js';
import { sizeArg, storeOptions, type StoreArgs } from './common.js';
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
    .example('$0 init --store /mnt/backup/vault', 'create a vault in a directory') as any,
  handler: async (argv) => {
    const blockSize = sizeArg('block-size', argv.blockSize, 1);
    const store = openStore(argv.store);
    const passphrase = await getPassphrase(argv, { confirm: true, prompt: 'New passphrase: ' });
    const header = await initDrive(store, passphrase, { blockSize, cacheDir: argv.cacheDir });
    process.stdout.write(`created vault ${header.vaultId} at ${store.location} (block size ${formatSize(header.blockSize)})\n`);
  },
};
