/*
 * test_toolcall.c - tests of tool calling (toolcall*.c):
 *   test_toolcall unit                request parsing and errors, the call grammar,
 *                                     response_format, the output parser (whole and
 *                                     split at every point), the constraint on a
 *                                     synthetic vocabulary;
 *   test_toolcall shared DIR          the constraint sampled on a real vocabulary
 *                                     (required and auto), prompts with templates that
 *                                     have and lack tool support.  77 when DIR is absent.
 * Test code only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "grammar_testutil.h"
#include "toolcall.h"
#include "util.h"

static int failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
                              fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static const char *TOOLS =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather in a city\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":12},"
    "\"unit\":{\"enum\":[\"c\",\"f\"]}},\"required\":[\"city\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"add\",\"description\":\"Add two integers\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"integer\"}},"
    "\"required\":[\"a\",\"b\"],\"$defs\":{\"unused\":{\"type\":\"string\"}}}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"now\"}}]";

static json_t *request(const char *tools, const char *extra) {
    char buf[4096];
    snprintf(buf, sizeof buf, "{\"messages\":[]%s%s%s%s}", tools ? ",\"tools\":" : "", tools ? tools : "",
             extra ? "," : "", extra ? extra : "");
    json_error_t je;
    json_t *r = json_loads(buf, 0, &je);
    if (!r) { fprintf(stderr, "bad test request: %s\n%s\n", je.text, buf); exit(1); }
    return r;
}

/* The tool whose name a call names: its parameters schema (NULL if absent). */
static const json_t *params_of(const json_t *tools, const char *name, bool *found) {
    *found = false;
    for (size_t i = 0; i < json_array_size(tools); i++) {
        const json_t *fn = json_object_get(json_array_get(tools, i), "function");
        if (!strcmp(json_string_value(json_object_get(fn, "name")), name)) {
            *found = true;
            return json_object_get(fn, "parameters");
        }
    }
    return NULL;
}

/* Every call names a tool and its arguments parse and validate against its parameters. */
static bool calls_valid(const json_t *tools, const json_t *calls, char *why, size_t wn) {
    for (size_t i = 0; i < json_array_size(calls); i++) {
        const json_t *c = json_array_get(calls, i), *fn = json_object_get(c, "function");
        const char *id = json_string_value(json_object_get(c, "id"));
        if (!id || strncmp(id, "call_", 5) || strlen(id) < 10) { snprintf(why, wn, "bad id"); return false; }
        if (strcmp(json_string_value(json_object_get(c, "type")), "function")) { snprintf(why, wn, "bad type"); return false; }
        bool found;
        const json_t *ps = params_of(tools, json_string_value(json_object_get(fn, "name")), &found);
        if (!found) { snprintf(why, wn, "unknown function"); return false; }
        const char *args = json_string_value(json_object_get(fn, "arguments"));
        json_t *a = args ? json_loads(args, 0, NULL) : NULL;
        bool ok = a && json_is_object(a);
        if (ok && ps) ok = tu_validate(ps, ps, a, true, why, wn);
        if (ok && !ps) ok = json_object_size(a) == 0;
        json_decref(a);
        if (!ok) { if (!why[0]) snprintf(why, wn, "arguments [%s]", args ? args : "(none)"); return false; }
    }
    return true;
}

/* ---- request parsing ---- */

