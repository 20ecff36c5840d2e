/*
 * test_bpe_pre.c - tests of the byte-level BPE pre-tokenizers (src/tok_bpe_pre.c):
 * hand-checked splits for each family, bytes that are not UTF-8, every table
 * name compiles, chunk coverage on random bytes, and speed on 100 KB.
 *   test_bpe_pre              run the tests
 *   test_bpe_pre split NAME   read records "<len>\n<bytes>" from stdin, print each
 *                             record's chunk lengths on one line (test_bpe_qwen2.py)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tok_bpe_pre.h"

static int g_fail;
#define CHECK(c) do {                                                             \
        if (!(c)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
            g_fail++;                                                             \
        }                                                                         \
    } while (0)

static void print_escaped(FILE *f, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') fputc(c, f);
        else fprintf(f, "\\x%02x", c);
    }
}

/* Split text with pre-tokenizer name and compare with the NULL-terminated list want. */
static void expect(const char *name, const char *text, const char *const *want) {
    tok_bpe_pre *p = NULL;
    colloq_err err = {{0}};
    int rc = tok_bpe_pre_new(name, &p, &err);
    CHECK(rc == 0);
    if (rc) { fprintf(stderr, "  %s: %s\n", name, err.msg); return; }
    tok_spans sp = {0};
    size_t len = strlen(text);
    rc = tok_bpe_pre_split(p, text, len, &sp, &err);
    CHECK(rc == 0);
    size_t nw = 0;
    while (want[nw]) nw++;
    bool ok = rc == 0 && sp.n == nw;
    for (size_t i = 0; ok && i < nw; i++)
        ok = sp.v[i].len == strlen(want[i]) && !memcmp(text + sp.v[i].off, want[i], sp.v[i].len);
    if (!ok) {
        g_fail++;
        fprintf(stderr, "split mismatch for %s on \"", name);
        print_escaped(stderr, text, len);
        fprintf(stderr, "\"\n  got: ");
        for (size_t i = 0; i < sp.n; i++) {
            fputc('[', stderr); print_escaped(stderr, text + sp.v[i].off, sp.v[i].len); fputc(']', stderr);
        }
        fprintf(stderr, "\n  want:");
        for (size_t i = 0; i < nw; i++) {
            fputc('[', stderr); print_escaped(stderr, want[i], strlen(want[i])); fputc(']', stderr);
        }
        fputc('\n', stderr);
    }
    tok_spans_free(&sp);
    tok_bpe_pre_free(p);
}

#define E(name, text, ...) expect(name, text, (const char *const[]){ __VA_ARGS__, NULL })

static void test_families(void) {
    /* GPT-2: contractions, optional leading space, whitespace runs leave their last
     * space to the next word. */
    E("gpt-2", "Hello world", "Hello", " world");
    E("gpt-2", "I've 2 cats!!", "I", "'ve", " 2", " cats", "!!");
    E("gpt-2", "a  b", "a", " ", " b");
    E("gpt-2", "x\n\ny", "x", "\n", "\n", "y");
    E("gpt-2", "F\xc3\xbchrer 2024", "F\xc3\xbchrer", " 2024");
    E("gpt-2", "I'M", "I", "'", "M");                       /* case-sensitive contractions */
    E("mpt", "don't", "don", "'t");
    expect("gpt-2", "", (const char *const[]){ NULL });
    /* Qwen2: case-insensitive contractions, one chunk per digit, newlines attached. */
    E("qwen2", "abc 12345", "abc", " ", "1", "2", "3", "4", "5");
    E("qwen2", "Hello, y'all!", "Hello", ",", " y", "'all", "!");
    E("qwen2", "I'M here", "I", "'M", " here");
    E("qwen2", "x;\n\ny", "x", ";\n\n", "y");
    E("qwen2", "  \n  z", "  \n", " ", " z");
    E("deepseek-r1-qwen", "\xef\xbc\x93\xd9\xa3", "\xef\xbc\x93", "\xd9\xa3");  /* fullwidth 3, Arabic 3 */
    /* Llama 3: digits in groups of three. */
    E("llama-bpe", "12345 x", "123", "45", " x");
    /* DeepSeek coder: newlines, letters, punctuation, CJK, single digits. */
    E("deepseek-coder", "ab12\ncd", "ab", "1", "2", "\n", "cd");
    E("deepseek-coder", "x, \xe4\xb8\x96\xe7\x95\x8c", "x", ",", " ", "\xe4\xb8\x96\xe7\x95\x8c");
    /* DeepSeek LLM: listed letters, CJK runs, digit runs. */
    E("deepseek-llm", "Hello \xe4\xb8\x96\xe7\x95\x8c 123", "Hello", " ", "\xe4\xb8\x96\xe7\x95\x8c", " ", "123");
    E("deepseek-llm", "x  ", "x", "  ");
    /* Falcon: punctuation runs first, then GPT-2, then digit triples. */
    E("falcon", "Hello, world!!", "Hello", ",", " world", "!!");
    E("falcon", "12345 $x", "123", "45", " ", "$", "x");
    /* StarCoder / Refact: digits one by one, then GPT-2. */
    E("starcoder", "x=42", "x", "=", "4", "2");
    E("refact", " 7up", " ", "7", "up");
    /* BLOOM: split at whitespace and . , ! ? ( ) | */
    E("bloom", "Hello, world.", "Hello", ",", " world", ".");
    /* Tekken / GPT-4o: camelCase words split. */
    E("tekken", "helloWorld", "hello", "World");
    E("gpt-4o", "HTTPServer's 1234", "HTTPServer's", " ", "123", "4");
    /* DeepSeek V3: digit triples, CJK/kana runs, then words with one leading mark. */
    E("deepseek-v3", "Hello\xe4\xb8\x96\xe7\x95\x8c" "12345 .x", "Hello", "\xe4\xb8\x96\xe7\x95\x8c", "123", "45",
      " .", "x");
    E("viking", "abc 123", "abc", " ", "1", "2", "3");
}

