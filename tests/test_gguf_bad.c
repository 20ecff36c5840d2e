/*
 * test_gguf_bad.c - the GGUF reader against malformed input: a corpus of
 * hand-built bad files (each checked for its status and a distinctive part of
 * the message), every truncation of a valid file, and seeded random corruption.
 * Buffers are allocated to their exact length so ASan sees any over-read.
 */
#include <errno.h>
#include <sys/stat.h>

#include "gguf_testutil.h"
#include "quant.h"

static int n_cases;

/* Open bytes as "bad.gguf" and expect failure with status and message fragment. */
static void expect(int line, const rb *b, int status, const char *needle) {
    gguf_file *f = (gguf_file *)1;
    colloq_err err = { { 0 } };
    void *copy;
    int rc = open_exact(b->p, b->n, "bad.gguf", &f, &err, &copy);
    n_cases++;
    if (rc != status || f != NULL || !strstr(err.msg, needle) || strncmp(err.msg, "bad.gguf: ", 10) != 0) {
        fprintf(stderr, "line %d: expected status %d with '%s', got %d: %s\n", line, status, needle, rc, err.msg);
        g_fail++;
    }
    if (f && f != (gguf_file *)1) gguf_close(f);
    free(copy);
}
#define EXPECT(b, st, needle) expect(__LINE__, (b), (st), (needle))

/* Header + one key/value already in b; n_tensors 0. */
static void one_kv(rb *b) { rb_free(b); rb_hdr(b, 3, 0, 1); }

