import t from 'tap';
import { randomBytes } from 'node:crypto';
import { O_APPEND, O_RDWR, O_TRUNC, O_WRONLY, UTIME_NOW, UTIME_OMIT, type Filesystem } from '../src/vfs/filesystem.js';
import { XATTR_CREATE, XATTR_REPLACE } from '../src/vfs/xattrs.js';
import { R_OK, W_OK, X_OK } from '../src/vfs/access.js';
import { kernelChecksPermissions } from '../src/fuse/mount.js';
import { testVault } from './lib/drive.js';

const code = (c: string) => ({ code: c });
/** [seconds, nanoseconds] as one comparable number of nanoseconds. */
const ns = ([sec, nsec]: [number, number]) => BigInt(sec) * 1_000_000_000n + BigInt(nsec);

async function write(fs: Filesystem, path: string, data: Buffer | string, at = 0): Promise<void> {
  const fd = await fs.create(path, 0o644);
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
  await fs.mkdir('/docs', 0o750);
  await write(fs, '/docs/a.txt', 'hello');
  t.equal((await read(fs, '/docs/a.txt')).toString(), 'hello');
  const attr = await fs.getattr('/docs/a.txt');
  t.equal(attr.size, 5);
  t.equal(attr.mode & 0o777, 0o644);
  t.equal((await fs.getattr('/docs')).mode & 0o777, 0o750);
  t.equal((await fs.getattr('/docs')).nlink, 2);
  t.equal((await fs.getattr('/')).nlink, 3, 'root counts its subdirectory');
  t.same((await fs.readdir('/docs')).names, ['.', '..', 'a.txt']);
  await drive.close();
});

t.test('errno for every misuse', async (t) => {
  const drive = await (await testVault(t)).open();
  const { fs } = drive;
  await fs.mkdir('/d', 0o755);
  await write(fs, '/d/f', 'x');
  await t.rejects(async () => await fs.getattr('/nope'), code('ENOENT'));
  await t.rejects(async () => await fs.getattr('/d/f/under'), code('ENOTDIR'));
  await t.rejects(async () => await fs.mkdir('/d', 0o755), code('EEXIST'));
  await t.rejects(async () => await fs.create('/d/f', 0o644), code('EEXIST'));
  await t.rejects(async () => await fs.rmdir('/d'), code('ENOTEMPTY'));
  await t.rejects(async () => await fs.rmdir('/d/f'), code('ENOTDIR'));
  await t.rejects(async () => await fs.unlink('/d'), code('EISDIR'));
  await t.rejects(async () => await fs.unlink('/d/none'), code('ENOENT'));
  await t.rejects(async () => await fs.mkdir('/' + 'n'.repeat(256), 0o755), code('ENAMETOOLONG'));
  await t.rejects(async () => await fs.readlink('/d/f'), code('EINVAL'));
  await t.rejects(async () => await fs.readdir('/d/f'), code('ENOTDIR'));
  await t.rejects(async () => await fs.link('/d', '/d2'), code('EPERM'));
  await t.rejects(async () => await fs.rmdir('/'), code('EBUSY'));
  await t.rejects(fs.open('/d', O_RDWR), code('EISDIR'));
  await t.rejects(fs.truncate('/d', 0), code('EISDIR'));
  await t.rejects(fs.truncate('/d/f', -1), code('EINVAL'));
  const fd = await fs.open('/d/f', 0);
  await t.rejects(fs.write(fd, Buffer.from('x'), 0), code('EBADF'), 'write on a read-only descriptor');
  fs.release(fd);
  await t.rejects(async () => fs.fgetattr(fd), code('EBADF'), 'released descriptor');
  await fs.mkdir('/' + 'n'.repeat(255), 0o755); // a 255-byte name is fine
  await drive.close();
});

