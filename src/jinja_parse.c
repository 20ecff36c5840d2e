/*
 * jinja_parse.c - recursive-descent parser from tokens to the syntax tree, with
 * Jinja2's grammar and operator precedence (is-tests bind tighter than comparisons,
 * ** is left-associative, filters bind tighter than unary minus's operand chain).
 * Bounds nesting depth; reports "line N: message".  Also jinja_parse/_free.
 * Must not evaluate anything.
 */
#include "jinja_internal.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    jtok *t; size_t n, i;
    jarena *a;
    colloq_err *err;
    bool failed;
    int depth;
    int loop_depth;
    uintptr_t stack_base;
} parser;

#define CUR(P) (&(P)->t[(P)->i])

static void *pfail(parser *P, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void *pfail(parser *P, int line, const char *fmt, ...) {
    if (P->failed) return NULL;
    P->failed = true;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    colloq_seterr(P->err, COLLOQ_ERR_FORMAT, "line %d: %s", line, msg);
    return NULL;
}

static void *oom(parser *P) {
    if (!P->failed) { P->failed = true; colloq_seterr(P->err, COLLOQ_ERR_NOMEM, "out of memory"); }
    return NULL;
}

static const char *describe(const jtok *t, char *buf, size_t cap) {
    if (t->type == JT_NAME) { snprintf(buf, cap, "%.*s", (int)(t->n > 60 ? 60 : t->n), t->s); return buf; }
    return jt_describe(t);
}

static void advance(parser *P) { if (P->i + 1 < P->n) P->i++; }

static bool is_name(const jtok *t, const char *s) {
    size_t n = strlen(s);
    return t->type == JT_NAME && t->n == n && memcmp(t->s, s, n) == 0;
}

static bool skip_name(parser *P, const char *s) {
    if (is_name(CUR(P), s)) { advance(P); return true; }
    return false;
}

static bool skip(parser *P, uint8_t type) {
    if (CUR(P)->type == type) { advance(P); return true; }
    return false;
}

static jtok *expect(parser *P, uint8_t type) {
    jtok *t = CUR(P);
    if (t->type != type) {
        char b1[80];
        jtok want = { .type = type };
        if (t->type == JT_EOF)
            return pfail(P, t->line, "unexpected end of template, expected '%s'.", jt_describe(&want));
        return pfail(P, t->line, "expected token '%s', got '%s'", jt_describe(&want), describe(t, b1, sizeof b1));
    }
    advance(P);
    return t;
}

static const char *name_dup(parser *P, const jtok *t) {
    char *s = ja_alloc(P->a, t->n + 1);
    if (!s) return oom(P);
    memcpy(s, t->s, t->n);
    return s;
}

static jnode *mk(parser *P, uint8_t kind, int line) {
    jnode *n = ja_alloc(P->a, sizeof *n);
    if (!n) return oom(P);
    n->kind = kind; n->line = line; n->fid = -1;
    return n;
}

/* growable node list in the arena */
typedef struct { jnode **v; size_t n, cap; } nlist;

static bool nl_push(parser *P, nlist *l, jnode *x) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 8;
        jnode **nv = ja_alloc(P->a, nc * sizeof(jnode *));
        if (!nv) { oom(P); return false; }
        if (l->n) memcpy(nv, l->v, l->n * sizeof(jnode *));
        l->v = nv; l->cap = nc;
    }
    l->v[l->n++] = x;
    return true;
}

static int hmax(int h, const jnode *x) { return x && x->height > h ? x->height : h; }

static bool is_const(const jnode *x) { return !x || (x->flags & JNF_CONST); }

/* Would jinja2's optimizer fold this expression?  Only literals and operations on them;
 * names, calls and filters that need the render context are never folded. */
static bool foldable(const jnode *n) {
    switch (n->kind) {
    case JN_CONST: return true;
    case JN_NAME: case JN_CALL: case JN_NSREF: return false;
    case JN_FILTER:
        if (!n->a || n->fid < 0 || (n->flags & JNF_CONTEXT)) return false;
        break;
    case JN_TEST: if (n->fid < 0) return false; break;
    default: break;
    }
    if (!is_const(n->a) || !is_const(n->b) || !is_const(n->c)) return false;
    for (size_t i = 0; i < n->nkids; i++) if (!is_const(n->kids[i])) return false;
    if (n->args) {
        if (n->args->dyn || n->args->dynkw) return false;
        for (size_t i = 0; i < n->args->npos; i++) if (!is_const(n->args->pos[i])) return false;
        for (size_t i = 0; i < n->args->nkw; i++) if (!is_const(n->args->kwv[i])) return false;
    }
    return true;
}

static bool fold_ok(const jnode *x) { return !x || (x->flags & (JNF_CONST | JNF_MAYFOLD)); }

/* Could jinja2's optimizer still fold it?  An if-expression, and, or with a literal
 * test may (the branch taken decides); so may anything built only from such parts. */
