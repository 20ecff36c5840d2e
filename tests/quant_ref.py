#!/usr/bin/env python3
"""Independent float64 decoder of the GGUF/ggml tensor types, and the test that
checks colloq's C kernels against it.

Importable by other tests:
    dequantize(type_id, raw, n_elements) -> numpy.ndarray (float64)
    TYPES (name -> id), TYPE_NAMES (id -> name), TYPE_SIZES (id -> (elements, bytes) per block),
    row_size(type_id, n_elements) -> bytes
    VEC_DOT_TYPE (weight type id -> activation type id),
    activation_roundtrip(weight_type_id, x) -> the activations matmul actually uses

Written from the published block layouts, not from the C code.  Run as a script
with the path of the test_quant binary: it asks the binary to dump random blocks,
quantizer output and half-precision conversions, decodes them here and compares.

Tolerances: the decoders here are exact in float64.  C's to_float rounds each
element once to float32; that is exact for F32/F16/BF16, Q4_0, Q5_0, Q8_0, Q8_1,
Q3_K and Q6_K (scale x level fits 24 bits), which must match bit for bit.  For
Q4_1, Q5_1, Q2_K, Q4_K, Q5_K (scale*q + min) and Q8_K (float32 scale) each element
may differ by 2^-22 * (|scale term| + |min term|).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

QK = 32
QK_K = 256

TYPES = {
    'F32': 0, 'F16': 1, 'Q4_0': 2, 'Q4_1': 3, 'Q5_0': 6, 'Q5_1': 7, 'Q8_0': 8, 'Q8_1': 9,
    'Q2_K': 10, 'Q3_K': 11, 'Q4_K': 12, 'Q5_K': 13, 'Q6_K': 14, 'Q8_K': 15, 'BF16': 30,
}
TYPE_NAMES = {v: k for k, v in TYPES.items()}

# id -> (elements per block, bytes per block), from the GGUF block layouts.
TYPE_SIZES = {
    0: (1, 4), 1: (1, 2), 30: (1, 2),
    2: (QK, 2 + 16),                 # Q4_0: d, qs[16]
    3: (QK, 2 + 2 + 16),             # Q4_1: d, m, qs[16]
    6: (QK, 2 + 4 + 16),             # Q5_0: d, qh[4], qs[16]
    7: (QK, 2 + 2 + 4 + 16),         # Q5_1: d, m, qh[4], qs[16]
    8: (QK, 2 + 32),                 # Q8_0: d, qs[32]
    9: (QK, 2 + 2 + 32),             # Q8_1: d, s, qs[32]
    10: (QK_K, 16 + 64 + 2 + 2),     # Q2_K: scales[16], qs[64], d, dmin
    11: (QK_K, 32 + 64 + 12 + 2),    # Q3_K: hmask[32], qs[64], scales[12], d
    12: (QK_K, 2 + 2 + 12 + 128),    # Q4_K: d, dmin, scales[12], qs[128]
    13: (QK_K, 2 + 2 + 12 + 32 + 128),  # Q5_K: d, dmin, scales[12], qh[32], qs[128]
    14: (QK_K, 128 + 64 + 16 + 2),   # Q6_K: ql[128], qh[64], scales[16] (int8), d
    15: (QK_K, 4 + 256 + 32),        # Q8_K: d (f32), qs[256], bsums[16] (int16)
}

# Types whose C float32 dequantisation must equal the float64 value exactly.
EXACT_TYPES = {0, 1, 30, 2, 6, 8, 9, 11, 14}


def row_size(type_id, n_elements):
    blck, size = TYPE_SIZES[type_id]
    if n_elements % blck:
        raise ValueError('%s: %d elements is not a whole number of blocks' % (TYPE_NAMES[type_id], n_elements))
    return n_elements // blck * size


# ---- field access on an (n_blocks, block_bytes) uint8 array ----

def _f16(b, off):
    return np.ascontiguousarray(b[:, off:off + 2]).view('<f2')[:, 0].astype(np.float64)


def _f32(b, off):
    return np.ascontiguousarray(b[:, off:off + 4]).view('<f4')[:, 0].astype(np.float64)


def _i8(b, lo, hi):
    return np.ascontiguousarray(b[:, lo:hi]).view(np.int8).astype(np.int64)


def _u(b, lo, hi):
    return b[:, lo:hi].astype(np.int64)


def _nibbles32(qs):
    """16 bytes -> 32 levels: low nibbles are elements 0..15, high nibbles 16..31."""
    return np.concatenate([qs & 15, qs >> 4], axis=1)


def _fifth_bits(qh4):
    """4 bytes little-endian uint32 -> bit j for element j (0..31)."""
    word = qh4[:, 0] | (qh4[:, 1] << 8) | (qh4[:, 2] << 16) | (qh4[:, 3] << 24)
    return (word[:, None] >> np.arange(32)[None, :]) & 1


def _k_scale_min(s):
    """Q4_K/Q5_K: 12 bytes -> 8 six-bit scales and 8 six-bit mins, each (nb, 8)."""
    sc = np.zeros((s.shape[0], 8), np.int64)
    mn = np.zeros((s.shape[0], 8), np.int64)
    for j in range(4):
        sc[:, j] = s[:, j] & 63
        mn[:, j] = s[:, j + 4] & 63
        # sub-blocks 4..7: low 4 bits in byte 8+j, high 2 bits in the top of bytes j / j+4
        sc[:, j + 4] = (s[:, j + 8] & 15) | ((s[:, j] >> 6) << 4)
        mn[:, j + 4] = (s[:, j + 8] >> 4) | ((s[:, j + 4] >> 6) << 4)
    return sc, mn


def _q3k_scales(s):
    """Q3_K: 12 bytes -> 16 signed six-bit scales (nb, 16)."""
    out = np.zeros((s.shape[0], 16), np.int64)
    for i in range(16):
        low = (s[:, i] & 15) if i < 8 else (s[:, i - 8] >> 4)
        high = (s[:, 8 + i % 4] >> (2 * (i // 4))) & 3
        out[:, i] = (low | (high << 4)) - 32
    return out


def _two_bit_planes(qs, nb):
    """Q2_K/Q3_K: 64 bytes -> 256 two-bit values.  Each 32-byte half holds 128 elements:
    bits 2j..2j+1 of byte l are element 32j + l of that half."""
    halves = qs.reshape(nb, 2, 1, 32)
    shifts = (2 * np.arange(4)).reshape(1, 1, 4, 1)
    return ((halves >> shifts) & 3).reshape(nb, 256)


def _decode(type_id, raw, n):
    """Returns (values, magnitude): magnitude bounds the terms summed per element."""
    if type_id not in TYPE_SIZES:
        raise ValueError('unknown type id %r' % (type_id,))
    blck, size = TYPE_SIZES[type_id]
    need = row_size(type_id, n)
    buf = np.frombuffer(raw, np.uint8)
    if buf.size < need:
        raise ValueError('%s: %d bytes for %d elements, need %d' % (TYPE_NAMES[type_id], buf.size, n, need))
    buf = buf[:need]
    if type_id == 0:
        v = buf.view('<f4').astype(np.float64)
        return v, np.abs(v)
    if type_id == 1:
        v = buf.view('<f2').astype(np.float64)
        return v, np.abs(v)
    if type_id == 30:
        v = (buf.view('<u2').astype(np.uint32) << 16).view('<f4').astype(np.float64)
        return v, np.abs(v)
    nb = n // blck
    b = buf.reshape(nb, size).astype(np.int64)
    if type_id == 2:                               # Q4_0
        d = _f16(buf.reshape(nb, size), 0)
        v = (_nibbles32(b[:, 2:18]) - 8) * d[:, None]
        mag = np.abs(v)
    elif type_id == 3:                             # Q4_1
        r = buf.reshape(nb, size)
        d, m = _f16(r, 0), _f16(r, 2)
        t = _nibbles32(b[:, 4:20]) * d[:, None]
        v, mag = t + m[:, None], np.abs(t) + np.abs(m)[:, None]
    elif type_id == 6:                             # Q5_0
        d = _f16(buf.reshape(nb, size), 0)
        q = _nibbles32(b[:, 6:22]) | (_fifth_bits(b[:, 2:6]) << 4)
        v = (q - 16) * d[:, None]
        mag = np.abs(v)
    elif type_id == 7:                             # Q5_1
        r = buf.reshape(nb, size)
        d, m = _f16(r, 0), _f16(r, 2)
        q = _nibbles32(b[:, 8:24]) | (_fifth_bits(b[:, 4:8]) << 4)
        t = q * d[:, None]
        v, mag = t + m[:, None], np.abs(t) + np.abs(m)[:, None]
    elif type_id in (8, 9):                        # Q8_0 / Q8_1 (s is not needed to decode)
        r = buf.reshape(nb, size)
        off = 2 if type_id == 8 else 4
        v = _i8(r, off, off + 32) * _f16(r, 0)[:, None]
        mag = np.abs(v)
    elif type_id == 10:                            # Q2_K
        r = buf.reshape(nb, size)
        d, dmin = _f16(r, 80), _f16(r, 82)
        sc = np.repeat(b[:, 0:16], 16, axis=1)     # sub-block of 16 elements
        q = _two_bit_planes(b[:, 16:80], nb)
        t = d[:, None] * (sc & 15) * q
        mn = dmin[:, None] * (sc >> 4)
        v, mag = t - mn, np.abs(t) + np.abs(mn)
    elif type_id == 11:                            # Q3_K
        r = buf.reshape(nb, size)
        d = _f16(r, 108)
        low = _two_bit_planes(b[:, 32:96], nb)
        # hmask bit k (0..7) of byte l belongs to element 32k + l
        hbit = ((b[:, None, 0:32] >> np.arange(8)[None, :, None]) & 1).reshape(nb, 256)
        q = low - 4 * (1 - hbit)
        sc = np.repeat(_q3k_scales(b[:, 96:108]), 16, axis=1)
        v = d[:, None] * sc * q
        mag = np.abs(v)
    elif type_id in (12, 13):                      # Q4_K / Q5_K
        r = buf.reshape(nb, size)
        d, dmin = _f16(r, 0), _f16(r, 2)
        sc, mn = _k_scale_min(b[:, 4:16])
        qs = b[:, 16:144] if type_id == 12 else b[:, 48:176]
        # each 32-byte group c: low nibbles = elements 64c..64c+31, high = 64c+32..64c+63
        g = qs.reshape(nb, 4, 1, 32)
        q = np.concatenate([g & 15, g >> 4], axis=2).reshape(nb, 256)
        if type_id == 13:
            # qh bit k of byte l: 5th bit of element 32k + l
            q = q | (((b[:, None, 16:48] >> np.arange(8)[None, :, None]) & 1).reshape(nb, 256) << 4)
        t = d[:, None] * np.repeat(sc, 32, axis=1) * q
        m = dmin[:, None] * np.repeat(mn, 32, axis=1)
        v, mag = t - m, np.abs(t) + np.abs(m)
    elif type_id == 14:                            # Q6_K
        r = buf.reshape(nb, size)
        d = _f16(r, 208)
        sc = np.repeat(_i8(r, 192, 208), 16, axis=1)
        parts = []
        for half in range(2):
            ql = b[:, 64 * half:64 * half + 64]
            qh = b[:, 128 + 32 * half:128 + 32 * half + 32]
            parts += [(ql[:, 0:32] & 15) | (((qh >> 0) & 3) << 4),
                      (ql[:, 32:64] & 15) | (((qh >> 2) & 3) << 4),
                      (ql[:, 0:32] >> 4) | (((qh >> 4) & 3) << 4),
                      (ql[:, 32:64] >> 4) | (((qh >> 6) & 3) << 4)]
        q = np.concatenate(parts, axis=1) - 32
        v = d[:, None] * sc * q
        mag = np.abs(v)
    elif type_id == 15:                            # Q8_K
        r = buf.reshape(nb, size)
        v = _i8(r, 4, 260) * _f32(r, 0)[:, None]
        mag = np.abs(v)
    else:
        raise ValueError('type %d has no decoder' % type_id)
    return v.reshape(n).astype(np.float64), np.broadcast_to(mag, v.shape).reshape(n).astype(np.float64)


def dequantize(type_id, raw, n_elements):
    """Decode n_elements of type type_id from raw (bytes-like) into float64."""
    with np.errstate(invalid='ignore', over='ignore'):
        return _decode(type_id, raw, n_elements)[0]


# Activations of a matmul are quantised to the weight type's vec_dot_type first.
VEC_DOT_TYPE = {0: 0, 1: 0, 30: 0, 2: 8, 3: 9, 6: 8, 7: 9, 8: 8, 9: 9,
                10: 15, 11: 15, 12: 15, 13: 15, 14: 15, 15: 15}


def activation_roundtrip(weight_type_id, x):
    """The float64 values colloq's matmul multiplies weights of weight_type_id with,
    for float activations x (..., K): x rounded to float32, then quantised to the
    vec_dot_type (Q8_0/Q8_1: f16 d = amax/127 per 32; Q8_K: float32 d = amax/127
    per 256; levels round(x/d) in [-127, 127]) and decoded.  Done in float32 like
    the C reference quantizer, so the result matches it exactly."""
    vdt = VEC_DOT_TYPE[weight_type_id]
    x32 = np.asarray(x, dtype=np.float32)
    if vdt == 0:
        return x32.astype(np.float64)
    blck = TYPE_SIZES[vdt][0]
    if x32.shape[-1] % blck:
        raise ValueError('row length %d is not a multiple of %d' % (x32.shape[-1], blck))
    b = x32.reshape(-1, blck)
    amax = np.abs(b).max(axis=1)
    with np.errstate(divide='ignore', invalid='ignore'):
        if vdt == 15:
            d = amax / np.float32(127)
            inv = np.where(d != 0, np.float32(127) / amax, np.float32(0)).astype(np.float32)
        else:
            d = (amax / np.float32(127)).astype(np.float16).astype(np.float32)
            inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
        q = np.clip(np.rint(b * inv[:, None]), -127, 127)
    return (q.astype(np.float64) * d.astype(np.float64)[:, None]).reshape(x32.shape)


def q8_0_roundtrip(x):
    """x (..., K) stored as Q8_0 blocks of 32 along the last axis and decoded (float64):
    the KV cache's q8_0 rows."""
    return activation_roundtrip(8, x)       # Q8_0 weights take Q8_0 activations


