// XChaCha20-Poly1305 for veilfs (src/crypto/xchacha.ts), on the OpenSSL
// that Node itself carries. node:crypto builds a cipher object per message,
// looks the algorithm up again and leaves the object to the garbage
// collector: about 40 us per small message inside the daemon, where a close
// journals one. Here one cipher context per thread is reused, and the call
// costs a few microseconds whatever the size.
//
// HChaCha20 (draft-irtf-cfrg-xchacha) turns the key and the first 16 nonce
// bytes into a subkey; ChaCha20-Poly1305 (RFC 8439) then runs under it with
// the nonce 0x00000000 || nonce[16..24].
#include <node_api.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KEY_BYTES 32
#define NONCE_BYTES 24
#define TAG_BYTES 16

static uint32_t load32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void store32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

#define ROTL(v, n) (((v) << (n)) | ((v) >> (32 - (n))))
#define QUARTER(a, b, c, d) \
  a += b; d ^= a; d = ROTL(d, 16); \
  c += d; b ^= c; b = ROTL(b, 12); \
  a += b; d ^= a; d = ROTL(d, 8); \
  c += d; b ^= c; b = ROTL(b, 7);

static void hchacha20(const uint8_t key[KEY_BYTES], const uint8_t nonce16[16], uint8_t out[KEY_BYTES]) {
  // "expand 32-byte k"
  uint32_t x[16] = { 0x61707865, 0x3320646e, 0x79622d32, 0x6b206574 };
  for (int i = 0; i < 8; i++) x[4 + i] = load32(key + 4 * i);
  for (int i = 0; i < 4; i++) x[12 + i] = load32(nonce16 + 4 * i);
  for (int round = 0; round < 10; round++) {
    QUARTER(x[0], x[4], x[8], x[12]);
    QUARTER(x[1], x[5], x[9], x[13]);
    QUARTER(x[2], x[6], x[10], x[14]);
    QUARTER(x[3], x[7], x[11], x[15]);
    QUARTER(x[0], x[5], x[10], x[15]);
    QUARTER(x[1], x[6], x[11], x[12]);
    QUARTER(x[2], x[7], x[8], x[13]);
    QUARTER(x[3], x[4], x[9], x[14]);
  }
  for (int i = 0; i < 4; i++) store32(out + 4 * i, x[i]);
  for (int i = 0; i < 4; i++) store32(out + 16 + 4 * i, x[12 + i]);
}

typedef struct {
  EVP_CIPHER_CTX *seal;
  EVP_CIPHER_CTX *open;
} contexts_t;

static void free_contexts(napi_env env, void *data, void *hint) {
  contexts_t *c = data;
  EVP_CIPHER_CTX_free(c->seal);
  EVP_CIPHER_CTX_free(c->open);
  free(c);
}

static napi_value throw_error(napi_env env, const char *code, const char *message) {
  napi_throw_error(env, code, message);
  return NULL;
}

typedef struct {
  uint8_t *data;
  size_t length;
} bytes_t;

static int get_bytes(napi_env env, napi_value value, bytes_t *out) {
  napi_typedarray_type type;
  size_t offset;
  napi_value buffer;
  void *data;
  if (napi_get_typedarray_info(env, value, &type, &out->length, &data, &buffer, &offset) != napi_ok || type != napi_uint8_array) return 0;
  out->data = data;
  return 1;
}

// Runs ChaCha20-Poly1305 under the subkey of (key, nonce) over `in` into
// `out` (as long as `in`); on sealing writes the tag to `tag`, on opening
// checks it. Returns 1 on success, 0 when the tag does not verify, -1 when
// OpenSSL fails.
static int run(EVP_CIPHER_CTX *ctx, int encrypt, const bytes_t *key, const bytes_t *nonce, const bytes_t *aad,
               const bytes_t *in, uint8_t *out, uint8_t *tag) {
  uint8_t subkey[KEY_BYTES];
  uint8_t iv[12] = { 0 };
  // An empty Uint8Array may have no memory behind it; OpenSSL still wants somewhere to write nothing.
  uint8_t nowhere[1];
  if (!out) out = nowhere;
  hchacha20(key->data, nonce->data, subkey);
  memcpy(iv + 4, nonce->data + 16, 8);
  int len = 0, ok = EVP_CipherInit_ex(ctx, NULL, NULL, subkey, iv, encrypt);
  memset(subkey, 0, sizeof subkey);
  if (ok != 1) return -1;
  if (!encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_BYTES, tag) != 1) return -1;
  if (aad->length && EVP_CipherUpdate(ctx, NULL, &len, aad->data, (int)aad->length) != 1) return -1;
  if (in->length && EVP_CipherUpdate(ctx, out, &len, in->data, (int)in->length) != 1) return -1;
  if (EVP_CipherFinal_ex(ctx, out + len, &len) != 1) return encrypt ? -1 : 0;
  if (encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_BYTES, tag) != 1) return -1;
  return 1;
}

