/*
 * grammar_schema.c - compiles "any JSON" and a JSON Schema subset (jansson values)
 * into the node tables of grammar_internal.h, then computes each node's shortest
 * text, least nesting and first bytes, and checks that alternatives can be told
 * apart by their first byte.  Unsupported keywords fail with a message naming the
 * schema location.  Must not run the automaton except to test literals (gr_accepts).
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar_internal.h"
#include "util.h"

#define NONE        UINT32_MAX
#define MAX_NESTING 64          /* schema objects inside each other (not counting $ref) */
#define MAX_LIT     60000       /* bytes of one literal (frame positions are 16-bit) */

colloq_grammar_opts colloq_grammar_default_opts(void) {
    colloq_grammar_opts o = {
        .max_depth = 32, .ws_max = 16, .max_string = 512, .max_int_digits = 16,
        .max_frac_digits = 16, .max_exp_digits = 2, .max_items = 0,
    };
    return o;
}

typedef struct {
    colloq_grammar *g;
    const json_t   *root;
    colloq_err     *err;
    int             rc;               /* sticky: first error */
    char            path[256];        /* JSON pointer of the schema being compiled */
    size_t          plen;
    int             nesting;
    const json_t  **memo_s;           /* $ref targets compiled so far */
    uint32_t       *memo_n;
    uint32_t        n_memo, cap_memo;
    char          **where;            /* per node: path of an anyOf/oneOf (for messages) */
    uint32_t        cap_where;
} comp;

static uint32_t fail(comp *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static uint32_t fail(comp *c, int rc, const char *fmt, ...) {
    if (c->rc) return NONE;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->rc = rc;
    if (rc == COLLOQ_ERR_NOMEM) colloq_seterr(c->err, rc, "json schema: out of memory");
    else colloq_seterr(c->err, rc, "json schema at %s: %s", c->plen ? c->path : "/", msg);
    return NONE;
}
#define OOM(c) fail((c), COLLOQ_ERR_NOMEM, "out of memory")

static size_t path_push(comp *c, const char *a, const char *b) {
    size_t old = c->plen;
    int k = snprintf(c->path + c->plen, sizeof c->path - c->plen, "/%s%s%s", a, b ? "/" : "", b ? b : "");
    if (k > 0) c->plen = c->plen + (size_t)k < sizeof c->path ? c->plen + (size_t)k : sizeof c->path - 1;
    return old;
}
static void path_pop(comp *c, size_t old) { c->plen = old; c->path[old] = 0; }

static bool grow(comp *c, void **p, uint32_t *cap, uint32_t need, size_t elt) {
    if (need <= *cap) return true;
    uint32_t nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > UINT32_MAX / 2) return false;
        nc *= 2;
    }
    void *np = colloq_realloc(*p, (size_t)nc * elt);
    if (!np) return false;
    memset((char *)np + (size_t)*cap * elt, 0, (size_t)(nc - *cap) * elt);
    *p = np;
    *cap = nc;
    return true;
}

static uint32_t add_node(comp *c, uint8_t kind) {
    colloq_grammar *g = c->g;
    if (c->rc) return NONE;
    if (!grow(c, (void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof *g->nodes) ||
        !grow(c, (void **)&c->where, &c->cap_where, g->n_nodes + 1, sizeof *c->where))
        return OOM(c);
    gr_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->minlen = n->min_depth = GR_INF;
    n->max = UINT32_MAX;
    return g->n_nodes++;
}

static uint32_t add_idx(comp *c, uint32_t v) {
    colloq_grammar *g = c->g;
    if (c->rc) return NONE;
    if (!grow(c, (void **)&g->idx, &g->cap_idx, g->n_idx + 1, sizeof *g->idx)) return OOM(c);
    g->idx[g->n_idx] = v;
    return g->n_idx++;
}

static uint32_t add_lit(comp *c, const char *p, size_t len) {
    colloq_grammar *g = c->g;
    if (c->rc) return NONE;
    if (len > MAX_LIT) return fail(c, COLLOQ_ERR_ARG, "a value or property name longer than %d bytes", MAX_LIT);
    if (!grow(c, (void **)&g->lits, &g->cap_lits, g->n_lits + 1, sizeof *g->lits) ||
        !grow(c, (void **)&g->bytes, &g->cap_bytes, g->n_bytes + (uint32_t)len + 1, 1))
        return OOM(c);
    memcpy(g->bytes + g->n_bytes, p, len);
    g->lits[g->n_lits] = (gr_lit){ g->n_bytes, (uint32_t)len };
    g->n_bytes += (uint32_t)len;
    return g->n_lits++;
}

/* ---- literal sets ---- */

typedef struct { char *s; size_t len; uint32_t a, b; } item;   /* bytes + two payloads */

static int cmp_item(const void *x, const void *y) {
    const item *p = x, *q = y;
    int r = memcmp(p->s, q->s, p->len < q->len ? p->len : q->len);
    if (r) return r;
    return p->len < q->len ? -1 : p->len > q->len;
}

/* Compact JSON text of a value (caller frees with free()). */
static char *dump(const json_t *v, size_t *len) {
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    if (s) *len = strlen(s);
    return s;
}

/* A LITERALS node from items (sorted and deduplicated here; the strings are freed). */
static uint32_t literals_node(comp *c, item *it, size_t n) {
    qsort(it, n, sizeof *it, cmp_item);
    uint32_t x = add_node(c, GR_LITERALS);
    if (x != NONE) c->g->nodes[x].first = c->g->n_lits;
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(i && it[i].len == it[i - 1].len && !memcmp(it[i].s, it[i - 1].s, it[i].len))) {
            add_lit(c, it[i].s, it[i].len);
            k++;
        }
    }
    for (size_t i = 0; i < n; i++) free(it[i].s);
    if (c->rc) return NONE;
    c->g->nodes[x].n = k;
    return x;
}

