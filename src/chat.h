/*
 * chat.h - chat prompt formatting: renders a conversation into the exact prompt text a
 * model was trained on, using the template the model file carries
 * (tokenizer.chat_template) or a built-in named format, and says which tokens and
 * strings end a turn.  Knows the model's metadata and vocabulary, not its weights.
 */
#ifndef COLLOQ_CHAT_H
#define COLLOQ_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include "colloq.h"

struct json_t;                       /* jansson */
typedef struct colloq_chat_fmt colloq_chat_fmt;

/* Choose the format for a model.  override: NULL (use the file's template; if it has
 * none, choose a built-in by the file's identity and say which through
 * colloq_chat_fmt_describe), a built-in NAME (openchat, neural-chat, llama2, mistral,
 * chatml, zephyr, chatglm3, baichuan2, falcon, phi3, llama3, gemma), or a FILE path
 * holding a Jinja template.  When nothing fits, fails with a message listing the names.
 * m may be NULL when override is given: bos_token / eos_token are then the format's usual
 * texts ("<s>" / "</s>" for a template file). */
int  colloq_chat_fmt_init(const colloq_model *m, const char *override, colloq_chat_fmt **out,
                          colloq_err *err);
void colloq_chat_fmt_free(colloq_chat_fmt *f);
/* One line for users/logs: e.g. "template from the model file", "built-in 'openchat'
 * (the file carries no template; chosen by its special tokens)". */
const char *colloq_chat_fmt_describe(const colloq_chat_fmt *f);

/* Render an OpenAI-style messages array (objects with "role", "content" (string, or array of
 * {"type":"text","text":…} parts), optional "tool_calls", "tool_call_id", "name") and an
 * optional tools array (NULL = none).  *out is NUL-terminated, freed with colloq_free.
 * Errors: COLLOQ_ERR_ARG when the conversation is invalid for the template (message says why). */
int  colloq_chat_render(const colloq_chat_fmt *f, const struct json_t *messages,
                        const struct json_t *tools, bool add_generation_prompt,
                        char **out, size_t *out_len, colloq_err *err);

/* Strings that end an assistant turn in this format (besides the model's EOG tokens),
 * e.g. "<|im_end|>", "<|end_of_turn|>", "\n### User:".  Valid while f lives. */
const char *const *colloq_chat_fmt_stops(const colloq_chat_fmt *f, int *n);
/* Whether the rendered prompt already starts with the BOS text, so the tokenizer must not add BOS. */
bool colloq_chat_fmt_has_bos(const colloq_chat_fmt *f);

#endif