static bool may_fold(const jnode *n) {
    if (n->kind == JN_CONDEXPR || n->kind == JN_AND || n->kind == JN_OR) return fold_ok(n->a);
    if (n->kind == JN_NAME || n->kind == JN_CALL || n->kind == JN_NSREF || (n->flags & JNF_CONTEXT) ||
        ((n->kind == JN_FILTER || n->kind == JN_TEST) && n->fid < 0) || (n->kind == JN_FILTER && !n->a))
        return false;
    if (!fold_ok(n->a) || !fold_ok(n->b) || !fold_ok(n->c)) return false;
    for (size_t i = 0; i < n->nkids; i++) if (!fold_ok(n->kids[i])) return false;
    if (n->args) {
        if (n->args->dyn || n->args->dynkw) return false;
        for (size_t i = 0; i < n->args->npos; i++) if (!fold_ok(n->args->pos[i])) return false;
        for (size_t i = 0; i < n->args->nkw; i++) if (!fold_ok(n->args->kwv[i])) return false;
    }
    return true;
}

/* Set an expression's height from its children; refuse trees too tall to walk. */
static jnode *fin(parser *P, jnode *n) {
    if (!n) return NULL;
    int h = 0;
    h = hmax(h, n->a); h = hmax(h, n->b); h = hmax(h, n->c);
    for (size_t i = 0; i < n->nkids; i++) h = hmax(h, n->kids[i]);
    if (n->args) {
        for (size_t i = 0; i < n->args->npos; i++) h = hmax(h, n->args->pos[i]);
        for (size_t i = 0; i < n->args->nkw; i++) h = hmax(h, n->args->kwv[i]);
        h = hmax(h, n->args->dyn); h = hmax(h, n->args->dynkw);
    }
    n->height = h + 1;
    if (n->height > JINJA_MAX_EXPR_HEIGHT) return pfail(P, n->line, "expression too deeply nested");
    if (n->kind == JN_FILTER && (!strcmp(n->name, "map") || !strcmp(n->name, "select") ||
                                 !strcmp(n->name, "reject") || !strcmp(n->name, "selectattr") ||
                                 !strcmp(n->name, "rejectattr") || !strcmp(n->name, "random")))
        n->flags |= JNF_CONTEXT;
    if (foldable(n)) n->flags |= JNF_CONST;
    else if (may_fold(n)) n->flags |= JNF_MAYFOLD;
    return n;
}

static bool enter(parser *P) {
    if (++P->depth > JINJA_MAX_PARSE_DEPTH || jinja_stack_used(P->stack_base) > JINJA_STACK_BUDGET) {
        pfail(P, CUR(P)->line, "template nested too deeply");
        return false;
    }
    return true;
}

static jnode *parse_expression(parser *P, bool with_condexpr);
static jnode *parse_tuple(parser *P, bool simplified, bool with_condexpr, const char *extra_end,
                          bool explicit_parens);
static jnode *parse_unary(parser *P, bool with_filter);
static jnode *parse_primary(parser *P);
static jnode *parse_postfix(parser *P, jnode *node);
static jnode *parse_filter(parser *P, jnode *node, bool start_inline);
static jnode *subparse(parser *P, const char *const *end_names);

/* ---- call arguments ---- */

static jargs *parse_call_args(parser *P) {
    jtok *open = expect(P, JT_LPAREN);
    if (!open) return NULL;
    jargs *a = ja_alloc(P->a, sizeof *a);
    if (!a) return oom(P);
    nlist pos = { 0 }, kwv = { 0 };
    jstr **kwn = NULL; size_t kwcap = 0;
    bool require_comma = false;
    while (CUR(P)->type != JT_RPAREN) {
        if (require_comma) {
            if (!expect(P, JT_COMMA)) return NULL;
            if (CUR(P)->type == JT_RPAREN) break;
        }
        if (CUR(P)->type == JT_MUL) {
            if (a->dyn || a->dynkw) return pfail(P, open->line, "invalid syntax for function call expression");
            advance(P);
            if (!(a->dyn = parse_expression(P, true))) return NULL;
        } else if (CUR(P)->type == JT_POW) {
            if (a->dynkw) return pfail(P, open->line, "invalid syntax for function call expression");
            advance(P);
            if (!(a->dynkw = parse_expression(P, true))) return NULL;
        } else if (CUR(P)->type == JT_NAME && P->i + 1 < P->n && P->t[P->i + 1].type == JT_ASSIGN) {
            if (a->dynkw) return pfail(P, open->line, "invalid syntax for function call expression");
            jtok *k = CUR(P);
            P->i += 2;
            jnode *v = parse_expression(P, true);
            if (!v) return NULL;
            if (kwv.n == kwcap) {
                size_t nc = kwcap ? kwcap * 2 : 4;
                jstr **nn = ja_alloc(P->a, nc * sizeof(jstr *));
                if (!nn) return oom(P);
                if (kwv.n) memcpy(nn, kwn, kwv.n * sizeof(jstr *));
                kwn = nn; kwcap = nc;
            }
            if (!(kwn[kwv.n] = ja_jstr(P->a, k->s, k->n))) return oom(P);
            if (!nl_push(P, &kwv, v)) return NULL;
        } else {
            if (a->dyn || a->dynkw || kwv.n)
                return pfail(P, open->line, "invalid syntax for function call expression");
            jnode *v = parse_expression(P, true);
            if (!v || !nl_push(P, &pos, v)) return NULL;
        }
        require_comma = true;
    }
    if (!expect(P, JT_RPAREN)) return NULL;
    a->pos = pos.v; a->npos = pos.n;
    a->kwn = kwn; a->kwv = kwv.v; a->nkw = kwv.n;
    return a;
}