static void test_header_and_kv(void) {
    rb b = { 0 };
    const uint64_t MAX = UINT64_MAX;

    EXPECT(&b, COLLOQ_ERR_FORMAT, "truncated at byte 0 while reading header magic");
    rb_put(&b, "GGUX", 4); rb_u32(&b, 3); rb_u64(&b, 0); rb_u64(&b, 0);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "bad magic 'GGUX'");
    rb_free(&b); rb_hdr(&b, 1, 0, 0);
    EXPECT(&b, COLLOQ_ERR_UNSUPPORTED, "version 1 (32-bit counts) is not supported");
    rb_free(&b); rb_hdr(&b, 7, 0, 0);
    EXPECT(&b, COLLOQ_ERR_UNSUPPORTED, "unsupported version 7");
    rb_free(&b); rb_hdr(&b, 0x03000000, 0, 0);
    EXPECT(&b, COLLOQ_ERR_UNSUPPORTED, "big-endian");
    rb_free(&b); rb_put(&b, "GGUF", 4); rb_u32(&b, 3); rb_u64(&b, 0); rb_u8(&b, 0);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "truncated at byte 16 while reading header n_kv (needs 8 bytes, 1 left)");

    /* counts that cannot fit */
    rb_free(&b); rb_hdr(&b, 3, 0, MAX);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "n_kv 18446744073709551615");
    rb_free(&b); rb_hdr(&b, 3, MAX, 0);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "n_tensors 18446744073709551615");
    rb_free(&b); rb_hdr(&b, 3, 1ull << 59, 0);   /* 2^59 * 32 wraps to 0 in 64 bits */
    EXPECT(&b, COLLOQ_ERR_FORMAT, "n_tensors 576460752303423488");
    rb_free(&b); rb_hdr(&b, 3, 1ull << 62, 1ull << 62);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "n_kv 4611686018427387904");
    rb_free(&b); rb_hdr(&b, 3, 0, 2); rb_kv_u32(&b, "a", 1);   /* 2 keys declared, 1 present */
    EXPECT(&b, COLLOQ_ERR_FORMAT, "n_kv 2");
    rb_free(&b); rb_hdr(&b, 3, 0, 3); rb_kv_u32(&b, "a", 1); rb_kv_u32(&b, "b", 1); rb_kv_u32(&b, "c", 1);
    b.n -= 1;
    EXPECT(&b, COLLOQ_ERR_FORMAT, "while reading key 2 'c' value (needs 4 bytes, 3 left)");

    /* string lengths */
    one_kv(&b); rb_u64(&b, MAX); rb_put(&b, "general.name....", 16);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "truncated at byte 32 while reading key 0 name: string length 18446744073709551615");
    one_kv(&b); rb_str(&b, "general.name"); rb_u32(&b, GGUF_T_STRING); rb_u64(&b, MAX); rb_put(&b, "xxxxxxxx", 8);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "key 0 'general.name' value: string length 18446744073709551615 exceeds the 8 bytes left");
    one_kv(&b); rb_str(&b, "k"); rb_u32(&b, GGUF_T_STRING); rb_u64(&b, 9); rb_put(&b, "12345678", 8);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "string length 9 exceeds the 8 bytes left");
    one_kv(&b); rb_u64(&b, 3); rb_put(&b, "a\0b", 3); rb_u32(&b, GGUF_T_UINT8); rb_u8(&b, 1);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "key 0 'a\\x00b': key name contains a NUL byte");

    /* value types */
    one_kv(&b); rb_str(&b, "k"); rb_u32(&b, 13); rb_u64(&b, 0);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "key 0 'k': unknown value type 13");
    one_kv(&b); rb_str(&b, "k"); rb_u32(&b, 0xffffffffu); rb_u64(&b, 0);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "unknown value type 4294967295");
    one_kv(&b); rb_str(&b, "k"); rb_u32(&b, GGUF_T_BOOL); rb_u8(&b, 2);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "key 0 'k': bool value 2 is neither 0 nor 1");
    one_kv(&b); rb_str(&b, "k"); rb_u32(&b, GGUF_T_UINT64); rb_u32(&b, 0);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "truncated at byte 37 while reading key 0 'k' value (needs 8 bytes, 4 left)");

    /* arrays */
    one_kv(&b); rb_arr_hdr(&b, "arr", 13, 1); rb_u32(&b, 0);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "key 0 'arr': unknown array element type 13");
    one_kv(&b); rb_arr_hdr(&b, "arr", 0x80000000u, 1); rb_u32(&b, 0);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "unknown array element type 2147483648");
    one_kv(&b); rb_arr_hdr(&b, "arr", GGUF_T_ARRAY, 1); rb_u32(&b, GGUF_T_UINT8); rb_u64(&b, 0);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "nested arrays");
    one_kv(&b); rb_arr_hdr(&b, "arr", GGUF_T_UINT32, 1ull << 62); rb_u64(&b, 0);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "array of 4611686018427387904 uint32 elements extends past the end");
    one_kv(&b); rb_arr_hdr(&b, "arr", GGUF_T_FLOAT64, MAX); rb_u64(&b, 0);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "array of 18446744073709551615 float64 elements");
    one_kv(&b); rb_arr_hdr(&b, "arr", GGUF_T_UINT16, 3); rb_le(&b, 1, 2); rb_le(&b, 2, 2); rb_u8(&b, 3);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "array of 3 uint16 elements extends past the end of the file (5 bytes left)");
    one_kv(&b); rb_arr_hdr(&b, "tokens", GGUF_T_STRING, MAX); rb_str(&b, "a");
    EXPECT(&b, COLLOQ_ERR_FORMAT, "18446744073709551615 strings cannot fit");
    one_kv(&b); rb_arr_hdr(&b, "tokens", GGUF_T_STRING, 3); rb_str(&b, "a"); rb_str(&b, "b");
    rb_u64(&b, 1000); rb_put(&b, "cccccccc", 8);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "key 0 'tokens' element 2: string length 1000 exceeds the 8 bytes left");
    one_kv(&b); rb_arr_hdr(&b, "flags", GGUF_T_BOOL, 3); rb_u8(&b, 0); rb_u8(&b, 7); rb_u8(&b, 1);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "key 0 'flags' element 1: bool value 7");

    /* duplicates and alignment */
    rb_free(&b); rb_hdr(&b, 3, 0, 3); rb_kv_u32(&b, "x", 1); rb_kv_u32(&b, "y", 1); rb_kv_str(&b, "x", "again");
    EXPECT(&b, COLLOQ_ERR_FORMAT, "key 2 'x': duplicate key (first defined as key 0)");
    one_kv(&b); rb_kv_u32(&b, "general.alignment", 0);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "general.alignment 0 is not a non-zero power of two");
    one_kv(&b); rb_kv_u32(&b, "general.alignment", 48);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "general.alignment 48 is not a non-zero power of two");
    one_kv(&b); rb_scalar(&b, "general.alignment", GGUF_T_UINT64, 32, 8);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "general.alignment has type uint64, expected uint32");
    one_kv(&b); rb_kv_str(&b, "general.alignment", "32");
    EXPECT(&b, COLLOQ_ERR_FORMAT, "general.alignment has type string");
    rb_free(&b);
}

/* Header with n_t tensors and no keys (alignment 32). */
static void tensors_hdr(rb *b, uint64_t n_t) { rb_free(b); rb_hdr(b, 3, n_t, 0); }
static void data(rb *b, size_t n) { rb_pad(b, 32); for (size_t i = 0; i < n; i++) rb_u8(b, (uint8_t)i); }

