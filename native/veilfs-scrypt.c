// scrypt for veilfs (src/crypto/keys.ts), on libsodium. The key derivation
// is most of the time a mount takes (N = 2^17: about 0.55 s with OpenSSL,
// which node:crypto uses, on the machines veilfs was measured on);
// libsodium's Salsa20/8 core uses SSE2 and takes about 0.35 s for the same
// bytes. The result is the standard scrypt of RFC 7914: a test holds it
// byte-identical to node:crypto's.
//
// It runs on libuv's thread pool, as node:crypto's scrypt does: a mount's
// daemon and terminal go on while it works.
#include <node_api.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref inputs;  // keeps the passphrase and salt buffers alive while the work runs
  const uint8_t *passphrase;
  size_t passphrase_len;
  const uint8_t *salt;
  size_t salt_len;
  uint64_t n;
  uint32_t r, p;
  uint8_t *out;
  size_t out_len;
  int failed;
} Derivation;

// libsodium's nonnull arguments: an empty passphrase still needs a pointer.
static const uint8_t EMPTY[1] = { 0 };

static void execute(napi_env env, void *data) {
  Derivation *d = data;
  d->failed = crypto_pwhash_scryptsalsa208sha256_ll(d->passphrase_len ? d->passphrase : EMPTY, d->passphrase_len,
                                                    d->salt_len ? d->salt : EMPTY, d->salt_len, d->n, d->r, d->p, d->out, d->out_len) != 0;
}

static void release(napi_env env, Derivation *d) {
  if (d->inputs) napi_delete_reference(env, d->inputs);
  if (d->work) napi_delete_async_work(env, d->work);
  if (d->out) {
    sodium_memzero(d->out, d->out_len);
    free(d->out);
  }
  free(d);
}

static void complete(napi_env env, napi_status status, void *data) {
  Derivation *d = data;
  if (status != napi_ok || d->failed) {
    napi_value message, error;
    napi_create_string_utf8(env, "scrypt failed (out of memory?)", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &error);
    napi_reject_deferred(env, d->deferred, error);
  } else {
    napi_value key;
    void *bytes;
    napi_create_buffer_copy(env, d->out_len, d->out, &bytes, &key);
    napi_resolve_deferred(env, d->deferred, key);
  }
  release(env, d);
}

static napi_value fail(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

// scrypt(passphrase: Buffer, salt: Buffer, logN, r, p, keyLength): Promise<Buffer>
static napi_value scrypt(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 6) return fail(env, "scrypt(passphrase, salt, logN, r, p, keyLength)");
  bool is_buffer[2];
  napi_is_buffer(env, argv[0], &is_buffer[0]);
  napi_is_buffer(env, argv[1], &is_buffer[1]);
  if (!is_buffer[0] || !is_buffer[1]) return fail(env, "passphrase and salt must be Buffers");
  uint32_t log_n, r, p, key_length;
  if (napi_get_value_uint32(env, argv[2], &log_n) != napi_ok || napi_get_value_uint32(env, argv[3], &r) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &p) != napi_ok || napi_get_value_uint32(env, argv[5], &key_length) != napi_ok) {
    return fail(env, "logN, r, p and keyLength must be numbers");
  }
  // The bounds keys.ts allows, and memory (128 * r * N bytes) that fits a size_t.
  if (log_n < 1 || log_n > 30 || r < 1 || r > 1024 || p < 1 || p > 1024 || key_length < 1 || key_length > 1024) {
    return fail(env, "scrypt parameters out of range");
  }
  Derivation *d = calloc(1, sizeof *d);
  if (!d) return fail(env, "out of memory");
  d->n = (uint64_t)1 << log_n;
  d->r = r;
  d->p = p;
  d->out_len = key_length;
  d->out = malloc(key_length);
  napi_get_buffer_info(env, argv[0], (void **)&d->passphrase, &d->passphrase_len);
  napi_get_buffer_info(env, argv[1], (void **)&d->salt, &d->salt_len);
  napi_value inputs, promise, name;
  napi_create_array_with_length(env, 2, &inputs);
  napi_set_element(env, inputs, 0, argv[0]);
  napi_set_element(env, inputs, 1, argv[1]);
  napi_create_reference(env, inputs, 1, &d->inputs);
  napi_create_promise(env, &d->deferred, &promise);
  napi_create_string_utf8(env, "veilfs:scrypt", NAPI_AUTO_LENGTH, &name);
  if (!d->out || napi_create_async_work(env, NULL, name, execute, complete, d, &d->work) != napi_ok) {
    d->failed = 1;
    complete(env, napi_generic_failure, d);
    return promise;
  }
  napi_queue_async_work(env, d->work);
  return promise;
}

static napi_value init(napi_env env, napi_value exports) {
  // Picks the SSE2 code where the CPU has it; without it every call would take the portable path.
  if (sodium_init() < 0) {
    napi_throw_error(env, NULL, "libsodium could not be initialised");
    return NULL;
  }
  napi_property_descriptor props[] = {
    { "scrypt", NULL, scrypt, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, 1, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
