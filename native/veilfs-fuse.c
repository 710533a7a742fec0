// veilfs's FUSE binding: libfuse's low-level API driven from Node's own
// event loop. /dev/fuse is polled by libuv; each request is decoded by
// libfuse and handed to JavaScript on the main thread, which answers it
// later (or at once) through one of the reply functions. No thread, no
// hop between threads: a request costs one call into JavaScript.
//
// Attributes travel through two shared Float64Arrays set once by
// setSlots(): JavaScript fills the attribute slot right before a reply
// that carries attributes, and finds the caller in the context slot when
// a request is dispatched. Both are safe because everything here runs on
// one thread.
#define FUSE_USE_VERSION 29
#include <fuse_lowlevel.h>
#include <node_api.h>
#include <uv.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <linux/fuse.h>

// Version of the contract between this file and src/fuse/binding.ts.
#define CONTRACT 5

enum {
  OP_INIT, OP_LOOKUP, OP_FORGET, OP_GETATTR, OP_SETATTR, OP_READLINK, OP_MKNOD,
  OP_MKDIR, OP_UNLINK, OP_RMDIR, OP_SYMLINK, OP_RENAME, OP_LINK, OP_OPEN, OP_READ,
  OP_WRITE, OP_FLUSH, OP_RELEASE, OP_FSYNC, OP_OPENDIR, OP_READDIR, OP_RELEASEDIR,
  OP_FSYNCDIR, OP_STATFS, OP_SETXATTR, OP_GETXATTR, OP_LISTXATTR, OP_REMOVEXATTR,
  OP_ACCESS, OP_CREATE, OP_READDIRPLUS, OP_COUNT
};
static const char *const OP_NAMES[OP_COUNT] = {
  "init", "lookup", "forget", "getattr", "setattr", "readlink", "mknod",
  "mkdir", "unlink", "rmdir", "symlink", "rename", "link", "open", "read",
  "write", "flush", "release", "fsync", "opendir", "readdir", "releasedir",
  "fsyncdir", "statfs", "setxattr", "getxattr", "listxattr", "removexattr",
  "access", "create", "readdirplus",
};

// Attribute slot layout, shared with src/fuse/binding.ts.
enum {
  A_INO, A_MODE, A_NLINK, A_UID, A_GID, A_RDEV, A_SIZE, A_BLOCKS, A_BLKSIZE,
  A_ATIME, A_ATIME_NS, A_MTIME, A_MTIME_NS, A_CTIME, A_CTIME_NS, A_COUNT
};
// Context slot layout: uid, gid, pid, umask of the caller.
enum { C_UID, C_GID, C_PID, C_UMASK, C_COUNT };

static double *attr_slot;
static double *ctx_slot;
static napi_ref slot_refs[2];
// VEILFS_FUSE_READDIRPLUS=0 turns listings with attributes off (to compare).
static int plus_wanted = 1;
// VEILFS_FUSE_BIG_IO=0 keeps requests at libfuse's 128 KiB (to compare).
static int big_io_wanted = 1;

typedef struct session {
  napi_env env;
  struct fuse_session *se;
  struct fuse_chan *ch;
  char *mountpoint;
  uv_poll_t poll;
  char *buf;
  size_t bufsize;
  napi_ref ops[OP_COUNT];
  napi_ref on_gone;
  napi_async_context async_ctx;
  int polling;
  int closed;
  // Where libfuse's replies go out (hook_send).
  struct fuse_chan *hook;
  // The kernel offered listings that carry attributes (FUSE_INIT's flags).
  int plus_offered;
  // The kernel's protocol minor version, from its INIT request.
  uint32_t kernel_minor;
  uint64_t init_unique;
  // Added to the open reply being sent (replyOpen sets it around its call).
  uint32_t open_flags;
} session_t;

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, NULL, #call " failed"); return NULL; } } while (0)

static napi_value num(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

static napi_value str(napi_env env, const char *s) {
  napi_value out;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &out);
  return out;
}

static napi_value req_value(napi_env env, fuse_req_t req) {
  // User-space pointers have at most 48 significant bits: exact in a double.
  return num(env, (double)(uintptr_t)req);
}

static void set_context(fuse_req_t req) {
  const struct fuse_ctx *c = fuse_req_ctx(req);
  ctx_slot[C_UID] = c->uid;
  ctx_slot[C_GID] = c->gid;
  ctx_slot[C_PID] = c->pid;
  ctx_slot[C_UMASK] = c->umask;
}

static session_t *session_of(fuse_req_t req) {
  return (session_t *)fuse_req_userdata(req);
}

