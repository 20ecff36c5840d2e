"""ref_llama.py - an independent float64 reference forward pass of the Llama architecture.

Written from the math, not from colloq's C code:
  x = embed[tok]
  per layer:  h = x + Wo . attn(RMSNorm(x) * g_attn)
              x = h + W_down (silu(W_gate . n) * (W_up . n)),   n = RMSNorm(h) * g_ffn
  RMSNorm(v) = v / sqrt(mean(v^2) + eps)
  RoPE on q and k, per head, on adjacent pairs (v[2i], v[2i+1]) of the first rope_dim elements,
  angle p * base^(-2i / rope_dim), p = position / linear scaling factor
  grouped-query attention: query head h reads kv head h // (n_head / n_head_kv)
  scores scaled by 1/sqrt(head_dim), causal; sliding window W: i attends to j with i-W < j <= i
  logits = W_out . RMSNorm(x) * g_out   (W_out = token embeddings when output.weight is absent)

The GGUF is read by gguf_reader.py and weights are dequantised by quant_ref.dequantize, so the
whole computation runs in float64 on the exact weights the engine sees.

`emulate` (optional) reproduces the engine's documented rounding instead of computing exactly:
activations rounded the way matmul feeds them to each weight type
(quant_ref.activation_roundtrip: Q8_0 for Q4_0/Q8_0 weights) and, with kv_f16 (or kv_q8_0),
keys (after RoPE) and values stored as f16 (or as Q8_0 blocks along each head) in the cache.  Comparing against both the exact and the
emulating pass gives a loose bound that needs no knowledge of the engine's numerics and a
tight one that catches small mistakes the loose bound would hide.

`bug` names a deliberate mistake (used by the comparison driver to show that its tolerances
catch real bugs): "rope_neox" (rotate (v[i], v[i+d/2]) instead), "no_window",
"no_rope_scale", "no_gqa_map" (kv head h % n_kv instead of h // group).
"""

import numpy as np

from gguf_reader import GGUFFile
import quant_ref


