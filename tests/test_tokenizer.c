/*
 * test_tokenizer.c - the vocabulary loader and the SentencePiece tokenizer on small
 * hand-built vocabularies (merge order, ties, byte and unknown fallback, unused pieces,
 * special tokens, BOS/EOS/end-of-generation, decoding, output caps, a long input),
 * malformed tokenizer metadata, failing allocations, and the shared Llama/Phi-3
 * vocabularies when present.
 *     test_tokenizer TMPDIR [SHARED_DIR]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "tok_internal.h"

static int failures;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
                              fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

#define SP "\xe2\x96\x81"   /* U+2581 */

static const char *tmpdir;
static int file_no;

/* ---- building vocabulary files ---- */

typedef struct { const char *text; float score; int type; } tk;

/* The synthetic SentencePiece vocabulary: <unk> <s> </s>, 256 byte tokens, then pieces. */
static const tk pieces[] = {
    { SP, -5, CTOK_NORMAL }, { "a", -6, CTOK_NORMAL }, { "b", -6, CTOK_NORMAL }, { "c", -6, CTOK_NORMAL },
    { "x", -6, CTOK_NORMAL }, { "y", -6, CTOK_NORMAL }, { "z", -6, CTOK_NORMAL }, { "<", -6, CTOK_NORMAL },
    { "s", -6, CTOK_NORMAL }, { ">", -6, CTOK_NORMAL }, { "h", -6, CTOK_NORMAL }, { "i", -6, CTOK_NORMAL },
    { "ab", -1, CTOK_NORMAL }, { "bc", -2, CTOK_NORMAL }, { "aa", -4, CTOK_NORMAL }, { "aaaa", -4.5f, CTOK_NORMAL },
    { "xy", 0, CTOK_UNUSED }, { "xyz", -1, CTOK_NORMAL }, { "<s", -1, CTOK_NORMAL }, { "hi", -1, CTOK_NORMAL },
    { "<|u|>", 0, CTOK_USER_DEFINED }, { "<|c|>", 0, CTOK_CONTROL }, { "<|im_end|>", 0, CTOK_CONTROL },
    { "@@", 0, CTOK_USER_DEFINED }, { "@@@", 0, CTOK_USER_DEFINED },
};
enum { N_PIECES = sizeof pieces / sizeof pieces[0], FIRST_PIECE = 3 + 256, N_SYN = FIRST_PIECE + N_PIECES };

static char byte_names[256][8];
static const char *syn_text[N_SYN];
static float syn_score[N_SYN];
static int32_t syn_type[N_SYN];

static void build_synthetic(void) {
    syn_text[0] = "<unk>"; syn_type[0] = CTOK_UNKNOWN;
    syn_text[1] = "<s>";   syn_type[1] = CTOK_CONTROL;
    syn_text[2] = "</s>";  syn_type[2] = CTOK_CONTROL;
    for (int b = 0; b < 256; b++) {
        snprintf(byte_names[b], sizeof byte_names[b], "<0x%02X>", b);
        syn_text[3 + b] = byte_names[b];
        syn_type[3 + b] = CTOK_BYTE;
    }
    for (int i = 0; i < N_PIECES; i++) {
        syn_text[FIRST_PIECE + i] = pieces[i].text;
        syn_score[FIRST_PIECE + i] = pieces[i].score;
        syn_type[FIRST_PIECE + i] = pieces[i].type;
    }
}

static colloq_token syn_id(const char *text) {
    for (int i = 0; i < N_SYN; i++)
        if (!strcmp(syn_text[i], text)) return i;
    fprintf(stderr, "test bug: no token %s\n", text);
    exit(1);
}

/* A writer holding model, tokens, scores and types for n tokens. */
static gguf_writer *writer_for(const char *model, const char *const *text, const float *score,
                               const int32_t *type, int n) {
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, "general.architecture", "llama");
    if (model) gguf_writer_set_str(w, "tokenizer.ggml.model", model);
    if (text) gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", text, (uint64_t)n);
    if (score) gguf_writer_set_arr_num(w, "tokenizer.ggml.scores", GGUF_T_FLOAT32, score, (uint64_t)n);
    if (type) gguf_writer_set_arr_num(w, "tokenizer.ggml.token_type", GGUF_T_INT32, type, (uint64_t)n);
    return w;
}

