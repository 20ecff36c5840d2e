/*
 * test_gguf.c - GGUF reader and writer: round trips (every value type, arrays of
 * every type, tensors of several types and shapes, non-default alignment),
 * writer errors, typed getters, describe, allocation failure, a large sparse
 * file, and (mode "vocab DIR") the real vocabulary files of the shared test data.
 */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>

#include "gguf_testutil.h"
#include "quant.h"

static char *g_dir;

static bool kv_equal(const gguf_kv *a, const gguf_kv *b) {
    if (a->key.len != b->key.len || memcmp(a->key.s, b->key.s, (size_t)a->key.len) || a->type != b->type) return false;
    switch (a->type) {
    case GGUF_T_UINT8: case GGUF_T_UINT16: case GGUF_T_UINT32: case GGUF_T_UINT64: return a->v.u64 == b->v.u64;
    case GGUF_T_INT8: case GGUF_T_INT16: case GGUF_T_INT32: case GGUF_T_INT64: return a->v.i64 == b->v.i64;
    case GGUF_T_FLOAT32: case GGUF_T_FLOAT64: return !memcmp(&a->v.f64, &b->v.f64, sizeof(double));
    case GGUF_T_BOOL: return a->v.b == b->v.b;
    case GGUF_T_STRING:
        return a->v.str.len == b->v.str.len && !memcmp(a->v.str.s, b->v.str.s, (size_t)a->v.str.len);
    case GGUF_T_ARRAY:
        if (a->v.arr.type != b->v.arr.type || a->v.arr.n != b->v.arr.n) return false;
        for (uint64_t i = 0; i < a->v.arr.n; i++) {
            if (a->v.arr.type == GGUF_T_STRING) {
                gguf_str x = gguf_arr_str(a, i), y = gguf_arr_str(b, i);
                if (x.len != y.len || memcmp(x.s, y.s, (size_t)x.len)) return false;
            } else if (!(gguf_arr_num(a, i) == gguf_arr_num(b, i) ||
                         (isnan(gguf_arr_num(a, i)) && isnan(gguf_arr_num(b, i))))) {
                return false;
            }
        }
        return true;
    default: return false;
    }
}

/* Copy every key and tensor of f into a new writer. */
static gguf_writer *copy_all(const gguf_file *f) {
    gguf_writer *w = gguf_writer_new();
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) gguf_writer_copy_kv(w, gguf_kv_at(f, i));
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.s);
        gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, t->nbytes);
    }
    return w;
}

/* hand-built file -> reader -> copy_kv/add_tensor -> writer: byte-identical file */
static void test_copy_identical(void) {
    rb b = { 0 };
    build_valid(&b);
    gguf_file *f = NULL;
    colloq_err err = { { 0 } };
    CHECK(gguf_open_buffer(b.p, b.n, "valid.gguf", &f, &err) == COLLOQ_OK);
    if (!f) { rb_free(&b); return; }
    gguf_writer *w = copy_all(f);
    char *path = path_in(g_dir, "copy.gguf");
    CHECK(gguf_writer_write(w, path, 64, &err) == COLLOQ_OK);
    gguf_writer_free(w);
    size_t n = 0;
    uint8_t *out = slurp(path, &n);
    CHECK(out && n == b.n && !memcmp(out, b.p, n));
    gguf_file *g = NULL;
    CHECK(gguf_open(path, &g, &err) == COLLOQ_OK);
    if (g) { check_valid(g); gguf_close(g); }
    /* general.alignment is rewritten with the alignment actually used */
    w = copy_all(f);
    CHECK(gguf_writer_write(w, path, 128, &err) == COLLOQ_OK);
    gguf_writer_free(w);
    CHECK(gguf_open(path, &g, &err) == COLLOQ_OK);
    if (g) {
        uint32_t al = 0;
        CHECK(gguf_alignment(g) == 128 && gguf_get_u32(g, "general.alignment", &al, &err) == 0 && al == 128);
        CHECK(gguf_find_tensor(g, "last")->offset == 256);
        for (uint64_t i = 0; i < gguf_n_kv(f); i++)
            if (!gguf_str_eq(gguf_kv_at(f, i)->key, "general.alignment"))
                CHECK(kv_equal(gguf_kv_at(f, i), gguf_kv_at(g, i)));
        gguf_close(g);
    }
    gguf_close(f);
    remove(path);
    free(path);
    free(out);
    rb_free(&b);
}

/* ---- writer setters and tensors ---- */