static bool type_matches(const json_t *v, const char *type) {
    if (!strcmp(type, "string")) return json_is_string(v);
    if (!strcmp(type, "integer")) return json_is_integer(v);
    if (!strcmp(type, "number")) return json_is_number(v);
    if (!strcmp(type, "boolean")) return json_is_boolean(v);
    if (!strcmp(type, "null")) return json_is_null(v);
    if (!strcmp(type, "object")) return json_is_object(v);
    if (!strcmp(type, "array")) return json_is_array(v);
    return false;
}

/* enum / const, keeping only values of the schema's type(s) when it names one. */
static uint32_t compile_enum(comp *c, const json_t *s, const json_t *values) {
    const json_t *type = json_object_get(s, "type");
    size_t n = json_array_size(values), k = 0;
    item *it = colloq_calloc(n + 1, sizeof *it);
    if (!it) return OOM(c);
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(values, i);
        bool keep = !type;
        if (json_is_string(type)) keep = type_matches(v, json_string_value(type));
        for (size_t j = 0; json_is_array(type) && j < json_array_size(type); j++)
            keep = keep || (json_is_string(json_array_get(type, j)) &&
                            type_matches(v, json_string_value(json_array_get(type, j))));
        if (!keep) continue;
        it[k].s = dump(v, &it[k].len);
        if (!it[k].s) { for (size_t j = 0; j < k; j++) free(it[j].s); colloq_free(it); return OOM(c); }
        k++;
    }
    if (k == 0) {
        colloq_free(it);
        return fail(c, COLLOQ_ERR_ARG, "no value of 'enum'/'const' matches 'type'");
    }
    uint32_t x = literals_node(c, it, k);
    colloq_free(it);
    return x;
}

/* ---- keywords ---- */

static const char *const k_ignored[] = {
    "title", "description", "default", "examples", "$schema", "$id", "$comment", "format",
    "deprecated", "readOnly", "writeOnly", "contentMediaType", "contentEncoding", "$defs",
    "definitions", "discriminator", "nullable", "$anchor", "strict", NULL,
};
static const char *const k_unsupported[] = {
    "pattern", "patternProperties", "propertyNames", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "minProperties", "maxProperties", "contains", "minContains",
    "maxContains", "prefixItems", "dependentRequired", "dependentSchemas", "dependencies", "if",
    "then", "else", "not", "unevaluatedProperties", "unevaluatedItems", "$dynamicRef",
    "$recursiveRef", NULL,
};

static bool in_list(const char *const *l, const char *k) {
    for (; *l; l++) if (!strcmp(*l, k)) return true;
    return false;
}

/* Keywords other than annotations and the given ones ("|a|b|"). */
static const char *other_keyword(const json_t *s, const char *allowed) {
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)s, k, v) {
        char pat[80];
        snprintf(pat, sizeof pat, "|%s|", k);
        if (!in_list(k_ignored, k) && !strstr(allowed, pat)) return k;
    }
    return NULL;
}

static bool get_count(comp *c, const json_t *s, const char *key, uint32_t *out) {
    const json_t *v = json_object_get(s, key);
    if (!v) return true;
    json_int_t n = json_is_integer(v) ? json_integer_value(v) : -1;
    if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) < 4e9 &&
        json_real_value(v) == (double)(json_int_t)json_real_value(v))
        n = (json_int_t)json_real_value(v);
    if (n < 0 || n > 100000000) {
        fail(c, COLLOQ_ERR_ARG, "'%s' must be a non-negative integer (at most 100000000)", key);
        return false;
    }
    *out = (uint32_t)n;
    return true;
}

static uint32_t compile(comp *c, const json_t *s);
static uint32_t make_anyof(comp *c, uint32_t *alts, uint32_t n, bool oneof);

static uint32_t compile_sub(comp *c, const json_t *s, const char *a, const char *b) {
    size_t old = path_push(c, a, b);
    uint32_t x = compile(c, s);
    path_pop(c, old);
    return x;
}

/* ---- objects ---- */

