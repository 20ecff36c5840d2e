/*
 * jinja_symbols.c - Jinja2's compile-time name analysis, reproduced so that
 * scoping matches: in each frame (the template, a loop body, a macro, a call,
 * filter, with or set block) a name assigned before any use starts out missing,
 * hiding a value of the same name outside (the render context included) until
 * the assignment runs.  Records those names on the frame's body node; the
 * renderer binds them as missing when it opens the scope.  Also the other
 * post-parse passes: which macros use caller/varargs/kwargs, unknown filter names.
 */
#include "jinja_internal.h"

#include <string.h>

enum { LOAD_PARAM, LOAD_RESOLVE, LOAD_ALIAS, LOAD_UNDEFINED };

typedef struct syms syms;
struct syms {
    syms *parent;
    const char **refs; uint8_t *loads; size_t nrefs, crefs;   /* name -> how it is loaded */
    const char **stores; size_t nstores, cstores;
    bool oom;
};

static long find_local(const syms *s, const char *name) {
    for (size_t i = 0; i < s->nrefs; i++) if (!strcmp(s->refs[i], name)) return (long)i;
    return -1;
}

static bool find_ref(const syms *s, const char *name) {
    for (; s; s = s->parent) if (find_local(s, name) >= 0) return true;
    return false;
}

static void define_ref(syms *s, const char *name, uint8_t load) {
    long i = find_local(s, name);
    if (i >= 0) { s->loads[i] = load; return; }
    if (s->nrefs == s->crefs) {
        size_t nc = s->crefs ? s->crefs * 2 : 16;
        const char **nr = colloq_realloc(s->refs, nc * sizeof(char *));
        if (!nr) { s->oom = true; return; }
        s->refs = nr;
        uint8_t *nl = colloq_realloc(s->loads, nc);
        if (!nl) { s->oom = true; return; }
        s->loads = nl;
        s->crefs = nc;
    }
    s->refs[s->nrefs] = name;
    s->loads[s->nrefs++] = load;
}

static bool has_store(const syms *s, const char *name) {
    for (size_t i = 0; i < s->nstores; i++) if (!strcmp(s->stores[i], name)) return true;
    return false;
}

static void add_store(syms *s, const char *name) {
    if (has_store(s, name)) return;
    if (s->nstores == s->cstores) {
        size_t nc = s->cstores ? s->cstores * 2 : 16;
        const char **ns = colloq_realloc(s->stores, nc * sizeof(char *));
        if (!ns) { s->oom = true; return; }
        s->stores = ns; s->cstores = nc;
    }
    s->stores[s->nstores++] = name;
}

static void sym_store(syms *s, const char *name) {
    add_store(s, name);
    if (find_local(s, name) >= 0) return;
    define_ref(s, name, s->parent && find_ref(s->parent, name) ? LOAD_ALIAS : LOAD_UNDEFINED);
}

static void sym_param(syms *s, const char *name) { add_store(s, name); define_ref(s, name, LOAD_PARAM); }

static void sym_load(syms *s, const char *name) {
    if (!find_ref(s, name)) define_ref(s, name, LOAD_RESOLVE);
}

static void sym_free(syms *s) {
    colloq_free(s->refs); colloq_free(s->loads); colloq_free(s->stores);
    memset(s, 0, sizeof *s);
}

static bool sym_copy(syms *dst, const syms *src) {
    memset(dst, 0, sizeof *dst);
    dst->parent = src->parent;
    for (size_t i = 0; i < src->nrefs; i++) define_ref(dst, src->refs[i], src->loads[i]);
    for (size_t i = 0; i < src->nstores; i++) add_store(dst, src->stores[i]);
    return !dst->oom;
}

/* Merge if-branches: a name assigned in some branches only is looked up outside. */
static void branch_update(syms *s, syms *br, size_t nbr) {
    const char *partial[256];
    size_t np = 0;
    for (size_t b = 0; b < nbr; b++)
        for (size_t i = 0; i < br[b].nstores; i++) {
            const char *t = br[b].stores[i];
            if (has_store(s, t)) continue;
            size_t cnt = 0;
            for (size_t k = 0; k < nbr; k++) cnt += has_store(&br[k], t);
            bool seen = false;
            for (size_t k = 0; k < np; k++) if (!strcmp(partial[k], t)) seen = true;
            if (cnt < nbr && !seen && np < sizeof partial / sizeof partial[0]) partial[np++] = t;
        }
    for (size_t b = 0; b < nbr; b++) {
        for (size_t i = 0; i < br[b].nrefs; i++) define_ref(s, br[b].refs[i], br[b].loads[i]);
        for (size_t i = 0; i < br[b].nstores; i++) add_store(s, br[b].stores[i]);
    }
    for (size_t k = 0; k < np; k++)
        define_ref(s, partial[k], s->parent && find_ref(s->parent, partial[k]) ? LOAD_ALIAS : LOAD_RESOLVE);
}

static void visit(syms *s, const jnode *n);

