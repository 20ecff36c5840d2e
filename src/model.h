/*
 * model.h - what the model loader (model.c), the architecture files (arch_*.c),
 * the forward pass (forward.c) and the KV cache (kvcache.c) share: hyper-parameters,
 * the architecture descriptor, bound weight views and the sequence state.
 * Internal to libcolloq; the public API is include/colloq.h.  Weights are views
 * into the GGUF mapping; only small 1-D tensors (norms, biases) are copied as floats.
 */
#ifndef COLLOQ_MODEL_H
#define COLLOQ_MODEL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "colloq.h"
#include "gguf.h"
#include "matmul.h"
#include "threadpool.h"
#include "tokenizer.h"

/* ---- architecture descriptor ---- */

typedef enum { COLLOQ_NORM_RMS, COLLOQ_NORM_LAYER } colloq_norm_kind;      /* LayerNorm: mean removed, + bias */
typedef enum { COLLOQ_ROPE_NONE, COLLOQ_ROPE_ADJACENT, COLLOQ_ROPE_NEOX } colloq_rope_kind;
/* ADJACENT rotates (v[2i], v[2i+1]); NEOX rotates (v[i], v[i + rope_dim/2]); both only for
 * the first rope_dim elements of each head (partial rotary when rope_dim < head_dim). */
typedef enum { COLLOQ_FFN_SWIGLU, COLLOQ_FFN_GELU, COLLOQ_FFN_GELU_ERF } colloq_ffn_kind;
/* SWIGLU: down(silu(gate·n) * (up·n)); GELU: down(gelu(up·n)) with the tanh approximation;
 * GELU_ERF: the exact x/2 (1 + erf(x/sqrt 2)) (Falcon). */

typedef struct colloq_model colloq_model;
typedef struct colloq_arch colloq_arch;

struct colloq_arch {
    const char      *name;              /* general.architecture value */
    colloq_norm_kind norm;
    colloq_rope_kind rope;
    colloq_ffn_kind  ffn;
    bool parallel_block;   /* attention and FFN read the same input: x += attn(n) + ffn(n') */
    bool alibi;            /* ALiBi position bias (slopes for n_head heads, bias 8) instead of RoPE */
    bool fused_qkv;        /* the file has one attn_qkv matrix; bind splits it into wq/wk/wv row views */
    /* Read the <arch>.* keys into m->hp (checks ranges and consistency). */
    int (*load_hparams)(colloq_model *m, colloq_err *err);
    /* Bind every tensor with colloq_bind_mat / colloq_bind_vec (shapes from m->hp). */
    int (*bind)(colloq_model *m, colloq_err *err);
};

/* One entry per architecture file; the table in model.c lists them. */
extern const colloq_arch colloq_arch_llama;
extern const colloq_arch colloq_arch_qwen2;
extern const colloq_arch colloq_arch_qwen;
extern const colloq_arch colloq_arch_falcon;
extern const colloq_arch colloq_arch_baichuan;
extern const colloq_arch colloq_arch_chatglm;

/* ---- hyper-parameters ---- */

typedef struct {
    int   n_vocab;          /* rows of the embedding / output matrix */
    int   n_ctx_train;
    int   dim;              /* embedding length */
    int   n_layer;
    int   n_ff;             /* feed-forward length */
    int   n_head;
    int   n_head_kv;
    int   head_dim;         /* dim / n_head */
    int   rope_dim;         /* rotated elements per head (even, <= head_dim) */
    float norm_eps;
    float rope_base;
    float rope_scale;       /* positions are multiplied by this (1 / linear factor) */
    int   sliding_window;   /* 0 = none; else position i attends to j with i - W < j <= i */
} colloq_hparams;

/* ---- bound weights ---- */

