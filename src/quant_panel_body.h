/*
 * quant_panel_body.h - the packed-panel kernels of every quantised type written once
 * over a vector abstraction, included by quant_panel_avx512.c (16 lanes, one half)
 * and quant_panel_avx2.c (8 lanes, two halves of a 16-row panel).  Layouts and the
 * per-lane recipe: matmul_pack.h.  The includer defines:
 *   LANES, HALVES, V (int vector), VF (float vector), INL (forced inline), and
 *   vld(p) vst(p,v) vset1(x) vzero() vand vor vadd vsub vsrl16(v,n) vsll16(v,n)
 *   vsrl32 vsll32 vsra32 vmadd16 vcvt(v) vdp(acc,u,p) (acc + 4-byte dots of
 *   unsigned u with the signed dword at p, broadcast), vdp_q8(acc,u,p) (the same
 *   for Q8_0's stored levels + 128, the correction included by Q8_CORR),
 *   vbitadd(u,h,bit,add) (u + add in each byte where h & bit),
 *   vfld vfst vfset1 vfmul vfma(a,b,c) = a*b + c, vfnma(a,b,c) = c - a*b, vhalf(p).
 * Integer work is exact; the float steps follow the recipe in order, so every
 * includer gives the scalar reference's bits.
 */

#define GSTEP (4 * LANES)               /* bytes of one group's half */

/* Software prefetch of [p, p + bytes): decode interleaves some arithmetic with every
 * cache line, and prefetching ~2 KiB ahead keeps enough reads in flight to stay near the
 * memory-bandwidth floor (measured on 7B decode: Q4_0 79 % -> 95 % of the floor, Q4_K_M
 * 80 % -> 88 %; 1-3 KiB ahead measured alike, 4 KiB and more worse).  The K-quant
 * kernels prefetch a quarter super-block at a time for the same distance. */
#define PF_AHEAD 2048
INL void prefetch_range(const uint8_t *p, int bytes) {
    for (int i = 0; i < bytes; i += 64) __builtin_prefetch(p + i);
}

/* ---- 32-element types ---- */

/* Unpacked levels of one block half: nibbles of 4 qs groups, plus the 5th bits when qh. */
INL void unpack32(const uint8_t *qs, const uint8_t *qh, V *u) {
    const V m4 = vset1(0x0f0f0f0f);
    V hb = qh ? vld(qh) : vzero();
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {
        V v = vld(qs + 64 * g);
        u[g] = vand(v, m4);
        u[4 + g] = vand(vsrl16(v, 4), m4);
        if (qh) {
            u[g] = vbitadd(u[g], hb, 1 << g, 16);
            u[4 + g] = vbitadd(u[4 + g], hb, 16 << g, 16);
        }
    }
}

/* One chain: latency is hidden by the independent tokens in flight, and there is no
 * add of two partial sums per block. */
INL V sum32(const V *u, const colloq_act32 *a, bool q8) {
    V s = q8 ? vset1(Q8_CORR(a)) : vset1(a->corr);
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) s = q8 ? vdp_q8(s, u[g], a->qs + 4 * g) : vdp(s, u[g], a->qs + 4 * g);
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) s = q8 ? vdp_q8(s, u[4 + g], a->qs + 16 + 4 * g) : vdp(s, u[4 + g], a->qs + 16 + 4 * g);
    return s;
}

/* Block half h of a panel block at p0: the unpacked levels u, the row scales dw and (kind 1)
 * the row minimums mw. */
INL void load32(const uint8_t *p0, int h, int kind, int qs_off, int qh_off, bool q8, V *u, VF *dw, VF *mw) {
    const uint8_t *p = p0 + GSTEP * h;
    *dw = vhalf(p0 + 2 * LANES * h);
    *mw = kind ? vhalf(p0 + 32 + 2 * LANES * h) : vfset1(0);
    if (q8) {
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) u[g] = vld(p + 32 + 64 * g);
    } else {
        unpack32(p + qs_off, qh_off ? p + qh_off : NULL, u);
    }
}

/* One token's accumulators f of a block half, in the recipe's order (matmul_pack.h). */
INL VF step32(VF f, const V *u, const colloq_act32 *a, VF dw, VF mw, int kind, bool q8) {
    VF da = vfset1(a->d);
    f = vfma(vcvt(sum32(u, a, q8)), vfmul(dw, da), f);
    if (kind) f = vfma(vcvt(vset1(a->sum)), vfmul(mw, da), f);
    return f;
}