typedef struct { int id; int calls; } fill_ctx;
static uint8_t pattern(int id, uint64_t i) { return (uint8_t)(id * 37 + i * 13 + (i >> 8)); }
static int fill(void *ctx, void *buf, uint64_t n) {
    fill_ctx *c = ctx;
    c->calls++;
    for (uint64_t i = 0; i < n; i++) ((uint8_t *)buf)[i] = pattern(c->id, i);
    return 0;
}
static int fill_fails(void *ctx, void *buf, uint64_t n) { (void)ctx; (void)buf; (void)n; return -42; }

static const struct { const char *name; uint32_t type; uint32_t nd; int64_t ne[4]; } T[] = {
    { "f32.2d",    CT_F32,  2, { 7, 3, 1, 1 } },
    { "f16.1d",    CT_F16,  1, { 64, 1, 1, 1 } },
    { "q4_0.3d",   CT_Q4_0, 3, { 64, 2, 3, 1 } },
    { "q8_0.4d",   CT_Q8_0, 4, { 32, 1, 1, 2 } },
    { "q4_k",      CT_Q4_K, 2, { 256, 2, 1, 1 } },
    { "bf16.4d",   CT_BF16, 4, { 5, 4, 3, 2 } },
    { "q6_k.tail", CT_Q6_K, 1, { 512, 1, 1, 1 } },
};
enum { NT = sizeof T / sizeof T[0] };

static uint64_t nbytes_of(int i) {
    uint64_t row = 0;
    if (!colloq_type_row_size(T[i].type, T[i].ne[0], &row)) return 0;
    return row * (uint64_t)(T[i].ne[1] * T[i].ne[2] * T[i].ne[3]);
}

static const uint8_t  au8[] = { 0, 1, 254, 255 };
static const int8_t   ai8[] = { -128, -1, 0, 127 };
static const uint16_t au16[] = { 0, 65535, 4660 };
static const int16_t  ai16[] = { -32768, 32767 };
static const uint32_t au32[] = { 1, 4294967295u, 305419896 };
static const int32_t  ai32[] = { -2147483647 - 1, 2147483647, -3 };
static const float    af32[] = { 0.5f, -1e-30f, 3.4e38f };
static const uint8_t  abool[] = { 1, 0, 0, 1 };
static const uint64_t au64[] = { 18446744073709551615ull, 0 };
static const int64_t  ai64[] = { -9223372036854775807ll - 1, 42 };
static const double   af64[] = { 1e-310, -2.5, 1e308 };
static const char *const astr[] = { "", "\xe2\x96\x81hello", "with \"quotes\"\n", "<0x0A>" };

/* The writer's part: every setter, every array type, a replaced key, tensors by
 * pointer and by callback. *src receives the pointer tensors' data (free it). */
static gguf_writer *build_writer(uint8_t **src, fill_ctx *ctx, const gguf_file *copy_from) {
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, "general.architecture", "test");
    gguf_writer_set_u32(w, "s.replaced", 7);           /* replaced below, keeps position 1 */
    gguf_writer_set_u32(w, "s.u32", 3000000000u);
    gguf_writer_set_i32(w, "s.i32", -5);
    gguf_writer_set_f32(w, "s.f32", 1e-5f);
    gguf_writer_set_bool(w, "s.true", true);
    gguf_writer_set_bool(w, "s.false", false);
    gguf_writer_set_str(w, "s.empty", "");
    gguf_writer_set_arr_num(w, "w.u8", GGUF_T_UINT8, au8, 4);
    gguf_writer_set_arr_num(w, "w.i8", GGUF_T_INT8, ai8, 4);
    gguf_writer_set_arr_num(w, "w.u16", GGUF_T_UINT16, au16, 3);
    gguf_writer_set_arr_num(w, "w.i16", GGUF_T_INT16, ai16, 2);
    gguf_writer_set_arr_num(w, "w.u32", GGUF_T_UINT32, au32, 3);
    gguf_writer_set_arr_num(w, "w.i32", GGUF_T_INT32, ai32, 3);
    gguf_writer_set_arr_num(w, "w.f32", GGUF_T_FLOAT32, af32, 3);
    gguf_writer_set_arr_num(w, "w.bool", GGUF_T_BOOL, abool, 4);
    gguf_writer_set_arr_num(w, "w.u64", GGUF_T_UINT64, au64, 2);
    gguf_writer_set_arr_num(w, "w.i64", GGUF_T_INT64, ai64, 2);
    gguf_writer_set_arr_num(w, "w.f64", GGUF_T_FLOAT64, af64, 3);
    gguf_writer_set_arr_num(w, "w.none", GGUF_T_INT32, NULL, 0);
    gguf_writer_set_arr_str(w, "w.str", astr, 4);
    gguf_writer_set_arr_str(w, "w.nostr", NULL, 0);
    gguf_writer_set_str(w, "s.replaced", "now a string");
    if (copy_from)
        for (uint64_t i = 0; i < gguf_n_kv(copy_from); i++) {
            const gguf_kv *kv = gguf_kv_at(copy_from, i);
            if (!gguf_str_eq(kv->key, "general.alignment")) gguf_writer_copy_kv(w, kv);
        }
    size_t total = 0;
    for (int i = 0; i < NT; i++) total += (size_t)nbytes_of(i);
    *src = malloc(total);
    size_t off = 0;
    for (int i = 0; i < NT; i++) {
        uint64_t nb = nbytes_of(i);
        if (i % 2 == 0) {
            for (uint64_t j = 0; j < nb; j++) (*src)[off + j] = pattern(i, j);
            gguf_writer_add_tensor(w, T[i].name, T[i].type, T[i].nd, T[i].ne, *src + off, nb);
        } else {
            ctx[i] = (fill_ctx){ i, 0 };
            gguf_writer_add_tensor_cb(w, T[i].name, T[i].type, T[i].nd, T[i].ne, nb, fill, &ctx[i]);
        }
        off += (size_t)nb;
    }
    return w;
}

