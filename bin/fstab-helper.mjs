// mount(8) helper behind bin/mount.fuse.veilfs: turns "SOURCE MOUNTPOINT -o OPTIONS" into veilfs mount --daemon.
// SOURCE is a named vault (veilfs vault add) or a store (an absolute directory, file://, s3://).
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const VALUE_OPTIONS = {
  passphrase_file: '--passphrase-file', passphrase_command: '--passphrase-command', cache_size: '--cache-size',
  cache_dir: '--cache-dir', journal_size: '--journal-size', commit_interval: '--commit-interval',
  store_timeout: '--store-timeout', s3_endpoint: '--s3-endpoint', s3_addressing: '--s3-addressing',
};
const FLAG_OPTIONS = { allow_other: '--allow-other', ro: '--read-only' };
// Generic mount(8) and systemd options that are not veilfs' business.
const IGNORED = /^(rw|defaults|auto|noauto|user|users|nouser|owner|group|_netdev|nofail|dev|nodev|suid|nosuid|exec|noexec|async|sync|atime|noatime|relatime|strictatime|x-.*|comment=.*)$/;

const [source, mountpoint, ...rest] = process.argv.slice(2);
if (!source || !mountpoint) {
  process.stderr.write('usage: mount.fuse.veilfs VAULT-OR-STORE MOUNTPOINT [-o OPTIONS]\n');
  process.exit(64);
}
const options = [];
for (let i = 0; i < rest.length; i++) {
  if (rest[i] === '-o') options.push(...(rest[++i] ?? '').split(',').filter(Boolean));
  else if (rest[i].startsWith('-o')) options.push(...rest[i].slice(2).split(',').filter(Boolean));
}
const args = ['mount', '--daemon'];
args.push(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(source) && !source.includes('/') ? '--vault' : '--store', source);
for (const option of options) {
  const [key, ...value] = option.split('=');
  if (key in VALUE_OPTIONS && value.length) args.push(VALUE_OPTIONS[key], value.join('='));
  else if (key in FLAG_OPTIONS && !value.length) args.push(FLAG_OPTIONS[key]);
  else if (!IGNORED.test(option)) {
    process.stderr.write(`mount.fuse.veilfs: unknown option "${option}"\n`);
    process.exit(64);
  }
}
args.push(mountpoint);
const veilfs = path.join(path.dirname(fileURLToPath(import.meta.url)), 'veilfs');
const result = spawnSync(veilfs, args, { stdio: 'inherit' });
process.exit(result.status ?? 1);
