/*
 * jinja_value.c - template values with Python semantics: allocation and reference
 * counting (iterative release, so deep nesting cannot overflow the stack), strings,
 * ordered dicts, truthiness, ==, ordering, hashing, str() and repr().
 * Must not evaluate templates or know the syntax tree.
 */
#include "jinja_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Thread_local jv_tls_t jv_tls;

#define DEFAULT_MAX_STR ((size_t)1 << 30)

static size_t max_str(void) { return jv_tls.max_str ? jv_tls.max_str : DEFAULT_MAX_STR; }

void *jmalloc(size_t n) {
    void *p = colloq_malloc(n);
    if (!p) jv_tls.oom = true;
    return p;
}

void *jrealloc(void *p, size_t n) {
    void *q = colloq_realloc(p, n);
    if (!q) jv_tls.oom = true;
    return q;
}

/* ---- reference counting ---- */

jv jv_ref(jv v) {
    if (jv_isheap(v) && v.u.o->rc >= 0) v.u.o->rc++;
    return v;
}

static void drop(jv v, jobj **pending) {
    if (!jv_isheap(v)) return;
    jobj *o = v.u.o;
    if (o->rc < 0) return;
    if (--o->rc == 0) { o->next = *pending; *pending = o; }
}

void jv_unref(jv v) {
    if (!jv_isheap(v)) return;
    jobj *o = v.u.o;
    if (o->rc < 0 || --o->rc > 0) return;
    o->next = NULL;
    jobj *pending = o;
    while (pending) {
        jobj *x = pending;
        pending = x->next;
        switch (x->type) {
        case JV_LIST: {
            jlist *l = (jlist *)x;
            for (size_t i = 0; i < l->n; i++) drop(l->v[i], &pending);
            drop(l->lazy, &pending);
            colloq_free(l->v);
            break;
        }
        case JV_DICT: {
            jdict *d = (jdict *)x;
            for (size_t i = 0; i < d->n; i++) { drop(d->k[i], &pending); drop(d->v[i], &pending); }
            colloq_free(d->k); colloq_free(d->v); colloq_free(d->idx);
            break;
        }
        case JV_FUNC: drop(((jfunc *)x)->self, &pending); break;
        case JV_LOOP: {
            jloop *lp = (jloop *)x;
            drop(lp->items, &pending);
            drop(lp->src, &pending);
            drop(lp->last, &pending);
            break;
        }
        default: break;
        }
        colloq_free(x);
    }
}

