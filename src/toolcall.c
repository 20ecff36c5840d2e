/*
 * toolcall.c - reading `tools` / `tool_choice` / `parallel_tool_calls` and
 * `response_format` from an OpenAI request into compiled grammars, and the
 * generation-time constraint for tool calls: free text until the open tag (auto), or
 * from the first token (required), the call object under its grammar, the close tag,
 * then more calls or the end.  Prompt text is toolcall_prompt.c's job, parsing the
 * output toolcall_parse.c's; no HTTP, no engine.
 */
#define _GNU_SOURCE   /* memmem */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "toolcall.h"
#include "util.h"

#define MAX_TOOLS  128
#define MAX_CALLS  16      /* calls in one answer */
#define TAG_WS     4       /* whitespace bytes allowed before a tag */

struct colloq_toolspec {
    colloq_tools_mode mode;
    bool              parallel;
    json_t           *tools;        /* the request's tools (a reference) */
    char            **names;
    int               n;
    int               forced;       /* tool_choice names this tool; -1 otherwise */
    colloq_grammar   *g;            /* one call object */
};

/* ---- request ---- */

static bool valid_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 64) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Point every local "$ref" of a tool's parameters at its copy under #/$defs/<def>. */
static int rebase_refs(json_t *s, const char *def) {
    if (json_is_array(s)) {
        for (size_t i = 0; i < json_array_size(s); i++)
            if (rebase_refs(json_array_get(s, i), def)) return -1;
        return 0;
    }
    if (!json_is_object(s)) return 0;
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v) {
        if (!strcmp(k, "enum") || !strcmp(k, "const") || !strcmp(k, "default") || !strcmp(k, "examples"))
            continue;
        if (!strcmp(k, "$ref") && json_is_string(v) && json_string_value(v)[0] == '#') {
            char buf[512];
            int n = snprintf(buf, sizeof buf, "#/$defs/%s%s", def, json_string_value(v) + 1);
            if (n < 0 || (size_t)n >= sizeof buf || json_string_set(v, buf)) return -1;
        } else if (rebase_refs(v, def)) {
            return -1;
        }
    }
    return 0;
}

void colloq_toolspec_free(colloq_toolspec *ts) {
    if (!ts) return;
    for (int i = 0; i < ts->n; i++) colloq_free(ts->names[i]);
    colloq_free(ts->names);
    json_decref(ts->tools);
    colloq_grammar_free(ts->g);
    colloq_free(ts);
}

/* The call grammar over the tools named in use[] (all when use is NULL). */
static int build_grammar(colloq_toolspec *ts, const int *use, int n_use, const colloq_grammar_opts *o,
                         colloq_err *err) {
    json_t *defs = json_object(), *alts = json_array(), *schema = json_object();
    int rc = COLLOQ_ERR_NOMEM;
    if (!defs || !alts || !schema) goto out;
    for (int u = 0; u < n_use; u++) {
        int i = use[u];
        const json_t *fn = json_object_get(json_array_get(ts->tools, (size_t)i), "function");
        const json_t *params = json_object_get(fn, "parameters");
        char def[16];
        snprintf(def, sizeof def, "t%d", i);
        json_t *p = params ? json_deep_copy(params) : json_pack("{s:s,s:{},s:b}", "type", "object",
                                                                "properties", "additionalProperties", 0);
        if (!p || rebase_refs(p, def) || json_object_set_new(defs, def, p)) goto out;
        char ref[32];
        snprintf(ref, sizeof ref, "#/$defs/%s", def);
        json_t *alt = json_pack("{s:s,s:{s:{s:s},s:{s:s}},s:[s,s],s:b}", "type", "object", "properties",
                                "name", "const", ts->names[i], "arguments", "$ref", ref,
                                "required", "name", "arguments", "additionalProperties", 0);
        if (!alt || json_array_append_new(alts, alt)) goto out;
    }
    if (json_object_set(schema, "$defs", defs) || json_object_set(schema, "anyOf", alts)) goto out;
    rc = colloq_grammar_new_schema(schema, o, &ts->g, err);
    if (rc == COLLOQ_ERR_ARG) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        colloq_seterr(err, rc, "tools: %s", msg);
    }
out:
    if (rc == COLLOQ_ERR_NOMEM) colloq_seterr(err, rc, "tools: out of memory");
    json_decref(defs);
    json_decref(alts);
    json_decref(schema);
    return rc;
}

