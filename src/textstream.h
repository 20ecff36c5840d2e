/*
 * textstream.h - turns generated tokens into text that is safe to show as it streams:
 * never splits a UTF-8 character, never shows a partial stop string, and reports when
 * a stop string completed (the stop string itself is never emitted).  Used by
 * `colloq chat`, `colloq run` and the server.  Knows the vocabulary, not the model.
 */
#ifndef COLLOQ_TEXTSTREAM_H
#define COLLOQ_TEXTSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include "colloq.h"

typedef struct colloq_textstream colloq_textstream;

/* stops: strings that end generation (copied). render_special: control tokens print their text. */
colloq_textstream *colloq_textstream_new(const colloq_model *m, const char *const *stops,
                                         int n_stops, bool render_special);
void colloq_textstream_free(colloq_textstream *ts);
/* Forget everything (new answer). */
void colloq_textstream_reset(colloq_textstream *ts);
/* Add one generated token.  *out and *len: bytes now safe to emit (valid until the next call;
 * may be empty).  *stopped: a stop string completed (text before it has been emitted with
 * this call; nothing after it will be).  Returns 0 or COLLOQ_ERR_NOMEM. */
int colloq_textstream_push(colloq_textstream *ts, colloq_token t, const char **out, size_t *len,
                           bool *stopped);
/* Add text that did not come from a token (same contract as push; bytes need not be
 * valid UTF-8).  Lets callers and tests stream text without a vocabulary (m may be NULL). */
int colloq_textstream_push_text(colloq_textstream *ts, const char *bytes, size_t n, const char **out,
                                size_t *len, bool *stopped);
/* End of generation: emit what was held back (an incomplete UTF-8 tail becomes U+FFFD). */
int colloq_textstream_flush(colloq_textstream *ts, const char **out, size_t *len);
/* All text emitted so far (NUL-terminated). */
const char *colloq_textstream_text(const colloq_textstream *ts, size_t *len);

#endif
