/*
 * jinja_methods.c - what templates reach by attribute or by global name: Python
 * str / dict / list methods (the sandbox refuses the mutating ones), loop and
 * namespace attributes, the globals range, dict, namespace, joiner,
 * raise_exception and strftime_now, and printf-style "%" formatting.
 * Must not parse or execute statements.
 */
#define _GNU_SOURCE
#include "jinja_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

jv jv_new_func(uint8_t kind, int id, jv self_take) {
    jfunc *f = jmalloc(sizeof *f);
    if (!f) { jv_unref(self_take); return jv_undef_msg("out of memory"); }
    memset(f, 0, sizeof *f);
    f->h.rc = 1; f->h.type = JV_FUNC;
    f->kind = kind; f->id = id; f->self = self_take;
    jv v = { .type = JV_FUNC };
    v.u.fn = f;
    return v;
}

/* ---- method tables ---- */

enum {
    /* str */
    M_STRIP, M_LSTRIP, M_RSTRIP, M_SPLIT, M_RSPLIT, M_SPLITLINES, M_UPPER, M_LOWER, M_TITLE,
    M_CAPITALIZE, M_SWAPCASE, M_CASEFOLD, M_REPLACE, M_STARTSWITH, M_ENDSWITH, M_FIND, M_RFIND,
    M_INDEX, M_RINDEX, M_COUNT, M_JOIN, M_FORMAT, M_ISDIGIT, M_ISALPHA, M_ISALNUM, M_ISSPACE,
    M_ISLOWER, M_ISUPPER, M_ISTITLE, M_ISDECIMAL, M_ISNUMERIC, M_ISASCII, M_ZFILL, M_CENTER,
    M_LJUST, M_RJUST, M_PARTITION, M_RPARTITION, M_REMOVEPREFIX, M_REMOVESUFFIX,
    /* dict */
    M_KEYS, M_VALUES, M_ITEMS, M_GET, M_DCOPY,
    /* list / tuple */
    M_LCOUNT, M_LINDEX, M_LCOPY,
    /* loop */
    M_CYCLE, M_CHANGED,
    M_UNSUPPORTED
};

static const char *const str_methods[] = {
    "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "upper", "lower", "title",
    "capitalize", "swapcase", "casefold", "replace", "startswith", "endswith", "find", "rfind",
    "index", "rindex", "count", "join", "format", "isdigit", "isalpha", "isalnum", "isspace",
    "islower", "isupper", "istitle", "isdecimal", "isnumeric", "isascii", "zfill", "center",
    "ljust", "rjust", "partition", "rpartition", "removeprefix", "removesuffix", NULL
};
static const char *const str_other[] = {
    "encode", "expandtabs", "format_map", "isidentifier", "isprintable", "maketrans", "translate", NULL
};

static int find_name(const char *const *tab, const char *name, size_t n) {
    for (int i = 0; tab[i]; i++)
        if (strlen(tab[i]) == n && memcmp(tab[i], name, n) == 0) return i;
    return -1;
}

static bool name_is(const char *name, size_t n, const char *s) {
    return strlen(s) == n && memcmp(name, s, n) == 0;
}

static int unsafe(jv obj, const char *name, size_t n, jv *out, bool *found) {
    *out = jv_undef_msg("access to attribute '%.*s' of '%s' object is unsafe.", (int)(n > 100 ? 100 : n),
                        name, jv_typename(obj));
    *found = true;
    return 0;
}

static int method(jv obj, int id, jv *out, bool *found) {
    *out = jv_new_func(JF_METHOD, id, jv_ref(obj));
    *found = true;
    return 0;
}

static int loop_attr(jr *r, jloop *lp, const char *name, size_t n, jv *out, bool *found) {
    size_t i = lp->i;
    /* with a loop filter, jinja2 tests values ahead only when asked: all of them for the
     * length, the next one for last/nextitem */
    if (name_is(name, n, "length") || name_is(name, n, "revindex") || name_is(name, n, "revindex0")) {
        if (je_loop_fill(r, lp, SIZE_MAX) < 0) return -1;
    } else if (name_is(name, n, "last") || name_is(name, n, "nextitem")) {
        if (je_loop_fill(r, lp, i + 2) < 0) return -1;
    }
    size_t len = jl_len(lp->items);
    *found = true;
    if (name_is(name, n, "index")) *out = jv_int((int64_t)i + 1);
    else if (name_is(name, n, "index0")) *out = jv_int((int64_t)i);
    else if (name_is(name, n, "revindex")) *out = jv_int((int64_t)(len - i));
    else if (name_is(name, n, "revindex0")) *out = jv_int((int64_t)(len - i) - 1);
    else if (name_is(name, n, "first")) *out = jv_bool(i == 0);
    else if (name_is(name, n, "last")) *out = jv_bool(i + 1 >= len);
    else if (name_is(name, n, "length")) *out = jv_int((int64_t)len);
    else if (name_is(name, n, "depth")) *out = jv_int(lp->depth0 + 1);
    else if (name_is(name, n, "depth0")) *out = jv_int(lp->depth0);
    else if (name_is(name, n, "previtem"))
        *out = i > 0 ? jv_ref(jl_at(lp->items, i - 1)) : jv_undef_msg("there is no previous item");
    else if (name_is(name, n, "nextitem"))
        *out = i + 1 < len ? jv_ref(jl_at(lp->items, i + 1)) : jv_undef_msg("there is no next item");
    else *found = false;
    (void)r;
    return 0;
}

