/*
 * matmul.c - weight x activation products for the forward pass: quantises the
 * activation rows once into caller scratch, splits the weight rows over the pool,
 * and runs one of three paths chosen by the kernel table (matmul_pack.h): packed
 * 16-row panels (quantised types), float tiles (F32/F16/BF16) or per-pair vec_dot
 * (reference kernels); colloq_matmul_multi runs several products over the same
 * activations as one.  Also builds the optional load-time packed copy.  Never
 * allocates on the product path; knows tensor types and shapes, not models.
 */
#include "matmul.h"
#include "matmul_pack.h"
#include "threadpool.h"
#include "util.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define SCRATCH_ALIGN 64
#define TOK_GROUP 64          /* tokens per panel-kernel call (facc on the stack) */
#define PACK_CHUNK_BYTES 4352 /* on-the-fly packing: 8 Q8_0 blocks or one K-quant block */

/* Header of a packed copy: what it was made from, so a stale or copied pointer is ignored. */
typedef struct {
    const void *data;
    uint32_t    type;
    int64_t     k, n_rows;
    uint64_t    bytes;        /* of the panels after the header */
    char        pad[24];
} pack_header;

/* ---- sizes ---- */

/* Row size of the activations in vec_dot_type; 0 when w cannot be multiplied. */
static uint64_t act_row_bytes(const colloq_mat *w) {
    const colloq_type_traits *tr = colloq_type_get(w->type);
    uint64_t wrow, xrow;
    if (!tr || w->k <= 0 || w->n_rows < 0) return 0;
    if (!colloq_type_row_size(w->type, w->k, &wrow) || w->row_bytes < wrow) return 0;
    if (!colloq_type_row_size(tr->vec_dot_type, w->k, &xrow)) return 0;
    return xrow;
}

/* Bytes of one token's packed-path activations; 0 when the type has no packed layout. */
static uint64_t act_packed_bytes(const colloq_mat *w) {
    colloq_pack_info pi;
    if (!colloq_pack_info_get(w->type, &pi) || w->k % pi.blck) return 0;
    uint64_t sz = pi.act_kind == 32 ? sizeof(colloq_act32) : sizeof(colloq_act256);
    return (uint64_t)(w->k / pi.blck) * sz;
}

size_t colloq_matmul_scratch(const colloq_mat *w, int m) {
    const colloq_type_traits *tr = colloq_type_get(w->type);
    uint64_t row = act_row_bytes(w), total;
    if (!row || m <= 0 || tr->vec_dot_type == CT_F32) return 0;
    uint64_t packed = act_packed_bytes(w);
    if (packed > row) row = packed;
    if (!colloq_mul_u64(row, (uint64_t)m, &total) || !colloq_add_u64(total, SCRATCH_ALIGN, &total)
        || total > SIZE_MAX)
        return 0;
    return (size_t)total;
}

/* ---- per-pair path ---- */

#define MM_MAX_PARTS 4        /* products sharing one activation quantisation (colloq_matmul_multi) */

typedef struct mm_job mm_job;
struct mm_job {
    const colloq_mat    *w;
    const float         *x;          /* m rows of k floats */
    int                  m;
    float               *y;          /* m rows of n_rows floats */
    unsigned char       *xq;         /* quantised activations */
    uint64_t             xq_row;     /* per-pair path: bytes per row */
    colloq_from_float_fn quant;
    colloq_vec_dot_fn    dot;
    const colloq_mmk    *mk;
    colloq_pack_info     pi;
    atomic_llong         next;       /* packed path, one token group: next panel chunk to take */
    /* colloq_matmul_multi: nparts products over the same activations, their panels numbered
     * one after another (part i holds panels [pstart[i], pstart[i + 1])); 0 = just w */
    int                  nparts;
    const mm_job        *parts;
    int64_t              pstart[MM_MAX_PARTS + 1];
};

static void mm_quantize(void *arg, int ith, int nth) {
    mm_job *j = arg;
    for (int r = ith; r < j->m; r += nth)
        j->quant(j->x + (int64_t)r * j->w->k, j->xq + (uint64_t)r * j->xq_row, j->w->k);
}

