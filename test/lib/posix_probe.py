#!/usr/bin/env python3
"""Runs a list of file system calls, each as a given user, under one root
directory, and prints what every call returned (a value or an errno name)
as JSON. The conformance test runs the same list on ext4 and on a mount and
compares the two outputs; this file does no comparing itself.

Input (stdin): {"root": DIR, "steps": [[user, op, arg...], ...]}.
Users switch with setegid/setgroups/seteuid (the process must be root), so
the kernel and the file system see that caller, as with setpriv.
"""
import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import socket
import subprocess
import stat
import sys
import time

USERS = {
    'root': (0, 0, [0]),
    'alice': (1001, 1001, [1001, 3000]),
    'bob': (1002, 1002, [1002]),
}

libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100


class Timespec(ctypes.Structure):
    _fields_ = [('tv_sec', ctypes.c_long), ('tv_nsec', ctypes.c_long)]


def as_user(name):
    uid, gid, groups = USERS[name]
    os.seteuid(0)
    os.setegid(0)
    os.setgroups(groups)
    os.setegid(gid)
    os.seteuid(uid)


def timespec(spec):
    if spec == 'NOW':
        return Timespec(0, UTIME_NOW)
    if spec == 'OMIT':
        return Timespec(0, UTIME_OMIT)
    return Timespec(spec[0], spec[1])


def check(result):
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def describe(st):
    kind = stat.S_IFMT(st.st_mode)
    out = {
        'type': {stat.S_IFREG: 'file', stat.S_IFDIR: 'dir', stat.S_IFLNK: 'link', stat.S_IFIFO: 'fifo',
                 stat.S_IFSOCK: 'socket', stat.S_IFCHR: 'chr', stat.S_IFBLK: 'blk'}[kind],
        'mode': oct(stat.S_IMODE(st.st_mode)), 'uid': st.st_uid, 'gid': st.st_gid, 'nlink': st.st_nlink,
        'ino': st.st_ino, 'atime': st.st_atime_ns, 'mtime': st.st_mtime_ns, 'ctime': st.st_ctime_ns,
    }
    if kind != stat.S_IFDIR:
        out['size'] = st.st_size  # directory sizes are each file system's own business
    if kind in (stat.S_IFCHR, stat.S_IFBLK):
        out['rdev'] = [os.major(st.st_rdev), os.minor(st.st_rdev)]
    return out


def getxattr(path, name, size):
    buf = ctypes.create_string_buffer(max(size, 1))
    n = check(libc.lgetxattr(path.encode(), name.encode(), buf if size else None, ctypes.c_size_t(size)))
    return n if size == 0 else buf.raw[:n].decode('latin1')


def listxattr(path, size):
    buf = ctypes.create_string_buffer(max(size, 1))
    n = check(libc.llistxattr(path.encode(), buf if size else None, ctypes.c_size_t(size)))
    if size == 0:
        return n
    return sorted(x.decode() for x in buf.raw[:n].split(b'\0') if x)


def deep(prefix, depth, namelen):
    """Nested directories reached by relative paths, so the whole path may
    exceed PATH_MAX; a file at the bottom. Returns the path's length."""
    start = os.open('.', os.O_RDONLY)
    try:
        os.mkdir(prefix)
        os.chdir(prefix)
        length = len(prefix)
        for i in range(depth):
            name = (str(i) * namelen)[:namelen]
            os.mkdir(name)
            os.chdir(name)
            length += 1 + namelen
        fd = os.open('f', os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, b'deep')
        os.close(fd)
        with open('f', 'rb') as f:
            assert f.read() == b'deep'
        return length + 2
    finally:
        os.fchdir(start)
        os.close(start)


def write(path, data, append=False):
    flags = os.O_WRONLY | (os.O_APPEND if append else 0)
    fd = os.open(path, flags)
    try:
        return os.write(fd, data.encode())
    finally:
        os.close(fd)


def open_close(path, flags):
    value = 0
    for f in flags:
        value |= getattr(os, f)
    fd = os.open(path, value, 0o644)
    os.close(fd)


