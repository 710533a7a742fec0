// Reads of the local store that never wait for a disk (src/store/local.ts).
//
// Node reads files on its thread pool: each open, read and close is a trip
// to another thread and back, and on a virtual machine whose processors
// idle between requests each trip costs a wake-up of a sleeping processor
// (about 120 us measured for the open and the read of one 64 KiB segment,
// against 23 us for the same calls made in place). A random read of a
// drive is one such segment read per miss of the block cache.
//
// readCached() makes the calls in place, but only when the kernel can
// answer from memory: the path is resolved from the dentry cache alone
// (openat2's RESOLVE_CACHED) and the bytes are read from the page cache
// alone (preadv2's RWF_NOWAIT). Anything that would wait for a disk comes
// back as EAGAIN, and the caller then takes the thread pool as before, so
// the event loop is never held by a slow disk or a network filesystem.
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static napi_value number(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

static int open_cached(const char *path) {
  struct open_how how = { .flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_CACHED };
  int fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
  return fd < 0 ? -errno : fd;
}

// Reads want bytes at offset into out; returns what was read (all of
// want), or -EAGAIN when part of it is not in memory, or -errno.
static ssize_t pread_cached(int fd, uint8_t *out, size_t want, uint64_t offset) {
  size_t done = 0;
  while (done < want) {
    struct iovec iov = { out + done, want - done };
    ssize_t n = preadv2(fd, &iov, 1, (off_t)(offset + done), RWF_NOWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == EOPNOTSUPP ? -EAGAIN : -errno;
    // The file shrank under us: the caller's slow path reads what is there.
    if (n == 0) return -EAGAIN;
    done += (size_t)n;
  }
  return (ssize_t)done;
}

// readCached(path, offset, length, most): a Buffer with the bytes of the
// file from offset, length of them or up to its end (length -1: all of
// it), or a negative errno: -EAGAIN when answering would wait for a disk
// or copy more than most bytes (a copy that long is better made off the
// event loop).
static napi_value read_cached(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  char path[4096];
  size_t path_len = 0;
  double offset_arg = 0, length_arg = -1, most = 0;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 4 || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &path_len) != napi_ok ||
      napi_get_value_double(env, argv[1], &offset_arg) != napi_ok || napi_get_value_double(env, argv[2], &length_arg) != napi_ok ||
      napi_get_value_double(env, argv[3], &most) != napi_ok || offset_arg < 0) {
    napi_throw_type_error(env, NULL, "readCached(path, offset, length, most) takes a path and three numbers");
    return NULL;
  }
  // A path that did not fit is not one to guess at.
  if (path_len >= sizeof path - 1) return number(env, -ENAMETOOLONG);
  int fd = open_cached(path);
  if (fd < 0) return number(env, fd == -ENOSYS || fd == -EINVAL ? -EAGAIN : fd);
  struct stat st;
  ssize_t result;
  napi_value buffer = NULL;
  if (fstat(fd, &st) < 0) {
    result = -errno;
  } else if (!S_ISREG(st.st_mode)) {
    result = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
  } else {
    uint64_t offset = (uint64_t)offset_arg;
    uint64_t left = offset < (uint64_t)st.st_size ? (uint64_t)st.st_size - offset : 0;
    size_t want = length_arg < 0 || (uint64_t)length_arg > left ? (size_t)left : (size_t)length_arg;
    void *data;
    if ((double)want > most) {
      result = -EAGAIN;
    } else if (napi_create_buffer(env, want, &data, &buffer) != napi_ok) {
      result = -ENOMEM;
    } else {
      result = want ? pread_cached(fd, data, want, offset) : 0;
    }
  }
  close(fd);
  return result < 0 ? number(env, (double)result) : buffer;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "readCached", NULL, read_cached, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, 1, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