static void check_written(const gguf_file *f, uint64_t alignment, const gguf_file *copied) {
    const gguf_kv *kv;
    CHECK(gguf_version(f) == 3 && gguf_alignment(f) == alignment);
    CHECK(gguf_n_kv(f) == (uint64_t)(22 + (copied ? VALID_N_KV - 1 : 0) + (alignment != 32)));
    CHECK((kv = gguf_kv_at(f, 1)) && gguf_str_eq(kv->key, "s.replaced") && kv->type == GGUF_T_STRING &&
          gguf_str_eq(kv->v.str, "now a string"));
    uint32_t u = 0;
    float x = 0;
    bool bo = false;
    gguf_str s = { 0, NULL };
    colloq_err err;
    CHECK(gguf_get_u32(f, "s.u32", &u, &err) == 0 && u == 3000000000u);
    CHECK((kv = gguf_find_kv(f, "s.i32")) && kv->type == GGUF_T_INT32 && kv->v.i64 == -5);
    CHECK(gguf_get_f32(f, "s.f32", &x, &err) == 0 && x == 1e-5f);
    CHECK(gguf_get_bool(f, "s.true", &bo, &err) == 0 && bo);
    CHECK(gguf_get_bool(f, "s.false", &bo, &err) == 0 && !bo);
    CHECK(gguf_get_str(f, "s.empty", &s, &err) == 0 && s.len == 0);
    CHECK(gguf_get_str(f, "general.architecture", &s, &err) == 0 && gguf_str_eq(s, "test"));
#define ARR(k, et, src) do {                                                            \
        kv = gguf_find_kv(f, k);                                                        \
        size_t n_ = sizeof src / sizeof src[0];                                         \
        CHECK(kv && kv->type == GGUF_T_ARRAY && kv->v.arr.type == et && kv->v.arr.n == n_); \
        if (kv) for (size_t i_ = 0; i_ < n_ && i_ < kv->v.arr.n; i_++)                  \
            CHECK(gguf_arr_num(kv, i_) == (double)src[i_]);                             \
    } while (0)
    ARR("w.u8", GGUF_T_UINT8, au8);
    ARR("w.i8", GGUF_T_INT8, ai8);
    ARR("w.u16", GGUF_T_UINT16, au16);
    ARR("w.i16", GGUF_T_INT16, ai16);
    ARR("w.u32", GGUF_T_UINT32, au32);
    ARR("w.i32", GGUF_T_INT32, ai32);
    ARR("w.f32", GGUF_T_FLOAT32, af32);
    ARR("w.bool", GGUF_T_BOOL, abool);
    ARR("w.u64", GGUF_T_UINT64, au64);
    ARR("w.i64", GGUF_T_INT64, ai64);
    ARR("w.f64", GGUF_T_FLOAT64, af64);