static void test_tensors(void) {
    rb b = { 0 };
    const uint64_t ne16[1] = { 16 };

    /* the message format from the design notes, exactly */
    rb_free(&b); rb_hdr(&b, 3, 4, 0);
    rb_tinfo(&b, "a", 1, ne16, 0, 0);
    rb_tinfo(&b, "b", 1, ne16, 0, 64);
    rb_tinfo(&b, "c", 1, ne16, 0, 128);
    rb_tinfo(&b, "blk.0.attn_q.weight", 7, (const uint64_t[]){ 1, 1, 1, 1, 1, 1, 1 }, 0, 192);
    data(&b, 256);
    {
        gguf_file *f = NULL;
        colloq_err err = { { 0 } };
        void *copy;
        int rc = open_exact(b.p, b.n, "model.gguf", &f, &err, &copy);
        CHECK(rc == COLLOQ_ERR_FORMAT && f == NULL);
        CHECK(!strcmp(err.msg, "model.gguf: tensor 3 'blk.0.attn_q.weight': n_dims 7 exceeds 4"));
        free(copy);
    }
    tensors_hdr(&b, 1); rb_tinfo(&b, "t", 0, NULL, 0, 0); data(&b, 64);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "tensor 0 't': n_dims 0 must be 1..4");
    tensors_hdr(&b, 1); rb_tinfo(&b, "t", 2, (const uint64_t[]){ 16, 0 }, 0, 0); data(&b, 64);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "tensor 0 't': ne[1] 0 must be positive");
    tensors_hdr(&b, 1); rb_tinfo(&b, "t", 1, (const uint64_t[]){ 1ull << 63 }, 0, 0); data(&b, 64);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "ne[0] -9223372036854775808 must be positive");
    tensors_hdr(&b, 1); rb_tinfo(&b, "t", 2, (const uint64_t[]){ 1ull << 32, 1ull << 32 }, 0, 0); data(&b, 64);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "element count overflows");
    tensors_hdr(&b, 1); rb_tinfo(&b, "t", 4, (const uint64_t[]){ 1 << 16, 1 << 16, 1 << 16, 1 << 16 }, 0, 0); data(&b, 64);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "element count overflows");
    tensors_hdr(&b, 1); rb_tinfo(&b, "t", 2, (const uint64_t[]){ 1ull << 32, 1ull << 31 }, 0, 0); data(&b, 64);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "element count overflows (ne[0..1] product exceeds 2^63-1)");
    tensors_hdr(&b, 1); rb_tinfo(&b, "t", 1, (const uint64_t[]){ 1ull << 62 }, 0, 0); data(&b, 64);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "byte size of 4611686018427387904 F32 elements overflows");
    tensors_hdr(&b, 1); rb_tinfo(&b, "t", 1, ne16, 99, 0); data(&b, 64);
    EXPECT(&b, COLLOQ_ERR_UNSUPPORTED, "tensor 0 't': unknown or unsupported tensor type 99");
    tensors_hdr(&b, 1); rb_tinfo(&b, "t", 1, ne16, 0xffffffffu, 0); data(&b, 64);
    EXPECT(&b, COLLOQ_ERR_UNSUPPORTED, "tensor type 4294967295");
    tensors_hdr(&b, 1); rb_tinfo(&b, "q", 2, (const uint64_t[]){ 33, 2 }, CT_Q4_0, 0); data(&b, 64);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "tensor 0 'q': ne[0] 33 is not a multiple of the Q4_0 block size 32");
    tensors_hdr(&b, 1); rb_tinfo(&b, "k", 1, (const uint64_t[]){ 128 }, CT_Q4_K, 0); data(&b, 144);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "block size 256");
    tensors_hdr(&b, 1); rb_u64(&b, 4); rb_put(&b, "t\0t2", 4); rb_u32(&b, 1); rb_u64(&b, 16);
    rb_u32(&b, 0); rb_u64(&b, 0); data(&b, 64);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "tensor name contains a NUL byte");

    /* data placement */
    tensors_hdr(&b, 1); rb_tinfo(&b, "t", 1, ne16, 0, 1ull << 40); data(&b, 64);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "lies outside the file");
    tensors_hdr(&b, 1); rb_tinfo(&b, "t", 1, ne16, 0, 0); data(&b, 63);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "tensor 0 't': data at bytes [64, 128) lies outside the file (127 bytes)");
    tensors_hdr(&b, 1); rb_tinfo(&b, "t", 1, ne16, 0, UINT64_MAX - 31); data(&b, 64);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "overflows");
    tensors_hdr(&b, 1); rb_tinfo(&b, "t", 1, ne16, 0, 4); data(&b, 96);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "tensor 0 't': offset 4 is misaligned: not a multiple of the alignment 32");
    tensors_hdr(&b, 2); rb_tinfo(&b, "a", 1, ne16, 0, 32); rb_tinfo(&b, "b", 1, ne16, 0, 0); data(&b, 96);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "tensor 0 'a': data at offset 32 overlaps tensor 1 'b' (offset 0, 64 bytes)");
    tensors_hdr(&b, 2); rb_tinfo(&b, "a", 1, ne16, 0, 0); rb_tinfo(&b, "b", 1, ne16, 0, 0); data(&b, 64);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "overlaps");
    tensors_hdr(&b, 3); rb_tinfo(&b, "a", 1, ne16, 0, 0); rb_tinfo(&b, "b", 1, ne16, 0, 64);
    rb_tinfo(&b, "a", 1, ne16, 0, 128); data(&b, 192);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "tensor 2 'a': duplicate tensor name (first used by tensor 0)");
    /* misalignment relative to a non-default general.alignment */
    rb_free(&b); rb_hdr(&b, 3, 1, 1); rb_kv_u32(&b, "general.alignment", 64);
    rb_tinfo(&b, "t", 1, ne16, 0, 32); rb_pad(&b, 64); for (int i = 0; i < 96; i++) rb_u8(&b, 0);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "not a multiple of the alignment 64");
    /* truncated inside a tensor info */
    tensors_hdr(&b, 1); rb_str(&b, "t"); rb_u32(&b, 2); rb_u64(&b, 16); rb_u64(&b, 2); rb_u32(&b, 0);
    EXPECT(&b, COLLOQ_ERR_FORMAT, "truncated at byte 57 while reading tensor 0 't' offset (needs 8 bytes, 0 left)");

    /* and the positive controls: the same shapes, well formed, do open */
    tensors_hdr(&b, 2); rb_tinfo(&b, "a", 1, ne16, 0, 64); rb_tinfo(&b, "b", 1, ne16, 0, 0); data(&b, 128);
    {
        gguf_file *f = NULL;
        colloq_err err = { { 0 } };
        void *copy;
        CHECK(open_exact(b.p, b.n, "good.gguf", &f, &err, &copy) == COLLOQ_OK);
        CHECK(f && gguf_find_tensor(f, "a")->offset == 64 && gguf_find_tensor(f, "b")->offset == 0);
        gguf_close(f);
        free(copy);
    }
    rb_free(&b);
}