t.test('rename: files, directories, replacing, refusing loops', async (t) => {
  const drive = await (await testVault(t)).open();
  const { fs } = drive;
  await fs.mkdir('/a', 0o755);
  await fs.mkdir('/a/sub', 0o755);
  await write(fs, '/a/sub/f', 'data');
  await fs.rename('/a/sub', '/moved');
  t.equal((await read(fs, '/moved/f')).toString(), 'data');
  await t.rejects(async () => await fs.getattr('/a/sub'), code('ENOENT'));
  t.equal((await fs.getattr('/a')).nlink, 2, 'old parent lost a subdirectory');
  t.equal((await fs.getattr('/')).nlink, 4);
  await t.rejects(async () => await fs.rename('/moved', '/moved/inner'), code('EINVAL'), 'into its own subtree');
  await write(fs, '/x', 'new');
  await write(fs, '/y', 'old');
  await fs.rename('/x', '/y');
  t.equal((await read(fs, '/y')).toString(), 'new', 'replaces an existing file');
  await t.rejects(async () => await fs.getattr('/x'), code('ENOENT'));
  await t.rejects(async () => await fs.rename('/y', '/a'), code('EISDIR'));
  await t.rejects(async () => await fs.rename('/moved', '/y'), code('ENOTDIR'));
  await t.rejects(async () => await fs.rename('/a', '/moved'), code('ENOTEMPTY'));
  await fs.mkdir('/empty', 0o755);
  await fs.rename('/moved', '/empty');
  t.equal((await read(fs, '/empty/f')).toString(), 'data', 'replaces an empty directory');
  await t.rejects(async () => await fs.rename('/nothing', '/z'), code('ENOENT'));
  await fs.rename('/y', '/y');
  t.equal((await read(fs, '/y')).toString(), 'new', 'rename onto itself is a no-op');
  await drive.close();
});

t.test("rename with renameat2's flags: refusing to replace, exchanging, and both kept across a reopen", async (t) => {
  const vault = await testVault(t);
  let drive = await vault.open();
  let { fs } = drive;
  await fs.mkdir('/a', 0o755);
  await fs.mkdir('/a/sub', 0o755);
  await write(fs, '/a/sub/f', 'in sub');
  await fs.mkdir('/b', 0o755);
  await write(fs, '/b/file', 'file');
  await write(fs, '/x', 'x');
  await t.rejects(async () => await fs.rename('/x', '/b/file', { noReplace: true }), code('EEXIST'), 'noReplace onto a file');
  await t.rejects(async () => await fs.rename('/x', '/x', { noReplace: true }), code('EEXIST'), 'noReplace onto itself');
  t.equal((await read(fs, '/b/file')).toString(), 'file', 'the file refused stays');
  t.equal((await read(fs, '/x')).toString(), 'x', 'and so does the one that was not moved');
  const moved = await fs.rename('/x', '/b/x', { noReplace: true });
  t.equal(moved.replaced, undefined, 'noReplace to a free name moves');
  t.equal((await read(fs, '/b/x')).toString(), 'x');

  const dirIno = (await fs.getattr('/a/sub')).ino;
  const fileIno = (await fs.getattr('/b/file')).ino;
  const before = await fs.getattr('/b/file');
  const swapped = await fs.rename('/a/sub', '/b/file', { exchange: true });
  t.same(swapped, { moved: dirIno, exchanged: fileIno }, 'exchange names both inodes');
  t.equal((await fs.getattr('/a/sub')).ino, fileIno, 'the file took the directory\'s name');
  t.equal((await read(fs, '/b/file/f')).toString(), 'in sub', 'the directory took the file\'s, with its contents');
  t.equal((await fs.getattr('/a')).nlink, 2, 'the parent that lost a subdirectory lost a link');
  t.equal((await fs.getattr('/b')).nlink, 3, 'the one that gained it gained one');
  t.ok(ns((await fs.getattr('/a/sub')).ctime) >= ns(before.ctime), 'the exchanged file\'s ctime moved');
  t.equal(ns((await fs.getattr('/a/sub')).mtime), ns(before.mtime), 'its mtime did not');

  await t.rejects(async () => await fs.rename('/b/file', '/nothing', { exchange: true }), code('ENOENT'), 'exchange needs both names');
  await t.rejects(async () => await fs.rename('/b', '/b/file', { exchange: true }), code('EINVAL'), 'a directory with something inside it');
  await t.rejects(async () => await fs.rename('/b/file', '/b', { exchange: true }), code('EINVAL'), 'and the other way round');
  await t.rejects(async () => await fs.rename('/b/x', '/a/sub', { exchange: true, noReplace: true }), code('EINVAL'), 'both flags at once');
  await fs.link('/a/sub', '/a/hard');
  t.same(await fs.rename('/a/sub', '/a/hard', { exchange: true }), { moved: fileIno, exchanged: fileIno }, 'two names of one file: nothing to do');

  await drive.close();
  drive = await vault.open();
  fs = drive.fs;
  t.equal((await fs.getattr('/a/sub')).ino, fileIno, 'after a reopen the exchange is still there');
  t.equal((await read(fs, '/b/file/f')).toString(), 'in sub');
  t.equal((await fs.getattr('/a')).nlink, 2);
  t.equal((await fs.getattr('/b')).nlink, 3);
  await drive.close();
});

