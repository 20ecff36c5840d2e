/*
 * grammar.c - the JSON pushdown automaton over bytes (one step per byte, frames
 * copied on write so a mask walk shares stack prefixes), shortest-completion
 * distances, and the per-request state: token masks walked over the vocabulary's
 * tries, accepting tokens and bytes.  Compiling schemas is grammar_schema.c's job,
 * building tries grammar_vocab.c's; this file must not allocate while masking.
 */
#include <math.h>
#include <string.h>

#include "grammar_internal.h"
#include "util.h"

enum { R_BEFORE, R_CHILD, R_AFTER };
enum { O_OPEN, O_FIRST, O_KEY, O_KEYCHILD, O_COLON, O_VAL, O_CHILD, O_NEXT, O_KEY2 };
enum { A_OPEN, A_FIRST, A_CHILD, A_NEXT, A_VAL };
enum { S_OPEN, S_BODY, S_ESC, S_HEX, S_LOW_BS, S_LOW_U, S_UTF8 };
enum { N_START, N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP };

#define FRAMES_PER_BYTE 6

static inline bool is_ws(unsigned c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }
static inline bool is_digit(unsigned c) { return c >= '0' && c <= '9'; }

static inline const gr_node *nd(const colloq_grammar *g, uint32_t i) { return &g->nodes[i]; }
static inline const gr_lit *lit(const colloq_grammar *g, uint32_t i) { return &g->lits[i]; }
static inline uint8_t lit_byte(const colloq_grammar *g, uint32_t i, uint32_t pos) {
    return g->bytes[g->lits[i].off + pos];
}
static inline uint32_t sat_add(uint32_t a, uint32_t b) {
    uint64_t s = (uint64_t)a + b;
    return s >= GR_INF ? GR_INF : (uint32_t)s;
}
static inline uint32_t sat_mul(uint32_t a, uint32_t b) {
    uint64_t s = (uint64_t)a * b;
    return s >= GR_INF ? GR_INF : (uint32_t)s;
}

/* ---- frames ---- */

static gr_frame *fr_cow(gr_walk *w, const gr_frame *f) {
    if (w->top >= w->cap) return NULL;
    gr_frame *n = &w->arena[w->top++];
    *n = *f;
    return n;
}

static bool ws_step(const colloq_grammar *g, gr_frame *f) {
    if (g->o.ws_max >= 0 && f->ws >= g->o.ws_max) return false;
    if (f->ws < 255) f->ws++;
    return true;
}

static inline bool is_container(const gr_node *n) {
    return n->kind == GR_OBJECT || n->kind == GR_MAP || n->kind == GR_ARRAY || n->kind == GR_UNION;
}

/* A value of node x may start in a container frame at depth d. */
static inline bool depth_ok(const colloq_grammar *g, unsigned d, uint32_t x) {
    const gr_node *n = nd(g, x);
    return n->minlen < GR_INF && d + n->min_depth <= (unsigned)g->o.max_depth;
}

/* Property i of the OBJECT frame f may still be added. */
static inline bool prop_ok(const colloq_grammar *g, const gr_frame *f, const gr_node *n, uint32_t i) {
    return !((f->seen >> i) & 1) && depth_ok(g, f->depth, g->idx[n->first + i]);
}

/* Literals [lo, hi) share their first pos bytes and are sorted: the sub-range whose byte
 * at pos is c (those of length pos come first and are skipped). */
static void lit_narrow(const colloq_grammar *g, uint32_t lo, uint32_t hi, uint32_t pos, unsigned c,
                       uint32_t *nlo, uint32_t *nhi) {
    if (lo < hi && lit(g, lo)->len == pos) lo++;
    uint32_t a = lo, b = hi;
    while (a < b) {                       /* first with byte >= c */
        uint32_t m = a + (b - a) / 2;
        if (lit_byte(g, m, pos) < c) a = m + 1; else b = m;
    }
    uint32_t s = a;
    b = hi;
    while (a < b) {                       /* first with byte > c */
        uint32_t m = a + (b - a) / 2;
        if (lit_byte(g, m, pos) <= c) a = m + 1; else b = m;
    }
    *nlo = s;
    *nhi = a;
}

/* Resolve ANY / ANYOF by the first byte c, make the child frame below parent (already
 * copied, its sub set to "child active") and feed c to it. */
static const gr_frame *push_value(gr_walk *w, const gr_frame *parent, uint32_t x, unsigned c) {
    const colloq_grammar *g = w->g;
    for (int guard = 0; guard < 64; guard++) {
        const gr_node *n = nd(g, x);
        if (n->kind == GR_ANYOF) {
            uint32_t pick = UINT32_MAX;
            for (uint32_t i = 0; i < n->n; i++) {
                uint32_t a = g->idx[n->first + i];
                if (nd(g, a)->minlen < GR_INF && gr_bit(nd(g, a)->first_set, c)) { pick = a; break; }
            }
            if (pick == UINT32_MAX) return NULL;
            x = pick;
            continue;
        }
        if (n->kind == GR_ANY) {
            if (c == '{') x = GR_N_ANY_OBJ;
            else if (c == '[') x = GR_N_ANY_ARR;
            else if (c == '"') x = GR_N_ANY_STR;
            else if (c == '-' || is_digit(c)) x = GR_N_ANY_NUM;
            else if (c == 't' || c == 'f' || c == 'n') x = GR_N_ANY_LIT;
            else return NULL;
            n = nd(g, x);
        }
        if (!gr_bit(n->first_set, c) || !depth_ok(g, parent->depth, x)) return NULL;
        if (w->top >= w->cap) return NULL;
        gr_frame *f = &w->arena[w->top++];
        memset(f, 0, sizeof *f);
        f->up = parent;
        f->node = x;
        f->depth = (uint8_t)(parent->depth + (is_container(n) ? 1 : 0));
        if (n->kind == GR_LITERALS) { f->lo = n->first; f->hi = n->first + n->n; }
        return gr_step(w, f, c);
    }
    return NULL;
}