static uint32_t compile_object(comp *c, const json_t *s) {
    const json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    const json_t *addl = json_object_get(s, "additionalProperties");
    if (props && !json_is_object(props)) return fail(c, COLLOQ_ERR_ARG, "'properties' must be an object");
    if (req && !json_is_array(req)) return fail(c, COLLOQ_ERR_ARG, "'required' must be an array of names");
    if (addl && !json_is_boolean(addl) && !json_is_object(addl))
        return fail(c, COLLOQ_ERR_ARG, "'additionalProperties' must be a boolean or a schema");
    for (size_t i = 0; i < json_array_size(req); i++)
        if (!json_is_string(json_array_get(req, i)))
            return fail(c, COLLOQ_ERR_ARG, "'required' must be an array of names");
    size_t np = json_object_size(props), nr = json_array_size(req);
    if (np == 0 && nr == 0) {
        /* no members named: any members, unless 'properties' is there (empty) and
         * additionalProperties does not ask for more, or it is false */
        if (json_is_false(addl) || (props && !json_is_true(addl) && !json_is_object(addl))) {
            item it = { NULL, 2, 0, 0 };
            it.s = malloc(3);
            if (!it.s) return OOM(c);
            memcpy(it.s, "{}", 3);
            return literals_node(c, &it, 1);
        }
        uint32_t val = json_is_object(addl) ? compile_sub(c, addl, "additionalProperties", NULL) : GR_N_ANY;
        uint32_t x = add_node(c, GR_MAP);
        if (x == NONE || val == NONE) return NONE;
        c->g->nodes[x].child = val;
        if (c->g->o.max_items > 0) c->g->nodes[x].max = (uint32_t)c->g->o.max_items;
        return x;
    }
    item *it = colloq_calloc(np + nr + 1, sizeof *it);
    if (!it) return OOM(c);
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)props, k, v) {
        json_t *name = json_string(k);
        it[n].s = name ? dump(name, &it[n].len) : NULL;
        json_decref(name);
        if (!it[n].s) goto oom;
        it[n].a = compile_sub(c, v, "properties", k);
        n++;
        if (c->rc) goto out;
    }
    for (size_t i = 0; i < nr; i++) {
        const char *r = json_string_value(json_array_get(req, i));
        if (json_object_get(props, r)) continue;
        if (json_is_false(addl)) {
            fail(c, COLLOQ_ERR_ARG, "required property '%s' is not among 'properties' and "
                 "'additionalProperties' is false", r);
            goto out;
        }
        json_t *name = json_string(r);
        it[n].s = name ? dump(name, &it[n].len) : NULL;
        json_decref(name);
        if (!it[n].s) goto oom;
        it[n].a = json_is_object(addl) ? compile_sub(c, addl, "additionalProperties", NULL) : GR_N_ANY;
        n++;
        if (c->rc) goto out;
    }
    qsort(it, n, sizeof *it, cmp_item);
    size_t m = 0;                                          /* drop repeated names */
    for (size_t i = 0; i < n; i++) {
        if (m && it[i].len == it[m - 1].len && !memcmp(it[i].s, it[m - 1].s, it[i].len)) { free(it[i].s); continue; }
        it[m++] = it[i];
    }
    n = m;
    if (n > GR_MAX_PROPS) {
        fail(c, COLLOQ_ERR_ARG, "more than %d properties in one object", GR_MAX_PROPS);
        goto out;
    }
    uint32_t x = add_node(c, GR_OBJECT);
    if (x == NONE) goto out;
    uint32_t lit0 = c->g->n_lits, first = c->g->n_idx;
    uint64_t required = 0;
    for (size_t i = 0; i < n; i++) {
        add_lit(c, it[i].s, it[i].len);
        add_idx(c, it[i].a);
        for (size_t j = 0; j < nr; j++) {         /* it[i].s is the name in quotes */
            json_t *name = json_string(json_string_value(json_array_get(req, j)));
            size_t len = 0;
            char *e = name ? dump(name, &len) : NULL;
            json_decref(name);
            if (!e) goto oom;
            if (len == it[i].len && !memcmp(e, it[i].s, len)) required |= 1ull << i;
            free(e);
        }
    }
    if (!c->rc) {
        gr_node *o = &c->g->nodes[x];
        o->lit0 = lit0;
        o->first = first;
        o->n = (uint32_t)n;
        o->required = required;
    }
    for (size_t i = 0; i < n; i++) free(it[i].s);
    colloq_free(it);
    return c->rc ? NONE : x;
oom:
    OOM(c);
out:
    for (size_t i = 0; i < n; i++) free(it[i].s);
    colloq_free(it);
    return NONE;
}

/* ---- one type ---- */

static uint32_t compile_typed(comp *c, const json_t *s, const char *type) {
    colloq_grammar *g = c->g;
    if (!strcmp(type, "object")) return compile_object(c, s);
    if (!strcmp(type, "array")) {
        const json_t *items = json_object_get(s, "items");
        uint32_t min = 0, max = g->o.max_items > 0 ? (uint32_t)g->o.max_items : UINT32_MAX;
        if (!get_count(c, s, "minItems", &min) || !get_count(c, s, "maxItems", &max)) return NONE;
        if (json_is_array(items)) return fail(c, COLLOQ_ERR_ARG, "tuple 'items' (an array of schemas) is not supported");
        if (items && !json_is_object(items) && !json_is_boolean(items))
            return fail(c, COLLOQ_ERR_ARG, "'items' must be a schema");
        if (json_is_true(json_object_get(s, "uniqueItems")))
            return fail(c, COLLOQ_ERR_ARG, "keyword 'uniqueItems' is not supported");
        if (json_is_false(items)) max = 0;
        if (min > max) return fail(c, COLLOQ_ERR_ARG, "'minItems' is larger than 'maxItems'");
        uint32_t it = items && !json_is_boolean(items) ? compile_sub(c, items, "items", NULL) : GR_N_ANY;
        uint32_t x = add_node(c, GR_ARRAY);
        if (x == NONE || it == NONE) return NONE;
        g->nodes[x].child = it;
        g->nodes[x].min = min;
        g->nodes[x].max = max;
        return x;
    }
    if (!strcmp(type, "string")) {
        uint32_t min = 0, max = NONE;
        if (!get_count(c, s, "minLength", &min) || !get_count(c, s, "maxLength", &max)) return NONE;
        if (max == NONE) max = min > (uint32_t)g->o.max_string ? min : (uint32_t)g->o.max_string;
        if (min > max) return fail(c, COLLOQ_ERR_ARG, "'minLength' is larger than 'maxLength'");
        uint32_t x = add_node(c, GR_STRING);
        if (x == NONE) return NONE;
        g->nodes[x].min = min;
        g->nodes[x].max = max;
        return x;
    }
    if (!strcmp(type, "number")) return add_node(c, GR_NUMBER);
    if (!strcmp(type, "integer")) return add_node(c, GR_INTEGER);
    if (!strcmp(type, "boolean") || !strcmp(type, "null")) {
        item it[2] = { { NULL, 0, 0, 0 }, { NULL, 0, 0, 0 } };
        size_t n = 0;
        const char *w[2] = { "false", "true" };
        if (!strcmp(type, "null")) w[0] = "null";
        for (size_t i = 0; i < (type[0] == 'n' ? 1u : 2u); i++, n++) {
            it[i].len = strlen(w[i]);
            it[i].s = malloc(it[i].len + 1);
            if (!it[i].s) { free(it[0].s); return OOM(c); }
            memcpy(it[i].s, w[i], it[i].len + 1);
        }
        return literals_node(c, it, n);
    }
    return fail(c, COLLOQ_ERR_ARG, "unknown type '%s'", type);
}