static jnode *parse_call(parser *P, jnode *callee) {
    jnode *n = mk(P, JN_CALL, CUR(P)->line);
    if (!n) return NULL;
    n->a = callee;
    if (!(n->args = parse_call_args(P))) return NULL;
    return fin(P, n);
}

static const char *dotted_name(parser *P) {
    jtok *t = expect(P, JT_NAME);
    if (!t) return NULL;
    char buf[256];
    size_t n = 0;
    for (;;) {
        if (n + t->n + 2 > sizeof buf) return pfail(P, t->line, "name too long");
        memcpy(buf + n, t->s, t->n);
        n += t->n;
        if (CUR(P)->type != JT_DOT) break;
        advance(P);
        if (!(t = expect(P, JT_NAME))) return NULL;
        buf[n++] = '.';
    }
    char *s = ja_alloc(P->a, n + 1);
    if (!s) return oom(P);
    memcpy(s, buf, n);
    return s;
}

static jnode *parse_filter(parser *P, jnode *node, bool start_inline) {
    while (CUR(P)->type == JT_PIPE || start_inline) {
        if (!start_inline) advance(P);
        int line = CUR(P)->line;
        jnode *f = mk(P, JN_FILTER, line);
        if (!f) return NULL;
        if (!(f->name = dotted_name(P))) return NULL;
        f->fid = jf_filter_id(f->name);
        f->a = node;
        if (CUR(P)->type == JT_LPAREN) { if (!(f->args = parse_call_args(P))) return NULL; }
        node = fin(P, f);
        if (!node) return NULL;
        start_inline = false;
    }
    return node;
}

static jnode *parse_test(parser *P, jnode *node) {
    int line = CUR(P)->line;
    advance(P);                                  /* "is" */
    bool negated = skip_name(P, "not");
    jnode *t = mk(P, JN_TEST, line);
    if (!t) return NULL;
    if (!(t->name = dotted_name(P))) return NULL;
    t->fid = jf_test_id(t->name);
    t->a = node;
    jtok *c = CUR(P);
    if (c->type == JT_LPAREN) {
        if (!(t->args = parse_call_args(P))) return NULL;
    } else if ((c->type == JT_NAME || c->type == JT_STRING || c->type == JT_INT || c->type == JT_FLOAT ||
                c->type == JT_LPAREN || c->type == JT_LBRACKET || c->type == JT_LBRACE) &&
               !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and")) {
        if (is_name(c, "is")) return pfail(P, c->line, "You cannot chain multiple tests with is");
        jnode *arg = parse_postfix(P, parse_primary(P));
        if (!arg) return NULL;
        if (!(t->args = ja_alloc(P->a, sizeof(jargs)))) return oom(P);
        if (!(t->args->pos = ja_alloc(P->a, sizeof(jnode *)))) return oom(P);
        t->args->pos[0] = arg; t->args->npos = 1;
    }
    if (!fin(P, t)) return NULL;
    if (!negated) return t;
    jnode *n = mk(P, JN_NOT, line);
    if (!n) return NULL;
    n->a = t;
    return fin(P, n);
}

/* ---- primaries ---- */

static jnode *parse_subscribed(parser *P) {
    int line = CUR(P)->line;
    jnode *parts[3] = { NULL, NULL, NULL };
    if (CUR(P)->type == JT_COLON) {
        advance(P);
    } else {
        jnode *e = parse_expression(P, true);
        if (!e) return NULL;
        if (CUR(P)->type != JT_COLON) return e;
        advance(P);
        parts[0] = e;
    }
    if (CUR(P)->type != JT_COLON && CUR(P)->type != JT_RBRACKET && CUR(P)->type != JT_COMMA)
        if (!(parts[1] = parse_expression(P, true))) return NULL;
    if (CUR(P)->type == JT_COLON) {
        advance(P);
        if (CUR(P)->type != JT_RBRACKET && CUR(P)->type != JT_COMMA)
            if (!(parts[2] = parse_expression(P, true))) return NULL;
    }
    jnode *s = mk(P, JN_SLICE, line);
    if (!s) return NULL;
    s->a = parts[0]; s->b = parts[1]; s->c = parts[2];
    return fin(P, s);
}

static jnode *parse_subscript(parser *P, jnode *node) {
    jtok *t = CUR(P);
    advance(P);
    if (t->type == JT_DOT) {
        jtok *at = CUR(P);
        advance(P);
        if (at->type == JT_NAME) {
            jnode *g = mk(P, JN_GETATTR, t->line);
            if (!g) return NULL;
            g->a = node;
            if (!(g->name = name_dup(P, at))) return NULL;
            return fin(P, g);
        }
        if (at->type != JT_INT) return pfail(P, at->line, "expected name or number");
        jnode *k = mk(P, JN_CONST, at->line);
        if (!k) return NULL;
        k->val = jv_int(at->i);
        jnode *g = mk(P, JN_GETITEM, t->line);
        if (!g) return NULL;
        g->a = node; g->b = fin(P, k);
        return fin(P, g);
    }
    nlist args = { 0 };
    while (CUR(P)->type != JT_RBRACKET) {
        if (args.n && !expect(P, JT_COMMA)) return NULL;
        jnode *s = parse_subscribed(P);
        if (!s || !nl_push(P, &args, s)) return NULL;
    }
    if (!expect(P, JT_RBRACKET)) return NULL;
    jnode *key;
    if (args.n == 1) {
        key = args.v[0];
    } else {
        if (!(key = mk(P, JN_TUPLE, t->line))) return NULL;
        key->kids = args.v; key->nkids = args.n;
        if (!fin(P, key)) return NULL;
    }
    jnode *g = mk(P, JN_GETITEM, t->line);
    if (!g) return NULL;
    g->a = node; g->b = key;
    return fin(P, g);
}