// Calls a JavaScript function; an exception in it is a bug in veilfs and
// goes to Node's uncaught-exception path like any other.
static void call_ref(napi_env env, napi_ref ref, size_t argc, napi_value *argv) {
  napi_value fn, undefined;
  napi_get_reference_value(env, ref, &fn);
  napi_get_undefined(env, &undefined);
  if (napi_call_function(env, undefined, fn, argc, argv, NULL) == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
}

// Calls the JavaScript handler of op.
static void call_js(session_t *s, int op, size_t argc, napi_value *argv) {
  call_ref(s->env, s->ops[op], argc, argv);
}

// Returns the session of a request whose op has a handler, or NULL once
// the request has been answered with ENOSYS.
static session_t *begin(fuse_req_t req, int op) {
  session_t *s = session_of(req);
  if (!s->ops[op]) {
    fuse_reply_err(req, ENOSYS);
    return NULL;
  }
  set_context(req);
  return s;
}

#define BEGIN(op) session_t *s = begin(req, op); if (!s) return; napi_env env = s->env;

// ---- what libfuse 2 does not know ----
//
// libfuse 2 predates READDIRPLUS: it would neither ask the kernel for it
// at INIT nor decode it. Without it `ls -l`, `find -ls` and file managers
// cost one lookup round trip per entry. So READDIRPLUS requests are taken
// off the wire before libfuse sees them and answered here
// (src/fuse/operations.ts supplies the entries), and libfuse's replies go
// out through a channel of our own (hook_send), which adds to the INIT
// reply the flag that asks for them, and to an open's reply the flags
// libfuse 2 cannot set (FOPEN_NOFLUSH).
//
// RENAME2 (renameat2's flags, protocol 7.23) is taken off the wire the
// same way. The kernel sends it only to a daemon that answered INIT with
// 7.23 or later, so the INIT reply claims 7.23 when the kernel has it.
// That is safe because nothing libfuse 2.9 decodes changed between 7.19
// and 7.23: the kernel's other differences at 7.20-7.23 are behind INIT
// flags libfuse does not set (writeback cache, async direct I/O), and the
// rest of the INIT reply it reads (time_gran) is zero, its default.
// Without RENAME2 every `mv` is refused RENAME_NOREPLACE with EINVAL and
// tries again with a stat and a plain rename: two more round trips.
//
// Requests of up to 1 MiB (FUSE_MAX_PAGES, protocol 7.28) are asked for
// the same way: libfuse 2 sizes its buffer for 128 KiB and knows no
// max_pages, so the buffer here is larger (js_mount) and the INIT reply is
// rewritten whole with max_pages and max_write set (big_init). A
// `dd bs=1M` or a copy with large buffers then costs one round trip per
// MiB instead of eight. Claiming 7.28 is safe for the same reason as 7.23:
// what 7.24-7.28 added is behind INIT flags that stay unset (parallel
// directory operations, ACLs, kill-priv, abort errors, cached symlinks)
// or new requests (LSEEK, COPY_FILE_RANGE), which libfuse answers with
// ENOSYS and the kernel then does without; no request libfuse decodes
// changed.

// A request libfuse never saw; its Req has the low bit set (malloc'd, so
// a fuse_req_t never has).
typedef struct raw_req {
  session_t *s;
  uint64_t unique;
} raw_req_t;

// The protocol version that brought RENAME2.
#define RENAME2_MINOR 23
// The protocol version that brought max_pages, and the pages asked for.
#define MAX_PAGES_MINOR 28
#define IO_PAGES 256
#define IO_BYTES (IO_PAGES * 4096)

static int is_raw(double req) {
  return ((uintptr_t)req & 1) != 0;
}

static raw_req_t *raw_of(double req) {
  return (raw_req_t *)((uintptr_t)req & ~(uintptr_t)1);
}

// Answers a raw request with an error (positive errno) or a payload, and frees it.
static void raw_reply(raw_req_t *r, int error, const void *data, size_t len) {
  if (!r->s->closed) {
    struct fuse_out_header out = { sizeof(out) + (error ? 0 : len), error ? -error : 0, r->unique };
    struct iovec iov[] = { { &out, sizeof(out) }, { (void *)data, error ? 0 : len } };
    // A failed write means the kernel gave up on the request (interrupted, or unmounted): nothing to do.
    (void)writev(fuse_chan_fd(r->s->ch), iov, error || !len ? 1 : 2);
  }
  free(r);
}

// libfuse's INIT reply (given: its first size bytes) as the full
// structure of 7.28, asking for requests of up to IO_BYTES.
static struct fuse_init_out big_init(const struct fuse_init_out *given, size_t size) {
  struct fuse_init_out init;
  memset(&init, 0, sizeof init);
  memcpy(&init, given, size < sizeof init ? size : sizeof init);
  if (init.minor < MAX_PAGES_MINOR) init.minor = MAX_PAGES_MINOR;
  init.flags |= FUSE_MAX_PAGES;
  init.max_pages = IO_PAGES;
  init.max_write = IO_BYTES;
  return init;
}

static int hook_send(struct fuse_chan *ch, const struct iovec iov[], size_t count) {
  // A forget has no reply: libfuse still calls send, with nothing.
  if (!iov || count == 0) return 0;
  session_t *s = fuse_chan_data(ch);
  const struct fuse_out_header *out = iov[0].iov_base;
  // The INIT reply, when it is sent rewritten whole (big_init).
  struct fuse_out_header big_header;
  struct fuse_init_out big;
  struct iovec big_reply[2];
  if (out->error == 0 && count >= 2) {
    if (out->unique == s->init_unique && iov[1].iov_len >= offsetof(struct fuse_init_out, flags) + sizeof(uint32_t)) {
      struct fuse_init_out *init = iov[1].iov_base;
      // Always with attributes, not the kernel's adaptive mode: ls -l reads a
      // whole directory before it stats any entry, which that mode misses.
      if (s->plus_offered) init->flags |= FUSE_DO_READDIRPLUS;
      if (s->ops[OP_RENAME] && s->kernel_minor >= RENAME2_MINOR && init->minor < RENAME2_MINOR) init->minor = RENAME2_MINOR;
      if (big_io_wanted && s->kernel_minor >= MAX_PAGES_MINOR && count == 2 && iov[1].iov_len >= offsetof(struct fuse_init_out, time_gran)) {
        big = big_init(init, iov[1].iov_len);
        big_header = *out;
        big_header.len = sizeof big_header + sizeof big;
        big_reply[0] = (struct iovec){ &big_header, sizeof big_header };
        big_reply[1] = (struct iovec){ &big, sizeof big };
        iov = big_reply;
      }
    }
    if (s->open_flags && iov[1].iov_len >= sizeof(struct fuse_open_out)) ((struct fuse_open_out *)iov[1].iov_base)->open_flags |= s->open_flags;
  }
  ssize_t res = writev(fuse_chan_fd(ch), iov, count);
  return res < 0 ? -errno : 0;
}

static struct fuse_chan_ops HOOK_OPS = { .send = hook_send };

// Notes what the kernel offers at INIT before libfuse answers it.
static void note_init(session_t *s, const char *buf, size_t len) {
  const struct fuse_in_header *in = (const void *)buf;
  const struct fuse_init_in *arg = (const void *)(buf + sizeof(*in));
  s->init_unique = in->unique;
  s->kernel_minor = len >= sizeof(*in) + sizeof(uint32_t) * 2 ? arg->minor : 0;
  s->plus_offered = len >= sizeof(*in) + sizeof(uint32_t) * 4 && (arg->flags & FUSE_DO_READDIRPLUS) && s->ops[OP_READDIRPLUS] && plus_wanted;
}

// A raw request for JavaScript, its caller in the context slot.
static raw_req_t *raw_begin(session_t *s, const struct fuse_in_header *in) {
  raw_req_t *r = malloc(sizeof(*r));
  r->s = s;
  r->unique = in->unique;
  ctx_slot[C_UID] = in->uid;
  ctx_slot[C_GID] = in->gid;
  ctx_slot[C_PID] = in->pid;
  ctx_slot[C_UMASK] = 0;
  return r;
}

static napi_value raw_value(napi_env env, raw_req_t *r) {
  return num(env, (double)((uintptr_t)r | 1));
}

// READDIRPLUS: (req, ino, fh, size, offset), as readdir. Only asked for
// when there is a handler (note_init).
static void process_readdirplus(session_t *s, const char *buf, size_t len) {
  const struct fuse_in_header *in = (const void *)buf;
  const struct fuse_read_in *arg = (const void *)(buf + sizeof(*in));
  raw_req_t *r = raw_begin(s, in);
  if (len < sizeof(*in) + sizeof(*arg)) {
    raw_reply(r, EIO, NULL, 0);
    return;
  }
  napi_env env = s->env;
  napi_value argv[] = {
    raw_value(env, r), num(env, in->nodeid), num(env, arg->fh), num(env, arg->size), num(env, arg->offset),
  };
  call_js(s, OP_READDIRPLUS, 5, argv);
}

// RENAME2: the rename handler's arguments and then renameat2's flags.
// Only sent once INIT claimed RENAME2_MINOR, which needs a rename handler.
static void process_rename2(session_t *s, const char *buf, size_t len) {
  const struct fuse_in_header *in = (const void *)buf;
  const struct fuse_rename2_in *arg = (const void *)(buf + sizeof(*in));
  raw_req_t *r = raw_begin(s, in);
  const char *name = buf + sizeof(*in) + sizeof(*arg);
  const char *end = buf + len;
  const char *name_end = name < end ? memchr(name, 0, end - name) : NULL;
  const char *newname = name_end ? name_end + 1 : NULL;
  if (!newname || newname >= end || !memchr(newname, 0, end - newname)) {
    raw_reply(r, EIO, NULL, 0);
    return;
  }
  napi_env env = s->env;
  napi_value argv[] = {
    raw_value(env, r), num(env, in->nodeid), str(env, name), num(env, arg->newdir), str(env, newname), num(env, arg->flags),
  };
  call_js(s, OP_RENAME, 6, argv);
}

static void ll_init(void *userdata, struct fuse_conn_info *conn) {
  session_t *s = userdata;
  if (!s->ops[OP_INIT]) return;
  // The kernel's protocol minor version (7.x): what it can be asked to do.
  napi_value argv[] = { num(s->env, conn->proto_minor) };
  call_js(s, OP_INIT, 1, argv);
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  BEGIN(OP_LOOKUP)
  napi_value argv[] = { req_value(env, req), num(env, parent), str(env, name) };
  call_js(s, OP_LOOKUP, 3, argv);
}

static void forget_one(session_t *s, uint64_t ino, uint64_t nlookup) {
  if (!s->ops[OP_FORGET]) return;
  napi_value argv[] = { num(s->env, ino), num(s->env, nlookup) };
  call_js(s, OP_FORGET, 2, argv);
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, unsigned long nlookup) {
  forget_one(session_of(req), ino, nlookup);
  fuse_reply_none(req);
}

static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  session_t *s = session_of(req);
  for (size_t i = 0; i < count; i++) forget_one(s, forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  BEGIN(OP_GETATTR)
  napi_value argv[] = { req_value(env, req), num(env, ino) };
  call_js(s, OP_GETATTR, 2, argv);
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
  BEGIN(OP_SETATTR)
  napi_value argv[] = {
    req_value(env, req), num(env, ino), num(env, fi ? (double)fi->fh : -1), num(env, to_set),
    num(env, attr->st_mode), num(env, attr->st_uid), num(env, attr->st_gid), num(env, attr->st_size),
    num(env, attr->st_atim.tv_sec), num(env, attr->st_atim.tv_nsec),
    num(env, attr->st_mtim.tv_sec), num(env, attr->st_mtim.tv_nsec),
  };
  call_js(s, OP_SETATTR, 12, argv);
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino) {
  BEGIN(OP_READLINK)
  napi_value argv[] = { req_value(env, req), num(env, ino) };
  call_js(s, OP_READLINK, 2, argv);
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  BEGIN(OP_MKNOD)
  napi_value argv[] = { req_value(env, req), num(env, parent), str(env, name), num(env, mode), num(env, rdev) };
  call_js(s, OP_MKNOD, 5, argv);
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  BEGIN(OP_MKDIR)
  napi_value argv[] = { req_value(env, req), num(env, parent), str(env, name), num(env, mode) };
  call_js(s, OP_MKDIR, 4, argv);
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  BEGIN(OP_UNLINK)
  napi_value argv[] = { req_value(env, req), num(env, parent), str(env, name) };
  call_js(s, OP_UNLINK, 3, argv);
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
  BEGIN(OP_RMDIR)
  napi_value argv[] = { req_value(env, req), num(env, parent), str(env, name) };
  call_js(s, OP_RMDIR, 3, argv);
}

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
  BEGIN(OP_SYMLINK)
  napi_value argv[] = { req_value(env, req), str(env, link), num(env, parent), str(env, name) };
  call_js(s, OP_SYMLINK, 4, argv);
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname) {
  BEGIN(OP_RENAME)
  napi_value argv[] = { req_value(env, req), num(env, parent), str(env, name), num(env, newparent), str(env, newname) };
  call_js(s, OP_RENAME, 5, argv);
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  BEGIN(OP_LINK)
  napi_value argv[] = { req_value(env, req), num(env, ino), num(env, newparent), str(env, newname) };
  call_js(s, OP_LINK, 4, argv);
}

