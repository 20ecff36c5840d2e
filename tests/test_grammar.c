/*
 * test_grammar.c - tests of constrained output (grammar*.c):
 *   test_grammar unit            automaton vs jansson on random valid and corrupted JSON,
 *                                shortest completions, schema subset accept/reject tables,
 *                                compile errors, masks vs a brute-force check on a small
 *                                synthetic vocabulary, token budgets;
 *   test_grammar vocab FILE.gguf completions sampled under the mask with random logits
 *                                on a real vocabulary (100 seeds per schema) parse and
 *                                validate; masks vs brute force; timing.  77 when absent.
 * Test code only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar_testutil.h"
#include "util.h"

static int failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
                              fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

/* ---- a growable byte buffer ---- */
typedef struct { char *p; size_t n, cap; } buf;
static void bput(buf *b, const void *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void bstr(buf *b, const char *s) { bput(b, s, strlen(s)); }

/* ---- random JSON text ---- */

static void gen_ws(buf *b) {
    static const char ws[] = " \t\n\r";
    int n = tu_below(4) == 0 ? (int)tu_below(3) : 0;
    for (int i = 0; i < n; i++) bput(b, &ws[tu_below(4)], 1);
}

static void gen_string(buf *b) {
    static const char *parts[] = {
        "a", "Z", " ", "0", "\\n", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\r", "\\t", "\\u0041",
        "\\u00e9", "\\uD83D\\uDE00", "\\u20AC", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\x7f",
        "x", "{", "}", "[", ",", ":",
    };
    bstr(b, "\"");
    int n = (int)tu_below(8);
    for (int i = 0; i < n; i++) bstr(b, parts[tu_below(sizeof parts / sizeof *parts)]);
    bstr(b, "\"");
}

static void gen_number(buf *b) {
    char tmp[64];
    int k = 0;
    if (tu_below(3) == 0) tmp[k++] = '-';
    if (tu_below(4) == 0) tmp[k++] = '0';
    else {
        tmp[k++] = (char)('1' + tu_below(9));
        for (int i = (int)tu_below(6); i > 0; i--) tmp[k++] = (char)('0' + tu_below(10));
    }
    if (tu_below(3) == 0) {
        tmp[k++] = '.';
        for (int i = 1 + (int)tu_below(4); i > 0; i--) tmp[k++] = (char)('0' + tu_below(10));
    }
    if (tu_below(4) == 0) {
        tmp[k++] = tu_below(2) ? 'e' : 'E';
        if (tu_below(2)) tmp[k++] = tu_below(2) ? '+' : '-';
        for (int i = 1 + (int)tu_below(2); i > 0; i--) tmp[k++] = (char)('0' + tu_below(10));
    }
    bput(b, tmp, (size_t)k);
}

static void gen_value(buf *b, int depth) {
    uint32_t r = tu_below(depth > 3 ? 5 : 7);
    gen_ws(b);
    switch (r) {
    case 0: gen_string(b); break;
    case 1: gen_number(b); break;
    case 2: bstr(b, tu_below(2) ? "true" : "false"); break;
    case 3: bstr(b, "null"); break;
    case 4: gen_number(b); break;
    case 5: {
        bstr(b, "[");
        int n = (int)tu_below(4);
        if (!n) gen_ws(b);
        for (int i = 0; i < n; i++) { if (i) bstr(b, ","); gen_value(b, depth + 1); }
        bstr(b, "]");
        break;
    }
    default: {
        bstr(b, "{");
        int n = (int)tu_below(4);
        if (!n) gen_ws(b);
        for (int i = 0; i < n; i++) {
            if (i) bstr(b, ",");
            gen_ws(b);
            gen_string(b);
            gen_ws(b);
            bstr(b, ":");
            gen_value(b, depth + 1);
        }
        bstr(b, "}");
        break;
    }
    }
    gen_ws(b);
}

static void mutate(buf *b) {
    static const char junk[] = "{}[],:\"\\-+.eE0123456789 \ttfnulx\x01\x1f\x80\xc3\xa9\xed\xa0\xf4\x90\xff";
    int k = 1 + (int)tu_below(2);
    for (int i = 0; i < k && b->n; i++) {
        size_t at = tu_below((uint32_t)b->n + 1);
        char c = junk[tu_below(sizeof junk - 1)];
        switch (tu_below(4)) {
        case 0:                                             /* delete */
            if (at < b->n) { memmove(b->p + at, b->p + at + 1, b->n - at - 1); b->n--; }
            break;
        case 1:                                             /* insert */
            bput(b, "", 1);
            memmove(b->p + at + 1, b->p + at, b->n - 1 - at);
            b->p[at] = c;
            break;
        case 2:                                             /* replace */
            if (at < b->n) b->p[at] = c;
            break;
        default:                                            /* truncate */
            b->n = at;
            break;
        }
        b->p[b->n] = 0;
    }
}

/* ---- automaton helpers (a grammar state needs a vocabulary: a 1-token dummy) ---- */

static int dummy_piece(void *ud, colloq_token t, char *p, int cap) {
    (void)ud; (void)t;
    if (cap > 0) p[0] = ' ';
    return 1;
}

static colloq_grammar_vocab *dummy_vocab(void) {
    colloq_grammar_vocab *v = NULL;
    colloq_err err;
    if (colloq_grammar_vocab_new(1, dummy_piece, NULL, NULL, &v, &err)) {
        fprintf(stderr, "dummy vocab: %s\n", err.msg);
        exit(1);
    }
    return v;
}

static bool accepts(colloq_grammar_state *s, const char *p, size_t n) {
    colloq_grammar_state_reset(s);
    return colloq_grammar_state_accept_bytes(s, p, n, NULL) == COLLOQ_OK && colloq_grammar_state_accepting(s);
}

/* From the current state, append the shortest completion byte by byte (each byte must
 * lower min_remaining by one); false when that is impossible. */
static bool complete_shortest(colloq_grammar_state *s, buf *b) {
    for (int guard = 0; guard < 100000; guard++) {
        if (colloq_grammar_state_accepting(s)) return true;
        int d = colloq_grammar_state_min_remaining(s);
        bool moved = false;
        for (int c = 0; c < 256 && !moved; c++) {
            char ch = (char)c;
            if (!colloq_grammar_state_allows_bytes(s, &ch, 1)) continue;
            colloq_grammar_state_accept_bytes(s, &ch, 1, NULL);
            if (colloq_grammar_state_min_remaining(s) == d - 1) { bput(b, &ch, 1); moved = true; break; }
            /* undo: replay the buffer */
            colloq_grammar_state_reset(s);
            colloq_grammar_state_accept_bytes(s, b->p, b->n, NULL);
        }
        if (!moved) return false;
    }
    return false;
}

static void test_parity(void) {
    colloq_grammar_opts o = colloq_grammar_default_opts();
    o.max_depth = 64; o.ws_max = -1; o.max_string = 1 << 20;
    o.max_int_digits = 200; o.max_frac_digits = 200; o.max_exp_digits = 200;
    colloq_grammar *g = NULL;
    colloq_err err;
    CHECK(colloq_grammar_new_any(&o, false, &g, &err) == 0, "new_any: %s", err.msg);
    colloq_grammar_vocab *v = dummy_vocab();
    colloq_grammar_state *s = NULL;
    CHECK(colloq_grammar_state_new(g, v, &s, &err) == 0, "state: %s", err.msg);
    int n_valid = 0, n_invalid = 0, n_skipped = 0, n_completed = 0;
    for (int iter = 0; iter < 6000; iter++) {
        tu_seed(1000 + (uint64_t)iter);
        buf b = { 0 };
        gen_value(&b, 0);
        if (iter % 3) mutate(&b);
        json_error_t je;
        json_t *j = json_loadb(b.p, b.n, JSON_DECODE_ANY, &je);
        if (!j && (strstr(je.text, "too big") || strstr(je.text, "overflow"))) { n_skipped++; free(b.p); continue; }
        bool ours = accepts(s, b.p, b.n);
        CHECK(ours == (j != NULL), "parity: ours %d jansson %d (%s) on [%s]", ours, j != NULL, j ? "" : je.text, b.p);
        if (j) n_valid++; else n_invalid++;
        json_decref(j);
        /* the longest accepted prefix must still complete to a document jansson accepts */
        colloq_grammar_state_reset(s);
        size_t ok = 0;
        while (ok < b.n && colloq_grammar_state_accept_bytes(s, b.p + ok, 1, NULL) == 0) ok++;
        if (iter % 4 == 0) {
            buf c = { 0 };
            bput(&c, b.p, ok);
            bool done = complete_shortest(s, &c);
            CHECK(done, "no shortest completion after [%.*s]", (int)ok, b.p);
            if (done) {
                json_t *k = json_loadb(c.p, c.n, JSON_DECODE_ANY, &je);
                CHECK(k != NULL, "completion [%s] rejected by jansson: %s", c.p, je.text);
                json_decref(k);
                n_completed++;
            }
            free(c.p);
        }
        free(b.p);
    }
    printf("parity with jansson: %d valid, %d invalid, %d skipped (number range), %d completions\n",
           n_valid, n_invalid, n_skipped, n_completed);
    CHECK(n_valid > 1000 && n_invalid > 1000, "too few cases of one kind");
    colloq_grammar_state_free(s);
    colloq_grammar_vocab_free(v);
    colloq_grammar_free(g);
}

/* ---- schema tables ---- */

typedef struct { const char *schema; const char *const *yes; const char *const *no; } schema_case;

#define L(...) (const char *const[]){ __VA_ARGS__, NULL }

static void test_schemas(void) {
    const schema_case cases[] = {
        { "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"string\",\"maxLength\":3}},\"required\":[\"a\"]}",
          L("{\"a\":1}", "{\"a\":-12,\"b\":\"xyz\"}", "{\"b\":\"\",\"a\":0}", "{ \"a\" : 5 }"),
          L("{}", "{\"b\":\"x\"}", "{\"a\":1.5}", "{\"a\":1,\"b\":\"long\"}", "{\"a\":1,\"c\":2}", "{\"a\":1,\"a\":2}", "[1]", "{\"a\":01}") },
        { "{\"enum\":[\"red\",\"green\",1,12,null,{\"x\":[1]}]}",
          L("\"red\"", "\"green\"", "1", "12", "null", "{\"x\":[1]}"),
          L("\"blue\"", "2", "123", "\"re\"", "true", "{\"x\":[2]}") },
        { "{\"type\":\"array\",\"items\":{\"type\":\"boolean\"},\"minItems\":2,\"maxItems\":3}",
          L("[true,false]", "[ true , true , false ]"),
          L("[]", "[true]", "[true,true,true,true]", "[1,2]") },
        { "{\"type\":[\"string\",\"null\"],\"minLength\":2}",
          L("\"ab\"", "null", "\"\\u00e9\\u00e9\"", "\"\xc3\xa9\xc3\xa9\""),
          L("\"a\"", "\"\"", "1", "\"\\u00e9\"") },
        { "{\"anyOf\":[{\"type\":\"number\"},{\"type\":\"integer\"},{\"const\":\"x\"},{\"type\":\"array\",\"items\":{\"$ref\":\"#\"}}]}",
          L("1.5", "3", "\"x\"", "[]", "[1,[\"x\",[2]]]"),
          L("\"y\"", "[\"y\"]", "{}", "true") },
        { "{\"anyOf\":[{\"type\":\"string\",\"maxLength\":5},{\"enum\":[\"ok\",7,true]},{\"type\":\"integer\"}]}",
          L("\"ok\"", "7", "8", "\"abc\"", "true"),
          L("\"too long str\"", "1.5", "false") },
        { "{\"oneOf\":[{\"type\":\"object\",\"properties\":{\"kind\":{\"const\":\"circle\"},\"r\":{\"type\":\"number\"}},\"required\":[\"kind\",\"r\"]},"
          "{\"type\":\"object\",\"properties\":{\"kind\":{\"enum\":[\"square\",\"box\"]},\"side\":{\"type\":\"number\"}},\"required\":[\"kind\"]}]}",
          L("{\"kind\":\"circle\",\"r\":2}", "{\"kind\":\"square\"}", "{\"kind\":\"box\",\"side\":1}"),
          L("{\"kind\":\"circle\"}", "{\"r\":2,\"kind\":\"circle\"}", "{\"kind\":\"square\",\"r\":1}", "{\"kind\":\"tri\"}", "{}") },
        { "{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/node\"}}},\"required\":[\"v\",\"kids\"]}},\"$ref\":\"#/$defs/node\"}",
          L("{\"v\":1,\"kids\":[]}", "{\"v\":1,\"kids\":[{\"v\":2,\"kids\":[]}]}"),
          L("{\"v\":1}", "{\"v\":1,\"kids\":[{}]}") },
        { "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"integer\"}}",
          L("{}", "{\"any\":1,\"thing\":2}"),
          L("{\"a\":\"s\"}", "{\"a\":1,}") },
        { "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}",
          L("{}"), L("{ }", "{\"a\":1}") },
        { "{\"type\":\"object\",\"required\":[\"id\"]}",
          L("{\"id\":[1,{\"q\":null}]}"), L("{}", "{\"x\":1}") },
        { "{\"type\":\"string\",\"format\":\"date\",\"description\":\"ignored annotations\",\"x-extra\":1}",
          L("\"2024-01-01\"", "\"\""), L("5") },
        { "true", L("1", "{\"a\":[]}", "\"s\""), L("", "{") },
    };
    colloq_grammar_vocab *v = dummy_vocab();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        colloq_grammar *g = NULL;
        colloq_err err = {{0}};
        int rc = colloq_grammar_new_schema_text(cases[i].schema, strlen(cases[i].schema), NULL, &g, &err);
        CHECK(rc == 0, "schema %zu: %s", i, err.msg);
        if (rc) continue;
        colloq_grammar_state *s = NULL;
        colloq_grammar_state_new(g, v, &s, &err);
        json_t *schema = json_loads(cases[i].schema, JSON_DECODE_ANY, NULL);
        for (const char *const *y = cases[i].yes; *y; y++) {
            CHECK(accepts(s, *y, strlen(*y)), "schema %zu should accept %s", i, *y);
            json_t *x = json_loads(*y, JSON_DECODE_ANY, NULL);
            char why[200];
            CHECK(x && tu_validate(schema, schema, x, true, why, sizeof why), "validator rejects %s", *y);
            json_decref(x);
        }
        for (const char *const *n = cases[i].no; *n; n++)
            CHECK(!accepts(s, *n, strlen(*n)), "schema %zu should reject %s", i, *n);
        json_decref(schema);
        colloq_grammar_state_free(s);
        colloq_grammar_free(g);
    }
    colloq_grammar_vocab_free(v);

    static const struct { const char *schema, *msg; } bad[] = {
        { "{\"type\":\"integer\",\"minimum\":0}", "keyword 'minimum' is not supported" },
        { "{\"properties\":{\"a\":{\"type\":\"string\",\"pattern\":\"x\"}}}", "/properties/a" },
        { "{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"string\",\"maxLength\":2}]}", "can both start with '\"'" },
        { "{\"anyOf\":[{\"type\":\"string\",\"maxLength\":5},{\"enum\":[\"much too long\"]}]}", "can both start" },
        { "{\"anyOf\":[{\"type\":\"object\"},{\"type\":\"object\",\"properties\":{\"a\":{}}}]}", "discriminator" },
        { "{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"number\"}]}", "integers match both" },
        { "{\"type\":\"string\",\"minLength\":5,\"maxLength\":2}", "larger than" },
        { "{\"$ref\":\"#/nowhere\"}", "does not point" },
        { "{\"$ref\":\"https://example.com/s.json\"}", "does not point" },
        { "{\"type\":\"array\",\"items\":[{\"type\":\"string\"}]}", "tuple" },
        { "{\"enum\":[]}", "non-empty" },
        { "{\"type\":\"object\",\"properties\":{\"a\":{}},\"required\":[\"b\"],\"additionalProperties\":false}", "'b'" },
        { "{\"type\":\"date\"}", "unknown type" },
        { "false", "admits no value" },
        { "{\"$defs\":{\"n\":{\"type\":\"object\",\"properties\":{\"n\":{\"$ref\":\"#/$defs/n\"}},\"required\":[\"n\"]}},\"$ref\":\"#/$defs/n\"}", "no finite value" },
        { "{\"type\":\"object\",", "line 1" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        colloq_grammar *g = NULL;
        colloq_err err = {{0}};
        int rc = colloq_grammar_new_schema_text(bad[i].schema, strlen(bad[i].schema), NULL, &g, &err);
        CHECK(rc == COLLOQ_ERR_ARG && strstr(err.msg, bad[i].msg), "bad schema %zu: rc %d msg '%s' (want '%s')",
              i, rc, err.msg, bad[i].msg);
        colloq_grammar_free(g);
    }
}

/* ---- limits ---- */

static void test_limits(void) {
    colloq_grammar_opts o = colloq_grammar_default_opts();
    o.ws_max = 2; o.max_string = 4; o.max_int_digits = 3; o.max_depth = 3; o.max_frac_digits = 2; o.max_exp_digits = 1;
    colloq_grammar *g = NULL;
    colloq_err err;
    CHECK(colloq_grammar_new_any(&o, true, &g, &err) == 0, "%s", err.msg);
    colloq_grammar_vocab *v = dummy_vocab();
    colloq_grammar_state *s = NULL;
    colloq_grammar_state_new(g, v, &s, &err);
    CHECK(accepts(s, "{  \"abcd\":  123}", 16), "limits: ok text");
    CHECK(!accepts(s, "{   \"a\":1}", 10), "limits: three spaces");
    CHECK(!accepts(s, "{\"abcde\":1}", 11), "limits: long string");
    CHECK(!accepts(s, "{\"a\":1234}", 10), "limits: long number");
    CHECK(accepts(s, "{\"a\":1.25e7}", 12), "limits: number parts");
    CHECK(!accepts(s, "{\"a\":1.255}", 11), "limits: long fraction");
    CHECK(!accepts(s, "{\"a\":1e10}", 10), "limits: long exponent");
    CHECK(accepts(s, "{\"a\":[[1]]}", 11), "limits: depth 3");
    CHECK(!accepts(s, "{\"a\":[[[1]]]}", 13), "limits: depth 4");
    CHECK(!accepts(s, "[1]", 3), "limits: object only");
    /* done / accepting / finished */
    colloq_grammar_state_reset(s);
    colloq_grammar_state_accept_bytes(s, "{}", 2, NULL);
    CHECK(colloq_grammar_state_done(s) && colloq_grammar_state_accepting(s), "done after {}");
    CHECK(colloq_grammar_state_accept_bytes(s, "x", 1, &err) == COLLOQ_ERR_ARG, "text after the document");
    CHECK(colloq_grammar_state_accept_bytes(s, " ", 1, &err) == 0, "whitespace after the document");
    colloq_grammar_state_free(s);
    colloq_grammar_free(g);
    /* a top-level number is accepting but not done */
    CHECK(colloq_grammar_new_schema_text("{\"type\":\"integer\"}", 18, NULL, &g, &err) == 0, "%s", err.msg);
    colloq_grammar_state_new(g, v, &s, &err);
    colloq_grammar_state_accept_bytes(s, "12", 2, NULL);
    CHECK(colloq_grammar_state_accepting(s) && !colloq_grammar_state_done(s), "number accepting, not done");
    CHECK(colloq_grammar_state_min_remaining(s) == 0, "number: nothing remaining");
    colloq_grammar_state_free(s);
    colloq_grammar_free(g);
    colloq_grammar_vocab_free(v);
}

/* ---- masks on a synthetic vocabulary, checked token by token ---- */

static const char *const synth[] = {
    "{", "}", "[", "]", ",", ":", "\"", " ", "  ", "\n", "\n  ", "{\"", "\":", "\",", "\"}", "\"]", "\": \"",
    "true", "false", "null", "nul", "l", "tr", "ue", "0", "1", "12", "-", ".", "5e", "e+", "E", "x", "abc",
    "hello world", "\\", "\\n", "\\u", "00e9", "D83D", "\\uDE00", "\xc3", "\xa9", "\xc3\xa9", "\xe2\x82\xac",
    "\xf0\x9f", "\x98\x80", "\"name", "name", "\"kind\":\"circle\"", "kind", "circle", "square", "r", "\"r\":",
    "\"v\"", "kids", "[]", "{}", "],", "},", "\"a\"", "a", "b", ", ", "\t", "\x01",
    "<eos>",
};
#define N_WORDS (int)(sizeof synth / sizeof *synth)
#define N_SYNTH (N_WORDS + 256)       /* the words, then every single byte (as byte-fallback tokens) */

static int synth_piece(void *ud, colloq_token t, char *p, int cap) {
    (void)ud;
    if (t < 0 || t >= N_SYNTH) return -1;
    if (t == N_WORDS - 1) return 0;                   /* the EOS piece is empty */
    if (t >= N_WORDS) {
        if (cap > 0) p[0] = (char)(t - N_WORDS);
        return 1;
    }
    int n = (int)strlen(synth[t]);
    if (n <= cap) memcpy(p, synth[t], (size_t)n);
    return n;
}
static bool synth_eog(void *ud, colloq_token t) { (void)ud; return t == N_WORDS - 1; }

/* The mask must equal "the piece's bytes are allowed" for every token. */
static int brute_check(colloq_grammar_state *s, const colloq_grammar_vocab *v, const uint64_t *mask,
                       int n_vocab, int (*piece)(void *, colloq_token, char *, int), bool (*eog)(void *, colloq_token),
                       void *ud, const char *what) {
    int bad = 0;
    char p[2048];
    for (colloq_token t = 0; t < n_vocab; t++) {
        bool want;
        if (eog(ud, t)) want = colloq_grammar_state_accepting(s) && !colloq_grammar_state_finished(s);
        else {
            int n = piece(ud, t, p, sizeof p);
            want = n > 0 && n <= (int)sizeof p && colloq_grammar_state_allows_bytes(s, p, (size_t)n);
        }
        bool got = (mask[t >> 6] >> (t & 63)) & 1;
        if (want != got && bad++ < 3) {
            int n = piece(ud, t, p, sizeof p);
            fprintf(stderr, "  %s: token %d [%.*s]: mask %d, bytes allowed %d\n", what, t, n > 0 ? n : 0, p, got, want);
        }
    }
    (void)v;
    return bad;
}

static void test_synthetic(void) {
    static const char *const schemas[] = {
        NULL,   /* any value */
        "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":6},\"a\":{\"type\":\"array\",\"items\":{\"type\":\"number\"},\"maxItems\":3}},\"required\":[\"name\"]}",
        "{\"oneOf\":[{\"type\":\"object\",\"properties\":{\"kind\":{\"const\":\"circle\"},\"r\":{\"type\":\"number\"}},\"required\":[\"kind\",\"r\"]},"
        "{\"type\":\"object\",\"properties\":{\"kind\":{\"const\":\"square\"}},\"required\":[\"kind\"]}]}",
        "{\"$defs\":{\"n\":{\"type\":\"object\",\"properties\":{\"v\":{\"enum\":[1,12,true]},\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/n\"},\"maxItems\":2}},\"required\":[\"v\"]}},\"$ref\":\"#/$defs/n\"}",
        "{\"type\":\"array\",\"items\":{\"type\":[\"string\",\"integer\",\"null\"],\"minLength\":1,\"maxLength\":3},\"minItems\":1}",
    };
    colloq_grammar_vocab *v = NULL;
    colloq_err err;
    CHECK(colloq_grammar_vocab_new(N_SYNTH, synth_piece, synth_eog, NULL, &v, &err) == 0, "%s", err.msg);
    uint64_t mask[8] = { 0 };
    int checks = 0, walks = 0;
    for (size_t si = 0; si < sizeof schemas / sizeof *schemas; si++) {
        colloq_grammar *g = NULL;
        colloq_grammar_opts o = colloq_grammar_default_opts();
        o.ws_max = 3; o.max_string = 12; o.max_depth = 6;
        int rc = schemas[si] ? colloq_grammar_new_schema_text(schemas[si], strlen(schemas[si]), &o, &g, &err)
                             : colloq_grammar_new_any(&o, false, &g, &err);
        CHECK(rc == 0, "synthetic schema %zu: %s", si, err.msg);
        if (rc) continue;
        json_t *schema = schemas[si] ? json_loads(schemas[si], 0, NULL) : json_true();
        colloq_grammar_state *s = NULL;
        colloq_grammar_state_new(g, v, &s, &err);
        for (int seed = 0; seed < 60; seed++) {
            tu_seed(77 + (uint64_t)seed * 31 + si);
            colloq_grammar_state_reset(s);
            int budget = 20 + (int)tu_below(60);
            buf text = { 0 };
            bool ended = false;
            for (int step = 0; step < budget && !ended; step++) {
                int cnt = colloq_grammar_state_mask(s, budget - step, mask);
                CHECK(cnt > 0, "schema %zu seed %d: no token allowed after [%s]", si, seed, text.p ? text.p : "");
                if (cnt <= 0) break;
                /* the budget may restrict the mask, so compare the unbudgeted one */
                uint64_t full[8] = { 0 };
                colloq_grammar_state_mask(s, -1, full);
                char what[64];
                snprintf(what, sizeof what, "schema %zu seed %d step %d", si, seed, step);
                CHECK(brute_check(s, v, full, N_SYNTH, synth_piece, synth_eog, NULL, what) == 0, "%s mismatch", what);
                for (int w = 0; w < 8; w++) CHECK((mask[w] & ~full[w]) == 0, "budget mask not a subset");
                checks++;
                int pick = (int)tu_below((uint32_t)cnt);
                colloq_token t = 0;
                for (t = 0; t < N_SYNTH; t++)
                    if (((mask[t >> 6] >> (t & 63)) & 1) && pick-- == 0) break;
                CHECK(colloq_grammar_state_accept(s, t, &err) == 0, "accept %d: %s", t, err.msg);
                char pc[64];
                int pn = synth_piece(NULL, t, pc, sizeof pc);
                if (synth_eog(NULL, t)) ended = true;
                else bput(&text, pc, (size_t)pn);
            }
            CHECK(ended, "schema %zu seed %d: not finished within the budget of %d: [%s]", si, seed, budget, text.p);
            json_error_t je;
            json_t *x = json_loadb(text.p ? text.p : "", text.n, JSON_DECODE_ANY, &je);
            char why[200] = "";
            CHECK(x && tu_validate(schema, schema, x, true, why, sizeof why), "schema %zu: [%s] %s %s", si,
                  text.p, x ? "invalid:" : je.text, why);
            json_decref(x);
            free(text.p);
            walks++;
        }
        json_decref(schema);
        colloq_grammar_state_free(s);
        colloq_grammar_free(g);
    }
    printf("synthetic vocabulary: %d walks, %d masks checked token by token\n", walks, checks);
    colloq_grammar_vocab_free(v);
}