#undef ARR
    CHECK((kv = gguf_find_kv(f, "w.none")) && kv->v.arr.type == GGUF_T_INT32 && kv->v.arr.n == 0);
    CHECK((kv = gguf_find_kv(f, "w.nostr")) && kv->v.arr.type == GGUF_T_STRING && kv->v.arr.n == 0);
    CHECK((kv = gguf_find_kv(f, "w.str")) && kv->v.arr.type == GGUF_T_STRING && kv->v.arr.n == 4);
    for (int i = 0; kv && i < 4; i++) CHECK(gguf_str_eq(gguf_arr_str(kv, (uint64_t)i), astr[i]));
    for (uint64_t i = 0; copied && i < gguf_n_kv(copied); i++) {   /* keys copied with copy_kv */
        const gguf_kv *c = gguf_kv_at(copied, i);
        if (gguf_str_eq(c->key, "general.alignment")) continue;
        CHECK((kv = gguf_kv_at(f, 22 + i - 1)) && kv_equal(kv, c));
    }
    if (alignment == 32) CHECK(gguf_find_kv(f, "general.alignment") == NULL);
    else CHECK(gguf_get_u32(f, "general.alignment", &u, &err) == 0 && u == alignment);

    CHECK(gguf_n_tensors(f) == NT);
    CHECK(gguf_data_offset(f) % alignment == 0);
    uint64_t expect_off = 0;
    for (int i = 0; i < NT; i++) {
        const gguf_tensor *t = gguf_find_tensor(f, T[i].name);
        CHECK(t && t == gguf_tensor_at(f, (uint64_t)i));
        if (!t) continue;
        CHECK(t->type == T[i].type && t->n_dims == T[i].nd && t->nbytes == nbytes_of(i));
        for (int d = 0; d < 4; d++) CHECK(t->ne[d] == T[i].ne[d]);
        CHECK(t->offset == expect_off && t->offset % alignment == 0);
        expect_off = (t->offset + t->nbytes + alignment - 1) / alignment * alignment;
        bool same = true;
        for (uint64_t j = 0; j < t->nbytes; j++) same &= ((const uint8_t *)t->data)[j] == pattern(i, j);
        CHECK(same);
    }
    /* the writer pads after the last tensor too */
    CHECK(gguf_file_size(f) == gguf_data_offset(f) + expect_off);
}

static void test_writer_roundtrip(void) {
    rb b = { 0 };
    build_valid(&b);
    gguf_file *vf = NULL;
    colloq_err err = { { 0 } };
    CHECK(gguf_open_buffer(b.p, b.n, "valid.gguf", &vf, &err) == COLLOQ_OK);
    char *path = path_in(g_dir, "w.gguf");
    static const uint32_t aligns[] = { 128, 0, 32, 8, 4096 };
    for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
        uint8_t *src = NULL;
        fill_ctx ctx[NT];
        bool with_copy = a == 0;
        gguf_writer *w = build_writer(&src, ctx, with_copy ? vf : NULL);
        int rc = gguf_writer_write(w, path, aligns[a], &err);
        CHECK(rc == COLLOQ_OK);
        if (rc) fprintf(stderr, "write: %s\n", err.msg);
        for (int i = 1; i < NT; i += 2) CHECK(ctx[i].calls == 1);
        gguf_writer_free(w);
        free(src);   /* the reader must not depend on the writer's memory */
        gguf_file *f = NULL;
        rc = gguf_open(path, &f, &err);
        CHECK(rc == COLLOQ_OK);
        if (rc) fprintf(stderr, "open: %s\n", err.msg);
        if (f) { check_written(f, aligns[a] ? aligns[a] : 32, with_copy ? vf : NULL); gguf_close(f); }
    }
    /* no .partial file is left behind */
    char *partial = path_in(g_dir, "w.gguf.partial");
    CHECK(access(partial, F_OK) != 0);
    free(partial);
    remove(path);
    free(path);
    gguf_close(vf);
    rb_free(&b);
}