static void mm_rows(void *arg, int ith, int nth) {
    mm_job *j = arg;
    const colloq_mat *w = j->w;
    int64_t r0 = w->n_rows * ith / nth, r1 = w->n_rows * (ith + 1) / nth;
    const unsigned char *wd = w->data;
    for (int64_t r = r0; r < r1; r++) {
        const void *wrow = wd + (uint64_t)r * w->row_bytes;
        for (int i = 0; i < j->m; i++)
            j->y[(int64_t)i * w->n_rows + r] = j->dot(w->k, wrow, j->xq + (uint64_t)i * j->xq_row);
    }
}

/* ---- float tiles ---- */

static void mm_tiles(void *arg, int ith, int nth) {
    mm_job *j = arg;
    const colloq_mat *w = j->w;
    int64_t r0 = w->n_rows * ith / nth, r1 = w->n_rows * (ith + 1) / nth;
    if (r1 <= r0) return;
    /* Tokens in chunks whose activations stay in L2 while the rows stream past. */
    int64_t tc = (int64_t)(1 << 20) / (w->k * 4);
    tc = tc < 4 ? 4 : tc > 64 ? 64 : tc / 4 * 4;
    for (int64_t t0 = 0; t0 < j->m; t0 += tc) {
        int nt = (int)(j->m - t0 < tc ? j->m - t0 : tc);
        j->mk->tile(w->k, (const unsigned char *)w->data + (uint64_t)r0 * w->row_bytes, w->row_bytes,
                    (int)(r1 - r0), j->x + t0 * w->k, nt, j->y + t0 * w->n_rows + r0, w->n_rows);
    }
}

/* ---- packed panels ---- */

static void mm_act(void *arg, int ith, int nth) {
    mm_job *j = arg;
    int64_t t0 = (int64_t)j->m * ith / nth, t1 = (int64_t)j->m * (ith + 1) / nth;
    for (int64_t t = t0; t < t1; t++)
        j->mk->act(j->x + t * j->w->k, j->w->k, j->xq, j->m, t, j->pi.off);
}

static const unsigned char *packed_panels(const colloq_mat *w) {
    const pack_header *h = w->packed;
    if (!h || h->data != w->data || h->type != w->type || h->k != w->k || h->n_rows != w->n_rows) return NULL;
    return (const unsigned char *)(h + 1);
}

/* Panel p for tokens [t0, t0 + nt): the kernel over the packed copy, or over pieces
 * packed on the fly, then the 16 results per token into y. */
static void mm_panel(const mm_job *j, int64_t p, int t0, int nt, float *facc, unsigned char *buf) {
    const colloq_mat *w = j->w;
    int64_t nb = w->k / j->pi.blck, r0 = p * COLLOQ_PANEL;
    size_t asz = j->pi.act_kind == 32 ? sizeof(colloq_act32) : sizeof(colloq_act256);
    int nr = (int)(w->n_rows - r0 < COLLOQ_PANEL ? w->n_rows - r0 : COLLOQ_PANEL);
    const unsigned char *packed = packed_panels(w);
    memset(facc, 0, sizeof(float) * COLLOQ_PANEL * (size_t)nt);
    if (packed) {
        j->mk->panel(packed + (uint64_t)(p * nb) * (uint64_t)j->pi.panel_block_bytes, nb, j->xq + (size_t)t0 * asz,
                     j->m, nt, facc);
    } else {
        const void *rows = (const unsigned char *)w->data + (uint64_t)r0 * w->row_bytes;
        int64_t chunk = PACK_CHUNK_BYTES / j->pi.panel_block_bytes;
        for (int64_t b0 = 0; b0 < nb; b0 += chunk) {
            int64_t b1 = b0 + chunk < nb ? b0 + chunk : nb;
            colloq_pack_panel(w->type, rows, w->row_bytes, nr, b0, b1, buf);
            j->mk->panel(buf, b1 - b0, j->xq + ((size_t)b0 * (size_t)j->m + (size_t)t0) * asz, j->m, nt, facc);
        }
    }
    float *yt = j->y + (int64_t)t0 * w->n_rows + r0;
    if (nr == COLLOQ_PANEL)      /* a fixed size the compiler turns into vector moves */
        for (int t = 0; t < nt; t++, yt += w->n_rows) memcpy(yt, facc + t * COLLOQ_PANEL, sizeof(float) * COLLOQ_PANEL);
    else
        for (int t = 0; t < nt; t++, yt += w->n_rows) memcpy(yt, facc + t * COLLOQ_PANEL, sizeof(float) * (size_t)nr);
}

