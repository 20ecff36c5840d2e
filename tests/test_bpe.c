/*
 * test_bpe.c - tests of the byte-level BPE tokenizer (src/tok_bpe.c):
 *   test_bpe synth DIR      hand-made vocabularies written to DIR: merge order and
 *                           ties, ignore_merges, skipped merges, missing byte tokens,
 *                           decoding, add_bos defaults, load errors
 *   test_bpe vocab VOCABDIR the real "gpt2" vocabularies: defaults, decode(encode(s)) == s
 *                           on random text and random bytes, ids equal to a naive
 *                           O(n^2) BPE on the same chunks, 100 KB speed
 *   test_bpe spm VOCABDIR   vocabularies without golden files that are not "gpt2"
 *                           (baichuan): they load and round-trip text
 * Exits 77 when VOCABDIR is absent.  Test code only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gguf.h"
#include "tok_internal.h"
#include "tok_bpe_pre.h"

static int g_fail;
#define CHECK(c) do {                                                             \
        if (!(c)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
            g_fail++;                                                             \
        }                                                                         \
    } while (0)

#ifdef __SANITIZE_ADDRESS__
#define SPEED_BUDGET_S 5.0     /* sanitizers slow everything down several times */
#else
#define SPEED_BUDGET_S 0.5
#endif

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

/* GPT-2 byte -> code point, written independently of tok_bpe.c for the tests. */
static uint32_t byte_cp(int b) {
    if ((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae) return (uint32_t)b;
    int n = 0;
    for (int c = 0; c < b; c++)
        if (!((c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || c >= 0xae)) n++;
    return 0x100 + (uint32_t)n;
}

/* Byte-level text of raw bytes s[0..n) into o (NUL-terminated); returns its length. */
static size_t to_bytelevel(const char *s, size_t n, char *o) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = byte_cp((unsigned char)s[i]);
        if (cp < 0x80) o[k++] = (char)cp;
        else { o[k++] = (char)(0xc0 | (cp >> 6)); o[k++] = (char)(0x80 | (cp & 0x3f)); }
    }
    o[k] = 0;
    return k;
}

static int tokenize(const colloq_vocab *v, const char *s, size_t n, colloq_token *out, int cap) {
    colloq_err err = {{0}};
    int k = colloq_vocab_tokenize(v, s, n, false, false, out, cap, &err);
    if (k < 0) fprintf(stderr, "tokenize failed: %s\n", err.msg);
    return k;
}

/* decode(encode(s)) == want (want = s unless bytes lack a token) */
static bool round_trip_to(const colloq_vocab *v, const char *s, size_t n, const char *want, size_t wn) {
    int cap = (int)n + 16;
    colloq_token *ids = malloc((size_t)cap * sizeof *ids);
    char *back = malloc(4 * n + 64);
    int k = tokenize(v, s, n, ids, cap);
    bool ok = k >= 0 && k <= cap;
    size_t at = 0;
    for (int i = 0; ok && i < k; i++) {
        int m = colloq_vocab_piece(v, ids[i], false, back + at, (int)(4 * n + 64 - at));
        ok = m >= 0 && at + (size_t)m <= 4 * n + 64;
        at += ok ? (size_t)m : 0;
    }
    ok = ok && at == wn && !memcmp(back, want, wn);
    free(ids);
    free(back);
    return ok;
}

static bool round_trip(const colloq_vocab *v, const char *s, size_t n) {
    return round_trip_to(v, s, n, s, n);
}

/* ------------------------------------------------------------ synthetic vocabularies */

typedef struct { const char *text; int type; } synth_tok;