static void test_spec(void) {
    colloq_toolspec *ts = NULL;
    colloq_err err = {{0}};
    json_t *r = request(NULL, NULL);
    CHECK(colloq_toolspec_parse(r, NULL, &ts, &err) == 0 && ts == NULL, "no tools");
    json_decref(r);

    r = request(TOOLS, NULL);
    CHECK(colloq_toolspec_parse(r, NULL, &ts, &err) == 0 && ts, "tools: %s", err.msg);
    CHECK(colloq_toolspec_mode(ts) == COLLOQ_TOOLS_AUTO && colloq_toolspec_n_tools(ts) == 3, "auto by default");
    CHECK(colloq_toolspec_parallel(ts) && colloq_toolspec_forced(ts) == NULL, "parallel by default");
    char *sys = colloq_toolcall_system_text(ts);
    CHECK(sys && strstr(sys, "<tools>") && strstr(sys, "get_weather") && strstr(sys, COLLOQ_TOOLCALL_OPEN), "system text");
    colloq_free(sys);
    colloq_toolspec_free(ts);
    json_decref(r);

    static const struct { const char *extra; colloq_tools_mode mode; const char *forced; bool parallel; } ok[] = {
        { "\"tool_choice\":\"none\"", COLLOQ_TOOLS_NONE, NULL, true },
        { "\"tool_choice\":\"required\",\"parallel_tool_calls\":false", COLLOQ_TOOLS_REQUIRED, NULL, false },
        { "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"add\"}}", COLLOQ_TOOLS_REQUIRED, "add", true },
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        r = request(TOOLS, ok[i].extra);
        int rc = colloq_toolspec_parse(r, NULL, &ts, &err);
        CHECK(rc == 0 && colloq_toolspec_mode(ts) == ok[i].mode && colloq_toolspec_parallel(ts) == ok[i].parallel &&
              ((!ok[i].forced && !colloq_toolspec_forced(ts)) ||
               (ok[i].forced && colloq_toolspec_forced(ts) && !strcmp(ok[i].forced, colloq_toolspec_forced(ts)))),
              "choice %zu: rc %d %s", i, rc, err.msg);
        colloq_toolspec_free(ts);
        json_decref(r);
    }

    static const struct { const char *tools, *extra, *msg; } bad[] = {
        { NULL, "\"tool_choice\":\"required\"", "no tools" },
        { "[{\"type\":\"retrieval\"}]", NULL, "type must be" },
        { "[{\"type\":\"function\",\"function\":{\"name\":\"a b\"}}]", NULL, "letters" },
        { "[{\"type\":\"function\",\"function\":{\"name\":\"f\"}},{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]", NULL, "used twice" },
        { "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"integer\",\"minimum\":1}}}}}]",
          NULL, "tools[0].function.parameters (f): json schema at /properties/x: keyword 'minimum'" },
        { "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":[1]}}]", NULL, "JSON Schema object" },
        { "[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]", "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"g\"}}", "'g'" },
        { "[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]", "\"tool_choice\":\"sometimes\"", "tool_choice must be" },
        { "[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]", "\"parallel_tool_calls\":1", "boolean" },
        { "{}", NULL, "array" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        r = request(bad[i].tools, bad[i].extra);
        ts = NULL;
        int rc = colloq_toolspec_parse(r, NULL, &ts, &err);
        CHECK(rc == COLLOQ_ERR_ARG && ts == NULL && strstr(err.msg, bad[i].msg), "bad %zu: rc %d '%s' (want '%s')",
              i, rc, err.msg, bad[i].msg);
        json_decref(r);
    }
}

/* ---- the call grammar ---- */

static int dummy_piece(void *ud, colloq_token t, char *p, int cap) { (void)ud; (void)t; if (cap) p[0] = ' '; return 1; }

