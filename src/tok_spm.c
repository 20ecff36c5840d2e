/*
 * tok_spm.c - SentencePiece BPE (tokenizer.ggml.model = "llama"): spaces become
 * U+2581, the text is cut into UTF-8 characters, and the adjacent pair whose
 * concatenation is the highest-scoring piece is merged until none is left (a
 * max-heap over a linked list, so O(n log n)); characters outside the vocabulary
 * fall back to <0xNN> byte tokens.  Decoding turns U+2581 back into spaces and byte
 * tokens into bytes.  Reads no GGUF key; special tokens and BOS belong to tokenizer.c.
 */
#include <limits.h>
#include <string.h>

#include "tok_internal.h"

#define SPACE_MARK "\xe2\x96\x81"       /* U+2581, what SentencePiece writes for ' ' */
#define UNK_SURFACE " \xe2\x81\x87 "    /* " ⁇ ": how an unknown token reads */

typedef struct {
    colloq_token byte_tok[256];   /* the <0xNN> token of each byte, -1 if absent */
    int n_byte_toks;
} spm_impl;

/* Pieces a merge may produce: as SentencePiece, normal, user-defined and unused ones
 * (control, unknown and byte tokens are never made out of text). */
static bool mergeable(int type) {
    return type == CTOK_NORMAL || type == CTOK_USER_DEFINED || type == CTOK_UNUSED;
}

/* Node of the merge tree: leaves are the characters, inner nodes merged pieces. */
typedef struct {
    int32_t start, len;      /* bytes of the escaped text */
    int32_t left, right;     /* children (-1 for a leaf) */
    colloq_token id;         /* the piece, -1 for a character outside the vocabulary */
} spm_node;

typedef struct {
    int32_t prev, next;      /* neighbours in the symbol list, -1 at the ends */
    int32_t node;            /* current piece; -1 once merged into the left neighbour */
} spm_sym;

/* A candidate merge of symbol left with its right neighbour.  It is stale unless the
 * two still span exactly len bytes (symbols only grow, so equal length means the same
 * bytes, hence the same piece). */
typedef struct {
    float   score;
    int32_t left;
    int32_t len;
    colloq_token id;
} spm_pair;

typedef struct {
    char     *text;          /* escaped input */
    spm_node *nodes;
    spm_sym  *syms;
    spm_pair *heap;
    int32_t  *stack;
    int32_t   n_nodes, n_heap;
} spm_work;

