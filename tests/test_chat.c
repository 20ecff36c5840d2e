/*
 * test_chat - chat formats (src/chat.c, src/chat_builtin.c): every built-in renders its
 * documented prompt exactly; built-ins render like the templates the models ship (through
 * the Jinja engine) on several conversations; the identity rules for files without a
 * template (name, basename, special tokens, architecture) and the refusal that lists
 * the names; the model file's template; overrides; rendering errors; stops and BOS.
 *
 *   test_chat TMPDIR SHARED_DIR      (exits 77 when SHARED_DIR is absent)
 */
#include <jansson.h>

#include "chat_internal.h"
#include "chat_testutil.h"
#include "gguf.h"

static const char *shared;
static const char *tmpdir;

static json_t *J(const char *text) {
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j) fprintf(stderr, "bad test JSON: %s: %s\n", text, je.text);
    return j;
}

/* Render; returns the status and the text in *out (freed by the caller). */
static int render(const colloq_chat_fmt *f, const char *msgs, const char *tools, bool gen, char **out, colloq_err *err) {
    json_t *m = J(msgs), *t = tools ? J(tools) : NULL;
    size_t n = 0;
    *out = NULL;
    int rc = colloq_chat_render(f, m, t, gen, out, &n, err);
    if (rc == COLLOQ_OK) CHECK(strlen(*out) == n, "render: length %zu vs strlen %zu", n, strlen(*out));
    json_decref(m);
    json_decref(t);
    return rc;
}

static colloq_chat_fmt *fmt_named(const char *name) {
    colloq_chat_fmt *f = NULL;
    colloq_err err = { "" };
    int rc = chat_fmt_init_gguf(NULL, NULL, name, &f, &err);
    CHECK(rc == COLLOQ_OK, "format '%s': %s", name, err.msg);
    return f;
}

/* ------------------------------------------------------------ documented prompts */

static const char conv1[] =
    "[{\"role\":\"system\",\"content\":\"SYS\"},{\"role\":\"user\",\"content\":\"Hi\"},"
    "{\"role\":\"assistant\",\"content\":\"Hello.\"},{\"role\":\"user\",\"content\":\"Bye\"}]";