/* Raw texts (mapped to byte-level when written), besides the byte tokens. */
static const synth_tok SYNTH_EXTRA[] = {
    { "bc", 1 }, { "ab", 1 }, { "aa", 1 }, { "aaaa", 1 }, { " a", 1 }, { "xy", 1 }, { "xyz", 1 },
    { "abc", 1 }, { "<unk>", 2 }, { "<ud>", 4 }, { "<|eot|>", 3 },
};
/* merges as raw "left right" pairs; rank = index.  Bad entries are meant to be skipped. */
static const char *const SYNTH_MERGES[][2] = {
    { "b", "c" },      /* 0 */
    { "a", "b" },      /* 1 */
    { "ab", "c" },     /* 2: loses to "b c" inside "abc" */
    { "a", "a" },      /* 3 */
    { "aa", "aa" },    /* 4 */
    { " ", "a" },      /* 5 */
    { "x", "y" },      /* 6: no "xy z", so "xyz" is reachable only by ignore_merges */
    { "c", "d" },      /* 7: result "cd" not in the vocabulary: skipped */
    { "q9", "z" },     /* 8: left side not a token: skipped */
    { NULL, NULL },    /* 9: a merge string without a space: skipped */
};
enum { N_SYNTH_MERGES = sizeof SYNTH_MERGES / sizeof SYNTH_MERGES[0] };

/* flags for write_synth */
enum { SY_NO_MERGES = 1, SY_INT_MERGES = 2, SY_ADD_BOS_FALSE = 4, SY_NO_BYTE_01 = 8 };

static int write_synth(const char *path, const char *pre, int flags) {
    char *store = malloc(64 * 1024), *at = store;
    const char *texts[300];
    int32_t types[300];
    int n = 0;
    for (int b = 0; b < 256; b++) {
        if (b == 1 && (flags & SY_NO_BYTE_01)) continue;
        char raw = (char)b;
        size_t l = to_bytelevel(&raw, 1, at);
        texts[n] = at; types[n++] = 1; at += l + 1;
    }
    for (size_t i = 0; i < sizeof SYNTH_EXTRA / sizeof SYNTH_EXTRA[0]; i++) {
        const synth_tok *t = &SYNTH_EXTRA[i];
        size_t l = t->type == 1 ? to_bytelevel(t->text, strlen(t->text), at) : strlen(strcpy(at, t->text));
        texts[n] = at; types[n++] = t->type; at += l + 1;
    }
    const char *merges[N_SYNTH_MERGES];
    for (int i = 0; i < N_SYNTH_MERGES; i++) {
        merges[i] = at;
        if (!SYNTH_MERGES[i][0]) { strcpy(at, "nospace"); at += 8; continue; }
        at += to_bytelevel(SYNTH_MERGES[i][0], strlen(SYNTH_MERGES[i][0]), at);
        *at++ = ' ';
        at += to_bytelevel(SYNTH_MERGES[i][1], strlen(SYNTH_MERGES[i][1]), at) + 1;
    }
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, "general.architecture", "gpt2");
    gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    if (pre) gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", texts, (uint64_t)n);
    gguf_writer_set_arr_num(w, "tokenizer.ggml.token_type", GGUF_T_INT32, types, (uint64_t)n);
    if (flags & SY_INT_MERGES)
        gguf_writer_set_arr_num(w, "tokenizer.ggml.merges", GGUF_T_INT32, types, 4);
    else if (!(flags & SY_NO_MERGES))
        gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, N_SYNTH_MERGES);
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)(n - 1));
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)(n - 1));
    gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)(n - 3));
    if (flags & SY_ADD_BOS_FALSE) gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", false);
    colloq_err err = {{0}};
    int rc = gguf_writer_write(w, path, 0, &err);
    if (rc) fprintf(stderr, "writing %s: %s\n", path, err.msg);
    gguf_writer_free(w);
    free(store);
    return rc;
}

/* Load dir/name written with (pre, flags); returns the load status. */
static int load_synth(const char *dir, const char *name, const char *pre, int flags,
                      gguf_file **f, colloq_vocab **v, colloq_err *err) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
    *f = NULL; *v = NULL;
    if (write_synth(path, pre, flags)) return -100;
    int rc = gguf_open(path, f, err);
    return rc ? rc : colloq_vocab_load(*f, v, err);
}

/* id of the token whose raw text (before byte-level mapping) is raw */
static colloq_token raw_id(const colloq_vocab *v, const char *raw) {
    char bl[256];
    to_bytelevel(raw, strlen(raw), bl);
    return colloq_vocab_find(v, bl);
}

