/*
 * jinja_exec.c - statements and the render entry point: scopes with Jinja2's
 * rules (a for-loop iteration, macro call, with, filter or set block gets its own
 * scope; if does not), loops with the loop object, macros and call blocks,
 * namespaces, error and budget bookkeeping.  Expressions live in jinja_eval.c.
 */
#include "jinja_internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- errors and budgets ---- */

int jr_fail(jr *r, const char *fmt, ...) {
    if (!r->failed) {
        r->failed = true;
        r->err_line = r->line;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->msg, sizeof r->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int jr_fail_undef(jr *r, jv u) {
    if (u.u.s) return jr_fail(r, "%s", jv_sp(u));
    return jr_fail(r, "undefined value");
}

bool jr_ok(jr *r) {
    if (r->failed) return false;
    if (jv_tls.oom) { jr_fail(r, "out of memory"); r->oom = true; return false; }
    if (jv_tls.limit) { jr_fail(r, "size limit exceeded (output, a string or a list too large)"); return false; }
    return true;
}

/* One loop iteration, call or filter; data work (elements, compared items, string
 * bytes / 16) counts against the same budget. */
int jr_step(jr *r) {
    r->steps++;
    if (r->steps + jv_tls.work + jv_tls.bytes / 16 > r->max_steps)
        return jr_fail(r, "template exceeded its work budget (%llu steps)", (unsigned long long)r->max_steps);
    return 0;
}

/* ---- scopes ---- */

static int scope_set(jscope *s, const char *name, jv take);

/* A new scope for the frame whose body is `body`: names the frame assigns before
 * using start out missing (see jinja_symbols.c). */
static jscope *scope_new_for(jscope *parent, const jnode *body) {
    jscope *s = jmalloc(sizeof *s);
    if (!s) return NULL;
    memset(s, 0, sizeof *s);
    s->parent = parent;
    if (body)
        for (size_t i = 0; i < body->nmasked; i++) scope_set(s, body->masked[i], jv_missing());
    return s;
}

static jscope *scope_new(jscope *parent) { return scope_new_for(parent, NULL); }

static void scope_free(jscope *s) {
    for (size_t i = 0; i < s->n; i++) jv_unref(s->vals[i]);
    colloq_free(s->names);
    colloq_free(s->vals);
    colloq_free(s);
}

/* Leave a scope: free it unless a macro, caller or recursive loop still refers to it. */
static void scope_end(jr *r, jscope *s) {
    if (!s) return;
    if (s->captured) { s->next = r->retained; r->retained = s; }
    else scope_free(s);
}

static void capture(jscope *s) {
    for (; s && !s->captured; s = s->parent) s->captured = true;
}

static int scope_set(jscope *s, const char *name, jv take) {
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name)) { jv_unref(s->vals[i]); s->vals[i] = take; return 0; }
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 8;
        const char **nn = jrealloc(s->names, nc * sizeof(char *));
        if (!nn) { jv_unref(take); return -1; }
        s->names = nn;
        jv *nv = jrealloc(s->vals, nc * sizeof(jv));
        if (!nv) { jv_unref(take); return -1; }
        s->vals = nv;
        s->cap = nc;
    }
    s->names[s->n] = name;
    s->vals[s->n++] = take;
    return 0;
}

bool je_lookup(jr *r, jscope *s, const char *name, jv *out) {
    for (; s; s = s->parent)
        for (size_t i = 0; i < s->n; i++)
            if (!strcmp(s->names[i], name)) {
                if (jv_is_missing(s->vals[i])) return false;   /* assigned later in its frame */
                *out = jv_ref(s->vals[i]);
                return true;
            }
    jv *v = jd_get_str(r->ctx.u.d, name, strlen(name));
    if (v) { *out = jv_ref(*v); return true; }
    int g = jm_global(name);
    if (g >= 0) { *out = jv_new_func(JF_GLOBAL, g, jv_none()); return true; }
    return false;
}

int je_write(jr *r, jbuf *out, jv v) {
    if (v.type == JV_STR) { jb_put(out, jv_sp(v), jv_sn(v)); return 0; }
    if (jv_tostr(out, v) < 0) return jr_fail(r, "value nested too deeply to print");
    return 0;
}

