/*
 * grammar_vocab.c - the vocabulary side of constrained output, built once per model
 * and shared read-only: every token's piece bytes, a preorder trie over them (so a
 * mask walks the automaton once per trie node, not per token), a second trie over
 * the tokens that are not plain string content, and length-level bitmaps of those
 * that are.  Must not know the automaton's states (grammar.c walks the tries).
 */
#define _GNU_SOURCE   /* qsort_r */
#include <stdlib.h>
#include <string.h>

#include "grammar_internal.h"
#include "util.h"

/* Plain string content: printable ASCII except '"' and '\\', and whole valid UTF-8
 * characters.  Returns the number of characters, or -1. */
static int plain_chars(const uint8_t *p, uint32_t len) {
    int n = 0;
    for (uint32_t i = 0; i < len;) {
        uint8_t c = p[i];
        if (c < 0x80) {
            if (c < 0x20 || c == '"' || c == '\\') return -1;
            i++;
        } else {
            int k = colloq_utf8_seq_len(p + i, len - i);
            if (k == 0) return -1;
            i += (uint32_t)k;
        }
        n++;
    }
    return n;
}

typedef struct {
    const uint8_t  *bytes;
    const uint32_t *off;
} sort_ctx;

/* Order by piece bytes, then id (glibc qsort_r). */
static int cmp_tok(const void *a, const void *b, void *ctx) {
    const sort_ctx *sc = ctx;
    colloq_token x = *(const colloq_token *)a, y = *(const colloq_token *)b;
    uint32_t lx = sc->off[x + 1] - sc->off[x], ly = sc->off[y + 1] - sc->off[y];
    int c = memcmp(sc->bytes + sc->off[x], sc->bytes + sc->off[y], lx < ly ? lx : ly);
    if (c) return c;
    if (lx != ly) return lx < ly ? -1 : 1;
    return x < y ? -1 : (x > y);
}

/* Build the preorder trie over order[0..n) (sorted by bytes). */
static int build_trie(gr_trie *t, colloq_token *order, uint32_t n, const uint8_t *bytes,
                      const uint32_t *off, colloq_err *err) {
    t->order = order;
    uint64_t total = 1;
    for (uint32_t i = 0; i < n; i++) total += off[order[i] + 1] - off[order[i]];
    if (total > UINT32_MAX / 2)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "grammar vocabulary: pieces too long");
    t->nodes = colloq_calloc((size_t)total, sizeof *t->nodes);
    uint32_t *path = colloq_calloc(GR_MAX_TOKEN + 1, sizeof *path);
    if (!t->nodes || !path) {
        colloq_free(path);
        return colloq_seterr(err, COLLOQ_ERR_NOMEM, "grammar vocabulary: out of memory");
    }
    uint32_t nn = 1, depth = 0;          /* path[0..depth] = nodes of the current prefix */
    path[0] = 0;
    const uint8_t *prev = NULL;
    uint32_t prev_len = 0;
    for (uint32_t i = 0; i < n; i++) {
        colloq_token id = order[i];
        const uint8_t *p = bytes + off[id];
        uint32_t len = off[id + 1] - off[id], lcp = 0;
        while (prev && lcp < len && lcp < prev_len && p[lcp] == prev[lcp]) lcp++;
        while (depth > lcp) t->nodes[path[depth--]].skip = nn;   /* close finished subtrees */
        for (uint32_t k = lcp; k < len; k++) {
            gr_tnode *x = &t->nodes[nn];
            x->byte = p[k];
            x->depth = (uint16_t)(k + 1);
            x->tok_lo = x->tok_hi = 0;
            path[++depth] = nn++;
        }
        gr_tnode *end = &t->nodes[path[depth]];
        if (end->tok_lo == end->tok_hi) end->tok_lo = i;
        end->tok_hi = i + 1;
        prev = p;
        prev_len = len;
    }
    while (depth > 0) t->nodes[path[depth--]].skip = nn;
    t->nodes[0].skip = nn;
    t->n_nodes = nn;
    colloq_free(path);
    return COLLOQ_OK;
}

