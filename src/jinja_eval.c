/*
 * jinja_eval.c - expression evaluation with Jinja2/Python semantics: names,
 * attribute and item access (the sandbox's getattr-then-getitem rules, slices,
 * undefined results), calls, operators with Python's int/float/str/list rules
 * (Markup escaping on +), comparisons, membership, filters and tests dispatch.
 * Statements, scopes and the render entry point live in jinja_exec.c.
 */
#define _GNU_SOURCE
#include "jinja_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- call arguments ---- */

void jcall_free(jcall *c) {
    for (size_t i = 0; i < c->npos; i++) jv_unref(c->pos[i]);
    for (size_t i = 0; i < c->nkw; i++) { jv_unref(c->kwn[i]); jv_unref(c->kwv[i]); }
    colloq_free(c->pos); colloq_free(c->kwn); colloq_free(c->kwv);
    memset(c, 0, sizeof *c);
}

bool jcall_push_pos(jcall *c, jv take) {
    if (c->npos == c->pcap) {
        size_t nc = c->pcap ? c->pcap * 2 : 4;
        jv *n = jrealloc(c->pos, nc * sizeof(jv));
        if (!n) { jv_unref(take); return false; }
        c->pos = n; c->pcap = nc;
    }
    c->pos[c->npos++] = take;
    return true;
}

int jcall_push_kw(jr *r, jcall *c, jv name, jv take) {
    for (size_t i = 0; i < c->nkw; i++)
        if (jv_eq(c->kwn[i], name)) {
            jv_unref(take);
            return jr_fail(r, "got multiple values for keyword argument '%s'", jv_sp(name));
        }
    if (c->nkw == c->kcap) {
        size_t nc = c->kcap ? c->kcap * 2 : 4;
        jv *a = jrealloc(c->kwn, nc * sizeof(jv));
        if (!a) { jv_unref(take); return 0; }
        c->kwn = a;
        jv *b = jrealloc(c->kwv, nc * sizeof(jv));
        if (!b) { jv_unref(take); return 0; }
        c->kwv = b;
        c->kcap = nc;
    }
    c->kwn[c->nkw] = jv_ref(name);
    c->kwv[c->nkw++] = take;
    return 0;
}

int je_eval_args(jr *r, jscope *s, const jargs *a, jcall *c) {
    memset(c, 0, sizeof *c);
    if (!a) return 0;
    for (size_t i = 0; i < a->npos; i++) {
        jv v;
        if (je_eval(r, s, a->pos[i], &v) < 0) return -1;
        jcall_push_pos(c, v);
    }
    for (size_t i = 0; i < a->nkw; i++) {
        jv v;
        if (je_eval(r, s, a->kwv[i], &v) < 0) return -1;
        jv name = { .type = JV_STR };
        name.u.s = a->kwn[i];
        if (jcall_push_kw(r, c, name, v) < 0) return -1;
    }
    if (a->dyn) {
        jv v, items;
        if (je_eval(r, s, a->dyn, &v) < 0) return -1;
        int rc = je_iter(r, v, &items);
        jv_unref(v);
        if (rc < 0) return -1;
        for (size_t i = 0; i < jl_len(items); i++) jcall_push_pos(c, jv_ref(jl_at(items, i)));
        jv_unref(items);
    }
    if (a->dynkw) {
        jv v;
        if (je_eval(r, s, a->dynkw, &v) < 0) return -1;
        if (v.type != JV_DICT) {
            jr_fail(r, "argument after ** must be a mapping, not %s", jv_typename(v));
            jv_unref(v);
            return -1;
        }
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (v.u.d->k[i].type != JV_STR) { jv_unref(v); return jr_fail(r, "keywords must be strings"); }
            if (jcall_push_kw(r, c, v.u.d->k[i], jv_ref(v.u.d->v[i])) < 0) { jv_unref(v); return -1; }
        }
        jv_unref(v);
    }
    return jr_ok(r) ? 0 : -1;
}

int jcall_bind(jr *r, const char *fname, const jcall *c, const char *const *names, size_t nn, jv *out) {
    if (c->npos > nn)
        return jr_fail(r, "%s() takes at most %zu argument%s (%zu given)", fname, nn, nn == 1 ? "" : "s",
                       c->npos);
    for (size_t i = 0; i < nn; i++) out[i] = i < c->npos ? c->pos[i] : jv_missing();
    for (size_t k = 0; k < c->nkw; k++) {
        size_t j;
        for (j = 0; j < nn; j++) if (jv_str_eq(c->kwn[k], names[j])) break;
        if (j == nn) return jr_fail(r, "%s() got an unexpected keyword argument '%s'", fname, jv_sp(c->kwn[k]));
        if (!jv_is_missing(out[j]))
            return jr_fail(r, "%s() got multiple values for argument '%s'", fname, names[j]);
        out[j] = c->kwv[k];
    }
    return 0;
}

