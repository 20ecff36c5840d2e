// tools.test.mjs - tool calling through the official `openai` npm client on a random-weight
// model: forced calls (tool_choice required / a named function) come back as tool_calls with
// valid arguments and finish_reason "tool_calls", streamed (delta.tool_calls) and not; the
// results go back as role "tool" messages and the conversation continues; "auto" and "none"
// answer with text; malformed tools are 400s.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, stopServer } from './helpers.mjs';

let srv, client;

before(async () => {
  srv = await startServer(['--parallel', '4', '--ctx', '4096']);
  client = new OpenAI({ baseURL: srv.base + '/v1', apiKey: 'unused', maxRetries: 0, timeout: 120000 });
});

after(async () => {
  if (!srv) return;
  const st = await stopServer(srv);
  assert.equal(st.code, 0, 'exit status after SIGTERM: ' + JSON.stringify(st) + srv.stderr());
});

const TOOLS = [
  { type: 'function', function: { name: 'get_weather', description: 'Current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 20 }, unit: { enum: ['c', 'f'] } },
                  required: ['city'] } } },
  { type: 'function', function: { name: 'add', description: 'Add two integers',
    parameters: { type: 'object', properties: { a: { type: 'integer' }, b: { type: 'integer' } }, required: ['a', 'b'] } } },
];

const user = [{ role: 'user', content: 'What is the weather in Paris?' }];

function checkCall(c, names = ['get_weather', 'add']) {
  assert.match(c.id, /^call_[A-Za-z0-9]{8,}$/);
  assert.equal(c.type, 'function');
  assert.ok(names.includes(c.function.name), c.function.name);
  const args = JSON.parse(c.function.arguments);
  if (c.function.name === 'get_weather') {
    assert.equal(typeof args.city, 'string');
    assert.ok([...args.city].length <= 20);
    for (const k of Object.keys(args)) assert.ok(['city', 'unit'].includes(k), k);
    if ('unit' in args) assert.ok(['c', 'f'].includes(args.unit));
  } else {
    assert.ok(Number.isInteger(args.a) && Number.isInteger(args.b), c.function.arguments);
    assert.deepEqual(Object.keys(args).sort(), ['a', 'b']);
  }
  return args;
}

async function streamedCalls(params) {
  const stream = await client.chat.completions.create({ ...params, stream: true });
  const calls = [];
  let content = '', finish = null;
  for await (const ch of stream) {
    for (const c of ch.choices) {
      if (c.delta?.content) content += c.delta.content;
      for (const d of c.delta?.tool_calls ?? []) {
        if (!calls[d.index]) {
          assert.ok(d.id && d.function?.name, 'the first delta of a call has its id and name');
          calls[d.index] = { id: d.id, type: d.type, function: { name: d.function.name, arguments: '' } };
        }
        if (d.function?.arguments) calls[d.index].function.arguments += d.function.arguments;
      }
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  return { calls, content, finish };
}

test('required: tool_calls with valid arguments, 20 seeds', async () => {
  for (let seed = 0; seed < 20; seed++) {
    const r = await client.chat.completions.create({ model: 'x', messages: user, tools: TOOLS, tool_choice: 'required',
                                                     seed, temperature: 1, max_tokens: 160 });
    const m = r.choices[0].message;
    assert.equal(r.choices[0].finish_reason, 'tool_calls', JSON.stringify(r));
    assert.ok(m.tool_calls.length >= 1);
    m.tool_calls.forEach((c) => checkCall(c));
    assert.ok(m.content === null || m.content === '', 'no content in a required answer: ' + m.content);
  }
});

test('streamed calls equal the non-streamed ones', async () => {
  for (let seed = 0; seed < 6; seed++) {
    const p = { model: 'x', messages: user, tools: TOOLS, tool_choice: 'required', seed, temperature: 1, max_tokens: 160 };
    const whole = await client.chat.completions.create(p);
    const s = await streamedCalls(p);
    assert.equal(s.finish, 'tool_calls');
    assert.equal(s.content, '');
    const w = whole.choices[0].message.tool_calls;
    assert.equal(s.calls.length, w.length);
    s.calls.forEach((c, i) => {
      assert.equal(c.type, 'function');
      assert.equal(c.function.name, w[i].function.name);
      assert.deepEqual(JSON.parse(c.function.arguments), JSON.parse(w[i].function.arguments));
      checkCall(c);
    });
  }
});

test('a named function, one call; results go back as tool messages', async () => {
  for (const stream of [false, true]) {
    const p = { model: 'x', messages: user, tools: TOOLS, parallel_tool_calls: false, seed: 7, max_tokens: 120,
                tool_choice: { type: 'function', function: { name: 'add' } } };
    let calls;
    if (stream) {
      const s = await streamedCalls(p);
      assert.equal(s.finish, 'tool_calls');
      calls = s.calls;
    } else {
      const r = await client.chat.completions.create(p);
      assert.equal(r.choices[0].finish_reason, 'tool_calls');
      calls = r.choices[0].message.tool_calls;
    }
    assert.equal(calls.length, 1);
    const args = checkCall(calls[0], ['add']);
    // the round trip: the call and its result back into the conversation
    const history = [...user, { role: 'assistant', content: null, tool_calls: calls },
                     { role: 'tool', tool_call_id: calls[0].id, content: String(args.a + args.b) }];
    const next = await client.chat.completions.create({ model: 'x', messages: history, tools: TOOLS, seed: 3, max_tokens: 8 });
    assert.ok(['stop', 'length', 'tool_calls'].includes(next.choices[0].finish_reason));
    assert.ok(next.usage.prompt_tokens > 0);
    const forced = await client.chat.completions.create({ model: 'x', messages: history, tools: TOOLS, seed: 4,
                                                          tool_choice: 'required', max_tokens: 120 });
    assert.equal(forced.choices[0].finish_reason, 'tool_calls');
    forced.choices[0].message.tool_calls.forEach((c) => checkCall(c));
  }
});

test('auto and none answer with text', async () => {
  for (const tool_choice of ['auto', 'none']) {
    const r = await client.chat.completions.create({ model: 'x', messages: user, tools: TOOLS, tool_choice, seed: 2, max_tokens: 12 });
    const c = r.choices[0];
    assert.ok(['stop', 'length'].includes(c.finish_reason), c.finish_reason);
    assert.equal(typeof c.message.content, 'string');
    assert.ok(!c.message.tool_calls || c.message.tool_calls.length === 0);
  }
});

test('malformed tools are 400s', async () => {
  const cases = [
    [{ tools: [{ type: 'function', function: { name: 'bad name' } }] }, /name/],
    [{ tools: TOOLS, tool_choice: { type: 'function', function: { name: 'nope' } } }, /nope/],
    [{ tool_choice: 'required' }, /no tools/],
    [{ tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { x: { type: 'number', maximum: 3 } } } } }] }, /maximum/],
  ];
  for (const [extra, re] of cases) {
    await assert.rejects(client.chat.completions.create({ model: 'x', messages: user, max_tokens: 4, ...extra }),
      (e) => e.status === 400 && re.test(e.message), JSON.stringify(extra));
  }
});
