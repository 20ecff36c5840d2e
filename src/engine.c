/*
 * engine.c - continuous batching: the slots, the bounded queue and the scheduler
 * thread.  Each step: drop cancelled requests, admit queued ones into free slots (the
 * slot whose cached tokens share the longest prefix with the prompt), evaluate every
 * decoding slot's last token plus prompt chunks (bounded per step) in one
 * colloq_batch_eval, then sample per request (the draws spread over the model's
 * threads, each with the request's own sampler) and deliver through its callbacks.
 * No I/O; the lock guards the queue, cancel flags and stats, never an evaluation.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "engine.h"
#include "util.h"

#define MAX_SLOTS 64
#define DEFAULT_PROMPT_CHUNK 64
/* After a step that finished requests, while others still decode and nothing is
 * queued, the next step waits this long at most (and at most 1/16 of the last step)
 * for new requests: a client that answers a finished request with its next one then
 * joins the very next step instead of waiting a whole step for the one after. */
#define REFILL_WAIT_MAX 0.004

typedef struct ereq ereq;
struct ereq {
    uint64_t id;
    colloq_token *prompt;
    int n_prompt, n_fed;           /* prompt tokens in the slot's cache (incl. cached ones) */
    int max_tokens, n_gen;
    colloq_sampler *smp;
    colloq_logit_bias *bias;
    int n_bias, logprobs;
    bool ignore_eos;
    colloq_engine_callbacks cb;
    bool cancel;                   /* guarded by the engine lock */
    uint64_t cancel_step;          /* e->steps when the cancel was asked */
    colloq_token last;             /* sampled, to be evaluated next step */
    bool decoding;                 /* prompt done; `last` is pending */
    colloq_engine_result res;
    ereq *next;                    /* queue link */
};

typedef struct {
    colloq_seq   *seq;
    colloq_token *toks;            /* what the KV cache holds: n_cache == seq n_past */
    int           n_cache;
    ereq         *r;               /* NULL: free */
    uint64_t      last_used;
    float        *logits;          /* n_vocab */
    float        *orig;            /* n_vocab: logits before sampling, for logprobs */
    colloq_engine_token ev;        /* this step's sampled token, for on_token */
    bool          eog;             /* ev.token ends the generation */
} slot;

struct colloq_engine {
    colloq_model *m;
    colloq_engine_params p;
    int n_vocab, n_ctx;
    slot slots[MAX_SLOTS];
    colloq_batch *batch;
    colloq_batch_item items[MAX_SLOTS];
    int item_slot[MAX_SLOTS];
    colloq_token *fed[MAX_SLOTS];  /* per item: the slot tokens to append after evaluation */
    int to_sample[MAX_SLOTS];      /* slots whose logits the current step produced */

    pthread_mutex_t lock;
    pthread_cond_t  wake;
    pthread_t thread;
    bool thread_started, stop, closed;
    ereq *q_head, *q_tail;
    int n_queued;
    uint64_t next_id, use_clock;
    int rr;                        /* round-robin start for prompt chunks */
    bool refill;                   /* the last step finished a request (scheduler thread) */
    double last_step;              /* seconds the last step took */
    colloq_engine_stats st;
};

colloq_engine_params colloq_engine_default_params(void) {
    colloq_engine_params p = { .n_parallel = 4, .n_ctx = 0, .queue_max = 64, .step_tokens = 256,
                               .prompt_chunk = DEFAULT_PROMPT_CHUNK, .cache_type = COLLOQ_CACHE_F16 };
    return p;
}

/* ---- requests ---- */

static void req_free(ereq *r) {
    if (!r) return;
    colloq_sampler_free(r->smp);
    colloq_free(r->prompt);
    colloq_free(r->bias);
    colloq_free(r);
}

/* Report and free (no lock held). */
static void req_finish(colloq_engine *e, ereq *r, colloq_finish f, const char *msg) {
    r->res.finish = f;
    r->res.n_gen = r->n_gen;
    r->res.t_end = colloq_now();
    if (msg) snprintf(r->res.error, sizeof r->res.error, "%.*s", (int)sizeof r->res.error - 1, msg);   /* cut to fit */
    pthread_mutex_lock(&e->lock);
    e->st.requests_done++;
    if (f == COLLOQ_FINISH_CANCELLED) {
        e->st.requests_cancelled++;
        int waited = r->cancel ? (int)(e->st.steps - r->cancel_step) : 0;
        if (waited > e->st.cancel_steps_max) e->st.cancel_steps_max = waited;
    }
    pthread_mutex_unlock(&e->lock);
    if (r->cb.on_done) r->cb.on_done(r->cb.ud, &r->res);
    req_free(r);
}

