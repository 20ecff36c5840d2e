/*
 * engine.h - the continuous-batching scheduler: n_parallel slots, each a colloq_seq,
 * a bounded queue, and ONE scheduler thread that each step evaluates every active
 * slot's next token plus bounded chunks of pending prompts in one batched pass, then
 * samples per request with that request's own seeded sampler.  Prefix cache across
 * requests, cancellation within one step, statistics.  No I/O, no HTTP, no text:
 * callers turn tokens into text (textstream) on their side of the callbacks.
 */
#ifndef COLLOQ_ENGINE_H
#define COLLOQ_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include "colloq.h"

typedef struct colloq_engine colloq_engine;

/* colloq_engine_submit's answer when the queue is full (try again later). */
#define COLLOQ_ENGINE_QUEUE_FULL (-20)

typedef struct {
    int n_parallel;              /* slots (sequences evaluated together), 1..64 */
    int n_ctx;                   /* positions per slot; 0 = the model's default */
    int queue_max;               /* requests waiting for a slot; more -> QUEUE_FULL */
    int step_tokens;             /* tokens per step (decode + prompt chunks), 16..256 */
    int prompt_chunk;            /* prompt tokens per step while any slot decodes (<= 0:
                                  * default 64), so a long prompt delays the others' next
                                  * tokens a little per step instead of a lot once */
    colloq_cache_type cache_type;
} colloq_engine_params;

colloq_engine_params colloq_engine_default_params(void);

typedef enum {
    COLLOQ_FINISH_STOP = 0,      /* end-of-generation token, or on_token asked to stop */
    COLLOQ_FINISH_LENGTH,        /* max_tokens or the context reached */
    COLLOQ_FINISH_CANCELLED,     /* colloq_engine_cancel or shutdown */
    COLLOQ_FINISH_ERROR,         /* evaluation or hook failure (message in the result) */
} colloq_finish;

#define COLLOQ_ENGINE_MAX_TOP 20

typedef struct { colloq_token id; float logprob; } colloq_token_prob;

/* One generated token, as delivered to on_token. */
typedef struct {
    colloq_token token;
    int   index;                 /* 0 for the first generated token */
    bool  has_logprob;           /* the request asked for logprobs */
    float logprob;               /* log-probability of token under the model (after logit_bias/hook) */
    int   n_top;
    colloq_token_prob top[COLLOQ_ENGINE_MAX_TOP];   /* most likely alternatives, best first */
} colloq_engine_token;

typedef struct {
    colloq_finish finish;
    int    n_prompt, n_cached, n_gen;     /* n_cached: prompt tokens reused from the prefix cache */
    double t_submit, t_admit, t_first, t_end;   /* colloq_now() times; t_first 0 if no token */
    char   error[256];
} colloq_engine_result;

typedef struct {
    /* Scheduler thread, per generated token (end-of-generation tokens are not delivered).
     * Return 0 to go on, 1 to finish now with COLLOQ_FINISH_STOP (a stop string completed). */
    int  (*on_token)(void *ud, const colloq_engine_token *t);
    /* Scheduler thread (or colloq_engine_free's), exactly once per accepted request, last:
     * afterwards the engine never touches ud again. */
    void (*on_done)(void *ud, const colloq_engine_result *r);
    /* Optional, scheduler thread: adjust the n_vocab logits before sampling (e.g. mask
     * tokens a grammar forbids).  Return 0, or < 0 to fail the request. */
    int  (*logits_hook)(void *ud, float *logits, int n_vocab);
    void *ud;
} colloq_engine_callbacks;

typedef struct { colloq_token id; float bias; } colloq_logit_bias;

typedef struct {
    const colloq_token *prompt;  /* copied */
    int    n_prompt;             /* 1..n_ctx */
    int    max_tokens;           /* <= 0: until the context is full; clamped to what fits */
    colloq_sampler_params sampling;
    const colloq_logit_bias *bias;   /* copied; added to the logits (<= -100 bans the token) */
    int    n_bias;
    int    logprobs;             /* < 0: none; 0..COLLOQ_ENGINE_MAX_TOP: logprob + that many top */
    bool   ignore_eos;
    colloq_engine_callbacks cb;
} colloq_engine_request;

/* Allocates every slot's sequence and starts the scheduler thread. */
int  colloq_engine_new(colloq_model *m, const colloq_engine_params *p, colloq_engine **out, colloq_err *err);
/* Cancels what is queued or running (on_done with CANCELLED), stops the thread, frees. */
void colloq_engine_free(colloq_engine *e);

/* Queue a request; *id identifies it for colloq_engine_cancel.  Errors (no callback is
 * ever made for a rejected request): COLLOQ_ERR_ARG (bad fields), COLLOQ_ERR_CONTEXT
 * (prompt longer than a slot's context; the message has the numbers),
 * COLLOQ_ENGINE_QUEUE_FULL, COLLOQ_ERR_CANCELLED (shutting down), COLLOQ_ERR_NOMEM.
 * Thread-safe. */
int  colloq_engine_submit(colloq_engine *e, const colloq_engine_request *r, uint64_t *id, colloq_err *err);
/* Ask for a request to stop; its slot is freed at the start of the next step.  Unknown
 * or finished ids are ignored.  Thread-safe; may be called from callbacks. */
void colloq_engine_cancel(colloq_engine *e, uint64_t id);
/* Cancel everything queued or running (shutdown). */
void colloq_engine_cancel_all(colloq_engine *e);
/* Refuse new requests from now on (COLLOQ_ERR_CANCELLED). */
void colloq_engine_close(colloq_engine *e);

int  colloq_engine_n_ctx(const colloq_engine *e);
int  colloq_engine_n_parallel(const colloq_engine *e);

typedef struct {
    int      n_slots, active, queued, queue_max;
    uint64_t kv_used, kv_total;          /* positions held in slot caches / capacity */
    uint64_t steps;                      /* batched passes run */
    uint64_t prompt_tokens, cached_tokens, gen_tokens;
    uint64_t requests_done, requests_cancelled, prefix_hits;
    int      cancel_steps_max;           /* most steps any cancelled request kept its slot after the ask */
    double   busy_seconds;               /* time spent in steps */
} colloq_engine_stats;

void colloq_engine_get_stats(colloq_engine *e, colloq_engine_stats *st);

#endif
