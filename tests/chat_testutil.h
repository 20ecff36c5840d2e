/*
 * chat_testutil.h - helpers shared by the chat-area C tests (test_chat.c,
 * test_textstream.c, test_conversation.c): a failure counter with CHECK, and a tiny
 * random-weight model written with a given vocabulary.
 */
#ifndef CHAT_TESTUTIL_H
#define CHAT_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "colloq.h"
#include "mkmodel.h"
#include "quant.h"
#include "util.h"

static int failures;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            failures++;                                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);           \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
        }                                                                  \
    } while (0)

/* The path of a shared test file, or exit 77 (skipped) when ../shared is absent. */
static inline const char *shared_file(const char *shared_dir, const char *rel, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s", shared_dir, rel);
    if (access(buf, R_OK) != 0) {
        printf("skipped: %s is not readable (shared test data absent)\n", buf);
        exit(77);
    }
    return buf;
}

/* Write a tiny random model (Q8_0) with the vocabulary of vocab_path to dir/name and
 * load it.  Returns NULL (after a failed CHECK) on error. */
static inline colloq_model *tiny_model(const char *dir, const char *name, const char *vocab_path, uint64_t seed) {
    char path[1024];
    mkdir(dir, 0777);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    colloq_err err = { "" };
    colloq_mkmodel_params p;
    colloq_mkmodel_shape("tiny", &p, &err);
    p.type = CT_Q8_0;
    p.seed = seed;
    p.vocab_path = vocab_path;
    p.n_threads = 1;
    int rc = colloq_mkmodel_write(&p, path, &err);
    CHECK(rc == COLLOQ_OK, "mkmodel %s: %s", path, err.msg);
    if (rc) return NULL;
    colloq_model_params mp = colloq_model_default_params();
    mp.n_threads = 1;
    colloq_model *m = NULL;
    rc = colloq_model_load(path, &mp, &m, &err);
    CHECK(rc == COLLOQ_OK, "load %s: %s", path, err.msg);
    return rc ? NULL : m;
}

#endif
