/**
 * System call sequences for the conformance test (test/posix_probe.py runs
 * them): each runs in its own directory, once on ext4 and once on the
 * mount, and every result must be the same. Users: root, alice (uid 1001,
 * groups 1001 and 3000), bob (uid 1002).
 */
export type Step = [user: 'root' | 'alice' | 'bob', op: string, ...args: unknown[]];

const ns = 1_000_000_000;
const r = (op: string, ...args: unknown[]): Step => ['root', op, ...args];
const a = (op: string, ...args: unknown[]): Step => ['alice', op, ...args];
const b = (op: string, ...args: unknown[]): Step => ['bob', op, ...args];

export const CASES: Record<string, Step[]> = {
  'a file changed through its descriptor after its name is gone': [
    // Both first: ext4 would give a new file the number of one just freed.
    a('creat', 'f', 0o644), a('write', 'f', 'hello world'), r('creat', 'g', 0o644),
    a('unlinked', 'f', 0o600, -1, 3000, 5, [1_000_000_000, 5], [1_200_000_000, 6]),
    r('unlinked', 'g', 0o4755, 1002, 1002, 0, 'NOW', 'OMIT'), a('listdir', '.'),
  ],
  'owners: each user owns what it creates, in every kind of file': [
    a('creat', 'f', 0o644), a('mkdir', 'd', 0o755), a('symlink', 'f', 'l'), a('mkfifo', 'p', 0o640), a('socket', 's'),
    b('creat', 'g', 0o600), r('mknod', 'c', 'chr', 0o600, 1, 3), r('mknod', 'k', 'blk', 0o660, 8, 1),
    a('lstat', 'f'), a('lstat', 'd'), a('lstat', 'l'), a('lstat', 'p'), a('lstat', 's'), b('lstat', 'g'), r('lstat', 'c'), r('lstat', 'k'),
    a('mknod', 'c2', 'chr', 0o600, 1, 3),
    r('stat', '.'),
  ],
  'set-group-ID directories pass their group and the bit on': [
    r('mkdir', 'sg', 0o777), r('chown', 'sg', 0, 2000), r('chmod', 'sg', 0o2777),
    a('creat', 'sg/f', 0o755), a('mkdir', 'sg/d', 0o755), a('symlink', 'x', 'sg/l'), a('mkfifo', 'sg/p', 0o644),
    a('lstat', 'sg/f'), a('lstat', 'sg/d'), a('lstat', 'sg/l'), a('lstat', 'sg/p'),
    a('creat', 'sg/x', 0o2755), a('stat', 'sg/x'), // set-group-ID stripped: alice is not in group 2000
    r('creat', 'sg/y', 0o2755), r('stat', 'sg/y'),
  ],
  'chown and chmod rules, set-ID bits cleared as the kernel says': [
    a('creat', 'f', 0o644), a('chown', 'f', 1002, -1), a('chown', 'f', -1, 3000), a('stat', 'f'),
    a('chown', 'f', -1, 1002), b('chown', 'f', -1, 1002), b('chmod', 'f', 0o777), a('stat', 'f'),
    r('creat', 'suid', 0o755), r('chmod', 'suid', 0o6755), r('stat', 'suid'),
    r('chown', 'suid', 1001, 1001), r('stat', 'suid'),
    a('chmod', 'suid', 0o6755), a('stat', 'suid'),
    a('chmod', 'suid', 0o2755), a('chown', 'suid', -1, 3000), a('stat', 'suid'),
    a('chmod', 'suid', 0o4777), b('write', 'suid', 'x'), a('stat', 'suid'),
    a('creat', 'g', 0o644), a('chmod', 'g', 0o2644), a('stat', 'g'),
    r('chown', 'g', 0, 5000), a('chmod', 'g', 0o2644), a('stat', 'g'),
    r('mkdir', 'd', 0o755), r('chmod', 'd', 0o3755), r('chown', 'd', 1001, 1001), r('stat', 'd'),
    a('lchown', 'nothing', 1, 1),
  ],
  'permissions and sticky directories': [
    r('mkdir', 'st', 0o777), r('chmod', 'st', 0o1777),
    a('creat', 'st/a', 0o644), b('creat', 'st/b', 0o644),
    b('unlink', 'st/a'), b('rename', 'st/a', 'st/c'), b('rename', 'st/b', 'st/a'), a('unlink', 'st/a'),
    r('unlink', 'st/b'), a('listdir', 'st'),
    a('mkdir', 'private', 0o700), b('creat', 'private/x', 0o644), b('listdir', 'private'), b('stat', 'private/y'),
    a('creat', 'ro', 0o444), a('open', 'ro', ['O_WRONLY']), r('open', 'ro', ['O_WRONLY']), b('open', 'ro', ['O_RDONLY']),
    a('creat', 'x', 0o700), b('access', 'x', 4), a('access', 'x', 7), b('access', '.', 2),
    r('chmod', '.', 0o755), b('creat', 'nope', 0o644), r('chmod', '.', 0o777),
  ],
  'access(2), chdir and exec for the owner, the group, others and root': [
    r('creat', 'run', 0o755), r('write', 'run', '#!/bin/sh\nexit 3\n'), r('chown', 'run', 1001, 3000),
    r('mkdir', 'd', 0o700), r('chown', 'd', 1001, 1001),
    ...[0o000, 0o100, 0o010, 0o001, 0o644, 0o755].flatMap((mode) => [
      r('chmod', 'run', mode),
      r('access', 'run', 1), a('access', 'run', 1), b('access', 'run', 1), r('access', 'run', 6), a('access', 'run', 4), b('access', 'run', 2),
      r('exec', 'run'), a('exec', 'run'), b('exec', 'run'),
    ]),
    ...[0o000, 0o100, 0o700].flatMap((mode) => [
      r('chmod', 'd', mode),
      r('access', 'd', 1), a('access', 'd', 7), b('access', 'd', 1), r('chdir', 'd'), a('chdir', 'd'), b('chdir', 'd'),
    ]),
  ],
  'timestamps: explicit, UTIME_NOW, UTIME_OMIT, nanoseconds, any year': [
    a('creat', 'f', 0o644), a('stat', 'f'),
    a('utimens', 'f', [1_000_000_000, 123_456_789], [1_500_000_000, 987_654_321]), a('stat', 'f'),
    a('utimens', 'f', 'OMIT', [-1_000_000_000, 1]), a('stat', 'f'),
    a('utimens', 'f', [4_102_444_800 + 1, 999_999_999], 'OMIT'), a('stat', 'f'),
    a('utimens', 'f', 'NOW', 'OMIT'), a('stat', 'f'),
    a('utimens', 'f', 'OMIT', 'NOW'), a('stat', 'f'),
    a('utimens', 'f', 'OMIT', 'OMIT'), a('stat', 'f'),
    // (ext4 with 256-byte inodes keeps times up to the year 2446)
    a('utimens', 'f', [-2, 500_000_000], [13_000_000_000, 0]), a('stat', 'f'),
    b('utimens', 'f', 'NOW', 'NOW'), b('utimens', 'f', [1, 0], [1, 0]),
    a('chmod', 'f', 0o666), b('utimens', 'f', 'NOW', 'NOW'), b('utimens', 'f', [1, 0], 'OMIT'), a('stat', 'f'),
    a('symlink', 'f', 'l'), a('lutimens', 'l', [12, 34], [56, 78]), a('lstat', 'l'), a('stat', 'f'),
    a('mkdir', 'd', 0o755), a('utimens', 'd', [86_400 * 365, 0], [2 * ns, 5]), a('stat', 'd'),
  ],
  'timestamps: what moves mtime and ctime, of files and their directories': [
    a('mkdir', 'd', 0o755), a('stat', 'd'),
    a('creat', 'd/f', 0o644), a('stat', 'd'), a('stat', 'd/f'),
    a('write', 'd/f', 'hello'), a('stat', 'd/f'), a('stat', 'd'),
    a('write', 'd/f', ''), a('stat', 'd/f'),
    a('chmod', 'd/f', 0o600), a('stat', 'd/f'),
    // chown(-1, -1) moves ctime on ext4 but never reaches a FUSE file system (README: differences)
    a('chown', 'd/f', -1, -1),
    a('truncate', 'd/f', 5), a('stat', 'd/f'),
    a('truncate', 'd/f', 2), a('stat', 'd/f'),
    a('write', 'd/f', 'more', true), a('stat', 'd/f'),
    a('open', 'd/f', ['O_WRONLY', 'O_TRUNC']), a('stat', 'd/f'),
    // (a read of an empty file never reaches a FUSE file system: no atime to move there)
    a('write', 'd/f', 'abc'), a('stat', 'd/f'),
    a('open', 'd/f', ['O_RDONLY']), a('read', 'd/f'), a('stat', 'd/f'), a('read', 'd/f'), a('stat', 'd/f'),
    a('link', 'd/f', 'd/g'), a('stat', 'd/f'), a('stat', 'd'),
    a('rename', 'd/g', 'd/h'), a('stat', 'd/f'), a('stat', 'd'),
    a('mkdir', 'e', 0o755), a('rename', 'd/h', 'e/h'), a('stat', 'd'), a('stat', 'e'), a('stat', 'e/h'),
    a('unlink', 'e/h'), a('stat', 'd/f'), a('stat', 'e'),
    a('mkdir', 'd/sub', 0o755), a('stat', 'd'), a('rmdir', 'd/sub'), a('stat', 'd'),
    a('rename', 'd', 'd2'), a('stat', 'd2'), a('stat', '.'),
    a('setxattr', 'd2/f', 'user.x', 'y'), a('stat', 'd2/f'),
    a('mkfifo', 'd2/p', 0o644), a('utimens', 'd2/p', [7, 7], [8, 8]), a('stat', 'd2/p'),
  ],
  'hard links: one inode number and a current link count under every name': [
    a('creat', 'a', 0o644), a('write', 'a', 'data'), a('link', 'a', 'b'), a('stat', 'a'), a('stat', 'b'),
    a('link', 'b', 'c'), a('stat', 'a'), a('stat', 'b'), a('stat', 'c'),
    a('unlink', 'b'), a('stat', 'a'), a('stat', 'c'),
    a('creat', 'x', 0o644), a('rename', 'x', 'c'), a('stat', 'a'), a('stat', 'c'),
    a('link', 'a', 'y'), a('write', 'y', 'longer data', true), a('stat', 'a'),
    a('chmod', 'y', 0o600), a('stat', 'a'), a('utimens', 'y', [3, 3], [4, 4]), a('stat', 'a'),
    a('truncate', 'y', 1), a('stat', 'a'), a('read', 'a'),
    a('rename', 'a', 'y'), a('stat', 'y'),
    a('mkdir', 'dir', 0o755), a('link', 'dir', 'dirlink'), a('link', 'nothing', 'z'), a('link', 'y', 'y'),
    a('mkfifo', 'p', 0o644), a('link', 'p', 'p2'), a('stat', 'p'), a('symlink', 'y', 's'), a('link', 's', 's2'), a('lstat', 's'),
  ],
  'renameat2: refusing to replace, and exchanging two names': [
    a('mkdir', 'd', 0o755), a('mkdir', 'd/sub', 0o755), a('mkdir', 'e', 0o755),
    a('creat', 'f', 0o644), a('write', 'f', 'F'), a('creat', 'e/g', 0o644), a('write', 'e/g', 'G'),
    a('rename2', 'f', 'e/g', ['NOREPLACE']), a('read', 'e/g'), a('read', 'f'),
    a('rename2', 'f', 'e/new', ['NOREPLACE']), a('stat', 'e/new'), a('stat', 'e'), a('stat', '.'), a('stat', 'f'),
    // A file and a non-empty directory in different directories: the link counts of both parents change.
    a('rename2', 'e/new', 'd', ['EXCHANGE']), a('read', 'd'), a('stat', 'd'), a('stat', 'e/new'), a('stat', 'e/new/sub'), a('stat', '.'), a('stat', 'e'),
    a('rename2', 'e/g', 'd', ['EXCHANGE']), a('read', 'd'), a('read', 'e/g'), a('stat', 'e'),
    a('rename2', 'e/new', 'e/new/sub', ['EXCHANGE']), a('rename2', 'e/new/sub', 'e', ['EXCHANGE']),
    a('rename2', 'nothing', 'd', ['EXCHANGE']), a('rename2', 'd', 'nothing', ['EXCHANGE']), a('rename2', 'd', 'x', ['NOREPLACE', 'EXCHANGE']),
    a('link', 'd', 'd2'), a('rename2', 'd', 'd2', ['EXCHANGE']), a('stat', 'd'), a('rename2', 'd', 'd2', ['NOREPLACE']),
    b('rename2', 'd', 'e/g', ['EXCHANGE']), a('read', 'd'),
    a('listdir', '.'), a('listdir', 'e'), a('listdir', 'e/new'),
  ],
  'file types: FIFOs, sockets and device nodes': [
    a('mkfifo', 'p', 0o600), a('stat', 'p'), a('open', 'p', ['O_WRONLY', 'O_NONBLOCK']), a('open', 'p', ['O_RDONLY', 'O_NONBLOCK']),
    a('mkfifo', 'p', 0o600), a('socket', 's'), a('stat', 's'), a('socket', 's'),
    r('mknod', 'null', 'chr', 0o666, 1, 3), r('stat', 'null'), r('mknod', 'big', 'blk', 0o600, 259, 65537), r('stat', 'big'),
    a('mknod', 'nope', 'chr', 0o600, 1, 3),
    a('rename', 'p', 'p2'), a('stat', 'p2'), a('unlink', 'p2'), a('unlink', 's'), r('unlink', 'null'), a('listdir', '.'),
  ],
  'names and paths: 255 bytes, ENAMETOOLONG beyond, paths past PATH_MAX': [
    a('creat', 'n'.repeat(255), 0o644), a('creat', 'n'.repeat(256), 0o644), a('stat', 'n'.repeat(256)),
    a('mkdir', 'é'.repeat(127) + 'x', 0o755), a('mkdir', 'é'.repeat(128), 0o755),
    a('rename', 'n'.repeat(255), 'm'.repeat(256)), a('link', 'n'.repeat(255), 'm'.repeat(256)), a('symlink', 'x', 'm'.repeat(256)),
    a('symlink', 't'.repeat(4095), 'longtarget'), a('readlink', 'longtarget'), a('symlink', 't'.repeat(4096), 'toolong'),
    a('deep', 'deep', 20, 250), a('listdir', '.'), a('rmtree', 'deep'), a('listdir', '.'),
  ],
  'errors: every refused call gets ext4s errno': [
    a('mkdir', 'd', 0o755), a('creat', 'd/f', 0o644), a('creat', 'f', 0o644), a('symlink', 'loop1', 'loop2'), a('symlink', 'loop2', 'loop1'),
    a('mkdir', 'd', 0o755), a('creat', 'f', 0o644), a('rmdir', 'd'), a('unlink', 'd'), a('rmdir', 'f'),
    a('open', 'd', ['O_WRONLY']), a('open', 'f/x', ['O_RDONLY']), a('creat', 'f/x', 0o644), a('stat', 'nothing/x'),
    a('rename', 'd', 'f'), a('rename', 'f', 'd'), a('rename', 'd', 'd/sub'), a('rename', 'nothing', 'x'),
    a('mkdir', 'e', 0o755), a('rename', 'e', 'd'), a('rmdir', 'd/f'), a('rename', 'e', '.'),
    a('open', 'loop1', ['O_RDONLY']), a('stat', 'loop1'), a('readlink', 'f'), a('truncate', 'd', 0),
    a('rmdir', '.'), a('rmdir', 'd/..'), a('mkdir', 'loop1', 0o755), a('open', 'f', ['O_CREAT', 'O_EXCL', 'O_WRONLY']),
    a('open', 'loop1', ['O_RDONLY', 'O_NOFOLLOW']), a('open', 'f', ['O_RDONLY', 'O_DIRECTORY']), a('truncate', 'f', -1),
    a('unlink', 'nothing'), a('rmdir', 'nothing'), a('chmod', 'nothing', 0o644), a('listdir', 'f'),
  ],
  'extended attributes: namespaces, flags, sizes, errors': [
    a('creat', 'f', 0o644), a('mkdir', 'd', 0o755), a('symlink', 'f', 'l'), a('mkfifo', 'p', 0o644),
    a('setxattr', 'f', 'user.a', 'one'), a('setxattr', 'd', 'user.b', ''), a('getxattr', 'f', 'user.a', 100), a('getxattr', 'd', 'user.b', 100),
    a('getxattr', 'f', 'user.a', 0), a('getxattr', 'f', 'user.a', 2), a('getxattr', 'f', 'user.none', 100),
    a('setxattr', 'f', 'user.a', 'two', 1), a('setxattr', 'f', 'user.c', 'two', 2), a('setxattr', 'f', 'user.a', 'two', 2),
    a('listxattr', 'f', 1000), a('listxattr', 'f', 0), a('listxattr', 'f', 3), a('listxattr', 'd', 1000),
    a('setxattr', 'l', 'user.x', 'v'), a('setxattr', 'p', 'user.x', 'v'), a('getxattr', 'l', 'user.x', 10),
    a('setxattr', 'f', 'trusted.t', 'v'), r('setxattr', 'f', 'trusted.t', 'v'), r('getxattr', 'f', 'trusted.t', 10), a('getxattr', 'f', 'trusted.t', 10),
    r('setxattr', 'f', 'security.s', 'v'), a('getxattr', 'f', 'security.s', 10),
    a('setxattr', 'f', 'user.' + 'n'.repeat(250), 'v'), a('setxattr', 'f', 'user.' + 'n'.repeat(251), 'v'),
    a('setxattr', 'f', 'user.big', 'v'.repeat(2000)), a('getxattr', 'f', 'user.big', 0),
    a('setxattr', 'f', 'nonamespace', 'v'), a('setxattr', 'f', 'user.', 'v'),
    b('setxattr', 'f', 'user.a', 'mine'), b('getxattr', 'f', 'user.a', 100), a('chmod', 'f', 0o600), b('getxattr', 'f', 'user.a', 100),
    a('removexattr', 'f', 'user.a'), a('removexattr', 'f', 'user.a'), a('listxattr', 'f', 1000),
  ],
};