/* Pop the finished frame f: a copy of its parent, moved past the child. */
static gr_frame *pop(gr_walk *w, const gr_frame *f) {
    const colloq_grammar *g = w->g;
    gr_frame *p = fr_cow(w, f->up);
    if (!p) return NULL;
    p->ws = 0;
    if (p->node == GR_ROOT_NODE) { p->sub = R_AFTER; return p; }
    const gr_node *n = nd(g, p->node);
    switch (n->kind) {
    case GR_ARRAY:
        p->sub = A_NEXT;
        p->count++;
        break;
    case GR_MAP:
        if (p->sub == O_KEYCHILD) p->sub = O_COLON;
        else { p->sub = O_NEXT; p->count++; }
        break;
    case GR_UNION: {                      /* the tag is known: become that object */
        uint32_t i = f->lo - nd(g, n->child)->first;
        uint32_t k = n->n ? nd(g, n->child)->n : 0;
        if (i >= k) return NULL;
        p->node = g->idx[n->first + i];
        p->seen = 1ull << g->idx[n->first + k + i];
        p->sub = O_NEXT;
        break;
    }
    default:                              /* GR_OBJECT */
        p->sub = O_NEXT;
        break;
    }
    return p;
}

/* ---- one byte ---- */

static const gr_frame *step_string(gr_walk *w, const gr_frame *f, const gr_node *n, unsigned c) {
    gr_frame *m = fr_cow(w, f);
    if (!m) return NULL;
    switch (f->sub) {
    case S_OPEN:
        if (c != '"') return NULL;
        m->sub = S_BODY;
        return m;
    case S_BODY:
        if (c == '"') {
            if (f->count < n->min) return NULL;
            w->top--;                     /* the copy is not needed */
            return pop(w, f);
        }
        if (c < 0x20 || f->count >= n->max) return NULL;
        if (c == '\\') { m->sub = S_ESC; return m; }
        if (c < 0x80) { m->count++; return m; }
        if (c >= 0xc2 && c <= 0xdf) m->pos = 1;
        else if (c >= 0xe0 && c <= 0xef) m->pos = 2;
        else if (c >= 0xf0 && c <= 0xf4) m->pos = 3;
        else return NULL;
        m->lo = 0x80; m->hi = 0xbf;
        if (c == 0xe0) m->lo = 0xa0;
        else if (c == 0xed) m->hi = 0x9f;
        else if (c == 0xf0) m->lo = 0x90;
        else if (c == 0xf4) m->hi = 0x8f;
        m->sub = S_UTF8;
        return m;
    case S_UTF8:
        if (c < f->lo || c > f->hi) return NULL;
        m->lo = 0x80; m->hi = 0xbf;
        if (--m->pos == 0) { m->sub = S_BODY; m->count++; }
        return m;
    case S_ESC:
        if (c == 'u') { m->sub = S_HEX; m->pos = 0; m->aux = 0; m->flag = 0; return m; }
        if (!strchr("\"\\/bfnrt", (int)c) || c == 0) return NULL;
        m->sub = S_BODY;
        m->count++;
        return m;
    case S_HEX: {
        unsigned d;
        if (is_digit(c)) d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return NULL;
        uint32_t v = ((uint32_t)f->aux << 4) | d, k = f->pos + 1u, sh = 4 * (4 - k);
        uint32_t lo = v << sh, hi = ((v + 1) << sh) - 1;
        bool ok = f->flag ? (hi >= 0xdc00 && lo <= 0xdfff)
                          : ((lo <= 0xdbff && hi >= 0x0001) || hi >= 0xe000);
        if (!ok) return NULL;
        m->aux = (uint16_t)v;
        m->pos = (uint16_t)k;
        if (k < 4) return m;
        if (!f->flag && v >= 0xd800 && v <= 0xdbff) { m->sub = S_LOW_BS; return m; }
        m->sub = S_BODY;
        m->count++;
        return m;
    }
    case S_LOW_BS:
        if (c != '\\') return NULL;
        m->sub = S_LOW_U;
        return m;
    case S_LOW_U:
        if (c != 'u') return NULL;
        m->sub = S_HEX; m->pos = 0; m->aux = 0; m->flag = 1;
        return m;
    }
    return NULL;
}