// The requests that carry one field of the file info: (req, ino, field).
// Opens pass the open flags; flush and the releases the handle.
#define FI_OP(fn, op, field) \
  static void fn(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) { \
    BEGIN(op) \
    napi_value argv[] = { req_value(env, req), num(env, ino), num(env, fi->field) }; \
    call_js(s, op, 3, argv); \
  }
FI_OP(ll_open, OP_OPEN, flags)
FI_OP(ll_opendir, OP_OPENDIR, flags)
FI_OP(ll_flush, OP_FLUSH, fh)
FI_OP(ll_release, OP_RELEASE, fh)
FI_OP(ll_releasedir, OP_RELEASEDIR, fh)

// read and readdir: (req, ino, fh, size, offset).
#define READ_OP(fn, op) \
  static void fn(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) { \
    BEGIN(op) \
    napi_value argv[] = { req_value(env, req), num(env, ino), num(env, fi->fh), num(env, size), num(env, off) }; \
    call_js(s, op, 5, argv); \
  }
READ_OP(ll_read, OP_READ)
READ_OP(ll_readdir, OP_READDIR)

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  BEGIN(OP_WRITE)
  // buf lives in the receive buffer, which the next request overwrites.
  napi_value data;
  void *copy;
  napi_create_buffer_copy(env, size, buf, &copy, &data);
  napi_value argv[] = { req_value(env, req), num(env, ino), num(env, fi->fh), data, num(env, off) };
  call_js(s, OP_WRITE, 5, argv);
}