jv jv_undef_msg(const char *fmt, ...) {
    char buf[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    jv v = jv_str(buf, strlen(buf));
    jv u = jv_undef();
    if (v.u.s->h.rc >= 0) u.u.s = v.u.s;     /* the placeholder "" is not attached */
    return u;
}

/* ---- strings ---- */

static struct { jobj h; int32_t ascii; size_t len; char s[1]; } empty_str = {
    { -1, JV_STR, NULL }, 1, 0, { 0 }
};

jv jv_empty_str(void) {
    jv v = { .type = JV_STR };
    v.u.s = (jstr *)(void *)&empty_str;
    return v;
}

jstr *jstr_alloc(size_t len) {
    if (len > max_str()) { jv_tls.limit = true; return NULL; }
    jv_tls.bytes += len;
    jstr *s = jmalloc(sizeof(jstr) + len + 1);
    if (!s) return NULL;
    s->h.rc = 1; s->h.type = JV_STR; s->h.next = NULL;
    s->ascii = -1;
    s->len = len;
    s->s[len] = 0;
    return s;
}

jv jv_str_take(jstr *s) {
    if (!s) return jv_empty_str();
    jv v = { .type = JV_STR };
    v.u.s = s;
    return v;
}

jv jv_str(const char *p, size_t n) {
    if (n == 0) return jv_empty_str();
    jstr *s = jstr_alloc(n);
    if (!s) return jv_empty_str();
    memcpy(s->s, p, n);
    return jv_str_take(s);
}

jv jv_cstr(const char *s) { return jv_str(s, strlen(s)); }

bool jv_str_ascii(jv v) {
    jstr *s = v.u.s;
    if (s->ascii < 0) {
        int a = 1;
        for (size_t i = 0; i < s->len; i++)
            if ((unsigned char)s->s[i] >= 0x80) { a = 0; break; }
        if (s->h.rc >= 0) s->ascii = a;
        return a;
    }
    return s->ascii != 0;
}

size_t jv_str_ncp(jv v) {
    if (jv_str_ascii(v)) return v.u.s->len;
    return ju_ncp(v.u.s->s, v.u.s->len);
}

bool jv_str_eq(jv v, const char *s) {
    size_t n = strlen(s);
    return v.type == JV_STR && v.u.s->len == n && memcmp(v.u.s->s, s, n) == 0;
}

/* ---- lists ---- */

jv jv_list(uint8_t kind, size_t cap) {
    jlist *l = jmalloc(sizeof *l);
    jv v = { .type = JV_LIST };
    if (!l) {
        /* an immortal empty list keeps callers simple after a failure */
        static jlist empty = { { -1, JV_LIST, NULL }, JL_LIST, 0, 0, 0, NULL, 0, 0, 0, { 0 } };
        v.u.l = &empty;
        return v;
    }
    memset(l, 0, sizeof *l);
    l->h.rc = 1; l->h.type = JV_LIST;
    l->kind = kind;
    if (cap) {
        if (cap > JINJA_MAX_ITEMS) cap = JINJA_MAX_ITEMS;
        l->v = jmalloc(cap * sizeof(jv));
        if (l->v) l->cap = cap;
    }
    v.u.l = l;
    return v;
}

bool jl_push(jv list, jv take) {
    jlist *l = list.u.l;
    jv_tls.work++;
    if (l->h.rc < 0) { jv_unref(take); return false; }
    if (l->n == l->cap) {
        if (l->n >= JINJA_MAX_ITEMS) { jv_tls.limit = true; jv_unref(take); return false; }
        size_t nc = l->cap ? l->cap * 2 : 8;
        jv *nv = jrealloc(l->v, nc * sizeof(jv));
        if (!nv) { jv_unref(take); return false; }
        l->v = nv; l->cap = nc;
    }
    l->v[l->n++] = take;
    return true;
}

/* ---- hashing and equality ---- */

static uint64_t mix(uint64_t h) {
    h ^= h >> 33; h *= 0xff51afd7ed558ccdULL; h ^= h >> 33; h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t str_hash(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)p[i]; h *= 1099511628211ULL; }
    return h;
}

static uint64_t hash_depth(jv v, int depth);

uint64_t jv_hash(jv v) { return hash_depth(v, 0); }

static uint64_t hash_depth(jv v, int depth) {
    if (depth > 64) return 0x2545f491;          /* deep tuples: equal values still hash equal */
    switch (v.type) {
    case JV_BOOL: case JV_INT: return mix((uint64_t)jv_as_int(v));
    case JV_FLOAT: {
        double f = v.u.f;
        if (f == floor(f) && f >= -9223372036854775808.0 && f < 9223372036854775808.0)
            return mix((uint64_t)(int64_t)f);
        uint64_t bits; memcpy(&bits, &f, sizeof bits);
        return mix(bits ^ 0x5bd1e995u);
    }
    case JV_STR: return str_hash(v.u.s->s, v.u.s->len);
    case JV_LIST: {
        uint64_t h = 0x345678;
        for (size_t i = 0; i < v.u.l->n; i++) h = mix(h * 1000003u ^ hash_depth(v.u.l->v[i], depth + 1));
        return h;
    }
    case JV_NONE: return 0x9e3779b97f4a7c15ULL;
    case JV_UNDEF: return 0x1234567;
    default: return mix((uint64_t)(uintptr_t)v.u.o);
    }
}

