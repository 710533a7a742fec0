import { promises as fs } from 'node:fs';
import { UserError } from '../errors.js';

export interface PassphraseSource {
  passphraseFile?: string;
}

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
        if (ch === '\u0003') return done(new UserError('cancelled', 130));
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
  const env = process.env[envVar];
  if (env !== undefined) return check(env);
  if (!process.stdin.isTTY) {
    throw new UserError(`no passphrase: use ${opts.fileOption ?? '--passphrase-file'} FILE or set ${envVar} (no terminal to ask on)`);
  }
  const first = check(await promptHidden(opts.prompt ?? 'Passphrase: '));
  if (opts.confirm) {
    const second = await promptHidden('Repeat passphrase: ');
    if (second !== first) throw new UserError('the passphrases do not match');
  }
  return first;
}
