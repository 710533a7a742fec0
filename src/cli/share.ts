import * as path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { control } from '../control/client.js';
import type { Request, ShareReply } from '../control/protocol.js';
import { openDrive } from '../drive.js';
import { UserError } from '../errors.js';
import { controlSocket, liveMountpoints } from '../fuse/mounts.js';
import type { ShareInfo, ShareRequest, ShareService } from '../share/service.js';
import { storeFromArgs, storeOptions, type StoreArgs } from './common.js';
import { getPassphrase } from './passphrase.js';
import { parseAge } from './gc.js';

interface ShareArgs extends StoreArgs {
  path: string;
  snapshot: boolean;
  password: boolean;
  passwordFile?: string;
  expires?: string;
  gateway?: string;
}

/** A path on a mounted drive → its mount and the path inside the vault; else the path is taken as inside the vault given by --store/--vault. */
async function locate(target: string | undefined): Promise<{ mountpoint: string; inner: string } | undefined> {
  const mounts = await liveMountpoints();
  if (target === undefined) return mounts.length === 1 ? { mountpoint: mounts[0], inner: '/' } : undefined;
  const local = path.resolve(target);
  for (const mountpoint of mounts) {
    if (local === mountpoint || local.startsWith(`${mountpoint}/`)) return { mountpoint, inner: `/${path.relative(mountpoint, local)}` };
  }
  return undefined;
}

/** Asks the daemon of a mount, or opens the vault here when it is not mounted (shares live beside the vault's metadata). */
async function withShares<T>(argv: StoreArgs, target: string | undefined, viaDaemon: (socket: string, inner: string) => Promise<T>, direct: (shares: ShareService, inner: string) => Promise<T>): Promise<T> {
  const mounted = argv.store || argv.vault ? undefined : await locate(target);
  if (mounted) return viaDaemon(controlSocket(mounted.mountpoint), mounted.inner);
  if (!argv.store && !argv.vault) {
    throw new UserError(target ? `${target} is not on a mounted veilfs drive (or give --store/--vault and a path inside the vault)` : 'no single mounted drive: name one, or give --store/--vault');
  }
  const passphrase = await getPassphrase(argv);
  const drive = await openDrive(storeFromArgs(argv), { passphrase, readOnly: true, cacheDir: argv.cacheDir, log: (m) => process.stderr.write(`veilfs: ${m}\n`) });
  try {
    return await direct(drive.shares, target ?? '/');
  } finally {
    await drive.close();
  }
}

async function ask(socket: string, request: Request): Promise<ShareReply> {
  const reply = await control<ShareReply>(socket, request);
  if (reply.error) throw new UserError(reply.error);
  return reply;
}

/** "90s", "30m", "12h", "7d", or a date (2026-12-31). */
export function parseExpiry(text: string, now = Date.now()): number {
  if (/^\s*\d+(\.\d+)?[smhd]\s*$/.test(text)) return now + parseAge(text, '--expires');
  const date = Date.parse(text);
  if (Number.isNaN(date)) throw new UserError(`--expires ${JSON.stringify(text)}: use e.g. 30m, 12h, 7d or a date (2026-12-31)`);
  if (date <= now) throw new UserError('--expires is in the past');
  return date;
}

function describe(share: ShareInfo): string {
  const expires = share.expires ? new Date(share.expires).toISOString() : 'never';
  return `${share.id}  ${share.path}  created ${new Date(share.created).toISOString()}  expires ${expires}  password ${share.password ? 'yes' : 'no'}  ${share.snapshot ? 'snapshot' : 'live'}${share.state === 'live' ? '' : `  (${share.state})`}\n  ${share.link}`;
}

export const shareCommand: CommandModule<object, ShareArgs> = {
  command: 'share <path>',
  describe: 'Print a link that opens a file or folder in a browser (the key travels only in the link)',
  builder: (y: Argv) => storeOptions(y)
    .positional('path', { type: 'string', demandOption: true, describe: 'A file or folder on a mounted drive (or, with --store/--vault, a path inside the vault)' })
    .option('snapshot', { type: 'boolean', default: false, describe: 'Freeze what is there now (default: the link follows later changes)' })
    .option('password', { type: 'boolean', default: false, describe: 'Also require a password (asked on the terminal, or $VEILFS_SHARE_PASSWORD)' })
    .option('password-file', { type: 'string', describe: 'Read the password from this file (implies --password)' })
    .option('expires', { type: 'string', describe: 'The link stops working after this long (30m, 12h, 7d) or at this date' })
    .option('gateway', { type: 'string', describe: 'Public address of the "veilfs serve" that links point at; kept as the vault\'s setting' })
    .example('$0 share ~/drive/photos --expires 7d', 'share a folder for a week') as any,
  handler: async (argv) => {
    const request: ShareRequest = { path: '/', snapshot: argv.snapshot, gateway: argv.gateway };
    if (argv.expires) request.expires = parseExpiry(argv.expires);
    if (argv.password || argv.passwordFile) {
      request.password = await getPassphrase({ passphraseFile: argv.passwordFile }, { confirm: true, prompt: 'Password for the link: ', envVar: 'VEILFS_SHARE_PASSWORD', fileOption: '--password-file FILE' });
    }
    const share = await withShares(argv, argv.path,
      async (socket, inner) => (await ask(socket, { command: 'share', request: { ...request, path: inner } })).share!,
      (shares, inner) => shares.create({ ...request, path: inner }));
    process.stdout.write(`${share.link}\n`);
  },
};

export const sharesCommand: CommandModule<object, StoreArgs & { mountpoint?: string }> = {
  command: 'shares [mountpoint]',
  describe: 'List the links of a drive that are not revoked',
  builder: (y: Argv) => storeOptions(y).positional('mountpoint', { type: 'string' }) as any,
  handler: async (argv) => {
    const list = await withShares(argv, argv.mountpoint,
      async (socket) => (await ask(socket, { command: 'shares' })).shares!,
      (shares) => shares.list());
    if (!list.length && process.stdout.isTTY) process.stdout.write('no shares\n');
    for (const share of list) process.stdout.write(`${describe(share)}\n`);
  },
};

export const unshareCommand: CommandModule<object, StoreArgs & { share: string; mountpoint?: string }> = {
  command: 'unshare <share>',
  describe: 'Revoke a link at once: by its id, or every link of a path',
  builder: (y: Argv) => storeOptions(y)
    // Not "target": storeOptions reads that as a vault name.
    .positional('share', { type: 'string', demandOption: true, describe: 'A share id (see "veilfs shares") or a shared path on a mounted drive' })
    .option('mountpoint', { type: 'string', describe: 'The drive, when several are mounted and the target is an id' }) as any,
  handler: async (argv) => {
    const isId = /^[0-9a-f]{32}$/.test(argv.share);
    const ids = await withShares(argv, isId ? argv.mountpoint : argv.share,
      async (socket, inner) => (await ask(socket, { command: 'unshare', target: isId ? argv.share : inner })).revoked!,
      (shares, inner) => shares.revoke(isId ? argv.share : inner));
    for (const id of ids) process.stdout.write(`revoked ${id}\n`);
  },
};
