/*
 * chat.c - chat formats (chat.h): chooses the template (the model file's
 * tokenizer.chat_template, a --chat-template override, or a built-in picked by the
 * file's identity, never a silent default), builds the Jinja context from a JSON
 * conversation (messages, add_generation_prompt, bos_token, eos_token, tools) and
 * renders it.  Knows metadata and the vocabulary, never weights or the KV cache.
 */
#include <string.h>

#include <jansson.h>

#include "chat_internal.h"
#include "jinja.h"
#include "model.h"
#include "util.h"

#define CHAT_MAX_STOPS 16

struct colloq_chat_fmt {
    jinja_template     *tpl;
    const chat_builtin *builtin;               /* NULL for a template from a file */
    char               *source;                /* Jinja source (owned copy) */
    char               *bos, *eos;             /* bos_token / eos_token texts */
    const char         *stops[CHAT_MAX_STOPS + 1];
    int                 n_stops;
    bool                has_bos;
    char                describe[512];
};

/* ------------------------------------------------------------------ small helpers */

/* A GGUF string value as a NUL-terminated copy (NULL if absent or not a string). */
static char *gguf_strdup(const gguf_file *f, const char *key) {
    if (!f) return NULL;
    gguf_str s;
    colloq_err ignore;
    if (gguf_get_str(f, key, &s, &ignore) != 0 || s.len > (1u << 24)) return NULL;
    char *p = colloq_malloc((size_t)s.len + 1);
    if (!p) return NULL;
    if (s.len) memcpy(p, s.s, (size_t)s.len);
    p[s.len] = 0;
    return p;
}

static char *vocab_token_text(const colloq_vocab *v, colloq_token t) {
    const char *s = v && t >= 0 && t < colloq_vocab_n(v) ? colloq_vocab_text(v, t) : NULL;
    return colloq_strdup(s ? s : "");
}

void colloq_chat_fmt_free(colloq_chat_fmt *f) {
    if (!f) return;
    jinja_template_free(f->tpl);
    colloq_free(f->source);
    colloq_free(f->bos);
    colloq_free(f->eos);
    colloq_free(f);
}

const char *colloq_chat_fmt_describe(const colloq_chat_fmt *f) { return f ? f->describe : ""; }

const char *const *colloq_chat_fmt_stops(const colloq_chat_fmt *f, int *n) {
    if (n) *n = f ? f->n_stops : 0;
    return f ? f->stops : NULL;
}

bool colloq_chat_fmt_has_bos(const colloq_chat_fmt *f) { return f && f->has_bos; }

static void add_stop(colloq_chat_fmt *f, const char *s) {
    for (int i = 0; i < f->n_stops; i++)
        if (!strcmp(f->stops[i], s)) return;
    if (f->n_stops < CHAT_MAX_STOPS) f->stops[f->n_stops++] = s;
    f->stops[f->n_stops] = NULL;
}

/* End-of-turn markers a template file may use, and the stop strings each implies. */
static const struct { const char *marker; const char *stops[2]; } file_markers[] = {
    { "<|im_end|>",               { "<|im_end|>", "<|im_start|>" } },
    { "<|end_of_turn|>",          { "<|end_of_turn|>", NULL } },
    { "<|eot_id|>",               { "<|eot_id|>", "<|eom_id|>" } },
    { "<|end|>",                  { "<|end|>", NULL } },
    { "<end_of_turn>",            { "<end_of_turn>", "<start_of_turn>" } },
    { "<|END_OF_TURN_TOKEN|>",    { "<|END_OF_TURN_TOKEN|>", NULL } },
    { "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
      { "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", NULL } },
    { "[INST]",                   { "[INST]", NULL } },
    { "<|user|>",                 { "<|user|>", NULL } },
    { "</s>",                     { "</s>", NULL } },
};

static void set_file_stops(colloq_chat_fmt *f) {
    for (size_t i = 0; i < sizeof file_markers / sizeof file_markers[0]; i++) {
        if (!strstr(f->source, file_markers[i].marker)) continue;
        for (int j = 0; j < 2 && file_markers[i].stops[j]; j++) add_stop(f, file_markers[i].stops[j]);
    }
}

/* ------------------------------------------------------------------ choosing */