static void test_call_grammar(void) {
    colloq_toolspec *ts = NULL;
    colloq_err err = {{0}};
    json_t *r = request(TOOLS, NULL);
    colloq_toolspec_parse(r, NULL, &ts, &err);
    colloq_grammar_vocab *v = NULL;
    colloq_grammar_vocab_new(1, dummy_piece, NULL, NULL, &v, &err);
    colloq_grammar_state *s = NULL;
    CHECK(colloq_grammar_state_new(colloq_toolspec_grammar(ts), v, &s, &err) == 0, "%s", err.msg);
    static const char *yes[] = {
        "{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}",
        "{ \"name\": \"add\", \"arguments\": {\"b\": 2, \"a\": -1} }",
        "{\"name\":\"now\",\"arguments\":{}}",
        "{\"name\":\"get_weather\",\"arguments\":{\"unit\":\"f\",\"city\":\"\"}}",
    };
    static const char *no[] = {
        "{\"arguments\":{},\"name\":\"now\"}",                       /* the name comes first */
        "{\"name\":\"nope\",\"arguments\":{}}",
        "{\"name\":\"now\"}",
        "{\"name\":\"now\",\"arguments\":{\"x\":1}}",
        "{\"name\":\"add\",\"arguments\":{\"a\":1}}",
        "{\"name\":\"get_weather\",\"arguments\":{\"city\":\"a very long city\"}}",
        "{\"name\":\"add\",\"arguments\":{\"a\":1,\"b\":2},\"extra\":0}",
    };
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        colloq_grammar_state_reset(s);
        CHECK(colloq_grammar_state_accept_bytes(s, yes[i], strlen(yes[i]), &err) == 0 && colloq_grammar_state_done(s),
              "call grammar should accept %s", yes[i]);
    }
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        colloq_grammar_state_reset(s);
        bool acc = colloq_grammar_state_accept_bytes(s, no[i], strlen(no[i]), &err) == 0 && colloq_grammar_state_done(s);
        CHECK(!acc, "call grammar should reject %s", no[i]);
    }
    colloq_grammar_state_free(s);
    colloq_grammar_vocab_free(v);
    colloq_toolspec_free(ts);
    json_decref(r);

    /* response_format */
    colloq_grammar *g = NULL;
    r = request(NULL, "\"response_format\":{\"type\":\"json_object\"}");
    CHECK(colloq_toolcall_response_format(r, NULL, &g, &err) == 0 && g, "json_object: %s", err.msg);
    colloq_grammar_free(g);
    json_decref(r);
    r = request(NULL, "\"response_format\":{\"type\":\"text\"}");
    CHECK(colloq_toolcall_response_format(r, NULL, &g, &err) == 0 && !g, "text");
    json_decref(r);
    r = request(NULL, "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{\"type\":\"integer\"}}}");
    CHECK(colloq_toolcall_response_format(r, NULL, &g, &err) == 0 && g, "json_schema: %s", err.msg);
    colloq_grammar_free(g);
    json_decref(r);
    static const char *bad[] = {
        "\"response_format\":{\"type\":\"yaml\"}", "\"response_format\":{\"type\":\"json_schema\"}",
        "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{\"type\":\"string\",\"pattern\":\"a\"}}}",
        "\"response_format\":\"json\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        r = request(NULL, bad[i]);
        g = NULL;
        int rc = colloq_toolcall_response_format(r, NULL, &g, &err);
        CHECK(rc == COLLOQ_ERR_ARG && !g && !strncmp(err.msg, "response_format", 15), "bad response_format %zu: %d %s", i, rc, err.msg);
        json_decref(r);
    }
}

/* ---- the output parser ---- */

typedef struct {
    char content[4096];
    size_t n_content;
    int n_begin;
    char ids[8][40], names[8][70], args[8][1024];
    int bad;
} events;

static void ev_content(void *ud, const char *s, size_t n) {
    events *e = ud;
    if (e->n_content + n < sizeof e->content) { memcpy(e->content + e->n_content, s, n); e->n_content += n; }
}
static void ev_begin(void *ud, int index, const char *id, const char *name) {
    events *e = ud;
    if (index != e->n_begin || index >= 8) { e->bad++; return; }
    snprintf(e->ids[index], sizeof e->ids[index], "%s", id);
    snprintf(e->names[index], sizeof e->names[index], "%s", name);
    e->n_begin++;
}
static void ev_args(void *ud, int index, const char *s, size_t n) {
    events *e = ud;
    if (index < 0 || index >= e->n_begin) { e->bad++; return; }
    size_t have = strlen(e->args[index]);
    if (have + n < sizeof e->args[index]) { memcpy(e->args[index] + have, s, n); e->args[index][have + n] = 0; }
}

typedef struct { const char *text, *content; int n_calls; const char *names[3], *args[3]; } parse_case;

