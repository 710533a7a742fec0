import t from 'tap';
import { randomBytes } from 'node:crypto';
import { O_APPEND, O_RDWR, O_TRUNC, O_WRONLY, type Filesystem } from '../src/vfs/filesystem.js';
import { testVault } from './lib/drive.js';

const code = (c: string) => ({ code: c });

async function write(fs: Filesystem, path: string, data: Buffer | string, at = 0): Promise<void> {
  const fd = fs.create(path, 0o644);
  await fs.write(fd, Buffer.from(data), at);
  fs.release(fd);
}

async function read(fs: Filesystem, path: string): Promise<Buffer> {
  const fd = await fs.open(path, 0);
  const size = fs.fgetattr(fd).size;
  const buf = Buffer.alloc(size);
  const n = await fs.read(fd, buf, size, 0);
  fs.release(fd);
  return buf.subarray(0, n);
}

t.test('create, read, getattr, readdir', async (t) => {
  const drive = await (await testVault(t)).open();
  const { fs } = drive;
  fs.mkdir('/docs', 0o750);
  await write(fs, '/docs/a.txt', 'hello');
  t.equal((await read(fs, '/docs/a.txt')).toString(), 'hello');
  const attr = fs.getattr('/docs/a.txt');
  t.equal(attr.size, 5);
  t.equal(attr.mode & 0o777, 0o644);
  t.equal(fs.getattr('/docs').mode & 0o777, 0o750);
  t.equal(fs.getattr('/docs').nlink, 2);
  t.equal(fs.getattr('/').nlink, 3, 'root counts its subdirectory');
  t.same(fs.readdir('/docs').names, ['.', '..', 'a.txt']);
  await drive.close();
});

t.test('errno for every misuse', async (t) => {
  const drive = await (await testVault(t)).open();
  const { fs } = drive;
  fs.mkdir('/d', 0o755);
  await write(fs, '/d/f', 'x');
  t.throws(() => fs.getattr('/nope'), code('ENOENT'));
  t.throws(() => fs.getattr('/d/f/under'), code('ENOTDIR'));
  t.throws(() => fs.mkdir('/d', 0o755), code('EEXIST'));
  t.throws(() => fs.create('/d/f', 0o644), code('EEXIST'));
  t.throws(() => fs.rmdir('/d'), code('ENOTEMPTY'));
  t.throws(() => fs.rmdir('/d/f'), code('ENOTDIR'));
  t.throws(() => fs.unlink('/d'), code('EISDIR'));
  t.throws(() => fs.unlink('/d/none'), code('ENOENT'));
  t.throws(() => fs.mkdir('/' + 'n'.repeat(256), 0o755), code('ENAMETOOLONG'));
  t.throws(() => fs.readlink('/d/f'), code('EINVAL'));
  t.throws(() => fs.readdir('/d/f'), code('ENOTDIR'));
  t.throws(() => fs.link('/d', '/d2'), code('EPERM'));
  t.throws(() => fs.rmdir('/'), code('EBUSY'));
  await t.rejects(fs.open('/d', O_RDWR), code('EISDIR'));
  await t.rejects(fs.truncate('/d', 0), code('EISDIR'));
  await t.rejects(fs.truncate('/d/f', -1), code('EINVAL'));
  const fd = await fs.open('/d/f', 0);
  await t.rejects(fs.write(fd, Buffer.from('x'), 0), code('EBADF'), 'write on a read-only descriptor');
  fs.release(fd);
  t.throws(() => fs.fgetattr(fd), code('EBADF'), 'released descriptor');
  fs.mkdir('/' + 'n'.repeat(255), 0o755); // a 255-byte name is fine
  await drive.close();
});

