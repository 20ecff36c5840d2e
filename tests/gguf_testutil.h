/*
 * gguf_testutil.h - helpers shared by the GGUF tests: a CHECK macro that counts
 * failures, a raw little-endian byte builder for hand-made (often malformed)
 * files, exact-size buffer opens, and a scratch directory.  Test code only.
 */
#ifndef COLLOQ_GGUF_TESTUTIL_H
#define COLLOQ_GGUF_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"

static int g_fail;

#define CHECK(c) do {                                                             \
        if (!(c)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
            g_fail++;                                                             \
        }                                                                         \
    } while (0)

/* ---- raw byte builder ---- */
typedef struct { uint8_t *p; size_t n, cap; } rb;

static inline void rb_put(rb *b, const void *s, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) { fprintf(stderr, "test: out of memory\n"); exit(1); }
        b->p = np;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
}
static inline void rb_le(rb *b, uint64_t v, int size) {
    uint8_t q[8];
    for (int i = 0; i < size; i++) q[i] = (uint8_t)(v >> (8 * i));
    rb_put(b, q, (size_t)size);
}
static inline void rb_u8(rb *b, uint8_t v) { rb_le(b, v, 1); }
static inline void rb_u32(rb *b, uint32_t v) { rb_le(b, v, 4); }
static inline void rb_u64(rb *b, uint64_t v) { rb_le(b, v, 8); }
static inline void rb_str(rb *b, const char *s) { rb_u64(b, strlen(s)); rb_put(b, s, strlen(s)); }
static inline void rb_pad(rb *b, size_t align) { while (b->n % align) rb_u8(b, 0); }
static inline void rb_free(rb *b) { free(b->p); b->p = NULL; b->n = b->cap = 0; }

static inline void rb_hdr(rb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    rb_put(b, "GGUF", 4);
    rb_u32(b, version);
    rb_u64(b, n_tensors);
    rb_u64(b, n_kv);
}
static inline void rb_kv_u32(rb *b, const char *key, uint32_t v) { rb_str(b, key); rb_u32(b, GGUF_T_UINT32); rb_u32(b, v); }
static inline void rb_kv_str(rb *b, const char *key, const char *v) { rb_str(b, key); rb_u32(b, GGUF_T_STRING); rb_str(b, v); }
/* Tensor info; ne has nd entries. */
static inline void rb_tinfo(rb *b, const char *name, uint32_t nd, const uint64_t *ne, uint32_t type, uint64_t off) {
    rb_str(b, name);
    rb_u32(b, nd);
    for (uint32_t i = 0; i < nd; i++) rb_u64(b, ne[i]);
    rb_u32(b, type);
    rb_u64(b, off);
}

/* Open a copy of buf in a heap block of exactly len bytes, so that ASan sees any
 * read past the end.  *copy must be freed after gguf_close. */
static inline int open_exact(const void *buf, size_t len, const char *name, gguf_file **f, colloq_err *err, void **copy) {
    *copy = malloc(len ? len : 1);
    if (!*copy) { fprintf(stderr, "test: out of memory\n"); exit(1); }
    if (len) memcpy(*copy, buf, len);
    return gguf_open_buffer(*copy, len, name, f, err);
}

/* A fresh scratch directory (under $TMPDIR or the system default). */
static inline char *scratch_dir(void) {
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = P_tmpdir;
    char *d = malloc(strlen(base) + 32);
    if (!d) exit(1);
    sprintf(d, "%s/colloq-gguf-XXXXXX", base);
    if (!mkdtemp(d)) { perror("mkdtemp"); exit(1); }
    return d;
}

