/*
 * cmd_mkmodel.c - `colloq mkmodel`: argument parsing for the random-weight model
 * writer (src/mkmodel.c).  Prints what it wrote; all generation is in the library.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "mkmodel.h"
#include "quant.h"
#include "util.h"

static void usage(FILE *out) {
    fprintf(out,
        "usage: colloq mkmodel --shape SHAPE -o OUT.gguf [options]\n"
        "\n"
        "Writes a model file with RANDOM weights (not a trained model) of a real architecture\n"
        "shape, for tests, benchmarks and demos.  Weights are deterministic in --seed.\n"
        "SHAPE: mistral-7b, llama2-7b, tinyllama-1b, tiny (llama); qwen2-7b; qwen-7b; falcon-7b,\n"
        "falcon-40b; baichuan2-7b, baichuan2-13b; chatglm3-6b\n"
        "\n"
        "  --arch llama|qwen2|qwen|falcon|baichuan|chatglm\n"
        "                             architecture (default: the shape's), with its tensor names,\n"
        "                             keys and special tokens; falcon with --kv-heads 1 is the 7B\n"
        "                             layout, else 40B; baichuan with --layers 40 is the 13B (ALiBi)\n"
        "  --type f32|f16|bf16|q8_0|q4_0   type of the 2-D weights (default f16; norms stay f32)\n"
        "  --vocab VOCAB.gguf         copy every tokenizer.* key from this file\n"
        "                             (default: a small built-in SentencePiece-style vocabulary)\n"
        "  --seed S                   weight seed (default 1)\n"
        "  -t, --threads N            threads (default: physical cores)\n"
        "  --verbose                  log each tensor as it is written\n"
        "overrides of the shape:\n"
        "  --dim N --layers N --heads N --kv-heads N --ffn N --ctx N\n"
        "  --sliding-window N (0 = none)  --rope-base F  --rope-scale F (linear)  --tied | --untied\n"
        "  --vocab-size N             pad the built-in vocabulary to N tokens (0 = no padding)\n");
}

int cmd_mkmodel(int argc, char **argv) {
    const char *shape = NULL, *out = NULL, *vocab = NULL, *type_name = "f16", *arch = NULL;
    long dim = -1, layers = -1, heads = -1, kv = -1, ffn = -1, ctx = -1, window = -1, threads = 0, n_vocab = -1;
    double rope_base = -1, rope_scale = -1;
    unsigned long long seed = 1;
    int tied = -1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
#define NEED_VALUE() do { if (!v) { fprintf(stderr, "colloq mkmodel: %s needs a value\n", a); return 2; } i++; } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--shape")) { NEED_VALUE(); shape = v; }
        else if (!strcmp(a, "--arch")) { NEED_VALUE(); arch = v; }
        else if (!strcmp(a, "--vocab-size")) { NEED_VALUE(); ok = cli_parse_int("mkmodel", a, v, 0, 1 << 22, &n_vocab); }
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) { NEED_VALUE(); out = v; }
        else if (!strcmp(a, "--vocab")) { NEED_VALUE(); vocab = v; }
        else if (!strcmp(a, "--type")) { NEED_VALUE(); type_name = v; }
        else if (!strcmp(a, "--seed")) {
            NEED_VALUE();
            char *end;
            seed = strtoull(v, &end, 0);
            ok = *v && *v != '-' && !*end;
            if (!ok) fprintf(stderr, "colloq mkmodel: bad value for --seed: '%s'\n", v);
        }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { NEED_VALUE(); ok = cli_parse_int("mkmodel", a, v, 1, 1024, &threads); }
        else if (!strcmp(a, "--dim")) { NEED_VALUE(); ok = cli_parse_int("mkmodel", a, v, 1, 1 << 20, &dim); }
        else if (!strcmp(a, "--layers")) { NEED_VALUE(); ok = cli_parse_int("mkmodel", a, v, 1, 1024, &layers); }
        else if (!strcmp(a, "--heads")) { NEED_VALUE(); ok = cli_parse_int("mkmodel", a, v, 1, 4096, &heads); }
        else if (!strcmp(a, "--kv-heads")) { NEED_VALUE(); ok = cli_parse_int("mkmodel", a, v, 1, 4096, &kv); }
        else if (!strcmp(a, "--ffn")) { NEED_VALUE(); ok = cli_parse_int("mkmodel", a, v, 1, 1 << 22, &ffn); }
        else if (!strcmp(a, "--ctx")) { NEED_VALUE(); ok = cli_parse_int("mkmodel", a, v, 1, 1 << 24, &ctx); }
        else if (!strcmp(a, "--sliding-window")) { NEED_VALUE(); ok = cli_parse_int("mkmodel", a, v, 0, 1 << 24, &window); }
        else if (!strcmp(a, "--rope-base")) { NEED_VALUE(); ok = cli_parse_float("mkmodel", a, v, 1e-3, 1e12, &rope_base); }
        else if (!strcmp(a, "--rope-scale")) { NEED_VALUE(); ok = cli_parse_float("mkmodel", a, v, 1e-3, 1e6, &rope_scale); }
        else if (!strcmp(a, "--tied")) tied = 1;
        else if (!strcmp(a, "--untied")) tied = 0;
        else if (!strcmp(a, "--verbose")) colloq_log_level = 2;
        else { fprintf(stderr, "colloq mkmodel: unknown option '%s'\n", a); usage(stderr); return 2; }
        if (!ok) return 2;
#undef NEED_VALUE
    }
    if (!shape || !out) {
        fprintf(stderr, "colloq mkmodel: --shape and -o are required\n");
        usage(stderr);
        return 2;
    }

    colloq_err err = { { 0 } };
    colloq_mkmodel_params p;
    if (colloq_mkmodel_shape(shape, &p, &err) != COLLOQ_OK) {
        fprintf(stderr, "colloq mkmodel: %s\n", err.msg);
        return 2;
    }
    if (arch && strcmp(arch, p.arch) != 0) {
        if (colloq_mkmodel_set_arch(&p, arch, &err) != COLLOQ_OK) {
            fprintf(stderr, "colloq mkmodel: %s\n", err.msg);
            return 2;
        }
        p.n_vocab = 0;   /* the shape's vocabulary size belongs to its own family */
    }
    int type = colloq_type_from_name(type_name);
    if (type != CT_F32 && type != CT_F16 && type != CT_BF16 && type != CT_Q8_0 && type != CT_Q4_0) {
        fprintf(stderr, "colloq mkmodel: bad value for --type: '%s' (expected f32, f16, bf16, q8_0 or q4_0)\n", type_name);
        return 2;
    }
    bool custom = false;
