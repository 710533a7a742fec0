import t from 'tap';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { cliEnv, mountDrive, run, sh, veilfs } from './lib/cli.js';
import { fuseRequests } from './lib/fuse-trace.js';

/*
 * Writes of a large buffer reach the daemon as requests of up to 1 MiB
 * (native/veilfs-fuse.c asks for them at INIT), not as 128 KiB pieces:
 * one round trip per MiB. Reads come as the kernel's readahead makes them
 * (128 KiB unless its read_ahead_kb is raised). Whatever the size, the
 * bytes are the ones written.
 */

const MIB = 1024 * 1024;

t.test('a dd with 1 MiB blocks writes one request per MiB, and reads back what it wrote', async (t) => {
  const cli = cliEnv(t);
  t.equal((await veilfs(['init', '--store', cli.store], cli.env)).code, 0, 'init');
  const source = path.join(cli.dir, 'source');
  writeFileSync(source, randomBytes(8 * MIB + 12_345));
  const m = path.join(cli.dir, 'mnt');
  let drive = await mountDrive(t, cli, m);
  const trace = fuseRequests(m);
  if (!trace) t.comment('no fuse tracepoints here: request sizes not checked');

  const write = () => run(`dd if=${source} of=${m}/big bs=1M conv=fsync status=none`);
  if (trace) {
    const writes = (await trace.list(write)).filter((r) => r.op === 'WRITE');
    t.ok(writes.length <= 10, `8 MiB and a bit were written in ${writes.length} requests (128 KiB pieces: 66)`);
    t.ok(Math.max(...writes.map((w) => w.len)) > MIB, 'the largest carried a whole MiB');
  } else {
    await write();
  }
  t.equal((await drive.unmount()).code, 0, 'unmount');

  // A fresh mount: nothing of the file is in the kernel's page cache.
  drive = await mountDrive(t, cli, m);
  t.equal((await sh(`dd if=${m}/big of=${cli.dir}/back bs=1M status=none`)).code, 0, 'read back with 1 MiB blocks');
  t.equal((await sh(`cmp ${source} ${cli.dir}/back`)).code, 0, 'the bytes read back are the bytes written');
  t.equal((await sh(`cmp ${source} ${m}/big`)).code, 0, 'and so are those of a small-buffer read (cmp)');
  t.equal((await drive.unmount()).code, 0, 'unmount');
});