t.test('rename: files, directories, replacing, refusing loops', async (t) => {
  const drive = await (await testVault(t)).open();
  const { fs } = drive;
  fs.mkdir('/a', 0o755);
  fs.mkdir('/a/sub', 0o755);
  await write(fs, '/a/sub/f', 'data');
  fs.rename('/a/sub', '/moved');
  t.equal((await read(fs, '/moved/f')).toString(), 'data');
  t.throws(() => fs.getattr('/a/sub'), code('ENOENT'));
  t.equal(fs.getattr('/a').nlink, 2, 'old parent lost a subdirectory');
  t.equal(fs.getattr('/').nlink, 4);
  t.throws(() => fs.rename('/moved', '/moved/inner'), code('EINVAL'), 'into its own subtree');
  await write(fs, '/x', 'new');
  await write(fs, '/y', 'old');
  fs.rename('/x', '/y');
  t.equal((await read(fs, '/y')).toString(), 'new', 'replaces an existing file');
  t.throws(() => fs.getattr('/x'), code('ENOENT'));
  t.throws(() => fs.rename('/y', '/a'), code('EISDIR'));
  t.throws(() => fs.rename('/moved', '/y'), code('ENOTDIR'));
  t.throws(() => fs.rename('/a', '/moved'), code('ENOTEMPTY'));
  fs.mkdir('/empty', 0o755);
  fs.rename('/moved', '/empty');
  t.equal((await read(fs, '/empty/f')).toString(), 'data', 'replaces an empty directory');
  t.throws(() => fs.rename('/nothing', '/z'), code('ENOENT'));
  fs.rename('/y', '/y');
  t.equal((await read(fs, '/y')).toString(), 'new', 'rename onto itself is a no-op');
  await drive.close();
});

t.test('symlinks, hard links, chmod, chown, utimens', async (t) => {
  const drive = await (await testVault(t)).open();
  const { fs } = drive;
  await write(fs, '/f', 'content');
  fs.symlink('../target/of/link', '/l');
  t.equal(fs.readlink('/l'), '../target/of/link');
  t.equal(fs.getattr('/l').mode & 0o170000, 0o120000);
  fs.link('/f', '/hard');
  t.equal(fs.getattr('/f').nlink, 2);
  fs.unlink('/f');
  t.equal((await read(fs, '/hard')).toString(), 'content', 'data lives while a link remains');
  t.equal(fs.getattr('/hard').nlink, 1);
  const before = fs.getattr('/hard');
  await new Promise((r) => setTimeout(r, 5));
  fs.chmod('/hard', 0o600);
  const after = fs.getattr('/hard');
  t.equal(after.mode & 0o7777, 0o600);
  t.equal(after.mode & 0o170000, 0o100000, 'type bits kept');
  t.ok(after.ctime > before.ctime, 'chmod updates ctime');
  t.equal(after.mtime, before.mtime, 'chmod keeps mtime');
  fs.chown('/hard', 1234, 0xffffffff);
  t.equal(fs.getattr('/hard').uid, 1234);
  t.equal(fs.getattr('/hard').gid, before.gid, '-1 leaves the group');
  fs.utimens('/hard', 1_000_000, 2_000_000);
  t.equal(fs.getattr('/hard').atime, 1_000_000);
  t.equal(fs.getattr('/hard').mtime, 2_000_000);
  await drive.close();
});

t.test('truncate, O_TRUNC, O_APPEND, mtime on write, st_blocks', async (t) => {
  const drive = await (await testVault(t)).open();
  const { fs } = drive;
  await write(fs, '/f', 'abcdefgh');
  await fs.truncate('/f', 3);
  t.equal((await read(fs, '/f')).toString(), 'abc');
  await fs.truncate('/f', 6);
  t.same([...(await read(fs, '/f'))], [97, 98, 99, 0, 0, 0], 'grown part is zeros');
  const fd = await fs.open('/f', O_WRONLY | O_APPEND);
  await fs.write(fd, Buffer.from('Z'), 0);
  fs.release(fd);
  t.same((await read(fs, '/f')).toString('latin1'), 'abc\0\0\0Z', 'O_APPEND writes at the end');
  const t0 = fs.getattr('/f').mtime;
  await new Promise((r) => setTimeout(r, 5));
  const fd2 = await fs.open('/f', O_RDWR | O_TRUNC);
  t.equal(fs.fgetattr(fd2).size, 0, 'O_TRUNC empties');
  await fs.write(fd2, Buffer.from('new'), 0);
  await fs.ftruncate(fd2, 2);
  fs.release(fd2);
  t.equal((await read(fs, '/f')).toString(), 'ne');
  t.ok(fs.getattr('/f').mtime > t0, 'write updates mtime');
  t.equal(fs.getattr('/f').blocks, 1, 'two bytes take one 512-byte unit');
  await drive.close();
});

