/*
 * attention.c - causal self-attention of one layer over the rows of a forward pass:
 * grouped-query heads, sliding window, ALiBi, and an online softmax over key tiles read
 * from each sequence's KV cache (kv_rows.c), so memory stays O(tile) for any prompt
 * length.  Work items (kv head x block of positions) are spread over the pool; each runs
 * the work-item kernel of the chosen kernel set (attention_body.h: this file compiles the
 * portable one, attention_avx2.c / attention_avx512.c the others).
 */
#include <pthread.h>
#include <string.h>

#include "attention_kern.h"
#include "quant.h"
#include "quant_simd.h"
#include "util.h"

/* Portable kernel: generic vectors of 4 floats (SSE2 on any x86-64, NEON on arm64). */
#define VW 4
#define ATT_RB 2
#define ATT_KC 4
#define ATT_FN colloq_att_item_ref
#include "attention_body.h"

float colloq_att_exp_ref(float x) { return att_exp(splat(x))[0]; }

colloq_att_item_fn colloq_att_kernel(const char *isa) {
    if (!isa) isa = colloq_kernels_isa();
#if defined(__x86_64__)
    if (!strcmp(isa, "avx512")) return colloq_kernels_supported("avx512") ? colloq_att_item_avx512 : NULL;
    if (!strcmp(isa, "avx2")) return colloq_kernels_supported("avx2") ? colloq_att_item_avx2 : NULL;
#endif
    return !strcmp(isa, "ref") ? colloq_att_item_ref : NULL;
}

static colloq_att_item_fn chosen_kernel;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;
static void choose_kernel(void) { chosen_kernel = colloq_att_kernel(NULL); }

typedef struct {
    colloq_seq *w;                  /* workspace: q, att, attention scratch */
    const colloq_fwd_group *gr;     /* the sequences whose caches are read */
    colloq_att_item_fn fn;
    int ng, l;
    int split;                      /* parts the heads of a kv group are split into */
    int items[COLLOQ_FWD_MAX_GROUPS + 1];   /* prefix sums of work items per group */
} att_job;

/* Work items: per sequence, kv head x block of positions, and when that gives fewer
 * items than threads (decode with few kv heads), the heads of a group are split as well.
 * Items are numbered across the sequences (prefix sums in j->items). */
static void att_worker(void *ctx, int ith, int nth) {
    const att_job *j = ctx;
    const colloq_seq *w = j->w;
    const colloq_hparams *hp = &w->model->hp;
    if (ith >= w->n_att_scr) return;                     /* cannot happen: the pool size is fixed */
    int grp = hp->n_head / hp->n_head_kv, qb = w->att_qb, split = j->split, gi = 0;
    size_t qdim = (size_t)hp->n_head * hp->head_dim;
    for (int it = ith; it < j->items[j->ng]; it += nth) {
        while (it >= j->items[gi + 1]) gi++;
        const colloq_fwd_group *G = &j->gr[gi];
        int nqb = (G->n + qb - 1) / qb, k = it - j->items[gi];
        int g = k / (nqb * split), b = k / split % nqb, part = k % split;
        colloq_att_item item = {
            .s = G->seq, .a = &w->att_scr[ith], .l = j->l, .g = g,
            .q = w->q + (size_t)G->row0 * qdim, .o = w->att + (size_t)G->row0 * qdim,
            .ha = g * grp + grp * part / split, .hb = g * grp + grp * (part + 1) / split,
            .i0 = b * qb, .i1 = b * qb + qb < G->n ? b * qb + qb : G->n,
        };
        j->fn(&item);
    }
}

void colloq_attention_with(colloq_seq *w, const colloq_fwd_group *gr, int ng, int l, colloq_att_item_fn fn) {
    const colloq_hparams *hp = &w->model->hp;
    int nth = colloq_pool_size(w->model->pool), grp = hp->n_head / hp->n_head_kv, base = 0;
    att_job job = { .w = w, .gr = gr, .fn = fn, .ng = ng, .l = l, .split = 1 };
    for (int g = 0; g < ng; g++) base += hp->n_head_kv * ((gr[g].n + w->att_qb - 1) / w->att_qb);
    if (base < nth) job.split = (nth + base - 1) / base < grp ? (nth + base - 1) / base : grp;
    job.items[0] = 0;
    for (int g = 0; g < ng; g++)
        job.items[g + 1] = job.items[g] + hp->n_head_kv * ((gr[g].n + w->att_qb - 1) / w->att_qb) * job.split;
    colloq_pool_run(w->model->pool, att_worker, &job);
}

void colloq_attention(colloq_seq *w, const colloq_fwd_group *gr, int ng, int l) {
    pthread_once(&chosen_once, choose_kernel);
    colloq_attention_with(w, gr, ng, l, chosen_kernel ? chosen_kernel : colloq_att_item_ref);
}