/* ---- iteration ---- */

int je_iter(jr *r, jv v, jv *out) {
    switch (v.type) {
    case JV_UNDEF: *out = jv_list(JL_LIST, 0); return 0;
    case JV_LIST: {
        jlist *l = v.u.l;
        if (l->kind != JL_GEN && l->kind != JL_REVITER) { *out = jv_ref(v); return 0; }
        if (l->lazy.type == JV_UNDEF && l->lazy.u.s) return jr_fail_undef(r, l->lazy);
        jv res = jv_list(JL_LIST, l->n - l->pos);
        for (size_t i = l->pos; i < l->n; i++) jl_push(res, jv_ref(l->v[i]));
        if (l->h.rc >= 0) l->pos = l->n;
        *out = res;
        return 0;
    }
    case JV_STR: {
        jv res = jv_list(JL_LIST, jv_sn(v));
        const char *s = jv_sp(v);
        size_t n = jv_sn(v), i = 0;
        while (i < n) {
            size_t st = i;
            ju_next(s, n, &i);
            jl_push(res, jv_str(s + st, i - st));
        }
        *out = res;
        return 0;
    }
    case JV_DICT: {
        jv res = jv_list(JL_LIST, v.u.d->n);
        for (size_t i = 0; i < v.u.d->n; i++) jl_push(res, jv_ref(v.u.d->k[i]));
        *out = res;
        return 0;
    }
    default:
        return jr_fail(r, "'%s' object is not iterable", jv_typename(v));
    }
}

int je_contains(jr *r, jv c, jv item, bool *out) {
    *out = false;
    switch (c.type) {
    case JV_UNDEF: return 0;
    case JV_STR:
        if (item.type != JV_STR)
            return jr_fail(r, "'in <string>' requires string as left operand, not %s", jv_typename(item));
        if (jv_sn(item) == 0) { *out = true; return 0; }
        *out = memmem(jv_sp(c), jv_sn(c), jv_sp(item), jv_sn(item)) != NULL;
        return 0;
    case JV_DICT:
        if (!jv_hashable(item)) return jr_fail(r, "unhashable type: '%s'", jv_typename(item));
        *out = jd_get(c.u.d, item) != NULL;
        return 0;
    case JV_LIST: {
        jlist *l = c.u.l;
        if (l->lazy.type == JV_UNDEF && l->lazy.u.s) return jr_fail_undef(r, l->lazy);
        bool gen = l->kind == JL_GEN || l->kind == JL_REVITER;   /* consumed as it is searched */
        if (jr_step(r) < 0) return -1;
        for (size_t i = gen ? l->pos : 0; i < l->n; i++)
            if (jv_eq(l->v[i], item)) {
                *out = true;
                if (gen && l->h.rc >= 0) l->pos = i + 1;
                return 0;
            }
        if (gen && l->h.rc >= 0) l->pos = l->n;
        return 0;
    }
    default:
        return jr_fail(r, "argument of type '%s' is not iterable", jv_typename(c));
    }
}

/* ---- attribute and item access ---- */

static int missing_attr(jv obj, const char *name, size_t n, jv *out) {
    char tr[80];
    *out = jv_undef_msg("'%s' has no attribute '%.*s'", jv_object_type_repr(obj, tr, sizeof tr),
                        (int)(n > 200 ? 200 : n), name);
    return 0;
}

int je_getattr(jr *r, jv obj, const char *name, size_t n, jv *out) {
    if (obj.type == JV_UNDEF) return jr_fail_undef(r, obj);
    bool found = false;
    if (jm_lookup_attr(r, obj, name, n, out, &found) < 0) return -1;
    if (found) return 0;
    if (obj.type == JV_DICT) {
        jv *v = jd_get_str(obj.u.d, name, n);
        if (v) { *out = jv_ref(*v); return 0; }
    }
    return missing_attr(obj, name, n, out);
}

static bool norm_index(int64_t i, size_t len, size_t *out) {
    if (i < 0) i += (int64_t)len;
    if (i < 0 || (uint64_t)i >= len) return false;
    *out = (size_t)i;
    return true;
}

