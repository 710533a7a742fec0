import type { CommandModule } from 'yargs';
import { formatReport, fsck, isClean } from '../check/fsck.js';
import { storeOptions, type StoreArgs } from './common.js';
import { EXIT } from '../exit-codes.js';
import { checkProgress } from './progress.js';
import { withMaintenance } from './maintenance.js';

interface FsckArgs extends StoreArgs {
  repair: boolean;
}


export const fsckCommand: CommandModule<object, FsckArgs> = {
  command: 'fsck',
  describe: 'Check a vault: every metadata object, the tree, and every block of every file (exit 0 clean, 1 repaired, 4 damaged)',
  builder: (y) => storeOptions(y)
    .option('repair', { type: 'boolean', default: false, describe: 'Make the vault consistent: damaged files go to /lost+found (damaged blocks read as zeros), broken entries are removed' })
    .example('$0 fsck --store s3://bucket/vault', 'check a vault in S3') as any,
  handler: async (argv) => {
    const line = checkProgress();
    const report = await withMaintenance(argv, (session) => fsck(session, { repair: argv.repair, blockSize: session.header.blockSize, blocksDone: line.blocks, keysScanned: line.keys }))
      .finally(() => line.stop());
    for (const line of formatReport(report)) process.stdout.write(`${line}\n`);
    const clean = isClean(report);
    process.stdout.write(clean ? 'the vault is consistent\n' : argv.repair ? 'repaired: the vault is consistent now\n' : 'the vault is damaged; "veilfs fsck --repair" makes it consistent\n');
    process.exitCode = clean ? EXIT.OK : argv.repair ? EXIT.FSCK_REPAIRED : EXIT.FSCK_DAMAGED;
  },
};
