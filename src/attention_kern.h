/*
 * attention_kern.h - the attention work-item kernels (attention_body.h compiled once per
 * instruction set: attention.c portable, attention_avx2.c, attention_avx512.c) and how
 * attention.c hands them one work item.  Internal to libcolloq.
 */
#ifndef COLLOQ_ATTENTION_KERN_H
#define COLLOQ_ATTENTION_KERN_H

#include "model.h"

/* One work item: positions [i0, i1) of a group's rows for heads [ha, hb), which all read
 * kv head g of layer l in s's cache.  q / o: the group's first row of the workspace's
 * query / attention-output buffers.  Row r of the item is position i0 + r / (hb - ha),
 * head ha + r % (hb - ha). */
typedef struct {
    const colloq_seq *s;
    colloq_att_scratch *a;
    const float *q;
    float *o;
    int l, g, ha, hb, i0, i1;
} colloq_att_item;

typedef void (*colloq_att_item_fn)(const colloq_att_item *it);

void colloq_att_item_ref(const colloq_att_item *it);
#if defined(__x86_64__)
void colloq_att_item_avx2(const colloq_att_item *it);
void colloq_att_item_avx512(const colloq_att_item *it);
#endif

/* The kernel for a kernel set ("ref", "avx2", "avx512"; NULL = the one
 * colloq_kernels_isa() chose); NULL when this build or CPU lacks it. */
colloq_att_item_fn colloq_att_kernel(const char *isa);
/* colloq_attention with a given kernel (tests compare the variants). */
void colloq_attention_with(colloq_seq *w, const colloq_fwd_group *gr, int ng, int l, colloq_att_item_fn fn);

/* The exponential the kernels use (attention_body.h), exposed for its error test. */
float colloq_att_exp_ref(float x);

#endif
