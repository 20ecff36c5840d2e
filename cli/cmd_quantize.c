/*
 * cmd_quantize.c - `colloq quantize IN.gguf OUT.gguf TYPE`: argument parsing for
 * the file converter (src/quantize.c).  Prints what it wrote; all conversion is
 * in the library.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "quantize.h"
#include "util.h"

static void usage(FILE *out) {
    fprintf(out,
        "usage: colloq quantize IN.gguf OUT.gguf TYPE [options]\n"
        "\n"
        "Converts every 2-D weight of a GGUF model to TYPE and copies all metadata.\n"
        "TYPE: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K,\n"
        "      or a mix: Q3_K_M Q4_K_M Q5_K_M (some tensors at higher precision, as the\n"
        "      common mixes choose them; output.weight is Q6_K below 8 bits).\n"
        "1-D tensors stay F32; rows whose length does not fit a type's blocks fall back\n"
        "to a type that fits (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, ... or F16).\n"
        "\n"
        "  -t, --threads N   threads (default: physical cores)\n"
        "  --pure            the same type for every 2-D weight (no per-tensor rules)\n"
        "  --verbose         log each tensor\n");
}

int cmd_quantize(int argc, char **argv) {
    const char *pos[3] = { NULL, NULL, NULL };
    int npos = 0;
    long threads = 0;
    bool pure = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (i + 1 >= argc) { fprintf(stderr, "colloq quantize: %s needs a value\n", a); return 2; }
            if (!cli_parse_int("quantize", a, argv[++i], 1, 1024, &threads)) return 2;
        } else if (!strcmp(a, "--pure")) {
            pure = true;
        } else if (!strcmp(a, "--verbose")) {
            colloq_log_level = 1;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "colloq quantize: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (npos < 3) {
            pos[npos++] = a;
        } else {
            fprintf(stderr, "colloq quantize: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (npos != 3) {
        fprintf(stderr, "colloq quantize: IN.gguf, OUT.gguf and TYPE are required\n");
        usage(stderr);
        return 2;
    }
    colloq_quantize_params p = { .type = pos[2], .n_threads = (int)threads, .pure = pure };
    colloq_quantize_stats st;
    colloq_err err = { { 0 } };
    double t0 = colloq_now();
    int rc = colloq_quantize_file(pos[0], pos[1], &p, &st, &err);
    if (rc != COLLOQ_OK) {
        fprintf(stderr, "colloq quantize: %s\n", err.msg);
        return rc == COLLOQ_ERR_ARG ? 2 : 1;
    }
    fprintf(stderr,
            "colloq quantize: wrote %s (%s): %d tensors (%d converted, %d copied, %d with a fallback type), "
            "%.1f MiB -> %.1f MiB in %.1f s\n",
            pos[1], pos[2], st.n_tensors, st.n_converted, st.n_copied, st.n_fallback,
            (double)st.bytes_in / 1048576.0, (double)st.bytes_out / 1048576.0, colloq_now() - t0);
    return 0;
}
