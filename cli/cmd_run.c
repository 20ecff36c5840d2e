/*
 * cmd_run.c - `colloq run`: load a model, evaluate a prompt, sample and stream the
 * generated text (whole UTF-8 characters only), report timings; optionally one JSON
 * object instead of text, and every evaluated position's logits to a file.
 * Argument parsing and printing only: inference is the library's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "colloq.h"
#include "textstream.h"
#include "util.h"

typedef struct {
    const char *model, *prompt, *prompt_file, *dump_path;
    long  n_predict;
    cli_gen_opts g;               /* sampling, threads, context, batch, cache type */
    bool  json, verbose, ignore_eos;
} run_opts;

static void usage(FILE *out) {
    fprintf(out,
        "usage: colloq run -m MODEL.gguf (-p TEXT | -f FILE) [options]\n"
        "\n"
        "  -n, --n-predict N        tokens to generate (default 128; -1 = until end of text or context)\n"
        "  --temp T                 temperature (default 0.8; 0 = greedy)\n"
        "  --seed S                 sampling seed (default: from the clock)\n"
        "  --top-k K                keep the K most likely tokens (default 40; 0 = off)\n"
        "  --top-p P                keep the smallest set with probability >= P (default 0.95; 1 = off)\n"
        "  --min-p P                drop tokens less likely than P x the best (default 0.05; 0 = off)\n"
        "  --repeat-penalty R       penalise recent tokens (default 1 = off)\n"
        "  --repeat-last-n N        window of recent tokens for the penalties (default 64)\n"
        "  --presence-penalty P     subtract P from recent tokens' logits (default 0)\n"
        "  --frequency-penalty F    subtract F x count from recent tokens' logits (default 0)\n"
        "  -t, --threads N          threads (default: physical cores)\n"
        "  -c, --ctx N              context size (default: the model's, at most 4096)\n"
        "  -b, --batch N            prompt tokens evaluated per call (default 512)\n"
        "  --cache-type f16|f32|q8_0  KV cache element type (default f16)\n"
        "  --ignore-eos             keep generating after end-of-text tokens\n"
        "  --json                   print only one JSON object: prompt_ids, ids (generated, including\n"
        "                           an end-of-text token that stopped generation), text, stop\n"
        "                           (\"length\", \"eog\" or \"context\"), timings\n"
        "  --dump-logits FILE       write the logits of every evaluated position (float32 LE rows)\n"
        "  --verbose                model load details and memory use on stderr\n");
}

static bool is_opt(const char *a, const char *name, const char *alias) {
    return !strcmp(a, name) || (alias && !strcmp(a, alias));
}

/* Returns 0 ok, 2 usage error (message printed), 1 for --help (caller exits 0). */
static int parse_args(int argc, char **argv, run_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_predict = 128;
    cli_gen_defaults(&o->g, 512);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
#define VALUE() do { if (!v) { fprintf(stderr, "colloq run: %s needs a value\n", a); return 2; } i++; } while (0)
#define IS(s1, s2) is_opt(a, s1, s2)
        bool used;
        int gen = cli_gen_opt("run", a, v, &o->g, &used);
        if (gen < 0) return 2;
        if (gen > 0) { i += used; continue; }
        if (IS("-h", "--help")) { usage(stdout); return 1; }
        else if (IS("-m", "--model")) { VALUE(); o->model = v; }
        else if (IS("-p", "--prompt")) { VALUE(); o->prompt = v; }
        else if (IS("-f", "--file")) { VALUE(); o->prompt_file = v; }
        else if (IS("-n", "--n-predict")) { VALUE(); ok = cli_parse_int("run", a, v, -1, 1 << 24, &o->n_predict); }
        else if (IS("--ignore-eos", NULL)) o->ignore_eos = true;
        else if (IS("--json", NULL)) o->json = true;
        else if (IS("--dump-logits", NULL)) { VALUE(); o->dump_path = v; }
        else if (IS("--verbose", "-v")) o->verbose = true;
        else { fprintf(stderr, "colloq run: unknown option '%s'\n", a); usage(stderr); return 2; }
        if (!ok) return 2;
#undef VALUE
#undef IS
    }
    if (!o->model) { fprintf(stderr, "colloq run: -m MODEL.gguf is required\n"); usage(stderr); return 2; }
    if (!o->prompt == !o->prompt_file) { fprintf(stderr, "colloq run: give exactly one of -p TEXT and -f FILE\n"); return 2; }
    cli_gen_finish(&o->g);
    return 0;
}