int jm_lookup_attr(jr *r, jv obj, const char *name, size_t n, jv *out, bool *found) {
    *found = false;
    if (n >= 2 && name[0] == '_' && name[1] == '_' && obj.type != JV_NS)
        return unsafe(obj, name, n, out, found);
    int id;
    switch (obj.type) {
    case JV_STR:
        if ((id = find_name(str_methods, name, n)) >= 0) return method(obj, M_STRIP + id, out, found);
        if (find_name(str_other, name, n) >= 0) return method(obj, M_UNSUPPORTED, out, found);
        return 0;
    case JV_DICT:
        if (name_is(name, n, "keys")) return method(obj, M_KEYS, out, found);
        if (name_is(name, n, "values")) return method(obj, M_VALUES, out, found);
        if (name_is(name, n, "items")) return method(obj, M_ITEMS, out, found);
        if (name_is(name, n, "get")) return method(obj, M_GET, out, found);
        if (name_is(name, n, "copy")) return method(obj, M_DCOPY, out, found);
        if (name_is(name, n, "fromkeys")) return method(obj, M_UNSUPPORTED, out, found);
        if (name_is(name, n, "clear") || name_is(name, n, "pop") || name_is(name, n, "popitem") ||
            name_is(name, n, "setdefault") || name_is(name, n, "update"))
            return unsafe(obj, name, n, out, found);
        return 0;
    case JV_LIST: {
        uint8_t k = obj.u.l->kind;
        if (k != JL_LIST && k != JL_TUPLE && k != JL_RANGE) return 0;
        if (name_is(name, n, "count")) return method(obj, M_LCOUNT, out, found);
        if (name_is(name, n, "index")) return method(obj, M_LINDEX, out, found);
        if (k != JL_LIST) return 0;
        if (name_is(name, n, "copy")) return method(obj, M_LCOPY, out, found);
        if (name_is(name, n, "pop") || name_is(name, n, "clear")) return method(obj, M_UNSUPPORTED, out, found);
        if (name_is(name, n, "append") || name_is(name, n, "reverse") || name_is(name, n, "insert") ||
            name_is(name, n, "sort") || name_is(name, n, "extend") || name_is(name, n, "remove"))
            return unsafe(obj, name, n, out, found);
        return 0;
    }
    case JV_NS: {
        jv *v = jd_get_str(obj.u.d, name, n);
        if (v) { *out = jv_ref(*v); *found = true; }
        return 0;
    }
    case JV_LOOP:
        if (name_is(name, n, "cycle")) return method(obj, M_CYCLE, out, found);
        if (name_is(name, n, "changed")) return method(obj, M_CHANGED, out, found);
        return loop_attr(r, obj.u.lp, name, n, out, found);
    default:
        return 0;
    }
}

/* ---- str helpers ---- */

static bool in_chars(uint32_t c, jv chars) {
    if (chars.type != JV_STR) return ju_isspace(c);
    const char *s = jv_sp(chars);
    size_t n = jv_sn(chars), i = 0;
    while (i < n) if (ju_next(s, n, &i) == c) return true;
    return false;
}

/* byte range [*lo, *hi) of Python's strip */
static void strip_range(jv s, jv chars, bool left, bool right, size_t *lo, size_t *hi) {
    const char *p = jv_sp(s);
    size_t n = jv_sn(s), a = 0, b = n;
    if (left)
        while (a < b) { size_t k = a; uint32_t c = ju_next(p, n, &k); if (!in_chars(c, chars)) break; a = k; }
    if (right)
        while (b > a) {
            size_t j = b - 1;
            while (j > a && ((unsigned char)p[j] & 0xc0) == 0x80) j--;
            size_t k = j;
            if (!in_chars(ju_next(p, n, &k), chars)) break;
            b = j;
        }
    *lo = a; *hi = b;
}

static jv substr(jv s, size_t a, size_t b) {
    jv v = jv_str(jv_sp(s) + a, b - a);
    v.flags = s.flags & JVF_MARKUP;
    return v;
}

/* Python slice-style start/end arguments (code points) to byte offsets. */
static int byte_range(jr *r, jv s, jv start, jv end, size_t *lo, size_t *hi) {
    size_t n = jv_sn(s);
    int64_t len = (int64_t)jv_str_ncp(s), a = 0, b = len;
    if (!jv_is_missing(start) && start.type != JV_NONE) {
        if (!jv_is_intlike(start)) return jr_fail(r, "slice indices must be integers or None");
        a = jv_as_int(start);
    }
    if (!jv_is_missing(end) && end.type != JV_NONE) {
        if (!jv_is_intlike(end)) return jr_fail(r, "slice indices must be integers or None");
        b = jv_as_int(end);
    }
    if (a < 0) { a += len; if (a < 0) a = 0; }
    if (b < 0) { b += len; if (b < 0) b = 0; }
    if (a > len) a = len;
    if (b > len) b = len;
    bool ascii = jv_str_ascii(s);
    *lo = ascii ? (size_t)a : ju_cp_offset(jv_sp(s), n, (size_t)a);
    *hi = ascii ? (size_t)b : ju_cp_offset(jv_sp(s), n, (size_t)b);
    if (*hi < *lo) *hi = *lo;
    if (b < a) return 1;   /* empty range; still valid */
    return 0;
}

static int64_t cp_index(jv s, size_t byte) {
    return jv_str_ascii(s) ? (int64_t)byte : (int64_t)ju_ncp(jv_sp(s), byte);
}

/* Find nd in h (the last occurrence when `last`), in linear time. */
static const char *memfind(const char *h, size_t hn, const char *nd, size_t nn, bool last) {
    if (nn > hn) return NULL;
    if (nn == 0) return last ? h + hn : h;
    jv_tls.bytes += hn;
    if (!last) return memmem(h, hn, nd, nn);
    if (nn * (hn - nn + 1) <= 4096) {
        for (size_t i = hn - nn + 1; i-- > 0;) if (memcmp(h + i, nd, nn) == 0) return h + i;
        return NULL;
    }
    /* search the reversed strings forward */
    jv_tls.bytes += 2 * hn;
    char *rh = jmalloc(hn), *rn = jmalloc(nn);
    const char *res = NULL;
    if (rh && rn) {
        for (size_t i = 0; i < hn; i++) rh[i] = h[hn - 1 - i];
        for (size_t i = 0; i < nn; i++) rn[i] = nd[nn - 1 - i];
        const char *f = memmem(rh, hn, rn, nn);
        if (f) res = h + (hn - (size_t)(f - rh) - nn);
    }
    colloq_free(rh); colloq_free(rn);
    return res;
}

