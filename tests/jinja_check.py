#!/usr/bin/env python3
"""Check colloq's Jinja engine against Python's jinja2 on real chat templates.

usage: jinja_check.py TEST_JINJA_RENDER TEMPLATE_DIR [--cases N] [--seed S] [--only NAME]

The reference environment is built the way Hugging Face transformers builds it
for chat templates: ImmutableSandboxedEnvironment(trim_blocks=True,
lstrip_blocks=True) with the loop-controls extension and a {% generation %}
tag, a tojson filter that is json.dumps(x, ensure_ascii=False, indent=...,
separators=..., sort_keys=...), and the raise_exception / strftime_now globals
(the time is fixed).  Every template renders many seeded random conversations
(valid and invalid role orders, unicode, empty and whitespace content,
Jinja-like text, tools, tool calls and tool results).  For every case both
engines must produce identical text, or both must fail; when the template calls
raise_exception both must report the same message.

Exits 77 when the template directory is absent.
"""
import datetime
import glob
import json
import os
import random
import subprocess
import sys
import tempfile

try:
    import jinja2
    import jinja2.ext
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:   # the reference is absent: nothing to compare against
    print("python jinja2 is not installed: skipping")
    sys.exit(77)

NOW = 1721999220   # 2024-07-26 13:07 UTC


class Raised(jinja2.exceptions.TemplateError):
    """An error the template raised itself through raise_exception()."""


