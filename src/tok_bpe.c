/*
 * tok_bpe.c - byte-level BPE (tokenizer.ggml.model = "gpt2"): GPT-2's
 * byte <-> printable-unicode mapping, merge ranks from tokenizer.ggml.merges,
 * encoding of pre-tokenized chunks by repeatedly merging the lowest-ranked
 * adjacent pair (min-heap over a linked list of symbols), and decoding back to
 * bytes.  Reads no GGUF key but the merges; vocabulary, special tokens and
 * BOS/EOS belong to tokenizer.c, chunking to tok_bpe_pre.c.
 */
#include <limits.h>
#include <string.h>
#include "tok_internal.h"
#include "tok_bpe_pre.h"

/* Code points 0..BYTE_CP_END-1 cover every image of a byte under the mapping. */
#define BYTE_CP_END 0x144

typedef struct {
    uint64_t     key;      /* left id << 32 | right id; MERGE_EMPTY if unused */
    int32_t      rank;     /* index in tokenizer.ggml.merges: lower merges first */
    colloq_token result;   /* id of the concatenation */
} merge_slot;
#define MERGE_EMPTY UINT64_MAX

typedef struct {
    tok_bpe_pre *pre;
    merge_slot  *slots;            /* open addressing, power-of-two size */
    unsigned     slot_bits;
    uint32_t     byte_cp[256];     /* byte -> code point (GPT-2 bytes_to_unicode) */
    int16_t      cp_byte[BYTE_CP_END];  /* inverse: code point -> byte, -1 if none */
    colloq_token byte_tok[256];    /* token whose text is the byte's code point, -1 if absent */
    colloq_token fffd[3];          /* ids of U+FFFD (EF BF BD), for stray bytes without a token */
    int          n_fffd;           /* 0 when U+FFFD cannot be encoded either */
    bool         ignore_merges;
} bpe_impl;

/* GPT-2's table: printable Latin-1 bytes map to themselves; the 68 others, in
 * increasing order, to U+0100, U+0101, ... */