int colloq_toolspec_parse(const json_t *req, const colloq_grammar_opts *o, colloq_toolspec **out,
                          colloq_err *err) {
    *out = NULL;
    const json_t *tools = json_object_get(req, "tools"), *choice = json_object_get(req, "tool_choice");
    const json_t *par = json_object_get(req, "parallel_tool_calls");
    if (json_is_null(choice)) choice = NULL;
    if (par && !json_is_null(par) && !json_is_boolean(par))
        return colloq_seterr(err, COLLOQ_ERR_ARG, "parallel_tool_calls must be a boolean");
    if (!tools || json_is_null(tools) || (json_is_array(tools) && json_array_size(tools) == 0)) {
        if (choice && !(json_is_string(choice) && !strcmp(json_string_value(choice), "none")))
            return colloq_seterr(err, COLLOQ_ERR_ARG, "tool_choice is given but there are no tools");
        return COLLOQ_OK;
    }
    if (!json_is_array(tools)) return colloq_seterr(err, COLLOQ_ERR_ARG, "tools must be an array");
    if (json_array_size(tools) > MAX_TOOLS)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "at most %d tools are supported", MAX_TOOLS);
    colloq_toolspec *ts = colloq_calloc(1, sizeof *ts);
    int *use = colloq_calloc(json_array_size(tools) + 1, sizeof *use), n_use = 0;
    int rc = COLLOQ_OK;
    if (!ts || !use) { rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "tools: out of memory"); goto fail; }
    ts->tools = json_incref((json_t *)tools);
    ts->parallel = !json_is_false(par);
    ts->names = colloq_calloc(json_array_size(tools) + 1, sizeof *ts->names);
    if (!ts->names) { rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "tools: out of memory"); goto fail; }
    for (size_t i = 0; i < json_array_size(tools); i++) {
        const json_t *t = json_array_get(tools, i), *fn = json_object_get(t, "function");
        const json_t *ty = json_object_get(t, "type"), *name = json_object_get(fn, "name");
        const json_t *params = json_object_get(fn, "parameters"), *desc = json_object_get(fn, "description");
        if (!json_is_object(t) || !json_is_string(ty) || strcmp(json_string_value(ty), "function"))
            { rc = colloq_seterr(err, COLLOQ_ERR_ARG, "tools[%zu]: type must be \"function\"", i); goto fail; }
        if (!json_is_object(fn) || !json_is_string(name) || !valid_name(json_string_value(name)))
            { rc = colloq_seterr(err, COLLOQ_ERR_ARG, "tools[%zu].function.name must be 1-64 letters, digits, '_' or '-'", i); goto fail; }
        if (desc && !json_is_string(desc) && !json_is_null(desc))
            { rc = colloq_seterr(err, COLLOQ_ERR_ARG, "tools[%zu].function.description must be a string", i); goto fail; }
        if (params && !json_is_object(params))
            { rc = colloq_seterr(err, COLLOQ_ERR_ARG, "tools[%zu].function.parameters must be a JSON Schema object", i); goto fail; }
        for (int j = 0; j < ts->n; j++)
            if (!strcmp(ts->names[j], json_string_value(name)))
                { rc = colloq_seterr(err, COLLOQ_ERR_ARG, "tools[%zu]: the name '%s' is used twice", i, ts->names[j]); goto fail; }
        if (params) {                                      /* report schema errors per tool */
            colloq_grammar *g = NULL;
            rc = colloq_grammar_new_schema(params, o, &g, err);
            colloq_grammar_free(g);
            if (rc) {
                char msg[sizeof err->msg];
                snprintf(msg, sizeof msg, "%s", err->msg);
                colloq_seterr(err, rc, "tools[%zu].function.parameters (%s): %s", i, json_string_value(name), msg);
                goto fail;
            }
        }
        if (!(ts->names[ts->n] = colloq_strdup(json_string_value(name))))
            { rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "tools: out of memory"); goto fail; }
        use[n_use++] = ts->n++;
    }
    ts->mode = COLLOQ_TOOLS_AUTO;
    ts->forced = -1;
    if (json_is_string(choice)) {
        const char *c = json_string_value(choice);
        if (!strcmp(c, "none")) ts->mode = COLLOQ_TOOLS_NONE;
        else if (!strcmp(c, "required")) ts->mode = COLLOQ_TOOLS_REQUIRED;
        else if (strcmp(c, "auto"))
            { rc = colloq_seterr(err, COLLOQ_ERR_ARG, "tool_choice must be \"none\", \"auto\", \"required\" or a function"); goto fail; }
    } else if (choice) {
        const json_t *fn = json_object_get(choice, "function"), *name = json_object_get(fn, "name");
        const json_t *ty = json_object_get(choice, "type");
        if (!json_is_object(choice) || !json_is_string(ty) || strcmp(json_string_value(ty), "function") || !json_is_string(name))
            { rc = colloq_seterr(err, COLLOQ_ERR_ARG, "tool_choice must be \"none\", \"auto\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":…}}"); goto fail; }
        n_use = 0;
        for (int j = 0; j < ts->n; j++) if (!strcmp(ts->names[j], json_string_value(name))) use[n_use++] = j;
        if (!n_use)
            { rc = colloq_seterr(err, COLLOQ_ERR_ARG, "tool_choice names the function '%s', which is not among the tools", json_string_value(name)); goto fail; }
        ts->mode = COLLOQ_TOOLS_REQUIRED;
        ts->forced = use[0];
    }
    if ((rc = build_grammar(ts, use, n_use, o, err))) goto fail;
    colloq_free(use);
    *out = ts;
    return COLLOQ_OK;
