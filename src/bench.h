/*
 * bench.h - `colloq bench` as a library function: prefill and decode speed of a
 * model, and in the same run the two ceilings they are bounded by (memory read
 * bandwidth for decode, the int8 multiply-accumulate peak for prefill).  Used by
 * the CLI and bench/run-benchmarks.sh; never at inference time.
 */
#ifndef COLLOQ_BENCH_H
#define COLLOQ_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include "colloq.h"

#define COLLOQ_BENCH_MAX_REPS 64

typedef struct {
    const char *model_path;
    int  n_prompt;          /* prefill tokens per repetition (0 = skip) */
    int  n_gen;             /* decode tokens per repetition (0 = skip) */
    int  n_threads;         /* 0 = physical cores */
    int  reps;              /* 1..COLLOQ_BENCH_MAX_REPS */
    int  bw_mib;            /* bandwidth buffer (MiB); 0 = 1024 */
    colloq_cache_type cache_type;   /* KV cache (zero: F16) */
    int  depth;             /* positions already in the cache when each decode run starts */
    bool verbose;
} colloq_bench_params;

typedef struct {
    char     arch[32], type[16], isa[16];
    int      threads;
    uint64_t n_weights;          /* elements of all tensors */
    uint64_t bytes_per_token;    /* decode: every weight byte except the embedding table, plus one row of it */
    uint64_t kv_bytes_per_token; /* decode: KV cache bytes attention reads per token, averaged over the run */
    uint64_t macs_per_token;     /* multiply-accumulates of the weight products per token */
    uint64_t packed_bytes;       /* load-time packed copies (0 when the weights are used in place) */
    double   pp_runs[COLLOQ_BENCH_MAX_REPS], tg_runs[COLLOQ_BENCH_MAX_REPS];   /* tok/s per repetition */
    double   pp_tok_s, tg_tok_s; /* medians */
    double   bw_gbps;            /* memory read bandwidth: median of passes run between the decode runs */
    double   int8_tops;          /* int8 multiply-accumulate peak (2 ops per MAC), between the prefill runs */
    double   tg_floor_ratio;     /* tg_tok_s * (bytes_per_token + kv_bytes_per_token) / bandwidth */
    double   pp_peak_ratio;      /* pp_tok_s * 2 * macs_per_token / int8 peak */
    double   load_s;
} colloq_bench_result;

/* Load the model, measure, free it.  Errors: those of model loading and sequences,
 * COLLOQ_ERR_ARG for bad parameters, COLLOQ_ERR_NOMEM for the bandwidth buffer. */
int colloq_bench_run(const colloq_bench_params *p, colloq_bench_result *r, colloq_err *err);

#endif