def q8_0_near_tie(x, rel=1e-6):
    """Rows of x (..., K) whose Q8_0 encoding changes when x moves by a relative `rel`: a
    level or the f16 scale sits on a rounding boundary, so an engine whose float32 inputs
    differ from x in the last bits may legitimately store the neighbouring level there."""
    lo, hi = q8_0_roundtrip(np.asarray(x) * (1 - rel)), q8_0_roundtrip(np.asarray(x) * (1 + rel))
    base = q8_0_roundtrip(x)
    tol = 4 * rel * np.abs(np.asarray(x, dtype=np.float64)) + 1e-30
    return ((np.abs(lo - base) > tol) | (np.abs(hi - base) > tol)).any(axis=-1)


# ---------------------------------------------------------------- the test

# Relative RMSE budgets of colloq's reference quantizers (same data and numbers as test_quant.c).
RMSE_BUDGET = {
    'F32': 1e-9, 'F16': 3e-4, 'BF16': 2.5e-3, 'Q8_0': 6e-3, 'Q8_1': 6e-3, 'Q8_K': 8e-3,
    'Q6_K': 1.8e-2, 'Q5_0': 4.5e-2, 'Q5_1': 3.8e-2, 'Q5_K': 3.9e-2, 'Q4_0': 9e-2,
    'Q4_1': 7.8e-2, 'Q4_K': 7.8e-2, 'Q3_K': 1.6e-1, 'Q2_K': 2.9e-1,
}