fail:
    colloq_free(use);
    colloq_toolspec_free(ts);
    return rc;
}

colloq_tools_mode colloq_toolspec_mode(const colloq_toolspec *ts) { return ts ? ts->mode : COLLOQ_TOOLS_NONE; }
int colloq_toolspec_n_tools(const colloq_toolspec *ts) { return ts ? ts->n : 0; }
const colloq_grammar *colloq_toolspec_grammar(const colloq_toolspec *ts) { return ts ? ts->g : NULL; }
bool colloq_toolspec_parallel(const colloq_toolspec *ts) { return ts && ts->parallel; }

const json_t *colloq_toolspec_tools_json(const colloq_toolspec *ts) { return ts ? ts->tools : NULL; }
const char *colloq_toolspec_forced(const colloq_toolspec *ts) {
    return ts && ts->forced >= 0 ? ts->names[ts->forced] : NULL;
}

int colloq_toolcall_response_format(const json_t *req, const colloq_grammar_opts *o, colloq_grammar **out,
                                    colloq_err *err) {
    *out = NULL;
    const json_t *rf = json_object_get(req, "response_format");
    if (!rf || json_is_null(rf)) return COLLOQ_OK;
    const json_t *ty = json_object_get(rf, "type");
    if (!json_is_object(rf) || !json_is_string(ty))
        return colloq_seterr(err, COLLOQ_ERR_ARG, "response_format must be an object with a \"type\"");
    const char *t = json_string_value(ty);
    if (!strcmp(t, "text")) return COLLOQ_OK;
    if (!strcmp(t, "json_object")) return colloq_grammar_new_any(o, true, out, err);
    if (strcmp(t, "json_schema"))
        return colloq_seterr(err, COLLOQ_ERR_ARG, "response_format type must be \"text\", \"json_object\" or \"json_schema\"");
    const json_t *js = json_object_get(rf, "json_schema"), *schema = json_object_get(js, "schema");
    if (!json_is_object(js) || !(json_is_object(schema) || json_is_boolean(schema)))
        return colloq_seterr(err, COLLOQ_ERR_ARG, "response_format json_schema needs {\"json_schema\":{\"name\":…,\"schema\":{…}}}");
    int rc = colloq_grammar_new_schema(schema, o, out, err);
    if (rc == COLLOQ_ERR_ARG) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        colloq_seterr(err, rc, "response_format: %s", msg);
    }
    return rc;
}

/* ---- the constraint ---- */

enum { P_FREE, P_OPEN, P_JSON, P_CLOSE, P_AFTER, P_END };

struct colloq_toolcall {
    const colloq_toolspec      *ts;
    const colloq_grammar_vocab *v;
    colloq_grammar_state       *gs;
    int       phase;
    size_t    lit_pos;          /* bytes of the current tag matched */
    int       ws_used;          /* whitespace before the current tag */
    char      tail[sizeof COLLOQ_TOOLCALL_OPEN];   /* end of the free text (tag detection) */
    size_t    tail_len;
    uint64_t *mask;
    int       words;
    int       calls;
};

