#!/usr/bin/env python3
"""Reads a directory with opendir/readdir/telldir/seekdir (libc, through
ctypes: Python has no telldir) while another name is created and removed
between reads, and prints what it saw as JSON. The directory test checks
the output; this file does no checking itself.

Usage: dir_stream.py DIR  (DIR holds the files f00000..fNNNNN)
Output: {"first": [...], "positions": {name: cookie}, "after_seek": [...],
         "second_pass": [...], "added": [...], "removed": [...]}
"""
import ctypes
import ctypes.util
import json
import os
import sys


class Dirent(ctypes.Structure):
    _fields_ = [
        ('d_ino', ctypes.c_uint64),
        ('d_off', ctypes.c_int64),
        ('d_reclen', ctypes.c_uint16),
        ('d_type', ctypes.c_uint8),
        ('d_name', ctypes.c_char * 256),
    ]


libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
libc.opendir.restype = ctypes.c_void_p
libc.opendir.argtypes = [ctypes.c_char_p]
libc.readdir.restype = ctypes.POINTER(Dirent)
libc.readdir.argtypes = [ctypes.c_void_p]
libc.telldir.restype = ctypes.c_long
libc.telldir.argtypes = [ctypes.c_void_p]
libc.seekdir.restype = None
libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
libc.closedir.argtypes = [ctypes.c_void_p]


def next_name(d):
    entry = libc.readdir(d)
    if not entry:
        return None
    return entry.contents.d_name.decode()


def read_rest(d):
    names = []
    while True:
        name = next_name(d)
        if name is None:
            return names
        names.append(name)


def main():
    root = sys.argv[1]
    d = libc.opendir(root.encode())
    if not d:
        raise OSError(ctypes.get_errno(), 'opendir')
    first, positions, added, removed = [], {}, [], []
    existing = sorted(n for n in os.listdir(root))
    while True:
        name = next_name(d)
        if name is None:
            break
        first.append(name)
        positions[name] = libc.telldir(d)
        # Every 500 entries read, the directory changes under the reader:
        # one name it has not reached yet goes, one new name comes.
        if len(first) % 500 == 0:
            ahead = [n for n in existing if n not in positions and n not in removed and n not in ('.', '..')]
            if ahead:
                victim = ahead[len(ahead) // 2]
                os.unlink(os.path.join(root, victim))
                removed.append(victim)
            new = 'new%05d' % len(added)
            open(os.path.join(root, new), 'w').close()
            added.append(new)
    # Back to the middle of the listing: the rest must follow from there.
    middle = first[len(first) // 2]
    libc.seekdir(d, positions[middle])
    after_seek = read_rest(d)
    libc.closedir(d)
    # A fresh pass sees the directory as it is now.
    d = libc.opendir(root.encode())
    second = read_rest(d)
    libc.closedir(d)
    json.dump({'first': first, 'middle': middle, 'after_seek': after_seek, 'second_pass': second,
               'added': added, 'removed': removed}, sys.stdout)


main()