static gguf_writer *syn_writer(void) {
    return writer_for("llama", syn_text, syn_score, syn_type, N_SYN);
}

/* Write w (freed), open it and load the vocabulary: the status, *out on success. */
static int load_from(gguf_writer *w, colloq_vocab **out, colloq_err *err) {
    char path[512];
    snprintf(path, sizeof path, "%s/vocab%d.gguf", tmpdir, file_no++);
    *out = NULL;
    int rc = gguf_writer_write(w, path, 0, err);
    gguf_writer_free(w);
    if (rc) { fprintf(stderr, "test: cannot write %s: %s\n", path, err->msg); exit(1); }
    gguf_file *f = NULL;
    rc = gguf_open(path, &f, err);
    if (rc) { fprintf(stderr, "test: cannot open %s: %s\n", path, err->msg); exit(1); }
    rc = colloq_vocab_load(f, out, err);
    gguf_close(f);                       /* the vocabulary keeps copies of what it needs */
    unlink(path);
    return rc;
}

static colloq_vocab *must_load(gguf_writer *w) {
    colloq_vocab *v;
    colloq_err err = { "" };
    int rc = load_from(w, &v, &err);
    if (rc) { fprintf(stderr, "test: vocabulary did not load: %s\n", err.msg); exit(1); }
    return v;
}

/* ---- tokenizing helpers ---- */

static int tok(const colloq_vocab *v, const char *text, bool bos, bool special, colloq_token *ids, int cap) {
    colloq_err err = { "" };
    int n = colloq_vocab_tokenize(v, text, strlen(text), bos, special, ids, cap, &err);
    if (n < 0) fprintf(stderr, "  tokenize(\"%s\") failed: %s\n", text, err.msg);
    return n;
}

/* Tokenize and compare with the expected texts of the tokens (NULL-terminated list). */
static bool tok_is(const colloq_vocab *v, const char *text, bool bos, bool special, const char *const *want) {
    colloq_token ids[64];
    int n = tok(v, text, bos, special, ids, 64);
    int nw = 0;
    while (want[nw]) nw++;
    bool ok = n == nw;
    for (int i = 0; ok && i < n; i++) ok = !strcmp(colloq_vocab_text(v, ids[i]), want[i]);
    if (!ok) {
        fprintf(stderr, "  \"%s\" gave", text);
        for (int i = 0; i < n && i < 64; i++) fprintf(stderr, " [%s]", colloq_vocab_text(v, ids[i]));
        fprintf(stderr, "\n  want      ");
        for (int i = 0; i < nw; i++) fprintf(stderr, " [%s]", want[i]);
        fprintf(stderr, "\n");
    }
    return ok;
}
#define TOKS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static bool piece_is(const colloq_vocab *v, colloq_token t, bool special, const char *want) {
    char buf[64];
    int n = colloq_vocab_piece(v, t, special, buf, sizeof buf);
    return n == (int)strlen(want) && !memcmp(buf, want, (size_t)n);
}

/* ---- tests ---- */