/* ---- $ref ---- */

static const json_t *resolve_ref(comp *c, const char *ref) {
    if (ref[0] != '#') return NULL;
    const json_t *cur = c->root;
    const char *p = ref + 1;
    while (*p == '/') {
        p++;
        char seg[256];
        size_t k = 0;
        while (*p && *p != '/') {
            char ch = *p++;
            if (ch == '~' && (*p == '0' || *p == '1')) ch = *p++ == '0' ? '~' : '/';
            if (k + 1 >= sizeof seg) return NULL;
            seg[k++] = ch;
        }
        seg[k] = 0;
        if (json_is_object(cur)) cur = json_object_get(cur, seg);
        else if (json_is_array(cur)) {
            char *end;
            unsigned long i = strtoul(seg, &end, 10);
            cur = *end || !k ? NULL : json_array_get(cur, i);
        } else cur = NULL;
        if (!cur) return NULL;
    }
    return *p ? NULL : cur;
}

static uint32_t compile_ref(comp *c, const char *ref) {
    const json_t *t = resolve_ref(c, ref);
    if (!t) return fail(c, COLLOQ_ERR_ARG, "'$ref' \"%s\" does not point into this schema", ref);
    for (uint32_t i = 0; i < c->n_memo; i++)
        if (c->memo_s[i] == t) return c->memo_n[i];
    /* an alias node first, so that recursive references find it */
    uint32_t x = add_node(c, GR_ANYOF);
    uint32_t slot = add_idx(c, NONE);       /* filled when the target is compiled */
    if (x == NONE || slot == NONE) return NONE;
    uint32_t cap = c->cap_memo;
    if (!grow(c, (void **)&c->memo_s, &cap, c->n_memo + 1, sizeof *c->memo_s) ||
        !grow(c, (void **)&c->memo_n, &c->cap_memo, c->n_memo + 1, sizeof *c->memo_n))
        return OOM(c);
    c->memo_s[c->n_memo] = t;
    c->memo_n[c->n_memo++] = x;
    c->g->nodes[x].flags = GRF_ALIAS;
    c->g->nodes[x].first = slot;
    c->g->nodes[x].n = 1;
    size_t old = c->plen;
    int nest = c->nesting;
    c->plen = 0;
    c->path[0] = 0;
    c->nesting = 0;
    size_t o2 = path_push(c, ref[1] == '/' ? ref + 2 : ref + 1, NULL);
    (void)o2;
    uint32_t y = compile(c, t);
    c->plen = old;
    c->path[old] = 0;
    c->nesting = nest;
    if (y == NONE) return NONE;
    c->g->idx[slot] = y;
    return x;
}

/* ---- a schema ---- */

static uint32_t compile_alts(comp *c, const json_t *arr, const char *kw, bool oneof) {
    size_t n = json_array_size(arr);
    if (!json_is_array(arr) || n == 0) return fail(c, COLLOQ_ERR_ARG, "'%s' must be a non-empty array", kw);
    uint32_t *alts = colloq_calloc(n, sizeof *alts);
    if (!alts) return OOM(c);
    for (size_t i = 0; i < n; i++) {
        char num[24];
        snprintf(num, sizeof num, "%zu", i);
        alts[i] = compile_sub(c, json_array_get(arr, i), kw, num);
        if (alts[i] == NONE) { colloq_free(alts); return NONE; }
    }
    uint32_t x = make_anyof(c, alts, (uint32_t)n, oneof);
    colloq_free(alts);
    return x;
}

