/*
 * cli_util.c - option-value parsing shared by the subcommands.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include "cli.h"

bool cli_parse_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "colloq %s: bad value for %s: '%s' (expected an integer in %ld..%ld)\n",
                cmd, opt, s ? s : "", lo, hi);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_float(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "colloq %s: bad value for %s: '%s' (expected a number in %g..%g)\n",
                cmd, opt, s ? s : "", lo, hi);
        return false;
    }
    *out = v;
    return true;
}