#define OVERRIDE(field, val) do { if ((val) >= 0) { p.field = (val); custom = true; } } while (0)
    OVERRIDE(dim, (int)dim);
    OVERRIDE(n_layers, (int)layers);
    OVERRIDE(n_heads, (int)heads);
    OVERRIDE(n_kv_heads, (int)kv);
    OVERRIDE(ffn, (int)ffn);
    OVERRIDE(ctx, (int)ctx);
    OVERRIDE(sliding_window, (int)window);
    OVERRIDE(rope_base, (float)rope_base);
    OVERRIDE(rope_scale, (float)rope_scale);
    OVERRIDE(n_vocab, (int)n_vocab);
    if (tied >= 0) { p.tied = tied == 1; custom = true; }
#undef OVERRIDE
    if (custom) {
        size_t n = strlen(p.shape);
        snprintf(p.shape + n, sizeof p.shape - n, "%s", "-custom");
    }
    p.type = (uint32_t)type;
    p.seed = seed;
    p.vocab_path = vocab;
    p.n_threads = (int)threads;

    if (colloq_mkmodel_check(&p, &err) != COLLOQ_OK) {
        fprintf(stderr, "colloq mkmodel: %s\n", err.msg);
        return 2;
    }
    double t0 = colloq_now();
    int rc = colloq_mkmodel_write(&p, out, &err);
    if (rc != COLLOQ_OK) {
        fprintf(stderr, "colloq mkmodel: %s\n", err.msg);
        return rc == COLLOQ_ERR_ARG ? 2 : 1;
    }
    struct stat sb;
    double mib = stat(out, &sb) == 0 ? (double)sb.st_size / (1024.0 * 1024.0) : 0.0;
    fprintf(stderr,
            "colloq mkmodel: wrote %s (%.1f MiB in %.1f s): RANDOM weights, %s %s shape, dim %d, %d layers, "
            "%d heads (%d kv), ffn %d, ctx %d%s, %s weights, %s output, seed %llu\n",
            out, mib, colloq_now() - t0, p.arch, p.shape, p.dim, p.n_layers, p.n_heads, p.n_kv_heads, p.ffn, p.ctx,
            p.sliding_window ? ", sliding window" : "", colloq_type_get(p.type)->name,
            p.tied ? "tied" : "untied", seed);
    return 0;
}
