import t from 'tap';
import { readdirSync, readFileSync, statSync, writeFileSync, mkdirSync, symlinkSync } from 'node:fs';
import * as path from 'node:path';
import { cliEnv, mountDrive, veilfs } from './lib/cli.js';

function allFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...allFiles(p));
    else out.push(p);
  }
  return out;
}

t.test('the store holds no name, content, link target or size in clear', async (t) => {
  const cli = cliEnv(t);
  await veilfs(['init', '--store', cli.store], cli.env);
  const m = path.join(cli.dir, 'mnt');
  const drive = await mountDrive(t, cli, m);
  const secrets = {
    dirName: 'TopSecretProjectFolder',
    fileName: 'quarterly-results-draft.txt',
    content: 'The merger with Initech closes on Friday',
    repeated: 'ZYXWVUTSRQ',
    linkTarget: 'hidden-link-destination-name',
  };
  mkdirSync(path.join(m, secrets.dirName));
  writeFileSync(path.join(m, secrets.dirName, secrets.fileName), secrets.content);
  // A big file of one repeated marker: catches plaintext blocks and ECB-like leaks.
  writeFileSync(path.join(m, 'big.bin'), secrets.repeated.repeat(300_000));
  writeFileSync(path.join(m, 'exact-size.bin'), Buffer.alloc(123_457, 7));
  symlinkSync(secrets.linkTarget, path.join(m, 'a-link'));
  t.equal((await drive.unmount()).code, 0);

  const files = allFiles(cli.store);
  t.ok(files.length > 5, `store holds ${files.length} objects`);
  const needles = Object.values(secrets).flatMap((s) => [Buffer.from(s), Buffer.from(s, 'utf16le')]);
  needles.push(Buffer.from('a-link'), Buffer.from('big.bin'), Buffer.from('exact-size'));
  let hits = 0;
  for (const file of files) {
    const rel = path.relative(cli.store, file);
    const bytes = readFileSync(file);
    for (const needle of needles) {
      if (rel.includes(needle.toString()) || bytes.includes(needle)) {
        hits++;
        t.fail(`${rel} contains ${JSON.stringify(needle.toString())}`);
      }
    }
    if (rel !== 'veilfs.json') {
      t.not(bytes.length, 123_457, `${rel} does not reveal an exact file size`);
      t.ok(bytes.length === 0 || !/^[\x20-\x7e\s]*$/.test(bytes.subarray(0, 64).toString('latin1')), `${rel} is not plain text`);
    }
  }
  t.equal(hits, 0, 'no secret found in any object or object key');
  const header = JSON.parse(readFileSync(path.join(cli.store, 'veilfs.json'), 'utf8'));
  t.same(Object.keys(header).sort(), ['blockSize', 'format', 'kdf', 'masterKey', 'vaultId', 'version'], 'the header has only public parameters');
});