t.test('a file whose last name goes while the kernel holds it stays, by number, until the kernel forgets it', async (t) => {
  const vault = await testVault(t);
  let drive = await vault.open();
  let { fs } = drive;
  const held = new Set<number>();
  fs.heldByKernel = (ino) => held.has(ino);
  await write(fs, '/old', 'the old content');
  await write(fs, '/new', 'the new content');
  await write(fs, '/gone', 'unlinked');
  const oldIno = (await fs.getattr('/old')).ino;
  const goneIno = (await fs.getattr('/gone')).ino;
  const used = async () => { const s = await fs.statfs(); return s.files - s.ffree; };
  const usedBefore = await used();
  held.add(oldIno).add(goneIno);

  const { replaced } = await fs.rename('/new', '/old');
  t.equal(replaced, oldIno, 'the rename replaced the old file');
  await fs.unlink('/gone');
  t.equal((await fs.inodeAttr(oldIno)).nlink, 0, 'the replaced file has no name, and is still there by number');
  const fd = await fs.openIno(oldIno, 0);
  const buf = Buffer.alloc(100);
  t.equal(buf.subarray(0, await fs.read(fd, buf, 100, 0)).toString(), 'the old content', 'an open by number reads what it had');
  held.delete(oldIno);
  fs.forgotten(oldIno);
  t.equal((await fs.inodeAttr(oldIno)).nlink, 0, 'forgotten while open: it stays for the descriptor');
  fs.release(fd);
  await t.rejects(async () => await fs.inodeAttr(oldIno), code('ENOENT'), 'gone once neither the kernel nor a descriptor has it');
  t.equal((await fs.getattr('/old')).ino !== oldIno, true, 'the name is the new file\'s');
  t.equal((await fs.inodeAttr(goneIno)).nlink, 0, 'the unlinked file waits for its forget');

  // Unmounted with the kernel still holding it: nothing holds it any more.
  await drive.close();
  drive = await vault.open();
  fs = drive.fs;
  await t.rejects(async () => await fs.inodeAttr(goneIno), code('ENOENT'), 'closing let go of what the kernel held');
  t.equal(await used(), usedBefore - 2, 'and both files count no more');
  await drive.close();
});