/* Use everything an opened file hands out, so ASan/UBSan see any bad pointer. */
static unsigned touch_all(const gguf_file *f) {
    unsigned acc = 0;
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        acc += kv->key.len ? (unsigned char)kv->key.s[kv->key.len - 1] : 0;
        if (kv->type == GGUF_T_STRING && kv->v.str.len) acc += (unsigned char)kv->v.str.s[kv->v.str.len - 1];
        if (kv->type == GGUF_T_ARRAY) {
            for (uint64_t j = 0; j < kv->v.arr.n; j++) {
                if (kv->v.arr.type == GGUF_T_STRING) {
                    gguf_str s = gguf_arr_str(kv, j);
                    if (s.len) acc += (unsigned char)s.s[0] + (unsigned char)s.s[s.len - 1];
                } else {
                    acc += (unsigned)(gguf_arr_num(kv, j) != 0);
                }
            }
        }
    }
    uint64_t al = gguf_alignment(f);
    CHECK(al && (al & (al - 1)) == 0);
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        const uint8_t *d = t->data;
        acc += d[0] + d[t->nbytes - 1];
        CHECK(t->offset % gguf_alignment(f) == 0);
    }
    FILE *null = fopen("/dev/null", "w");
    if (null) { gguf_describe(f, null); fclose(null); }
    return acc;
}

