/*
 * redact_internal.h - the contract between the redaction scanner (redact.c) and the
 * built-in detectors (redact_detect.c).  A detector looks at one start position and
 * answers no / yes (with the end) / need more text; it never allocates and reads
 * only the bytes it is given.  Not for use outside the redact module.
 */
#ifndef COLLOQ_REDACT_INTERNAL_H
#define COLLOQ_REDACT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { RD_NONE = 0, RD_MATCH = 1, RD_MORE = 2 } rd_result;

typedef struct {
    const unsigned char *t;   /* t[0..n): left context + text being decided */
    size_t n;
    size_t floor;             /* bytes before floor count as absent (a match ended there) */
    bool   final;             /* n is the true end of the text */
} rd_text;

/* Does a match start at i?  RD_MATCH sets *end.  RD_NONE and RD_MATCH are final answers:
 * they hold for every continuation of the text; RD_MORE only when !x->final.  A detector
 * reads at most RD_LOOKBACK bytes before i (the scanner relies on it). */
#define RD_LOOKBACK 2
typedef rd_result (*rd_detect_fn)(const rd_text *x, size_t i, size_t *end);

typedef struct {
    const char  *type;        /* config name, also the default detector name */
    rd_detect_fn fn;
    size_t       max_hold;    /* longest text an RD_MORE answer can span, plus look-ahead */
} rd_builtin;

/* The built-in detectors, NULL-terminated table. */
extern const rd_builtin rd_builtins[];

/* Checks exposed for tests. */
bool rd_luhn_ok(const char *digits, size_t n);
bool rd_cn_id_ok(const char *id18);   /* 18 chars, region, birth date and checksum */

#endif
