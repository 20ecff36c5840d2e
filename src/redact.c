/*
 * redact.c - rule sets (JSON config), the redaction scanner and its two front ends:
 * one-shot (request messages) and streams (answers as they are generated).  Both run
 * the same left-to-right scan; a stream stops where a detector needs more text and
 * resumes there, so its output equals the one-shot output.  Never stores matched text
 * outside the caller's buffers; detectors themselves live in redact_detect.c.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "redact.h"

#include <pcre2.h>
#include <stdint.h>
#include <string.h>

#include "redact_internal.h"
#include "util.h"

typedef struct {
    char  name[64];
    char *replacement;                 /* NULL for block rules */
    colloq_redact_action action;
    int   apply;                       /* COLLOQ_REDACT_INPUT | _OUTPUT */
    const rd_builtin *builtin;         /* or a pattern: */
    pcre2_code *code;
    size_t max_len;                    /* regex: longest match (bytes) honoured */
} rule;

struct colloq_redact {
    int    n;
    rule   rules[COLLOQ_REDACT_MAX_RULES];
    size_t keep;                       /* left context a stream keeps (look-behind) */
    size_t max_hold;
    pcre2_match_context *mctx;
};

void colloq_redact_record_clear(colloq_redact_record *rec) {
    memset(rec->count, 0, sizeof rec->count);
    rec->blocked_by = -1;
}

/* ------------------------------------------------------------------ rule sets */

void colloq_redact_free(colloq_redact *r) {
    if (!r) return;
    for (int k = 0; k < r->n; k++) {
        colloq_free(r->rules[k].replacement);
        pcre2_code_free(r->rules[k].code);
    }
    pcre2_match_context_free(r->mctx);
    colloq_free(r);
}

static bool name_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 63) return false;
    for (size_t k = 0; k < n; k++) {
        char c = s[k];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

static const char *json_str(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int compile_pattern(rule *ru, const char *pat, const char *src, int idx, colloq_err *err) {
    int ec;
    PCRE2_SIZE off;
    ru->code = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &ec, &off, NULL);
    if (!ru->code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: detector %d (%s): bad pattern at offset %zu: %s",
                             src, idx, ru->name, (size_t)off, (const char *)msg);
    }
    /* JIT is an optimisation only: fall back to the interpreter if it is unavailable. */
    (void)pcre2_jit_compile(ru->code, PCRE2_JIT_COMPLETE | PCRE2_JIT_PARTIAL_HARD);
    return 0;
}