static void test_parser(void) {
    static const parse_case cases[] = {
        { "Hello there", "Hello there", 0, { 0 }, { 0 } },
        { "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>", "", 1,
          { "get_weather" }, { "{\"city\": \"Paris\"}" } },
        { "Let me check.\n<tool_call>{\"name\":\"a\",\"arguments\":{\"x\":[1,{\"y\":\"}\"}]}}</tool_call>\n"
          "<tool_call>{\"name\":\"b\",\"arguments\":{}}</tool_call>", "Let me check.", 2,
          { "a", "b" }, { "{\"x\":[1,{\"y\":\"}\"}]}", "{}" } },
        { "<tool_call>{\"arguments\":{\"q\":\"\\\"x\"},\"name\":\"search\"}</tool_call>", "", 1,
          { "search" }, { "{\"q\":\"\\\"x\"}" } },
        { "<tool_call>{\"name\":\"now\"}</tool_call> done", "done", 1, { "now" }, { "{}" } },
        { "<tool_call>{\"name\":\"f\",\"parameters\":{\"k\":1}}</tool_call>", "", 1, { "f" }, { "{\"k\":1}" } },
        { "<tool_call>{\"name\":\"f\",\"arguments\":\"{\\\"k\\\":2}\"}</tool_call>", "", 1, { "f" }, { "{\"k\":2}" } },
        { "a <tool_ca b <tool_call>not json", NULL, 0, { 0 }, { 0 } },
        { "x <tool_call>{\"name\":\"f\",\"argu", "x", 0, { 0 }, { 0 } },
        { "<tool_call>{\"arguments\":{}}</tool_call>", "<tool_call>{\"arguments\":{}}</tool_call>", 0, { 0 }, { 0 } },
        { "<tool_call>{\"name\":\"f\",\"arguments\":{}}</tool_call>junk", "junk", 1, { "f" }, { "{}" } },
        { "<tool_call>{\"name\":\"f\",\"arguments\":{}}</tool>", "</tool>", 1, { "f" }, { "{}" } },
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        const parse_case *pc = &cases[ci];
        size_t len = strlen(pc->text);
        /* the expected content for the "not json" case keeps what was not a call */
        const char *want_content = pc->content;
        if (ci == 7) want_content = "a <tool_ca b<tool_call>not json";   /* the space before a tag goes */
        for (size_t split = 0; split <= len; split += (ci == 0 ? 1 : 1)) {
            colloq_toolcall_parser *p = NULL;
            colloq_err err;
            colloq_toolcall_parser_new(&p, &err);
            events e;
            memset(&e, 0, sizeof e);
            colloq_toolcall_sink k = { ev_content, ev_begin, ev_args };
            /* split into two pieces at `split`, then the rest byte by byte for odd cases */
            colloq_toolcall_parser_feed(p, pc->text, split, &k, &e);
            if (split % 2) for (size_t i = split; i < len; i++) colloq_toolcall_parser_feed(p, pc->text + i, 1, &k, &e);
            else colloq_toolcall_parser_feed(p, pc->text + split, len - split, &k, &e);
            colloq_toolcall_parser_finish(p, &k, &e);
            size_t cn;
            const char *content = colloq_toolcall_parser_content(p, &cn);
            CHECK(cn == strlen(want_content) && !memcmp(content, want_content, cn), "case %zu split %zu: content [%.*s] want [%s]",
                  ci, split, (int)cn, content, want_content);
            CHECK(e.n_content == cn && !memcmp(e.content, content, cn), "case %zu: streamed content differs", ci);
            CHECK(colloq_toolcall_parser_n_calls(p) == pc->n_calls, "case %zu split %zu: %d calls, want %d", ci, split,
                  colloq_toolcall_parser_n_calls(p), pc->n_calls);
            CHECK(e.bad == 0, "case %zu: bad event order", ci);
            json_t *calls = colloq_toolcall_parser_calls(p);
            for (int i = 0; i < pc->n_calls && i < (int)json_array_size(calls); i++) {
                const json_t *c = json_array_get(calls, (size_t)i), *fn = json_object_get(c, "function");
                const char *name = json_string_value(json_object_get(fn, "name"));
                const char *args = json_string_value(json_object_get(fn, "arguments"));
                CHECK(name && !strcmp(name, pc->names[i]), "case %zu call %d: name %s", ci, i, name);
                CHECK(args && !strcmp(args, pc->args[i]), "case %zu call %d: arguments [%s] want [%s]", ci, i, args, pc->args[i]);
                CHECK(!strcmp(json_string_value(json_object_get(c, "id")), e.ids[i]), "case %zu: ids differ", ci);
                CHECK(!strcmp(e.names[i], pc->names[i]), "case %zu: streamed name %s", ci, e.names[i]);
                /* streamed fragments form the same JSON value */
                json_t *a = json_loads(e.args[i], JSON_DECODE_ANY, NULL), *b = json_loads(args, JSON_DECODE_ANY, NULL);
                CHECK(a && b && json_equal(a, b), "case %zu split %zu: streamed arguments [%s] vs [%s]", ci, split, e.args[i], args);
                json_decref(a);
                json_decref(b);
            }
            if (pc->n_calls == 0) CHECK(calls == NULL, "case %zu: calls array without calls", ci);
            if (pc->n_calls >= 2) CHECK(strcmp(e.ids[0], e.ids[1]) != 0, "ids must differ");
            json_decref(calls);
            colloq_toolcall_parser_free(p);
        }
    }
    /* deltas */
    json_t *d = colloq_toolcall_delta_begin(1, "call_x", "f");
    char *s = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK(s && !strcmp(s, "{\"tool_calls\":[{\"function\":{\"arguments\":\"\",\"name\":\"f\"},\"id\":\"call_x\",\"index\":1,\"type\":\"function\"}]}"), "delta begin %s", s);
    free(s);
    json_decref(d);
    d = colloq_toolcall_delta_args(0, "{\"a\":", 5);
    s = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK(s && !strcmp(s, "{\"tool_calls\":[{\"function\":{\"arguments\":\"{\\\"a\\\":\"},\"index\":0}]}"), "delta args %s", s);
    free(s);
    json_decref(d);
}