static int split_ws(jv s, int64_t maxsplit, bool from_right, jv *out) {
    const char *p = jv_sp(s);
    size_t n = jv_sn(s);
    jv res = jv_list(JL_LIST, 0);
    if (!from_right) {
        size_t i = 0;
        int64_t done = 0;
        for (;;) {
            while (i < n) { size_t k = i; if (!ju_isspace(ju_next(p, n, &k))) break; i = k; }
            if (i >= n) break;
            if (maxsplit >= 0 && done >= maxsplit) {
                jl_push(res, jv_str(p + i, n - i));
                break;
            }
            size_t st = i;
            while (i < n) { size_t k = i; if (ju_isspace(ju_next(p, n, &k))) break; i = k; }
            jl_push(res, jv_str(p + st, i - st));
            done++;
        }
        *out = res;
        return 0;
    }
    /* rsplit: collect from the right, then reverse */
    size_t e = n;
    int64_t done = 0;
    for (;;) {
        while (e > 0) {
            size_t j = e - 1;
            while (j > 0 && ((unsigned char)p[j] & 0xc0) == 0x80) j--;
            size_t k = j;
            if (!ju_isspace(ju_next(p, n, &k))) break;
            e = j;
        }
        if (e == 0) break;
        if (maxsplit >= 0 && done >= maxsplit) { jl_push(res, jv_str(p, e)); break; }
        size_t b = e;
        while (b > 0) {
            size_t j = b - 1;
            while (j > 0 && ((unsigned char)p[j] & 0xc0) == 0x80) j--;
            size_t k = j;
            if (ju_isspace(ju_next(p, n, &k))) break;
            b = j;
        }
        jl_push(res, jv_str(p + b, e - b));
        e = b;
        done++;
    }
    jlist *l = res.u.l;
    for (size_t i = 0; i < l->n / 2; i++) { jv t = l->v[i]; l->v[i] = l->v[l->n - 1 - i]; l->v[l->n - 1 - i] = t; }
    *out = res;
    return 0;
}

static int split_sep(jr *r, jv s, jv sep, int64_t maxsplit, bool from_right, jv *out) {
    if (sep.type != JV_STR) return jr_fail(r, "must be str or None, not %s", jv_typename(sep));
    if (jv_sn(sep) == 0) return jr_fail(r, "empty separator");
    const char *p = jv_sp(s), *d = jv_sp(sep);
    size_t n = jv_sn(s), dn = jv_sn(sep);
    jv res = jv_list(JL_LIST, 0);
    if (!from_right) {
        size_t i = 0;
        int64_t done = 0;
        for (;;) {
            const char *f = (maxsplit < 0 || done < maxsplit) ? memfind(p + i, n - i, d, dn, false) : NULL;
            if (!f) { jl_push(res, jv_str(p + i, n - i)); break; }
            jl_push(res, jv_str(p + i, (size_t)(f - (p + i))));
            i = (size_t)(f - p) + dn;
            done++;
        }
    } else {
        size_t e = n;
        int64_t done = 0;
        for (;;) {
            const char *f = (maxsplit < 0 || done < maxsplit) ? memfind(p, e, d, dn, true) : NULL;
            if (!f) { jl_push(res, jv_str(p, e)); break; }
            size_t at = (size_t)(f - p);
            jl_push(res, jv_str(p + at + dn, e - at - dn));
            e = at;
            done++;
        }
        jlist *l = res.u.l;
        for (size_t i = 0; i < l->n / 2; i++) { jv t = l->v[i]; l->v[i] = l->v[l->n - 1 - i]; l->v[l->n - 1 - i] = t; }
    }
    *out = res;
    return 0;
}

jv jm_str_replace(jv s, jv old, jv new_, int64_t count) {
    const char *p = jv_sp(s), *o = jv_sp(old);
    size_t n = jv_sn(s), on = jv_sn(old);
    jbuf b = { 0 };
    int64_t done = 0;
    if (on == 0) {
        size_t i = 0;
        while (count < 0 || done < count) {
            jb_put(&b, jv_sp(new_), jv_sn(new_));
            done++;
            if (i >= n) break;
            size_t st = i;
            ju_next(p, n, &i);
            jb_put(&b, p + st, i - st);
        }
        jb_put(&b, p + i, n - i);
        return jb_take_str(&b);
    }
    size_t i = 0;
    while (i < n) {
        const char *f = (count < 0 || done < count) ? memfind(p + i, n - i, o, on, false) : NULL;
        if (!f) break;
        jb_put(&b, p + i, (size_t)(f - (p + i)));
        jb_put(&b, jv_sp(new_), jv_sn(new_));
        i = (size_t)(f - p) + on;
        done++;
    }
    jb_put(&b, p + i, n - i);
    return jb_take_str(&b);
}

jv jm_splitlines(jv s, bool keepends) {
    const char *p = jv_sp(s);
    size_t n = jv_sn(s), i = 0, st = 0;
    jv res = jv_list(JL_LIST, 0);
    while (i < n) {
        size_t at = i;
        uint32_t c = ju_next(p, n, &i);
        if (!ju_islinebreak(c)) continue;
        if (c == '\r' && i < n && p[i] == '\n') i++;
        jl_push(res, jv_str(p + st, (keepends ? i : at) - st));
        st = i;
    }
    if (st < n) jl_push(res, jv_str(p + st, n - st));
    return res;
}

static int pad(jr *r, jv s, jv width, jv fill, int align, jv *out) {
    if (!jv_is_intlike(width)) return jr_fail(r, "'%s' object cannot be interpreted as an integer", jv_typename(width));
    uint32_t fc = ' ';
    if (!jv_is_missing(fill)) {
        if (fill.type != JV_STR || jv_str_ncp(fill) != 1)
            return jr_fail(r, "The fill character must be exactly one character long");
        size_t k = 0;
        fc = ju_next(jv_sp(fill), jv_sn(fill), &k);
    }
    int64_t w = jv_as_int(width), len = (int64_t)jv_str_ncp(s);
    if (w <= len) { *out = jv_ref(s); return 0; }
    if (w - len > (int64_t)(64u << 20)) return jr_fail(r, "padding too large");
    int64_t marg = w - len, left;
    if (align == 0) left = marg / 2 + (marg & w & 1);
    else if (align < 0) left = 0;
    else left = marg;
    char fb[4];
    size_t fl = ju_put(fb, fc);
    jbuf b = { 0 };
    for (int64_t i = 0; i < left; i++) jb_put(&b, fb, fl);
    jb_put(&b, jv_sp(s), jv_sn(s));
    for (int64_t i = 0; i < marg - left; i++) jb_put(&b, fb, fl);
    *out = jb_take_str(&b);
    return 0;
}

int jm_str_format(jr *r, jv fmt, jcall *c, jv *out);

