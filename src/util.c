/*
 * util.c - error formatting, logging, the allocation hook, timing, half-precision
 * conversion, whole-file reads and UTF-8 sequence checks.  Leaf module.
 */
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int colloq_log_level = 0;

int colloq_seterr(colloq_err *err, int status, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return status;
}

void colloq_log(int level, const char *fmt, ...) {
    if (level > colloq_log_level) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Test hook: after this many successful allocations, fail (-1: never). */
static long fail_after = -1;

void colloq_test_fail_alloc_after(long n) { fail_after = n; }

static bool alloc_ok(void) {
    if (fail_after < 0) return true;
    if (fail_after == 0) return false;
    fail_after--;
    return true;
}

void *colloq_malloc(size_t n) { return alloc_ok() ? malloc(n ? n : 1) : NULL; }
void *colloq_calloc(size_t n, size_t sz) { return alloc_ok() ? calloc(n ? n : 1, sz ? sz : 1) : NULL; }
void *colloq_realloc(void *p, size_t n) { return alloc_ok() ? realloc(p, n ? n : 1) : NULL; }
void  colloq_free(void *p) { free(p); }

void *colloq_aligned_alloc(size_t align, size_t n) {
    if (!alloc_ok()) return NULL;
    void *p = NULL;
    if (posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, n ? n : 1) != 0) return NULL;
    return p;
}
void colloq_aligned_free(void *p) { free(p); }

char *colloq_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = colloq_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

double colloq_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

float colloq_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {                       /* subnormal: normalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    union { uint32_t u; float f; } v = { .u = bits };
    return v.f;
}

uint16_t colloq_f32_to_f16(float f) {
    union { float f; uint32_t u; } v = { .f = f };
    uint32_t x = v.u, sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u)                       /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
    if (absx >= 0x477ff000u)                       /* rounds to >= 65520: overflow */
        return (uint16_t)(sign | 0x7c00);
    if (absx < 0x38800000u) {                      /* below smallest normal: subnormal or zero */
        if (absx < 0x33000000u) return (uint16_t)sign;   /* < 2^-25: rounds to zero */
        uint32_t e = absx >> 23, m = (absx & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e;                  /* 14..24 */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = absx - 0x38000000u;               /* rebias exponent 127 -> 15 */
    uint32_t rem = r & 0x1fff;
    r >>= 13;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

uint16_t colloq_f32_to_bf16(float f) {
    union { float f; uint32_t u; } v = { .f = f };
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40);  /* quiet nan */
    uint32_t rounding = 0x7fff + ((v.u >> 16) & 1);
    return (uint16_t)((v.u + rounding) >> 16);
}

int colloq_read_file(const char *path, char **out, size_t *len, colloq_err *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return colloq_seterr(err, COLLOQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = colloq_malloc(cap);
    if (!buf) { fclose(fp); return colloq_seterr(err, COLLOQ_ERR_NOMEM, "%s: out of memory", path); }
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = colloq_realloc(buf, cap * 2);
            if (!nb) { colloq_free(buf); fclose(fp);
                       return colloq_seterr(err, COLLOQ_ERR_NOMEM, "%s: out of memory", path); }
            buf = nb; cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - 1 - n, fp);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) { colloq_free(buf); return colloq_seterr(err, COLLOQ_ERR_IO, "%s: read error", path); }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return COLLOQ_OK;
}

int colloq_utf8_seq_len(const unsigned char *s, size_t avail) {
    if (avail == 0) return 0;
    unsigned c = s[0];
    int n;
    uint32_t cp;
    if (c < 0x80) return 1;
    else if ((c & 0xe0) == 0xc0) { n = 2; cp = c & 0x1f; }
    else if ((c & 0xf0) == 0xe0) { n = 3; cp = c & 0x0f; }
    else if ((c & 0xf8) == 0xf0) { n = 4; cp = c & 0x07; }
    else return 0;
    if ((size_t)n > avail) return 0;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0;
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n;
}