int je_getitem(jr *r, jv obj, jv key, jv *out) {
    if (obj.type == JV_UNDEF) return jr_fail_undef(r, obj);
    switch (obj.type) {
    case JV_DICT:
        if (jv_hashable(key)) {
            jv *v = jd_get(obj.u.d, key);
            if (v) { *out = jv_ref(*v); return 0; }
        }
        break;
    case JV_LIST: {
        jlist *l = obj.u.l;
        if ((l->kind == JL_LIST || l->kind == JL_TUPLE || l->kind == JL_RANGE) && jv_is_intlike(key)) {
            size_t i;
            if (norm_index(jv_as_int(key), l->n, &i)) { *out = jv_ref(l->v[i]); return 0; }
        }
        break;
    }
    case JV_STR:
        if (jv_is_intlike(key)) {
            size_t ncp = jv_str_ncp(obj), i;
            if (norm_index(jv_as_int(key), ncp, &i)) {
                const char *s = jv_sp(obj);
                size_t n = jv_sn(obj);
                size_t at = jv_str_ascii(obj) ? i : ju_cp_offset(s, n, i), e = at;
                ju_next(s, n, &e);
                *out = jv_str(s + at, e - at);
                out->flags = obj.flags & JVF_MARKUP;
                return 0;
            }
        }
        break;
    default: break;
    }
    if (key.type == JV_STR) {
        bool found = false;
        if (jm_lookup_attr(r, obj, jv_sp(key), jv_sn(key), out, &found) < 0) return -1;
        if (found) return 0;
        return missing_attr(obj, jv_sp(key), jv_sn(key), out);
    }
    char tr[80];
    jbuf kb = { 0 };
    if (jv_repr(&kb, key, 0) < 0) jb_puts(&kb, "?");
    jb_putc(&kb, 0);
    *out = jv_undef_msg("%s has no element %.200s", jv_object_type_repr(obj, tr, sizeof tr),
                        kb.p ? kb.p : "?");
    jb_free(&kb);
    return 0;
}

/* Python slice semantics on str / list / tuple; anything else gives undefined. */
static int get_slice(jr *r, jv obj, jv a, jv b, jv c, bool folded, jv *out) {
    bool ok = true;
    int64_t step = 1;
    if (c.type != JV_NONE) { if (jv_is_intlike(c)) step = jv_as_int(c); else ok = false; }
    if ((a.type != JV_NONE && !jv_is_intlike(a)) || (b.type != JV_NONE && !jv_is_intlike(b))) ok = false;
    bool seq = obj.type == JV_STR ||
               (obj.type == JV_LIST && (obj.u.l->kind == JL_LIST || obj.u.l->kind == JL_TUPLE ||
                                        obj.u.l->kind == JL_RANGE));
    /* jinja2 subscribes slices directly, so failures raise instead of giving undefined;
     * a slice of literals is folded at compile time through getitem, which gives undefined */
    if (folded && (!seq || !ok)) { *out = jv_undef_msg("%s object is not sliceable", jv_typename(obj)); return 0; }
    if (obj.type == JV_DICT) return jr_fail(r, "unhashable type: 'slice'");
    if (!seq) return jr_fail(r, "'%s' object is not subscriptable", jv_typename(obj));
    if (!ok) return jr_fail(r, "slice indices must be integers or None or have an __index__ method");
    if (step == 0) return jr_fail(r, "slice step cannot be zero");
    int64_t len = obj.type == JV_STR ? (int64_t)jv_str_ncp(obj) : (int64_t)obj.u.l->n;
    int64_t given_step = step;
    /* a step longer than the sequence takes one element: clamp it so p += step cannot overflow */
    if (step > len) step = len + 1;
    if (step < -len) step = -len - 1;
    int64_t lo, hi;
    if (step > 0) {
        lo = a.type == JV_NONE ? 0 : jv_as_int(a);
        hi = b.type == JV_NONE ? len : jv_as_int(b);
        if (lo < 0) { lo += len; if (lo < 0) lo = 0; } else if (lo > len) lo = len;
        if (hi < 0) { hi += len; if (hi < 0) hi = 0; } else if (hi > len) hi = len;
    } else {
        lo = a.type == JV_NONE ? len - 1 : jv_as_int(a);
        hi = b.type == JV_NONE ? -1 : jv_as_int(b);
        if (a.type != JV_NONE) { if (lo < 0) { lo += len; if (lo < 0) lo = -1; } else if (lo >= len) lo = len - 1; }
        if (b.type != JV_NONE) { if (hi < 0) { hi += len; if (hi < 0) hi = -1; } else if (hi >= len) hi = len - 1; }
    }
    if (obj.type == JV_STR) {
        const char *s = jv_sp(obj);
        size_t n = jv_sn(obj);
        bool ascii = jv_str_ascii(obj);
        if (step == 1) {
            if (hi <= lo) { *out = jv_empty_str(); out->flags = obj.flags & JVF_MARKUP; return 0; }
            size_t x = ascii ? (size_t)lo : ju_cp_offset(s, n, (size_t)lo);
            size_t y = ascii ? (size_t)hi : x + ju_cp_offset(s + x, n - x, (size_t)(hi - lo));
            *out = jv_str(s + x, y - x);
            out->flags = obj.flags & JVF_MARKUP;
            return 0;
        }
        /* general step: index code points */
        size_t *offs = jmalloc(((size_t)len + 1) * sizeof(size_t));
        if (!offs) { *out = jv_empty_str(); return 0; }
        size_t i = 0, k = 0;
        while (i < n) { offs[k++] = i; ju_next(s, n, &i); }
        offs[k] = n;
        jbuf buf = { 0 };
        for (int64_t p = lo; step > 0 ? p < hi : p > hi; p += step)
            jb_put(&buf, s + offs[p], offs[p + 1] - offs[p]);
        colloq_free(offs);
        *out = jb_take_str(&buf);
        out->flags = obj.flags & JVF_MARKUP;
        return 0;
    }
    uint8_t kind = obj.u.l->kind == JL_TUPLE ? JL_TUPLE : JL_LIST;
    jv res = jv_list(kind, 0);
    for (int64_t p = lo; step > 0 ? p < hi : p > hi; p += step) jl_push(res, jv_ref(obj.u.l->v[p]));
    if (obj.u.l->kind == JL_RANGE && res.u.l->h.rc > 0) {
        /* a slice of a range is a range */
        jlist *l = res.u.l;
        l->kind = JL_RANGE;
        int64_t st = obj.u.l->rstep;
        l->rstart = (int64_t)((uint64_t)obj.u.l->rstart + (uint64_t)lo * (uint64_t)st);
        l->rstop = (int64_t)((uint64_t)obj.u.l->rstart + (uint64_t)hi * (uint64_t)st);
        l->rstep = (int64_t)((uint64_t)st * (uint64_t)given_step);
    }
    *out = res;
    return 0;
}