static void test_truncations(void) {
    rb b = { 0 };
    build_valid(&b);
    gguf_file *f = NULL;
    colloq_err err = { { 0 } };
    void *copy;
    CHECK(open_exact(b.p, b.n, "valid.gguf", &f, &err, &copy) == COLLOQ_OK);
    if (f) { check_valid(f); touch_all(f); }
    gguf_close(f);
    free(copy);
    int bad = 0;
    for (size_t len = 0; len < b.n; len++) {
        f = (gguf_file *)1;
        err.msg[0] = 0;
        int rc = open_exact(b.p, len, "valid.gguf", &f, &err, &copy);
        if (rc != COLLOQ_ERR_FORMAT || f != NULL || strncmp(err.msg, "valid.gguf: ", 12) != 0) {
            if (bad++ < 5) fprintf(stderr, "prefix %zu: rc %d: %s\n", len, rc, err.msg);
            if (rc == COLLOQ_OK) gguf_close(f);
        }
        free(copy);
    }
    CHECK(bad == 0);
    printf("truncations: %zu prefixes rejected\n", b.n);
    rb_free(&b);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {   /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static void test_corruption(void) {
    rb b = { 0 };
    build_valid(&b);
    int opened = 0, failed = 0;
    /* every byte of the header/metadata region set to a few interesting values */
    static const uint8_t vals[] = { 0x00, 0xff, 0x80, 0x01, 0x7f, 0x40 };
    size_t meta = b.n - 256;
    for (size_t pos = 0; pos < meta; pos++)
        for (size_t v = 0; v < sizeof vals; v++) {
            uint8_t *p = malloc(b.n);
            memcpy(p, b.p, b.n);
            if (p[pos] == vals[v]) { free(p); continue; }
            p[pos] = vals[v];
            gguf_file *f = NULL;
            colloq_err err = { { 0 } };
            if (gguf_open_buffer(p, b.n, "c.gguf", &f, &err) == COLLOQ_OK) { opened++; touch_all(f); gguf_close(f); }
            else { failed++; CHECK(f == NULL && strncmp(err.msg, "c.gguf: ", 8) == 0); }
            free(p);
        }
    /* seeded random multi-byte corruption and bit flips anywhere */
    for (int it = 0; it < 4000; it++) {
        uint8_t *p = malloc(b.n);
        memcpy(p, b.p, b.n);
        int k = 1 + (int)(rnd() % 4);
        for (int j = 0; j < k; j++) {
            size_t pos = (size_t)(rnd() % b.n);
            if (rnd() & 1) p[pos] ^= (uint8_t)(1u << (rnd() % 8));
            else p[pos] = (uint8_t)rnd();
        }
        gguf_file *f = NULL;
        colloq_err err = { { 0 } };
        if (gguf_open_buffer(p, b.n, "c.gguf", &f, &err) == COLLOQ_OK) { opened++; touch_all(f); gguf_close(f); }
        else { failed++; CHECK(f == NULL && strncmp(err.msg, "c.gguf: ", 8) == 0); }
        free(p);
    }
    printf("corruption: %d opened, %d rejected cleanly\n", opened, failed);
    CHECK(opened > 0 && failed > 0);   /* both outcomes occur: the mutations do reach the checks */
    rb_free(&b);
}

static void test_open_paths(void) {
    gguf_file *f = NULL;
    colloq_err err = { { 0 } };
    CHECK(gguf_open("no/such/dir/model.gguf", &f, &err) == COLLOQ_ERR_IO && f == NULL);
    CHECK(strstr(err.msg, "no/such/dir/model.gguf: cannot open") != NULL);
    char *dir = scratch_dir();
    CHECK(gguf_open(dir, &f, &err) == COLLOQ_ERR_IO && strstr(err.msg, "not a regular file"));
    char *empty = path_in(dir, "empty.gguf");
    FILE *fp = fopen(empty, "wb");
    CHECK(fp != NULL);
    if (fp) fclose(fp);
    CHECK(gguf_open(empty, &f, &err) == COLLOQ_ERR_FORMAT && strstr(err.msg, "truncated at byte 0"));
    /* a valid file through the mmap path */
    rb b = { 0 };
    build_valid(&b);
    char *valid = path_in(dir, "valid.gguf");
    fp = fopen(valid, "wb");
    CHECK(fp && fwrite(b.p, 1, b.n, fp) == b.n);
    if (fp) fclose(fp);
    CHECK(gguf_open(valid, &f, &err) == COLLOQ_OK);
    if (f) {
        check_valid(f);
        CHECK(!strcmp(gguf_path(f), valid) && gguf_file_size(f) == b.n);
        gguf_close(f);
    }
    /* corrupt on disk: the mapping is released on failure (ASan/valgrind would see a leak) */
    b.p[4] = 9;
    fp = fopen(valid, "wb");
    CHECK(fp && fwrite(b.p, 1, b.n, fp) == b.n);
    if (fp) fclose(fp);
    CHECK(gguf_open(valid, &f, &err) == COLLOQ_ERR_UNSUPPORTED && f == NULL);
    remove(valid);
    remove(empty);
    rmdir(dir);
    free(valid);
    free(empty);
    free(dir);
    rb_free(&b);
}

int main(void) {
    test_header_and_kv();
    test_tensors();
    test_truncations();
    test_corruption();
    test_open_paths();
    printf("bad-file corpus: %d cases\n", n_cases);
    if (g_fail) { fprintf(stderr, "%d check(s) failed\n", g_fail); return 1; }
    printf("all GGUF malformed-input checks passed\n");
    return 0;
}