#define SYNC_OP(fn, op) \
  static void fn(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) { \
    BEGIN(op) \
    napi_value argv[] = { req_value(env, req), num(env, ino), num(env, fi->fh), num(env, datasync) }; \
    call_js(s, op, 4, argv); \
  }
SYNC_OP(ll_fsync, OP_FSYNC)
SYNC_OP(ll_fsyncdir, OP_FSYNCDIR)

static void ll_statfs(fuse_req_t req, fuse_ino_t ino) {
  BEGIN(OP_STATFS)
  napi_value argv[] = { req_value(env, req), num(env, ino) };
  call_js(s, OP_STATFS, 2, argv);
}

static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) {
  BEGIN(OP_SETXATTR)
  napi_value data;
  void *copy;
  napi_create_buffer_copy(env, size, value, &copy, &data);
  napi_value argv[] = { req_value(env, req), num(env, ino), str(env, name), data, num(env, flags) };
  call_js(s, OP_SETXATTR, 5, argv);
}

static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  BEGIN(OP_GETXATTR)
  napi_value argv[] = { req_value(env, req), num(env, ino), str(env, name), num(env, size) };
  call_js(s, OP_GETXATTR, 4, argv);
}

static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  BEGIN(OP_LISTXATTR)
  napi_value argv[] = { req_value(env, req), num(env, ino), num(env, size) };
  call_js(s, OP_LISTXATTR, 3, argv);
}

static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
  BEGIN(OP_REMOVEXATTR)
  napi_value argv[] = { req_value(env, req), num(env, ino), str(env, name) };
  call_js(s, OP_REMOVEXATTR, 3, argv);
}

static void ll_access(fuse_req_t req, fuse_ino_t ino, int mask) {
  BEGIN(OP_ACCESS)
  napi_value argv[] = { req_value(env, req), num(env, ino), num(env, mask) };
  call_js(s, OP_ACCESS, 3, argv);
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
  BEGIN(OP_CREATE)
  napi_value argv[] = { req_value(env, req), num(env, parent), str(env, name), num(env, mode), num(env, fi->flags) };
  call_js(s, OP_CREATE, 5, argv);
}

static const struct fuse_lowlevel_ops LL_OPS = {
  .init = ll_init, .lookup = ll_lookup, .forget = ll_forget, .forget_multi = ll_forget_multi,
  .getattr = ll_getattr, .setattr = ll_setattr, .readlink = ll_readlink, .mknod = ll_mknod,
  .mkdir = ll_mkdir, .unlink = ll_unlink, .rmdir = ll_rmdir, .symlink = ll_symlink,
  .rename = ll_rename, .link = ll_link, .open = ll_open, .read = ll_read, .write = ll_write,
  .flush = ll_flush, .release = ll_release, .fsync = ll_fsync, .opendir = ll_opendir,
  .readdir = ll_readdir, .releasedir = ll_releasedir, .fsyncdir = ll_fsyncdir,
  .statfs = ll_statfs, .setxattr = ll_setxattr, .getxattr = ll_getxattr,
  .listxattr = ll_listxattr, .removexattr = ll_removexattr, .access = ll_access,
  .create = ll_create,
};

// ---- the session: mount, poll, unmount ----

static void stop_polling(session_t *s) {
  if (!s->polling) return;
  s->polling = 0;
  uv_poll_stop(&s->poll);
}

// What JavaScript called from a libuv callback needs open around it: a
// handle scope, and a callback scope, whose closing runs the promise jobs
// the call queued, as after any callback Node itself makes.
typedef struct js_scope {
  napi_handle_scope handles;
  napi_callback_scope callback;
} js_scope_t;

static void enter_js(session_t *s, js_scope_t *scope) {
  napi_open_handle_scope(s->env, &scope->handles);
  napi_value resource;
  napi_create_object(s->env, &resource);
  napi_open_callback_scope(s->env, resource, s->async_ctx, &scope->callback);
}

static void leave_js(session_t *s, js_scope_t *scope) {
  napi_close_callback_scope(s->env, scope->callback);
  napi_close_handle_scope(s->env, scope->handles);
}

// Also reached straight from libuv (the poll failed: someone ran
// fusermount -u), where no scope is open, so it opens its own.
static void notify_gone(session_t *s) {
  if (!s->on_gone) return;
  js_scope_t scope;
  enter_js(s, &scope);
  call_ref(s->env, s->on_gone, 0, NULL);
  leave_js(s, &scope);
}

