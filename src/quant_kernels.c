/*
 * quant_kernels.c - chooses, once per process, which kernel variant each type
 * uses (colloq_kernels_init): CPU detection plus the COLLOQ_KERNELS environment
 * override, then colloq_type_set_fast() for every type a variant accelerates.
 * Owns no math.  SIMD variants (quant_*_avx2.c, ...) register here.
 */
#include "quant.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t kernels_once = PTHREAD_ONCE_INIT;
static const char *kernels_isa = "ref";

static void kernels_select(void) {
    const char *env = getenv("COLLOQ_KERNELS");
    if (env && *env && strcmp(env, "ref") != 0)
        colloq_log(0, "COLLOQ_KERNELS=%s: unknown kernel set, using the reference", env);
    /* No SIMD variants are built yet: every type keeps its reference kernels.
     * A variant registers here, e.g. when __builtin_cpu_supports("avx2") and the
     * environment does not ask for "ref":
     *     colloq_type_set_fast(CT_Q4_0, &(colloq_type_kernels){ .vec_dot = ..., .isa = "avx2" });
     *     kernels_isa = "avx2";                                                              */
    colloq_log(1, "kernels: %s", kernels_isa);
}

void colloq_kernels_init(void) { pthread_once(&kernels_once, kernels_select); }

const char *colloq_kernels_isa(void) {
    colloq_kernels_init();
    return kernels_isa;
}