static int parse_source(colloq_chat_fmt *f, const char *what, colloq_err *err) {
    colloq_err perr = { { 0 } };
    f->tpl = jinja_parse(f->source, strlen(f->source), &perr);
    if (!f->tpl)
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "%s does not parse as a Jinja template: %s", what, perr.msg);
    return COLLOQ_OK;
}

static int use_builtin(colloq_chat_fmt *f, const chat_builtin *b, colloq_err *err) {
    f->builtin = b;
    f->source = colloq_strdup(b->source);
    if (!f->source) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "chat format: out of memory");
    for (int i = 0; b->stops[i]; i++) add_stop(f, b->stops[i]);
    return parse_source(f, "a built-in chat format", err);
}

static int use_file(colloq_chat_fmt *f, const char *path, colloq_err *err) {
    size_t len = 0;
    colloq_err ferr = { { 0 } };
    if (colloq_read_file(path, &f->source, &len, &ferr) != COLLOQ_OK)
        return colloq_seterr(err, COLLOQ_ERR_ARG, "--chat-template '%s' is neither a built-in format (%s) nor a "
                             "readable template file: %s", path, chat_builtin_names(), ferr.msg);
    if (strlen(f->source) != len)
        return colloq_seterr(err, COLLOQ_ERR_FORMAT, "template file '%s' contains a NUL byte", path);
    set_file_stops(f);
    char what[300];
    snprintf(what, sizeof what, "template file '%s'", path);
    return parse_source(f, what, err);
}

/* Render one user message to learn whether the prompt starts with the BOS text. */
static void probe_bos(colloq_chat_fmt *f) {
    f->has_bos = false;
    if (!f->bos[0]) return;
    json_t *msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", "Hello");
    char *out = NULL;
    size_t n = 0;
    colloq_err ignore;
    if (msgs && colloq_chat_render(f, msgs, NULL, true, &out, &n, &ignore) == COLLOQ_OK)
        f->has_bos = !strncmp(out, f->bos, strlen(f->bos));
    else
        f->has_bos = strstr(f->source, "bos_token") != NULL;
    colloq_free(out);
    json_decref(msgs);
}

static int choose(colloq_chat_fmt *f, const gguf_file *gf, const colloq_vocab *v, const char *override,
                  colloq_err *err) {
    char *file_tpl = gguf_strdup(gf, "tokenizer.chat_template");
    int rc;
    if (override) {
        const chat_builtin *b = chat_builtin_find(override);
        rc = b ? use_builtin(f, b, err) : use_file(f, override, err);
        if (rc == COLLOQ_OK && b)
            snprintf(f->describe, sizeof f->describe, "built-in '%s' for %s (chosen with --chat-template%s)", b->name,
                     b->family, file_tpl ? "; the model file's own template is not used" : "");
        else if (rc == COLLOQ_OK)
            snprintf(f->describe, sizeof f->describe, "template file '%s' (chosen with --chat-template%s)", override,
                     file_tpl ? "; the model file's own template is not used" : "");
        colloq_free(file_tpl);
        return rc;
    }
    if (file_tpl && file_tpl[0]) {
        f->source = file_tpl;
        set_file_stops(f);
        snprintf(f->describe, sizeof f->describe, "template from the model file (tokenizer.chat_template)");
        rc = parse_source(f, "the model file's chat template", err);
        if (rc != COLLOQ_OK) {
            size_t n = strlen(err ? err->msg : "");
            if (err && n + 60 < sizeof err->msg)
                snprintf(err->msg + n, sizeof err->msg - n, "; choose a format with --chat-template NAME|FILE");
        }
        return rc;
    }
    colloq_free(file_tpl);
    if (!gf) return colloq_seterr(err, COLLOQ_ERR_ARG, "no model and no --chat-template: nothing to choose a format from");
    chat_identity id = { gguf_strdup(gf, "general.name"), gguf_strdup(gf, "general.basename"),
                         gguf_strdup(gf, "general.architecture"), v };
    char why[256] = "";
    const chat_builtin *b = chat_builtin_choose(&id, why, sizeof why);
    if (b) {
        snprintf(f->describe, sizeof f->describe, "built-in '%s' for %s (the model file carries no template; %s)",
                 b->name, b->family, why);
        rc = use_builtin(f, b, err);
    } else {
        rc = colloq_seterr(err, COLLOQ_ERR_UNSUPPORTED,
                           "the model file carries no chat template and nothing in it (name '%s', architecture '%s', "
                           "special tokens) identifies a known chat format; choose one with --chat-template NAME|FILE "
                           "(built-in names: %s)", id.name ? id.name : "", id.arch ? id.arch : "",
                           chat_builtin_names());
    }
    colloq_free((char *)id.name);
    colloq_free((char *)id.basename);
    colloq_free((char *)id.arch);
    return rc;
}