/* markupsafe.Markup methods return Markup: carry the flag into a result */
static int marked(jv s, jv *out) {
    if (!(s.flags & JVF_MARKUP)) return 0;
    if (out->type == JV_STR) out->flags |= JVF_MARKUP;
    else if (out->type == JV_LIST && out->u.l->h.rc > 0)
        for (size_t i = 0; i < out->u.l->n; i++)
            if (out->u.l->v[i].type == JV_STR) out->u.l->v[i].flags |= JVF_MARKUP;
    return 0;
}

static bool all_chars(jv s, bool (*pred)(uint32_t)) {
    const char *p = jv_sp(s);
    size_t n = jv_sn(s), i = 0;
    if (!n) return false;
    while (i < n) if (!pred(ju_next(p, n, &i))) return false;
    return true;
}

static bool is_ascii_cp(uint32_t c) { return c < 0x80; }

static int str_method(jr *r, int id, jv s, jcall *c, jv *out) {
    static const char *const p_chars[] = { "chars" };
    static const char *const p_split[] = { "sep", "maxsplit" };
    static const char *const p_keep[] = { "keepends" };
    static const char *const p_repl[] = { "old", "new", "count" };
    static const char *const p_find[] = { "sub", "start", "end" };
    static const char *const p_one[] = { "x" };
    static const char *const p_pad[] = { "width", "fillchar" };
    const char *mname = str_methods[id - M_STRIP];
    jv a[3];
    switch (id) {
    case M_STRIP: case M_LSTRIP: case M_RSTRIP: {
        if (jcall_bind(r, mname, c, p_chars, 1, a) < 0) return -1;
        if (!jv_is_missing(a[0]) && a[0].type != JV_NONE && a[0].type != JV_STR)
            return jr_fail(r, "%s arg must be None or str", mname);
        size_t lo, hi;
        strip_range(s, a[0], id != M_RSTRIP, id != M_LSTRIP, &lo, &hi);
        *out = substr(s, lo, hi);
        return 0;
    }
    case M_SPLIT: case M_RSPLIT: {
        if (jcall_bind(r, mname, c, p_split, 2, a) < 0) return -1;
        int64_t maxsplit = -1;
        if (!jv_is_missing(a[1])) {
            if (!jv_is_intlike(a[1])) return jr_fail(r, "'%s' object cannot be interpreted as an integer", jv_typename(a[1]));
            maxsplit = jv_as_int(a[1]);
        }
        int rc = jv_is_missing(a[0]) || a[0].type == JV_NONE ? split_ws(s, maxsplit, id == M_RSPLIT, out)
                                                             : split_sep(r, s, a[0], maxsplit, id == M_RSPLIT, out);
        return rc < 0 ? rc : marked(s, out);
    }
    case M_SPLITLINES:
        if (jcall_bind(r, mname, c, p_keep, 1, a) < 0) return -1;
        *out = jm_splitlines(s, !jv_is_missing(a[0]) && jv_truthy(a[0]));
        return marked(s, out);
    case M_UPPER: case M_LOWER: case M_TITLE: case M_CAPITALIZE: case M_SWAPCASE: case M_CASEFOLD: {
        if (jcall_bind(r, mname, c, NULL, 0, a) < 0) return -1;
        static const int modes[] = { JU_UPPER, JU_LOWER, JU_TITLE, JU_CAPITALIZE, JU_SWAPCASE, JU_LOWER };
        jbuf b = { 0 };
        ju_case(&b, jv_sp(s), jv_sn(s), modes[id - M_UPPER]);
        *out = jb_take_str(&b);
        out->flags = s.flags & JVF_MARKUP;
        return 0;
    }
    case M_REPLACE: {
        if (jcall_bind(r, mname, c, p_repl, 3, a) < 0) return -1;
        if (jv_is_missing(a[0]) || jv_is_missing(a[1])) return jr_fail(r, "replace expected at least 2 arguments");
        if (a[0].type != JV_STR || a[1].type != JV_STR)
            return jr_fail(r, "replace() argument must be str, not %s", jv_typename(a[0].type != JV_STR ? a[0] : a[1]));
        int64_t count = -1;
        if (!jv_is_missing(a[2])) {
            if (!jv_is_intlike(a[2])) return jr_fail(r, "'%s' object cannot be interpreted as an integer", jv_typename(a[2]));
            count = jv_as_int(a[2]);
        }
        *out = jm_str_replace(s, a[0], a[1], count);
        return marked(s, out);
    }
    case M_STARTSWITH: case M_ENDSWITH: {
        if (jcall_bind(r, mname, c, p_find, 3, a) < 0) return -1;
        if (jv_is_missing(a[0])) return jr_fail(r, "%s() takes at least 1 argument (0 given)", mname);
        size_t lo, hi;
        int br = byte_range(r, s, a[1], a[2], &lo, &hi);
        if (br < 0) return -1;
        jv pre = a[0];
        size_t cnt = pre.type == JV_LIST && pre.u.l->kind == JL_TUPLE ? pre.u.l->n : 1;
        bool hit = false;
        for (size_t i = 0; i < cnt && !hit; i++) {
            jv x = cnt == 1 && pre.type == JV_STR ? pre : pre.type == JV_LIST ? pre.u.l->v[i] : pre;
            if (x.type != JV_STR)
                return jr_fail(r, "%s first arg must be str or a tuple of str, not %s", mname, jv_typename(x));
            size_t xn = jv_sn(x);
            if (br == 1 || xn > hi - lo) continue;
            if (id == M_STARTSWITH) hit = memcmp(jv_sp(s) + lo, jv_sp(x), xn) == 0;
            else hit = memcmp(jv_sp(s) + hi - xn, jv_sp(x), xn) == 0;
        }
        *out = jv_bool(hit);
        return 0;
    }
    case M_FIND: case M_RFIND: case M_INDEX: case M_RINDEX: case M_COUNT: {
        if (jcall_bind(r, mname, c, p_find, 3, a) < 0) return -1;
        if (jv_is_missing(a[0])) return jr_fail(r, "%s() takes at least 1 argument (0 given)", mname);
        if (a[0].type != JV_STR) return jr_fail(r, "must be str, not %s", jv_typename(a[0]));
        size_t lo, hi;
        int br = byte_range(r, s, a[1], a[2], &lo, &hi);
        if (br < 0) return -1;
        const char *h = jv_sp(s) + lo;
        size_t hn = hi - lo;
        if (id == M_COUNT) {
            int64_t cnt = 0;
            if (br == 1) { *out = jv_int(0); return 0; }
            if (jv_sn(a[0]) == 0) cnt = (int64_t)ju_ncp(h, hn) + 1;
            else for (const char *f; (f = memfind(h, hn, jv_sp(a[0]), jv_sn(a[0]), false));) {
                cnt++;
                size_t adv = (size_t)(f - h) + jv_sn(a[0]);
                h += adv; hn -= adv;
            }
            *out = jv_int(cnt);
            return 0;
        }
        const char *f = br == 1 ? NULL : memfind(h, hn, jv_sp(a[0]), jv_sn(a[0]), id == M_RFIND || id == M_RINDEX);
        if (!f) {
            if (id == M_INDEX || id == M_RINDEX) return jr_fail(r, "substring not found");
            *out = jv_int(-1);
            return 0;
        }
        *out = jv_int(cp_index(s, (size_t)(f - jv_sp(s))));
        return 0;
    }
    case M_JOIN: {
        if (jcall_bind(r, mname, c, p_one, 1, a) < 0) return -1;
        if (jv_is_missing(a[0])) return jr_fail(r, "join() takes exactly one argument (0 given)");
        jv items;
        if (je_iter(r, a[0], &items) < 0) return -1;
        jbuf b = { 0 };
        for (size_t i = 0; i < jl_len(items); i++) {
            jv x = jl_at(items, i);
            if (x.type != JV_STR) {
                jb_free(&b);
                jv_unref(items);
                return jr_fail(r, "sequence item %zu: expected str instance, %s found", i, jv_typename(x));
            }
            if (i) jb_put(&b, jv_sp(s), jv_sn(s));
            jb_put(&b, jv_sp(x), jv_sn(x));
        }
        jv_unref(items);
        *out = jb_take_str(&b);
        return marked(s, out);
    }
    case M_FORMAT: return jm_str_format(r, s, c, out);
    case M_ZFILL: {
        if (jcall_bind(r, mname, c, p_pad, 1, a) < 0) return -1;
        if (!jv_is_intlike(a[0])) return jr_fail(r, "zfill() argument must be an integer");
        int64_t w = jv_as_int(a[0]), len = (int64_t)jv_str_ncp(s);
        if (w <= len) { *out = jv_ref(s); return 0; }
        if (w > (int64_t)(64u << 20)) return jr_fail(r, "padding too large");
        jbuf b = { 0 };
        size_t st = 0;
        if (jv_sn(s) && (jv_sp(s)[0] == '+' || jv_sp(s)[0] == '-')) { jb_putc(&b, jv_sp(s)[0]); st = 1; }
        for (int64_t i = 0; i < w - len; i++) jb_putc(&b, '0');
        jb_put(&b, jv_sp(s) + st, jv_sn(s) - st);
        *out = jb_take_str(&b);
        return marked(s, out);
    }
    case M_CENTER: case M_LJUST: case M_RJUST:
        if (jcall_bind(r, mname, c, p_pad, 2, a) < 0) return -1;
        if (jv_is_missing(a[0])) return jr_fail(r, "%s() takes at least 1 argument (0 given)", mname);
        if (pad(r, s, a[0], a[1], id == M_CENTER ? 0 : id == M_LJUST ? -1 : 1, out) < 0) return -1;
        return marked(s, out);
    case M_PARTITION: case M_RPARTITION: {
        if (jcall_bind(r, mname, c, p_one, 1, a) < 0) return -1;
        if (a[0].type != JV_STR) return jr_fail(r, "must be str, not %s", jv_typename(a[0]));
        if (!jv_sn(a[0])) return jr_fail(r, "empty separator");
        const char *f = memfind(jv_sp(s), jv_sn(s), jv_sp(a[0]), jv_sn(a[0]), id == M_RPARTITION);
        jv t = jv_list(JL_TUPLE, 3);
        if (!f) {
            if (id == M_PARTITION) { jl_push(t, jv_ref(s)); jl_push(t, jv_empty_str()); jl_push(t, jv_empty_str()); }
            else { jl_push(t, jv_empty_str()); jl_push(t, jv_empty_str()); jl_push(t, jv_ref(s)); }
        } else {
            size_t at = (size_t)(f - jv_sp(s));
            jl_push(t, jv_str(jv_sp(s), at));
            jl_push(t, jv_ref(a[0]));
            jl_push(t, jv_str(f + jv_sn(a[0]), jv_sn(s) - at - jv_sn(a[0])));
        }
        *out = t;
        return marked(s, out);
    }
    case M_REMOVEPREFIX: case M_REMOVESUFFIX: {
        if (jcall_bind(r, mname, c, p_one, 1, a) < 0) return -1;
        if (a[0].type != JV_STR) return jr_fail(r, "must be str, not %s", jv_typename(a[0]));
        size_t xn = jv_sn(a[0]), n = jv_sn(s);
        if (xn <= n && id == M_REMOVEPREFIX && memcmp(jv_sp(s), jv_sp(a[0]), xn) == 0) *out = substr(s, xn, n);
        else if (xn <= n && id == M_REMOVESUFFIX && xn && memcmp(jv_sp(s) + n - xn, jv_sp(a[0]), xn) == 0)
            *out = substr(s, 0, n - xn);
        else *out = jv_ref(s);
        return 0;
    }
    default: break;
    }
    if (jcall_bind(r, mname, c, NULL, 0, a) < 0) return -1;
    bool res;
    switch (id) {
    case M_ISDIGIT: case M_ISDECIMAL: case M_ISNUMERIC: res = all_chars(s, ju_isdigit); break;
    case M_ISALPHA: res = all_chars(s, ju_isalpha); break;
    case M_ISALNUM: res = all_chars(s, ju_isalnum); break;
    case M_ISSPACE: res = all_chars(s, ju_isspace); break;
    case M_ISASCII: res = jv_sn(s) == 0 || all_chars(s, is_ascii_cp); break;
    default: {
        /* islower / isupper / istitle */
        const char *p = jv_sp(s);
        size_t n = jv_sn(s), i = 0;
        bool cased = false, ok = true, prev = false;
        while (i < n && ok) {
            uint32_t ch = ju_next(p, n, &i);
            bool up = ju_isupper(ch), lo = ju_islower(ch);
            if (id == M_ISLOWER) { if (up) ok = false; if (lo) cased = true; }
            else if (id == M_ISUPPER) { if (lo) ok = false; if (up) cased = true; }
            else {
                if (up) { if (prev) ok = false; prev = cased = true; }
                else if (lo) { if (!prev) ok = false; prev = cased = true; }
                else prev = false;
            }
        }
        res = ok && cased;
    }
    }
    *out = jv_bool(res);
    return 0;
}

