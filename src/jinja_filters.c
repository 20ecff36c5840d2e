/*
 * jinja_filters.c - Jinja2's builtin filters and tests with their Python
 * semantics (generators where Jinja2 returns generators, case-insensitive
 * sort/unique/min/max, make_attrgetter paths, transformers' tojson), plus the
 * name tables the parser resolves against.  Must not touch statements or scopes.
 */
#include "jinja_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

jv jm_str_replace(jv s, jv old, jv new_, int64_t count);
jv jm_splitlines(jv s, bool keepends);
int jm_percent_format(jr *r, jv fmt, jv args, jv *out);

typedef int (*filter_fn)(jr *r, jv in, jcall *c, jv *out);

#define BIND(name, ...) \
    static const char *const P_[] = { __VA_ARGS__ }; \
    jv a[sizeof P_ / sizeof P_[0]]; \
    if (jcall_bind(r, name, c, P_, sizeof P_ / sizeof P_[0], a) < 0) return -1

#define NOARGS(name) \
    if (jcall_bind(r, name, c, NULL, 0, NULL) < 0) return -1

static bool arg_true(jv v) { return !jv_is_missing(v) && jv_truthy(v); }

static int need_int(jr *r, jv v, int64_t *out) {
    if (!jv_is_intlike(v)) {
        if (v.type == JV_UNDEF) return jr_fail_undef(r, v);
        return jr_fail(r, "'%s' object cannot be interpreted as an integer", jv_typename(v));
    }
    *out = jv_as_int(v);
    return 0;
}

/* soft_str: strings (and Markup) stay, everything else goes through str() */
static jv soft_str(jv v) { return v.type == JV_STR ? jv_ref(v) : jv_to_strv(v); }

static jv mark(jv v, jv like) { v.flags = (uint8_t)((v.flags & ~JVF_MARKUP) | (like.flags & JVF_MARKUP)); return v; }

static jv make_gen(jv list_take) { if (list_take.u.l->h.rc > 0) list_take.u.l->kind = JL_GEN; return list_take; }

/* Filters that jinja2 writes as generators fail only when consumed: turn an error into
 * a generator that raises it when iterated. */
static int defer_error(jr *r, jv *out) {
    if (!r->failed || r->raised || r->oom || jv_tls.oom || jv_tls.limit) return -1;
    jv g = make_gen(jv_list(JL_LIST, 0));
    if (g.u.l->h.rc > 0) g.u.l->lazy = jv_undef_msg("%s", r->msg);
    r->failed = false;
    r->msg[0] = 0;
    *out = g;
    return 0;
}

/* ---- attribute paths (make_attrgetter) ---- */

static int attr_path(jr *r, jv item, jv attribute, jv deflt, bool lower, jv *out) {
    jv cur = jv_ref(item);
    if (!jv_is_missing(attribute) && attribute.type != JV_NONE) {
        if (attribute.type == JV_STR) {
            const char *s = jv_sp(attribute);
            size_t n = jv_sn(attribute), st = 0;
            for (size_t i = 0; i <= n; i++) {
                if (i < n && s[i] != '.') continue;
                bool digits = i > st;
                int64_t num = 0;
                for (size_t k = st; k < i && digits; k++) {
                    if (s[k] < '0' || s[k] > '9' || num > 100000000000LL) digits = false;
                    else num = num * 10 + (s[k] - '0');
                }
                jv key = digits ? jv_int(num) : jv_str(s + st, i - st), next;
                int rc = je_getitem(r, cur, key, &next);
                jv_unref(key);
                jv_unref(cur);
                if (rc < 0) return -1;
                cur = next;
                if (!jv_is_missing(deflt) && deflt.type != JV_NONE && cur.type == JV_UNDEF) {
                    jv_unref(cur);
                    cur = jv_ref(deflt);
                }
                st = i + 1;
            }
        } else {
            jv next;
            int rc = je_getitem(r, cur, attribute, &next);
            jv_unref(cur);
            if (rc < 0) return -1;
            cur = next;
            if (!jv_is_missing(deflt) && deflt.type != JV_NONE && cur.type == JV_UNDEF) {
                jv_unref(cur);
                cur = jv_ref(deflt);
            }
        }
    }
    if (lower && cur.type == JV_STR) {
        jbuf b = { 0 };
        ju_case(&b, jv_sp(cur), jv_sn(cur), JU_LOWER);
        jv_unref(cur);
        cur = jb_take_str(&b);
    }
    *out = cur;
    return 0;
}

/* keys for sort / unique / min / max: one per item, attribute may list several (a,b) */
static int sort_keys(jr *r, jv items, jv attribute, bool lower, bool multi, jv *keys_out) {
    jv keys = jv_list(JL_LIST, jl_len(items));
    for (size_t i = 0; i < jl_len(items); i++) {
        jv k;
        if (multi && attribute.type == JV_STR && memchr(jv_sp(attribute), ',', jv_sn(attribute))) {
            k = jv_list(JL_LIST, 2);
            const char *s = jv_sp(attribute);
            size_t n = jv_sn(attribute), st = 0;
            for (size_t j = 0; j <= n; j++) {
                if (j < n && s[j] != ',') continue;
                jv part = jv_str(s + st, j - st), v;
                int rc = attr_path(r, jl_at(items, i), part, jv_missing(), lower, &v);
                jv_unref(part);
                if (rc < 0) { jv_unref(k); jv_unref(keys); return -1; }
                jl_push(k, v);
                st = j + 1;
            }
        } else if (attr_path(r, jl_at(items, i), attribute, jv_missing(), lower, &k) < 0) {
            jv_unref(keys);
            return -1;
        }
        jl_push(keys, k);
    }
    *keys_out = keys;
    return 0;
}

typedef struct { jr *r; jv keys; bool reverse; } sort_ctx;

