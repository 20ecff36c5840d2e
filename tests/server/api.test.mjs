// api.test.mjs - `colloq serve` through the official `openai` npm client: chat, streaming
// chat (include_usage), completions, n > 1, logprobs, stop strings, the prefix cache,
// 8 concurrent seeded streams equal to the same requests run alone, a client that
// disconnects mid-stream (slot freed within one step, seen in /metrics), promtool on
// /metrics after the load, and a graceful SIGTERM with a stream in flight.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import OpenAI from 'openai';
import { startServer, stopServer, request, metrics, sleep } from './helpers.mjs';

let srv, client, eos;

before(async () => {
  srv = await startServer(['--parallel', '8', '--ctx', '4096']);
  client = new OpenAI({ baseURL: srv.base + '/v1', apiKey: 'unused', maxRetries: 0, timeout: 60000 });
  const r = await request(srv, 'POST', '/tokenize', { content: '</s>' });
  assert.equal(r.status, 200);
  assert.equal(r.json.tokens.length, 1, 'the built-in vocabulary has </s> as one token');
  eos = r.json.tokens[0];
});

after(async () => {
  if (!srv) return;
  const st = await stopServer(srv);
  assert.equal(st.code, 0, 'exit status after SIGTERM: ' + JSON.stringify(st) + srv.stderr());
});

const msgs = (text) => [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: text }];

async function streamText(params, opts) {
  const stream = await client.chat.completions.create({ ...params, stream: true }, opts);
  let text = '', finish = null, usage = null, chunks = 0;
  for await (const ch of stream) {
    chunks++;
    if (ch.usage) usage = ch.usage;
    for (const c of ch.choices) {
      if (c.delta?.content) text += c.delta.content;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  return { text, finish, usage, chunks };
}

test('chat completion with the openai client', async () => {
  const r = await client.chat.completions.create({ model: 'x', messages: msgs('hello there'), max_tokens: 12,
                                                   seed: 5, logit_bias: { [eos]: -100 } });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 12);
  assert.ok(r.usage.prompt_tokens > 5);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 12);
  assert.equal(typeof r.usage.prompt_tokens_details.cached_tokens, 'number');
});

test('streamed chat equals the non-streamed answer; include_usage', async () => {
  const p = { model: 'x', messages: msgs('stream me'), max_tokens: 16, seed: 11, temperature: 0.9 };
  const whole = await client.chat.completions.create(p);
  const s = await streamText({ ...p, stream_options: { include_usage: true } });
  assert.equal(s.text, whole.choices[0].message.content);
  assert.equal(s.finish, whole.choices[0].finish_reason);
  assert.ok(s.usage, 'a usage chunk arrives');
  assert.equal(s.usage.completion_tokens, whole.usage.completion_tokens);
  assert.equal(s.usage.prompt_tokens, whole.usage.prompt_tokens);
  assert.ok(s.chunks >= 3);
});

test('raw SSE framing ends with [DONE]', async () => {
  const r = await request(srv, 'POST', '/v1/chat/completions',
                          { messages: msgs('sse'), max_tokens: 3, stream: true, seed: 1 });
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /text\/event-stream/);
  const events = r.text.split('\n\n').filter(Boolean);
  assert.equal(events.at(-1), 'data: [DONE]');
  for (const e of events.slice(0, -1)) {
    assert.ok(e.startsWith('data: '));
    const o = JSON.parse(e.slice(6));
    assert.equal(o.object, 'chat.completion.chunk');
    assert.equal(o.usage, undefined, 'no usage field unless include_usage');
  }
  assert.equal(JSON.parse(events[0].slice(6)).choices[0].delta.role, 'assistant');
});

test('completions, logprobs and n > 1', async () => {
  const r = await client.completions.create({ model: 'x', prompt: 'Once upon a time', max_tokens: 6, seed: 3,
                                             logprobs: 2, n: 2, logit_bias: { [eos]: -100 } });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices.length, 2);
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
  for (const c of r.choices) {
    assert.equal(c.logprobs.tokens.length, 6);
    assert.equal(c.logprobs.token_logprobs.length, 6);
    assert.ok(c.logprobs.token_logprobs.every((x) => x <= 0));
    assert.ok(c.logprobs.top_logprobs.every((t) => Object.keys(t).length >= 1 && Object.keys(t).length <= 2));
    assert.equal(c.logprobs.tokens.join(''), c.text);
  }
  assert.equal(r.usage.completion_tokens, 12);
  const chat = await client.chat.completions.create({ model: 'x', messages: msgs('lp'), max_tokens: 4, seed: 2,
                                                      logprobs: true, top_logprobs: 3, logit_bias: { [eos]: -100 } });
  const content = chat.choices[0].logprobs.content;
  assert.equal(content.length, 4);
  for (const e of content) {
    assert.equal(e.top_logprobs.length, 3);
    assert.ok(e.logprob <= 0 && Array.isArray(e.bytes));
    assert.ok(e.top_logprobs[0].logprob >= e.top_logprobs[2].logprob);
  }
});

test('stop strings end the text before the stop', async () => {
  const p = { model: 'x', prompt: 'The list:', max_tokens: 60, seed: 21, logit_bias: { [eos]: -100 } };
  const full = (await client.completions.create(p)).choices[0].text;
  const m = full.slice(4).match(/[a-z]{2,}/);
  assert.ok(m, 'the sample has a word to stop at: ' + JSON.stringify(full));
  const stop = m[0].slice(0, 2);
  const r = await client.completions.create({ ...p, stop: [stop, 'never-seen'] });
  assert.equal(r.choices[0].text, full.slice(0, full.indexOf(stop)));
  assert.equal(r.choices[0].finish_reason, 'stop');
  const s = await client.completions.create({ ...p, stop, stream: true });
  let text = '';
  for await (const ch of s) text += ch.choices[0]?.text ?? '';
  assert.equal(text, full.slice(0, full.indexOf(stop)));
});

