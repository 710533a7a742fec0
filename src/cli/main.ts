import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { errorMessage, UserError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { StoreError } from '../store/types.js';
import { ShareFormatError, ShareIntegrityError } from '../share/crypto.js';
import { fsckCommand } from './fsck.js';
import { gcCommand } from './gc.js';
import { upgradeCommand } from './upgrade.js';
import { initCommand } from './init.js';
import { mountCommand } from './mount.js';
import { passwdCommand } from './passwd.js';
import { statusCommand } from './status.js';
import { syncCommand } from './sync.js';
import { vaultCommand } from './vaults.js';
import { unmountCommand } from './unmount.js';
import { shareCommand, sharesCommand, unshareCommand } from './share.js';
import { serveCommand } from './serve.js';
import { getCommand } from './get.js';

function fail(message: string, code: number = EXIT.FAILURE): never {
  process.stderr.write(`veilfs: ${message}\n`);
  process.exit(code);
}

/** Local file errors worth one line of their own: the disk, not veilfs, needs attention. */
function localFileFailure(err: unknown): [string, number] | undefined {
  const e = err as NodeJS.ErrnoException;
  const where = e.path ? ` (${e.path})` : '';
  if (e.code === 'ENOSPC' || e.code === 'EDQUOT') return [`the local disk is full${where}: free some space; nothing acknowledged is lost`, EXIT.CANT_CREATE];
  if (e.code === 'EROFS') return [`the local disk is read-only${where}`, EXIT.CANT_CREATE];
  if (e.code === 'EACCES' || e.code === 'EPERM') return [`permission denied${where}`, EXIT.NO_PERMISSION];
  return undefined;
}

try {
  process.cwd();
} catch {
  // A shell left in a directory of a mount that has gone away.
  fail('the current directory no longer exists (was it on a drive that is unmounted now?): cd to another directory and try again');
}

try {
  await yargs(hideBin(process.argv))
    .scriptName('veilfs')
    .usage('$0 <command> [options]\n\nAn encrypted drive: files are encrypted on this machine; the store only ever sees ciphertext.')
    .command(initCommand)
    .command(mountCommand)
    .command(unmountCommand)
    .command(statusCommand)
    .command(syncCommand)
    .command(vaultCommand)
    .command(passwdCommand)
    .command(fsckCommand)
    .command(gcCommand)
    .command(upgradeCommand)
    .command(shareCommand)
    .command(sharesCommand)
    .command(unshareCommand)
    .command(serveCommand)
    .command(getCommand)
    .demandCommand(1, 'name a command (see --help)')
    .strict()
    .help()
    .alias('h', 'help')
    .version()
    .fail((msg, err) => {
      if (err) throw err;
      fail(`${msg} (see --help)`, EXIT.USAGE);
    })
    .parseAsync();
} catch (err) {
  if (err instanceof UserError) fail(err.message, err.exitCode);
  if (err instanceof StoreError) fail(`the store failed: ${err.message}`, EXIT.STORE);
  if (err instanceof ShareFormatError || err instanceof ShareIntegrityError) fail(`this share cannot be read: ${err.message} (damaged or altered)`, EXIT.DAMAGED);
  const local = localFileFailure(err);
  if (local) fail(...local);
  if (process.env.VEILFS_DEBUG) console.error(err);
  fail(`internal error: ${errorMessage(err)}`, EXIT.INTERNAL);
}