REC_DEQUANT, REC_QUANTIZED, REC_F32_TO_F16, REC_F16_TO_F32, REC_F32_TO_BF16 = 1, 2, 3, 4, 5


def _read_dump(path):
    data = open(path, 'rb').read()
    if data[:8] != b'CQDUMP1\0':
        raise ValueError('bad dump magic')
    pos, recs = 8, []
    while pos < len(data):
        kind, type_id = np.frombuffer(data, '<u4', 2, pos)
        n, raw_len = np.frombuffer(data, '<u8', 2, pos + 8)
        kind, type_id, n, raw_len = int(kind), int(type_id), int(n), int(raw_len)
        pos += 24
        raw = data[pos:pos + raw_len]
        pos += raw_len
        if kind == REC_DEQUANT:
            extra = [np.frombuffer(data, '<f4', n, pos)]
        elif kind == REC_QUANTIZED:
            extra = [np.frombuffer(data, '<f4', n, pos), np.frombuffer(data, '<f4', n, pos + 4 * n)]
        elif kind in (REC_F32_TO_F16, REC_F32_TO_BF16):
            extra = [np.frombuffer(data, '<u2', n, pos)]
        elif kind == REC_F16_TO_F32:
            extra = [np.frombuffer(data, '<f4', n, pos)]
        else:
            raise ValueError('unknown record kind %d' % kind)
        pos += sum(e.nbytes for e in extra)
        recs.append((kind, type_id, n, raw, extra))
    if pos != len(data):
        raise ValueError('trailing bytes in dump')
    return recs