int colloq_engine_submit(colloq_engine *e, const colloq_engine_request *q, uint64_t *id, colloq_err *err) {
    if (!e || !q || !id) return colloq_seterr(err, COLLOQ_ERR_ARG, "engine: bad arguments");
    if (q->n_prompt < 1 || !q->prompt)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "the prompt has no tokens");
    if (q->n_prompt > e->n_ctx)
        return colloq_seterr(err, COLLOQ_ERR_CONTEXT, "the prompt has %d tokens, more than the context "
                             "window of %d tokens", q->n_prompt, e->n_ctx);
    if (q->n_bias < 0 || (q->n_bias > 0 && !q->bias) || q->logprobs > COLLOQ_ENGINE_MAX_TOP)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "engine: bad logit_bias or logprobs");
    for (int i = 0; i < q->n_prompt; i++)
        if (q->prompt[i] < 0 || q->prompt[i] >= e->n_vocab)
            return colloq_seterr(err, COLLOQ_ERR_ARG, "token id %d at index %d is out of range (n_vocab %d)",
                                 (int)q->prompt[i], i, e->n_vocab);
    for (int i = 0; i < q->n_bias; i++)
        if (q->bias[i].id < 0 || q->bias[i].id >= e->n_vocab || !isfinite(q->bias[i].bias))
            return colloq_seterr(err, COLLOQ_ERR_ARG, "logit_bias: token id %d is out of range (n_vocab %d)",
                                 (int)q->bias[i].id, e->n_vocab);
    ereq *r = colloq_calloc(1, sizeof *r);
    if (!r) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "engine: out of memory");
    int rc = colloq_sampler_init(&q->sampling, e->n_vocab, &r->smp, err);
    if (rc != COLLOQ_OK) { req_free(r); return rc; }
    r->prompt = colloq_malloc((size_t)q->n_prompt * sizeof *r->prompt);
    r->bias = q->n_bias ? colloq_malloc((size_t)q->n_bias * sizeof *r->bias) : NULL;
    if (!r->prompt || (q->n_bias && !r->bias)) {
        req_free(r);
        return colloq_seterr(err, COLLOQ_ERR_NOMEM, "engine: out of memory for the prompt");
    }
    memcpy(r->prompt, q->prompt, (size_t)q->n_prompt * sizeof *r->prompt);
    if (q->n_bias) memcpy(r->bias, q->bias, (size_t)q->n_bias * sizeof *r->bias);
    r->n_prompt = q->n_prompt;
    r->n_bias = q->n_bias;
    r->logprobs = q->logprobs < 0 ? -1 : q->logprobs;
    r->ignore_eos = q->ignore_eos;
    r->cb = q->cb;
    int fit = e->n_ctx - q->n_prompt + 1;     /* the last sampled token is never evaluated */
    r->max_tokens = q->max_tokens > 0 && q->max_tokens < fit ? q->max_tokens : fit;
    r->res.n_prompt = q->n_prompt;
    r->res.t_submit = colloq_now();

    pthread_mutex_lock(&e->lock);
    if (e->closed || e->stop) {
        pthread_mutex_unlock(&e->lock);
        req_free(r);
        return colloq_seterr(err, COLLOQ_ERR_CANCELLED, "the server is shutting down");
    }
    if (e->n_queued >= e->p.queue_max) {
        pthread_mutex_unlock(&e->lock);
        req_free(r);
        return colloq_seterr(err, COLLOQ_ENGINE_QUEUE_FULL, "the request queue is full (%d waiting)",
                             e->p.queue_max);
    }
    r->id = ++e->next_id;
    *id = r->id;
    if (e->q_tail) e->q_tail->next = r;
    else e->q_head = r;
    e->q_tail = r;
    e->n_queued++;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    return COLLOQ_OK;
}

static void mark_cancel(colloq_engine *e, ereq *r) {
    if (r->cancel) return;
    r->cancel = true;
    r->cancel_step = e->st.steps;
}

