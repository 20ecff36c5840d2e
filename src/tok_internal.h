/*
 * tok_internal.h - what tokenizer.c (vocabulary, special tokens, dispatch) shares
 * with the algorithm files tok_spm.c (SentencePiece BPE by scores) and tok_bpe.c
 * (byte-level BPE with merges and pre-tokenizer regexes).  Not for other modules.
 */
#ifndef COLLOQ_TOK_INTERNAL_H
#define COLLOQ_TOK_INTERNAL_H

#include "tokenizer.h"

/* Hash map from token text to id (open addressing), built once at load. */
typedef struct {
    uint32_t     cap;        /* power of two */
    colloq_token *slots;     /* -1 = empty */
} tok_index;

struct colloq_vocab {
    int     n;                 /* number of tokens */
    char  **text;              /* NUL-terminated copies of each token's text */
    uint32_t *text_len;
    float  *scores;            /* may be all 0 when the file has none */
    int32_t *types;            /* CTOK_* (CTOK_NORMAL when the file has none) */
    tok_index index;           /* text -> id */

    char    model[32];         /* tokenizer.ggml.model */
    char    pre[64];           /* tokenizer.ggml.pre ("" if absent) */
    colloq_token bos, eos, unk, pad, eot;   /* -1 when absent */
    bool    add_bos, add_eos, add_space_prefix;
    colloq_token *eog;         /* end-of-generation ids: eos, eot, and control tokens such as <|im_end|> */
    int     n_eog;
    colloq_token *specials;    /* control + user-defined tokens, longest text first, for parse_special */
    int     n_specials;

    /* algorithm-specific state and entry points */
    void   *impl;
    void  (*impl_free)(void *impl);
    /* Encode plain text (no special-token parsing, no BOS); same return contract as
     * colloq_vocab_tokenize: total count needed, or < 0 on error. */
    int   (*encode)(const colloq_vocab *v, const char *text, size_t len,
                    colloq_token *out, int cap, colloq_err *err);
    /* Bytes of token t as text (byte tokens -> the byte, "▁" -> " ", byte-level
     * unicode -> bytes).  Returns bytes needed (may exceed cap). */
    int   (*decode)(const colloq_vocab *v, colloq_token t, char *buf, int cap);
};

colloq_token tok_index_find(const colloq_vocab *v, const char *s, size_t len);

/* Set up v->impl/encode/decode for each algorithm (called by colloq_vocab_load). */
int tok_spm_init(colloq_vocab *v, const gguf_file *f, colloq_err *err);
int tok_bpe_init(colloq_vocab *v, const gguf_file *f, colloq_err *err);

#endif