static const gr_frame *step_number(gr_walk *w, const gr_frame *f, const gr_node *n, unsigned c) {
    const colloq_grammar_opts *o = &w->g->o;
    bool real = n->kind == GR_NUMBER;
    uint8_t to = 0xff;
    uint32_t cnt = 1;
    bool can_end = false;
    switch (f->sub) {
    case N_START:
        if (c == '-') { to = N_MINUS; cnt = 0; }
        else if (c == '0') to = N_ZERO;
        else if (is_digit(c)) to = N_INT;
        break;
    case N_MINUS:
        if (c == '0') to = N_ZERO;
        else if (is_digit(c)) to = N_INT;
        break;
    case N_ZERO:
    case N_INT:
        can_end = true;
        if (is_digit(c)) {
            if (f->sub == N_ZERO || (int)f->count >= o->max_int_digits) return NULL;
            to = N_INT; cnt = f->count + 1;
        } else if (real && c == '.' && o->max_frac_digits > 0) { to = N_DOT; cnt = 0; }
        else if (real && (c == 'e' || c == 'E') && o->max_exp_digits > 0) { to = N_E; cnt = 0; }
        break;
    case N_DOT:
        if (is_digit(c)) to = N_FRAC;
        break;
    case N_FRAC:
        can_end = true;
        if (is_digit(c)) {
            if ((int)f->count >= o->max_frac_digits) return NULL;
            to = N_FRAC; cnt = f->count + 1;
        } else if (c == 'e' || c == 'E') {
            if (o->max_exp_digits > 0) { to = N_E; cnt = 0; }
        }
        break;
    case N_E:
        if (c == '+' || c == '-') { to = N_ESIGN; cnt = 0; }
        else if (is_digit(c)) to = N_EXP;
        break;
    case N_ESIGN:
        if (is_digit(c)) to = N_EXP;
        break;
    case N_EXP:
        can_end = true;
        if (is_digit(c)) {
            if ((int)f->count >= o->max_exp_digits) return NULL;
            to = N_EXP; cnt = f->count + 1;
        }
        break;
    }
    if (to == 0xff) {
        if (!can_end) return NULL;
        const gr_frame *p = pop(w, f);   /* the number ended before c */
        return p ? gr_step(w, p, c) : NULL;
    }
    gr_frame *m = fr_cow(w, f);
    if (!m) return NULL;
    m->sub = to;
    m->count = cnt;
    return m;
}

static const gr_frame *step_literals(gr_walk *w, const gr_frame *f, unsigned c) {
    const colloq_grammar *g = w->g;
    uint32_t lo, hi;
    lit_narrow(g, f->lo, f->hi, f->pos, c, &lo, &hi);
    if (lo == hi) {
        if (f->lo < f->hi && lit(g, f->lo)->len == f->pos) {   /* complete: c is the parent's */
            const gr_frame *p = pop(w, f);
            return p ? gr_step(w, p, c) : NULL;
        }
        return NULL;
    }
    gr_frame *m = fr_cow(w, f);
    if (!m) return NULL;
    m->lo = lo; m->hi = hi; m->pos++;
    if (hi - lo == 1 && lit(g, lo)->len == m->pos) return pop(w, m);
    return m;
}

/* Member name of an OBJECT / UNION frame: narrow the candidate keys by c. */
static const gr_frame *step_key(gr_walk *w, const gr_frame *f, const gr_node *n, unsigned c) {
    const colloq_grammar *g = w->g;
    uint32_t lo, hi;
    lit_narrow(g, f->lo, f->hi, f->pos, c, &lo, &hi);
    if (n->kind == GR_OBJECT) {
        bool any = false;
        for (uint32_t i = lo; i < hi && !any; i++) any = prop_ok(g, f, n, i - n->lit0);
        if (!any) return NULL;
    } else if (lo == hi) {
        return NULL;
    }
    gr_frame *m = fr_cow(w, f);
    if (!m) return NULL;
    m->lo = lo; m->hi = hi; m->pos++;
    if (lit(g, lo)->len == m->pos) {      /* a key is complete (keys end in '"': unique) */
        m->sub = O_COLON;
        m->ws = 0;
        if (n->kind == GR_OBJECT) {
            m->aux = (uint16_t)(lo - n->lit0);
            m->seen |= 1ull << m->aux;
        }
    }
    return m;
}

/* Start a member name at '"' in an OBJECT / MAP / UNION frame in O_FIRST or O_KEY2. */
static const gr_frame *start_key(gr_walk *w, const gr_frame *f, const gr_node *n, unsigned c) {
    const colloq_grammar *g = w->g;
    if (c != '"') return NULL;
    if (n->kind == GR_MAP) {
        if (!depth_ok(g, f->depth, n->child)) return NULL;
        gr_frame *m = fr_cow(w, f);
        if (!m) return NULL;
        m->sub = O_KEYCHILD;
        m->ws = 0;
        return push_value(w, m, GR_N_ANY_STR, c);
    }
    gr_frame tmp = *f;                     /* step_key copies it into the arena */
    tmp.sub = O_KEY;
    tmp.ws = 0;
    tmp.pos = 0;
    tmp.lo = n->lit0;
    tmp.hi = n->lit0 + (n->kind == GR_OBJECT ? n->n : 1);
    return step_key(w, &tmp, n, c);
}