class RefLlama:
    def __init__(self, path):
        g = GGUFFile(path)
        self.gguf = g
        self.kv_near_tie = None
        arch = g.get("general.architecture")
        if arch != "llama":
            raise ValueError("%s: architecture %r, expected llama" % (path, arch))

        def hp(key, default=None):
            v = g.get("llama." + key, default)
            if v is None:
                raise ValueError("%s: llama.%s missing" % (path, key))
            return v

        self.dim = hp("embedding_length")
        self.n_layer = hp("block_count")
        self.n_ff = hp("feed_forward_length")
        self.n_head = hp("attention.head_count")
        self.n_head_kv = hp("attention.head_count_kv", self.n_head)
        self.eps = float(hp("attention.layer_norm_rms_epsilon"))
        self.rope_base = float(hp("rope.freq_base", 10000.0))
        self.head_dim = self.dim // self.n_head
        self.rope_dim = hp("rope.dimension_count", self.head_dim)
        self.window = hp("attention.sliding_window", 0)
        self.rope_factor = 1.0
        if g.get("llama.rope.scaling.type") == "linear":
            self.rope_factor = float(hp("rope.scaling.factor"))
        assert self.dim % self.n_head == 0 and self.n_head % self.n_head_kv == 0
        assert self.rope_dim % 2 == 0 and self.rope_dim <= self.head_dim

        self.types = {}                                          # id(matrix) -> GGUF type
        self.tok_embd = self._mat("token_embd.weight")           # (n_vocab, dim)
        self.n_vocab = self.tok_embd.shape[0]
        self.tied = "output.weight" not in g.tensors
        self.output = self.tok_embd if self.tied else self._mat("output.weight")
        self.output_norm = self._vec("output_norm.weight")
        self.layers = []
        for l in range(self.n_layer):
            p = "blk.%d." % l
            self.layers.append({
                "attn_norm": self._vec(p + "attn_norm.weight"),
                "wq": self._mat(p + "attn_q.weight"),            # (n_head*hd, dim)
                "wk": self._mat(p + "attn_k.weight"),            # (n_kv*hd, dim)
                "wv": self._mat(p + "attn_v.weight"),
                "wo": self._mat(p + "attn_output.weight"),       # (dim, n_head*hd)
                "ffn_norm": self._vec(p + "ffn_norm.weight"),
                "w_gate": self._mat(p + "ffn_gate.weight"),      # (n_ff, dim)
                "w_up": self._mat(p + "ffn_up.weight"),
                "w_down": self._mat(p + "ffn_down.weight"),      # (dim, n_ff)
            })

    def _tensor(self, name):
        t = self.gguf.tensors.get(name)
        if t is None:
            raise ValueError("tensor %s missing" % name)
        x = np.asarray(quant_ref.dequantize(t.type, bytes(t.data), t.n_elements), dtype=np.float64)
        if x.shape != (t.n_elements,):
            x = x.reshape(-1)
        return x, t.ne

    def _mat(self, name):
        x, ne = self._tensor(name)
        if len(ne) != 2:
            raise ValueError("tensor %s is not 2-D" % name)
        m = x.reshape(ne[1], ne[0])         # rows of ne[0] contiguous elements
        self.types[id(m)] = self.gguf.tensors[name].type
        return m

    def mm(self, x, w, emulate=None):
        """x @ w.T, with x rounded as the engine's matmul feeds it to w's type when emulating."""
        if emulate:
            x = quant_ref.activation_roundtrip(self.types[id(w)], x)
        return x @ w.T

    def cache_round(self, v, pos, emulate=None):
        """v (T, n_kv, hd) as the cache stores it.  For q8_0 also notes in self.kv_near_tie the
        first position whose stored levels depend on the last bits of v (see q8_0_near_tie)."""
        if emulate and emulate.get("kv_f16"):
            return v.astype(np.float32).astype(np.float16).astype(np.float64)
        if emulate and emulate.get("kv_q8_0"):
            near = quant_ref.q8_0_near_tie(v).any(axis=1)
            if near.any():
                first = int(pos[int(np.argmax(near))])
                self.kv_near_tie = first if self.kv_near_tie is None else min(self.kv_near_tie, first)
            return quant_ref.q8_0_roundtrip(v)        # blocks of 32 along head_dim (the last axis)
        return v

    def _vec(self, name):
        x, ne = self._tensor(name)
        return x

    # ---- pieces ----
    def rmsnorm(self, x, g):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * g

    def rope(self, v, pos, bug=None):
        """v: (T, n_heads, head_dim); pos: (T,) integer positions."""
        d = self.rope_dim
        factor = 1.0 if bug == "no_rope_scale" else self.rope_factor
        p = np.asarray(pos, dtype=np.float64) / factor
        i = np.arange(d // 2, dtype=np.float64)
        theta = p[:, None] * self.rope_base ** (-2.0 * i / d)        # (T, d/2)
        c, s = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
        out = v.copy()
        if bug == "rope_neox":
            a, b = v[..., : d // 2], v[..., d // 2: d]
            out[..., : d // 2] = a * c - b * s
            out[..., d // 2: d] = a * s + b * c
        else:
            a, b = v[..., 0:d:2], v[..., 1:d:2]
            out[..., 0:d:2] = a * c - b * s
            out[..., 1:d:2] = a * s + b * c
        return out

    def kv_head(self, h, bug=None):
        if bug == "no_gqa_map":
            return h % self.n_head_kv
        return h // (self.n_head // self.n_head_kv)

    def attend(self, q, k, v, q_pos, k_pos, bug=None):
        """q: (Tq, n_head, hd); k, v: (Tk, n_kv, hd); positions give the causal/window mask."""
        qp, kp = np.asarray(q_pos)[:, None], np.asarray(k_pos)[None, :]
        allowed = kp <= qp
        if self.window and bug != "no_window":
            allowed &= kp > qp - self.window
        out = np.zeros_like(q)
        scale = 1.0 / np.sqrt(self.head_dim)
        for h in range(self.n_head):
            kh = self.kv_head(h, bug)
            s = (q[:, h, :] @ k[:, kh, :].T) * scale
            s = np.where(allowed, s, -np.inf)
            s = s - s.max(axis=1, keepdims=True)
            w = np.exp(s)
            w /= w.sum(axis=1, keepdims=True)
            out[:, h, :] = w @ v[:, kh, :]
        return out

    def ffn(self, lw, x, emulate=None):
        n = self.rmsnorm(x, lw["ffn_norm"])
        gate = self.mm(n, lw["w_gate"], emulate)
        up = self.mm(n, lw["w_up"], emulate)
        return self.mm(gate / (1.0 + np.exp(-gate)) * up, lw["w_down"], emulate)

    def qkv(self, lw, x, pos, emulate=None, bug=None):
        T, hd = len(pos), self.head_dim
        n = self.rmsnorm(x, lw["attn_norm"])
        q = self.rope(self.mm(n, lw["wq"], emulate).reshape(T, self.n_head, hd), pos, bug)
        k = self.rope(self.mm(n, lw["wk"], emulate).reshape(T, self.n_head_kv, hd), pos, bug)
        v = self.mm(n, lw["wv"], emulate).reshape(T, self.n_head_kv, hd)
        return q, self.cache_round(k, pos, emulate), self.cache_round(v, pos, emulate)

    # ---- whole passes ----
    def forward(self, tokens, bug=None, emulate=None):
        """All positions at once (causal mask): returns logits (T, n_vocab) in float64."""
        tokens = np.asarray(tokens, dtype=np.int64)
        if tokens.min() < 0 or tokens.max() >= self.n_vocab:
            raise ValueError("token id out of range")
        T = len(tokens)
        pos = np.arange(T)
        x = self.tok_embd[tokens].copy()
        for lw in self.layers:
            q, k, v = self.qkv(lw, x, pos, emulate, bug)
            a = self.attend(q, k, v, pos, pos, bug)
            x = x + self.mm(a.reshape(T, -1), lw["wo"], emulate)
            x = x + self.ffn(lw, x, emulate)
        return self.mm(self.rmsnorm(x, self.output_norm), self.output, emulate)

    def forward_incremental(self, tokens, chunk=1, emulate=None):
        """Same result computed `chunk` tokens at a time with an explicit K/V cache (self-check)."""
        cache = [([], []) for _ in self.layers]
        rows = []
        for start in range(0, len(tokens), chunk):
            toks = np.asarray(tokens[start:start + chunk], dtype=np.int64)
            T = len(toks)
            pos = np.arange(start, start + T)
            x = self.tok_embd[toks].copy()
            for lw, (ks, vs) in zip(self.layers, cache):
                q, k, v = self.qkv(lw, x, pos, emulate)
                ks.append(k)
                vs.append(v)
                k_all, v_all = np.concatenate(ks), np.concatenate(vs)
                a = self.attend(q, k_all, v_all, pos, np.arange(len(k_all)))
                x = x + self.mm(a.reshape(T, -1), lw["wo"], emulate)
                x = x + self.ffn(lw, x, emulate)
            rows.append(self.mm(self.rmsnorm(x, self.output_norm), self.output, emulate))
        return np.concatenate(rows)


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="float64 reference logits of a Llama GGUF")
    ap.add_argument("model")
    ap.add_argument("tokens", help="comma-separated token ids")
    ap.add_argument("--out", help="write logits as float32 rows (like colloq run --dump-logits)")
    args = ap.parse_args()
    m = RefLlama(args.model)
    ids = [int(t) for t in args.tokens.split(",") if t]
    logits = m.forward(ids)
    if args.out:
        logits.astype("<f4").tofile(args.out)
    for i, row in enumerate(logits):
        top = np.argsort(-row)[:5]
        print(i, ids[i], " ".join("%d:%.4f" % (t, row[t]) for t in top))