/* tokenize raw text and compare with the raw texts of want (NULL-terminated) */
static void expect_ids(const colloq_vocab *v, const char *text, const char *const *want) {
    colloq_token ids[64], exp[64];
    int k = tokenize(v, text, strlen(text), ids, 64), nw = 0;
    for (; want[nw]; nw++) {
        exp[nw] = want[nw][0] == '<' ? colloq_vocab_find(v, want[nw]) : raw_id(v, want[nw]);
        CHECK(exp[nw] >= 0);
    }
    bool ok = k == nw;
    for (int i = 0; ok && i < k; i++) ok = ids[i] == exp[i];
    if (!ok) {
        g_fail++;
        fprintf(stderr, "pre '%s', text \"%s\": got", v->pre, text);
        for (int i = 0; i < k && i < 64; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, ", want");
        for (int i = 0; i < nw; i++) fprintf(stderr, " %d", exp[i]);
        fprintf(stderr, "\n");
    }
}
#define EXPECT(v, text, ...) expect_ids(v, text, (const char *const[]){ __VA_ARGS__, NULL })

static int test_synth(const char *dir) {
    mkdir(dir, 0755);
    colloq_err err = {{0}};
    gguf_file *f;
    colloq_vocab *v;

    int rc = load_synth(dir, "gpt2", "gpt-2", 0, &f, &v, &err);
    if (rc) { fprintf(stderr, "synthetic vocabulary: %s\n", err.msg); return 1; }
    EXPECT(v, "abc", "a", "bc");             /* rank 0 (b c) before rank 1 (a b) */
    EXPECT(v, "ab", "ab");
    EXPECT(v, "aaaaa", "aaaa", "a");         /* equal ranks: leftmost pair first */
    EXPECT(v, "aaa", "aa", "a");
    EXPECT(v, " a", " a");
    EXPECT(v, "xyz", "xy", "z");             /* no merge reaches xyz */
    EXPECT(v, "cd", "c", "d");               /* merge to a missing token was skipped */
    EXPECT(v, "abc abc", "a", "bc", " a", "bc");       /* " abc": (b,c) 0, then (" ",a) 5 */
    EXPECT(v, "x<ud>y", "x", "<ud>", "y");   /* user-defined split out by tokenizer.c */
    CHECK(!colloq_vocab_add_bos(v));         /* gpt2 vocabularies default to no BOS */
    CHECK(!v->add_space_prefix);
    /* decoding: byte-level code points back to bytes; added tokens as written */
    char buf[16];
    colloq_token t = raw_id(v, " a");
    CHECK(colloq_vocab_piece(v, t, false, buf, sizeof buf) == 2 && !memcmp(buf, " a", 2));
    t = raw_id(v, "\xe9");                   /* text "é" (C3 A9) is the byte E9 */
    CHECK(colloq_vocab_piece(v, t, false, buf, sizeof buf) == 1 && (unsigned char)buf[0] == 0xe9);
    t = raw_id(v, "\n");                     /* text "Ċ" */
    CHECK(!strcmp(colloq_vocab_text(v, t), "\xc4\x8a"));
    CHECK(colloq_vocab_piece(v, t, false, buf, sizeof buf) == 1 && buf[0] == '\n');
    t = colloq_vocab_find(v, "<ud>");
    CHECK(colloq_vocab_piece(v, t, false, buf, sizeof buf) == 4 && !memcmp(buf, "<ud>", 4));
    CHECK(colloq_vocab_piece(v, t, false, buf, 2) == 4);          /* size needed beyond cap */
    /* round trip of arbitrary bytes, one chunk and many */
    for (int iter = 0; iter < 200; iter++) {
        char s[300];
        size_t n = rnd() % sizeof s;
        for (size_t i = 0; i < n; i++) s[i] = (char)(iter & 1 ? (char)rnd() : "abc xyz\n\xc3\xa9\xff"[rnd() % 12]);
        if (!round_trip(v, s, n)) { g_fail++; fprintf(stderr, "synthetic round trip failed (iter %d)\n", iter); }
    }
    /* count-only call and a short buffer report the full count */
    CHECK(colloq_vocab_tokenize(v, "abc abc", 7, false, false, NULL, 0, &err) == 4);
    colloq_token two[2];
    CHECK(colloq_vocab_tokenize(v, "abc abc", 7, false, false, two, 2, &err) == 4);
    CHECK(two[0] == raw_id(v, "a") && two[1] == raw_id(v, "bc"));
    colloq_vocab_free(v); gguf_close(f);

    /* llama3 family: whole chunks in the vocabulary bypass the merges; BOS by default */
    rc = load_synth(dir, "llama3", "llama-bpe", 0, &f, &v, &err);
    CHECK(rc == 0);
    if (!rc) {
        EXPECT(v, "xyz", "xyz");
        EXPECT(v, "abc", "abc");
        EXPECT(v, "aaaaa", "aaaa", "a");
        CHECK(colloq_vocab_add_bos(v));
    }
    colloq_vocab_free(v); gguf_close(f);
    rc = load_synth(dir, "llama3_nobos", "llama-bpe", SY_ADD_BOS_FALSE, &f, &v, &err);
    CHECK(rc == 0 && !colloq_vocab_add_bos(v));         /* the file's key wins */
    colloq_vocab_free(v); gguf_close(f);

    /* no pre key: the GPT-2 regex */
    rc = load_synth(dir, "nopre", NULL, 0, &f, &v, &err);
    CHECK(rc == 0);
    if (!rc) EXPECT(v, "abc abc", "a", "bc", " a", "bc");
    colloq_vocab_free(v); gguf_close(f);

    /* a byte without a token encodes as unk and the rest still works */
    rc = load_synth(dir, "nobyte", "gpt-2", SY_NO_BYTE_01, &f, &v, &err);
    CHECK(rc == 0);
    if (!rc) EXPECT(v, "a\x01" "bc", "a", "<unk>", "bc");
    colloq_vocab_free(v); gguf_close(f);

    /* load errors: status and a message naming the problem */
    rc = load_synth(dir, "nomerges", "gpt-2", SY_NO_MERGES, &f, &v, &err);
    CHECK(rc == COLLOQ_ERR_FORMAT && v == NULL && strstr(err.msg, "merges"));
    gguf_close(f);
    rc = load_synth(dir, "intmerges", "gpt-2", SY_INT_MERGES, &f, &v, &err);
    CHECK(rc == COLLOQ_ERR_FORMAT && v == NULL && strstr(err.msg, "merges"));
    gguf_close(f);
    rc = load_synth(dir, "badpre", "no-such-pre", 0, &f, &v, &err);
    CHECK(rc == COLLOQ_ERR_UNSUPPORTED && v == NULL && strstr(err.msg, "no-such-pre"));
    gguf_close(f);

    /* out of memory at every allocation of load and encode: an error, never a crash */
    int failures_seen = 0;
    for (long k = 0; k < 4000; k++) {
        gguf_file *g = NULL;
        colloq_vocab *u = NULL;
        char path[1024];
        snprintf(path, sizeof path, "%s/gpt2.gguf", dir);
        if (gguf_open(path, &g, &err)) { g_fail++; break; }
        colloq_test_fail_alloc_after(k);
        rc = colloq_vocab_load(g, &u, &err);
        int enc = rc ? 0 : colloq_vocab_tokenize(u, "abc aaaa xyz", 12, false, false, NULL, 0, &err);
        colloq_test_fail_alloc_after(-1);
        if (rc == 0 && enc >= 0) {
            CHECK(enc == 7);
            colloq_vocab_free(u); gguf_close(g);
            break;
        }
        failures_seen++;
        if (!(rc == COLLOQ_ERR_NOMEM || enc == COLLOQ_ERR_NOMEM)) {
            g_fail++;
            fprintf(stderr, "allocation %ld failing: load %d, encode %d: %s\n", k, rc, enc, err.msg);
        }
        colloq_vocab_free(u);
        gguf_close(g);
    }
    CHECK(failures_seen > 5);
    return 0;
}

