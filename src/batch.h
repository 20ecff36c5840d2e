/*
 * batch.h - evaluate tokens of several sequences in one forward pass: every weight
 * matrix is read once per pass for the rows of all sequences, attention runs per
 * sequence over its own KV cache.  Per-row results are bit-identical to evaluating
 * each sequence alone with colloq_seq_eval.  No scheduling, no sampling, no I/O.
 */
#ifndef COLLOQ_BATCH_H
#define COLLOQ_BATCH_H

#include <stdbool.h>
#include "colloq.h"

typedef struct colloq_batch colloq_batch;

typedef struct {
    colloq_seq         *seq;      /* distinct sequences of the batch's model */
    const colloq_token *toks;     /* n ids evaluated at seq's next positions */
    int                 n;        /* 0 allowed (item skipped) */
    float              *logits;   /* NULL, or n_vocab floats: logits after the last token */
} colloq_batch_item;

/* Workspace for passes of up to max_tokens rows (capped at 256; longer work is split
 * into several passes) and up to max_seqs items per call.  Allocated once. */
int  colloq_batch_init(colloq_model *m, int max_seqs, int max_tokens, colloq_batch **out, colloq_err *err);
void colloq_batch_free(colloq_batch *b);
/* Rows one pass holds (what max_tokens was capped to). */
int  colloq_batch_rows(const colloq_batch *b);
/* Evaluate every item.  Checks everything first (no sequence is touched when an item is
 * invalid: context overflow -> COLLOQ_ERR_CONTEXT, bad ids / duplicates -> COLLOQ_ERR_ARG).
 * Thread safety: one call at a time per batch; shares the model's evaluation lock. */
int  colloq_batch_eval(colloq_batch *b, const colloq_batch_item *items, int n_items, colloq_err *err);
/* Run fn(ctx, i) once for each i in 0..n-1, spread over the model's threads (the
 * caller is one of them), each i on one thread; returns when all are done.  For
 * per-sequence work between passes (e.g. sampling); fn must not evaluate.  Same
 * thread-safety rule as colloq_batch_eval. */
void colloq_batch_parallel(colloq_batch *b, void (*fn)(void *ctx, int i), void *ctx, int n);
/* Bytes the workspace allocated. */
size_t colloq_batch_memory(const colloq_batch *b);

#endif