/* ---- assignment ---- */

static int assign(jr *r, jscope *s, const jnode *t, jv v) {
    if (t->kind == JN_NAME) return scope_set(s, t->name, jv_ref(v));
    if (t->kind == JN_NSREF) {
        jv ns;
        if (!je_lookup(r, s, t->a->name, &ns)) ns = jv_undef();
        if (ns.type != JV_NS) {
            jv_unref(ns);
            return jr_fail(r, "cannot assign attribute on non-namespace object");
        }
        jv key = jv_cstr(t->name);
        jd_set(ns.u.d, key, jv_ref(v));
        jv_unref(key);
        jv_unref(ns);
        return 0;
    }
    jv items;
    if (v.type == JV_UNDEF) return jr_fail_undef(r, v);
    if (v.type != JV_LIST && v.type != JV_STR && v.type != JV_DICT)
        return jr_fail(r, "cannot unpack non-iterable %s object", jv_typename(v));
    if (je_iter(r, v, &items) < 0) return -1;
    size_t want = t->nkids, got = jl_len(items);
    int rc = 0;
    if (got < want) rc = jr_fail(r, "not enough values to unpack (expected %zu, got %zu)", want, got);
    else if (got > want) rc = jr_fail(r, "too many values to unpack (expected %zu)", want);
    for (size_t i = 0; i < want && rc == 0; i++) rc = assign(r, s, t->kids[i], jl_at(items, i));
    jv_unref(items);
    return rc;
}

/* ---- loops ---- */

int je_loop_fill(jr *r, jloop *lp, size_t want) {
    while (!lp->all && jl_len(lp->items) < want) {
        if (lp->src_pos >= jl_len(lp->src)) { lp->all = true; break; }
        jv item = jl_at(lp->src, lp->src_pos++);
        if (jr_step(r) < 0) return -1;
        jscope *tmp = scope_new(lp->scope);
        jv c = jv_none();
        int rc = tmp ? assign(r, tmp, lp->node->a, item) : -1;
        if (rc == 0) rc = je_eval(r, tmp, lp->node->e, &c);
        scope_end(r, tmp);
        if (rc < 0 || !jr_ok(r)) { jv_unref(c); return -1; }
        if (jv_truthy(c)) jl_push(lp->items, jv_ref(item));
        jv_unref(c);
    }
    return 0;
}

static int run_loop(jr *r, jscope *s, const jnode *n, jv items, int depth0, jbuf *out) {
    jloop *lp = jmalloc(sizeof *lp);
    if (!lp) return EX_ERR;
    memset(lp, 0, sizeof *lp);
    lp->h.rc = 1; lp->h.type = JV_LOOP;
    lp->depth0 = depth0;
    lp->last = jv_none();
    lp->node = n;
    lp->scope = s;
    if (n->e) {
        /* the loop filter runs lazily, interleaved with the body as in jinja2 */
        lp->src = jv_ref(items);
        lp->items = jv_list(JL_LIST, 0);
        capture(s);
    } else {
        lp->src = jv_none();
        lp->items = jv_ref(items);
        lp->all = true;
    }
    if (n->flags & JNF_RECURSIVE) capture(s);
    jv loopv = { .type = JV_LOOP };
    loopv.u.lp = lp;
    jl_push(r->loops, jv_ref(loopv));
    int rc = EX_OK;
    /* jinja2 runs the else block unless some iteration reached the end of the body:
     * a break or continue before that leaves it pending */
    bool completed = false;
    for (size_t i = 0;; i++) {
        if (je_loop_fill(r, lp, i + 1) < 0) { rc = EX_ERR; break; }
        if (i >= jl_len(lp->items)) break;
        if (jr_step(r) < 0) { rc = EX_ERR; break; }
        jscope *sc = scope_new_for(s, n->c);
        if (!sc) { rc = EX_ERR; break; }
        lp->i = i;
        scope_set(sc, "loop", jv_ref(loopv));
        if (assign(r, sc, n->a, jl_at(lp->items, i)) < 0) { scope_end(r, sc); rc = EX_ERR; break; }
        rc = je_exec(r, sc, n->c, out);
        scope_end(r, sc);
        if (rc == EX_OK) completed = true;
        if (rc == EX_BREAK) { rc = EX_OK; break; }
        if (rc == EX_CONTINUE) rc = EX_OK;
        if (rc < 0) break;
    }
    if (rc == EX_OK && !completed && n->d) {
        jscope *sc = scope_new_for(s, n->d);
        rc = sc ? je_exec(r, sc, n->d, out) : EX_ERR;
        scope_end(r, sc);
    }
    jv_unref(lp->last);
    lp->last = jv_none();
    lp->have_last = false;
    jv_unref(loopv);
    return rc;
}