static inline char *path_in(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    if (!p) exit(1);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

/* Whole file into a malloc'd buffer. */
static inline uint8_t *slurp(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *p = malloc(n > 0 ? (size_t)n : 1);
    if (p && n > 0 && fread(p, 1, (size_t)n, fp) != (size_t)n) { free(p); p = NULL; }
    fclose(fp);
    *len = n > 0 ? (size_t)n : 0;
    return p;
}

/* ---- a small valid file with every value type, built by hand ----
 * alignment 64; tensors "tok.w" Q4_0 [64, 2] (72 bytes, offset 0), "x.b" F16 [3]
 * (6 bytes, offset 128), "last" F32 [16] (64 bytes, offset 192): the file ends
 * exactly where "last" ends, so every shorter prefix is invalid. */
#define VALID_N_KV 28
#define VALID_N_T 3

static inline void rb_scalar(rb *b, const char *key, uint32_t t, uint64_t v, int size) {
    rb_str(b, key); rb_u32(b, t); rb_le(b, v, size);
}
static inline void rb_arr_hdr(rb *b, const char *key, uint32_t et, uint64_t n) {
    rb_str(b, key); rb_u32(b, GGUF_T_ARRAY); rb_u32(b, et); rb_u64(b, n);
}
static inline uint32_t f32_bits(float f) { union { float f; uint32_t u; } c = { .f = f }; return c.u; }
static inline uint64_t f64_bits(double d) { union { double d; uint64_t u; } c = { .d = d }; return c.u; }

static inline uint8_t tensor_byte(int t, size_t i) { return (uint8_t)(t * 61 + i * 7 + 1); }

static inline void build_valid(rb *b) {
    rb_hdr(b, 3, VALID_N_T, VALID_N_KV);
    rb_kv_u32(b, "general.alignment", 64);
    rb_kv_str(b, "general.name", "tiny test");
    rb_scalar(b, "t.u8", GGUF_T_UINT8, 200, 1);
    rb_scalar(b, "t.i8", GGUF_T_INT8, (uint8_t)-100, 1);
    rb_scalar(b, "t.u16", GGUF_T_UINT16, 60000, 2);
    rb_scalar(b, "t.i16", GGUF_T_INT16, (uint16_t)-30000, 2);
    rb_scalar(b, "t.u32", GGUF_T_UINT32, 4000000000u, 4);
    rb_scalar(b, "t.i32", GGUF_T_INT32, (uint32_t)-2000000000, 4);
    rb_scalar(b, "t.f32", GGUF_T_FLOAT32, f32_bits(1.5f), 4);
    rb_scalar(b, "t.bool", GGUF_T_BOOL, 1, 1);
    rb_kv_str(b, "t.str", "h\xc3\xa9llo");
    rb_scalar(b, "t.u64", GGUF_T_UINT64, 0xfedcba9876543210ull, 8);
    rb_scalar(b, "t.i64", GGUF_T_INT64, (uint64_t)-1234567890123ll, 8);
    rb_scalar(b, "t.f64", GGUF_T_FLOAT64, f64_bits(-2.0e-300), 8);
    rb_arr_hdr(b, "a.u8", GGUF_T_UINT8, 3);   rb_u8(b, 1); rb_u8(b, 2); rb_u8(b, 255);
    rb_arr_hdr(b, "a.i8", GGUF_T_INT8, 2);    rb_u8(b, (uint8_t)-1); rb_u8(b, 127);
    rb_arr_hdr(b, "a.u16", GGUF_T_UINT16, 2); rb_le(b, 65535, 2); rb_le(b, 7, 2);
    rb_arr_hdr(b, "a.i16", GGUF_T_INT16, 2);  rb_le(b, (uint16_t)-32768, 2); rb_le(b, 5, 2);
    rb_arr_hdr(b, "a.u32", GGUF_T_UINT32, 2); rb_u32(b, 4294967295u); rb_u32(b, 0);
    rb_arr_hdr(b, "a.i32", GGUF_T_INT32, 3);  rb_u32(b, (uint32_t)-7); rb_u32(b, 8); rb_u32(b, (uint32_t)-2147483647 - 1);
    rb_arr_hdr(b, "a.f32", GGUF_T_FLOAT32, 2); rb_u32(b, f32_bits(-0.25f)); rb_u32(b, f32_bits(3e38f));
    rb_arr_hdr(b, "a.bool", GGUF_T_BOOL, 3);  rb_u8(b, 1); rb_u8(b, 0); rb_u8(b, 1);
    rb_arr_hdr(b, "a.str", GGUF_T_STRING, 4); rb_str(b, "a"); rb_str(b, ""); rb_str(b, "ccc"); rb_str(b, "\xe2\x96\x81the");
    rb_arr_hdr(b, "a.u64", GGUF_T_UINT64, 1); rb_u64(b, 1ull << 53);
    rb_arr_hdr(b, "a.i64", GGUF_T_INT64, 2);  rb_u64(b, (uint64_t)-5); rb_u64(b, 1ull << 40);
    rb_arr_hdr(b, "a.f64", GGUF_T_FLOAT64, 2); rb_u64(b, f64_bits(0.1)); rb_u64(b, f64_bits(-1e300));
    rb_arr_hdr(b, "a.empty", GGUF_T_UINT32, 0);
    rb_arr_hdr(b, "a.nostr", GGUF_T_STRING, 0);
    rb_tinfo(b, "tok.w", 2, (const uint64_t[]){ 64, 2 }, 2 /* Q4_0 */, 0);
    rb_tinfo(b, "x.b", 1, (const uint64_t[]){ 3 }, 1 /* F16 */, 128);
    rb_tinfo(b, "last", 1, (const uint64_t[]){ 16 }, 0 /* F32 */, 192);
    rb_pad(b, 64);
    static const size_t sz[VALID_N_T] = { 72, 6, 64 };
    for (int t = 0; t < VALID_N_T; t++) {
        for (size_t i = 0; i < sz[t]; i++) rb_u8(b, tensor_byte(t, i));
        if (t < VALID_N_T - 1) rb_pad(b, 64);
    }
}

/* Everything build_valid wrote, read back through the API. */
static inline void check_valid(const gguf_file *f) {
    const gguf_kv *kv;
    CHECK(gguf_version(f) == 3);
    CHECK(gguf_alignment(f) == 64);
    CHECK(gguf_n_kv(f) == VALID_N_KV);
    CHECK(gguf_n_tensors(f) == VALID_N_T);
#define KV(k, t) ((kv = gguf_find_kv(f, k)) != NULL && kv->type == (t))
    CHECK(KV("general.alignment", GGUF_T_UINT32) && kv->v.u64 == 64);
    CHECK(KV("general.name", GGUF_T_STRING) && gguf_str_eq(kv->v.str, "tiny test"));
    CHECK(KV("t.u8", GGUF_T_UINT8) && kv->v.u64 == 200);
    CHECK(KV("t.i8", GGUF_T_INT8) && kv->v.i64 == -100);
    CHECK(KV("t.u16", GGUF_T_UINT16) && kv->v.u64 == 60000);
    CHECK(KV("t.i16", GGUF_T_INT16) && kv->v.i64 == -30000);
    CHECK(KV("t.u32", GGUF_T_UINT32) && kv->v.u64 == 4000000000u);
    CHECK(KV("t.i32", GGUF_T_INT32) && kv->v.i64 == -2000000000);
    CHECK(KV("t.f32", GGUF_T_FLOAT32) && kv->v.f64 == 1.5);
    CHECK(KV("t.bool", GGUF_T_BOOL) && kv->v.b == true);
    CHECK(KV("t.str", GGUF_T_STRING) && gguf_str_eq(kv->v.str, "h\xc3\xa9llo"));
    CHECK(KV("t.u64", GGUF_T_UINT64) && kv->v.u64 == 0xfedcba9876543210ull);
    CHECK(KV("t.i64", GGUF_T_INT64) && kv->v.i64 == -1234567890123ll);
    CHECK(KV("t.f64", GGUF_T_FLOAT64) && kv->v.f64 == -2.0e-300);
#define ARR(k, et, cnt) (KV(k, GGUF_T_ARRAY) && kv->v.arr.type == (et) && kv->v.arr.n == (cnt))
    CHECK(ARR("a.u8", GGUF_T_UINT8, 3) && gguf_arr_num(kv, 0) == 1 && gguf_arr_num(kv, 2) == 255);
    CHECK(ARR("a.i8", GGUF_T_INT8, 2) && gguf_arr_num(kv, 0) == -1 && gguf_arr_num(kv, 1) == 127);
    CHECK(ARR("a.u16", GGUF_T_UINT16, 2) && gguf_arr_num(kv, 0) == 65535 && gguf_arr_num(kv, 1) == 7);
    CHECK(ARR("a.i16", GGUF_T_INT16, 2) && gguf_arr_num(kv, 0) == -32768 && gguf_arr_num(kv, 1) == 5);
    CHECK(ARR("a.u32", GGUF_T_UINT32, 2) && gguf_arr_num(kv, 0) == 4294967295.0 && gguf_arr_num(kv, 1) == 0);
    CHECK(ARR("a.i32", GGUF_T_INT32, 3) && gguf_arr_num(kv, 0) == -7 && gguf_arr_num(kv, 2) == -2147483648.0);
    CHECK(ARR("a.f32", GGUF_T_FLOAT32, 2) && gguf_arr_num(kv, 0) == -0.25 && gguf_arr_num(kv, 1) == (double)3e38f);
    CHECK(ARR("a.bool", GGUF_T_BOOL, 3) && gguf_arr_num(kv, 0) == 1 && gguf_arr_num(kv, 1) == 0);
    CHECK(ARR("a.str", GGUF_T_STRING, 4) && gguf_str_eq(gguf_arr_str(kv, 0), "a") &&
          gguf_str_eq(gguf_arr_str(kv, 1), "") && gguf_str_eq(gguf_arr_str(kv, 2), "ccc") &&
          gguf_str_eq(gguf_arr_str(kv, 3), "\xe2\x96\x81the") && gguf_arr_str(kv, 4).len == 0);
    CHECK(ARR("a.u64", GGUF_T_UINT64, 1) && gguf_arr_num(kv, 0) == 9007199254740992.0);
    CHECK(ARR("a.i64", GGUF_T_INT64, 2) && gguf_arr_num(kv, 0) == -5 && gguf_arr_num(kv, 1) == 1099511627776.0);
    CHECK(ARR("a.f64", GGUF_T_FLOAT64, 2) && gguf_arr_num(kv, 0) == 0.1 && gguf_arr_num(kv, 1) == -1e300);
    CHECK(ARR("a.empty", GGUF_T_UINT32, 0));
    CHECK(ARR("a.nostr", GGUF_T_STRING, 0));
#undef ARR
#undef KV
    CHECK(gguf_find_kv(f, "t.u") == NULL && gguf_find_kv(f, "") == NULL);
    static const char *names[VALID_N_T] = { "tok.w", "x.b", "last" };
    static const uint32_t types[VALID_N_T] = { 2, 1, 0 };
    static const uint64_t nbytes[VALID_N_T] = { 72, 6, 64 }, offs[VALID_N_T] = { 0, 128, 192 };
    for (int i = 0; i < VALID_N_T; i++) {
        const gguf_tensor *t = gguf_find_tensor(f, names[i]);
        CHECK(t != NULL && t == gguf_tensor_at(f, (uint64_t)i));
        if (!t) continue;
        CHECK(t->type == types[i] && t->nbytes == nbytes[i] && t->offset == offs[i]);
        CHECK((uint64_t)((const uint8_t *)t->data - (const uint8_t *)gguf_tensor_at(f, 0)->data) == offs[i]);
        bool same = true;
        for (size_t j = 0; j < t->nbytes; j++) same &= ((const uint8_t *)t->data)[j] == tensor_byte(i, j);
        CHECK(same);
    }
    const gguf_tensor *t = gguf_find_tensor(f, "tok.w");
    CHECK(t && t->n_dims == 2 && t->ne[0] == 64 && t->ne[1] == 2 && t->ne[2] == 1 && t->ne[3] == 1);
    CHECK(gguf_find_tensor(f, "tok") == NULL && gguf_tensor_at(f, VALID_N_T) == NULL);
    CHECK(gguf_data_offset(f) % 64 == 0 && gguf_data_offset(f) + 256 == gguf_file_size(f));
}

#endif