/* A few tokens (1..SMALL_NT: decode and the server's batched decode): every token's
 * accumulators kept in registers across the blocks. */
#define SMALL_NT 8
INL void panel32_small(const void *panel, int64_t nb, const colloq_act32 *act, int64_t stride, float *facc,
                       int bytes, int kind, int qs_off, int qh_off, bool q8, const int nt) {
    VF f[SMALL_NT][HALVES];
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++)
#pragma GCC unroll 2
        for (int h = 0; h < HALVES; h++) f[t][h] = vfld(facc + 16 * t + LANES * h);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p0 = (const uint8_t *)panel + b * bytes;
        const colloq_act32 *a = act + b * stride;
        prefetch_range(p0 + PF_AHEAD, bytes);
#pragma GCC unroll 2
        for (int h = 0; h < HALVES; h++) {
            V u[8];
            VF dw, mw;
            load32(p0, h, kind, qs_off, qh_off, q8, u, &dw, &mw);
#pragma GCC unroll 8
            for (int t = 0; t < nt; t++) f[t][h] = step32(f[t][h], u, &a[t], dw, mw, kind, q8);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++)
#pragma GCC unroll 2
        for (int h = 0; h < HALVES; h++) vfst(facc + 16 * t + LANES * h, f[t][h]);
}

/* kind 1: the m term (Q4_1, Q5_1).  Larger batches: per block, every token's accumulators
 * loaded and stored (the same steps). */
INL void panel32(const void *panel, int64_t nb, const void *vact, int64_t stride, int nt, float *facc,
                 int bytes, int kind, int qs_off, int qh_off, bool q8) {
    const colloq_act32 *act = vact;
    switch (nt) {       /* one register-resident copy per batch size */
    case 1: panel32_small(panel, nb, act, stride, facc, bytes, kind, qs_off, qh_off, q8, 1); return;
    case 2: panel32_small(panel, nb, act, stride, facc, bytes, kind, qs_off, qh_off, q8, 2); return;
    case 3: panel32_small(panel, nb, act, stride, facc, bytes, kind, qs_off, qh_off, q8, 3); return;
    case 4: panel32_small(panel, nb, act, stride, facc, bytes, kind, qs_off, qh_off, q8, 4); return;
    case 5: panel32_small(panel, nb, act, stride, facc, bytes, kind, qs_off, qh_off, q8, 5); return;
    case 6: panel32_small(panel, nb, act, stride, facc, bytes, kind, qs_off, qh_off, q8, 6); return;
    case 7: panel32_small(panel, nb, act, stride, facc, bytes, kind, qs_off, qh_off, q8, 7); return;
    case 8: panel32_small(panel, nb, act, stride, facc, bytes, kind, qs_off, qh_off, q8, 8); return;
    default: break;
    }
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p0 = (const uint8_t *)panel + b * bytes;
        const colloq_act32 *a = act + b * stride;
        prefetch_range(p0 + PF_AHEAD, bytes);
#pragma GCC unroll 2
        for (int h = 0; h < HALVES; h++) {
            V u[8];
            VF dw, mw;
            load32(p0, h, kind, qs_off, qh_off, q8, u, &dw, &mw);
            for (int t = 0; t < nt; t++) {
                float *fp = facc + 16 * t + LANES * h;
                vfst(fp, step32(vfld(fp), u, &a[t], dw, mw, kind, q8));
            }
        }
    }
}

static void panel_q4_0(const void *p, int64_t nb, const void *a, int64_t st, int nt, float *f) {
    panel32(p, nb, a, st, nt, f, 288, 0, 32, 0, false);
}
static void panel_q4_1(const void *p, int64_t nb, const void *a, int64_t st, int nt, float *f) {
    panel32(p, nb, a, st, nt, f, 320, 1, 64, 0, false);
}
static void panel_q5_0(const void *p, int64_t nb, const void *a, int64_t st, int nt, float *f) {
    panel32(p, nb, a, st, nt, f, 352, 0, 96, 32, false);
}
static void panel_q5_1(const void *p, int64_t nb, const void *a, int64_t st, int nt, float *f) {
    panel32(p, nb, a, st, nt, f, 384, 1, 128, 64, false);
}
static void panel_q8_0(const void *p, int64_t nb, const void *a, int64_t st, int nt, float *f) {
    panel32(p, nb, a, st, nt, f, 544, 0, 32, 0, true);
}

/* ---- K-quants ---- */

#define TG 64                           /* tokens per inner group (partial sums on the stack) */

