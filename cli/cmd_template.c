/*
 * cmd_template.c - `colloq template (-m M.gguf | --chat-template NAME|FILE) --messages
 * FILE.json [--add-generation-prompt]`: prints the prompt a conversation renders to,
 * exactly (no newline added).  Opens only the GGUF metadata and the vocabulary, so
 * vocabulary-only files work; the formatting itself is the library's (chat.c).
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "chat_internal.h"
#include "cli.h"
#include "util.h"

static void template_usage(FILE *out) {
    fprintf(out,
        "usage: colloq template (-m M.gguf | --chat-template NAME|FILE) --messages FILE.json\n"
        "                       [--add-generation-prompt] [options]\n"
        "\n"
        "Prints the prompt the conversation renders to, exactly (no newline is added).\n"
        "  -m, --model FILE          GGUF file (a model or a vocabulary-only file): its template, or a\n"
        "                            built-in chosen by its identity; its BOS/EOS texts\n"
        "  --chat-template NAME|FILE a built-in format (%s)\n"
        "                            or a Jinja template file; overrides the model file's template\n"
        "  --messages FILE.json      an array of {\"role\",\"content\"} objects (or {\"messages\": [...],\n"
        "                            \"tools\": [...]})\n"
        "  --tools FILE.json         an array of tool definitions passed to the template as `tools`\n"
        "  --add-generation-prompt   end with the text that starts the assistant's answer\n"
        "  --bos TEXT, --eos TEXT    bos_token / eos_token without -m (default: the format's usual ones)\n"
        "  -v, --verbose             say on stderr which format was used\n",
        chat_builtin_names());
}

static json_t *load_json(const char *path, const char *what) {
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!j) fprintf(stderr, "colloq template: %s %s: line %d: %s\n", what, path, je.line, je.text);
    return j;
}

int cmd_template(int argc, char **argv) {
    const char *model = NULL, *tpl = NULL, *msgs_path = NULL, *tools_path = NULL, *bos = NULL, *eos = NULL;
    bool add_gen = false, verbose = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { template_usage(stdout); return 0; }
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) dst = &model;
        else if (!strcmp(a, "--chat-template")) dst = &tpl;
        else if (!strcmp(a, "--messages")) dst = &msgs_path;
        else if (!strcmp(a, "--tools")) dst = &tools_path;
        else if (!strcmp(a, "--bos")) dst = &bos;
        else if (!strcmp(a, "--eos")) dst = &eos;
        else if (!strcmp(a, "--add-generation-prompt")) { add_gen = true; continue; }
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) { verbose = true; continue; }
        else {
            fprintf(stderr, "colloq template: unknown argument '%s'\n", a);
            template_usage(stderr);
            return 2;
        }
        if (i + 1 >= argc) { fprintf(stderr, "colloq template: %s needs a value\n", a); return 2; }
        *dst = argv[++i];
    }
    if (!model && !tpl) {
        fprintf(stderr, "colloq template: give -m M.gguf or --chat-template NAME|FILE\n");
        template_usage(stderr);
        return 2;
    }
    if (!msgs_path) { fprintf(stderr, "colloq template: --messages FILE.json is required\n"); return 2; }

    int status = 1;
    colloq_err err = { "" };
    gguf_file *f = NULL;
    colloq_vocab *v = NULL;
    colloq_chat_fmt *fmt = NULL;
    json_t *doc = NULL, *tools_doc = NULL;
    char *out = NULL;
    size_t out_len = 0;
    if (model && (gguf_open(model, &f, &err) || colloq_vocab_load(f, &v, &err))) {
        fprintf(stderr, "colloq template: %s\n", err.msg);
        goto done;
    }
    if (chat_fmt_init_gguf(f, v, tpl, &fmt, &err)) {
        fprintf(stderr, "colloq template: %s\n", err.msg);
        goto done;
    }
    if ((bos || eos) && chat_fmt_set_special(fmt, bos, eos)) {
        fprintf(stderr, "colloq template: out of memory\n");
        goto done;
    }
    if (verbose) fprintf(stderr, "colloq template: format: %s\n", colloq_chat_fmt_describe(fmt));
    if (!(doc = load_json(msgs_path, "--messages"))) goto done;
    if (tools_path && !(tools_doc = load_json(tools_path, "--tools"))) goto done;
    const json_t *messages = json_is_object(doc) ? json_object_get(doc, "messages") : doc;
    const json_t *tools = tools_doc ? tools_doc : json_is_object(doc) ? json_object_get(doc, "tools") : NULL;
    if (!json_is_array(messages)) {
        fprintf(stderr, "colloq template: %s: expected an array of messages (or an object with \"messages\")\n",
                msgs_path);
        goto done;
    }
    if (colloq_chat_render(fmt, messages, tools, add_gen, &out, &out_len, &err)) {
        fprintf(stderr, "colloq template: %s\n", err.msg);
        goto done;
    }
    if (fwrite(out, 1, out_len, stdout) != out_len || fflush(stdout)) {
        fprintf(stderr, "colloq template: writing the output failed\n");
        goto done;
    }
    status = 0;
done:
    colloq_free(out);
    json_decref(doc);
    json_decref(tools_doc);
    colloq_chat_fmt_free(fmt);
    colloq_vocab_free(v);
    gguf_close(f);
    return status;
}
