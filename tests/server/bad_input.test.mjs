// bad_input.test.mjs - every class of bad input gets OpenAI's error shape with the right
// HTTP status, and the server keeps serving: malformed JSON, non-object bodies, missing
// or empty messages, wrong types, unknown roles, negative or absurd numbers, invalid
// UTF-8, token ids out of range, oversized bodies, over-long prompts, unknown endpoints
// and methods, a full queue (429 + Retry-After).  Also run against the ASan/UBSan build.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { startServer, stopServer, request, sleep, BIN, tinyModel } from './helpers.mjs';

let srv;
before(async () => {
  srv = await startServer(['--parallel', '2', '--ctx', '128', '--queue', '4', '--timeout', '2', '--prompt-chunk', '8']);
});
after(async () => {
  if (!srv) return;
  const st = await stopServer(srv);
  assert.equal(st.code, 0, 'exit status: ' + JSON.stringify(st) + srv.stderr());
});

const user = [{ role: 'user', content: 'hi' }];
const CHAT = '/v1/chat/completions', COMP = '/v1/completions';

function assertError(r, status, param) {
  assert.equal(r.status, status, r.text);
  assert.ok(r.json && r.json.error, 'OpenAI error object: ' + r.text);
  const e = r.json.error;
  assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 5);
  assert.equal(typeof e.type, 'string');
  if (param !== undefined) assert.equal(e.param, param);
}

