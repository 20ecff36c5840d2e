/*
 * redact.h - safety filters: named detectors (built-in personal-data detectors and
 * PCRE2 patterns) with an action, `redact` (replace the match) or `block` (refuse the
 * whole text), applied to whole texts (request messages) and to streams (generated
 * answers) with identical results.  Knows no HTTP, models or tokens; never keeps or
 * reports the matched text itself, only which detector acted and how often.
 */
#ifndef COLLOQ_REDACT_H
#define COLLOQ_REDACT_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "colloq.h"

typedef struct colloq_redact colloq_redact;               /* compiled rule set, read-only */
typedef struct colloq_redact_stream colloq_redact_stream; /* one answer being filtered */

#define COLLOQ_REDACT_MAX_RULES 64
/* Returned (positive) by the filtering calls when a `block` rule matched. */
#define COLLOQ_REDACT_BLOCKED 1

typedef enum { COLLOQ_REDACT_ACT_REDACT = 0, COLLOQ_REDACT_ACT_BLOCK = 1 } colloq_redact_action;

/* Which texts a rule applies to. */
enum { COLLOQ_REDACT_INPUT = 1, COLLOQ_REDACT_OUTPUT = 2, COLLOQ_REDACT_BOTH = 3 };

/* What one filtering pass did: never the matched text. */
typedef struct {
    int count[COLLOQ_REDACT_MAX_RULES];   /* per rule index: matches acted on */
    int blocked_by;                       /* rule index that blocked, or -1 */
} colloq_redact_record;

void colloq_redact_record_clear(colloq_redact_record *rec);

/*
 * Rule set from JSON text (format in docs/safety.md):
 *   {"detectors": [ {"name": "phone", "type": "phone_cn", "action": "redact",
 *                    "replacement": "[PHONE]", "apply": "both"},
 *                   {"type": "regex", "name": "ticket", "pattern": "TCK-\\d{6}",
 *                    "max_len": 64, "action": "block"} ]}
 * Types: phone_cn, phone_intl, bank_card, cn_id, email, ipv4, regex.  name defaults to
 * the type; replacement defaults to "[REDACTED:<name>]"; apply: input|output|both.
 * src names the text in messages (a path).  On success *out is owned by the caller.
 */
int  colloq_redact_parse(const char *json, size_t len, const char *src, colloq_redact **out,
                         colloq_err *err);
/* The same from a file (--safety-config F). */
int  colloq_redact_load(const char *path, colloq_redact **out, colloq_err *err);
/* Every built-in detector with action redact, applied to both directions. */
int  colloq_redact_builtin(colloq_redact **out, colloq_err *err);
void colloq_redact_free(colloq_redact *r);

int         colloq_redact_n_rules(const colloq_redact *r);
const char *colloq_redact_rule_name(const colloq_redact *r, int i);
colloq_redact_action colloq_redact_rule_action(const colloq_redact *r, int i);
/* Whether rule i applies to dir (COLLOQ_REDACT_INPUT or _OUTPUT). */
bool        colloq_redact_rule_applies(const colloq_redact *r, int i, int dir);
/* Most bytes a stream may hold back (longest possible match plus look-ahead). */
size_t      colloq_redact_max_hold(const colloq_redact *r);

/*
 * One-shot filter for a whole text (e.g. a user message) with the rules that apply to
 * `dir` (COLLOQ_REDACT_INPUT or _OUTPUT).  Returns 0 with *out (NUL-terminated, caller
 * frees with colloq_free) the text with every match replaced; COLLOQ_REDACT_BLOCKED with
 * *out NULL when a block rule matched; negative on error.  rec (may be NULL) is
 * cleared and then counts the actions.  Thread-safe: r is only read.
 */
int colloq_redact_text(const colloq_redact *r, int dir, const char *text, size_t len, char **out,
                       size_t *out_len, colloq_redact_record *rec, colloq_err *err);

/*
 * Streams.  Feed chunks as they are generated; each call hands back the text that can
 * no longer become part of a match (valid until the next call on the stream, may be
 * empty).  Only the tail that could still grow into a match is held back (at most
 * colloq_redact_max_hold bytes plus an incomplete UTF-8 character).  The concatenated
 * output equals colloq_redact_text on the concatenated input, however it was chunked
 * (for regex rules: as long as matches stay within their max_len).  After a block
 * rule matched, calls return COLLOQ_REDACT_BLOCKED and emit nothing more.
 * A stream is used by one thread at a time; many streams may share one rule set.
 */
int  colloq_redact_stream_new(const colloq_redact *r, int dir, colloq_redact_stream **out,
                              colloq_err *err);
int  colloq_redact_stream_feed(colloq_redact_stream *s, const char *chunk, size_t len,
                               const char **out, size_t *out_len, colloq_err *err);
/* End of text: decide and emit what was held back. */
int  colloq_redact_stream_finish(colloq_redact_stream *s, const char **out, size_t *out_len,
                                 colloq_err *err);
/* Bytes currently held back. */
size_t colloq_redact_stream_held(const colloq_redact_stream *s);
const colloq_redact_record *colloq_redact_stream_record(const colloq_redact_stream *s);
void colloq_redact_stream_free(colloq_redact_stream *s);

/* Append one object per rule that acted ({"stage","detector","action","count"}) to the
 * JSON array arr (the audit log's filter actions).  Returns 0 or COLLOQ_ERR_NOMEM. */
int colloq_redact_record_to_json(const colloq_redact *r, const colloq_redact_record *rec,
                                 const char *stage, json_t *arr);

#endif
