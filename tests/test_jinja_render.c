/*
 * test_jinja_render - renders a chat template with JSON contexts.
 *
 *   test_jinja_render [--now EPOCH] TEMPLATE CONTEXT.json
 *       prints the rendered text to stdout, or the error to stderr and exits 1
 *   test_jinja_render [--now EPOCH] --jsonl TEMPLATE CONTEXTS.jsonl
 *       one JSON object per input line: {"ok":true,"out":...} or
 *       {"ok":false,"raised":bool,"error":...}; exits 0 unless the files are unusable
 *
 * --now fixes strftime_now() to EPOCH seconds, formatted in UTC.
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"
#include "util.h"

static int render_one(const jinja_template *t, const char *ctx_text, size_t n, const jinja_render_opts *o,
                      char **out, size_t *out_len, colloq_err *err) {
    jinja_value *ctx = jinja_value_from_json_text(ctx_text, n, err);
    if (!ctx) return -1000;
    int rc = jinja_render_ex(t, ctx, o, out, out_len, err);
    jinja_value_free(ctx);
    return rc;
}

/* a JSON string of msg, dropping a code point cut by the message buffer's end */
static json_t *msg_string(const char *msg) {
    size_t n = strlen(msg), ok = 0;
    while (ok < n) {
        int k = colloq_utf8_seq_len((const unsigned char *)msg + ok, n - ok);
        if (k <= 0) break;
        ok += (size_t)k;
    }
    return json_stringn(msg, ok);
}

int main(int argc, char **argv) {
    jinja_render_opts o = { 0 };
    bool jsonl = false;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        if (!strcmp(argv[i], "--jsonl")) jsonl = true;
        else if (!strcmp(argv[i], "--now") && i + 1 < argc) {
            o.now = strtoll(argv[++i], NULL, 10);
            o.now_set = true;
            o.utc = true;
        } else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (argc - i != 2) {
        fprintf(stderr, "usage: %s [--now EPOCH] [--jsonl] TEMPLATE CONTEXT\n", argv[0]);
        return 2;
    }
    colloq_err err = { { 0 } };
    char *src = NULL;
    size_t src_len = 0;
    if (colloq_read_file(argv[i], &src, &src_len, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    jinja_template *t = jinja_parse(src, src_len, &err);
    colloq_free(src);
    if (!jsonl) {
        if (!t) { fprintf(stderr, "%s\n", err.msg); return 1; }
        char *ctx = NULL;
        size_t ctx_len = 0;
        if (colloq_read_file(argv[i + 1], &ctx, &ctx_len, &err) != 0) {
            fprintf(stderr, "%s\n", err.msg);
            jinja_template_free(t);
            return 2;
        }
        char *out = NULL;
        size_t out_len = 0;
        int rc = render_one(t, ctx, ctx_len, &o, &out, &out_len, &err);
        colloq_free(ctx);
        jinja_template_free(t);
        if (rc != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
        fwrite(out, 1, out_len, stdout);
        colloq_free(out);
        return 0;
    }
    FILE *f = fopen(argv[i + 1], "rb");
    if (!f) { perror(argv[i + 1]); jinja_template_free(t); return 2; }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    char parse_msg[sizeof err.msg];
    snprintf(parse_msg, sizeof parse_msg, "%s", t ? "" : err.msg);
    while ((n = getline(&line, &cap, f)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (n == 0) continue;
        json_t *res = json_object();
        if (!t) {
            json_object_set_new(res, "ok", json_false());
            json_object_set_new(res, "raised", json_false());
            json_object_set_new(res, "error", msg_string(parse_msg));
        } else {
            char *out = NULL;
            size_t out_len = 0;
            int rc = render_one(t, line, (size_t)n, &o, &out, &out_len, &err);
            if (rc == 0) {
                json_object_set_new(res, "ok", json_true());
                json_object_set_new(res, "out", json_stringn(out, out_len));
                colloq_free(out);
            } else {
                json_object_set_new(res, "ok", json_false());
                json_object_set_new(res, "raised", json_boolean(rc == COLLOQ_ERR_ARG));
                json_object_set_new(res, "error", msg_string(err.msg));
            }
        }
        char *txt = json_dumps(res, JSON_COMPACT);
        if (txt) { fputs(txt, stdout); fputc('\n', stdout); free(txt); }
        json_decref(res);
    }
    free(line);
    fclose(f);
    jinja_template_free(t);
    return 0;
}
