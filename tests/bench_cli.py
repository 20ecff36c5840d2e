#!/usr/bin/env python3
"""bench_cli.py - `colloq quantize` and `colloq bench` from the command line.

Makes a tiny random model, converts it with `colloq quantize` (exit codes, the output
file's tensor types, read back with the independent reader gguf_reader.py), and runs
`colloq bench --json` on several types: the JSON keys, that the timings are positive,
that bytes_per_token is exactly what the file says (every tensor except the embedding
table, plus one row of it) and that tg_floor_ratio is computed from the reported
figures.
usage: bench_cli.py COLLOQ WORKDIR
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_reader  # noqa: E402

failures = 0


def check(cond, msg):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", msg, file=sys.stderr)


def run(args, expect=0):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
    check(p.returncode == expect, "%s: exit %d (expected %d)\n%s" % (" ".join(args[1:]), p.returncode, expect, p.stderr))
    return p


def row_bytes(t):
    blck, size = gguf_reader.TYPE_LAYOUT[t.type]
    return t.ne[0] // blck * size


def main():
    colloq, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    src = os.path.join(work, "bench-f32.gguf")
    run([colloq, "mkmodel", "--shape", "tiny", "--dim", "256", "--ffn", "512", "--type", "f32", "-o", src])

    # usage errors
    run([colloq, "quantize", src, os.path.join(work, "x.gguf")], expect=2)
    p = run([colloq, "quantize", src, os.path.join(work, "x.gguf"), "Q4_2"], expect=2)
    check("Q4_2" in p.stderr, "unknown type not named: " + p.stderr)
    run([colloq, "quantize", src, src, "Q8_0"], expect=2)
    run([colloq, "quantize", os.path.join(work, "missing.gguf"), os.path.join(work, "x.gguf"), "Q8_0"], expect=1)
    run([colloq, "bench"], expect=2)
    run([colloq, "bench", "-m", src, "-r", "0"], expect=2)
    run([colloq, "bench", "-m", os.path.join(work, "missing.gguf")], expect=1)

    # every type (ffn_up's type id; the mixes keep some tensors at higher precision)
    want = {"F32": 0, "F16": 1, "BF16": 30, "Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8,
            "Q2_K": 10, "Q3_K": 11, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14, "Q4_K_M": 12, "Q5_K_M": 13, "Q3_K_M": 11}
    for name, ffn_type in want.items():
        out = os.path.join(work, "bench-%s.gguf" % name)
        p = run([colloq, "quantize", src, out, name, "--threads", "2"])
        check("wrote" in p.stderr, "quantize %s: %s" % (name, p.stderr))
        g = gguf_reader.open_gguf(out)
        check(g.tensors["blk.0.ffn_up.weight"].type == ffn_type, "%s: ffn_up type %d" % (name, g.tensors["blk.0.ffn_up.weight"].type))
        check(g.tensors["blk.0.attn_norm.weight"].type == 0, "%s: norm not F32" % name)
        check(g.get("tokenizer.ggml.tokens") == gguf_reader.open_gguf(src).get("tokenizer.ggml.tokens"),
              "%s: vocabulary not copied" % name)
        expected_bytes = sum(t.nbytes for n, t in g.tensors.items() if n != "token_embd.weight")
        expected_bytes += row_bytes(g.tensors["token_embd.weight"])

        p = run([colloq, "bench", "-m", out, "-p", "16", "-n", "8", "-r", "2", "-t", "2", "--bw-mib", "32", "--json"])
        try:
            r = json.loads(p.stdout)
        except ValueError:
            check(False, "bench %s: not JSON: %r" % (name, p.stdout))
            continue
        for key in ("pp_tok_s", "tg_tok_s", "bytes_per_token", "bw_gbps", "tg_floor_ratio", "model", "type",
                    "threads", "isa", "int8_tops", "pp_peak_ratio", "pp_runs", "tg_runs"):
            check(key in r, "bench %s: no %s" % (name, key))
        if failures:
            continue
        label = {"Q3_K": "Q3_K_S", "Q4_K": "Q4_K_S", "Q5_K": "Q5_K_S"}.get(name, name)   # llama.cpp's file types
        check(r["type"] == label, "bench %s: type %s, expected %s" % (name, r["type"], label))
        check(r.get("cache_type") == "f16", "bench %s: cache_type %r" % (name, r.get("cache_type")))
        check(r["threads"] == 2 and len(r["pp_runs"]) == 2 and len(r["tg_runs"]) == 2, "bench %s: runs" % name)
        check(r["pp_tok_s"] > 0 and r["tg_tok_s"] > 0 and r["bw_gbps"] > 0, "bench %s: non-positive figures" % name)
        check(r["bytes_per_token"] == expected_bytes, "bench %s: bytes_per_token %d, file says %d"
              % (name, r["bytes_per_token"], expected_bytes))
        # KV bytes: 2 (K, V) x layers x kv heads x f16 row x the positions attended, on average
        kv = 2 * 2 * 2 * 64 * 2 * (8 + 1) / 2
        check(r["kv_bytes_per_token"] == int(kv), "bench %s: kv_bytes_per_token %d, expected %d"
              % (name, r["kv_bytes_per_token"], kv))
        ratio = r["tg_tok_s"] * (r["bytes_per_token"] + r["kv_bytes_per_token"]) / (r["bw_gbps"] * 1e9)
        check(abs(ratio - r["tg_floor_ratio"]) <= 1e-4 * ratio, "bench %s: ratio %g vs %g" % (name, r["tg_floor_ratio"], ratio))
        print("bench %-7s pp %.0f tok/s, tg %.0f tok/s, %d bytes/token, %s" % (name, r["pp_tok_s"], r["tg_tok_s"],
                                                                            r["bytes_per_token"], r["isa"]))

    # the q8_0 KV cache
    p = run([colloq, "bench", "-m", os.path.join(work, "bench-Q4_0.gguf"), "-p", "8", "-n", "4", "-r", "1",
             "--bw-mib", "16", "--cache-type", "q8_0", "--json"])
    r = json.loads(p.stdout)
    check(r.get("cache_type") == "q8_0" and r["tg_tok_s"] > 0, "bench --cache-type q8_0: %r" % p.stdout)
    # decode at depth 20: the q8_0 rows are 2 blocks of 34 bytes (head_dim 64)
    check(r["depth"] == 0 and r["kv_bytes_per_token"] == int(2 * 2 * 2 * 68 * (4 + 1) / 2), "q8_0 kv bytes %r" % r)
    p = run([colloq, "bench", "-m", os.path.join(work, "bench-Q4_0.gguf"), "-p", "0", "-n", "4", "-r", "1",
             "--bw-mib", "16", "--cache-type", "q8_0", "-d", "20", "--json"])
    r = json.loads(p.stdout)
    check(r["depth"] == 20 and r["kv_bytes_per_token"] == int(2 * 2 * 2 * 68 * (20 + (4 + 1) / 2)),
          "bench -d 20: %r" % r)
    p = run([colloq, "bench", "-m", os.path.join(work, "bench-Q4_0.gguf"), "-p", "0", "-n", "2", "-r", "1",
             "--bw-mib", "16", "-d", "7"])
    check("at depth 7 (KV cache f16)" in p.stdout, "bench -d text output: %r" % p.stdout)
    p = run([colloq, "bench", "-m", src, "--cache-type", "q4_0"], expect=2)
    check("bad value for --cache-type" in p.stderr, "bad cache type: %r" % p.stderr)
    p = run([colloq, "bench", "-m", os.path.join(work, "bench-Q4_0.gguf"), "-p", "8", "-n", "0", "-r", "1", "--bw-mib", "16"])
    check("prefill" in p.stdout and "decode" not in p.stdout and "bandwidth" in p.stdout, "text output: " + p.stdout)
    for f in os.listdir(work):
        os.remove(os.path.join(work, f))
    if failures:
        print("%d failure(s)" % failures, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