static int key_cmp(void *ctx, size_t a, size_t b, int *out) {
    sort_ctx *c = ctx;
    char msg[200];
    jv x = jl_at(c->keys, c->reverse ? b : a), y = jl_at(c->keys, c->reverse ? a : b);
    if (x.type == JV_UNDEF) return jr_fail_undef(c->r, x);
    if (y.type == JV_UNDEF) return jr_fail_undef(c->r, y);
    if (jv_order(x, y, "<", out, msg, sizeof msg) < 0) return jr_fail(c->r, "%s", msg);
    if (*out == 2) *out = 0;
    return 0;
}

static int iter_in(jr *r, jv in, jv *items) {
    if (in.type == JV_UNDEF) { *items = jv_list(JL_LIST, 0); return 0; }
    return je_iter(r, in, items);
}

/* ---- filters ---- */

static int f_abs(jr *r, jv in, jcall *c, jv *out) {
    NOARGS("abs");
    if (jv_is_intlike(in)) {
        int64_t x = jv_as_int(in);
        if (x == INT64_MIN) return jr_fail(r, "integer overflow (result too large)");
        *out = jv_int(x < 0 ? -x : x);
    } else if (in.type == JV_FLOAT) *out = jv_float(fabs(in.u.f));
    else return jr_fail(r, "bad operand type for abs(): '%s'", jv_typename(in));
    return 0;
}

static int f_attr(jr *r, jv in, jcall *c, jv *out) {
    BIND("attr", "name");
    if (a[0].type != JV_STR) return jr_fail(r, "attribute name must be a string");
    if (in.type == JV_UNDEF) return jr_fail_undef(r, in);
    bool found = false;
    if (jm_lookup_attr(r, in, jv_sp(a[0]), jv_sn(a[0]), out, &found) < 0) return -1;
    if (!found) *out = jv_undef_msg("'%s' has no attribute '%s'", jv_typename(in), jv_sp(a[0]));
    return 0;
}

static int f_batch(jr *r, jv in, jcall *c, jv *out) {
    BIND("batch", "linecount", "fill_with");
    int64_t cnt = 0;
    if (need_int(r, a[0], &cnt) < 0) return -1;
    jv items;
    if (iter_in(r, in, &items) < 0) return -1;
    jv res = jv_list(JL_LIST, 0), cur = jv_list(JL_LIST, 0);
    for (size_t i = 0; i < jl_len(items); i++) {
        if ((int64_t)jl_len(cur) == cnt) { jl_push(res, cur); cur = jv_list(JL_LIST, 0); }
        jl_push(cur, jv_ref(jl_at(items, i)));
    }
    if (jl_len(cur)) {
        if (!jv_is_missing(a[1]) && a[1].type != JV_NONE)
            while ((int64_t)jl_len(cur) < cnt && jr_ok(r)) jl_push(cur, jv_ref(a[1]));
        jl_push(res, cur);
    } else {
        jv_unref(cur);
    }
    jv_unref(items);
    *out = make_gen(res);
    return 0;
}

static int case_filter(jr *r, jv in, jcall *c, jv *out, const char *name, int mode) {
    NOARGS(name);
    jv s = soft_str(in);
    jbuf b = { 0 };
    ju_case(&b, jv_sp(s), jv_sn(s), mode);
    *out = mark(jb_take_str(&b), s);
    jv_unref(s);
    return 0;
}
static int f_capitalize(jr *r, jv in, jcall *c, jv *out) { return case_filter(r, in, c, out, "capitalize", JU_CAPITALIZE); }
static int f_upper(jr *r, jv in, jcall *c, jv *out) { return case_filter(r, in, c, out, "upper", JU_UPPER); }
static int f_lower(jr *r, jv in, jcall *c, jv *out) { return case_filter(r, in, c, out, "lower", JU_LOWER); }

static int f_title(jr *r, jv in, jcall *c, jv *out) {
    NOARGS("title");
    jv s = soft_str(in);
    const char *p = jv_sp(s);
    size_t n = jv_sn(s), i = 0;
    jbuf b = { 0 };
    /* split on runs of [-\s({\[<]; each piece: first char upper, rest lower */
    while (i < n) {
        size_t k = i;
        uint32_t c0 = ju_next(p, n, &k);
        bool sep = c0 == '-' || c0 == '(' || c0 == '{' || c0 == '[' || c0 == '<' || ju_isspace(c0);
        while (i < n) {
            size_t k2 = i;
            uint32_t ch = ju_next(p, n, &k2);
            bool s2 = ch == '-' || ch == '(' || ch == '{' || ch == '[' || ch == '<' || ju_isspace(ch);
            if (s2 != sep) break;
            i = k2;
        }
        ju_case1(&b, c0, JU_UPPER);
        ju_case(&b, p + k, i - k, JU_LOWER);
    }
    jv_unref(s);
    *out = jb_take_str(&b);
    return 0;
}

static int f_center(jr *r, jv in, jcall *c, jv *out) {
    BIND("center", "width");
    int64_t w = 80;
    if (!jv_is_missing(a[0]) && need_int(r, a[0], &w) < 0) return -1;
    jv s = soft_str(in);
    int64_t len = (int64_t)jv_str_ncp(s);
    if (w <= len) { *out = s; return 0; }
    if (w > (int64_t)(64u << 20)) { jv_unref(s); return jr_fail(r, "width too large"); }
    int64_t marg = w - len, left = marg / 2 + (marg & w & 1);
    jbuf b = { 0 };
    for (int64_t i = 0; i < left; i++) jb_putc(&b, ' ');
    jb_put(&b, jv_sp(s), jv_sn(s));
    for (int64_t i = 0; i < marg - left; i++) jb_putc(&b, ' ');
    *out = mark(jb_take_str(&b), s);
    jv_unref(s);
    return 0;
}