static const gr_frame *step_object(gr_walk *w, const gr_frame *f, const gr_node *n, unsigned c) {
    const colloq_grammar *g = w->g;
    if (f->sub == O_KEY) return step_key(w, f, n, c);
    if (f->sub == O_OPEN) {
        if (c != '{') return NULL;
        gr_frame *m = fr_cow(w, f);
        if (!m) return NULL;
        m->sub = O_FIRST;
        return m;
    }
    if (is_ws(c)) {                        /* every other state sits in a gap */
        gr_frame *m = fr_cow(w, f);
        return m && ws_step(g, m) ? m : NULL;
    }
    switch (f->sub) {
    case O_FIRST:
        if (c == '}') {
            if (n->kind == GR_OBJECT && (n->required & ~f->seen)) return NULL;
            if (n->kind == GR_UNION) return NULL;
            return pop(w, f);
        }
        return start_key(w, f, n, c);
    case O_KEY2:
        return start_key(w, f, n, c);
    case O_COLON: {
        if (c != ':') return NULL;
        gr_frame *m = fr_cow(w, f);
        if (!m) return NULL;
        m->sub = O_VAL;
        m->ws = 0;
        return m;
    }
    case O_VAL: {
        uint32_t x = n->kind == GR_OBJECT ? g->idx[n->first + f->aux] : n->child;
        gr_frame *m = fr_cow(w, f);
        if (!m) return NULL;
        m->sub = O_CHILD;
        m->ws = 0;
        return push_value(w, m, x, c);
    }
    case O_NEXT:
        if (c == '}') {
            if (n->kind == GR_OBJECT && (n->required & ~f->seen)) return NULL;
            return pop(w, f);
        }
        if (c == ',') {
            bool more = false;
            if (n->kind == GR_OBJECT) {
                for (uint32_t i = 0; i < n->n && !more; i++) more = prop_ok(g, f, n, i);
            } else {
                more = f->count < n->max && depth_ok(g, f->depth, n->child);
            }
            if (!more) return NULL;
            gr_frame *m = fr_cow(w, f);
            if (!m) return NULL;
            m->sub = O_KEY2;
            m->ws = 0;
            return m;
        }
        return NULL;
    }
    return NULL;
}

static const gr_frame *step_array(gr_walk *w, const gr_frame *f, const gr_node *n, unsigned c) {
    const colloq_grammar *g = w->g;
    if (f->sub == A_OPEN) {
        if (c != '[') return NULL;
        gr_frame *m = fr_cow(w, f);
        if (!m) return NULL;
        m->sub = A_FIRST;
        return m;
    }
    if (is_ws(c)) {
        gr_frame *m = fr_cow(w, f);
        return m && ws_step(g, m) ? m : NULL;
    }
    switch (f->sub) {
    case A_FIRST:
        if (c == ']') return n->min == 0 ? pop(w, f) : NULL;
        if (n->max == 0) return NULL;
        /* fall through */
    case A_VAL: {
        gr_frame *m = fr_cow(w, f);
        if (!m) return NULL;
        m->sub = A_CHILD;
        m->ws = 0;
        return push_value(w, m, n->child, c);
    }
    case A_NEXT:
        if (c == ']') return f->count >= n->min ? pop(w, f) : NULL;
        if (c == ',' && f->count < n->max && depth_ok(g, f->depth, n->child)) {
            gr_frame *m = fr_cow(w, f);
            if (!m) return NULL;
            m->sub = A_VAL;
            m->ws = 0;
            return m;
        }
        return NULL;
    }
    return NULL;
}

static const gr_frame *step_root(gr_walk *w, const gr_frame *f, unsigned c) {
    if (is_ws(c)) {
        if (f->sub == R_CHILD) return NULL;
        gr_frame *m = fr_cow(w, f);
        return m && ws_step(w->g, m) ? m : NULL;
    }
    if (f->sub != R_BEFORE) return NULL;
    gr_frame *m = fr_cow(w, f);
    if (!m) return NULL;
    m->sub = R_CHILD;
    m->ws = 0;
    return push_value(w, m, w->g->root, c);
}

const gr_frame *gr_step(gr_walk *w, const gr_frame *f, unsigned c) {
    if (!f) return NULL;
    if (f->node == GR_ROOT_NODE) return step_root(w, f, c);
    const gr_node *n = nd(w->g, f->node);
    switch (n->kind) {
    case GR_OBJECT: case GR_MAP: case GR_UNION: return step_object(w, f, n, c);
    case GR_ARRAY:    return step_array(w, f, n, c);
    case GR_STRING:   return step_string(w, f, n, c);
    case GR_NUMBER: case GR_INTEGER: return step_number(w, f, n, c);
    case GR_LITERALS: return step_literals(w, f, c);
    }
    return NULL;
}

/* ---- end of text, shortest completion ---- */

/* A frame that is complete but could still grow (a number, a literal with longer
 * candidates); the text may end there when its parent is the root. */
static bool frame_complete(const colloq_grammar *g, const gr_frame *f) {
    if (f->node == GR_ROOT_NODE) return false;
    const gr_node *n = nd(g, f->node);
    if (n->kind == GR_NUMBER || n->kind == GR_INTEGER)
        return f->sub == N_ZERO || f->sub == N_INT || f->sub == N_FRAC || f->sub == N_EXP;
    if (n->kind == GR_LITERALS) return f->lo < f->hi && lit(g, f->lo)->len == f->pos;
    return false;
}