static jnode *parse_postfix(parser *P, jnode *node) {
    while (node) {
        uint8_t ty = CUR(P)->type;
        if (ty == JT_DOT || ty == JT_LBRACKET) node = parse_subscript(P, node);
        else if (ty == JT_LPAREN) node = parse_call(P, node);
        else break;
    }
    return node;
}

static jnode *parse_filter_expr(parser *P, jnode *node) {
    while (node) {
        uint8_t ty = CUR(P)->type;
        if (ty == JT_PIPE) node = parse_filter(P, node, false);
        else if (is_name(CUR(P), "is")) node = parse_test(P, node);
        else if (ty == JT_LPAREN) node = parse_call(P, node);
        else break;
    }
    return node;
}

static jnode *parse_list_or_dict(parser *P, bool dict) {
    jtok *open = CUR(P);
    advance(P);
    uint8_t close = dict ? JT_RBRACE : JT_RBRACKET;
    nlist items = { 0 };
    while (CUR(P)->type != close) {
        if (items.n && !expect(P, JT_COMMA)) return NULL;
        if (CUR(P)->type == close) break;
        jnode *k = parse_expression(P, true);
        if (!k || !nl_push(P, &items, k)) return NULL;
        if (dict) {
            if (!expect(P, JT_COLON)) return NULL;
            jnode *v = parse_expression(P, true);
            if (!v || !nl_push(P, &items, v)) return NULL;
        }
    }
    if (!expect(P, close)) return NULL;
    jnode *n = mk(P, dict ? JN_DICT : JN_LIST, open->line);
    if (!n) return NULL;
    n->kids = items.v; n->nkids = items.n;
    return fin(P, n);
}

static jnode *parse_primary(parser *P) {
    if (!enter(P)) return NULL;
    jtok *t = CUR(P);
    jnode *n = NULL;
    if (t->type == JT_NAME) {
        advance(P);
        if (is_name(t, "true") || is_name(t, "True") || is_name(t, "false") || is_name(t, "False")) {
            if ((n = mk(P, JN_CONST, t->line))) n->val = jv_bool(t->s[0] == 't' || t->s[0] == 'T');
        } else if (is_name(t, "none") || is_name(t, "None")) {
            if ((n = mk(P, JN_CONST, t->line))) n->val = jv_none();
        } else if ((n = mk(P, JN_NAME, t->line))) {
            if (!(n->name = name_dup(P, t))) n = NULL;
        }
    } else if (t->type == JT_STRING) {
        size_t total = 0, j = P->i;
        while (P->t[j].type == JT_STRING) total += P->t[j++].n;
        char *buf = ja_alloc(P->a, total + 1);
        if (!buf) { P->depth--; return oom(P); }
        size_t o = 0;
        while (CUR(P)->type == JT_STRING) {
            memcpy(buf + o, CUR(P)->s, CUR(P)->n);
            o += CUR(P)->n;
            advance(P);
        }
        if ((n = mk(P, JN_CONST, t->line))) {
            jstr *s = ja_jstr(P->a, buf, o);
            if (!s) n = oom(P);
            else { n->val.type = JV_STR; n->val.u.s = s; }
        }
    } else if (t->type == JT_INT || t->type == JT_FLOAT) {
        advance(P);
        if ((n = mk(P, JN_CONST, t->line))) n->val = t->type == JT_INT ? jv_int(t->i) : jv_float(t->f);
    } else if (t->type == JT_LPAREN) {
        advance(P);
        n = parse_tuple(P, false, true, NULL, true);
        if (n && !expect(P, JT_RPAREN)) n = NULL;
    } else if (t->type == JT_LBRACKET || t->type == JT_LBRACE) {
        n = parse_list_or_dict(P, t->type == JT_LBRACE);
    } else {
        char b[80];
        n = pfail(P, t->line, "unexpected '%s'", describe(t, b, sizeof b));
    }
    P->depth--;
    return fin(P, n);
}

static jnode *parse_tuple(parser *P, bool simplified, bool with_condexpr, const char *extra_end,
                          bool explicit_parens) {
    int line = CUR(P)->line;
    nlist args = { 0 };
    bool is_tuple = false;
    for (;;) {
        if (args.n && !expect(P, JT_COMMA)) return NULL;
        uint8_t ty = CUR(P)->type;
        if (ty == JT_VAR_END || ty == JT_BLOCK_END || ty == JT_RPAREN ||
            (extra_end && is_name(CUR(P), extra_end)))
            break;
        jnode *e = simplified ? parse_primary(P) : parse_expression(P, with_condexpr);
        if (!e || !nl_push(P, &args, e)) return NULL;
        if (CUR(P)->type == JT_COMMA) is_tuple = true;
        else break;
        line = CUR(P)->line;
    }
    if (!is_tuple) {
        if (args.n) return args.v[0];
        if (!explicit_parens) {
            char b[80];
            return pfail(P, CUR(P)->line, "Expected an expression, got '%s'", describe(CUR(P), b, sizeof b));
        }
    }
    jnode *n = mk(P, JN_TUPLE, line);
    if (!n) return NULL;
    n->kids = args.v; n->nkids = args.n;
    return fin(P, n);
}

