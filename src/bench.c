/*
 * bench.c - measures a model's prefill and decode speed (medians of repetitions)
 * and, in the same run and on the same threads, the memory read bandwidth (a SIMD
 * sum over a large buffer) and the int8 multiply-accumulate peak, so each speed is
 * reported against its ceiling.  Allocates its own buffers; owns no kernels of the
 * inference path.  The read and int8 loops are compiled per ISA with target
 * attributes and chosen from colloq_kernels_isa().
 */
#include "bench.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "gguf.h"
#include "matmul.h"
#include "model.h"
#include "quant.h"
#include "threadpool.h"
#include "util.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* ---- ceilings ---- */

typedef struct {
    const unsigned char *buf;
    size_t               bytes;
    int                  isa;          /* 0 scalar, 1 avx2, 2 avx512 */
    uint64_t             iters;        /* int8 loop */
    uint64_t             sink[64];     /* per thread, keeps results alive */
} ceil_job;

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static uint64_t read_avx512(const unsigned char *p, size_t n) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 256 <= n; i += 256) {
        a0 = _mm512_xor_si512(a0, _mm512_load_si512(p + i));
        a1 = _mm512_xor_si512(a1, _mm512_load_si512(p + i + 64));
        a2 = _mm512_xor_si512(a2, _mm512_load_si512(p + i + 128));
        a3 = _mm512_xor_si512(a3, _mm512_load_si512(p + i + 192));
    }
    uint64_t v[8];
    _mm512_storeu_si512(v, _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3)));
    return v[0] ^ v[7];
}
__attribute__((target("avx2"))) static uint64_t read_avx2(const unsigned char *p, size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        a0 = _mm256_xor_si256(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_load_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_xor_si256(a2, _mm256_load_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_xor_si256(a3, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    __m256i s = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    uint64_t v[4];
    _mm256_storeu_si256((__m256i *)v, s);
    return v[0] ^ v[3];
}
/* 12 independent vpdpbusd chains; returns a value that depends on all of them. */
__attribute__((target("avx512f,avx512vnni"))) static uint64_t int8_avx512(uint64_t iters, uint64_t seed) {
    __m512i a[12], u = _mm512_set1_epi32((int)seed | 0x01010101), s = _mm512_set1_epi32((int)(seed >> 32) | 1);
#pragma GCC unroll 12
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_epi32(i);
    for (uint64_t it = 0; it < iters; it++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm512_dpbusd_epi32(a[i], u, s);
#pragma GCC unroll 12
    for (int i = 1; i < 12; i++) a[0] = _mm512_xor_si512(a[0], a[i]);
    uint64_t v[8];
    _mm512_storeu_si512(v, a[0]);
    return v[0] ^ v[7];
}
/* The AVX2 int8 product (vpmaddubsw + vpmaddwd + add): 32 MACs per step. */
__attribute__((target("avx2"))) static uint64_t int8_avx2(uint64_t iters, uint64_t seed) {
    __m256i a[8], u = _mm256_set1_epi32((int)seed & 0x3f3f3f3f), s = _mm256_set1_epi32((int)(seed >> 32) | 1);
    const __m256i one = _mm256_set1_epi16(1);
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) a[i] = _mm256_set1_epi32(i);
    for (uint64_t it = 0; it < iters; it++)
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) a[i] = _mm256_add_epi32(a[i], _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), one));
#pragma GCC unroll 8
    for (int i = 1; i < 8; i++) a[0] = _mm256_add_epi32(a[0], a[i]);
    uint32_t v[8];
    _mm256_storeu_si256((__m256i *)v, a[0]);
    return v[0] + v[7];
}
#endif

static uint64_t read_scalar(const unsigned char *p, size_t n) {
    const uint64_t *q = (const uint64_t *)(const void *)p;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= n / 8; i += 4) { s0 ^= q[i]; s1 ^= q[i + 1]; s2 ^= q[i + 2]; s3 ^= q[i + 3]; }
    return s0 ^ s1 ^ s2 ^ s3;
}