/* ------------------------------------------------------------ real vocabularies */

/* Naive reference BPE: text symbols, rescan all pairs for the lowest rank, merge
 * the leftmost such pair, repeat.  Ranks from tokenizer.ggml.merges by text. */
typedef struct { const gguf_kv *kv; uint32_t *slot; uint32_t mask; } rank_map;

static uint32_t hash_str(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 16777619u; }
    return h;
}

static void rank_map_init(rank_map *m, const gguf_file *f) {
    m->kv = gguf_find_kv(f, "tokenizer.ggml.merges");
    uint64_t n = m->kv->v.arr.n, cap = 16;
    while (cap < 2 * n) cap <<= 1;
    m->mask = (uint32_t)cap - 1;
    m->slot = malloc(cap * sizeof *m->slot);
    memset(m->slot, 0xff, cap * sizeof *m->slot);
    for (uint64_t i = 0; i < n; i++) {
        gguf_str s = gguf_arr_str(m->kv, i);
        uint32_t j = hash_str(s.s, s.len) & m->mask;
        bool dup = false;
        while (m->slot[j] != UINT32_MAX && !dup) {
            gguf_str o = gguf_arr_str(m->kv, m->slot[j]);
            dup = o.len == s.len && !memcmp(o.s, s.s, s.len);
            j = (j + 1) & m->mask;
        }
        if (!dup) m->slot[j] = (uint32_t)i;
    }
}