// Reads and dispatches the requests waiting, at most a batch; returns how
// many, or -1 once the kernel dropped the mount. Replies of quick
// asynchronous work go out before this returns (leave_js).
static int process_batch(session_t *s) {
  napi_env env = s->env;
  js_scope_t scope;
  enter_js(s, &scope);
  int count = 0;
  while (count < 32 && s->polling) {
    struct fuse_chan *ch = s->ch;
    int res = fuse_chan_recv(&ch, s->buf, s->bufsize);
    if (res == -EAGAIN) break;
    if (res == -EINTR) continue;
    if (res <= 0 || fuse_session_exited(s->se)) {
      count = -1;
      break;
    }
    napi_handle_scope request_scope;
    napi_open_handle_scope(env, &request_scope);
    uint32_t opcode = (size_t)res >= sizeof(struct fuse_in_header) ? ((struct fuse_in_header *)s->buf)->opcode : 0;
    if (opcode == FUSE_READDIRPLUS) {
      process_readdirplus(s, s->buf, res);
    } else if (opcode == FUSE_RENAME2) {
      process_rename2(s, s->buf, res);
    } else {
      if (opcode == FUSE_INIT) note_init(s, s->buf, res);
      fuse_session_process(s->se, s->buf, res, s->hook);
    }
    napi_close_handle_scope(env, request_scope);
    count++;
  }
  if (count < 0) {
    stop_polling(s);
    notify_gone(s);
  }
  leave_js(s, &scope);
  return count;
}

// After a burst of requests, keep reading /dev/fuse for a moment before
// going back to libuv: the next request of a busy caller (ls -l, find,
// tar) usually comes within tens of microseconds, and catching it here
// saves the wake-up of a sleeping thread, which on a virtual machine costs
// more than the request itself (a third off `ls -lR` of 20,000 files).
// VEILFS_FUSE_SPIN_US overrides it; 0 never spins.
static uint64_t spin_ns = 50000;

static void on_readable(uv_poll_t *handle, int status, int events) {
  session_t *s = handle->data;
  if (status < 0) {
    stop_polling(s);
    notify_gone(s);
    return;
  }
  uint64_t start = uv_hrtime();
  uint64_t spin_until = start + spin_ns;
  for (;;) {
    int count = process_batch(s);
    if (count < 0 || !s->polling) return;
    uint64_t now = uv_hrtime();
    if (count > 0) spin_until = now + spin_ns;
    if (now >= spin_until || now - start > 2000000) return;
  }
}

static void close_session(session_t *s) {
  if (s->closed) return;
  s->closed = 1;
  stop_polling(s);
  uv_close((uv_handle_t *)&s->poll, NULL);
  fuse_session_remove_chan(s->ch);
  fuse_session_destroy(s->se);
  fuse_chan_destroy(s->hook);
  // Closes /dev/fuse and detaches the mount (lazily, as fusermount -z does)
  // unless the kernel already dropped it.
  fuse_unmount(s->mountpoint, s->ch);
}

static void free_session(napi_env env, void *data, void *hint) {
  session_t *s = data;
  // Only reached once JavaScript dropped the handle; the poll handle must
  // be closed by libuv before its memory goes.
  close_session(s);
}

// The numbers of a Float64Array (and how many), or NULL for anything else.
static const double *get_doubles(napi_env env, napi_value v, size_t *count) {
  napi_typedarray_type type;
  void *data;
  if (napi_get_typedarray_info(env, v, &type, count, &data, NULL, NULL) != napi_ok || type != napi_float64_array) return NULL;
  return data;
}

static char *get_string(napi_env env, napi_value v) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *out = malloc(len + 1);
  napi_get_value_string_utf8(env, v, out, len + 1, &len);
  return out;
}

// mount(mountpoint, options, handlers, onGone) -> session
static napi_value js_mount(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!attr_slot) {
    napi_throw_error(env, NULL, "setSlots() must come first");
    return NULL;
  }
  session_t *s = calloc(1, sizeof(session_t));
  s->env = env;
  s->mountpoint = get_string(env, argv[0]);
  char *options = get_string(env, argv[1]);
  for (int op = 0; op < OP_COUNT; op++) {
    napi_value fn;
    napi_valuetype type;
    if (napi_get_named_property(env, argv[2], OP_NAMES[op], &fn) != napi_ok) continue;
    napi_typeof(env, fn, &type);
    if (type == napi_function) napi_create_reference(env, fn, 1, &s->ops[op]);
  }
  napi_create_reference(env, argv[3], 1, &s->on_gone);

  char *args_v[] = { "veilfs", "-o", options, NULL };
  struct fuse_args args = FUSE_ARGS_INIT(3, args_v);
  s->ch = fuse_mount(s->mountpoint, &args);
  if (!s->ch) {
    fuse_opt_free_args(&args);
    free(options);
    napi_throw_error(env, "EMOUNT", "the kernel refused the mount (libfuse said why on standard error)");
    return NULL;
  }
  s->se = fuse_lowlevel_new(&args, &LL_OPS, sizeof(LL_OPS), s);
  fuse_opt_free_args(&args);
  free(options);
  if (!s->se) {
    fuse_unmount(s->mountpoint, s->ch);
    napi_throw_error(env, "EMOUNT", "libfuse refused the options");
    return NULL;
  }
  fuse_session_add_chan(s->se, s->ch);
  int fd = fuse_chan_fd(s->ch);
  s->bufsize = fuse_chan_bufsize(s->ch);
  // The kernel refuses to read into a buffer that could not hold its largest write.
  if (big_io_wanted && s->bufsize < IO_BYTES + 4096) s->bufsize = IO_BYTES + 4096;
  s->hook = fuse_chan_new(&HOOK_OPS, fd, s->bufsize, s);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  // A child process (systemd-notify, a shell) holding /dev/fuse would keep
  // the connection alive after this daemon died: every caller would hang
  // instead of getting ENOTCONN.
  fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
  s->buf = malloc(s->bufsize);

  napi_value resource_name = str(env, "veilfs:fuse");
  napi_value resource;
  napi_create_object(env, &resource);
  napi_async_init(env, resource, resource_name, &s->async_ctx);

  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  uv_poll_init(loop, &s->poll, fd);
  s->poll.data = s;
  uv_poll_start(&s->poll, UV_READABLE, on_readable);
  s->polling = 1;

  napi_value handle;
  CHECK(napi_create_external(env, s, free_session, NULL, &handle));
  return handle;
}