static void build_byte_tables(bpe_impl *b) {
    uint32_t next = 0x100;
    for (int i = 0; i < BYTE_CP_END; i++) b->cp_byte[i] = -1;
    for (int c = 0; c < 256; c++) {
        bool printable = (c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || (c >= 0xae);
        b->byte_cp[c] = printable ? (uint32_t)c : next++;
        b->cp_byte[b->byte_cp[c]] = (int16_t)c;
    }
}

static size_t put_utf8(char *o, uint32_t cp) {   /* cp < 0x800 here */
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    o[0] = (char)(0xc0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
}

static inline uint64_t merge_key(colloq_token l, colloq_token r) {
    return ((uint64_t)(uint32_t)l << 32) | (uint32_t)r;
}

static inline size_t merge_hash(const bpe_impl *b, uint64_t key) {
    return (size_t)((key * 0x9e3779b97f4a7c15ull) >> (64 - b->slot_bits));
}

static const merge_slot *merge_find(const bpe_impl *b, colloq_token l, colloq_token r) {
    uint64_t key = merge_key(l, r);
    size_t mask = ((size_t)1 << b->slot_bits) - 1;
    for (size_t i = merge_hash(b, key);; i = (i + 1) & mask) {
        const merge_slot *s = &b->slots[i];
        if (s->key == key) return s;
        if (s->key == MERGE_EMPTY) return NULL;
    }
}

/* Insert unless the pair is already present (the earlier, lower rank wins). */
static void merge_insert(bpe_impl *b, colloq_token l, colloq_token r, int32_t rank, colloq_token res) {
    uint64_t key = merge_key(l, r);
    size_t mask = ((size_t)1 << b->slot_bits) - 1;
    for (size_t i = merge_hash(b, key);; i = (i + 1) & mask) {
        merge_slot *s = &b->slots[i];
        if (s->key == key) return;
        if (s->key == MERGE_EMPTY) { s->key = key; s->rank = rank; s->result = res; return; }
    }
}

/* Token of the BPE model itself with text s[0..len): added tokens (control,
 * user-defined, unknown) are matched in the raw text by tokenizer.c, never built
 * from bytes and merges.  -1 if none. */
static colloq_token model_token(const colloq_vocab *v, const char *s, size_t len) {
    colloq_token t = tok_index_find(v, s, len);
    if (t >= 0 && v->types) {
        int ty = v->types[t];
        if (ty == CTOK_CONTROL || ty == CTOK_USER_DEFINED || ty == CTOK_UNKNOWN) return -1;
    }
    return t;
}

static void bpe_free(void *p) {
    bpe_impl *b = p;
    if (!b) return;
    tok_bpe_pre_free(b->pre);
    colloq_free(b->slots);
    colloq_free(b);
}

/* ---- encoding ---- */

typedef struct { int32_t rank, pos; colloq_token l, r, res; } bpe_cand;

typedef struct {
    colloq_token *id;       /* symbol ids; -2 once merged into its left neighbour */
    int32_t *next, *prev;
    bpe_cand *heap;
    size_t n_heap, cap;     /* cap: symbols; the heap holds up to 3 * cap */
    char *mapped;           /* chunk as byte-level text (ignore_merges lookups) */
} bpe_work;

static bool cand_less(const bpe_cand *a, const bpe_cand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(bpe_work *w, bpe_cand c) {
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!cand_less(&c, &w->heap[parent])) break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = c;
}

static bpe_cand heap_pop(bpe_work *w) {
    bpe_cand top = w->heap[0], last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && cand_less(&w->heap[c + 1], &w->heap[c])) c++;
        if (!cand_less(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n > 0) w->heap[i] = last;
    return top;
}

static void try_pair(const bpe_impl *b, bpe_work *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0 || w->id[l] < 0 || w->id[r] < 0) return;
    const merge_slot *m = merge_find(b, w->id[l], w->id[r]);
    if (m) heap_push(w, (bpe_cand){ m->rank, l, w->id[l], w->id[r], m->result });
}

static int work_reserve(bpe_work *w, size_t n) {
    if (n <= w->cap) return 0;
    size_t cap = n < 256 ? 256 : n;
    if (cap > (size_t)INT32_MAX / 3) return COLLOQ_ERR_NOMEM;
    colloq_token *id = colloq_realloc(w->id, cap * sizeof *id);
    if (id) w->id = id;
    int32_t *next = colloq_realloc(w->next, cap * sizeof *next);
    if (next) w->next = next;
    int32_t *prev = colloq_realloc(w->prev, cap * sizeof *prev);
    if (prev) w->prev = prev;
    bpe_cand *heap = colloq_realloc(w->heap, 3 * cap * sizeof *heap);
    if (heap) w->heap = heap;
    char *mapped = colloq_realloc(w->mapped, 2 * cap);
    if (mapped) w->mapped = mapped;
    if (!id || !next || !prev || !heap || !mapped) return COLLOQ_ERR_NOMEM;
    w->cap = cap;
    return 0;
}

static void work_free(bpe_work *w) {
    colloq_free(w->id); colloq_free(w->next); colloq_free(w->prev);
    colloq_free(w->heap); colloq_free(w->mapped);
}

typedef struct { colloq_token *out; size_t cap, n; } emitter;

static inline void emit(emitter *e, colloq_token t) {
    if (e->n < e->cap) e->out[e->n] = t;
    e->n++;
}

/* Emit a symbol.  A byte with no token of its own (some vocabularies lack the
 * bytes that never occur in UTF-8, a few even some ASCII controls): inside text
 * that is not UTF-8 it becomes U+FFFD; inside valid text it becomes unk when the
 * vocabulary has one, as Hugging Face's BPE does, else nothing. */
static inline void emit_sym(const colloq_vocab *v, const bpe_impl *b, emitter *e, colloq_token t,
                            bool stray) {
    if (t >= 0) emit(e, t);
    else if (stray && b->n_fffd) for (int i = 0; i < b->n_fffd; i++) emit(e, b->fffd[i]);
    else if (v->unk >= 0) emit(e, v->unk);
}

/* Encode one chunk p[0..n). */
static void encode_chunk(const colloq_vocab *v, const bpe_impl *b, bpe_work *w,
                         const unsigned char *p, size_t n, emitter *e) {
    /* chunks of bytes that are not UTF-8 start with such a byte (tok_bpe_pre_split) */
    bool stray = colloq_utf8_seq_len(p, n) == 0;
    if (n == 1) { emit_sym(v, b, e, b->byte_tok[p[0]], stray); return; }
    if (b->ignore_merges) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) m += put_utf8(w->mapped + m, b->byte_cp[p[i]]);
        colloq_token whole = model_token(v, w->mapped, m);
        if (whole >= 0) { emit(e, whole); return; }
    }
    int32_t ni = (int32_t)n;
    for (int32_t i = 0; i < ni; i++) {
        w->id[i] = b->byte_tok[p[i]];
        w->prev[i] = i - 1;
        w->next[i] = i + 1 < ni ? i + 1 : -1;
    }
    w->n_heap = 0;
    for (int32_t i = 0; i + 1 < ni; i++) try_pair(b, w, i, i + 1);
    while (w->n_heap) {
        bpe_cand c = heap_pop(w);
        int32_t l = c.pos, r = w->next[l];
        /* stale: either side merged since the candidate was pushed */
        if (r < 0 || w->id[l] != c.l || w->id[r] != c.r) continue;
        w->id[l] = c.res;
        w->id[r] = -2;
        w->next[l] = w->next[r];
        if (w->next[r] >= 0) w->prev[w->next[r]] = l;
        try_pair(b, w, w->prev[l], l);
        try_pair(b, w, l, w->next[l]);
    }
    for (int32_t i = 0; i >= 0; i = w->next[i]) emit_sym(v, b, e, w->id[i], stray);
}