/* Higher score first; on equal scores the leftmost pair. */
static bool pair_before(const spm_pair *a, const spm_pair *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(spm_work *w, spm_pair p) {
    int32_t i = w->n_heap++;
    while (i > 0) {
        int32_t parent = (i - 1) / 2;
        if (!pair_before(&p, &w->heap[parent])) break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = p;
}

static spm_pair heap_pop(spm_work *w) {
    spm_pair top = w->heap[0], last = w->heap[--w->n_heap];
    int32_t i = 0, n = w->n_heap;
    for (;;) {
        int32_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && pair_before(&w->heap[c + 1], &w->heap[c])) c++;
        if (!pair_before(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n > 0) w->heap[i] = last;
    return top;
}

static void try_pair(const colloq_vocab *v, spm_work *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const spm_node *a = &w->nodes[w->syms[l].node], *b = &w->nodes[w->syms[r].node];
    colloq_token id = tok_index_find(v, w->text + a->start, (size_t)a->len + (size_t)b->len);
    if (id < 0 || !mergeable(v->types[id])) return;
    heap_push(w, (spm_pair){ v->scores[id], l, a->len + b->len, id });
}

typedef struct { colloq_token *out; size_t cap, n; } spm_sink;

static inline void put(spm_sink *s, colloq_token t) {
    if (s->n < s->cap) s->out[s->n] = t;
    s->n++;
}

/* A character with no piece of its own: its bytes as byte tokens, or unk. */
static int put_fallback(const colloq_vocab *v, const spm_impl *m, const spm_node *nd, const char *text,
                        spm_sink *s, colloq_err *err) {
    if (m->n_byte_toks == 0) {
        if (v->unk < 0) goto none;
        put(s, v->unk);
        return COLLOQ_OK;
    }
    for (int32_t i = 0; i < nd->len; i++) {
        colloq_token t = m->byte_tok[(uint8_t)text[nd->start + i]];
        if (t < 0) t = v->unk;
        if (t < 0) goto none;
        put(s, t);
    }
    return COLLOQ_OK;
none:
    return colloq_seterr(err, COLLOQ_ERR_UNSUPPORTED,
                         "tokenize: byte 0x%02X has no token (the vocabulary has no <0x%02X> and no unknown token)",
                         (uint8_t)text[nd->start], (uint8_t)text[nd->start]);
}

/* Emit the pieces of one final symbol; unused pieces are split back into their parts. */
static int put_node(const colloq_vocab *v, const spm_impl *m, spm_work *w, int32_t root, spm_sink *s,
                    colloq_err *err) {
    int32_t sp = 0;
    w->stack[sp++] = root;
    while (sp > 0) {
        const spm_node *nd = &w->nodes[w->stack[--sp]];
        if (nd->id < 0) {
            int rc = put_fallback(v, m, nd, w->text, s, err);
            if (rc) return rc;
        } else if (nd->left >= 0 && v->types[nd->id] == CTOK_UNUSED) {
            w->stack[sp++] = nd->right;
            w->stack[sp++] = nd->left;
        } else {
            put(s, nd->id);
        }
    }
    return COLLOQ_OK;
}

static void work_free(spm_work *w) {
    colloq_free(w->text);
    colloq_free(w->nodes);
    colloq_free(w->syms);
    colloq_free(w->heap);
    colloq_free(w->stack);
}

static int spm_encode(const colloq_vocab *v, const char *text, size_t len, colloq_token *out, int cap,
                      colloq_err *err) {
    const spm_impl *m = v->impl;
    if (!text && len) return colloq_seterr(err, COLLOQ_ERR_ARG, "tokenize: NULL text");
    if (len == 0) return 0;
    size_t spaces = 0;
    for (size_t i = 0; i < len; i++) spaces += text[i] == ' ';
    size_t elen = len + 2 * spaces;                     /* ' ' (1 byte) -> U+2581 (3 bytes) */
    if (len > (size_t)INT32_MAX / 8 || elen > (size_t)INT32_MAX / 8)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "tokenize: text of %zu bytes is too long", len);

    spm_work w = {0};
    w.text = colloq_malloc(elen);
    if (!w.text) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "tokenize: out of memory (%zu bytes of text)", len);
    size_t e = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') { memcpy(w.text + e, SPACE_MARK, 3); e += 3; }
        else w.text[e++] = text[i];
    }
    /* one symbol per UTF-8 character; a byte that starts no valid sequence is its own symbol */
    size_t nc = 0;
    for (size_t i = 0; i < elen; nc++) {
        int k = colloq_utf8_seq_len((const unsigned char *)w.text + i, elen - i);
        i += k > 0 ? (size_t)k : 1;
    }
    /* at most nc - 1 merges: 2 nc nodes; the heap gets nc - 1 pairs and 2 per merge */
    w.syms = colloq_malloc(nc * sizeof *w.syms);
    w.nodes = colloq_malloc(2 * nc * sizeof *w.nodes);
    w.heap = colloq_malloc(3 * nc * sizeof *w.heap);
    w.stack = colloq_malloc(2 * nc * sizeof *w.stack);
    if (!w.syms || !w.nodes || !w.heap || !w.stack) {
        work_free(&w);
        return colloq_seterr(err, COLLOQ_ERR_NOMEM, "tokenize: out of memory (%zu bytes of text)", len);
    }
    int32_t n_syms = 0;
    for (size_t i = 0; i < elen;) {
        int k = colloq_utf8_seq_len((const unsigned char *)w.text + i, elen - i);
        if (k <= 0) k = 1;
        w.nodes[n_syms] = (spm_node){ (int32_t)i, k, -1, -1, tok_index_find(v, w.text + i, (size_t)k) };
        w.syms[n_syms] = (spm_sym){ n_syms - 1, -1, n_syms };
        if (n_syms > 0) w.syms[n_syms - 1].next = n_syms;
        n_syms++;
        i += (size_t)k;
    }
    w.n_nodes = n_syms;
    for (int32_t i = 0; i + 1 < n_syms; i++) try_pair(v, &w, i, i + 1);

    while (w.n_heap > 0) {
        spm_pair p = heap_pop(&w);
        spm_sym *l = &w.syms[p.left];
        if (l->node < 0 || l->next < 0) continue;
        spm_sym *r = &w.syms[l->next];
        if (w.nodes[l->node].len + w.nodes[r->node].len != p.len) continue;   /* stale */
        int32_t nn = w.n_nodes++;
        w.nodes[nn] = (spm_node){ w.nodes[l->node].start, p.len, l->node, r->node, p.id };
        l->node = nn;
        r->node = -1;
        l->next = r->next;
        if (r->next >= 0) w.syms[r->next].prev = p.left;
        try_pair(v, &w, l->prev, p.left);
        try_pair(v, &w, p.left, l->next);
    }

    spm_sink sink = { out, out && cap > 0 ? (size_t)cap : 0, 0 };
    int rc = COLLOQ_OK;
    for (int32_t i = 0; i >= 0 && rc == COLLOQ_OK; i = w.syms[i].next)
        rc = put_node(v, m, &w, w.syms[i].node, &sink, err);
    work_free(&w);
    if (rc) return rc;
    return sink.n > INT_MAX ? colloq_seterr(err, COLLOQ_ERR_ARG, "tokenize: more than INT_MAX tokens")
                            : (int)sink.n;
}

