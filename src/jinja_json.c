/*
 * jinja_json.c - JSON in and out of template values: the context from jansson
 * values, the public jinja_value constructors, and the tojson serialiser.
 * Must not evaluate templates.
 *
 * tojson is the one transformers installs for chat templates, not jinja2's
 * HTML-safe filter: json.dumps(x, ensure_ascii=False, indent=indent,
 * separators=separators, sort_keys=sort_keys).  So: no HTML escaping; non-ASCII
 * kept as UTF-8 unless ensure_ascii; separators ", " and ": " (",", ": " with an
 * indent); floats as repr() with NaN/Infinity; dict keys str/int/float/bool/None
 * converted like Python; anything else (undefined, generators, ...) is an error.
 */
#include "jinja_internal.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

struct jinja_value { jv v; };

/* ---- json.dumps ---- */

static void dump_string(jbuf *b, const char *s, size_t n, bool ascii) {
    jb_putc(b, '"');
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        uint32_t cp = ju_next(s, n, &i);
        char tmp[16];
        switch (cp) {
        case '"': jb_puts(b, "\\\""); continue;
        case '\\': jb_puts(b, "\\\\"); continue;
        case '\n': jb_puts(b, "\\n"); continue;
        case '\r': jb_puts(b, "\\r"); continue;
        case '\t': jb_puts(b, "\\t"); continue;
        case '\b': jb_puts(b, "\\b"); continue;
        case '\f': jb_puts(b, "\\f"); continue;
        default: break;
        }
        if (cp < 0x20 || (ascii && cp >= 0x7f)) {
            if (cp >= 0x10000) {
                uint32_t v = cp - 0x10000;
                snprintf(tmp, sizeof tmp, "\\u%04x\\u%04x", 0xd800 + (v >> 10), 0xdc00 + (v & 0x3ff));
            } else {
                snprintf(tmp, sizeof tmp, "\\u%04x", cp);
            }
            jb_puts(b, tmp);
        } else {
            jb_put(b, s + start, i - start);
        }
    }
    jb_putc(b, '"');
}

static void json_float(jbuf *b, double f) {
    char tmp[64];
    if (f != f) { jb_puts(b, "NaN"); return; }
    if (isinf(f)) { jb_puts(b, f > 0 ? "Infinity" : "-Infinity"); return; }
    ju_float_repr(f, tmp, sizeof tmp);
    jb_puts(b, tmp);
}

static void newline_indent(jbuf *b, const jjson_opts *o, int level) {
    jb_putc(b, '\n');
    for (int i = 0; i < level; i++) jb_put(b, o->indent, o->indent_n);
}

/* key -> string as json.dumps converts dict keys; -1 when the key type is refused */
static int json_key(jbuf *b, jv k, const jjson_opts *o, char *msg, size_t cap) {
    switch (k.type) {
    case JV_STR: dump_string(b, k.u.s->s, k.u.s->len, o->ensure_ascii); return 0;
    case JV_BOOL: jb_puts(b, k.u.b ? "\"true\"" : "\"false\""); return 0;
    case JV_NONE: jb_puts(b, "\"null\""); return 0;
    case JV_INT: jb_printf(b, "\"%lld\"", (long long)k.u.i); return 0;
    case JV_FLOAT: jb_putc(b, '"'); json_float(b, k.u.f); jb_putc(b, '"'); return 0;
    default:
        snprintf(msg, cap, "keys must be str, int, float, bool or None, not %s", jv_typename(k));
        return -1;
    }
}

typedef struct { const jdict *d; char *msg; size_t cap; bool failed; } keysort_ctx;

static int key_cmp(void *ctx, size_t a, size_t b, int *out) {
    keysort_ctx *c = ctx;
    if (jv_order(c->d->k[a], c->d->k[b], "<", out, c->msg, c->cap) < 0) return -1;
    if (*out == 2) *out = 0;
    return 0;
}

int jv_tojson(jbuf *b, jv v, const jjson_opts *o, int depth, char *msg, size_t cap) {
    if (depth > JINJA_MAX_NEST) { snprintf(msg, cap, "Circular reference detected"); return -1; }
    switch (v.type) {
    case JV_NONE: jb_puts(b, "null"); return 0;
    case JV_BOOL: jb_puts(b, v.u.b ? "true" : "false"); return 0;
    case JV_INT: jb_printf(b, "%lld", (long long)v.u.i); return 0;
    case JV_FLOAT: json_float(b, v.u.f); return 0;
    case JV_STR: dump_string(b, v.u.s->s, v.u.s->len, o->ensure_ascii); return 0;
    case JV_LIST: {
        jlist *l = v.u.l;
        if (l->kind != JL_LIST && l->kind != JL_TUPLE) break;
        if (l->n == 0) { jb_puts(b, "[]"); return 0; }
        jb_putc(b, '[');
        for (size_t i = 0; i < l->n; i++) {
            if (i) jb_put(b, o->item_sep, o->item_sep_n);
            if (o->indent) newline_indent(b, o, depth + 1);
            if (jv_tojson(b, l->v[i], o, depth + 1, msg, cap) < 0) return -1;
        }
        if (o->indent) newline_indent(b, o, depth);
        jb_putc(b, ']');
        return 0;
    }
    case JV_DICT: {
        jdict *d = v.u.d;
        if (d->n == 0) { jb_puts(b, "{}"); return 0; }
        size_t *order = jmalloc(d->n * sizeof(size_t));
        if (!order) return 0;                   /* sticky failure reported by the caller */
        for (size_t i = 0; i < d->n; i++) order[i] = i;
        if (o->sort_keys) {
            keysort_ctx c = { d, msg, cap, false };
            if (jv_sort_idx(order, d->n, key_cmp, &c) < 0) { colloq_free(order); return -1; }
        }
        jb_putc(b, '{');
        int rc = 0;
        for (size_t j = 0; j < d->n && rc == 0; j++) {
            size_t i = order[j];
            if (j) jb_put(b, o->item_sep, o->item_sep_n);
            if (o->indent) newline_indent(b, o, depth + 1);
            if (json_key(b, d->k[i], o, msg, cap) < 0) { rc = -1; break; }
            jb_put(b, o->key_sep, o->key_sep_n);
            rc = jv_tojson(b, d->v[i], o, depth + 1, msg, cap);
        }
        colloq_free(order);
        if (rc < 0) return -1;
        if (o->indent) newline_indent(b, o, depth);
        jb_putc(b, '}');
        return 0;
    }
    default: break;
    }
    snprintf(msg, cap, "Object of type %s is not JSON serializable", jv_typename(v));
    return -1;
}