static int bpe_encode(const colloq_vocab *v, const char *text, size_t len,
                      colloq_token *out, int cap, colloq_err *err) {
    const bpe_impl *b = v->impl;
    if (!text && len) return colloq_seterr(err, COLLOQ_ERR_ARG, "tokenize: NULL text");
    tok_spans spans = {0};
    bpe_work w = {0};
    emitter e = { out, out && cap > 0 ? (size_t)cap : 0, 0 };
    int rc = tok_bpe_pre_split(b->pre, text, len, &spans, err);
    size_t longest = 0;
    for (size_t i = 0; rc == 0 && i < spans.n; i++)
        if (spans.v[i].len > longest) longest = spans.v[i].len;
    if (rc == 0 && work_reserve(&w, longest))
        rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory (BPE work area, chunk of %zu bytes)",
                           longest);
    for (size_t i = 0; rc == 0 && i < spans.n; i++)
        encode_chunk(v, b, &w, (const unsigned char *)text + spans.v[i].off, spans.v[i].len, &e);
    work_free(&w);
    tok_spans_free(&spans);
    if (rc) return rc;
    if (e.n > INT_MAX)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "tokenize: text gives more than INT_MAX tokens");
    return (int)e.n;
}

/* ---- decoding ---- */

static int bpe_decode(const colloq_vocab *v, colloq_token t, char *buf, int cap) {
    if (t < 0 || t >= v->n) return 0;
    const bpe_impl *b = v->impl;
    const unsigned char *s = (const unsigned char *)v->text[t];
    size_t len = v->text_len[t], n = 0, ucap = buf && cap > 0 ? (size_t)cap : 0;
    int type = v->types ? v->types[t] : CTOK_NORMAL;
    bool raw = type == CTOK_CONTROL || type == CTOK_USER_DEFINED;   /* added tokens: text as is */
    for (size_t i = 0; i < len;) {
        int k = raw ? 0 : colloq_utf8_seq_len(s + i, len - i);
        if (k == 2 || k == 1) {
            uint32_t cp = k == 1 ? s[i] : ((uint32_t)(s[i] & 0x1f) << 6) | (s[i + 1] & 0x3f);
            if (cp < BYTE_CP_END && b->cp_byte[cp] >= 0) {
                if (n < ucap) buf[n] = (char)b->cp_byte[cp];
                n++;
                i += (size_t)k;
                continue;
            }
        }
        /* not a byte image: copy the character (or stray byte) unchanged */
        size_t c = k > 0 ? (size_t)k : raw ? len - i : 1;
        for (size_t j = 0; j < c; j++, n++)
            if (n < ucap) buf[n] = (char)s[i + j];
        i += c;
    }
    return n > INT_MAX ? INT_MAX : (int)n;
}

/* ---- setup ---- */