/* ---- operators ---- */

static int type_error2(jr *r, const char *op, jv a, jv b) {
    return jr_fail(r, "unsupported operand type(s) for %s: '%s' and '%s'", op, jv_typename(a), jv_typename(b));
}

static int repeat(jr *r, jv seq, int64_t times, jv *out) {
    if (times < 0) times = 0;
    if (seq.type == JV_STR) {
        size_t n = jv_sn(seq);
        if (n && (uint64_t)times > (SIZE_MAX / 2) / n) { jv_tls.limit = true; *out = jv_empty_str(); return 0; }
        jstr *s = jstr_alloc(n * (size_t)times);
        if (!s) { *out = jv_empty_str(); return 0; }
        size_t total = n * (size_t)times, done = total ? n : 0;
        if (total) memcpy(s->s, jv_sp(seq), n);
        while (done < total) {                  /* double the filled prefix */
            size_t k = done < total - done ? done : total - done;
            memcpy(s->s + done, s->s, k);
            done += k;
        }
        *out = jv_str_take(s);
        out->flags = seq.flags & JVF_MARKUP;
        return 0;
    }
    jlist *l = seq.u.l;
    if (l->n && (uint64_t)times > JINJA_MAX_ITEMS / l->n) return jr_fail(r, "sequence repetition too large");
    jv res = jv_list(l->kind == JL_TUPLE ? JL_TUPLE : JL_LIST, l->n * (size_t)times);
    for (int64_t i = 0; i < times; i++)
        for (size_t k = 0; k < l->n; k++) jl_push(res, jv_ref(l->v[k]));
    *out = res;
    return 0;
}

static bool is_seq_list(jv v) {
    return v.type == JV_LIST && (v.u.l->kind == JL_LIST || v.u.l->kind == JL_TUPLE);
}

static double py_fmod(double x, double y) {
    double m = fmod(x, y);
    if (m != 0) { if ((y < 0) != (m < 0)) m += y; }
    else m = copysign(0.0, y);
    return m;
}

static double py_floordiv(double x, double y) {
    double m = fmod(x, y), div = (x - m) / y;
    if (m != 0 && ((y < 0) != (m < 0))) div -= 1.0;
    if (div != 0) {
        double f = floor(div);
        if (div - f > 0.5) f += 1.0;
        return f;
    }
    return copysign(0.0, x / y);
}

static int int_pow(jr *r, int64_t base, int64_t e, jv *out) {
    int64_t res = 1;
    while (e > 0) {
        if (e & 1) { if (__builtin_mul_overflow(res, base, &res)) goto overflow; }
        e >>= 1;
        if (e && __builtin_mul_overflow(base, base, &base)) goto overflow;
    }
    *out = jv_int(res);
    return 0;
overflow:
    return jr_fail(r, "integer overflow (result too large)");
}