bool gr_can_end(const colloq_grammar *g, const gr_frame *f) {
    if (!f) return false;
    if (f->node == GR_ROOT_NODE) return f->sub == R_AFTER;
    return frame_complete(g, f) && f->up && f->up->node == GR_ROOT_NODE;
}

static uint32_t str_rest(const gr_node *n, uint32_t count) {
    return (n->min > count ? n->min - count : 0) + 1;
}

/* Required properties of OBJECT frame f not yet present, except property excl:
 * bytes of their members (name, ':', value) and their number. */
static uint32_t req_cost(const colloq_grammar *g, const gr_node *n, uint64_t seen, uint32_t excl,
                         uint32_t *count) {
    uint64_t need = n->required & ~seen;
    if (excl < 64) need &= ~(1ull << excl);
    uint32_t cost = 0, r = 0;
    while (need) {
        uint32_t i = (uint32_t)__builtin_ctzll(need);
        need &= need - 1;
        cost = sat_add(cost, lit(g, n->lit0 + i)->len + 1);
        cost = sat_add(cost, nd(g, g->idx[n->first + i])->minlen);
        r++;
    }
    *count = r;
    return cost;
}

/* Cheapest member that can be added now (name, ':', value), for an OBJECT frame. */
static uint32_t cheapest_member(const colloq_grammar *g, const gr_frame *f, const gr_node *n,
                                uint32_t lo, uint32_t hi, uint32_t pos) {
    uint32_t best = GR_INF;
    for (uint32_t i = lo; i < hi; i++) {
        uint32_t p = i - n->lit0;
        if (!prop_ok(g, f, n, p)) continue;
        uint32_t r, c = req_cost(g, n, f->seen, p, &r);
        c = sat_add(c, r + 1 + (lit(g, i)->len - pos) + 1);
        c = sat_add(c, nd(g, g->idx[n->first + p])->minlen);
        if (c < best) best = c;
    }
    return best;
}

/* Bytes to finish frame f: top = f is the innermost frame; else its child is active. */
static uint32_t frame_rest(const colloq_grammar *g, const gr_frame *f, bool top) {
    if (f->node == GR_ROOT_NODE) return f->sub == R_BEFORE ? nd(g, g->root)->minlen : 0;
    const gr_node *n = nd(g, f->node);
    uint32_t r, c;
    switch (n->kind) {
    case GR_STRING:
        switch (f->sub) {
        case S_OPEN:   return n->minlen;
        case S_BODY:   return str_rest(n, f->count);
        case S_ESC:    return 1 + str_rest(n, f->count + 1);
        case S_UTF8:   return f->pos + str_rest(n, f->count + 1);
        case S_LOW_BS: return 6 + str_rest(n, f->count + 1);
        case S_LOW_U:  return 5 + str_rest(n, f->count + 1);
        case S_HEX: {
            uint32_t k = f->pos, sh = 4 * (4 - k), v = f->aux;
            uint32_t lo = v << sh, hi = ((v + 1) << sh) - 1;
            bool plain = f->flag || (lo <= 0xd7ff && hi >= 1) || hi >= 0xe000;
            return (4 - k) + (plain ? 0 : 6) + str_rest(n, f->count + 1);
        }
        }
        return GR_INF;
    case GR_NUMBER: case GR_INTEGER:
        return frame_complete(g, f) ? 0 : 1;
    case GR_LITERALS: {
        uint32_t best = GR_INF;
        for (uint32_t i = f->lo; i < f->hi; i++)
            if (lit(g, i)->len - f->pos < best) best = lit(g, i)->len - f->pos;
        return best;
    }
    case GR_ARRAY: {
        uint32_t item = nd(g, n->child)->minlen;
        uint32_t m = n->min > f->count ? n->min - f->count : 0;
        switch (top ? f->sub : A_CHILD) {
        case A_OPEN:  return n->minlen;
        case A_FIRST: return sat_add(sat_add(sat_mul(m, item), m ? m - 1 : 0), 1);
        case A_NEXT:  return sat_add(sat_mul(m, sat_add(item, 1)), 1);
        case A_VAL:   m = m ? m : 1; return sat_add(sat_mul(m, sat_add(item, 1)), 0);
        case A_CHILD: m = n->min > f->count + 1 ? n->min - f->count - 1 : 0;
                      return sat_add(sat_mul(m, sat_add(item, 1)), 1);
        }
        return GR_INF;
    }
    case GR_MAP: {
        uint32_t val = nd(g, n->child)->minlen;
        switch (f->sub) {
        case O_OPEN:  return n->minlen;
        case O_FIRST: case O_NEXT: case O_CHILD: return 1;
        case O_KEY2:  return sat_add(val, 2 + 1 + 1);
        case O_KEYCHILD: case O_COLON: return sat_add(val, 2);
        case O_VAL:   return sat_add(val, 1);
        }
        return GR_INF;
    }
    case GR_UNION: {
        uint32_t best = GR_INF;
        const gr_node *t = nd(g, n->child);
        for (uint32_t i = 0; i < t->n; i++) {
            uint32_t v = sat_add(lit(g, t->first + i)->len, g->idx[n->first + 2 * t->n + i]);
            if (v < best) best = v;
        }
        switch (f->sub) {
        case O_OPEN:  return n->minlen;
        case O_FIRST: return sat_add(best, lit(g, n->lit0)->len + 1);
        case O_KEY:   return sat_add(best, lit(g, n->lit0)->len - f->pos + 1);
        case O_COLON: return sat_add(best, 1);
        case O_VAL:   return best;
        }
        return GR_INF;                    /* O_CHILD: gr_dist handles the tag with its frame */
    }
    case GR_OBJECT:
        switch (f->sub) {
        case O_OPEN:  return n->minlen;
        case O_FIRST:
            c = req_cost(g, n, f->seen, 64, &r);
            return sat_add(c, (r ? r - 1 : 0) + 1);
        case O_NEXT: case O_CHILD:
            c = req_cost(g, n, f->seen, 64, &r);
            return sat_add(c, r + 1);
        case O_KEY2:
            c = req_cost(g, n, f->seen, 64, &r);
            if (r) return sat_add(c, r - 1 + 1);
            return cheapest_member(g, f, n, n->lit0, n->lit0 + n->n, 0);
        case O_KEY:
            return cheapest_member(g, f, n, f->lo, f->hi, f->pos);
        case O_COLON: case O_VAL:
            c = req_cost(g, n, f->seen, 64, &r);
            c = sat_add(c, r + 1 + (f->sub == O_COLON ? 1 : 0));
            return sat_add(c, nd(g, g->idx[n->first + f->aux])->minlen);
        }
        return GR_INF;
    }
    return GR_INF;
}