int je_loop_call(jr *r, jloop *lp, jcall *c, jv *out) {
    if (!(lp->node->flags & JNF_RECURSIVE))
        return jr_fail(r, "The loop must have the 'recursive' marker to be called recursively.");
    if (c->npos != 1 || c->nkw) return jr_fail(r, "loop() takes exactly one argument");
    if (r->macro_depth >= JINJA_MAX_MACRO_DEPTH) return jr_fail(r, "maximum recursion depth exceeded");
    jv items;
    if (je_iter(r, c->pos[0], &items) < 0) return -1;
    jbuf b = { 0 };
    r->macro_depth++;
    int rc = run_loop(r, lp->scope, lp->node, items, lp->depth0 + 1, &b);
    r->macro_depth--;
    jv_unref(items);
    if (rc < 0) { jb_free(&b); return -1; }
    *out = jb_take_str(&b);
    return 0;
}

/* ---- macros ---- */

int je_call_macro(jr *r, jfunc *f, jcall *c, jv *out) {
    const jnode *m = f->node;
    const char *mname = f->kind == JF_MACRO ? m->name : "caller";
    if (r->macro_depth >= JINJA_MAX_MACRO_DEPTH) return jr_fail(r, "maximum recursion depth exceeded");
    if (jr_step(r) < 0) return -1;
    size_t np = m->nparams, npos = c->npos < np ? c->npos : np;
    jscope *sc = scope_new_for(f->scope, m->b);
    bool *used = jmalloc((c->nkw ? c->nkw : 1) * sizeof(bool));
    jv *vals = jmalloc((np ? np : 1) * sizeof(jv));
    int rc = 0;
    if (!sc || !used || !vals) { rc = -1; goto done; }
    memset(used, 0, (c->nkw ? c->nkw : 1) * sizeof(bool));
    bool found_caller = false;
    for (size_t i = 0; i < np; i++) {
        if (i < npos) { vals[i] = c->pos[i]; if (!strcmp(m->pnames[i], "caller")) found_caller = true; continue; }
        vals[i] = jv_missing();
        for (size_t k = 0; k < c->nkw; k++)
            if (!used[k] && jv_str_eq(c->kwn[k], m->pnames[i])) { vals[i] = c->kwv[k]; used[k] = true; break; }
        if (!strcmp(m->pnames[i], "caller")) found_caller = true;
    }
    for (size_t i = 0; i < np; i++) scope_set(sc, m->pnames[i], jv_ref(vals[i]));
    if ((m->flags & JNF_CALLER) && !found_caller) {
        jv cv = jv_none();
        bool have = false;
        for (size_t k = 0; k < c->nkw; k++)
            if (!used[k] && jv_str_eq(c->kwn[k], "caller")) { cv = jv_ref(c->kwv[k]); used[k] = have = true; break; }
        if (!have) cv = jv_undef_msg("No caller defined");
        scope_set(sc, "caller", cv);
    }
    if (m->flags & JNF_KWARGS) {
        jv d = jv_dict();
        for (size_t k = 0; k < c->nkw; k++) if (!used[k]) jd_set(d.u.d, c->kwn[k], jv_ref(c->kwv[k]));
        scope_set(sc, "kwargs", d);
    } else {
        for (size_t k = 0; k < c->nkw; k++) {
            if (used[k]) continue;
            if (jv_str_eq(c->kwn[k], "caller"))
                rc = jr_fail(r, "macro '%s' was invoked with two values for the special caller argument. "
                             "This is most likely a bug.", mname);
            else
                rc = jr_fail(r, "macro '%s' takes no keyword argument '%s'", mname, jv_sp(c->kwn[k]));
            goto done;
        }
    }
    if (m->flags & JNF_VARARGS) {
        jv t = jv_list(JL_TUPLE, 0);
        for (size_t i = np; i < c->npos; i++) jl_push(t, jv_ref(c->pos[i]));
        scope_set(sc, "varargs", t);
    } else if (c->npos > np) {
        rc = jr_fail(r, "macro '%s' takes not more than %zu argument(s)", mname, np);
        goto done;
    }
    for (size_t i = 0; i < np; i++) {
        if (!jv_is_missing(vals[i])) continue;
        jv v;
        if (m->pdefs[i]) { if ((rc = je_eval(r, sc, m->pdefs[i], &v)) < 0) goto done; }
        else v = jv_undef_msg("parameter '%s' was not provided", m->pnames[i]);
        scope_set(sc, m->pnames[i], v);
    }
    if (!jr_ok(r)) { rc = -1; goto done; }
    jbuf b = { 0 };
    r->macro_depth++;
    int ex = je_exec(r, sc, m->b, &b);
    r->macro_depth--;
    if (ex < 0) { jb_free(&b); rc = -1; goto done; }
    *out = jb_take_str(&b);
done:
    colloq_free(used);
    colloq_free(vals);
    scope_end(r, sc);
    return rc < 0 || !jr_ok(r) ? -1 : 0;
}