static int f_length(jr *r, jv in, jcall *c, jv *out) {
    NOARGS("length");
    switch (in.type) {
    case JV_UNDEF: *out = jv_int(0); return 0;
    case JV_STR: *out = jv_int((int64_t)jv_str_ncp(in)); return 0;
    case JV_DICT: *out = jv_int((int64_t)in.u.d->n); return 0;
    case JV_LIST:
        if (in.u.l->kind != JL_GEN && in.u.l->kind != JL_REVITER) { *out = jv_int((int64_t)in.u.l->n); return 0; }
        break;
    case JV_LOOP:
        if (je_loop_fill(r, in.u.lp, SIZE_MAX) < 0) return -1;
        *out = jv_int((int64_t)jl_len(in.u.lp->items));
        return 0;
    default: break;
    }
    return jr_fail(r, "object of type '%s' has no len()", jv_typename(in));
}

static int f_default(jr *r, jv in, jcall *c, jv *out) {
    BIND("default", "default_value", "boolean");
    if (in.type == JV_UNDEF || (arg_true(a[1]) && !jv_truthy(in)))
        *out = jv_is_missing(a[0]) ? jv_empty_str() : jv_ref(a[0]);
    else
        *out = jv_ref(in);
    return 0;
}

static int f_dictsort(jr *r, jv in, jcall *c, jv *out) {
    BIND("dictsort", "case_sensitive", "by", "reverse");
    int pos = 0;
    if (!jv_is_missing(a[1])) {
        if (jv_str_eq(a[1], "value")) pos = 1;
        else if (!jv_str_eq(a[1], "key")) return jr_fail(r, "You can only sort by either \"key\" or \"value\"");
    }
    if (in.type != JV_DICT) return jr_fail(r, "'%s' object has no attribute 'items'", jv_typename(in));
    jdict *d = in.u.d;
    jv items = jv_list(JL_LIST, d->n), keys = jv_list(JL_LIST, d->n);
    for (size_t i = 0; i < d->n; i++) {
        jv t = jv_list(JL_TUPLE, 2);
        jl_push(t, jv_ref(d->k[i]));
        jl_push(t, jv_ref(d->v[i]));
        jl_push(items, t);
        jv k = pos ? d->v[i] : d->k[i], kk;
        attr_path(r, k, jv_missing(), jv_missing(), !arg_true(a[0]), &kk);
        jl_push(keys, kk);
    }
    size_t *idx = jmalloc((d->n ? d->n : 1) * sizeof(size_t));
    int rc = -1;
    if (idx) {
        for (size_t i = 0; i < d->n; i++) idx[i] = i;
        sort_ctx sc = { r, keys, arg_true(a[2]) };
        rc = jv_sort_idx(idx, d->n, key_cmp, &sc);
    }
    if (rc == 0) {
        jv res = jv_list(JL_LIST, d->n);
        for (size_t i = 0; i < d->n; i++) jl_push(res, jv_ref(jl_at(items, idx[i])));
        *out = res;
    }
    colloq_free(idx);
    jv_unref(items); jv_unref(keys);
    return rc < 0 ? -1 : 0;
}

static int f_escape(jr *r, jv in, jcall *c, jv *out) { NOARGS("escape"); *out = jv_escape(in); return 0; }

static int f_forceescape(jr *r, jv in, jcall *c, jv *out) {
    NOARGS("forceescape");
    jv s = jv_to_strv(in);
    *out = jv_escape(s);
    jv_unref(s);
    return 0;
}

static int f_first(jr *r, jv in, jcall *c, jv *out) {
    NOARGS("first");
    if (in.type == JV_LIST && (in.u.l->kind == JL_GEN || in.u.l->kind == JL_REVITER)) {
        jlist *l = in.u.l;
        if (l->lazy.type == JV_UNDEF && l->lazy.u.s) return jr_fail_undef(r, l->lazy);
        if (l->pos < l->n) { *out = jv_ref(l->v[l->pos]); if (l->h.rc >= 0) l->pos++; return 0; }
        *out = jv_undef_msg("No first item, sequence was empty.");
        return 0;
    }
    jv items;
    if (iter_in(r, in, &items) < 0) return -1;
    *out = jl_len(items) ? jv_ref(jl_at(items, 0)) : jv_undef_msg("No first item, sequence was empty.");
    jv_unref(items);
    return 0;
}

static int f_last(jr *r, jv in, jcall *c, jv *out) {
    NOARGS("last");
    if (in.type == JV_LIST && (in.u.l->kind == JL_GEN || in.u.l->kind == JL_REVITER))
        return jr_fail(r, "'%s' object is not reversible", jv_typename(in));
    if (in.type != JV_UNDEF && in.type != JV_STR && in.type != JV_LIST && in.type != JV_DICT)
        return jr_fail(r, "'%s' object is not reversible", jv_typename(in));
    jv items;
    if (iter_in(r, in, &items) < 0) return -1;
    size_t n = jl_len(items);
    *out = n ? jv_ref(jl_at(items, n - 1)) : jv_undef_msg("No last item, sequence was empty.");
    jv_unref(items);
    return 0;
}

/* Python float() of a string */
static bool parse_float(jv s, double *out) {
    char buf[128];
    size_t lo, hi;
    const char *p = jv_sp(s);
    size_t n = jv_sn(s);
    lo = 0; hi = n;
    while (lo < hi) { size_t k = lo; if (!ju_isspace(ju_next(p, n, &k))) break; lo = k; }
    while (hi > lo && (p[hi - 1] == ' ' || (p[hi - 1] >= 9 && p[hi - 1] <= 13))) hi--;
    if (hi - lo == 0 || hi - lo >= sizeof buf) return false;
    size_t o = 0;
    for (size_t i = lo; i < hi; i++) {
        if (p[i] == '_') {
            if (i == lo || i + 1 >= hi || p[i - 1] < '0' || p[i - 1] > '9' || p[i + 1] < '0' || p[i + 1] > '9') return false;
            continue;
        }
        buf[o++] = p[i];
    }
    buf[o] = 0;
    const char *q = buf + (buf[0] == '+' || buf[0] == '-');
    if (!strcasecmp(q, "inf") || !strcasecmp(q, "infinity") || !strcasecmp(q, "nan")) {
        double v = (q[0] | 0x20) == 'n' ? NAN : INFINITY;
        *out = buf[0] == '-' ? -v : v;
        return true;
    }
    for (const char *x = q; *x; x++)
        if (!((*x >= '0' && *x <= '9') || *x == '.' || *x == 'e' || *x == 'E' || *x == '+' || *x == '-')) return false;
    char *end;
    errno = 0;
    *out = strtod(buf, &end);
    return *end == 0 && end != buf;
}