void colloq_grammar_vocab_free(colloq_grammar_vocab *v) {
    if (!v) return;
    colloq_free(v->all.nodes);
    colloq_free(v->all.order);
    colloq_free(v->impure.nodes);
    colloq_free(v->impure.order);
    colloq_free(v->levels);
    colloq_free(v->eog);
    colloq_free(v->off);
    colloq_free(v->bytes);
    colloq_free(v->is_eog);
    colloq_free(v);
}

int colloq_grammar_vocab_new(int n_vocab, colloq_grammar_piece_fn piece, colloq_grammar_eog_fn is_eog,
                             void *ud, colloq_grammar_vocab **out, colloq_err *err) {
    *out = NULL;
    if (n_vocab <= 0 || !piece)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "grammar vocabulary: no tokens");
    colloq_grammar_vocab *v = colloq_calloc(1, sizeof *v);
    char *buf = colloq_malloc(GR_MAX_TOKEN + 1);
    int32_t *chars = NULL;
    int rc = COLLOQ_ERR_NOMEM;
    if (!v || !buf) goto fail;
    v->n = n_vocab;
    v->words = (n_vocab + 63) / 64;
    v->off = colloq_calloc((size_t)n_vocab + 1, sizeof *v->off);
    v->is_eog = colloq_calloc((size_t)n_vocab, 1);
    chars = colloq_calloc((size_t)n_vocab, sizeof *chars);
    if (!v->off || !v->is_eog || !chars) goto fail;

    /* pieces: sizes first, then bytes */
    size_t cap = 1 << 16, used = 0;
    v->bytes = colloq_malloc(cap);
    if (!v->bytes) goto fail;
    int n_eog = 0;
    for (int t = 0; t < n_vocab; t++) {
        v->off[t] = (uint32_t)used;
        if (is_eog && is_eog(ud, t)) { v->is_eog[t] = 1; n_eog++; continue; }
        int len = piece(ud, t, buf, GR_MAX_TOKEN + 1);
        if (len <= 0 || len > GR_MAX_TOKEN) continue;            /* never allowed */
        if (used + (size_t)len > cap) {
            while (used + (size_t)len > cap) cap *= 2;
            if (cap > UINT32_MAX) { rc = colloq_seterr(err, COLLOQ_ERR_ARG, "grammar vocabulary: pieces too long"); goto fail_msg; }
            uint8_t *nb = colloq_realloc(v->bytes, cap);
            if (!nb) goto fail;
            v->bytes = nb;
        }
        memcpy(v->bytes + used, buf, (size_t)len);
        used += (size_t)len;
        if ((uint32_t)len > v->max_len) v->max_len = (uint32_t)len;
    }
    v->off[n_vocab] = (uint32_t)used;

    v->eog = colloq_calloc((size_t)n_eog + 1, sizeof *v->eog);
    if (!v->eog) goto fail;
    for (int t = 0; t < n_vocab; t++) if (v->is_eog[t]) v->eog[v->n_eog++] = t;

    /* classify, sort, build the tries */
    uint32_t n_all = 0, n_imp = 0, max_chars = 0;
    for (int t = 0; t < n_vocab; t++) {
        uint32_t len = v->off[t + 1] - v->off[t];
        chars[t] = -1;
        if (!len) continue;
        n_all++;
        int c = plain_chars(v->bytes + v->off[t], len);
        if (c > 0 && c < GR_MAX_LEVELS) {
            chars[t] = c;
            if ((uint32_t)c > max_chars) max_chars = (uint32_t)c;
        } else {
            n_imp++;
        }
    }
    colloq_token *all = colloq_malloc(((size_t)n_all + 1) * sizeof *all);
    colloq_token *imp = colloq_malloc(((size_t)n_imp + 1) * sizeof *imp);
    v->all.order = all;
    v->impure.order = imp;
    if (!all || !imp) goto fail;
    n_all = n_imp = 0;
    for (int t = 0; t < n_vocab; t++) {
        if (v->off[t + 1] == v->off[t]) continue;
        all[n_all++] = t;
        if (chars[t] < 0) imp[n_imp++] = t;
    }
    sort_ctx sc = { v->bytes, v->off };
    qsort_r(all, n_all, sizeof *all, cmp_tok, &sc);
    qsort_r(imp, n_imp, sizeof *imp, cmp_tok, &sc);
    if ((rc = build_trie(&v->all, all, n_all, v->bytes, v->off, err))) goto fail_msg;
    if ((rc = build_trie(&v->impure, imp, n_imp, v->bytes, v->off, err))) goto fail_msg;

    /* levels[L] = plain tokens with at most L characters */
    v->n_levels = max_chars + 1;
    v->levels = colloq_calloc((size_t)v->n_levels * (size_t)v->words, sizeof *v->levels);
    if (!v->levels) goto fail;
    for (int t = 0; t < n_vocab; t++)
        if (chars[t] > 0) v->levels[(size_t)chars[t] * v->words + (t >> 6)] |= 1ull << (t & 63);
    for (uint32_t l = 1; l < v->n_levels; l++)
        for (int i = 0; i < v->words; i++)
            v->levels[(size_t)l * v->words + i] |= v->levels[(size_t)(l - 1) * v->words + i];

    colloq_free(chars);
    colloq_free(buf);
    *out = v;
    return COLLOQ_OK;