static void test_documented(void) {
    static const struct { const char *name, *want; } cases[] = {
        { "openchat", "<s>GPT4 Correct System: SYS<|end_of_turn|>GPT4 Correct User: Hi<|end_of_turn|>"
                      "GPT4 Correct Assistant: Hello.<|end_of_turn|>GPT4 Correct User: Bye<|end_of_turn|>"
                      "GPT4 Correct Assistant:" },
        { "neural-chat", "### System:\nSYS\n### User:\nHi\n### Assistant:\nHello.</s>\n### User:\nBye\n### Assistant:\n" },
        { "llama2", "<s>[INST] <<SYS>>\nSYS\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Bye [/INST]" },
        { "mistral", "<s>[INST] SYS\n\nHi [/INST]Hello.</s> [INST] Bye [/INST]" },
        { "chatml", "<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
                    "Hello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n" },
        { "zephyr", "<|system|>\nSYS</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello.</s>\n<|user|>\nBye</s>\n<|assistant|>\n" },
        { "chatglm3", "[gMASK]sop<|system|>\n SYS<|user|>\n Hi<|assistant|>\n Hello.<|user|>\n Bye<|assistant|>" },
        { "baichuan2", "SYS<reserved_106>Hi<reserved_107>Hello.<reserved_106>Bye<reserved_107>" },
        { "falcon", "System: SYS\nUser: Hi\nFalcon: Hello.\nUser: Bye\nFalcon:" },
        { "phi3", "<|system|>\nSYS<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello.<|end|>\n<|user|>\nBye<|end|>\n"
                  "<|assistant|>\n" },
        { "llama3", "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nSYS<|eot_id|>"
                    "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant"
                    "<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
                    "<|start_header_id|>assistant<|end_header_id|>\n\n" },
        { "gemma", "<bos><start_of_turn>user\nSYS\n\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n"
                   "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n" },
    };
    CHECK(chat_builtin_count() == (int)(sizeof cases / sizeof cases[0]), "%d built-ins", chat_builtin_count());
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        colloq_chat_fmt *f = fmt_named(cases[i].name);
        if (!f) continue;
        char *out = NULL;
        colloq_err err = { "" };
        int rc = render(f, conv1, NULL, true, &out, &err);
        CHECK(rc == COLLOQ_OK && !strcmp(out, cases[i].want), "%s rendered\n---\n%s\n--- want\n%s\n---", cases[i].name,
              out ? out : err.msg, cases[i].want);
        colloq_free(out);
        int ns = 0;
        const char *const *stops = colloq_chat_fmt_stops(f, &ns);
        CHECK(ns > 0 && stops && stops[ns] == NULL, "%s: no stop strings", cases[i].name);
        colloq_chat_fmt_free(f);
    }
    /* without a generation prompt */
    static const struct { const char *name, *msgs, *want; } nogen[] = {
        { "phi3", "[{\"role\":\"user\",\"content\":\"Q\"},{\"role\":\"assistant\",\"content\":\"A\"}]",
          "<|user|>\nQ<|end|>\n<|assistant|>\nA<|end|>\n<|endoftext|>" },
        { "neural-chat", "[{\"role\":\"user\",\"content\":\"Q\"}]", "### User:\nQ\n" },
        { "gemma", "[{\"role\":\"user\",\"content\":\"  Q  \"}]", "<bos><start_of_turn>user\nQ<end_of_turn>\n" },
        { "llama3", "[{\"role\":\"user\",\"content\":\" Q \"}]",
          "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|>" },
        { "mistral", "[{\"role\":\"system\",\"content\":\"S\"}]", "<s>[INST] S [/INST]" },
    };
    for (size_t i = 0; i < sizeof nogen / sizeof nogen[0]; i++) {
        colloq_chat_fmt *f = fmt_named(nogen[i].name);
        if (!f) continue;
        char *out = NULL;
        colloq_err err = { "" };
        int rc = render(f, nogen[i].msgs, NULL, false, &out, &err);
        CHECK(rc == COLLOQ_OK && !strcmp(out, nogen[i].want), "%s (no generation prompt): '%s'", nogen[i].name,
              out ? out : err.msg);
        colloq_free(out);
        colloq_chat_fmt_free(f);
    }
    /* BOS in the prompt: the tokenizer must not add another */
    static const struct { const char *name; bool has_bos; } bos[] = {
        { "llama2", true }, { "openchat", true }, { "llama3", true }, { "gemma", true }, { "mistral", true },
        { "chatml", false }, { "zephyr", false }, { "falcon", false }, { "phi3", false },
    };
    for (size_t i = 0; i < sizeof bos / sizeof bos[0]; i++) {
        colloq_chat_fmt *f = fmt_named(bos[i].name);
        CHECK(f && colloq_chat_fmt_has_bos(f) == bos[i].has_bos, "%s: has_bos should be %d", bos[i].name, bos[i].has_bos);
        colloq_chat_fmt_free(f);
    }
}

/* ------------------------------------------------------------ built-ins vs shipped templates */

static const char *const convs[] = {
    "[{\"role\":\"user\",\"content\":\"Hello\"}]",
    "[{\"role\":\"system\",\"content\":\"You are terse.\"},{\"role\":\"user\",\"content\":\"Hi\"}]",
    "[{\"role\":\"system\",\"content\":\"Be kind.\"},{\"role\":\"user\",\"content\":\" Ünïcödé 你好 😀 \"},"
    "{\"role\":\"assistant\",\"content\":\"  Sure!  \"},{\"role\":\"user\",\"content\":\"Again?\"}]",
    "[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\"},"
    "{\"role\":\"user\",\"content\":\"c\"},{\"role\":\"assistant\",\"content\":\"d\"}]",
    "[{\"role\":\"user\",\"content\":\"\"},{\"role\":\"assistant\",\"content\":\"\"},{\"role\":\"user\",\"content\":\"x\"}]",
    "[{\"role\":\"user\",\"content\":\"line1\\nline2\\n\"},{\"role\":\"assistant\",\"content\":\"ok\\n\\n\"},"
    "{\"role\":\"user\",\"content\":\"tabs\\tand \\\"quotes\\\" {{ not jinja }}\"}]",
    "[{\"role\":\"system\",\"content\":\"\"},{\"role\":\"user\",\"content\":\"empty system\"}]",
};

