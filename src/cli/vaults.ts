import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CommandModule } from 'yargs';
import { UserError } from '../errors.js';
import { EXIT } from '../exit-codes.js';

/** What a named vault remembers: the options one would otherwise type every time. */
export interface VaultSettings {
  store: string;
  s3Endpoint?: string;
  s3Addressing?: 'auto' | 'path' | 'virtual';
  passphraseFile?: string;
  passphraseCommand?: string;
  cacheDir?: string;
  cacheSize?: string;
}

const SETTINGS: (keyof VaultSettings)[] = ['store', 's3Endpoint', 's3Addressing', 'passphraseFile', 'passphraseCommand', 'cacheDir', 'cacheSize'];
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function vaultsFile(): string {
  const base = process.env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(base, 'veilfs', 'vaults.json');
}

async function readVaults(): Promise<Record<string, VaultSettings>> {
  try {
    return (JSON.parse(await fs.readFile(vaultsFile(), 'utf8')) as { vaults: Record<string, VaultSettings> }).vaults ?? {};
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new UserError(`cannot read ${vaultsFile()}: ${(err as Error).message}`);
  }
}

async function writeVaults(vaults: Record<string, VaultSettings>): Promise<void> {
  const file = vaultsFile();
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, `${JSON.stringify({ vaults }, null, 2)}\n`, { mode: 0o600 });
  await fs.rename(tmp, file);
}

export async function namedVault(name: string): Promise<VaultSettings> {
  const vault = (await readVaults())[name];
  if (!vault) throw new UserError(`no vault named "${name}" (see veilfs vault list; add one with veilfs vault add ${name} --store URL)`);
  return vault;
}

/** Fills what the command line left out from the named vault; flags still win. */
export async function applyVault(argv: Record<string, unknown>, name: string | undefined): Promise<void> {
  if (!name) return;
  const vault = await namedVault(name);
  for (const key of SETTINGS) {
    const value = vault[key];
    if (value === undefined) continue;
    const unset = argv[key] === undefined || (key === 's3Addressing' && argv[key] === 'auto');
    if (unset) argv[key] = value;
  }
}

interface AddArgs extends Partial<VaultSettings> {
  name: string;
}

const add: CommandModule<object, AddArgs> = {
  command: 'add <name>',
  describe: 'Remember a vault under a name (then: veilfs mount NAME MOUNTPOINT)',
  builder: (y) => y
    .positional('name', { type: 'string', demandOption: true })
    .option('store', { type: 'string', demandOption: true, describe: 'A directory, file:///path or s3://BUCKET/PREFIX' })
    .option('s3-endpoint', { type: 'string' })
    .option('s3-addressing', { choices: ['auto', 'path', 'virtual'] as const })
    .option('passphrase-file', { type: 'string', describe: 'Read the passphrase from this file' })
    .option('passphrase-command', { type: 'string', describe: 'Run this command and read the passphrase from its output' })
    .option('cache-dir', { type: 'string' })
    .option('cache-size', { type: 'string' }) as any,
  handler: async (argv) => {
    if (!NAME.test(argv.name)) throw new UserError('a vault name is letters, digits, ".", "_" and "-" (at most 64)', EXIT.USAGE);
    const vaults = await readVaults();
    const settings: VaultSettings = { store: argv.store! };
    for (const key of SETTINGS) if (argv[key] !== undefined) (settings as unknown as Record<string, unknown>)[key] = argv[key];
    // Relative paths would change meaning with the directory a later command runs in.
    for (const key of ['passphraseFile', 'cacheDir'] as const) if (settings[key]) settings[key] = path.resolve(settings[key]!);
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(settings.store)) settings.store = path.resolve(settings.store);
    const replaced = argv.name in vaults;
    vaults[argv.name] = settings;
    await writeVaults(vaults);
    process.stdout.write(`${replaced ? 'updated' : 'added'} vault ${argv.name}: ${settings.store}\n`);
  },
};

const list: CommandModule<object, { json: boolean }> = {
  command: 'list',
  describe: 'The named vaults',
  builder: (y) => y.option('json', { type: 'boolean', default: false }) as any,
  handler: async (argv) => {
    const vaults = await readVaults();
    if (argv.json) {
      process.stdout.write(`${JSON.stringify(vaults, null, 2)}\n`);
      return;
    }
    const names = Object.keys(vaults).sort();
    if (names.length === 0) process.stdout.write(`no named vaults (veilfs vault add NAME --store URL; kept in ${vaultsFile()})\n`);
    for (const name of names) process.stdout.write(`${name}\t${vaults[name].store}\n`);
  },
};

const remove: CommandModule<object, { name: string }> = {
  command: 'remove <name>',
  describe: 'Forget a named vault (its store is not touched)',
  builder: (y) => y.positional('name', { type: 'string', demandOption: true }) as any,
  handler: async (argv) => {
    const vaults = await readVaults();
    if (!(argv.name in vaults)) throw new UserError(`no vault named "${argv.name}"`);
    delete vaults[argv.name];
    await writeVaults(vaults);
  },
};

export const vaultCommand: CommandModule = {
  command: 'vault <command>',
  describe: 'Named vaults: add, list, remove',
  builder: (y) => y.command(add).command(list).command(remove).demandCommand(1),
  handler: () => {},
};