void colloq_engine_cancel(colloq_engine *e, uint64_t id) {
    if (!e || !id) return;
    pthread_mutex_lock(&e->lock);
    for (ereq *r = e->q_head; r; r = r->next)
        if (r->id == id) mark_cancel(e, r);
    for (int i = 0; i < e->p.n_parallel; i++)
        if (e->slots[i].r && e->slots[i].r->id == id) mark_cancel(e, e->slots[i].r);
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
}

void colloq_engine_cancel_all(colloq_engine *e) {
    if (!e) return;
    pthread_mutex_lock(&e->lock);
    for (ereq *r = e->q_head; r; r = r->next) mark_cancel(e, r);
    for (int i = 0; i < e->p.n_parallel; i++)
        if (e->slots[i].r) mark_cancel(e, e->slots[i].r);
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
}

void colloq_engine_close(colloq_engine *e) {
    if (!e) return;
    pthread_mutex_lock(&e->lock);
    e->closed = true;
    pthread_mutex_unlock(&e->lock);
}

int colloq_engine_n_ctx(const colloq_engine *e) { return e ? e->n_ctx : 0; }
int colloq_engine_n_parallel(const colloq_engine *e) { return e ? e->p.n_parallel : 0; }

void colloq_engine_get_stats(colloq_engine *e, colloq_engine_stats *st) {
    pthread_mutex_lock(&e->lock);
    *st = e->st;
    st->n_slots = e->p.n_parallel;
    st->queued = e->n_queued;
    st->queue_max = e->p.queue_max;
    pthread_mutex_unlock(&e->lock);
}

/* ---- admission (lock held) ---- */

static int common_prefix(const colloq_token *a, int na, const colloq_token *b, int nb) {
    int n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i]) i++;
    return i;
}

/* The free slot to use for r: longest cached prefix, then least recently used. */
static int pick_slot(colloq_engine *e, const ereq *r, int *prefix) {
    int best = -1, best_len = -1;
    for (int i = 0; i < e->p.n_parallel; i++) {
        slot *s = &e->slots[i];
        if (s->r) continue;
        int len = common_prefix(s->toks, s->n_cache, r->prompt, r->n_prompt);
        if (len > best_len || (len == best_len && s->last_used < e->slots[best].last_used)) {
            best = i;
            best_len = len;
        }
    }
    *prefix = best_len;
    return best;
}

static void admit(colloq_engine *e, ereq **cancelled, int *n_cancelled, int cap) {
    /* cancelled requests still in the queue leave it at once */
    ereq **pp = &e->q_head, *prev = NULL;
    while (*pp) {
        ereq *r = *pp;
        if (r->cancel) {
            *pp = r->next;
            if (e->q_tail == r) e->q_tail = prev;
            e->n_queued--;
            r->next = NULL;
            cancelled[(*n_cancelled)++] = r;
        } else {
            prev = r;
            pp = &r->next;
        }
        if (*n_cancelled == cap) break;
    }
    while (e->q_head) {
        int prefix, i = pick_slot(e, e->q_head, &prefix);
        if (i < 0) break;
        ereq *r = e->q_head;
        e->q_head = r->next;
        if (!e->q_head) e->q_tail = NULL;
        e->n_queued--;
        r->next = NULL;
        slot *s = &e->slots[i];
        int keep = prefix < r->n_prompt ? prefix : r->n_prompt - 1;   /* the last prompt token gives logits */
        colloq_seq_truncate(s->seq, keep);
        s->n_cache = keep;
        s->r = r;
        s->last_used = ++e->use_clock;
        r->n_fed = keep;
        r->res.n_cached = keep;
        r->res.t_admit = colloq_now();
        e->st.active++;
        e->st.prompt_tokens += (uint64_t)r->n_prompt;
        e->st.cached_tokens += (uint64_t)keep;
        if (keep > 0) e->st.prefix_hits++;
        for (int k = 0; k < r->n_prompt; k++) colloq_sampler_accept(r->smp, r->prompt[k]);
    }
}

/* ---- sampling ---- */

