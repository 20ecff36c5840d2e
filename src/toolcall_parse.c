/*
 * toolcall_parse.c - turns generated text into message content and OpenAI tool_calls,
 * incrementally: content outside <tool_call> blocks (holding back what may still
 * become a tag, and whitespace around calls), each block's JSON scanned byte by byte
 * so that the call's name and argument fragments can be streamed as they arrive.
 * Knows the text format and the OpenAI JSON shapes; nothing of grammars or models.
 */
#define _GNU_SOURCE   /* getrandom */
#include <jansson.h>
#include <string.h>
#include <sys/random.h>

#include "toolcall.h"
#include "util.h"

typedef struct { char *p; size_t n, cap; } sbuf;

static bool sb_put(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *np = colloq_realloc(b->p, cap);
        if (!np) return false;
        b->p = np;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return true;
}

enum { T_TEXT, T_CALL, T_AFTER };                  /* where the parser is */
enum { K_WAIT, K_KEY, K_COLON, K_VALWAIT, K_VALUE }; /* inside the call object, at depth 1 */
enum { M_OTHER, M_NAME, M_ARGS };

typedef struct {
    char   id[32];
    char  *name;
    char  *args;          /* final arguments text (complete calls) */
    bool   complete;
} call;

struct colloq_toolcall_parser {
    int    state;
    bool   oom;
    bool   after_call;    /* whitespace right after a call is not content */
    sbuf   content;       /* all content released so far */
    sbuf   hold;          /* T_TEXT: text not yet released */
    size_t close_pos;     /* T_AFTER: bytes of the close tag matched */
    /* the current call */
    sbuf   raw;           /* its text from the first byte after the open tag */
    bool   started, in_str, esc, begun;
    int    depth, kst, member;
    size_t key_at, val_at, args_at, args_end, args_sent;
    bool   have_args;
    char  *name;
    call  *calls;
    int    n_calls, cap_calls, n_begun;
};

int colloq_toolcall_parser_new(colloq_toolcall_parser **out, colloq_err *err) {
    *out = colloq_calloc(1, sizeof **out);
    return *out ? COLLOQ_OK : colloq_seterr(err, COLLOQ_ERR_NOMEM, "tool calls: out of memory");
}

void colloq_toolcall_parser_free(colloq_toolcall_parser *p) {
    if (!p) return;
    for (int i = 0; i < p->n_calls; i++) { colloq_free(p->calls[i].name); colloq_free(p->calls[i].args); }
    colloq_free(p->calls);
    colloq_free(p->content.p);
    colloq_free(p->hold.p);
    colloq_free(p->raw.p);
    colloq_free(p->name);
    colloq_free(p);
}

static void emit_content(colloq_toolcall_parser *p, const char *s, size_t n, const colloq_toolcall_sink *k, void *ud) {
    if (!n) return;
    if (!sb_put(&p->content, s, n)) p->oom = true;
    if (k && k->content) k->content(ud, s, n);
}

static void make_id(char *id) {
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char r[24];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        uint64_t z = (uint64_t)(colloq_now() * 1e9) ^ (uint64_t)(uintptr_t)id;
        for (size_t i = 0; i < sizeof r; i++) {
            z = z * 6364136223846793005ull + 1442695040888963407ull;
            r[i] = (unsigned char)(z >> 56);
        }
    }
    memcpy(id, "call_", 5);
    for (size_t i = 0; i < sizeof r; i++) id[5 + i] = al[r[i] % (sizeof al - 1)];
    id[5 + sizeof r] = 0;
}

static bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

static void trim(const char **s, size_t *n) {
    while (*n && is_ws(**s)) { (*s)++; (*n)--; }
    while (*n && is_ws((*s)[*n - 1])) (*n)--;
}