static int parse_rule(colloq_redact *r, json_t *d, const char *src, int idx, colloq_err *err) {
    rule *ru = &r->rules[r->n];
    memset(ru, 0, sizeof *ru);
    if (!json_is_object(d))
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: detector %d is not an object", src, idx);
    const char *key;
    json_t *v;
    json_object_foreach(d, key, v) {
        static const char *const known[] = { "type", "name", "action", "replacement", "apply",
                                             "pattern", "max_len", "comment", NULL };
        bool ok = false;
        for (int k = 0; known[k]; k++) ok = ok || !strcmp(key, known[k]);
        if (!ok)
            return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: detector %d: unknown key \"%s\"", src, idx, key);
        if (strcmp(key, "max_len") && !json_is_string(v))
            return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: detector %d: \"%s\" must be a string", src, idx, key);
    }
    const char *type = json_str(d, "type");
    if (!type) return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: detector %d has no \"type\"", src, idx);
    bool is_regex = !strcmp(type, "regex");
    if (!is_regex) {
        for (int k = 0; rd_builtins[k].type; k++)
            if (!strcmp(rd_builtins[k].type, type)) ru->builtin = &rd_builtins[k];
        if (!ru->builtin)
            return colloq_seterr(err, COLLOQ_ERR_FORMAT,
                                 "%s: detector %d: unknown type \"%s\" (phone_cn, phone_intl, bank_card, "
                                 "cn_id, email, ipv4, regex)", src, idx, type);
    }
    const char *name = json_str(d, "name");
    if (!name && is_regex)
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: detector %d: a regex detector needs a \"name\"", src, idx);
    if (!name) name = type;
    if (!name_ok(name))
        return colloq_seterr(err, COLLOQ_ERR_FORMAT,
                             "%s: detector %d: name \"%s\" must be 1..63 of [A-Za-z0-9_.-]", src, idx, name);
    for (int k = 0; k < r->n; k++)
        if (!strcmp(r->rules[k].name, name))
            return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: detector name \"%s\" used twice", src, name);
    snprintf(ru->name, sizeof ru->name, "%s", name);
    r->n++;                                        /* owned from here on: freed with r */

    const char *act = json_str(d, "action");
    if (!act || !strcmp(act, "redact")) ru->action = COLLOQ_REDACT_ACT_REDACT;
    else if (!strcmp(act, "block")) ru->action = COLLOQ_REDACT_ACT_BLOCK;
    else return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: detector %s: action \"%s\" is not redact or block",
                              src, name, act);
    const char *apply = json_str(d, "apply");
    if (!apply || !strcmp(apply, "both")) ru->apply = COLLOQ_REDACT_BOTH;
    else if (!strcmp(apply, "input")) ru->apply = COLLOQ_REDACT_INPUT;
    else if (!strcmp(apply, "output")) ru->apply = COLLOQ_REDACT_OUTPUT;
    else return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: detector %s: apply \"%s\" is not input, output or both",
                              src, name, apply);
    const char *repl = json_str(d, "replacement");
    if (repl && ru->action == COLLOQ_REDACT_ACT_BLOCK)
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: detector %s: a block rule has no replacement", src, name);
    if (ru->action == COLLOQ_REDACT_ACT_REDACT) {
        char buf[96];
        if (!repl) { snprintf(buf, sizeof buf, "[REDACTED:%s]", name); repl = buf; }
        if (!(ru->replacement = colloq_strdup(repl)))
            return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory");
    }
    json_t *ml = json_object_get(d, "max_len");
    const char *pat = json_str(d, "pattern");
    if (!is_regex && (pat || ml))
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: detector %s: pattern/max_len are for type regex only",
                             src, name);
    if (is_regex) {
        if (!pat) return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: detector %s has no \"pattern\"", src, name);
        ru->max_len = 256;
        if (ml) {
            if (!json_is_integer(ml) || json_integer_value(ml) < 1 || json_integer_value(ml) > 65536)
                return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: detector %s: max_len must be 1..65536", src, name);
            ru->max_len = (size_t)json_integer_value(ml);
        }
        int rc = compile_pattern(ru, pat, src, idx, err);
        if (rc) return rc;
        uint32_t lb = 0;
        pcre2_pattern_info(ru->code, PCRE2_INFO_MAXLOOKBEHIND, &lb);
        if (16 + 4 * (size_t)lb > r->keep) r->keep = 16 + 4 * (size_t)lb;
        if (ru->max_len > r->max_hold) r->max_hold = ru->max_len;
        return 0;
    }
    if (ru->builtin->max_hold > r->max_hold) r->max_hold = ru->builtin->max_hold;
    return 0;
}

static colloq_redact *redact_alloc(colloq_err *err) {
    colloq_redact *r = colloq_calloc(1, sizeof *r);
    if (!r) { colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory"); return NULL; }
    r->keep = 16;
    if (!(r->mctx = pcre2_match_context_create(NULL))) {
        colloq_free(r);
        colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory");
        return NULL;
    }
    /* Patterns come from the operator, subjects from users: bound the backtracking. */
    pcre2_set_match_limit(r->mctx, 5000000);
    return r;
}

int colloq_redact_parse(const char *text, size_t len, const char *src, colloq_redact **out, colloq_err *err) {
    *out = NULL;
    if (!src) src = "safety config";
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s:%d:%d: %s", src, je.line, je.column, je.text);
    int rc = 0;
    colloq_redact *r = NULL;
    json_t *dets = json_object_get(root, "detectors");
    const char *key;
    json_t *v;
    if (!json_is_object(root)) {
        rc = colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: the top level must be an object", src);
        goto done;
    }
    json_object_foreach(root, key, v) {
        if (strcmp(key, "detectors") && strcmp(key, "comment")) {
            rc = colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: unknown key \"%s\"", src, key);
            goto done;
        }
    }
    if (!json_is_array(dets) || json_array_size(dets) == 0 || json_array_size(dets) > COLLOQ_REDACT_MAX_RULES) {
        rc = colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: \"detectors\" must be an array of 1..%d detectors",
                           src, COLLOQ_REDACT_MAX_RULES);
        goto done;
    }
    if (!(r = redact_alloc(err))) { rc = COLLOQ_ERR_NOMEM; goto done; }
    for (size_t k = 0; k < json_array_size(dets); k++)
        if ((rc = parse_rule(r, json_array_get(dets, k), src, (int)k, err)) != 0) goto done;
done:
    json_decref(root);
    if (rc) colloq_redact_free(r);
    else *out = r;
    return rc;
}