int colloq_toolcall_new(const colloq_toolspec *ts, const colloq_grammar_vocab *v, colloq_toolcall **out,
                        colloq_err *err) {
    *out = NULL;
    if (!ts || !v || !ts->g) return colloq_seterr(err, COLLOQ_ERR_ARG, "tool calls: no tools");
    colloq_toolcall *tc = colloq_calloc(1, sizeof *tc);
    if (!tc) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "tool calls: out of memory");
    tc->ts = ts;
    tc->v = v;
    tc->words = colloq_grammar_mask_words(v);
    tc->mask = colloq_calloc((size_t)tc->words, sizeof *tc->mask);
    int rc = tc->mask ? colloq_grammar_state_new(ts->g, v, &tc->gs, err)
                      : colloq_seterr(err, COLLOQ_ERR_NOMEM, "tool calls: out of memory");
    if (rc) { colloq_toolcall_free(tc); return rc; }
    tc->phase = ts->mode == COLLOQ_TOOLS_REQUIRED ? P_OPEN : P_FREE;
    *out = tc;
    return COLLOQ_OK;
}

void colloq_toolcall_free(colloq_toolcall *tc) {
    if (!tc) return;
    colloq_grammar_state_free(tc->gs);
    colloq_free(tc->mask);
    colloq_free(tc);
}

static bool more_calls_fit(const colloq_toolcall *tc, int tokens_left) {
    if (!tc->ts->parallel || tc->calls >= MAX_CALLS) return false;
    int need = (int)(sizeof COLLOQ_TOOLCALL_OPEN + sizeof COLLOQ_TOOLCALL_CLOSE) + 2 * TAG_WS +
               colloq_grammar_min_length(tc->ts->g) + 2;
    return tokens_left < 0 || tokens_left > need;
}

int colloq_toolcall_mask_logits(colloq_toolcall *tc, int tokens_left, float *logits, int n_logits) {
    if (!tc || !logits) return 0;
    const char *open = COLLOQ_TOOLCALL_OPEN, *close = COLLOQ_TOOLCALL_CLOSE;
    int budget = tokens_left;
    switch (tc->phase) {
    case P_FREE:
        return n_logits;
    case P_JSON:
        if (budget >= 0) {                       /* keep room for the close tag and the end */
            int reserve = (int)strlen(close) + TAG_WS + 1;
            budget = budget - reserve > 1 ? budget - reserve : 1;
        }
        return colloq_grammar_state_mask_logits(tc->gs, budget, logits, n_logits);
    case P_OPEN: case P_CLOSE: {
        const char *lit = tc->phase == P_OPEN ? open : close;
        memset(tc->mask, 0, (size_t)tc->words * sizeof *tc->mask);
        colloq_grammar_vocab_literal_mask(tc->v, lit + tc->lit_pos, strlen(lit) - tc->lit_pos,
                                          tc->lit_pos ? 0 : TAG_WS - tc->ws_used, tc->mask);
        break;
    }
    case P_AFTER:
        memset(tc->mask, 0, (size_t)tc->words * sizeof *tc->mask);
        colloq_grammar_vocab_eog_mask(tc->v, tc->mask);
        if (more_calls_fit(tc, tokens_left))
            colloq_grammar_vocab_literal_mask(tc->v, open, strlen(open), TAG_WS, tc->mask);
        break;
    default:
        memset(tc->mask, 0, (size_t)tc->words * sizeof *tc->mask);
        break;
    }
    int nv = colloq_grammar_vocab_n(tc->v), cnt = 0;
    for (int t = 0; t < n_logits; t++) {
        if (t < nv && ((tc->mask[t >> 6] >> (t & 63)) & 1)) cnt++;
        else logits[t] = -INFINITY;
    }
    return cnt;
}

/* Advance through the current tag by piece p; false when p does not continue it. */
static bool tag_step(colloq_toolcall *tc, const char *lit, const char *p, size_t n) {
    size_t i = 0, len = strlen(lit);
    while (tc->lit_pos == 0 && i < n && (p[i] == ' ' || p[i] == '\n' || p[i] == '\t' || p[i] == '\r')) {
        if (++tc->ws_used > TAG_WS) return false;
        i++;
    }
    if (n - i > len - tc->lit_pos || memcmp(p + i, lit + tc->lit_pos, n - i)) return false;
    tc->lit_pos += n - i;
    return true;
}

static void start_json(colloq_toolcall *tc) {
    colloq_grammar_state_reset(tc->gs);
    tc->phase = P_JSON;
}

