/*
 * test_conversation - conversations over one sequence (src/conversation.c) on a tiny
 * random model: a second turn evaluates only its new tokens and the cache then holds the
 * same text as a fresh tokenization, with the same greedy continuation as a fresh
 * evaluation; the context-full policies (drop-oldest keeps the system prompt and says
 * so, shift leaves half the context, error refuses and adds nothing); cancelling; stop
 * strings through the model; system prompt, reset and load.
 *
 *   test_conversation TMPDIR SHARED_DIR      (exits 77 when SHARED_DIR is absent)
 */
#include <jansson.h>

#include "chat_testutil.h"
#include "conversation.h"
#include "model.h"

static colloq_model *model;

typedef struct {
    colloq_seq *seq;
    colloq_chat_fmt *fmt;
    colloq_sampler *smp;
    colloq_conv *conv;
} rig;

static void rig_free(rig *r) {
    colloq_conv_free(r->conv);
    colloq_sampler_free(r->smp);
    colloq_chat_fmt_free(r->fmt);
    colloq_seq_free(r->seq);
    memset(r, 0, sizeof *r);
}

static bool rig_init(rig *r, const char *format, int n_ctx, colloq_overflow ov, int n_predict, const char *const *stops,
                     int n_stops) {
    memset(r, 0, sizeof *r);
    colloq_err err = { "" };
    colloq_seq_params qp = colloq_seq_default_params();
    qp.n_ctx = n_ctx;
    colloq_sampler_params sp = colloq_sampler_default_params();
    sp.temperature = 0;   /* greedy: deterministic and comparable with a fresh evaluation */
    colloq_conv_params cp = colloq_conv_default_params();
    cp.overflow = ov;
    cp.n_predict = n_predict;
    cp.batch = 16;        /* several evaluation calls per prompt */
    cp.stops = stops;
    cp.n_stops = n_stops;
    int rc = colloq_seq_init(model, &qp, &r->seq, &err);
    if (!rc) rc = colloq_chat_fmt_init(model, format, &r->fmt, &err);
    if (!rc) rc = colloq_sampler_init(&sp, colloq_model_n_vocab(model), &r->smp, &err);
    if (!rc) rc = colloq_conv_new(model, r->seq, r->fmt, &cp, &r->conv, &err);
    CHECK(rc == 0, "rig: %s", err.msg);
    if (rc) rig_free(r);
    return rc == 0;
}

typedef struct { char text[8192]; size_t n; int calls; int stop_after; volatile sig_atomic_t *flag; } sink;

static int collect(void *ud, const char *text, size_t len) {
    sink *s = ud;
    if (s->n + len < sizeof s->text) { memcpy(s->text + s->n, text, len); s->n += len; s->text[s->n] = 0; }
    s->calls++;
    if (s->flag && s->calls == s->stop_after) *s->flag = 1;       /* as if Ctrl-C came now */
    return s->flag == NULL && s->stop_after && s->calls >= s->stop_after;
}

static int turn(rig *r, const char *text, colloq_conv_stats *st, sink *out, const volatile sig_atomic_t *cancel,
                colloq_err *err) {
    sink local = { .n = 0 };
    sink *s = out ? out : &local;
    int rc = colloq_conv_turn(r->conv, text, r->smp, collect, s, cancel, st, err);
    return rc;
}

static const char *last_content(const rig *r) {
    const json_t *m = colloq_conv_messages(r->conv);
    return json_string_value(json_object_get(json_array_get(m, json_array_size(m) - 1), "content"));
}

/* The messages the last turn's prompt was rendered from (visible, without its answer). */
static json_t *prompt_messages(const rig *r, bool drop_answer) {
    const json_t *all = colloq_conv_messages(r->conv);
    json_t *v = json_array();
    size_t ns = 0;
    while (ns < json_array_size(all) &&
           !strcmp(json_string_value(json_object_get(json_array_get(all, ns), "role")), "system")) ns++;
    size_t end = json_array_size(all) - (drop_answer ? 1 : 0);
    for (size_t i = 0; i < end; i++)
        if (i < ns || i >= ns + (size_t)colloq_conv_n_hidden(r->conv)) json_array_append(v, json_array_get(all, i));
    return v;
}