/* ---- operators ---- */

static jnode *binop(parser *P, uint8_t kind, uint8_t op, jnode *l, jnode *r, int line) {
    if (!l || !r) return NULL;
    jnode *n = mk(P, kind, line);
    if (!n) return NULL;
    n->op = op; n->a = l; n->b = r;
    return fin(P, n);
}

static jnode *parse_unary(parser *P, bool with_filter) {
    if (!enter(P)) return NULL;
    jtok *t = CUR(P);
    jnode *n;
    if (t->type == JT_SUB || t->type == JT_ADD) {
        advance(P);
        jnode *x = parse_unary(P, false);
        n = x ? mk(P, t->type == JT_SUB ? JN_NEG : JN_POS, t->line) : NULL;
        if (n) { n->a = x; n = fin(P, n); }
    } else {
        n = parse_primary(P);
    }
    n = parse_postfix(P, n);
    if (with_filter) n = parse_filter_expr(P, n);
    P->depth--;
    return n;
}

static jnode *parse_pow(parser *P) {
    jnode *l = parse_unary(P, true);
    while (l && CUR(P)->type == JT_POW) {
        int line = CUR(P)->line;
        advance(P);
        l = binop(P, JN_BINOP, OP_POW, l, parse_unary(P, true), line);
    }
    return l;
}

static jnode *parse_math2(parser *P) {
    jnode *l = parse_pow(P);
    for (;;) {
        uint8_t ty = CUR(P)->type, op;
        if (ty == JT_MUL) op = OP_MUL;
        else if (ty == JT_DIV) op = OP_DIV;
        else if (ty == JT_FLOORDIV) op = OP_FLOORDIV;
        else if (ty == JT_MOD) op = OP_MOD;
        else break;
        if (!l) return NULL;
        int line = CUR(P)->line;
        advance(P);
        l = binop(P, JN_BINOP, op, l, parse_pow(P), line);
    }
    return l;
}

static jnode *parse_concat(parser *P) {
    int line = CUR(P)->line;
    jnode *first = parse_math2(P);
    if (!first || CUR(P)->type != JT_TILDE) return first;
    nlist args = { 0 };
    if (!nl_push(P, &args, first)) return NULL;
    while (CUR(P)->type == JT_TILDE) {
        advance(P);
        jnode *x = parse_math2(P);
        if (!x || !nl_push(P, &args, x)) return NULL;
    }
    jnode *n = mk(P, JN_CONCAT, line);
    if (!n) return NULL;
    n->kids = args.v; n->nkids = args.n;
    return fin(P, n);
}

static jnode *parse_math1(parser *P) {
    jnode *l = parse_concat(P);
    while (l && (CUR(P)->type == JT_ADD || CUR(P)->type == JT_SUB)) {
        uint8_t op = CUR(P)->type == JT_ADD ? OP_ADD : OP_SUB;
        int line = CUR(P)->line;
        advance(P);
        l = binop(P, JN_BINOP, op, l, parse_concat(P), line);
    }
    return l;
}

static jnode *parse_compare(parser *P) {
    int line = CUR(P)->line;
    jnode *first = parse_math1(P);
    if (!first) return NULL;
    nlist operands = { 0 };
    uint8_t ops[64];
    size_t nops = 0;
    for (;;) {
        uint8_t ty = CUR(P)->type, op;
        if (ty == JT_EQ) op = CMP_EQ;
        else if (ty == JT_NE) op = CMP_NE;
        else if (ty == JT_LT) op = CMP_LT;
        else if (ty == JT_LTEQ) op = CMP_LE;
        else if (ty == JT_GT) op = CMP_GT;
        else if (ty == JT_GTEQ) op = CMP_GE;
        else if (is_name(CUR(P), "in")) op = CMP_IN;
        else if (is_name(CUR(P), "not") && P->i + 1 < P->n && is_name(&P->t[P->i + 1], "in")) {
            op = CMP_NOTIN;
            advance(P);
        } else break;
        advance(P);
        if (nops == sizeof ops) return pfail(P, line, "comparison chain too long");
        jnode *x = parse_math1(P);
        if (!x || !nl_push(P, &operands, x)) return NULL;
        ops[nops++] = op;
    }
    if (!nops) return first;
    jnode *n = mk(P, JN_COMPARE, line);
    if (!n) return NULL;
    n->a = first; n->kids = operands.v; n->nkids = operands.n;
    if (!(n->ops = ja_alloc(P->a, nops))) return oom(P);
    memcpy(n->ops, ops, nops);
    return fin(P, n);
}