/* ---- random schemas: compile, or fail with a message; what is sampled validates ---- */

static json_t *rand_schema(int depth) {
    static const char *const types[] = { "string", "integer", "number", "boolean", "null", "object", "array" };
    json_t *s = json_object();
    uint32_t r = tu_below(depth > 2 ? 6 : 11);
    if (r == 6 || r == 7) {                                    /* anyOf / oneOf */
        json_t *a = json_array();
        for (int i = 0, n = 1 + (int)tu_below(3); i < n; i++) json_array_append_new(a, rand_schema(depth + 1));
        json_object_set_new(s, r == 6 ? "anyOf" : "oneOf", a);
        return s;
    }
    if (r == 8) {                                              /* enum */
        json_t *a = json_array();
        for (int i = 0, n = 1 + (int)tu_below(4); i < n; i++) {
            switch (tu_below(4)) {
            case 0: json_array_append_new(a, json_integer((json_int_t)tu_below(20))); break;
            case 1: { char b[8]; snprintf(b, sizeof b, "v%u", tu_below(9)); json_array_append_new(a, json_string(b)); break; }
            case 2: json_array_append_new(a, json_boolean(tu_below(2))); break;
            default: json_array_append_new(a, json_pack("{s:[i]}", "k", (int)tu_below(3))); break;
            }
        }
        json_object_set_new(s, "enum", a);
        return s;
    }
    if (r == 9) { json_object_set_new(s, "const", json_string("c")); return s; }
    if (r == 10) { json_object_set_new(s, "type", json_pack("[s,s]", types[tu_below(5)], "null")); return s; }
    const char *t = types[r < 6 ? (depth > 2 ? tu_below(5) : r) : 0];
    if (r >= 5 && depth > 2) t = types[tu_below(5)];
    json_object_set_new(s, "type", json_string(t));
    if (!strcmp(t, "string")) {
        if (tu_below(2)) json_object_set_new(s, "maxLength", json_integer(1 + (json_int_t)tu_below(6)));
        if (tu_below(3) == 0) json_object_set_new(s, "minLength", json_integer((json_int_t)tu_below(3)));
    } else if (!strcmp(t, "object")) {
        json_t *props = json_object(), *req = json_array();
        for (int i = 0, n = (int)tu_below(4); i < n; i++) {
            char k[8];
            snprintf(k, sizeof k, "p%d", i);
            json_object_set_new(props, k, rand_schema(depth + 1));
            if (tu_below(2)) json_array_append_new(req, json_string(k));
        }
        if (json_object_size(props) || tu_below(2)) json_object_set_new(s, "properties", props);
        else json_decref(props);
        json_object_set_new(s, "required", req);
        if (tu_below(4) == 0) json_object_set_new(s, "additionalProperties", json_boolean(tu_below(2)));
    } else if (!strcmp(t, "array")) {
        json_object_set_new(s, "items", rand_schema(depth + 1));
        uint32_t mn = tu_below(3);
        if (tu_below(2)) json_object_set_new(s, "minItems", json_integer(mn));
        json_object_set_new(s, "maxItems", json_integer(mn + tu_below(3)));
    } else if (!strcmp(t, "integer") && tu_below(8) == 0) {
        json_object_set_new(s, "minimum", json_integer(0));    /* refused */
    }
    return s;
}