/* log-softmax of the chosen token and the best n_top alternatives from x (n floats). */
static void fill_logprobs(const float *x, int n, colloq_token chosen, int n_top, colloq_engine_token *t) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (x[i] > mx) mx = x[i];
    double z = 0;
    for (int i = 0; i < n; i++) z += exp((double)x[i] - mx);
    double lse = mx + log(z);
    t->has_logprob = true;
    t->logprob = (float)((double)x[chosen] - lse);
    t->n_top = 0;
    for (int i = 0; i < n; i++) {             /* insertion into a short sorted list */
        if (!(x[i] > -INFINITY)) continue;
        int k = t->n_top;
        if (k == n_top && !(x[i] > x[t->top[k - 1].id])) continue;
        if (k == n_top) k--;
        while (k > 0 && x[i] > x[t->top[k - 1].id]) { t->top[k] = t->top[k - 1]; k--; }
        t->top[k].id = i;
        if (t->n_top < n_top) t->n_top++;
    }
    for (int k = 0; k < t->n_top; k++) t->top[k].logprob = (float)((double)x[t->top[k].id] - lse);
}

/* Drop slot s's request with an error (no lock held). */
static void slot_fail(colloq_engine *e, slot *s, const char *msg) {
    ereq *r = s->r;
    pthread_mutex_lock(&e->lock);
    s->r = NULL;
    e->st.active--;
    pthread_mutex_unlock(&e->lock);
    req_finish(e, r, COLLOQ_FINISH_ERROR, msg);
}

/* Before sampling (scheduler thread): logit_bias, the request's hook, the copy for
 * logprobs.  Returns false when the hook failed (the request is finished). */
static bool prepare_slot(colloq_engine *e, slot *s) {
    ereq *r = s->r;
    float *lg = s->logits;
    for (int b = 0; b < r->n_bias; b++)
        lg[r->bias[b].id] = r->bias[b].bias <= -100.0f ? -INFINITY : lg[r->bias[b].id] + r->bias[b].bias;
    if (r->cb.logits_hook && r->cb.logits_hook(r->cb.ud, lg, e->n_vocab) < 0) {
        slot_fail(e, s, "the logits hook failed");
        return false;
    }
    if (r->logprobs >= 0) memcpy(s->orig, lg, (size_t)e->n_vocab * sizeof *lg);
    return true;
}

/* Sampling proper, on any pool thread: touches only one slot's request, sampler and
 * buffers, so the slots of one step are sampled in parallel with the same results. */
static void draw_slot(void *ctx, int k) {
    colloq_engine *e = ctx;
    slot *s = &e->slots[e->to_sample[k]];
    ereq *r = s->r;
    colloq_token t = colloq_sampler_sample(r->smp, s->logits);
    s->ev = (colloq_engine_token){ .token = t, .index = r->n_gen };
    s->eog = !r->ignore_eos && colloq_token_is_eog(e->m, t);
    if (r->logprobs >= 0 && !s->eog) fill_logprobs(s->orig, e->n_vocab, t, r->logprobs, &s->ev);
}

/* After sampling (scheduler thread): account, deliver through the callbacks, finish
 * the request when it is done; returns true while it goes on. */
static bool deliver_slot(colloq_engine *e, slot *s) {
    ereq *r = s->r;
    colloq_token t = s->ev.token;
    colloq_sampler_accept(r->smp, t);
    if (r->n_gen == 0) r->res.t_first = colloq_now();
    r->n_gen++;
    pthread_mutex_lock(&e->lock);
    e->st.gen_tokens++;
    pthread_mutex_unlock(&e->lock);
    colloq_finish f = COLLOQ_FINISH_STOP;
    bool done = false;
    if (s->eog) {
        done = true;
    } else {
        if (r->cb.on_token && r->cb.on_token(r->cb.ud, &s->ev) != 0) done = true;
        else if (r->n_gen >= r->max_tokens || colloq_seq_n_past(s->seq) >= e->n_ctx) {
            done = true;
            f = COLLOQ_FINISH_LENGTH;
        }
    }
    if (done) {
        pthread_mutex_lock(&e->lock);
        s->r = NULL;
        e->st.active--;
        pthread_mutex_unlock(&e->lock);
        req_finish(e, r, f, NULL);
        e->refill = true;
        return false;
    }
    r->last = t;
    r->decoding = true;
    return true;
}

/* Sample every slot whose logits this step produced: hooks in slot order, the draws
 * spread over the model's threads, then the callbacks in slot order. */
static void sample_slots(colloq_engine *e, int n) {
    int m = 0;
    for (int k = 0; k < n; k++)
        if (prepare_slot(e, &e->slots[e->to_sample[k]])) e->to_sample[m++] = e->to_sample[k];
    colloq_batch_parallel(e->batch, draw_slot, e, m);
    for (int k = 0; k < m; k++) deliver_slot(e, &e->slots[e->to_sample[k]]);
}