/* ---- the constraint, sampled ---- */

/* Sample with random logits under the tool-call constraint; free text (auto mode) comes
 * from `forced` tokens first.  Returns the text. */
static char *sample(colloq_toolcall *tc, const colloq_grammar_vocab *v, int n_vocab, int budget,
                    const colloq_token *forced, int n_forced, bool *ended) {
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    size_t cap = 4096, n = 0;
    char *text = calloc(cap, 1);
    *ended = false;
    colloq_err err;
    for (int step = 0; step < budget; step++) {
        colloq_token best = -1;
        for (int t = 0; t < n_vocab; t++) logits[t] = tu_uniform();
        int cnt = colloq_toolcall_mask_logits(tc, budget - step, logits, n_vocab);
        CHECK(cnt > 0, "no token allowed after [%s]", text);
        if (cnt <= 0) break;
        if (step < n_forced) {
            best = forced[step];
            CHECK(logits[best] > -INFINITY, "forced free-text token %d masked", best);
        } else {
            for (int t = 0; t < n_vocab; t++)
                if (logits[t] > -INFINITY && (best < 0 || logits[t] > logits[best])) best = t;
        }
        size_t pn = 0;
        const char *p = colloq_grammar_vocab_piece(v, best, &pn);
        CHECK(colloq_toolcall_accept(tc, best, p, pn, &err) == 0, "accept %d: %s", best, err.msg);
        if (colloq_grammar_vocab_is_eog(v, best)) { *ended = true; break; }
        if (n + pn + 1 > cap) { cap = 2 * (n + pn + 1); text = realloc(text, cap); }
        memcpy(text + n, p, pn);
        n += pn;
        text[n] = 0;
    }
    free(logits);
    return text;
}

static void check_output(const json_t *tools, const char *text, bool ended, int min_calls, bool content_ok,
                         const char *what) {
    CHECK(ended, "%s: did not end: [%s]", what, text);
    colloq_toolcall_parser *p = NULL;
    colloq_err err;
    colloq_toolcall_parser_new(&p, &err);
    colloq_toolcall_parser_feed(p, text, strlen(text), NULL, NULL);
    colloq_toolcall_parser_finish(p, NULL, NULL);
    json_t *calls = colloq_toolcall_parser_calls(p);
    char why[200] = "";
    CHECK(colloq_toolcall_parser_n_calls(p) >= min_calls, "%s: %d calls in [%s]", what, colloq_toolcall_parser_n_calls(p), text);
    CHECK(calls_valid(tools, calls, why, sizeof why), "%s: invalid call (%s) in [%s]", what, why, text);
    size_t cn;
    colloq_toolcall_parser_content(p, &cn);
    CHECK(content_ok || cn == 0, "%s: content in a required answer: [%s]", what, text);
    json_decref(calls);
    colloq_toolcall_parser_free(p);
}