static void test_random_schemas(void) {
    colloq_grammar_vocab *v = NULL;
    colloq_err err;
    CHECK(colloq_grammar_vocab_new(N_SYNTH, synth_piece, synth_eog, NULL, &v, &err) == 0, "%s", err.msg);
    uint64_t mask[8] = { 0 };
    int compiled = 0, refused = 0, docs = 0;
    int n_iter = getenv("GRAMMAR_FUZZ") ? atoi(getenv("GRAMMAR_FUZZ")) : 400;
    for (int iter = 0; iter < n_iter; iter++) {
        tu_seed(31337 + (uint64_t)iter);
        json_t *schema = rand_schema(0);
        colloq_grammar_opts o = colloq_grammar_default_opts();
        o.ws_max = 2; o.max_string = 6; o.max_depth = 8;
        colloq_grammar *g = NULL;
        int rc = colloq_grammar_new_schema(schema, &o, &g, &err);
        char *txt = json_dumps(schema, JSON_COMPACT);
        if (rc) {
            CHECK(rc == COLLOQ_ERR_ARG && strstr(err.msg, "json schema"), "schema %s: rc %d %s", txt, rc, err.msg);
            refused++;
            if (getenv("GRAMMAR_FUZZ_V")) printf("refused: %s\n", err.msg);
        } else {
            compiled++;
            colloq_grammar_state *s = NULL;
            colloq_grammar_state_new(g, v, &s, &err);
            for (int walk = 0; walk < 4; walk++) {
                colloq_grammar_state_reset(s);
                int budget = colloq_grammar_min_length(g) + 40;
                buf text = { 0 };
                bool ended = false;
                for (int step = 0; step < budget && !ended; step++) {
                    int cnt = colloq_grammar_state_mask(s, budget - step, mask);
                    CHECK(cnt > 0, "schema %s: no token after [%s]", txt, text.p ? text.p : "");
                    if (cnt <= 0) break;
                    int pick = (int)tu_below((uint32_t)cnt);
                    colloq_token t;
                    for (t = 0; t < N_SYNTH; t++)
                        if (((mask[t >> 6] >> (t & 63)) & 1) && pick-- == 0) break;
                    CHECK(colloq_grammar_state_accept(s, t, &err) == 0, "accept: %s", err.msg);
                    char pc[64];
                    int pn = synth_piece(NULL, t, pc, sizeof pc);
                    if (synth_eog(NULL, t)) ended = true;
                    else bput(&text, pc, (size_t)pn);
                }
                CHECK(ended, "schema %s: not finished in %d tokens: [%s]", txt, budget, text.p);
                json_error_t je;
                json_t *x = json_loadb(text.p ? text.p : "", text.n, JSON_DECODE_ANY, &je);
                char why[200] = "";
                CHECK(x && tu_validate(schema, schema, x, true, why, sizeof why), "schema %s: [%s] %s %s", txt,
                      text.p, x ? "invalid:" : je.text, why);
                json_decref(x);
                free(text.p);
                docs++;
            }
            colloq_grammar_state_free(s);
        }
        free(txt);
        colloq_grammar_free(g);
        json_decref(schema);
    }
    printf("random schemas: %d compiled (%d documents sampled and validated), %d refused with a message\n",
           compiled, docs, refused);
    CHECK(compiled > 100 && refused > 10, "too few schemas of one kind");
    colloq_grammar_vocab_free(v);
}