/* ---- the step ---- */

/* Plan the batch: every decoding slot's pending token, then prompt chunks in
 * round-robin order within the remaining budget (at most prompt_chunk tokens when
 * some slot decodes).  Returns the number of items. */
static int plan(colloq_engine *e) {
    int n = 0, budget = e->p.step_tokens, np = e->p.n_parallel;
    for (int i = 0; i < np; i++) {
        slot *s = &e->slots[i];
        if (!s->r || !s->r->decoding) continue;
        e->items[n] = (colloq_batch_item){ .seq = s->seq, .toks = &s->r->last, .n = 1, .logits = s->logits };
        e->item_slot[n] = i;
        e->fed[n] = &s->r->last;
        n++;
        budget--;
    }
    if (n > 0 && budget > e->p.prompt_chunk) budget = e->p.prompt_chunk;
    for (int k = 0; k < np && budget > 0; k++) {
        int i = (e->rr + k) % np;
        slot *s = &e->slots[i];
        if (!s->r || s->r->decoding) continue;
        ereq *r = s->r;
        int left = r->n_prompt - r->n_fed, take = left < budget ? left : budget;
        e->items[n] = (colloq_batch_item){ .seq = s->seq, .toks = r->prompt + r->n_fed, .n = take,
                                           .logits = take == left ? s->logits : NULL };
        e->item_slot[n] = i;
        e->fed[n] = r->prompt + r->n_fed;
        n++;
        budget -= take;
    }
    e->rr = (e->rr + 1) % np;
    return n;
}

static void step(colloq_engine *e) {
    int n = plan(e);
    if (n == 0) return;
    double t0 = colloq_now();
    colloq_err err = { { 0 } };
    int rc = colloq_batch_eval(e->batch, e->items, n, &err), n_sample = 0;
    for (int k = 0; k < n; k++) {
        slot *s = &e->slots[e->item_slot[k]];
        ereq *r = s->r;
        if (rc != COLLOQ_OK) {
            colloq_seq_truncate(s->seq, 0);
            s->n_cache = 0;
            slot_fail(e, s, err.msg);
            continue;
        }
        memcpy(s->toks + s->n_cache, e->fed[k], (size_t)e->items[k].n * sizeof(colloq_token));
        s->n_cache += e->items[k].n;
        if (!r->decoding) r->n_fed += e->items[k].n;
        if (e->items[k].logits) e->to_sample[n_sample++] = e->item_slot[k];
    }
    sample_slots(e, n_sample);
    e->last_step = colloq_now() - t0;
    pthread_mutex_lock(&e->lock);
    e->st.steps++;
    e->st.busy_seconds += e->last_step;
    pthread_mutex_unlock(&e->lock);
}

static void update_kv(colloq_engine *e) {
    uint64_t used = 0;
    for (int i = 0; i < e->p.n_parallel; i++) used += (uint64_t)e->slots[i].n_cache;
    e->st.kv_used = used;
}

/* Lock held: give a client that just got its answer a moment to send the next
 * request (see REFILL_WAIT_MAX); returns at once on a submission or cancellation. */
static void refill_wait(colloq_engine *e) {
    bool wait = e->refill && !e->q_head && !e->stop && e->st.active > 0 && e->st.active < e->p.n_parallel;
    e->refill = false;
    if (!wait) return;
    double d = e->last_step / 16 < REFILL_WAIT_MAX ? e->last_step / 16 : REFILL_WAIT_MAX;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long ns = ts.tv_nsec + (long)(d * 1e9);
    ts.tv_sec += ns / 1000000000L;
    ts.tv_nsec = ns % 1000000000L;
    pthread_cond_timedwait(&e->wake, &e->lock, &ts);
}