class Checker:
    def __init__(self):
        self.failures = 0

    def check(self, ok, msg):
        if not ok:
            self.failures += 1
            print('FAIL:', msg)


def _compare_decode(ck, type_id, raw, n, c_values, what):
    name = TYPE_NAMES[type_id]
    py, mag = _decode(type_id, raw, n)
    c = c_values.astype(np.float64)
    both_nan = np.isnan(py) & np.isnan(c)
    if type_id in EXACT_TYPES:
        bad = ~both_nan & (c != py)
        ck.check(not bad.any(), '%s %s: %d of %d elements differ from the float64 decode (first %s)'
                 % (name, what, bad.sum(), n, np.argwhere(bad)[:1].ravel()))
    else:
        err = np.abs(c - py)
        bad = ~both_nan & ~(err <= 2.0 ** -22 * mag)
        ck.check(not bad.any(), '%s %s: %d of %d elements outside 2^-22 * magnitude (max err %g)'
                 % (name, what, bad.sum(), n, np.nanmax(err)))
    return py


def _rel_rmse(x, y):
    x = x.astype(np.float64).reshape(-1, 256)
    e = ((x - y.reshape(-1, 256)) ** 2).sum(axis=1)
    s = (x ** 2).sum(axis=1)
    return float(np.sqrt(np.mean(np.where(s > 0, e / np.where(s > 0, s, 1), 0))))