static void read_worker(void *ctx, int ith, int nth) {
    ceil_job *j = ctx;
    size_t per = j->bytes / (size_t)nth / 4096 * 4096, off = per * (size_t)ith;
    const unsigned char *p = j->buf + off;
    uint64_t v;
#if defined(__x86_64__)
    if (j->isa == 2) v = read_avx512(p, per);
    else if (j->isa == 1) v = read_avx2(p, per);
    else
#endif
        v = read_scalar(p, per);
    if (ith < 64) j->sink[ith] += v;
}

static void int8_worker(void *ctx, int ith, int nth) {
    ceil_job *j = ctx;
    (void)nth;
    uint64_t v = 0;
#if defined(__x86_64__)
    if (j->isa == 2) v = int8_avx512(j->iters, 0x1234567890abcdefull + (uint64_t)ith);
    else if (j->isa == 1) v = int8_avx2(j->iters, 0x1234567890abcdefull + (uint64_t)ith);
#endif
    if (ith < 64) j->sink[ith] += v;
}

#define BW_MAX 256                    /* bandwidth passes recorded */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(const double *v, int n) {
    double s[BW_MAX];
    if (n <= 0 || n > BW_MAX) return 0;
    memcpy(s, v, sizeof(double) * (size_t)n);
    qsort(s, (size_t)n, sizeof s[0], cmp_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

static int isa_level(void) {
    const char *isa = colloq_kernels_isa();
    return !strcmp(isa, "avx512") ? 2 : !strcmp(isa, "avx2") ? 1 : 0;
}

/* A buffer for the bandwidth passes, allocated like the packed weights (matmul.c):
 * 2 MiB aligned and advised for huge pages; distinct contents in every page
 * (identical pages could be merged by the host). */
static unsigned char *bw_buffer(size_t bytes, colloq_err *err) {
    unsigned char *buf = colloq_aligned_alloc((size_t)2 << 20, bytes);
    if (!buf) {
        colloq_seterr(err, COLLOQ_ERR_NOMEM, "bench: cannot allocate %zu MiB for the bandwidth test", bytes >> 20);
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    madvise(buf, bytes & ~(((size_t)2 << 20) - 1), MADV_HUGEPAGE);
#endif
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i + 8 <= bytes; i += 8) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        memcpy(buf + i, &x, 8);
    }
    return buf;
}

/* n passes over the buffer with the pool's threads, each appended to runs (GB/s). */
static void bw_passes(colloq_pool *pool, ceil_job *j, int n, double *runs, int *nruns) {
    size_t per = j->bytes / (size_t)colloq_pool_size(pool) / 4096 * 4096;
    for (int r = 0; r < n && *nruns < BW_MAX; r++) {
        double t0 = colloq_now();
        colloq_pool_run(pool, read_worker, j);
        runs[(*nruns)++] = (double)(per * (size_t)colloq_pool_size(pool)) / (colloq_now() - t0) / 1e9;
    }
}

/* int8 multiply-accumulate rate (2 ops per MAC, TOPS) of one ~20 ms run over the pool's
 * threads; iters is calibrated on the first call. */
static double int8_run(colloq_pool *pool, ceil_job *j) {
    if (!j->isa) return 0;
    double macs_per_iter = j->isa == 2 ? 12.0 * 64 : 8.0 * 32;
    if (!j->iters) {
        j->iters = 2000;
        colloq_pool_run(pool, int8_worker, j);
        double t0 = colloq_now();
        colloq_pool_run(pool, int8_worker, j);
        double dt = colloq_now() - t0;
        j->iters = (uint64_t)(2000 * 0.02 / (dt > 1e-6 ? dt : 1e-6)) + 1;
    }
    double t0 = colloq_now();
    colloq_pool_run(pool, int8_worker, j);
    return 2.0 * macs_per_iter * (double)j->iters * colloq_pool_size(pool) / (colloq_now() - t0) / 1e12;
}

/* ---- model accounting ---- */

static void count_mat(const colloq_mat *w, uint64_t *bytes, uint64_t *macs, uint64_t *packed) {
    if (!w->data) return;
    *bytes += w->row_bytes * (uint64_t)w->n_rows;
    *macs += (uint64_t)w->k * (uint64_t)w->n_rows;
    *packed += colloq_mat_packed_bytes(w);
}