/* ---- dict, list and loop methods ---- */

static int other_method(jr *r, int id, jv self, jcall *c, jv *out) {
    static const char *const p_get[] = { "key", "default" };
    static const char *const p_idx[] = { "value", "start", "stop" };
    static const char *const p_none[] = { NULL };
    jv a[3];
    switch (id) {
    case M_KEYS: case M_VALUES: case M_ITEMS: {
        if (jcall_bind(r, id == M_KEYS ? "keys" : id == M_VALUES ? "values" : "items", c, p_none, 0, a) < 0) return -1;
        jdict *d = self.u.d;
        jv res = jv_list(id == M_KEYS ? JL_KEYS : id == M_VALUES ? JL_VALUES : JL_ITEMS, d->n);
        for (size_t i = 0; i < d->n; i++) {
            if (id == M_KEYS) jl_push(res, jv_ref(d->k[i]));
            else if (id == M_VALUES) jl_push(res, jv_ref(d->v[i]));
            else {
                jv t = jv_list(JL_TUPLE, 2);
                jl_push(t, jv_ref(d->k[i]));
                jl_push(t, jv_ref(d->v[i]));
                jl_push(res, t);
            }
        }
        *out = res;
        return 0;
    }
    case M_GET: {
        if (jcall_bind(r, "get", c, p_get, 2, a) < 0) return -1;
        if (jv_is_missing(a[0])) return jr_fail(r, "get expected at least 1 argument, got 0");
        if (!jv_hashable(a[0])) return jr_fail(r, "unhashable type: '%s'", jv_typename(a[0]));
        jv *v = jd_get(self.u.d, a[0]);
        *out = v ? jv_ref(*v) : jv_is_missing(a[1]) ? jv_none() : jv_ref(a[1]);
        return 0;
    }
    case M_DCOPY: {
        if (jcall_bind(r, "copy", c, p_none, 0, a) < 0) return -1;
        jv d = jv_dict();
        for (size_t i = 0; i < self.u.d->n; i++) jd_set(d.u.d, self.u.d->k[i], jv_ref(self.u.d->v[i]));
        *out = d;
        return 0;
    }
    case M_LCOPY: {
        if (jcall_bind(r, "copy", c, p_none, 0, a) < 0) return -1;
        jv l = jv_list(JL_LIST, jl_len(self));
        for (size_t i = 0; i < jl_len(self); i++) jl_push(l, jv_ref(jl_at(self, i)));
        *out = l;
        return 0;
    }
    case M_LCOUNT: {
        if (jcall_bind(r, "count", c, p_idx, 1, a) < 0) return -1;
        if (jv_is_missing(a[0])) return jr_fail(r, "count() takes exactly one argument (0 given)");
        int64_t n = 0;
        for (size_t i = 0; i < jl_len(self); i++) n += jv_eq(jl_at(self, i), a[0]);
        *out = jv_int(n);
        return 0;
    }
    case M_LINDEX: {
        if (jcall_bind(r, "index", c, p_idx, 3, a) < 0) return -1;
        if (jv_is_missing(a[0])) return jr_fail(r, "index expected at least 1 argument, got 0");
        for (int k = 1; k < 3; k++)
            if (!jv_is_missing(a[k]) && !jv_is_intlike(a[k]))
                return jr_fail(r, "slice indices must be integers or have an __index__ method");
        int64_t len = (int64_t)jl_len(self), lo = 0, hi = len;
        if (!jv_is_missing(a[1])) { lo = jv_as_int(a[1]); if (lo < 0) lo += len; if (lo < 0) lo = 0; }
        if (!jv_is_missing(a[2])) { hi = jv_as_int(a[2]); if (hi < 0) hi += len; if (hi > len) hi = len; }
        for (int64_t i = lo; i < hi; i++)
            if (jv_eq(jl_at(self, (size_t)i), a[0])) { *out = jv_int(i); return 0; }
        return jr_fail(r, "value is not in list");
    }
    case M_CYCLE: {
        if (c->nkw) return jr_fail(r, "cycle() takes no keyword arguments");
        if (!c->npos) return jr_fail(r, "no items for cycling given");
        *out = jv_ref(c->pos[self.u.lp->i % c->npos]);
        return 0;
    }
    case M_CHANGED: {
        jloop *lp = self.u.lp;
        jv t = jv_list(JL_LIST, c->npos);
        for (size_t i = 0; i < c->npos; i++) jl_push(t, jv_ref(c->pos[i]));
        bool changed = !lp->have_last || !jv_eq(lp->last, t);
        if (changed) { jv_unref(lp->last); lp->last = t; lp->have_last = true; }
        else jv_unref(t);
        *out = jv_bool(changed);
        return 0;
    }
    default:
        return jr_fail(r, "this method is not supported by colloq's template engine");
    }
}

