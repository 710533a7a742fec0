import { constants } from 'node:os';
import { loadBinding, putAttr, type Req } from '../src/fuse/binding.js';
import type { Attr } from '../src/vfs/attr.js';

/*
 * The binding's ceiling: a filesystem on veilfs's own FUSE binding that
 * keeps names, types and sizes and nothing else (reads return zeros,
 * written bytes are dropped), mounted with the same options as veilfs.
 * Whatever veilfs reaches, on data or metadata workloads, is measured
 * against it.
 * Usage: node null-fs.js MOUNTPOINT
 */
const [mountpoint] = process.argv.slice(2);
const b = loadBinding();
const TTL = 30;
const { ENOENT, ENODATA } = constants.errno;
const now = Math.floor(Date.now() / 1000);
interface Node { ino: number; dir: boolean; size: number; target?: string; children?: Map<string, number> }
const nodes = new Map<number, Node>([[1, { ino: 1, dir: true, size: 4096, children: new Map() }]]);
let nextIno = 2;
const zeros = Buffer.alloc(128 * 1024);

const attrOf = (n: Node): Attr => ({
  ino: n.ino, mode: n.dir ? 0o040755 : n.target !== undefined ? 0o120777 : 0o100644, uid: 0, gid: 0, nlink: n.dir ? 2 : 1,
  size: n.size, blocks: Math.ceil(n.size / 512), blksize: 4096, rdev: 0, atime: [now, 0], mtime: [now, 0], ctime: [now, 0],
});
const replyAttr = (req: Req, n: Node | undefined) => {
  if (!n) return b.replyErr(req, ENOENT);
  putAttr(attrOf(n));
  b.replyAttr(req, TTL);
};
const add = (req: Req, parent: number, name: string, node: Omit<Node, 'ino'>, fh?: number) => {
  const n = { ...node, ino: nextIno++ };
  nodes.set(n.ino, n);
  nodes.get(parent)?.children?.set(name, n.ino);
  putAttr(attrOf(n));
  if (fh === undefined) b.replyEntry(req, TTL);
  else b.replyCreate(req, TTL, fh);
};
const ok = (req: Req) => b.replyErr(req, 0);
const remove = (req: Req, parent: number, name: string) => {
  nodes.get(parent)?.children?.delete(name);
  ok(req);
};

const session = b.mount(mountpoint, 'fsname=nullfs,subtype=nullfs,default_permissions,max_read=131072,big_writes,max_write=131072', {
  init: () => process.stdout.write('ready\n'),
  lookup: (req: Req, parent: number, name: string) => {
    const ino = nodes.get(parent)?.children?.get(name);
    if (ino === undefined) return b.replyErr(req, ENOENT);
    putAttr(attrOf(nodes.get(ino)!));
    b.replyEntry(req, TTL);
  },
  getattr: (req: Req, ino: number) => replyAttr(req, nodes.get(ino)),
  setattr: (req: Req, ino: number, _fh: number, valid: number, _mode: number, _uid: number, _gid: number, size: number) => {
    const n = nodes.get(ino);
    if (n && valid & 8) n.size = size;
    replyAttr(req, n);
  },
  readlink: (req: Req, ino: number) => b.replyReadlink(req, nodes.get(ino)?.target ?? ''),
  mkdir: (req: Req, parent: number, name: string) => add(req, parent, name, { dir: true, size: 4096, children: new Map() }),
  symlink: (req: Req, target: string, parent: number, name: string) => add(req, parent, name, { dir: false, size: target.length, target }),
  create: (req: Req, parent: number, name: string) => add(req, parent, name, { dir: false, size: 0 }, 1),
  unlink: remove,
  rmdir: remove,
  rename: (req: Req, parent: number, name: string, newParent: number, newName: string) => {
    const ino = nodes.get(parent)?.children?.get(name);
    if (ino === undefined) return b.replyErr(req, ENOENT);
    nodes.get(parent)!.children!.delete(name);
    nodes.get(newParent)?.children?.set(newName, ino);
    ok(req);
  },
  open: (req: Req) => b.replyOpen(req, 1, false, false),
  opendir: (req: Req) => b.replyOpen(req, 1, false, false),
  read: (req: Req, ino: number, _fh: number, size: number, offset: number) =>
    b.replyData(req, zeros, Math.max(0, Math.min(size, (nodes.get(ino)?.size ?? 0) - offset))),
  write: (req: Req, ino: number, _fh: number, data: Buffer, offset: number) => {
    const n = nodes.get(ino);
    if (n) n.size = Math.max(n.size, offset + data.length);
    b.replyWrite(req, data.length);
  },
  readdir: (req: Req, ino: number, _fh: number, size: number, offset: number) => {
    const names = ['.', '..', ...(nodes.get(ino)?.children?.keys() ?? [])].slice(offset);
    const meta = new Float64Array(names.length * 3);
    names.forEach((name, i) => {
      const child = name === '.' || name === '..' ? ino : nodes.get(ino)!.children!.get(name)!;
      meta.set([child, nodes.get(child)!.dir ? 0o040000 : 0o100000, offset + i + 1], i * 3);
    });
    b.replyDir(req, size, names.join('/'), meta);
  },
  statfs: (req: Req) => b.replyStatfs(req, 4096, 4096, 1e6, 1e6, 1e6, 1e6, 1e6, 1e6, 255),
  getxattr: (req: Req) => b.replyErr(req, ENODATA),
  listxattr: (req: Req, _ino: number, size: number) => (size === 0 ? b.replyXattrSize(req, 0) : b.replyData(req, zeros, 0)),
  access: ok,
  flush: ok,
  release: ok,
  fsync: ok,
  releasedir: ok,
  fsyncdir: ok,
}, () => process.exit(0));
const stop = () => {
  b.unmount(session);
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