static void test_merges(void) {
    colloq_vocab *v = must_load(syn_writer());
    CHECK(!strcmp(colloq_vocab_model_name(v), "llama"), "model name");
    CHECK(colloq_vocab_n(v) == N_SYN, "n = %d", colloq_vocab_n(v));
    /* highest score first: ab (-1) beats bc (-2), and "abc" is no piece */
    CHECK(tok_is(v, "abc", false, false, TOKS(SP, "ab", "c")), "score order");
    CHECK(tok_is(v, "bc", false, false, TOKS(SP, "bc")), "bc");
    /* equal scores: the leftmost pair first */
    CHECK(tok_is(v, "aaa", false, false, TOKS(SP, "aa", "a")), "tie goes left");
    CHECK(tok_is(v, "aaaaa", false, false, TOKS(SP, "aaaa", "a")), "aaaaa");
    /* spaces become U+2581; the prefix space comes first */
    CHECK(tok_is(v, " ab", false, false, TOKS(SP, SP, "ab")), "leading space");
    CHECK(tok_is(v, "a b", false, false, TOKS(SP, "a", SP, "b")), "inner space");
    CHECK(tok_is(v, "", false, false, TOKS(NULL)), "empty");
    /* unused pieces take part in merges but are split back */
    CHECK(tok_is(v, "xyz", false, false, TOKS(SP, "xyz")), "through unused");
    CHECK(tok_is(v, "xy", false, false, TOKS(SP, "x", "y")), "unused split");
    CHECK(tok_is(v, "xyx", false, false, TOKS(SP, "x", "y", "x")), "unused split 2");
    /* control pieces are never made out of text */
    CHECK(tok_is(v, "<s>", false, false, TOKS(SP, "<s", ">")), "no merge into control");
    /* byte fallback: characters outside the vocabulary, invalid and truncated UTF-8 */
    CHECK(tok_is(v, "\xc3\xa9", false, false, TOKS(SP, "<0xC3>", "<0xA9>")), "byte fallback");
    CHECK(tok_is(v, "\xff", false, false, TOKS(SP, "<0xFF>")), "invalid byte");
    CHECK(tok_is(v, "\xe4" "a", false, false, TOKS(SP, "<0xE4>", "a")), "truncated sequence");
    CHECK(tok_is(v, "\xed\xa0\x80", false, false, TOKS(SP, "<0xED>", "<0xA0>", "<0x80>")), "surrogate bytes");
    /* text with NUL bytes is text */
    colloq_token ids[16];
    colloq_err err;
    int n = colloq_vocab_tokenize(v, "a\0b", 3, false, false, ids, 16, &err);
    CHECK(n == 4 && ids[2] == syn_id("<0x00>") && ids[3] == syn_id("b"), "NUL byte: n=%d", n);
    colloq_vocab_free(v);
}

static void test_specials(void) {
    colloq_vocab *v = must_load(syn_writer());
    /* control tokens only with parse_special; each text segment gets the space prefix */
    CHECK(tok_is(v, "<|c|>hi", false, true, TOKS("<|c|>", SP, "hi")), "control parsed");
    CHECK(tok_is(v, "hi<|c|>", false, true, TOKS(SP, "hi", "<|c|>")), "control at end");
    CHECK(tok_is(v, "<s>hi</s>", false, true, TOKS("<s>", SP, "hi", "</s>")), "bos/eos texts");
    CHECK(tok_is(v, "<s>", false, false, TOKS(SP, "<s", ">")), "not parsed without parse_special");
    CHECK(tok_is(v, "<unk>", false, true, TOKS("<unk>")), "unknown-type token parsed");
    /* user-defined tokens are split out of every text */
    CHECK(tok_is(v, "a<|u|>b", false, false, TOKS(SP, "a", "<|u|>", SP, "b")), "user-defined");
    CHECK(tok_is(v, "<|u|><|u|>", false, false, TOKS("<|u|>", "<|u|>")), "adjacent");
    /* longer texts win: @@@ before @@ */
    CHECK(tok_is(v, "@@@@", false, false, TOKS("@@@", SP, "<0x40>")), "longest first");
    CHECK(tok_is(v, "@@@@@", false, false, TOKS("@@@", "@@")), "longest then shorter");
    CHECK(tok_is(v, "@@", false, false, TOKS("@@")), "exact");
    colloq_vocab_free(v);
}