static uint32_t compile(comp *c, const json_t *s) {
    if (c->rc) return NONE;
    if (json_is_true(s)) return GR_N_ANY;
    if (json_is_false(s)) return fail(c, COLLOQ_ERR_ARG, "the schema 'false' admits no value");
    if (!json_is_object(s)) return fail(c, COLLOQ_ERR_ARG, "a schema must be an object or a boolean");
    if (++c->nesting > MAX_NESTING) {
        c->nesting--;
        return fail(c, COLLOQ_ERR_ARG, "schemas nested more than %d deep", MAX_NESTING);
    }
    uint32_t x = NONE;
    const char *k, *bad;
    json_t *v;
    json_object_foreach((json_t *)s, k, v) {
        if (in_list(k_unsupported, k)) { x = fail(c, COLLOQ_ERR_ARG, "keyword '%s' is not supported", k); goto out; }
    }
    const json_t *ref = json_object_get(s, "$ref"), *all = json_object_get(s, "allOf");
    const json_t *any = json_object_get(s, "anyOf"), *one = json_object_get(s, "oneOf");
    const json_t *en = json_object_get(s, "enum"), *cn = json_object_get(s, "const");
    const json_t *type = json_object_get(s, "type");
    if (ref) {
        if (!json_is_string(ref)) { x = fail(c, COLLOQ_ERR_ARG, "'$ref' must be a string"); goto out; }
        if ((bad = other_keyword(s, "|$ref|"))) {
            x = fail(c, COLLOQ_ERR_ARG, "'$ref' next to '%s' is not supported", bad);
            goto out;
        }
        x = compile_ref(c, json_string_value(ref));
    } else if (all) {
        if (!json_is_array(all) || json_array_size(all) != 1) {
            x = fail(c, COLLOQ_ERR_ARG, "'allOf' is supported with exactly one schema");
            goto out;
        }
        if ((bad = other_keyword(s, "|allOf|"))) {
            x = fail(c, COLLOQ_ERR_ARG, "'allOf' next to '%s' is not supported", bad);
            goto out;
        }
        x = compile_sub(c, json_array_get(all, 0), "allOf", "0");
    } else if (any || one) {
        if (any && one) { x = fail(c, COLLOQ_ERR_ARG, "'anyOf' together with 'oneOf' is not supported"); goto out; }
        if ((bad = other_keyword(s, "|anyOf|oneOf|"))) {
            x = fail(c, COLLOQ_ERR_ARG, "'%s' next to '%s' is not supported", any ? "anyOf" : "oneOf", bad);
            goto out;
        }
        x = compile_alts(c, any ? any : one, any ? "anyOf" : "oneOf", !any);
    } else if (cn || en) {
        if (cn && en) { x = fail(c, COLLOQ_ERR_ARG, "'const' together with 'enum' is not supported"); goto out; }
        if ((bad = other_keyword(s, "|enum|const|type|"))) {
            x = fail(c, COLLOQ_ERR_ARG, "'%s' next to '%s' is not supported", cn ? "const" : "enum", bad);
            goto out;
        }
        if (en && (!json_is_array(en) || json_array_size(en) == 0)) {
            x = fail(c, COLLOQ_ERR_ARG, "'enum' must be a non-empty array");
            goto out;
        }
        json_t *one_val = NULL;
        if (cn) {
            one_val = json_array();
            if (!one_val || json_array_append(one_val, (json_t *)cn)) { json_decref(one_val); x = OOM(c); goto out; }
        }
        x = compile_enum(c, s, cn ? one_val : en);
        json_decref(one_val);
    } else if (json_is_string(type)) {
        x = compile_typed(c, s, json_string_value(type));
    } else if (json_is_array(type)) {
        size_t n = json_array_size(type);
        uint32_t *alts = colloq_calloc(n + 1, sizeof *alts);
        if (!alts || n == 0) { colloq_free(alts); x = n ? OOM(c) : fail(c, COLLOQ_ERR_ARG, "'type' is an empty array"); goto out; }
        for (size_t i = 0; i < n && !c->rc; i++) {
            const json_t *t = json_array_get(type, i);
            alts[i] = json_is_string(t) ? compile_typed(c, s, json_string_value(t))
                                        : fail(c, COLLOQ_ERR_ARG, "'type' must hold names");
        }
        x = c->rc ? NONE : make_anyof(c, alts, (uint32_t)n, false);
        colloq_free(alts);
    } else if (type) {
        x = fail(c, COLLOQ_ERR_ARG, "'type' must be a name or an array of names");
    } else if (json_object_get(s, "properties") || json_object_get(s, "required") ||
               json_object_get(s, "additionalProperties")) {
        x = compile_typed(c, s, "object");
    } else if (json_object_get(s, "items") || json_object_get(s, "minItems") || json_object_get(s, "maxItems")) {
        x = compile_typed(c, s, "array");
    } else if (json_object_get(s, "minLength") || json_object_get(s, "maxLength")) {
        x = compile_typed(c, s, "string");
    } else {
        x = GR_N_ANY;
    }
out:
    c->nesting--;
    return c->rc ? NONE : x;
}

/* ---- alternatives ---- */

static uint32_t resolve(const colloq_grammar *g, uint32_t x) {
    for (int i = 0; i < 64 && x != NONE; i++) {
        const gr_node *n = &g->nodes[x];
        if (n->kind != GR_ANYOF || !(n->flags & GRF_ALIAS) || g->idx[n->first] == NONE) return x;
        x = g->idx[n->first];
    }
    return x;
}

static bool is_obj(uint8_t k) { return k == GR_OBJECT || k == GR_MAP || k == GR_UNION; }

static item lit_item(comp *c, uint32_t l, uint32_t a, uint32_t b) {
    const gr_lit *L = &c->g->lits[l];
    item it = { malloc(L->len + 1), L->len, a, b };
    if (it.s) memcpy(it.s, c->g->bytes + L->off, L->len);
    return it;
}

/* Objects told apart by a required member whose values are distinct constant strings:
 * a GR_UNION node, or NONE (no error) when there is no such member. */