static int f_float(jr *r, jv in, jcall *c, jv *out) {
    BIND("float", "default");
    double f;
    if (in.type == JV_UNDEF) return jr_fail_undef(r, in);   /* Undefined.__float__ raises */
    if (jv_is_num(in)) { *out = jv_float(jv_as_float(in)); return 0; }
    if (in.type == JV_STR && parse_float(in, &f)) { *out = jv_float(f); return 0; }
    *out = jv_is_missing(a[0]) ? jv_float(0.0) : jv_ref(a[0]);
    return 0;
}

/* Python int(str, base) */
static bool parse_int(jv s, int64_t base, int64_t *out) {
    const char *p = jv_sp(s);
    size_t n = jv_sn(s), lo = 0, hi = n;
    while (lo < hi) { size_t k = lo; if (!ju_isspace(ju_next(p, n, &k))) break; lo = k; }
    while (hi > lo && (p[hi - 1] == ' ' || (p[hi - 1] >= 9 && p[hi - 1] <= 13))) hi--;
    bool neg = false;
    if (lo < hi && (p[lo] == '+' || p[lo] == '-')) neg = p[lo++] == '-';
    if (lo + 1 < hi && p[lo] == '0') {
        char x = (char)(p[lo + 1] | 0x20);
        int pb = x == 'x' ? 16 : x == 'o' ? 8 : x == 'b' ? 2 : 0;
        if (pb && (base == pb || base == 0)) { base = pb; lo += 2; if (lo < hi && p[lo] == '_') lo++; }
    }
    if (base == 0) base = 10;
    if (base < 2 || base > 36 || lo >= hi) return false;
    uint64_t v = 0;
    bool prev_digit = false;
    for (size_t i = lo; i < hi; i++) {
        char ch = p[i];
        if (ch == '_') { if (!prev_digit || i + 1 >= hi) return false; prev_digit = false; continue; }
        int d = ch >= '0' && ch <= '9' ? ch - '0' : (ch | 0x20) >= 'a' && (ch | 0x20) <= 'z' ? (ch | 0x20) - 'a' + 10 : 99;
        if (d >= base) return false;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) return false;
        v = v * (uint64_t)base + (uint64_t)d;
        prev_digit = true;
    }
    if (v > (uint64_t)INT64_MAX + neg) return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static int f_int(jr *r, jv in, jcall *c, jv *out) {
    BIND("int", "default", "base");
    int64_t base = 10, v;
    if (!jv_is_missing(a[1]) && need_int(r, a[1], &base) < 0) return -1;
    jv dflt = jv_is_missing(a[0]) ? jv_int(0) : a[0];
    if (in.type == JV_UNDEF) return jr_fail_undef(r, in);   /* Undefined.__int__ raises */
    if (jv_is_intlike(in)) { *out = jv_int(jv_as_int(in)); return 0; }
    if (in.type == JV_FLOAT) {
        if (in.u.f != in.u.f) return jr_fail(r, "cannot convert float NaN to integer");
        if (isinf(in.u.f) || fabs(in.u.f) >= 9.2e18) return jr_fail(r, "cannot convert float infinity to integer");
        *out = jv_int((int64_t)in.u.f);
        return 0;
    }
    if (in.type == JV_STR) {
        if (parse_int(in, base, &v)) { *out = jv_int(v); return 0; }
        double f;
        if (parse_float(in, &f)) {
            if (f != f || isinf(f) || fabs(f) >= 9.2e18) return jr_fail(r, "cannot convert float to integer");
            *out = jv_int((int64_t)f);
            return 0;
        }
    }
    *out = jv_ref(dflt);
    return 0;
}

static int f_format(jr *r, jv in, jcall *c, jv *out) {
    if (c->npos && c->nkw) return jr_fail(r, "can't handle positional and keyword arguments at the same time");
    jv s = soft_str(in), args;
    if (c->nkw) {
        args = jv_dict();
        for (size_t i = 0; i < c->nkw; i++) jd_set(args.u.d, c->kwn[i], jv_ref(c->kwv[i]));
    } else {
        args = jv_list(JL_TUPLE, c->npos);
        for (size_t i = 0; i < c->npos; i++) jl_push(args, jv_ref(c->pos[i]));
    }
    int rc = jm_percent_format(r, s, args, out);
    jv_unref(s); jv_unref(args);
    return rc;
}

static int f_indent(jr *r, jv in, jcall *c, jv *out) {
    BIND("indent", "width", "first", "blank");
    jv ind;
    if (jv_is_missing(a[0])) ind = jv_cstr("    ");
    else if (a[0].type == JV_STR) ind = jv_ref(a[0]);
    else {
        int64_t w = 0;
        if (need_int(r, a[0], &w) < 0) return -1;
        if (w > (int64_t)(1u << 20)) return jr_fail(r, "indent width too large");
        jbuf b = { 0 };
        for (int64_t i = 0; i < w; i++) jb_putc(&b, ' ');
        ind = jb_take_str(&b);
    }
    if (in.type != JV_STR) { jv_unref(ind); return jr_fail(r, "unsupported operand type(s) for +=: '%s' and 'str'", jv_typename(in)); }
    jbuf sb = { 0 };
    jb_put(&sb, jv_sp(in), jv_sn(in));
    jb_putc(&sb, '\n');
    jv s = jb_take_str(&sb);
    jv lines = jm_splitlines(s, false);
    jv_unref(s);
    jbuf b = { 0 };
    bool blank = arg_true(a[2]);
    if (arg_true(a[1])) jb_put(&b, jv_sp(ind), jv_sn(ind));
    for (size_t i = 0; i < jl_len(lines); i++) {
        jv line = jl_at(lines, i);
        if (i) {
            jb_putc(&b, '\n');
            if (blank || jv_sn(line)) jb_put(&b, jv_sp(ind), jv_sn(ind));
        }
        jb_put(&b, jv_sp(line), jv_sn(line));
    }
    jv_unref(lines);
    jv_unref(ind);
    *out = mark(jb_take_str(&b), in);
    return 0;
}

