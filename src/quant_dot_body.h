/*
 * quant_dot_body.h - row-major kernels written once over a vector abstraction,
 * included by quant_dot_avx512.c and quant_dot_avx2.c: vec_dot of every quantised
 * type against its activation type (256-bit integer vectors), the float tiles of
 * F32/F16/BF16 weights (W-lane float vectors), and fast conversions.  The
 * includer defines Y (256-bit int vector) with ydp(acc,u,a) (acc + 4-byte dots of
 * unsigned u with signed a, levels < 64), yld(p), yset1(x), ybitadd(u,h,bit,add);
 * VF (W floats) with fzero fld(p) fst(p,v) fmul ffma(a,b,c) = a*b + c fset1 fhsum(v),
 * and wld_f32/wld_f16/wld_bf16/wld_q8(p): W weights (int8 levels for q8) as floats; ACT32 / ACT256 name the
 * includer's activation quantisers (colloq_act_fn).  INL = forced inline.
 */

/* ---- helpers on 256-bit integer vectors ---- */

INL Y y_nibbles16(const uint8_t *qs) {            /* 16 bytes -> [low nibbles | high nibbles] */
    __m128i q = _mm_loadu_si128((const __m128i *)(const void *)qs), m = _mm_set1_epi8(0x0f);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m));
}
INL Y y_q5bits(Y u, const uint8_t *qh) {          /* + 16 where bit j of the 32-bit qh is set */
    uint32_t h;
    memcpy(&h, qh, 4);
    /* spread bit j to byte j: byte j of the broadcast dword pattern selects qh byte j / 8 */
    Y v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)h),
                              _mm256_setr_epi64x(0x0000000000000000ll, 0x0101010101010101ll,
                                                 0x0202020202020202ll, 0x0303030303030303ll));
    Y bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    return _mm256_add_epi8(u, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit),
                                               _mm256_set1_epi8(16)));
}
INL int32_t y_hsum(Y v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}
INL float y_fhsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
/* sum of the 32 signed bytes at a (as a dot with ones). */
INL Y y_sum8(const int8_t *a) { return ydp(_mm256_setzero_si256(), _mm256_set1_epi8(1), yld(a)); }

/* ---- 32-element types (activations Q8_0 / Q8_1) ---- */

static float dot_q4_0(int64_t n, const void *vx, const void *vy) {
    const block_q4_0 *x = vx;
    const block_q8_0 *y = vy;
    __m256 f = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK; i++) {
        Y a = yld(y[i].qs);
        Y s = _mm256_sub_epi32(ydp(_mm256_setzero_si256(), y_nibbles16(x[i].qs), a),
                               ydp(_mm256_setzero_si256(), _mm256_set1_epi8(8), a));
        f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(f16f(x[i].d) * f16f(y[i].d)), f);
    }
    return y_fhsum(f);
}
static float dot_q4_1(int64_t n, const void *vx, const void *vy) {
    const block_q4_1 *x = vx;
    const block_q8_1 *y = vy;
    __m256 f = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK; i++) {
        Y a = yld(y[i].qs);
        Y s = ydp(_mm256_setzero_si256(), y_nibbles16(x[i].qs), a);
        float dy = f16f(y[i].d);
        f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(f16f(x[i].d) * dy), f);
        f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(y_sum8(y[i].qs)), _mm256_set1_ps(f16f(x[i].m) * dy), f);
    }
    return y_fhsum(f);
}
static float dot_q5_0(int64_t n, const void *vx, const void *vy) {
    const block_q5_0 *x = vx;
    const block_q8_0 *y = vy;
    __m256 f = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK; i++) {
        Y a = yld(y[i].qs);
        Y s = _mm256_sub_epi32(ydp(_mm256_setzero_si256(), y_q5bits(y_nibbles16(x[i].qs), x[i].qh), a),
                               ydp(_mm256_setzero_si256(), _mm256_set1_epi8(16), a));
        f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(f16f(x[i].d) * f16f(y[i].d)), f);
    }
    return y_fhsum(f);
}
static float dot_q5_1(int64_t n, const void *vx, const void *vy) {
    const block_q5_1 *x = vx;
    const block_q8_1 *y = vy;
    __m256 f = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK; i++) {
        Y a = yld(y[i].qs);
        Y s = ydp(_mm256_setzero_si256(), y_q5bits(y_nibbles16(x[i].qs), x[i].qh), a);
        float dy = f16f(y[i].d);
        f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(f16f(x[i].d) * dy), f);
        f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(y_sum8(y[i].qs)), _mm256_set1_ps(f16f(x[i].m) * dy), f);
    }
    return y_fhsum(f);
}
static float dot_q8_0(int64_t n, const void *vx, const void *vy) {
    const block_q8_0 *x = vx, *y = vy;
    __m256 f = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK; i++) {
        Y w = yld(x[i].qs), a = yld(y[i].qs);
        Y s = ydp(_mm256_setzero_si256(), _mm256_abs_epi8(w), _mm256_sign_epi8(a, w));
        f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(f16f(x[i].d) * f16f(y[i].d)), f);
    }
    return y_fhsum(f);
}