t.test('symlinks, hard links, chmod, chown, utimens', async (t) => {
  const drive = await (await testVault(t)).open();
  const { fs } = drive;
  await write(fs, '/f', 'content');
  await fs.symlink('../target/of/link', '/l');
  t.equal(await fs.readlink('/l'), '../target/of/link');
  t.equal((await fs.getattr('/l')).mode & 0o170000, 0o120000);
  await fs.link('/f', '/hard');
  t.equal((await fs.getattr('/f')).nlink, 2);
  await fs.unlink('/f');
  t.equal((await read(fs, '/hard')).toString(), 'content', 'data lives while a link remains');
  t.equal((await fs.getattr('/hard')).nlink, 1);
  const before = await fs.getattr('/hard');
  await new Promise((r) => setTimeout(r, 5));
  await fs.chmod('/hard', 0o600);
  const after = await fs.getattr('/hard');
  t.equal(after.mode & 0o7777, 0o600);
  t.equal(after.mode & 0o170000, 0o100000, 'type bits kept');
  t.ok(ns(after.ctime) > ns(before.ctime), 'chmod updates ctime');
  t.same(after.mtime, before.mtime, 'chmod keeps mtime');
  await fs.chown('/hard', 1234, 0xffffffff);
  t.equal((await fs.getattr('/hard')).uid, 1234);
  t.equal((await fs.getattr('/hard')).gid, before.gid, '-1 leaves the group');
  await fs.utimens('/hard', [1_000, 0], [2_000, 0]);
  t.same((await fs.getattr('/hard')).atime, [1_000, 0]);
  t.same((await fs.getattr('/hard')).mtime, [2_000, 0]);
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
  const t0 = (await fs.getattr('/f')).mtime;
  await new Promise((r) => setTimeout(r, 5));
  const fd2 = await fs.open('/f', O_RDWR | O_TRUNC);
  t.equal(fs.fgetattr(fd2).size, 0, 'O_TRUNC empties');
  await fs.write(fd2, Buffer.from('new'), 0);
  await fs.ftruncate(fd2, 2);
  fs.release(fd2);
  t.equal((await read(fs, '/f')).toString(), 'ne');
  t.ok(ns((await fs.getattr('/f')).mtime) > ns(t0), 'write updates mtime');
  t.equal((await fs.getattr('/f')).blocks, 1, 'two bytes take one 512-byte unit');
  await drive.close();
});