static void start_call(colloq_toolcall_parser *p) {
    p->state = T_CALL;
    p->raw.n = 0;
    p->started = p->in_str = p->esc = p->begun = p->have_args = false;
    p->depth = 0;
    p->kst = K_WAIT;
    p->member = M_OTHER;
    p->args_sent = 0;
    colloq_free(p->name);
    p->name = NULL;
}

/* Arguments bytes known so far that were not sent yet (only once the call has begun). */
static void send_args(colloq_toolcall_parser *p, const colloq_toolcall_sink *k, void *ud, size_t upto) {
    if (!p->begun || upto <= p->args_at + p->args_sent) return;
    if (p->raw.p[p->args_at] == '"') return;          /* arguments as a JSON string: sent decoded at the end */
    size_t from = p->args_at + p->args_sent;
    if (k && k->call_args) k->call_args(ud, p->n_begun - 1, p->raw.p + from, upto - from);
    p->args_sent = upto - p->args_at;
}

static void begin_call(colloq_toolcall_parser *p, const colloq_toolcall_sink *k, void *ud) {
    if (p->begun || !p->name) return;
    if (p->n_calls >= p->cap_calls) {
        int cap = p->cap_calls ? 2 * p->cap_calls : 4;
        call *nc = colloq_realloc(p->calls, (size_t)cap * sizeof *nc);
        if (!nc) { p->oom = true; return; }
        p->calls = nc;
        p->cap_calls = cap;
    }
    call *c = &p->calls[p->n_calls];
    memset(c, 0, sizeof *c);
    make_id(c->id);
    c->name = colloq_strdup(p->name);
    if (!c->name) { p->oom = true; return; }
    p->n_calls++;                       /* counted as complete only when it is */
    p->begun = true;
    p->n_begun++;
    if (k && k->call_begin) k->call_begin(ud, p->n_begun - 1, c->id, c->name);
    if (p->have_args) send_args(p, k, ud, p->args_end);
}

/* A member of the call object ended at raw[end). */
static void end_member(colloq_toolcall_parser *p, size_t end, const colloq_toolcall_sink *k, void *ud) {
    const char *v = p->raw.p + p->val_at;
    size_t n = end - p->val_at;
    trim(&v, &n);
    if (p->member == M_NAME && !p->name) {
        json_t *j = json_loadb(v, n, JSON_DECODE_ANY, NULL);
        if (json_is_string(j)) p->name = colloq_strdup(json_string_value(j));
        json_decref(j);
        begin_call(p, k, ud);
    } else if (p->member == M_ARGS) {
        p->have_args = true;
        p->args_end = p->val_at + (size_t)(v - (p->raw.p + p->val_at)) + n;
        send_args(p, k, ud, p->args_end);
    }
    p->member = M_OTHER;
}

/* The call object is complete: record it, or (no name) give its text back as content. */
static void end_call(colloq_toolcall_parser *p, const colloq_toolcall_sink *k, void *ud) {
    if (!p->begun) {
        emit_content(p, COLLOQ_TOOLCALL_OPEN, strlen(COLLOQ_TOOLCALL_OPEN), k, ud);
        emit_content(p, p->raw.p, p->raw.n, k, ud);
        p->state = T_TEXT;
        return;
    }
    call *c = &p->calls[p->n_calls - 1];
    const char *a = p->have_args ? p->raw.p + p->args_at : "{}";
    size_t an = p->have_args ? p->args_end - p->args_at : 2;
    json_t *j = json_loadb(a, an, JSON_DECODE_ANY, NULL);
    if (json_is_string(j)) {                           /* arguments given as JSON text in a string */
        a = json_string_value(j);
        an = json_string_length(j);
        if (k && k->call_args) k->call_args(ud, p->n_begun - 1, a, an);
    }
    c->args = colloq_malloc(an + 1);
    if (c->args) { memcpy(c->args, a, an); c->args[an] = 0; }
    else p->oom = true;
    json_decref(j);
    if (!p->have_args && k && k->call_args) k->call_args(ud, p->n_begun - 1, "{}", 2);
    c->complete = true;
    p->state = T_AFTER;
    p->close_pos = 0;
}