int chat_fmt_init_gguf(const gguf_file *gf, const colloq_vocab *v, const char *override, colloq_chat_fmt **out,
                       colloq_err *err) {
    if (!out) return colloq_seterr(err, COLLOQ_ERR_ARG, "chat format: no output pointer");
    *out = NULL;
    colloq_chat_fmt *f = colloq_calloc(1, sizeof *f);
    if (!f) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "chat format: out of memory");
    int rc = choose(f, gf, v, override, err);
    if (rc == COLLOQ_OK) {
        if (v) {
            f->bos = vocab_token_text(v, colloq_vocab_bos(v));
            f->eos = vocab_token_text(v, colloq_vocab_eos(v));
        } else {
            f->bos = colloq_strdup(f->builtin ? f->builtin->bos : "<s>");
            f->eos = colloq_strdup(f->builtin ? f->builtin->eos : "</s>");
        }
        if (!f->bos || !f->eos) rc = colloq_seterr(err, COLLOQ_ERR_NOMEM, "chat format: out of memory");
    }
    if (rc != COLLOQ_OK) {
        colloq_chat_fmt_free(f);
        return rc;
    }
    probe_bos(f);
    *out = f;
    return COLLOQ_OK;
}

int colloq_chat_fmt_init(const colloq_model *m, const char *override, colloq_chat_fmt **out, colloq_err *err) {
    return chat_fmt_init_gguf(m ? m->file : NULL, m ? m->vocab : NULL, override, out, err);
}

int chat_fmt_set_special(colloq_chat_fmt *f, const char *bos, const char *eos) {
    if (!f) return COLLOQ_ERR_ARG;
    char *nb = bos ? colloq_strdup(bos) : NULL, *ne = eos ? colloq_strdup(eos) : NULL;
    if ((bos && !nb) || (eos && !ne)) {
        colloq_free(nb);
        colloq_free(ne);
        return COLLOQ_ERR_NOMEM;
    }
    if (nb) { colloq_free(f->bos); f->bos = nb; }
    if (ne) { colloq_free(f->eos); f->eos = ne; }
    probe_bos(f);
    return COLLOQ_OK;
}

/* ------------------------------------------------------------------ rendering */

/* A copy of one message with list content joined into one string; NULL + err if invalid. */
static json_t *normalise_message(const json_t *m, size_t i, colloq_err *err) {
    if (!json_is_object(m)) {
        colloq_seterr(err, COLLOQ_ERR_ARG, "message %zu is not an object", i);
        return NULL;
    }
    const json_t *role = json_object_get(m, "role");
    if (!json_is_string(role) || !json_string_length(role)) {
        colloq_seterr(err, COLLOQ_ERR_ARG, "message %zu has no \"role\" string", i);
        return NULL;
    }
    const json_t *content = json_object_get(m, "content");
    if (content && !json_is_string(content) && !json_is_array(content) && !json_is_null(content)) {
        colloq_seterr(err, COLLOQ_ERR_ARG, "message %zu: \"content\" must be a string, an array of text parts or null", i);
        return NULL;
    }
    json_t *copy = json_copy((json_t *)m);
    if (!copy) {
        colloq_seterr(err, COLLOQ_ERR_NOMEM, "chat render: out of memory");
        return NULL;
    }
    if (!json_is_array(content)) return copy;
    /* text parts joined by newlines */
    size_t total = 0, k;
    const json_t *part;
    json_array_foreach(content, k, part) {
        const json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
        if (!json_is_object(part) || !json_is_string(type) || strcmp(json_string_value(type), "text") ||
            !json_is_string(text)) {
            json_decref(copy);
            colloq_seterr(err, COLLOQ_ERR_ARG, "message %zu: content part %zu is not {\"type\":\"text\",\"text\":...} "
                          "(only text parts are supported)", i, k);
            return NULL;
        }
        total += json_string_length(text) + 1;
    }
    char *joined = colloq_malloc(total + 1);
    if (!joined) {
        json_decref(copy);
        colloq_seterr(err, COLLOQ_ERR_NOMEM, "chat render: out of memory");
        return NULL;
    }
    size_t n = 0;
    json_array_foreach(content, k, part) {
        const json_t *text = json_object_get(part, "text");
        if (k) joined[n++] = '\n';
        memcpy(joined + n, json_string_value(text), json_string_length(text));
        n += json_string_length(text);
    }
    int bad = json_object_set_new(copy, "content", json_stringn(joined, n));
    colloq_free(joined);
    if (bad) {
        json_decref(copy);
        colloq_seterr(err, COLLOQ_ERR_NOMEM, "chat render: out of memory");
        return NULL;
    }
    return copy;
}

