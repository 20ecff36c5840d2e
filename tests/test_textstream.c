/*
 * test_textstream - streaming text (src/textstream.c): CJK and emoji split across byte
 * tokens never produce broken UTF-8, invalid bytes become U+FFFD the way Python's
 * decode(errors="replace") does, a stop string split across tokens never leaks a
 * partial prefix, a held-back prefix that is not a stop string is emitted, control
 * tokens that are stop strings stop, and a seeded fuzz of all of it.
 *
 *   test_textstream TMPDIR SHARED_DIR      (exits 77 when SHARED_DIR lacks the vocabulary)
 */
#include "chat_testutil.h"
#include "model.h"
#include "textstream.h"

static bool valid_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        int k = colloq_utf8_seq_len((const unsigned char *)s + i, n - i);
        if (k <= 0) return false;
        i += (size_t)k;
    }
    return true;
}

typedef struct { char buf[4096]; size_t n; } acc;

static void acc_add(acc *a, const char *s, size_t n) {
    if (a->n + n < sizeof a->buf) { memcpy(a->buf + a->n, s, n); a->n += n; }
    a->buf[a->n] = 0;
}

/* push_text one chunk; checks the chunk is whole UTF-8; returns stopped */
static bool push_chunk(colloq_textstream *ts, const char *s, size_t n, acc *a, const char *what) {
    const char *out = NULL;
    size_t len = 0;
    bool stopped = false;
    int rc = colloq_textstream_push_text(ts, s, n, &out, &len, &stopped);
    CHECK(rc == COLLOQ_OK, "%s: push_text rc %d", what, rc);
    CHECK(valid_utf8(out, len), "%s: emitted broken UTF-8 (%zu bytes)", what, len);
    acc_add(a, out, len);
    return stopped;
}

static void flush_into(colloq_textstream *ts, acc *a, const char *what) {
    const char *out = NULL;
    size_t len = 0;
    CHECK(colloq_textstream_flush(ts, &out, &len) == COLLOQ_OK, "%s: flush", what);
    CHECK(valid_utf8(out, len), "%s: flush emitted broken UTF-8", what);
    acc_add(a, out, len);
}

/* ---- byte tokens: every UTF-8 byte is its own token (<0xNN>) ---- */

static void test_byte_tokens(colloq_model *m) {
    static const char *const texts[] = {
        "你好，世界", "日本語のテキスト", "한국어", "😀👍🏽🇫🇷", "a你b😀c\xc3\xa9", "𝄞 music 𝄞",
    };
    for (size_t ti = 0; ti < sizeof texts / sizeof texts[0]; ti++) {
        const char *s = texts[ti];
        colloq_textstream *ts = colloq_textstream_new(m, NULL, 0, false);
        CHECK(ts != NULL, "textstream_new");
        if (!ts) return;
        acc a = { .n = 0 };
        size_t n = strlen(s);
        for (size_t i = 0; i < n; i++) {
            char name[16];
            snprintf(name, sizeof name, "<0x%02X>", (unsigned char)s[i]);
            colloq_token t = colloq_vocab_find(m->vocab, name);
            CHECK(t >= 0, "no byte token %s", name);
            const char *out = NULL;
            size_t len = 0;
            bool stopped = true;
            CHECK(colloq_textstream_push(ts, t, &out, &len, &stopped) == COLLOQ_OK, "push");
            CHECK(!stopped, "stopped without stop strings");
            CHECK(valid_utf8(out, len), "'%s': byte %zu: broken UTF-8 emitted", s, i);
            /* nothing is shown until a character is complete */
            int k = colloq_utf8_seq_len((const unsigned char *)s + a.n, n - a.n);
            if (i + 1 < a.n + (size_t)k) CHECK(len == 0, "'%s': byte %zu: %zu bytes of a partial character shown", s, i, len);
            acc_add(&a, out, len);
        }
        flush_into(ts, &a, s);
        CHECK(a.n == n && !memcmp(a.buf, s, n), "byte tokens of '%s' streamed as '%s'", s, a.buf);
        size_t tl = 0;
        const char *all = colloq_textstream_text(ts, &tl);
        CHECK(tl == n && !strcmp(all, s), "textstream_text of '%s' is '%s'", s, all);
        colloq_textstream_free(ts);
    }
}

/* ---- invalid input becomes U+FFFD per maximal invalid subpart ---- */

