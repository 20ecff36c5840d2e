/*
 * mkmodel.h - writes random-weight GGUF models of real architecture shapes (tensor
 * names and metadata as the common converter writes them for llama, qwen2, qwen,
 * falcon, baichuan and chatglm) for tests, benchmarks and the demo.
 * Weights are deterministic in the seed; tensors are generated and quantised
 * while the file is written, so a 7B file never has to fit in memory.
 * Never used at inference time.
 */
#ifndef COLLOQ_MKMODEL_H
#define COLLOQ_MKMODEL_H

#include <stdbool.h>
#include <stdint.h>
#include "colloq.h"

typedef struct {
    char     shape[32];        /* shape name, used in general.name */
    char     arch[16];         /* general.architecture: llama, qwen2, qwen, falcon, baichuan, chatglm.
                                * falcon with 1 kv head is the 7B layout (one norm), else the 40B
                                * layout (attn_norm_2); baichuan with 40 layers is the 13B (ALiBi) */
    int      dim;              /* embedding length */
    int      n_layers;
    int      n_heads;
    int      n_kv_heads;
    int      ffn;              /* feed-forward length */
    int      ctx;              /* training context length */
    int      sliding_window;   /* 0 = none */
    float    rope_base;
    float    rope_scale;       /* linear scaling factor; 1 = none */
    float    rms_eps;          /* the norm epsilon (RMSNorm, or LayerNorm for falcon) */
    int      n_vocab;          /* 0: the vocabulary's size; larger: the built-in vocabulary padded
                                * with unused tokens to this many rows (real models' sizes) */
    bool     tied;             /* no output.weight: logits use token_embd */
    uint32_t type;             /* enum colloq_type of 2-D weights: F32, F16, BF16, Q8_0, Q4_0 */
    uint64_t seed;
    const char *vocab_path;    /* GGUF whose tokenizer.* keys are copied; NULL = built-in vocabulary */
    int      n_threads;        /* <= 0: physical cores */
} colloq_mkmodel_params;

/* Fill p with a named shape ("mistral-7b", "llama2-7b", "tinyllama-1b", "tiny", "qwen2-7b",
 * "qwen-7b", "falcon-7b", "falcon-40b", "baichuan2-7b", "baichuan2-13b", "chatglm3-6b"),
 * its architecture and defaults (F16, seed 1, built-in vocabulary).  Returns COLLOQ_ERR_ARG
 * for an unknown name. */
int colloq_mkmodel_shape(const char *name, colloq_mkmodel_params *p, colloq_err *err);

/* Set p->arch and that architecture's defaults (RoPE base 1e6 for qwen2, else 1e4; norm
 * epsilon; kv heads = heads for qwen and baichuan, which have no grouped-query attention).
 * Returns COLLOQ_ERR_ARG for an unknown architecture. */
int colloq_mkmodel_set_arch(colloq_mkmodel_params *p, const char *arch, colloq_err *err);

/* Check p (dimensions divisible as the architecture and the type require). */
int colloq_mkmodel_check(const colloq_mkmodel_params *p, colloq_err *err);

/* Write the model to path.  On error the message names the file or the parameter. */
int colloq_mkmodel_write(const colloq_mkmodel_params *p, const char *path, colloq_err *err);

/* Number of tokens in the built-in vocabulary (what a model without vocab_path gets). */
int colloq_mkmodel_builtin_vocab_size(void);

#endif