int tok_bpe_init(colloq_vocab *v, const gguf_file *f, colloq_err *err) {
    const char *path = gguf_path(f);
    const gguf_kv *kv = gguf_find_kv(f, "tokenizer.ggml.merges");
    if (!kv)
        return colloq_seterr(err, COLLOQ_ERR_FORMAT,
                             "%s: byte-level BPE vocabulary without tokenizer.ggml.merges", path);
    if (kv->type != GGUF_T_ARRAY || kv->v.arr.type != GGUF_T_STRING)
        return colloq_seterr(err, COLLOQ_ERR_FORMAT,
                             "%s: tokenizer.ggml.merges is not an array of strings", path);
    uint64_t nm = kv->v.arr.n;
    if (nm > (uint64_t)INT32_MAX / 4)
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s: tokenizer.ggml.merges has %llu entries",
                             path, (unsigned long long)nm);

    bpe_impl *b = colloq_calloc(1, sizeof *b);
    if (!b) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory (BPE tables)");
    int rc = tok_bpe_pre_new(v->pre, &b->pre, err);
    if (rc) { bpe_free(b); return rc; }
    b->ignore_merges = tok_bpe_pre_ignore_merges(b->pre);

    build_byte_tables(b);
    int missing = 0;
    for (int c = 0; c < 256; c++) {
        char u[2];
        b->byte_tok[c] = model_token(v, u, put_utf8(u, b->byte_cp[c]));
        missing += b->byte_tok[c] < 0;
    }
    if (missing)
        colloq_log(1, "%s: %d of 256 byte tokens missing from the vocabulary (those bytes encode as unk)",
                   path, missing);

    b->slot_bits = 4;
    while (((uint64_t)1 << b->slot_bits) < 2 * nm) b->slot_bits++;
    b->slots = colloq_malloc(((size_t)1 << b->slot_bits) * sizeof *b->slots);
    if (!b->slots) { bpe_free(b); return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory (BPE merges)"); }
    for (size_t i = 0; i < ((size_t)1 << b->slot_bits); i++) b->slots[i].key = MERGE_EMPTY;

    char *cat = NULL;
    size_t cat_cap = 0;
    uint64_t skipped = 0;
    for (uint64_t i = 0; i < nm; i++) {
        gguf_str m = gguf_arr_str(kv, i);
        const char *sp = m.len > 1 ? memchr(m.s + 1, ' ', m.len - 1) : NULL;
        if (!sp) { skipped++; continue; }
        size_t ll = (size_t)(sp - m.s), rl = m.len - ll - 1;
        colloq_token l = model_token(v, m.s, ll), r = model_token(v, sp + 1, rl);
        if (l < 0 || r < 0) { skipped++; continue; }
        if (ll + rl > cat_cap) {
            size_t nc = (ll + rl) * 2;
            char *t = colloq_realloc(cat, nc);
            if (!t) { colloq_free(cat); bpe_free(b); return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory"); }
            cat = t; cat_cap = nc;
        }
        memcpy(cat, m.s, ll);
        memcpy(cat + ll, sp + 1, rl);
        colloq_token res = model_token(v, cat, ll + rl);
        if (res < 0) { skipped++; continue; }
        merge_insert(b, l, r, (int32_t)i, res);
    }
    colloq_free(cat);

    /* U+FFFD through the merges, for stray bytes without a token */
    bpe_work w = {0};
    colloq_token ids[3];
    emitter e = { ids, 3, 0 };
    if (work_reserve(&w, 3)) { work_free(&w); bpe_free(b); return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory"); }
    encode_chunk(v, b, &w, (const unsigned char *)"\xef\xbf\xbd", 3, &e);
    work_free(&w);
    b->n_fffd = 0;
    if (e.n <= 3 && b->byte_tok[0xef] >= 0 && b->byte_tok[0xbf] >= 0 && b->byte_tok[0xbd] >= 0) {
        memcpy(b->fffd, ids, e.n * sizeof *ids);
        b->n_fffd = (int)e.n;
    }
    if (skipped)
        colloq_log(1, "%s: %llu of %llu merges skipped (malformed or naming tokens not in the vocabulary)",
                   path, (unsigned long long)skipped, (unsigned long long)nm);
    colloq_log(2, "%s: byte-level BPE, pre-tokenizer '%s' (%s), %llu merges", path,
               v->pre[0] ? v->pre : "(none)", tok_bpe_pre_kind(b->pre), (unsigned long long)nm);

    /* Defaults; the file's add_bos_token / add_eos_token / add_space_prefix override them. */
    v->add_bos = tok_bpe_pre_default_add_bos(b->pre);
    v->add_eos = false;
    v->add_space_prefix = false;

    v->impl = b;
    v->impl_free = bpe_free;
    v->encode = bpe_encode;
    v->decode = bpe_decode;
    return 0;
}
