import type { Argv, CommandModule } from 'yargs';
import { getShare, openLink } from '../share/client.js';
import { parseLink } from '../share/link.js';
import { getPassphrase } from './passphrase.js';
import { transfer } from './progress.js';

interface GetArgs {
  link: string;
  dest?: string;
  passwordFile?: string;
}

export const getCommand: CommandModule<object, GetArgs> = {
  command: 'get <link> [dest]',
  describe: 'Download a shared file or folder from its link, verifying every byte (run again to resume)',
  builder: (y: Argv) => y
    .positional('link', { type: 'string', demandOption: true, describe: 'The whole link, including the key after "#" (quote it in the shell)' })
    .positional('dest', { type: 'string', describe: 'Where to put it (default: its name, in this directory)' })
    .option('password-file', { type: 'string', describe: 'The link\'s password, from this file (else $VEILFS_SHARE_PASSWORD, else asked)' }) as any,
  handler: async (argv) => {
    const link = parseLink(argv.link);
    const { manifest } = await openLink(link, () => getPassphrase({ passphraseFile: argv.passwordFile }, { prompt: 'Password for the link: ', envVar: 'VEILFS_SHARE_PASSWORD', fileOption: '--password-file FILE' }));
    const line = transfer('downloading');
    const where = await getShare(link, manifest, argv.dest, (done, total) => line.update(done, total)).finally(() => line.stop());
    if (process.stdout.isTTY) process.stdout.write(`saved ${where}\n`);
  },
};