static void test_vs_shipped(void) {
    static const struct {
        const char *name, *file, *bos, *eos;
        bool system;            /* the shipped template accepts a system message */
        bool needs_messages;    /* the shipped template has no output for zero messages */
    } pairs[] = {
        { "openchat", "openchat-openchat_3.5.jinja", "<s>", "</s>", true, false },
        { "neural-chat", "Intel-neural-chat-7b-v3-1.jinja", "<s>", "</s>", true, false },
        { "llama2", "meta-llama-Llama-2-7b-chat-hf.jinja", "<s>", "</s>", true, false },
        { "mistral", "mistralai-Mistral-7B-Instruct-v0.1.jinja", "<s>", "</s>", false, false },
        { "zephyr", "HuggingFaceH4-zephyr-7b-beta.jinja", "<s>", "</s>", true, true },
        { "phi3", "microsoft-Phi-3.5-mini-instruct.jinja", "<s>", "<|endoftext|>", true, false },
        { "gemma", "google-gemma-2-2b-it.jinja", "<bos>", "<eos>", false, false },
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/testdata/templates/%s", shared, pairs[i].file);
        colloq_chat_fmt *b = fmt_named(pairs[i].name), *f = fmt_named(path);
        if (!b || !f) { colloq_chat_fmt_free(b); colloq_chat_fmt_free(f); continue; }
        chat_fmt_set_special(b, pairs[i].bos, pairs[i].eos);
        chat_fmt_set_special(f, pairs[i].bos, pairs[i].eos);
        int compared = 0;
        for (size_t c = 0; c < sizeof convs / sizeof convs[0]; c++) {
            if (!pairs[i].system && strstr(convs[c], "\"system\"")) continue;
            for (int gen = 0; gen < 2; gen++) {
                char *ob = NULL, *of = NULL;
                colloq_err eb = { "" }, ef = { "" };
                int rb = render(b, convs[c], NULL, gen, &ob, &eb), rf = render(f, convs[c], NULL, gen, &of, &ef);
                CHECK(rf == COLLOQ_OK, "%s rejected conversation %zu: %s", pairs[i].file, c, ef.msg);
                if (rf == COLLOQ_OK) {
                    CHECK(rb == COLLOQ_OK && !strcmp(ob, of), "built-in %s differs from %s on conversation %zu (gen %d)"
                          "\n--- built-in\n%s\n--- shipped\n%s\n---", pairs[i].name, pairs[i].file, c, gen,
                          ob ? ob : eb.msg, of);
                    compared++;
                }
                colloq_free(ob);
                colloq_free(of);
            }
        }
        CHECK(compared >= 6, "%s: only %d renderings compared", pairs[i].name, compared);
        /* both refuse a conversation that does not alternate (where the shipped one checks) */
        if (strstr(pairs[i].file, "llama") || strstr(pairs[i].file, "Mistral") || strstr(pairs[i].file, "gemma")) {
            char *ob = NULL, *of = NULL;
            colloq_err eb = { "" }, ef = { "" };
            const char *bad = "[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"b\"}]";
            int rb = render(b, bad, NULL, true, &ob, &eb), rf = render(f, bad, NULL, true, &of, &ef);
            CHECK(rb == COLLOQ_ERR_ARG && rf == COLLOQ_ERR_ARG && strstr(eb.msg, "alternate"),
                  "%s: user/user: built-in %d '%s', shipped %d", pairs[i].name, rb, eb.msg, rf);
            colloq_free(ob);
            colloq_free(of);
        }
        colloq_chat_fmt_free(b);
        colloq_chat_fmt_free(f);
    }
    /* chatml against Qwen 1.5 (which adds its own system message when there is none) */
    char path[1024];
    snprintf(path, sizeof path, "%s/testdata/templates/Qwen-Qwen1.5-7B-Chat.jinja", shared);
    colloq_chat_fmt *b = fmt_named("chatml"), *f = fmt_named(path);
    for (size_t c = 0; b && f && c < sizeof convs / sizeof convs[0]; c++) {
        if (!strstr(convs[c], "\"system\"")) continue;
        char *ob = NULL, *of = NULL;
        colloq_err eb = { "" }, ef = { "" };
        render(b, convs[c], NULL, true, &ob, &eb);
        render(f, convs[c], NULL, true, &of, &ef);
        CHECK(ob && of && !strcmp(ob, of), "chatml vs Qwen1.5 on conversation %zu:\n%s\n---\n%s", c, ob ? ob : eb.msg,
              of ? of : ef.msg);
        colloq_free(ob);
        colloq_free(of);
    }
    colloq_chat_fmt_free(b);
    colloq_chat_fmt_free(f);
}