static long rank_of(const rank_map *m, const char *l, size_t ll, const char *r, size_t rl, char *tmp) {
    memcpy(tmp, l, ll); tmp[ll] = ' '; memcpy(tmp + ll + 1, r, rl);
    size_t n = ll + rl + 1;
    for (uint32_t j = hash_str(tmp, n) & m->mask; m->slot[j] != UINT32_MAX; j = (j + 1) & m->mask) {
        gguf_str o = gguf_arr_str(m->kv, m->slot[j]);
        if (o.len == n && !memcmp(o.s, tmp, n)) return m->slot[j];
    }
    return -1;
}

/* ids of one chunk by the naive algorithm; returns count */
static int naive_chunk(const colloq_vocab *v, const rank_map *m, const char *s, size_t n, colloq_token *out) {
    char *text = malloc(2 * n + 1), *tmp = malloc(4 * n + 8);
    size_t *start = malloc((n + 1) * sizeof *start);
    size_t tl = to_bytelevel(s, n, text), ns = n;
    for (size_t i = 0, at = 0; i < n; i++) {                  /* symbol i: text[start[i]..start[i+1]) */
        start[i] = at;
        at += byte_cp((unsigned char)s[i]) < 0x80 ? 1 : 2;
    }
    start[n] = tl;
    for (;;) {
        long best = -1;
        size_t bi = 0;
        for (size_t i = 0; i + 1 < ns; i++) {
            long r = rank_of(m, text + start[i], start[i + 1] - start[i],
                             text + start[i + 1], start[i + 2] - start[i + 1], tmp);
            if (r >= 0 && (best < 0 || r < best)) { best = r; bi = i; }
        }
        if (best < 0) break;
        memmove(start + bi + 1, start + bi + 2, (ns - bi - 1) * sizeof *start);
        ns--;
    }
    int k = 0;
    for (size_t i = 0; i < ns; i++) {
        colloq_token t = tok_index_find(v, text + start[i], start[i + 1] - start[i]);
        out[k++] = t;             /* merges of this test's vocabularies only make tokens */
    }
    free(text); free(tmp); free(start);
    return k;
}

static const char *const ATOMS[] = {
    "a", "e", "the", "The", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "'s", "'ll", "'", "0", "7",
    "42", "2024", ".", ",", "!", "?", "...", "(", ")", "{", "}", "==", "->", "#", "$", "_", "-",
    "\xc3\xbc", "\xc3\xa9", "\xc3\x9f", "\xd0\xb6\xd0\xb8", "\xe4\xb8\x96\xe7\x95\x8c", "\xea\xb0\x80",
    "\xe1\x9e\x80\xe1\x9e\xb6", "\xf0\x9f\xa6\x99", "\xf0\x9f\x98\x81", "\xe2\x80\x8d", "\xef\xbd\x9e",
    "\xd9\xa3", "\xe3\x80\x80", "\xc2\xa0", " hello", " world", "ing", "Hello", "def ", "return ",
};

