/*
 * util.h - small shared helpers: error reporting, logging, checked arithmetic,
 * allocation hook, timing.  Every other module may include this; it includes
 * nothing of colloq's except the public header.  No global mutable state
 * except the log level and the test allocation-failure hook.
 */
#ifndef COLLOQ_UTIL_H
#define COLLOQ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "colloq.h"

/* Format a message into err (may be NULL) and return status. */
int colloq_seterr(colloq_err *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Logging to stderr; level 0 = errors only, 1 = info (--verbose), 2 = debug. */
extern int colloq_log_level;
void colloq_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Allocation: one hook so tests can make the Nth allocation fail. */
void *colloq_malloc(size_t n);
void *colloq_calloc(size_t n, size_t sz);
void *colloq_realloc(void *p, size_t n);
void  colloq_free(void *p);
void *colloq_aligned_alloc(size_t align, size_t n);   /* free with colloq_aligned_free */
void  colloq_aligned_free(void *p);
char *colloq_strdup(const char *s);
void  colloq_test_fail_alloc_after(long n);           /* -1 disables */

/* Checked arithmetic: return false on overflow. */
static inline bool colloq_mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool colloq_add_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* Monotonic time in seconds. */
double colloq_now(void);

/* Half-precision conversions (IEEE binary16, bfloat16), exact round-to-nearest-even. */
float    colloq_f16_to_f32(uint16_t h);
uint16_t colloq_f32_to_f16(float f);
static inline float colloq_bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v = { .u = (uint32_t)h << 16 };
    return v.f;
}
uint16_t colloq_f32_to_bf16(float f);

/* Read a whole file into memory (NUL-terminated).  Caller frees with colloq_free. */
int colloq_read_file(const char *path, char **out, size_t *len, colloq_err *err);

/* UTF-8: length of a valid sequence starting at s (1..4), or 0 if invalid/truncated. */
int colloq_utf8_seq_len(const unsigned char *s, size_t avail);

#endif
