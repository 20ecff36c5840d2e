/*
 * test_sampler.c - table-driven checks of the sampler: greedy, top-k, top-p, min-p,
 * penalties (exact values), seeding, and the distribution of temperature sampling
 * against softmax by a chi-square bound.  Seeds are fixed, so results are repeatable.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "colloq.h"
#include "util.h"

static int failures;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
                              fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static colloq_sampler_params params(float temp, int top_k, float top_p, float min_p, uint64_t seed) {
    colloq_sampler_params p = colloq_sampler_default_params();
    p.temperature = temp; p.top_k = top_k; p.top_p = top_p; p.min_p = min_p;
    p.repeat_penalty = 1.0f; p.presence_penalty = 0.0f; p.frequency_penalty = 0.0f;
    p.seed = seed;
    return p;
}

static colloq_sampler *make(const colloq_sampler_params *p, int n) {
    colloq_sampler *s = NULL;
    colloq_err err = { { 0 } };
    int rc = colloq_sampler_init(p, n, &s, &err);
    CHECK(rc == COLLOQ_OK && s, "sampler_init failed: %s", err.msg);
    return s;
}

static uint64_t lcg_state = 12345;
static float frand(void) {   /* test-local uniform in [-4, 4) */
    lcg_state = lcg_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((lcg_state >> 40) & 0xffffff) / 16777216.0f * 8.0f - 4.0f;
}

/* Sample `draws` times from fresh copies of logits; count[] gets the histogram. */
static void histogram(colloq_sampler *s, const float *logits, int n, int draws, int *count) {
    float tmp[64];
    memset(count, 0, sizeof(int) * (size_t)n);
    for (int d = 0; d < draws; d++) {
        memcpy(tmp, logits, sizeof(float) * (size_t)n);
        colloq_token t = colloq_sampler_sample(s, tmp);
        if (t >= 0 && t < n) count[t]++;
    }
}

static void test_greedy(void) {
    static const struct { int n; float l[6]; int want; } cases[] = {
        { 4, { 0.1f, 3.0f, -1.0f, 2.9f }, 1 },
        { 5, { -5.0f, -4.0f, -3.0f, -2.5f, -2.6f }, 3 },
        { 3, { 1.0f, 1.0f, 0.0f }, 0 },                  /* tie: lowest id */
        { 6, { 0, 0, 0, 0, 0, 7.5f }, 5 },
        { 1, { -1e30f }, 0 },
        { 3, { NAN, 1.0f, 0.5f }, 1 },                     /* NaN is never chosen */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        colloq_sampler_params p = params(0.0f, 40, 0.95f, 0.05f, 1);
        colloq_sampler *s = make(&p, cases[c].n);
        if (!s) continue;
        float l[6];
        memcpy(l, cases[c].l, sizeof l);
        colloq_token t = colloq_sampler_sample(s, l);
        CHECK(t == cases[c].want, "greedy case %zu: got %d want %d", c, t, cases[c].want);
        colloq_sampler_free(s);
    }
}

static void test_top_k1_is_greedy(void) {
    colloq_sampler_params pg = params(0.0f, 0, 1.0f, 0.0f, 7), pk = params(1.3f, 1, 1.0f, 0.0f, 7);
    colloq_sampler *g = make(&pg, 50), *k = make(&pk, 50);
    if (!g || !k) return;
    for (int it = 0; it < 200; it++) {
        float a[50], b[50];
        for (int i = 0; i < 50; i++) a[i] = b[i] = frand();
        colloq_token tg = colloq_sampler_sample(g, a), tk = colloq_sampler_sample(k, b);
        CHECK(tg == tk, "top_k=1 gave %d, greedy %d (iteration %d)", tk, tg, it);
    }
    colloq_sampler_free(g);
    colloq_sampler_free(k);
}

