#!/usr/bin/env python3
"""chat_cli.py - `colloq template` and `colloq chat` (stdin piped) as a user sees them.

template: prints exactly what Python's jinja2 renders (configured as transformers does)
for shipped templates, built-ins and a vocabulary file's own template, with no newline
added; refuses a file with no template and no identity, listing the built-in names;
usage errors exit 2, runtime errors 1.
chat: a piped session (turns, /stats, /system, /reset, /save, /load, end of input), usage
errors, the refusal to guess a format, the context-full policies as the user is told
about them, and SIGINT stopping an answer without ending the program.

usage: chat_cli.py --colloq PATH/colloq --workdir DIR --shared DIR
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

import jinja2
import jinja2.sandbox

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


def run(args, stdin=None, timeout=120):
    r = subprocess.run(args, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", errors="replace"), r.stderr.decode("utf-8", errors="replace")


def reference(template, messages, gen, bos, eos):
    def raise_exception(msg):
        raise jinja2.exceptions.TemplateError(msg)
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(messages=messages, add_generation_prompt=gen, bos_token=bos,
                                            eos_token=eos, tools=None)


CONVS = [
    [{"role": "user", "content": "Hello"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Ünïcödé 你好 😀"},
     {"role": "assistant", "content": " Sure. "}, {"role": "user", "content": "Again\nplease"}],
    [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
]


def test_template(c, work, shared):
    tdir = os.path.join(shared, "testdata", "templates")
    for name in ("openchat-openchat_3.5.jinja", "HuggingFaceH4-zephyr-7b-beta.jinja",
                 "meta-llama-Llama-2-7b-chat-hf.jinja", "Qwen-Qwen1.5-7B-Chat.jinja",
                 "microsoft-Phi-3.5-mini-instruct.jinja"):
        path = os.path.join(tdir, name)
        with open(path, encoding="utf-8") as f:
            src = f.read()
        for i, conv in enumerate(CONVS):
            mpath = os.path.join(work, "conv%d.json" % i)
            with open(mpath, "w", encoding="utf-8") as f:
                json.dump(conv, f, ensure_ascii=False)
            for gen in (False, True):
                args = [c, "template", "--chat-template", path, "--messages", mpath, "--bos", "<s>", "--eos", "</s>"]
                if gen:
                    args.append("--add-generation-prompt")
                r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                want = reference(src, conv, gen, "<s>", "</s>")
                check(r.returncode == 0 and r.stdout.decode("utf-8") == want,
                      "template %s conv %d gen %s: exit %d\n%r\n--- want\n%r\n%s" % (
                          name, i, gen, r.returncode, r.stdout, want, r.stderr.decode()))

    # a built-in, exactly, and the object form {"messages": [...]}
    mpath = os.path.join(work, "obj.json")
    with open(mpath, "w") as f:
        json.dump({"messages": [{"role": "user", "content": "Hi"}]}, f)
    rc, out, err = run([c, "template", "--chat-template", "openchat", "--messages", mpath, "--add-generation-prompt"])
    check(rc == 0 and out == "<s>GPT4 Correct User: Hi<|end_of_turn|>GPT4 Correct Assistant:",
          "template openchat: %d %r %s" % (rc, out, err))
    rc, out, err = run([c, "template", "--chat-template", "neural-chat", "--messages", mpath, "--add-generation-prompt",
                        "-v"])
    check(rc == 0 and out == "### User:\nHi\n### Assistant:\n" and "built-in 'neural-chat'" in err,
          "template neural-chat: %d %r %s" % (rc, out, err))

    # a vocabulary file's own template, its BOS/EOS texts
    phi = os.path.join(shared, "testdata", "vocab", "ggml-vocab-phi-3.gguf")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gguf_reader
    g = gguf_reader.open_gguf(phi)
    src = g.kv["tokenizer.chat_template"]
    toks = g.kv["tokenizer.ggml.tokens"]
    bos, eos = toks[g.kv["tokenizer.ggml.bos_token_id"]], toks[g.kv["tokenizer.ggml.eos_token_id"]]
    for i, conv in enumerate(CONVS):
        mpath = os.path.join(work, "conv%d.json" % i)
        r = subprocess.run([c, "template", "-m", phi, "--messages", mpath, "--add-generation-prompt"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        want = reference(src, conv, True, bos, eos)
        check(r.returncode == 0 and r.stdout.decode("utf-8") == want,
              "template -m phi-3 conv %d: %r want %r" % (i, r.stdout, want))

    # no template and nothing to identify the format by: refused with the names
    spm = os.path.join(shared, "testdata", "vocab", "ggml-vocab-llama-spm.gguf")
    rc, out, err = run([c, "template", "-m", spm, "--messages", os.path.join(work, "conv0.json")])
    check(rc == 1 and out == "" and all(n in err for n in ("openchat", "neural-chat", "zephyr", "chatml", "gemma")),
          "template on llama-spm: %d %r %s" % (rc, out, err))
    # the format refuses the conversation
    bad = os.path.join(work, "bad.json")
    with open(bad, "w") as f:
        json.dump([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], f)
    rc, out, err = run([c, "template", "--chat-template", "llama2", "--messages", bad])
    check(rc == 1 and "alternate" in err, "template llama2 user/user: %d %s" % (rc, err))
    with open(bad, "w") as f:
        f.write("[{\"role\": ")
    rc, out, err = run([c, "template", "--chat-template", "chatml", "--messages", bad])
    check(rc == 1 and "line" in err, "template bad JSON: %d %s" % (rc, err))
    for args in ([], ["--messages", bad], ["--chat-template", "chatml"], ["--chat-template", "chatml", "--bogus"],
                 ["--chat-template"]):
        rc, out, err = run([c, "template"] + args)
        check(rc == 2 and err.strip(), "template %s: exit %d (want 2)" % (args, rc))
    rc, out, err = run([c, "template", "--chat-template", "nonesuch", "--messages", os.path.join(work, "conv0.json")])
    check(rc == 1 and "gemma" in err and "nonesuch" in err, "template nonesuch: %d %s" % (rc, err))


def stats_turns(out):
    return [tuple(int(x) for x in m) for m in
            re.findall(r"turn \d+: prompt (\d+) tokens \(reused (\d+), evaluated (\d+)\)", out)]


def test_chat(c, work, shared):
    phi_vocab = os.path.join(shared, "testdata", "vocab", "ggml-vocab-phi-3.gguf")
    spm_vocab = os.path.join(shared, "testdata", "vocab", "ggml-vocab-llama-spm.gguf")
    phi = os.path.join(work, "phi.gguf")
    spm = os.path.join(work, "spm.gguf")
    for vocab, path in ((phi_vocab, phi), (spm_vocab, spm)):
        rc, _, err = run([c, "mkmodel", "--shape", "tiny", "--type", "q8_0", "--vocab", vocab, "-o", path, "-t", "1"])
        check(rc == 0, "mkmodel: %s" % err)

    # usage errors
    for args in ([], ["-m", phi, "--context-overflow", "wrap"], ["-m", phi, "--bogus"], ["-m", phi, "-n", "x"],
                 ["-m", phi, "--stop", ""], ["-m", phi, "--temp"]):
        rc, out, err = run([c, "chat"] + args, stdin=b"")
        check(rc == 2 and err.strip(), "chat %s: exit %d (want 2)" % (args, rc))
    # no template, no identity: refused, never ChatML silently
    rc, out, err = run([c, "chat", "-m", spm], stdin=b"Hello\n")
    check(rc == 1 and "--chat-template" in err and all(n in err for n in ("llama2", "mistral", "chatml", "llama3")),
          "chat on a file without template: %d %s" % (rc, err))
    rc, out, err = run([c, "chat", "-m", spm, "--chat-template", "nonesuch"], stdin=b"Hello\n")
    check(rc == 1 and "gemma" in err, "chat --chat-template nonesuch: %d %s" % (rc, err))

    # a piped session
    save = os.path.join(work, "saved.json")
    script = ("Hello there\nHow are you?\n/stats\n/system Be brief.\n/system\n/save %s\n/reset\n/stats\n"
              "/load %s\n/stats\n/nonsense\n/help\n" % (save, save)).encode()
    rc, out, err = run([c, "chat", "-m", phi, "-n", "6", "--seed", "3", "-t", "1"], stdin=script)
    check(rc == 0, "piped chat: exit %d: %s" % (rc, err))
    check("template from the model file" in err, "the format is not announced: %s" % err)
    t = stats_turns(out)
    check(len(t) >= 2, "no turn statistics in %r" % out)
    if len(t) >= 2:
        check(t[0][1] == 0 and t[1][1] >= t[0][0] and t[1][0] == t[1][1] + t[1][2],
              "turn statistics %s" % (t[:2],))
    check("system prompt: Be brief." in out, "/system did not show the prompt")
    check("unknown command '/nonsense'" in err, "unknown command not reported: %s" % err)
    check("/save FILE" in out and "/load FILE" in out, "/help lists no commands")
    try:
        with open(save, encoding="utf-8") as f:
            saved = json.load(f)
    except (OSError, ValueError) as e:
        saved = None
        check(False, "/save wrote no JSON: %s" % e)
    if saved is not None:
        check([m["role"] for m in saved] == ["system", "user", "assistant", "user", "assistant"] and
              saved[0]["content"] == "Be brief." and saved[1]["content"] == "Hello there",
              "saved conversation: %s" % saved)
        check("loaded 5 messages" in out and "5 messages" in out.split("loaded 5 messages")[-1],
              "/load did not restore the conversation: %s" % out[-400:])

    # context full: drop-oldest tells the user and keeps the system prompt
    long = "Please tell me a long story about the river, the mountain and the city of lanterns, number %d.\n"
    script = "".join(long % i for i in range(6)).encode() + b"/stats\n/save " + save.encode() + b"\n"
    rc, out, err = run([c, "chat", "-m", spm, "--chat-template", "zephyr", "--system", "Keep this.", "--ctx", "128",
                        "-n", "8", "--seed", "1", "-t", "1"], stdin=script)
    check(rc == 0 and "context full" in err and "system prompt is kept" in err and "drop-oldest" in err,
          "drop-oldest: exit %d, stderr %s" % (rc, err))
    m = re.search(r"(\d+) messages, (\d+) out of the prompt", out)
    check(m and m.group(1) == "13" and int(m.group(2)) >= 2 and int(m.group(2)) % 2 == 0,
          "drop-oldest /stats: %s" % (m.group(0) if m else out[-300:]))
    rc, out, err = run([c, "chat", "-m", spm, "--chat-template", "zephyr", "--system", "Keep this.", "--ctx", "128",
                        "-n", "8", "--seed", "1", "-t", "1", "--context-overflow", "shift"], stdin=script)
    check(rc == 0 and "context full" in err and "half the context" in err, "shift: exit %d, stderr %s" % (rc, err))
    rc, out, err = run([c, "chat", "-m", spm, "--chat-template", "zephyr", "--system", "Keep this.", "--ctx", "128",
                        "-n", "8", "--seed", "1", "-t", "1", "--context-overflow", "error"], stdin=script)
    check(rc == 0 and "does not fit the context" in err and "context full" not in err,
          "error policy: exit %d, stderr %s" % (rc, err))

    # SIGINT stops the answer, not the program
    slow = os.path.join(work, "slow.gguf")
    rc, _, err = run([c, "mkmodel", "--shape", "tiny", "--type", "q8_0", "--dim", "256", "--layers", "4", "--heads", "4",
                      "--kv-heads", "4", "--ffn", "768", "--ctx", "2048", "--vocab", phi_vocab, "-o", slow, "-t", "1"])
    check(rc == 0, "mkmodel slow: %s" % err)
    for seed in (5, 6, 7):      # another seed if a random model happens to end its answer at once
        p = subprocess.Popen([c, "chat", "-m", slow, "--ctx", "2048", "--seed", str(seed), "-t", "1", "--temp", "1.5"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdin.write(b"Write a very long answer\n")
        p.stdin.flush()
        os.set_blocking(p.stdout.fileno(), False)
        got = b""
        t0 = time.time()
        while len(got) < 20 and time.time() - t0 < 60:
            chunk = p.stdout.read()
            if chunk:
                got += chunk
            time.sleep(0.02)
        p.send_signal(signal.SIGINT)
        time.sleep(0.5)
        os.set_blocking(p.stdout.fileno(), True)
        out, err = p.communicate(b"/stats\n/exit\n", timeout=120)
        out = (got + out).decode("utf-8", errors="replace")
        err = err.decode("utf-8", errors="replace")
        check(p.returncode == 0, "SIGINT: the program ended with %d: %s" % (p.returncode, err))
        if "stop: eog" not in out:
            break
    check("stop: cancelled" in out and "interrupted" in err, "SIGINT did not stop the answer:\n%s\n%s" % (out[-500:], err))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--colloq", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--shared", required=True)
    a = ap.parse_args()
    if not os.path.isdir(os.path.join(a.shared, "testdata", "templates")):
        print("skipped: shared test data absent")
        return 77
    os.makedirs(a.workdir, exist_ok=True)
    test_template(a.colloq, a.workdir, a.shared)
    test_chat(a.colloq, a.workdir, a.shared)
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("chat cli: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