static void test_bos_eos_eog(void) {
    colloq_vocab *v = must_load(syn_writer());
    /* llama defaults: BOS by text, add_bos on, add_eos off */
    CHECK(colloq_vocab_bos(v) == 1 && colloq_vocab_eos(v) == 2, "bos %d eos %d", colloq_vocab_bos(v), colloq_vocab_eos(v));
    CHECK(colloq_vocab_add_bos(v) && !colloq_vocab_add_eos(v), "add_bos default");
    CHECK(tok_is(v, "hi", true, false, TOKS("<s>", SP, "hi")), "BOS added");
    CHECK(tok_is(v, "", true, false, TOKS("<s>")), "BOS alone");
    CHECK(colloq_vocab_is_eog(v, 2) && colloq_vocab_is_eog(v, syn_id("<|im_end|>")), "eog");
    CHECK(!colloq_vocab_is_eog(v, 1) && !colloq_vocab_is_eog(v, syn_id("<|c|>")) && !colloq_vocab_is_eog(v, -1), "not eog");
    CHECK(colloq_vocab_find(v, "ab") == syn_id("ab") && colloq_vocab_find(v, "abc") == -1, "find");
    CHECK(colloq_vocab_token_type(v, 3) == CTOK_BYTE && colloq_vocab_token_type(v, N_SYN) == 0, "types");
    colloq_vocab_free(v);

    gguf_writer *w = syn_writer();
    gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", false);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", true);
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)syn_id("a"));
    gguf_writer_set_u32(w, "tokenizer.ggml.eot_token_id", (uint32_t)syn_id("<|c|>"));
    gguf_writer_set_i32(w, "tokenizer.ggml.padding_token_id", -1);
    v = must_load(w);
    CHECK(colloq_vocab_bos(v) == syn_id("a") && !colloq_vocab_add_bos(v) && colloq_vocab_add_eos(v), "flags from file");
    CHECK(tok_is(v, "hi", true, false, TOKS(SP, "hi", "</s>")), "EOS added, no BOS");
    CHECK(tok_is(v, "hi", false, false, TOKS(SP, "hi")), "neither without add_bos");
    CHECK(colloq_vocab_is_eog(v, syn_id("<|c|>")), "eot is eog");
    CHECK(v->pad == -1, "negative pad id reads as none");
    colloq_vocab_free(v);

    w = syn_writer();
    gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", false);
    v = must_load(w);
    CHECK(tok_is(v, "ab", false, false, TOKS("ab")), "no space prefix");
    CHECK(tok_is(v, "<|c|>ab", false, true, TOKS("<|c|>", "ab")), "no prefix after special");
    colloq_vocab_free(v);
}

static void test_fallback_without_bytes(void) {
    const char *text[] = { "<unk>", SP, "a" };
    float score[] = { 0, -1, -1 };
    int32_t type[] = { CTOK_UNKNOWN, CTOK_NORMAL, CTOK_NORMAL };
    colloq_vocab *v = must_load(writer_for("llama", text, score, type, 3));
    CHECK(colloq_vocab_bos(v) == -1 && !colloq_vocab_add_bos(v), "no BOS token");
    CHECK(tok_is(v, "ab\xc3\xa9", true, false, TOKS(SP, "a", "<unk>", "<unk>")), "unk per character");
    CHECK(piece_is(v, 0, false, " \xe2\x81\x87 ") && piece_is(v, 0, true, "<unk>"), "unk piece");
    colloq_vocab_free(v);

    /* neither byte tokens nor unk: a clean error */
    const char *text2[] = { SP, "a" };
    v = must_load(writer_for("llama", text2, NULL, NULL, 2));
    colloq_token ids[8];
    colloq_err err = { "" };
    int n = colloq_vocab_tokenize(v, "ab", 2, false, false, ids, 8, &err);
    CHECK(n == COLLOQ_ERR_UNSUPPORTED && strstr(err.msg, "0x62"), "no fallback: %d %s", n, err.msg);
    CHECK(tok_is(v, "aa", false, false, TOKS(SP, "a", "a")), "still works where it can");
    colloq_vocab_free(v);
}

static void test_decode(void) {
    colloq_vocab *v = must_load(syn_writer());
    CHECK(piece_is(v, syn_id(SP), false, " "), "space mark");
    CHECK(piece_is(v, syn_id("ab"), false, "ab"), "normal");
    CHECK(piece_is(v, syn_id("<0x41>"), false, "A") && piece_is(v, syn_id("<0x0A>"), true, "\n"), "byte");
    CHECK(piece_is(v, 1, false, "") && piece_is(v, 1, true, "<s>"), "control");
    CHECK(piece_is(v, syn_id("<|u|>"), false, "<|u|>"), "user-defined");
    char buf[4] = "zzz";
    CHECK(colloq_vocab_piece(v, 1, true, buf, 2) == 3 && !memcmp(buf, "<sz", 3), "piece cap");
    CHECK(colloq_vocab_piece(v, 1, true, NULL, 0) == 3, "piece size query");
    CHECK(colloq_vocab_piece(v, -1, true, buf, 4) < 0 && colloq_vocab_piece(v, N_SYN, true, buf, 4) < 0, "bad id");

    /* detokenize inverts tokenize, with and without special parsing */
    const char *texts[] = { "abc", " ab  c ", "<|c|>hi<|u|> xy", "\xc3\xa9\xff", "<s>hi</s>", "@@@@@", "" };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        for (int special = 0; special < 2; special++) {
            colloq_token ids[64];
            char out[128];
            int n = tok(v, texts[i], false, special, ids, 64);
            int m = colloq_vocab_detokenize(v, ids, n, true, special, out, sizeof out);
            CHECK(m == (int)strlen(texts[i]) && !memcmp(out, texts[i], (size_t)m),
                  "round trip \"%s\" (special %d): got %d \"%.*s\"", texts[i], special, m, m > 0 ? m : 0, out);
        }
    }
    colloq_token ids[] = { 1, syn_id(SP), syn_id("ab") };
    char out[16];
    int m = colloq_vocab_detokenize(v, ids, 3, false, false, out, sizeof out);
    CHECK(m == 3 && !memcmp(out, " ab", 3), "space kept");
    m = colloq_vocab_detokenize(v, ids, 3, true, true, out, sizeof out);
    CHECK(m == 5 && !memcmp(out, "<s>ab", 5), "rendered BOS, prefix removed: %d", m);
    memset(out, 'z', sizeof out);
    m = colloq_vocab_detokenize(v, ids, 3, true, true, out, 4);
    CHECK(m == 5 && !memcmp(out, "<s>az", 5), "detokenize cap: %d %.5s", m, out);
    colloq_token bad[] = { 1, N_SYN };
    CHECK(colloq_vocab_detokenize(v, bad, 2, true, true, out, sizeof out) < 0, "bad id in detokenize");
    colloq_vocab_free(v);
}