static void test_writer_errors(void) {
    colloq_err err = { { 0 } };
    char *path = path_in(g_dir, "err.gguf");
    const int64_t ne[2] = { 32, 2 };
    static uint8_t data[256];
    gguf_writer *w;
#define WRITE_FAILS(st, needle, align) do {                                             \
        int rc_ = gguf_writer_write(w, path, (align), &err);                            \
        CHECK(rc_ == (st) && strstr(err.msg, needle) != NULL);                          \
        if (rc_ != (st) || !strstr(err.msg, needle))                                    \
            fprintf(stderr, "  expected '%s', got %d: %s\n", needle, rc_, err.msg);     \
        CHECK(access(path, F_OK) != 0);                                                 \
        gguf_writer_free(w);                                                            \
    } while (0)

    w = gguf_writer_new();
    WRITE_FAILS(COLLOQ_ERR_ARG, "alignment 48 is not a power of two", 48);
    w = gguf_writer_new();
    gguf_writer_add_tensor(w, "t", CT_Q4_0, 2, ne, data, 35);
    gguf_writer_set_u32(w, "fine", 1);   /* later good calls keep the first error */
    WRITE_FAILS(COLLOQ_ERR_ARG, "tensor 't': nbytes 35 does not match the 36 bytes", 0);
    w = gguf_writer_new();
    gguf_writer_add_tensor(w, "t", 77, 2, ne, data, 36);
    WRITE_FAILS(COLLOQ_ERR_ARG, "unknown type 77", 0);
    w = gguf_writer_new();
    gguf_writer_add_tensor(w, "t", CT_F32, 5, (const int64_t[]){ 1, 1, 1, 1, 1 }, data, 4);
    WRITE_FAILS(COLLOQ_ERR_ARG, "n_dims 5", 0);
    w = gguf_writer_new();
    gguf_writer_add_tensor(w, "t", CT_Q8_0, 1, (const int64_t[]){ 40 }, data, 34);
    WRITE_FAILS(COLLOQ_ERR_ARG, "not a multiple of the Q8_0 block size 32", 0);
    w = gguf_writer_new();
    gguf_writer_add_tensor(w, "t", CT_F32, 1, (const int64_t[]){ -4 }, data, 16);
    WRITE_FAILS(COLLOQ_ERR_ARG, "not positive", 0);
    w = gguf_writer_new();
    gguf_writer_add_tensor(w, "same", CT_F32, 1, (const int64_t[]){ 4 }, data, 16);
    gguf_writer_add_tensor(w, "other", CT_F32, 1, (const int64_t[]){ 4 }, data, 16);
    gguf_writer_add_tensor(w, "same", CT_F32, 1, (const int64_t[]){ 4 }, data, 16);
    WRITE_FAILS(COLLOQ_ERR_ARG, "duplicate tensor name 'same'", 0);
    w = gguf_writer_new();
    gguf_writer_set_arr_num(w, "k", GGUF_T_STRING, data, 2);
    WRITE_FAILS(COLLOQ_ERR_ARG, "key 'k': array element type string is not numeric", 0);
    w = gguf_writer_new();
    gguf_writer_set_arr_num(w, "k", GGUF_T_BOOL, (const uint8_t[]){ 0, 2 }, 2);
    WRITE_FAILS(COLLOQ_ERR_ARG, "bool element 1", 0);
    w = gguf_writer_new();
    gguf_writer_set_str(w, "k", NULL);
    WRITE_FAILS(COLLOQ_ERR_ARG, "string value is NULL", 0);
    w = gguf_writer_new();
    gguf_writer_set_arr_str(w, "k", (const char *const[]){ "a", NULL }, 2);
    WRITE_FAILS(COLLOQ_ERR_ARG, "string 1 is NULL", 0);
    w = gguf_writer_new();
    gguf_writer_set_u32(w, NULL, 1);
    WRITE_FAILS(COLLOQ_ERR_ARG, "key is NULL", 0);
    w = gguf_writer_new();
    gguf_writer_add_tensor_cb(w, "big", CT_F32, 1, (const int64_t[]){ 64 }, 256, fill_fails, NULL);
    WRITE_FAILS(COLLOQ_ERR_IO, "tensor 'big': fill callback failed (-42)", 0);
    /* the failed write left neither the file nor its .partial */
    char *partial = path_in(g_dir, "err.gguf.partial");
    CHECK(access(partial, F_OK) != 0);
    free(partial);

    /* cannot create */
    w = gguf_writer_new();
    gguf_writer_set_u32(w, "k", 1);
    char *bad = path_in(g_dir, "missing/dir/x.gguf");
    CHECK(gguf_writer_write(w, bad, 0, &err) == COLLOQ_ERR_IO && strstr(err.msg, "x.gguf: cannot create"));
    free(bad);
    /* disk full (a device is written in place) */
    struct stat st;
    if (stat("/dev/full", &st) == 0) {
        gguf_writer_add_tensor(w, "t", CT_F32, 1, (const int64_t[]){ 64 }, data, 256);
        CHECK(gguf_writer_write(w, "/dev/full", 0, &err) == COLLOQ_ERR_IO && strstr(err.msg, "/dev/full: write failed"));
    }
    gguf_writer_free(w);
    /* a failed gguf_writer_new (NULL writer) is reported at write time */
    gguf_writer_set_u32(NULL, "k", 1);
    gguf_writer_add_tensor(NULL, "t", CT_F32, 1, ne, data, 4);
    gguf_writer_free(NULL);
    CHECK(gguf_writer_write(NULL, path, 0, &err) == COLLOQ_ERR_NOMEM && strstr(err.msg, "out of memory"));
    free(path);
#undef WRITE_FAILS
}