t.test('sparse files beyond 4 GiB', async (t) => {
  const drive = await (await testVault(t)).open();
  const { fs } = drive;
  const fd = fs.create('/sparse', 0o644);
  const far = 5 * 2 ** 30 + 12345;
  const payload = randomBytes(100_000);
  await fs.write(fd, payload, far);
  await fs.write(fd, Buffer.from('start'), 0);
  t.equal(fs.fgetattr(fd).size, far + payload.length);
  t.ok(fs.fgetattr(fd).blocks * 512 < 1024 * 1024, 'sparse: few blocks allocated');
  await fs.fsync(fd);
  const back = Buffer.alloc(payload.length + 10);
  const n = await fs.read(fd, back, back.length, far - 10);
  t.equal(n, payload.length + 10);
  t.ok(back.subarray(0, 10).every((b) => b === 0));
  t.equal(Buffer.compare(back.subarray(10), payload), 0);
  const hole = Buffer.alloc(4096, 1);
  await fs.read(fd, hole, 4096, 3 * 2 ** 30);
  t.ok(hole.every((b) => b === 0), 'hole in the middle reads zeros');
  fs.release(fd);
  await drive.close();
});

t.test('the tree and data survive close and reopen; deletes free objects', async (t) => {
  const vault = await testVault(t, { blockSize: 64 * 1024 });
  const data = randomBytes(300_000);
  {
    const { fs, close } = await vault.open();
    fs.mkdir('/dir', 0o700);
    await write(fs, '/dir/big', data);
    await write(fs, '/gone', randomBytes(200_000));
    fs.symlink('dir/big', '/link');
    await close();
  }
  const countData = async () => (await vault.store.list('d/')).length;
  const before = await countData();
  {
    const { fs, close } = await vault.open();
    t.equal(Buffer.compare(await read(fs, '/dir/big'), data), 0, 'data intact after reopen');
    t.equal(fs.getattr('/dir').mode & 0o777, 0o700);
    t.equal(fs.readlink('/link'), 'dir/big');
    fs.unlink('/gone');
    await close();
  }
  t.equal(await countData(), before - 4, 'the deleted file\'s 4 blocks were removed from the store');
  {
    const { fs, close } = await vault.open({ readOnly: true });
    t.throws(() => fs.getattr('/gone'), code('ENOENT'));
    t.throws(() => fs.mkdir('/x', 0o755), code('EROFS'));
    await close();
  }
});

t.test('open-unlinked files stay readable until released', async (t) => {
  const drive = await (await testVault(t)).open();
  const { fs } = drive;
  await write(fs, '/f', 'still here');
  const fd = await fs.open('/f', 0);
  fs.unlink('/f');
  t.throws(() => fs.getattr('/f'), code('ENOENT'));
  const buf = Buffer.alloc(10);
  await fs.read(fd, buf, 10, 0);
  t.equal(buf.toString(), 'still here');
  fs.release(fd);
  await drive.close();
});

t.test('statfs reports sane numbers', async (t) => {
  const drive = await (await testVault(t)).open();
  const s = await drive.fs.statfs();
  t.ok(s.blocks > 0 && s.bfree <= s.blocks);
  t.equal(s.namemax, 255);
  await drive.close();
});