fail:
    rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "grammar vocabulary: out of memory");
fail_msg:
    colloq_free(chars);
    colloq_free(buf);
    colloq_grammar_vocab_free(v);
    return rc;
}

static int model_piece(void *ud, colloq_token t, char *buf, int cap) {
    return colloq_token_to_piece(ud, t, false, buf, cap);
}

static bool model_eog(void *ud, colloq_token t) { return colloq_token_is_eog(ud, t); }

int colloq_grammar_vocab_from_model(const colloq_model *m, colloq_grammar_vocab **out, colloq_err *err) {
    if (!m) return colloq_seterr(err, COLLOQ_ERR_ARG, "grammar vocabulary: no model");
    return colloq_grammar_vocab_new(colloq_model_n_vocab(m), model_piece, model_eog, (void *)m, out, err);
}

int colloq_grammar_vocab_n(const colloq_grammar_vocab *v) { return v ? v->n : 0; }
int colloq_grammar_mask_words(const colloq_grammar_vocab *v) { return v ? v->words : 0; }

int colloq_grammar_vocab_literal_mask(const colloq_grammar_vocab *v, const char *lit, size_t len,
                                      int ws_max, uint64_t *mask) {
    if (!v || !mask || (!lit && len)) return 0;
    const gr_trie *t = &v->all;
    /* per trie depth: whitespace bytes used and literal bytes matched */
    uint32_t ws[GR_MAX_TOKEN + 1], k[GR_MAX_TOKEN + 1];
    ws[0] = k[0] = 0;
    int cnt = 0;
    uint32_t i = 1;
    while (i < t->n_nodes) {
        const gr_tnode *tn = &t->nodes[i];
        uint32_t d = tn->depth, w = ws[d - 1], m = k[d - 1];
        unsigned c = tn->byte;
        if (m == 0 && (c == ' ' || c == '\n' || c == '\t' || c == '\r') && (int)w < ws_max) w++;
        else if (m < len && c == (unsigned char)lit[m]) m++;
        else { i = tn->skip; continue; }
        ws[d] = w;
        k[d] = m;
        for (uint32_t j = tn->tok_lo; j < tn->tok_hi; j++) {
            colloq_token id = t->order[j];
            if (!((mask[id >> 6] >> (id & 63)) & 1)) { mask[id >> 6] |= 1ull << (id & 63); cnt++; }
        }
        i++;
    }
    return cnt;
}

const char *colloq_grammar_vocab_piece(const colloq_grammar_vocab *v, colloq_token t, size_t *len) {
    *len = 0;
    if (!v || t < 0 || t >= v->n || v->is_eog[t]) return NULL;
    *len = v->off[t + 1] - v->off[t];
    return *len ? (const char *)v->bytes + v->off[t] : NULL;
}

bool colloq_grammar_vocab_is_eog(const colloq_grammar_vocab *v, colloq_token t) {
    return v && t >= 0 && t < v->n && v->is_eog[t];
}

void colloq_grammar_vocab_eog_mask(const colloq_grammar_vocab *v, uint64_t *mask) {
    for (int i = 0; v && i < v->n_eog; i++) mask[v->eog[i] >> 6] |= 1ull << (v->eog[i] & 63);
}
