"""ref_archs.py - independent float64 reference forward passes of the qwen2, qwen, falcon,
baichuan and chatglm architectures, each written from the original model's published
definition (the Hugging Face modelling code of Qwen2, Qwen (1), Falcon, Baichuan 1/2 and
ChatGLM2/3), not from colloq's C code.  Loading, the matmul (with the optional emulation of
the engine's rounding), the RMSNorm and the causal softmax attention are ref_llama.RefLlama's.

Where the common GGUF converter changes a tensor's layout, the reference undoes that change
and then computes as the original model does, so a misunderstanding of the layout shows up:
  baichuan  the converter permutes the rows of each Q and K head (rows (j, i) -> (i, j), j in
            {0, 1}, i < head_dim/2) so that RoPE on adjacent pairs works; the reference
            restores the original rows and applies the original rotate-half RoPE.
  falcon    the converter regroups query_key_value from per-kv-group blocks (the group's
            query heads, its key, its value) into all Q rows, then K, then V; the reference
            rebuilds the grouped matrix and splits it the way the original does.
The rest is the original math:
  qwen2     RMSNorm; q/k/v projections with bias; rotate-half RoPE (theta 1e6 by default);
            grouped-query attention; SwiGLU down(silu(gate) * up).
  qwen      RMSNorm; c_attn (one matrix + bias) split into equal Q, K, V; rotate-half RoPE on
            the whole head; mlp c_proj(w1(x) * silu(w2(x))) with w1 = ffn_up, w2 = ffn_gate,
            each of qwen.feed_forward_length / 2 rows.
  falcon    LayerNorm with bias; x + attn(ln_attn(x)) + mlp(ln_mlp(x)) (40B layout) or both
            branches on one input_layernorm (7B layout, multi-query); rotate-half RoPE;
            mlp dense_4h_to_h(gelu(dense_h_to_4h)) with the exact erf GELU (torch nn.GELU()).
  baichuan  7B: llama-like with rotate-half RoPE; 13B (40 layers): no RoPE, ALiBi: scores
            q.k/sqrt(hd) + slope_h * key_position, slopes from Baichuan's _get_interleave
            (2^(-8(i+1)/n) for a power of two n; otherwise those of the closest lower power of
            two p, then every other slope of 2p).  Baichuan 2 (125696 tokens): NormHead, the
            output rows normalised to unit length.
  chatglm   RMSNorm; query_key_value with bias split into n_head, n_kv, n_kv heads; rotary on
            the first rope.dimension_count elements of each head as interleaved pairs
            (x[2i], x[2i+1]) with theta_i = base^(-2i/rope_dim); multi-query groups; mlp
            dense_4h_to_h(silu(a) * b) where (a, b) = the two halves of dense_h_to_4h.

`emulate` is ref_llama's (activations rounded as the engine's matmul feeds each weight type,
optionally K/V rounded to f16 as the cache stores them).  `bug` names a deliberate mistake
the comparison driver uses to show its bounds catch real ones (see BUGS).
"""

import math

import numpy as np

from gguf_reader import GGUFFile
import ref_llama

ARCHS = ("qwen2", "qwen", "falcon", "baichuan", "chatglm")
BAICHUAN_13B_LAYERS = 40
BAICHUAN2_VOCAB = 125696

# Deliberate mistakes per architecture, what a plausible wrong implementation would do:
#   rope_adjacent      adjacent-pair RoPE where the original rotates halves
#   rope_neox_on_file  rotate-half RoPE on the converter's permuted Baichuan Q/K rows
#   rope_full          ChatGLM rotary over the whole head; rope_halves: rotate-half pairing
#   no_qkv_bias        the Qwen2 q/k/v biases left out
#   ffn_swap           silu on the up projection instead of the gate (w1/w2, or the halves)
#   gelu_tanh          the tanh GELU approximation instead of the exact erf form
#   qkv_grouped        the original per-kv-group split applied to the converter's Q|K|V rows
#   serial_block       Falcon's MLP on the stream after attention instead of in parallel
#   no_alibi           Baichuan 13B without the ALiBi bias
#   alibi_pow2_only    2^(-8(h+1)/n) for every head although n is not a power of two
#   no_norm_head       Baichuan 2 output rows not normalised
BUGS = {
    "qwen2": ["rope_adjacent", "no_qkv_bias"],
    "qwen": ["rope_adjacent", "ffn_swap"],
    "falcon": ["rope_adjacent", "gelu_tanh", "qkv_grouped", "serial_block"],
    "baichuan": ["rope_neox_on_file", "no_norm_head"],
    "baichuan13b": ["alibi_pow2_only", "no_alibi"],
    "chatglm": ["rope_full", "rope_halves", "ffn_swap"],
}


