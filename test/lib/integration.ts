import type { Test } from 'tap';
import { randomBytes, randomInt } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { cliEnv, mountDrive, sh, veilfs } from './cli.js';
import type { StoreKind } from './stores.js';

const TREE = '/usr/share/doc';

/** What users do with a drive, through a real mount, against one kind of store. */
export function integrationSuite(t: Test, kind: StoreKind): void {

  t.test('a real tree in, tools on it, unmount, remount, still equal', async (t) => {
    const cli = cliEnv(t, kind);
    t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0, 'init');
    const m = path.join(cli.dir, 'mnt');
    let drive = await mountDrive(t, cli, m);

    t.equal((await sh(`cp -a ${TREE} ${m}/doc`)).code, 0, 'cp -a');
    const diff = await sh(`diff -r --no-dereference ${TREE} ${m}/doc`);
    t.equal(diff.code, 0, `diff -r equal ${diff.stdout.slice(0, 500)}`);

    const local = path.join(cli.dir, 'local');
    const tar = await sh(`mkdir -p ${local} ${m}/tarred && tar -C ${TREE} -cf - . | tar -C ${m}/tarred -xf - && tar -C ${m}/tarred -cf - . | tar -C ${local} -xf -`);
    t.equal(tar.code, 0, `tar into and out of the drive ${tar.stderr}`);
    t.equal((await sh(`diff -r --no-dereference ${TREE} ${local}`)).code, 0, 'tar round trip equal');

    t.equal((await sh(`mv ${m}/tarred ${m}/renamed && test ! -e ${m}/tarred && test -d ${m}/renamed`)).code, 0, 'mv of a directory');
    t.equal((await sh(`diff -r --no-dereference ${TREE} ${m}/renamed`)).code, 0, 'moved tree intact');
    t.equal((await sh(`rm -rf ${m}/renamed && test ! -e ${m}/renamed`)).code, 0, 'rm -rf');
    t.equal((await sh(`ln -s doc ${m}/link && ln -s /nowhere ${m}/dangling && test "$(readlink ${m}/link)" = doc && ls ${m}/link/ >/dev/null`)).code, 0, 'symlinks');
    t.equal((await sh(`ln ${m}/doc/tar/copyright ${m}/hardlink 2>/dev/null || cp ${TREE}/tar/copyright ${m}/hardlink; cmp ${m}/hardlink ${TREE}/tar/copyright`)).code, 0);

    // No wait: every name of a hard link shows the current link count at once.
    const listing = (await sh(`cd ${m} && ls -lR --time-style=full-iso doc`)).stdout;
    t.equal((await drive.unmount()).code, 0, 'unmount');
    t.notOk(existsSync(path.join(m, 'doc')), 'nothing visible once unmounted');

    drive = await mountDrive(t, cli, m);
    t.equal((await sh(`diff -r --no-dereference ${TREE} ${m}/doc`)).code, 0, 'equal after remount');
    t.equal((await sh(`cd ${m} && ls -lR --time-style=full-iso doc`)).stdout, listing, 'same names, modes, sizes, times');
    t.equal((await sh(`readlink ${m}/dangling`)).stdout.trim(), '/nowhere');
    t.equal((await drive.unmount()).code, 0);
  });

  t.test('dd at random offsets in a sparse file larger than 4 GiB matches a reference', async (t) => {
    const cli = cliEnv(t, kind);
    await veilfs(['init', '--store', cli.store], cli.env);
    const m = path.join(cli.dir, 'mnt');
    let drive = await mountDrive(t, cli, m);
    const ref = path.join(cli.dir, 'ref.bin');
    const size = 4.5 * 2 ** 30;
    t.equal((await sh(`truncate -s ${size} ${m}/big && truncate -s ${size} ${ref}`)).code, 0);
    const chunk = path.join(cli.dir, 'chunk');
    for (let i = 0; i < 24; i++) {
      const len = randomInt(1, 3 * 1024 * 1024);
      writeFileSync(chunk, randomBytes(len));
      const offset = i === 0 ? size - len : randomInt(0, size - len);
      const dd = (target: string) => `dd if=${chunk} of=${target} bs=1M seek=${offset} oflag=seek_bytes conv=notrunc,fsync status=none`;
      const r = await sh(`${dd(`${m}/big`)} && ${dd(ref)}`);
      t.equal(r.code, 0, `dd ${len} bytes at ${offset} ${r.stderr}`);
    }
    t.equal((await sh(`stat -c %s ${m}/big`)).stdout.trim(), String(size));
    t.equal((await sh(`cmp ${ref} ${m}/big`, { timeoutMs: 900_000 })).code, 0, 'identical to the reference');
    const du = Number((await sh(`du -k ${m}/big`)).stdout.split('\t')[0]);
    t.ok(du < 200 * 1024, `sparse on the drive too (${du} KiB allocated)`);
    await drive.unmount();
    drive = await mountDrive(t, cli, m);
    t.equal((await sh(`cmp ${ref} ${m}/big`, { timeoutMs: 900_000 })).code, 0, 'identical after remount');
    await drive.unmount();
  });

  t.test('kill -9 after fsync: fsynced data survives, the tree is consistent', async (t) => {
    const cli = cliEnv(t, kind);
    await veilfs(['init', '--store', cli.store], cli.env);
    const m = path.join(cli.dir, 'mnt');
    const drive = await mountDrive(t, cli, m);
    const durable = randomBytes(3 * 1024 * 1024 + 77);
    await sh(`mkdir -p ${m}/keep/deep`);
    const fd = openSync(path.join(m, 'keep/deep/durable.bin'), 'w');
    writeSync(fd, durable);
    fsyncSync(fd);
    closeSync(fd);
    // Closed without fsync: close (FUSE flush) also makes data durable.
    const closed = randomBytes(1024 * 1024 + 3);
    writeFileSync(path.join(m, 'closed.bin'), closed);
    // Still open, never synced: may or may not survive, must not corrupt anything.
    const open = openSync(path.join(m, 'volatile.bin'), 'w');
    writeSync(open, randomBytes(1024 * 1024));
    await drive.crash();
    t.throws(() => closeSync(open), { code: 'ENOTCONN' }, 'the open descriptor sees the dead daemon');
    t.notOk(existsSync(path.join(m, 'keep')), 'the dead mount is gone');

    const again = await mountDrive(t, cli, m);
    t.equal(Buffer.compare(readFileSync(path.join(m, 'keep/deep/durable.bin')), durable), 0, 'fsynced file intact');
    t.equal(Buffer.compare(readFileSync(path.join(m, 'closed.bin')), closed), 0, 'closed file intact');
    t.equal((await sh(`find ${m} | wc -l`)).code, 0, 'tree walks');
    if (existsSync(path.join(m, 'volatile.bin'))) {
      t.equal((await sh(`cat ${m}/volatile.bin > /dev/null`)).code, 0, 'an unsynced file that survived reads without error');
    }
    await again.unmount();
  });
}
