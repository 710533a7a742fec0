import type { CommandModule } from 'yargs';
import { upgrade } from '../check/upgrade.js';
import { counter, transfer } from './progress.js';
import { storeOptions, type StoreArgs } from './common.js';
import { withMaintenance } from './maintenance.js';

export const upgradeCommand: CommandModule<object, StoreArgs> = {
  command: 'upgrade',
  describe: 'Convert a vault to the newest format in place (safe to interrupt: run it again to finish)',
  builder: (y) => storeOptions(y)
    .example('$0 upgrade --store /mnt/backup/vault', 'convert a vault of an older format to the newest') as any,
  handler: async (argv) => {
    const converting = transfer('converting');
    const cleaning = counter('deleting old objects', 'objects');
    const report = await withMaintenance(argv, (session, passphrase) => upgrade(session, passphrase, { progress: converting.update, cleaned: cleaning.update }))
      .finally(() => {
        converting.stop();
        cleaning.stop();
      });
    if (report.from === report.to) {
      process.stdout.write(`the vault is already format ${report.to}${report.deleted ? `; deleted ${report.deleted} objects an earlier upgrade left` : ''}\n`);
    } else {
      process.stdout.write(`upgraded from format ${report.from} to ${report.to}: ${report.files} files, ${Math.ceil(report.bytes / 2 ** 20)} MiB rewritten, ${report.deleted} old objects deleted\n`);
    }
  },
};