/* Which tokens can be drawn under a filter: the kept set, exactly. */
static void test_filters(void) {
    static const struct {
        const char *what; int n; float prob[6]; int top_k; float top_p, min_p; unsigned kept_mask;
    } cases[] = {
        { "no filter",       5, { 0.4f, 0.3f, 0.2f, 0.06f, 0.04f }, 0, 1.0f, 0.0f, 0x1f },
        { "top_k 2",         5, { 0.4f, 0.3f, 0.2f, 0.06f, 0.04f }, 2, 1.0f, 0.0f, 0x03 },
        { "top_k 4",         5, { 0.06f, 0.3f, 0.2f, 0.4f, 0.04f }, 4, 1.0f, 0.0f, 0x0f },
        { "top_p 0.35",      5, { 0.4f, 0.3f, 0.2f, 0.06f, 0.04f }, 0, 0.35f, 0.0f, 0x01 },
        { "top_p 0.65",      5, { 0.4f, 0.3f, 0.2f, 0.06f, 0.04f }, 0, 0.65f, 0.0f, 0x03 },
        { "top_p 0.85",      5, { 0.4f, 0.3f, 0.2f, 0.06f, 0.04f }, 0, 0.85f, 0.0f, 0x07 },
        { "top_p 0.93",      5, { 0.2f, 0.06f, 0.4f, 0.04f, 0.3f }, 0, 0.93f, 0.0f, 0x17 },
        { "top_p over top_k", 5, { 0.4f, 0.3f, 0.2f, 0.06f, 0.04f }, 2, 0.6f, 0.0f, 0x03 },  /* 0.4/0.7 < 0.6 */
        { "top_p over top_k 2", 5, { 0.4f, 0.3f, 0.2f, 0.06f, 0.04f }, 2, 0.55f, 0.0f, 0x01 },/* renormalised: 0.4/0.7 >= 0.55 */
        { "min_p 0.12",      5, { 0.4f, 0.3f, 0.2f, 0.06f, 0.04f }, 0, 1.0f, 0.12f, 0x0f },
        { "min_p 0.6",       5, { 0.4f, 0.3f, 0.2f, 0.06f, 0.04f }, 0, 1.0f, 0.6f, 0x03 },
        { "min_p 1",         5, { 0.4f, 0.3f, 0.2f, 0.06f, 0.04f }, 0, 1.0f, 1.0f, 0x01 },
        { "all three",       6, { 0.3f, 0.25f, 0.2f, 0.15f, 0.06f, 0.04f }, 5, 0.9f, 0.6f, 0x07 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        colloq_sampler_params p = params(1.0f, cases[c].top_k, cases[c].top_p, cases[c].min_p, 99 + c);
        int n = cases[c].n;
        colloq_sampler *s = make(&p, n);
        if (!s) continue;
        float l[6];
        for (int i = 0; i < n; i++) l[i] = logf(cases[c].prob[i]) + 3.0f;   /* shift: softmax-invariant */
        int count[6];
        histogram(s, l, n, 4000, count);
        unsigned seen = 0;
        for (int i = 0; i < n; i++) if (count[i]) seen |= 1u << i;
        CHECK(seen == cases[c].kept_mask, "%s: drew set 0x%x, want 0x%x", cases[c].what, seen, cases[c].kept_mask);
        colloq_sampler_free(s);
    }
}

static void test_penalties(void) {
    static const struct {
        const char *what; float rep, pres, freq; int last_n; int n_hist; colloq_token hist[6];
        float want[6];
    } cases[] = {
        /* logits before: { 1, 2, -1, -2, 0.5, 0 } */
        { "repeat 2",        2.0f, 0, 0,    64, 3, { 1, 3, 3 },       { 1, 1, -1, -4, 0.5f, 0 } },
        { "presence",        1.0f, 0.5f, 0, 64, 3, { 1, 3, 3 },       { 1, 1.5f, -1, -2.5f, 0.5f, 0 } },
        { "frequency",       1.0f, 0, 0.25f, 64, 4, { 1, 3, 3, 3 },   { 1, 1.75f, -1, -2.75f, 0.5f, 0 } },
        { "all",             2.0f, 0.5f, 0.25f, 64, 3, { 0, 3, 3 },   { 0.5f - 0.75f, 2, -1, -4 - 1.0f, 0.5f, 0 } },
        { "zero logit",      2.0f, 0, 0,    64, 1, { 5 },             { 1, 2, -1, -2, 0.5f, 0 } },
        { "window 2",        2.0f, 0, 0,     2, 5, { 0, 1, 2, 4, 4 }, { 1, 2, -1, -2, 0.25f, 0 } },
        { "window 3",        2.0f, 0, 0.5f,  3, 5, { 0, 1, 2, 4, 4 }, { 1, 2, -2.5f, -2, -0.75f, 0 } },
        { "off (last_n 0)",  2.0f, 1, 1,     0, 3, { 0, 1, 2 },       { 1, 2, -1, -2, 0.5f, 0 } },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        colloq_sampler_params p = params(0.0f, 0, 1.0f, 0.0f, 3);
        p.repeat_penalty = cases[c].rep;
        p.presence_penalty = cases[c].pres;
        p.frequency_penalty = cases[c].freq;
        p.repeat_last_n = cases[c].last_n;
        colloq_sampler *s = make(&p, 6);
        if (!s) continue;
        for (int i = 0; i < cases[c].n_hist; i++) colloq_sampler_accept(s, cases[c].hist[i]);
        float l[6] = { 1, 2, -1, -2, 0.5f, 0 };
        colloq_sampler_sample(s, l);
        for (int i = 0; i < 6; i++)
            CHECK(fabsf(l[i] - cases[c].want[i]) < 1e-6f, "%s: logit %d = %g, want %g", cases[c].what, i,
                  (double)l[i], (double)cases[c].want[i]);
        /* Penalties do not accumulate across calls: the same call again gives the same logits. */
        float l2[6] = { 1, 2, -1, -2, 0.5f, 0 };
        colloq_sampler_sample(s, l2);
        CHECK(!memcmp(l, l2, sizeof l), "%s: second call differs", cases[c].what);
        colloq_sampler_free(s);
    }
}

static void test_seed(void) {
    colloq_token a[64], b[64], c[64];
    uint64_t seeds[3] = { 42, 42, 43 };
    colloq_token *outs[3] = { a, b, c };
    for (int r = 0; r < 3; r++) {
        colloq_sampler_params p = params(1.0f, 0, 1.0f, 0.0f, seeds[r]);
        colloq_sampler *s = make(&p, 40);
        if (!s) return;
        lcg_state = 777;
        for (int i = 0; i < 64; i++) {
            float l[40];
            for (int j = 0; j < 40; j++) l[j] = frand() * 0.25f;   /* flat: many candidates */
            outs[r][i] = colloq_sampler_sample(s, l);
        }
        colloq_sampler_free(s);
    }
    CHECK(!memcmp(a, b, sizeof a), "same seed gave different sequences");
    CHECK(memcmp(a, c, sizeof a) != 0, "different seeds gave the same sequence");
}

/* Temperature sampling follows softmax(l / T) (over the top-k set when top_k is set):
 * chi-square with n-1 degrees of freedom below the 0.1% critical value. */
static void test_distribution(void) {
    static const struct { const char *what; int n; float t; int top_k; float crit; } cases[] = {
        { "T=1",        8, 1.0f, 0, 24.32f },    /* 7 dof */
        { "T=0.5",      8, 0.5f, 0, 24.32f },
        { "T=2",        8, 2.0f, 0, 24.32f },
        { "T=0.7 k=4",  8, 0.7f, 4, 16.27f },    /* 3 dof */
    };
    const float base[8] = { 1.0f, 0.2f, -0.5f, 0.8f, 1.5f, -1.0f, 0.0f, 0.6f };
    const int draws = 100000;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        colloq_sampler_params p = params(cases[c].t, cases[c].top_k, 1.0f, 0.0f, 2024 + c);
        colloq_sampler *s = make(&p, cases[c].n);
        if (!s) continue;
        int count[8];
        histogram(s, base, 8, draws, count);
        /* expected probabilities */
        double w[8], z = 0;
        int order[8];
        for (int i = 0; i < 8; i++) order[i] = i;
        for (int i = 0; i < 8; i++)          /* rank by logit to apply top-k */
            for (int j = i + 1; j < 8; j++)
                if (base[order[j]] > base[order[i]]) { int t = order[i]; order[i] = order[j]; order[j] = t; }
        int k = cases[c].top_k ? cases[c].top_k : 8;
        for (int i = 0; i < 8; i++) w[i] = 0;
        for (int r = 0; r < k; r++) { w[order[r]] = exp(base[order[r]] / cases[c].t); z += w[order[r]]; }
        double chi2 = 0;
        for (int i = 0; i < 8; i++) {
            double e = draws * w[i] / z;
            if (e == 0) { CHECK(count[i] == 0, "%s: token %d outside top-k drawn %d times", cases[c].what, i, count[i]); continue; }
            chi2 += (count[i] - e) * (count[i] - e) / e;
        }
        CHECK(chi2 < cases[c].crit, "%s: chi-square %.2f >= %.2f", cases[c].what, chi2, (double)cases[c].crit);
        /* and it is not trivially satisfied: a wrong temperature is rejected */
        double chi2_wrong = 0, zw = 0, ww[8];
        for (int r = 0; r < k; r++) { ww[order[r]] = exp(base[order[r]] / (cases[c].t * 1.25)); zw += ww[order[r]]; }
        for (int r = 0; r < k; r++) {
            int i = order[r];
            double e = draws * ww[i] / zw;
            chi2_wrong += (count[i] - e) * (count[i] - e) / e;
        }
        CHECK(chi2_wrong > cases[c].crit * 4, "%s: chi-square cannot tell T from 1.25 T (%.2f)", cases[c].what, chi2_wrong);
        colloq_sampler_free(s);
    }
}

