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
    /* Control, user-defined and unknown-type tokens with non-empty text, longest text
     * first (then lowest id).  User-defined ones are split out of every text; the
     * others only with parse_special. */
    colloq_token *specials;
    int     n_specials;
    /* Matching aids for specials, built and used by tokenizer.c only: the distinct
     * text lengths of specials (longest first) and a bitmap of their first bytes. */
    uint32_t *special_lens;
    int     n_special_lens;
    uint8_t special_first[32];

    /* Algorithm-specific state and entry points, set by tok_<alg>_init.  Load order:
     * tokenizer.c reads tokens/scores/types, the *_token_id keys (-1 when absent) and
     * model/pre, builds the index, then calls the init; the init may set defaults
     * (bos/eos/unk when absent, add_bos, add_eos, add_space_prefix); afterwards the
     * file's add_bos_token / add_eos_token / add_space_prefix keys override them, and
     * tokenizer.c builds specials and eog.  encode and decode may be called from
     * several threads at once: they must not modify v or impl. */
    void   *impl;
    void  (*impl_free)(void *impl);
    /* Encode plain text (no special-token parsing, no BOS; tokenizer.c has already put
     * the space in front when add_space_prefix); same return contract as
     * colloq_vocab_tokenize: total count needed, or < 0 on error. */
    int   (*encode)(const colloq_vocab *v, const char *text, size_t len,
                    colloq_token *out, int cap, colloq_err *err);
    /* Bytes of token t as text (byte tokens -> the byte, "▁" -> " ", byte-level
     * unicode -> bytes).  Returns bytes needed (may exceed cap).  tokenizer.c calls it
     * for every type except CONTROL (and UNKNOWN when render_special), so it decides
     * how USER_DEFINED, UNUSED, UNKNOWN and BYTE tokens read; t is always < v->n. */
    int   (*decode)(const colloq_vocab *v, colloq_token t, char *buf, int cap);
};

/* Id of the token whose text is exactly s[0..len), -1 if none (with duplicate texts,
 * the highest id).  Empty texts are not indexed. */
colloq_token tok_index_find(const colloq_vocab *v, const char *s, size_t len);

/* Set up v->impl/encode/decode for each algorithm (called by colloq_vocab_load). */
int tok_spm_init(colloq_vocab *v, const gguf_file *f, colloq_err *err);
int tok_bpe_init(colloq_vocab *v, const gguf_file *f, colloq_err *err);

#endif
