#!/usr/bin/env python3
"""run_vs_ref.py - `colloq run` against the float64 reference (ref_llama.py), every variant.

For each variant a tiny random-weight model is written with `colloq mkmodel` (built-in
vocabulary, so no shared test data is needed), `colloq run --temp 0 --json --dump-logits`
generates a few tokens after a ~40-token prompt, and the logits of EVERY evaluated position
(prompt and generated) are compared with the reference run on the same token ids and the same
dequantised weights.

Error measure: max |logit_colloq - logit_ref| / std(logit_ref) over all positions and tokens.
Tolerances (measured values are printed; each bound has a margin of about 3-5x over what a
correct engine shows, and is far below what the injected bugs below produce):
  F32 weights, F32 KV cache ........ 1e-4   (float32 rounding only)
  F16 weights, F16 KV cache ........ 5e-3   (activations and K/V rounded to f16)
  BF16 weights ..................... 4e-2   (activations rounded to bf16 for the dot products)
  Q8_0 / Q4_0 weights .............. 4e-2   (activations quantised to 8 bits; the weights'
                                              own error is in both sides, the reference uses
                                              the dequantised weights)
Greedy ids must equal the reference argmax wherever the reference's top-2 margin exceeds
4x the variant's tolerance (in std units), and always equal the argmax of colloq's own row.

The test also proves it can fail: the reference is rerun with deliberate bugs (RoPE on
half-split instead of adjacent pairs, no sliding-window mask, no linear RoPE scaling, wrong
GQA head mapping) and each must exceed the F32 tolerance by at least 100x.

usage: run_vs_ref.py --colloq PATH/colloq --workdir DIR
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_llama  # noqa: E402

PROMPT = ("the quick brown fox jumps over the lazy dog and the king of france was in paris "
          "when the story of the old man came to his house by the river in the morning light "
          "with a little bird")

TOL_F32, TOL_F16, TOL_BF16, TOL_Q = 1e-4, 5e-3, 4e-2, 4e-2

# name, mkmodel arguments, run arguments, tolerance
VARIANTS = [
    ("f32 gqa untied",             ["--type", "f32"], ["--cache-type", "f32"], TOL_F32),
    ("f32 mha tied",               ["--type", "f32", "--kv-heads", "4", "--tied"], ["--cache-type", "f32"], TOL_F32),
    ("f32 gqa4 3 layers",          ["--type", "f32", "--heads", "8", "--kv-heads", "2", "--layers", "3"],
                                   ["--cache-type", "f32"], TOL_F32),
    ("f32 window 8 rope-scale 4",  ["--type", "f32", "--sliding-window", "8", "--rope-scale", "4"],
                                   ["--cache-type", "f32"], TOL_F32),
    ("f32 window 8, batches of 7", ["--type", "f32", "--sliding-window", "8", "--rope-scale", "4"],
                                   ["--cache-type", "f32", "-b", "7"], TOL_F32),
    ("f16 gqa window 8",           ["--type", "f16", "--sliding-window", "8"], ["--cache-type", "f16"], TOL_F16),
    ("f16 mha tied rope-base 500", ["--type", "f16", "--kv-heads", "4", "--tied", "--rope-base", "500"],
                                   ["--cache-type", "f16"], TOL_F16),
    ("bf16 mha tied",              ["--type", "bf16", "--kv-heads", "4", "--tied"], [], TOL_BF16),
    ("bf16 gqa window 8",          ["--type", "bf16", "--sliding-window", "8", "--rope-scale", "2"], [], TOL_BF16),
    ("q8_0 gqa window 8 scale 2",  ["--type", "q8_0", "--sliding-window", "8", "--rope-scale", "2"], [], TOL_Q),
    ("q8_0 mha tied",              ["--type", "q8_0", "--kv-heads", "4", "--tied"], [], TOL_Q),
    ("q4_0 gqa window 8",          ["--type", "q4_0", "--sliding-window", "8"], [], TOL_Q),
    ("q4_0 mha tied, batches of 5", ["--type", "q4_0", "--kv-heads", "4", "--tied"], ["-b", "5"], TOL_Q),
]

N_GEN = 8
BUGS = ["rope_neox", "no_window", "no_rope_scale", "no_gqa_map"]


def sh(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise RuntimeError("command failed (%d): %s\n%s" % (r.returncode, " ".join(cmd), r.stderr.decode(errors="replace")))
    return r.stdout.decode()


def slug(name):
    return "".join(c if c.isalnum() else "_" for c in name)


def run_variant(colloq, workdir, idx, name, mk_args, run_args):
    model = os.path.join(workdir, "m%d_%s.gguf" % (idx, slug(name)))
    dump = model + ".logits"
    sh([colloq, "mkmodel", "--shape", "tiny", "--seed", str(100 + idx), "-o", model] + mk_args)
    out = sh([colloq, "run", "-m", model, "-p", PROMPT, "-n", str(N_GEN), "--temp", "0", "--ignore-eos",
              "--json", "--dump-logits", dump, "-t", "2"] + run_args)
    res = json.loads(out)
    return model, res, np.fromfile(dump, dtype="<f4")


def compare(name, model, res, raw, tol, failures, bug_check=False):
    ref = ref_llama.RefLlama(model)
    prompt, ids = res["prompt_ids"], res["ids"]
    if len(prompt) < 30:
        failures.append("%s: prompt has only %d tokens (tokenizer?)" % (name, len(prompt)))
    if len(ids) != N_GEN or res.get("stop") not in (None, "length"):
        failures.append("%s: %d ids generated, stop %r" % (name, len(ids), res.get("stop")))
    n_rows = len(prompt) + len(ids) - 1
    if raw.size != n_rows * ref.n_vocab:
        failures.append("%s: dump has %d floats, want %d rows x %d" % (name, raw.size, n_rows, ref.n_vocab))
        return None
    got = raw.reshape(n_rows, ref.n_vocab).astype(np.float64)
    toks = prompt + ids[:-1]
    want = ref.forward(toks)
    std = want.std()
    err = np.abs(got - want).max() / std
    worst_row = int(np.abs(got - want).max(axis=1).argmax())
    ok = err < tol
    if not ok:
        failures.append("%s: max|dlogit|/std = %.3g >= %.3g (worst position %d of %d)" % (name, err, tol, worst_row, n_rows))

    # greedy ids: own argmax always; reference argmax where its margin is clear
    checked = agreed = 0
    for j, t in enumerate(ids):
        r = len(prompt) - 1 + j
        if int(np.argmax(got[r])) != t:
            failures.append("%s: generated id %d at step %d is not the argmax of its own logits" % (name, t, j))
        top2 = np.sort(want[r])[-2:]
        if (top2[1] - top2[0]) / std > 4 * tol:
            checked += 1
            if int(np.argmax(want[r])) == t:
                agreed += 1
            else:
                failures.append("%s: step %d: colloq chose %d, reference %d (margin %.3g std)"
                                % (name, j, t, int(np.argmax(want[r])), (top2[1] - top2[0]) / std))
    if checked < len(ids) // 2:
        failures.append("%s: only %d of %d greedy steps had a clear margin" % (name, checked, len(ids)))
    print("%-30s %3d positions  max|d|/std %.2e (tol %.0e) %s  greedy %d/%d clear steps agree"
          % (name, n_rows, err, tol, "ok  " if ok else "FAIL", agreed, checked))

    if bug_check:
        for bug in BUGS:
            e = np.abs(got - ref.forward(toks, bug=bug)).max() / std
            print("    reference with bug %-14s max|d|/std %.2e" % (bug, e))
            if e < 100 * tol:
                failures.append("%s: injected bug %s is not detected (%.3g < 100 x tol)" % (name, bug, e))
    return ref, toks, want


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--colloq", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    failures = []
    for idx, (name, mk_args, run_args, tol) in enumerate(VARIANTS):
        try:
            model, res, raw = run_variant(args.colloq, args.workdir, idx, name, mk_args, run_args)
        except (RuntimeError, ValueError) as e:
            failures.append("%s: %s" % (name, e))
            print("%-30s FAIL (%s)" % (name, str(e).splitlines()[0]))
            continue
        r = compare(name, model, res, raw, tol, failures, bug_check=(name == "f32 window 8 rope-scale 4"))
        if r and idx == 0:
            # the reference's own consistency: all-at-once == incremental with a K/V cache
            ref, toks, want = r
            for chunk in (1, 5):
                d = np.abs(ref.forward_incremental(toks, chunk) - want).max()
                if d > 1e-9:
                    failures.append("reference: incremental (chunk %d) differs from batch by %.3g" % (chunk, d))
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        return 1
    print("all %d variants match the reference" % len(VARIANTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
