import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { errorMessage, UserError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { compileEverythingAhead } from './v8-flags.js';
import type { CommandModule } from 'yargs';

/**
 * Each command's module, loaded only when its command is asked for: all of
 * them together (with got, the drive and the share code) cost a mount about
 * 0.3 s of module loading before it does anything.
 */
const COMMANDS: Record<string, () => Promise<CommandModule<any, any>[]>> = {
  init: async () => [(await import('./init.js')).initCommand],
  mount: async () => {
    // The process that will serve the drive, not a terminal handing it to a daemon (nor --help).
    const words = process.argv.slice(2);
    if (words.includes('mount') && !words.some((w) => w === '--daemon' || w === '-d')) compileEverythingAhead();
    return [(await import('./mount.js')).mountCommand];
  },
  unmount: async () => [(await import('./unmount.js')).unmountCommand],
  status: async () => [(await import('./status.js')).statusCommand],
  sync: async () => [(await import('./sync.js')).syncCommand],
  vault: async () => [(await import('./vaults.js')).vaultCommand],
  passwd: async () => [(await import('./passwd.js')).passwdCommand],
  fsck: async () => [(await import('./fsck.js')).fsckCommand],
  gc: async () => [(await import('./gc.js')).gcCommand],
  upgrade: async () => [(await import('./upgrade.js')).upgradeCommand],
  share: async () => {
    const m = await import('./share.js');
    return [m.shareCommand, m.sharesCommand, m.unshareCommand];
  },
  serve: async () => [(await import('./serve.js')).serveCommand],
  get: async () => [(await import('./get.js')).getCommand],
};
/** Words that name a command of another module's table entry. */
const ALIASES: Record<string, string> = { umount: 'unmount', shares: 'share', unshare: 'share' };

/**
 * The modules of every command word on the line (an option's value may look
 * like one, so all of them), or of every command when none is named: the
 * overall help and the unknown-command error list them all.
 */
async function commandsFor(words: string[]): Promise<CommandModule<any, any>[]> {
  const named = new Set(words.map((w) => ALIASES[w] ?? w).filter((w) => Object.hasOwn(COMMANDS, w)));
  const chosen = named.size > 0 ? [...named] : Object.keys(COMMANDS);
  return (await Promise.all(chosen.map((name) => COMMANDS[name]()))).flat();
}

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
  // EEXIST only from mkdir: from an exclusive create it would be a fault of veilfs, not of the disk.
  if (e.code === 'ENOTDIR' || (e.code === 'EEXIST' && e.syscall === 'mkdir')) return [`a file is where veilfs keeps a directory${where}: move it away`, EXIT.CANT_CREATE];
  return undefined;
}

try {
  process.cwd();
} catch {
  // A shell left in a directory of a mount that has gone away.
  fail('the current directory no longer exists (was it on a drive that is unmounted now?): cd to another directory and try again');
}

try {
  const args = hideBin(process.argv);
  const parser = yargs(args)
    .scriptName('veilfs')
    .usage('$0 <command> [options]\n\nAn encrypted drive: files are encrypted on this machine; the store only ever sees ciphertext.');
  for (const command of await commandsFor(args)) parser.command(command);
  await parser
    .demandCommand(1, 'name a command')
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
  const { StoreError } = await import('../store/types.js');
  const { ShareFormatError, ShareIntegrityError } = await import('../share/crypto.js');
  if (err instanceof StoreError) fail(`the store failed: ${err.message}`, EXIT.STORE);
  if (err instanceof ShareFormatError || err instanceof ShareIntegrityError) fail(`this share cannot be read: ${err.message} (damaged or altered)`, EXIT.DAMAGED);
  const local = localFileFailure(err);
  if (local) fail(...local);
  if (process.env.VEILFS_DEBUG) console.error(err);
  fail(`internal error: ${errorMessage(err)}`, EXIT.INTERNAL);
}