/* ---- logits dump ---- */

static bool dump_rows(FILE *fp, const float *rows, size_t n_floats) {
    const union { uint16_t u; uint8_t b[2]; } probe = { 1 };
    if (probe.b[0]) return fwrite(rows, sizeof(float), n_floats, fp) == n_floats;
    for (size_t i = 0; i < n_floats; i++) {              /* big-endian host: write LE bytes */
        uint32_t u;
        memcpy(&u, &rows[i], 4);
        uint8_t b[4] = { (uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24) };
        if (fwrite(b, 1, 4, fp) != 4) return false;
    }
    return true;
}

/* ---- the run ---- */

typedef struct {
    colloq_model *m;
    colloq_seq *seq;
    colloq_sampler *smp;
    colloq_token *prompt, *gen;
    float *logits;
    FILE *dump;
    colloq_textstream *text;   /* whole UTF-8 characters only (textstream.c) */
} run_state;

static void run_free(run_state *r) {
    colloq_sampler_free(r->smp);
    colloq_seq_free(r->seq);
    colloq_model_free(r->m);
    free(r->prompt);
    free(r->gen);
    free(r->logits);
    colloq_textstream_free(r->text);
    if (r->dump) fclose(r->dump);
}

static int tokenize_prompt(run_state *r, const char *text, size_t len, int *n_out) {
    colloq_err err = { { 0 } };
    int cap = (int)(len < (1u << 24) ? len : (1u << 24)) + 16;
    for (int attempt = 0; attempt < 2; attempt++) {
        free(r->prompt);
        r->prompt = malloc((size_t)cap * sizeof *r->prompt);
        if (!r->prompt) { fprintf(stderr, "colloq run: out of memory\n"); return 1; }
        int n = colloq_tokenize(r->m, text, len, colloq_model_add_bos(r->m), true, r->prompt, cap, &err);
        if (n < 0) { fprintf(stderr, "colloq run: tokenizing the prompt: %s\n", err.msg); return 1; }
        if (n <= cap) { *n_out = n; return 0; }
        cap = n;
    }
    fprintf(stderr, "colloq run: tokenizer count changed between calls\n");
    return 1;
}

static double per_s(long n, double ms) { return ms > 0 ? (double)n * 1000.0 / ms : 0.0; }

static int print_json(const run_state *r, int n_prompt, int n_gen, double prompt_ms, double gen_ms, const char *stop) {
    json_t *o = json_object(), *pi = json_array(), *ids = json_array(), *tm = json_object();
    int bad = !o || !pi || !ids || !tm;
    for (int i = 0; !bad && i < n_prompt; i++) bad |= json_array_append_new(pi, json_integer(r->prompt[i]));
    for (int i = 0; !bad && i < n_gen; i++) bad |= json_array_append_new(ids, json_integer(r->gen[i]));
    if (!bad) {
        bad |= json_object_set_new(tm, "prompt_ms", json_real(prompt_ms));
        bad |= json_object_set_new(tm, "prompt_tok_s", json_real(per_s(n_prompt, prompt_ms)));
        bad |= json_object_set_new(tm, "gen_ms", json_real(gen_ms));
        bad |= json_object_set_new(tm, "gen_tok_s", json_real(per_s(n_gen, gen_ms)));
        bad |= json_object_set_new(o, "prompt_ids", pi);
        bad |= json_object_set_new(o, "ids", ids);
        size_t len;
        const char *text = colloq_textstream_text(r->text, &len);
        bad |= json_object_set_new(o, "text", json_stringn(text, len));
        bad |= json_object_set_new(o, "stop", json_string(stop));
        bad |= json_object_set_new(o, "timings", tm);
        pi = ids = tm = NULL;
    }
    if (!bad) bad = json_dumpf(o, stdout, JSON_COMPACT) != 0;
    if (!bad) { fputc('\n', stdout); fflush(stdout); }
    json_decref(o); json_decref(pi); json_decref(ids); json_decref(tm);
    if (bad) { fprintf(stderr, "colloq run: cannot build the JSON output\n"); return 1; }
    return 0;
}