int colloq_redact_load(const char *path, colloq_redact **out, colloq_err *err) {
    char *text;
    size_t len;
    *out = NULL;
    int rc = colloq_read_file(path, &text, &len, err);
    if (rc) return rc;
    rc = colloq_redact_parse(text, len, path, out, err);
    colloq_free(text);
    return rc;
}

int colloq_redact_builtin(colloq_redact **out, colloq_err *err) {
    char cfg[512] = "{\"detectors\":[";
    for (int k = 0; rd_builtins[k].type; k++) {
        size_t n = strlen(cfg);
        snprintf(cfg + n, sizeof cfg - n, "%s{\"type\":\"%s\"}", k ? "," : "", rd_builtins[k].type);
    }
    strncat(cfg, "]}", sizeof cfg - strlen(cfg) - 1);
    return colloq_redact_parse(cfg, strlen(cfg), "built-in rules", out, err);
}

int colloq_redact_n_rules(const colloq_redact *r) { return r->n; }
const char *colloq_redact_rule_name(const colloq_redact *r, int i) {
    return i >= 0 && i < r->n ? r->rules[i].name : NULL;
}
colloq_redact_action colloq_redact_rule_action(const colloq_redact *r, int i) {
    return i >= 0 && i < r->n ? r->rules[i].action : COLLOQ_REDACT_ACT_REDACT;
}
bool colloq_redact_rule_applies(const colloq_redact *r, int i, int dir) {
    return i >= 0 && i < r->n && (r->rules[i].apply & dir) != 0;
}
size_t colloq_redact_max_hold(const colloq_redact *r) { return r->max_hold; }

/* ------------------------------------------------------------------ the scanner */

typedef struct { char *p; size_t len, cap; } outbuf;

static bool out_put(outbuf *o, const void *s, size_t n) {
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->len + n + 1) cap *= 2;
        char *p = colloq_realloc(o->p, cap);
        if (!p) return false;
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = 0;
    return true;
}

typedef struct {
    size_t start, end;                 /* start == SIZE_MAX: no event before the limit */
    rd_result kind;
} event;

typedef struct {
    const colloq_redact *r;
    int    dir;
    const unsigned char *t;
    size_t n;                          /* bytes in t */
    size_t n_dec;                      /* bytes that form complete UTF-8 characters */
    size_t floor;                      /* end of the last match */
    bool   final, notbol;
    pcre2_match_data *md;
    colloq_redact_record *rec;
    outbuf *out;
} scan_ctx;

/* Length of the prefix of t[0..n) that does not end inside an incomplete UTF-8 character. */
static size_t complete_prefix(const unsigned char *t, size_t n) {
    size_t q = n;
    for (int back = 0; back < 4 && q > 0; back++) {
        unsigned char c = t[--q];
        if ((c & 0xC0) == 0x80) continue;          /* continuation byte: keep looking */
        size_t need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 1;
        return q + need > n ? q : n;
    }
    return n;
}

static size_t next_char(const unsigned char *t, size_t n, size_t p) {
    p++;
    while (p < n && (t[p] & 0xC0) == 0x80) p++;
    return p;
}

static int next_event(scan_ctx *c, int k, size_t from, event *ev, colloq_err *err) {
    const rule *ru = &c->r->rules[k];
    ev->start = SIZE_MAX;
    ev->kind = RD_NONE;
    if (ru->builtin) {
        rd_text x = { c->t, c->n, c->floor, c->final };
        for (size_t p = from; p < c->n; p++) {
            size_t end = 0;
            rd_result res = ru->builtin->fn(&x, p, &end);
            if (res == RD_NONE) continue;
            ev->start = p;
            ev->end = end;
            ev->kind = res;
            return 0;
        }
        return 0;
    }
    size_t lim = c->final ? c->n : c->n_dec;
    uint32_t opts = (c->final ? 0 : PCRE2_PARTIAL_HARD) | (c->notbol ? PCRE2_NOTBOL : 0);
    for (size_t at = from; at <= lim;) {
        int rc = pcre2_match(ru->code, c->t, lim, at, opts, c->md, c->r->mctx);
        if (rc == PCRE2_ERROR_NOMATCH) return 0;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
        if (rc == PCRE2_ERROR_PARTIAL) {
            if (lim - ov[0] <= ru->max_len) {
                ev->start = ov[0];
                ev->kind = RD_MORE;
                return 0;
            }
        } else if (rc >= 0) {
            if (ov[1] > ov[0] && ov[1] - ov[0] <= ru->max_len) {
                ev->start = ov[0];
                ev->end = ov[1];
                ev->kind = RD_MATCH;
                return 0;
            }
        } else {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return colloq_seterr(err, COLLOQ_ERR_ARG, "detector %s: %s", ru->name, (const char *)msg);
        }
        /* Empty or overlong: no match of this detector starts there; try the next character. */
        if (ov[0] >= lim) return 0;
        at = next_char(c->t, lim, ov[0]);
    }
    return 0;
}

