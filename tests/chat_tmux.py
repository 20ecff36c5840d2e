#!/usr/bin/env python3
"""chat_tmux.py - `colloq chat` on a terminal, typed into through tmux, on random tiny models.

Session 1: two turns; /stats shows that the second turn reused the whole cache of the
first and evaluated only the tokens of its new text (counted independently with
`colloq template` and `colloq tokenize`); /save.
Session 2: /load restores the saved conversation (/stats counts its messages); a long
answer is interrupted with Ctrl-C and the REPL goes on (Ctrl-C at the prompt only
prints a hint); /save shows the restored messages followed by the new turn; /exit.

usage: chat_tmux.py --colloq PATH/colloq --workdir DIR --shared DIR   (exits 77 without tmux
or the shared vocabularies)
"""

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)
    return cond


class Tmux:
    def __init__(self, workdir, name):
        self.sock = "colloq-chat-test-%d-%s" % (os.getpid(), name)
        self.name = name
        self.workdir = workdir

    def tmux(self, *args, check_rc=True):
        r = subprocess.run(["tmux", "-L", self.sock] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if check_rc and r.returncode != 0:
            raise RuntimeError("tmux %s: %s" % (args, r.stderr.decode()))
        return r.stdout.decode("utf-8", errors="replace")

    def start(self, command):
        # the wrapping shell ignores SIGINT (as an interactive shell does for its foreground
        # job) so that Ctrl-C reaches only colloq, which installs its own handler
        shell = "trap '' INT; cd %s && %s; echo \"[exit $?]\"; sleep 600" % (shlex.quote(self.workdir), command)
        self.tmux("new-session", "-d", "-s", self.name, "-x", "230", "-y", "50", "sh", "-c", shell)
        self.tmux("set-option", "-t", self.name, "history-limit", "20000")

    def screen(self):
        return self.tmux("capture-pane", "-p", "-J", "-t", self.name, "-S", "-20000")

    def send(self, text):
        self.tmux("send-keys", "-t", self.name, "-l", text)
        self.tmux("send-keys", "-t", self.name, "Enter")

    def key(self, key):
        self.tmux("send-keys", "-t", self.name, key)

    def wait(self, pred, what, timeout=120):
        t0 = time.time()
        while time.time() - t0 < timeout:
            s = self.screen()
            if pred(s):
                return s
            time.sleep(0.05)
        check(False, "timed out waiting for %s; the screen:\n%s" % (what, self.screen()[-3000:]))
        return None

    def prompts(self, s):
        # a prompt line: "> " and what was typed (tmux drops trailing blanks of an empty one)
        return sum(1 for line in s.split("\n") if line == ">" or line.startswith("> "))

    def wait_prompt(self, n_before, what, timeout=120):
        """wait until more '> ' prompts are on screen than n_before"""
        return self.wait(lambda s: self.prompts(s) > n_before, what, timeout)

    def stop(self):
        self.tmux("kill-server", check_rc=False)


def run(args):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    return r.returncode, r.stdout, r.stderr.decode("utf-8", errors="replace")


TURN_RE = re.compile(r"turn (\d+): prompt (\d+) tokens \(reused (\d+), evaluated (\d+)\).*stop: (\w+); cache (\d+)")


def turns(screen):
    return {int(m[0]): dict(prompt=int(m[1]), reused=int(m[2]), evaluated=int(m[3]), stop=m[4], cache=int(m[5]))
            for m in TURN_RE.findall(screen)}


def new_tokens(c, model, work, saved):
    """Tokens of the text turn 2 adds to turn 1's prompt and answer, or None if that text
    is not an extension (the answer was not valid text)."""
    def render(msgs):
        path = os.path.join(work, "render.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(msgs, f, ensure_ascii=False)
        rc, out, err = run([c, "template", "-m", model, "--messages", path, "--add-generation-prompt"])
        check(rc == 0, "colloq template: %s" % err)
        return out.decode("utf-8")
    p1 = render(saved[:1])
    p2 = render(saved[:3])
    head = p1 + saved[1]["content"]
    if not p2.startswith(head):
        return None
    rc, out, err = run([c, "tokenize", "-m", model, "--no-bos", "--special", "-p", p2[len(head):]])
    check(rc == 0, "colloq tokenize: %s" % err)
    return len(json.loads(out))


def session1(c, work, model):
    t = Tmux(work, "one")
    t.start("%s chat -m phi.gguf -n 8 --seed 3 -t 1 2>stderr1.txt" % shlex.quote(c))
    try:
        s = t.wait(lambda s: t.prompts(s) >= 1, "the first prompt")
        if s is None:
            return None
        t.send("Hello there")
        t.wait_prompt(1, "the first answer")
        t.send("How are you?")
        t.wait_prompt(2, "the second answer")
        t.send("/stats")
        s = t.wait(lambda s: "turn 2:" in s, "/stats")
        st = turns(s or "")
        t.send("/save conv.json")
        t.wait(lambda s: "saved 4 messages" in s, "/save")
        t.send("/exit")
        t.wait(lambda s: "[exit 0]" in s, "exit 0 after /exit")
    finally:
        t.stop()
    if not check(1 in st and 2 in st, "no statistics for two turns"):
        return None
    t1, t2 = st[1], st[2]
    check(t1["reused"] == 0 and t1["evaluated"] == t1["prompt"], "turn 1: %s" % t1)
    check(t2["reused"] + t2["evaluated"] == t2["prompt"], "turn 2: %s" % t2)
    check(t2["reused"] >= t1["prompt"], "turn 2 did not reuse turn 1's prompt: %s %s" % (t1, t2))
    with open(os.path.join(work, "conv.json"), encoding="utf-8") as f:
        saved = json.load(f)
    check([m["role"] for m in saved] == ["user", "assistant", "user", "assistant"], "saved: %s" % saved)
    n_new = new_tokens(c, model, work, saved)
    if n_new is None or "\ufffd" in saved[1]["content"]:
        print("note: turn 1's answer is not plain text; checked the weaker reuse bound only")
    else:
        check(t2["reused"] == t1["cache"], "turn 2 reused %d tokens, turn 1 left %d in the cache" %
              (t2["reused"], t1["cache"]))
        check(t2["evaluated"] == n_new, "turn 2 evaluated %d tokens; its new text has %d" % (t2["evaluated"], n_new))
        print("turn 1: %s\nturn 2: %s (new text: %d tokens)" % (t1, t2, n_new))
    return saved


def session2(c, work, saved):
    t = Tmux(work, "two")
    t.start("%s chat -m slow.gguf --ctx 2048 --seed 5 --temp 1.5 -t 1 2>stderr2.txt" % shlex.quote(c))
    try:
        if t.wait(lambda s: t.prompts(s) >= 1, "the first prompt") is None:
            return
        t.send("/load conv.json")
        t.wait(lambda s: "loaded 4 messages" in s, "/load")
        t.send("/stats")
        s = t.wait(lambda s: "4 messages" in s.split("loaded 4 messages")[-1], "/stats after /load")
        # Ctrl-C at the prompt: a hint, the program goes on
        n = t.prompts(t.screen())
        t.key("C-c")
        t.wait_prompt(n, "a prompt after Ctrl-C at the prompt", timeout=30)
        # a long answer, interrupted once it is under way (asked again if a random model
        # happens to end its answer first)
        marker = "> Write a very long answer"
        for attempt in range(1, 4):
            n = t.prompts(t.screen())
            t.send("Write a very long answer")
            s = t.wait(lambda s: t.prompts(s) > n or len(s.split(marker)[-1].strip()) >= 40, "the answer to begin")
            if s is None or t.prompts(s) == n:
                break
            print("note: the answer ended by itself before Ctrl-C; asking again")
        t.key("C-c")
        t.wait_prompt(n, "the prompt after Ctrl-C", timeout=60)
        t.send("/stats")
        s = t.wait(lambda s: "turn %d:" % attempt in s, "/stats after Ctrl-C")
        st = turns(s or "")
        check(attempt in st and st[attempt]["stop"] == "cancelled", "the answer was not cancelled: %s" % st)
        t.send("/save conv2.json")
        t.wait(lambda s: "saved %d messages" % (4 + 2 * attempt) in s, "/save after the interruption")
        t.send("/exit")
        t.wait(lambda s: "[exit 0]" in s, "exit 0")
    finally:
        t.stop()
    with open(os.path.join(work, "stderr2.txt"), encoding="utf-8", errors="replace") as f:
        err = f.read()
    check("interrupted" in err, "no interruption notice: %s" % err)
    check("Ctrl-C stops an answer" in err, "no hint for Ctrl-C at the prompt: %s" % err)
    with open(os.path.join(work, "conv2.json"), encoding="utf-8") as f:
        conv2 = json.load(f)
    check(conv2[:4] == saved, "/load did not restore the conversation:\n%s\n%s" % (conv2[:4], saved))
    check(len(conv2) >= 6 and conv2[-2] == {"role": "user", "content": "Write a very long answer"} and
          conv2[-1]["role"] == "assistant" and len(conv2[-1]["content"]) >= 20,
          "the interrupted turn is not in the conversation: %s" % conv2[4:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--colloq", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--shared", required=True)
    a = ap.parse_args()
    vocab = os.path.join(a.shared, "testdata", "vocab", "ggml-vocab-phi-3.gguf")
    if not shutil.which("tmux") or not os.path.exists(vocab):
        print("skipped: tmux or %s missing" % vocab)
        return 77
    c = os.path.abspath(a.colloq)
    work = os.path.abspath(a.workdir)
    os.makedirs(work, exist_ok=True)
    for f in ("conv.json", "conv2.json"):
        if os.path.exists(os.path.join(work, f)):
            os.remove(os.path.join(work, f))
    model = os.path.join(work, "phi.gguf")
    rc, _, err = run([c, "mkmodel", "--shape", "tiny", "--type", "q8_0", "--vocab", vocab, "-o", model, "-t", "1"])
    check(rc == 0, "mkmodel: %s" % err)
    rc, _, err = run([c, "mkmodel", "--shape", "tiny", "--type", "q8_0", "--dim", "256", "--layers", "4", "--heads", "4",
                      "--kv-heads", "4", "--ffn", "768", "--ctx", "2048", "--vocab", vocab, "-o",
                      os.path.join(work, "slow.gguf"), "-t", "1"])
    check(rc == 0, "mkmodel slow: %s" % err)
    saved = session1(c, work, model)
    if saved:
        session2(c, work, saved)
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("chat tmux: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