static bool key_is(const colloq_toolcall_parser *p, size_t end, const char *want) {
    size_t n = strlen(want);
    return end - p->key_at == n + 2 && !memcmp(p->raw.p + p->key_at + 1, want, n);
}

/* One byte of a call block. */
static void call_byte(colloq_toolcall_parser *p, char c, const colloq_toolcall_sink *k, void *ud) {
    size_t at = p->raw.n;
    if (!sb_put(&p->raw, &c, 1)) { p->oom = true; return; }
    if (!p->started) {
        if (is_ws(c)) return;
        if (c != '{') {                    /* not a call after all: the text is content */
            p->state = T_TEXT;
            emit_content(p, COLLOQ_TOOLCALL_OPEN, strlen(COLLOQ_TOOLCALL_OPEN), k, ud);
            emit_content(p, p->raw.p, p->raw.n, k, ud);
            return;
        }
        p->started = true;
        p->depth = 1;
        return;
    }
    if (p->in_str) {
        if (p->esc) p->esc = false;
        else if (c == '\\') p->esc = true;
        else if (c == '"') {
            p->in_str = false;
            if (p->depth == 1 && p->kst == K_KEY) {
                p->member = key_is(p, at + 1, "name") ? M_NAME
                          : key_is(p, at + 1, "arguments") || key_is(p, at + 1, "parameters") ? M_ARGS : M_OTHER;
                p->kst = K_COLON;
            }
        }
        return;
    }
    bool at1 = p->depth == 1;
    if (at1 && p->kst == K_VALWAIT && !is_ws(c) && c != ',' && c != '}') {
        p->kst = K_VALUE;
        p->val_at = at;
        if (p->member == M_ARGS) { p->args_at = at; p->args_sent = 0; }
    }
    if (c == '"') {
        p->in_str = true;
        if (at1 && p->kst == K_WAIT) { p->kst = K_KEY; p->key_at = at; }
    } else if (c == '{' || c == '[') {
        p->depth++;
    } else if (c == '}' || c == ']') {
        if (--p->depth == 0) {
            if (p->kst == K_VALUE) end_member(p, at, k, ud);
            end_call(p, k, ud);
        }
    } else if (at1 && c == ':' && p->kst == K_COLON) {
        p->kst = K_VALWAIT;
    } else if (at1 && c == ',' && p->kst == K_VALUE) {
        end_member(p, at, k, ud);
        p->kst = K_WAIT;
    }
}

/* Release the text of T_TEXT that can no longer be part of a tag; whitespace before a
 * possible tag is held too (it is dropped when a call follows). */
static void release(colloq_toolcall_parser *p, const colloq_toolcall_sink *k, void *ud) {
    const char *tag = COLLOQ_TOOLCALL_OPEN;
    size_t n = p->hold.n, keep = 0, tl = strlen(tag);
    for (size_t l = tl - 1; l > 0; l--)
        if (l <= n && !memcmp(p->hold.p + n - l, tag, l)) { keep = l; break; }
    while (keep < n && is_ws(p->hold.p[n - keep - 1])) keep++;
    if (n - keep) {
        emit_content(p, p->hold.p, n - keep, k, ud);
        memmove(p->hold.p, p->hold.p + n - keep, keep);
        p->hold.n = keep;
        p->hold.p[keep] = 0;
    }
}

