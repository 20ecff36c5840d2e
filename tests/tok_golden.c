/*
 * tok_golden.c - golden tokenizer check for any vocabulary:
 *     tok_golden VOCAB.gguf INPUTS OUTPUTS
 * INPUTS holds texts, each followed by a line "__ggml_vocab_test__"; OUTPUTS one line of
 * space-separated ids per text.  Every text is tokenized without BOS and without
 * special-token parsing and must give exactly those ids.  Exits 0 when all pass, 1 when
 * one fails, 77 (skip) when a file is missing.  Test code only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gguf.h"
#include "tokenizer.h"

#define SEP "\n__ggml_vocab_test__\n"

static char *slurp(const char *path, size_t *len) {
    char *buf;
    colloq_err err;
    if (colloq_read_file(path, &buf, len, &err)) {
        fprintf(stderr, "tok_golden: %s\n", err.msg);
        return NULL;
    }
    return buf;
}

static void print_ids(const char *label, const colloq_token *ids, int n) {
    fprintf(stderr, "  %s:", label);
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n");
}

static void print_text(const char *s, size_t n) {
    fprintf(stderr, "  text: \"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fprintf(stderr, "\\n");
        else if (c == '\t') fprintf(stderr, "\\t");
        else if (c < 0x20 || c == 0x7f) fprintf(stderr, "\\x%02x", c);
        else fputc(c, stderr);
    }
    fprintf(stderr, "\"\n");
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: tok_golden VOCAB.gguf INPUTS OUTPUTS\n");
        return 2;
    }
    struct stat st;
    for (int i = 1; i < 4; i++)
        if (stat(argv[i], &st) != 0) {
            printf("tok_golden: %s: %s (shared test data absent?) - skipped\n", argv[i], strerror(errno));
            return 77;
        }
    colloq_err err = {{0}};
    gguf_file *f = NULL;
    colloq_vocab *v = NULL;
    if (gguf_open(argv[1], &f, &err) || colloq_vocab_load(f, &v, &err)) {
        fprintf(stderr, "tok_golden: %s\n", err.msg);
        gguf_close(f);
        return 1;
    }
    size_t in_len, out_len;
    char *in = slurp(argv[2], &in_len), *outs = slurp(argv[3], &out_len);
    if (!in || !outs) return 1;

    int cases = 0, passed = 0;
    size_t ids_cap = 1024;
    colloq_token *ids = malloc(ids_cap * sizeof *ids), *want = malloc(ids_cap * sizeof *want);
    char *text = in, *line = outs, *in_end = in + in_len, *out_end = outs + out_len;
    while (text < in_end) {
        char *sep = strstr(text, SEP);
        if (!sep) {
            fprintf(stderr, "tok_golden: %s: text %d is not followed by the separator\n", argv[2], cases + 1);
            return 1;
        }
        size_t tlen = (size_t)(sep - text);
        if (line >= out_end) {
            fprintf(stderr, "tok_golden: %s has fewer lines than %s has texts\n", argv[3], argv[2]);
            return 1;
        }
        char *eol = memchr(line, '\n', (size_t)(out_end - line));
        if (!eol) eol = out_end;
        *eol = 0;
        int nw = 0;
        for (char *p = line, *q; ; p = q) {
            long id = strtol(p, &q, 10);
            if (q == p) break;
            if (nw == (int)ids_cap) break;
            want[nw++] = (colloq_token)id;
        }
        int n = colloq_vocab_tokenize(v, text, tlen, false, false, ids, (int)ids_cap, &err);
        cases++;
        bool ok = n == nw && n >= 0 && !memcmp(ids, want, (size_t)n * sizeof *ids);
        if (ok) passed++;
        else {
            fprintf(stderr, "FAIL case %d\n", cases);
            print_text(text, tlen);
            if (n < 0) fprintf(stderr, "  error: %s\n", err.msg);
            else print_ids("got ", ids, n < (int)ids_cap ? n : (int)ids_cap);
            print_ids("want", want, nw);
        }
        text = sep + strlen(SEP);
        line = eol + 1;
    }
    if (line < out_end && strspn(line, " \n") != (size_t)(out_end - line)) {
        fprintf(stderr, "tok_golden: %s has more lines than %s has texts\n", argv[3], argv[2]);
        passed = -1;
    }
    printf("tok_golden: %s: %d/%d cases pass\n", argv[1], passed < 0 ? 0 : passed, cases);
    free(ids);
    free(want);
    colloq_free(in);
    colloq_free(outs);
    colloq_vocab_free(v);
    gguf_close(f);
    return passed == cases && cases > 0 ? 0 : 1;
}