static void test_caps_and_args(void) {
    colloq_vocab *v = must_load(syn_writer());
    colloq_token ids[8] = { -7, -7, -7, -7, -7, -7, -7, -7 };
    colloq_err err = { "" };
    int n = colloq_vocab_tokenize(v, "abc abc", 7, true, false, ids, 2, &err);
    CHECK(n == 7, "count needed: %d", n);
    CHECK(ids[0] == 1 && ids[1] == syn_id(SP) && ids[2] == -7, "writes only cap ids");
    CHECK(colloq_vocab_tokenize(v, "abc", 3, true, false, NULL, 0, &err) == 4, "size query");
    CHECK(colloq_vocab_tokenize(NULL, "a", 1, false, false, ids, 8, &err) == COLLOQ_ERR_ARG, "NULL vocab");
    CHECK(colloq_vocab_tokenize(v, NULL, 1, false, false, ids, 8, &err) == COLLOQ_ERR_ARG, "NULL text");
    CHECK(colloq_vocab_tokenize(v, NULL, 0, false, false, ids, 8, &err) == 0, "empty NULL text");
    CHECK(colloq_vocab_tokenize(v, "a", 1, false, false, ids, -1, &err) == COLLOQ_ERR_ARG, "negative cap");
    CHECK(colloq_vocab_tokenize(v, "a", 1, false, false, NULL, 4, &err) == COLLOQ_ERR_ARG, "NULL out");
    colloq_vocab_free(v);
}

/* 200,000 'a': all "aa" merges (score -4) happen before "aaaa" (-4.5), leftmost first.
 * A quadratic merge loop would not finish in the test's time. */
static void test_long_input(void) {
    colloq_vocab *v = must_load(syn_writer());
    size_t len = 200000;
    char *text = malloc(len);
    colloq_token *ids = malloc((len + 8) * sizeof *ids);
    if (!text || !ids) exit(1);
    memset(text, 'a', len);
    colloq_err err = { "" };
    double t0 = colloq_now();
    int n = colloq_vocab_tokenize(v, text, len, false, false, ids, (int)len + 8, &err);
    double dt = colloq_now() - t0;
    CHECK(n == 1 + (int)len / 4, "long input: %d tokens", n);
    colloq_token aaaa = syn_id("aaaa");
    int bad = 0;
    for (int i = 1; i < n && i < (int)len + 8; i++) bad += ids[i] != aaaa;
    CHECK(n > 0 && ids[0] == syn_id(SP) && bad == 0, "long input ids (%d wrong)", bad);
    printf("long input: %zu bytes in %.3f s\n", len, dt);
    /* and a long text of mixed pieces and spaces */
    for (size_t i = 0; i < len; i++) text[i] = "abc xyz<s>\xc3\xa9 "[i % 14];
    n = colloq_vocab_tokenize(v, text, len, false, false, ids, (int)len + 8, &err);
    CHECK(n > 0, "long mixed input: %d", n);
    char *back = malloc(len + 1);
    int m = colloq_vocab_detokenize(v, ids, n, true, false, back, (int)len + 1);
    CHECK(m == (int)len && !memcmp(back, text, len), "long round trip");
    free(back);
    free(text);
    free(ids);
    colloq_vocab_free(v);
}

