import t from 'tap';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getShare, openLink } from '../src/share/client.js';
import { parseLink, type ShareLink } from '../src/share/link.js';
import { startGateway } from '../src/share/gateway.js';
import { LocalStore } from '../src/store/local.js';
import { cliEnv, veilfs } from './lib/cli.js';
import { tempDir } from './lib/tmp.js';

// Share records written by the first release of share links must keep working: served, fetched and listed by today's code.
const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'share-v1');
const expected = JSON.parse(readFileSync(path.join(fixture, 'expected.json'), 'utf8'));
const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

t.test('share-v1 fixture: served, fetched and listed by today\'s code', async (t) => {
  const dir = tempDir(t, 'veilfs-share-fixture');
  const storeDir = path.join(dir, 'store');
  cpSync(path.join(fixture, 'store'), storeDir, { recursive: true });
  const server = await startGateway({ store: new LocalStore(storeDir) }, { host: '127.0.0.1', port: 0 });
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // The links name the owner's public gateway; this test's gateway stands in for it.
  const here = (link: string): ShareLink => ({ ...parseLink(link), gateway: base });
  const noPassword = async (): Promise<string> => {
    throw new Error('asked for a password');
  };

  const folder = here(expected.folder.link);
  const { manifest } = await openLink(folder, noPassword);
  t.equal(manifest.root.name, expected.folder.name);
  const got = await getShare(folder, manifest, path.join(dir, 'folder'));
  for (const [file, hash] of Object.entries(expected.folder.files as Record<string, string>)) t.equal(sha(path.join(got, file)), hash, file);
  t.notOk(existsSync(path.join(got, 'private.txt')), 'the sibling is not part of it');

  const passwordLink = here(expected.password.link);
  await t.rejects(openLink(passwordLink, async () => 'wrong'), /wrong password/);
  const { manifest: file } = await openLink(passwordLink, async () => expected.password.password);
  const dest = await getShare(passwordLink, file, path.join(dir, 'a.txt'));
  t.equal(sha(dest), expected.password.sha256, 'the password link');

  await t.rejects(openLink(here(expected.revoked.link), noPassword), /revoked/, 'the revoked link stays revoked');

  const cli = cliEnv(t);
  const listed = await veilfs(['shares', '--store', storeDir], { ...cli.env, VEILFS_PASSPHRASE: expected.passphrase });
  t.equal(listed.code, 0, listed.stderr);
  t.match(listed.stdout, expected.folder.link, 'the owner lists the folder link');
  t.match(listed.stdout, expected.password.link, 'and the password link');
  t.match(listed.stdout, /\/shared\/a\.txt .*password yes/);
  t.notMatch(listed.stdout, '96e721a3df8fc6e29f721f9bcbcc4812', 'not the revoked one');
  const fsck = await veilfs(['fsck', '--store', storeDir], { ...cli.env, VEILFS_PASSPHRASE: expected.passphrase });
  t.equal(fsck.code, 0, `fsck is clean with share objects in the store: ${fsck.stdout}${fsck.stderr}`);
});
