/*
 * test_util.h - what the C unit tests of the numeric code share: a failure counter with
 * CHECK (prints file:line and a message, the first 40 failures), and a deterministic
 * random stream (splitmix64) with uniform, integer and Gaussian draws.  A test may set
 * TEST_RNG_SEED before including this header.
 */
#ifndef COLLOQ_TEST_UTIL_H
#define COLLOQ_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>

static int failures;
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            if (++failures <= 40) {                                            \
                fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);          \
                fprintf(stderr, __VA_ARGS__);                                  \
                fputc('\n', stderr);                                           \
            }                                                                  \
        }                                                                      \
    } while (0)

#ifndef TEST_RNG_SEED
#define TEST_RNG_SEED 0x243f6a8885a308d3ull
#endif
static uint64_t rng_state = TEST_RNG_SEED;
static inline uint64_t rnd(void) {          /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static inline double rnd_unit(void) { return (double)(rnd() >> 11) * 0x1.0p-53; }
static inline int rnd_int(int lo, int hi) { return lo + (int)(rnd() % (uint64_t)(hi - lo + 1)); }
static inline double rnd_gauss(void) {
    double u = rnd_unit(), v = rnd_unit();
    return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

#endif