static int num_op(jr *r, int op, jv a, jv b, jv *out) {
    if (jv_is_intlike(a) && jv_is_intlike(b) && op != OP_DIV) {
        int64_t x = jv_as_int(a), y = jv_as_int(b), z;
        switch (op) {
        case OP_ADD: if (__builtin_add_overflow(x, y, &z)) goto overflow; break;
        case OP_SUB: if (__builtin_sub_overflow(x, y, &z)) goto overflow; break;
        case OP_MUL: if (__builtin_mul_overflow(x, y, &z)) goto overflow; break;
        case OP_FLOORDIV: case OP_MOD:
            if (y == 0) return jr_fail(r, "integer division or modulo by zero");
            if (x == INT64_MIN && y == -1) goto overflow;
            z = x / y;
            if ((x % y != 0) && ((x < 0) != (y < 0))) z--;
            if (op == OP_MOD) z = x - z * y;
            break;
        default:
            if (y < 0) {
                if (x == 0) return jr_fail(r, "0.0 cannot be raised to a negative power");
                *out = jv_float(pow((double)x, (double)y));
                return 0;
            }
            return int_pow(r, x, y, out);
        }
        *out = jv_int(z);
        return 0;
    overflow:
        return jr_fail(r, "integer overflow (result too large)");
    }
    double x = jv_as_float(a), y = jv_as_float(b);
    switch (op) {
    case OP_ADD: *out = jv_float(x + y); return 0;
    case OP_SUB: *out = jv_float(x - y); return 0;
    case OP_MUL: *out = jv_float(x * y); return 0;
    case OP_DIV:
        if (y == 0) return jr_fail(r, "division by zero");
        if (jv_is_intlike(a) && jv_is_intlike(b)) {
            *out = jv_float((double)jv_as_int(a) / (double)jv_as_int(b));
            return 0;
        }
        *out = jv_float(x / y);
        return 0;
    case OP_FLOORDIV:
        if (y == 0) return jr_fail(r, "float floor division by zero");
        *out = jv_float(py_floordiv(x, y));
        return 0;
    case OP_MOD:
        if (y == 0) return jr_fail(r, "float modulo");
        *out = jv_float(py_fmod(x, y));
        return 0;
    default:
        if (x == 0 && y < 0) return jr_fail(r, "0.0 cannot be raised to a negative power");
        if (x < 0 && y != floor(y)) return jr_fail(r, "negative number cannot be raised to a fractional power");
        {
            double z = pow(x, y);
            if (isinf(z) && !isinf(x) && !isinf(y)) return jr_fail(r, "(34, 'Numerical result out of range')");
            *out = jv_float(z);
        }
        return 0;
    }
}

static jv concat_str(jv a, jv b) {
    size_t n = jv_sn(a) + jv_sn(b);
    jstr *s = jstr_alloc(n);
    if (!s) return jv_empty_str();
    memcpy(s->s, jv_sp(a), jv_sn(a));
    memcpy(s->s + jv_sn(a), jv_sp(b), jv_sn(b));
    return jv_str_take(s);
}

int jm_percent_format(jr *r, jv fmt, jv args, jv *out);

int je_binop(jr *r, int op, jv a, jv b, jv *out) {
    static const char *names[] = { "+", "-", "*", "/", "//", "%", "** or pow()" };
    if (a.type == JV_UNDEF) return jr_fail_undef(r, a);
    if (op == OP_MOD && a.type == JV_STR) return jm_percent_format(r, a, b, out);   /* str.__mod__ first */
    if (b.type == JV_UNDEF) return jr_fail_undef(r, b);
    if (jv_is_num(a) && jv_is_num(b)) return num_op(r, op, a, b, out);
    switch (op) {
    case OP_ADD:
        if (a.type == JV_STR && b.type == JV_STR) {
            bool ma = a.flags & JVF_MARKUP, mb = b.flags & JVF_MARKUP;
            if (ma == mb) { *out = concat_str(a, b); out->flags = a.flags & JVF_MARKUP; return 0; }
            jv ea = ma ? jv_ref(a) : jv_escape(a), eb = mb ? jv_ref(b) : jv_escape(b);
            *out = concat_str(ea, eb);
            out->flags = JVF_MARKUP;
            jv_unref(ea); jv_unref(eb);
            return 0;
        }
        if (a.type == JV_STR)
            return jr_fail(r, "can only concatenate str (not \"%s\") to str", jv_typename(b));
        if (is_seq_list(a) && is_seq_list(b) && a.u.l->kind == b.u.l->kind) {
            if (a.u.l->n + b.u.l->n > JINJA_MAX_ITEMS) return jr_fail(r, "list too large");
            jv res = jv_list(a.u.l->kind, a.u.l->n + b.u.l->n);
            for (size_t i = 0; i < a.u.l->n; i++) jl_push(res, jv_ref(a.u.l->v[i]));
            for (size_t i = 0; i < b.u.l->n; i++) jl_push(res, jv_ref(b.u.l->v[i]));
            *out = res;
            return 0;
        }
        if (is_seq_list(a))
            return jr_fail(r, "can only concatenate %s (not \"%s\") to %s", jv_typename(a), jv_typename(b),
                           jv_typename(a));
        return type_error2(r, "+", a, b);
    case OP_MUL:
        if ((a.type == JV_STR || is_seq_list(a)) && jv_is_intlike(b)) return repeat(r, a, jv_as_int(b), out);
        if ((b.type == JV_STR || is_seq_list(b)) && jv_is_intlike(a)) return repeat(r, b, jv_as_int(a), out);
        if (a.type == JV_STR || b.type == JV_STR || is_seq_list(a) || is_seq_list(b))
            return jr_fail(r, "can't multiply sequence by non-int of type '%s'",
                           jv_typename(a.type == JV_STR || is_seq_list(a) ? b : a));
        return type_error2(r, "*", a, b);
    case OP_MOD:
        if (a.type == JV_STR) return jm_percent_format(r, a, b, out);
        return type_error2(r, "%", a, b);
    default:
        return type_error2(r, names[op], a, b);
    }
}