/* ------------------------------------------------------------ identity rules */

typedef struct { const char *from, *to; } tok_rename;

/* Write a metadata-only GGUF: tokenizer.* of vocab_file (tokens renamed to control
 * tokens where asked), general.name/basename/architecture, and a template or none. */
static const char *write_meta(const char *file, const char *vocab_file, const char *name, const char *basename,
                              const char *arch, bool keep_template, const tok_rename *renames, int n_renames) {
    static char out[1024];
    char vpath[1024];
    snprintf(out, sizeof out, "%s/%s", tmpdir, file);
    snprintf(vpath, sizeof vpath, "%s/testdata/vocab/%s", shared, vocab_file);
    colloq_err err = { "" };
    gguf_file *vf = NULL;
    if (gguf_open(vpath, &vf, &err)) { CHECK(0, "%s", err.msg); return NULL; }
    gguf_writer *w = gguf_writer_new();
    if (arch) gguf_writer_set_str(w, "general.architecture", arch);
    if (name) gguf_writer_set_str(w, "general.name", name);
    if (basename) gguf_writer_set_str(w, "general.basename", basename);
    char **texts = NULL;
    int32_t *types = NULL;
    for (uint64_t i = 0; i < gguf_n_kv(vf); i++) {
        const gguf_kv *kv = gguf_kv_at(vf, i);
        if (kv->key.len < 10 || memcmp(kv->key.s, "tokenizer.", 10)) continue;
        if (!keep_template && gguf_str_eq(kv->key, "tokenizer.chat_template")) continue;
        if (n_renames && gguf_str_eq(kv->key, "tokenizer.ggml.tokens")) {
            uint64_t n = kv->v.arr.n;
            texts = calloc(n, sizeof *texts);
            for (uint64_t t = 0; t < n; t++) {
                gguf_str s = gguf_arr_str(kv, t);
                texts[t] = strndup(s.s, s.len);
                for (int r = 0; r < n_renames; r++)
                    if (!strcmp(texts[t], renames[r].from)) { free(texts[t]); texts[t] = strdup(renames[r].to); }
            }
            gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)texts, n);
            const gguf_kv *tk = gguf_find_kv(vf, "tokenizer.ggml.token_type");
            types = calloc(n, sizeof *types);
            for (uint64_t t = 0; t < n; t++) {
                types[t] = tk ? (int32_t)gguf_arr_num(tk, t) : 1;
                for (int r = 0; r < n_renames; r++)
                    if (!strcmp(texts[t], renames[r].to)) types[t] = 3;
            }
            gguf_writer_set_arr_num(w, "tokenizer.ggml.token_type", GGUF_T_INT32, types, n);
            for (uint64_t t = 0; t < n; t++) free(texts[t]);
            free(texts);
            continue;
        }
        if (n_renames && gguf_str_eq(kv->key, "tokenizer.ggml.token_type")) continue;
        gguf_writer_copy_kv(w, kv);
    }
    int rc = gguf_writer_write(w, out, 0, &err);
    CHECK(rc == 0, "write %s: %s", out, err.msg);
    gguf_writer_free(w);
    free(types);
    gguf_close(vf);
    return rc ? NULL : out;
}

