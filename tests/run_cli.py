#!/usr/bin/env python3
"""run_cli.py - behaviour of `colloq run` and `colloq mkmodel` as a user sees it.

Usage errors exit 2 with a message; runtime errors exit 1; --json prints exactly one
object with prompt_ids/ids/text/timings; the streamed text equals the JSON text and is
always valid UTF-8 (random byte tokens make incomplete and invalid sequences likely);
the same seed gives the same tokens and another seed other tokens; --temp 0 ignores the
filters; --dump-logits holds one row per evaluated position; -n 0, -n -1 and a full
context stop where they should; mkmodel is deterministic in its seed.

usage: run_cli.py --colloq PATH/colloq --workdir DIR
"""

import argparse
import json
import os
import subprocess
import sys

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


def run(colloq, *args):
    r = subprocess.run([colloq] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def run_json(colloq, *args):
    rc, out, err = run(colloq, *args, "--json")
    check(rc == 0, "run %s: exit %d: %s" % (" ".join(args), rc, err))
    if rc != 0:
        return None
    text = out.decode("utf-8")
    check(text.count("\n") == 1 and text.endswith("\n"), "--json printed more than one line: %r" % text[:200])
    obj = json.loads(text)
    for k in ("prompt_ids", "ids", "text", "timings"):
        check(k in obj, "--json output lacks %s" % k)
    for k in ("prompt_ms", "prompt_tok_s", "gen_ms", "gen_tok_s"):
        check(isinstance(obj.get("timings", {}).get(k), (int, float)), "timings.%s missing" % k)
    return obj


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--colloq", required=True)
    ap.add_argument("--workdir", required=True)
    a = ap.parse_args()
    c = a.colloq
    os.makedirs(a.workdir, exist_ok=True)
    model = os.path.join(a.workdir, "cli_tiny.gguf")
    model2 = os.path.join(a.workdir, "cli_tiny_again.gguf")
    model3 = os.path.join(a.workdir, "cli_tiny_seed2.gguf")

    # ---- mkmodel ----
    for args in (["--shape", "huge", "-o", model], ["--shape", "tiny"], ["--shape", "tiny", "-o", model, "--type", "q5_k"],
                 ["--shape", "tiny", "-o", model, "--dim", "60"], ["--shape", "tiny", "-o", model, "--bogus"],
                 ["--shape", "tiny", "-o", model, "--type", "q4_0", "--dim", "48", "--heads", "4", "--kv-heads", "4"],
                 ["--shape", "tiny", "-o", model, "--seed", "-3"], ["--shape", "tiny", "-o", model, "--layers"]):
        rc, _, err = run(c, "mkmodel", *args)
        check(rc == 2 and err.strip(), "mkmodel %s: exit %d (want 2 with a message)" % (" ".join(args), rc))
    rc, _, err = run(c, "mkmodel", "--shape", "tiny", "--type", "q8_0", "--seed", "5", "-o", model)
    check(rc == 0 and "RANDOM" in err, "mkmodel tiny: exit %d: %s" % (rc, err))
    run(c, "mkmodel", "--shape", "tiny", "--type", "q8_0", "--seed", "5", "-t", "1", "-o", model2)
    run(c, "mkmodel", "--shape", "tiny", "--type", "q8_0", "--seed", "6", "-o", model3)
    with open(model, "rb") as f1, open(model2, "rb") as f2, open(model3, "rb") as f3:
        b1, b2, b3 = f1.read(), f2.read(), f3.read()
    check(b1 == b2, "mkmodel: same seed, different files")
    check(b1 != b3 and len(b1) == len(b3), "mkmodel: seeds 5 and 6 gave the same file")

    # ---- run: usage errors (2) and runtime errors (1) ----
    for args in ([], ["-m", model], ["-m", model, "-p", "x", "--temp", "hot"], ["-m", model, "-p", "x", "-n", "1.5"],
                 ["-m", model, "-p", "x", "--bogus"], ["-m", model, "-p", "x", "-f", "file"],
                 ["-m", model, "-p", "x", "--top-p", "2"], ["-m", model, "-p", "x", "--cache-type", "q4"],
                 ["-m", model, "-p", "x", "--seed"], ["-m", model, "-p", "x", "-t", "0"]):
        rc, out, err = run(c, "run", *args)
        check(rc == 2 and err.strip(), "run %s: exit %d (want 2 with a message)" % (" ".join(args), rc))
    rc, _, err = run(c, "run", "-m", os.path.join(a.workdir, "missing.gguf"), "-p", "x")
    check(rc == 1 and err.strip(), "run with a missing model: exit %d" % rc)
    rc, _, err = run(c, "run", "-m", model, "-p", "the " * 40, "--ctx", "16")
    check(rc == 1 and "context" in err, "prompt longer than the context: exit %d: %s" % (rc, err))
    rc, out, _ = run(c, "run", "--help")
    check(rc == 0 and b"--dump-logits" in out, "run --help")

    prompt = "hello my name is"
    # ---- same seed, same tokens; stream == JSON text; valid UTF-8 ----
    j1 = run_json(c, "run", "-m", model, "-p", prompt, "-n", "48", "--temp", "1.5", "--top-k", "0", "--top-p", "1",
                  "--min-p", "0", "--seed", "11", "--ignore-eos")
    j2 = run_json(c, "run", "-m", model, "-p", prompt, "-n", "48", "--temp", "1.5", "--top-k", "0", "--top-p", "1",
                  "--min-p", "0", "--seed", "11", "--ignore-eos")
    j3 = run_json(c, "run", "-m", model, "-p", prompt, "-n", "48", "--temp", "1.5", "--top-k", "0", "--top-p", "1",
                  "--min-p", "0", "--seed", "12", "--ignore-eos")
    if j1 and j2 and j3:
        check(len(j1["ids"]) == 48, "-n 48 gave %d ids" % len(j1["ids"]))
        check(j1["ids"] == j2["ids"] and j1["text"] == j2["text"], "same seed, different output")
        check(j1["ids"] != j3["ids"], "seeds 11 and 12 gave the same ids")
        check(j1["prompt_ids"][0] == 1, "prompt does not start with BOS: %r" % j1["prompt_ids"][:3])
    rc, out, err = run(c, "run", "-m", model, "-p", prompt, "-n", "48", "--temp", "1.5", "--top-k", "0", "--top-p", "1",
                       "--min-p", "0", "--seed", "11", "--ignore-eos")
    check(rc == 0, "streaming run: exit %d: %s" % (rc, err))
    try:
        streamed = out.decode("utf-8")
    except UnicodeDecodeError as e:
        streamed = None
        check(False, "streamed text is not valid UTF-8: %s" % e)
    if j1 and streamed is not None:
        check(streamed == j1["text"] + "\n", "streamed text differs from the JSON text:\n%r\n%r" % (streamed, j1["text"]))
    check("tok/s" in err, "timings missing on stderr: %r" % err)

    # byte tokens: many seeds, always valid UTF-8 in both outputs
    for seed in range(20, 30):
        rc, out, err = run(c, "run", "-m", model, "-p", "x", "-n", "64", "--temp", "3", "--top-k", "0", "--top-p", "1",
                           "--min-p", "0", "--seed", str(seed), "--ignore-eos")
        try:
            out.decode("utf-8")
        except UnicodeDecodeError as e:
            check(False, "seed %d: stream not valid UTF-8: %s" % (seed, e))

    # ---- greedy ignores the filters; penalties change the choice ----
    g1 = run_json(c, "run", "-m", model, "-p", prompt, "-n", "12", "--temp", "0", "--ignore-eos")
    g2 = run_json(c, "run", "-m", model, "-p", prompt, "-n", "12", "--temp", "0", "--top-k", "3", "--top-p", "0.5",
                  "--seed", "99", "--ignore-eos")
    g3 = run_json(c, "run", "-m", model, "-p", prompt, "-n", "12", "--temp", "0", "--repeat-penalty", "1.5",
                  "--frequency-penalty", "5", "--ignore-eos")
    if g1 and g2 and g3:
        check(g1["ids"] == g2["ids"], "greedy output depends on top-k/top-p/seed")
        check(len(set(g3["ids"])) == len(g3["ids"]), "a frequency penalty of 5 still repeats: %r" % g3["ids"])

    # ---- dump-logits rows; -n 0; -n -1 stops at the context ----
    dump = os.path.join(a.workdir, "cli.logits")
    j = run_json(c, "run", "-m", model, "-p", prompt, "-n", "5", "--temp", "0", "--ignore-eos", "--dump-logits", dump)
    n_vocab = None
    if j:
        rows = len(j["prompt_ids"]) + len(j["ids"]) - 1
        size = os.path.getsize(dump)
        check(size % (4 * rows) == 0, "dump of %d bytes is not %d rows" % (size, rows))
        n_vocab = size // (4 * rows)
        check(n_vocab > 300, "dump rows of %d floats" % n_vocab)
    j = run_json(c, "run", "-m", model, "-p", prompt, "-n", "0", "--dump-logits", dump)
    if j and n_vocab:
        check(j["ids"] == [] and j["text"] == "", "-n 0 generated tokens")
        check(os.path.getsize(dump) == 4 * n_vocab * len(j["prompt_ids"]), "-n 0 dump is not one row per prompt token")
    j = run_json(c, "run", "-m", model, "-p", prompt, "-n", "-1", "--ctx", "20", "--temp", "0", "--ignore-eos")
    if j:
        check(j.get("stop") == "context" and len(j["prompt_ids"]) + len(j["ids"]) == 21,
              "-n -1 with --ctx 20: %d + %d tokens, stop %r" % (len(j["prompt_ids"]), len(j["ids"]), j.get("stop")))
    j = run_json(c, "run", "-m", model, "-p", prompt, "-n", "100", "--ctx", "20", "--temp", "0", "--ignore-eos")
    if j:
        check(len(j["prompt_ids"]) + len(j["ids"]) == 21, "full context did not stop generation")
    rc, _, err = run(c, "run", "-m", model, "-p", prompt, "-n", "2", "--verbose")
    check(rc == 0 and "MiB" in err, "--verbose does not report memory: %r" % err)

    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("run/mkmodel command line: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
