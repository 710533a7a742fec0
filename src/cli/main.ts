import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { errorMessage, UserError } from '../errors.js';
import { StoreError } from '../store/types.js';
import { fsckCommand } from './fsck.js';
import { gcCommand } from './gc.js';
import { initCommand } from './init.js';
import { mountCommand } from './mount.js';
import { passwdCommand } from './passwd.js';
import { unmountCommand } from './unmount.js';

function fail(message: string, code = 1): never {
  process.stderr.write(`veilfs: ${message}\n`);
  process.exit(code);
}

try {
  await yargs(hideBin(process.argv))
    .scriptName('veilfs')
    .usage('$0 <command> [options]\n\nAn encrypted drive: files are encrypted on this machine; the store only ever sees ciphertext.')
    .command(initCommand)
    .command(mountCommand)
    .command(unmountCommand)
    .command(passwdCommand)
    .command(fsckCommand)
    .command(gcCommand)
    .demandCommand(1, 'name a command (see --help)')
    .strict()
    .help()
    .alias('h', 'help')
    .version()
    .fail((msg, err) => {
      if (err) throw err;
      fail(`${msg} (see --help)`, 64);
    })
    .parseAsync();
} catch (err) {
  if (err instanceof UserError) fail(err.message, err.exitCode);
  if (err instanceof StoreError) fail(`the store failed: ${err.message}`, 75);
  if (process.env.VEILFS_DEBUG) console.error(err);
  fail(`internal error: ${errorMessage(err)}`, 70);
}
