/*
 * test_engine.c - the batched forward pass and the continuous-batching scheduler on a
 * tiny random-weight model: per-row logits of colloq_batch_eval are bit-identical to
 * colloq_seq_eval alone; seeded requests give the same tokens alone and concurrently;
 * the prefix cache reuses tokens without changing the output; cancellation frees a
 * slot within one step; a long prompt is fed in chunks while another request decodes;
 * the queue bound and prompt-length checks answer as documented.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "engine.h"
#include "mkmodel.h"
#include "quant.h"
#include "util.h"

static int failures;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static colloq_model *make_model(const char *dir, const char *name, uint32_t type) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    colloq_mkmodel_params p;
    colloq_err err = { { 0 } };
    if (colloq_mkmodel_shape("tiny", &p, &err) != 0) { fprintf(stderr, "%s\n", err.msg); exit(1); }
    p.type = type;
    p.n_threads = 2;
    p.seed = 7;
    if (colloq_mkmodel_write(&p, path, &err) != 0) { fprintf(stderr, "mkmodel: %s\n", err.msg); exit(1); }
    colloq_model_params mp = colloq_model_default_params();
    mp.n_threads = 2;
    colloq_model *m = NULL;
    if (colloq_model_load(path, &mp, &m, &err) != 0) { fprintf(stderr, "load: %s\n", err.msg); exit(1); }
    return m;
}

/* ---- batch vs single ---- */

#define NSEQ 4
static void test_batch(colloq_model *m, const char *what) {
    colloq_err err = { { 0 } };
    int nv = colloq_model_n_vocab(m);
    colloq_seq_params sp = colloq_seq_default_params();
    sp.n_ctx = 128;
    colloq_seq *alone[NSEQ], *bat[NSEQ];
    int plen[NSEQ] = { 5, 37, 1, 70 };
    colloq_token toks[NSEQ][80];
    for (int s = 0; s < NSEQ; s++)
        for (int i = 0; i < 80; i++) toks[s][i] = (colloq_token)((s * 131 + i * 17 + 3) % nv);
    float *ref = malloc((size_t)NSEQ * 8 * nv * sizeof(float)), *got = malloc((size_t)NSEQ * nv * sizeof(float));
    for (int s = 0; s < NSEQ; s++) {
        colloq_seq_init(m, &sp, &alone[s], &err);
        colloq_seq_init(m, &sp, &bat[s], &err);
        /* alone: the prompt, then 7 single tokens */
        CHECK(colloq_seq_eval(alone[s], toks[s], plen[s], ref + (size_t)(s * 8) * nv, false, &err) == 0, "%s", err.msg);
        for (int k = 1; k < 8; k++)
            colloq_seq_eval(alone[s], &toks[s][plen[s] + k - 1], 1, ref + (size_t)(s * 8 + k) * nv, false, &err);
    }
    colloq_batch *b = NULL;
    CHECK(colloq_batch_init(m, NSEQ, 32, &b, &err) == 0, "batch_init: %s", err.msg);
    /* step 0: every prompt at once (70 + 37 + ... > 32 rows: several passes) */
    colloq_batch_item it[NSEQ];
    for (int s = 0; s < NSEQ; s++) it[s] = (colloq_batch_item){ bat[s], toks[s], plen[s], got + (size_t)s * nv };
    CHECK(colloq_batch_eval(b, it, NSEQ, &err) == 0, "batch_eval: %s", err.msg);
    for (int s = 0; s < NSEQ; s++)
        CHECK(!memcmp(got + (size_t)s * nv, ref + (size_t)(s * 8) * nv, (size_t)nv * sizeof(float)),
              "%s: prompt logits of seq %d differ between batch and alone", what, s);
    for (int k = 1; k < 8; k++) {
        int n = 0;
        for (int s = 0; s < NSEQ; s++) {
            if ((s + k) % 3 == 0) continue;     /* vary which sequences take part */
            it[n++] = (colloq_batch_item){ bat[s], &toks[s][colloq_seq_n_past(bat[s])], 1, got + (size_t)s * nv };
        }
        CHECK(colloq_batch_eval(b, it, n, &err) == 0, "%s", err.msg);
        for (int i = 0; i < n; i++) {
            int s = (int)(it[i].logits - got) / nv, idx = colloq_seq_n_past(bat[s]) - plen[s];
            if (idx >= 1 && idx < 8)
                CHECK(!memcmp(got + (size_t)s * nv, ref + (size_t)(s * 8 + idx) * nv, (size_t)nv * sizeof(float)),
                      "%s: step %d of seq %d differs between batch and alone", what, idx, s);
        }
    }
    /* validation: nothing evaluated when one item is bad */
    int before = colloq_seq_n_past(bat[0]);
    colloq_token bad = (colloq_token)nv;
    it[0] = (colloq_batch_item){ bat[0], toks[0], 1, NULL };
    it[1] = (colloq_batch_item){ bat[1], &bad, 1, NULL };
    CHECK(colloq_batch_eval(b, it, 2, &err) == COLLOQ_ERR_ARG, "bad id accepted");
    CHECK(colloq_seq_n_past(bat[0]) == before, "a rejected batch evaluated tokens");
    it[1] = (colloq_batch_item){ bat[0], toks[0], 1, NULL };
    CHECK(colloq_batch_eval(b, it, 2, &err) == COLLOQ_ERR_ARG, "duplicate sequence accepted");
    colloq_token many[200] = { 0 };
    it[0] = (colloq_batch_item){ bat[0], many, 200, NULL };
    CHECK(colloq_batch_eval(b, it, 1, &err) == COLLOQ_ERR_CONTEXT, "context overflow accepted");
    colloq_batch_free(b);
    for (int s = 0; s < NSEQ; s++) { colloq_seq_free(alone[s]); colloq_seq_free(bat[s]); }
    free(ref);
    free(got);
}