static void test_invalid_utf8(void) {
    /* Bytes that are not UTF-8 form their own chunk (a maximal run) and the valid
     * text around them is split as usual. */
    E("gpt-2", "ab\xff\xfe" "cd", "ab", "\xff\xfe", "cd");
    E("gpt-2", "a \xe4\xbd", "a", " ", "\xe4\xbd");                  /* truncated character */
    E("qwen2", "\xc0\xaf 1", "\xc0\xaf", " ", "1");                   /* overlong '/' */
    E("gpt-2", "\xed\xa0\x80x", "\xed\xa0\x80", "x");                 /* surrogate */
}

static void test_names(void) {
    int n = 0;
    for (size_t i = 0; tok_bpe_pre_name_at(i); i++, n++) {
        tok_bpe_pre *p = NULL;
        colloq_err err = {{0}};
        int rc = tok_bpe_pre_new(tok_bpe_pre_name_at(i), &p, &err);
        if (rc) fprintf(stderr, "pre-tokenizer %s: %s\n", tok_bpe_pre_name_at(i), err.msg);
        CHECK(rc == 0);
        tok_bpe_pre_free(p);
    }
    CHECK(n >= 40);
    tok_bpe_pre *p = NULL;
    colloq_err err = {{0}};
    CHECK(tok_bpe_pre_new("no-such-pre", &p, &err) == COLLOQ_ERR_UNSUPPORTED);
    CHECK(p == NULL);
    CHECK(strstr(err.msg, "no-such-pre") != NULL);
    CHECK(tok_bpe_pre_new(NULL, &p, &err) == 0);
    CHECK(p && !strcmp(tok_bpe_pre_kind(p), "gpt-2") && !tok_bpe_pre_ignore_merges(p));
    tok_bpe_pre_free(p);
    CHECK(tok_bpe_pre_new("llama3", &p, &err) == 0);
    CHECK(p && tok_bpe_pre_ignore_merges(p) && tok_bpe_pre_default_add_bos(p));
    tok_bpe_pre_free(p);
}

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

/* Random bytes (biased towards text) through every family: chunks must be
 * consecutive, non-empty and cover the input exactly. */