static void test_getters_describe(void) {
    rb b = { 0 };
    build_valid(&b);
    gguf_file *f = NULL;
    colloq_err err = { { 0 } };
    CHECK(gguf_open_buffer(b.p, b.n, "valid.gguf", &f, &err) == COLLOQ_OK);
    if (!f) { rb_free(&b); return; }
    uint32_t u = 0;
    float x = 0;
    bool bo = false;
    gguf_str s;
    CHECK(gguf_get_u32(f, "t.u8", &u, &err) == 0 && u == 200);
    CHECK(gguf_get_u32(f, "t.u16", &u, &err) == 0 && u == 60000);
    CHECK(gguf_get_u32(f, "t.u32", &u, &err) == 0 && u == 4000000000u);
    CHECK(gguf_get_u32(f, "t.u64", &u, &err) == COLLOQ_ERR_FORMAT &&
          strstr(err.msg, "valid.gguf: key 't.u64' value 18364758544493064720 does not fit in uint32"));
    CHECK(gguf_get_u32(f, "t.i32", &u, &err) == COLLOQ_ERR_FORMAT && strstr(err.msg, "-2000000000 does not fit"));
    CHECK(gguf_get_u32(f, "t.str", &u, &err) == COLLOQ_ERR_FORMAT &&
          strstr(err.msg, "valid.gguf: key 't.str' has type string, expected an unsigned integer"));
    CHECK(gguf_get_u32(f, "a.u32", &u, &err) == COLLOQ_ERR_FORMAT && strstr(err.msg, "has type array"));
    u = 99;
    CHECK(gguf_get_u32(f, "absent", &u, &err) == 1 && u == 99);
    CHECK(gguf_get_f32(f, "t.f32", &x, &err) == 0 && x == 1.5f);
    CHECK(gguf_get_f32(f, "t.f64", &x, &err) == 0 && x == (float)-2.0e-300);
    CHECK(gguf_get_f32(f, "t.i16", &x, &err) == 0 && x == -30000.0f);
    CHECK(gguf_get_f32(f, "t.bool", &x, &err) == COLLOQ_ERR_FORMAT && strstr(err.msg, "has type bool, expected a number"));
    CHECK(gguf_get_f32(f, "absent", &x, &err) == 1);
    CHECK(gguf_get_bool(f, "t.bool", &bo, &err) == 0 && bo);
    CHECK(gguf_get_bool(f, "t.u8", &bo, &err) == COLLOQ_ERR_FORMAT && strstr(err.msg, "has type uint8, expected bool"));
    CHECK(gguf_get_bool(f, "absent", &bo, &err) == 1);
    CHECK(gguf_get_str(f, "general.name", &s, &err) == 0 && gguf_str_eq(s, "tiny test"));
    CHECK(gguf_get_str(f, "t.i8", &s, &err) == COLLOQ_ERR_FORMAT && strstr(err.msg, "has type int8, expected string"));
    CHECK(gguf_get_str(f, "absent", &s, &err) == 1);
    /* misuse of the array accessors is harmless */
    const gguf_kv *kv = gguf_find_kv(f, "a.u8");
    CHECK(gguf_arr_num(kv, 3) == 0 && gguf_arr_str(kv, 0).len == 0);
    CHECK(gguf_arr_num(gguf_find_kv(f, "a.str"), 0) == 0 && gguf_arr_num(gguf_find_kv(f, "t.u8"), 0) == 0);
    CHECK(!strcmp(gguf_vtype_name(GGUF_T_FLOAT64), "float64") && !strcmp(gguf_vtype_name(GGUF_T_COUNT), "unknown"));
    CHECK(gguf_str_eq((gguf_str){ 2, "ab" }, "ab") && !gguf_str_eq((gguf_str){ 2, "ab" }, "abc") &&
          !gguf_str_eq((gguf_str){ 1, "ab" }, "ab") && gguf_str_eq((gguf_str){ 0, NULL }, ""));

    char *text = NULL;
    size_t len = 0;
    FILE *ms = open_memstream(&text, &len);
    CHECK(ms != NULL);
    if (ms) {
        gguf_describe(f, ms);
        fclose(ms);
        static const char *want[] = {
            "GGUF version 3", "alignment 64", "28 keys", "3 tensors",
            "general.name", "string   \"tiny test\"", "t.i64", "-1234567890123", "t.f32", "1.5",
            "t.bool", "true", "array[string x 4] [\"a\", \"\", \"ccc\", \"\xe2\x96\x81the\"]",
            "array[uint8 x 3] [1, 2, 255]", "array[uint32 x 0] []",
            "tok.w", "Q4_0", "[64, 2]", "72 bytes", "x.b", "F16", "[3]", "last", "F32", "64 bytes",
        };
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
            if (!strstr(text, want[i])) { fprintf(stderr, "describe lacks '%s'\n", want[i]); g_fail++; }
        free(text);
    }
    gguf_close(f);
    rb_free(&b);
}

