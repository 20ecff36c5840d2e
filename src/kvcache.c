/*
 * kvcache.c - a sequence (colloq_seq): its KV cache and every activation buffer the
 * forward pass needs, sized from the model and allocated once in colloq_seq_init;
 * position bookkeeping (n_past, truncate) and memory accounting.
 * Does no math (forward.c) and never allocates after colloq_seq_init.
 */
#include <math.h>
#include <string.h>

#include "model.h"
#include "quant.h"
#include "util.h"

#define MAX_N_CTX (1 << 24)
#define DEFAULT_N_CTX_CAP 4096
#define ALIGN 64

colloq_seq_params colloq_seq_default_params(void) {
    colloq_seq_params p = { .n_ctx = 0, .cache_type = COLLOQ_CACHE_F16 };
    return p;
}

int colloq_seq_default_n_ctx(const colloq_model *m) {
    return m->hp.n_ctx_train < DEFAULT_N_CTX_CAP ? m->hp.n_ctx_train : DEFAULT_N_CTX_CAP;
}

/* Bytes of one cached row of head_dim elements: F32 and F16 elements, or Q8_0 blocks
 * (32 elements as int8 levels sharing one f16 scale: 34 bytes, 1.0625 bytes/element). */
static size_t cache_row_bytes(colloq_cache_type ct, int head_dim) {
    if (ct == COLLOQ_CACHE_Q8_0) {
        const colloq_type_traits *t = colloq_type_get(CT_Q8_0);
        return (size_t)head_dim / (size_t)t->blck * (size_t)t->type_size;
    }
    return (size_t)head_dim * (ct == COLLOQ_CACHE_F32 ? 4 : 2);
}

/* Queries per attention work item: a group of heads sharing one kv head is processed
 * together, so a block holds max(1, ROWS / group) positions. */
static int att_positions(const colloq_hparams *hp) {
    int grp = hp->n_head / hp->n_head_kv;
    return grp >= COLLOQ_ATT_ROWS ? 1 : COLLOQ_ATT_ROWS / grp;
}

/* Bytes of the KV cache (both K and V) for n_ctx positions; false on overflow. */
static bool kv_size(const colloq_model *m, int n_ctx, colloq_cache_type ct, size_t *out) {
    const colloq_hparams *hp = &m->hp;
    uint64_t n = 2;
    if (!colloq_mul_u64(n, (uint64_t)hp->n_layer, &n) || !colloq_mul_u64(n, (uint64_t)hp->n_head_kv, &n) ||
        !colloq_mul_u64(n, (uint64_t)n_ctx, &n) || !colloq_mul_u64(n, cache_row_bytes(ct, hp->head_dim), &n) ||
        n > SIZE_MAX / 2)
        return false;
    *out = (size_t)n;
    return true;
}

/* Walk the scratch layout of s: with base == NULL only sum the sizes, else also set
 * s's pointers into base.  Every buffer starts on a 64-byte boundary.  Sizes are bounded
 * by the hyper-parameter limits (chunk <= 256, n_ff <= 2^20, ...), so no overflow. */
static size_t carve(size_t *off, size_t bytes) {
    size_t at = *off;
    *off = (at + bytes + ALIGN - 1) / ALIGN * ALIGN;
    return at;
}
#define CARVE(ptr, T, count)                                        \
    do {                                                            \
        size_t at_ = carve(&off, (size_t)(count) * sizeof(T));      \
        if (base) (ptr) = (T *)(void *)(base + at_);                \
    } while (0)

static size_t scratch_layout(const colloq_model *m, int chunk, int nth, colloq_seq *s, char *base) {
    const colloq_hparams *hp = &m->hp;
    size_t off = 0;
    size_t qd = (size_t)hp->n_head * hp->head_dim, kvd = (size_t)hp->n_head_kv * hp->head_dim;
    size_t hd = (size_t)hp->head_dim, c = (size_t)chunk;
    CARVE(s->x, float, c * hp->dim);
    CARVE(s->xn, float, c * hp->dim);
    CARVE(s->tmp, float, c * hp->dim);
    if (m->arch->parallel_block) CARVE(s->tmp2, float, c * hp->dim);
    CARVE(s->q, float, c * qd);
    CARVE(s->k, float, c * kvd);
    CARVE(s->v, float, c * kvd);
    CARVE(s->att, float, c * qd);
    if (m->arch->ffn == COLLOQ_FFN_SWIGLU) CARVE(s->gate, float, c * hp->n_ff);
    CARVE(s->up, float, c * hp->n_ff);
    size_t half = hp->rope_dim / 2 ? (size_t)hp->rope_dim / 2 : 1;
    CARVE(s->rope_cos, float, c * half);
    CARVE(s->rope_sin, float, c * half);
    CARVE(s->inv_freq, double, half);
    /* matmul scratch: the largest any weight needs for `chunk` rows */
    size_t mm = colloq_matmul_scratch(&m->output, chunk);
    for (int l = 0; l < hp->n_layer; l++) {
        const colloq_layer *L = &m->layers[l];
        const colloq_mat *w[] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->ffn_gate, &L->ffn_up, &L->ffn_down };
        for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
            if (!w[i]->data) continue;
            size_t b = colloq_matmul_scratch(w[i], chunk);
            if (b > mm) mm = b;
        }
    }
    CARVE(s->mm_scratch, char, mm);
    /* attention: one scratch set per thread */
    size_t rows = (size_t)att_positions(hp) * (size_t)(hp->n_head / hp->n_head_kv);
    CARVE(s->att_scr, colloq_att_scratch, nth);
    for (int t = 0; t < nth; t++) {
        colloq_att_scratch unused, *a = base ? &s->att_scr[t] : &unused;
        CARVE(a->kt, float, hd * COLLOQ_ATT_KTILE);
        CARVE(a->vt, float, hd * COLLOQ_ATT_KTILE);
        CARVE(a->kT, float, hd * COLLOQ_ATT_KTILE);
        CARVE(a->q, float, rows * hd);
        CARVE(a->acc, float, rows * hd);
        CARVE(a->mx, float, rows);
        CARVE(a->sum, float, rows);
        CARVE(a->s, float, rows * COLLOQ_ATT_KTILE);
    }
    return off;
}
#undef CARVE