static bool hashable_depth(jv v, int depth) {
    switch (v.type) {
    case JV_LIST:
        if (v.u.l->kind == JL_RANGE) return true;
        if (v.u.l->kind != JL_TUPLE) return v.u.l->kind == JL_GEN || v.u.l->kind == JL_REVITER;
        if (depth > JINJA_MAX_NEST) return false;
        for (size_t i = 0; i < v.u.l->n; i++) if (!hashable_depth(v.u.l->v[i], depth + 1)) return false;
        return true;
    case JV_DICT: return false;
    default: return true;
    }
}

bool jv_hashable(jv v) { return hashable_depth(v, 0); }

static bool num_eq(jv a, jv b) {
    if (jv_is_intlike(a) && jv_is_intlike(b)) return jv_as_int(a) == jv_as_int(b);
    if (a.type == JV_FLOAT && b.type == JV_FLOAT) return a.u.f == b.u.f;
    double f = a.type == JV_FLOAT ? a.u.f : b.u.f;
    int64_t i = a.type == JV_FLOAT ? jv_as_int(b) : jv_as_int(a);
    if (f != f || isinf(f) || f != floor(f)) return false;
    if (f < -9223372036854775808.0 || f >= 9223372036854775808.0) return false;
    return (int64_t)f == i;
}

static bool eq_depth(jv a, jv b, int depth) {
    if (depth > JINJA_MAX_NEST) return false;
    jv_tls.work++;
    if (jv_is_num(a) && jv_is_num(b)) return num_eq(a, b);
    if (a.type != b.type) return false;
    switch (a.type) {
    case JV_UNDEF: case JV_NONE: return true;
    case JV_STR:
        return a.u.s->len == b.u.s->len && memcmp(a.u.s->s, b.u.s->s, a.u.s->len) == 0;
    case JV_LIST: {
        jlist *x = a.u.l, *y = b.u.l;
        if (x == y) return true;
        bool seq_x = x->kind == JL_LIST || x->kind == JL_TUPLE || x->kind == JL_RANGE;
        if (x->kind != y->kind || !seq_x) return false;
        if (x->n != y->n) return false;
        for (size_t i = 0; i < x->n; i++)
            if (!eq_depth(x->v[i], y->v[i], depth + 1)) return false;
        return true;
    }
    case JV_DICT: {
        jdict *x = a.u.d, *y = b.u.d;
        if (x == y) return true;
        if (x->n != y->n) return false;
        for (size_t i = 0; i < x->n; i++) {
            jv *o = jd_get(y, x->k[i]);
            if (!o || !eq_depth(x->v[i], *o, depth + 1)) return false;
        }
        return true;
    }
    default: return a.u.o == b.u.o;
    }
}

bool jv_eq(jv a, jv b) { return eq_depth(a, b, 0); }

static int num_order(jv a, jv b) {
    if (jv_is_intlike(a) && jv_is_intlike(b)) {
        int64_t x = jv_as_int(a), y = jv_as_int(b);
        return x < y ? -1 : x > y;
    }
    double x = jv_as_float(a), y = jv_as_float(b);
    if (x != x || y != y) return 2;
    if (x < y) return -1;
    if (x > y) return 1;
    /* equal as doubles but one side is a large int that did not convert exactly */
    if (fabs(x) >= 9007199254740992.0 && x >= -9223372036854775808.0 && x < 9223372036854775808.0) {
        int64_t xi = a.type == JV_FLOAT ? (int64_t)x : jv_as_int(a);
        int64_t yi = b.type == JV_FLOAT ? (int64_t)y : jv_as_int(b);
        return xi < yi ? -1 : xi > yi;
    }
    return 0;
}