static int exec_callblock(jr *r, jscope *s, const jnode *n, jbuf *out) {
    const jnode *call = n->a;
    jv fn;
    if (je_eval(r, s, call->a, &fn) < 0) return EX_ERR;
    jcall c;
    int rc = je_eval_args(r, s, call->args, &c);
    if (rc == 0) {
        capture(s);
        jv caller = jv_new_func(JF_CALLER, 0, jv_none());
        if (caller.type == JV_FUNC) { caller.u.fn->node = n; caller.u.fn->scope = s; }
        jv name = jv_cstr("caller");
        rc = jcall_push_kw(r, &c, name, caller);
        jv_unref(name);
    }
    jv res = jv_none();
    if (rc == 0) { r->line = n->line; rc = je_call(r, fn, &c, &res); }
    jcall_free(&c);
    jv_unref(fn);
    if (rc == 0) rc = je_write(r, out, res);
    jv_unref(res);
    return rc < 0 ? EX_ERR : EX_OK;
}

/* Render a body in its own scope into a string (set blocks, filter blocks). */
static int render_block(jr *r, jscope *s, const jnode *body, const jnode *filter, jv *out) {
    jscope *sc = scope_new_for(s, body);
    if (!sc) return EX_ERR;
    jbuf b = { 0 };
    int rc = je_exec(r, sc, body, &b);
    if (rc != EX_OK) { jb_free(&b); scope_end(r, sc); return rc; }
    jv v = jb_take_str(&b);
    if (filter) {
        jv f;
        if (je_filter_chain(r, sc, filter, v, &f) < 0) { jv_unref(v); scope_end(r, sc); return EX_ERR; }
        jv_unref(v);
        v = f;
    }
    scope_end(r, sc);
    *out = v;
    return EX_OK;
}

/* ---- statements ---- */