static int seq_chunk(int n_ctx) { return n_ctx < COLLOQ_CHUNK ? n_ctx : COLLOQ_CHUNK; }

size_t colloq_seq_estimate(const colloq_model *m, int n_ctx, colloq_cache_type ct,
                           size_t *kv_out, size_t *scratch_out) {
    size_t kv = 0;
    if (!kv_size(m, n_ctx, ct, &kv)) kv = SIZE_MAX / 2;
    colloq_seq unused;
    size_t scr = scratch_layout(m, seq_chunk(n_ctx), m->n_threads > 0 ? m->n_threads : 1, &unused, NULL);
    if (kv_out) *kv_out = kv;
    if (scratch_out) *scratch_out = scr;
    return kv + scr;
}

int colloq_seq_init(colloq_model *m, const colloq_seq_params *p, colloq_seq **out, colloq_err *err) {
    if (!m || !out) return colloq_seterr(err, COLLOQ_ERR_ARG, "colloq_seq_init: model and out are required");
    *out = NULL;
    colloq_seq_params def = colloq_seq_default_params();
    if (!p) p = &def;
    if (p->n_ctx < 0 || p->n_ctx > MAX_N_CTX)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "n_ctx %d is out of range (0..%d)", p->n_ctx, MAX_N_CTX);
    if (p->cache_type != COLLOQ_CACHE_F16 && p->cache_type != COLLOQ_CACHE_F32 && p->cache_type != COLLOQ_CACHE_Q8_0)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "unknown KV cache type %d", (int)p->cache_type);
    if (p->cache_type == COLLOQ_CACHE_Q8_0 && m->hp.head_dim % colloq_type_get(CT_Q8_0)->blck)
        return colloq_seterr(err, COLLOQ_ERR_UNSUPPORTED, "KV cache type q8_0 needs a head size divisible by %d "
                             "(this model's is %d): use f16", colloq_type_get(CT_Q8_0)->blck, m->hp.head_dim);
    int n_ctx = p->n_ctx ? p->n_ctx : colloq_seq_default_n_ctx(m);
    size_t kv;
    if (!kv_size(m, n_ctx, p->cache_type, &kv))
        return colloq_seterr(err, COLLOQ_ERR_NOMEM, "KV cache for n_ctx %d is too large", n_ctx);

    colloq_seq *s = colloq_calloc(1, sizeof *s);
    if (!s) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory allocating a sequence");
    s->model = m;
    s->n_ctx = n_ctx;
    s->cache_type = p->cache_type;
    s->row_bytes = cache_row_bytes(p->cache_type, m->hp.head_dim);
    s->chunk = seq_chunk(n_ctx);
    s->kv_bytes = kv / 2;
    s->k_cache = colloq_aligned_alloc(ALIGN, s->kv_bytes);
    s->v_cache = s->k_cache ? colloq_aligned_alloc(ALIGN, s->kv_bytes) : NULL;
    int nth = m->n_threads > 0 ? m->n_threads : 1;
    size_t scr = scratch_layout(m, s->chunk, nth, s, NULL);
    char *base = s->v_cache ? colloq_aligned_alloc(ALIGN, scr) : NULL;
    if (!base) {
        colloq_seq_free(s);
        return colloq_seterr(err, COLLOQ_ERR_NOMEM, "out of memory allocating a sequence: KV cache %.1f MiB "
                             "+ scratch %.1f MiB (n_ctx %d)", (double)kv / 1048576.0, (double)scr / 1048576.0, n_ctx);
    }
    /* The KV cache is left untouched (pages are committed as positions are written):
     * attention reads only positions it has written. */
    memset(base, 0, scr);
    s->scratch_base = base;
    s->scratch_bytes = scr;
    scratch_layout(m, s->chunk, nth, s, base);
    s->n_att_scr = nth;
    const colloq_hparams *hp = &m->hp;
    s->att_qb = att_positions(hp);
    for (int i = 0; i < hp->rope_dim / 2; i++)
        s->inv_freq[i] = pow((double)hp->rope_base, -2.0 * i / (double)hp->rope_dim);
    *out = s;
    return COLLOQ_OK;
}

void colloq_seq_free(colloq_seq *s) {
    if (!s) return;
    colloq_aligned_free(s->scratch_base);
    colloq_aligned_free(s->k_cache);
    colloq_aligned_free(s->v_cache);
    colloq_free(s);
}

int colloq_seq_n_past(const colloq_seq *s) { return s ? s->n_past : 0; }
int colloq_seq_n_ctx(const colloq_seq *s) { return s ? s->n_ctx : 0; }

void colloq_seq_truncate(colloq_seq *s, int n_keep) {
    if (!s) return;
    if (n_keep < 0) n_keep = 0;
    if (n_keep < s->n_past) s->n_past = n_keep;
}

size_t colloq_seq_memory(const colloq_seq *s) {
    return s ? 2 * s->kv_bytes + s->scratch_bytes : 0;
}