static char *render_msgs(const rig *r, const json_t *msgs, size_t *n) {
    char *out = NULL;
    colloq_err err = { "" };
    int rc = colloq_chat_render(r->fmt, msgs, NULL, true, &out, n, &err);
    CHECK(rc == 0, "render: %s", err.msg);
    return out;
}

static int tokenize(const char *text, size_t n, bool bos, colloq_token *out, int cap) {
    colloq_err err = { "" };
    int k = colloq_tokenize(model, text, n, bos, true, out, cap, &err);
    CHECK(k >= 0 && k <= cap, "tokenize: %d %s", k, err.msg);
    return k;
}

static int detok(const colloq_token *t, int n, char *buf, int cap) {
    int k = colloq_vocab_detokenize(model->vocab, t, n, false, true, buf, cap - 1);
    CHECK(k >= 0 && k < cap, "detokenize: %d", k);
    if (k >= 0 && k < cap) buf[k] = 0;
    return k;
}

/* The cached prompt stands for the same text as a fresh tokenization of the prompt. */
static void check_cache_text(const rig *r, const colloq_conv_stats *st, const char *what) {
    json_t *msgs = prompt_messages(r, true);
    size_t nP = 0;
    char *P = render_msgs(r, msgs, &nP);
    json_decref(msgs);
    if (!P) return;
    static colloq_token full[8192];
    static char a[65536], b[65536];
    int nf = tokenize(P, nP, !colloq_chat_fmt_has_bos(r->fmt), full, 8192);
    int nc = 0;
    const colloq_token *cache = colloq_conv_cache_tokens(r->conv, &nc);
    CHECK(nc >= st->n_prompt, "%s: cache %d < prompt %d", what, nc, st->n_prompt);
    int la = detok(cache, st->n_prompt, a, sizeof a), lb = detok(full, nf, b, sizeof b);
    CHECK(la == lb && !memcmp(a, b, (size_t)la), "%s: the cached prompt reads\n%s\n--- but the prompt is\n%s", what, a, b);
    colloq_free(P);
}

/* The generated tokens in the cache are what greedy decoding gives after a fresh
 * evaluation of the cached prompt. */
static void check_fresh_greedy(const rig *r, const colloq_conv_stats *st, const char *what) {
    int nc = 0;
    const colloq_token *cache = colloq_conv_cache_tokens(r->conv, &nc);
    colloq_err err = { "" };
    colloq_seq *s = NULL;
    colloq_seq_params qp = colloq_seq_default_params();
    qp.n_ctx = colloq_seq_n_ctx(r->seq);
    if (colloq_seq_init(model, &qp, &s, &err)) { CHECK(0, "%s", err.msg); return; }
    int nv = colloq_model_n_vocab(model);
    float *logits = malloc((size_t)nv * sizeof *logits);
    CHECK(colloq_seq_eval(s, cache, st->n_prompt, logits, false, &err) == 0, "fresh eval: %s", err.msg);
    for (int i = st->n_prompt; i < nc; i++) {
        int best = 0;
        for (int v = 1; v < nv; v++) if (logits[v] > logits[best]) best = v;
        CHECK(best == cache[i], "%s: generated token %d is %d, a fresh evaluation gives %d", what, i - st->n_prompt,
              cache[i], best);
        if (best != cache[i]) break;
        colloq_seq_eval(s, &cache[i], 1, logits, false, &err);
    }
    free(logits);
    colloq_seq_free(s);
}

static bool clean(const char *s) { return !strstr(s, "\xef\xbf\xbd"); }

/* ------------------------------------------------------------ KV reuse across turns */