static int f_items(jr *r, jv in, jcall *c, jv *out) {
    NOARGS("items");
    if (in.type == JV_UNDEF) { *out = make_gen(jv_list(JL_LIST, 0)); return 0; }
    if (in.type != JV_DICT) return jr_fail(r, "Can only get item pairs from a mapping.");
    jv res = jv_list(JL_LIST, in.u.d->n);
    for (size_t i = 0; i < in.u.d->n; i++) {
        jv t = jv_list(JL_TUPLE, 2);
        jl_push(t, jv_ref(in.u.d->k[i]));
        jl_push(t, jv_ref(in.u.d->v[i]));
        jl_push(res, t);
    }
    *out = make_gen(res);
    return 0;
}

static int f_join(jr *r, jv in, jcall *c, jv *out) {
    BIND("join", "d", "attribute");
    jv items;
    if (iter_in(r, in, &items) < 0) return -1;
    jbuf b = { 0 };
    jv sep = jv_is_missing(a[0]) ? jv_empty_str() : jv_to_strv(a[0]);
    int rc = 0;
    for (size_t i = 0; i < jl_len(items) && rc == 0; i++) {
        jv x = jv_ref(jl_at(items, i));
        if (!jv_is_missing(a[1]) && a[1].type != JV_NONE) {
            jv y;
            rc = attr_path(r, x, a[1], jv_missing(), false, &y);
            jv_unref(x);
            if (rc < 0) break;
            x = y;
        }
        if (i) jb_put(&b, jv_sp(sep), jv_sn(sep));
        if (jv_tostr(&b, x) < 0) rc = jr_fail(r, "value nested too deeply");
        jv_unref(x);
    }
    jv_unref(sep);
    jv_unref(items);
    if (rc < 0) { jb_free(&b); return -1; }
    *out = jb_take_str(&b);
    return 0;
}

static int f_list(jr *r, jv in, jcall *c, jv *out) {
    NOARGS("list");
    jv items;
    if (iter_in(r, in, &items) < 0) return -1;
    jv res = jv_list(JL_LIST, jl_len(items));
    for (size_t i = 0; i < jl_len(items); i++) jl_push(res, jv_ref(jl_at(items, i)));
    jv_unref(items);
    *out = res;
    return 0;
}

static int f_map(jr *r, jv in, jcall *c, jv *out) {
    jv items = jv_list(JL_LIST, 0);
    if (jv_truthy(in)) { jv_unref(items); if (je_iter(r, in, &items) < 0) return -1; }
    jv res = jv_list(JL_LIST, jl_len(items));
    int rc = 0;
    jv attribute = jv_missing(), deflt = jv_missing();
    bool by_attr = c->npos == 0;
    if (by_attr) {
        for (size_t k = 0; k < c->nkw; k++) {
            if (jv_str_eq(c->kwn[k], "attribute")) attribute = c->kwv[k];
            else if (jv_str_eq(c->kwn[k], "default")) deflt = c->kwv[k];
            else { rc = jr_fail(r, "Unexpected keyword argument '%s'", jv_sp(c->kwn[k])); break; }
        }
        if (rc == 0 && jv_is_missing(attribute)) rc = jr_fail(r, "map requires a filter argument");
    }
    int fid = -1;
    jcall sub = { 0 };
    if (!by_attr && rc == 0) {
        if (c->pos[0].type != JV_STR) rc = jr_fail(r, "map requires a filter name");
        else {
            fid = jf_filter_id(jv_sp(c->pos[0]));
            sub.pos = c->pos + 1; sub.npos = c->npos - 1;
            sub.kwn = c->kwn; sub.kwv = c->kwv; sub.nkw = c->nkw;
        }
    }
    for (size_t i = 0; i < jl_len(items) && rc == 0; i++) {
        jv v;
        if (by_attr) rc = attr_path(r, jl_at(items, i), attribute, deflt, false, &v);
        else rc = je_filter(r, fid, jv_sp(c->pos[0]), jl_at(items, i), &sub, &v);
        if (rc == 0) jl_push(res, v);
    }
    jv_unref(items);
    if (rc < 0) { jv_unref(res); return -1; }
    *out = make_gen(res);
    return 0;
}

static int select_common(jr *r, jv in, jcall *c, jv *out, bool want, bool by_attr) {
    jv items = jv_list(JL_LIST, 0);
    if (jv_truthy(in)) { jv_unref(items); if (je_iter(r, in, &items) < 0) return -1; }
    jv res = jv_list(JL_LIST, 0);
    size_t off = by_attr ? 1 : 0;
    int rc = 0;
    if (by_attr && c->npos < 1 && jl_len(items)) rc = jr_fail(r, "Missing parameter for attribute name");
    int tid = -1;
    const char *tname = NULL;
    jcall sub = { 0 };
    if (rc == 0 && c->npos > off) {
        if (c->pos[off].type != JV_STR) rc = jr_fail(r, "test name must be a string");
        else { tname = jv_sp(c->pos[off]); tid = jf_test_id(tname); }
        sub.pos = c->pos + off + 1; sub.npos = c->npos - off - 1;
        sub.kwn = c->kwn; sub.kwv = c->kwv; sub.nkw = c->nkw;
    }
    for (size_t i = 0; i < jl_len(items) && rc == 0; i++) {
        jv item = jl_at(items, i), v;
        if (by_attr) { if ((rc = attr_path(r, item, c->pos[0], jv_missing(), false, &v)) < 0) break; }
        else v = jv_ref(item);
        bool t;
        if (tname) rc = je_test(r, tid, tname, v, &sub, &t);
        else t = jv_truthy(v);
        jv_unref(v);
        if (rc == 0 && t == want) jl_push(res, jv_ref(item));
    }
    jv_unref(items);
    if (rc < 0) { jv_unref(res); return -1; }
    *out = make_gen(res);
    return 0;
}
static int f_select(jr *r, jv in, jcall *c, jv *out) { return select_common(r, in, c, out, true, false); }
static int f_reject(jr *r, jv in, jcall *c, jv *out) { return select_common(r, in, c, out, false, false); }
static int f_selectattr(jr *r, jv in, jcall *c, jv *out) { return select_common(r, in, c, out, true, true); }
static int f_rejectattr(jr *r, jv in, jcall *c, jv *out) { return select_common(r, in, c, out, false, true); }