/* Each malformed file must fail with the given status and a message naming what is wrong. */
static void expect_bad(gguf_writer *w, int want, const char *want_msg, const char *what) {
    colloq_vocab *v = NULL;
    colloq_err err = { "" };
    int rc = load_from(w, &v, &err);
    CHECK(rc == want && !v && strstr(err.msg, want_msg), "%s: rc %d, message \"%s\" (want %d, \"%s\")",
          what, rc, err.msg, want, want_msg);
    colloq_vocab_free(v);
}

static void test_bad_metadata(void) {
    gguf_writer *w = writer_for("llama", NULL, NULL, NULL, 0);
    expect_bad(w, COLLOQ_ERR_FORMAT, "tokenizer.ggml.tokens", "missing tokens");

    expect_bad(writer_for(NULL, syn_text, syn_score, syn_type, N_SYN), COLLOQ_ERR_FORMAT,
               "tokenizer.ggml.model", "missing model");
    expect_bad(writer_for("bert", syn_text, syn_score, syn_type, N_SYN), COLLOQ_ERR_UNSUPPORTED, "bert",
               "unsupported model");
    expect_bad(writer_for("llama", syn_text, syn_score, syn_type, 0), COLLOQ_ERR_FORMAT, "0 tokens", "no tokens");

    /* mismatched array lengths */
    w = writer_for("llama", syn_text, NULL, syn_type, N_SYN);
    gguf_writer_set_arr_num(w, "tokenizer.ggml.scores", GGUF_T_FLOAT32, syn_score, N_SYN - 1);
    char msg[128];
    snprintf(msg, sizeof msg, "tokenizer.ggml.scores has %d entries but tokenizer.ggml.tokens has %d", N_SYN - 1, N_SYN);
    expect_bad(w, COLLOQ_ERR_FORMAT, msg, "short scores");
    w = writer_for("llama", syn_text, syn_score, NULL, N_SYN);
    gguf_writer_set_arr_num(w, "tokenizer.ggml.token_type", GGUF_T_INT32, syn_type, 5);
    expect_bad(w, COLLOQ_ERR_FORMAT, "tokenizer.ggml.token_type has 5 entries", "short types");

    /* wrong types */
    w = writer_for("llama", NULL, syn_score, syn_type, N_SYN);
    gguf_writer_set_arr_num(w, "tokenizer.ggml.tokens", GGUF_T_INT32, syn_type, N_SYN);
    expect_bad(w, COLLOQ_ERR_FORMAT, "tokenizer.ggml.tokens", "numeric tokens");
    w = writer_for("llama", syn_text, NULL, syn_type, N_SYN);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.scores", syn_text, N_SYN);
    expect_bad(w, COLLOQ_ERR_FORMAT, "tokenizer.ggml.scores has type array of string", "string scores");
    w = syn_writer();
    gguf_writer_set_u32(w, "tokenizer.ggml.model", 3);
    expect_bad(w, COLLOQ_ERR_FORMAT, "tokenizer.ggml.model", "numeric model");
    w = syn_writer();
    gguf_writer_set_str(w, "tokenizer.ggml.eos_token_id", "2");
    expect_bad(w, COLLOQ_ERR_FORMAT, "tokenizer.ggml.eos_token_id has type string", "string eos id");
    w = syn_writer();
    gguf_writer_set_u32(w, "tokenizer.ggml.add_bos_token", 1);
    expect_bad(w, COLLOQ_ERR_FORMAT, "tokenizer.ggml.add_bos_token", "numeric add_bos");

    /* ids out of range */
    w = syn_writer();
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", N_SYN);
    snprintf(msg, sizeof msg, "tokenizer.ggml.bos_token_id = %d is out of range (the vocabulary has %d tokens)", N_SYN, N_SYN);
    expect_bad(w, COLLOQ_ERR_FORMAT, msg, "bos out of range");
    w = syn_writer();
    gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0xffffffffu);
    expect_bad(w, COLLOQ_ERR_FORMAT, "tokenizer.ggml.unknown_token_id = 4294967295", "unk out of range");
    w = syn_writer();
    gguf_writer_set_u32(w, "tokenizer.ggml.eot_token_id", 1u << 30);
    expect_bad(w, COLLOQ_ERR_FORMAT, "tokenizer.ggml.eot_token_id", "eot out of range");

    /* bad token type value */
    int32_t types[N_SYN];
    memcpy(types, syn_type, sizeof types);
    types[7] = 9;
    expect_bad(writer_for("llama", syn_text, syn_score, types, N_SYN), COLLOQ_ERR_FORMAT,
               "tokenizer.ggml.token_type[7] = 9", "type 9");

    /* a byte-level BPE vocabulary without merges: the BPE loader's clean error */
    colloq_vocab *v = NULL;
    colloq_err err = { "" };
    int rc = load_from(writer_for("gpt2", syn_text, NULL, NULL, N_SYN), &v, &err);
    CHECK(rc < 0 && !v && err.msg[0], "gpt2 without merges: rc %d \"%s\"", rc, err.msg);
}