/* ---- K-quants (activations Q8_K) ---- */

/* Scale vector for a 32-element dot whose lanes 0-3 / 4-7 are sub-blocks of 16. */
INL Y y_sc2(int a, int b) { return _mm256_setr_epi32(a, a, a, a, b, b, b, b); }

static float dot_q2_K(int64_t n, const void *vx, const void *vy) {
    const block_q2_K *x = vx;
    const block_q8_K *y = vy;
    float sum = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        Y acc = _mm256_setzero_si256();
        int msum = 0;
        for (int j = 0; j < 16; j++) msum += (x[i].scales[j] >> 4) * y[i].bsums[j];
        for (int nn = 0; nn < 2; nn++) {
            Y q = yld(x[i].qs + 32 * nn);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                Y u = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), _mm256_set1_epi8(3));
                int sb = 8 * nn + 2 * j;
                Y s = ydp(_mm256_setzero_si256(), u, yld(y[i].qs + 128 * nn + 32 * j));
                acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(s, y_sc2(x[i].scales[sb] & 15, x[i].scales[sb + 1] & 15)));
            }
        }
        sum += y[i].d * (f16f(x[i].d) * (float)y_hsum(acc) - f16f(x[i].dmin) * (float)msum);
    }
    return sum;
}

static float dot_q3_K(int64_t n, const void *vx, const void *vy) {
    const block_q3_K *x = vx;
    const block_q8_K *y = vy;
    float sum = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int sc[16], corr = 0;
        for (int j = 0; j < 16; j++) {
            sc[j] = q3k_scale(x[i].scales, j);
            corr += sc[j] * y[i].bsums[j];
        }
        Y acc = _mm256_setzero_si256(), hm = yld(x[i].hmask);
        for (int nn = 0; nn < 2; nn++) {
            Y q = yld(x[i].qs + 32 * nn);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                Y u = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), _mm256_set1_epi8(3));
                u = ybitadd(u, hm, 1 << (4 * nn + j), 4);
                int sb = 8 * nn + 2 * j;
                Y s = ydp(_mm256_setzero_si256(), u, yld(y[i].qs + 128 * nn + 32 * j));
                acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(s, y_sc2(sc[sb], sc[sb + 1])));
            }
        }
        sum += y[i].d * f16f(x[i].d) * (float)(y_hsum(acc) - 4 * corr);
    }
    return sum;
}

INL float dot_q45_K(int64_t n, const uint16_t *dd, size_t stride, const uint8_t *scales, const uint8_t *qs,
                    const uint8_t *qh, const block_q8_K *y) {
    float sum = 0;
    for (int64_t i = 0; i < n / QK_K; i++, dd = (const uint16_t *)(const void *)((const uint8_t *)dd + stride),
         scales += stride, qs += stride, qh = qh ? qh + stride : NULL) {
        int sc[8], mn[8], msum = 0;
        for (int j = 0; j < 8; j++) {
            kq_scale_min(scales, j, &sc[j], &mn[j]);
            msum += mn[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        }
        Y acc = _mm256_setzero_si256(), h = qh ? yld(qh) : _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            Y q = yld(qs + 32 * c);
            Y lo = _mm256_and_si256(q, _mm256_set1_epi8(15)), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), _mm256_set1_epi8(15));
            if (qh) {
                lo = ybitadd(lo, h, 1 << (2 * c), 16);
                hi = ybitadd(hi, h, 2 << (2 * c), 16);
            }
            Y s0 = ydp(_mm256_setzero_si256(), lo, yld(y[i].qs + 64 * c));
            Y s1 = ydp(_mm256_setzero_si256(), hi, yld(y[i].qs + 64 * c + 32));
            acc = _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_mullo_epi32(s0, _mm256_set1_epi32(sc[2 * c])),
                                                         _mm256_mullo_epi32(s1, _mm256_set1_epi32(sc[2 * c + 1]))));
        }
        sum += y[i].d * (f16f(dd[0]) * (float)y_hsum(acc) - f16f(dd[1]) * (float)msum);
    }
    return sum;
}
static float dot_q4_K(int64_t n, const void *vx, const void *vy) {
    const block_q4_K *x = vx;
    return dot_q45_K(n, &x->d, sizeof *x, x->scales, x->qs, NULL, vy);
}
static float dot_q5_K(int64_t n, const void *vx, const void *vy) {
    const block_q5_K *x = vx;
    return dot_q45_K(n, &x->d, sizeof *x, x->scales, x->qs, x->qh, vy);
}