/* ---- filters and tests by id ---- */

int je_filter(jr *r, int id, const char *name, jv in, jcall *c, jv *out) {
    if (id < 0) return jr_fail(r, "No filter named '%s' found.", name);
    return jf_apply_filter(r, id, in, c, out);
}

int je_test(jr *r, int id, const char *name, jv in, jcall *c, bool *out) {
    if (id < 0) return jr_fail(r, "No test named '%s' found.", name);
    return jf_apply_test(r, id, in, c, out);
}

/* ---- calls ---- */

int je_call(jr *r, jv fn, jcall *c, jv *out) {
    if (fn.type == JV_UNDEF) return jr_fail_undef(r, fn);
    if (fn.type == JV_LOOP) return je_loop_call(r, fn.u.lp, c, out);
    if (fn.type != JV_FUNC) return jr_fail(r, "'%s' object is not callable", jv_typename(fn));
    jfunc *f = fn.u.fn;
    switch (f->kind) {
    case JF_MACRO: case JF_CALLER: return je_call_macro(r, f, c, out);
    case JF_JOINER:
        if (c->npos || c->nkw) return jr_fail(r, "joiner takes no arguments");
        if (!f->used) { if (f->h.rc >= 0) f->used = true; *out = jv_empty_str(); }
        else *out = jv_ref(f->self);
        return 0;
    default: return jm_call(r, f, c, out);
    }
}

/* ---- expressions ---- */

static int eval_compare(jr *r, jscope *s, const jnode *n, jv *out) {
    jv left;
    if (je_eval(r, s, n->a, &left) < 0) return -1;
    bool result = true;
    for (size_t i = 0; i < n->nkids; i++) {
        jv right;
        if (je_eval(r, s, n->kids[i], &right) < 0) { jv_unref(left); return -1; }
        bool b = false;
        int rc = 0;
        uint8_t op = n->ops[i];
        if (op == CMP_EQ) b = jv_eq(left, right);
        else if (op == CMP_NE) b = !jv_eq(left, right);
        else if (op == CMP_IN || op == CMP_NOTIN) {
            rc = je_contains(r, right, left, &b);
            if (op == CMP_NOTIN) b = !b;
        } else {
            static const char *sym[] = { "==", "!=", "<", "<=", ">", ">=" };
            int o;
            char msg[200];
            if (left.type == JV_UNDEF) rc = jr_fail_undef(r, left);
            else if (right.type == JV_UNDEF) rc = jr_fail_undef(r, right);
            else if (jv_order(left, right, sym[op], &o, msg, sizeof msg) < 0) rc = jr_fail(r, "%s", msg);
            else if (o == 2) b = false;
            else b = op == CMP_LT ? o < 0 : op == CMP_LE ? o <= 0 : op == CMP_GT ? o > 0 : o >= 0;
        }
        jv_unref(left);
        left = right;
        if (rc < 0) { jv_unref(left); return -1; }
        if (!b) { result = false; break; }
    }
    jv_unref(left);
    *out = jv_bool(result);
    return 0;
}

static int eval_filter(jr *r, jscope *s, const jnode *n, const jv *base, jv *out) {
    jv in;
    if (!n->a) in = base ? jv_ref(*base) : jv_undef();
    else if (n->a->kind == JN_FILTER && base) { if (eval_filter(r, s, n->a, base, &in) < 0) return -1; }
    else if (je_eval(r, s, n->a, &in) < 0) return -1;
    jcall c;
    int rc = je_eval_args(r, s, n->args, &c);
    if (rc == 0) {
        r->line = n->line;
        if (n->kind == JN_FILTER) {
            rc = je_filter(r, n->fid, n->name, in, &c, out);
        } else {
            bool b = false;
            rc = je_test(r, n->fid, n->name, in, &c, &b);
            if (rc == 0) *out = jv_bool(b);
        }
    }
    jcall_free(&c);
    jv_unref(in);
    return rc < 0 ? -1 : 0;
}