static void after_close(colloq_toolcall *tc) {
    tc->calls++;
    tc->lit_pos = 0;
    tc->ws_used = 0;
    tc->tail_len = 0;
    tc->phase = tc->ts->mode == COLLOQ_TOOLS_AUTO && tc->ts->parallel ? P_FREE : P_AFTER;
}

int colloq_toolcall_accept(colloq_toolcall *tc, colloq_token t, const char *text, size_t len, colloq_err *err) {
    if (!tc) return colloq_seterr(err, COLLOQ_ERR_ARG, "tool calls: no state");
    size_t n = 0;
    const char *p = colloq_grammar_vocab_piece(tc->v, t, &n);
    bool eog = colloq_grammar_vocab_is_eog(tc->v, t);
    switch (tc->phase) {
    case P_FREE: {
        if (eog) { tc->phase = P_END; return COLLOQ_OK; }
        /* look for the open tag across the end of the earlier text and this token's text */
        const char *open = COLLOQ_TOOLCALL_OPEN;
        size_t ol = strlen(open);
        char win[2 * sizeof COLLOQ_TOOLCALL_OPEN];
        size_t scan = 0;
        while (scan < len) {
            size_t take = len - scan < sizeof win - tc->tail_len ? len - scan : sizeof win - tc->tail_len;
            memcpy(win, tc->tail, tc->tail_len);
            memcpy(win + tc->tail_len, text + scan, take);
            size_t wn = tc->tail_len + take;
            const char *hit = memmem(win, wn, open, ol);
            if (hit) {
                size_t used = (size_t)(hit - win) + ol - tc->tail_len;   /* bytes of text up to the tag's end */
                start_json(tc);
                tc->tail_len = 0;
                const char *rest = text + scan + used;
                size_t rn = len - scan - used;
                if (rn && colloq_grammar_state_accept_bytes(tc->gs, rest, rn, NULL)) {
                    tc->phase = P_FREE;                    /* an unconstrained call that already broke */
                    return COLLOQ_OK;
                }
                if (colloq_grammar_state_done(tc->gs)) { tc->phase = P_CLOSE; tc->lit_pos = 0; tc->ws_used = 0; }
                return COLLOQ_OK;
            }
            size_t keep = wn < ol - 1 ? wn : ol - 1;
            memcpy(tc->tail, win + wn - keep, keep);
            tc->tail_len = keep;
            scan += take;
        }
        return COLLOQ_OK;
    }
    case P_OPEN:
        if (!p || !tag_step(tc, COLLOQ_TOOLCALL_OPEN, p, n))
            return colloq_seterr(err, COLLOQ_ERR_ARG, "tool calls: token %d is not the open tag", t);
        if (tc->lit_pos == strlen(COLLOQ_TOOLCALL_OPEN)) start_json(tc);
        return COLLOQ_OK;
    case P_JSON: {
        int rc = colloq_grammar_state_accept(tc->gs, t, err);
        if (rc) return rc;
        if (colloq_grammar_state_done(tc->gs)) { tc->phase = P_CLOSE; tc->lit_pos = 0; tc->ws_used = 0; }
        return COLLOQ_OK;
    }
    case P_CLOSE:
        if (!p || !tag_step(tc, COLLOQ_TOOLCALL_CLOSE, p, n))
            return colloq_seterr(err, COLLOQ_ERR_ARG, "tool calls: token %d is not the close tag", t);
        if (tc->lit_pos == strlen(COLLOQ_TOOLCALL_CLOSE)) after_close(tc);
        return COLLOQ_OK;
    case P_AFTER:
        if (eog) { tc->phase = P_END; return COLLOQ_OK; }
        tc->phase = P_OPEN;
        tc->lit_pos = 0;
        tc->ws_used = 0;
        if (!p || !tag_step(tc, COLLOQ_TOOLCALL_OPEN, p, n))
            return colloq_seterr(err, COLLOQ_ERR_ARG, "tool calls: token %d is neither the end nor another call", t);
        if (tc->lit_pos == strlen(COLLOQ_TOOLCALL_OPEN)) start_json(tc);
        return COLLOQ_OK;
    }
    return colloq_seterr(err, COLLOQ_ERR_ARG, "tool calls: token %d after the end", t);
}

bool colloq_toolcall_done(const colloq_toolcall *tc) {
    return tc && (tc->phase == P_END || (tc->phase == P_AFTER && !more_calls_fit(tc, -1)));
}
