/*
 * cmd_bench.c - `colloq bench -m MODEL.gguf`: argument parsing and printing for
 * the benchmark (src/bench.c): prefill and decode tokens/s with the ceilings
 * measured in the same run, as text or one JSON object.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "bench.h"
#include "cli.h"
#include "util.h"

static void usage(FILE *out) {
    fprintf(out,
        "usage: colloq bench -m MODEL.gguf [options]\n"
        "\n"
        "Measures prefill (prompt processing) and decode speed, and between those runs the\n"
        "memory read bandwidth and the int8 multiply-accumulate peak of the same threads.\n"
        "Decode reads every weight byte once per token, so tokens/s x bytes per token /\n"
        "bandwidth (tg_floor_ratio) says how close decode is to its ceiling.\n"
        "\n"
        "  -p N          prompt tokens per prefill run (default 512; 0 = skip)\n"
        "  -n N          tokens per decode run (default 128; 0 = skip)\n"
        "  -t N          threads (default: physical cores)\n"
        "  -r N          repetitions; the median is reported (default 3)\n"
        "  --bw-mib N    bandwidth test buffer in MiB (default 1024)\n"
        "  --cache-type f16|f32|q8_0  KV cache element type (default f16)\n"
        "  -d, --depth N positions already in the KV cache when each decode run starts (default 0);\n"
        "                the KV bytes attention reads then count towards the floor ratio\n"
        "  --json        print one JSON object\n"
        "  --verbose     log model loading and the kernel choice\n");
}

static json_t *runs_json(const double *v, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_real(v[i]));
    return a;
}

int cmd_bench(int argc, char **argv) {
    colloq_bench_params p = { .n_prompt = 512, .n_gen = 128, .reps = 3 };
    long v;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED() do { if (!val) { fprintf(stderr, "colloq bench: %s needs a value\n", a); return 2; } i++; } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) { NEED(); p.model_path = val; }
        else if (!strcmp(a, "-p")) { NEED(); if (!cli_parse_int("bench", a, val, 0, 1 << 20, &v)) return 2; p.n_prompt = (int)v; }
        else if (!strcmp(a, "-n")) { NEED(); if (!cli_parse_int("bench", a, val, 0, 1 << 20, &v)) return 2; p.n_gen = (int)v; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { NEED(); if (!cli_parse_int("bench", a, val, 1, 1024, &v)) return 2; p.n_threads = (int)v; }
        else if (!strcmp(a, "-r")) { NEED(); if (!cli_parse_int("bench", a, val, 1, COLLOQ_BENCH_MAX_REPS, &v)) return 2; p.reps = (int)v; }
        else if (!strcmp(a, "--bw-mib")) { NEED(); if (!cli_parse_int("bench", a, val, 1, 1 << 20, &v)) return 2; p.bw_mib = (int)v; }
        else if (!strcmp(a, "--cache-type")) {
            NEED();
            if (!cli_parse_cache_type("bench", val, &p.cache_type)) return 2;
        }
        else if (!strcmp(a, "-d") || !strcmp(a, "--depth")) { NEED(); if (!cli_parse_int("bench", a, val, 0, 1 << 20, &v)) return 2; p.depth = (int)v; }
        else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--verbose")) { p.verbose = true; colloq_log_level = 1; }
        else { fprintf(stderr, "colloq bench: unknown option '%s'\n", a); usage(stderr); return 2; }
#undef NEED
    }
    if (!p.model_path) {
        fprintf(stderr, "colloq bench: -m MODEL.gguf is required\n");
        usage(stderr);
        return 2;
    }
    colloq_bench_result r;
    colloq_err err = { { 0 } };
    int rc = colloq_bench_run(&p, &r, &err);
    if (rc != COLLOQ_OK) {
        fprintf(stderr, "colloq bench: %s\n", err.msg);
        return rc == COLLOQ_ERR_ARG ? 2 : 1;
    }
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "model", json_string(p.model_path));
        json_object_set_new(o, "arch", json_string(r.arch));
        json_object_set_new(o, "type", json_string(r.type));
        json_object_set_new(o, "threads", json_integer(r.threads));
        json_object_set_new(o, "isa", json_string(r.isa));
        json_object_set_new(o, "n_prompt", json_integer(p.n_prompt));
        json_object_set_new(o, "n_gen", json_integer(p.n_gen));
        json_object_set_new(o, "reps", json_integer(p.reps));
        json_object_set_new(o, "cache_type", json_string(cli_cache_type_name(p.cache_type)));
        json_object_set_new(o, "pp_tok_s", json_real(r.pp_tok_s));
        json_object_set_new(o, "tg_tok_s", json_real(r.tg_tok_s));
        json_object_set_new(o, "pp_runs", runs_json(r.pp_runs, p.n_prompt ? p.reps : 0));
        json_object_set_new(o, "tg_runs", runs_json(r.tg_runs, p.n_gen ? p.reps : 0));
        json_object_set_new(o, "bytes_per_token", json_integer((json_int_t)r.bytes_per_token));
        json_object_set_new(o, "kv_bytes_per_token", json_integer((json_int_t)r.kv_bytes_per_token));
        json_object_set_new(o, "depth", json_integer(p.depth));
        json_object_set_new(o, "macs_per_token", json_integer((json_int_t)r.macs_per_token));
        json_object_set_new(o, "n_weights", json_integer((json_int_t)r.n_weights));
        json_object_set_new(o, "bw_gbps", json_real(r.bw_gbps));
        json_object_set_new(o, "tg_floor_ratio", json_real(r.tg_floor_ratio));
        json_object_set_new(o, "int8_tops", json_real(r.int8_tops));
        json_object_set_new(o, "pp_peak_ratio", json_real(r.pp_peak_ratio));
        json_object_set_new(o, "packed_bytes", json_integer((json_int_t)r.packed_bytes));
        json_object_set_new(o, "load_s", json_real(r.load_s));
        char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(o);
        return 0;
    }
    printf("model        %s (%s, %s), %.2f B weights, loaded in %.1f s\n", p.model_path, r.arch, r.type,
           (double)r.n_weights / 1e9, r.load_s);
    printf("threads      %d, kernels %s%s\n", r.threads, r.isa, r.packed_bytes ? ", weights packed at load" : "");
    if (p.n_prompt) {
        printf("prefill      pp%d: %.2f tok/s (median of %d:", p.n_prompt, r.pp_tok_s, p.reps);
        for (int i = 0; i < p.reps; i++) printf(" %.2f", r.pp_runs[i]);
        printf("), %.0f %% of the int8 peak (%.2f TOPS)\n", 100.0 * r.pp_peak_ratio, r.int8_tops);
    }
    if (p.n_gen) {
        printf("decode       tg%d", p.n_gen);
        if (p.depth) printf(" at depth %d (KV cache %s)", p.depth, cli_cache_type_name(p.cache_type));
        printf(": %.2f tok/s (median of %d:", r.tg_tok_s, p.reps);
        for (int i = 0; i < p.reps; i++) printf(" %.2f", r.tg_runs[i]);
        printf(")\n");
    }
    printf("bytes/token  %.3f GB (weights except the embedding table, plus one row of it)", (double)r.bytes_per_token / 1e9);
    if (p.n_gen) printf(" + %.3f GB of KV cache", (double)r.kv_bytes_per_token / 1e9);
    printf("\n");
    printf("bandwidth    %.1f GB/s (memory read, %d threads, median of %s)\n", r.bw_gbps, r.threads,
           p.n_gen ? "passes between the decode runs" : "5 passes");
    if (p.n_gen)
        printf("floor ratio  %.2f (decode tok/s x (weight + KV bytes)/token / bandwidth; 1.00 = at the ceiling)\n",
               r.tg_floor_ratio);
    return 0;
}