/* Decode and small batches (one token group): threads take chunks of panels as they
 * finish, so a thread slowed by the rest of the machine does not hold the others at
 * the end.  Larger batches: tokens in groups whose activations (about 1 MiB) stay in
 * L2 while the panels stream past (the activations are the data every panel reuses),
 * each group's panels again in chunks taken as threads finish.  Either way each result
 * is computed the same way. */
/* Panel p of the job's numbering (across its parts for colloq_matmul_multi). */
static void mm_panel_any(const mm_job *j, int64_t p, int t0, int nt, float *facc, unsigned char *buf) {
    if (!j->nparts) {
        mm_panel(j, p, t0, nt, facc, buf);
        return;
    }
    int i = 0;
    while (p >= j->pstart[i + 1]) i++;
    mm_panel(&j->parts[i], p - j->pstart[i], t0, nt, facc, buf);
}

static void mm_panels(void *arg, int ith, int nth) {
    mm_job *j = arg;
    const colloq_mat *w = j->w;
    int64_t np = j->nparts ? j->pstart[j->nparts] : (w->n_rows + COLLOQ_PANEL - 1) / COLLOQ_PANEL;
    int64_t nb = w->k / j->pi.blck;
    size_t asz = j->pi.act_kind == 32 ? sizeof(colloq_act32) : sizeof(colloq_act256);
    float facc[TOK_GROUP * COLLOQ_PANEL] __attribute__((aligned(64)));
    unsigned char buf[PACK_CHUNK_BYTES] __attribute__((aligned(64)));
    if (j->m <= TOK_GROUP) {
        int64_t ch = np / (8 * (int64_t)nth);
        ch = ch < 1 ? 1 : ch > 64 ? 64 : ch;
        for (;;) {
            int64_t p0 = atomic_fetch_add(&j->next, ch);
            if (p0 >= np) break;
            for (int64_t p = p0; p < p0 + ch && p < np; p++) mm_panel_any(j, p, 0, j->m, facc, buf);
        }
        return;
    }
    /* token groups in order, each split into chunks of panels taken as threads finish */
    int tg = (int)((1u << 20) / ((uint64_t)nb * asz)) / 8 * 8;
    tg = tg < 8 ? 8 : tg > TOK_GROUP ? TOK_GROUP : tg;
    int64_t ch = np / (16 * (int64_t)nth);
    ch = ch < 1 ? 1 : ch > 32 ? 32 : ch;
    int64_t nch = (np + ch - 1) / ch, ng = (j->m + tg - 1) / tg;
    for (;;) {
        int64_t c = atomic_fetch_add(&j->next, 1);
        if (c >= ng * nch) break;
        int t0 = (int)(c / nch) * tg, nt = j->m - t0 < tg ? j->m - t0 : tg;
        int64_t p0 = c % nch * ch;
        for (int64_t p = p0; p < p0 + ch && p < np; p++) mm_panel_any(j, p, t0, nt, facc, buf);
    }
}

/* ---- entry ---- */