test('prefix cache: a follow-up turn reuses the cached prompt', async () => {
  const first = await client.chat.completions.create({ model: 'x', messages: msgs('remember this long sentence about caches'),
                                                       max_tokens: 8, seed: 9 });
  const follow = [...msgs('remember this long sentence about caches'),
                  { role: 'assistant', content: first.choices[0].message.content }, { role: 'user', content: 'and?' }];
  const r = await client.chat.completions.create({ model: 'x', messages: follow, max_tokens: 4, seed: 9 });
  assert.ok(r.usage.prompt_tokens_details.cached_tokens >= first.usage.prompt_tokens - 1,
            `cached ${r.usage.prompt_tokens_details.cached_tokens} of ${r.usage.prompt_tokens}`);
  const { m } = await metrics(srv);
  assert.ok(m.get('colloq_prefix_cache_hits_total') >= 1);
});

test('8 concurrent streams give the same text per seed as alone', async () => {
  const reqs = Array.from({ length: 8 }, (_, i) => ({
    model: 'x', messages: msgs(`request number ${i} ` + 'x'.repeat(i * 7)), max_tokens: 24, seed: 1000 + i,
    temperature: 1.0, top_p: 0.95,
  }));
  const alone = [];
  for (const p of reqs) alone.push((await streamText(p)).text);
  const steps0 = (await metrics(srv)).m.get('colloq_engine_steps_total');
  const conc = await Promise.all(reqs.map((p) => streamText(p)));
  for (let i = 0; i < 8; i++) assert.equal(conc[i].text, alone[i], `seed ${1000 + i}`);
  const steps1 = (await metrics(srv)).m.get('colloq_engine_steps_total');
  // batched: far fewer steps than 8 x 24 tokens one by one
  assert.ok(steps1 - steps0 < 8 * 24, `steps ${steps1 - steps0}`);
});

test('a client that disconnects mid-stream frees its slot within one step', async () => {
  const before = (await metrics(srv)).m;
  const ac = new AbortController();
  const stream = await client.completions.create({ model: 'x', prompt: 'go on forever', max_tokens: 100000, seed: 4,
                                                   stream: true, logit_bias: { [eos]: -100 } }, { signal: ac.signal });
  let n = 0;
  try {
    for await (const ch of stream) { void ch; if (++n === 5) ac.abort(); }
  } catch (e) { assert.ok(ac.signal.aborted, 'aborted: ' + e); }
  let m;
  for (let i = 0; i < 100; i++) {
    m = (await metrics(srv)).m;
    if (m.get('colloq_slots_active') === 0) break;
    await sleep(50);
  }
  assert.equal(m.get('colloq_slots_active'), 0, 'the slot is free again');
  assert.equal(m.get('colloq_requests_cancelled_total'), before.get('colloq_requests_cancelled_total') + 1);
  assert.ok(m.get('colloq_cancel_latency_steps_max') <= 1, 'freed within one step of the cancel');
  assert.ok(m.get('colloq_generation_tokens_total') - before.get('colloq_generation_tokens_total') < 4000,
            'it did not run to the end of the context');
});

test('promtool accepts /metrics after the load', async (t) => {
  const { text, m } = await metrics(srv);
  assert.ok(m.get('colloq_time_to_first_token_seconds_count') > 8);
  assert.ok(m.get('colloq_inter_token_latency_seconds_count') > 100);
  assert.ok(m.get('colloq_http_requests_total{endpoint="/v1/chat/completions",status="200"}') >= 8);
  assert.match(text, /# TYPE colloq_request_duration_seconds histogram/);
  const which = spawnSync('sh', ['-c', 'command -v promtool']);
  if (which.status !== 0) { t.skip('promtool is not installed'); return; }
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, `promtool: ${r.stdout} ${r.stderr}`);
});

test('/v1/models, /tokenize, /detokenize', async () => {
  const models = await client.models.list();
  assert.equal(models.data.length, 1);
  assert.equal(models.data[0].object, 'model');
  const t = await request(srv, 'POST', '/tokenize', { content: 'hello world' });
  assert.equal(t.status, 200);
  assert.ok(t.json.tokens.length >= 1);
  const d = await request(srv, 'POST', '/detokenize', { tokens: t.json.tokens });
  assert.equal(d.status, 200);
  assert.equal(d.json.content.trim(), 'hello world');
});

test('SIGTERM: the stream in flight finishes, then the server exits 0', async () => {
  const s2 = await startServer(['--parallel', '2', '--shutdown-timeout', '20']);
  const c2 = new OpenAI({ baseURL: s2.base + '/v1', apiKey: 'unused', maxRetries: 0, timeout: 60000 });
  const stream = await c2.completions.create({ model: 'x', prompt: 'a', max_tokens: 200, seed: 1, stream: true,
                                              logit_bias: { [eos]: -100 } });
  let n = 0, finish = null, stopping;
  for await (const ch of stream) {
    if (++n === 2) stopping = stopServer(s2);
    if (ch.choices[0]?.finish_reason) finish = ch.choices[0].finish_reason;
  }
  assert.equal(finish, 'length', 'the in-flight stream completed');
  const st = await stopping;
  assert.equal(st.code, 0, 'exit status after SIGTERM: ' + JSON.stringify(st) + s2.stderr());
  await assert.rejects(request(s2, 'GET', '/health'), 'no longer accepting connections');
});
