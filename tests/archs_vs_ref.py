#!/usr/bin/env python3
"""archs_vs_ref.py - `colloq run` on random models of qwen2, qwen, falcon, baichuan and chatglm
against the float64 references of tests/ref_archs.py, every evaluated position.

For each variant `colloq mkmodel --arch ...` writes a tiny random-weight model (built-in
vocabulary with the family's special tokens, so no shared test data is needed), `colloq run
--temp 0 --json --dump-logits` generates a few tokens after a ~40-token prompt, and the logits
of every position (prompt and generated) are compared with the reference on the same ids.

Variants: qwen2 (QKV biases, theta 1e6; GQA untied, and 8 heads / 2 kv tied), qwen (fused
c_attn with bias, half-width FFN), falcon 7B layout (multi-query, one shared norm) and 40B
layout (attn_norm_2, 2 kv heads), baichuan 7B (RoPE on the converter's permuted Q/K), 13B (40
layers: ALiBi, 6 heads so the slopes of a head count that is not a power of two are used),
Baichuan 2 (125696-token vocabulary: normalised output rows), chatglm (half-width interleaved
rotary, fused QKV with bias, 2 kv groups, doubled ffn_up) with a "[gMASK]sop" prompt, plus F16,
Q8_0 and Q4_0 weights and small evaluation batches.

Bounds (error = |logit_colloq - logit_ref| / std(logit_ref), per position), as run_vs_ref.py:
  exact reference (dequantised weights, float64): F32 weights + F32 cache 2e-5 | F16 weights +
      F16 cache 1.5e-2 | Q8_0 / Q4_0 (activations quantised to Q8_0 by the engine) 0.3
  emulating reference (the same rounding reproduced): 2e-5 for F32, 1e-3 for F16, at all but
      5% of the positions (a value within float32 noise of an f16 rounding boundary may round
      the other way in the engine; a real mistake moves most positions).
For Q8_0 / Q4_0 weights the emulated error is printed but not enforced: one activation that
rounds to the other Q8_0 level (float32 noise at a boundary, about one per sequence here, and
where depends on the engine's summation order, which kernels may change) moves that position's
keys and values, and through the cache every later position, by ~5e-2.  Their bound is the
exact one (measured 0.04-0.11; every injected bug gives 1.5 or more); they also use an F32 KV
cache so that f16 flips do not add to this.  The 40-layer Baichuan 13B Q8_0 variant (about two
activation flips per position) has 0.6 (measured ~0.2).
Greedy ids must be the argmax of colloq's own rows and, where the emulating reference's top-2
margin is clear, of the reference's.

The bounds are shown to catch real mistakes: for each architecture's F32 variant the reference
is rerun with that architecture's plausible bugs (ref_archs.BUGS: wrong RoPE pairing or width,
missing biases, swapped gate/up, tanh GELU, the converter's QKV layout taken as the original's,
no ALiBi or the power-of-two slope formula for 6 heads, no NormHead, a serial Falcon block) and
each must exceed the F32 bound by at least 100x.  The reference's own K/V-cache pass (1 and 5
tokens at a time) must equal its all-at-once pass.

usage: archs_vs_ref.py --colloq PATH/colloq --workdir DIR
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_archs  # noqa: E402
import run_vs_ref  # noqa: E402

PROMPT = ("the quick brown fox jumps over the lazy dog and the king of france was in paris "
          "when the story of the old man came to his house by the river in the morning light "
          "with a little bird")
GLM_PROMPT = "[gMASK]sop<|user|>\n " + PROMPT + "<|assistant|>"

# (bound vs the exact reference, bound vs the emulating one or None: printed only)
TOL_F32, TOL_F16, TOL_Q, TOL_Q_DEEP = (2e-5, 2e-5), (1.5e-2, 1e-3), (0.3, None), (0.6, None)
MAX_FLIP_FRACTION = 0.05
BUG_FACTOR = 100
BUG_FACTOR_SMALL = {"gelu_tanh": 10}   # tanh vs erf GELU: a real but small difference (~50x)
N_GEN = 8

F32 = ["--type", "f32"]
B13 = ["--arch", "baichuan", "--layers", "40", "--dim", "96", "--heads", "6", "--kv-heads", "6", "--ffn", "128"]
# name, mkmodel arguments, run arguments, bounds, check the injected bugs
VARIANTS = [
    ("qwen2 f32 gqa",              ["--arch", "qwen2"] + F32, ["--cache-type", "f32"], TOL_F32, True),
    ("qwen2 f32 8h/2kv tied",      ["--arch", "qwen2", "--heads", "8", "--kv-heads", "2", "--tied"] + F32,
                                   ["--cache-type", "f32"], TOL_F32, False),
    ("qwen2 q8_0",                 ["--arch", "qwen2", "--type", "q8_0"], ["--cache-type", "f32"], TOL_Q, False),
    ("qwen f32",                   ["--arch", "qwen"] + F32, ["--cache-type", "f32"], TOL_F32, True),
    ("qwen q4_0, batches of 5",    ["--arch", "qwen", "--type", "q4_0"], ["--cache-type", "f32", "-b", "5"],
                                   TOL_Q, False),
    ("falcon-7b layout f32",       ["--arch", "falcon", "--kv-heads", "1"] + F32, ["--cache-type", "f32"], TOL_F32, True),
    ("falcon-40b layout f32",      ["--arch", "falcon", "--heads", "8", "--kv-heads", "2"] + F32,
                                   ["--cache-type", "f32"], TOL_F32, True),
    ("falcon-7b layout f16",       ["--arch", "falcon", "--kv-heads", "1", "--type", "f16"], [], TOL_F16, False),
    ("falcon-40b layout q8_0",     ["--arch", "falcon", "--heads", "8", "--kv-heads", "2", "--type", "q8_0"],
                                   ["--cache-type", "f32"], TOL_Q, False),
    ("baichuan-7b f32",            ["--arch", "baichuan"] + F32, ["--cache-type", "f32"], TOL_F32, True),
    ("baichuan-13b alibi f32",     B13 + F32, ["--cache-type", "f32"], TOL_F32, True),
    ("baichuan-13b f32 batch 7",   B13 + F32, ["--cache-type", "f32", "-b", "7"], TOL_F32, False),
    ("baichuan-13b q8_0",          B13 + ["--type", "q8_0"], ["--cache-type", "f32"], TOL_Q_DEEP, False),
    ("baichuan2 normhead f32",     ["--arch", "baichuan", "--vocab-size", "125696", "--tied"] + F32,
                                   ["--cache-type", "f32"], TOL_F32, True),
    ("chatglm f32",                ["--arch", "chatglm"] + F32, ["--cache-type", "f32"], TOL_F32, True),
    ("chatglm f32 batches of 3",   ["--arch", "chatglm", "--heads", "2", "--kv-heads", "1"] + F32,
                                   ["--cache-type", "f32", "-b", "3"], TOL_F32, False),
    ("chatglm q8_0",               ["--arch", "chatglm", "--type", "q8_0"], ["--cache-type", "f32"], TOL_Q, False),
]


def sh(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise RuntimeError("command failed (%d): %s\n%s" % (r.returncode, " ".join(cmd), r.stderr.decode(errors="replace")))
    return r.stdout.decode()


def slug(name):
    return "".join(c if c.isalnum() else "_" for c in name)


def run_variant(colloq, workdir, idx, name, mk_args, run_args):
    model = os.path.join(workdir, "a%d_%s.gguf" % (idx, slug(name)))
    dump = model + ".logits"
    sh([colloq, "mkmodel", "--shape", "tiny", "--seed", str(200 + idx), "-o", model] + mk_args)
    prompt = GLM_PROMPT if "chatglm" in mk_args else PROMPT
    out = sh([colloq, "run", "-m", model, "-p", prompt, "-n", str(N_GEN), "--temp", "0", "--ignore-eos",
              "--json", "--dump-logits", dump, "-t", "2"] + run_args)
    return model, json.loads(out), np.fromfile(dump, dtype="<f4")


def check_prompt(name, ref, prompt, failures):
    """The family's prompt conventions: BOS only where the tokenizer adds one; chatglm's
    "[gMASK]sop" prefix as its two special tokens with nothing before them."""
    toks = ref.gguf.get("tokenizer.ggml.tokens")
    bos = ref.gguf.get("tokenizer.ggml.bos_token_id")
    add_bos = ref.gguf.get("tokenizer.ggml.add_bos_token", True)
    if ref.arch == "chatglm":
        want = [toks.index("[gMASK]"), toks.index("sop"), toks.index("<|user|>")]
        if prompt[:3] != want or toks.index("<|assistant|>") != prompt[-1]:
            failures.append("%s: prompt ids %s... do not start with [gMASK] sop <|user|> %s and end with "
                            "<|assistant|>" % (name, prompt[:4], want))
    elif (prompt[0] == bos) != bool(add_bos):
        failures.append("%s: first prompt id %d, BOS %d, add_bos %s" % (name, prompt[0], bos, add_bos))


def compare(name, model, res, raw, tols, kv_f16, failures, bug_check):
    ref = ref_archs.RefArch(model)
    check_prompt(name, ref, res["prompt_ids"], failures)
    r = run_vs_ref.check_logits(name, ref, res, raw, tols, {"kv_f16": kv_f16}, failures, n_gen=N_GEN,
                                max_flip_fraction=MAX_FLIP_FRACTION)
    if r is None:
        return None
    got, toks, exact, std = r
    loose = tols[0]
    if bug_check:
        for bug in ref_archs.bugs_for(ref):
            e = np.abs(got - ref.forward(toks, bug=bug)).max() / std
            factor = BUG_FACTOR_SMALL.get(bug, BUG_FACTOR)
            print("    reference with bug %-18s max|d|/std %.2e (must be > %d x bound)" % (bug, e, factor))
            if e < factor * loose:
                failures.append("%s: injected bug %s is not detected (%.3g < %d x bound)" % (name, bug, e, factor))
        for chunk in (1, 5):
            d = np.abs(ref.forward(toks, chunk=chunk) - exact).max()
            if d > 1e-9:
                failures.append("%s: reference with a K/V cache (chunk %d) differs from all-at-once by %.3g"
                                % (name, chunk, d))
    return ref


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--colloq", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--only", help="run only variants whose name contains this")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    failures = []
    seen = set()
    n_run = 0
    for idx, (name, mk_args, run_args, tols, bug_check) in enumerate(VARIANTS):
        if args.only and args.only not in name:
            continue
        n_run += 1
        try:
            model, res, raw = run_variant(args.colloq, args.workdir, idx, name, mk_args, run_args)
        except (RuntimeError, ValueError) as e:
            failures.append("%s: %s" % (name, e))
            print("%-27s FAIL (%s)" % (name, str(e).splitlines()[0]))
            continue
        kv_f16 = "f32" not in run_args
        ref = compare(name, model, res, raw, tols, kv_f16, failures, bug_check)
        if ref is not None:
            seen.add(ref.arch)
            os.remove(model + ".logits")
    if not args.only and seen != set(ref_archs.ARCHS):
        failures.append("architectures covered: %s, expected %s" % (sorted(seen), sorted(ref_archs.ARCHS)))
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        return 1
    print("all %d variants match the reference" % n_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
