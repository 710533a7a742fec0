import t from 'tap';
import * as path from 'node:path';
import { changePassphrase, createVault, readHeader, unlockVault } from '../src/format/vault.js';
import { HEADER_KEY } from '../src/format/names.js';
import { UserError } from '../src/errors.js';
import { LocalStore } from '../src/store/local.js';
import { tempDir } from './lib/tmp.js';

t.test('master key wraps and unwraps; wrong passphrase is a clear UserError', async (t) => {
  const store = new LocalStore(path.join(tempDir(t), 's'));
  const created = await createVault(store, 'right', { kdfLogN: 10 });
  const unlocked = await unlockVault(store, 'right');
  t.equal(unlocked.masterKey.toString('hex'), created.masterKey.toString('hex'));
  await t.rejects(unlockVault(store, 'wrong'), { name: 'UserError', message: /wrong passphrase/ });
  await t.rejects(createVault(store, 'again', { kdfLogN: 10 }), { message: /already exists/ });
});

t.test('header holds no secrets in clear and binds its parameters', async (t) => {
  const store = new LocalStore(path.join(tempDir(t), 's'));
  const { masterKey } = await createVault(store, 'pw', { kdfLogN: 10, blockSize: 128 * 1024, version: 1 });
  const raw = (await store.get(HEADER_KEY)).toString();
  t.notMatch(raw, masterKey.toString('base64'));
  t.notMatch(raw, masterKey.toString('hex'));
  const header = JSON.parse(raw);
  t.equal(header.version, 1);
  // A format-1 header relabelled as format 2 (and a fitting block size) no longer unlocks.
  await store.put(HEADER_KEY, Buffer.from(JSON.stringify({ ...header, version: 2, blockSize: 64 * 1024 })));
  await t.rejects(unlockVault(store, 'pw'), UserError, 'the version is bound to the wrapped key');
  header.blockSize = 256 * 1024; // an attacker changes a public parameter
  await store.put(HEADER_KEY, Buffer.from(JSON.stringify(header)));
  await t.rejects(unlockVault(store, 'pw'), UserError);
});

t.test('passwd re-wraps the key; data key unchanged; old passphrase stops working', async (t) => {
  const store = new LocalStore(path.join(tempDir(t), 's'));
  const { masterKey } = await createVault(store, 'old', { kdfLogN: 10 });
  const before = await readHeader(store);
  await changePassphrase(store, 'old', 'new');
  const after = await readHeader(store);
  t.not(after.kdf.salt, before.kdf.salt, 'fresh salt');
  t.equal(after.vaultId, before.vaultId);
  t.equal((await unlockVault(store, 'new')).masterKey.toString('hex'), masterKey.toString('hex'));
  await t.rejects(unlockVault(store, 'old'), { message: /wrong passphrase/ });
  await t.rejects(changePassphrase(store, 'old', 'x'), { message: /wrong passphrase/ });
});

t.test('missing vault and foreign or damaged headers give clear errors', async (t) => {
  const dir = tempDir(t);
  const store = new LocalStore(path.join(dir, 's'));
  await t.rejects(unlockVault(store, 'pw'), { message: /no vault at/ });
  await store.put(HEADER_KEY, Buffer.from('not json'));
  await t.rejects(unlockVault(store, 'pw'), { message: /damaged/ });
  await store.put(HEADER_KEY, Buffer.from('{"format":"other"}'));
  await t.rejects(unlockVault(store, 'pw'), { message: /does not hold a veilfs vault/ });
  await store.put(HEADER_KEY, Buffer.from('{"format":"veilfs","version":9}'));
  await t.rejects(unlockVault(store, 'pw'), { message: /version 9 is not supported/ });
});

t.test('a header copy damaged in transit is fetched again, whatever check it fails', async (t) => {
  const dir = tempDir(t);
  const store = new LocalStore(path.join(dir, 's'));
  // Format 1: the damages below edit its version digit.
  await createVault(store, 'pw', { kdfLogN: 10, version: 1 });
  const good = await store.get(HEADER_KEY);
  const damages: [string, (s: string) => string][] = [
    ['version key garbled', (s) => s.replace('"version"', '"vession"')],
    ['version digit changed', (s) => s.replace('"version": 1', '"version": 9')],
    ['truncated', (s) => s.slice(0, 40)],
    ['format garbled', (s) => s.replace('"veilfs"', '"veilf\u0000"')],
  ];
  for (const [what, damage] of damages) {
    let fetches = 0;
    const flaky = Object.create(store, {
      get: { value: async (key: string) => (key === HEADER_KEY && fetches++ === 0 ? Buffer.from(damage(good.toString())) : store.get(key)) },
    });
    const unlocked = await unlockVault(flaky, 'pw');
    t.equal(unlocked.header.version, 1, `${what}: unlocked from the second copy`);
    t.equal(fetches, 2, `${what}: fetched twice`);
  }
  // The same damage twice in a row is the store's content: judged, not retried forever.
  await store.put(HEADER_KEY, Buffer.from(good.toString().replace('"version": 1', '"version": 9')));
  await t.rejects(unlockVault(store, 'pw'), { message: /version 9 is not supported/ });
});