INL V lane_byte(V v, int j) { return vand(vsrl32(v, 8 * j), vset1(0xff)); }
INL V lane_sbyte(V v, int j) { return vsra32(vsll32(v, 24 - 8 * j), 24); }
INL V pair16(V lo, V hi) { return vor(vand(lo, vset1(0xffff)), vsll32(hi, 16)); }

/* sum_q pairs[q] . (int16 pair q of v16), via multiply-add of int16 pairs. */
INL V pair_dot(const V *pairs, const int16_t *v16, int np) {
    V s = vzero();
#pragma GCC unroll 8
    for (int q = 0; q < np; q++) {
        int32_t w;
        memcpy(&w, v16 + 2 * q, 4);
        s = vadd(s, vmadd16(pairs[q], vset1(w)));
    }
    return s;
}

/* Two sub-blocks j0, j1 (u[0..glen) at qs a0, u[glen..2 glen) at a1) of every token:
 * g[t] = fma(S_j1, sc1, fma(S_j0, sc0, g[t])), S starting from the level-offset
 * correction when off (corr16 of the sub-block; 16-element sub-blocks only). */
INL void kq_two_subs(const colloq_act256 *a, int nt, const V *u, int a0, int a1, int glen, VF sc0, VF sc1,
                     float *gs, bool first, bool off) {
    for (int t = 0; t < nt; t++) {
        V s0 = off ? vset1(a[t].corr16[a0 / 16]) : vzero(), s1 = off ? vset1(a[t].corr16[a1 / 16]) : vzero();
#pragma GCC unroll 8
        for (int g = 0; g < glen; g++) s0 = vdp(s0, u[g], a[t].qs + a0 + 4 * g);
#pragma GCC unroll 8
        for (int g = 0; g < glen; g++) s1 = vdp(s1, u[glen + g], a[t].qs + a1 + 4 * g);
        VF acc = first ? vfset1(0) : vfld(gs + LANES * t);
        acc = vfma(vcvt(s0), sc0, acc);
        vfst(gs + LANES * t, vfma(vcvt(s1), sc1, acc));
    }
}

/* The float steps of one super-block (nmp > 0: the minimum term from nmp int16 pairs). */
INL void kq_finish(const colloq_act256 *a, int nt, const float *gs, const V *mp, int nmp, bool use32,
                   VF d, VF dmin, float *facc, int h) {
    for (int t = 0; t < nt; t++) {
        float *fp = facc + 16 * t + LANES * h;
        VF da = vfset1(a[t].d), f = vfld(fp);
        f = vfma(vfld(gs + LANES * t), vfmul(d, da), f);
        if (nmp) {
            V ms = pair_dot(mp, use32 ? a[t].bs32 : a[t].bs16, nmp);
            f = vfnma(vcvt(ms), vfmul(dmin, da), f);
        }
        vfst(fp, f);
    }
}

/* Q4_K / Q5_K: 8 sub-blocks of 32, 6-bit scales and mins. */
INL void panel_q45k(const void *panel, int64_t nb, const void *vact, int64_t stride, int nt0, float *facc,
                    bool q5) {
    const V m4 = vset1(0x0f0f0f0f), m6 = vset1(63), m15 = vset1(15), m3 = vset1(3);
    const int bytes = q5 ? 2816 : 2304, qs_off = q5 ? 768 : 256;
    float gs[TG * LANES] __attribute__((aligned(64)));
    for (int64_t b = 0; b < nb; b++) {
#pragma GCC unroll 2
        for (int h = 0; h < HALVES; h++) {
            const uint8_t *p0 = (const uint8_t *)panel + b * bytes, *p = p0 + GSTEP * h;
            VF d = vhalf(p0 + 2 * LANES * h), dmin = vhalf(p0 + 32 + 2 * LANES * h), sc[8];
            V s0 = vld(p + 64), s1 = vld(p + 128), s2 = vld(p + 192), mn[8], mp[4];
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                sc[j] = vcvt(vand(lane_byte(s0, j), m6));
                mn[j] = vand(lane_byte(s1, j), m6);
                V e = lane_byte(s2, j);
                sc[4 + j] = vcvt(vor(vand(e, m15), vsll32(vand(vsrl32(s0, 8 * j + 6), m3), 4)));
                mn[4 + j] = vor(vsrl32(e, 4), vsll32(vand(vsrl32(s1, 8 * j + 6), m3), 4));
            }
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++) mp[q] = pair16(mn[2 * q], mn[2 * q + 1]);
            for (int t0 = 0; t0 < nt0; t0 += TG) {
                int nt = nt0 - t0 < TG ? nt0 - t0 : TG;
                const colloq_act256 *a = (const colloq_act256 *)vact + b * stride + t0;
#pragma GCC unroll 4
                for (int c = 0; c < 4; c++) {
                    V u[16];
                    if (h == 0 && t0 == 0) prefetch_range(p0 + bytes / 4 * c + PF_AHEAD, bytes / 4);
#pragma GCC unroll 8
                    for (int g = 0; g < 8; g++) {
                        V v = vld(p + qs_off + 64 * (8 * c + g));
                        u[g] = vand(v, m4);
                        u[8 + g] = vand(vsrl16(v, 4), m4);
                        if (q5) {
                            V hb = vld(p + 256 + 64 * g);
                            u[g] = vbitadd(u[g], hb, 1 << (2 * c), 16);
                            u[8 + g] = vbitadd(u[8 + g], hb, 2 << (2 * c), 16);
                        }
                    }
                    kq_two_subs(a, nt, u, 64 * c, 64 * c + 32, 8, sc[2 * c], sc[2 * c + 1], gs, c == 0, false);
                }
                kq_finish(a, nt, gs, mp, 4, true, d, dmin, facc + 16 * t0, h);
            }
        }
    }
}
static void panel_q4_K(const void *p, int64_t nb, const void *a, int64_t st, int nt, float *f) {
    panel_q45k(p, nb, a, st, nt, f, false);
}
static void panel_q5_K(const void *p, int64_t nb, const void *a, int64_t st, int nt, float *f) {
    panel_q45k(p, nb, a, st, nt, f, true);
}

