/*
 * conversation.h - a multi-turn chat bound to one sequence: the messages (OpenAI-style
 * JSON) and a KV cache that holds the rendered conversation, so that each new turn
 * evaluates only the tokens the cache does not already hold; what to do when the
 * context is full; per-turn statistics.  Uses chat.h (rendering) and textstream.h
 * (streaming); no I/O of its own: text goes to the caller's callback.  A conversation,
 * like its sequence, belongs to one thread at a time.
 */
#ifndef COLLOQ_CONVERSATION_H
#define COLLOQ_CONVERSATION_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "chat.h"
#include "colloq.h"

struct json_t;
typedef struct colloq_conv colloq_conv;

/* When the prompt plus room for the answer does not fit the context:
 * DROP_OLDEST  take the oldest whole turns (a user message and its answers) out of the
 *              prompt until it fits; the system prompt is kept; the cached prefix is
 *              reused and the rest re-evaluated.
 * SHIFT        the same, but drops turns until the prompt fills at most half the
 *              context, so the (costly) re-evaluation happens rarely.  Cached keys are
 *              stored already rotated by their positions, so moving them in place is
 *              not possible with this cache: the tokens after the kept prefix are
 *              re-evaluated, as with DROP_OLDEST.
 * ERROR        refuse the turn with COLLOQ_ERR_CONTEXT (the message is not added). */
typedef enum {
    COLLOQ_OVERFLOW_DROP_OLDEST = 0,
    COLLOQ_OVERFLOW_SHIFT       = 1,
    COLLOQ_OVERFLOW_ERROR       = 2,
} colloq_overflow;

/* "drop-oldest", "shift", "error" -> 0, or -1 when unknown. */
int colloq_overflow_from_name(const char *name, colloq_overflow *out);
const char *colloq_overflow_name(colloq_overflow o);

typedef struct {
    colloq_overflow overflow;
    int  n_predict;                 /* most tokens per answer; -1 = until the turn ends or the context is full */
    int  batch;                     /* prompt tokens per evaluation call; 0 = 256 */
    const char *const *stops;       /* user stop strings, added to the format's (copied) */
    int  n_stops;
} colloq_conv_params;

colloq_conv_params colloq_conv_default_params(void);

typedef struct {
    int    n_prompt;        /* tokens of the prompt in the cache after this turn's evaluation */
    int    n_reused;        /* of those, already in the cache from earlier turns */
    int    n_evaluated;     /* evaluated by this turn (n_prompt - n_reused) */
    int    n_generated;     /* answer tokens sampled */
    int    n_cache;         /* tokens in the cache when the turn ended */
    double prompt_ms, gen_ms;
    int    n_dropped;       /* messages the overflow policy took out of the prompt this turn */
    const char *stop;       /* "eog", "stop" (a stop string), "length", "context", "cancelled" */
    char   notice[400];     /* for the user: what the overflow policy did, or why the answer was cut; "" */
} colloq_conv_stats;

/* Receives answer text as it becomes safe to show (whole UTF-8 characters, no partial
 * stop string).  Return non-zero to stop the answer (as a cancel). */
typedef int (*colloq_conv_emit_fn)(void *ud, const char *text, size_t len);

/* m, seq and fmt are borrowed and must outlive the conversation; the conversation owns
 * the sequence's KV cache from now on (it is cleared). */
int  colloq_conv_new(colloq_model *m, colloq_seq *seq, const colloq_chat_fmt *fmt,
                     const colloq_conv_params *p, colloq_conv **out, colloq_err *err);
void colloq_conv_free(colloq_conv *c);

/* The system prompt: replaces, adds (as the first message) or, for NULL / "", removes it. */
int         colloq_conv_set_system(colloq_conv *c, const char *text, colloq_err *err);
const char *colloq_conv_system(const colloq_conv *c);      /* NULL when none */
/* Forget every message but the system prompt (the cache is kept: its prefix is reused). */
void colloq_conv_reset(colloq_conv *c);

/* Add the user's message, evaluate what the cache lacks, and generate the answer with smp,
 * streaming it to emit.  *cancel (may be NULL) is polled between tokens: when it becomes
 * non-zero the answer stops (stats->stop = "cancelled"); what was generated is kept as the
 * assistant message (a turn cancelled before its first token is not added at all).
 * Errors: COLLOQ_ERR_CONTEXT (the policy is ERROR, or the message alone does not fit; the
 * message is not added), COLLOQ_ERR_ARG (the template rejected the conversation), others
 * from evaluation.  stats may be NULL. */
int colloq_conv_turn(colloq_conv *c, const char *user_text, colloq_sampler *smp, colloq_conv_emit_fn emit,
                     void *ud, const volatile sig_atomic_t *cancel, colloq_conv_stats *stats, colloq_err *err);

/* All messages (also those the overflow policy took out of the prompt).  Borrowed. */
const struct json_t *colloq_conv_messages(const colloq_conv *c);
/* Messages the overflow policy has taken out of the prompt (after the system prompt). */
int colloq_conv_n_hidden(const colloq_conv *c);
/* Replace the messages: an array of {"role","content"} objects, or an object with such a
 * "messages" array (what /save writes).  Checked by rendering; nothing changes on error. */
int colloq_conv_load(colloq_conv *c, const struct json_t *messages, colloq_err *err);
/* The prompt the next turn would start from (the visible messages), rendered. */
int colloq_conv_render(const colloq_conv *c, bool add_generation_prompt, char **out, size_t *len,
                       colloq_err *err);
int colloq_conv_n_cache(const colloq_conv *c);
/* The tokens in the cache (the sequence's positions 0..*n-1).  Borrowed; valid until the next turn. */
const colloq_token *colloq_conv_cache_tokens(const colloq_conv *c, int *n);

#endif