static int order_depth(jv a, jv b, const char *op, int *out, char *msg, size_t cap, int depth) {
    if (depth > JINJA_MAX_NEST) {
        snprintf(msg, cap, "maximum recursion depth exceeded in comparison");
        return -1;
    }
    if (jv_is_num(a) && jv_is_num(b)) { *out = num_order(a, b); return 0; }
    if (a.type == JV_STR && b.type == JV_STR) {
        size_t n = a.u.s->len < b.u.s->len ? a.u.s->len : b.u.s->len;
        int c = memcmp(a.u.s->s, b.u.s->s, n);
        if (c == 0) c = a.u.s->len < b.u.s->len ? -1 : a.u.s->len > b.u.s->len;
        *out = c < 0 ? -1 : c > 0;
        return 0;
    }
    if (a.type == JV_LIST && b.type == JV_LIST && a.u.l->kind == b.u.l->kind &&
        (a.u.l->kind == JL_LIST || a.u.l->kind == JL_TUPLE)) {
        jlist *x = a.u.l, *y = b.u.l;
        size_t n = x->n < y->n ? x->n : y->n;
        for (size_t i = 0; i < n; i++) {
            if (eq_depth(x->v[i], y->v[i], depth + 1)) continue;
            return order_depth(x->v[i], y->v[i], op, out, msg, cap, depth + 1);
        }
        *out = x->n < y->n ? -1 : x->n > y->n;
        return 0;
    }
    snprintf(msg, cap, "'%s' not supported between instances of '%s' and '%s'", op,
             jv_typename(a), jv_typename(b));
    return -1;
}

int jv_order(jv a, jv b, const char *op, int *out, char *msg, size_t cap) {
    return order_depth(a, b, op, out, msg, cap, 0);
}

/* ---- dicts ---- */

jv jv_dict(void) {
    jdict *d = jmalloc(sizeof *d);
    jv v = { .type = JV_DICT };
    if (!d) {
        static jdict empty = { { -1, JV_DICT, NULL }, 0, 0, NULL, NULL, NULL, 0 };
        v.u.d = &empty;
        return v;
    }
    memset(d, 0, sizeof *d);
    d->h.rc = 1; d->h.type = JV_DICT;
    v.u.d = d;
    return v;
}

static void index_insert(jdict *d, size_t i) {
    size_t mask = d->icap - 1, s = (size_t)jv_hash(d->k[i]) & mask;
    while (d->idx[s]) s = (s + 1) & mask;
    d->idx[s] = (uint32_t)(i + 1);
}

static bool reindex(jdict *d) {
    size_t nc = 64;
    while (nc < d->n * 2 + 2) nc *= 2;
    uint32_t *ni = jmalloc(nc * sizeof(uint32_t));
    if (!ni) return false;
    memset(ni, 0, nc * sizeof(uint32_t));
    colloq_free(d->idx);
    d->idx = ni; d->icap = nc;
    for (size_t i = 0; i < d->n; i++) index_insert(d, i);
    return true;
}

static long find_key(const jdict *d, jv key) {
    if (d->idx) {
        size_t mask = d->icap - 1, s = (size_t)jv_hash(key) & mask;
        while (d->idx[s]) {
            size_t i = d->idx[s] - 1;
            if (jv_eq(d->k[i], key)) return (long)i;
            s = (s + 1) & mask;
        }
        return -1;
    }
    for (size_t i = 0; i < d->n; i++)
        if (jv_eq(d->k[i], key)) return (long)i;
    return -1;
}

jv *jd_get(const jdict *d, jv key) {
    long i = find_key(d, key);
    return i < 0 ? NULL : &d->v[i];
}

jv *jd_get_str(const jdict *d, const char *k, size_t n) {
    if (d->idx) {
        size_t mask = d->icap - 1, s = (size_t)str_hash(k, n) & mask;
        while (d->idx[s]) {
            size_t i = d->idx[s] - 1;
            if (d->k[i].type == JV_STR && d->k[i].u.s->len == n && memcmp(d->k[i].u.s->s, k, n) == 0)
                return &d->v[i];
            s = (s + 1) & mask;
        }
        return NULL;
    }
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].type == JV_STR && d->k[i].u.s->len == n && memcmp(d->k[i].u.s->s, k, n) == 0)
            return &d->v[i];
    return NULL;
}