uint32_t gr_dist(const colloq_grammar *g, const gr_frame *f) {
    uint32_t d = 0;
    bool top = true;
    while (f) {
        const gr_frame *up = f->up;
        if (top && up && up->node != GR_ROOT_NODE && nd(g, up->node)->kind == GR_UNION &&
            up->sub == O_CHILD) {
            /* the tag literal on top decides which object the union becomes */
            const gr_node *u = nd(g, up->node), *t = nd(g, u->child);
            uint32_t best = GR_INF;
            for (uint32_t i = f->lo; i < f->hi; i++) {
                uint32_t j = i - t->first;
                uint32_t v = sat_add(lit(g, i)->len - f->pos, g->idx[u->first + 2 * t->n + j]);
                if (v < best) best = v;
            }
            d = sat_add(d, best);
            f = up->up;
            top = false;
            continue;
        }
        d = sat_add(d, frame_rest(g, f, top));
        f = up;
        top = false;
    }
    return d;
}

/* ---- per-request state ---- */

struct colloq_grammar_state {
    const colloq_grammar       *g;
    const colloq_grammar_vocab *v;
    gr_frame *flat;               /* committed stack: flat[0] root .. flat[n_flat-1] top */
    uint32_t  n_flat, cap_flat;
    gr_frame *save;               /* copy of flat while bytes are tried */
    gr_frame *keep;               /* copy of flat for allows_bytes */
    gr_frame *tmp;                /* flattening buffer */
    gr_frame *arena;              /* frames made while stepping */
    uint32_t  cap_arena;
    const gr_frame **wst;         /* mask walk: stack after each trie depth */
    uint32_t *wmark;              /*            arena top after each trie depth */
    uint64_t *mask;               /* for mask_logits */
    bool      finished;
};

void colloq_grammar_state_reset(colloq_grammar_state *s) {
    if (!s) return;
    memset(&s->flat[0], 0, sizeof s->flat[0]);
    s->flat[0].node = GR_ROOT_NODE;
    s->flat[0].sub = R_BEFORE;
    s->n_flat = 1;
    s->finished = false;
}

int colloq_grammar_state_new(const colloq_grammar *g, const colloq_grammar_vocab *v,
                             colloq_grammar_state **out, colloq_err *err) {
    *out = NULL;
    if (!g || !v) return colloq_seterr(err, COLLOQ_ERR_ARG, "grammar state: no grammar or vocabulary");
    colloq_grammar_state *s = colloq_calloc(1, sizeof *s);
    if (!s) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "grammar state: out of memory");
    s->g = g;
    s->v = v;
    s->cap_flat = (uint32_t)g->o.max_depth + 4;
    s->cap_arena = (v->max_len + 2) * FRAMES_PER_BYTE;
    s->flat = colloq_calloc(s->cap_flat, sizeof *s->flat);
    s->save = colloq_calloc(s->cap_flat, sizeof *s->save);
    s->keep = colloq_calloc(s->cap_flat, sizeof *s->keep);
    s->tmp = colloq_calloc(s->cap_flat, sizeof *s->tmp);
    s->arena = colloq_calloc(s->cap_arena, sizeof *s->arena);
    s->wst = colloq_calloc(v->max_len + 2, sizeof *s->wst);
    s->wmark = colloq_calloc(v->max_len + 2, sizeof *s->wmark);
    s->mask = colloq_calloc((size_t)v->words, sizeof *s->mask);
    if (!s->flat || !s->save || !s->keep || !s->tmp || !s->arena || !s->wst || !s->wmark || !s->mask) {
        colloq_grammar_state_free(s);
        return colloq_seterr(err, COLLOQ_ERR_NOMEM, "grammar state: out of memory");
    }
    colloq_grammar_state_reset(s);
    *out = s;
    return COLLOQ_OK;
}