/* Empty and invalid-UTF-8 token texts, duplicate texts: load and tokenize without trouble. */
static void test_odd_texts(void) {
    const char *text[] = { "<unk>", "", "\xff\xfe", SP, "a", "a", "\xc3", "" };
    int32_t type[] = { CTOK_UNKNOWN, CTOK_CONTROL, CTOK_NORMAL, CTOK_NORMAL, CTOK_NORMAL, CTOK_NORMAL,
                       CTOK_USER_DEFINED, CTOK_BYTE };
    colloq_vocab *v = must_load(writer_for("llama", text, NULL, type, 8));
    CHECK(colloq_vocab_find(v, "a") == 5, "duplicate text: the later id");
    CHECK(colloq_vocab_find(v, "") == -1, "empty text not indexed");
    /* "\xc3" is user-defined: split out even from the middle of a UTF-8 sequence */
    CHECK(tok_is(v, "a\xc3\xa9", false, false, TOKS(SP, "a", "\xc3", SP, "<unk>")), "odd user-defined");
    CHECK(tok_is(v, "\xff\xfe", false, false, TOKS(SP, "\xff\xfe")), "a piece of invalid UTF-8 merges from stray bytes");
    CHECK(tok_is(v, "\xfe", false, false, TOKS(SP, "<unk>")), "stray byte without byte tokens");
    CHECK(piece_is(v, 2, false, "\xff\xfe") && piece_is(v, 1, true, "") && piece_is(v, 7, false, ""), "odd pieces");
    colloq_vocab_free(v);
}

/* Every allocation failing in turn: a clean COLLOQ_ERR_NOMEM (ASan checks for leaks). */
static void test_alloc_failures(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/alloc.gguf", tmpdir);
    colloq_err err = { "" };
    gguf_writer *w = syn_writer();
    if (gguf_writer_write(w, path, 0, &err)) { fprintf(stderr, "test: %s\n", err.msg); exit(1); }
    gguf_writer_free(w);
    gguf_file *f = NULL;
    if (gguf_open(path, &f, &err)) { fprintf(stderr, "test: %s\n", err.msg); exit(1); }
    int loads = 0, fails = 0;
    for (long k = 0; k < 1000; k++) {
        colloq_vocab *v = NULL;
        colloq_test_fail_alloc_after(k);
        int rc = colloq_vocab_load(f, &v, &err);
        colloq_test_fail_alloc_after(-1);
        if (rc == COLLOQ_OK) { colloq_vocab_free(v); loads++; break; }
        fails++;
        CHECK(rc == COLLOQ_ERR_NOMEM && !v, "load with allocation %ld failing: rc %d %s", k, rc, err.msg);
    }
    CHECK(loads == 1 && fails > 5, "load eventually succeeds (%d failures first)", fails);
    colloq_vocab *v = NULL;
    colloq_vocab_load(f, &v, &err);
    gguf_close(f);
    unlink(path);
    if (!v) return;
    const char *text = "<|c|>abc<|u|> xyz\xc3\xa9";
    colloq_token ids[64];
    int fails_tok = 0;
    for (long k = 0; k < 1000; k++) {
        colloq_test_fail_alloc_after(k);
        int n = colloq_vocab_tokenize(v, text, strlen(text), true, true, ids, 64, &err);
        colloq_test_fail_alloc_after(-1);
        if (n >= 0) {
            CHECK(n == tok(v, text, true, true, ids, 64), "same result after failures");
            break;
        }
        fails_tok++;
        CHECK(n == COLLOQ_ERR_NOMEM, "tokenize with allocation %ld failing: %d", k, n);
    }
    CHECK(fails_tok > 2, "tokenize allocates (%d)", fails_tok);
    colloq_vocab_free(v);
}