bool jd_set(jdict *d, jv key, jv take) {
    if (d->h.rc < 0) { jv_unref(take); return false; }
    jv_tls.work++;
    long i = find_key(d, key);
    if (i >= 0) { jv_unref(d->v[i]); d->v[i] = take; return true; }
    if (d->n == d->cap) {
        if (d->n >= JINJA_MAX_ITEMS) { jv_tls.limit = true; jv_unref(take); return false; }
        size_t nc = d->cap ? d->cap * 2 : 8;
        jv *nk = jrealloc(d->k, nc * sizeof(jv));
        if (!nk) { jv_unref(take); return false; }
        d->k = nk;
        jv *nv = jrealloc(d->v, nc * sizeof(jv));
        if (!nv) { jv_unref(take); return false; }
        d->v = nv;
        d->cap = nc;
    }
    d->k[d->n] = jv_ref(key);
    d->v[d->n] = take;
    d->n++;
    if (d->idx && d->n * 2 + 2 <= d->icap) index_insert(d, d->n - 1);
    else if (d->n > 8 && !reindex(d)) { colloq_free(d->idx); d->idx = NULL; d->icap = 0; }
    return true;
}

/* ---- truthiness and names ---- */

bool jv_truthy(jv v) {
    switch (v.type) {
    case JV_UNDEF: case JV_NONE: return false;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0.0;
    case JV_STR: return v.u.s->len != 0;
    case JV_LIST:
        if (v.u.l->kind == JL_GEN || v.u.l->kind == JL_REVITER) return true;
        return v.u.l->n != 0;
    case JV_DICT: return v.u.d->n != 0;
    default: return true;
    }
}

const char *jv_typename(jv v) {
    switch (v.type) {
    case JV_UNDEF: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return (v.flags & JVF_MARKUP) ? "Markup" : "str";
    case JV_LIST:
        switch (v.u.l->kind) {
        case JL_TUPLE: return "tuple";
        case JL_GEN: return "generator";
        case JL_ITEMS: return "dict_items";
        case JL_KEYS: return "dict_keys";
        case JL_VALUES: return "dict_values";
        case JL_RANGE: return "range";
        case JL_REVITER: return "list_reverseiterator";
        default: return "list";
        }
    case JV_DICT: return "dict";
    case JV_NS: return "Namespace";
    case JV_FUNC:
        switch (v.u.fn->kind) {
        case JF_MACRO: case JF_CALLER: return "Macro";
        case JF_JOINER: return "Joiner";
        case JF_LOOPCALL: return "LoopContext";
        default: return "builtin_function_or_method";
        }
    case JV_LOOP: return "LoopContext";
    }
    return "object";
}

const char *jv_object_type_repr(jv v, char *buf, size_t cap) {
    const char *mod = "";
    switch (v.type) {
    case JV_NONE: return "None";
    case JV_NS: mod = "jinja2.utils."; break;
    case JV_LOOP: mod = "jinja2.runtime."; break;
    case JV_FUNC:
        if (v.u.fn->kind == JF_MACRO || v.u.fn->kind == JF_CALLER) mod = "jinja2.runtime.";
        break;
    case JV_STR: if (v.flags & JVF_MARKUP) mod = "markupsafe."; break;
    default: break;
    }
    snprintf(buf, cap, "%s%s object", mod, jv_typename(v));
    return buf;
}

/* ---- byte buffers ---- */

bool jb_put(jbuf *b, const char *s, size_t n) {
    if (n == 0) return true;
    jv_tls.bytes += n;
    if (b->n + n > max_str() || b->n + n < b->n) { jv_tls.limit = true; return false; }
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 64;
        while (nc < b->n + n + 1) nc *= 2;
        char *np = jrealloc(b->p, nc);
        if (!np) return false;
        b->p = np; b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return true;
}

bool jb_puts(jbuf *b, const char *s) { return jb_put(b, s, strlen(s)); }
bool jb_putc(jbuf *b, char c) { return jb_put(b, &c, 1); }

bool jb_printf(jbuf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return false;
    if ((size_t)n < sizeof tmp) return jb_put(b, tmp, (size_t)n);
    char *big = jmalloc((size_t)n + 1);
    if (!big) return false;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    bool ok = jb_put(b, big, (size_t)n);
    colloq_free(big);
    return ok;
}