void colloq_matmul(const colloq_mat *w, const float *x, int m, float *y,
                   void *scratch, colloq_pool *pool) {
    if (m <= 0) return;
    uint64_t xrow = act_row_bytes(w);
    if (!xrow) {       /* programmer error: the model layer validates types and shapes */
        colloq_log(0, "matmul: unsupported weight type %u or shape (k=%lld)", (unsigned)w->type,
                   (long long)w->k);
        if (w->n_rows > 0) memset(y, 0, sizeof(float) * (size_t)m * (size_t)w->n_rows);
        return;
    }
    colloq_kernels_init();
    const colloq_type_traits *tr = colloq_type_get(w->type);
    mm_job job = { .w = w, .x = x, .m = m, .y = y, .xq_row = xrow, .mk = colloq_mmk_get(w->type) };
    atomic_init(&job.next, 0);
    uintptr_t a = ((uintptr_t)scratch + SCRATCH_ALIGN - 1) & ~(uintptr_t)(SCRATCH_ALIGN - 1);
    bool par = m > 1 && colloq_pool_size(pool) > 1;

    if (job.mk->panel && job.mk->act && colloq_pack_info_get(w->type, &job.pi) && w->k % job.pi.blck == 0) {
        job.xq = (unsigned char *)a;
        if (par) colloq_pool_run(pool, mm_act, &job);
        else mm_act(&job, 0, 1);
        colloq_pool_run(pool, mm_panels, &job);
        return;
    }
    if (job.mk->tile && tr->vec_dot_type == CT_F32) {
        colloq_pool_run(pool, mm_tiles, &job);
        return;
    }
    job.quant = colloq_type_fast(tr->vec_dot_type)->from_float;
    job.dot = colloq_type_fast(w->type)->vec_dot;
    if (tr->vec_dot_type == CT_F32) {
        job.xq = (unsigned char *)(uintptr_t)x;         /* read only */
    } else {
        job.xq = (unsigned char *)a;
        if (par) colloq_pool_run(pool, mm_quantize, &job);
        else mm_quantize(&job, 0, 1);
    }
    colloq_pool_run(pool, mm_rows, &job);
}

/* Whether w multiplies through the packed-panel path, with its kernels and layout. */
static bool panel_path(const colloq_mat *w, const colloq_mmk **mk, colloq_pack_info *pi) {
    *mk = colloq_mmk_get(w->type);
    return act_row_bytes(w) && (*mk)->panel && (*mk)->act && colloq_pack_info_get(w->type, pi) &&
           w->k % pi->blck == 0;
}

void colloq_matmul_multi(const colloq_mat *const *w, float *const *y, int n, const float *x, int m,
                         void *scratch, colloq_pool *pool) {
    if (m <= 0 || n <= 0) return;
    colloq_kernels_init();
    const colloq_mmk *mk0;
    colloq_pack_info pi0;
    bool shared = n > 1 && n <= MM_MAX_PARTS && panel_path(w[0], &mk0, &pi0);
    for (int i = 1; shared && i < n; i++) {
        const colloq_mmk *mk;
        colloq_pack_info pi;
        shared = w[i]->k == w[0]->k && panel_path(w[i], &mk, &pi) && mk->act == mk0->act &&
                 pi.act_kind == pi0.act_kind && pi.off == pi0.off && pi.blck == pi0.blck;
    }
    if (!shared) {
        for (int i = 0; i < n; i++) colloq_matmul(w[i], x, m, y[i], scratch, pool);
        return;
    }
    /* the activations quantised once, then one pool run over all parts' panels */
    uintptr_t a = ((uintptr_t)scratch + SCRATCH_ALIGN - 1) & ~(uintptr_t)(SCRATCH_ALIGN - 1);
    mm_job parts[MM_MAX_PARTS];
    mm_job job = { .w = w[0], .x = x, .m = m, .y = y[0], .mk = mk0, .pi = pi0, .xq = (unsigned char *)a,
                   .nparts = n, .parts = parts };
    atomic_init(&job.next, 0);
    job.pstart[0] = 0;
    for (int i = 0; i < n; i++) {
        parts[i] = (mm_job){ .w = w[i], .x = x, .m = m, .y = y[i], .xq = job.xq, .mk = colloq_mmk_get(w[i]->type) };
        colloq_pack_info_get(w[i]->type, &parts[i].pi);
        atomic_init(&parts[i].next, 0);
        job.pstart[i + 1] = job.pstart[i] + (w[i]->n_rows + COLLOQ_PANEL - 1) / COLLOQ_PANEL;
    }
    if (m > 1 && colloq_pool_size(pool) > 1) colloq_pool_run(pool, mm_act, &job);
    else mm_act(&job, 0, 1);
    colloq_pool_run(pool, mm_panels, &job);
}