/* Choose for a metadata file; returns the status, the description in desc. */
static int choose_for(const char *path, const char *override, char *desc, size_t cap, colloq_chat_fmt **keep) {
    colloq_err err = { "" };
    gguf_file *f = NULL;
    colloq_vocab *v = NULL;
    colloq_chat_fmt *fmt = NULL;
    int rc = gguf_open(path, &f, &err);
    if (!rc) rc = colloq_vocab_load(f, &v, &err);
    if (!rc) rc = chat_fmt_init_gguf(f, v, override, &fmt, &err);
    snprintf(desc, cap, "%s", rc ? err.msg : colloq_chat_fmt_describe(fmt));
    if (rc) CHECK(fmt == NULL, "a failed init returned a format");
    if (keep && !rc) *keep = fmt;
    else colloq_chat_fmt_free(fmt);
    colloq_vocab_free(v);
    gguf_close(f);
    return rc;
}

static void test_identity(void) {
    static const struct {
        const char *vocab, *name, *basename, *arch;
        tok_rename renames[3];
        const char *want_builtin, *want_rule;
    } cases[] = {
        { "ggml-vocab-llama-spm.gguf", "openchat_3.5", NULL, "llama", { { 0 } }, "openchat", "general.name 'openchat_3.5'" },
        { "ggml-vocab-llama-spm.gguf", "Intel Neural Chat 7B v3.1", NULL, "llama", { { 0 } }, "neural-chat", "general.name" },
        { "ggml-vocab-llama-spm.gguf", "zephyr-7b-beta", NULL, "llama", { { 0 } }, "zephyr", "general.name" },
        { "ggml-vocab-llama-spm.gguf", "Mistral-7B-Instruct-v0.2", NULL, "llama", { { 0 } }, "mistral", "general.name" },
        { "ggml-vocab-llama-spm.gguf", "Llama-2-7b-chat-hf", NULL, "llama", { { 0 } }, "llama2", "general.name" },
        { "ggml-vocab-llama-spm.gguf", "Meta-Llama-3-8B-Instruct", NULL, "llama", { { 0 } }, "llama3", "general.name" },
        { "ggml-vocab-llama-spm.gguf", "Qwen2.5 7B Instruct", NULL, "qwen2", { { 0 } }, "chatml", "general.name" },
        { "ggml-vocab-llama-spm.gguf", "my model", "gemma-2", "gemma2", { { 0 } }, "gemma", "general.basename 'gemma-2'" },
        { "ggml-vocab-llama-spm.gguf", "my model", NULL, "llama",
          { { "▁Jahrhundert", "<|im_start|>" }, { "▁Hinweis", "<|im_end|>" } }, "chatml", "special tokens <|im_start|>, <|im_end|>" },
        { "ggml-vocab-llama-spm.gguf", "my model", NULL, "llama", { { "▁Hinweis", "<|end_of_turn|>" } },
          "openchat", "special token <|end_of_turn|>" },
        { "ggml-vocab-llama-spm.gguf", "my model", NULL, "llama",
          { { "▁Jahrhundert", "[INST]" }, { "▁Hinweis", "[/INST]" } }, "mistral", "special tokens [INST], [/INST]" },
        { "ggml-vocab-llama-spm.gguf", "my model", NULL, "llama",
          { { "▁Jahrhundert", "<|start_header_id|>" }, { "▁Hinweis", "<|eot_id|>" } }, "llama3", "special tokens" },
        { "ggml-vocab-phi-3.gguf", "my model", NULL, "llama", { { 0 } }, "phi3", "special tokens <|user|>, <|assistant|>, <|end|>" },
        { "ggml-vocab-falcon.gguf", "my model", NULL, "falcon", { { 0 } }, "falcon", "architecture 'falcon'" },
        { "ggml-vocab-llama-spm.gguf", "x", NULL, "phi3", { { 0 } }, "phi3", "architecture 'phi3'" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int nr = 0;
        while (nr < 3 && cases[i].renames[nr].from) nr++;
        char file[64];
        snprintf(file, sizeof file, "identity%zu.gguf", i);
        const char *path = write_meta(file, cases[i].vocab, cases[i].name, cases[i].basename, cases[i].arch, false,
                                      cases[i].renames, nr);
        if (!path) continue;
        char desc[600], want[64];
        int rc = choose_for(path, NULL, desc, sizeof desc, NULL);
        snprintf(want, sizeof want, "built-in '%s'", cases[i].want_builtin);
        CHECK(rc == 0 && strstr(desc, want) && strstr(desc, cases[i].want_rule) && strstr(desc, "no template"),
              "identity case %zu (%s): '%s' (want %s, %s)", i, cases[i].name, desc, want, cases[i].want_rule);
    }

    /* nothing fits: refused, every name listed, no ChatML guess */
    static const char *const refused[][3] = {
        { "ggml-vocab-llama-spm.gguf", "llama-spm", "llama" },
        { "ggml-vocab-llama-spm.gguf", "Mistral-7B-v0.1", "llama" },      /* a base model */
        { "ggml-vocab-gpt-2.gguf", "gpt-2", "gpt2" },
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        const char *path = write_meta("refused.gguf", refused[i][0], refused[i][1], NULL, refused[i][2], false, NULL, 0);
        if (!path) continue;
        char desc[600];
        int rc = choose_for(path, NULL, desc, sizeof desc, NULL);
        CHECK(rc == COLLOQ_ERR_UNSUPPORTED, "'%s': not refused (%d): %s", refused[i][1], rc, desc);
        for (int b = 0; b < chat_builtin_count(); b++)
            CHECK(strstr(desc, chat_builtin_at(b)->name) != NULL, "refusal lacks '%s': %s", chat_builtin_at(b)->name, desc);
        CHECK(strstr(desc, "--chat-template") && strstr(desc, refused[i][1]), "refusal message: %s", desc);
    }

    /* the file's own template wins; an override replaces it and says so */
    const char *phi = write_meta("phi_tpl.gguf", "ggml-vocab-phi-3.gguf", "Phi3", NULL, "phi3", true, NULL, 0);
    if (phi) {
        char desc[600];
        colloq_chat_fmt *f = NULL;
        int rc = choose_for(phi, NULL, desc, sizeof desc, &f);
        CHECK(rc == 0 && strstr(desc, "template from the model file"), "phi-3 file: %s", desc);
        if (f) {
            char *out = NULL;
            colloq_err err = { "" };
            rc = render(f, "[{\"role\":\"user\",\"content\":\"Hello\"}]", NULL, true, &out, &err);
            CHECK(rc == 0 && !strcmp(out, "<s><|user|>\nHello<|end|>\n<|assistant|>\n"), "phi-3 file render: '%s'",
                  out ? out : err.msg);
            colloq_free(out);
            CHECK(colloq_chat_fmt_has_bos(f), "phi-3 file template starts with BOS");
            int ns = 0;
            const char *const *st = colloq_chat_fmt_stops(f, &ns);
            bool end = false, user = false;
            for (int k = 0; k < ns; k++) {
                end |= !strcmp(st[k], "<|end|>");
                user |= !strcmp(st[k], "<|user|>");
            }
            CHECK(end && user, "phi-3 file template stops lack <|end|> / <|user|>");
            colloq_chat_fmt_free(f);
        }
        rc = choose_for(phi, "chatml", desc, sizeof desc, NULL);
        CHECK(rc == 0 && strstr(desc, "built-in 'chatml'") && strstr(desc, "--chat-template") && strstr(desc, "not used"),
              "override: %s", desc);
        rc = choose_for(phi, "no-such-format", desc, sizeof desc, NULL);
        CHECK(rc == COLLOQ_ERR_ARG && strstr(desc, "neural-chat") && strstr(desc, "gemma"), "bogus override: %s", desc);
        char tpl[1024];
        snprintf(tpl, sizeof tpl, "%s/testdata/templates/openchat-openchat_3.5.jinja", shared);
        rc = choose_for(phi, tpl, desc, sizeof desc, NULL);
        CHECK(rc == 0 && strstr(desc, "template file"), "file override: %s", desc);
    }
    /* neither a model nor an override */
    colloq_chat_fmt *f = NULL;
    colloq_err err = { "" };
    CHECK(chat_fmt_init_gguf(NULL, NULL, NULL, &f, &err) == COLLOQ_ERR_ARG && !f, "no model, no override");
}

/* ------------------------------------------------------------ rendering details and errors */

static void test_render_errors(void) {
    colloq_chat_fmt *f = fmt_named("chatml");
    if (!f) return;
    char *out = NULL;
    colloq_err err = { "" };
    /* text parts are joined with newlines */
    int rc = render(f, "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}]",
                    NULL, false, &out, &err);
    CHECK(rc == 0 && !strcmp(out, "<|im_start|>user\na\nb<|im_end|>\n"), "content parts: '%s'", out ? out : err.msg);
    colloq_free(out);
    static const char *const bad[] = {
        "{\"role\":\"user\"}",
        "[{\"content\":\"no role\"}]",
        "[\"just a string\"]",
        "[{\"role\":\"user\",\"content\":42}]",
        "[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        out = NULL;
        rc = render(f, bad[i], NULL, true, &out, &err);
        CHECK(rc == COLLOQ_ERR_ARG && !out && err.msg[0], "bad messages %zu: rc %d", i, rc);
    }
    colloq_chat_fmt_free(f);
    /* a template's raise_exception is the caller's error, with its message */
    f = fmt_named("gemma");
    rc = render(f, "[{\"role\":\"tool\",\"content\":\"x\"}]", NULL, true, &out, &err);
    CHECK(rc == COLLOQ_ERR_ARG && strstr(err.msg, "gemma"), "gemma tool role: %d %s", rc, err.msg);
    colloq_chat_fmt_free(f);
    /* a template file that does not parse */
    char path[1024];
    snprintf(path, sizeof path, "%s/broken.jinja", tmpdir);
    FILE *fp = fopen(path, "w");
    if (fp) { fputs("{% for m in messages %}{{ m.content }", fp); fclose(fp); }
    f = NULL;
    rc = chat_fmt_init_gguf(NULL, NULL, path, &f, &err);
    CHECK(rc == COLLOQ_ERR_FORMAT && !f && strstr(err.msg, "broken.jinja"), "broken template: %d %s", rc, err.msg);
    /* tools reach the template */
    snprintf(path, sizeof path, "%s/testdata/templates/Qwen-Qwen2.5-7B-Instruct.jinja", shared);
    f = fmt_named(path);
    const char *tools = "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{}}}]";
    out = NULL;
    rc = render(f, "[{\"role\":\"user\",\"content\":\"hi\"}]", tools, true, &out, &err);
    CHECK(rc == 0 && strstr(out, "get_weather"), "tools not rendered");
    colloq_free(out);
    out = NULL;
    rc = render(f, "[{\"role\":\"user\",\"content\":\"hi\"}]", NULL, true, &out, &err);
    CHECK(rc == 0 && !strstr(out, "<tools>"), "no tools, yet a tools section");
    colloq_free(out);
    colloq_chat_fmt_free(f);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: test_chat TMPDIR SHARED_DIR\n");
        return 2;
    }
    tmpdir = argv[1];
    shared = argv[2];
    mkdir(tmpdir, 0777);
    char probe[1024];
    shared_file(shared, "testdata/templates/README.md", probe, sizeof probe);
    test_documented();
    test_vs_shipped();
    test_identity();
    test_render_errors();
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("chat formats: all passed\n");
    return 0;
}