jv jb_take_str(jbuf *b) {
    jv v = jv_str(b->p ? b->p : "", b->n);
    jb_free(b);
    return v;
}

void jb_free(jbuf *b) {
    colloq_free(b->p);
    b->p = NULL; b->n = b->cap = 0;
}

/* ---- str() and repr() ---- */

static void repr_string(jbuf *b, const char *s, size_t n, bool markup) {
    bool has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = (has_sq && !has_dq) ? '"' : '\'';
    if (markup) jb_puts(b, "Markup(");
    jb_putc(b, q);
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        uint32_t cp = ju_next(s, n, &i);
        char tmp[16];
        if (cp == (uint32_t)q || cp == '\\') { jb_putc(b, '\\'); jb_putc(b, (char)cp); }
        else if (cp == '\t') jb_puts(b, "\\t");
        else if (cp == '\n') jb_puts(b, "\\n");
        else if (cp == '\r') jb_puts(b, "\\r");
        else if (cp < 0x20 || cp == 0x7f) { snprintf(tmp, sizeof tmp, "\\x%02x", cp); jb_puts(b, tmp); }
        else if (cp < 0x7f || ju_isprintable(cp)) jb_put(b, s + start, i - start);
        else if (cp <= 0xff) { snprintf(tmp, sizeof tmp, "\\x%02x", cp); jb_puts(b, tmp); }
        else if (cp <= 0xffff) { snprintf(tmp, sizeof tmp, "\\u%04x", cp); jb_puts(b, tmp); }
        else { snprintf(tmp, sizeof tmp, "\\U%08x", cp); jb_puts(b, tmp); }
    }
    jb_putc(b, q);
    if (markup) jb_putc(b, ')');
}

static int repr_dict_body(jbuf *b, const jdict *d, int depth) {
    jb_putc(b, '{');
    for (size_t i = 0; i < d->n; i++) {
        if (i) jb_puts(b, ", ");
        if (jv_repr(b, d->k[i], depth + 1) < 0) return -1;
        jb_puts(b, ": ");
        if (jv_repr(b, d->v[i], depth + 1) < 0) return -1;
    }
    jb_putc(b, '}');
    return 0;
}

static int repr_items(jbuf *b, const jlist *l, size_t from, int depth) {
    for (size_t i = from; i < l->n; i++) {
        if (i > from) jb_puts(b, ", ");
        if (jv_repr(b, l->v[i], depth + 1) < 0) return -1;
    }
    return 0;
}

int jv_repr(jbuf *b, jv v, int depth) {
    if (depth > JINJA_MAX_NEST) return -1;
    char tmp[64];
    switch (v.type) {
    case JV_UNDEF: jb_puts(b, "Undefined"); return 0;
    case JV_STR: repr_string(b, v.u.s->s, v.u.s->len, v.flags & JVF_MARKUP); return 0;
    case JV_LIST: {
        jlist *l = v.u.l;
        switch (l->kind) {
        case JL_TUPLE:
            jb_putc(b, '(');
            if (repr_items(b, l, 0, depth) < 0) return -1;
            if (l->n == 1) jb_putc(b, ',');
            jb_putc(b, ')');
            return 0;
        case JL_RANGE:
            if (l->rstep == 1) jb_printf(b, "range(%lld, %lld)", (long long)l->rstart, (long long)l->rstop);
            else jb_printf(b, "range(%lld, %lld, %lld)", (long long)l->rstart, (long long)l->rstop,
                           (long long)l->rstep);
            return 0;
        case JL_GEN: jb_puts(b, "<generator object>"); return 0;
        case JL_REVITER: jb_puts(b, "<list_reverseiterator object>"); return 0;
        case JL_ITEMS: case JL_KEYS: case JL_VALUES:
            jb_puts(b, jv_typename(v));
            jb_puts(b, "([");
            if (repr_items(b, l, 0, depth) < 0) return -1;
            jb_puts(b, "])");
            return 0;
        default:
            jb_putc(b, '[');
            if (repr_items(b, l, 0, depth) < 0) return -1;
            jb_putc(b, ']');
            return 0;
        }
    }
    case JV_DICT: return repr_dict_body(b, v.u.d, depth);
    case JV_NS:
        jb_puts(b, "<Namespace ");
        if (repr_dict_body(b, v.u.d, depth) < 0) return -1;
        jb_putc(b, '>');
        return 0;
    case JV_FUNC:
        if (v.u.fn->kind == JF_MACRO) jb_printf(b, "<Macro '%s'>", v.u.fn->node->name);
        else if (v.u.fn->kind == JF_CALLER) jb_puts(b, "<Macro 'caller'>");
        else if (v.u.fn->kind == JF_JOINER) jb_puts(b, "<jinja2.utils.Joiner object>");
        else jb_puts(b, "<built-in function>");
        return 0;
    case JV_LOOP: {
        jloop *lp = v.u.lp;
        jb_printf(b, "<LoopContext %zu/%zu>", lp->i + 1, jl_len(lp->items));
        return 0;
    }
    case JV_FLOAT:
        ju_float_repr(v.u.f, tmp, sizeof tmp);
        jb_puts(b, tmp);
        return 0;
    default:
        return jv_tostr(b, v);
    }
}