typedef struct {
    const float *attn_norm, *attn_norm_b;     /* [dim]; _b only for LayerNorm */
    colloq_mat   wq, wk, wv, wo;              /* [dim -> n_head*hd], [dim -> n_kv*hd] x2, [n_head*hd -> dim] */
    const float *bq, *bk, *bv, *bo;           /* optional biases (NULL = none) */
    const float *ffn_norm, *ffn_norm_b;       /* [dim]; NULL for a parallel block sharing attn_norm */
    colloq_mat   ffn_gate, ffn_up, ffn_down;  /* gate unused (data NULL) for GELU */
    const float *ffn_up_b, *ffn_down_b;       /* optional */
} colloq_layer;

struct colloq_model {
    char               *path;
    gguf_file          *file;
    const colloq_arch  *arch;
    colloq_hparams      hp;
    colloq_vocab       *vocab;

    colloq_mat          tok_embd;           /* [dim, n_vocab] */
    colloq_mat          output;             /* [dim, n_vocab]; == tok_embd when tied */
    bool                tied_output;
    const float        *output_norm, *output_norm_b;
    const float        *output_scale;       /* [n_vocab] factor per logit (NULL = none), e.g. a normalised head */
    colloq_layer       *layers;             /* n_layer */

    float             **vecs;               /* owned float copies of 1-D tensors */
    int                 n_vecs, cap_vecs;
    uint64_t            weight_bytes;       /* bytes of bound tensors in the mapping */
    uint64_t            packed_bytes;       /* load-time packed weight copies (matmul.h), in memory */

    colloq_pool        *pool;
    int                 n_threads;
    pthread_mutex_t     eval_lock;          /* the pool is not reentrant: one eval at a time */
    bool                verbose;
};

/* ---- helpers for arch files (model.c) ---- */

/* Unsigned hyper-parameter `key` in [lo, hi].  Absent: *out = def and 0 if !required,
 * else a FORMAT error naming the file and key. */
int colloq_hp_u32(colloq_model *m, const char *key, bool required, uint32_t def,
                  uint32_t lo, uint32_t hi, int *out, colloq_err *err);
/* Float hyper-parameter in (lo, hi]; absent: *out = def. */
int colloq_hp_f32(colloq_model *m, const char *key, float def, float lo, float hi,
                  float *out, colloq_err *err);
/* Check the derived values shared by decoder-only models (divisibility, head_dim, rope_dim). */
int colloq_hp_check(colloq_model *m, colloq_err *err);

/* Bind the 2-D weight `name` of k elements per row and n_rows rows.  Checks presence, a
 * type the matmul can use, and the exact shape.  Absent and !required: out->data = NULL
 * and 0 is returned. */
int colloq_bind_mat(colloq_model *m, const char *name, bool required, int64_t k, int64_t n_rows,
                    colloq_mat *out, colloq_err *err);
/* Bind the 1-D tensor `name` of n elements, copied into float storage owned by the model. */
int colloq_bind_vec(colloq_model *m, const char *name, bool required, int64_t n,
                    const float **out, colloq_err *err);
/* "blk.<layer>.<suffix>" into buf (for arch files). */
const char *colloq_blk_name(char *buf, size_t cap, int layer, const char *suffix);

/* ---- sequence state (kvcache.c allocates, forward.c uses) ---- */

#define COLLOQ_CHUNK 256          /* positions evaluated per batched step */
#define COLLOQ_ATT_KTILE 64       /* keys per attention tile */
#define COLLOQ_ATT_ROWS 128       /* query rows (positions x heads of a group) per attention item */

typedef struct {
    float *kt;      /* [KTILE][hd]   key tile (F16 cache converted) */
    float *vt;      /* [KTILE][hd]   value tile */
    float *kT;      /* [hd][KTILE]   key tile transposed */
    float *q;       /* [ROWS][hd]    scaled queries */
    float *acc;     /* [ROWS][hd] */
    float *mx, *sum;/* [ROWS] running max and sum of the online softmax */
    float *s;       /* [ROWS][KTILE] scores, then their exponentials */
} colloq_att_scratch;

struct colloq_seq {
    colloq_model     *model;
    int               n_ctx;
    int               n_past;
    colloq_cache_type cache_type;
    size_t            row_bytes;  /* bytes per cached row of head_dim elements */
    /* KV cache, per layer and kv head: [n_ctx][head_dim] rows (head-major for streaming). */
    void             *k_cache, *v_cache;
    size_t            kv_bytes;   /* each of k_cache / v_cache */

