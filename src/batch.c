/*
 * batch.c - colloq_batch_eval: packs the tokens of several sequences into passes of at
 * most `rows` rows and runs each pass through forward.c's multi-sequence forward
 * (weights read once per pass), then the output layer only for the rows whose logits
 * were asked for.  Owns a workspace sequence and a logits buffer allocated at init;
 * evaluating allocates nothing.  Also lends the model's threads to per-sequence work
 * between passes.  Knows no requests, samplers or text.
 */
#include <stdatomic.h>
#include <string.h>

#include "batch.h"
#include "model.h"
#include "util.h"

struct colloq_batch {
    colloq_model *m;
    colloq_seq   *work;        /* buffers for `rows` rows; its own KV cache stays unused */
    int           rows, max_seqs;
    colloq_token *toks;        /* [rows] ids of the current pass */
    float        *logits;      /* [max_seqs][n_vocab] output rows of one pass */
    int          *done;        /* [max_seqs] tokens already evaluated per item */
    int          *want;        /* [max_seqs] workspace rows whose logits are needed */
    int          *want_item;   /* [max_seqs] which item each wanted row belongs to */
    colloq_fwd_group *groups;  /* [max_seqs] */
};

int colloq_batch_init(colloq_model *m, int max_seqs, int max_tokens, colloq_batch **out, colloq_err *err) {
    if (!m || !out) return colloq_seterr(err, COLLOQ_ERR_ARG, "colloq_batch_init: model and out are required");
    *out = NULL;
    if (max_seqs < 1 || max_seqs > COLLOQ_FWD_MAX_GROUPS)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "batch: max_seqs %d is out of range (1..%d)", max_seqs,
                             COLLOQ_FWD_MAX_GROUPS);
    if (max_tokens < 1) return colloq_seterr(err, COLLOQ_ERR_ARG, "batch: max_tokens must be positive");
    if (max_tokens > COLLOQ_CHUNK) max_tokens = COLLOQ_CHUNK;
    colloq_batch *b = colloq_calloc(1, sizeof *b);
    if (!b) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "batch: out of memory");
    b->m = m;
    b->max_seqs = max_seqs;
    colloq_seq_params sp = colloq_seq_default_params();
    sp.n_ctx = max_tokens;
    int rc = colloq_seq_init(m, &sp, &b->work, err);
    if (rc != COLLOQ_OK) { colloq_batch_free(b); return rc; }
    b->rows = b->work->chunk;
    size_t nv = (size_t)m->hp.n_vocab;
    b->toks = colloq_malloc((size_t)b->rows * sizeof *b->toks);
    b->logits = colloq_malloc((size_t)max_seqs * nv * sizeof *b->logits);
    b->done = colloq_malloc((size_t)max_seqs * sizeof *b->done);
    b->want = colloq_malloc((size_t)max_seqs * sizeof *b->want);
    b->want_item = colloq_malloc((size_t)max_seqs * sizeof *b->want_item);
    b->groups = colloq_malloc((size_t)max_seqs * sizeof *b->groups);
    if (!b->toks || !b->logits || !b->done || !b->want || !b->want_item || !b->groups) {
        colloq_batch_free(b);
        return colloq_seterr(err, COLLOQ_ERR_NOMEM, "batch: out of memory for %d sequences", max_seqs);
    }
    *out = b;
    return COLLOQ_OK;
}

void colloq_batch_free(colloq_batch *b) {
    if (!b) return;
    colloq_seq_free(b->work);
    colloq_free(b->toks);
    colloq_free(b->logits);
    colloq_free(b->done);
    colloq_free(b->want);
    colloq_free(b->want_item);
    colloq_free(b->groups);
    colloq_free(b);
}

int colloq_batch_rows(const colloq_batch *b) { return b ? b->rows : 0; }

size_t colloq_batch_memory(const colloq_batch *b) {
    if (!b) return 0;
    return colloq_seq_memory(b->work) + (size_t)b->max_seqs * (size_t)b->m->hp.n_vocab * sizeof(float);
}