/*
 * Decide the text from position i on: copy what no detector can touch, replace matches.
 * Stops at the end (or, for a text that may still grow, where a detector needs more) and
 * sets *stop there.  Returns 0, COLLOQ_REDACT_BLOCKED or an error.
 */
static int scan(scan_ctx *c, size_t i, size_t *stop, colloq_err *err) {
    const colloq_redact *r = c->r;
    event ev[COLLOQ_REDACT_MAX_RULES];
    bool valid[COLLOQ_REDACT_MAX_RULES] = { false };
    for (;;) {
        size_t s = SIZE_MAX;
        bool more = false;
        int best = -1;
        for (int k = 0; k < r->n; k++) {
            if (!(r->rules[k].apply & c->dir)) continue;
            if (!valid[k] || ev[k].start < i) {
                int rc = next_event(c, k, i, &ev[k], err);
                if (rc) return rc;
                valid[k] = true;
            }
            if (ev[k].start == SIZE_MAX || ev[k].start > s) continue;
            if (ev[k].start < s) { s = ev[k].start; more = false; best = -1; }
            if (ev[k].kind == RD_MORE) { more = true; continue; }
            if (best < 0 || ev[k].end > ev[best].end ||
                (ev[k].end == ev[best].end && r->rules[k].action == COLLOQ_REDACT_ACT_BLOCK &&
                 r->rules[best].action != COLLOQ_REDACT_ACT_BLOCK))
                best = k;
        }
        size_t lim = c->final ? c->n : c->n_dec;
        size_t upto = s == SIZE_MAX ? lim : s;
        if (upto > i && !out_put(c->out, c->t + i, upto - i))
            return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory");
        if (s == SIZE_MAX || more) { *stop = upto; return 0; }
        c->rec->count[best]++;
        if (r->rules[best].action == COLLOQ_REDACT_ACT_BLOCK) {
            c->rec->blocked_by = best;
            *stop = s;
            return COLLOQ_REDACT_BLOCKED;
        }
        const char *rep = r->rules[best].replacement;
        if (!out_put(c->out, rep, strlen(rep))) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory");
        i = c->floor = ev[best].end;
        /* Answers past the match stay valid, except where a built-in detector's look-back
         * now reaches the new floor: those few positions are asked again. */
        for (int k = 0; k < r->n; k++) {
            if (!valid[k] || !r->rules[k].builtin || ev[k].start < i) continue;
            if (ev[k].start < i + RD_LOOKBACK) { valid[k] = false; continue; }
            rd_text x = { c->t, c->n, c->floor, c->final };
            for (size_t p = i; p < i + RD_LOOKBACK && p < c->n; p++) {
                size_t end = 0;
                rd_result res = r->rules[k].builtin->fn(&x, p, &end);
                if (res != RD_NONE) { ev[k] = (event){ p, end, res }; break; }
            }
        }
    }
}

static int check_dir(int dir, colloq_err *err) {
    if (dir != COLLOQ_REDACT_INPUT && dir != COLLOQ_REDACT_OUTPUT)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "redact: direction must be input or output");
    return 0;
}

int colloq_redact_text(const colloq_redact *r, int dir, const char *text, size_t len, char **out,
                       size_t *out_len, colloq_redact_record *rec, colloq_err *err) {
    colloq_redact_record local;
    if (!rec) rec = &local;
    colloq_redact_record_clear(rec);
    *out = NULL;
    if (out_len) *out_len = 0;
    int rc = check_dir(dir, err);
    if (rc) return rc;
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    if (!md) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory");
    outbuf o = { 0 };
    scan_ctx c = { r, dir, (const unsigned char *)text, len, len, 0, true, false, md, rec, &o };
    size_t stop;
    rc = scan(&c, 0, &stop, err);
    pcre2_match_data_free(md);
    if (rc == 0 && !o.p && !out_put(&o, "", 0)) rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory");
    if (rc) { colloq_free(o.p); return rc; }
    *out = o.p;
    if (out_len) *out_len = o.len;
    return 0;
}

/* ------------------------------------------------------------------ streams */