static void model_counts(const colloq_model *m, colloq_bench_result *r) {
    uint64_t bytes = 0, macs = 0, packed = 0, vec_bytes = 0;
    for (int l = 0; l < m->hp.n_layer; l++) {
        const colloq_layer *L = &m->layers[l];
        const colloq_mat *w[] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->ffn_gate, &L->ffn_up, &L->ffn_down };
        for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) count_mat(w[i], &bytes, &macs, &packed);
    }
    count_mat(&m->output, &bytes, &macs, &packed);
    /* 1-D tensors (norms, biases) are read every token too */
    for (uint64_t i = 0; i < gguf_n_tensors(m->file); i++) {
        const gguf_tensor *t = gguf_tensor_at(m->file, i);
        uint64_t elems = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) elems *= (uint64_t)t->ne[d];
        r->n_weights += elems;
        if (t->n_dims == 1) vec_bytes += t->nbytes;
    }
    r->bytes_per_token = bytes + vec_bytes + m->tok_embd.row_bytes;
    r->macs_per_token = macs;
    r->packed_bytes = packed;
}

static void type_label(const colloq_model *m, char *out, size_t cap) {
    static const struct { uint32_t ft; const char *name; } ftypes[] = {
        { 0, "F32" }, { 1, "F16" }, { 2, "Q4_0" }, { 3, "Q4_1" }, { 7, "Q8_0" }, { 8, "Q5_0" }, { 9, "Q5_1" },
        { 10, "Q2_K" }, { 11, "Q3_K_S" }, { 12, "Q3_K_M" }, { 13, "Q3_K_L" }, { 14, "Q4_K_S" }, { 15, "Q4_K_M" },
        { 16, "Q5_K_S" }, { 17, "Q5_K_M" }, { 18, "Q6_K" }, { 32, "BF16" },
    };
    uint32_t ft;
    if (gguf_get_u32(m->file, "general.file_type", &ft, NULL) == 0)
        for (size_t i = 0; i < sizeof ftypes / sizeof ftypes[0]; i++)
            if (ftypes[i].ft == ft) { snprintf(out, cap, "%s", ftypes[i].name); return; }
    const colloq_type_traits *tr = m->hp.n_layer > 0 ? colloq_type_get(m->layers[0].ffn_up.type) : NULL;
    snprintf(out, cap, "%s", tr ? tr->name : "?");
}

/* ---- the run ---- */