static void test_bad_params_and_oom(void) {
    colloq_sampler *s = NULL;
    colloq_err err = { { 0 } };
    colloq_sampler_params p = params(-1.0f, 0, 1.0f, 0.0f, 1);
    CHECK(colloq_sampler_init(&p, 10, &s, &err) == COLLOQ_ERR_ARG && !s, "negative temperature accepted");
    p = params(1.0f, 0, 1.5f, 0.0f, 1);
    CHECK(colloq_sampler_init(&p, 10, &s, &err) == COLLOQ_ERR_ARG && !s, "top_p 1.5 accepted");
    p = params(1.0f, 0, 1.0f, 0.0f, 1);
    CHECK(colloq_sampler_init(&p, 0, &s, &err) == COLLOQ_ERR_ARG && !s, "n_vocab 0 accepted");
    p.repeat_penalty = 0.0f;
    CHECK(colloq_sampler_init(&p, 10, &s, &err) == COLLOQ_ERR_ARG && !s, "repeat_penalty 0 accepted");
    p.repeat_penalty = 1.0f;
    for (long n = 0; n < 5; n++) {
        colloq_test_fail_alloc_after(n);
        int rc = colloq_sampler_init(&p, 100, &s, &err);
        colloq_test_fail_alloc_after(-1);
        CHECK(rc == COLLOQ_ERR_NOMEM && !s, "allocation %ld failing: rc %d", n, rc);
    }
    CHECK(colloq_sampler_init(&p, 100, &s, &err) == COLLOQ_OK, "init after OOM tests: %s", err.msg);
    colloq_sampler_free(s);
    colloq_sampler_free(NULL);
}