void colloq_grammar_state_free(colloq_grammar_state *s) {
    if (!s) return;
    colloq_free(s->flat);
    colloq_free(s->save);
    colloq_free(s->keep);
    colloq_free(s->tmp);
    colloq_free(s->arena);
    colloq_free(s->wst);
    colloq_free(s->wmark);
    colloq_free(s->mask);
    colloq_free(s);
}

static inline const gr_frame *top_of(const colloq_grammar_state *s) { return &s->flat[s->n_flat - 1]; }

/* Copy the stack ending at t into flat[0..n) (root first), via tmp; 0 when it does not fit. */
static uint32_t flatten(const gr_frame *t, gr_frame *flat, gr_frame *tmp, uint32_t cap) {
    uint32_t n = 0;
    for (const gr_frame *f = t; f; f = f->up) {
        if (n >= cap) return 0;
        tmp[n++] = *f;
    }
    for (uint32_t i = 0; i < n; i++) {
        flat[i] = tmp[n - 1 - i];
        flat[i].up = i ? &flat[i - 1] : NULL;
    }
    return n;
}

/* Store the stack ending at t as the committed one. */
static bool commit(colloq_grammar_state *s, const gr_frame *t) {
    uint32_t n = flatten(t, s->flat, s->tmp, s->cap_flat);
    if (!n) return false;
    s->n_flat = n;
    return true;
}

int gr_accepts(const colloq_grammar *g, uint32_t x, const uint8_t *p, uint32_t n) {
    colloq_grammar tmpg = *g;             /* the same tables with x as the root */
    tmpg.root = x;
    uint32_t cap = (uint32_t)g->o.max_depth + 4, nf = 1;
    gr_frame *flat = colloq_calloc(cap, sizeof *flat), *tmp = colloq_calloc(cap, sizeof *tmp);
    gr_frame arena[2 * FRAMES_PER_BYTE];
    if (!flat || !tmp) {
        colloq_free(flat);
        colloq_free(tmp);
        return -1;
    }
    flat[0].node = GR_ROOT_NODE;
    flat[0].sub = R_BEFORE;
    bool ok = true;
    for (uint32_t i = 0; ok && i < n; i++) {
        gr_walk w = { &tmpg, arena, 0, 2 * FRAMES_PER_BYTE };
        const gr_frame *t = gr_step(&w, &flat[nf - 1], p[i]);
        ok = t && (nf = flatten(t, flat, tmp, cap)) > 0;
    }
    ok = ok && gr_can_end(&tmpg, &flat[nf - 1]);
    colloq_free(flat);
    colloq_free(tmp);
    return ok;
}

/* Feed bytes one at a time; on failure the committed stack is restored. */
static bool advance(colloq_grammar_state *s, const uint8_t *p, size_t n) {
    uint32_t saved = s->n_flat;
    memcpy(s->save, s->flat, saved * sizeof *s->flat);
    for (size_t i = 0; i < n; i++) {
        gr_walk w = { s->g, s->arena, 0, s->cap_arena };
        const gr_frame *t = gr_step(&w, top_of(s), p[i]);
        if (!t || !commit(s, t)) {
            memcpy(s->flat, s->save, saved * sizeof *s->flat);
            for (uint32_t k = 1; k < saved; k++) s->flat[k].up = &s->flat[k - 1];
            s->n_flat = saved;
            return false;
        }
    }
    return true;
}

int colloq_grammar_state_accept_bytes(colloq_grammar_state *s, const char *p, size_t n, colloq_err *err) {
    if (!s || (!p && n)) return colloq_seterr(err, COLLOQ_ERR_ARG, "grammar: bad argument");
    if (s->finished && n) return colloq_seterr(err, COLLOQ_ERR_ARG, "grammar: text after the end of the document");
    if (!advance(s, (const uint8_t *)p, n))
        return colloq_seterr(err, COLLOQ_ERR_ARG, "grammar: the text does not continue a valid document");
    return COLLOQ_OK;
}

bool colloq_grammar_state_allows_bytes(colloq_grammar_state *s, const char *p, size_t n) {
    if (!s || (!p && n) || (s->finished && n)) return false;
    uint32_t keep = s->n_flat;
    memcpy(s->keep, s->flat, keep * sizeof *s->flat);
    bool ok = advance(s, (const uint8_t *)p, n);
    memcpy(s->flat, s->keep, keep * sizeof *s->flat);
    for (uint32_t k = 1; k < keep; k++) s->flat[k].up = &s->flat[k - 1];
    s->n_flat = keep;
    return ok;
}

int colloq_grammar_state_accept(colloq_grammar_state *s, colloq_token t, colloq_err *err) {
    if (!s) return colloq_seterr(err, COLLOQ_ERR_ARG, "grammar: no state");
    const colloq_grammar_vocab *v = s->v;
    if (t < 0 || t >= v->n) return colloq_seterr(err, COLLOQ_ERR_ARG, "grammar: token %d out of range", t);
    if (s->finished) return colloq_seterr(err, COLLOQ_ERR_ARG, "grammar: token %d after the end", t);
    if (v->is_eog[t]) {
        if (!gr_can_end(s->g, top_of(s)))
            return colloq_seterr(err, COLLOQ_ERR_ARG, "grammar: end of generation before the document is complete");
        s->finished = true;
        return COLLOQ_OK;
    }
    uint32_t len = v->off[t + 1] - v->off[t];
    if (len == 0 || len > v->max_len || !advance(s, v->bytes + v->off[t], len))
        return colloq_seterr(err, COLLOQ_ERR_ARG, "grammar: token %d does not continue a valid document", t);
    return COLLOQ_OK;
}