/* ---- globals ---- */

enum { G_RANGE, G_DICT, G_NAMESPACE, G_JOINER, G_CYCLER, G_LIPSUM, G_RAISE, G_STRFTIME };
static const char *const globals[] = {
    "range", "dict", "namespace", "joiner", "cycler", "lipsum", "raise_exception", "strftime_now", NULL
};

int jm_global(const char *name) { return find_name(globals, name, strlen(name)); }

static int fill_dict(jr *r, jdict *d, jcall *c, const char *fname) {
    if (c->npos > 1) return jr_fail(r, "%s expected at most 1 argument, got %zu", fname, c->npos);
    if (c->npos == 1) {
        jv src = c->pos[0];
        if (src.type == JV_DICT) {
            for (size_t i = 0; i < src.u.d->n; i++) jd_set(d, src.u.d->k[i], jv_ref(src.u.d->v[i]));
        } else {
            jv items;
            if (src.type == JV_UNDEF) return jr_fail_undef(r, src);
            if (je_iter(r, src, &items) < 0) return -1;
            for (size_t i = 0; i < jl_len(items); i++) {
                jv pair, it = jl_at(items, i);
                if (it.type != JV_LIST && it.type != JV_STR) {
                    jv_unref(items);
                    return jr_fail(r, "cannot convert dictionary update sequence element #%zu to a sequence", i);
                }
                if (je_iter(r, it, &pair) < 0) { jv_unref(items); return -1; }
                if (jl_len(pair) != 2) {
                    jv_unref(pair); jv_unref(items);
                    return jr_fail(r, "dictionary update sequence element #%zu has length %zu; 2 is required",
                                   i, jl_len(pair));
                }
                if (!jv_hashable(jl_at(pair, 0))) {
                    jr_fail(r, "unhashable type: '%s'", jv_typename(jl_at(pair, 0)));
                    jv_unref(pair); jv_unref(items);
                    return -1;
                }
                jd_set(d, jl_at(pair, 0), jv_ref(jl_at(pair, 1)));
                jv_unref(pair);
            }
            jv_unref(items);
        }
    }
    for (size_t i = 0; i < c->nkw; i++) jd_set(d, c->kwn[i], jv_ref(c->kwv[i]));
    return 0;
}

