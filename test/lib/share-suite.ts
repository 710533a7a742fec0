import type { Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { BIN, cliEnv, mountDrive, sh, veilfs, type CliEnv, type MountHandle } from './cli.js';
import { isMounted } from '../../src/fuse/mounts.js';
import { openLink } from '../../src/share/client.js';
import { parseLink } from '../../src/share/link.js';
import { allObjects, openTestStore, type StoreKind } from './stores.js';
import { tempDir } from './tmp.js';
import { gradientPng, toneWav } from './media.js';
import { browserChecks, browserTampered } from './share-browser.js';

export interface Gateway {
  url: string;
  log(): string;
  child: ChildProcess;
}

/** `veilfs serve` on a free loopback port, stopped (by PID) at teardown. */
export async function startServe(t: Test, cli: CliEnv): Promise<Gateway> {
  const child = spawn(BIN, ['serve', '--store', cli.store, '--listen', '127.0.0.1:0'], { env: cli.env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGTERM');
  });
  const deadline = Date.now() + 30_000;
  let m: RegExpExecArray | null;
  while (!(m = /on (http:\/\/[\d.]+:\d+)/.exec(log))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`veilfs serve did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url: m[1], log: () => log, child };
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface SharedVault {
  cli: CliEnv;
  mount: MountHandle;
  gateway: Gateway;
  dir: string;
  /** Plain copies of what was written, to compare against. */
  bigFile: string;
  bigSize: number;
  texts: Record<string, string>;
}

async function share(t: Test, cli: CliEnv, args: string[], env: NodeJS.ProcessEnv = cli.env): Promise<string> {
  const result = await veilfs(['share', ...args], env);
  t.equal(result.code, 0, `veilfs share ${args.join(' ')}: ${result.stderr.trim()}`);
  const link = result.stdout.trim();
  t.match(link, /^http:\/\/[\d.:]+\/s\/[0-9a-f]{32}#[A-Za-z0-9_-]{43}$/, 'a link with the key in its fragment');
  return link;
}

const idOf = (link: string) => /\/s\/([0-9a-f]{32})#/.exec(link)![1];
const keyOf = (link: string) => link.slice(link.indexOf('#') + 1);

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Share links end to end against one kind of store: `veilfs share`, a real
 * `veilfs serve`, `veilfs get` (with a kill and a resume), live and snapshot
 * shares, passwords, expiry, revocation, isolation, gc, the privacy of the
 * store and of the gateway's log, and the page in a real browser.
 */
export function shareSuite(t: Test, kind: StoreKind): void {
  t.test(`share links on the ${kind} store`, async (t) => {
    const cli = cliEnv(t, kind);
    const dir = tempDir(t, 'veilfs-share');
    t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0, 'init');
    const mnt = path.join(dir, 'mnt');
    const mount = await mountDrive(t, cli, mnt, ['--commit-interval', '1']);
    const gateway = await startServe(t, cli);

    // What gets shared, and a sibling that must stay private.
    const bigSize = Number(process.env.VEILFS_SHARE_BIG_MB ?? (kind === 'local' ? 1024 : 256)) * 2 ** 20;
    const bigFile = path.join(dir, 'big.bin');
    t.equal((await sh(`head -c ${bigSize} /dev/urandom > ${bigFile}`)).code, 0);
    const album = path.join(mnt, 'Holiday Album');
    mkdirSync(path.join(album, 'many'), { recursive: true });
    const texts = { notes: 'Meet at the harbour at nine.\n', sibling: 'The private sibling nobody may read\n' };
    writeFileSync(path.join(album, 'notes.txt'), texts.notes);
    writeFileSync(path.join(album, 'photo.png'), gradientPng(200, 120));
    writeFileSync(path.join(album, 'song.wav'), toneWav(30));
    writeFileSync(path.join(album, 'medium.bin'), randomBytes(5 * 2 ** 20 + 12_345));
    writeFileSync(path.join(album, 'empty.txt'), '');
    for (let i = 0; i < 1000; i++) writeFileSync(path.join(album, 'many', `file-${String(i).padStart(4, '0')}.dat`), randomBytes(i * 7 % 5000));
    writeFileSync(path.join(mnt, 'private-sibling.txt'), texts.sibling);
    t.equal((await sh(`cp ${bigFile} ${path.join(mnt, 'big.bin')}`)).code, 0, 'a big file copied in');
    writeFileSync(path.join(mnt, 'solo.bin'), randomBytes(9 * 2 ** 20));
    const vault: SharedVault = { cli, mount, gateway, dir, bigFile, bigSize, texts };

    const folderLink = await share(t, cli, [album, '--gateway', gateway.url]);
    const fileLink = await share(t, cli, [path.join(mnt, 'big.bin')]);
    const manyLink = await share(t, cli, [path.join(album, 'many')]);
    const snapshotLink = await share(t, cli, [path.join(album, 'notes.txt'), '--snapshot']);
    const soloLink = await share(t, cli, [path.join(mnt, 'solo.bin'), '--snapshot']);
    // Rewritten whole: the packs of the first version are held by the snapshot link alone now.
    const soloFirst = readFileSync(path.join(mnt, 'solo.bin'));
    writeFileSync(path.join(mnt, 'solo.bin'), randomBytes(9 * 2 ** 20));
    const passwordLink = await share(t, cli, [path.join(album, 'notes.txt'), '--password'], { ...cli.env, VEILFS_SHARE_PASSWORD: 'open sesame' });
    const listed = await veilfs(['shares', mnt], cli.env);
    t.equal(listed.code, 0);
    for (const link of [folderLink, fileLink, manyLink, snapshotLink, passwordLink]) t.match(listed.stdout, link, 'listed with its link');
    t.match(listed.stdout, /\/Holiday Album\/notes\.txt .*password yes .*live/, 'the password and live flags listed');

    const get = (link: string, dest: string, env: NodeJS.ProcessEnv = cli.env) => veilfs(['get', link, dest], env, 600_000);

    t.test('a folder comes back identical, 1,000 files and all', async (t) => {
      const dest = path.join(dir, 'got-folder');
      const fetchedSince = (at: number) => [...gateway.log().slice(at).matchAll(/ 206 (\d+)B /g)].reduce((n, m) => n + Number(m[1]), 0);
      const firstAt = gateway.log().length;
      const result = await get(folderLink, dest);
      const whole = fetchedSince(firstAt);
      t.equal(result.code, 0, result.stderr);
      t.equal((await sh(`diff -r '${album}' '${dest}'`)).code, 0, 'diff -r finds no difference');
      t.ok(Math.abs(statSync(path.join(dest, 'notes.txt')).mtimeMs - statSync(path.join(album, 'notes.txt')).mtimeMs) < 1, 'modification times kept (to the millisecond)');

      // As a download interrupted halfway leaves it: some files missing, one half written.
      for (let i = 500; i < 1000; i++) rmSync(path.join(dest, 'many', `file-${String(i).padStart(4, '0')}.dat`));
      const medium = readFileSync(path.join(dest, 'medium.bin'));
      rmSync(path.join(dest, 'medium.bin'));
      writeFileSync(path.join(dest, 'medium.bin.veilfs-part'), medium.subarray(0, 3 * 2 ** 20 + 5));
      const logBefore = gateway.log().length;
      const resumed = await get(folderLink, dest);
      t.equal(resumed.code, 0, resumed.stderr);
      t.equal((await sh(`diff -r '${album}' '${dest}'`)).code, 0, 'resumed: identical again');
      const fetched = fetchedSince(logBefore);
      t.ok(fetched > 0 && fetched < whole * 0.6, `only what was missing was fetched (${fetched} of ${whole} bytes)`);
    });

    t.test('veilfs mount LINK: the share as a read-only drive', async (t) => {
      const where = path.join(dir, 'link-mount');
      mkdirSync(where);
      const child = spawn(BIN, ['mount', folderLink, where], { env: cli.env, stdio: ['ignore', 'ignore', 'pipe'] });
      let log = '';
      child.stderr!.on('data', (d) => (log += d));
      const exited = new Promise((resolve) => child.on('exit', resolve));
      t.teardown(async () => {
        if (await isMounted(where)) await veilfs(['unmount', where], cli.env);
        if (child.exitCode === null) child.kill('SIGKILL');
      });
      await waitFor('the link mount', () => isMounted(where), 60_000).catch((err) => {
        throw new Error(`${err.message}: ${log}`);
      });
      t.equal((await sh(`diff -r '${album}' '${where}'`)).code, 0, 'diff -r: the same tree and bytes as the owner sees');
      t.equal((await sh(`cat '${where}/medium.bin' | cmp - '${album}/medium.bin'`)).code, 0, 'read through the cache and readahead');
      const write = await sh(`echo x > '${where}/new.txt'`);
      t.match(write.stderr, /Read-only file system/, 'read-only');
      t.equal((await veilfs(['unmount', where], cli.env)).code, 0, 'veilfs unmount');
      await exited;
      t.notOk(await isMounted(where), 'unmounted');
    });

    t.test('veilfs mount --daemon LINK: returns once the share is mounted', async (t) => {
      const where = path.join(dir, 'link-daemon');
      mkdirSync(where);
      t.teardown(async () => {
        if (await isMounted(where)) await veilfs(['unmount', where], cli.env);
      });
      const started = Date.now();
      const r = await veilfs(['mount', '--daemon', folderLink, where], cli.env, 60_000);
      t.equal(r.code, 0, r.stderr);
      t.ok(Date.now() - started < 30_000, 'it returned when the daemon said so, not at a deadline');
      t.ok(await isMounted(where), 'mounted when the command returns');
      t.equal((await sh(`cmp '${where}/notes.txt' '${album}/notes.txt'`)).code, 0, 'a file reads back');
      t.equal((await veilfs(['unmount', where], cli.env)).code, 0, 'veilfs unmount');
    });

    t.test('a big file: killed halfway, resumed, verified', async (t) => {
      const dest = path.join(dir, 'got-big.bin');
      const part = `${dest}.veilfs-part`;
      const child = spawn(BIN, ['get', fileLink, dest], { env: cli.env, stdio: 'ignore' });
      const exited = new Promise((resolve) => child.on('exit', resolve));
      await waitFor('half the download', () => existsSync(part) && statSync(part).size >= bigSize / 2, 300_000);
      child.kill('SIGKILL');
      await exited;
      const kept = statSync(part).size;
      t.ok(kept >= bigSize / 2 && kept < bigSize, `the interrupted download left ${kept} bytes`);
      const logBefore = gateway.log().length;
      const started = Date.now();
      const result = await get(fileLink, dest);
      const seconds = (Date.now() - started) / 1000;
      t.equal(result.code, 0, result.stderr);
      t.notOk(existsSync(part), 'the part file became the file');
      t.equal(await sha256File(dest), await sha256File(bigFile), 'SHA-256 identical to what was copied in');
      const fetched = [...gateway.log().slice(logBefore).matchAll(/ 206 (\d+)B /g)].reduce((n, m) => n + Number(m[1]), 0);
      t.ok(fetched >= bigSize - kept && fetched < bigSize - kept / 2, `the resumed run fetched ${fetched} bytes: the rest, not the whole file again (${((bigSize - kept) / 2 ** 20 / seconds).toFixed(1)} MiB/s)`);
      const again = await get(fileLink, dest);
      t.equal(again.code, 0, 'a finished download is not fetched again');
    });

    t.test('a live share follows changes; a snapshot does not', async (t) => {
      writeFileSync(path.join(album, 'notes.txt'), 'Changed: meet at ten.\n');
      writeFileSync(path.join(album, 'added later.txt'), 'new\n');
      const dest = path.join(dir, 'got-live');
      await waitFor('the change through the link', async () => {
        await sh(`rm -rf '${dest}'`);
        return (await get(folderLink, dest)).code === 0 && existsSync(path.join(dest, 'added later.txt'))
          && readFileSync(path.join(dest, 'notes.txt'), 'utf8') === 'Changed: meet at ten.\n';
      });
      t.pass('the live link shows the change after the commit interval');
      const snap = path.join(dir, 'got-snapshot.txt');
      t.equal((await get(snapshotLink, snap)).code, 0);
      t.equal(readFileSync(snap, 'utf8'), texts.notes, 'the snapshot still shows what was there when shared');
    });

    t.test('passwords', async (t) => {
      const wrong = await get(passwordLink, path.join(dir, 'pw-wrong.txt'), { ...cli.env, VEILFS_SHARE_PASSWORD: 'guess' });
      t.not(wrong.code, 0);
      t.match(wrong.stderr, /wrong password/);
      t.notOk(existsSync(path.join(dir, 'pw-wrong.txt')), 'nothing written');
      const none = await get(passwordLink, path.join(dir, 'pw-none.txt'), { ...cli.env, VEILFS_SHARE_PASSWORD: undefined });
      t.match(none.stderr, /no passphrase|password/i, 'no password and no terminal: a clear message');
      const right = await get(passwordLink, path.join(dir, 'pw.txt'), { ...cli.env, VEILFS_SHARE_PASSWORD: 'open sesame' });
      t.equal(right.code, 0, right.stderr);
      t.match(readFileSync(path.join(dir, 'pw.txt'), 'utf8'), /meet at/);
      const noKey = await get(passwordLink.replace(keyOf(passwordLink), randomBytes(32).toString('base64url')), path.join(dir, 'pw-key.txt'), { ...cli.env, VEILFS_SHARE_PASSWORD: 'open sesame' });
      t.match(noKey.stderr, /wrong password/, 'the right password with another link key opens nothing');
    });

    t.test('expiry', async (t) => {
      const link = await share(t, cli, [path.join(album, 'notes.txt'), '--expires', '2s']);
      await new Promise((r) => setTimeout(r, 4500));
      const result = await get(link, path.join(dir, 'expired.txt'));
      t.not(result.code, 0);
      t.match(result.stderr, /expired/);
    });

    t.test('isolation: a sub-folder link reaches nothing else', async (t) => {
      const many = idOf(manyLink);
      const record = await (await fetch(`${gateway.url}/api/s/${many}`)).json() as { ranges: Record<string, [number, number][]>; owner?: unknown };
      t.equal(record.owner, undefined, 'the owner part is not handed out');
      const folder = await (await fetch(`${gateway.url}/api/s/${idOf(folderLink)}`)).json() as { ranges: Record<string, [number, number][]> };
      const status = async (p: string, range?: string) => (await fetch(`${gateway.url}${p}`, { headers: range ? { range } : {} })).status;
      let tried = 0;
      for (const [pack, ranges] of Object.entries(folder.ranges)) {
        for (const [offset, length] of ranges) {
          const inside = (record.ranges[pack] ?? []).some(([o, l]) => offset >= o && offset + length <= o + l);
          if (inside) continue;
          tried++;
          t.equal(await status(`/api/s/${many}/p/${pack}`, `bytes=${offset}-${offset + Math.min(length, 4096) - 1}`), 404, 'a pack range of the parent folder');
        }
      }
      t.ok(tried > 0, `tried ${tried} ranges outside the sub-folder`);
      for (const [pack, ranges] of Object.entries(record.ranges)) {
        const [offset, length] = ranges[0];
        t.equal(await status(`/api/s/${many}/p/${pack}`, `bytes=${offset}-${offset + length}`), 404, 'one byte past a shared range');
        if (offset > 0) t.equal(await status(`/api/s/${many}/p/${pack}`, `bytes=${offset - 1}-${offset + 10}`), 404, 'one byte before a shared range');
        t.equal(await status(`/api/s/${many}/p/${pack}`), 416, 'no range');
        t.equal(await status(`/api/s/${randomBytes(16).toString('hex')}/p/${pack}`, `bytes=${offset}-${offset + 10}`), 404, 'a guessed share id');
      }
      for (const p of ['/api/s/settings', '/api/s/..%2f..%2fveilfs.json', `/api/s/${many}/p/..%2f..%2fveilfs.json`, '/veilfs.json', '/p/00/00', `/api/s/${many}/../../veilfs.json`, '/s/../veilfs.json']) {
        t.equal(await status(p), 404, `nothing at ${p}`);
      }
      t.equal((await fetch(`${gateway.url}/api/s/${many}`, { method: 'POST' })).status, 405, 'no writes');
      const dest = path.join(dir, 'got-many');
      t.equal((await get(manyLink, dest)).code, 0);
      t.equal((await sh(`diff -r '${path.join(album, 'many')}' '${dest}'`)).code, 0, 'the sub-folder, and only it');
    });

    t.test('in a real browser', (t) => browserChecks(t, vault, { folderLink, fileLink, passwordLink }));

    t.test('revoking works at once', async (t) => {
      const result = await veilfs(['unshare', path.join(album, 'many')], cli.env);
      t.equal(result.code, 0, result.stderr);
      t.match(result.stdout, `revoked ${idOf(manyLink)}`);
      await waitFor('the revocation at the gateway', async () => (await fetch(`${gateway.url}/api/s/${idOf(manyLink)}`)).status === 410, 10_000);
      const after = await get(manyLink, path.join(dir, 'revoked'));
      t.match(after.stderr, /revoked/);
      t.notMatch((await veilfs(['shares', mnt], cli.env)).stdout, idOf(manyLink), 'no longer listed');
    });

    t.test('gc keeps what links expose, and frees it after unshare', async (t) => {
      const record = await (await fetch(`${gateway.url}/api/s/${idOf(soloLink)}`)).json() as { ranges: Record<string, unknown> };
      const packs = Object.keys(record.ranges).map((p) => `p/${p.slice(0, 2)}/${p}`);
      t.equal((await mount.unmount()).code, 0, 'unmounted');
      const present = async () => {
        const keys = new Set((await allObjects(cli.store)).map((o) => o.key));
        return packs.filter((k) => keys.has(k)).length;
      };
      const gc1 = await veilfs(['gc', '--store', cli.store, '--min-age', '0s'], cli.env);
      t.equal(gc1.code, 0, gc1.stderr);
      t.equal(await present(), packs.length, 'every pack of the snapshot survives gc');
      const solo = path.join(dir, 'solo-after-gc.bin');
      t.equal((await get(soloLink, solo)).code, 0, 'the snapshot link still works after gc');
      t.ok(readFileSync(solo).equals(soloFirst), 'and shows the first version');
      const revoked = await veilfs(['unshare', idOf(soloLink), '--store', cli.store], cli.env);
      t.equal(revoked.code, 0, revoked.stderr);
      const gc2 = await veilfs(['gc', '--store', cli.store, '--min-age', '0s'], cli.env);
      t.equal(gc2.code, 0, gc2.stderr);
      t.ok(await present() < packs.length, 'after unshare, gc frees the packs only the link held');
      const listed = await veilfs(['shares', '--store', cli.store], cli.env);
      t.equal(listed.code, 0, listed.stderr);
      t.match(listed.stdout, idOf(folderLink), 'shares lists without a mount too');
      t.notMatch(listed.stdout, idOf(soloLink));
    });

    t.test('privacy: the store and the gateway log hold no name and no key', async (t) => {
      const needles = ['Holiday Album', 'notes.txt', 'photo.png', 'file-0001', 'private-sibling', 'harbour', 'open sesame', texts.sibling.trim()]
        .concat([folderLink, fileLink, manyLink, snapshotLink, soloLink, passwordLink].map(keyOf));
      let scanned = 0;
      for (const { key, data } of await allObjects(cli.store)) {
        scanned++;
        for (const needle of needles) {
          if (key.includes(needle) || data.includes(Buffer.from(needle))) t.fail(`${key} contains ${JSON.stringify(needle)}`);
        }
      }
      const log = gateway.log();
      t.ok(log.split('\n').length > 50, 'the gateway logged the requests');
      for (const needle of needles) t.notOk(log.includes(needle), `the gateway log does not contain ${JSON.stringify(needle)}`);
      t.ok(scanned > 10, `${scanned} store objects scanned`);
    });

    t.test('a tampered object is refused', async (t) => {
      // Last: it damages the vault on purpose.
      // The file's first segment: every reader meets it at once (a later one would take a browser minutes to reach).
      const { manifest } = await openLink(parseLink(fileLink), async () => '');
      const first = manifest.root.type === 'file' ? manifest.root.segs.find((run) => run[0] === 0) : undefined;
      if (!first) throw new Error('the shared file has no first segment');
      const [, , pack, offset] = first;
      const store = openTestStore(cli.store);
      const key = `p/${pack.slice(0, 2)}/${pack}`;
      const bytes = await store.get(key);
      bytes[offset + 100] ^= 0x40;
      await store.put(key, bytes);
      await store.close?.();
      const dest = path.join(dir, 'tampered.bin');
      const result = await get(fileLink, dest);
      t.equal(result.code, 65, `exit status 65 (data error): ${result.stderr}`);
      t.match(result.stderr, /failed authentication|altered/);
      t.notOk(existsSync(dest), 'no file handed out');
      await browserTampered(t, vault, fileLink);
    });
  });
}