void colloq_mat_get_row(const colloq_mat *w, int64_t r, float *out) {
    const colloq_type_kernels *k = colloq_type_fast(w->type);
    uint64_t need;
    if (!k || r < 0 || r >= w->n_rows || !colloq_type_row_size(w->type, w->k, &need)
        || w->row_bytes < need) {
        colloq_log(0, "mat_get_row: bad row %lld or matrix (type %u)", (long long)r, (unsigned)w->type);
        if (w->k > 0) memset(out, 0, sizeof(float) * (size_t)w->k);
        return;
    }
    colloq_kernels_init();
    k->to_float((const unsigned char *)w->data + (uint64_t)r * w->row_bytes, out, w->k);
}

/* ---- load-time packing ---- */

typedef struct {
    const colloq_mat *w;
    unsigned char    *dst;
    colloq_pack_info  pi;
} pack_job;

static void pack_worker(void *arg, int ith, int nth) {
    pack_job *j = arg;
    const colloq_mat *w = j->w;
    int64_t np = (w->n_rows + COLLOQ_PANEL - 1) / COLLOQ_PANEL, nb = w->k / j->pi.blck;
    for (int64_t p = np * ith / nth; p < np * (ith + 1) / nth; p++) {
        int64_t r0 = p * COLLOQ_PANEL;
        int nr = (int)(w->n_rows - r0 < COLLOQ_PANEL ? w->n_rows - r0 : COLLOQ_PANEL);
        colloq_pack_panel(w->type, (const unsigned char *)w->data + (uint64_t)r0 * w->row_bytes, w->row_bytes,
                          nr, 0, nb, j->dst + (uint64_t)(p * nb) * (uint64_t)j->pi.panel_block_bytes);
    }
}

int colloq_mat_pack(colloq_mat *w, colloq_pool *pool) {
    colloq_pack_info pi;
    const char *env = getenv("COLLOQ_REPACK");
    if (!w || !w->data || w->packed || w->n_rows <= 0 || !act_row_bytes(w)) return COLLOQ_OK;
    if (env && !strcmp(env, "0")) return COLLOQ_OK;
    colloq_kernels_init();
    if (!colloq_mmk_get(w->type)->panel || !colloq_pack_info_get(w->type, &pi) || w->k % pi.blck) return COLLOQ_OK;
    uint64_t np = (uint64_t)(w->n_rows + COLLOQ_PANEL - 1) / COLLOQ_PANEL, bytes, total;
    if (!colloq_mul_u64(np * (uint64_t)(w->k / pi.blck), (uint64_t)pi.panel_block_bytes, &bytes)
        || !colloq_add_u64(bytes, sizeof(pack_header), &total) || total > SIZE_MAX)
        return COLLOQ_ERR_NOMEM;
    /* 2 MiB aligned and advised for huge pages: decode streams it once per token, and
     * 4 KiB pages cost a TLB miss every 4 KiB (measured: ~15 % of read bandwidth). */
    bool big = total >= ((uint64_t)4 << 20);
    pack_header *h = colloq_aligned_alloc(big ? (size_t)2 << 20 : 64, (size_t)total);
    if (!h) return COLLOQ_ERR_NOMEM;
#ifdef MADV_HUGEPAGE
    if (big) madvise(h, (size_t)total & ~(((size_t)2 << 20) - 1), MADV_HUGEPAGE);
#endif
    *h = (pack_header){ .data = w->data, .type = w->type, .k = w->k, .n_rows = w->n_rows, .bytes = bytes };
    pack_job job = { .w = w, .dst = (unsigned char *)(h + 1), .pi = pi };
    colloq_pool_run(pool, pack_worker, &job);
    w->packed = h;
    return COLLOQ_OK;
}

void colloq_mat_unpack(colloq_mat *w) {
    if (!w || !w->packed) return;
    colloq_aligned_free(w->packed);
    w->packed = NULL;
}

uint64_t colloq_mat_packed_bytes(const colloq_mat *w) {
    const pack_header *h = w ? w->packed : NULL;
    return h ? h->bytes : 0;
}