static session_t *get_session(napi_env env, napi_value v) {
  void *data = NULL;
  napi_get_value_external(env, v, &data);
  return data;
}

// unmount(session): stops serving and detaches the mount.
static napi_value js_unmount(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_t *s = get_session(env, argv[0]);
  if (s) close_session(s);
  return NULL;
}

// invalidate(session, ino): the kernel drops its cached attributes.
static napi_value js_invalidate(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int64_t ino;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_t *s = get_session(env, argv[0]);
  napi_get_value_int64(env, argv[1], &ino);
  int res = s && !s->closed ? fuse_lowlevel_notify_inval_inode(s->ch, ino, -1, 0) : -ENOTCONN;
  return num(env, res);
}

// The kernel's message for FUSE_NOTIFY_PRUNE (protocol 7.45, Linux 6.18),
// which the system's headers may predate.
#define NOTIFY_PRUNE 9
// The most one request names; src/fuse/nodes.ts offers no more.
#define PRUNE_BATCH 512
struct notify_prune {
  uint32_t count;
  uint32_t padding;
  uint64_t spare;
};

// prune(session, inos, count): asks the kernel to drop the inodes it holds
// but does not use (no open file, no cached child, no cwd); it sends a
// forget for each it drops. Unlike invalidating a name, this takes no
// directory lock, so it cannot wait on a request this thread has yet to
// answer. Returns 0 or -errno (-EINVAL: the kernel predates it).
static napi_value js_prune(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  uint32_t count;
  size_t length;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_t *s = get_session(env, argv[0]);
  const double *inos = get_doubles(env, argv[1], &length);
  if (!inos) {
    napi_throw_type_error(env, NULL, "prune wants a Float64Array of inode numbers");
    return NULL;
  }
  napi_get_value_uint32(env, argv[2], &count);
  if (count > length) count = length;
  if (count > PRUNE_BATCH) count = PRUNE_BATCH;
  if (!s || s->closed) return num(env, -ENOTCONN);
  uint64_t ids[PRUNE_BATCH];
  for (uint32_t i = 0; i < count; i++) ids[i] = (uint64_t)inos[i];
  struct notify_prune arg = { count, 0, 0 };
  struct fuse_out_header out = { sizeof(out) + sizeof(arg) + count * sizeof(uint64_t), NOTIFY_PRUNE, 0 };
  struct iovec iov[] = { { &out, sizeof(out) }, { &arg, sizeof(arg) }, { ids, count * sizeof(uint64_t) } };
  ssize_t res = writev(fuse_chan_fd(s->ch), iov, 3);
  return num(env, res < 0 ? -errno : 0);
}

// ---- replies ----

static fuse_req_t get_req(napi_env env, napi_value v) {
  double d;
  napi_get_value_double(env, v, &d);
  return (fuse_req_t)(uintptr_t)d;
}

static void slot_stat(struct stat *st) {
  memset(st, 0, sizeof(*st));
  st->st_ino = (ino_t)attr_slot[A_INO];
  st->st_mode = (mode_t)attr_slot[A_MODE];
  st->st_nlink = (nlink_t)attr_slot[A_NLINK];
  st->st_uid = (uid_t)attr_slot[A_UID];
  st->st_gid = (gid_t)attr_slot[A_GID];
  st->st_rdev = (dev_t)attr_slot[A_RDEV];
  st->st_size = (off_t)attr_slot[A_SIZE];
  st->st_blocks = (blkcnt_t)attr_slot[A_BLOCKS];
  st->st_blksize = (blksize_t)attr_slot[A_BLKSIZE];
  st->st_atim.tv_sec = (time_t)attr_slot[A_ATIME];
  st->st_atim.tv_nsec = (long)attr_slot[A_ATIME_NS];
  st->st_mtim.tv_sec = (time_t)attr_slot[A_MTIME];
  st->st_mtim.tv_nsec = (long)attr_slot[A_MTIME_NS];
  st->st_ctim.tv_sec = (time_t)attr_slot[A_CTIME];
  st->st_ctim.tv_nsec = (long)attr_slot[A_CTIME_NS];
}

static void slot_entry(struct fuse_entry_param *e, double timeout) {
  memset(e, 0, sizeof(*e));
  slot_stat(&e->attr);
  e->ino = e->attr.st_ino;
  e->generation = 1;
  e->attr_timeout = timeout;
  e->entry_timeout = timeout;
}

#define REPLY_ARGS(n) \
  size_t argc = n; \
  napi_value argv[n]; \
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL)); \
  fuse_req_t req = get_req(env, argv[0]);

static double get_double(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return d;
}

// Replies that carry one number: replyErr(req, errno) with errno positive
// (0: success without data), replyWrite(req, count), replyXattrSize(req, size).
#define REPLY_NUMBER(js_name, reply) \
  static napi_value js_name(napi_env env, napi_callback_info info) { \
    REPLY_ARGS(2) \
    reply(req, get_double(env, argv[1])); \
    return NULL; \
  }
// A raw request (READDIRPLUS, RENAME2) can only fail or get a listing.
static void reply_err(double req, int error) {
  if (is_raw(req)) raw_reply(raw_of(req), error, NULL, 0);
  else fuse_reply_err((fuse_req_t)(uintptr_t)req, error);
}

static napi_value js_reply_err(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  reply_err(get_double(env, argv[0]), (int)get_double(env, argv[1]));
  return NULL;
}
REPLY_NUMBER(js_reply_write, fuse_reply_write)
REPLY_NUMBER(js_reply_xattr_size, fuse_reply_xattr)