def alibi_slopes(n):
    """Baichuan 13B's _get_interleave(n)."""
    def pow2(k):
        start = 2.0 ** (-(2.0 ** -(math.log2(k) - 3)))
        return [start * start ** i for i in range(k)]
    if math.log2(n).is_integer():
        return pow2(n)
    p = 2 ** math.floor(math.log2(n))
    return pow2(p) + alibi_slopes(2 * p)[0::2][: n - p]


def rotate_half_rope(v, pos, base, dim, factor=1.0):
    """The original rotate-half RoPE on the first `dim` elements of each head:
    x * cos + rotate_half(x) * sin with cos/sin of cat(freqs, freqs)."""
    p = np.asarray(pos, dtype=np.float64) / factor
    inv = 1.0 / base ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    f = p[:, None] * inv[None, :]
    emb = np.concatenate([f, f], axis=-1)                       # (T, dim)
    c, s = np.cos(emb)[:, None, :], np.sin(emb)[:, None, :]
    x = v[..., :dim]
    rot = np.concatenate([-x[..., dim // 2:], x[..., : dim // 2]], axis=-1)
    out = v.copy()
    out[..., :dim] = x * c + rot * s
    return out


def interleaved_rope(v, pos, base, dim):
    """ChatGLM's apply_rotary_pos_emb: pairs (x[2i], x[2i+1]) of the first `dim` elements,
    theta_i = base^(-2i/dim); the rest of the head passes through."""
    theta = 1.0 / base ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    ang = np.asarray(pos, dtype=np.float64)[:, None] * theta[None, :]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    out = v.copy()
    x0, x1 = v[..., 0:dim:2], v[..., 1:dim:2]
    out[..., 0:dim:2] = x0 * c - x1 * s
    out[..., 1:dim:2] = x1 * c + x0 * s
    return out


def gelu_erf(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def silu(x):
    return x / (1.0 + np.exp(-x))


class RefArch(ref_llama.RefLlama):
    """Reference forward pass of one of ARCHS (RefLlama's loading and shared pieces)."""

    def __init__(self, path):                 # RefLlama.__init__ is llama-only: not called
        g = GGUFFile(path)
        self.gguf = g
        self.types = {}
        a = g.get("general.architecture")
        if a not in ARCHS:
            raise ValueError("%s: architecture %r is not one of %s" % (path, a, ", ".join(ARCHS)))
        self.arch = a

        def hp(key, default=None):
            v = g.get(a + "." + key, default)
            if v is None:
                raise ValueError("%s: %s.%s missing" % (path, a, key))
            return v

        self.dim = hp("embedding_length")
        self.n_layer = hp("block_count")
        self.n_ff = hp("feed_forward_length")
        if a == "qwen":
            self.n_ff //= 2                  # the file states both halves of the SwiGLU projection
        self.n_head = hp("attention.head_count")
        self.n_head_kv = hp("attention.head_count_kv", self.n_head)
        self.eps = float(hp("attention.layer_norm_epsilon" if a == "falcon" else "attention.layer_norm_rms_epsilon"))
        self.head_dim = self.dim // self.n_head
        self.rope_base = float(hp("rope.freq_base", 1e6 if a == "qwen2" else 1e4))
        default_rot = self.head_dim // 2 if a == "chatglm" else self.head_dim
        self.rope_dim = hp("rope.dimension_count", default_rot)
        self.rope_factor = 1.0
        if g.get(a + ".rope.scaling.type") == "linear":
            self.rope_factor = float(hp("rope.scaling.factor"))
        self.window = 0                      # attend() reads it: none of these models has one
        self.alibi = a == "baichuan" and self.n_layer == BAICHUAN_13B_LAYERS
        assert self.dim % self.n_head == 0 and self.n_head % self.n_head_kv == 0

        self.tok_embd = self._mat("token_embd.weight")
        self.n_vocab = self.tok_embd.shape[0]
        self.tied = "output.weight" not in g.tensors
        self.output = self.tok_embd if self.tied else self._mat("output.weight")
        self.output_norm = self._vec("output_norm.weight")
        self.output_norm_b = self._vec("output_norm.bias") if a == "falcon" else None
        self.norm_head = a == "baichuan" and self.n_vocab == BAICHUAN2_VOCAB
        self.two_norms = a == "falcon" and "blk.0.attn_norm_2.weight" in g.tensors
        self.layers = [self._layer(l) for l in range(self.n_layer)]

    def _same_type(self, new, old):
        self.types[id(new)] = self.types[id(old)]
        return new

    def _layer(self, l):
        p = "blk.%d." % l
        t = self.gguf.tensors
        lw = {"attn_norm": self._vec(p + "attn_norm.weight")}
        if self.arch == "falcon":
            lw["attn_norm_b"] = self._vec(p + "attn_norm.bias")
            if self.two_norms:
                lw["mlp_norm"] = self._vec(p + "attn_norm_2.weight")
                lw["mlp_norm_b"] = self._vec(p + "attn_norm_2.bias")
        else:
            lw["ffn_norm"] = self._vec(p + "ffn_norm.weight")
        lw["wo"] = self._mat(p + "attn_output.weight")
        lw["w_down"] = self._mat(p + "ffn_down.weight")
        lw["w_up"] = self._mat(p + "ffn_up.weight")
        if p + "ffn_gate.weight" in t:
            lw["w_gate"] = self._mat(p + "ffn_gate.weight")
        if p + "attn_qkv.weight" in t:
            lw["w_qkv"] = self._mat(p + "attn_qkv.weight")
            if p + "attn_qkv.bias" in t:
                lw["b_qkv"] = self._vec(p + "attn_qkv.bias")
        else:
            for x in "qkv":
                lw["w" + x] = self._mat(p + "attn_%s.weight" % x)
                if p + "attn_%s.bias" % x in t:
                    lw["b" + x] = self._vec(p + "attn_%s.bias" % x)
        if self.arch == "falcon":
            lw["w_qkv_hf"] = self._same_type(self._falcon_grouped(lw["w_qkv"]), lw["w_qkv"])
        if self.arch == "baichuan":
            lw["wq_hf"] = self._same_type(self._unpermute(lw["wq"], self.n_head), lw["wq"])
            lw["wk_hf"] = self._same_type(self._unpermute(lw["wk"], self.n_head_kv), lw["wk"])
        return lw

    # ---- undoing the converter's layout changes ----
    def _unpermute(self, w, heads):
        """Baichuan: GGUF rows (h, i, j) came from the original rows (h, j, i)."""
        hd = self.head_dim
        return w.reshape(heads, hd // 2, 2, -1).swapaxes(1, 2).reshape(w.shape)

    def _falcon_grouped(self, w):
        """Falcon: the original query_key_value, one block per kv group: the group's query
        heads, then its key head, then its value head."""
        hd, nkv, grp = self.head_dim, self.n_head_kv, self.n_head // self.n_head_kv
        q = w[: self.n_head * hd].reshape(nkv, grp, hd, -1)
        k = w[self.n_head * hd: (self.n_head + nkv) * hd].reshape(nkv, 1, hd, -1)
        v = w[(self.n_head + nkv) * hd:].reshape(nkv, 1, hd, -1)
        return np.concatenate([q, k, v], axis=1).reshape(w.shape)

    # ---- pieces ----
    def layernorm(self, x, g, b):
        mu = x.mean(axis=-1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
        return (x - mu) / np.sqrt(var + self.eps) * g + b

    def attend_alibi(self, q, k, v, q_pos, k_pos, slopes):
        """Baichuan 13B: softmax(q.k / sqrt(hd) + slope_h * key_position + causal mask)."""
        qp, kp = np.asarray(q_pos)[:, None], np.asarray(k_pos)[None, :]
        allowed = kp <= qp
        out = np.zeros_like(q)
        grp = self.n_head // self.n_head_kv
        for h in range(self.n_head):
            s = (q[:, h, :] @ k[:, h // grp, :].T) / math.sqrt(self.head_dim) + slopes[h] * kp
            s = np.where(allowed, s, -np.inf)
            s = s - s.max(axis=1, keepdims=True)
            w = np.exp(s)
            w /= w.sum(axis=1, keepdims=True)
            out[:, h, :] = w @ v[:, h // grp, :]
        return out

    def rope_of(self, v, pos, bug):
        """The architecture's rotary embedding of q or k (T, heads, hd)."""
        a, d = self.arch, self.rope_dim
        if a == "chatglm":
            if bug == "rope_full":
                return interleaved_rope(v, pos, self.rope_base, self.head_dim)
            if bug == "rope_halves":
                return rotate_half_rope(v, pos, self.rope_base, d)
            return interleaved_rope(v, pos, self.rope_base, d)
        if bug == "rope_adjacent":
            return interleaved_rope(v, pos, self.rope_base, d)
        return rotate_half_rope(v, pos, self.rope_base, d, self.rope_factor)

    def projections(self, lw, n, T, emulate, bug):
        """q (T, n_head, hd), k, v (T, n_kv, hd) before RoPE, as the original splits them."""
        hd, nh, nkv = self.head_dim, self.n_head, self.n_head_kv
        a = self.arch
        if a == "falcon":
            w = lw["w_qkv"] if bug == "qkv_grouped" else lw["w_qkv_hf"]
            fused = self.mm(n, w, emulate).reshape(T, nkv, nh // nkv + 2, hd)
            q = fused[:, :, :-2, :].reshape(T, nh, hd)
            return q, fused[:, :, -2, :], fused[:, :, -1, :]
        if "w_qkv" in lw:                                   # qwen c_attn, chatglm query_key_value
            fused = self.mm(n, lw["w_qkv"], emulate) + lw["b_qkv"]
            q = fused[:, : nh * hd].reshape(T, nh, hd)
            k = fused[:, nh * hd: (nh + nkv) * hd].reshape(T, nkv, hd)
            v = fused[:, (nh + nkv) * hd:].reshape(T, nkv, hd)
            return q, k, v
        if a == "baichuan":
            wq, wk = (lw["wq"], lw["wk"]) if bug == "rope_neox_on_file" else (lw["wq_hf"], lw["wk_hf"])
        else:
            wq, wk = lw["wq"], lw["wk"]
        q, k, v = self.mm(n, wq, emulate), self.mm(n, wk, emulate), self.mm(n, lw["wv"], emulate)
        if a == "qwen2" and bug != "no_qkv_bias":
            q, k, v = q + lw["bq"], k + lw["bk"], v + lw["bv"]
        return q.reshape(T, nh, hd), k.reshape(T, nkv, hd), v.reshape(T, nkv, hd)

    def mlp(self, lw, n, emulate, bug):
        a = self.arch
        if a == "falcon":
            h = self.mm(n, lw["w_up"], emulate)
            return self.mm(gelu_tanh(h) if bug == "gelu_tanh" else gelu_erf(h), lw["w_down"], emulate)
        if a == "chatglm":
            h = self.mm(n, lw["w_up"], emulate)
            x0, x1 = h[:, : self.n_ff], h[:, self.n_ff:]
            if bug == "ffn_swap":
                x0, x1 = x1, x0
            return self.mm(silu(x0) * x1, lw["w_down"], emulate)
        gate, up = self.mm(n, lw["w_gate"], emulate), self.mm(n, lw["w_up"], emulate)
        if bug == "ffn_swap":
            gate, up = up, gate
        return self.mm(silu(gate) * up, lw["w_down"], emulate)

    def block(self, lw, x, pos, cache, emulate, bug):
        """One layer on rows x at positions pos; cache = (keys, values) lists of earlier rows."""
        T = len(pos)
        if self.arch == "falcon":
            n = self.layernorm(x, lw["attn_norm"], lw["attn_norm_b"])
        else:
            n = self.rmsnorm(x, lw["attn_norm"])
        q, k, v = self.projections(lw, n, T, emulate, bug)
        if not self.alibi:
            q, k = self.rope_of(q, pos, bug), self.rope_of(k, pos, bug)
        cache[0].append(self.cache_round(k, pos, emulate))
        cache[1].append(self.cache_round(v, pos, emulate))
        k_all, v_all = np.concatenate(cache[0]), np.concatenate(cache[1])
        k_pos = np.arange(len(k_all))
        if self.alibi and bug != "no_alibi":
            if bug == "alibi_pow2_only":     # the power-of-two formula used for any head count
                slopes = [2.0 ** (-8.0 * (h + 1) / self.n_head) for h in range(self.n_head)]
            else:
                slopes = alibi_slopes(self.n_head)
            att = self.attend_alibi(q, k_all, v_all, pos, k_pos, slopes)
        else:
            att = self.attend(q, k_all, v_all, pos, k_pos)
        att = self.mm(att.reshape(T, -1), lw["wo"], emulate)
        if self.arch != "falcon":
            x = x + att
            return x + self.mlp(lw, self.rmsnorm(x, lw["ffn_norm"]), emulate, bug)
        if bug == "serial_block":            # attention, then the MLP on the updated stream
            x = x + att
            return x + self.mlp(lw, self.layernorm(x, lw["attn_norm"], lw["attn_norm_b"]), emulate, bug)
        if self.two_norms:                   # 40B layout: ln_mlp; 7B: the same input_layernorm
            n = self.layernorm(x, lw["mlp_norm"], lw["mlp_norm_b"])
        return x + att + self.mlp(lw, n, emulate, bug)

    def head(self, x, emulate, bug):
        if self.arch == "falcon":
            n = self.layernorm(x, self.output_norm, self.output_norm_b)
        else:
            n = self.rmsnorm(x, self.output_norm)
        logits = self.mm(n, self.output, emulate)
        if self.norm_head and bug != "no_norm_head":
            norms = np.sqrt((self.output ** 2).sum(axis=1))
            logits = logits / np.maximum(norms, 1e-12)[None, :]
        return logits

    # ---- whole passes ----
    def forward(self, tokens, bug=None, emulate=None, chunk=None):
        """Logits (T, n_vocab) in float64 for every position; with `chunk`, computed that
        many tokens at a time through the K/V cache (the result must not change)."""
        tokens = np.asarray(tokens, dtype=np.int64)
        if tokens.min() < 0 or tokens.max() >= self.n_vocab:
            raise ValueError("token id out of range")
        step = chunk or len(tokens)
        caches = [([], []) for _ in self.layers]
        rows = []
        for start in range(0, len(tokens), step):
            toks = tokens[start:start + step]
            pos = np.arange(start, start + len(toks))
            x = self.tok_embd[toks].copy()
            for lw, cache in zip(self.layers, caches):
                x = self.block(lw, x, pos, cache, emulate, bug)
            rows.append(self.head(x, emulate, bug))
        return np.concatenate(rows)

    def forward_incremental(self, tokens, chunk=1, emulate=None):
        return self.forward(tokens, emulate=emulate, chunk=chunk)


def bugs_for(ref):
    """The bugs that can show on this model (a regrouped QKV is the same with one kv head;
    NormHead only exists for the Baichuan 2 vocabulary)."""
    if ref.arch == "baichuan" and ref.alibi:
        return BUGS["baichuan13b"]
    bugs = list(BUGS[ref.arch])
    if ref.arch == "baichuan" and not ref.norm_head:
        bugs.remove("no_norm_head")
    if ref.arch == "falcon" and ref.n_head_kv == 1:
        bugs.remove("qkv_grouped")
    return bugs


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="float64 reference logits of a qwen2/qwen/falcon/baichuan/chatglm GGUF")
    ap.add_argument("model")
    ap.add_argument("tokens", help="comma-separated token ids")
    ap.add_argument("--out", help="write logits as float32 rows (like colloq run --dump-logits)")
    args = ap.parse_args()
    m = RefArch(args.model)
    ids = [int(t) for t in args.tokens.split(",") if t]
    logits = m.forward(ids)
    if args.out:
        logits.astype("<f4").tofile(args.out)
    for i, row in enumerate(logits):
        top = np.argsort(-row)[:5]
        print(i, ids[i], " ".join("%d:%.4f" % (t, row[t]) for t in top))