int colloq_bench_run(const colloq_bench_params *p, colloq_bench_result *r, colloq_err *err) {
    if (!p || !r || !p->model_path) return colloq_seterr(err, COLLOQ_ERR_ARG, "bench: a model path is required");
    if (p->n_prompt < 0 || p->n_gen < 0 || p->reps < 1 || p->reps > COLLOQ_BENCH_MAX_REPS || p->bw_mib < 0 ||
        p->bw_mib > (1 << 20) || p->n_threads < 0 || p->depth < 0 || p->depth > (1 << 20))
        return colloq_seterr(err, COLLOQ_ERR_ARG, "bench: bad parameters (prompt %d, gen %d, reps %d, bandwidth buffer "
                             "%d MiB)", p->n_prompt, p->n_gen, p->reps, p->bw_mib);
    memset(r, 0, sizeof *r);
    colloq_model *m = NULL;
    colloq_seq *s = NULL;
    colloq_token *toks = NULL;
    float *logits = NULL;
    unsigned char *bw = NULL;
    colloq_model_params mp = colloq_model_default_params();
    mp.n_threads = p->n_threads;
    mp.verbose = p->verbose;
    double t0 = colloq_now();
    int rc = colloq_model_load(p->model_path, &mp, &m, err);
    if (rc != COLLOQ_OK) return rc;
    r->load_s = colloq_now() - t0;
    snprintf(r->arch, sizeof r->arch, "%s", colloq_model_arch(m));
    snprintf(r->isa, sizeof r->isa, "%s", colloq_kernels_isa());
    type_label(m, r->type, sizeof r->type);
    r->threads = m->n_threads;
    model_counts(m, r);

    int n_max = p->n_prompt > p->depth + p->n_gen ? p->n_prompt : p->depth + p->n_gen;
    colloq_seq_params sp = colloq_seq_default_params();
    sp.n_ctx = n_max + 8;
    sp.cache_type = p->cache_type;
    if (sp.n_ctx > m->hp.n_ctx_train && m->hp.n_ctx_train >= n_max) sp.n_ctx = m->hp.n_ctx_train;
    int nv = colloq_model_n_vocab(m);
    toks = colloq_malloc(sizeof *toks * (size_t)(n_max > 0 ? n_max : 1));
    logits = colloq_malloc(sizeof *logits * (size_t)nv);
    if (!toks || !logits) { rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "bench: out of memory"); goto done; }
    if ((rc = colloq_seq_init(m, &sp, &s, err)) != COLLOQ_OK) goto done;
    uint64_t x = 0x2545f4914f6cdd1dull;
    for (int i = 0; i < n_max; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        toks[i] = (colloq_token)(x % (uint64_t)nv);
    }

    /* The ceilings are sampled between the repetitions, so each is measured under the
     * same conditions (other processes, frequency) as the speeds it bounds. */
    size_t bw_bytes = (size_t)(p->bw_mib ? p->bw_mib : 1024) << 20;
    bw = bw_buffer(bw_bytes, err);
    if (!bw) { rc = COLLOQ_ERR_NOMEM; goto done; }
    ceil_job cj = { .buf = bw, .bytes = bw_bytes, .isa = isa_level() };
    double bw_runs[BW_MAX], i8_runs[COLLOQ_BENCH_MAX_REPS + 1];
    int n_bw = 0, n_i8 = 0;
    colloq_pool_run(m->pool, read_worker, &cj);           /* fault the buffer in */

    /* warm-up: fault the weights in, settle the threads */
    if ((rc = colloq_seq_eval(s, toks, n_max < 16 ? (n_max ? n_max : 1) : 16, logits, false, err)) != COLLOQ_OK) goto done;
    for (int rep = 0; rep < p->reps && p->n_prompt > 0; rep++) {
        i8_runs[n_i8++] = int8_run(m->pool, &cj);
        colloq_seq_truncate(s, 0);
        t0 = colloq_now();
        if ((rc = colloq_seq_eval(s, toks, p->n_prompt, logits, false, err)) != COLLOQ_OK) goto done;
        r->pp_runs[rep] = p->n_prompt / (colloq_now() - t0);
    }
    i8_runs[n_i8++] = int8_run(m->pool, &cj);
    for (int rep = 0; rep < p->reps && p->n_gen > 0; rep++) {
        bw_passes(m->pool, &cj, 3, bw_runs, &n_bw);
        colloq_seq_truncate(s, 0);
        if (p->depth > 0 && (rc = colloq_seq_eval(s, toks, p->depth, NULL, false, err)) != COLLOQ_OK) goto done;
        t0 = colloq_now();
        for (int i = 0; i < p->n_gen; i++)
            if ((rc = colloq_seq_eval(s, &toks[p->depth + i], 1, logits, false, err)) != COLLOQ_OK) goto done;
        r->tg_runs[rep] = p->n_gen / (colloq_now() - t0);
    }
    bw_passes(m->pool, &cj, p->n_gen > 0 ? 3 : 5, bw_runs, &n_bw);
    r->pp_tok_s = p->n_prompt > 0 ? median(r->pp_runs, p->reps) : 0;
    r->tg_tok_s = p->n_gen > 0 ? median(r->tg_runs, p->reps) : 0;
    r->bw_gbps = median(bw_runs, n_bw);
    r->int8_tops = median(i8_runs, n_i8);
    /* token i of a decode run attends over depth + i + 1 cached positions (K and V rows) */
    if (p->n_gen > 0)
        r->kv_bytes_per_token = (uint64_t)((double)s->row_bytes * 2.0 * m->hp.n_layer * m->hp.n_head_kv *
                                           (p->depth + (p->n_gen + 1) / 2.0));
    if (r->bw_gbps > 0)
        r->tg_floor_ratio = r->tg_tok_s * (double)(r->bytes_per_token + r->kv_bytes_per_token) / (r->bw_gbps * 1e9);
    if (r->int8_tops > 0) r->pp_peak_ratio = r->pp_tok_s * 2.0 * (double)r->macs_per_token / (r->int8_tops * 1e12);

done:
    colloq_aligned_free(bw);
    colloq_free(toks);
    colloq_free(logits);
    colloq_seq_free(s);
    colloq_model_free(m);
    return rc;
}
