/*
 * quantize.h - converts a GGUF model file to another tensor type or to one of the
 * common K-quant mixes, streaming tensor by tensor (a 7B file never has to fit in
 * memory).  Used by `colloq quantize`; never at inference time.
 */
#ifndef COLLOQ_QUANTIZE_H
#define COLLOQ_QUANTIZE_H

#include <stdbool.h>
#include <stdint.h>
#include "colloq.h"

typedef struct {
    const char *type;      /* F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K,
                              Q3_K_M Q4_K_M Q5_K_M (case-insensitive) */
    int  n_threads;        /* <= 0: physical cores */
    bool pure;             /* every 2-D weight gets the base type (row-length fallbacks still apply) */
} colloq_quantize_params;

typedef struct {
    int      n_tensors, n_converted, n_copied;
    uint64_t bytes_in, bytes_out;   /* tensor data */
    int      n_fallback;            /* tensors whose rows did not fit the chosen type's blocks */
} colloq_quantize_stats;

/* Convert in to out.  Copies every metadata key, sets general.file_type (llama.cpp's
 * numbering) and general.quantization_version.  out is written to OUT.partial and
 * renamed on success.  stats may be NULL.  Errors: COLLOQ_ERR_ARG (unknown type, out
 * is in), and those of the GGUF reader and writer. */
int colloq_quantize_file(const char *in, const char *out, const colloq_quantize_params *p,
                         colloq_quantize_stats *stats, colloq_err *err);

/* The type a mix gives one tensor: name (e.g. "blk.3.attn_v.weight"), row length ne0,
 * n_dims, the model's layer count and whether the file has output.weight.  Returns a
 * type id (enum colloq_type), or -1 for an unknown mix name.  Exposed for tests. */
int colloq_quantize_tensor_type(const char *mix, bool pure, const char *name, int64_t ne0, uint32_t n_dims,
                                int n_layers, bool has_output);

#endif