struct colloq_redact_stream {
    const colloq_redact *r;
    int    dir;
    unsigned char *buf;                /* left context + undecided text */
    size_t len, cap;
    size_t pos;                        /* buf[pos..len) is undecided */
    size_t floor;                      /* end of the last match, in buf (0: before buf) */
    bool   trimmed, blocked, finished;
    outbuf out;
    colloq_redact_record rec;
    pcre2_match_data *md;
};

int colloq_redact_stream_new(const colloq_redact *r, int dir, colloq_redact_stream **out, colloq_err *err) {
    *out = NULL;
    int rc = check_dir(dir, err);
    if (rc) return rc;
    colloq_redact_stream *s = colloq_calloc(1, sizeof *s);
    if (!s) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory");
    s->r = r;
    s->dir = dir;
    colloq_redact_record_clear(&s->rec);
    if (!(s->md = pcre2_match_data_create(4, NULL))) {
        colloq_free(s);
        return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory");
    }
    *out = s;
    return 0;
}

void colloq_redact_stream_free(colloq_redact_stream *s) {
    if (!s) return;
    pcre2_match_data_free(s->md);
    colloq_free(s->buf);
    colloq_free(s->out.p);
    colloq_free(s);
}

size_t colloq_redact_stream_held(const colloq_redact_stream *s) { return s->len - s->pos; }
const colloq_redact_record *colloq_redact_stream_record(const colloq_redact_stream *s) { return &s->rec; }

/* Drop decided text, keeping enough left context for look-behind and boundary checks. */
static void stream_trim(colloq_redact_stream *s) {
    size_t keep = s->r->keep;
    if (s->pos <= keep) return;
    size_t shift = s->pos - keep;
    while (shift < s->pos && (s->buf[shift] & 0xC0) == 0x80) shift++;
    memmove(s->buf, s->buf + shift, s->len - shift);
    s->len -= shift;
    s->pos -= shift;
    s->floor = s->floor > shift ? s->floor - shift : 0;
    s->trimmed = true;
}

static int stream_run(colloq_redact_stream *s, bool final, const char **out, size_t *out_len, colloq_err *err) {
    scan_ctx c = { s->r, s->dir, s->buf, s->len, final ? s->len : complete_prefix(s->buf, s->len),
                   s->floor, final, s->trimmed, s->md, &s->rec, &s->out };
    size_t stop = s->pos;
    int rc = s->buf ? scan(&c, s->pos, &stop, err) : 0;
    if (rc < 0) return rc;
    s->floor = c.floor;
    s->pos = stop;
    if (rc == COLLOQ_REDACT_BLOCKED) s->blocked = true;
    if (out) *out = s->out.p ? s->out.p : "";
    if (out_len) *out_len = s->out.len;
    if (!final) stream_trim(s);
    return rc;
}

int colloq_redact_stream_feed(colloq_redact_stream *s, const char *chunk, size_t len, const char **out,
                              size_t *out_len, colloq_err *err) {
    s->out.len = 0;
    if (out) *out = "";
    if (out_len) *out_len = 0;
    if (s->blocked) return COLLOQ_REDACT_BLOCKED;
    if (s->finished) return colloq_seterr(err, COLLOQ_ERR_ARG, "redact: feed after finish");
    if (len == 0) return 0;
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 512;
        while (cap < s->len + len) cap *= 2;
        unsigned char *b = colloq_realloc(s->buf, cap);
        if (!b) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory");
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, chunk, len);
    s->len += len;
    return stream_run(s, false, out, out_len, err);
}

int colloq_redact_stream_finish(colloq_redact_stream *s, const char **out, size_t *out_len, colloq_err *err) {
    s->out.len = 0;
    if (out) *out = "";
    if (out_len) *out_len = 0;
    if (s->blocked) return COLLOQ_REDACT_BLOCKED;
    if (s->finished) return 0;
    s->finished = true;
    return stream_run(s, true, out, out_len, err);
}

/* ------------------------------------------------------------------ records */

int colloq_redact_record_to_json(const colloq_redact *r, const colloq_redact_record *rec, const char *stage,
                                 json_t *arr) {
    for (int k = 0; k < r->n; k++) {
        if (!rec->count[k]) continue;
        json_t *o = json_pack("{s:s, s:s, s:s, s:i}", "stage", stage ? stage : "", "detector", r->rules[k].name,
                              "action", r->rules[k].action == COLLOQ_REDACT_ACT_BLOCK ? "block" : "redact",
                              "count", rec->count[k]);
        if (!o || json_array_append_new(arr, o)) return COLLOQ_ERR_NOMEM;
    }
    return 0;
}