/* Allocation failure at every point of gguf_open_buffer and of a whole writer session. */
static void test_alloc_failures(void) {
    rb b = { 0 };
    build_valid(&b);
    colloq_err err = { { 0 } };
    long first_ok = -1;
    for (long n = 0; n < 100 && first_ok < 0; n++) {
        gguf_file *f = (gguf_file *)1;
        colloq_test_fail_alloc_after(n);
        int rc = gguf_open_buffer(b.p, b.n, "valid.gguf", &f, &err);
        colloq_test_fail_alloc_after(-1);
        if (rc == COLLOQ_OK) { first_ok = n; check_valid(f); gguf_close(f); }
        else CHECK(rc == COLLOQ_ERR_NOMEM && f == NULL && strstr(err.msg, "out of memory"));
    }
    printf("open: succeeds from %ld allowed allocations\n", first_ok);
    CHECK(first_ok >= 5);

    gguf_file *vf = NULL;
    CHECK(gguf_open_buffer(b.p, b.n, "valid.gguf", &vf, &err) == COLLOQ_OK);
    char *path = path_in(g_dir, "oom.gguf");
    first_ok = -1;
    for (long n = 0; n < 400 && first_ok < 0; n++) {
        uint8_t *src = NULL;
        fill_ctx ctx[NT];
        colloq_test_fail_alloc_after(n);
        gguf_writer *w = build_writer(&src, ctx, vf);
        int rc = gguf_writer_write(w, path, 128, &err);
        gguf_writer_free(w);
        colloq_test_fail_alloc_after(-1);
        free(src);
        if (rc == COLLOQ_OK) {
            first_ok = n;
            gguf_file *f = NULL;
            CHECK(gguf_open(path, &f, &err) == COLLOQ_OK);
            if (f) { check_written(f, 128, vf); gguf_close(f); }
        } else {
            CHECK(rc == COLLOQ_ERR_NOMEM && strstr(err.msg, "out of memory"));
            CHECK(access(path, F_OK) != 0);
        }
    }
    printf("writer: succeeds from %ld allowed allocations\n", first_ok);
    CHECK(first_ok >= 20);
    remove(path);
    free(path);
    gguf_close(vf);
    rb_free(&b);
}

/* A 150k-entry string array: every entry read back through the O(1) index. */
static void test_big_vocab(void) {
    enum { N = 150000 };
    char **strs = malloc(N * sizeof *strs);
    for (int i = 0; i < N; i++) {
        strs[i] = malloc(16);
        snprintf(strs[i], 16, "tok%d", i * 7);
    }
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)strs, N);
    char *path = path_in(g_dir, "vocab.gguf");
    colloq_err err = { { 0 } };
    CHECK(gguf_writer_write(w, path, 0, &err) == COLLOQ_OK);
    gguf_writer_free(w);
    gguf_file *f = NULL;
    double t0 = colloq_now();
    CHECK(gguf_open(path, &f, &err) == COLLOQ_OK);
    double t1 = colloq_now();
    const gguf_kv *kv = f ? gguf_find_kv(f, "tokenizer.ggml.tokens") : NULL;
    CHECK(kv && kv->v.arr.n == N);
    int bad = 0;
    for (int i = N - 1; kv && i >= 0; i--) bad += !gguf_str_eq(gguf_arr_str(kv, (uint64_t)i), strs[i]);
    CHECK(bad == 0);
    printf("150000-string vocab: open %.1f ms\n", (t1 - t0) * 1e3);
    gguf_close(f);
    remove(path);
    free(path);
    for (int i = 0; i < N; i++) free(strs[i]);
    free(strs);
}

/* A 4 GiB sparse file: open maps it without reading tensor data, offsets beyond 32 bits work. */
static void test_large_sparse(void) {
    rb b = { 0 };
    rb_hdr(&b, 3, 2, 1);
    rb_kv_str(&b, "general.name", "large");
    rb_tinfo(&b, "big", 2, (const uint64_t[]){ 1 << 20, 1 << 10 }, CT_F32, 0);   /* 4 GiB */
    rb_tinfo(&b, "after", 1, (const uint64_t[]){ 8 }, CT_F32, 1ull << 32);
    rb_pad(&b, 32);
    uint64_t total = b.n + (1ull << 32) + 32;
    char *path = path_in(g_dir, "large.gguf");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    bool made = fd >= 0 && write(fd, b.p, b.n) == (ssize_t)b.n && ftruncate(fd, (off_t)total) == 0;
    if (fd >= 0) close(fd);
    if (!made) {
        printf("large sparse file: cannot create one here, skipped\n");
    } else {
        gguf_file *f = NULL;
        colloq_err err = { { 0 } };
        double t0 = colloq_now();
        int rc = gguf_open(path, &f, &err);
        double t1 = colloq_now();
        CHECK(rc == COLLOQ_OK);
        if (rc) fprintf(stderr, "large: %s\n", err.msg);
        if (f) {
            const gguf_tensor *t = gguf_find_tensor(f, "big"), *a = gguf_find_tensor(f, "after");
            CHECK(t && t->nbytes == 1ull << 32 && a && a->offset == 1ull << 32);
            CHECK(a && (const uint8_t *)a->data - (const uint8_t *)t->data == (ptrdiff_t)(1ull << 32));
            CHECK(gguf_file_size(f) == total);
            printf("4 GiB sparse file: open %.1f ms\n", (t1 - t0) * 1e3);
            gguf_close(f);
        }
    }
    remove(path);
    free(path);
    rb_free(&b);
}