/* "<0xNN>" -> NN, or -1. */
static int byte_of_text(const char *s, uint32_t len) {
    if (len != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    int b = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
              : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        b = b * 16 + d;
    }
    return b;
}

static int spm_decode(const colloq_vocab *v, colloq_token t, char *buf, int cap) {
    if (t < 0 || t >= v->n) return 0;
    size_t ucap = buf && cap > 0 ? (size_t)cap : 0, n = 0;
    const char *s = v->text[t];
    size_t len = v->text_len[t];
    int type = v->types[t];
    if (type == CTOK_BYTE) {
        int b = byte_of_text(s, (uint32_t)len);
        if (b >= 0) {
            if (ucap) buf[0] = (char)b;
            return 1;
        }
    } else if (type == CTOK_UNKNOWN) {
        s = UNK_SURFACE;
        len = strlen(UNK_SURFACE);
    }
    for (size_t i = 0; i < len;) {
        char c = s[i];
        size_t k = 1;
        if (i + 3 <= len && !memcmp(s + i, SPACE_MARK, 3)) { c = ' '; k = 3; }
        if (n < ucap) buf[n] = c;
        n++;
        i += k;
    }
    return n > INT_MAX ? INT_MAX : (int)n;
}

int tok_spm_init(colloq_vocab *v, const gguf_file *f, colloq_err *err) {
    spm_impl *m = colloq_calloc(1, sizeof *m);
    if (!m) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "%s: out of memory (tokenizer)", gguf_path(f));
    for (int b = 0; b < 256; b++) m->byte_tok[b] = -1;
    for (int t = 0; t < v->n; t++) {
        if (v->types[t] != CTOK_BYTE) continue;
        int b = byte_of_text(v->text[t], v->text_len[t]);
        if (b >= 0 && m->byte_tok[b] < 0) {
            m->byte_tok[b] = t;
            m->n_byte_toks++;
        }
    }
    if (m->n_byte_toks > 0 && m->n_byte_toks < 256)
        colloq_log(1, "%s: only %d of 256 byte tokens: the other bytes encode as the unknown token",
                   gguf_path(f), m->n_byte_toks);
    /* SentencePiece's conventions when the file does not say */
    if (v->bos < 0) v->bos = tok_index_find(v, "<s>", 3);
    if (v->eos < 0) v->eos = tok_index_find(v, "</s>", 4);
    if (v->unk < 0) v->unk = tok_index_find(v, "<unk>", 5);
    v->add_bos = true;
    v->add_eos = false;
    v->add_space_prefix = true;
    v->impl = m;
    v->impl_free = colloq_free;
    v->encode = spm_encode;
    v->decode = spm_decode;
    return COLLOQ_OK;
}