int jv_tostr(jbuf *b, jv v) {
    char tmp[64];
    switch (v.type) {
    case JV_UNDEF: return 0;
    case JV_NONE: jb_puts(b, "None"); return 0;
    case JV_BOOL: jb_puts(b, v.u.b ? "True" : "False"); return 0;
    case JV_INT: jb_printf(b, "%lld", (long long)v.u.i); return 0;
    case JV_FLOAT: ju_float_repr(v.u.f, tmp, sizeof tmp); jb_puts(b, tmp); return 0;
    case JV_STR: jb_put(b, v.u.s->s, v.u.s->len); return 0;
    default: return jv_repr(b, v, 0);
    }
}

jv jv_to_strv(jv v) {
    if (v.type == JV_STR) { jv r = jv_ref(v); r.flags &= (uint8_t)~JVF_MARKUP; return r; }
    jbuf b = { 0 };
    if (jv_tostr(&b, v) < 0) { jb_free(&b); jv_tls.limit = true; return jv_empty_str(); }
    return jb_take_str(&b);
}

/* markupsafe.escape: Markup stays as it is */
jv jv_escape(jv s) {
    if (s.type == JV_STR && (s.flags & JVF_MARKUP)) return jv_ref(s);
    jv t = jv_to_strv(s);
    jbuf b = { 0 };
    for (size_t i = 0; i < t.u.s->len; i++) {
        char c = t.u.s->s[i];
        switch (c) {
        case '&': jb_puts(&b, "&amp;"); break;
        case '<': jb_puts(&b, "&lt;"); break;
        case '>': jb_puts(&b, "&gt;"); break;
        case '\'': jb_puts(&b, "&#39;"); break;
        case '"': jb_puts(&b, "&#34;"); break;
        default: jb_putc(&b, c);
        }
    }
    jv_unref(t);
    jv r = jb_take_str(&b);
    r.flags |= JVF_MARKUP;
    return r;
}

/* ---- stable sort with a comparison that may fail ---- */

int jv_sort_idx(size_t *idx, size_t n, int (*cmp)(void *ctx, size_t a, size_t b, int *out),
                void *ctx) {
    if (n < 2) return 0;
    size_t *tmp = jmalloc(n * sizeof(size_t));
    if (!tmp) return 0;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                int c;
                jv_tls.work++;
                if (cmp(ctx, idx[j], idx[i], &c) < 0) { colloq_free(tmp); return -1; }
                /* take from the right only when strictly smaller: stable */
                if (c < 0) tmp[k++] = idx[j++];
                else tmp[k++] = idx[i++];
            }
            while (i < mid) tmp[k++] = idx[i++];
            while (j < hi) tmp[k++] = idx[j++];
        }
        memcpy(idx, tmp, n * sizeof(size_t));
    }
    colloq_free(tmp);
    return 0;
}