    int    chunk;                 /* positions per step: min(COLLOQ_CHUNK, n_ctx) */
    float *x;        /* [chunk][dim] residual stream */
    float *xn;       /* [chunk][dim] normed input */
    float *tmp;      /* [chunk][dim] block outputs */
    float *tmp2;     /* [chunk][dim] FFN output of a parallel block (NULL otherwise) */
    float *q;        /* [chunk][n_head*hd] */
    float *k, *v;    /* [chunk][n_kv*hd] */
    float *att;      /* [chunk][n_head*hd] attention output */
    float *gate, *up;/* [chunk][n_ff] */
    float *rope_cos, *rope_sin;  /* [chunk][rope_dim/2] for the current step */
    double *inv_freq;            /* [rope_dim/2] */
    char  *mm_scratch;           /* colloq_matmul scratch for chunk rows */
    int    att_qb;               /* positions per attention work item */
    colloq_att_scratch *att_scr; /* one per pool thread */
    int    n_att_scr;
    void  *scratch_base;         /* one block holding every buffer above */
    size_t scratch_bytes;
};

/* Bytes a sequence with n_ctx positions and cache type ct needs beyond the weights
 * (KV cache + scratch), without allocating.  kv_out / scratch_out may be NULL. */
size_t colloq_seq_estimate(const colloq_model *m, int n_ctx, colloq_cache_type ct,
                           size_t *kv_out, size_t *scratch_out);
/* n_ctx 0 -> default (training context capped at 4096). */
int colloq_seq_default_n_ctx(const colloq_model *m);
/* forward.c: whether this architecture's flags are implemented (message if not). */
int colloq_forward_check_arch(const colloq_arch *a, colloq_err *err);
/* forward.c: evaluate n (<= s->chunk) tokens at positions n_past..; writes logits rows
 * for all tokens (all_logits) or only the last (want_last).  Caller checked everything. */
void colloq_forward_chunk(colloq_seq *s, const colloq_token *toks, int n, float *logits,
                          bool all_logits, bool want_last);

/* Several sequences in one pass (batch.c).  Group g owns rows [row0, row0 + n) of the
 * workspace sequence's buffers, at positions seq->n_past..; the groups' rows are
 * contiguous from row 0 and total at most the workspace's chunk.  Each seq is distinct. */
#define COLLOQ_FWD_MAX_GROUPS 64
typedef struct {
    colloq_seq *seq;       /* KV cache written and read */
    int row0, n;
} colloq_fwd_group;
/* kv_rows.c: rows [row0, row0 + n) of the workspace w's k/v into s's cache at positions
 * s->n_past.. of layer l, converted to the cache's type. */
void colloq_kv_store(const colloq_seq *w, colloq_seq *s, int l, int row0, int n);
/* kv_rows.c: key tile [t0, t0 + tn) of layer l, kv head g as float rows ([tn][head_dim]):
 * *k gets the keys, the values are returned; views into an F32 cache, else converted into
 * a's kt / vt. */
const float *colloq_kv_load_tile(const colloq_seq *s, colloq_att_scratch *a, int l, int g, int t0, int tn,
                                 const float **k);
/* attention.c: attention of layer l for every group's rows (w->q -> w->att), reading
 * each group's cache (the current rows already stored). */
void colloq_attention(colloq_seq *w, const colloq_fwd_group *gr, int ng, int l);
/* forward.c: run every layer over the rows of all groups (weights read once per pass);
 * advances each group's n_past.  toks: one id per row.  Caller checked everything. */
void colloq_forward_groups(colloq_seq *work, const colloq_fwd_group *gr, int ng, const colloq_token *toks);
/* forward.c: after colloq_forward_groups, logits (n_rows x n_vocab) of the given workspace rows. */
void colloq_forward_logits(colloq_seq *work, const int *rows, int n_rows, float *logits);

#endif
