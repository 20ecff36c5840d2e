/*
 * colloq.h - the public API of libcolloq.
 *
 * Opaque handles with _load/_free (or _init/_free) pairs.  Every function that
 * can fail returns a colloq_status (0 ok, negative error) and, when given a
 * colloq_err, writes a human-readable message into it.  Bad input (a malformed
 * file, a wrong argument) is reported this way; the library never aborts or
 * exits on bad input.
 *
 * Thread safety: a colloq_model is read-only after loading and may be shared by
 * threads; a colloq_seq and a colloq_sampler belong to one thread at a time.
 */
#ifndef COLLOQ_H
#define COLLOQ_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define COLLOQ_VERSION "0.1.0"

typedef enum {
    COLLOQ_OK              =  0,
    COLLOQ_ERR_IO          = -1,   /* file cannot be opened/read/mapped/written */
    COLLOQ_ERR_FORMAT      = -2,   /* malformed file contents */
    COLLOQ_ERR_UNSUPPORTED = -3,   /* valid but not supported (arch, type, ...) */
    COLLOQ_ERR_NOMEM       = -4,
    COLLOQ_ERR_ARG         = -5,   /* invalid argument from the caller */
    COLLOQ_ERR_CONTEXT     = -6,   /* context window full */
    COLLOQ_ERR_CANCELLED   = -7,
} colloq_status;

typedef struct { char msg[512]; } colloq_err;

typedef int32_t colloq_token;

typedef struct colloq_model   colloq_model;    /* weights + tokenizer, shared, read-only */
typedef struct colloq_seq     colloq_seq;      /* one sequence: KV cache + position */
typedef struct colloq_sampler colloq_sampler;  /* sampling state + RNG */

/* ---- model ---- */
typedef struct {
    int  n_threads;        /* 0 = number of physical cores */
    bool verbose;          /* log load details to stderr */
} colloq_model_params;

colloq_model_params colloq_model_default_params(void);
/* Load a GGUF model (weights are mmapped, not copied).  On success *out owns the mapping. */
int  colloq_model_load(const char *path, const colloq_model_params *p, colloq_model **out, colloq_err *err);
void colloq_model_free(colloq_model *m);

int         colloq_model_n_vocab(const colloq_model *m);
int         colloq_model_n_ctx_train(const colloq_model *m);
const char *colloq_model_arch(const colloq_model *m);
/* Bytes of weight copies the model keeps in memory beyond the file mapping (weights
 * repacked at load for the SIMD kernels; 0 when none). */
size_t      colloq_model_packed_bytes(const colloq_model *m);
/* Print architecture, hyper-parameters, tensors and metadata (what `colloq info` shows). */
void        colloq_model_describe(const colloq_model *m, void *FILE_stream);

/* ---- tokenizer (owned by the model) ---- */
colloq_token colloq_token_bos(const colloq_model *m);   /* -1 if none */
colloq_token colloq_token_eos(const colloq_model *m);   /* -1 if none */
bool         colloq_token_is_eog(const colloq_model *m, colloq_token t);  /* EOS / end of turn */
bool         colloq_model_add_bos(const colloq_model *m);

/* Tokenize text (len bytes, need not be NUL-terminated).  add_bos: prepend BOS if the
 * model wants one; parse_special: text matching a control/user-defined token becomes that
 * token.  Writes up to cap ids; returns the total number needed (may exceed cap) or < 0. */
int colloq_tokenize(const colloq_model *m, const char *text, size_t len, bool add_bos,
                    bool parse_special, colloq_token *out, int cap, colloq_err *err);
/* Bytes of one token's text (special tokens render as their text when render_special).
 * Returns the number of bytes needed (may exceed cap) or < 0. */
int colloq_token_to_piece(const colloq_model *m, colloq_token t, bool render_special,
                          char *buf, int cap);

/* ---- sequence (KV cache allocated up front) ---- */
typedef enum { COLLOQ_CACHE_F16 = 0, COLLOQ_CACHE_F32 = 1, COLLOQ_CACHE_Q8_0 = 2 } colloq_cache_type;
typedef struct {
    int n_ctx;                     /* 0 = model's training context, capped at 4096 */
    colloq_cache_type cache_type;
} colloq_seq_params;

colloq_seq_params colloq_seq_default_params(void);
int  colloq_seq_init(colloq_model *m, const colloq_seq_params *p, colloq_seq **out, colloq_err *err);
void colloq_seq_free(colloq_seq *s);
int  colloq_seq_n_past(const colloq_seq *s);
int  colloq_seq_n_ctx(const colloq_seq *s);
/* Forget positions >= n_keep. */
void colloq_seq_truncate(colloq_seq *s, int n_keep);
/* Bytes allocated for the KV cache and scratch buffers (beyond the mmapped weights). */
size_t colloq_seq_memory(const colloq_seq *s);
/* Evaluate n tokens at the next positions.  If all_logits, logits receives n rows of
 * n_vocab floats, else only the last row (n_vocab floats).  logits may be NULL. */
int  colloq_seq_eval(colloq_seq *s, const colloq_token *toks, int n, float *logits,
                     bool all_logits, colloq_err *err);

/* ---- sampler ---- */
typedef struct {
    float    temperature;        /* 0 = greedy */
    int      top_k;              /* 0 = off */
    float    top_p;              /* 1 = off */
    float    min_p;              /* 0 = off */
    float    repeat_penalty;     /* 1 = off */
    int      repeat_last_n;      /* window for penalties */
    float    presence_penalty;   /* 0 = off */
    float    frequency_penalty;  /* 0 = off */
    uint64_t seed;
} colloq_sampler_params;

colloq_sampler_params colloq_sampler_default_params(void);
int  colloq_sampler_init(const colloq_sampler_params *p, int n_vocab, colloq_sampler **out, colloq_err *err);
void colloq_sampler_free(colloq_sampler *s);
/* Remember a token (prompt or generated) for the penalties. */
void colloq_sampler_accept(colloq_sampler *s, colloq_token t);
/* Pick the next token from logits (n_vocab floats; modified in place). */
colloq_token colloq_sampler_sample(colloq_sampler *s, float *logits);

#ifdef __cplusplus
}
#endif
#endif