static void test_coverage(void) {
    static const char *const pieces[] = { "a", "Z", " ", "  ", "\n", "\r\n", "\t", "'s", "'", "7", "42",
        ".", ",!", "\xc3\xbc", "\xe4\xb8\x96", "\xf0\x9f\xa6\x99", "\xe2\x80\x8d", "\xe3\x80\x80",
        "\xd9\xa3", "\xff", "\xe4\xbd", "\x80", "\xc2\x85", "\x00" };
    char buf[512];
    for (size_t k = 0; tok_bpe_pre_name_at(k); k++) {
        tok_bpe_pre *p = NULL;
        colloq_err err = {{0}};
        if (tok_bpe_pre_new(tok_bpe_pre_name_at(k), &p, &err)) { g_fail++; continue; }
        tok_spans sp = {0};
        for (int iter = 0; iter < 60; iter++) {
            size_t n = 0, want = rnd() % 200;
            while (n < want) {
                const char *pc = pieces[rnd() % (sizeof pieces / sizeof pieces[0])];
                size_t l = pc[0] ? strlen(pc) : 1;
                if (n + l > sizeof buf) break;
                memcpy(buf + n, pc, l);
                n += l;
            }
            if (tok_bpe_pre_split(p, buf, n, &sp, &err)) { g_fail++; fprintf(stderr, "%s\n", err.msg); continue; }
            size_t at = 0;
            bool ok = true;
            for (size_t i = 0; i < sp.n; i++) {
                ok = ok && sp.v[i].off == at && sp.v[i].len > 0;
                at += sp.v[i].len;
            }
            ok = ok && at == n;
            if (!ok) { g_fail++; fprintf(stderr, "coverage broken for %s\n", tok_bpe_pre_name_at(k)); }
        }
        tok_spans_free(&sp);
        tok_bpe_pre_free(p);
    }
}

/* 100 KB of mixed text, and 100 KB of one long run, per family: fast and linear. */
static void test_speed(void) {
    size_t n = 100 * 1024;
    char *text = malloc(n), *run = malloc(n);
    static const char *const words[] = { "the ", "quick ", "brown ", "fox's ", "1234 ", "\xc3\xbc" "ber ",
        "\xe4\xb8\x96\xe7\x95\x8c ", "!? ", "\n", "  ", "(x) " };
    size_t at = 0;
    while (at < n) {
        const char *w = words[rnd() % (sizeof words / sizeof words[0])];
        size_t l = strlen(w);
        if (at + l > n) l = n - at;
        memcpy(text + at, w, l);
        at += l;
    }
    static const char *const names[] = { "gpt-2", "qwen2", "llama3", "deepseek-llm", "deepseek-coder",
                                         "falcon", "starcoder", "tekken", "gpt-4o", "deepseek-v3",
                                         "bloom" };
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        tok_bpe_pre *p = NULL;
        colloq_err err = {{0}};
        if (tok_bpe_pre_new(names[k], &p, &err)) { g_fail++; continue; }
        tok_spans sp = {0};
        for (int which = 0; which < 3; which++) {
            const char *t = text;
            if (which) { memset(run, which == 1 ? 'a' : ' ', n); t = run; }
            double t0 = colloq_now();
            int rc = tok_bpe_pre_split(p, t, n, &sp, &err);
            double dt = colloq_now() - t0;
            CHECK(rc == 0);
            if (dt > 0.5) { g_fail++; fprintf(stderr, "%s: 100 KB (case %d) split in %.3f s\n", names[k], which, dt); }
        }
        tok_spans_free(&sp);
        tok_bpe_pre_free(p);
    }
    free(text);
    free(run);
}

/* stdin records "<len>\n<bytes>" -> one line of chunk lengths per record */
static int split_mode(const char *name) {
    tok_bpe_pre *p = NULL;
    colloq_err err = {{0}};
    if (tok_bpe_pre_new(name, &p, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    tok_spans sp = {0};
    size_t len;
    char *buf = NULL;
    while (scanf("%zu", &len) == 1) {
        if (getchar() != '\n' || len > (1u << 26)) { fprintf(stderr, "bad record\n"); return 1; }
        char *nb = realloc(buf, len + 1);
        if (!nb) return 1;
        buf = nb;
        if (fread(buf, 1, len, stdin) != len) { fprintf(stderr, "short record\n"); return 1; }
        if (tok_bpe_pre_split(p, buf, len, &sp, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
        for (size_t i = 0; i < sp.n; i++) printf(i ? " %zu" : "%zu", sp.v[i].len);
        putchar('\n');
    }
    free(buf);
    tok_spans_free(&sp);
    tok_bpe_pre_free(p);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "split")) return split_mode(argv[2]);
    test_families();
    test_invalid_utf8();
    test_names();
    test_coverage();
    test_speed();
    if (g_fail) { fprintf(stderr, "%d check(s) failed\n", g_fail); return 1; }
    printf("bpe pre-tokenizer tests passed\n");
    return 0;
}