static void test_invalid(void) {
#define FFFD "\xef\xbf\xbd"
    static const struct { const char *in; const char *want; } cases[] = {
        { "\xe4\xbd" "A", FFFD "A" },
        { "\x80", FFFD },
        { "a\xf0\x9f\x98", "a" FFFD },                           /* cut at the end: flush */
        { "\xed\xa0\x80", FFFD FFFD FFFD },                     /* a surrogate */
        { "\xc0\xaf", FFFD FFFD },                              /* overlong */
        { "\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD },            /* above U+10FFFF */
        { "\xe4\xbd\xe5\xa5\xbd", FFFD "\xe5\xa5\xbd" },
        { "x\xff" "y", "x" FFFD "y" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int split = 0; split < 2; split++) {   /* whole, then one byte per push */
            colloq_textstream *ts = colloq_textstream_new(NULL, NULL, 0, false);
            acc a = { .n = 0 };
            size_t n = strlen(cases[i].in);
            if (split) for (size_t k = 0; k < n; k++) push_chunk(ts, cases[i].in + k, 1, &a, "invalid");
            else push_chunk(ts, cases[i].in, n, &a, "invalid");
            flush_into(ts, &a, "invalid");
            CHECK(!strcmp(a.buf, cases[i].want), "invalid case %zu (split %d): got %zu bytes", i, split, a.n);
            colloq_textstream_free(ts);
        }
    }
#undef FFFD
}

/* ---- stop strings ---- */

typedef struct {
    const char *stops[3];
    const char *chunks[8];
    const char *emitted[8];   /* what each push must emit ("-" = push not reached) */
    bool stop_at_end;
    const char *flushed;
} stop_case;

static void test_stops(void) {
    static const stop_case cases[] = {
        /* split across pushes: nothing of it is shown */
        { { "<|im_end|>" }, { "Hello", "<|im", "_en", "d|>tail", "more" }, { "Hello", "", "", "", "" }, true, "" },
        /* a held prefix that turns out to be text is emitted */
        { { "<|im_end|>" }, { "x<|im", "portant" }, { "x", "<|important" }, false, "" },
        /* a held prefix at the end of generation is emitted by flush */
        { { "<|im_end|>" }, { "y<|im_" }, { "y" }, false, "<|im_" },
        /* the newline in front of a stop string is part of it */
        { { "\n### User:" }, { "Answer.\n", "###", " User:", "ignored" }, { "Answer.", "", "", "" }, true, "" },
        /* a newline that is not followed by the stop string is emitted */
        { { "\n### User:" }, { "One\n", "Two" }, { "One", "\nTwo" }, false, "" },
        /* two stop strings: the earliest start wins */
        { { "END", "D" }, { "xEND" }, { "x" }, true, "" },
        /* a stop string inside one chunk */
        { { "STOP" }, { "abcSTOPdef" }, { "abc" }, true, "" },
        /* a multi-byte stop string split inside its characters */
        { { "停止" }, { "ab\xe5", "\x81\x9c\xe6", "\xad\xa2zz" }, { "ab", "", "" }, true, "" },
        /* a partial multi-byte stop that is then something else */
        { { "停止" }, { "\xe5\x81", "\x9c", "了" }, { "", "", "停了" }, false, "" },
        /* an empty stop string is ignored */
        { { "" }, { "text" }, { "text" }, false, "" },
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const stop_case *c = &cases[ci];
        int ns = 0;
        while (ns < 3 && c->stops[ns]) ns++;
        colloq_textstream *ts = colloq_textstream_new(NULL, c->stops, ns, false);
        acc a = { .n = 0 };
        bool stopped = false;
        for (int k = 0; k < 8 && c->chunks[k]; k++) {
            size_t before = a.n;
            bool s = push_chunk(ts, c->chunks[k], strlen(c->chunks[k]), &a, "stops");
            const char *want = c->emitted[k] ? c->emitted[k] : "";
            CHECK(a.n - before == strlen(want) && !memcmp(a.buf + before, want, a.n - before),
                  "stop case %zu push %d: emitted '%.*s', want '%s'", ci, k, (int)(a.n - before), a.buf + before, want);
            stopped = s;
        }
        CHECK(stopped == c->stop_at_end, "stop case %zu: stopped %d", ci, stopped);
        size_t before = a.n;
        flush_into(ts, &a, "stops");
        CHECK(!strcmp(a.buf + before, c->flushed), "stop case %zu: flush emitted '%s', want '%s'", ci, a.buf + before,
              c->flushed);
        /* reset starts a new answer */
        colloq_textstream_reset(ts);
        acc b = { .n = 0 };
        CHECK(!push_chunk(ts, "fresh", 5, &b, "reset") && !strcmp(b.buf, "fresh"), "stop case %zu: after reset", ci);
        colloq_textstream_free(ts);
    }
}

/* A control token whose text is a stop string stops even though it prints as nothing. */
static void test_stop_token(colloq_model *m) {
    colloq_token eos = colloq_token_eos(m);
    const char *stops[] = { "</s>" };
    colloq_textstream *ts = colloq_textstream_new(m, stops, 1, false);
    acc a = { .n = 0 };
    push_chunk(ts, "ok </", 5, &a, "stop token");
    CHECK(!strcmp(a.buf, "ok "), "held '</': emitted '%s'", a.buf);
    const char *out;
    size_t len;
    bool stopped = false;
    CHECK(colloq_textstream_push(ts, eos, &out, &len, &stopped) == COLLOQ_OK, "push eos");
    acc_add(&a, out, len);
    CHECK(stopped, "the </s> control token did not stop");
    CHECK(!strcmp(a.buf, "ok </"), "text before the stop token: '%s'", a.buf);
    colloq_textstream_free(ts);

    /* render_special: the token's text is matched as text */
    ts = colloq_textstream_new(m, stops, 1, true);
    a.n = 0;
    push_chunk(ts, "hi", 2, &a, "render special");
    CHECK(colloq_textstream_push(ts, eos, &out, &len, &stopped) == COLLOQ_OK && stopped, "render_special stop");
    acc_add(&a, out, len);
    CHECK(!strcmp(a.buf, "hi"), "render_special: '%s'", a.buf);
    colloq_textstream_free(ts);

    /* without the stop, render_special shows the token and a plain stream shows nothing */
    ts = colloq_textstream_new(m, NULL, 0, true);
    a.n = 0;
    CHECK(colloq_textstream_push(ts, eos, &out, &len, &stopped) == COLLOQ_OK && !stopped, "push");
    acc_add(&a, out, len);
    CHECK(!strcmp(a.buf, "</s>"), "render_special piece '%s'", a.buf);
    colloq_textstream_free(ts);
}

/* ---- seeded fuzz ---- */

static uint64_t rng_state = 88172645463325252ull;
static uint32_t rnd(uint32_t n) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static void test_fuzz(void) {
    static const char *const alphabet[] = { "a", "b", "<", "|", "\n", "é", "你", "😀", "\xe5\x81\x9c" };
    static const char *const stop_pool[] = { "<|", "你😀", "a\nb", "||<", "😀😀", "\xe5\x81\x9c<" };
    for (int it = 0; it < 3000; it++) {
        char text[256];
        size_t n = 0;
        int len = 1 + (int)rnd(40);
        for (int i = 0; i < len; i++) {
            const char *c = alphabet[rnd(sizeof alphabet / sizeof alphabet[0])];
            size_t cl = strlen(c);
            if (n + cl >= sizeof text) break;
            memcpy(text + n, c, cl);
            n += cl;
        }
        text[n] = 0;
        const char *stop = stop_pool[rnd(sizeof stop_pool / sizeof stop_pool[0])];
        char *hit = strstr(text, stop);
        size_t want = hit ? (size_t)(hit - text) : n;
        colloq_textstream *ts = colloq_textstream_new(NULL, &stop, 1, false);
        acc a = { .n = 0 };
        bool stopped = false;
        for (size_t i = 0; i < n && !stopped;) {
            size_t k = 1 + rnd(5);
            if (k > n - i) k = n - i;
            stopped = push_chunk(ts, text + i, k, &a, "fuzz");
            i += k;
            /* what is shown is always a prefix of the answer before the stop */
            CHECK(a.n <= want && !memcmp(a.buf, text, a.n), "fuzz %d: shown text is not a prefix of the answer", it);
        }
        flush_into(ts, &a, "fuzz");
        CHECK(stopped == (hit != NULL), "fuzz %d: stopped %d, stop present %d", it, stopped, hit != NULL);
        CHECK(a.n == want && !memcmp(a.buf, text, want), "fuzz %d: streamed %zu bytes, want %zu", it, a.n, want);
        colloq_textstream_free(ts);
        if (failures > 20) return;
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: test_textstream TMPDIR SHARED_DIR\n");
        return 2;
    }
    test_invalid();
    test_stops();
    test_fuzz();
    char vocab[1024];
    shared_file(argv[2], "testdata/vocab/ggml-vocab-llama-spm.gguf", vocab, sizeof vocab);
    colloq_model *m = tiny_model(argv[1], "textstream.gguf", vocab, 3);
    if (m) {
        test_byte_tokens(m);
        test_stop_token(m);
        colloq_model_free(m);
    }
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("textstream: all passed\n");
    return 0;
}