/* Q6_K: 16 sub-blocks of 16, signed 8-bit scales, levels u - 32 (corr16 folds the 32 in). */
static void panel_q6_K(const void *panel, int64_t nb, const void *vact, int64_t stride, int nt0, float *facc) {
    const V m4 = vset1(0x0f0f0f0f), m30 = vset1(0x30303030);
    float gs[TG * LANES] __attribute__((aligned(64)));
    for (int64_t b = 0; b < nb; b++) {
        for (int h = 0; h < HALVES; h++) {
            const uint8_t *p0 = (const uint8_t *)panel + b * 3360, *p = p0 + GSTEP * h;
            VF d = vhalf(p0 + 2 * LANES * h), sc[16];
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                V s = vld(p + 32 + 64 * i);
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++) sc[4 * i + j] = vcvt(lane_sbyte(s, j));
            }
            for (int t0 = 0; t0 < nt0; t0 += TG) {
                int nt = nt0 - t0 < TG ? nt0 - t0 : TG;
                const colloq_act256 *a = (const colloq_act256 *)vact + b * stride + t0;
#pragma GCC unroll 2
                for (int n = 0; n < 2; n++)
#pragma GCC unroll 2
                    for (int hh = 0; hh < 2; hh++) {     /* ql half hh: k = hh (low nibbles), hh + 2 (high) */
                        V u[16];
                        const uint8_t *pn = p + 288 + 1536 * n;
                        if (h == 0 && t0 == 0) prefetch_range(p0 + 840 * (2 * n + hh) + PF_AHEAD, 840);
#pragma GCC unroll 8
                        for (int g = 0; g < 8; g++) {
                            V l = vld(pn + 1024 * hh + 64 * g), hb = vld(pn + 512 + 64 * g);
                            V h0 = hh ? vsll16(hb, 2) : vsll16(hb, 4), h2 = hh ? vsrl16(hb, 2) : hb;
                            u[g] = vor(vand(l, m4), vand(h0, m30));
                            u[8 + g] = vor(vand(vsrl16(l, 4), m4), vand(h2, m30));
                        }
#pragma GCC unroll 2
                        for (int kk = 0; kk < 2; kk++) {
                            int e0 = 128 * n + 32 * (hh + 2 * kk);
                            kq_two_subs(a, nt, u + 8 * kk, e0, e0 + 16, 4, sc[e0 / 16], sc[e0 / 16 + 1], gs,
                                        n == 0 && hh == 0 && kk == 0, true);
                        }
                    }
                kq_finish(a, nt, gs, NULL, 0, false, d, d, facc + 16 * t0, h);
            }
        }
    }
}

