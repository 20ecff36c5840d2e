/*
 * tokenizer.h - vocabulary loaded from GGUF tokenizer.* metadata, text <-> ids.
 * Dispatches on tokenizer.ggml.model: "llama" (SentencePiece BPE by scores,
 * tok_spm.c); "gpt2" (byte-level BPE, tok_bpe.c) where built.  Knows GGUF
 * metadata, not model weights.
 */
#ifndef COLLOQ_TOKENIZER_H
#define COLLOQ_TOKENIZER_H

#include "colloq.h"
#include "gguf.h"

/* token types as GGUF stores them in tokenizer.ggml.token_type */
enum { CTOK_NORMAL = 1, CTOK_UNKNOWN = 2, CTOK_CONTROL = 3, CTOK_USER_DEFINED = 4,
       CTOK_UNUSED = 5, CTOK_BYTE = 6 };

typedef struct colloq_vocab colloq_vocab;

int  colloq_vocab_load(const gguf_file *f, colloq_vocab **out, colloq_err *err);
void colloq_vocab_free(colloq_vocab *v);

int          colloq_vocab_n(const colloq_vocab *v);
const char  *colloq_vocab_model_name(const colloq_vocab *v);   /* "llama", "gpt2", ... */
colloq_token colloq_vocab_bos(const colloq_vocab *v);          /* -1 if none */
colloq_token colloq_vocab_eos(const colloq_vocab *v);
bool         colloq_vocab_add_bos(const colloq_vocab *v);
bool         colloq_vocab_add_eos(const colloq_vocab *v);
bool         colloq_vocab_is_eog(const colloq_vocab *v, colloq_token t);
int          colloq_vocab_token_type(const colloq_vocab *v, colloq_token t);
/* The token's stored text (e.g. "▁the", "<0x0A>", "<s>"), NUL-terminated. */
const char  *colloq_vocab_text(const colloq_vocab *v, colloq_token t);
/* Find a token by its exact stored text; -1 if absent. */
colloq_token colloq_vocab_find(const colloq_vocab *v, const char *text);

/* Same contracts as colloq_tokenize / colloq_token_to_piece in colloq.h. */
int colloq_vocab_tokenize(const colloq_vocab *v, const char *text, size_t len, bool add_bos,
                          bool parse_special, colloq_token *out, int cap, colloq_err *err);
int colloq_vocab_piece(const colloq_vocab *v, colloq_token t, bool render_special,
                       char *buf, int cap);
/* The text of n ids (pieces concatenated).  remove_space_prefix undoes the space that
 * tokenizing puts in front of the text and after each control/user-defined token when
 * the vocabulary adds a space prefix.  Returns bytes needed (may exceed cap; no NUL is
 * written) or < 0 (an id out of range, a bad argument). */
int colloq_vocab_detokenize(const colloq_vocab *v, const colloq_token *ids, int n,
                            bool remove_space_prefix, bool render_special, char *buf, int cap);

#endif