static void visit_target(syms *s, const jnode *t, bool param) {
    if (!t) return;
    if (t->kind == JN_NAME) { if (param) sym_param(s, t->name); else sym_store(s, t->name); }
    else if (t->kind == JN_NSREF) sym_load(s, t->a->name);
    else for (size_t i = 0; i < t->nkids; i++) visit_target(s, t->kids[i], param);
}

static void visit_args(syms *s, const jargs *a) {
    if (!a) return;
    for (size_t i = 0; i < a->npos; i++) visit(s, a->pos[i]);
    for (size_t i = 0; i < a->nkw; i++) visit(s, a->kwv[i]);
    visit(s, a->dyn);
    visit(s, a->dynkw);
}

static void visit_body(syms *s, const jnode *body) {
    if (!body) return;
    if (body->kind != JN_BODY) { visit(s, body); return; }
    for (size_t i = 0; i < body->nkids; i++) visit(s, body->kids[i]);
}

/* If: test, then each branch on a copy (elif chains nest like Jinja2's If.elif_). */
static void visit_if(syms *s, const jnode *n) {
    visit(s, n->a);
    syms br[3];
    sym_copy(&br[0], s);
    visit_body(&br[0], n->b);
    sym_copy(&br[1], s);
    if (n->c && n->c->kind == JN_IF) {
        /* Jinja2 keeps each elif as an If without else; the final else is the head's */
        const jnode *c = n->c;
        while (c && c->kind == JN_IF) {
            visit(&br[1], c->a);
            syms inner[3];
            sym_copy(&inner[0], &br[1]);
            visit_body(&inner[0], c->b);
            sym_copy(&inner[1], &br[1]);
            sym_copy(&inner[2], &br[1]);
            branch_update(&br[1], inner, 3);
            for (int i = 0; i < 3; i++) { br[1].oom |= inner[i].oom; sym_free(&inner[i]); }
            c = c->c;
        }
        sym_copy(&br[2], s);
        if (c) visit_body(&br[2], c);
    } else {
        sym_copy(&br[2], s);
        if (n->c) visit_body(&br[2], n->c);
    }
    branch_update(s, br, 3);
    for (int i = 0; i < 3; i++) { s->oom |= br[i].oom; sym_free(&br[i]); }
}

static void visit(syms *s, const jnode *n) {
    if (!n) return;
    switch (n->kind) {
    case JN_NAME: sym_load(s, n->name); return;
    case JN_NSREF: sym_load(s, n->a->name); return;
    case JN_IF: visit_if(s, n); return;
    case JN_MACRO: sym_store(s, n->name); return;
    case JN_SET: visit(s, n->b); visit_target(s, n->a, false); return;
    case JN_FOR: visit(s, n->b); return;
    case JN_CALLBLOCK: visit(s, n->a); return;
    case JN_FILTERBLOCK: visit(s, n->a); return;
    case JN_WITH: if (n->args) for (size_t i = 0; i < n->args->npos; i++) visit(s, n->args->pos[i]); return;
    case JN_SETBLOCK: visit_target(s, n->a, false); return;
    case JN_SCOPE: case JN_TEXT: case JN_CONST: case JN_BREAK: case JN_CONTINUE: return;
    case JN_BODY: visit_body(s, n); return;
    default: break;
    }
    visit(s, n->a); visit(s, n->b); visit(s, n->c);
    for (size_t i = 0; i < n->nkids; i++) visit(s, n->kids[i]);
    visit_args(s, n->args);
}

static int analyze(jarena *a, jnode *owner, syms *s);

/* Record the frame's names that start missing, then analyse the frames nested in it. */
static int finish_frame(jarena *a, jnode *body, syms *s);

static int child_frames(jarena *a, const jnode *n, syms *s) {
    if (!n) return 0;
    switch (n->kind) {
    case JN_BODY:
        for (size_t i = 0; i < n->nkids; i++) if (child_frames(a, n->kids[i], s) < 0) return -1;
        return 0;
    case JN_IF:
        for (const jnode *c = n; c; c = c->c) {
            if (child_frames(a, c->b, s) < 0) return -1;
            if (c->c && c->c->kind != JN_IF) return child_frames(a, c->c, s);
        }
        return 0;
    case JN_FOR: case JN_MACRO: case JN_CALLBLOCK: case JN_FILTERBLOCK: case JN_WITH:
    case JN_SETBLOCK: case JN_SCOPE:
        return analyze(a, (jnode *)n, s);
    default:
        return 0;
    }
}

static int finish_frame(jarena *a, jnode *body, syms *s) {
    if (s->oom) return -1;
    size_t cnt = 0;
    for (size_t i = 0; i < s->nrefs; i++) cnt += s->loads[i] == LOAD_UNDEFINED;
    if (cnt && body) {
        body->masked = ja_alloc(a, cnt * sizeof(char *));
        if (!body->masked) return -1;
        for (size_t i = 0; i < s->nrefs; i++)
            if (s->loads[i] == LOAD_UNDEFINED) body->masked[body->nmasked++] = s->refs[i];
    }
    return child_frames(a, body, s);
}