// The call's arguments as byte ranges, all `count` of them Uint8Arrays, and
// this thread's contexts; NULL (an exception pending) otherwise.
static contexts_t *arguments(napi_env env, napi_callback_info info, size_t count, bytes_t *args, const char *usage) {
  size_t argc = 6;
  napi_value argv[6];
  contexts_t *c = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_get_instance_data(env, (void **)&c);
  for (size_t i = 0; i < count; i++) {
    if (i >= argc || !get_bytes(env, argv[i], &args[i])) {
      throw_error(env, "ERR_INVALID_ARG_TYPE", usage);
      return NULL;
    }
  }
  return c;
}

// seal(key, nonce, plaintext, aad, out): out (plaintext + 16 bytes) gets
// the ciphertext, then the tag.
static napi_value seal(napi_env env, napi_callback_info info) {
  enum { KEY, NONCE, PLAIN, AAD, OUT, COUNT };
  bytes_t a[COUNT];
  contexts_t *c = arguments(env, info, COUNT, a, "seal(key, nonce, plaintext, aad, out) takes Uint8Arrays");
  if (!c) return NULL;
  if (a[KEY].length != KEY_BYTES || a[NONCE].length != NONCE_BYTES || a[OUT].length != a[PLAIN].length + TAG_BYTES || a[PLAIN].length > INT32_MAX || a[AAD].length > INT32_MAX)
    return throw_error(env, "ERR_INVALID_ARG_VALUE", "seal: a 32-byte key, a 24-byte nonce, and room for the plaintext and its tag");
  if (run(c->seal, 1, &a[KEY], &a[NONCE], &a[AAD], &a[PLAIN], a[OUT].data, a[OUT].data + a[PLAIN].length) != 1)
    return throw_error(env, "ERR_CRYPTO", "ChaCha20-Poly1305 failed in OpenSSL");
  return NULL;
}

// open(key, nonce, ciphertext, tag, aad, out): true and out = plaintext
// when the tag verifies, false (out zeroed) when it does not.
static napi_value open_sealed(napi_env env, napi_callback_info info) {
  enum { KEY, NONCE, SEALED, TAG, AAD, OUT, COUNT };
  bytes_t a[COUNT];
  contexts_t *c = arguments(env, info, COUNT, a, "open(key, nonce, ciphertext, tag, aad, out) takes Uint8Arrays");
  if (!c) return NULL;
  if (a[KEY].length != KEY_BYTES || a[NONCE].length != NONCE_BYTES || a[TAG].length != TAG_BYTES || a[OUT].length != a[SEALED].length ||
      a[SEALED].length > INT32_MAX || a[AAD].length > INT32_MAX)
    return throw_error(env, "ERR_INVALID_ARG_VALUE", "open: a 32-byte key, a 24-byte nonce, a 16-byte tag, and room for the plaintext");
  uint8_t tag[TAG_BYTES];
  memcpy(tag, a[TAG].data, TAG_BYTES);
  int result = run(c->open, 0, &a[KEY], &a[NONCE], &a[AAD], &a[SEALED], a[OUT].data, tag);
  if (result < 0) return throw_error(env, "ERR_CRYPTO", "ChaCha20-Poly1305 failed in OpenSSL");
  // Nothing of a forgery leaves this function.
  if (result == 0) memset(a[OUT].data, 0, a[OUT].length);
  napi_value verdict;
  napi_get_boolean(env, result == 1, &verdict);
  return verdict;
}

static napi_value init(napi_env env, napi_value exports) {
  contexts_t *c = calloc(1, sizeof *c);
  if (!c) return throw_error(env, NULL, "out of memory");
  c->seal = EVP_CIPHER_CTX_new();
  c->open = EVP_CIPHER_CTX_new();
  if (!c->seal || !c->open || EVP_EncryptInit_ex(c->seal, EVP_chacha20_poly1305(), NULL, NULL, NULL) != 1 ||
      EVP_DecryptInit_ex(c->open, EVP_chacha20_poly1305(), NULL, NULL, NULL) != 1) {
    free_contexts(env, c, NULL);
    return throw_error(env, NULL, "OpenSSL has no ChaCha20-Poly1305");
  }
  // One pair per thread that loads this (each worker has its own env).
  napi_set_instance_data(env, c, free_contexts, NULL);
  napi_property_descriptor props[] = {
    { "seal", NULL, seal, NULL, NULL, NULL, napi_default, NULL },
    { "open", NULL, open_sealed, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, 2, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
