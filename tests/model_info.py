"""model_info.py - `colloq info`: a random-weight model's description (architecture,
hyper-parameters, memory per sequence, tensors, metadata), the fallback for a GGUF file
that is not a runnable model, and the error paths.

usage: model_info.py COLLOQ_BINARY TMPDIR [VOCAB_DIR]
"""

import os
import re
import subprocess
import sys

failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL: " + what, file=sys.stderr)


def run(args):
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def main():
    colloq, tmp = sys.argv[1], sys.argv[2]
    vocab_dir = sys.argv[3] if len(sys.argv) > 3 else None
    os.makedirs(tmp, exist_ok=True)
    model = os.path.join(tmp, "info-tiny.gguf")

    rc, out, err = run([colloq, "mkmodel", "--shape", "tiny", "--type", "q8_0", "--kv-heads", "2",
                        "--sliding-window", "64", "-o", model])
    check(rc == 0, "mkmodel failed: %s" % err)
    if rc != 0:
        return

    rc, out, err = run([colloq, "info", "--threads", "2", model])
    check(rc == 0, "info exit %d: %s" % (rc, err))
    expect = {
        "architecture": "llama",
        "n_embd": "64",
        "n_layer": "2",
        "n_head": "4",
        "n_head_kv": "2",
        "head_dim": "16",
        "n_ctx_train": "512",
        "sliding_window": "64",
    }
    for key, val in expect.items():
        m = re.search(r"^%s:\s+(\S+)" % re.escape(key), out, re.M)
        check(m is not None and m.group(1) == val, "info %s: %r (expected %s)" % (key, m and m.group(1), val))
    # per sequence at the default context (512): KV = 2 x layers x ctx x n_kv*hd x 2 bytes (F16)
    m = re.search(r"^per sequence:\s+n_ctx (\d+): KV cache ([0-9.]+) MiB \(F16; F32: ([0-9.]+) MiB(?:, Q8_0: [0-9.]+ MiB)?\) "
                  r"\+ scratch ([0-9.]+) MiB", out, re.M)
    check(m is not None, "no per-sequence memory line in:\n" + out)
    if m:
        kv = 2 * 2 * 512 * 2 * 16 * 2 / 1048576.0
        check(m.group(1) == "512", "default n_ctx %s" % m.group(1))
        check(abs(float(m.group(2)) - kv) < 0.06, "KV MiB %s, expected %.2f" % (m.group(2), kv))
        check(abs(float(m.group(3)) - 2 * kv) < 0.06, "F32 KV MiB %s, expected %.2f" % (m.group(3), 2 * kv))
        check(float(m.group(4)) > 0, "scratch MiB %s" % m.group(4))
    # the tensor list and metadata come from the GGUF description
    for name in ("token_embd.weight", "blk.1.ffn_down.weight", "output_norm.weight", "Q8_0",
                 "general.architecture", "tokenizer.ggml.tokens"):
        check(name in out, "info output lacks %s" % name)

    # errors
    rc, out, err = run([colloq, "info", os.path.join(tmp, "missing.gguf")])
    check(rc == 1 and "missing.gguf" in err, "missing file: rc %d, stderr %r" % (rc, err))
    rc, out, err = run([colloq, "info"])
    check(rc == 2 and "usage" in err, "no argument: rc %d" % rc)
    rc, out, err = run([colloq, "info", "--bogus", model])
    check(rc == 2 and "--bogus" in err, "unknown option: rc %d, %r" % (rc, err))
    rc, out, err = run([colloq, "info", "--help"])
    check(rc == 0 and "usage" in out, "--help: rc %d" % rc)

    # a vocabulary-only GGUF is valid GGUF but no model: error, then its contents
    if vocab_dir and os.path.isdir(vocab_dir):
        vocab = os.path.join(vocab_dir, "ggml-vocab-llama-spm.gguf")
        rc, out, err = run([colloq, "info", vocab])
        check(rc == 1, "vocab-only file: rc %d" % rc)
        check("ggml-vocab-llama-spm.gguf" in err and "missing" in err, "vocab-only file: stderr %r" % err)
        check("tokenizer.ggml.tokens" in out, "vocab-only file: metadata not printed")


main()
if failures:
    print("model_info: %d failure(s)" % failures, file=sys.stderr)
    sys.exit(1)
print("model_info: all passed")
