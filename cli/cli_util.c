/*
 * cli_util.c - option-value parsing shared by the subcommands.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
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

void cli_gen_defaults(cli_gen_opts *g, long batch) {
    memset(g, 0, sizeof *g);
    g->sp = colloq_sampler_default_params();
    g->batch = batch;
    g->cache_type = COLLOQ_CACHE_F16;
}

static bool opt_is(const char *a, const char *name, const char *alias) {
    return !strcmp(a, name) || (alias && !strcmp(a, alias));
}

int cli_gen_opt(const char *cmd, const char *a, const char *v, cli_gen_opts *g, bool *used) {
    static const char *const with_value[] = {
        "--temp", "--seed", "--top-k", "--top-p", "--min-p", "--repeat-penalty", "--repeat-last-n",
        "--presence-penalty", "--frequency-penalty", "-t", "--threads", "-c", "--ctx", "-b", "--batch",
        "--cache-type",
    };
    bool known = false;
    for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) known |= !strcmp(a, with_value[k]);
    *used = false;
    if (!known) return 0;
    if (!v) { fprintf(stderr, "colloq %s: %s needs a value\n", cmd, a); return -1; }
    *used = true;
    double d = 0;
    long l = 0;
    bool ok = true;
    colloq_sampler_params *sp = &g->sp;
    if (opt_is(a, "--temp", NULL)) { ok = cli_parse_float(cmd, a, v, 0, 100, &d); sp->temperature = (float)d; }
    else if (opt_is(a, "--seed", NULL)) {
        char *end;
        errno = 0;
        sp->seed = strtoull(v, &end, 0);
        ok = *v && *v != '-' && !*end && !errno;
        if (!ok) fprintf(stderr, "colloq %s: bad value for --seed: '%s' (expected an unsigned integer)\n", cmd, v);
        g->seed_set = true;
    }
    else if (opt_is(a, "--top-k", NULL)) { ok = cli_parse_int(cmd, a, v, 0, 1 << 24, &l); sp->top_k = (int)l; }
    else if (opt_is(a, "--top-p", NULL)) { ok = cli_parse_float(cmd, a, v, 0, 1, &d); sp->top_p = (float)d; }
    else if (opt_is(a, "--min-p", NULL)) { ok = cli_parse_float(cmd, a, v, 0, 1, &d); sp->min_p = (float)d; }
    else if (opt_is(a, "--repeat-penalty", NULL)) { ok = cli_parse_float(cmd, a, v, 1e-3, 100, &d); sp->repeat_penalty = (float)d; }
    else if (opt_is(a, "--repeat-last-n", NULL)) { ok = cli_parse_int(cmd, a, v, 0, 1 << 20, &l); sp->repeat_last_n = (int)l; }
    else if (opt_is(a, "--presence-penalty", NULL)) { ok = cli_parse_float(cmd, a, v, -100, 100, &d); sp->presence_penalty = (float)d; }
    else if (opt_is(a, "--frequency-penalty", NULL)) { ok = cli_parse_float(cmd, a, v, -100, 100, &d); sp->frequency_penalty = (float)d; }
    else if (opt_is(a, "-t", "--threads")) ok = cli_parse_int(cmd, a, v, 1, 1024, &g->threads);
    else if (opt_is(a, "-c", "--ctx")) ok = cli_parse_int(cmd, a, v, 1, 1 << 24, &g->n_ctx);
    else if (opt_is(a, "-b", "--batch")) ok = cli_parse_int(cmd, a, v, 1, 1 << 16, &g->batch);
    else ok = cli_parse_cache_type(cmd, v, &g->cache_type);   /* --cache-type */
    return ok ? 1 : -1;
}

bool cli_parse_cache_type(const char *cmd, const char *s, colloq_cache_type *out) {
    if (!strcmp(s, "f16")) *out = COLLOQ_CACHE_F16;
    else if (!strcmp(s, "f32")) *out = COLLOQ_CACHE_F32;
    else if (!strcmp(s, "q8_0")) *out = COLLOQ_CACHE_Q8_0;
    else {
        fprintf(stderr, "colloq %s: bad value for --cache-type: '%s' (expected f16, f32 or q8_0)\n", cmd, s);
        return false;
    }
    return true;
}

const char *cli_cache_type_name(colloq_cache_type ct) {
    return ct == COLLOQ_CACHE_Q8_0 ? "q8_0" : ct == COLLOQ_CACHE_F32 ? "f32" : "f16";
}

void cli_gen_finish(cli_gen_opts *g) {
    if (!g->seed_set) g->sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
}
