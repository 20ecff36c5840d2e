/*
 * gguf.h - GGUF file format (v2, v3): validated reader over an mmap, and a writer.
 * Knows the file format only: nothing about models, tokenizers or math.
 * Every count, length, offset and dimension is checked before use; errors name
 * the file, the field and the offending value.
 */
#ifndef COLLOQ_GGUF_H
#define COLLOQ_GGUF_H

#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include "util.h"

enum gguf_vtype {
    GGUF_T_UINT8 = 0, GGUF_T_INT8 = 1, GGUF_T_UINT16 = 2, GGUF_T_INT16 = 3,
    GGUF_T_UINT32 = 4, GGUF_T_INT32 = 5, GGUF_T_FLOAT32 = 6, GGUF_T_BOOL = 7,
    GGUF_T_STRING = 8, GGUF_T_ARRAY = 9, GGUF_T_UINT64 = 10, GGUF_T_INT64 = 11,
    GGUF_T_FLOAT64 = 12, GGUF_T_COUNT
};

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

typedef struct { uint64_t len; const char *s; } gguf_str;   /* not NUL-terminated */

typedef struct {
    gguf_str key;
    enum gguf_vtype type;
    /* Scalars: UINT8..UINT64 in u64, INT8..INT64 in i64, FLOAT32/FLOAT64 in f64,
     * BOOL in b (the file must hold 0 or 1), STRING in str. */
    union {
        uint64_t u64; int64_t i64; double f64; bool b; gguf_str str;
        struct { enum gguf_vtype type; uint64_t n; const void *data; } arr;
        /* arr.data points into the file: raw little-endian elements, or for
         * string arrays the first serialized string (use gguf_arr_str).
         * Arrays of arrays are rejected at open. */
    } v;
} gguf_kv;

typedef struct {
    gguf_str name;
    uint32_t type;                /* ggml tensor type id (see quant.h) */
    uint32_t n_dims;
    int64_t  ne[GGUF_MAX_DIMS];   /* ne[0] is the contiguous (row) dimension; unused = 1 */
    uint64_t offset;              /* relative to the data section */
    uint64_t nbytes;
    const void *data;             /* into the mapping */
} gguf_tensor;

typedef struct gguf_file gguf_file;

/* Open and validate.  The mapping lives until gguf_close.  Errors: COLLOQ_ERR_IO (cannot
 * open/map), COLLOQ_ERR_FORMAT (malformed: the message names file, entry, field and value),
 * COLLOQ_ERR_UNSUPPORTED (version 1, big-endian, a tensor type this build lacks),
 * COLLOQ_ERR_NOMEM.  A gguf_file is read-only after open and may be shared by threads.
 * Tensor data is not read during open; the file must not be truncated while it is mapped. */
int  gguf_open(const char *path, gguf_file **out, colloq_err *err);
/* Same, over a caller-owned buffer (used by tests); buf must outlive the gguf_file. */
int  gguf_open_buffer(const void *buf, size_t len, const char *name, gguf_file **out, colloq_err *err);
void gguf_close(gguf_file *f);

const char *gguf_path(const gguf_file *f);
uint32_t    gguf_version(const gguf_file *f);
uint64_t    gguf_alignment(const gguf_file *f);
size_t      gguf_file_size(const gguf_file *f);
uint64_t    gguf_data_offset(const gguf_file *f);   /* start of the data section in the file */

uint64_t       gguf_n_kv(const gguf_file *f);
const gguf_kv *gguf_kv_at(const gguf_file *f, uint64_t i);
const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key);   /* NULL if absent */

uint64_t           gguf_n_tensors(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, uint64_t i);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* Typed getters: return 0 and set *out, COLLOQ_ERR_FORMAT if the key has an
 * incompatible type (message names file/key/type), or 1 if the key is absent.
 * gguf_get_u32 accepts any integer type whose value fits in uint32; gguf_get_f32 accepts
 * float32, float64 and integers; bool and string must match exactly. */
int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, colloq_err *err);
int gguf_get_f32(const gguf_file *f, const char *key, float *out, colloq_err *err);
int gguf_get_bool(const gguf_file *f, const char *key, bool *out, colloq_err *err);
int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, colloq_err *err);
/* Array accessors: index is bounds-checked by the caller against v.arr.n (out of range,
 * or the wrong array type, gives an empty string / 0).  kv must come from a gguf_file. */
gguf_str gguf_arr_str(const gguf_kv *kv, uint64_t i);   /* string arrays (O(1): offsets indexed at open) */
double   gguf_arr_num(const gguf_kv *kv, uint64_t i);   /* numeric arrays of any width */

const char *gguf_vtype_name(enum gguf_vtype t);
bool gguf_str_eq(gguf_str a, const char *b);
/* Print metadata and tensor list (what `colloq info` shows for the file part). */
void gguf_describe(const gguf_file *f, FILE *out);

/* ---- writer ---- */
typedef struct gguf_writer gguf_writer;
gguf_writer *gguf_writer_new(void);
void gguf_writer_free(gguf_writer *w);
void gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
void gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
void gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
void gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
void gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
/* Copy a key/value (any type, including arrays) from an open file. */
void gguf_writer_copy_kv(gguf_writer *w, const gguf_kv *kv);
void gguf_writer_set_arr_num(gguf_writer *w, const char *key, enum gguf_vtype t, const void *data, uint64_t n);
void gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *strs, uint64_t n);
/* Add a tensor; data is copied lazily: it must stay valid until gguf_writer_write.
 * nbytes must equal the size implied by type and ne. */
void gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                            const int64_t *ne, const void *data, uint64_t nbytes);
/* Add a tensor whose bytes are produced when the file is written (for files larger
 * than memory): fill(ctx, buf, nbytes) writes exactly nbytes into buf and returns 0. */
typedef int (*gguf_fill_fn)(void *ctx, void *buf, uint64_t nbytes);
void gguf_writer_add_tensor_cb(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                               const int64_t *ne, uint64_t nbytes, gguf_fill_fn fill, void *ctx);
/* Errors inside the setters (bad argument, out of memory) are sticky: the first one is
 * returned by gguf_writer_write.  All functions accept w == NULL (failed gguf_writer_new). */
/* Setting a key that is already set replaces its value (it keeps its position).
 * Write version 3 with the given alignment (0 = default 32; must be a power of two).
 * general.alignment is written with that alignment, replacing a value set or copied
 * earlier; it is omitted when 32 and never set.  The file is written to PATH.partial and
 * renamed on success (an existing non-regular PATH such as a device is written in place). */
int  gguf_writer_write(gguf_writer *w, const char *path, uint32_t alignment, colloq_err *err);

#endif