/* ---- engine ---- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    colloq_token toks[256];
    float lp[256];
    int n, stop_after;
    bool done, hold;               /* hold: on_token blocks (so does the scheduler) until cleared */
    colloq_engine_result res;
} sink;

static int on_token(void *ud, const colloq_engine_token *t) {
    sink *k = ud;
    pthread_mutex_lock(&k->mu);
    if (k->n < 256) { k->toks[k->n] = t->token; k->lp[k->n] = t->has_logprob ? t->logprob : 1.0f; k->n++; }
    int stop = k->stop_after > 0 && k->n >= k->stop_after;
    pthread_cond_broadcast(&k->cv);
    while (k->hold) pthread_cond_wait(&k->cv, &k->mu);
    pthread_mutex_unlock(&k->mu);
    return stop;
}

static void on_done(void *ud, const colloq_engine_result *r) {
    sink *k = ud;
    pthread_mutex_lock(&k->mu);
    k->res = *r;
    k->done = true;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

static void sink_init(sink *k) {
    memset(k, 0, sizeof *k);
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
}

static void sink_wait(sink *k) {
    pthread_mutex_lock(&k->mu);
    while (!k->done) pthread_cond_wait(&k->cv, &k->mu);
    pthread_mutex_unlock(&k->mu);
}

static colloq_engine_request mkreq(const colloq_token *p, int n, int max_tokens, uint64_t seed, sink *k) {
    colloq_engine_request r = { .prompt = p, .n_prompt = n, .max_tokens = max_tokens, .logprobs = -1 };
    r.sampling = colloq_sampler_default_params();
    r.sampling.seed = seed;
    r.sampling.temperature = 1.0f;
    r.sampling.top_k = 0;
    r.sampling.top_p = 1.0f;
    r.sampling.min_p = 0.0f;
    r.ignore_eos = true;
    r.cb = (colloq_engine_callbacks){ .on_token = on_token, .on_done = on_done, .ud = k };
    return r;
}

static void test_engine(colloq_model *m) {
    colloq_err err = { { 0 } };
    int nv = colloq_model_n_vocab(m);
    colloq_engine_params ep = colloq_engine_default_params();
    ep.n_parallel = 4;
    ep.n_ctx = 160;
    ep.queue_max = 6;
    ep.step_tokens = 24;
    ep.prompt_chunk = 7;             /* while others decode: prompts in chunks of 7 */
    colloq_engine *e = NULL;
    CHECK(colloq_engine_new(m, &ep, &e, &err) == 0, "engine_new: %s", err.msg);
    if (!e) return;
    colloq_token prompts[6][100];
    int plen[6] = { 3, 40, 9, 70, 1, 25 };
    for (int s = 0; s < 6; s++)
        for (int i = 0; i < 100; i++) prompts[s][i] = (colloq_token)((s * 37 + i * 11 + 1) % nv);

    /* alone, one after another */
    static sink alone[6], conc[6];
    uint64_t id;
    for (int s = 0; s < 6; s++) {
        sink_init(&alone[s]);
        colloq_engine_request r = mkreq(prompts[s], plen[s], 20, 100 + s, &alone[s]);
        CHECK(colloq_engine_submit(e, &r, &id, &err) == 0, "submit: %s", err.msg);
        sink_wait(&alone[s]);
        CHECK(alone[s].res.finish == COLLOQ_FINISH_LENGTH && alone[s].n == 20, "alone %d: finish %d, %d tokens",
              s, alone[s].res.finish, alone[s].n);
    }
    /* concurrently: 6 requests on 4 slots with a queue of 3 */
    uint64_t ids[6];
    for (int s = 0; s < 6; s++) {
        sink_init(&conc[s]);
        colloq_engine_request r = mkreq(prompts[s], plen[s], 20, 100 + s, &conc[s]);
        if (colloq_engine_submit(e, &r, &ids[s], &err) != 0) {
            CHECK(0, "submit %d: %s", s, err.msg);
            conc[s].done = true;
        }
    }
    for (int s = 0; s < 6; s++) {
        sink_wait(&conc[s]);
        CHECK(conc[s].n == alone[s].n && !memcmp(conc[s].toks, alone[s].toks, sizeof(colloq_token) * (size_t)conc[s].n),
              "request %d: tokens differ when run concurrently", s);
    }
    /* prefix cache: the same prompt again reuses all but the last token, same output */
    sink again;
    sink_init(&again);
    colloq_engine_request r = mkreq(prompts[3], plen[3], 20, 103, &again);
    colloq_engine_submit(e, &r, &id, &err);
    sink_wait(&again);
    CHECK(again.res.n_cached == plen[3] - 1, "prefix cache: %d cached (want %d)", again.res.n_cached, plen[3] - 1);
    CHECK(again.n == alone[3].n && !memcmp(again.toks, alone[3].toks, sizeof(colloq_token) * (size_t)again.n),
          "prefix cache changed the output");
    /* a longer prompt sharing a prefix */
    sink ext;
    sink_init(&ext);
    r = mkreq(prompts[3], 90, 5, 9, &ext);
    colloq_engine_submit(e, &r, &id, &err);
    sink_wait(&ext);
    CHECK(ext.res.n_cached >= plen[3], "extended prompt: %d cached", ext.res.n_cached);

    /* stop from the callback */
    sink st;
    sink_init(&st);
    st.stop_after = 4;
    r = mkreq(prompts[0], plen[0], 50, 1, &st);
    colloq_engine_submit(e, &r, &id, &err);
    sink_wait(&st);
    CHECK(st.res.finish == COLLOQ_FINISH_STOP && st.n == 4, "stop: finish %d after %d", st.res.finish, st.n);

    /* logprobs: finite, <= 0 */
    sink lp;
    sink_init(&lp);
    r = mkreq(prompts[1], plen[1], 6, 5, &lp);
    r.logprobs = 3;
    colloq_engine_submit(e, &r, &id, &err);
    sink_wait(&lp);
    for (int i = 0; i < lp.n; i++) CHECK(lp.lp[i] <= 0.0f && lp.lp[i] > -100.0f, "logprob %g", (double)lp.lp[i]);
    /* logit_bias forcing one token under greedy */
    sink fb;
    sink_init(&fb);
    colloq_logit_bias bias = { .id = 42, .bias = 100.0f };
    r = mkreq(prompts[2], plen[2], 5, 5, &fb);
    r.bias = &bias;
    r.n_bias = 1;
    colloq_engine_submit(e, &r, &id, &err);
    sink_wait(&fb);
    for (int i = 0; i < fb.n; i++) CHECK(fb.toks[i] == 42, "logit_bias +100: token %d", fb.toks[i]);

    /* cancellation: long requests, cancel one; the slot frees within one step */
    sink lg[2];
    uint64_t lid[2];
    for (int k = 0; k < 2; k++) {
        sink_init(&lg[k]);
        r = mkreq(prompts[4], plen[4], 150, 50 + k, &lg[k]);
        colloq_engine_submit(e, &r, &lid[k], &err);
    }
    pthread_mutex_lock(&lg[0].mu);
    while (lg[0].n < 3) pthread_cond_wait(&lg[0].cv, &lg[0].mu);
    pthread_mutex_unlock(&lg[0].mu);
    colloq_engine_cancel(e, lid[0]);
    sink_wait(&lg[0]);
    CHECK(lg[0].res.finish == COLLOQ_FINISH_CANCELLED, "cancel: finish %d", lg[0].res.finish);
    colloq_engine_stats stt;
    colloq_engine_get_stats(e, &stt);
    CHECK(stt.cancel_steps_max <= 1, "cancel took %d steps", stt.cancel_steps_max);
    CHECK(stt.requests_cancelled == 1, "cancelled count %llu", (unsigned long long)stt.requests_cancelled);
    colloq_engine_cancel(e, lid[1]);
    sink_wait(&lg[1]);

    /* a long prompt arriving while another request decodes is fed in chunks of
     * prompt_chunk tokens, and the decoding request gets a token every step meanwhile */
    sink dec, longp;
    sink_init(&dec);
    sink_init(&longp);
    colloq_token lprompt[90];
    for (int i = 0; i < 90; i++) lprompt[i] = (colloq_token)((i * 7 + 5) % nv);
    r = mkreq(prompts[2], plen[2], 140, 77, &dec);
    colloq_engine_submit(e, &r, &id, &err);
    pthread_mutex_lock(&dec.mu);
    while (dec.n < 2) pthread_cond_wait(&dec.cv, &dec.mu);
    pthread_mutex_unlock(&dec.mu);
    colloq_engine_stats s0, s1;
    colloq_engine_get_stats(e, &s0);
    r = mkreq(lprompt, 90, 1, 3, &longp);
    colloq_engine_submit(e, &r, &id, &err);
    sink_wait(&longp);
    colloq_engine_get_stats(e, &s1);
    pthread_mutex_lock(&dec.mu);
    int dec_n = dec.n;
    bool dec_done = dec.done;
    pthread_mutex_unlock(&dec.mu);
    int fed = 90 - longp.res.n_cached, min_steps = (fed + ep.prompt_chunk - 1) / ep.prompt_chunk;
    CHECK(longp.res.finish == COLLOQ_FINISH_LENGTH && longp.n == 1, "long prompt: finish %d, %d tokens",
          longp.res.finish, longp.n);
    CHECK((int)(s1.steps - s0.steps) >= min_steps, "long prompt of %d new tokens took %d steps (chunks of %d)",
          fed, (int)(s1.steps - s0.steps), ep.prompt_chunk);
    CHECK(!dec_done && dec_n >= 2 + min_steps - 1,
          "decoding request got %d tokens while a %d-token prompt was fed", dec_n, fed);
    pthread_mutex_lock(&dec.mu);
    dec.stop_after = dec.n + 1;      /* ends it at its next token */
    pthread_mutex_unlock(&dec.mu);
    sink_wait(&dec);

    /* admission checks */
    colloq_token big[200] = { 0 };
    sink x;
    sink_init(&x);
    r = mkreq(big, 161, 5, 1, &x);
    CHECK(colloq_engine_submit(e, &r, &id, &err) == COLLOQ_ERR_CONTEXT && strstr(err.msg, "161") && strstr(err.msg, "160"),
          "long prompt: %s", err.msg);
    big[0] = (colloq_token)nv;
    r = mkreq(big, 2, 5, 1, &x);
    CHECK(colloq_engine_submit(e, &r, &id, &err) == COLLOQ_ERR_ARG, "bad id accepted");
    /* fill slots and queue: 4 running + 6 queued, the 11th is refused.  The first
     * request's first token holds the scheduler, so no slot frees meanwhile however
     * fast the steps are. */
    static sink fill[12];
    int accepted = 0, full = 0;
    uint64_t fid[12];
    for (int k = 0; k < 12; k++) {
        sink_init(&fill[k]);
        fill[k].hold = k == 0;
        r = mkreq(prompts[5], plen[5], 150, (uint64_t)k, &fill[k]);
        int rc = colloq_engine_submit(e, &r, &fid[k], &err);
        if (rc == 0) accepted++;
        else if (rc == COLLOQ_ENGINE_QUEUE_FULL) { full++; fill[k].done = true; }
        if (k == 3) usleep(200000);    /* let the scheduler move the first four into slots */
    }
    CHECK(full >= 1 && accepted >= 4, "queue bound: %d accepted, %d refused", accepted, full);
    pthread_mutex_lock(&fill[0].mu);
    CHECK(fill[0].n == 1, "the held request has %d tokens", fill[0].n);
    fill[0].hold = false;
    pthread_cond_broadcast(&fill[0].cv);
    pthread_mutex_unlock(&fill[0].mu);
    colloq_engine_free(e);           /* cancels what is left: every on_done arrives */
    for (int k = 0; k < 12; k++) CHECK(fill[k].done, "request %d never finished", k);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : ".";
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    if (system(cmd) != 0) return 1;
    colloq_model *m = make_model(dir, "engine_f16.gguf", CT_F16);
    test_batch(m, "f16");
    test_engine(m);
    colloq_model_free(m);
    m = make_model(dir, "engine_q4.gguf", CT_Q4_0);
    test_batch(m, "q4_0");
    colloq_model_free(m);
    if (failures) { fprintf(stderr, "%d failures\n", failures); return 1; }
    printf("engine tests passed\n");
    return 0;
}
