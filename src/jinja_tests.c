/*
 * jinja_tests.c - Jinja2's builtin tests ("x is defined", "is divisibleby 3", ...)
 * with their Python semantics, and the test-name table the parser resolves against.
 * Must not touch statements or scopes.
 */
#include "jinja_internal.h"

#include <string.h>

enum {
    T_ODD, T_EVEN, T_DIVISIBLEBY, T_DEFINED, T_UNDEFINED, T_FILTER, T_TEST, T_NONE, T_BOOLEAN,
    T_FALSE, T_TRUE, T_INTEGER, T_FLOAT, T_LOWER, T_UPPER, T_STRING, T_MAPPING, T_NUMBER,
    T_SEQUENCE, T_ITERABLE, T_CALLABLE, T_SAMEAS, T_ESCAPED, T_IN,
    T_EQ, T_EQ2, T_EQUALTO, T_NE, T_NE2, T_GT, T_GT2, T_GREATERTHAN, T_GE, T_GE2,
    T_LT, T_LT2, T_LESSTHAN, T_LE, T_LE2
};
static const char *const tests[] = {
    "odd", "even", "divisibleby", "defined", "undefined", "filter", "test", "none", "boolean",
    "false", "true", "integer", "float", "lower", "upper", "string", "mapping", "number",
    "sequence", "iterable", "callable", "sameas", "escaped", "in",
    "==", "eq", "equalto", "!=", "ne", ">", "gt", "greaterthan", ">=", "ge",
    "<", "lt", "lessthan", "<=", "le", NULL
};

int jf_test_id(const char *name) {
    for (int i = 0; tests[i]; i++) if (!strcmp(tests[i], name)) return i;
    return -1;
}

static int test_mod(jr *r, jv v, jv m, bool *out, int64_t want) {
    jv res;
    if (je_binop(r, OP_MOD, v, m, &res) < 0) return -1;
    jv w = jv_int(want);
    *out = jv_eq(res, w);
    jv_unref(res);
    return 0;
}

int jf_apply_test(jr *r, int id, jv v, jcall *c, bool *out) {
    jv a[1];
    *out = false;
    static const char *const one[] = { "other" };
    bool needs_arg = id == T_DIVISIBLEBY || id == T_SAMEAS || id == T_IN || id >= T_EQ;
    if (jcall_bind(r, tests[id], c, one, needs_arg ? 1 : 0, a) < 0) return -1;
    if (needs_arg && jv_is_missing(a[0])) return jr_fail(r, "test '%s' takes one argument", tests[id]);
    switch (id) {
    case T_ODD: return test_mod(r, v, jv_int(2), out, 1);
    case T_EVEN: return test_mod(r, v, jv_int(2), out, 0);
    case T_DIVISIBLEBY: return test_mod(r, v, a[0], out, 0);
    case T_DEFINED: *out = v.type != JV_UNDEF; return 0;
    case T_UNDEFINED: *out = v.type == JV_UNDEF; return 0;
    case T_FILTER: *out = v.type == JV_STR && jf_filter_id(jv_sp(v)) >= 0; return 0;
    case T_TEST: *out = v.type == JV_STR && jf_test_id(jv_sp(v)) >= 0; return 0;
    case T_NONE: *out = v.type == JV_NONE; return 0;
    case T_BOOLEAN: *out = v.type == JV_BOOL; return 0;
    case T_FALSE: *out = v.type == JV_BOOL && !v.u.b; return 0;
    case T_TRUE: *out = v.type == JV_BOOL && v.u.b; return 0;
    case T_INTEGER: *out = v.type == JV_INT; return 0;
    case T_FLOAT: *out = v.type == JV_FLOAT; return 0;
    case T_LOWER: case T_UPPER: {
        jv str = jv_to_strv(v);
        const char *p = jv_sp(str);
        size_t n = jv_sn(str), i = 0;
        bool cased = false, ok = true;
        while (i < n) {
            uint32_t ch = ju_next(p, n, &i);
            if (id == T_LOWER ? ju_isupper(ch) : ju_islower(ch)) ok = false;
            if (id == T_LOWER ? ju_islower(ch) : ju_isupper(ch)) cased = true;
        }
        jv_unref(str);
        *out = ok && cased;
        return 0;
    }
    case T_STRING: *out = v.type == JV_STR; return 0;
    case T_MAPPING: *out = v.type == JV_DICT; return 0;
    case T_NUMBER: *out = jv_is_num(v); return 0;
    case T_SEQUENCE:
        *out = v.type == JV_UNDEF || v.type == JV_STR || v.type == JV_DICT ||
               (v.type == JV_LIST && (v.u.l->kind == JL_LIST || v.u.l->kind == JL_TUPLE || v.u.l->kind == JL_RANGE));
        return 0;
    case T_ITERABLE:
        *out = v.type == JV_UNDEF || v.type == JV_STR || v.type == JV_DICT || v.type == JV_LIST || v.type == JV_LOOP;
        return 0;
    case T_CALLABLE: *out = v.type == JV_FUNC || v.type == JV_LOOP || v.type == JV_UNDEF; return 0;
    case T_SAMEAS:
        if (jv_isheap(v) || jv_isheap(a[0])) *out = v.type == a[0].type && v.u.o == a[0].u.o;
        else *out = v.type == a[0].type && jv_eq(v, a[0]);
        return 0;
    case T_ESCAPED: *out = v.type == JV_STR && (v.flags & JVF_MARKUP); return 0;
    case T_IN: return je_contains(r, a[0], v, out);
    case T_EQ: case T_EQ2: case T_EQUALTO: *out = jv_eq(v, a[0]); return 0;
    case T_NE: case T_NE2: *out = !jv_eq(v, a[0]); return 0;
    default: {
        int o;
        char msg[200];
        const char *sym = id <= T_GREATERTHAN ? ">" : id <= T_GE2 ? ">=" : id <= T_LESSTHAN ? "<" : "<=";
        if (v.type == JV_UNDEF) return jr_fail_undef(r, v);
        if (a[0].type == JV_UNDEF) return jr_fail_undef(r, a[0]);
        if (jv_order(v, a[0], sym, &o, msg, sizeof msg) < 0) return jr_fail(r, "%s", msg);
        if (o == 2) { *out = false; return 0; }
        if (id <= T_GREATERTHAN) *out = o > 0;
        else if (id <= T_GE2) *out = o >= 0;
        else if (id <= T_LESSTHAN) *out = o < 0;
        else *out = o <= 0;
        return 0;
    }
    }
}
