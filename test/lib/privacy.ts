import type { Test } from 'tap';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { cliEnv, mountDrive, veilfs } from './cli.js';
import { allObjects, type StoreKind } from './stores.js';

function allFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...allFiles(p));
    else out.push(p);
  }
  return out;
}

const SECRETS = {
  dirName: 'TopSecretProjectFolder',
  fileName: 'quarterly-results-draft.txt',
  content: 'The merger with Initech closes on Friday',
  repeated: 'ZYXWVUTSRQ',
  linkTarget: 'hidden-link-destination-name',
};
const EXACT_SIZE = 123_457;

function needles(): Buffer[] {
  const out = Object.values(SECRETS).flatMap((s) => [Buffer.from(s), Buffer.from(s, 'utf16le')]);
  out.push(Buffer.from('a-link'), Buffer.from('big.bin'), Buffer.from('exact-size'));
  return out;
}

/** Fails the test for every secret found in a name or in bytes; returns how many. */
function scan(t: Test, where: string, name: string, bytes: Buffer): number {
  let hits = 0;
  for (const needle of needles()) {
    if (name.includes(needle.toString()) || bytes.includes(needle)) {
      hits++;
      t.fail(`${where} ${name} contains ${JSON.stringify(needle.toString())}`);
    }
  }
  return hits;
}

/** Writes known names and contents, then looks for them in every byte the store (and the local journal) holds. */
export function privacySuite(t: Test, kind: StoreKind): void {
  t.test('the store and the local journal hold no name, content, link target or size in clear', async (t) => {
    const cli = cliEnv(t, kind);
    t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0);
    const m = path.join(cli.dir, 'mnt');
    const drive = await mountDrive(t, cli, m);
    mkdirSync(path.join(m, SECRETS.dirName));
    writeFileSync(path.join(m, SECRETS.dirName, SECRETS.fileName), SECRETS.content);
    // A big file of one repeated marker: catches plaintext blocks and ECB-like leaks.
    writeFileSync(path.join(m, 'big.bin'), SECRETS.repeated.repeat(300_000));
    writeFileSync(path.join(m, 'exact-size.bin'), Buffer.alloc(EXACT_SIZE, 7));
    symlinkSync(SECRETS.linkTarget, path.join(m, 'a-link'));

    // While mounted, the journal holds these changes: ciphertext only.
    const journalFiles = allFiles(path.join(cli.dir, 'cache'));
    t.ok(journalFiles.some((f) => f.endsWith('.wal')), 'the journal was written');
    let hits = 0;
    for (const file of journalFiles) hits += scan(t, 'journal file', path.relative(cli.dir, file), readFileSync(file));
    t.equal((await drive.unmount()).code, 0);

    const objects = await allObjects(cli.store);
    t.ok(objects.length >= 3, `store holds ${objects.length} objects`);
    for (const { key, data } of objects) {
      hits += scan(t, 'object', key, data);
      if (key !== 'veilfs.json') {
        t.not(data.length, EXACT_SIZE, `${key} does not reveal an exact file size`);
        t.ok(data.length === 0 || !/^[\x20-\x7e\s]*$/.test(data.subarray(0, 64).toString('latin1')), `${key} is not plain text`);
      }
    }
    t.equal(hits, 0, 'no secret found in any object, object key or journal file');
    const header = JSON.parse(objects.find((o) => o.key === 'veilfs.json')!.data.toString('utf8'));
    t.same(Object.keys(header).sort(), ['blockSize', 'format', 'kdf', 'masterKey', 'vaultId', 'version'], 'the header has only public parameters');
  });
}