static int exec_node(jr *r, jscope *s, const jnode *n, jbuf *out) {
    switch (n->kind) {
    case JN_BODY:
        for (size_t i = 0; i < n->nkids; i++) {
            int rc = je_exec(r, s, n->kids[i], out);
            if (rc != EX_OK) return rc;
        }
        return EX_OK;
    case JN_TEXT:
        jb_put(out, jv_sp(n->val), jv_sn(n->val));
        return EX_OK;
    case JN_OUTPUT: {
        jv v;
        r->output_expr = n->a;
        int erc = je_eval(r, s, n->a, &v);
        r->output_expr = NULL;
        if (erc < 0) return EX_ERR;
        int rc = je_write(r, out, v);
        jv_unref(v);
        return rc < 0 ? EX_ERR : EX_OK;
    }
    case JN_IF:
        for (const jnode *c = n; c;) {
            jv t;
            if (je_eval(r, s, c->a, &t) < 0) return EX_ERR;
            bool yes = jv_truthy(t);
            jv_unref(t);
            if (yes) return je_exec(r, s, c->b, out);
            if (c->c && c->c->kind == JN_IF) { c = c->c; r->line = c->line; continue; }
            return c->c ? je_exec(r, s, c->c, out) : EX_OK;
        }
        return EX_OK;
    case JN_FOR: {
        jv it, items;
        if (je_eval(r, s, n->b, &it) < 0) return EX_ERR;
        r->line = n->line;
        int rc = je_iter(r, it, &items);
        jv_unref(it);
        if (rc < 0) return EX_ERR;
        rc = run_loop(r, s, n, items, 0, out);
        jv_unref(items);
        return rc;
    }
    case JN_SET: {
        jv v;
        if (je_eval(r, s, n->b, &v) < 0) return EX_ERR;
        r->line = n->line;
        int rc = assign(r, s, n->a, v);
        jv_unref(v);
        return rc < 0 ? EX_ERR : EX_OK;
    }
    case JN_SETBLOCK: {
        jv v;
        int rc = render_block(r, s, n->b, n->c, &v);
        if (rc != EX_OK) return rc;
        r->line = n->line;
        rc = assign(r, s, n->a, v);
        jv_unref(v);
        return rc < 0 ? EX_ERR : EX_OK;
    }
    case JN_FILTERBLOCK: {
        jv v;
        int rc = render_block(r, s, n->b, n->a, &v);
        if (rc != EX_OK) return rc;
        rc = je_write(r, out, v);
        jv_unref(v);
        return rc < 0 ? EX_ERR : EX_OK;
    }
    case JN_MACRO: {
        capture(s);
        jv f = jv_new_func(JF_MACRO, 0, jv_none());
        if (f.type == JV_FUNC) { f.u.fn->node = n; f.u.fn->scope = s; }
        return scope_set(s, n->name, f) < 0 ? EX_ERR : EX_OK;
    }
    case JN_CALLBLOCK: return exec_callblock(r, s, n, out);
    case JN_WITH: {
        jv *vals = jmalloc((n->nkids ? n->nkids : 1) * sizeof(jv));
        if (!vals) return EX_ERR;
        size_t got = 0;
        int rc = EX_OK;
        for (; got < n->nkids; got++)
            if (je_eval(r, s, n->args->pos[got], &vals[got]) < 0) { rc = EX_ERR; break; }
        jscope *sc = rc == EX_OK ? scope_new_for(s, n->b) : NULL;
        if (rc == EX_OK && !sc) rc = EX_ERR;
        for (size_t i = 0; i < n->nkids && rc == EX_OK; i++)
            if (assign(r, sc, n->kids[i], vals[i]) < 0) rc = EX_ERR;
        for (size_t i = 0; i < got; i++) jv_unref(vals[i]);
        colloq_free(vals);
        if (rc == EX_OK) rc = je_exec(r, sc, n->b, out);
        scope_end(r, sc);
        return rc;
    }
    case JN_SCOPE: {
        jscope *sc = scope_new_for(s, n->b);
        if (!sc) return EX_ERR;
        int rc = je_exec(r, sc, n->b, out);
        scope_end(r, sc);
        return rc;
    }
    case JN_BREAK: return EX_BREAK;
    case JN_CONTINUE: return EX_CONTINUE;
    default:
        jr_fail(r, "internal error: cannot execute node kind %d", n->kind);
        return EX_ERR;
    }
}

int je_exec(jr *r, jscope *s, const jnode *n, jbuf *out) {
    if (++r->depth > JINJA_MAX_EVAL_DEPTH || jinja_stack_used(r->stack_base) > r->max_stack) {
        r->depth--;
        jr_fail(r, "maximum recursion depth exceeded");
        return EX_ERR;
    }
    r->line = n->line;
    int rc = exec_node(r, s, n, out);
    r->depth--;
    if (!jr_ok(r)) return EX_ERR;
    return rc;
}

