/*
 * tok_bpe_pre.h - pre-tokenizers for byte-level BPE: the regexes selected by
 * tokenizer.ggml.pre, compiled once, that cut text into chunks before merging.
 * Used by tok_bpe.c (and its tests); knows nothing of vocabularies or GGUF.
 */
#ifndef COLLOQ_TOK_BPE_PRE_H
#define COLLOQ_TOK_BPE_PRE_H

#include <stdbool.h>
#include <stddef.h>
#include "util.h"

/* One chunk of the input: bytes [off, off + len). */
typedef struct { size_t off, len; } tok_span;

/* Growable span list; zero-initialise, reuse across calls, free with tok_spans_free. */
typedef struct { tok_span *v; size_t n, cap; } tok_spans;
void tok_spans_free(tok_spans *s);

typedef struct tok_bpe_pre tok_bpe_pre;

/* Compile the pre-tokenizer named name (tokenizer.ggml.pre; NULL or "" means the
 * GPT-2 regex).  Unknown names fail with COLLOQ_ERR_UNSUPPORTED. */
int  tok_bpe_pre_new(const char *name, tok_bpe_pre **out, colloq_err *err);
void tok_bpe_pre_free(tok_bpe_pre *p);

/* The i-th tokenizer.ggml.pre value this table knows (for tests and messages);
 * NULL past the end. */
const char *tok_bpe_pre_name_at(size_t i);

/* Name of the table entry chosen (e.g. "qwen2" for "deepseek-r1-qwen"). */
const char *tok_bpe_pre_kind(const tok_bpe_pre *p);
/* Whole chunks found in the vocabulary are emitted without merging (llama3 family). */
bool tok_bpe_pre_ignore_merges(const tok_bpe_pre *p);
/* Whether this family adds BOS when the file does not say (llama3 family: yes). */
bool tok_bpe_pre_default_add_bos(const tok_bpe_pre *p);

/* Cut text[0..len) into chunks, replacing out's contents.  The chunks are
 * consecutive, non-empty and cover the text exactly.  Each regex in the
 * family's list is applied in turn inside every chunk of the previous step;
 * both the matches and the text between them become chunks.  Bytes that are
 * not valid UTF-8 form chunks of their own (a maximal run each) and never
 * reach a regex.  Safe to call from several threads on one tok_bpe_pre. */
int tok_bpe_pre_split(const tok_bpe_pre *p, const char *text, size_t len, tok_spans *out,
                      colloq_err *err);

#endif
