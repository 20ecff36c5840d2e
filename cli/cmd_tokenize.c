/*
 * cmd_tokenize.c - `colloq tokenize -m M.gguf (-p TEXT | -f FILE | stdin) [--no-bos]
 * [--special]`: prints the token ids of a text as one JSON array on one line.  Opens
 * only the GGUF metadata and the vocabulary (so vocabulary-only files work); no
 * tokenizing logic of its own.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "gguf.h"
#include "tokenizer.h"

static void tokenize_usage(FILE *out) {
    fprintf(out,
            "usage: colloq tokenize -m M.gguf (-p TEXT | -f FILE | < stdin) [--no-bos] [--special]\n\n"
            "Prints the token ids of the text as a JSON array, e.g. [1, 15043, 3186].\n"
            "  -m, --model FILE   GGUF file with a vocabulary (a model or a vocabulary-only file)\n"
            "  -p, --prompt TEXT  the text (otherwise -f FILE, otherwise standard input)\n"
            "  -f, --file FILE    read the text from FILE\n"
            "  --no-bos           do not add BOS even when the vocabulary asks for it\n"
            "  --special          text matching a control token becomes that token\n");
}

static int read_stdin(char **out, size_t *len) {
    size_t cap = 4096, n = 0;
    char *buf = colloq_malloc(cap);
    if (!buf) return -1;
    for (;;) {
        if (n == cap) {
            char *nb = colloq_realloc(buf, cap * 2);
            if (!nb) { colloq_free(buf); return -1; }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, stdin);
        n += r;
        if (r == 0) break;
    }
    if (ferror(stdin)) { colloq_free(buf); return -1; }
    *out = buf;
    *len = n;
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *file = NULL;
    bool bos = true, special = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool takes_value = !strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "-p") ||
                           !strcmp(a, "--prompt") || !strcmp(a, "-f") || !strcmp(a, "--file");
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            tokenize_usage(stdout);
            return 0;
        } else if (takes_value) {
            if (i + 1 >= argc) {
                fprintf(stderr, "colloq tokenize: %s needs a value\n", a);
                return 2;
            }
            const char **dst = a[1] == 'm' || !strcmp(a, "--model") ? &model
                             : a[1] == 'p' || !strcmp(a, "--prompt") ? &prompt : &file;
            *dst = argv[++i];
        } else if (!strcmp(a, "--no-bos")) {
            bos = false;
        } else if (!strcmp(a, "--special")) {
            special = true;
        } else {
            fprintf(stderr, "colloq tokenize: unknown argument '%s'\n", a);
            tokenize_usage(stderr);
            return 2;
        }
    }
    if (!model) {
        fprintf(stderr, "colloq tokenize: -m M.gguf is required\n");
        tokenize_usage(stderr);
        return 2;
    }
    if (prompt && file) {
        fprintf(stderr, "colloq tokenize: give either -p or -f, not both\n");
        return 2;
    }

    colloq_err err = { "" };
    char *text = NULL;
    size_t len = 0;
    if (prompt) {
        len = strlen(prompt);
    } else if (file) {
        if (colloq_read_file(file, &text, &len, &err)) {
            fprintf(stderr, "colloq tokenize: %s\n", err.msg);
            return 1;
        }
    } else if (read_stdin(&text, &len)) {
        fprintf(stderr, "colloq tokenize: cannot read standard input\n");
        return 1;
    }
    const char *src = prompt ? prompt : text;

    int status = 1;
    gguf_file *f = NULL;
    colloq_vocab *v = NULL;
    colloq_token *ids = NULL;
    if (gguf_open(model, &f, &err) || colloq_vocab_load(f, &v, &err)) {
        fprintf(stderr, "colloq tokenize: %s\n", err.msg);
        goto done;
    }
    int cap = 256, n;
    for (;;) {
        colloq_token *ni = colloq_realloc(ids, (size_t)cap * sizeof *ids);
        if (!ni) { fprintf(stderr, "colloq tokenize: out of memory\n"); goto done; }
        ids = ni;
        n = colloq_vocab_tokenize(v, src, len, bos, special, ids, cap, &err);
        if (n < 0) { fprintf(stderr, "colloq tokenize: %s\n", err.msg); goto done; }
        if (n <= cap) break;
        cap = n;
    }
    putchar('[');
    for (int i = 0; i < n; i++) printf(i ? ", %d" : "%d", ids[i]);
    printf("]\n");
    status = fflush(stdout) == 0 ? 0 : 1;
done:
    colloq_free(ids);
    colloq_vocab_free(v);
    gguf_close(f);
    colloq_free(text);
    return status;
}
