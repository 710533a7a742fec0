import type { CommandModule } from 'yargs';
import { UserError } from '../errors.js';
import { changePassphrase } from '../format/vault.js';
import type { ObjectStore } from '../store/types.js';
import { storeFromArgs, storeOptions, type StoreArgs } from './common.js';
import { getPassphrase } from './passphrase.js';

interface PasswdArgs extends StoreArgs {
  newPassphraseFile?: string;
}

export const passwdCommand: CommandModule<object, PasswdArgs> = {
  command: 'passwd',
  describe: 'Change the passphrase (re-wraps the master key; data is untouched)',
  builder: (y) => storeOptions(y)
    .option('new-passphrase-file', { type: 'string', describe: 'Read the new passphrase from this file (else $VEILFS_NEW_PASSPHRASE, else ask)' }) as any,
  handler: async (argv) => {
    const store = storeFromArgs(argv);
    try {
      await changeIt(store, argv);
    } finally {
      await store.close?.();
    }
  },
};

/** Re-wraps the master key under a new passphrase. */
async function changeIt(store: ObjectStore, argv: PasswdArgs): Promise<void> {
  const oldPassphrase = await getPassphrase(argv, { prompt: 'Current passphrase: ' });
  const newPassphrase = await getPassphrase({ passphraseFile: argv.newPassphraseFile }, {
    confirm: true, prompt: 'New passphrase: ', envVar: 'VEILFS_NEW_PASSPHRASE', fileOption: '--new-passphrase-file',
  });
  if (newPassphrase === oldPassphrase) throw new UserError('the new passphrase is the same as the old one');
  await changePassphrase(store, oldPassphrase, newPassphrase);
  process.stdout.write(`passphrase changed for the vault at ${store.location}\n`);
}
