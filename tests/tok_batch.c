/*
 * tok_batch.c - tokenizes many texts in one process for the Python cross-checks:
 *     tok_batch VOCAB.gguf TEXTS
 * TEXTS holds records "<4-byte little-endian length><bytes>".  For each record prints
 * one line: the ids (no BOS, no special parsing) separated by spaces, a tab, and the
 * hex of the detokenized ids (space prefix removed).  Test code only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "tokenizer.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: tok_batch VOCAB.gguf TEXTS\n");
        return 2;
    }
    colloq_err err = {{0}};
    gguf_file *f = NULL;
    colloq_vocab *v = NULL;
    char *in = NULL;
    size_t in_len = 0;
    if (gguf_open(argv[1], &f, &err) || colloq_vocab_load(f, &v, &err) ||
        colloq_read_file(argv[2], &in, &in_len, &err)) {
        fprintf(stderr, "tok_batch: %s\n", err.msg);
        return 1;
    }
    int cap = 1 << 16;
    colloq_token *ids = malloc((size_t)cap * sizeof *ids);
    char *text = malloc((size_t)cap * 8);
    if (!ids || !text) return 1;
    size_t pos = 0;
    int status = 0;
    while (pos + 4 <= in_len) {
        const unsigned char *p = (const unsigned char *)in + pos;
        size_t len = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
        pos += 4;
        if (len > in_len - pos || len > (size_t)cap) {
            fprintf(stderr, "tok_batch: bad record length %zu\n", len);
            status = 1;
            break;
        }
        int n = colloq_vocab_tokenize(v, in + pos, len, false, false, ids, cap, &err);
        pos += len;
        if (n < 0 || n > cap) {
            fprintf(stderr, "tok_batch: %s\n", n < 0 ? err.msg : "too many tokens");
            status = 1;
            break;
        }
        for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        int m = colloq_vocab_detokenize(v, ids, n, true, false, text, cap * 8);
        if (m < 0 || m > cap * 8) {
            fprintf(stderr, "tok_batch: detokenize failed (%d)\n", m);
            status = 1;
            break;
        }
        putchar('\t');
        for (int i = 0; i < m; i++) printf("%02x", (unsigned char)text[i]);
        putchar('\n');
    }
    free(ids);
    free(text);
    colloq_free(in);
    colloq_vocab_free(v);
    gguf_close(f);
    return status;
}
