// auth.test.mjs - API keys (Bearer, every endpoint but /health; keys never logged) on and
// off, and /health answering 503 while the model loads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { startServer, stopServer, request, sleep, WORK } from './helpers.mjs';

const KEY = 'sk-test-0123456789abcdef', KEY2 = 'second-key-from-file';

test('auth on: 401 without or with a wrong key, 200 with a right one', async () => {
  const keyFile = path.join(WORK, 'keys.txt');
  fs.writeFileSync(keyFile, `# keys\n${KEY2}\n`);
  const srv = await startServer(['--api-key', KEY, '--api-key-file', keyFile, '-v']);
  try {
    const body = { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 };
    for (const [method, p, b] of [['POST', '/v1/chat/completions', body], ['POST', '/v1/completions', { prompt: 'a' }],
                                  ['GET', '/v1/models'], ['GET', '/metrics'], ['POST', '/tokenize', { content: 'a' }],
                                  ['POST', '/detokenize', { tokens: [1] }]]) {
      const none = await request(srv, method, p, b);
      assert.equal(none.status, 401, `${p} without a key`);
      assert.equal(none.json.error.code, 'invalid_api_key');
      const wrong = await request(srv, method, p, b, { Authorization: 'Bearer ' + KEY + 'x' });
      assert.equal(wrong.status, 401, `${p} with a wrong key`);
      const basic = await request(srv, method, p, b, { Authorization: 'Basic ' + KEY });
      assert.equal(basic.status, 401, `${p} with another scheme`);
      const ok = await request(srv, method, p, b, { Authorization: 'Bearer ' + KEY });
      assert.equal(ok.status, 200, `${p} with the key: ${ok.text}`);
      const ok2 = await request(srv, method, p, b, { Authorization: 'Bearer ' + KEY2 });
      assert.equal(ok2.status, 200, `${p} with the key from the file`);
    }
    assert.equal((await request(srv, 'GET', '/health')).status, 200, '/health needs no key');
    const client = new OpenAI({ baseURL: srv.base + '/v1', apiKey: KEY, maxRetries: 0 });
    const r = await client.chat.completions.create({ model: 'x', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    assert.equal(r.object, 'chat.completion');
    const bad = new OpenAI({ baseURL: srv.base + '/v1', apiKey: 'nope', maxRetries: 0 });
    await assert.rejects(bad.models.list(), (e) => e.status === 401);
  } finally {
    const st = await stopServer(srv);
    assert.equal(st.code, 0);
  }
  assert.ok(!srv.stderr().includes(KEY) && !srv.stderr().includes(KEY2), 'keys never appear in the log');
  assert.match(srv.stderr(), /\(key [0-9a-f]{12}\)/, 'requests are logged with a key id');
});

test('auth off: no key needed', async () => {
  const srv = await startServer([]);
  try {
    assert.equal((await request(srv, 'GET', '/v1/models')).status, 200);
    assert.equal((await request(srv, 'GET', '/metrics')).status, 200);
  } finally {
    assert.equal((await stopServer(srv)).code, 0);
  }
});

test('/health is 503 while the model loads, 200 once ready', async () => {
  const srv = await startServer(['--load-delay-ms', '1500'], { waitReady: false });
  try {
    const h = await request(srv, 'GET', '/health');
    assert.equal(h.status, 503);
    assert.equal(h.json.status, 'loading');
    const c = await request(srv, 'POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(c.status, 503);
    assert.equal(c.headers['retry-after'], '1');
    assert.ok(c.json.error);
    const m = await request(srv, 'GET', '/metrics');
    assert.match(m.text, /colloq_ready 0/);
    let status = 0;
    for (let i = 0; i < 200 && status !== 200; i++) {
      await sleep(50);
      status = (await request(srv, 'GET', '/health')).status;
    }
    assert.equal(status, 200);
  } finally {
    assert.equal((await stopServer(srv)).code, 0);
  }
});