static int roundtrip(void) {
    g_dir = scratch_dir();
    test_copy_identical();
    test_writer_roundtrip();
    test_writer_errors();
    test_getters_describe();
    test_alloc_failures();
    test_big_vocab();
    test_large_sparse();
    rmdir(g_dir);
    free(g_dir);
    if (g_fail) { fprintf(stderr, "%d check(s) failed\n", g_fail); return 1; }
    printf("all GGUF round-trip checks passed\n");
    return 0;
}

/* The real vocabulary files: open, find the tokens, and copy every key through the writer. */
static int vocab(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) { printf("%s: not found, skipping\n", dir); return 77; }
    g_dir = scratch_dir();
    char *copy = path_in(g_dir, "copy.gguf");
    int n_files = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 5, ".gguf") != 0) continue;
        char *path = path_in(dir, de->d_name);
        gguf_file *f = NULL;
        colloq_err err = { { 0 } };
        int rc = gguf_open(path, &f, &err);
        CHECK(rc == COLLOQ_OK);
        if (rc) { fprintf(stderr, "%s\n", err.msg); free(path); continue; }
        n_files++;
        const gguf_kv *tok = gguf_find_kv(f, "tokenizer.ggml.tokens");
        CHECK(tok && tok->type == GGUF_T_ARRAY && tok->v.arr.type == GGUF_T_STRING && tok->v.arr.n > 1000);
        /* the first key's name starts at byte 32 (24-byte header + its length) */
        const uint8_t *lo = (const uint8_t *)gguf_kv_at(f, 0)->key.s - 32;
        uint64_t empty = 0, outside = 0;
        for (uint64_t i = 0; tok && i < tok->v.arr.n; i++) {
            gguf_str s = gguf_arr_str(tok, i);
            empty += s.len == 0;
            outside += (const uint8_t *)s.s < lo || (const uint8_t *)s.s + s.len > lo + gguf_file_size(f);
        }
        CHECK(outside == 0 && tok && empty < tok->v.arr.n / 100 + 1);
        const gguf_kv *other = gguf_find_kv(f, "tokenizer.ggml.token_type");
        if (other && tok) CHECK(other->v.arr.n == tok->v.arr.n);
        gguf_str model;
        CHECK(gguf_get_str(f, "tokenizer.ggml.model", &model, &err) == 0 && model.len > 0);
        /* copy every key through the writer and compare */
        gguf_writer *w = copy_all(f);
        CHECK(gguf_writer_write(w, copy, 0, &err) == COLLOQ_OK);
        gguf_writer_free(w);
        gguf_file *g = NULL;
        CHECK(gguf_open(copy, &g, &err) == COLLOQ_OK);
        if (g) {
            bool have_align = gguf_find_kv(f, "general.alignment") != NULL;
            CHECK(gguf_n_kv(g) == gguf_n_kv(f) && gguf_n_tensors(g) == gguf_n_tensors(f));
            for (uint64_t i = 0; i < gguf_n_kv(f) && i < gguf_n_kv(g); i++) {
                const gguf_kv *a = gguf_kv_at(f, i), *c = gguf_kv_at(g, i);
                if (!(have_align && gguf_str_eq(a->key, "general.alignment"))) CHECK(kv_equal(a, c));
            }
            gguf_close(g);
        }
        FILE *null = fopen("/dev/null", "w");
        if (null) { gguf_describe(f, null); fclose(null); }
        printf("%s: v%u, %llu keys, %llu tokens: ok\n", de->d_name, gguf_version(f),
               (unsigned long long)gguf_n_kv(f), tok ? (unsigned long long)tok->v.arr.n : 0ull);
        gguf_close(f);
        free(path);
    }
    closedir(d);
    remove(copy);
    free(copy);
    rmdir(g_dir);
    free(g_dir);
    if (n_files == 0) { printf("%s: no .gguf files, skipping\n", dir); return 77; }
    if (g_fail) { fprintf(stderr, "%d check(s) failed\n", g_fail); return 1; }
    printf("all %d vocab files passed\n", n_files);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "roundtrip")) return roundtrip();
    if (argc >= 3 && !strcmp(argv[1], "vocab")) return vocab(argv[2]);
    fprintf(stderr, "usage: test_gguf roundtrip | vocab DIR\n");
    return 2;
}