static void test_reuse(void) {
    rig r;
    if (!rig_init(&r, "zephyr", 512, COLLOQ_OVERFLOW_DROP_OLDEST, 8, NULL, 0)) return;
    colloq_err err = { "" };
    CHECK(colloq_conv_set_system(r.conv, "You are a test.", &err) == 0, "set system");
    colloq_conv_stats s1, s2, s3;
    CHECK(turn(&r, "Hello there", &s1, NULL, NULL, &err) == 0, "turn 1: %s", err.msg);
    CHECK(s1.n_reused == 0 && s1.n_evaluated == s1.n_prompt && s1.n_prompt > 10, "turn 1: prompt %d reused %d eval %d",
          s1.n_prompt, s1.n_reused, s1.n_evaluated);
    CHECK(s1.n_generated >= 1 && s1.n_generated <= 8, "turn 1 generated %d", s1.n_generated);
    CHECK(s1.n_cache == s1.n_prompt + s1.n_generated - !strcmp(s1.stop, "eog"), "turn 1: cache %d", s1.n_cache);
    check_cache_text(&r, &s1, "turn 1");
    check_fresh_greedy(&r, &s1, "turn 1");
    char answer1[4096];
    snprintf(answer1, sizeof answer1, "%s", last_content(&r));
    json_t *m1 = prompt_messages(&r, true);
    size_t nP1 = 0;
    char *P1 = render_msgs(&r, m1, &nP1);
    json_decref(m1);

    CHECK(turn(&r, "How are you?", &s2, NULL, NULL, &err) == 0, "turn 2: %s", err.msg);
    CHECK(s2.n_reused + s2.n_evaluated == s2.n_prompt, "turn 2: %d + %d != %d", s2.n_reused, s2.n_evaluated, s2.n_prompt);
    CHECK(s2.n_reused >= s1.n_prompt, "turn 2 reused %d of turn 1's %d prompt tokens", s2.n_reused, s1.n_prompt);
    if (clean(answer1)) {
        /* everything cached is reused and only the new text is evaluated */
        json_t *m2 = prompt_messages(&r, true);
        size_t nP2 = 0;
        char *P2 = render_msgs(&r, m2, &nP2);
        json_decref(m2);
        size_t na = strlen(answer1);
        CHECK(P2 && P1 && nP2 > nP1 + na && !memcmp(P2, P1, nP1) && !memcmp(P2 + nP1, answer1, na),
              "turn 2's prompt does not extend turn 1's prompt and answer");
        colloq_token t[1024];
        int n_new = P2 ? tokenize(P2 + nP1 + na, nP2 - nP1 - na, false, t, 1024) : -1;
        CHECK(s2.n_reused == s1.n_cache, "turn 2 reused %d, the cache held %d", s2.n_reused, s1.n_cache);
        CHECK(s2.n_evaluated == n_new, "turn 2 evaluated %d tokens, its new text has %d", s2.n_evaluated, n_new);
        colloq_free(P2);
    } else {
        printf("note: turn 1's answer is not clean UTF-8; checked the weaker reuse bound only\n");
    }
    colloq_free(P1);
    check_cache_text(&r, &s2, "turn 2");
    check_fresh_greedy(&r, &s2, "turn 2");
    CHECK(turn(&r, "And a third message with ünïcödé 你好", &s3, NULL, NULL, &err) == 0, "turn 3: %s", err.msg);
    CHECK(s3.n_reused >= s2.n_prompt && s3.n_evaluated < s3.n_prompt / 2, "turn 3: reused %d evaluated %d",
          s3.n_reused, s3.n_evaluated);
    check_cache_text(&r, &s3, "turn 3");
    check_fresh_greedy(&r, &s3, "turn 3");

    /* a new system prompt: the cache diverges at the start, everything is evaluated again */
    colloq_conv_stats s4;
    CHECK(colloq_conv_set_system(r.conv, "Another system prompt.", &err) == 0, "set system 2");
    CHECK(turn(&r, "Still there?", &s4, NULL, NULL, &err) == 0, "turn 4: %s", err.msg);
    CHECK(s4.n_reused < 8, "after a new system prompt %d tokens were reused", s4.n_reused);
    check_cache_text(&r, &s4, "turn 4");
    check_fresh_greedy(&r, &s4, "turn 4");
    CHECK(!strcmp(colloq_conv_system(r.conv), "Another system prompt."), "system prompt");

    /* reset keeps the system prompt, and its cached prefix is reused */
    colloq_conv_reset(r.conv);
    CHECK(json_array_size(colloq_conv_messages(r.conv)) == 1, "reset left %zu messages",
          json_array_size(colloq_conv_messages(r.conv)));
    colloq_conv_stats s5;
    CHECK(turn(&r, "Hello again", &s5, NULL, NULL, &err) == 0, "turn 5: %s", err.msg);
    CHECK(s5.n_reused >= 8, "after /reset the system prefix was not reused (%d)", s5.n_reused);
    check_cache_text(&r, &s5, "turn 5");
    CHECK(colloq_conv_set_system(r.conv, NULL, &err) == 0 && !colloq_conv_system(r.conv), "clear system");
    rig_free(&r);
}

