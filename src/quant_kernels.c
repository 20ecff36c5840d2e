/*
 * quant_kernels.c - chooses, once per process, which kernel variant each type
 * uses (colloq_kernels_init): CPU detection (__builtin_cpu_supports) plus the
 * operating system's register-state support (XGETBV), and the COLLOQ_KERNELS
 * environment override (ref | avx2 | avx512); then registers the chosen files'
 * tables with colloq_type_set_fast() and colloq_mmk_set().  Owns no math; the
 * SIMD files only export const tables (quant_simd.h).
 */
#include "matmul_pack.h"
#include "quant.h"
#include "quant_simd.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t kernels_once = PTHREAD_ONCE_INIT;
static const char *kernels_isa = "ref";

enum { ISA_REF, ISA_AVX2, ISA_AVX512 };

#if defined(__x86_64__)
/* XCR0: which register states the OS saves on context switches. */
static uint64_t xcr0(void) {
    unsigned a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
    if (!(c & (1u << 27))) return 0;                 /* no OSXSAVE: XGETBV unavailable */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

static int best_isa(void) {
    __builtin_cpu_init();
    uint64_t x = xcr0();
    bool ymm = (x & 0x6) == 0x6;                     /* SSE + AVX state */
    bool zmm = (x & 0xe6) == 0xe6;                   /* + opmask, ZMM_Hi256, Hi16_ZMM */
    bool avx2 = ymm && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
             && __builtin_cpu_supports("f16c");
    bool avx512 = avx2 && zmm && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
               && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")
               && __builtin_cpu_supports("avx512vnni");
    return avx512 ? ISA_AVX512 : avx2 ? ISA_AVX2 : ISA_REF;
}

static void register_table(const colloq_kernel_entry *t) {
    for (; t->type != CT_COUNT; t++) {
        if (t->k.vec_dot || t->k.from_float || t->k.to_float) colloq_type_set_fast(t->type, &t->k);
        if (t->mm.act || t->mm.panel || t->mm.tile) colloq_mmk_set(t->type, &t->mm);
    }
}
#else
static int best_isa(void) { return ISA_REF; }
#endif

static void kernels_select(void) {
    static const char *const names[] = { "ref", "avx2", "avx512" };
    int isa = best_isa(), want = isa;
    const char *env = getenv("COLLOQ_KERNELS");
    if (env && *env) {
        int w = -1;
        for (int i = 0; i < 3; i++)
            if (!strcmp(env, names[i])) w = i;
        if (w < 0)
            colloq_log(0, "COLLOQ_KERNELS=%s: unknown kernel set (ref, avx2, avx512); using %s", env, names[isa]);
        else if (w > isa)
            colloq_log(0, "COLLOQ_KERNELS=%s: not supported by this CPU/OS; using %s", env, names[isa]);
        else
            want = w;
    }
#if defined(__x86_64__)
    if (want >= ISA_AVX2) {
        register_table(colloq_dot_avx2);
        register_table(colloq_panel_avx2);
    }
    if (want >= ISA_AVX512) {
        register_table(colloq_dot_avx512);
        register_table(colloq_panel_avx512);
    }
#endif
    kernels_isa = names[want];
    colloq_log(1, "kernels: %s (best supported: %s)", kernels_isa, names[isa]);
}

void colloq_kernels_init(void) { pthread_once(&kernels_once, kernels_select); }

bool colloq_kernels_supported(const char *isa) {
    static const char *const names[] = { "ref", "avx2", "avx512" };
    int best = best_isa();
    for (int i = 0; i < 3; i++)
        if (isa && !strcmp(isa, names[i])) return i <= best;
    return false;
}

const char *colloq_kernels_isa(void) {
    colloq_kernels_init();
    return kernels_isa;
}