/* Apply a {% filter %} / {% set x | f %} chain to a rendered string. */
int je_filter_chain(jr *r, jscope *s, const jnode *chain, jv in, jv *out) {
    return eval_filter(r, s, chain, &in, out);
}

static int eval_seq(jr *r, jscope *s, const jnode *n, jv *out) {
    jv res = n->kind == JN_DICT ? jv_dict() : jv_list(n->kind == JN_TUPLE ? JL_TUPLE : JL_LIST, n->nkids);
    size_t step = n->kind == JN_DICT ? 2 : 1;
    for (size_t i = 0; i < n->nkids; i += step) {
        jv v;
        if (je_eval(r, s, n->kids[i], &v) < 0) { jv_unref(res); return -1; }
        if (n->kind != JN_DICT) { jl_push(res, v); continue; }
        jv val;
        if (je_eval(r, s, n->kids[i + 1], &val) < 0) { jv_unref(v); jv_unref(res); return -1; }
        if (!jv_hashable(v)) {
            jr_fail(r, "unhashable type: '%s'", jv_typename(v));
            jv_unref(v); jv_unref(val); jv_unref(res);
            return -1;
        }
        jd_set(res.u.d, v, val);
        jv_unref(v);
    }
    *out = res;
    return 0;
}

static int eval_getitem(jr *r, jscope *s, const jnode *n, jv *out) {
    jv obj;
    if (je_eval(r, s, n->a, &obj) < 0) return -1;
    int rc;
    if (n->b->kind == JN_SLICE) {
        jv p[3] = { jv_none(), jv_none(), jv_none() };
        const jnode *parts[3] = { n->b->a, n->b->b, n->b->c };
        rc = 0;
        for (int i = 0; i < 3 && rc == 0; i++)
            if (parts[i]) rc = je_eval(r, s, parts[i], &p[i]);
        if (rc == 0) {
            r->line = n->line;
            if (obj.type == JV_UNDEF) rc = jr_fail_undef(r, obj);
            else rc = get_slice(r, obj, p[0], p[1], p[2], r->folding, out);
        }
        for (int i = 0; i < 3; i++) jv_unref(p[i]);
    } else {
        jv key;
        rc = je_eval(r, s, n->b, &key);
        if (rc == 0) {
            r->line = n->line;
            rc = je_getitem(r, obj, key, out);
            jv_unref(key);
        }
    }
    jv_unref(obj);
    return rc < 0 ? -1 : 0;
}

static int eval_node(jr *r, jscope *s, const jnode *n, jv *out) {
    /* folding (jinja2's compile-time evaluation) stops at anything not a literal */
    if (r->folding && (n->kind == JN_NAME || n->kind == JN_CALL || (n->flags & JNF_CONTEXT) ||
                       ((n->kind == JN_FILTER || n->kind == JN_TEST) && n->fid < 0)))
        return jr_fail(r, "not a constant");
    switch (n->kind) {
    case JN_CONST: *out = n->val; return 0;
    case JN_NAME:
        if (!je_lookup(r, s, n->name, out)) *out = jv_undef_msg("'%s' is undefined", n->name);
        return 0;
    case JN_GETATTR: {
        jv obj;
        if (je_eval(r, s, n->a, &obj) < 0) return -1;
        r->line = n->line;
        int rc = je_getattr(r, obj, n->name, strlen(n->name), out);
        jv_unref(obj);
        return rc;
    }
    case JN_GETITEM: return eval_getitem(r, s, n, out);
    case JN_CALL: {
        jv fn;
        if (je_eval(r, s, n->a, &fn) < 0) return -1;
        jcall c;
        int rc = je_eval_args(r, s, n->args, &c);
        if (rc == 0) { r->line = n->line; rc = je_call(r, fn, &c, out); }
        jcall_free(&c);
        jv_unref(fn);
        return rc < 0 ? -1 : 0;
    }
    case JN_FILTER: case JN_TEST: return eval_filter(r, s, n, NULL, out);
    case JN_LIST: case JN_TUPLE: case JN_DICT: return eval_seq(r, s, n, out);
    case JN_BINOP: {
        jv a, b;
        if (je_eval(r, s, n->a, &a) < 0) return -1;
        if (je_eval(r, s, n->b, &b) < 0) { jv_unref(a); return -1; }
        r->line = n->line;
        int rc = je_binop(r, n->op, a, b, out);
        jv_unref(a); jv_unref(b);
        return rc < 0 ? -1 : 0;
    }
    case JN_NEG: case JN_POS: {
        jv a;
        if (je_eval(r, s, n->a, &a) < 0) return -1;
        r->line = n->line;
        int rc = 0;
        if (a.type == JV_UNDEF) rc = jr_fail_undef(r, a);
        else if (jv_is_intlike(a)) {
            int64_t x = jv_as_int(a);
            if (n->kind == JN_NEG && x == INT64_MIN) rc = jr_fail(r, "integer overflow (result too large)");
            else *out = jv_int(n->kind == JN_NEG ? -x : x);
        } else if (a.type == JV_FLOAT) *out = jv_float(n->kind == JN_NEG ? -a.u.f : a.u.f);
        else rc = jr_fail(r, "bad operand type for unary %c: '%s'", n->kind == JN_NEG ? '-' : '+', jv_typename(a));
        jv_unref(a);
        return rc;
    }
    case JN_NOT: {
        jv a;
        if (je_eval(r, s, n->a, &a) < 0) return -1;
        *out = jv_bool(!jv_truthy(a));
        jv_unref(a);
        return 0;
    }
    case JN_AND: case JN_OR: {
        jv a;
        if (je_eval(r, s, n->a, &a) < 0) return -1;
        if (jv_truthy(a) == (n->kind == JN_OR)) { *out = a; return 0; }
        jv_unref(a);
        return je_eval(r, s, n->b, out);
    }
    case JN_COMPARE: return eval_compare(r, s, n, out);
    case JN_CONCAT: {
        jbuf b = { 0 };
        for (size_t i = 0; i < n->nkids; i++) {
            jv v;
            if (je_eval(r, s, n->kids[i], &v) < 0) { jb_free(&b); return -1; }
            int rc = jv_tostr(&b, v);
            jv_unref(v);
            if (rc < 0) { jb_free(&b); return jr_fail(r, "value nested too deeply"); }
        }
        *out = jb_take_str(&b);
        return 0;
    }
    case JN_CONDEXPR: {
        jv t;
        if (je_eval(r, s, n->a, &t) < 0) return -1;
        bool yes = jv_truthy(t);
        jv_unref(t);
        if (yes) return je_eval(r, s, n->b, out);
        if (n->c) return je_eval(r, s, n->c, out);
        *out = jv_undef_msg("the inline if-expression on line %d evaluated to false and no else "
                            "section was defined.", n->line);
        return 0;
    }
    case JN_SLICE:
        /* a slice inside a tuple subscript: jinja2 then looks up a tuple key, which fails */
        *out = jv_undef_msg("slice objects are not supported as keys");
        return 0;
    default:
        return jr_fail(r, "internal error: cannot evaluate node kind %d", n->kind);
    }
}