static jnode *parse_not(parser *P) {
    if (is_name(CUR(P), "not")) {
        int line = CUR(P)->line;
        advance(P);
        if (!enter(P)) return NULL;
        jnode *x = parse_not(P);
        P->depth--;
        if (!x) return NULL;
        jnode *n = mk(P, JN_NOT, line);
        if (!n) return NULL;
        n->a = x;
        return fin(P, n);
    }
    return parse_compare(P);
}

static jnode *parse_and(parser *P) {
    jnode *l = parse_not(P);
    while (l && is_name(CUR(P), "and")) {
        int line = CUR(P)->line;
        advance(P);
        l = binop(P, JN_AND, 0, l, parse_not(P), line);
    }
    return l;
}

static jnode *parse_or(parser *P) {
    jnode *l = parse_and(P);
    while (l && is_name(CUR(P), "or")) {
        int line = CUR(P)->line;
        advance(P);
        l = binop(P, JN_OR, 0, l, parse_and(P), line);
    }
    return l;
}

static jnode *parse_condexpr(parser *P) {
    int line = CUR(P)->line;
    jnode *e1 = parse_or(P);
    while (e1 && skip_name(P, "if")) {
        jnode *e2 = parse_or(P), *e3 = NULL;
        if (!e2) return NULL;
        if (skip_name(P, "else")) {
            if (!enter(P)) return NULL;
            e3 = parse_condexpr(P);
            P->depth--;
            if (!e3) return NULL;
        }
        jnode *n = mk(P, JN_CONDEXPR, line);
        if (!n) return NULL;
        n->a = e2; n->b = e1; n->c = e3;
        e1 = fin(P, n);
        line = CUR(P)->line;
    }
    return e1;
}

static jnode *parse_expression(parser *P, bool with_condexpr) {
    if (!enter(P)) return NULL;
    jnode *n = with_condexpr ? parse_condexpr(P) : parse_or(P);
    P->depth--;
    return n;
}

/* ---- statements ---- */

static bool can_assign(const jnode *n) {
    if (n->kind == JN_NAME) return true;
    if (n->kind != JN_TUPLE) return false;
    for (size_t i = 0; i < n->nkids; i++) if (!can_assign(n->kids[i])) return false;
    return true;
}

static jnode *parse_assign_target(parser *P, bool name_only, const char *extra_end, bool with_ns) {
    jtok *t = CUR(P);
    if (with_ns && t->type == JT_NAME && P->i + 1 < P->n && P->t[P->i + 1].type == JT_DOT) {
        advance(P); advance(P);
        jtok *attr = expect(P, JT_NAME);
        if (!attr) return NULL;
        jnode *ns = mk(P, JN_NAME, t->line), *r = mk(P, JN_NSREF, t->line);
        if (!ns || !r) return NULL;
        if (!(ns->name = name_dup(P, t)) || !(r->name = name_dup(P, attr))) return NULL;
        r->a = ns;
        return r;
    }
    jnode *target;
    if (name_only) {
        jtok *nt = expect(P, JT_NAME);
        if (!nt) return NULL;
        if (!(target = mk(P, JN_NAME, nt->line))) return NULL;
        if (!(target->name = name_dup(P, nt))) return NULL;
    } else {
        target = parse_tuple(P, true, true, extra_end, false);
        if (!target) return NULL;
    }
    if (!can_assign(target)) {
        const char *what = target->kind == JN_CONST ? "const" : target->kind == JN_LIST ? "list" :
                           target->kind == JN_DICT ? "dict" : "expression";
        return pfail(P, target->line, "can't assign to '%s'", what);
    }
    return target;
}

static const char *const END_FOR[] = { "endfor", "else", NULL };
static const char *const END_FOR2[] = { "endfor", NULL };
static const char *const END_IF[] = { "elif", "else", "endif", NULL };
static const char *const END_IF2[] = { "endif", NULL };

static jnode *parse_statements(parser *P, const char *const *end, bool drop) {
    skip(P, JT_COLON);
    if (!expect(P, JT_BLOCK_END)) return NULL;
    jnode *body = subparse(P, end);
    if (!body) return NULL;
    if (CUR(P)->type == JT_EOF) {
        char want[200] = "";
        for (size_t i = 0; end[i]; i++) {
            size_t l = strlen(want);
            snprintf(want + l, sizeof want - l, "%s'%s'", i ? " or " : "", end[i]);
        }
        return pfail(P, CUR(P)->line, "Unexpected end of template. Jinja was looking for the "
                     "following tags: %s.", want);
    }
    if (drop) advance(P);
    return body;
}

static bool end_is(parser *P, const char *name) { return is_name(CUR(P), name); }

static jnode *parse_for(parser *P, int line) {
    jnode *n = mk(P, JN_FOR, line);
    if (!n) return NULL;
    if (!(n->a = parse_assign_target(P, false, "in", false))) return NULL;
    if (!skip_name(P, "in")) {
        char b[80];
        return pfail(P, CUR(P)->line, "expected token 'in', got '%s'", describe(CUR(P), b, sizeof b));
    }
    if (!(n->b = parse_tuple(P, false, false, "recursive", false))) return NULL;
    if (skip_name(P, "if") && !(n->e = parse_expression(P, true))) return NULL;
    if (skip_name(P, "recursive")) n->flags |= JNF_RECURSIVE;
    P->loop_depth++;
    n->c = parse_statements(P, END_FOR, false);
    P->loop_depth--;
    if (!n->c) return NULL;
    bool is_else = end_is(P, "else");
    advance(P);
    if (is_else && !(n->d = parse_statements(P, END_FOR2, true))) return NULL;
    return n;
}