static int check_items(const colloq_batch *b, const colloq_batch_item *it, int n_items, colloq_err *err) {
    if (n_items < 0 || n_items > b->max_seqs || (n_items > 0 && !it))
        return colloq_seterr(err, COLLOQ_ERR_ARG, "batch: %d items (at most %d)", n_items, b->max_seqs);
    int nv = b->m->hp.n_vocab;
    for (int i = 0; i < n_items; i++) {
        const colloq_seq *s = it[i].seq;
        if (!s || s->model != b->m)
            return colloq_seterr(err, COLLOQ_ERR_ARG, "batch: item %d has no sequence of this model", i);
        if (it[i].n < 0 || (it[i].n > 0 && !it[i].toks))
            return colloq_seterr(err, COLLOQ_ERR_ARG, "batch: item %d: bad token array (n = %d)", i, it[i].n);
        if (it[i].n > s->n_ctx - s->n_past)
            return colloq_seterr(err, COLLOQ_ERR_CONTEXT, "context window full: %d positions used + %d new "
                                 "tokens exceed n_ctx %d", s->n_past, it[i].n, s->n_ctx);
        for (int k = 0; k < it[i].n; k++)
            if (it[i].toks[k] < 0 || it[i].toks[k] >= nv)
                return colloq_seterr(err, COLLOQ_ERR_ARG, "token id %d at index %d is out of range (n_vocab %d)",
                                     (int)it[i].toks[k], k, nv);
        for (int j = 0; j < i; j++)
            if (it[j].seq == s && (it[j].n > 0 && it[i].n > 0))
                return colloq_seterr(err, COLLOQ_ERR_ARG, "batch: items %d and %d share a sequence", j, i);
    }
    return COLLOQ_OK;
}

/* One pass: as many remaining tokens as fit, items in order.  Returns false when none remain. */
static bool run_pass(colloq_batch *b, const colloq_batch_item *it, int n_items) {
    int rows = 0, ng = 0, nwant = 0;
    for (int i = 0; i < n_items && rows < b->rows; i++) {
        int left = it[i].n - b->done[i];
        if (left <= 0) continue;
        int take = left < b->rows - rows ? left : b->rows - rows;
        memcpy(b->toks + rows, it[i].toks + b->done[i], (size_t)take * sizeof *b->toks);
        b->groups[ng++] = (colloq_fwd_group){ .seq = it[i].seq, .row0 = rows, .n = take };
        b->done[i] += take;
        rows += take;
        if (b->done[i] == it[i].n && it[i].logits) {
            b->want[nwant] = rows - 1;
            b->want_item[nwant++] = i;
        }
    }
    if (rows == 0) return false;
    colloq_forward_groups(b->work, b->groups, ng, b->toks);
    if (nwant > 0) {
        size_t nv = (size_t)b->m->hp.n_vocab;
        colloq_forward_logits(b->work, b->want, nwant, b->logits);
        for (int w = 0; w < nwant; w++)
            memcpy(it[b->want_item[w]].logits, b->logits + (size_t)w * nv, nv * sizeof(float));
    }
    return true;
}

int colloq_batch_eval(colloq_batch *b, const colloq_batch_item *items, int n_items, colloq_err *err) {
    if (!b) return colloq_seterr(err, COLLOQ_ERR_ARG, "colloq_batch_eval: no batch");
    int rc = check_items(b, items, n_items, err);
    if (rc != COLLOQ_OK) return rc;
    memset(b->done, 0, (size_t)b->max_seqs * sizeof *b->done);
    pthread_mutex_lock(&b->m->eval_lock);
    while (run_pass(b, items, n_items)) {}
    pthread_mutex_unlock(&b->m->eval_lock);
    return COLLOQ_OK;
}

typedef struct {
    void      (*fn)(void *ctx, int i);
    void       *ctx;
    int         n;
    atomic_int  next;          /* the next index to hand out */
} par_job;

static void par_worker(void *arg, int ith, int nth) {
    par_job *j = arg;
    (void)ith;
    (void)nth;
    for (int i; (i = atomic_fetch_add(&j->next, 1)) < j->n;) j->fn(j->ctx, i);
}

void colloq_batch_parallel(colloq_batch *b, void (*fn)(void *ctx, int i), void *ctx, int n) {
    if (!b || !fn || n <= 0) return;
    if (n == 1 || colloq_pool_size(b->m->pool) == 1) {     /* nothing to share: no wake-up */
        for (int i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    par_job j = { .fn = fn, .ctx = ctx, .n = n };
    atomic_init(&j.next, 0);
    pthread_mutex_lock(&b->m->eval_lock);
    colloq_pool_run(b->m->pool, par_worker, &j);
    pthread_mutex_unlock(&b->m->eval_lock);
}