/* ------------------------------------------------------------ context-full policies */

static void long_message(char *buf, size_t cap, int i) {
    snprintf(buf, cap, "Message number %d: please tell me a long story about the river, the mountain and the "
             "city of %d lanterns.", i, i * 7);
}

static void test_overflow(colloq_overflow ov) {
    const char *name = colloq_overflow_name(ov);
    rig r;
    if (!rig_init(&r, "zephyr", 160, ov, 8, NULL, 0)) return;
    colloq_err err = { "" };
    colloq_conv_set_system(r.conv, "Keep this system prompt.", &err);
    bool dropped = false;
    int turns_done = 0;
    for (int i = 0; i < 8; i++) {
        char msg[256];
        long_message(msg, sizeof msg, i);
        colloq_conv_stats st;
        size_t before = json_array_size(colloq_conv_messages(r.conv));
        int rc = turn(&r, msg, &st, NULL, NULL, &err);
        if (ov == COLLOQ_OVERFLOW_ERROR && rc != 0) {
            CHECK(rc == COLLOQ_ERR_CONTEXT && strstr(err.msg, "does not fit"), "error policy: %d %s", rc, err.msg);
            CHECK(json_array_size(colloq_conv_messages(r.conv)) == before, "error policy added the refused message");
            CHECK(i >= 1, "error policy refused the first turn");
            dropped = true;
            break;
        }
        CHECK(rc == 0, "%s turn %d: %s", name, i, err.msg);
        if (rc) break;
        turns_done++;
        CHECK(st.n_prompt + 1 <= 160 && st.n_cache <= 160, "%s turn %d: prompt %d cache %d", name, i, st.n_prompt,
              st.n_cache);
        check_cache_text(&r, &st, name);
        if (st.n_dropped) {
            dropped = true;
            CHECK(ov != COLLOQ_OVERFLOW_ERROR, "error policy dropped messages");
            CHECK(st.n_dropped % 2 == 0, "%s dropped %d messages (not whole turns)", name, st.n_dropped);
            CHECK(strstr(st.notice, "system prompt is kept") && strstr(st.notice, name), "%s notice: '%s'", name,
                  st.notice);
            CHECK(st.n_reused >= 8, "%s: the system prompt's cache was not reused (%d)", name, st.n_reused);
            if (ov == COLLOQ_OVERFLOW_SHIFT) CHECK(st.n_prompt <= 80, "shift: prompt %d > half the context", st.n_prompt);
            char *P = NULL;
            colloq_conv_render(r.conv, false, &P, NULL, &err);
            CHECK(P && !strncmp(P, "<|system|>\nKeep this system prompt.</s>\n<|user|>\n", 49),
                  "%s: the prompt lost the system prompt: %.80s", name, P ? P : "");
            char first[256];
            long_message(first, sizeof first, 0);
            CHECK(P && !strstr(P, first), "%s: the oldest message is still in the prompt", name);
            colloq_free(P);
            CHECK(colloq_conv_n_hidden(r.conv) == st.n_dropped || i > 0, "hidden count");
        } else {
            CHECK(!st.notice[0] || !strcmp(st.stop, "context"), "%s turn %d: notice without a drop: %s", name, i,
                  st.notice);
        }
    }
    CHECK(dropped, "%s: the context never overflowed", name);
    /* every message is still there (for /save), some out of the prompt */
    if (ov != COLLOQ_OVERFLOW_ERROR) {
        CHECK(json_array_size(colloq_conv_messages(r.conv)) == (size_t)(1 + 2 * turns_done), "%s: %zu messages after %d turns",
              name, json_array_size(colloq_conv_messages(r.conv)), turns_done);
        CHECK(colloq_conv_n_hidden(r.conv) >= 2, "%s: nothing hidden", name);
    } else {
        /* after a reset the conversation goes on */
        colloq_conv_reset(r.conv);
        colloq_conv_stats st;
        CHECK(turn(&r, "short", &st, NULL, NULL, &err) == 0, "error policy after reset: %s", err.msg);
    }
    /* a message that cannot fit even alone is refused under every policy */
    char huge[4096] = "";
    for (int i = 0; i < 40; i++) strcat(huge, "lanterns and rivers ");
    size_t before = json_array_size(colloq_conv_messages(r.conv));
    colloq_conv_stats st;
    int rc = turn(&r, huge, &st, NULL, NULL, &err);
    CHECK(rc == COLLOQ_ERR_CONTEXT, "%s: a too long message gave %d", name, rc);
    CHECK(json_array_size(colloq_conv_messages(r.conv)) == before, "%s: the refused message was added", name);
    rig_free(&r);
}