static uint32_t try_union(comp *c, const uint32_t *objs, uint32_t k) {
    colloq_grammar *g = c->g;
    for (uint32_t i = 0; i < k; i++) if (g->nodes[objs[i]].kind != GR_OBJECT) return NONE;
    const gr_node *o0 = &g->nodes[objs[0]];
    for (uint32_t p = 0; p < o0->n; p++) {
        if (!((o0->required >> p) & 1)) continue;
        const gr_lit *key = &g->lits[o0->lit0 + p];
        uint32_t *disc = colloq_calloc(k, sizeof *disc), n_tags = 0;
        if (!disc) return OOM(c);
        bool ok = true;
        for (uint32_t i = 0; i < k && ok; i++) {
            const gr_node *o = &g->nodes[objs[i]];
            ok = false;
            for (uint32_t q = 0; q < o->n; q++) {
                const gr_lit *kq = &g->lits[o->lit0 + q];
                if (kq->len != key->len || memcmp(g->bytes + kq->off, g->bytes + key->off, key->len)) continue;
                uint32_t t = resolve(g, g->idx[o->first + q]);
                if (!((o->required >> q) & 1) || t == NONE || g->nodes[t].kind != GR_LITERALS) break;
                ok = true;
                for (uint32_t j = 0; j < g->nodes[t].n; j++)
                    ok = ok && g->bytes[g->lits[g->nodes[t].first + j].off] == '"';
                disc[i] = q;
                n_tags += g->nodes[t].n;
                break;
            }
        }
        if (!ok) { colloq_free(disc); continue; }
        item *it = colloq_calloc(n_tags + 1, sizeof *it);
        if (!it) { colloq_free(disc); return OOM(c); }
        uint32_t m = 0;
        for (uint32_t i = 0; i < k; i++) {
            const gr_node *o = &g->nodes[objs[i]];
            const gr_node *t = &g->nodes[resolve(g, g->idx[o->first + disc[i]])];
            for (uint32_t j = 0; j < t->n; j++) {
                it[m] = lit_item(c, t->first + j, objs[i], disc[i]);
                if (!it[m++].s) ok = false;
            }
        }
        qsort(it, m, sizeof *it, cmp_item);
        for (uint32_t j = 1; j < m && ok; j++)
            if (it[j].len == it[j - 1].len && !memcmp(it[j].s, it[j - 1].s, it[j].len)) ok = false;
        if (!ok) {
            for (uint32_t j = 0; j < m; j++) free(it[j].s);
            colloq_free(it);
            colloq_free(disc);
            if (c->rc) return NONE;
            continue;
        }
        uint32_t lit0 = o0->lit0 + p;
        uint32_t tags = literals_node(c, it, m);          /* keeps the sorted order of it */
        uint32_t u = add_node(c, GR_UNION), first = g->n_idx;
        for (uint32_t j = 0; j < m; j++) add_idx(c, it[j].a);
        for (uint32_t j = 0; j < m; j++) add_idx(c, it[j].b);
        for (uint32_t j = 0; j < m; j++) add_idx(c, 0);
        colloq_free(it);
        colloq_free(disc);
        if (c->rc || tags == NONE || u == NONE) return NONE;
        gr_node *un = &g->nodes[u];
        un->lit0 = lit0;
        un->child = tags;
        un->first = first;
        un->n = m;
        return u;
    }
    return NONE;
}

static uint32_t make_anyof(comp *c, uint32_t *alts, uint32_t n, bool oneof) {
    colloq_grammar *g = c->g;
    uint32_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r = resolve(g, alts[i]);
        const gr_node *a = &g->nodes[r];
        total += a->kind == GR_ANYOF && !(a->flags & GRF_ALIAS) ? a->n : 1;
    }
    uint32_t *l = colloq_calloc(total + 1, sizeof *l), m = 0, x = NONE, nl = 0;
    item *lits = NULL;
    if (!l) return OOM(c);
    for (uint32_t i = 0; i < n; i++) {                    /* flatten nested alternatives */
        uint32_t r = resolve(g, alts[i]);
        const gr_node *a = &g->nodes[r];
        if (a->kind == GR_ANYOF && !(a->flags & GRF_ALIAS))
            for (uint32_t j = 0; j < a->n; j++) l[m++] = g->idx[a->first + j];
        else
            l[m++] = r;
    }
    bool has_num = false, has_int = false;
    uint32_t n_lit = 0, n_obj = 0;
    for (uint32_t i = 0; i < m; i++) {
        uint8_t k = g->nodes[l[i]].kind;
        if (k == GR_ANY) {
            if (oneof && m > 1) { x = fail(c, COLLOQ_ERR_ARG, "'oneOf' with an alternative that admits any value"); goto out; }
            x = GR_N_ANY;
            goto out;
        }
        has_num |= k == GR_NUMBER;
        has_int |= k == GR_INTEGER;
        if (k == GR_LITERALS) n_lit += g->nodes[l[i]].n;
        if (is_obj(k)) n_obj++;
    }
    if (has_num && has_int && oneof) {
        x = fail(c, COLLOQ_ERR_ARG, "'oneOf' with both 'number' and 'integer' (integers match both)");
        goto out;
    }
    lits = colloq_calloc(n_lit + 1, sizeof *lits);
    uint32_t *objs = colloq_calloc(m + 1, sizeof *objs);
    if (!lits || !objs) { colloq_free(objs); x = OOM(c); goto out; }
    uint32_t k2 = 0, no = 0;
    for (uint32_t i = 0; i < m; i++) {
        const gr_node *a = &g->nodes[l[i]];
        if (a->kind == GR_INTEGER && has_num) continue;  /* number admits every integer */
        if (a->kind == GR_LITERALS && (n_lit > a->n || nl)) {   /* several sets: merge */
            for (uint32_t j = 0; j < a->n; j++) {
                lits[nl] = lit_item(c, a->first + j, 0, 0);
                if (!lits[nl++].s) { colloq_free(objs); x = OOM(c); goto out; }
            }
            continue;
        }
        if (is_obj(a->kind)) { objs[no++] = l[i]; continue; }
        l[k2++] = l[i];
    }
    if (nl) {
        qsort(lits, nl, sizeof *lits, cmp_item);
        for (uint32_t j = 1; j < nl && oneof; j++)
            if (lits[j].len == lits[j - 1].len && !memcmp(lits[j].s, lits[j - 1].s, lits[j].len)) {
                colloq_free(objs);
                x = fail(c, COLLOQ_ERR_ARG, "'oneOf' alternatives share the value %.*s", (int)lits[j].len, lits[j].s);
                goto out;
            }
        uint32_t y = literals_node(c, lits, nl);
        nl = 0;
        if (y == NONE) { colloq_free(objs); goto out; }
        l[k2++] = y;
    }
    if (no) {
        /* objects become a union on their discriminator (which then comes first); a single
         * object without one stays as it is */
        uint32_t u = try_union(c, objs, no);
        if (u == NONE && no == 1 && !c->rc) u = objs[0];
        colloq_free(objs);
        if (u == NONE) {
            x = fail(c, COLLOQ_ERR_ARG, "alternatives that are several objects must share a required "
                     "property with distinct constant string values (a discriminator)");
            goto out;
        }
        l[k2++] = u;
    } else {
        colloq_free(objs);
    }
    if (k2 == 1) { x = l[0]; goto out; }
    x = add_node(c, GR_ANYOF);
    if (x == NONE) goto out;
    uint32_t first = g->n_idx;
    for (uint32_t i = 0; i < k2; i++) add_idx(c, l[i]);
    if (c->rc) { x = NONE; goto out; }
    g->nodes[x].first = first;
    g->nodes[x].n = k2;
    g->nodes[x].flags = oneof ? GRF_ONEOF : 0;
    c->where[x] = colloq_strdup(c->plen ? c->path : "/");
    if (!c->where[x]) x = OOM(c);