/* Q2_K: 16 sub-blocks of 16, 4-bit scales and mins, 2-bit levels. */
static void panel_q2_K(const void *panel, int64_t nb, const void *vact, int64_t stride, int nt0, float *facc) {
    const V m2 = vset1(0x03030303), m15 = vset1(15);
    float gs[TG * LANES] __attribute__((aligned(64)));
    for (int64_t b = 0; b < nb; b++) {
        for (int h = 0; h < HALVES; h++) {
            const uint8_t *p0 = (const uint8_t *)panel + b * 1344, *p = p0 + GSTEP * h;
            if (h == 0) prefetch_range(p0 + PF_AHEAD, 1344);
            VF d = vhalf(p0 + 2 * LANES * h), dmin = vhalf(p0 + 32 + 2 * LANES * h), sc[16];
            V mn[16], mp[8];
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                V s = vld(p + 64 + 64 * i);
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++) {
                    V v = lane_byte(s, j);
                    sc[4 * i + j] = vcvt(vand(v, m15));
                    mn[4 * i + j] = vsrl32(v, 4);
                }
            }
#pragma GCC unroll 8
            for (int q = 0; q < 8; q++) mp[q] = pair16(mn[2 * q], mn[2 * q + 1]);
            for (int t0 = 0; t0 < nt0; t0 += TG) {
                int nt = nt0 - t0 < TG ? nt0 - t0 : TG;
                const colloq_act256 *a = (const colloq_act256 *)vact + b * stride + t0;
#pragma GCC unroll 2
                for (int n = 0; n < 2; n++)
#pragma GCC unroll 4
                    for (int j = 0; j < 4; j++) {
                        V u[8];
#pragma GCC unroll 8
                        for (int g = 0; g < 8; g++) u[g] = vand(vsrl16(vld(p + 320 + 64 * (8 * n + g)), 2 * j), m2);
                        int e0 = 128 * n + 32 * j;
                        kq_two_subs(a, nt, u, e0, e0 + 16, 4, sc[e0 / 16], sc[e0 / 16 + 1], gs, n == 0 && j == 0,
                                    false);
                    }
                kq_finish(a, nt, gs, mp, 8, false, d, dmin, facc + 16 * t0, h);
            }
        }
    }
}

/* Q3_K: 16 sub-blocks of 16, 6-bit signed scales, levels (2 bits | hmask bit << 2) - 4. */
static void panel_q3_K(const void *panel, int64_t nb, const void *vact, int64_t stride, int nt0, float *facc) {
    const V m2 = vset1(0x03030303), m15 = vset1(15), m3 = vset1(3), c32 = vset1(32);
    float gs[TG * LANES] __attribute__((aligned(64)));
    for (int64_t b = 0; b < nb; b++) {
        for (int h = 0; h < HALVES; h++) {
            const uint8_t *p0 = (const uint8_t *)panel + b * 1760, *p = p0 + GSTEP * h;
            if (h == 0) prefetch_range(p0 + PF_AHEAD, 1760);
            VF d = vhalf(p0 + 2 * LANES * h), sc[16];
            V s[3] = { vld(p + 32), vld(p + 96), vld(p + 160) };
#pragma GCC unroll 16
            for (int j = 0; j < 16; j++) {
                V lo = j < 8 ? vand(lane_byte(s[(j % 8) / 4], j % 4), m15) : vsrl32(lane_byte(s[(j % 8) / 4], j % 4), 4);
                V hi = vand(vsrl32(lane_byte(s[2], j & 3), 2 * (j >> 2)), m3);
                sc[j] = vcvt(vsub(vor(lo, vsll32(hi, 4)), c32));
            }
            for (int t0 = 0; t0 < nt0; t0 += TG) {
                int nt = nt0 - t0 < TG ? nt0 - t0 : TG;
                const colloq_act256 *a = (const colloq_act256 *)vact + b * stride + t0;
#pragma GCC unroll 2
                for (int n = 0; n < 2; n++)
#pragma GCC unroll 4
                    for (int j = 0; j < 4; j++) {
                        V u[8];
#pragma GCC unroll 8
                        for (int g = 0; g < 8; g++) {
                            u[g] = vand(vsrl16(vld(p + 736 + 64 * (8 * n + g)), 2 * j), m2);
                            u[g] = vbitadd(u[g], vld(p + 224 + 64 * g), 1 << (4 * n + j), 4);
                        }
                        int e0 = 128 * n + 32 * j;
                        kq_two_subs(a, nt, u, e0, e0 + 16, 4, sc[e0 / 16], sc[e0 / 16 + 1], gs, n == 0 && j == 0,
                                    true);
                    }
                kq_finish(a, nt, gs, NULL, 0, false, d, d, facc + 16 * t0, h);
            }
        }
    }
}

#undef GSTEP
#undef TG
