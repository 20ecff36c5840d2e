/*
 * chat_internal.h - what chat.c (format selection, rendering) shares with
 * chat_builtin.c (the built-in named formats and the identity rules), and the
 * metadata-level entry point used by `colloq template` and the tests (a GGUF file and
 * its vocabulary, no weights).  Not for other modules; the contract is chat.h.
 */
#ifndef COLLOQ_CHAT_INTERNAL_H
#define COLLOQ_CHAT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "chat.h"
#include "gguf.h"
#include "tokenizer.h"

/* One built-in named format: a Jinja template rendered like a file's template. */
typedef struct {
    const char *name;              /* "openchat", "neural-chat", ... */
    const char *family;            /* the models it is for, one short phrase */
    const char *source;            /* Jinja source (rendered with trim_blocks/lstrip_blocks) */
    const char *const *stops;      /* NULL-terminated: text that ends an assistant turn */
    const char *bos, *eos;         /* bos_token / eos_token when there is no vocabulary */
} chat_builtin;

int                 chat_builtin_count(void);
const chat_builtin *chat_builtin_at(int i);
const chat_builtin *chat_builtin_find(const char *name);     /* NULL if unknown */
/* "openchat, neural-chat, ..." (static storage). */
const char         *chat_builtin_names(void);

/* What the identity rules look at; any field may be NULL. */
typedef struct {
    const char *name;              /* general.name */
    const char *basename;          /* general.basename */
    const char *arch;              /* general.architecture */
    const colloq_vocab *vocab;     /* special tokens */
} chat_identity;

/* The built-in that fits a file without a template, or NULL.  why receives the rule
 * that chose it, e.g. "chosen by general.name 'openchat_3.5'". */
const chat_builtin *chat_builtin_choose(const chat_identity *id, char *why, size_t why_cap);

/* colloq_chat_fmt_init over a GGUF file's metadata and its vocabulary (either may be
 * NULL; with no file an override is required and bos/eos come from the built-in's
 * defaults, or "<s>" / "</s>" for a template file). */
int chat_fmt_init_gguf(const gguf_file *f, const colloq_vocab *v, const char *override,
                       colloq_chat_fmt **out, colloq_err *err);
/* Replace the bos_token / eos_token texts (NULL keeps).  For `colloq template` without a model. */
int chat_fmt_set_special(colloq_chat_fmt *f, const char *bos, const char *eos);

#endif