static int minmax(jr *r, jv in, jcall *c, jv *out, bool want_max) {
    BIND(want_max ? "max" : "min", "case_sensitive", "attribute");
    jv items, keys;
    if (iter_in(r, in, &items) < 0) return -1;
    if (!jl_len(items)) { jv_unref(items); *out = jv_undef_msg("No aggregated item, sequence was empty."); return 0; }
    if (sort_keys(r, items, a[1], !arg_true(a[0]), false, &keys) < 0) { jv_unref(items); return -1; }
    size_t best = 0;
    int rc = 0;
    for (size_t i = 1; i < jl_len(items); i++) {
        int o;
        sort_ctx sc = { r, keys, false };
        if ((rc = key_cmp(&sc, i, best, &o)) < 0) break;
        if (want_max ? o > 0 : o < 0) best = i;
    }
    if (rc == 0) *out = jv_ref(jl_at(items, best));
    jv_unref(items); jv_unref(keys);
    return rc;
}
static int f_max(jr *r, jv in, jcall *c, jv *out) { return minmax(r, in, c, out, true); }
static int f_min(jr *r, jv in, jcall *c, jv *out) { return minmax(r, in, c, out, false); }

static int f_replace(jr *r, jv in, jcall *c, jv *out) {
    BIND("replace", "old", "new", "count");
    if (jv_is_missing(a[0]) || jv_is_missing(a[1])) return jr_fail(r, "replace() missing required arguments");
    int64_t count = -1;
    if (!jv_is_missing(a[2]) && a[2].type != JV_NONE && need_int(r, a[2], &count) < 0) return -1;
    jv s = jv_to_strv(in), o = jv_to_strv(a[0]), n = jv_to_strv(a[1]);
    *out = jm_str_replace(s, o, n, count);
    jv_unref(s); jv_unref(o); jv_unref(n);
    return 0;
}

static int f_reverse(jr *r, jv in, jcall *c, jv *out) {
    NOARGS("reverse");
    if (in.type == JV_STR) {
        const char *p = jv_sp(in);
        size_t n = jv_sn(in), e = n;
        jbuf b = { 0 };
        while (e > 0) {
            size_t j = e - 1;
            while (j > 0 && ((unsigned char)p[j] & 0xc0) == 0x80) j--;
            jb_put(&b, p + j, e - j);
            e = j;
        }
        *out = mark(jb_take_str(&b), in);
        return 0;
    }
    bool gen = in.type == JV_LIST && (in.u.l->kind == JL_GEN || in.u.l->kind == JL_REVITER);
    jv items;
    if (iter_in(r, in, &items) < 0) return jr_fail(r, "argument must be iterable");
    jv res = jv_list(JL_LIST, jl_len(items));
    for (size_t i = jl_len(items); i-- > 0;) jl_push(res, jv_ref(jl_at(items, i)));
    jv_unref(items);
    if (!gen && res.u.l->h.rc > 0) res.u.l->kind = JL_REVITER;
    *out = res;
    return 0;
}

static int f_round(jr *r, jv in, jcall *c, jv *out) {
    BIND("round", "precision", "method");
    int64_t prec = 0;
    if (!jv_is_missing(a[0]) && need_int(r, a[0], &prec) < 0) return -1;
    bool common = jv_is_missing(a[1]) || jv_str_eq(a[1], "common");
    if (!common && !jv_str_eq(a[1], "ceil") && !jv_str_eq(a[1], "floor"))
        return jr_fail(r, "method must be common, ceil or floor");
    if (!jv_is_num(in)) {
        if (in.type == JV_UNDEF) return jr_fail_undef(r, in);
        return jr_fail(r, "type %s doesn't define __round__ method", jv_typename(in));
    }
    if (common && jv_is_intlike(in) && prec >= 0) { *out = jv_int(jv_as_int(in)); return 0; }
    double x = jv_as_float(in);
    if (prec > 300 || prec < -300) { *out = jv_float(x); return 0; }
    if (common) {
        if (isinf(x) || x != x) { *out = jv_float(x); return 0; }
        if (prec >= 0) {
            char buf[512];
            snprintf(buf, sizeof buf, "%.*f", (int)prec, x);
            *out = jv_float(strtod(buf, NULL));
        } else {
            double p = pow(10.0, (double)-prec), y = x / p, f = floor(y), d = y - f;
            if (d > 0.5 || (d == 0.5 && fmod(f, 2) != 0)) f += 1;
            *out = jv_float(f * p);
        }
        return 0;
    }
    double p = pow(10.0, (double)prec);
    double v = jv_str_eq(a[1], "ceil") ? ceil(x * p) : floor(x * p);
    *out = jv_float(v / p);
    return 0;
}

static int f_safe(jr *r, jv in, jcall *c, jv *out) {
    NOARGS("safe");
    *out = jv_to_strv(in);
    out->flags |= JVF_MARKUP;
    return 0;
}