/* ---- from jansson ---- */

static int from_json(const json_t *j, jv *out, int depth, colloq_err *err) {
    if (depth > JINJA_MAX_NEST)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "JSON value nested deeper than %d", JINJA_MAX_NEST);
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        jv d = jv_dict();
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)j, key, val) {
            size_t kn = strlen(key);
            jv k = jv_str(key, kn);
            jv x;
            int rc = from_json(val, &x, depth + 1, err);
            if (rc != 0) { jv_unref(k); jv_unref(d); return rc; }
            jd_set(d.u.d, k, x);
            jv_unref(k);
        }
        *out = d;
        return 0;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        jv l = jv_list(JL_LIST, n);
        for (size_t i = 0; i < n; i++) {
            jv x;
            int rc = from_json(json_array_get(j, i), &x, depth + 1, err);
            if (rc != 0) { jv_unref(l); return rc; }
            jl_push(l, x);
        }
        *out = l;
        return 0;
    }
    case JSON_STRING: *out = jv_str(json_string_value(j), json_string_length(j)); return 0;
    case JSON_INTEGER: *out = jv_int((int64_t)json_integer_value(j)); return 0;
    case JSON_REAL: *out = jv_float(json_real_value(j)); return 0;
    case JSON_TRUE: *out = jv_bool(true); return 0;
    case JSON_FALSE: *out = jv_bool(false); return 0;
    default: *out = jv_none(); return 0;
    }
}

static jinja_value *box(jv v) {
    if (jv_tls.oom || jv_tls.limit) { jv_unref(v); return NULL; }
    jinja_value *b = colloq_malloc(sizeof *b);
    if (!b) { jv_unref(v); return NULL; }
    b->v = v;
    return b;
}

static void api_enter(void) { jv_tls.oom = false; jv_tls.limit = false; jv_tls.max_str = 0; }

jinja_value *jinja_value_from_json(const struct json_t *j, colloq_err *err) {
    api_enter();
    if (!j) { colloq_seterr(err, COLLOQ_ERR_ARG, "no JSON value"); return NULL; }
    jv v;
    if (from_json(j, &v, 0, err) != 0) return NULL;
    jinja_value *b = box(v);
    if (!b) colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory converting JSON");
    return b;
}

jinja_value *jinja_value_from_json_text(const char *text, size_t len, colloq_err *err) {
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j) {
        colloq_seterr(err, COLLOQ_ERR_ARG, "JSON line %d column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    jinja_value *v = jinja_value_from_json(j, err);
    json_decref(j);
    return v;
}

static bool valid_utf8(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        int k = colloq_utf8_seq_len((const unsigned char *)s + i, n - i);
        if (k <= 0) return false;
        i += (size_t)k;
    }
    return true;
}

jinja_value *jinja_value_dict(void) { api_enter(); return box(jv_dict()); }
jinja_value *jinja_value_list(void) { api_enter(); return box(jv_list(JL_LIST, 0)); }
jinja_value *jinja_value_int(int64_t v) { api_enter(); return box(jv_int(v)); }
jinja_value *jinja_value_bool(bool v) { api_enter(); return box(jv_bool(v)); }
jinja_value *jinja_value_none(void) { api_enter(); return box(jv_none()); }

jinja_value *jinja_value_string(const char *s, size_t len) {
    api_enter();
    if (!s || !valid_utf8(s, len)) return NULL;
    return box(jv_str(s, len));
}

int jinja_dict_set(jinja_value *d, const char *key, jinja_value *take) {
    if (!take) return COLLOQ_ERR_ARG;
    jv v = take->v;
    colloq_free(take);
    if (!d || d->v.type != JV_DICT || !key || !valid_utf8(key, strlen(key))) {
        jv_unref(v);
        return COLLOQ_ERR_ARG;
    }
    api_enter();
    jv k = jv_cstr(key);
    bool ok = !jv_tls.oom && jd_set(d->v.u.d, k, v);
    jv_unref(k);
    return ok ? COLLOQ_OK : COLLOQ_ERR_NOMEM;
}

int jinja_list_append(jinja_value *l, jinja_value *take) {
    if (!take) return COLLOQ_ERR_ARG;
    jv v = take->v;
    colloq_free(take);
    if (!l || l->v.type != JV_LIST) { jv_unref(v); return COLLOQ_ERR_ARG; }
    api_enter();
    return jl_push(l->v, v) ? COLLOQ_OK : COLLOQ_ERR_NOMEM;
}

void jinja_value_free(jinja_value *v) {
    if (!v) return;
    jv_unref(v->v);
    colloq_free(v);
}

/* for the renderer: the context value inside a box */
jv jinja_value_jv(const jinja_value *v) { return v->v; }