/* ------------------------------------------------------------ cancelling */

static void test_cancel(void) {
    rig r;
    if (!rig_init(&r, "chatml", 512, COLLOQ_OVERFLOW_DROP_OLDEST, 40, NULL, 0)) return;
    colloq_err err = { "" };
    colloq_conv_stats st;
    volatile sig_atomic_t flag = 1;
    CHECK(turn(&r, "cancelled at once", &st, NULL, &flag, &err) == 0, "cancel at once: %s", err.msg);
    CHECK(!strcmp(st.stop, "cancelled") && strstr(st.notice, "not added") &&
          json_array_size(colloq_conv_messages(r.conv)) == 0, "cancel before the answer: stop %s, %zu messages", st.stop,
          json_array_size(colloq_conv_messages(r.conv)));
    /* Ctrl-C in the middle: the flag is set from the output callback */
    flag = 0;
    sink s = { .n = 0, .stop_after = 3, .flag = &flag };
    CHECK(turn(&r, "Write a long answer", &st, &s, &flag, &err) == 0, "cancel midway: %s", err.msg);
    if (!strcmp(st.stop, "eog")) {
        printf("note: the model ended its answer before the cancel\n");
    } else {
        CHECK(!strcmp(st.stop, "cancelled") && st.n_generated < 40, "cancel midway: stop %s after %d tokens", st.stop,
              st.n_generated);
        CHECK(json_array_size(colloq_conv_messages(r.conv)) == 2 && !strcmp(last_content(&r), s.text),
              "the interrupted answer kept is not what was shown");
    }
    /* the callback asks to stop */
    sink s2 = { .n = 0, .stop_after = 1 };
    CHECK(turn(&r, "Another one", &st, &s2, NULL, &err) == 0, "callback stop: %s", err.msg);
    CHECK(!strcmp(st.stop, "cancelled") || !strcmp(st.stop, "eog"), "callback stop: %s", st.stop);
    check_cache_text(&r, &st, "after cancel");
    rig_free(&r);
}

/* ------------------------------------------------------------ stop strings through the model */