static size_t random_text(char *s, size_t cap, bool bytes) {
    size_t n = 0, want = rnd() % (cap / 2);
    while (n < want) {
        if (bytes) { s[n++] = (char)rnd(); continue; }
        const char *a = ATOMS[rnd() % (sizeof ATOMS / sizeof ATOMS[0])];
        size_t l = strlen(a);
        if (n + l > cap) break;
        memcpy(s + n, a, l);
        n += l;
    }
    return n;
}

/* What decoding gives back for s: every byte that has a token; a stray byte (not
 * UTF-8) without one comes back as U+FFFD, a byte of valid text without one as
 * the unk token's piece.  Returns the length written to o; *missing counts such bytes. */
static size_t expected_text(const colloq_vocab *v, const char *s, size_t n, char *o, int *missing) {
    char unk[64];
    int un = v->unk >= 0 ? colloq_vocab_piece(v, v->unk, false, unk, sizeof unk) : 0;
    size_t k = 0;
    *missing = 0;
    for (size_t i = 0; i < n;) {
        int l = colloq_utf8_seq_len((const unsigned char *)s + i, n - i);
        size_t step = l > 0 ? (size_t)l : 1;
        for (size_t j = i; j < i + step; j++) {
            char raw = s[j], bl[4];
            to_bytelevel(&raw, 1, bl);
            colloq_token t = colloq_vocab_find(v, bl);     /* added tokens do not count */
            if (t >= 0 && colloq_vocab_token_type(v, t) == CTOK_NORMAL) { o[k++] = raw; continue; }
            (*missing)++;
            if (l == 0) { memcpy(o + k, "\xef\xbf\xbd", 3); k += 3; }
            else { memcpy(o + k, unk, (size_t)un); k += (size_t)un; }
        }
        i += step;
    }
    return k;
}

static void test_one_vocab(const char *dir, const char *name, bool want_bos) {
    char path[1024];
    snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf", dir, name);
    colloq_err err = {{0}};
    gguf_file *f = NULL;
    colloq_vocab *v = NULL;
    if (gguf_open(path, &f, &err) || colloq_vocab_load(f, &v, &err)) {
        fprintf(stderr, "%s: %s\n", name, err.msg);
        g_fail++;
        gguf_close(f);
        return;
    }
    CHECK(!strcmp(colloq_vocab_model_name(v), "gpt2"));
    if (colloq_vocab_add_bos(v) != want_bos) { g_fail++; fprintf(stderr, "%s: add_bos %d\n", name, !want_bos); }
    tok_bpe_pre *pre = NULL;
    CHECK(tok_bpe_pre_new(v->pre, &pre, &err) == 0);
    rank_map rm;
    rank_map_init(&rm, f);

    int bad_rt = 0, bad_naive = 0, compared = 0, stray_seen = 0;
    char s[600], want[2000];
    colloq_token ids[1200], ref[1200];
    tok_spans sp = {0};
    for (int iter = 0; iter < 400; iter++) {
        size_t n = random_text(s, sizeof s, iter % 4 == 3);
        int missing;
        size_t wn = expected_text(v, s, n, want, &missing);
        stray_seen += missing > 0;
        if (!round_trip_to(v, s, n, want, wn)) {
            if (bad_rt++ < 3) fprintf(stderr, "%s: round trip failed on %zu bytes (iter %d)\n", name, n, iter);
        }
        /* the heap-based encoder against the naive one, chunk by chunk (no special splitting) */
        int k = v->encode(v, s, n, ids, 1200, &err), kr = 0;
        CHECK(k >= 0 && k <= 1200);
        if (tok_bpe_pre_split(pre, s, n, &sp, &err)) { g_fail++; break; }
        for (size_t c = 0; c < sp.n; c++) kr += naive_chunk(v, &rm, s + sp.v[c].off, sp.v[c].len, ref + kr);
        if (missing) continue;        /* the naive side has no policy for bytes without tokens */
        compared++;
        if (k != kr || memcmp(ids, ref, (size_t)k * sizeof *ids)) {
            if (bad_naive++ < 3) fprintf(stderr, "%s: encoder and naive BPE differ (iter %d)\n", name, iter);
        }
    }
    CHECK(compared >= 250);
    printf("%s: %d random texts compared with naive BPE, %d with bytes lacking a token\n", name, compared, stray_seen);
    if (bad_rt || bad_naive) { g_fail++; fprintf(stderr, "%s: %d round-trip and %d naive failures\n", name, bad_rt, bad_naive); }

    /* 100 KB: mixed text, and one 100 KB chunk */
    size_t big = 100 * 1024;
    char *t = malloc(big);
    colloq_token *out = malloc(big * sizeof *out);
    for (int which = 0; which < 2; which++) {
        size_t at = 0;
        if (which == 0) {
            while (at < big) {
                const char *a = ATOMS[rnd() % (sizeof ATOMS / sizeof ATOMS[0])];
                size_t l = strlen(a);
                if (at + l > big) l = big - at;
                memcpy(t + at, a, l);
                at += l;
            }
        } else {
            for (; at < big; at++) t[at] = "ab"[(at / 3) & 1];          /* aaabbbaaabbb... one word */
        }
        double t0 = colloq_now();
        int k = v->encode(v, t, big, out, (int)big, &err);
        double dt = colloq_now() - t0;
        CHECK(k > 0);
        if (dt > SPEED_BUDGET_S) { g_fail++; fprintf(stderr, "%s: 100 KB (case %d) took %.3f s\n", name, which, dt); }
        else printf("%s: 100 KB case %d: %d tokens in %.3f s\n", name, which, k, dt);
    }
    free(t);
    free(out);
    tok_spans_free(&sp);
    free(rm.slot);
    tok_bpe_pre_free(pre);
    colloq_vocab_free(v);
    gguf_close(f);
}