static int f_slice(jr *r, jv in, jcall *c, jv *out) {
    BIND("slice", "slices", "fill_with");
    int64_t slices = 0;
    if (need_int(r, a[0], &slices) < 0) return -1;
    if (slices <= 0) return jr_fail(r, "slices must be positive");
    jv items;
    if (iter_in(r, in, &items) < 0) return -1;
    int64_t len = (int64_t)jl_len(items), per = len / slices, extra = len % slices, off = 0;
    jv res = jv_list(JL_LIST, 0);
    for (int64_t i = 0; i < slices && jr_ok(r); i++) {
        int64_t start = off + i * per;
        if (i < extra) off++;
        int64_t end = off + (i + 1) * per;
        jv part = jv_list(JL_LIST, 0);
        for (int64_t k = start; k < end; k++) jl_push(part, jv_ref(jl_at(items, (size_t)k)));
        if (!jv_is_missing(a[1]) && a[1].type != JV_NONE && i >= extra) jl_push(part, jv_ref(a[1]));
        jl_push(res, part);
    }
    jv_unref(items);
    *out = make_gen(res);
    return 0;
}

static int f_sort(jr *r, jv in, jcall *c, jv *out) {
    BIND("sort", "reverse", "case_sensitive", "attribute");
    jv items, keys;
    if (iter_in(r, in, &items) < 0) return -1;
    if (sort_keys(r, items, a[2], !arg_true(a[1]), true, &keys) < 0) { jv_unref(items); return -1; }
    size_t n = jl_len(items);
    size_t *idx = jmalloc((n ? n : 1) * sizeof(size_t));
    int rc = -1;
    if (idx) {
        for (size_t i = 0; i < n; i++) idx[i] = i;
        sort_ctx sc = { r, keys, arg_true(a[0]) };
        rc = jv_sort_idx(idx, n, key_cmp, &sc);
    }
    if (rc == 0) {
        jv res = jv_list(JL_LIST, n);
        for (size_t i = 0; i < n; i++) jl_push(res, jv_ref(jl_at(items, idx[i])));
        *out = res;
    }
    colloq_free(idx);
    jv_unref(items); jv_unref(keys);
    return rc < 0 ? -1 : 0;
}

static int f_string(jr *r, jv in, jcall *c, jv *out) { NOARGS("string"); *out = soft_str(in); return 0; }

static int f_sum(jr *r, jv in, jcall *c, jv *out) {
    BIND("sum", "attribute", "start");
    jv items;
    if (iter_in(r, in, &items) < 0) return -1;
    jv acc = jv_is_missing(a[1]) ? jv_int(0) : jv_ref(a[1]);
    if (acc.type == JV_STR) { jv_unref(acc); jv_unref(items); return jr_fail(r, "sum() can't sum strings [use ''.join(seq) instead]"); }
    int rc = 0;
    for (size_t i = 0; i < jl_len(items) && rc == 0; i++) {
        jv x, y;
        if ((rc = attr_path(r, jl_at(items, i), a[0], jv_missing(), false, &x)) < 0) break;
        rc = je_binop(r, OP_ADD, acc, x, &y);
        jv_unref(x);
        if (rc == 0) { jv_unref(acc); acc = y; }
    }
    jv_unref(items);
    if (rc < 0) { jv_unref(acc); return -1; }
    *out = acc;
    return 0;
}

static int f_tojson(jr *r, jv in, jcall *c, jv *out) {
    BIND("tojson", "ensure_ascii", "indent", "separators", "sort_keys");
    jjson_opts o = { 0 };
    o.ensure_ascii = arg_true(a[0]);
    o.sort_keys = arg_true(a[3]);
    char spaces[256];
    if (!jv_is_missing(a[1]) && a[1].type != JV_NONE) {
        if (a[1].type == JV_STR) { o.indent = jv_sp(a[1]); o.indent_n = jv_sn(a[1]); }
        else if (jv_is_intlike(a[1])) {
            int64_t w = jv_as_int(a[1]);
            if (w > (int64_t)sizeof spaces) return jr_fail(r, "indent too large");
            if (w < 0) w = 0;
            memset(spaces, ' ', (size_t)w);
            o.indent = spaces; o.indent_n = (size_t)w;
        } else return jr_fail(r, "can't multiply sequence by non-int of type '%s'", jv_typename(a[1]));
    }
    o.item_sep = o.indent ? "," : ", "; o.item_sep_n = o.indent ? 1 : 2;
    o.key_sep = ": "; o.key_sep_n = 2;
    if (!jv_is_missing(a[2]) && a[2].type != JV_NONE) {
        jv sp = a[2];
        if (sp.type != JV_LIST || (sp.u.l->kind != JL_LIST && sp.u.l->kind != JL_TUPLE) || sp.u.l->n != 2 ||
            sp.u.l->v[0].type != JV_STR || sp.u.l->v[1].type != JV_STR)
            return jr_fail(r, "separators must be a pair of strings");
        o.item_sep = jv_sp(sp.u.l->v[0]); o.item_sep_n = jv_sn(sp.u.l->v[0]);
        o.key_sep = jv_sp(sp.u.l->v[1]); o.key_sep_n = jv_sn(sp.u.l->v[1]);
    }
    jbuf b = { 0 };
    char msg[200];
    if (jv_tojson(&b, in, &o, 0, msg, sizeof msg) < 0) { jb_free(&b); return jr_fail(r, "%s", msg); }
    *out = jb_take_str(&b);
    return 0;
}

static int f_trim(jr *r, jv in, jcall *c, jv *out) {
    BIND("trim", "chars");
    jv s = soft_str(in);
    jv fn = jv_new_func(JF_METHOD, 0 /* str.strip */, jv_ref(s));
    jcall sub = { 0 };
    jv arg = jv_is_missing(a[0]) ? jv_none() : a[0];
    sub.pos = &arg; sub.npos = 1;
    int rc = fn.type == JV_FUNC ? jm_call(r, fn.u.fn, &sub, out) : -1;
    jv_unref(fn);
    jv_unref(s);
    return rc;
}