int colloq_toolcall_parser_feed(colloq_toolcall_parser *p, const char *s, size_t n,
                                const colloq_toolcall_sink *k, void *ud) {
    if (!p || (!s && n)) return COLLOQ_ERR_ARG;
    const char *tag = COLLOQ_TOOLCALL_OPEN, *close = COLLOQ_TOOLCALL_CLOSE;
    size_t tl = strlen(tag), cl = strlen(close);
    for (size_t i = 0; i < n && !p->oom; i++) {
        char c = s[i];
        switch (p->state) {
        case T_TEXT:
            if (p->after_call && p->hold.n == 0 && is_ws(c)) break;
            p->after_call = false;
            if (!sb_put(&p->hold, &c, 1)) { p->oom = true; break; }
            if (p->hold.n >= tl && !memcmp(p->hold.p + p->hold.n - tl, tag, tl)) {
                size_t before = p->hold.n - tl;
                while (before && is_ws(p->hold.p[before - 1])) before--;
                emit_content(p, p->hold.p, before, k, ud);
                p->hold.n = 0;
                start_call(p);
            }
            break;
        case T_CALL:
            call_byte(p, c, k, ud);
            break;
        case T_AFTER:
            if (p->close_pos == 0 && is_ws(c)) break;
            if (c == close[p->close_pos]) {
                if (++p->close_pos == cl) { p->state = T_TEXT; p->after_call = true; }
                break;
            }
            /* no close tag: what came is text */
            p->state = T_TEXT;
            if (!sb_put(&p->hold, close, p->close_pos)) p->oom = true;
            i--;                                      /* this byte again, as text */
            break;
        }
    }
    if (p->state == T_TEXT) release(p, k, ud);
    if (p->state == T_CALL && p->member == M_ARGS && p->kst == K_VALUE) send_args(p, k, ud, p->raw.n);
    return p->oom ? COLLOQ_ERR_NOMEM : COLLOQ_OK;
}

int colloq_toolcall_parser_finish(colloq_toolcall_parser *p, const colloq_toolcall_sink *k, void *ud) {
    if (!p) return COLLOQ_ERR_ARG;
    if (p->state == T_TEXT && p->hold.n) {
        const char *h = p->hold.p;
        size_t hn = p->hold.n;
        if (p->n_calls) trim(&h, &hn);               /* whitespace around calls is not content */
        emit_content(p, h, hn, k, ud);
        p->hold.n = 0;
    } else if (p->state == T_CALL && !p->begun) {
        emit_content(p, COLLOQ_TOOLCALL_OPEN, strlen(COLLOQ_TOOLCALL_OPEN), k, ud);
        emit_content(p, p->raw.p, p->raw.n, k, ud);
    }
    p->state = T_TEXT;
    return p->oom ? COLLOQ_ERR_NOMEM : COLLOQ_OK;
}

int colloq_toolcall_parser_n_calls(const colloq_toolcall_parser *p) {
    int n = 0;
    for (int i = 0; p && i < p->n_calls; i++) n += p->calls[i].complete;
    return n;
}

json_t *colloq_toolcall_parser_calls(const colloq_toolcall_parser *p) {
    if (!colloq_toolcall_parser_n_calls(p)) return NULL;
    json_t *a = json_array();
    for (int i = 0; a && i < p->n_calls; i++) {
        const call *c = &p->calls[i];
        if (!c->complete) continue;
        json_t *o = json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", c->id, "type", "function", "function",
                              "name", c->name, "arguments", c->args);
        if (!o || json_array_append_new(a, o)) { json_decref(a); return NULL; }
    }
    return a;
}

const char *colloq_toolcall_parser_content(const colloq_toolcall_parser *p, size_t *len) {
    if (len) *len = p ? p->content.n : 0;
    return p && p->content.p ? p->content.p : "";
}

json_t *colloq_toolcall_delta_begin(int index, const char *id, const char *name) {
    return json_pack("{s:[{s:i,s:s,s:s,s:{s:s,s:s}}]}", "tool_calls", "index", index, "id", id, "type", "function",
                     "function", "name", name, "arguments", "");
}

json_t *colloq_toolcall_delta_args(int index, const char *s, size_t n) {
    return json_pack("{s:[{s:i,s:{s:s%}}]}", "tool_calls", "index", index, "function", "arguments", s, n);
}