/* ---- the shared vocabularies ---- */

static colloq_vocab *load_shared(const char *shared, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/testdata/vocab/%s", shared, name);
    struct stat st;
    if (stat(path, &st)) return NULL;
    gguf_file *f = NULL;
    colloq_vocab *v = NULL;
    colloq_err err = { "" };
    if (gguf_open(path, &f, &err) || colloq_vocab_load(f, &v, &err)) CHECK(0, "%s: %s", path, err.msg);
    gguf_close(f);
    return v;
}

static bool ids_are(const colloq_vocab *v, const char *text, bool bos, bool special, const colloq_token *want, int nw) {
    colloq_token ids[64];
    int n = tok(v, text, bos, special, ids, 64);
    bool ok = n == nw && !memcmp(ids, want, (size_t)nw * sizeof *ids);
    if (!ok) {
        fprintf(stderr, "  \"%s\":", text);
        for (int i = 0; i < n && i < 64; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    return ok;
}
#define IDS(...) (const colloq_token[]){ __VA_ARGS__ }, (int)(sizeof (const colloq_token[]){ __VA_ARGS__ } / sizeof(colloq_token))

static int test_shared(const char *shared) {
    colloq_vocab *v = load_shared(shared, "ggml-vocab-llama-spm.gguf");
    if (!v) return 0;
    CHECK(colloq_vocab_n(v) == 32000 && colloq_vocab_bos(v) == 1 && colloq_vocab_eos(v) == 2, "llama ids");
    CHECK(colloq_vocab_add_bos(v) && !colloq_vocab_add_eos(v) && v->add_space_prefix && v->unk == 0, "llama flags");
    CHECK(ids_are(v, "Hello world", true, false, IDS(1, 15043, 3186)), "Hello world");
    CHECK(ids_are(v, "<s>Hello</s> world", true, true, IDS(1, 1, 15043, 2, 29871, 3186)), "parsed specials");
    CHECK(ids_are(v, "<s>", false, false, IDS(529, 29879, 29958)), "<s> as text");
    CHECK(colloq_vocab_is_eog(v, 2) && !colloq_vocab_is_eog(v, 1) && v->n_eog == 1, "llama eog");
    CHECK(piece_is(v, 15043, false, " Hello") && piece_is(v, 13, false, "\n"), "llama pieces");
    colloq_vocab_free(v);

    v = load_shared(shared, "ggml-vocab-phi-3.gguf");
    if (!v) return 1;
    CHECK(colloq_vocab_eos(v) == 32000 && v->pad == 32000, "phi-3 ids");
    CHECK(colloq_vocab_is_eog(v, 32000) && colloq_vocab_is_eog(v, 32007) && colloq_vocab_is_eog(v, 2), "phi-3 eog");
    CHECK(!colloq_vocab_is_eog(v, 32010) && !colloq_vocab_is_eog(v, 1), "phi-3 not eog");
    /* <|user|> is a control token: text unless parse_special; </s> is user-defined: always */
    CHECK(ids_are(v, "<|user|>\nHi<|end|>", true, true, IDS(1, 32010, 29871, 13, 18567, 32007)), "phi-3 chat");
    CHECK(ids_are(v, "a</s>b", false, false, IDS(263, 2, 289)), "phi-3 user-defined </s>");
    colloq_vocab_free(v);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_tokenizer TMPDIR [SHARED_DIR]\n");
        return 2;
    }
    tmpdir = argv[1];
    mkdir(tmpdir, 0755);
    build_synthetic();
    test_merges();
    test_specials();
    test_bos_eos_eog();
    test_fallback_without_bytes();
    test_decode();
    test_caps_and_args();
    test_long_input();
    test_bad_metadata();
    test_odd_texts();
    test_alloc_failures();
    if (argc > 2 && !test_shared(argv[2])) printf("shared vocabularies absent: those checks skipped\n");
    rmdir(tmpdir);
    if (failures) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("test_tokenizer: all checks pass\n");
    return 0;
}