out:
    for (uint32_t j = 0; j < nl; j++) free(lits[j].s);
    colloq_free(lits);
    colloq_free(l);
    return x;
}

/* ---- checks after compiling ---- */

static bool overlap(const gr_node *a, const gr_node *b, unsigned *byte) {
    for (unsigned c = 0; c < 256; c++)
        if (gr_bit(a->first_set, c) && gr_bit(b->first_set, c)) { *byte = c; return true; }
    return false;
}

/* Alternatives must start differently.  A literal set that shares first bytes with
 * another alternative (anyOf only) loses the literals that alternative admits anyway;
 * any other overlap is an error. */
static int check_anyofs(comp *c, bool fix) {
    colloq_grammar *g = c->g;
    for (uint32_t x = 0; x < g->n_nodes; x++) {          /* g->nodes may move: indices only */
        if (g->nodes[x].kind != GR_ANYOF || (g->nodes[x].flags & GRF_ALIAS)) continue;
        for (uint32_t i = 0; i < g->nodes[x].n; i++) {
            for (uint32_t j = 0; j < g->nodes[x].n; j++) {
                uint32_t a = g->idx[g->nodes[x].first + i], b = g->idx[g->nodes[x].first + j];
                unsigned byte;
                if (i == j || g->nodes[a].minlen >= GR_INF || g->nodes[b].minlen >= GR_INF ||
                    !overlap(&g->nodes[a], &g->nodes[b], &byte))
                    continue;
                if (g->nodes[resolve(g, b)].kind == GR_LITERALS && g->nodes[resolve(g, a)].kind != GR_LITERALS) {
                    uint32_t t = a; a = b; b = t;                 /* the literal set first */
                }
                uint32_t ia = g->idx[g->nodes[x].first + i] == a ? i : j;
                const gr_node *ra = &g->nodes[resolve(g, a)];
                bool lit_vs_other = ra->kind == GR_LITERALS && g->nodes[resolve(g, b)].kind != GR_LITERALS;
                if (fix && lit_vs_other && !(g->nodes[x].flags & GRF_ONEOF)) {
                    item *keep = colloq_calloc(ra->n + 1, sizeof *keep);
                    uint32_t nk = 0;
                    if (!keep) return OOM(c), c->rc;
                    bool ok = true;
                    for (uint32_t k = 0; k < ra->n && ok; k++) {
                        const gr_lit *L = &g->lits[ra->first + k];
                        int acc = gr_accepts(g, b, g->bytes + L->off, L->len);
                        if (acc < 0) {
                            for (uint32_t q = 0; q < nk; q++) free(keep[q].s);
                            colloq_free(keep);
                            return OOM(c), c->rc;
                        }
                        if (acc) continue;                              /* b admits it */
                        if (gr_bit(g->nodes[b].first_set, g->bytes[L->off])) ok = false;
                        else keep[nk++] = lit_item(c, ra->first + k, 0, 0);
                    }
                    if (ok) {
                        uint32_t y = nk ? literals_node(c, keep, nk) : add_node(c, GR_LITERALS);
                        colloq_free(keep);
                        if (y == NONE) return c->rc;
                        g->idx[g->nodes[x].first + ia] = y;
                        gr_analyse(g);
                        continue;
                    }
                    for (uint32_t k = 0; k < nk; k++) free(keep[k].s);
                    colloq_free(keep);
                }
                snprintf(c->path, sizeof c->path, "%s", c->where[x] ? c->where[x] : "/");
                c->plen = strlen(c->path);
                fail(c, COLLOQ_ERR_ARG, "'%s' alternatives %u and %u can both start with '%c'; "
                     "alternatives must differ in their JSON type (or be constants)",
                     (g->nodes[x].flags & GRF_ONEOF) ? "oneOf" : "anyOf", i, j,
                     byte >= 0x20 && byte < 0x7f ? byte : '?');
                return c->rc;
            }
        }
    }
    return COLLOQ_OK;
}