class GenerationTag(jinja2.ext.Extension):
    """{% generation %}...{% endgeneration %} renders its body (transformers' tag)."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render_body"), [], [], body).set_lineno(lineno)

    def _render_body(self, caller):
        return caller()


def make_env():
    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def raise_exception(message):
        raise Raised(message)

    def strftime_now(fmt):
        now = datetime.datetime.fromtimestamp(NOW, tz=datetime.timezone.utc).replace(tzinfo=None)
        return now.strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


# ---------------------------------------------------------------- conversations

TEXTS = [
    "Hello!", "What is the capital of France?", "Paris is the capital of France.",
    "Can you write a haiku about the sea?", "Sure: waves fold into foam / ...",
    "你好，世界！请用中文回答。", "今日はいい天気ですね。", "안녕하세요, 반갑습니다.",
    "Emoji time 👋🏽🎉👨‍👩‍👧 done", "Ünïcödé façade — naïve café; Straße; İstanbul; ΣΟΦΙΑΣ",
    "", " ", "   ", "\n", "\n\n", "\t \n ", "\u3000\xa0 \u2003", "  padded both sides  ",
    "{{ messages }}", "{% if true %}inject{% endif %}", "{# comment #} and {{ 1 + 1 }}",
    "{%- raw -%}{{ x }}{%- endraw -%}", "quotes ' and \" and `backticks`", "back\\slash \\n not newline",
    "<b>bold</b> & <i>italic</i> &amp; &lt;", "line one\nline two\r\nline three",
    "<think>\nLet me think about this.\n</think>\n\nThe answer is 42.", "before</think>after",
    "tab\tseparated\tvalues", "zero\x00byte and escape \x1b[31mred\x1b[0m", "sep\u2028ara\u2029tors",
    "a" * 300, "Mixed 中文 and English with émojis 🚀 and\nnewlines\n",
    "trailing newline\n", "\nleading newline", "JSON-like {\"key\": [1, 2, 3]}",
    "[INST] fake instruction [/INST]", "<|im_start|>system\nfake<|im_end|>", "</s><s>",
]

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Get the current weather for a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "The city name, e.g. Paris"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Unit"},
        }, "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "search", "description": "Search the web.",
        "parameters": {"type": "object", "properties": {
            "query": {"type": "string", "description": "What to look for"},
            "max_results": {"type": "integer", "description": "How many", "default": 5,
                            "minimum": 1, "maximum": 50},
            "safe": {"type": "boolean", "description": "Safe search"},
        }, "required": ["query"]}}},
    {"type": "function", "function": {
        "name": "add_numbers", "description": "Add numbers together",
        "parameters": {"type": "object", "properties": {
            "numbers": {"type": "array", "items": {"type": "number"}, "description": "Numbers to add"},
            "precision": {"type": "number", "description": "Rounding", "nullable": True},
        }, "required": ["numbers"]}}},
    {"type": "function", "function": {
        "name": "book_flight", "description": "Book a flight ✈️ (单程)",
        "parameters": {"type": "object", "properties": {
            "from": {"type": "string", "description": "Origin airport", "examples": ["CDG", "JFK"]},
            "to": {"type": "string", "description": "Destination", "format": "iata"},
            "passengers": {"type": "object", "description": "Who travels",
                           "properties": {"adults": {"type": "integer"}, "children": {"type": "integer"}},
                           "required": ["adults"]},
            "when": {"oneOf": [{"type": "string", "format": "date"}, {"type": "integer"}],
                     "description": "Date or timestamp"},
        }, "required": ["from", "to"]}}},
    {"type": "function", "function": {
        "name": "no_params", "description": "Takes nothing.",
        "parameters": {"type": "object", "properties": {}, "required": []}}},
    {"type": "function", "function": {
        "name": "lookup", "description": "Look up tags",
        "parameters": {"type": "object", "properties": {
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]},
                     "description": "Tag list"},
            "meta": {"type": "object", "additionalProperties": {"type": "string"},
                     "description": "Free-form"},
            "mode": {"type": ["string", "null"], "description": "Optional mode"},
        }, "required": []},
        "return": {"type": "string", "description": "The tags found"}}},
]

CODE_INTERPRETER = {"type": "code_interpreter"}


def rand_text(rng):
    if rng.random() < 0.25:
        return rng.choice(TEXTS[:10])
    if rng.random() < 0.15:
        return rng.choice(TEXTS) + rng.choice(TEXTS)
    return rng.choice(TEXTS)


def rand_args(rng, tool):
    props = tool["function"]["parameters"]["properties"]
    args = {}
    for name, spec in props.items():
        if rng.random() < 0.6:
            t = spec.get("type")
            if t == "integer":
                args[name] = rng.randint(-3, 100)
            elif t == "number":
                args[name] = rng.choice([1.5, 2.0, 0.1, 1e-7, 3])
            elif t == "boolean":
                args[name] = rng.random() < 0.5
            elif t == "array":
                args[name] = [rng.randint(0, 9) for _ in range(rng.randint(0, 3))]
            elif t == "object":
                args[name] = {"adults": 2, "note": rand_text(rng)}
            else:
                args[name] = rand_text(rng)
    return args


def tool_call(rng, idx):
    tool = rng.choice(TOOLS if rng.random() < 0.3 else TOOLS[:2])
    args = rand_args(rng, tool)
    if rng.random() < 0.5:
        args = json.dumps(args, ensure_ascii=rng.random() < 0.3)
    call = {"id": "call%05d" % (idx * 7 + rng.randint(0, 9)) if rng.random() < 0.8 else "c%d" % idx,
            "type": "function", "function": {"name": tool["function"]["name"], "arguments": args}}
    if rng.random() < 0.1:
        del call["id"]
    return call


def assistant_message(rng, n_calls):
    msg = {"role": "assistant"}
    if n_calls:
        msg["tool_calls"] = [tool_call(rng, i) for i in range(n_calls)]
        r = rng.random()
        msg["content"] = None if r < 0.5 else ("" if r < 0.7 else rand_text(rng))
        if rng.random() < 0.2:
            msg["tool_plan"] = "I will call a tool."
    else:
        msg["content"] = rand_text(rng)
    return msg


def tool_message(rng, call_id):
    r = rng.random()
    if r < 0.5:
        content = json.dumps({"result": rand_text(rng), "ok": True}, ensure_ascii=False)
    elif r < 0.8:
        content = rand_text(rng)
    else:
        content = {"temperature": 21.5, "unit": "celsius"}
    msg = {"role": "tool", "content": content, "tool_call_id": call_id or "call00000"}
    if rng.random() < 0.5:
        msg["name"] = "get_weather"
    return msg


def valid_conversation(rng, with_tools):
    msgs = []
    if rng.random() < 0.5:
        msgs.append({"role": "system", "content": rand_text(rng)})
    turns = rng.randint(1, 4)
    for t in range(turns):
        msgs.append({"role": "user", "content": rand_text(rng)})
        if t == turns - 1 and rng.random() < 0.5:
            break
        if with_tools and rng.random() < 0.4:
            n = 1 if rng.random() < 0.7 else 2
            a = assistant_message(rng, n)
            msgs.append(a)
            for call in a["tool_calls"]:
                msgs.append(tool_message(rng, call.get("id")))
            if rng.random() < 0.7:
                msgs.append(assistant_message(rng, 0))
        else:
            msgs.append(assistant_message(rng, 0))
    return msgs


def random_conversation(rng):
    roles = ["system", "user", "assistant", "tool", "bogus", "ipython", "developer", "Assistant"]
    msgs = []
    for _ in range(rng.randint(0, 5)):
        role = rng.choice(roles)
        if role == "assistant" and rng.random() < 0.3:
            msgs.append(assistant_message(rng, rng.randint(1, 2)))
        elif role == "tool":
            msgs.append(tool_message(rng, "call00001"))
        else:
            m = {"role": role, "content": rand_text(rng)}
            r = rng.random()
            if r < 0.05:
                del m["content"]
            elif r < 0.1:
                m["content"] = None
            elif r < 0.13:
                m["content"] = [{"type": "text", "text": rand_text(rng)}]
            msgs.append(m)
    return msgs


def make_context(rng, src, i):
    uses_tools = "tools" in src
    if i < 6:
        # fixed shapes first: the simplest valid conversations
        msgs = [{"role": "user", "content": "Hi there"}]
        if i % 2:
            msgs.insert(0, {"role": "system", "content": "You are helpful."})
        if i >= 2:
            msgs += [{"role": "assistant", "content": "Hello! How can I help?"},
                     {"role": "user", "content": "Tell me a joke."}]
    elif rng.random() < 0.75:
        msgs = valid_conversation(rng, uses_tools and rng.random() < 0.7)
    else:
        msgs = random_conversation(rng)
    ctx = {"messages": msgs, "bos_token": "<s>", "eos_token": "</s>"}
    r = rng.random()
    if r < 0.45:
        ctx["add_generation_prompt"] = True
    elif r < 0.9:
        ctx["add_generation_prompt"] = False
    if uses_tools and i >= 6:
        r = rng.random()
        if r < 0.6:
            # mostly the plain tools; the schema-heavy ones trip some templates
            pool = TOOLS if rng.random() < 0.35 else [TOOLS[0], TOOLS[1], TOOLS[4]]
            tools = rng.sample(pool, rng.randint(1, 3))
            if rng.random() < 0.15:
                tools = [t["function"] for t in tools]
            if rng.random() < 0.1:
                tools = tools + [CODE_INTERPRETER]
            ctx["tools"] = tools
        elif r < 0.7:
            ctx["tools"] = []
        elif r < 0.75:
            ctx["tools"] = None
    if "documents" in src and rng.random() < 0.3:
        ctx["documents"] = [{"title": "Doc %d" % k, "text": rand_text(rng)} for k in range(rng.randint(1, 2))]
    if "enable_citations" in src and rng.random() < 0.3:
        ctx["enable_citations"] = True
    if "builtin_tools" in src and rng.random() < 0.2:
        ctx["builtin_tools"] = ["brave_search", "wolfram_alpha"]
    if "tools_in_user_message" in src and rng.random() < 0.3:
        ctx["tools_in_user_message"] = False
    if "date_string" in src and rng.random() < 0.2:
        ctx["date_string"] = "01 Jan 2025"
    if "functions" in src and rng.random() < 0.8:
        ctx["functions"] = json.dumps([t["function"] for t in TOOLS[:2]], indent=2)
        ctx["datetime"] = "2024-07-26"
    return ctx


# ---------------------------------------------------------------- comparison

def reference(template, ctx):
    try:
        return {"ok": True, "out": template.render(**ctx)}
    except Raised as e:
        return {"ok": False, "raised": True, "error": str(e.message)}
    except Exception as e:   # any other template error
        return {"ok": False, "raised": False, "error": "%s: %s" % (type(e).__name__, e)}


def same(ref, got):
    if ref["ok"] or got["ok"]:
        return ref["ok"] == got["ok"] and ref.get("out") == got.get("out")
    if ref["raised"] != got["raised"]:
        return False
    return not ref["raised"] or ref["error"] == got["error"]


def first_diff(a, b):
    n = min(len(a), len(b))
    i = next((k for k in range(n) if a[k] != b[k]), n)
    return i, a[max(0, i - 40):i + 40], b[max(0, i - 40):i + 40]


def main():
    args = sys.argv[1:]
    opts = {"--cases": "150", "--seed": "1234", "--only": ""}
    pos = []
    while args:
        a = args.pop(0)
        if a in opts and args:
            opts[a] = args.pop(0)
        else:
            pos.append(a)
    if len(pos) != 2:
        print(__doc__)
        return 2
    binary, tdir = pos
    files = sorted(glob.glob(os.path.join(tdir, "*.jinja")))
    if not os.path.isdir(tdir) or not files:
        print("template directory %s absent or empty: skipping" % tdir)
        return 77
    env = make_env()
    ncases = int(opts["--cases"])
    failures = 0
    total_ok = total = 0
    for path in files:
        name = os.path.basename(path)[:-len(".jinja")]
        if opts["--only"] and opts["--only"] not in name:
            continue
        src = open(path, encoding="utf-8").read()
        rng = random.Random("%s/%s" % (opts["--seed"], name))
        ctxs = [make_context(rng, src, i) for i in range(ncases)]
        try:
            template = env.from_string(src)
            refs = [reference(template, c) for c in ctxs]
        except jinja2.exceptions.TemplateSyntaxError as e:
            refs = [{"ok": False, "raised": False, "error": "syntax: %s" % e} for _ in ctxs]
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
            for c in ctxs:
                f.write(json.dumps(c, ensure_ascii=False) + "\n")
            ctx_path = f.name
        try:
            proc = subprocess.run([binary, "--now", str(NOW), "--jsonl", path, ctx_path],
                                  capture_output=True, timeout=600)
        finally:
            os.unlink(ctx_path)
        lines = [l for l in proc.stdout.decode("utf-8").split("\n") if l]
        if proc.returncode != 0 or len(lines) != len(ctxs):
            print("%-55s FAILED: renderer exit %d, %d results for %d cases\n%s" % (
                name, proc.returncode, len(lines), len(ctxs), proc.stderr.decode(errors="replace")[-2000:]))
            failures += 1
            continue
        got = [json.loads(line) for line in lines]
        passed = 0
        shown = 0
        n_ok = sum(1 for r in refs if r["ok"])
        n_raised = sum(1 for r in refs if not r["ok"] and r["raised"])
        for k, (ref, res) in enumerate(zip(refs, got)):
            if same(ref, res):
                passed += 1
                continue
            if shown < 2:
                shown += 1
                print("--- %s case %d\ncontext: %s" % (name, k, json.dumps(ctxs[k], ensure_ascii=False)[:1500]))
                if ref["ok"] and res["ok"]:
                    at, x, y = first_diff(ref["out"], res["out"])
                    print("first difference at %d:\n  jinja2: %r\n  colloq: %r" % (at, x, y))
                else:
                    print("  jinja2: %s\n  colloq: %s" % (json.dumps(ref)[:600], json.dumps(res)[:600]))
        total += len(ctxs)
        total_ok += passed
        status = "ok" if passed == len(ctxs) else "MISMATCH"
        print("%-55s %3d/%3d pass  (rendered %d, raise_exception %d, other errors %d)  %s" % (
            name, passed, len(ctxs), n_ok, n_raised, len(ctxs) - n_ok - n_raised, status))
        if passed != len(ctxs):
            failures += 1
    print("total: %d/%d cases identical; %d template(s) with mismatches" % (total_ok, total, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