static const char *const synth[] = {
    "<tool_call>", "</tool_call>", "<tool", "_call>", "</", "tool_call", ">", "\n", " ", "{\"name\": \"", "\", \"arguments\": ",
    "get_weather", "add", "now", "city", "Paris", "{}", "}", "}}", "\"", "1", "-", "a", "b", ":", ",", "{", "Hi", "<eos>",
};
#define N_WORDS (int)(sizeof synth / sizeof *synth)
#define N_SYNTH (N_WORDS + 256)
static int synth_piece(void *ud, colloq_token t, char *p, int cap) {
    (void)ud;
    if (t < 0 || t >= N_SYNTH) return -1;
    if (t == N_WORDS - 1) return 0;
    if (t >= N_WORDS) { if (cap) p[0] = (char)(t - N_WORDS); return 1; }
    int n = (int)strlen(synth[t]);
    if (n <= cap) memcpy(p, synth[t], (size_t)n);
    return n;
}
static bool synth_eog(void *ud, colloq_token t) { (void)ud; return t == N_WORDS - 1; }

static void run_constraint(const colloq_grammar_vocab *v, int n_vocab, const char *extra, int seeds, int budget,
                           const colloq_token *forced, int n_forced, int min_calls, bool content_ok, const char *what) {
    json_t *r = request(TOOLS, extra);
    colloq_toolspec *ts = NULL;
    colloq_err err;
    CHECK(colloq_toolspec_parse(r, NULL, &ts, &err) == 0, "%s: %s", what, err.msg);
    const json_t *tools = json_object_get(r, "tools");
    for (int seed = 0; seed < seeds; seed++) {
        tu_seed(900 + (uint64_t)seed);
        colloq_toolcall *tc = NULL;
        CHECK(colloq_toolcall_new(ts, v, &tc, &err) == 0, "%s", err.msg);
        bool ended;
        char *text = sample(tc, v, n_vocab, budget, forced, n_forced, &ended);
        char w[96];
        snprintf(w, sizeof w, "%s seed %d", what, seed);
        check_output(tools, text, ended, min_calls, content_ok, w);
        if (seed < 2) printf("  %s: %s\n", w, text);
        free(text);
        colloq_toolcall_free(tc);
    }
    colloq_toolspec_free(ts);
    json_decref(r);
}

static void test_constraint_synthetic(void) {
    colloq_grammar_vocab *v = NULL;
    colloq_err err;
    CHECK(colloq_grammar_vocab_new(N_SYNTH, synth_piece, synth_eog, NULL, &v, &err) == 0, "%s", err.msg);
    run_constraint(v, N_SYNTH, "\"tool_choice\":\"required\"", 40, 120, NULL, 0, 1, false, "synthetic required");
    run_constraint(v, N_SYNTH, "\"tool_choice\":\"required\",\"parallel_tool_calls\":false", 40, 80, NULL, 0, 1, false,
                   "synthetic single");
    run_constraint(v, N_SYNTH, "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"add\"}}", 30, 80, NULL, 0, 1,
                   false, "synthetic named");
    colloq_token hi_call[] = { 27, 8, 0 };              /* "Hi", " ", "<tool_call>" */
    run_constraint(v, N_SYNTH, "\"parallel_tool_calls\":false", 30, 80, hi_call, 3, 1, true, "synthetic auto");
    /* a forced single call ends after one call */
    json_t *r = request(TOOLS, "\"tool_choice\":\"required\",\"parallel_tool_calls\":false");
    colloq_toolspec *ts = NULL;
    colloq_toolspec_parse(r, NULL, &ts, &err);
    colloq_toolcall *tc = NULL;
    colloq_toolcall_new(ts, v, &tc, &err);
    const char *seq = "<tool_call>{\"name\": \"now\", \"arguments\": {}}</tool_call>";
    /* feed the sequence byte by byte via single-byte tokens */
    for (const char *c = seq; *c; c++) {
        colloq_token t = N_WORDS + (unsigned char)*c;
        float *lg = calloc(N_SYNTH, sizeof *lg);
        colloq_toolcall_mask_logits(tc, -1, lg, N_SYNTH);
        CHECK(lg[t] == 0, "byte '%c' of a valid call masked", *c);
        CHECK(colloq_toolcall_accept(tc, t, c, 1, &err) == 0, "%s", err.msg);
        free(lg);
    }
    CHECK(colloq_toolcall_done(tc), "done after the single call");
    float lg[N_SYNTH] = { 0 };
    int cnt = colloq_toolcall_mask_logits(tc, -1, lg, N_SYNTH);
    CHECK(cnt == 1 && lg[N_WORDS - 1] == 0, "only the end after a single call (%d allowed)", cnt);
    colloq_toolcall_free(tc);
    colloq_toolspec_free(ts);
    json_decref(r);
    colloq_grammar_vocab_free(v);
}