static int analyze_body(jarena *a, jnode *body, syms *parent, const jnode *params_owner,
                        const jnode *target, const jnode *extra_first) {
    syms s = { 0 };
    s.parent = parent;
    if (params_owner) {
        for (size_t i = 0; i < params_owner->nparams; i++) sym_param(&s, params_owner->pnames[i]);
        for (size_t i = 0; i < params_owner->nparams; i++) visit(&s, params_owner->pdefs[i]);
    }
    if (target) visit_target(&s, target, true);
    if (extra_first) visit(&s, extra_first);
    visit_body(&s, body);
    int rc = finish_frame(a, body, &s);
    sym_free(&s);
    return rc;
}

static int analyze(jarena *a, jnode *n, syms *parent) {
    switch (n->kind) {
    case JN_FOR:
        if (analyze_body(a, n->c, parent, NULL, n->a, NULL) < 0) return -1;
        if (n->d && analyze_body(a, n->d, parent, NULL, NULL, NULL) < 0) return -1;
        return 0;
    case JN_MACRO: case JN_CALLBLOCK: case JN_SCOPE:
        return analyze_body(a, n->b, parent, n, NULL, NULL);
    case JN_FILTERBLOCK: case JN_SETBLOCK:
        return analyze_body(a, n->b, parent, NULL, NULL, NULL);
    case JN_WITH: {
        syms s = { 0 };
        s.parent = parent;
        for (size_t i = 0; i < n->nkids; i++) visit_target(&s, n->kids[i], true);
        visit_body(&s, n->b);
        int rc = finish_frame(a, n->b, &s);
        sym_free(&s);
        return rc;
    }
    default:
        return 0;
    }
}

/* Does the body load caller / varargs / kwargs? */
void jinja_scan_names(const jnode *n, uint8_t *flags) {
    if (!n) return;
    if (n->kind == JN_NAME) {
        if (!strcmp(n->name, "caller")) *flags |= JNF_CALLER;
        else if (!strcmp(n->name, "varargs")) *flags |= JNF_VARARGS;
        else if (!strcmp(n->name, "kwargs")) *flags |= JNF_KWARGS;
        return;
    }
    jinja_scan_names(n->a, flags); jinja_scan_names(n->b, flags); jinja_scan_names(n->c, flags);
    jinja_scan_names(n->d, flags); jinja_scan_names(n->e, flags);
    for (size_t i = 0; i < n->nkids; i++) jinja_scan_names(n->kids[i], flags);
    for (size_t i = 0; i < n->nparams; i++) jinja_scan_names(n->pdefs[i], flags);
    if (n->args) {
        for (size_t i = 0; i < n->args->npos; i++) jinja_scan_names(n->args->pos[i], flags);
        for (size_t i = 0; i < n->args->nkw; i++) jinja_scan_names(n->args->kwv[i], flags);
        jinja_scan_names(n->args->dyn, flags); jinja_scan_names(n->args->dynkw, flags);
    }
}

/* Unknown filters and tests are errors unless inside an if or a conditional expression,
 * where Jinja2 defers them to run time.  Returns the first offending node or NULL. */
const jnode *jinja_check_names(const jnode *n, bool soft) {
    if (!n) return NULL;
    if ((n->kind == JN_FILTER || n->kind == JN_TEST) && n->fid < 0 && !soft) return n;
    bool inner = soft;
    switch (n->kind) {
    case JN_IF: case JN_CONDEXPR: inner = true; break;
    case JN_MACRO: case JN_CALLBLOCK: case JN_FILTERBLOCK: case JN_WITH: case JN_SETBLOCK:
    case JN_SCOPE: inner = false; break;
    default: break;
    }
    const jnode *bad = NULL;
#define CHK(x, sft) do { if (!bad) bad = jinja_check_names((x), (sft)); } while (0)
    if (n->kind == JN_FOR) {
        CHK(n->a, soft); CHK(n->b, soft); CHK(n->d, soft); CHK(n->c, false); CHK(n->e, false);
        return bad;
    }
    CHK(n->a, n->kind == JN_CALLBLOCK ? soft : inner);
    CHK(n->b, inner); CHK(n->c, inner); CHK(n->d, inner); CHK(n->e, inner);
    for (size_t i = 0; i < n->nkids; i++) CHK(n->kids[i], inner);
    for (size_t i = 0; i < n->nparams; i++) CHK(n->pdefs[i], inner);
    if (n->args) {
        for (size_t i = 0; i < n->args->npos; i++) CHK(n->args->pos[i], inner);
        for (size_t i = 0; i < n->args->nkw; i++) CHK(n->args->kwv[i], inner);
        CHK(n->args->dyn, inner); CHK(n->args->dynkw, inner);
    }
#undef CHK
    return bad;
}

int jinja_analyze_symbols(jinja_template *t) {
    return analyze_body(&t->arena, t->root, NULL, NULL, NULL, NULL);
}