static int finish(comp *c) {
    colloq_grammar *g = c->g;
    if (c->rc) return c->rc;
    gr_analyse(g);
    if (check_anyofs(c, true) || check_anyofs(c, false)) return c->rc;
    c->plen = 0;
    c->path[0] = 0;
    const gr_node *r = &g->nodes[g->root];
    if (r->minlen >= GR_INF) return fail(c, COLLOQ_ERR_ARG, "the schema admits no finite value"), c->rc;
    if (r->min_depth > (uint32_t)g->o.max_depth)
        return fail(c, COLLOQ_ERR_ARG, "the schema nests deeper (%u) than the limit (%d)", r->min_depth,
                    g->o.max_depth), c->rc;
    uint32_t maxlen = 0, maxlit = 0;
    for (uint32_t x = 0; x < g->n_nodes; x++) {
        gr_node *n = &g->nodes[x];
        if (n->minlen < GR_INF && n->minlen > maxlen) maxlen = n->minlen;
        if (n->kind == GR_UNION)
            for (uint32_t i = 0; i < n->n; i++) g->idx[n->first + 2 * n->n + i] = gr_union_tail(g, n, i);
    }
    for (uint32_t i = 0; i < g->n_lits; i++) if (g->lits[i].len > maxlit) maxlit = g->lits[i].len;
    uint64_t jump = (uint64_t)maxlen + maxlit + 8;
    g->max_jump = jump >= GR_INF ? GR_INF : (uint32_t)jump;
    return COLLOQ_OK;
}

/* ---- entry points ---- */

static int begin(comp *c, const colloq_grammar_opts *o, colloq_err *err) {
    memset(c, 0, sizeof *c);
    c->err = err;
    colloq_grammar_opts d = o ? *o : colloq_grammar_default_opts();
    if (d.max_depth < 1 || d.max_depth > 250 || d.ws_max < -1 || d.ws_max > 254 || d.max_string < 1 ||
        d.max_int_digits < 1 || d.max_frac_digits < 0 || d.max_exp_digits < 0 || d.max_items < 0)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "grammar: option out of range");
    c->g = colloq_calloc(1, sizeof *c->g);
    if (!c->g) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "grammar: out of memory");
    c->g->o = d;
    uint32_t items = d.max_items > 0 ? (uint32_t)d.max_items : UINT32_MAX;
    add_node(c, GR_ANY);
    uint32_t m = add_node(c, GR_MAP);
    uint32_t a = add_node(c, GR_ARRAY);
    uint32_t s = add_node(c, GR_STRING);
    add_node(c, GR_NUMBER);
    if (c->rc) return c->rc;
    c->g->nodes[m].child = GR_N_ANY;
    c->g->nodes[m].max = items;
    c->g->nodes[a].child = GR_N_ANY;
    c->g->nodes[a].max = items;
    c->g->nodes[s].max = (uint32_t)d.max_string;
    item it[3] = { { NULL, 5, 0, 0 }, { NULL, 4, 0, 0 }, { NULL, 4, 0, 0 } };
    it[0].s = malloc(6); it[1].s = malloc(5); it[2].s = malloc(5);
    if (it[0].s) memcpy(it[0].s, "false", 6);
    if (it[1].s) memcpy(it[1].s, "null", 5);
    if (it[2].s) memcpy(it[2].s, "true", 5);
    if (!it[0].s || !it[1].s || !it[2].s) {
        for (int i = 0; i < 3; i++) free(it[i].s);
        return OOM(c), c->rc;
    }
    literals_node(c, it, 3);
    return c->rc;
}

static void comp_free(comp *c) {
    for (uint32_t i = 0; i < c->cap_where && c->where; i++) colloq_free(c->where[i]);
    colloq_free(c->where);
    colloq_free(c->memo_s);
    colloq_free(c->memo_n);
    c->where = NULL;
    c->memo_s = NULL;
    c->memo_n = NULL;
}

static int end(comp *c, uint32_t root, colloq_grammar **out) {
    if (!c->rc) {
        c->g->root = root;
        finish(c);
    }
    comp_free(c);
    if (c->rc) {
        colloq_grammar_free(c->g);
        return c->rc;
    }
    *out = c->g;
    return COLLOQ_OK;
}

int colloq_grammar_new_any(const colloq_grammar_opts *o, bool object_only, colloq_grammar **out,
                           colloq_err *err) {
    comp c;
    *out = NULL;
    int rc = begin(&c, o, err);
    if (rc) { comp_free(&c); colloq_grammar_free(c.g); return rc; }
    return end(&c, object_only ? GR_N_ANY_OBJ : GR_N_ANY, out);
}

int colloq_grammar_new_schema(const json_t *schema, const colloq_grammar_opts *o, colloq_grammar **out,
                              colloq_err *err) {
    comp c;
    *out = NULL;
    if (!schema) return colloq_seterr(err, COLLOQ_ERR_ARG, "json schema: none given");
    int rc = begin(&c, o, err);
    if (rc) { comp_free(&c); colloq_grammar_free(c.g); return rc; }
    c.root = schema;
    uint32_t root = compile(&c, schema);
    return end(&c, root, out);
}

int colloq_grammar_new_schema_text(const char *text, size_t len, const colloq_grammar_opts *o,
                                   colloq_grammar **out, colloq_err *err) {
    json_error_t je;
    *out = NULL;
    json_t *s = json_loadb(text ? text : "", text ? len : 0, JSON_DECODE_ANY, &je);
    if (!s) return colloq_seterr(err, COLLOQ_ERR_ARG, "json schema: line %d column %d: %s", je.line, je.column, je.text);
    int rc = colloq_grammar_new_schema(s, o, out, err);
    json_decref(s);
    return rc;
}

void colloq_grammar_free(colloq_grammar *g) {
    if (!g) return;
    colloq_free(g->nodes);
    colloq_free(g->idx);
    colloq_free(g->lits);
    colloq_free(g->bytes);
    colloq_free(g);
}

int colloq_grammar_min_length(const colloq_grammar *g) {
    return g ? (int)g->nodes[g->root].minlen : 0;
}