// replyEntry(req, timeout): the name's inode from the attribute slot; ino 0 caches its absence.
static napi_value js_reply_entry(napi_env env, napi_callback_info info) {
  REPLY_ARGS(2)
  struct fuse_entry_param e;
  slot_entry(&e, get_double(env, argv[1]));
  fuse_reply_entry(req, &e);
  return NULL;
}

// replyAttr(req, timeout)
static napi_value js_reply_attr(napi_env env, napi_callback_info info) {
  REPLY_ARGS(2)
  struct stat st;
  slot_stat(&st);
  fuse_reply_attr(req, &st, get_double(env, argv[1]));
  return NULL;
}

// replyCreate(req, timeout, fh)
static napi_value js_reply_create(napi_env env, napi_callback_info info) {
  REPLY_ARGS(3)
  struct fuse_entry_param e;
  struct fuse_file_info fi;
  slot_entry(&e, get_double(env, argv[1]));
  memset(&fi, 0, sizeof(fi));
  fi.fh = (uint64_t)get_double(env, argv[2]);
  fuse_reply_create(req, &e, &fi);
  return NULL;
}

// Protocol 7.35, which the system's headers may predate.
#ifndef FOPEN_NOFLUSH
#define FOPEN_NOFLUSH (1 << 5)
#endif

// replyOpen(req, fh, keepCache, noFlush): noFlush spares the round trip
// close(2) makes to flush a handle that has nothing to flush.
static napi_value js_reply_open(napi_env env, napi_callback_info info) {
  REPLY_ARGS(4)
  struct fuse_file_info fi;
  bool keep = false, no_flush = false;
  memset(&fi, 0, sizeof(fi));
  fi.fh = (uint64_t)get_double(env, argv[1]);
  napi_get_value_bool(env, argv[2], &keep);
  napi_get_value_bool(env, argv[3], &no_flush);
  fi.keep_cache = keep;
  session_t *s = session_of(req);
  s->open_flags = no_flush ? FOPEN_NOFLUSH : 0;
  fuse_reply_open(req, &fi);
  s->open_flags = 0;
  return NULL;
}

// replyData(req, buffer, length)
static napi_value js_reply_data(napi_env env, napi_callback_info info) {
  REPLY_ARGS(3)
  void *data;
  size_t len;
  napi_get_buffer_info(env, argv[1], &data, &len);
  size_t n = (size_t)get_double(env, argv[2]);
  fuse_reply_buf(req, data, n < len ? n : len);
  return NULL;
}

// replyReadlink(req, target)
static napi_value js_reply_readlink(napi_env env, napi_callback_info info) {
  REPLY_ARGS(2)
  char *target = get_string(env, argv[1]);
  fuse_reply_readlink(req, target ? target : "");
  free(target);
  return NULL;
}

// replyStatfs(req, bsize, frsize, blocks, bfree, bavail, files, ffree, favail, namemax)
static napi_value js_reply_statfs(napi_env env, napi_callback_info info) {
  REPLY_ARGS(10)
  struct statvfs st;
  memset(&st, 0, sizeof(st));
  st.f_bsize = (unsigned long)get_double(env, argv[1]);
  st.f_frsize = (unsigned long)get_double(env, argv[2]);
  st.f_blocks = (fsblkcnt_t)get_double(env, argv[3]);
  st.f_bfree = (fsblkcnt_t)get_double(env, argv[4]);
  st.f_bavail = (fsblkcnt_t)get_double(env, argv[5]);
  st.f_files = (fsfilcnt_t)get_double(env, argv[6]);
  st.f_ffree = (fsfilcnt_t)get_double(env, argv[7]);
  st.f_favail = (fsfilcnt_t)get_double(env, argv[8]);
  st.f_namemax = (unsigned long)get_double(env, argv[9]);
  fuse_reply_statfs(req, &st);
  return NULL;
}

// The next of the names joined by "/" that *cursor points into (split in
// place), or NULL after the last. A name is never empty, so "" holds none.
static char *next_name(char **cursor) {
  char *name = *cursor;
  if (!name || !*name) return NULL;
  char *end = strchr(name, '/');
  if (end) *end = '\0';
  *cursor = end ? end + 1 : NULL;
  return name;
}

// Where a listing is built: one buffer, grown to the largest the kernel
// asked for (everything here runs on one thread), not one per request.
static char *listing_buffer(size_t size) {
  static char *buf;
  static size_t capacity;
  if (size > capacity) {
    free(buf);
    buf = malloc(size);
    capacity = buf ? size : 0;
  }
  return buf;
}

// replyDir(req, size, names joined by "/", Float64Array of [ino, mode, cookie] per name)
// -> how many entries fit; the kernel asks again from the last one's cookie.
static napi_value js_reply_dir(napi_env env, napi_callback_info info) {
  REPLY_ARGS(4)
  size_t size = (size_t)get_double(env, argv[1]);
  char *names = get_string(env, argv[2]);
  size_t count = 0;
  const double *meta = get_doubles(env, argv[3], &count);
  char *out = listing_buffer(size);
  size_t used = 0, entries = 0;
  char *cursor = names, *name;
  struct stat st;
  memset(&st, 0, sizeof(st));
  for (size_t i = 0; out && (i + 1) * 3 <= count && (name = next_name(&cursor)); i++) {
    st.st_ino = (ino_t)meta[i * 3];
    st.st_mode = (mode_t)meta[i * 3 + 1];
    size_t need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);
    if (used + need > size) break;
    fuse_add_direntry(req, out + used, size - used, name, &st, (off_t)meta[i * 3 + 2]);
    used += need;
    entries++;
  }
  fuse_reply_buf(req, out, used);
  free(names);
  return num(env, entries);
}