static int test_vocabs(const char *dir) {
    static const struct { const char *name; bool bos; } V[] = {
        { "gpt-2", false }, { "deepseek-coder", true }, { "deepseek-llm", true }, { "falcon", false },
        { "mpt", false }, { "refact", false }, { "starcoder", false }, { "gpt-neox", false },
    };
    for (size_t i = 0; i < sizeof V / sizeof V[0]; i++) test_one_vocab(dir, V[i].name, V[i].bos);
    return 0;
}

/* baichuan ("llama" model, no golden files): loads, round-trips ordinary text */
static int test_spm(const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/ggml-vocab-baichuan.gguf", dir);
    colloq_err err = {{0}};
    gguf_file *f = NULL;
    colloq_vocab *v = NULL;
    if (gguf_open(path, &f, &err) || colloq_vocab_load(f, &v, &err)) {
        fprintf(stderr, "baichuan: %s\n", err.msg);
        gguf_close(f);
        return 1;
    }
    static const char *const texts[] = {
        "Hello world", "  leading spaces and\ttabs\n", "\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c",
        "mixed 123 \xf0\x9f\xa6\x99 text", "x",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        colloq_token ids[256];
        char back[512];
        int k = tokenize(v, texts[i], strlen(texts[i]), ids, 256);
        CHECK(k > 0 && k <= 256);
        int m = colloq_vocab_detokenize(v, ids, k, true, false, back, sizeof back);
        if (m != (int)strlen(texts[i]) || memcmp(back, texts[i], (size_t)m)) {
            g_fail++;
            fprintf(stderr, "baichuan: round trip of \"%s\" gave \"%.*s\"\n", texts[i], m > 0 ? m : 0, back);
        }
    }
    colloq_vocab_free(v);
    gguf_close(f);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: test_bpe synth DIR | vocab VOCABDIR | spm VOCABDIR\n");
        return 2;
    }
    int rc;
    if (!strcmp(argv[1], "synth")) {
        rc = test_synth(argv[2]);
    } else {
        struct stat st;
        if (stat(argv[2], &st) != 0) {
            printf("test_bpe: %s absent (shared test data) - skipped\n", argv[2]);
            return 77;
        }
        rc = !strcmp(argv[1], "vocab") ? test_vocabs(argv[2]) : test_spm(argv[2]);
    }
    if (rc || g_fail) { fprintf(stderr, "%d check(s) failed\n", g_fail); return 1; }
    printf("bpe %s tests passed\n", argv[1]);
    return 0;
}