def _bf16_rne(x):
    """Independent float32 -> bf16 (round to nearest, ties to even) via float64 distances."""
    bits = x.view(np.uint32)
    lo = (bits >> 16).astype(np.uint32)                 # truncation toward zero
    hi = lo + 1
    vlo = (lo << 16).view(np.float32).astype(np.float64)
    vhi = (hi << 16).view(np.float32).astype(np.float64)
    top = (hi & 0x7fff) == 0x7f80                       # rounding up reaches infinity
    vhi = np.where(top, np.copysign(2.0 ** 128, vlo), vhi)
    xd = x.astype(np.float64)
    dlo, dhi = np.abs(xd - vlo), np.abs(vhi - xd)
    up = (dhi < dlo) | ((dhi == dlo) & ((lo & 1) == 1))
    out = np.where(up, hi, lo)
    inf = (bits & 0x7fffffff) == 0x7f800000
    return np.where(inf, lo, out).astype(np.uint16)


def run_checks(binary):
    ck = Checker()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'dump.bin')
        subprocess.run([binary, 'dump', path], check=True)
        recs = _read_dump(path)
    seen = set()
    for kind, type_id, n, raw, extra in recs:
        if kind == REC_DEQUANT:
            ck.check(len(raw) == row_size(type_id, n), '%s: row size' % TYPE_NAMES[type_id])
            _compare_decode(ck, type_id, raw, n, extra[0], 'random blocks')
            seen.add(type_id)
        elif kind == REC_QUANTIZED:
            name = TYPE_NAMES[type_id]
            x, c_deq = extra
            py = _compare_decode(ck, type_id, raw, n, c_deq, 'quantizer output')
            e = _rel_rmse(x, py)
            print('%-5s quantizer relative rmse %.5f (budget %.5f)' % (name, e, RMSE_BUDGET[name]))
            ck.check(e <= RMSE_BUDGET[name], '%s: quantizer rmse %g over budget' % (name, e))
            blck, size = TYPE_SIZES[type_id]
            blocks = np.frombuffer(raw, np.uint8).reshape(-1, size)
            if type_id in (8, 9, 15):   # activation formats: the float32 model above is exact
                w = {8: 2, 9: 3, 15: 12}[type_id]           # a weight type using this vec_dot_type
                sim = activation_roundtrip(w, x)
                ck.check(np.array_equal(sim, py), '%s: activation_roundtrip differs from the C quantizer '
                         'in %d of %d values' % (name, (sim != py).sum(), n))
            if type_id == 9:        # Q8_1: s = d * sum(qs), rounded to f16
                want = _f16(blocks, 0) * _i8(blocks, 4, 36).sum(axis=1)
                got = _f16(blocks, 2)
                ck.check(np.all(np.abs(got - want) <= 2.0 ** -11 * np.abs(want) + 2.0 ** -24),
                         'Q8_1: s field is not d * sum(qs)')
            if type_id == 15:       # Q8_K: bsums are the sums of 16 consecutive levels
                qs = _i8(blocks, 4, 260).reshape(-1, 16, 16).sum(axis=2)
                bs = np.ascontiguousarray(blocks[:, 260:292]).view('<i2').astype(np.int64)
                ck.check(np.array_equal(qs, bs), 'Q8_K: bsums do not match the levels')
        elif kind == REC_F16_TO_F32:
            h = np.frombuffer(raw, '<u2')
            want = h.view(np.float16).astype(np.float32)
            got = extra[0]
            nan = np.isnan(want)
            ck.check(np.array_equal(np.isnan(got), nan), 'f16->f32: NaN set differs')
            ck.check(np.array_equal(got[~nan].view(np.uint32), want[~nan].view(np.uint32)),
                     'f16->f32: %d values differ from numpy' % (got[~nan] != want[~nan]).sum())
            print('f16->f32: all 65536 halves match numpy')
        elif kind == REC_F32_TO_F16:
            x = np.frombuffer(raw, '<f4')
            want = x.astype(np.float16).view(np.uint16)
            bad = want != extra[0]
            ck.check(not bad.any(), 'f32->f16: %d of %d differ from numpy (first input %r)'
                     % (bad.sum(), n, x[bad][:1]))
            print('f32->f16: %d sampled floats match numpy' % n)
        elif kind == REC_F32_TO_BF16:
            x = np.frombuffer(raw, '<f4').copy()
            bad = _bf16_rne(x) != extra[0]
            ck.check(not bad.any(), 'f32->bf16: %d of %d differ (first input %r)' % (bad.sum(), n, x[bad][:1]))
            print('f32->bf16: %d sampled floats round to nearest even' % n)
    ck.check(seen == set(TYPE_SIZES), 'dump lacks types %s' % sorted(set(TYPE_SIZES) - seen))
    return ck.failures