/* ---- every allocation failing in turn ---- */

static void test_alloc_failures(void) {
    int ok_at = -1;
    colloq_grammar_vocab *v = NULL;
    colloq_err err = {{0}};
    colloq_grammar_vocab_new(N_SYNTH, synth_piece, synth_eog, NULL, &v, &err);
    json_t *r = request(TOOLS, "\"tool_choice\":\"required\"");
    const char *text = "hi <tool_call>{\"name\":\"add\",\"arguments\":{\"a\":1,\"b\":2}}</tool_call>";
    for (long n = 0; n < 3000 && ok_at < 0; n++) {
        colloq_toolspec *ts = NULL;
        colloq_toolcall *tc = NULL;
        colloq_toolcall_parser *p = NULL;
        colloq_test_fail_alloc_after(n);
        int rc = colloq_toolspec_parse(r, NULL, &ts, &err);
        if (!rc) rc = colloq_toolcall_new(ts, v, &tc, &err);
        if (!rc) rc = colloq_toolcall_parser_new(&p, &err);
        if (!rc) rc = colloq_toolcall_parser_feed(p, text, strlen(text), NULL, NULL);
        if (!rc) rc = colloq_toolcall_parser_finish(p, NULL, NULL);
        char *sys = rc ? NULL : colloq_toolcall_system_text(ts);
        if (!rc && !sys) rc = COLLOQ_ERR_NOMEM;
        colloq_test_fail_alloc_after(-1);
        CHECK(rc == 0 || rc == COLLOQ_ERR_NOMEM, "allocation %ld failing: rc %d %s", n, rc, err.msg);
        if (!rc) {
            ok_at = (int)n;
            CHECK(colloq_toolcall_parser_n_calls(p) == 1, "the call after allocation tests");
        }
        colloq_free(sys);
        colloq_toolcall_parser_free(p);
        colloq_toolcall_free(tc);
        colloq_toolspec_free(ts);
    }
    CHECK(ok_at > 10, "allocation failure test never succeeded");
    printf("allocation failures: the first %d allocations each failed in turn, all reported\n", ok_at);
    json_decref(r);
    colloq_grammar_vocab_free(v);
}

/* ---- with the shared test data ---- */

static void test_constraint_real(const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/testdata/vocab/ggml-vocab-llama-spm.gguf", dir);
    gguf_file *f = NULL;
    colloq_vocab *voc = NULL;
    colloq_grammar_vocab *v = NULL;
    if (tu_load_vocab(path, &f, &voc, &v)) { CHECK(0, "cannot load %s", path); return; }
    int n_vocab = colloq_vocab_n(voc);
    run_constraint(v, n_vocab, "\"tool_choice\":\"required\"", 100, 120, NULL, 0, 1, false, "llama-spm required");
    colloq_token ids[64];
    colloq_err err;
    const char *pre = "Sure, let me look that up. <tool_call>";
    int n = colloq_vocab_tokenize(voc, pre, strlen(pre), false, false, ids, 64, &err);
    CHECK(n > 0 && n < 64, "tokenize");
    run_constraint(v, n_vocab, "\"parallel_tool_calls\":false", 30, 150, ids, n, 1, true, "llama-spm auto");
    colloq_grammar_vocab_free(v);
    colloq_vocab_free(voc);
    gguf_close(f);
}