static float dot_q6_K(int64_t n, const void *vx, const void *vy) {
    const block_q6_K *x = vx;
    const block_q8_K *y = vy;
    float sum = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int corr = 0;
        for (int j = 0; j < 16; j++) corr += x[i].scales[j] * y[i].bsums[j];
        Y acc = _mm256_setzero_si256();
        for (int nn = 0; nn < 2; nn++) {
            Y h = yld(x[i].qh + 32 * nn);
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                Y l = yld(x[i].ql + 64 * nn + 32 * (k & 1));
                l = k < 2 ? l : _mm256_srli_epi16(l, 4);
                Y hb = k == 3 ? _mm256_srli_epi16(h, 2) : _mm256_slli_epi16(h, 4 - 2 * k);
                Y u = _mm256_or_si256(_mm256_and_si256(l, _mm256_set1_epi8(15)), _mm256_and_si256(hb, _mm256_set1_epi8(0x30)));
                int sb = 8 * nn + 2 * k;
                Y s = ydp(_mm256_setzero_si256(), u, yld(y[i].qs + 128 * nn + 32 * k));
                acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(s, y_sc2(x[i].scales[sb], x[i].scales[sb + 1])));
            }
        }
        sum += y[i].d * f16f(x[i].d) * (float)(y_hsum(acc) - 32 * corr);
    }
    return sum;
}

/* ---- float weights: tiles (one W-lane accumulator per pair, fixed reduction) ---- */

typedef VF (*wload_fn)(const void *row, int64_t i);
INL VF wl_f32(const void *row, int64_t i) { return wld_f32((const float *)row + i); }
INL VF wl_f16(const void *row, int64_t i) { return wld_f16((const uint16_t *)row + i); }
INL VF wl_bf16(const void *row, int64_t i) { return wld_bf16((const uint16_t *)row + i); }

/* W weights of the tail (k - i < W elements), zero-padded. */
INL VF wl_tail(int kind, const void *row, int64_t i, int64_t k) {
    float tmp[W] = { 0 };
    for (int64_t e = i; e < k; e++) {
        uint16_t h;
        if (kind == 0) {
            memcpy(&tmp[e - i], (const char *)row + 4 * e, 4);
            continue;
        }
        memcpy(&h, (const char *)row + 2 * e, 2);
        tmp[e - i] = kind == 1 ? f16f(h) : colloq_bf16_to_f32(h);
    }
    return fld(tmp);
}
INL VF xl_tail(const float *x, int64_t i, int64_t k) {
    float tmp[W] = { 0 };
    for (int64_t e = i; e < k; e++) tmp[e - i] = x[e];
    return fld(tmp);
}

/* NR rows x NT tokens, NR, NT compile-time. */
INL void tile_rt(int kind, int NR, int NT, int64_t k, const uint8_t *w, uint64_t rb, const float *x,
                 float *out, int64_t ldo) {
    VF acc[4][4];
    for (int r = 0; r < NR; r++)
        for (int t = 0; t < NT; t++) acc[r][t] = fzero();
    int64_t i = 0;
    const int es = kind == 0 ? 4 : 2, line = 64 / es;     /* bytes and elements per cache line */
    for (; i + W <= k; i += W) {
        VF wv[4], xv[4];
        if (i % line == 0)      /* ~2 KiB ahead: decode streams these rows once (see quant_panel_body.h) */
            for (int r = 0; r < NR; r++) __builtin_prefetch(w + r * rb + (uint64_t)(i * es) + 2048);
        for (int r = 0; r < NR; r++)
            wv[r] = kind == 0 ? wl_f32(w + r * rb, i) : kind == 1 ? wl_f16(w + r * rb, i) : wl_bf16(w + r * rb, i);
        for (int t = 0; t < NT; t++) xv[t] = fld(x + t * k + i);
        for (int r = 0; r < NR; r++)
            for (int t = 0; t < NT; t++) acc[r][t] = ffma(wv[r], xv[t], acc[r][t]);
    }
    if (i < k) {
        VF wv[4], xv[4];
        for (int r = 0; r < NR; r++) wv[r] = wl_tail(kind, w + r * rb, i, k);
        for (int t = 0; t < NT; t++) xv[t] = xl_tail(x + t * k, i, k);
        for (int r = 0; r < NR; r++)
            for (int t = 0; t < NT; t++) acc[r][t] = ffma(wv[r], xv[t], acc[r][t]);
    }
    for (int r = 0; r < NR; r++)
        for (int t = 0; t < NT; t++) out[t * ldo + r] = fhsum(acc[r][t]);
}