static int do_range(jr *r, jcall *c, jv *out) {
    if (c->nkw) return jr_fail(r, "range() takes no keyword arguments");
    if (c->npos < 1 || c->npos > 3) return jr_fail(r, "range expected at most 3 arguments, got %zu", c->npos);
    int64_t v[3] = { 0, 0, 1 };
    for (size_t i = 0; i < c->npos; i++) {
        if (!jv_is_intlike(c->pos[i])) {
            if (c->pos[i].type == JV_UNDEF) return jr_fail_undef(r, c->pos[i]);
            return jr_fail(r, "'%s' object cannot be interpreted as an integer", jv_typename(c->pos[i]));
        }
    }
    if (c->npos == 1) v[1] = jv_as_int(c->pos[0]);
    else { v[0] = jv_as_int(c->pos[0]); v[1] = jv_as_int(c->pos[1]); if (c->npos == 3) v[2] = jv_as_int(c->pos[2]); }
    if (v[2] == 0) return jr_fail(r, "range() arg 3 must not be zero");
    /* the count in unsigned arithmetic: no overflow at the int64 extremes */
    uint64_t span = 0, mag = v[2] > 0 ? (uint64_t)v[2] : 0 - (uint64_t)v[2], cnt = 0;
    if (v[2] > 0 && v[1] > v[0]) span = (uint64_t)v[1] - (uint64_t)v[0];
    if (v[2] < 0 && v[0] > v[1]) span = (uint64_t)v[0] - (uint64_t)v[1];
    if (span) cnt = (span - 1) / mag + 1;
    if (cnt > JINJA_MAX_RANGE)
        return jr_fail(r, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).", JINJA_MAX_RANGE);
    jv l = jv_list(JL_RANGE, (size_t)cnt);
    if (l.u.l->h.rc > 0) { l.u.l->rstart = v[0]; l.u.l->rstop = v[1]; l.u.l->rstep = v[2]; }
    for (uint64_t k = 0; k < cnt; k++) jl_push(l, jv_int((int64_t)((uint64_t)v[0] + k * (uint64_t)v[2])));
    *out = l;
    return 0;
}

static int do_strftime(jr *r, jcall *c, jv *out) {
    static const char *const names[] = { "format" };
    jv a[1];
    if (jcall_bind(r, "strftime_now", c, names, 1, a) < 0) return -1;
    if (a[0].type != JV_STR) return jr_fail(r, "strftime_now() argument must be str, not %s", jv_typename(a[0]));
    time_t t = (time_t)r->now;
    struct tm tm;
    if (!(r->utc ? gmtime_r(&t, &tm) : localtime_r(&t, &tm))) return jr_fail(r, "time out of range");
    /* Python's naive datetime: %f is microseconds, %z and %Z are empty */
    jbuf f = { 0 };
    const char *s = jv_sp(a[0]);
    size_t n = jv_sn(a[0]);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 1 < n) {
            char d = s[i + 1];
            if (d == 'f') { jb_puts(&f, "000000"); i++; continue; }
            if (d == 'z' || d == 'Z') { i++; continue; }
            jb_putc(&f, '%'); jb_putc(&f, d); i++;
            continue;
        }
        jb_putc(&f, s[i]);
    }
    jb_putc(&f, 0);
    if (!jr_ok(r)) { jb_free(&f); return -1; }
    size_t cap = 256 + n * 16;
    char *buf = jmalloc(cap);
    size_t len = buf ? strftime(buf, cap, f.p, &tm) : 0;
    jb_free(&f);
    *out = jv_str(buf ? buf : "", len);
    colloq_free(buf);
    return 0;
}

int jm_call(jr *r, jfunc *f, jcall *c, jv *out) {
    if (f->kind == JF_METHOD) {
        if (f->self.type == JV_STR && f->id < M_KEYS) return str_method(r, f->id, f->self, c, out);
        return other_method(r, f->id, f->self, c, out);
    }
    switch (f->id) {
    case G_RANGE: return do_range(r, c, out);
    case G_DICT: case G_NAMESPACE: {
        jv d = jv_dict();
        if (fill_dict(r, d.u.d, c, f->id == G_DICT ? "dict" : "namespace") < 0) { jv_unref(d); return -1; }
        if (f->id == G_NAMESPACE) {
            d.type = JV_NS;
            jl_push(r->namespaces, jv_ref(d));
        }
        *out = d;
        return 0;
    }
    case G_JOINER: {
        static const char *const names[] = { "sep" };
        jv a[1];
        if (jcall_bind(r, "joiner", c, names, 1, a) < 0) return -1;
        *out = jv_new_func(JF_JOINER, 0, jv_is_missing(a[0]) ? jv_cstr(", ") : jv_ref(a[0]));
        return 0;
    }
    case G_RAISE: {
        static const char *const names[] = { "message" };
        jv a[1];
        if (jcall_bind(r, "raise_exception", c, names, 1, a) < 0) return -1;
        if (jv_is_missing(a[0])) return jr_fail(r, "raise_exception() missing 1 required positional argument: 'message'");
        jv m = jv_to_strv(a[0]);
        jr_fail(r, "%s", jv_sp(m));
        r->raised = true;
        jv_unref(m);
        return -1;
    }
    case G_STRFTIME: return do_strftime(r, c, out);
    default:
        return jr_fail(r, "%s() is not supported by colloq's template engine", globals[f->id]);
    }
}

