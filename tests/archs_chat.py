#!/usr/bin/env python3
"""archs_chat.py - `colloq chat` end to end on a random model of each family (qwen2, qwen,
falcon, baichuan, chatglm) with the family's built-in chat format.

For each model (`colloq mkmodel --arch A`: built-in vocabulary with the family's special
tokens, no chat template in the file) two user messages are piped into `colloq chat`, then
/stats and /save.  Checks:
  - exit status 0, no error or warning on stderr;
  - the format is the family's built-in (qwen2, qwen: chatml; falcon: falcon; baichuan:
    baichuan2; chatglm: chatglm3), chosen because the file has no template;
  - both turns were answered (/stats: turn 1 and turn 2, each with answer tokens) and the
    saved conversation is user / assistant / user / assistant with the messages sent;
  - the first turn's prompt is exactly the built-in's rendering tokenized with special tokens
    (`colloq template` + `colloq tokenize --special`: same token count as /stats reports), so
    for chatglm the "[gMASK]sop" prefix is its two special tokens at the very start.
With ../shared present, falcon and baichuan are also run with their real vocabularies
(byte-level BPE for falcon), copied from the shared vocabulary files.

usage: archs_chat.py --colloq PATH/colloq --workdir DIR [--vocab-dir DIR]
"""

import argparse
import json
import os
import re
import subprocess
import sys

FAMILIES = [  # name, mkmodel arguments, expected built-in format, vocabulary file (optional)
    ("qwen2", ["--arch", "qwen2"], "chatml", None),
    ("qwen", ["--arch", "qwen"], "chatml", None),
    ("falcon", ["--arch", "falcon", "--kv-heads", "1"], "falcon", None),
    ("baichuan", ["--arch", "baichuan"], "baichuan2", None),
    ("baichuan-13b", ["--arch", "baichuan", "--layers", "40", "--dim", "96", "--heads", "6", "--kv-heads", "6"],
     "baichuan2", None),
    ("chatglm", ["--arch", "chatglm"], "chatglm3", None),
    ("falcon, real vocabulary", ["--arch", "falcon", "--heads", "8", "--kv-heads", "2"], "falcon",
     "ggml-vocab-falcon.gguf"),
    ("baichuan, real vocabulary", ["--arch", "baichuan"], "baichuan2", "ggml-vocab-baichuan.gguf"),
]
MESSAGES = ["hello there", "what is the capital of france"]


def run(cmd, stdin=None):
    r = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def check_family(colloq, workdir, name, mk_args, fmt, vocab, failures):
    slug = "".join(c if c.isalnum() else "_" for c in name)
    model = os.path.join(workdir, slug + ".gguf")
    conv = os.path.join(workdir, slug + ".json")
    rc, _, err = run([colloq, "mkmodel", "--shape", "tiny", "-o", model] + mk_args + (["--vocab", vocab] if vocab else []))
    if rc != 0:
        failures.append("%s: mkmodel failed: %s" % (name, err.strip()))
        return
    script = "\n".join(MESSAGES + ["/stats", "/save " + conv]) + "\n"
    rc, out, err = run([colloq, "chat", "-m", model, "--temp", "0", "-n", "12", "-t", "2"], script.encode())
    bad = []
    if rc != 0:
        bad.append("exit status %d" % rc)
    if "error" in err.lower() or "warning" in err.lower():
        bad.append("stderr reports a problem: %r" % err[:300])
    want = "format: built-in '%s'" % fmt
    if want not in err or "carries no template" not in err:
        bad.append("expected %s (file without template), stderr: %r" % (want, err[:200]))
    turns = {int(m.group(1)): (int(m.group(2)), int(m.group(3)))
             for m in re.finditer(r"turn (\d+): prompt (\d+) tokens.*?answer (\d+) tokens", out)}
    if sorted(turns) != [1, 2] or any(a < 1 for _, a in turns.values()):
        bad.append("/stats does not show two answered turns: %r" % turns)
    try:
        saved = json.load(open(conv))
        roles = [m["role"] for m in saved]
        users = [m["content"] for m in saved if m["role"] == "user"]
        if roles != ["user", "assistant", "user", "assistant"] or users != MESSAGES:
            bad.append("saved conversation has roles %s, user messages %s" % (roles, users))
    except (OSError, ValueError, KeyError, TypeError) as e:
        bad.append("no saved conversation: %s" % e)

    # the first prompt is the built-in format's rendering, special tokens parsed
    msgs = os.path.join(workdir, slug + "_first.json")
    json.dump([{"role": "user", "content": MESSAGES[0]}], open(msgs, "w"))
    rc, prompt, terr = run([colloq, "template", "-m", model, "--messages", msgs, "--add-generation-prompt"])
    ptxt = os.path.join(workdir, slug + "_prompt.txt")
    open(ptxt, "w").write(prompt)
    rc2, ids_json, terr2 = run([colloq, "tokenize", "-m", model, "-f", ptxt, "--special"])
    if rc != 0 or rc2 != 0:
        bad.append("template/tokenize failed: %s %s" % (terr.strip(), terr2.strip()))
    else:
        ids = json.loads(ids_json)
        if 1 in turns and turns[1][0] != len(ids):
            bad.append("turn 1 prompt has %d tokens, the %s rendering %r has %d" % (turns[1][0], fmt, prompt, len(ids)))
        if fmt == "chatglm3":
            rc3, pre, _ = run([colloq, "tokenize", "-m", model, "-p", "[gMASK]sop", "--special", "--no-bos"])
            pre = json.loads(pre) if rc3 == 0 else None
            if not prompt.startswith("[gMASK]sop<|user|>") or pre is None or len(pre) != 2 or ids[:2] != pre:
                bad.append("the prompt does not start with the [gMASK] sop tokens: %r -> %s (prefix %s)"
                           % (prompt[:30], ids[:4], pre))
    for b in bad:
        failures.append("%s: %s" % (name, b))
    print("%-27s format %-10s turns %s  %s" % (name, fmt, turns, "ok" if not bad else "FAIL"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--colloq", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--vocab-dir")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    failures = []
    for name, mk_args, fmt, vocab in FAMILIES:
        if vocab:
            path = os.path.join(args.vocab_dir or "", vocab)
            if not args.vocab_dir or not os.path.exists(path):
                print("%-27s skipped (no %s)" % (name, vocab))
                continue
            vocab = path
        check_family(args.colloq, args.workdir, name, mk_args, fmt, vocab, failures)
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        return 1
    print("colloq chat works with every family's built-in format")
    return 0


if __name__ == "__main__":
    sys.exit(main())