/* jinja2's has_safe_repr: may a folded value be put back into the compiled template? */
static bool safe_repr(jv v, int depth) {
    if (depth > 64) return false;
    switch (v.type) {
    case JV_NONE: case JV_BOOL: case JV_INT: case JV_FLOAT: case JV_STR: return true;
    case JV_LIST:
        if (v.u.l->kind == JL_RANGE) return true;
        if (v.u.l->kind != JL_LIST && v.u.l->kind != JL_TUPLE) return false;
        for (size_t i = 0; i < v.u.l->n; i++) if (!safe_repr(v.u.l->v[i], depth + 1)) return false;
        return true;
    case JV_DICT:
        for (size_t i = 0; i < v.u.d->n; i++)
            if (!safe_repr(v.u.d->k[i], depth + 1) || !safe_repr(v.u.d->v[i], depth + 1)) return false;
        return true;
    default: return false;
    }
}

/* A literal-only expression: jinja2 computes it at compile time, where a slice goes
 * through getitem (failures give undefined).  The folded value is kept when the
 * optimizer could keep it (a safe repr, or the whole expression of a {{ }});
 * otherwise the expression runs normally. */
static int eval_folded(jr *r, jscope *s, const jnode *n, jv *out) {
    r->folding = true;
    int rc = eval_node(r, s, n, out);
    r->folding = false;
    if (rc == 0 && jr_ok(r) && (n == r->output_expr || safe_repr(*out, 0))) return 0;
    if (rc == 0) jv_unref(*out);
    *out = jv_none();
    if (r->raised || r->oom || jv_tls.oom || jv_tls.limit) return -1;
    r->failed = false;
    r->msg[0] = 0;
    return eval_node(r, s, n, out);
}

int je_eval(jr *r, jscope *s, const jnode *n, jv *out) {
    *out = jv_none();
    if (++r->depth > JINJA_MAX_EVAL_DEPTH || jinja_stack_used(r->stack_base) > r->max_stack) {
        r->depth--;
        return jr_fail(r, "maximum recursion depth exceeded");
    }
    r->line = n->line;
    int rc = (n->flags & (JNF_CONST | JNF_MAYFOLD)) && n->kind != JN_CONST && !r->folding
                 ? eval_folded(r, s, n, out) : eval_node(r, s, n, out);
    r->depth--;
    if (rc == 0 && !jr_ok(r)) { jv_unref(*out); *out = jv_none(); rc = -1; }
    if (rc < 0) { *out = jv_none(); return -1; }
    return 0;
}