/* ---- render ---- */

static void cleanup(jr *r) {
    /* namespaces may reference themselves: empty them first */
    if (r->namespaces.type == JV_LIST)
        for (size_t i = 0; i < jl_len(r->namespaces); i++) {
            jdict *d = jl_at(r->namespaces, i).u.d;
            size_t n = d->n;
            jv *k = d->k, *v = d->v;
            d->n = d->cap = 0; d->k = d->v = NULL;
            colloq_free(d->idx); d->idx = NULL; d->icap = 0;
            for (size_t j = 0; j < n; j++) { jv_unref(k[j]); jv_unref(v[j]); }
            colloq_free(k); colloq_free(v);
        }
    if (r->loops.type == JV_LIST)
        for (size_t i = 0; i < jl_len(r->loops); i++) {
            jloop *lp = jl_at(r->loops, i).u.lp;
            jv last = lp->last;
            lp->last = jv_none();
            jv_unref(last);
        }
    if (r->root) scope_free(r->root);
    while (r->retained) { jscope *s = r->retained; r->retained = s->next; scope_free(s); }
    jv_unref(r->namespaces);
    jv_unref(r->loops);
    jv_unref(r->ctx);
}

int jinja_render_ex(const jinja_template *t, const jinja_value *ctx, const jinja_render_opts *opts,
                    char **out, size_t *out_len, colloq_err *err) {
    if (out) *out = NULL;
    if (out_len) *out_len = 0;
    if (!t || !out) return colloq_seterr(err, COLLOQ_ERR_ARG, "no template or output pointer");
    if (ctx && jinja_value_jv(ctx).type != JV_DICT)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "the render context must be a dict");
    jv_tls.oom = false; jv_tls.limit = false;
    jv_tls.work = 0; jv_tls.bytes = 0;
    jv_tls.max_str = opts && opts->max_output ? opts->max_output : (size_t)16 << 20;
    jr r;
    memset(&r, 0, sizeof r);
    r.t = t;
    r.ctx = ctx ? jv_ref(jinja_value_jv(ctx)) : jv_dict();
    r.max_steps = opts && opts->max_steps ? opts->max_steps : 10000000;
    r.now = opts && opts->now_set ? opts->now : (int64_t)time(NULL);
    r.utc = opts && opts->utc;
    r.stack_base = (uintptr_t)__builtin_frame_address(0);
    r.max_stack = opts && opts->max_stack ? opts->max_stack : JINJA_STACK_BUDGET;
    r.namespaces = jv_list(JL_LIST, 0);
    r.loops = jv_list(JL_LIST, 0);
    r.root = scope_new_for(NULL, t->root);
    jbuf b = { 0 };
    int rc = EX_ERR;
    if (r.root && jr_ok(&r)) rc = je_exec(&r, r.root, t->root, &b);
    bool ok = rc == EX_OK && jr_ok(&r);
    if (!r.failed && !ok) { jr_ok(&r); if (!r.failed) jr_fail(&r, "render failed"); }
    cleanup(&r);
    if (jv_tls.oom) r.oom = true;
    jv_tls.oom = false; jv_tls.limit = false; jv_tls.max_str = 0;
    if (!ok) {
        jb_free(&b);
        if (r.oom) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory while rendering the template");
        if (r.raised) return colloq_seterr(err, COLLOQ_ERR_ARG, "%s", r.msg);
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "line %d: %s", r.err_line, r.msg);
    }
    char *res = colloq_malloc(b.n + 1);
    if (!res) { jb_free(&b); return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory"); }
    if (b.n) memcpy(res, b.p, b.n);
    res[b.n] = 0;
    *out = res;
    if (out_len) *out_len = b.n;
    jb_free(&b);
    return COLLOQ_OK;
}

int jinja_render(const jinja_template *t, const jinja_value *ctx, char **out, size_t *out_len,
                 colloq_err *err) {
    return jinja_render_ex(t, ctx, NULL, out, out_len, err);
}