def _self_test(ck):
    """Hand-built blocks with known values, independent of the C dump."""
    one = np.float16(1.0).tobytes()
    half = np.float16(0.5).tobytes()
    # Q4_0: d = 1, qs[j] = j | (15 - j) << 4 -> element j = j - 8, element 16 + j = 7 - j
    raw = one + bytes((j | ((15 - j) << 4)) for j in range(16))
    want = [j - 8 for j in range(16)] + [7 - j for j in range(16)]
    ck.check(np.array_equal(dequantize(2, raw, 32), want), 'self-test Q4_0')
    # Q5_1: d = 1, m = 0.5, all nibbles 0, qh = 0x80000001 -> elements 0 and 31 are 16.5
    raw = one + half + bytes([1, 0, 0, 0x80]) + bytes(16)
    want = np.full(32, 0.5)
    want[0] = want[31] = 16.5
    ck.check(np.array_equal(dequantize(7, raw, 32), want), 'self-test Q5_1')
    # Q6_K: d = 1, scales = 1, ql = 0, qh byte 0 = 0b11 -> element 0 = 48 - 32, others -32
    raw = bytes(128) + bytes([3]) + bytes(63) + bytes([1] * 16) + one
    want = np.full(256, -32.0)
    want[0] = 16
    ck.check(np.array_equal(dequantize(14, raw, 256), want), 'self-test Q6_K')
    # Q4_K: sub-block 5 gets scale 1 and min 1 (low bits in byte 9); qs all 0x21
    s = bytearray(12)
    s[9] = 1 | (1 << 4)
    raw = one + one + bytes(s) + bytes([0x21] * 128)
    got = dequantize(12, raw, 256)
    want = np.zeros(256)
    want[160:192] = 2 - 1                             # sub-block 5 = high nibbles of group 2
    ck.check(np.array_equal(got, want), 'self-test Q4_K')
    try:
        dequantize(2, b'\0' * 17, 32)
        ck.check(False, 'short buffer accepted')
    except ValueError:
        pass


def main(argv):
    if len(argv) != 2:
        print('usage: quant_ref.py PATH/TO/test_quant', file=sys.stderr)
        return 2
    ck = Checker()
    with np.errstate(invalid='ignore', over='ignore'):      # NaN/Inf halves are part of the data
        _self_test(ck)
        failures = ck.failures + run_checks(argv[1])
    print('quant_ref: %s' % ('ok' if failures == 0 else '%d failure(s)' % failures))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