t.test('sparse files beyond 4 GiB', async (t) => {
  const drive = await (await testVault(t)).open();
  const { fs } = drive;
  const fd = await fs.create('/sparse', 0o644);
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

for (const version of [1, 2]) t.test(`format ${version}: the tree and data survive close and reopen; deletes free objects`, async (t) => {
  const vault = await testVault(t, { blockSize: 64 * 1024, version });
  const data = randomBytes(300_000);
  {
    const { fs, close } = await vault.open();
    await fs.mkdir('/dir', 0o700);
    await write(fs, '/dir/big', data);
    await fs.symlink('dir/big', '/link');
    await close();
  }
  {
    // Format 2 packs what is written together: the doomed file gets packs of its own.
    const { fs, close } = await vault.open();
    await write(fs, '/gone', randomBytes(200_000));
    await close();
  }
  const countData = async () => (await vault.store.list(version === 1 ? 'd/' : 'p/')).length;
  const before = await countData();
  {
    const { fs, close } = await vault.open();
    t.equal(Buffer.compare(await read(fs, '/dir/big'), data), 0, 'data intact after reopen');
    t.equal((await fs.getattr('/dir')).mode & 0o777, 0o700);
    t.equal(await fs.readlink('/link'), 'dir/big');
    await fs.unlink('/gone');
    await close();
  }
  t.equal(await countData(), before - (version === 1 ? 4 : 1), 'the deleted file\'s objects were removed from the store');
  {
    const { fs, close } = await vault.open({ readOnly: true });
    await t.rejects(async () => await fs.getattr('/gone'), code('ENOENT'));
    await t.rejects(async () => await fs.mkdir('/x', 0o755), code('EROFS'));
    await close();
  }
});

t.test('open-unlinked files stay readable until released', async (t) => {
  const drive = await (await testVault(t)).open();
  const { fs } = drive;
  await write(fs, '/f', 'still here');
  const fd = await fs.open('/f', 0);
  await fs.unlink('/f');
  await t.rejects(async () => await fs.getattr('/f'), code('ENOENT'));
  const buf = Buffer.alloc(10);
  await fs.read(fd, buf, 10, 0);
  t.equal(buf.toString(), 'still here');
  fs.release(fd);
  await drive.close();
});

t.test('names by directory number and inodes by number: what the kernel hands over, with no walk from the root', async (t) => {
  const drive = await (await testVault(t)).open();
  const { fs } = drive;
  await fs.mkdir('/d', 0o755);
  const dir = (await fs.getattr('/d')).ino;
  t.equal(await fs.lookupIn(dir, 'f'), undefined, 'a missing name is an answer, not an error');
  const fd = await fs.create({ dir, name: 'f' }, 0o644);
  await fs.write(fd, Buffer.from('abc'), 0);
  const ino = fs.fgetattr(fd).ino;
  t.equal((await fs.lookupIn(dir, 'f'))?.ino, ino, 'made where the number said');
  t.equal((await fs.getattr('/d/f')).ino, ino, 'and found there by path');
  await fs.mkdir({ dir, name: 'sub' }, 0o700);
  await fs.symlink('f', { dir, name: 'l' });
  await fs.link(ino, { dir, name: 'hard' });
  t.equal((await fs.lookupIn(dir, 'hard'))?.nlink, 2, 'a hard link by numbers');
  t.equal(await fs.readlink((await fs.lookupIn(dir, 'l'))!.ino), 'f');
  t.equal(await fs.unlink({ dir, name: 'hard' }), ino, 'unlink names the inode it removed');
  await t.rejects(fs.create({ dir: ino, name: 'x' }, 0o644), code('ENOTDIR'), 'a file is no directory');
  await t.rejects(fs.create({ dir: 999_999, name: 'x' }, 0o644), code('ENOENT'), 'an inode that does not exist');
  await t.rejects(fs.create({ dir, name: 'f' }, 0o644), code('EEXIST'));
  // Through the descriptor once the name is gone, as fchmod, fchown, futimens and fsetxattr do.
  await fs.unlink({ dir, name: 'f' });
  await fs.chmod(ino, 0o600);
  await fs.chown(ino, 1001, 1002);
  await fs.utimens(ino, [1_000_000_000, 7], [0, UTIME_OMIT]);
  await fs.xattrs.set(ino, 'user.k', Buffer.from('v'), 0);
  const gone = fs.fgetattr(fd);
  t.same([gone.mode & 0o7777, gone.uid, gone.gid, gone.atime], [0o600, 1001, 1002, [1_000_000_000, 7]], 'changed with no name left');
  t.equal((await fs.xattrs.get(ino, 'user.k')).toString(), 'v');
  fs.release(fd);
  await t.rejects(fs.chmod(ino, 0o644), code('ENOENT'), 'released and unlinked: gone');
  const sub = (await fs.getattr('/d/sub')).ino;
  await fs.rmdir({ dir, name: 'sub' });
  await t.rejects(fs.create({ dir: sub, name: 'x' }, 0o644), code('ENOENT'), 'nothing is made in a removed directory');
  await drive.close();
});

t.test('statfs reports sane numbers', async (t) => {
  const drive = await (await testVault(t)).open();
  const s = await drive.fs.statfs();
  t.ok(s.blocks > 0 && s.bfree <= s.blocks);
  t.equal(s.namemax, 255);
  await drive.close();
});


t.test('utimens: nanoseconds, UTIME_NOW, UTIME_OMIT, before 1970 and after 2038, kept across a remount', async (t) => {
  const vault = await testVault(t);
  let drive = await vault.open();
  let { fs } = drive;
  await write(fs, '/f', 'x');
  await fs.utimens('/f', [-86_400 * 365 * 30 - 1, 123_456_789], [4_102_444_800 + 7, 999_999_999]);
  t.same((await fs.getattr('/f')).atime, [-86_400 * 365 * 30 - 1, 123_456_789], 'before 1970, to the nanosecond');
  t.same((await fs.getattr('/f')).mtime, [4_102_444_807, 999_999_999], 'after 2038, to the nanosecond');
  const ctime = (await fs.getattr('/f')).ctime;
  await new Promise((r) => setTimeout(r, 5));
  await fs.utimens('/f', [0, UTIME_OMIT], [5, 5]);
  t.same((await fs.getattr('/f')).atime, [-86_400 * 365 * 30 - 1, 123_456_789], 'UTIME_OMIT keeps atime');
  t.same((await fs.getattr('/f')).mtime, [5, 5], 'mtime set on its own (not from atime)');
  t.ok(ns((await fs.getattr('/f')).ctime) > ns(ctime), 'ctime moves');
  const before = BigInt(Date.now() - 1) * 1_000_000n;
  await fs.utimens('/f', [0, UTIME_NOW], [0, UTIME_OMIT]);
  t.ok(ns((await fs.getattr('/f')).atime) >= before, 'UTIME_NOW is now');
  t.same((await fs.getattr('/f')).mtime, [5, 5], 'UTIME_OMIT keeps mtime');
  const kept = await fs.getattr('/f');
  await drive.close();
  drive = await vault.open();
  fs = drive.fs;
  const again = await fs.getattr('/f');
  t.same([again.atime, again.mtime, again.ctime], [kept.atime, kept.mtime, kept.ctime], 'all three times survive a remount exactly');
  await drive.close();
});

t.test('owners: the caller owns what it creates; set-group-ID directories pass on their group', async (t) => {
  const drive = await (await testVault(t)).open();
  const { fs } = drive;
  const alice = { uid: 1001, gid: 1001 };
  await fs.mkdir('/shared', 0o2775, { uid: 0, gid: 50 });
  t.equal((await fs.getattr('/shared')).mode & 0o7777, 0o2775);
  fs.release(await fs.create('/shared/f', 0o644, O_RDWR, alice));
  t.same([(await fs.getattr('/shared/f')).uid, (await fs.getattr('/shared/f')).gid], [1001, 50], 'file: caller uid, directory group');
  await fs.mkdir('/shared/sub', 0o755, alice);
  t.equal((await fs.getattr('/shared/sub')).gid, 50, 'subdirectory: directory group');
  t.equal((await fs.getattr('/shared/sub')).mode & 0o7777, 0o2755, 'subdirectory inherits set-group-ID');
  await fs.symlink('f', '/shared/l', alice);
  await fs.mknod('/shared/p', 0o010640, 0, alice);
  t.same([(await fs.getattr('/shared/l')).uid, (await fs.getattr('/shared/p')).uid], [1001, 1001], 'links and nodes too');
  await fs.mkdir('/plain', 0o755, alice);
  t.same([(await fs.getattr('/plain')).uid, (await fs.getattr('/plain')).gid, (await fs.getattr('/plain')).mode & 0o7777], [1001, 1001, 0o755], 'elsewhere: the caller group');
  await drive.close();
});

t.test('mknod: FIFOs, sockets and devices are stored with their type and device number', async (t) => {
  const vault = await testVault(t);
  let drive = await vault.open();
  await drive.fs.mknod('/fifo', 0o010644, 0);
  await drive.fs.mknod('/sock', 0o140755, 0);
  await drive.fs.mknod('/chr', 0o020600, 0x0105);
  await drive.fs.mknod('/blk', 0o060660, 8 * 256 + 1);
  await t.rejects(async () => await drive.fs.mknod('/dir', 0o040755, 0), code('EINVAL'));
  await t.rejects(drive.fs.open('/fifo', 0), code('ENXIO'), 'the kernel opens FIFOs, never the daemon');
  await drive.close();
  drive = await vault.open();
  const { fs } = drive;
  t.same((await Promise.all(['/fifo', '/sock', '/chr', '/blk'].map((p) => fs.getattr(p)))).map((a) => a.mode), [0o010644, 0o140755, 0o020600, 0o060660]);
  t.same([(await fs.getattr('/chr')).rdev, (await fs.getattr('/blk')).rdev, (await fs.getattr('/fifo')).rdev], [0x0105, 2049, 0]);
  await drive.close();
});

t.test('extended attributes: set, get, list, remove, flags, limits, kept across a remount', async (t) => {
  const vault = await testVault(t);
  let drive = await vault.open();
  let { fs } = drive;
  await write(fs, '/f', 'x');
  const ctime = (await fs.getattr('/f')).ctime;
  await new Promise((r) => setTimeout(r, 5));
  await fs.xattrs.set('/f', 'user.colour', Buffer.from('blue'), 0);
  t.ok(ns((await fs.getattr('/f')).ctime) > ns(ctime), 'setxattr moves ctime');
  await fs.xattrs.set('/f', 'trusted.x', Buffer.alloc(0), 0);
  await t.rejects(async () => await fs.xattrs.set('/f', 'user.colour', Buffer.from('red'), XATTR_CREATE), code('EEXIST'));
  await t.rejects(async () => await fs.xattrs.set('/f', 'user.none', Buffer.from('red'), XATTR_REPLACE), code('ENODATA'));
  await t.rejects(async () => await fs.xattrs.get('/f', 'user.none'), code('ENODATA'));
  await t.rejects(async () => await fs.xattrs.set('/f', 'user.' + 'n'.repeat(251), Buffer.from('v'), 0), code('ERANGE'));
  await t.rejects(async () => await fs.xattrs.set('/f', 'user.big', Buffer.alloc(65537), 0), code('E2BIG'));
  await t.rejects(async () => await fs.xattrs.set('/f', 'system.posix_acl_access', Buffer.alloc(4), 0), code('EOPNOTSUPP'));
  await t.rejects(async () => await fs.xattrs.set('/f', 'other.x', Buffer.alloc(4), 0), code('EOPNOTSUPP'));
  await t.rejects(async () => await fs.xattrs.get('/f', 'system.posix_acl_access'), code('EOPNOTSUPP'), 'ACLs are not kept: unsupported, not absent');
  await write(fs, '/g', 'y');
  await t.rejects(async () => await fs.xattrs.get('/f', 'security.selinux'), code('EOPNOTSUPP'), 'no labels in the vault: unsupported');
  await fs.xattrs.set('/g', 'security.selinux', Buffer.from('system_u:object_r:fusefs_t:s0'), 0);
  await t.rejects(async () => await fs.xattrs.get('/f', 'security.selinux'), code('ENODATA'), 'once one file has a label, the others lack one');
  await fs.xattrs.set('/f', 'user.a', Buffer.alloc(60000), 0);
  await t.rejects(async () => await fs.xattrs.set('/f', 'user.b', Buffer.alloc(6000), 0), code('ENOSPC'), 'one inode holds 64 KiB of attributes');
  await fs.xattrs.remove('/f', 'user.a');
  await t.rejects(async () => await fs.xattrs.remove('/f', 'user.a'), code('ENODATA'));
  const value = Buffer.from('green');
  await fs.xattrs.set('/f', 'user.colour', value, XATTR_REPLACE);
  value.fill(0);
  t.equal((await fs.xattrs.get('/f', 'user.colour')).toString(), 'green', 'the value is copied, not referenced');
  await drive.close();
  drive = await vault.open();
  fs = drive.fs;
  t.same((await fs.xattrs.list('/f')).sort(), ['trusted.x', 'user.colour']);
  t.equal((await fs.xattrs.get('/f', 'user.colour')).toString(), 'green');
  t.equal((await fs.xattrs.get('/f', 'trusted.x')).length, 0, 'empty values are values');
  await drive.close();
});

t.test('names up to 255 bytes; paths longer than PATH_MAX from libfuse are accepted', async (t) => {
  const drive = await (await testVault(t)).open();
  const { fs } = drive;
  const name = 'é'.repeat(127) + 'x';
  t.equal(Buffer.byteLength(name), 255);
  await fs.mkdir('/' + name, 0o755);
  await t.rejects(async () => await fs.mkdir('/' + name + 'y', 0o755), code('ENAMETOOLONG'));
  let path = '';
  for (let i = 0; i < 20; i++) {
    path += '/' + 'd'.repeat(250);
    await fs.mkdir(path, 0o755);
  }
  t.ok(Buffer.byteLength(path) > 4096);
  await write(fs, path + '/f', 'deep');
  t.equal((await read(fs, path + '/f')).toString(), 'deep');
  await drive.close();
});

t.test('relatime: a read moves atime once after each change, not on every read', async (t) => {
  const drive = await (await testVault(t)).open();
  const { fs } = drive;
  await write(fs, '/f', 'data');
  const told: number[] = [];
  fs.onAttrChange = (ino) => told.push(ino);
  await fs.utimens('/f', [100, 0], [200, 0]);
  await read(fs, '/f');
  const first = (await fs.getattr('/f')).atime;
  t.ok(ns(first) > 200n * 1_000_000_000n, 'atime not newer than mtime: moved');
  t.same(told, [(await fs.getattr('/f')).ino], 'the kernel is told');
  await new Promise((r) => setTimeout(r, 5));
  await read(fs, '/f');
  t.same((await fs.getattr('/f')).atime, first, 'a second read leaves it');
  t.equal(told.length, 1);
  await drive.close();
});

t.test('the clock never repeats or goes back: changes in one millisecond stay ordered', async (t) => {
  const { now } = await import('../src/meta/time.js');
  let before = now();
  let ordered = true;
  for (let i = 0; i < 10_000; i++) {
    const next = now();
    if (!(next.ms > before.ms || (next.ms === before.ms && next.ns > before.ns))) ordered = false;
    if (next.ns > 999_999) ordered = false;
    before = next;
  }
  t.ok(ordered, '10,000 readings strictly increase');
});

t.test('access(2): root runs only what has an execute bit; others get their class of bits', async (t) => {
  const drive = await (await testVault(t)).open();
  const { fs } = drive;
  await write(fs, '/f', 'x');
  await fs.mkdir('/d', 0o700);
  const ino = async (path: string) => (await fs.getattr(path)).ino;
  const f = await ino('/f');
  const root = { uid: 0, gid: 0 };
  await fs.chmod('/f', 0o644);
  await t.resolves(fs.inodeAccess(f, R_OK | W_OK, root), 'root reads and writes whatever the mode');
  await t.rejects(fs.inodeAccess(f, X_OK, root), code('EACCES'), 'root runs nothing without an execute bit');
  await fs.chmod('/f', 0o001);
  await t.resolves(fs.inodeAccess(f, X_OK, root), "any execute bit lets root run it, even only others'");
  await fs.chmod('/d', 0o000);
  await t.resolves(fs.inodeAccess(await ino('/d'), X_OK | R_OK | W_OK, root), 'root enters and lists any directory');
  await fs.chown('/f', 1001, 3000);
  await fs.chmod('/f', 0o640);
  const owner = { uid: 1001, gid: 5 }, member = { uid: 1002, gid: 3000 }, other = { uid: 1003, gid: 4 };
  await t.resolves(fs.inodeAccess(f, R_OK | W_OK, owner), 'the owner: the owner bits');
  await t.rejects(fs.inodeAccess(f, W_OK, member), code('EACCES'), 'the group may read only');
  await t.resolves(fs.inodeAccess(f, R_OK, member));
  await t.rejects(fs.inodeAccess(f, R_OK, other), code('EACCES'), 'others: nothing');
  await t.resolves(fs.inodeAccess(f, 0, other), 'F_OK: it exists');
  await fs.chmod('/f', 0o047);
  await t.rejects(fs.inodeAccess(f, R_OK, owner), code('EACCES'), 'the owner is held to the owner bits even when others have more');
  await drive.close();
});

t.test('the kernel checks permissions unless root alone can reach the mount', async (t) => {
  t.equal(kernelChecksPermissions({ allowOther: false }, 0), false, 'root, no allow_other: the daemon answers access(2)');
  t.equal(kernelChecksPermissions({ allowOther: true }, 0), true, 'root with allow_other: other users need the kernel to check');
  t.equal(kernelChecksPermissions({ allowOther: false }, 1000), true, "a user's own mode bits bind them");
});
