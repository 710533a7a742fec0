import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors.js';
import { EXIT } from '../exit-codes.js';

export interface PassphraseSource {
  passphraseFile?: string;
  passphraseCommand?: string;
}

/** systemd's LoadCredential=veilfs-passphrase:… (or SetCredentialEncrypted=) lands here. */
const CREDENTIAL = 'veilfs-passphrase';

/** Reads a line from the terminal without echoing it. */
function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let text = '';
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.removeListener('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(text);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return done();
        if (ch === '\u0003') return done(new UserError('cancelled', EXIT.CANCELLED));
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
        else text += ch;
      }
    };
    stdin.on('data', onData);
  });
}

async function fromFile(file: string): Promise<string> {
  try {
    return (await fs.readFile(file, 'utf8')).replace(/\r?\n$/, '');
  } catch (err) {
    throw new UserError(`cannot read passphrase file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Like gocryptfs' -extpass: a password manager, a keyring, `pass show …`. */
function fromCommand(command: string): string {
  const result = spawnSync('/bin/sh', ['-c', command], { encoding: 'utf8', stdio: ['inherit', 'pipe', 'inherit'], timeout: 120_000 });
  if (result.error) throw new UserError(`--passphrase-command could not run: ${result.error.message}`);
  if (result.status !== 0) throw new UserError(`--passphrase-command failed (exit ${result.status ?? result.signal})`);
  return result.stdout.split(/\r?\n/)[0];
}

function check(passphrase: string): string {
  if (passphrase.length === 0) throw new UserError('the passphrase is empty');
  return passphrase;
}

/** The file option, then the environment variable, then the terminal. */
export async function getPassphrase(
  src: PassphraseSource,
  opts: { confirm?: boolean; prompt?: string; envVar?: string; fileOption?: string } = {},
): Promise<string> {
  const envVar = opts.envVar ?? 'VEILFS_PASSPHRASE';
  if (src.passphraseFile) return check(await fromFile(src.passphraseFile));
  if (src.passphraseCommand) return check(fromCommand(src.passphraseCommand));
  const env = process.env[envVar];
  if (env !== undefined) return check(env);
  if (process.env.CREDENTIALS_DIRECTORY && envVar === 'VEILFS_PASSPHRASE') {
    const credential = path.join(process.env.CREDENTIALS_DIRECTORY, CREDENTIAL);
    if (existsSync(credential)) return check(await fromFile(credential));
  }
  if (!process.stdin.isTTY) {
    throw new UserError(`no passphrase: use ${opts.fileOption ?? '--passphrase-file FILE, --passphrase-command CMD'} or set ${envVar} (no terminal to ask on)`);
  }
  const first = check(await promptHidden(opts.prompt ?? 'Passphrase: '));
  if (opts.confirm) {
    const second = await promptHidden('Repeat passphrase: ');
    if (second !== first) throw new UserError('the passphrases do not match');
  }
  return first;
}