#define TILE_CASE(kind, R, T) \
    case (R) * 8 + (T): tile_rt(kind, R, T, k, w, rb, x, out, ldo); break;
#define TILE_FN(name, kind)                                                                          \
    static void name(int64_t k, const void *vw, uint64_t rb, int nr, const float *x0, int nt0,       \
                     float *out0, int64_t ldo) {                                                      \
        for (int r0 = 0; r0 < nr; r0 += 4) {                                                          \
            int rr = nr - r0 < 4 ? nr - r0 : 4;                                                       \
            const uint8_t *w = (const uint8_t *)vw + (uint64_t)r0 * rb;                               \
            for (int t0 = 0; t0 < nt0; t0 += TILE_T) {                                                \
                int tt = nt0 - t0 < TILE_T ? nt0 - t0 : TILE_T;                                       \
                const float *x = x0 + (int64_t)t0 * k;                                                \
                float *out = out0 + (int64_t)t0 * ldo + r0;                                           \
                switch (rr * 8 + tt) {                                                                \
                    TILE_CASE(kind, 1, 1) TILE_CASE(kind, 1, 2) TILE_CASE(kind, 1, 3) TILE_CASE(kind, 1, 4) \
                    TILE_CASE(kind, 2, 1) TILE_CASE(kind, 2, 2) TILE_CASE(kind, 2, 3) TILE_CASE(kind, 2, 4) \
                    TILE_CASE(kind, 3, 1) TILE_CASE(kind, 3, 2) TILE_CASE(kind, 3, 3) TILE_CASE(kind, 3, 4) \
                    TILE_CASE(kind, 4, 1) TILE_CASE(kind, 4, 2) TILE_CASE(kind, 4, 3) TILE_CASE(kind, 4, 4) \
                    default: break;                                                                   \
                }                                                                                     \
            }                                                                                         \
        }                                                                                             \
    }                                                                                                 \
    static float name##_dot(int64_t n, const void *w, const void *x) {                                \
        float out;                                                                                    \
        name(n, w, 0, 1, x, 1, &out, 1);                                                              \
        return out;                                                                                   \
    }
TILE_FN(tile_f32, 0)
TILE_FN(tile_f16, 1)
TILE_FN(tile_bf16, 2)
#undef TILE_FN
#undef TILE_CASE

/* ---- to float: exact conversions (a Q8_0 value is an 8-bit level times an f16 scale,
 * which a float holds exactly), so every variant gives the reference's bits ---- */

static void to_float_q8_0(const void *vx, float *y, int64_t n) {
    const block_q8_0 *b = vx;
    for (int64_t i = 0; i < n / QK; i++, b++, y += QK) {
        VF d = fset1(f16f(b->d));
        for (int h = 0; h < QK; h += W) fst(y + h, fmul(wld_q8(b->qs + h), d));
    }
}
static void to_float_f16(const void *vx, float *y, int64_t n) {
    const uint16_t *x = vx;
    int64_t i = 0;
    for (; i + W <= n; i += W) fst(y + i, wld_f16(x + i));
    for (; i < n; i++) y[i] = f16f(x[i]);
}
static void to_float_bf16(const void *vx, float *y, int64_t n) {
    const uint16_t *x = vx;
    int64_t i = 0;
    for (; i + W <= n; i += W) fst(y + i, wld_bf16(x + i));
    for (; i < n; i++) y[i] = colloq_bf16_to_f32(x[i]);
}

/* ---- activation quantisers in the standard block formats (the reference levels) ---- */

static void from_float_q8_0(const float *x, void *vy, int64_t n) {
    block_q8_0 *y = vy;
    colloq_act32 a;
    for (int64_t i = 0; i < n / QK; i++) {
        ACT32(x + i * QK, QK, &a, 1, 0, 0);
        y[i].d = f2h(a.d);
        memcpy(y[i].qs, a.qs, QK);
    }
}
static void from_float_q8_1(const float *x, void *vy, int64_t n) {
    block_q8_1 *y = vy;
    colloq_act32 a;
    for (int64_t i = 0; i < n / QK; i++) {
        ACT32(x + i * QK, QK, &a, 1, 0, 0);
        y[i].d = f2h(a.d);
        y[i].s = f2h(a.d * (float)a.sum);
        memcpy(y[i].qs, a.qs, QK);
    }
}
static void from_float_q8_K(const float *x, void *vy, int64_t n) {
    block_q8_K *y = vy;
    colloq_act256 a;
    for (int64_t i = 0; i < n / QK_K; i++) {
        ACT256(x + i * QK_K, QK_K, &a, 1, 0, 0);
        y[i].d = a.d;
        memcpy(y[i].qs, a.qs, QK_K);
        memcpy(y[i].bsums, a.bs16, sizeof y[i].bsums);
    }
}