static int set_value(jinja_value *ctx, const char *key, jinja_value *take, colloq_err *err) {
    if (!take) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "chat render: out of memory");
    int rc = jinja_dict_set(ctx, key, take);
    return rc ? colloq_seterr(err, rc, "chat render: cannot set %s", key) : COLLOQ_OK;
}

int colloq_chat_render(const colloq_chat_fmt *f, const json_t *messages, const json_t *tools,
                       bool add_generation_prompt, char **out, size_t *out_len, colloq_err *err) {
    if (!f || !out) return colloq_seterr(err, COLLOQ_ERR_ARG, "chat render: bad arguments");
    *out = NULL;
    if (out_len) *out_len = 0;
    if (!json_is_array(messages)) return colloq_seterr(err, COLLOQ_ERR_ARG, "the messages must be a JSON array");
    if (tools && !json_is_array(tools) && !json_is_null(tools))
        return colloq_seterr(err, COLLOQ_ERR_ARG, "the tools must be a JSON array");
    json_t *norm = json_array();
    if (!norm) return colloq_seterr(err, COLLOQ_ERR_NOMEM, "chat render: out of memory");
    size_t i;
    const json_t *m;
    json_array_foreach(messages, i, m) {
        json_t *c = normalise_message(m, i, err);
        if (!c || json_array_append_new(norm, c)) {
            json_decref(norm);
            return c ? colloq_seterr(err, COLLOQ_ERR_NOMEM, "chat render: out of memory") : COLLOQ_ERR_ARG;
        }
    }
    jinja_value *ctx = jinja_value_dict();
    int rc = ctx ? COLLOQ_OK : colloq_seterr(err, COLLOQ_ERR_NOMEM, "chat render: out of memory");
    colloq_err jerr = { { 0 } };
    if (rc == COLLOQ_OK) {
        jinja_value *mv = jinja_value_from_json(norm, &jerr);
        rc = mv ? set_value(ctx, "messages", mv, err) : colloq_seterr(err, COLLOQ_ERR_ARG, "messages: %s", jerr.msg);
    }
    json_decref(norm);
    if (rc == COLLOQ_OK) {
        jinja_value *tv = tools && json_is_array(tools) ? jinja_value_from_json(tools, &jerr) : jinja_value_none();
        rc = set_value(ctx, "tools", tv, err);
    }
    if (rc == COLLOQ_OK) rc = set_value(ctx, "add_generation_prompt", jinja_value_bool(add_generation_prompt), err);
    if (rc == COLLOQ_OK) rc = set_value(ctx, "bos_token", jinja_value_string(f->bos, strlen(f->bos)), err);
    if (rc == COLLOQ_OK) rc = set_value(ctx, "eos_token", jinja_value_string(f->eos, strlen(f->eos)), err);
    if (rc == COLLOQ_OK) {
        size_t n = 0;
        rc = jinja_render(f->tpl, ctx, out, &n, err);
        if (rc == COLLOQ_OK && out_len) *out_len = n;
    }
    jinja_value_free(ctx);
    return rc;
}