/* ---- every allocation failing in turn: an error, never a crash or a leak ---- */

static void test_alloc_failures(void) {
    const char *schema = "{\"$defs\":{\"n\":{\"type\":\"object\",\"properties\":{\"v\":{\"enum\":[1,2]},\"k\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/n\"}}},\"required\":[\"v\"]}},"
                         "\"anyOf\":[{\"$ref\":\"#/$defs/n\"},{\"type\":\"string\"},{\"enum\":[\"x\",null]}]}";
    int ok_at = -1;
    for (long n = 0; n < 2000 && ok_at < 0; n++) {
        colloq_err err = {{0}};
        colloq_grammar *g = NULL;
        colloq_grammar_vocab *v = NULL;
        colloq_grammar_state *s = NULL;
        uint64_t mask[8];
        colloq_test_fail_alloc_after(n);
        int rc = colloq_grammar_new_schema_text(schema, strlen(schema), NULL, &g, &err);
        if (!rc) rc = colloq_grammar_vocab_new(N_SYNTH, synth_piece, synth_eog, NULL, &v, &err);
        if (!rc) rc = colloq_grammar_state_new(g, v, &s, &err);
        colloq_test_fail_alloc_after(-1);
        CHECK(rc == 0 || rc == COLLOQ_ERR_NOMEM, "allocation %ld failing: rc %d %s", n, rc, err.msg);
        if (!rc) {
            CHECK(colloq_grammar_state_mask(s, -1, mask) > 0, "mask after allocation tests");
            ok_at = (int)n;
        }
        colloq_grammar_state_free(s);
        colloq_grammar_vocab_free(v);
        colloq_grammar_free(g);
    }
    CHECK(ok_at > 10, "allocation failure test never succeeded");
    printf("allocation failures: the first %d allocations each failed in turn, all reported\n", ok_at);
}