static void *scheduler(void *arg) {
    colloq_engine *e = arg;
    ereq *gone[MAX_SLOTS * 2];
    for (;;) {
        int n_gone = 0;
        pthread_mutex_lock(&e->lock);
        refill_wait(e);
        for (int i = 0; i < e->p.n_parallel; i++) {     /* cancellations free slots now */
            slot *s = &e->slots[i];
            if (s->r && s->r->cancel) {
                gone[n_gone++] = s->r;
                s->r = NULL;
                e->st.active--;
            }
        }
        admit(e, gone, &n_gone, (int)(sizeof gone / sizeof gone[0]));
        update_kv(e);
        bool idle = e->st.active == 0 && n_gone == 0;
        if (idle && e->stop && !e->q_head) { pthread_mutex_unlock(&e->lock); break; }
        if (idle) pthread_cond_wait(&e->wake, &e->lock);
        pthread_mutex_unlock(&e->lock);
        for (int i = 0; i < n_gone; i++) req_finish(e, gone[i], COLLOQ_FINISH_CANCELLED, NULL);
        if (!idle) step(e);
    }
    return NULL;
}

/* ---- lifetime ---- */

int colloq_engine_new(colloq_model *m, const colloq_engine_params *pp, colloq_engine **out, colloq_err *err) {
    if (!m || !out) return colloq_seterr(err, COLLOQ_ERR_ARG, "engine: model and out are required");
    *out = NULL;
    colloq_engine_params p = pp ? *pp : colloq_engine_default_params();
    if (p.n_parallel < 1 || p.n_parallel > MAX_SLOTS)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "parallel slots %d out of range (1..%d)", p.n_parallel, MAX_SLOTS);
    if (p.queue_max < 0) p.queue_max = 0;
    if (p.step_tokens <= 0) p.step_tokens = 256;
    if (p.step_tokens > 256) p.step_tokens = 256;
    if (p.step_tokens < p.n_parallel + 16) p.step_tokens = p.n_parallel + 16;
    if (p.prompt_chunk <= 0) p.prompt_chunk = DEFAULT_PROMPT_CHUNK;
    colloq_engine *e = colloq_calloc(1, sizeof *e);
    if (!e) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "engine: out of memory");
    e->m = m;
    e->n_vocab = colloq_model_n_vocab(m);
    pthread_mutex_init(&e->lock, NULL);
    pthread_condattr_t ca;              /* timed waits on the monotonic clock */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->wake, &ca);
    pthread_condattr_destroy(&ca);
    colloq_seq_params sp = colloq_seq_default_params();
    sp.n_ctx = p.n_ctx;
    sp.cache_type = p.cache_type;
    int rc = COLLOQ_OK;
    for (int i = 0; i < p.n_parallel && rc == COLLOQ_OK; i++) {
        slot *s = &e->slots[i];
        rc = colloq_seq_init(m, &sp, &s->seq, err);
        if (rc != COLLOQ_OK) break;
        e->n_ctx = colloq_seq_n_ctx(s->seq);
        s->toks = colloq_malloc((size_t)e->n_ctx * sizeof *s->toks);
        s->logits = colloq_malloc((size_t)e->n_vocab * sizeof *s->logits);
        s->orig = colloq_malloc((size_t)e->n_vocab * sizeof *s->orig);
        if (!s->toks || !s->logits || !s->orig)
            rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "engine: out of memory for slot %d", i);
    }
    e->p = p;
    if (rc == COLLOQ_OK) rc = colloq_batch_init(m, p.n_parallel, p.step_tokens, &e->batch, err);
    if (rc == COLLOQ_OK) {
        e->p.step_tokens = colloq_batch_rows(e->batch);
        e->st.kv_total = (uint64_t)e->n_ctx * (uint64_t)p.n_parallel;
        if (pthread_create(&e->thread, NULL, scheduler, e) != 0)
            rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "engine: cannot start the scheduler thread");
        else
            e->thread_started = true;
    }
    if (rc != COLLOQ_OK) {
        colloq_engine_free(e);
        return rc;
    }
    *out = e;
    return COLLOQ_OK;
}

void colloq_engine_free(colloq_engine *e) {
    if (!e) return;
    if (e->thread_started) {
        pthread_mutex_lock(&e->lock);
        e->stop = true;
        e->closed = true;
        pthread_mutex_unlock(&e->lock);
        colloq_engine_cancel_all(e);
        pthread_join(e->thread, NULL);
    }
    for (int i = 0; i < MAX_SLOTS; i++) {
        slot *s = &e->slots[i];
        colloq_seq_free(s->seq);
        colloq_free(s->toks);
        colloq_free(s->logits);
        colloq_free(s->orig);
    }
    colloq_batch_free(e->batch);
    pthread_cond_destroy(&e->wake);
    pthread_mutex_destroy(&e->lock);
    colloq_free(e);
}
