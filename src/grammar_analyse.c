/*
 * grammar_analyse.c - what the compiler computes over finished node tables: each
 * node's shortest text (minlen), least nesting (min_depth) and first bytes, as
 * fixpoints so that recursive ($ref) nodes settle.  Pure functions of the tables;
 * must not add nodes or know JSON Schema.
 */
#include <string.h>

#include "grammar_internal.h"

#define NONE UINT32_MAX

static uint32_t sat(uint64_t v) { return v >= GR_INF ? GR_INF : (uint32_t)v; }

/* Union tag i's shortest rest after the tag: other required members, commas, '}'. */
uint32_t gr_union_tail(const colloq_grammar *g, const gr_node *u, uint32_t i) {
    const gr_node *o = &g->nodes[g->idx[u->first + i]];
    uint32_t disc = g->idx[u->first + u->n + i];
    uint64_t sum = 1;
    for (uint32_t p = 0; p < o->n; p++) {
        if (p == disc || !((o->required >> p) & 1)) continue;
        sum += 1 + g->lits[o->lit0 + p].len + 1 + (uint64_t)g->nodes[g->idx[o->first + p]].minlen;
    }
    return sat(sum);
}

void gr_analyse(colloq_grammar *g) {
    bool changed = true;
    for (uint32_t it = 0; changed && it < g->n_nodes + 64; it++) {
        changed = false;
        for (uint32_t x = 0; x < g->n_nodes; x++) {
            gr_node *n = &g->nodes[x];
            uint64_t len = GR_INF, dep = GR_INF;
            switch (n->kind) {
            case GR_ANY: len = 1; dep = 0; break;
            case GR_STRING: len = 2 + (uint64_t)n->min; dep = 0; break;
            case GR_NUMBER: case GR_INTEGER: len = 1; dep = 0; break;
            case GR_MAP: len = 2; dep = 1; break;
            case GR_LITERALS:
                for (uint32_t i = 0; i < n->n; i++) if (g->lits[n->first + i].len < len) len = g->lits[n->first + i].len;
                dep = n->n ? 0 : GR_INF;
                break;
            case GR_ARRAY: {
                const gr_node *c = &g->nodes[n->child];
                if (n->min == 0) { len = 2; dep = 1; }
                else {
                    len = 2 + (uint64_t)n->min * c->minlen + (n->min - 1);
                    dep = 1 + (uint64_t)c->min_depth;
                }
                break;
            }
            case GR_OBJECT: {
                uint64_t r = 0, sum = 2, d = 0;
                for (uint32_t p = 0; p < n->n; p++) {
                    if (!((n->required >> p) & 1)) continue;
                    const gr_node *c = &g->nodes[g->idx[n->first + p]];
                    sum += g->lits[n->lit0 + p].len + 1 + (uint64_t)c->minlen;
                    if (c->min_depth > d) d = c->min_depth;
                    r++;
                }
                len = sum + (r ? r - 1 : 0);
                dep = 1 + d;
                break;
            }
            case GR_ANYOF:
                for (uint32_t i = 0; i < n->n; i++) {
                    uint32_t a = g->idx[n->first + i];
                    if (a == NONE) continue;
                    if (g->nodes[a].minlen < len) len = g->nodes[a].minlen;
                    if (g->nodes[a].minlen < GR_INF && g->nodes[a].min_depth < dep) dep = g->nodes[a].min_depth;
                }
                break;
            case GR_UNION: {
                const gr_node *t = &g->nodes[n->child];
                dep = 0;
                for (uint32_t i = 0; i < n->n; i++) {
                    uint64_t v = 2 + (uint64_t)g->lits[n->lit0].len + g->lits[t->first + i].len + gr_union_tail(g, n, i);
                    if (v < len) len = v;
                    uint32_t d = g->nodes[g->idx[n->first + i]].min_depth;
                    if (d > dep) dep = d;
                }
                break;
            }
            }
            if (sat(len) < n->minlen) { n->minlen = sat(len); changed = true; }
            if (sat(dep) < n->min_depth) { n->min_depth = sat(dep); changed = true; }
        }
    }
    changed = true;
    for (uint32_t it = 0; changed && it < g->n_nodes + 64; it++) {
        changed = false;
        for (uint32_t x = 0; x < g->n_nodes; x++) {
            gr_node *n = &g->nodes[x];
            uint8_t s[32] = { 0 };
            switch (n->kind) {
            case GR_ANY:
                for (const char *p = "{[\"-0123456789tfn"; *p; p++) gr_setbit(s, (unsigned char)*p);
                break;
            case GR_OBJECT: case GR_MAP: case GR_UNION: gr_setbit(s, '{'); break;
            case GR_ARRAY: gr_setbit(s, '['); break;
            case GR_STRING: gr_setbit(s, '"'); break;
            case GR_NUMBER: case GR_INTEGER:
                for (const char *p = "-0123456789"; *p; p++) gr_setbit(s, (unsigned char)*p);
                break;
            case GR_LITERALS:
                for (uint32_t i = 0; i < n->n; i++)
                    if (g->lits[n->first + i].len) gr_setbit(s, g->bytes[g->lits[n->first + i].off]);
                break;
            case GR_ANYOF:
                for (uint32_t i = 0; i < n->n; i++) {
                    uint32_t a = g->idx[n->first + i];
                    if (a == NONE || g->nodes[a].minlen >= GR_INF) continue;
                    for (int b = 0; b < 32; b++) s[b] |= g->nodes[a].first_set[b];
                }
                break;
            }
            if (memcmp(s, n->first_set, 32)) { memcpy(n->first_set, s, 32); changed = true; }
        }
    }
}