// The kernel's struct fuse_attr from numbers in the attribute slot's layout.
static void fuse_attr_of(const double *m, struct fuse_attr *a) {
  a->ino = (uint64_t)m[A_INO];
  a->mode = (uint32_t)m[A_MODE];
  a->nlink = (uint32_t)m[A_NLINK];
  a->uid = (uint32_t)m[A_UID];
  a->gid = (uint32_t)m[A_GID];
  a->rdev = (uint32_t)m[A_RDEV];
  a->size = (uint64_t)m[A_SIZE];
  a->blocks = (uint64_t)m[A_BLOCKS];
  a->blksize = (uint32_t)m[A_BLKSIZE];
  a->atime = (uint64_t)(int64_t)m[A_ATIME];
  a->atimensec = (uint32_t)m[A_ATIME_NS];
  a->mtime = (uint64_t)(int64_t)m[A_MTIME];
  a->mtimensec = (uint32_t)m[A_MTIME_NS];
  a->ctime = (uint64_t)(int64_t)m[A_CTIME];
  a->ctimensec = (uint32_t)m[A_CTIME_NS];
}

// replyDirPlus(req, size, timeout, names joined by "/", Float64Array of
// PLUS_FIELDS per name: the attribute slot's layout, then the cookie, then
// 1 for an entry with attributes) -> how many entries fit. The kernel takes
// a lookup reference on each entry sent with attributes but "." and "..";
// those, and every entry without attributes (of which only the number and
// the type count), go without a node id, which the kernel reads as a
// plain entry.
#define PLUS_COOKIE A_COUNT
#define PLUS_WITH_ATTRS (A_COUNT + 1)
#define PLUS_FIELDS (A_COUNT + 2)
static napi_value js_reply_dir_plus(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  double req = get_double(env, argv[0]);
  if (!is_raw(req)) {
    napi_throw_type_error(env, NULL, "replyDirPlus answers READDIRPLUS requests only");
    return NULL;
  }
  size_t size = (size_t)get_double(env, argv[1]);
  double timeout = get_double(env, argv[2]);
  char *names = get_string(env, argv[3]);
  size_t count = 0;
  const double *meta = get_doubles(env, argv[4], &count);
  char *out = listing_buffer(size);
  size_t used = 0, entries = 0;
  uint64_t valid_sec = (uint64_t)timeout;
  uint32_t valid_nsec = (uint32_t)((timeout - (double)valid_sec) * 1e9);
  char *cursor = names, *name;
  for (size_t i = 0; out && (i + 1) * PLUS_FIELDS <= count && (name = next_name(&cursor)); i++) {
    size_t namelen = strlen(name);
    size_t need = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + namelen);
    if (used + need > size) break;
    const double *m = meta + i * PLUS_FIELDS;
    struct fuse_direntplus *d = (struct fuse_direntplus *)(out + used);
    // The buffer is reused: no stale bytes in the padding.
    memset(d, 0, need);
    int dot = strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
    if (!dot && m[PLUS_WITH_ATTRS] != 0) {
      d->entry_out.nodeid = (uint64_t)m[A_INO];
      d->entry_out.generation = 1;
      d->entry_out.entry_valid = d->entry_out.attr_valid = valid_sec;
      d->entry_out.entry_valid_nsec = d->entry_out.attr_valid_nsec = valid_nsec;
      fuse_attr_of(m, &d->entry_out.attr);
    }
    d->dirent.ino = (uint64_t)m[A_INO];
    d->dirent.off = (uint64_t)m[PLUS_COOKIE];
    d->dirent.namelen = namelen;
    d->dirent.type = ((uint32_t)m[A_MODE] & S_IFMT) >> 12;
    memcpy(d->dirent.name, name, namelen);
    used += need;
    entries++;
  }
  raw_reply(raw_of(req), 0, out, used);
  free(names);
  return num(env, entries);
}

// setSlots(attributes, context): the two shared Float64Arrays.
static napi_value js_set_slots(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  double **slots[2] = { &attr_slot, &ctx_slot };
  size_t needed[2] = { A_COUNT, C_COUNT };
  for (int i = 0; i < 2; i++) {
    napi_typedarray_type type;
    size_t length;
    void *data;
    if (napi_get_typedarray_info(env, argv[i], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_float64_array || length < needed[i]) {
      napi_throw_type_error(env, NULL, "setSlots wants two Float64Arrays of the contract's sizes");
      return NULL;
    }
    if (slot_refs[i]) napi_delete_reference(env, slot_refs[i]);
    napi_create_reference(env, argv[i], 1, &slot_refs[i]);
    *slots[i] = data;
  }
  return NULL;
}

static napi_value init_module(napi_env env, napi_value exports) {
  const char *spin = getenv("VEILFS_FUSE_SPIN_US");
  // With one processor the caller cannot run while this thread spins.
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) spin_ns = 0;
  if (spin) spin_ns = strtoull(spin, NULL, 10) * 1000;
  const char *plus = getenv("VEILFS_FUSE_READDIRPLUS");
  if (plus && strcmp(plus, "0") == 0) plus_wanted = 0;
  const char *big = getenv("VEILFS_FUSE_BIG_IO");
  if (big && strcmp(big, "0") == 0) big_io_wanted = 0;
  struct { const char *name; napi_callback fn; } fns[] = {
    { "setSlots", js_set_slots }, { "mount", js_mount }, { "unmount", js_unmount },
    { "invalidate", js_invalidate }, { "prune", js_prune },
    { "replyErr", js_reply_err }, { "replyEntry", js_reply_entry }, { "replyAttr", js_reply_attr },
    { "replyCreate", js_reply_create }, { "replyOpen", js_reply_open }, { "replyData", js_reply_data },
    { "replyReadlink", js_reply_readlink }, { "replyWrite", js_reply_write },
    { "replyXattrSize", js_reply_xattr_size }, { "replyStatfs", js_reply_statfs }, { "replyDir", js_reply_dir },
    { "replyDirPlus", js_reply_dir_plus },
  };
  for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
    napi_value fn;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &fn);
    napi_set_named_property(env, exports, fns[i].name, fn);
  }
  napi_set_named_property(env, exports, "contract", num(env, CONTRACT));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init_module)