/* ---- "%" formatting (printf-style) ---- */

static int fmt_one(jr *r, jbuf *b, char conv, jv v, const char *flags, int width, int prec, bool markup) {
    char spec[32], tmp[512];
    bool left = strchr(flags, '-') != NULL;
    switch (conv) {
    case 's': case 'r': case 'a': {
        jbuf t = { 0 };
        if (conv == 's') jv_tostr(&t, v); else jv_repr(&t, v, 0);
        if (markup && !(conv == 's' && v.type == JV_STR && (v.flags & JVF_MARKUP))) {
            /* Markup % args escapes what it inserts */
            jv e = jv_escape(jb_take_str(&t));
            jb_put(&t, jv_sp(e), jv_sn(e));
            jv_unref(e);
        }
        size_t len = t.n, ncp = ju_ncp(t.p ? t.p : "", t.n);
        if (prec >= 0 && (size_t)prec < ncp) { len = ju_cp_offset(t.p, t.n, (size_t)prec); ncp = (size_t)prec; }
        for (int i = (int)ncp; !left && i < width; i++) jb_putc(b, ' ');
        jb_put(b, t.p ? t.p : "", len);
        for (int i = (int)ncp; left && i < width; i++) jb_putc(b, ' ');
        jb_free(&t);
        return 0;
    }
    case 'd': case 'i': case 'u': case 'x': case 'X': case 'o': {
        if (!jv_is_num(v)) return jr_fail(r, "%%%c format: a real number is required, not %s", conv, jv_typename(v));
        if (v.type == JV_FLOAT && !(v.u.f > -9.2e18 && v.u.f < 9.2e18))
            return jr_fail(r, "cannot convert float %s to integer", v.u.f != v.u.f ? "NaN" : "infinity");
        long long x = v.type == JV_FLOAT ? (long long)v.u.f : (long long)jv_as_int(v);
        char c2 = conv == 'i' || conv == 'u' ? 'd' : conv;
        snprintf(spec, sizeof spec, "%%%s%s*ll%c", flags, prec >= 0 ? ".*" : "", c2);
        if (prec >= 0) snprintf(tmp, sizeof tmp, spec, width, prec, x);
        else snprintf(tmp, sizeof tmp, spec, width, x);
        jb_puts(b, tmp);
        return 0;
    }
    case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': {
        if (!jv_is_num(v)) return jr_fail(r, "must be real number, not %s", jv_typename(v));
        snprintf(spec, sizeof spec, "%%%s*.*%c", flags, conv);
        snprintf(tmp, sizeof tmp, spec, width, prec >= 0 ? prec : 6, jv_as_float(v));
        jb_puts(b, tmp);
        return 0;
    }
    case 'c':
        if (v.type == JV_STR && jv_str_ncp(v) == 1) { jb_put(b, jv_sp(v), jv_sn(v)); return 0; }
        if (jv_is_intlike(v) && jv_as_int(v) >= 0 && jv_as_int(v) <= 0x10ffff) {
            char u[4];
            jb_put(b, u, ju_put(u, (uint32_t)jv_as_int(v)));
            return 0;
        }
        return jr_fail(r, "%%c requires int or char");
    default:
        return jr_fail(r, "unsupported format character '%c'", conv);
    }
}

int jm_percent_format(jr *r, jv fmt, jv args, jv *out) {
    const char *s = jv_sp(fmt);
    size_t n = jv_sn(fmt), next = 0;
    bool tuple = args.type == JV_LIST && args.u.l->kind == JL_TUPLE;
    size_t nargs = tuple ? args.u.l->n : 1;
    /* Python: a non-tuple argument that supports subscription (list, dict, range) may be
     * left unused without "not all arguments converted" */
    bool subscriptable = !tuple && args.type != JV_STR &&
                         (args.type == JV_DICT || args.type == JV_UNDEF ||
                          (args.type == JV_LIST && args.u.l->kind != JL_GEN && args.u.l->kind != JL_REVITER));
    jbuf b = { 0 };
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') { jb_putc(&b, s[i]); continue; }
        if (++i >= n) { jb_free(&b); return jr_fail(r, "incomplete format"); }
        jv val = jv_none();
        bool have = false;
        if (s[i] == '(') {
            size_t e = i + 1;
            while (e < n && s[e] != ')') e++;
            if (e >= n || args.type != JV_DICT) { jb_free(&b); return jr_fail(r, "format requires a mapping"); }
            jv *v = jd_get_str(args.u.d, s + i + 1, e - i - 1);
            if (!v) { jb_free(&b); return jr_fail(r, "KeyError: '%.*s'", (int)(e - i - 1), s + i + 1); }
            val = *v; have = true;
            i = e + 1;
        }
        char flags[8] = "";
        size_t nf = 0;
        while (i < n && strchr("-+ #0", s[i]) && nf < 6) flags[nf++] = s[i++];
        flags[nf] = 0;
        int width = 0, prec = -1;
        while (i < n && s[i] >= '0' && s[i] <= '9') { width = width * 10 + (s[i++] - '0'); if (width > 100000) width = 100000; }
        if (i < n && s[i] == '.') {
            prec = 0; i++;
            while (i < n && s[i] >= '0' && s[i] <= '9') { prec = prec * 10 + (s[i++] - '0'); if (prec > 1000) prec = 1000; }
        }
        if (i >= n) { jb_free(&b); return jr_fail(r, "incomplete format"); }
        char conv = s[i];
        if (conv == '%') { jb_putc(&b, '%'); continue; }
        if (!have) {
            if (next >= nargs) { jb_free(&b); return jr_fail(r, "not enough arguments for format string"); }
            val = tuple ? args.u.l->v[next] : args;
            next++;
        }
        if (fmt_one(r, &b, conv, val, flags, width, prec, (fmt.flags & JVF_MARKUP) != 0) < 0) {
            jb_free(&b);
            return -1;
        }
    }
    if (next < nargs && !subscriptable) {
        jb_free(&b);
        return jr_fail(r, "not all arguments converted during string formatting");
    }
    *out = jb_take_str(&b);
    out->flags = fmt.flags & JVF_MARKUP;
    return 0;
}