static jnode *parse_if(parser *P, int line) {
    jnode *head = NULL, *cur = NULL;
    for (;;) {
        jnode *n = mk(P, JN_IF, line);
        if (!n) return NULL;
        if (!(n->a = parse_tuple(P, false, false, NULL, false))) return NULL;
        if (!(n->b = parse_statements(P, END_IF, false))) return NULL;
        if (cur) cur->c = n; else head = n;
        cur = n;
        jtok *t = CUR(P);
        advance(P);
        if (is_name(t, "elif")) { line = CUR(P)->line; continue; }
        if (is_name(t, "else") && !(cur->c = parse_statements(P, END_IF2, true))) return NULL;
        return head;
    }
}

static bool parse_signature(parser *P, jnode *n) {
    if (!expect(P, JT_LPAREN)) return false;
    nlist defs = { 0 };
    const char **names = NULL;
    size_t cap = 0, cnt = 0;
    bool have_default = false;
    while (CUR(P)->type != JT_RPAREN) {
        if (cnt && !expect(P, JT_COMMA)) return false;
        jnode *arg = parse_assign_target(P, true, NULL, false);
        if (!arg) return false;
        jnode *def = NULL;
        if (skip(P, JT_ASSIGN)) {
            if (!(def = parse_expression(P, true))) return false;
            have_default = true;
        } else if (have_default) {
            pfail(P, arg->line, "non-default argument follows default argument");
            return false;
        }
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 4;
            const char **nn = ja_alloc(P->a, nc * sizeof(char *));
            if (!nn) { oom(P); return false; }
            if (cnt) memcpy(nn, names, cnt * sizeof(char *));
            names = nn; cap = nc;
        }
        names[cnt++] = arg->name;
        if (!nl_push(P, &defs, def)) return false;
    }
    if (!expect(P, JT_RPAREN)) return false;
    n->pnames = names; n->pdefs = defs.v; n->nparams = cnt;
    return true;
}

static jnode *closure_body(parser *P, jnode *n, const char *endname) {
    const char *const end[] = { endname, NULL };
    int saved = P->loop_depth;
    P->loop_depth = 0;
    n->b = parse_statements(P, end, true);
    P->loop_depth = saved;
    if (!n->b) return NULL;
    jinja_scan_names(n->b, &n->flags);
    return n;
}

static jnode *parse_statement(parser *P) {
    jtok *t = CUR(P);
    if (t->type != JT_NAME) return pfail(P, t->line, "tag name expected");
    if (!enter(P)) return NULL;
    int line = t->line;
    advance(P);
    jnode *n = NULL;
    if (is_name(t, "for")) {
        n = parse_for(P, line);
    } else if (is_name(t, "if")) {
        n = parse_if(P, line);
    } else if (is_name(t, "set")) {
        jnode *target = parse_assign_target(P, false, NULL, true);
        if (!target) { P->depth--; return NULL; }
        if (skip(P, JT_ASSIGN)) {
            if ((n = mk(P, JN_SET, line))) {
                n->a = target;
                if (!(n->b = parse_tuple(P, false, true, NULL, false))) n = NULL;
            }
        } else if ((n = mk(P, JN_SETBLOCK, line))) {
            static const char *const end[] = { "endset", NULL };
            n->a = target;
            if (CUR(P)->type == JT_PIPE && !(n->c = parse_filter(P, NULL, false))) n = NULL;
            else if (!(n->b = parse_statements(P, end, true))) n = NULL;
        }
    } else if (is_name(t, "macro")) {
        if ((n = mk(P, JN_MACRO, line))) {
            jnode *name = parse_assign_target(P, true, NULL, false);
            if (!name || !parse_signature(P, n)) n = NULL;
            else { n->name = name->name; n = closure_body(P, n, "endmacro"); }
        }
    } else if (is_name(t, "call")) {
        if ((n = mk(P, JN_CALLBLOCK, line))) {
            if (CUR(P)->type == JT_LPAREN && !parse_signature(P, n)) n = NULL;
            else if (!(n->a = parse_expression(P, true))) n = NULL;
            else if (n->a->kind != JN_CALL) n = pfail(P, line, "expected call");
            else n = closure_body(P, n, "endcall");
        }
    } else if (is_name(t, "filter")) {
        static const char *const end[] = { "endfilter", NULL };
        if ((n = mk(P, JN_FILTERBLOCK, line))) {
            if (!(n->a = parse_filter(P, NULL, true)) || !(n->b = parse_statements(P, end, true))) n = NULL;
        }
    } else if (is_name(t, "with")) {
        static const char *const end[] = { "endwith", NULL };
        nlist targets = { 0 }, values = { 0 };
        if ((n = mk(P, JN_WITH, line)) && (n->args = ja_alloc(P->a, sizeof(jargs)))) {
            while (n && CUR(P)->type != JT_BLOCK_END) {
                if (targets.n && !expect(P, JT_COMMA)) { n = NULL; break; }
                jnode *tg = parse_assign_target(P, false, NULL, false);
                if (!tg || !expect(P, JT_ASSIGN) || !nl_push(P, &targets, tg)) { n = NULL; break; }
                jnode *v = parse_expression(P, true);
                if (!v || !nl_push(P, &values, v)) n = NULL;
            }
            if (n) {
                n->kids = targets.v; n->nkids = targets.n;
                n->args->pos = values.v; n->args->npos = values.n;
                if (!(n->b = parse_statements(P, end, true))) n = NULL;
            }
        } else if (n) {
            n = oom(P);
        }
    } else if (is_name(t, "generation")) {
        if ((n = mk(P, JN_SCOPE, line))) n = closure_body(P, n, "endgeneration");
    } else if (is_name(t, "break") || is_name(t, "continue")) {
        if (P->loop_depth == 0)
            n = pfail(P, line, "'%s' outside loop", is_name(t, "break") ? "break" : "continue");
        else
            n = mk(P, is_name(t, "break") ? JN_BREAK : JN_CONTINUE, line);
    } else if (is_name(t, "print")) {
        nlist outs = { 0 };
        if ((n = mk(P, JN_BODY, line))) {
            while (n && CUR(P)->type != JT_BLOCK_END) {
                if (outs.n && !expect(P, JT_COMMA)) { n = NULL; break; }
                jnode *o = mk(P, JN_OUTPUT, CUR(P)->line);
                if (!o || !(o->a = parse_expression(P, true)) || !nl_push(P, &outs, o)) n = NULL;
            }
            if (n) { n->kids = outs.v; n->nkids = outs.n; }
        }
    } else {
        static const char *const unsupported[] = {
            "block", "extends", "include", "import", "from", "autoescape", NULL };
        char b[80];
        describe(t, b, sizeof b);
        for (size_t i = 0; unsupported[i]; i++)
            if (is_name(t, unsupported[i])) { P->depth--; return pfail(P, line, "tag '%s' is not supported", b); }
        n = pfail(P, line, "Encountered unknown tag '%s'.", b);
    }
    P->depth--;
    return n;
}