/* ---- a real vocabulary ---- */

static int test_vocab(const char *path) {
    gguf_file *f = NULL;
    colloq_vocab *voc = NULL;
    colloq_grammar_vocab *v = NULL;
    int rc = tu_load_vocab(path, &f, &voc, &v);
    if (rc == 77) { printf("%s absent (shared test data missing?) - skipped\n", path); return 77; }
    if (rc) return 1;
    int n_vocab = colloq_vocab_n(voc), words = colloq_grammar_mask_words(v);
    uint64_t *mask = calloc((size_t)words, sizeof *mask), *full = calloc((size_t)words, sizeof *full);
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    static const char *const schemas[] = {
        NULL,   /* json_object */
        "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":20},\"age\":{\"type\":\"integer\"},"
        "\"email\":{\"type\":\"string\",\"minLength\":3,\"maxLength\":30},\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"b\",\"vip\"]},\"maxItems\":4},"
        "\"ok\":{\"type\":\"boolean\"},\"score\":{\"type\":[\"number\",\"null\"]}},\"required\":[\"name\",\"age\",\"ok\"]}",
        "{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"number\"},\"y\":{\"type\":\"number\"}},\"required\":[\"x\",\"y\"]},\"minItems\":1,\"maxItems\":3}",
        "{\"anyOf\":[{\"type\":\"object\",\"properties\":{\"name\":{\"const\":\"get_weather\"},\"arguments\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":16},\"unit\":{\"enum\":[\"c\",\"f\"]}},\"required\":[\"city\"]}},\"required\":[\"name\",\"arguments\"]},"
        "{\"type\":\"object\",\"properties\":{\"name\":{\"const\":\"add\"},\"arguments\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"integer\"}},\"required\":[\"a\",\"b\"]}},\"required\":[\"name\",\"arguments\"]}]}",
        "{\"type\":\"string\",\"minLength\":5,\"maxLength\":40}",
    };
    double mask_time = 0;
    long n_masks = 0, n_tokens = 0;
    int brute = 0;
    for (size_t si = 0; si < sizeof schemas / sizeof *schemas; si++) {
        colloq_grammar *g = NULL;
        colloq_err err;
        colloq_grammar_opts o = colloq_grammar_default_opts();
        o.max_string = 24; o.max_depth = 5; o.ws_max = 4;
        rc = schemas[si] ? colloq_grammar_new_schema_text(schemas[si], strlen(schemas[si]), &o, &g, &err)
                         : colloq_grammar_new_any(&o, true, &g, &err);
        CHECK(rc == 0, "schema %zu: %s", si, err.msg);
        if (rc) continue;
        json_t *schema = schemas[si] ? json_loads(schemas[si], 0, NULL) : json_pack("{s:s}", "type", "object");
        colloq_grammar_state *s = NULL;
        colloq_grammar_state_new(g, v, &s, &err);
        for (int seed = 0; seed < 100; seed++) {
            tu_seed(5000 + (uint64_t)seed * 7 + si);
            colloq_grammar_state_reset(s);
            const int budget = 160;
            buf text = { 0 };
            bool ended = false;
            for (int step = 0; step < budget && !ended; step++) {
                for (int t = 0; t < n_vocab; t++) logits[t] = tu_uniform() * 10.0f;
                double t0 = colloq_now();
                int cnt = colloq_grammar_state_mask_logits(s, budget - step, logits, n_vocab);
                mask_time += colloq_now() - t0;
                n_masks++;
                CHECK(cnt > 0, "schema %zu seed %d: no token allowed after [%s]", si, seed, text.p ? text.p : "");
                if (cnt <= 0) break;
                if (seed % 50 == 0 && step % 8 == 3) {     /* every token against its bytes */
                    colloq_grammar_state_mask(s, -1, full);
                    char what[64];
                    snprintf(what, sizeof what, "schema %zu seed %d step %d", si, seed, step);
                    CHECK(brute_check(s, v, full, n_vocab, tu_piece, tu_eog, voc, what) == 0, "%s: mask mismatch", what);
                    brute++;
                }
                colloq_token best = -1;
                for (int t = 0; t < n_vocab; t++)
                    if (logits[t] > -INFINITY && (best < 0 || logits[t] > logits[best])) best = t;
                CHECK(best >= 0 && colloq_grammar_state_accept(s, best, &err) == 0, "accept %d: %s", best, err.msg);
                if (best < 0) break;
                n_tokens++;
                if (colloq_vocab_is_eog(voc, best)) { ended = true; break; }
                char p[256];
                int n = colloq_vocab_piece(voc, best, false, p, sizeof p);
                if (n > 0 && n <= (int)sizeof p) bput(&text, p, (size_t)n);
            }
            CHECK(ended, "schema %zu seed %d: not finished in %d tokens: [%s]", si, seed, budget, text.p);
            json_error_t je;
            json_t *x = json_loadb(text.p ? text.p : "", text.n, JSON_DECODE_ANY, &je);
            char why[200] = "";
            CHECK(x && tu_validate(schema, schema, x, true, why, sizeof why), "schema %zu seed %d: [%s] %s %s",
                  si, seed, text.p, x ? "invalid:" : je.text, why);
            if (seed < 2) printf("  schema %zu seed %d: %s\n", si, seed, text.p);
            json_decref(x);
            free(text.p);
        }
        json_decref(schema);
        colloq_grammar_state_free(s);
        colloq_grammar_free(g);
    }
    printf("real vocabulary (%d tokens): %ld masks, %.1f us per mask on average (sampling runs), %d full checks\n",
           n_vocab, n_masks, 1e6 * mask_time / (double)(n_masks ? n_masks : 1), brute);

    /* timing of typical states */
    colloq_grammar *g = NULL;
    colloq_err err;
    colloq_grammar_new_schema_text(schemas[1], strlen(schemas[1]), NULL, &g, &err);
    colloq_grammar_state *s = NULL;
    colloq_grammar_state_new(g, v, &s, &err);
    static const char *const prefixes[] = { "", "{", "{\"name\": \"Jo", "{\"name\": \"Jo\", \"age\": 4", "{\"name\": \"Jo\", \"age\": 4, \"tags\": [\"vip\"" };
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        colloq_grammar_state_reset(s);
        CHECK(colloq_grammar_state_accept_bytes(s, prefixes[i], strlen(prefixes[i]), &err) == 0, "prefix %zu", i);
        int reps = 200, cnt = 0;
        double t0 = colloq_now();
        for (int r = 0; r < reps; r++) cnt = colloq_grammar_state_mask(s, -1, mask);
        double us = 1e6 * (colloq_now() - t0) / reps;
        printf("  mask after [%s]: %d tokens allowed, %.1f us\n", prefixes[i], cnt, us);
    }
    colloq_grammar_state_free(s);
    colloq_grammar_free(g);
    free(mask); free(full); free(logits);
    colloq_grammar_vocab_free(v);
    colloq_vocab_free(voc);
    gguf_close(f);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "unit")) {
        test_parity();
        test_schemas();
        test_limits();
        test_synthetic();
        test_random_schemas();
        test_alloc_failures();
    } else if (argc >= 3 && !strcmp(argv[1], "vocab")) {
        int rc = test_vocab(argv[2]);
        if (rc == 77) return 77;
        if (rc) return 1;
    } else {
        fprintf(stderr, "usage: test_grammar unit | vocab FILE.gguf\n");
        return 2;
    }
    if (failures) { fprintf(stderr, "%d failures\n", failures); return 1; }
    printf("ok\n");
    return 0;
}