static int f_truncate(jr *r, jv in, jcall *c, jv *out) {
    BIND("truncate", "length", "killwords", "end", "leeway");
    int64_t length = 255, leeway = 5, len;
    if (!jv_is_missing(a[0]) && need_int(r, a[0], &length) < 0) return -1;
    if (!jv_is_missing(a[3]) && a[3].type != JV_NONE && need_int(r, a[3], &leeway) < 0) return -1;
    jv end = jv_is_missing(a[2]) ? jv_cstr("...") : jv_ref(a[2]);
    int64_t endn = end.type == JV_STR ? (int64_t)jv_str_ncp(end) : -1;
    int rc = 0;
    jv n;
    if (endn < 0) rc = jr_fail(r, "object of type '%s' has no len()", jv_typename(end));
    else if (length < endn) rc = jr_fail(r, "expected length >= %lld, got %lld", (long long)endn, (long long)length);
    else if (leeway < 0) rc = jr_fail(r, "expected leeway >= 0, got %lld", (long long)leeway);
    else if ((rc = f_length(r, in, &(jcall){ 0 }, &n)) == 0) {
        len = n.u.i;
        /* like jinja2: short values come back unchanged, whatever their type */
        if (len <= length + leeway) *out = jv_ref(in);
        else if (in.type != JV_STR) rc = jr_fail(r, "'%s' object has no attribute 'rsplit'", jv_typename(in));
        else {
            size_t cut = ju_cp_offset(jv_sp(in), jv_sn(in), (size_t)(length - endn));
            if (!arg_true(a[1])) {
                size_t k = cut;
                while (k > 0 && jv_sp(in)[k - 1] != ' ') k--;
                if (k > 0) cut = k - 1;
            }
            jbuf b = { 0 };
            jb_put(&b, jv_sp(in), cut);
            jb_put(&b, jv_sp(end), jv_sn(end));
            *out = jb_take_str(&b);
        }
    }
    jv_unref(end);
    return rc;
}

static int f_unique(jr *r, jv in, jcall *c, jv *out) {
    BIND("unique", "case_sensitive", "attribute");
    jv items, keys;
    if (iter_in(r, in, &items) < 0) return -1;
    if (sort_keys(r, items, a[1], !arg_true(a[0]), false, &keys) < 0) { jv_unref(items); return -1; }
    jv seen = jv_dict(), res = jv_list(JL_LIST, 0);
    int rc = 0;
    for (size_t i = 0; i < jl_len(items); i++) {
        jv k = jl_at(keys, i);
        if (!jv_hashable(k)) { rc = jr_fail(r, "unhashable type: '%s'", jv_typename(k)); break; }
        if (jd_get(seen.u.d, k)) continue;
        jd_set(seen.u.d, k, jv_none());
        jl_push(res, jv_ref(jl_at(items, i)));
    }
    jv_unref(items); jv_unref(keys); jv_unref(seen);
    if (rc < 0) { jv_unref(res); return -1; }
    *out = make_gen(res);
    return 0;
}

static int f_wordcount(jr *r, jv in, jcall *c, jv *out) {
    NOARGS("wordcount");
    jv s = soft_str(in);
    const char *p = jv_sp(s);
    size_t n = jv_sn(s), i = 0;
    int64_t words = 0;
    bool inword = false;
    while (i < n) {
        uint32_t ch = ju_next(p, n, &i);
        bool w = ch == '_' || ju_isalnum(ch);
        if (w && !inword) words++;
        inword = w;
    }
    jv_unref(s);
    *out = jv_int(words);
    return 0;
}

static int f_unsupported(jr *r, jv in, jcall *c, jv *out) {
    (void)in; (void)c; (void)out;
    return jr_fail(r, "this filter is not supported by colloq's template engine");
}

static int f_length(jr *r, jv in, jcall *c, jv *out);

static const struct { const char *name; filter_fn fn; } filters[] = {
    {"abs", f_abs}, {"attr", f_attr}, {"batch", f_batch}, {"capitalize", f_capitalize},
    {"center", f_center}, {"count", f_length}, {"d", f_default}, {"default", f_default},
    {"dictsort", f_dictsort}, {"e", f_escape}, {"escape", f_escape},
    {"filesizeformat", f_unsupported}, {"first", f_first}, {"float", f_float},
    {"forceescape", f_forceescape}, {"format", f_format}, {"groupby", f_unsupported},
    {"indent", f_indent}, {"int", f_int}, {"items", f_items}, {"join", f_join}, {"last", f_last},
    {"length", f_length}, {"list", f_list}, {"lower", f_lower}, {"map", f_map}, {"max", f_max},
    {"min", f_min}, {"pprint", f_unsupported}, {"random", f_unsupported}, {"reject", f_reject},
    {"rejectattr", f_rejectattr}, {"replace", f_replace}, {"reverse", f_reverse},
    {"round", f_round}, {"safe", f_safe}, {"select", f_select}, {"selectattr", f_selectattr},
    {"slice", f_slice}, {"sort", f_sort}, {"string", f_string}, {"striptags", f_unsupported},
    {"sum", f_sum}, {"title", f_title}, {"tojson", f_tojson}, {"trim", f_trim},
    {"truncate", f_truncate}, {"unique", f_unique}, {"upper", f_upper},
    {"urlencode", f_unsupported}, {"urlize", f_unsupported}, {"wordcount", f_wordcount},
    {"wordwrap", f_unsupported}, {"xmlattr", f_unsupported},
};
#define NFILTERS (sizeof filters / sizeof filters[0])

int jf_filter_id(const char *name) {
    for (size_t i = 0; i < NFILTERS; i++) if (!strcmp(filters[i].name, name)) return (int)i;
    return -1;
}

int jf_apply_filter(jr *r, int id, jv in, jcall *c, jv *out) {
    if (id < 0 || (size_t)id >= NFILTERS) return jr_fail(r, "No filter with id %d", id);
    if (jr_step(r) < 0) return -1;
    *out = jv_none();
    int rc = filters[id].fn(r, in, c, out);
    if (rc < 0) {
        filter_fn f = filters[id].fn;
        jv_unref(*out);
        *out = jv_none();
        if (f == f_batch || f == f_items || f == f_map || f == f_select || f == f_reject ||
            f == f_selectattr || f == f_rejectattr || f == f_slice || f == f_unique)
            return defer_error(r, out);
        return -1;
    }
    return 0;
}

