/*
 * grammar.h - constrained JSON output: a pushdown automaton over bytes compiled from
 * "any JSON" or a JSON Schema subset (grammar_schema.c), and a token mask over a
 * model's vocabulary (grammar_vocab.c: token bytes and tries built once per model).
 * Knows token bytes, not weights, sampling or HTTP.  The supported schema subset and
 * the generation limits are documented in docs/CONSTRAINED_OUTPUT.md.
 */
#ifndef COLLOQ_GRAMMAR_H
#define COLLOQ_GRAMMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "colloq.h"

struct json_t;                                             /* jansson */
typedef struct colloq_grammar       colloq_grammar;        /* compiled; read-only, shareable */
typedef struct colloq_grammar_vocab colloq_grammar_vocab;  /* per model; read-only, shareable */
typedef struct colloq_grammar_state colloq_grammar_state;  /* per request; one thread at a time */

/* Limits that make generation terminate and keep the automaton small. */
typedef struct {
    int max_depth;        /* nesting of arrays/objects (default 32, at most 250) */
    int ws_max;           /* whitespace bytes allowed in one gap between tokens of JSON
                           * (default 16; 0 = compact output only; -1 = unlimited) */
    int max_string;       /* characters of a string without maxLength (default 512) */
    int max_int_digits;   /* digits before the point (default 16) */
    int max_frac_digits;  /* digits after the point (default 16) */
    int max_exp_digits;   /* digits of an exponent (default 2: no double overflows) */
    int max_items;        /* items/members of an array or object without maxItems (0 = no limit) */
} colloq_grammar_opts;

colloq_grammar_opts colloq_grammar_default_opts(void);

/* ---- compiling (o may be NULL for the defaults) ---- */

/* Any JSON value, or (object_only) any JSON object: what response_format json_object asks for. */
int  colloq_grammar_new_any(const colloq_grammar_opts *o, bool object_only, colloq_grammar **out,
                            colloq_err *err);
/* A JSON Schema.  Errors: COLLOQ_ERR_ARG with a message naming the schema location
 * (e.g. "schema at /properties/age: keyword 'minimum' is not supported") when the schema
 * is malformed, unsatisfiable or uses something outside the subset; COLLOQ_ERR_NOMEM. */
int  colloq_grammar_new_schema(const struct json_t *schema, const colloq_grammar_opts *o,
                               colloq_grammar **out, colloq_err *err);
/* The same from schema text (len bytes). */
int  colloq_grammar_new_schema_text(const char *text, size_t len, const colloq_grammar_opts *o,
                                    colloq_grammar **out, colloq_err *err);
void colloq_grammar_free(colloq_grammar *g);
/* Bytes of the shortest document the grammar admits. */
int  colloq_grammar_min_length(const colloq_grammar *g);

/* ---- vocabulary (built once per model) ---- */

/* piece: bytes of token t as the caller will output them (same contract as
 * colloq_token_to_piece without special rendering: returns bytes needed, < 0 when t is
 * not a token); is_eog: whether t ends generation.  Tokens with empty pieces are never
 * allowed; end-of-generation tokens only where the document is complete. */
typedef int  (*colloq_grammar_piece_fn)(void *ud, colloq_token t, char *buf, int cap);
typedef bool (*colloq_grammar_eog_fn)(void *ud, colloq_token t);
int  colloq_grammar_vocab_new(int n_vocab, colloq_grammar_piece_fn piece, colloq_grammar_eog_fn is_eog,
                              void *ud, colloq_grammar_vocab **out, colloq_err *err);
/* From a loaded model through the public API (colloq_token_to_piece, colloq_token_is_eog). */
int  colloq_grammar_vocab_from_model(const colloq_model *m, colloq_grammar_vocab **out, colloq_err *err);
void colloq_grammar_vocab_free(colloq_grammar_vocab *v);
int  colloq_grammar_vocab_n(const colloq_grammar_vocab *v);
/* uint64_t words in a mask: (n_vocab + 63) / 64. */
int  colloq_grammar_mask_words(const colloq_grammar_vocab *v);

/* Tokens whose piece is at most ws_max whitespace bytes followed by a prefix of
 * lit[0..len) (a non-empty piece that does not go past lit): forcing literal text such
 * as a tool-call tag.  Sets bits in mask (not cleared first); returns how many it set. */
int  colloq_grammar_vocab_literal_mask(const colloq_grammar_vocab *v, const char *lit, size_t len,
                                       int ws_max, uint64_t *mask);
/* Bytes of token t's piece (NULL with *len 0 for an end-of-generation or empty token). */
const char *colloq_grammar_vocab_piece(const colloq_grammar_vocab *v, colloq_token t, size_t *len);
bool colloq_grammar_vocab_is_eog(const colloq_grammar_vocab *v, colloq_token t);
/* Set the bits of the end-of-generation tokens. */
void colloq_grammar_vocab_eog_mask(const colloq_grammar_vocab *v, uint64_t *mask);

/* ---- matching (per request) ---- */

/* g and v are borrowed and must outlive the state. */
int  colloq_grammar_state_new(const colloq_grammar *g, const colloq_grammar_vocab *v,
                              colloq_grammar_state **out, colloq_err *err);
void colloq_grammar_state_free(colloq_grammar_state *s);
void colloq_grammar_state_reset(colloq_grammar_state *s);   /* back to the empty text */

/* Tokens that keep the text a prefix of a valid document: bit t of mask (mask_words
 * words) is set when token t is allowed.  An end-of-generation token is allowed only
 * when the text is complete.  tokens_left < 0: no budget.  tokens_left >= 1: the caller
 * can generate at most that many more tokens (an end-of-generation token included);
 * tokens are then restricted so that the document can still be completed in time
 * (when no token can achieve that any more, the budget is ignored).  Returns the number
 * of allowed tokens; 0 only after an end-of-generation token was accepted. */
int  colloq_grammar_state_mask(colloq_grammar_state *s, int tokens_left, uint64_t *mask);
/* The same applied to logits: disallowed tokens get -INFINITY (n_logits may exceed the
 * vocabulary: the extra rows are disallowed).  Returns the number of allowed tokens. */
int  colloq_grammar_state_mask_logits(colloq_grammar_state *s, int tokens_left, float *logits,
                                      int n_logits);
/* Advance by a sampled token.  COLLOQ_ERR_ARG (state unchanged) when the token is not
 * allowed; an end-of-generation token moves to the finished state. */
int  colloq_grammar_state_accept(colloq_grammar_state *s, colloq_token t, colloq_err *err);
/* Advance by raw bytes (e.g. a prefix the caller forces).  COLLOQ_ERR_ARG (state
 * unchanged) when the bytes do not keep the text a valid prefix. */
int  colloq_grammar_state_accept_bytes(colloq_grammar_state *s, const char *p, size_t n,
                                       colloq_err *err);
/* Would accept_bytes succeed?  (Does not change the state.) */
bool colloq_grammar_state_allows_bytes(colloq_grammar_state *s, const char *p, size_t n);

/* The text so far is a complete document (end of generation allowed here). */
bool colloq_grammar_state_accepting(const colloq_grammar_state *s);
/* Complete and nothing but whitespace may follow: the caller may stop without waiting
 * for an end-of-generation token. */
bool colloq_grammar_state_done(const colloq_grammar_state *s);
/* An end-of-generation token was accepted. */
bool colloq_grammar_state_finished(const colloq_grammar_state *s);
/* Bytes in the shortest completion of the text so far (0 when accepting): the
 * "can it still finish in N tokens" query; each byte needs at most one token. */
int  colloq_grammar_state_min_remaining(const colloq_grammar_state *s);

#endif
