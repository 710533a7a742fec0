import t from 'tap';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { cpSync, lstatSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliEnv, mountDrive, veilfs } from './lib/cli.js';

/*
 * Every vault format this project has shipped keeps mounting: a vault made
 * by each released version is committed under test/fixtures/ (never edited)
 * and must read back exactly as its expected.json says, with today's code,
 * also after today's code has written to it.
 */
const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

interface Expected {
  passphrase: string;
  entries: Record<string, {
    type: string; mode?: string; size?: number; sha256?: string; nlink?: number; target?: string; mtime?: string; sameInodeAs?: string;
    /** Nanoseconds since the epoch, as a decimal string (may be negative). */
    mtimeNs?: string; uid?: number; gid?: number; rdev?: number; xattrs?: Record<string, string>;
  }>;
}

for (const name of ['vault-v1', 'vault-v1-0.2', 'vault-v2', 'vault-v3']) {
  t.test(`${name} mounts and reads back exactly`, async (t) => {
    const expected = JSON.parse(readFileSync(path.join(FIXTURES, name, 'expected.json'), 'utf8')) as Expected;
    const cli = cliEnv(t);
    cli.env.VEILFS_PASSPHRASE = expected.passphrase;
    const store = path.join(cli.dir, 'fixture-store');
    cpSync(path.join(FIXTURES, name, 'store'), store, { recursive: true });
    const m = path.join(cli.dir, 'mnt');
    for (const round of ['as written', 'after writing with today\'s code', 'after veilfs upgrade']) {
      if (round === 'after veilfs upgrade') {
        const up = await veilfs(['upgrade', '--store', store], cli.env);
        t.equal(up.code, 0, `upgrade: ${up.stderr}`);
        const from = Number(/^vault-v(\d+)/.exec(name)![1]);
        t.match(up.stdout, from === 3 ? /already format/ : new RegExp(`upgraded from format ${from} to 3`), 'upgrade says what it did');
        t.match(readFileSync(path.join(store, 'veilfs.json'), 'utf8'), /"version": 3/, 'the header says format 3');
      }
      const drive = await mountDrive(t, { ...cli, store }, m);
      for (const [rel, want] of Object.entries(expected.entries)) {
        const p = path.join(m, rel);
        const st = lstatSync(p);
        const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'chardev' : 'other';
        t.equal(type, want.type, `${round}: ${rel} type`);
        if (want.mode) t.equal((st.mode & 0o7777).toString(8), want.mode, `${round}: ${rel} mode`);
        if (want.size !== undefined) t.equal(st.size, want.size, `${round}: ${rel} size`);
        if (want.nlink !== undefined) t.equal(st.nlink, want.nlink, `${round}: ${rel} link count`);
        if (want.target) t.equal(readlinkSync(p), want.target, `${round}: ${rel} target`);
        if (want.mtime) t.equal(st.mtime.toISOString(), want.mtime, `${round}: ${rel} mtime`);
        if (want.sha256) t.equal(createHash('sha256').update(readFileSync(p)).digest('hex'), want.sha256, `${round}: ${rel} content`);
        if (want.mtimeNs) t.equal(lstatSync(p, { bigint: true }).mtimeNs.toString(), want.mtimeNs, `${round}: ${rel} mtime in ns`);
        if (want.uid !== undefined) t.equal(st.uid, want.uid, `${round}: ${rel} owner`);
        if (want.gid !== undefined) t.equal(st.gid, want.gid, `${round}: ${rel} group`);
        if (want.rdev !== undefined) t.equal(st.rdev, want.rdev, `${round}: ${rel} device number`);
        for (const [attr, value] of Object.entries(want.xattrs ?? {})) {
          t.equal(execFileSync('getfattr', ['--only-values', '-n', attr, p], { encoding: 'utf8' }), value, `${round}: ${rel} ${attr}`);
        }
        if (want.sameInodeAs) t.equal(st.ino, statSync(path.join(m, want.sameInodeAs)).ino, `${round}: ${rel} is a hard link`);
      }
      if (round !== 'as written') t.equal(readFileSync(path.join(m, 'new-file'), 'utf8'), 'new', `${round}: what today's code wrote`);
      if (round === 'as written') {
        // Today's code writes its own fields (nanoseconds, xattrs) into the old vault.
        writeFileSync(path.join(m, 'new-file'), 'new');
      }
      t.equal((await drive.unmount()).code, 0, `${round}: unmount`);
    }
    t.equal((await veilfs(['fsck', '--store', store], cli.env)).code, 0, 'fsck finds the vault clean');
  });
}