def change_dir(path):
    back = os.open('.', os.O_RDONLY)
    try:
        os.chdir(path)
    finally:
        os.fchdir(back)
        os.close(back)


def run(path):
    """Runs a file; its exit status, or the errno execve(2) gave."""
    return subprocess.run([os.path.join('.', path)], stdin=subprocess.DEVNULL, capture_output=True).returncode


def through_unlinked(path, mode, uid, gid, size, atime, mtime):
    """Changes a file through its descriptor once its name is gone, as
    programs do with temporary files; then what fstat and fgetxattr see."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.unlink(path)
        os.fchmod(fd, mode)
        os.fchown(fd, uid, gid)
        os.ftruncate(fd, size)
        check(libc.futimens(fd, (Timespec * 2)(timespec(atime), timespec(mtime))))
        os.setxattr(fd, 'user.kept', b'after unlink')
        return dict(describe(os.fstat(fd)), kept=os.getxattr(fd, 'user.kept').decode(), names=sorted(os.listxattr(fd)))
    finally:
        os.close(fd)


RENAME_FLAGS = {'NOREPLACE': 1, 'EXCHANGE': 2, 'WHITEOUT': 4}


def rename2(old, new, flags):
    """renameat2(2), flags by name."""
    value = 0
    for f in flags:
        value |= RENAME_FLAGS[f]
    check(libc.renameat2(AT_FDCWD, old.encode(), AT_FDCWD, new.encode(), value))


def bind_socket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(path)
    finally:
        s.close()


OPS = {
    'creat': lambda p, mode: os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)),
    'open': open_close,
    'write': write,
    'read': lambda p: open(p, 'rb').read().decode('latin1'),
    'mkdir': os.mkdir,
    'rmdir': os.rmdir,
    'unlink': os.unlink,
    'rename': os.rename,
    'rename2': rename2,
    'link': os.link,
    'symlink': os.symlink,
    'readlink': os.readlink,
    'mkfifo': os.mkfifo,
    'mknod': lambda p, kind, mode, major, minor: os.mknod(p, mode | {'chr': stat.S_IFCHR, 'blk': stat.S_IFBLK}[kind], os.makedev(major, minor)),
    'socket': bind_socket,
    'chmod': os.chmod,
    'chown': os.chown,
    'lchown': os.lchown,
    'truncate': os.truncate,
    'utimens': lambda p, a, m: check(libc.utimensat(AT_FDCWD, p.encode(), (Timespec * 2)(timespec(a), timespec(m)), 0)),
    'lutimens': lambda p, a, m: check(libc.utimensat(AT_FDCWD, p.encode(), (Timespec * 2)(timespec(a), timespec(m)), AT_SYMLINK_NOFOLLOW)),
    'stat': lambda p: describe(os.stat(p)),
    'lstat': lambda p: describe(os.lstat(p)),
    'access': lambda p, mode: os.access(p, mode, effective_ids=True),
    'chdir': change_dir,
    'exec': run,
    'listdir': lambda p: sorted(os.listdir(p)),
    'setxattr': lambda p, n, v, flags=0: os.setxattr(p, n, v.encode('latin1'), flags, follow_symlinks=False),
    'getxattr': getxattr,
    'listxattr': listxattr,
    'removexattr': lambda p, n: os.removexattr(p, n, follow_symlinks=False),
    'deep': deep,
    'unlinked': through_unlinked,
    'sleep': lambda s: time.sleep(s),
    'rmtree': lambda p: shutil.rmtree(p),
}


def main():
    spec = json.load(sys.stdin)
    os.chdir(spec['root'])
    os.umask(0o022)
    results = []
    for user, op, *args in spec['steps']:
        # Distinct steps get distinct clock readings on every file system.
        time.sleep(0.012)
        as_user(user)
        try:
            value = OPS[op](*args)
            results.append({'ok': value})
        except OSError as e:
            results.append({'err': errno.errorcode.get(e.errno, str(e.errno))})
        finally:
            as_user('root')
    json.dump(results, sys.stdout)


main()