static void test_stop_strings(void) {
    static const char *const prompts[] = { "Write something.", "Tell me more.", "Go on, please.", "Hello!" };
    for (size_t pi = 0; pi < sizeof prompts / sizeof prompts[0]; pi++) {
        rig r;
        if (!rig_init(&r, "chatml", 256, COLLOQ_OVERFLOW_DROP_OLDEST, 24, NULL, 0)) return;
        colloq_err err = { "" };
        colloq_conv_stats st;
        sink s = { .n = 0 };
        CHECK(turn(&r, prompts[pi], &st, &s, NULL, &err) == 0, "stop test: %s", err.msg);
        rig_free(&r);
        /* a stop string from the middle of that answer, on character boundaries */
        size_t n = s.n, from = n / 3, len;
        while (from < n && (s.text[from] & 0xc0) == 0x80) from++;
        for (len = 4; from + len < n && (s.text[from + len] & 0xc0) == 0x80; len++) {}
        if (n < 8 || from + len > n) continue;
        char stop[64];
        snprintf(stop, sizeof stop, "%.*s", (int)len, s.text + from);
        size_t first = (size_t)(strstr(s.text, stop) - s.text);
        const char *stops[] = { stop };
        if (!rig_init(&r, "chatml", 256, COLLOQ_OVERFLOW_DROP_OLDEST, 24, stops, 1)) return;
        sink s2 = { .n = 0 };
        CHECK(turn(&r, prompts[pi], &st, &s2, NULL, &err) == 0, "stop test 2: %s", err.msg);
        CHECK(!strcmp(st.stop, "stop"), "stop string '%s' did not stop (%s)", stop, st.stop);
        CHECK(s2.n == first && !memcmp(s2.text, s.text, first), "with stop '%s' the answer is '%s', want '%.*s'", stop,
              s2.text, (int)first, s.text);
        CHECK(!strcmp(last_content(&r), s2.text), "stored answer differs from the streamed one");
        /* the next turn still sees a consistent cache */
        colloq_conv_stats st2;
        CHECK(turn(&r, "next", &st2, NULL, NULL, &err) == 0, "after stop: %s", err.msg);
        check_cache_text(&r, &st2, "after a stop string");
        rig_free(&r);
        return;
    }
    CHECK(0, "no answer long enough to take a stop string from");
}

/* ------------------------------------------------------------ load */

static void test_load(void) {
    rig r;
    if (!rig_init(&r, "llama2", 256, COLLOQ_OVERFLOW_DROP_OLDEST, 4, NULL, 0)) return;
    colloq_err err = { "" };
    json_error_t je;
    json_t *good = json_loads("{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"a\"},"
                              "{\"role\":\"assistant\",\"content\":\"b\"}]}", 0, &je);
    json_t *bad_shape = json_loads("{\"msgs\":[]}", 0, &je);
    json_t *rejected = json_loads("[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"b\"}]", 0, &je);
    CHECK(colloq_conv_load(r.conv, good, &err) == 0, "load: %s", err.msg);
    CHECK(json_array_size(colloq_conv_messages(r.conv)) == 3 && !strcmp(colloq_conv_system(r.conv), "S"), "loaded");
    CHECK(colloq_conv_load(r.conv, bad_shape, &err) == COLLOQ_ERR_ARG, "bad shape accepted");
    CHECK(colloq_conv_load(r.conv, rejected, &err) == COLLOQ_ERR_ARG && strstr(err.msg, "alternate"),
          "a conversation the template rejects was accepted: %s", err.msg);
    CHECK(json_array_size(colloq_conv_messages(r.conv)) == 3, "a failed load changed the messages");
    colloq_conv_stats st;
    CHECK(turn(&r, "c", &st, NULL, NULL, &err) == 0 && json_array_size(colloq_conv_messages(r.conv)) == 5,
          "turn after load: %s", err.msg);
    check_cache_text(&r, &st, "after load");
    json_decref(good);
    json_decref(bad_shape);
    json_decref(rejected);
    rig_free(&r);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: test_conversation TMPDIR SHARED_DIR\n");
        return 2;
    }
    char vocab[1024];
    shared_file(argv[2], "testdata/vocab/ggml-vocab-llama-spm.gguf", vocab, sizeof vocab);
    model = tiny_model(argv[1], "conversation.gguf", vocab, 11);
    if (!model) return 1;
    test_reuse();
    test_overflow(COLLOQ_OVERFLOW_DROP_OLDEST);
    test_overflow(COLLOQ_OVERFLOW_SHIFT);
    test_overflow(COLLOQ_OVERFLOW_ERROR);
    test_cancel();
    test_stop_strings();
    test_load();
    colloq_model_free(model);
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("conversation: all passed\n");
    return 0;
}