static jnode *subparse(parser *P, const char *const *end_names) {
    jnode *body = mk(P, JN_BODY, CUR(P)->line);
    if (!body) return NULL;
    nlist items = { 0 };
    for (;;) {
        jtok *t = CUR(P);
        if (t->type == JT_EOF) break;
        if (t->type == JT_DATA) {
            jnode *n = mk(P, JN_TEXT, t->line);
            if (!n) return NULL;
            jstr *s = ja_jstr(P->a, t->s, t->n);
            if (!s) return oom(P);
            n->val.type = JV_STR; n->val.u.s = s;
            if (!nl_push(P, &items, n)) return NULL;
            advance(P);
        } else if (t->type == JT_VAR_BEGIN) {
            advance(P);
            jnode *n = mk(P, JN_OUTPUT, t->line);
            if (!n || !(n->a = parse_tuple(P, false, true, NULL, false))) return NULL;
            if (!expect(P, JT_VAR_END) || !nl_push(P, &items, n)) return NULL;
        } else if (t->type == JT_BLOCK_BEGIN) {
            advance(P);
            if (end_names) {
                for (size_t i = 0; end_names[i]; i++)
                    if (is_name(CUR(P), end_names[i])) goto done;
            }
            jnode *n = parse_statement(P);
            if (!n || !nl_push(P, &items, n)) return NULL;
            if (!expect(P, JT_BLOCK_END)) return NULL;
        } else {
            char b[80];
            return pfail(P, t->line, "unexpected '%s'", describe(t, b, sizeof b));
        }
    }
done:
    body->kids = items.v; body->nkids = items.n;
    return body;
}

jinja_template *jinja_parse(const char *src, size_t len, colloq_err *err) {
    if (!src && len) { colloq_seterr(err, COLLOQ_ERR_ARG, "no template source"); return NULL; }
    jinja_template *t = colloq_calloc(1, sizeof *t);
    if (!t) { colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory"); return NULL; }
    parser P = { 0 };
    P.a = &t->arena; P.err = err;
    P.stack_base = (uintptr_t)__builtin_frame_address(0);
    if (jlex(src ? src : "", len, &t->arena, &P.t, &P.n, err) != 0) { jinja_template_free(t); return NULL; }
    t->root = subparse(&P, NULL);
    if (t->root && CUR(&P)->type != JT_EOF && !P.failed) {
        char b[80];
        pfail(&P, CUR(&P)->line, "unexpected '%s'", describe(CUR(&P), b, sizeof b));
    }
    const jnode *bad = t->root && !P.failed ? jinja_check_names(t->root, false) : NULL;
    if (bad) pfail(&P, bad->line, "No %s named '%s'.", bad->kind == JN_FILTER ? "filter" : "test", bad->name);
    if (t->root && !P.failed && jinja_analyze_symbols(t) < 0) oom(&P);
    if (P.failed || !t->root) {
        if (!P.failed) colloq_seterr(err, COLLOQ_ERR_FORMAT, "parse error");
        jinja_template_free(t);
        return NULL;
    }
    return t;
}

void jinja_template_free(jinja_template *t) {
    if (!t) return;
    ja_free(&t->arena);
    colloq_free(t);
}