static int generate(run_state *r, const run_opts *o, const char *text, size_t text_len) {
    colloq_err err = { { 0 } };
    colloq_model_params mp = colloq_model_default_params();
    mp.n_threads = (int)o->g.threads;
    mp.verbose = o->verbose;
    double t_load = colloq_now();
    if (colloq_model_load(o->model, &mp, &r->m, &err) != COLLOQ_OK) {
        fprintf(stderr, "colloq run: %s\n", err.msg);
        return 1;
    }
    colloq_seq_params qp = colloq_seq_default_params();
    qp.n_ctx = (int)o->g.n_ctx;
    qp.cache_type = o->g.cache_type;
    if (colloq_seq_init(r->m, &qp, &r->seq, &err) != COLLOQ_OK) { fprintf(stderr, "colloq run: %s\n", err.msg); return 1; }
    int n_vocab = colloq_model_n_vocab(r->m), n_ctx = colloq_seq_n_ctx(r->seq);
    if (colloq_sampler_init(&o->g.sp, n_vocab, &r->smp, &err) != COLLOQ_OK) {
        fprintf(stderr, "colloq run: %s\n", err.msg);
        return 2;
    }
    int n_prompt = 0;
    if (tokenize_prompt(r, text, text_len, &n_prompt)) return 1;
    if (n_prompt == 0) { fprintf(stderr, "colloq run: the prompt has no tokens\n"); return 1; }
    if (n_prompt > n_ctx) {
        fprintf(stderr, "colloq run: the prompt has %d tokens, more than the context of %d (use --ctx)\n", n_prompt, n_ctx);
        return 1;
    }
    /* The last sampled token is never evaluated, so a full context holds n_ctx - n_prompt + 1. */
    long max_gen = (long)n_ctx - n_prompt + 1;
    if (o->n_predict >= 0 && o->n_predict < max_gen) max_gen = o->n_predict;
    int batch = r->dump ? (int)o->g.batch : 1;   /* rows of logits the buffer holds */
    r->gen = malloc((size_t)(max_gen > 0 ? max_gen : 1) * sizeof *r->gen);
    r->logits = malloc((size_t)batch * (size_t)n_vocab * sizeof(float));
    if (!r->gen || !r->logits) { fprintf(stderr, "colloq run: out of memory\n"); return 1; }
    if (o->verbose) {
        fprintf(stderr, "colloq run: %s loaded in %.0f ms: %s, %d tokens in the vocabulary, training context %d\n",
                o->model, (colloq_now() - t_load) * 1000.0, colloq_model_arch(r->m), n_vocab, colloq_model_n_ctx_train(r->m));
        double mib = 1024.0 * 1024.0, packed = (double)colloq_model_packed_bytes(r->m) / mib,
               seqmem = (double)colloq_seq_memory(r->seq) / mib;
        fprintf(stderr, "colloq run: context %d, memory beyond the mmapped weights: %.1f MiB "
                "(packed weight copies %.1f MiB + KV cache and buffers %.1f MiB)\n",
                n_ctx, packed + seqmem, packed, seqmem);
        fprintf(stderr, "colloq run: sampler: temp %g, top-k %d, top-p %g, min-p %g, repeat penalty %g (last %d), "
                "presence %g, frequency %g, seed %llu\n", (double)o->g.sp.temperature, o->g.sp.top_k, (double)o->g.sp.top_p,
                (double)o->g.sp.min_p, (double)o->g.sp.repeat_penalty, o->g.sp.repeat_last_n, (double)o->g.sp.presence_penalty,
                (double)o->g.sp.frequency_penalty, (unsigned long long)o->g.sp.seed);
        fprintf(stderr, "colloq run: prompt: %d tokens\n", n_prompt);
    }

    /* prompt */
    double t0 = colloq_now();
    for (int i = 0; i < n_prompt; i += (int)o->g.batch) {
        int n = n_prompt - i < o->g.batch ? n_prompt - i : (int)o->g.batch;
        if (colloq_seq_eval(r->seq, r->prompt + i, n, r->logits, r->dump != NULL, &err) != COLLOQ_OK) {
            fprintf(stderr, "colloq run: evaluating the prompt: %s\n", err.msg);
            return 1;
        }
        if (r->dump && !dump_rows(r->dump, r->logits, (size_t)n * (size_t)n_vocab)) {
            fprintf(stderr, "colloq run: writing %s failed\n", o->dump_path);
            return 1;
        }
        if (r->dump && i + n == n_prompt && n > 1)   /* the last row is the one to sample from */
            memmove(r->logits, r->logits + (size_t)(n - 1) * (size_t)n_vocab, (size_t)n_vocab * sizeof(float));
    }
    for (int i = 0; i < n_prompt; i++) colloq_sampler_accept(r->smp, r->prompt[i]);
    double t1 = colloq_now();

    /* generation */
    const char *stop = "length";
    int n_gen = 0;
    r->text = colloq_textstream_new(r->m, NULL, 0, false);
    if (!r->text) { fprintf(stderr, "colloq run: out of memory\n"); return 1; }
    const char *out;
    size_t out_len;
    while (n_gen < max_gen) {
        colloq_token t = colloq_sampler_sample(r->smp, r->logits);
        r->gen[n_gen++] = t;
        colloq_sampler_accept(r->smp, t);
        if (!o->ignore_eos && colloq_token_is_eog(r->m, t)) { stop = "eog"; break; }
        if (colloq_textstream_push(r->text, t, &out, &out_len, NULL) != COLLOQ_OK) {
            fprintf(stderr, "\ncolloq run: out of memory for the output text\n");
            return 1;
        }
        if (!o->json && out_len) { fwrite(out, 1, out_len, stdout); fflush(stdout); }
        if (o->n_predict >= 0 && n_gen >= o->n_predict) break;
        if (colloq_seq_n_past(r->seq) >= n_ctx) { stop = "context"; break; }
        if (colloq_seq_eval(r->seq, &t, 1, r->logits, false, &err) != COLLOQ_OK) {
            fprintf(stderr, "\ncolloq run: evaluating token %d: %s\n", n_gen, err.msg);
            return 1;
        }
        if (r->dump && !dump_rows(r->dump, r->logits, (size_t)n_vocab)) {
            fprintf(stderr, "colloq run: writing %s failed\n", o->dump_path);
            return 1;
        }
    }
    if (colloq_textstream_flush(r->text, &out, &out_len) != COLLOQ_OK) {
        fprintf(stderr, "colloq run: out of memory for the output text\n");
        return 1;
    }
    if (!o->json && out_len) fwrite(out, 1, out_len, stdout);
    double t2 = colloq_now();
    if (r->dump && fflush(r->dump) != 0) { fprintf(stderr, "colloq run: writing %s failed\n", o->dump_path); return 1; }

    double prompt_ms = (t1 - t0) * 1000.0, gen_ms = (t2 - t1) * 1000.0;
    if (!o->json) { fputc('\n', stdout); fflush(stdout); }
    if (!strcmp(stop, "context")) fprintf(stderr, "colloq run: context of %d tokens is full\n", n_ctx);
    fprintf(stderr, "colloq run: prompt %d tokens in %.1f ms (%.2f tok/s), generated %d tokens in %.1f ms (%.2f tok/s)\n",
            n_prompt, prompt_ms, per_s(n_prompt, prompt_ms), n_gen, gen_ms, per_s(n_gen, gen_ms));
    if (o->json) return print_json(r, n_prompt, n_gen, prompt_ms, gen_ms, stop);
    return 0;
}