bool colloq_grammar_state_accepting(const colloq_grammar_state *s) {
    return s && (s->finished || gr_can_end(s->g, top_of(s)));
}

bool colloq_grammar_state_done(const colloq_grammar_state *s) {
    if (!s) return false;
    const gr_frame *t = top_of(s);
    return s->finished || (t->node == GR_ROOT_NODE && t->sub == R_AFTER);
}

bool colloq_grammar_state_finished(const colloq_grammar_state *s) { return s && s->finished; }

int colloq_grammar_state_min_remaining(const colloq_grammar_state *s) {
    if (!s || s->finished) return 0;
    uint32_t d = gr_dist(s->g, top_of(s));
    return d >= GR_INF ? INT32_MAX : (int)d;
}

/* ---- masks ---- */

static void walk(colloq_grammar_state *s, const gr_trie *t, bool budget, int64_t limit, uint64_t *mask) {
    const colloq_grammar *g = s->g;
    gr_walk w = { g, s->arena, 0, s->cap_arena };
    s->wst[0] = top_of(s);
    s->wmark[0] = 0;
    uint32_t i = 1;
    while (i < t->n_nodes) {
        const gr_tnode *tn = &t->nodes[i];
        uint32_t d = tn->depth;
        w.top = s->wmark[d - 1];
        const gr_frame *f = gr_step(&w, s->wst[d - 1], tn->byte);
        if (!f) { i = tn->skip; continue; }
        s->wst[d] = f;
        s->wmark[d] = w.top;
        if (tn->tok_lo < tn->tok_hi && (!budget || (int64_t)gr_dist(g, f) <= limit))
            for (uint32_t k = tn->tok_lo; k < tn->tok_hi; k++) {
                colloq_token id = t->order[k];
                mask[id >> 6] |= 1ull << (id & 63);
            }
        i++;
    }
}

static int fill(colloq_grammar_state *s, bool budget, int64_t limit, uint64_t *mask) {
    const colloq_grammar *g = s->g;
    const colloq_grammar_vocab *v = s->v;
    const gr_frame *top = top_of(s);
    memset(mask, 0, (size_t)v->words * sizeof *mask);
    const gr_node *n = top->node == GR_ROOT_NODE ? NULL : nd(g, top->node);
    if (n && n->kind == GR_STRING && top->sub == S_BODY && v->n_levels > 0) {
        /* inside a string: plain-content tokens by length from the bitmaps, the rest by walking */
        uint32_t room = n->max > top->count ? n->max - top->count : 0;
        uint32_t hi = room < v->n_levels - 1 ? room : v->n_levels - 1, lo = 0;
        bool any = true;
        if (budget) {
            int64_t d0 = gr_dist(g, top), q = d0 - limit;        /* bytes the token must save */
            uint32_t need = n->min > top->count ? n->min - top->count : 0;
            if (q > 0) {
                if ((int64_t)need < q || q > hi) any = false;
                else lo = (uint32_t)q;
            }
        }
        if (any) {
            const uint64_t *a = v->levels + (size_t)hi * v->words;
            const uint64_t *b = lo ? v->levels + (size_t)(lo - 1) * v->words : NULL;
            for (int i = 0; i < v->words; i++) mask[i] = a[i] & ~(b ? b[i] : 0);
        }
        walk(s, &v->impure, budget, limit, mask);
    } else {
        walk(s, &v->all, budget, limit, mask);
    }
    if (gr_can_end(g, top))
        for (int i = 0; i < v->n_eog; i++) mask[v->eog[i] >> 6] |= 1ull << (v->eog[i] & 63);
    int cnt = 0;
    for (int i = 0; i < v->words; i++) cnt += __builtin_popcountll(mask[i]);
    return cnt;
}

int colloq_grammar_state_mask(colloq_grammar_state *s, int tokens_left, uint64_t *mask) {
    if (!s || !mask) return 0;
    if (s->finished) {
        memset(mask, 0, (size_t)s->v->words * sizeof *mask);
        return 0;
    }
    bool budget = false;
    int64_t limit = (int64_t)tokens_left - 2;
    if (tokens_left >= 0) {
        uint64_t d0 = gr_dist(s->g, top_of(s));
        uint64_t slack = (uint64_t)s->g->max_jump * (s->v->max_len + 1);
        budget = (int64_t)(d0 + slack) > limit;
    }
    int cnt = fill(s, budget, limit, mask);
    if (cnt == 0 && budget) cnt = fill(s, false, 0, mask);
    return cnt;
}

int colloq_grammar_state_mask_logits(colloq_grammar_state *s, int tokens_left, float *logits, int n_logits) {
    if (!s || !logits) return 0;
    int cnt = colloq_grammar_state_mask(s, tokens_left, s->mask);
    int nv = s->v->n;
    for (int t = 0; t < n_logits; t++)
        if (t >= nv || !((s->mask[t >> 6] >> (t & 63)) & 1)) logits[t] = -INFINITY;
    return cnt;
}