/* A large vocabulary through every path (heap pops, lazy sorting, direct draw). */
static void test_large_vocab(void) {
    enum { N = 32000 };
    static float l[N], copy[N];
    lcg_state = 4242;
    for (int i = 0; i < N; i++) l[i] = frand();
    l[12345] = 9.0f;                                  /* clear winner */
    static const struct { float t; int k; float top_p, min_p; } cases[] = {
        { 0.0f, 0, 1.0f, 0.0f }, { 1.0f, 40, 0.95f, 0.05f }, { 1.0f, 0, 0.9f, 0.0f }, { 0.8f, 0, 1.0f, 0.0f },
        { 1.0f, 0, 1.0f, 0.5f },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        colloq_sampler_params p = params(cases[c].t, cases[c].k, cases[c].top_p, cases[c].min_p, 5);
        colloq_sampler *s = make(&p, N);
        if (!s) continue;
        memcpy(copy, l, sizeof l);
        colloq_token t = colloq_sampler_sample(s, copy);
        CHECK(t >= 0 && t < N, "case %zu: token %d out of range", c, t);
        if (cases[c].t == 0.0f || cases[c].min_p >= 0.5f) CHECK(t == 12345, "case %zu: got %d", c, t);
        colloq_sampler_free(s);
    }
}

int main(void) {
    test_greedy();
    test_top_k1_is_greedy();
    test_filters();
    test_penalties();
    test_seed();
    test_distribution();
    test_bad_params_and_oom();
    test_large_vocab();
    if (failures) { fprintf(stderr, "%d check(s) failed\n", failures); return 1; }
    printf("sampler: all checks passed\n");
    return 0;
}