const cases = [
  ['malformed JSON', CHAT, '{"messages": [', 400],
  ['trailing garbage', CHAT, '{"messages": []} x', 400],
  ['array body', CHAT, '[1, 2]', 400],
  ['number body', CHAT, '42', 400],
  ['empty body', CHAT, '', 400],
  ['missing messages', CHAT, { model: 'x' }, 400, 'messages'],
  ['empty messages', CHAT, { messages: [] }, 400, 'messages'],
  ['messages not an array', CHAT, { messages: 'hi' }, 400, 'messages'],
  ['message not an object', CHAT, { messages: ['hi'] }, 400, 'messages'],
  ['unknown role', CHAT, { messages: [{ role: 'wizard', content: 'hi' }] }, 400, 'messages'],
  ['role not a string', CHAT, { messages: [{ role: 1, content: 'hi' }] }, 400, 'messages'],
  ['content wrong type', CHAT, { messages: [{ role: 'user', content: 5 }] }, 400, 'messages'],
  ['content part not text', CHAT, { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }] }, 400, 'messages'],
  ['user content missing', CHAT, { messages: [{ role: 'user' }] }, 400, 'messages'],
  ['temperature string', CHAT, { messages: user, temperature: 'hot' }, 400, 'temperature'],
  ['temperature negative', CHAT, { messages: user, temperature: -1 }, 400, 'temperature'],
  ['temperature absurd', CHAT, { messages: user, temperature: 1e9 }, 400, 'temperature'],
  ['top_p above 1', CHAT, { messages: user, top_p: 2 }, 400, 'top_p'],
  ['top_k negative', CHAT, { messages: user, top_k: -3 }, 400, 'top_k'],
  ['min_p negative', CHAT, { messages: user, min_p: -0.1 }, 400, 'min_p'],
  ['max_tokens negative', CHAT, { messages: user, max_tokens: -1 }, 400, 'max_tokens'],
  ['max_tokens zero', CHAT, { messages: user, max_tokens: 0 }, 400, 'max_tokens'],
  ['max_tokens string', CHAT, { messages: user, max_tokens: '10' }, 400, 'max_tokens'],
  ['max_tokens fractional', CHAT, { messages: user, max_tokens: 2.5 }, 400, 'max_tokens'],
  ['max_completion_tokens negative', CHAT, { messages: user, max_completion_tokens: -5 }, 400, 'max_completion_tokens'],
  ['n zero', CHAT, { messages: user, n: 0 }, 400, 'n'],
  ['n absurd', CHAT, { messages: user, n: 100000 }, 400, 'n'],
  ['presence_penalty absurd', CHAT, { messages: user, presence_penalty: 50 }, 400, 'presence_penalty'],
  ['frequency_penalty string', CHAT, { messages: user, frequency_penalty: 'x' }, 400, 'frequency_penalty'],
  ['repetition_penalty negative', CHAT, { messages: user, repetition_penalty: -1 }, 400, 'repetition_penalty'],
  ['seed string', CHAT, { messages: user, seed: 'abc' }, 400, 'seed'],
  ['stream string', CHAT, { messages: user, stream: 'yes' }, 400, 'stream'],
  ['stream_options wrong type', CHAT, { messages: user, stream: true, stream_options: 3 }, 400, 'stream_options'],
  ['stop wrong type', CHAT, { messages: user, stop: 5 }, 400, 'stop'],
  ['stop array with a number', CHAT, { messages: user, stop: ['a', 1] }, 400, 'stop'],
  ['too many stops', CHAT, { messages: user, stop: Array.from({ length: 40 }, (_, i) => 's' + i) }, 400, 'stop'],
  ['top_logprobs absurd', CHAT, { messages: user, logprobs: true, top_logprobs: 100 }, 400, 'top_logprobs'],
  ['top_logprobs without logprobs', CHAT, { messages: user, top_logprobs: 2 }, 400, 'top_logprobs'],
  ['logit_bias not an object', CHAT, { messages: user, logit_bias: [1] }, 400, 'logit_bias'],
  ['logit_bias id out of range', CHAT, { messages: user, logit_bias: { 99999999: 1 } }, 400, 'logit_bias'],
  ['logit_bias id not a number', CHAT, { messages: user, logit_bias: { abc: 1 } }, 400, 'logit_bias'],
  ['logit_bias value absurd', CHAT, { messages: user, logit_bias: { 5: 1000 } }, 400, 'logit_bias'],
  ['model wrong type', CHAT, { messages: user, model: 7 }, 400, 'model'],
  ['completion prompt missing', COMP, { max_tokens: 2 }, 400, 'prompt'],
  ['completion prompt wrong type', COMP, { prompt: { a: 1 } }, 400, 'prompt'],
  ['completion token id out of range', COMP, { prompt: [1, 2, 99999999] }, 400, 'prompt'],
  ['completion token id negative', COMP, { prompt: [-4] }, 400, 'prompt'],
  ['completion logprobs absurd', COMP, { prompt: 'a', logprobs: 50 }, 400, 'logprobs'],
  ['tokenize content missing', '/tokenize', {}, 400, 'content'],
  ['detokenize id out of range', '/detokenize', { tokens: [99999999] }, 400, 'tokens'],
  ['detokenize not ids', '/detokenize', { tokens: ['a'] }, 400, 'tokens'],
];

for (const [name, path, body, status, param] of cases) {
  test(`bad input: ${name} -> ${status}`, async () => {
    assertError(await request(srv, 'POST', path, body), status, param);
  });
}

test('invalid UTF-8 in the body -> 400', async () => {
  const body = Buffer.concat([Buffer.from('{"messages":[{"role":"user","content":"a'), Buffer.from([0xc3, 0x28, 0xff]),
                              Buffer.from('"}]}')]);
  const r = await request(srv, 'POST', CHAT, body);
  assertError(r, 400);
  assert.match(r.json.error.message, /UTF-8/);
});

test('a body over 8 MiB -> 413, with and without Content-Length', async () => {
  const big = '{"messages":[{"role":"user","content":"' + 'a'.repeat(9 << 20) + '"}]}';
  assertError(await request(srv, 'POST', CHAT, big), 413);
  // chunked upload: no Content-Length, the limit is enforced while reading
  const r = await new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: srv.port, method: 'POST', path: CHAT, agent: false,
                               headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' } }, (res) => {
      let t = '';
      res.on('data', (c) => { t += c; });
      res.on('end', () => resolve({ status: res.statusCode, text: t, json: JSON.parse(t) }));
    });
    req.on('error', reject);
    for (let i = 0; i < 9; i++) req.write('a'.repeat(1 << 20));
    req.end();
  });
  assertError(r, 413);
});