int cmd_run(int argc, char **argv) {
    run_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc == 1 ? 0 : rc;
    if (o.verbose && colloq_log_level < 1) colloq_log_level = 1;

    char *file_text = NULL;
    size_t text_len = 0;
    const char *text = o.prompt;
    if (o.prompt_file) {
        colloq_err err = { { 0 } };
        if (colloq_read_file(o.prompt_file, &file_text, &text_len, &err) != COLLOQ_OK) {
            fprintf(stderr, "colloq run: %s\n", err.msg);
            return 1;
        }
        text = file_text;
    } else {
        text_len = strlen(text);
    }

    run_state r;
    memset(&r, 0, sizeof r);
    if (o.dump_path) {
        r.dump = fopen(o.dump_path, "wb");
        if (!r.dump) {
            fprintf(stderr, "colloq run: cannot open %s: %s\n", o.dump_path, strerror(errno));
            colloq_free(file_text);
            return 1;
        }
    }
    rc = generate(&r, &o, text, text_len);
    if (r.dump && fclose(r.dump) != 0 && rc == 0) {
        fprintf(stderr, "colloq run: writing %s failed\n", o.dump_path);
        rc = 1;
    }
    r.dump = NULL;
    run_free(&r);
    colloq_free(file_text);
    return rc;
}
