/*
 * cmd_info.c - `colloq info M.gguf`: loads the model and prints its description
 * (architecture, hyper-parameters, memory per sequence, tensors, metadata).  When the
 * model cannot be loaded, prints the error and, if the file itself is valid GGUF,
 * its metadata and tensor list.  Printing only; no inference logic.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "colloq.h"
#include "gguf.h"

static void info_usage(FILE *out) {
    fprintf(out, "usage: colloq info [--threads N] M.gguf\n\n"
                 "Prints the architecture, hyper-parameters, the memory one sequence at the default\n"
                 "context needs beyond the mapped weights, the tensor list and the metadata.\n");
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    long threads = 0;          /* as `colloq run`: physical cores (affects the scratch estimate) */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            info_usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--threads") || !strcmp(argv[i], "-t")) {
            if (i + 1 >= argc || !cli_parse_int("info", argv[i], argv[i + 1], 0, 1024, &threads)) {
                if (i + 1 >= argc) fprintf(stderr, "colloq info: %s needs a value\n", argv[i]);
                return 2;
            }
            i++;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "colloq info: unknown option '%s'\n", argv[i]);
            info_usage(stderr);
            return 2;
        } else if (path) {
            fprintf(stderr, "colloq info: more than one file given\n");
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        info_usage(stderr);
        return 2;
    }
    colloq_model_params mp = colloq_model_default_params();
    mp.n_threads = (int)threads;
    colloq_model *m = NULL;
    colloq_err err = { "" };
    if (colloq_model_load(path, &mp, &m, &err) == COLLOQ_OK) {
        colloq_model_describe(m, stdout);
        colloq_model_free(m);
        return 0;
    }
    fprintf(stderr, "colloq info: %s\n", err.msg);
    gguf_file *f = NULL;
    colloq_err ferr;
    if (gguf_open(path, &f, &ferr) == COLLOQ_OK) {
        printf("(the file is valid GGUF but cannot be run as a model; its contents follow)\n\n");
        gguf_describe(f, stdout);
        gguf_close(f);
    }
    return 1;
}