test('a prompt longer than the context -> 400 with the numbers', async () => {
  const r = await request(srv, 'POST', CHAT, { messages: [{ role: 'user', content: 'word '.repeat(400) }] });
  assertError(r, 400, 'messages');
  assert.equal(r.json.error.code, 'context_length_exceeded');
  assert.match(r.json.error.message, /\d+ tokens.*128/);
  const t = await request(srv, 'POST', COMP, { prompt: Array.from({ length: 200 }, () => 5) });
  assertError(t, 400, 'prompt');
  assert.match(t.json.error.message, /200 tokens.*128/);
});

test('max_tokens beyond the context is clamped to what fits', async () => {
  const r = await request(srv, 'POST', COMP, { prompt: [1, 5, 6, 7], max_tokens: 1000000, seed: 1, temperature: 0,
                                              logit_bias: { 2: -100 } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.usage.completion_tokens, 128 - 4 + 1);
  assert.equal(r.json.choices[0].finish_reason, 'length');
});

test('unknown fields are ignored', async () => {
  const r = await request(srv, 'POST', CHAT, { messages: user, max_tokens: 2, frobnicate: { a: [1] }, user: 'u1' });
  assert.equal(r.status, 200, r.text);
});

test('oversized headers -> 431; a stalled client is disconnected', async () => {
  const r = await request(srv, 'GET', '/health', undefined, { 'X-Big': 'a'.repeat(100000) });
  assert.equal(r.status, 431);
  const t0 = Date.now();
  const closed = await new Promise((resolve) => {
    const sock = net.connect(srv.port, '127.0.0.1', () => {
      sock.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"pro');
    });
    const timer = setTimeout(() => { sock.destroy(); resolve(false); }, 10000);
    sock.on('data', () => {});
    sock.on('close', () => { clearTimeout(timer); resolve(true); });
  });
  assert.ok(closed, 'the server closed the stalled connection');
  assert.ok(Date.now() - t0 < 8000, `closed after ${Date.now() - t0} ms (timeout 2 s)`);
});

test('unknown endpoint -> 404, wrong method -> 405', async () => {
  assertError(await request(srv, 'GET', '/v1/nothing'), 404);
  assertError(await request(srv, 'GET', CHAT), 405);
  assertError(await request(srv, 'POST', '/v1/models', {}), 405);
});

test('a full queue -> 429 with Retry-After, then serving goes on', async () => {
  // 2 slots + 4 queued: long generations fill them, the rest are refused
  const long = { prompt: [1, 5], max_tokens: 100000, stream: false, logit_bias: { 2: -100 } };
  const pending = Array.from({ length: 12 }, () => request(srv, 'POST', COMP, long));
  const all = await Promise.all(pending);
  const refused = all.filter((r) => r.status === 429);
  assert.ok(refused.length >= 1, 'statuses: ' + all.map((r) => r.status).join(','));
  for (const r of refused) {
    assertError(r, 429);
    assert.equal(r.headers['retry-after'], '1');
  }
  assert.ok(all.every((r) => r.status === 200 || r.status === 429));
});

test('the server still answers after all of that', async () => {
  const h = await request(srv, 'GET', '/health');
  assert.equal(h.status, 200);
  const r = await request(srv, 'POST', CHAT, { messages: user, max_tokens: 3 });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.object, 'chat.completion');
  await sleep(10);
});

test('bad command-line values: exit status 2 and a message naming the option', () => {
  for (const args of [['--prompt-chunk', '0'], ['--cache-type', 'q9'], ['--parallel', 'x']]) {
    const r = spawnSync(BIN, ['serve', '-m', tinyModel(), '--port', '0', ...args], { encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 2, args.join(' ') + ': ' + r.stderr);
    assert.match(r.stderr, new RegExp('bad value for ' + args[0]));
  }
});