static char *render(const char *dir, const char *tmpl, const char *messages, const char *extra) {
    char path[1024];
    snprintf(path, sizeof path, "%s/testdata/templates/%s", dir, tmpl);
    colloq_chat_fmt *f = NULL;
    colloq_err err;
    if (colloq_chat_fmt_init(NULL, path, &f, &err)) { CHECK(0, "%s: %s", tmpl, err.msg); return NULL; }
    json_t *r = request(TOOLS, extra);
    json_t *m = json_loads(messages, 0, NULL);
    colloq_toolspec *ts = NULL;
    colloq_toolspec_parse(r, NULL, &ts, &err);
    char *out = NULL;
    size_t len = 0;
    int rc = colloq_toolcall_render(f, m, ts, true, &out, &len, &err);
    CHECK(rc == 0, "%s: render: %s", tmpl, err.msg);
    colloq_toolspec_free(ts);
    json_decref(m);
    json_decref(r);
    colloq_chat_fmt_free(f);
    return out;
}

static void test_prompts(const char *dir) {
    const char *msgs =
        "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
        "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"22 C, sunny\"},"
        "{\"role\":\"user\",\"content\":\"And in Rome?\"}]";
    /* a template with tool support in our format: used as it is */
    char *q = render(dir, "Qwen-Qwen2.5-7B-Instruct.jinja", msgs, NULL);
    if (q) {
        CHECK(strstr(q, "<tools>") && strstr(q, "\"get_weather\""), "qwen: tools rendered");
        CHECK(strstr(q, "{\"city\": \"Paris\"}") || strstr(q, "{\"city\":\"Paris\"}"), "qwen: arguments as an object:\n%s", q);
        CHECK(strstr(q, "<tool_response>\n22 C, sunny\n</tool_response>"), "qwen: tool result");
        CHECK(!strstr(q, "# Tools\n\nYou may call functions"), "qwen: no fallback text");
    }
    free(q);
    /* templates without tool support: the documented system text, calls and results as text */
    static const char *plain[] = { "meta-llama-Llama-2-7b-chat-hf.jinja", "mistralai-Mistral-7B-Instruct-v0.1.jinja",
                                   "google-gemma-2-2b-it.jinja", "HuggingFaceH4-zephyr-7b-beta.jinja" };
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++) {
        char *p = render(dir, plain[i], msgs, NULL);
        if (!p) continue;
        CHECK(strstr(p, "# Tools") && strstr(p, "get_weather") && strstr(p, COLLOQ_TOOLCALL_OPEN "\n{\"name\": <function name>"),
              "%s: tool description missing:\n%s", plain[i], p);
        CHECK(strstr(p, "{\"name\": \"get_weather\", \"arguments\": {\"city\":\"Paris\"}}"), "%s: earlier call:\n%s", plain[i], p);
        CHECK(strstr(p, "<tool_response>\n22 C, sunny\n</tool_response>"), "%s: tool result:\n%s", plain[i], p);
        CHECK(strstr(p, "And in Rome?") && strstr(p, "Be brief."), "%s: messages kept", plain[i]);
        free(p);
    }
    /* tool_choice none: no tool description */
    char *n = render(dir, "meta-llama-Llama-2-7b-chat-hf.jinja", msgs, "\"tool_choice\":\"none\"");
    if (n) CHECK(!strstr(n, "# Tools") && strstr(n, "22 C, sunny"), "none: no tools, history kept:\n%s", n);
    free(n);
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "unit")) {
        test_spec();
        test_call_grammar();
        test_parser();
        test_constraint_synthetic();
        test_alloc_failures();
    } else if (argc >= 3 && !strcmp(argv[1], "shared")) {
        struct stat st;
        char path[1024];
        snprintf(path, sizeof path, "%s/testdata", argv[2]);
        if (stat(path, &st) != 0) { printf("%s absent - skipped\n", path); return 77; }
        test_constraint_real(argv[2]);
        test_prompts(argv[2]);
    } else {
        fprintf(stderr, "usage: test_toolcall unit | shared DIR\n");
        return 2;
    }
    if (failures) { fprintf(stderr, "%d failures\n", failures); return 1; }
    printf("ok\n");
    return 0;
}
