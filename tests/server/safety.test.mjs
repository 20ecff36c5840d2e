// safety.test.mjs - safety filters through the real server and the `openai` client.
// A random-weight model is pushed by logit_bias to emit digits, '+', '-' and spaces, so its
// answers are full of phone and card numbers.  The same request on a server without
// filters gives the raw text; the filtered server's answer, streamed token by token (every
// number split across chunks) and not streamed, must equal the one-shot filter of that raw
// text (COLLOQ_REDACT_TOOL, i.e. `test_redact filter`), so no raw number ever reaches the
// client.  Also: block rules (finish_reason content_filter), input redaction (seen in the
// audit log) and input blocks (HTTP 400 content_filter), logprobs refused under output rules.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import OpenAI from 'openai';
import { startServer, stopServer, request, WORK } from './helpers.mjs';

const TOOL = process.env.COLLOQ_REDACT_TOOL;
if (!TOOL) throw new Error('COLLOQ_REDACT_TOOL must name test_redact');

const redactCfg = path.join(WORK, 'safety-redact.json');
const blockCfg = path.join(WORK, 'safety-block.json');
fs.writeFileSync(redactCfg, JSON.stringify({ detectors: [
  { type: 'phone_cn' }, { type: 'phone_intl' }, { type: 'bank_card' }, { type: 'cn_id' }, { type: 'email' },
  { type: 'ipv4' }] }));
fs.writeFileSync(blockCfg, JSON.stringify({ detectors: [
  { type: 'phone_cn', apply: 'input', action: 'block' }, { type: 'bank_card', action: 'block' },
  { type: 'email', apply: 'input' }] }));

let raw, filt, block, rawClient, filtClient, blockClient;
const auditDir = path.join(WORK, 'audit');

const client = (srv) => new OpenAI({ baseURL: srv.base + '/v1', apiKey: 'unused', maxRetries: 0, timeout: 120000 });

before(async () => {
  raw = await startServer(['--parallel', '2']);
  filt = await startServer(['--parallel', '2', '--safety-config', redactCfg, '--audit-log', auditDir]);
  block = await startServer(['--parallel', '2', '--safety-config', blockCfg]);
  rawClient = client(raw);
  filtClient = client(filt);
  blockClient = client(block);
});

after(async () => {
  for (const s of [raw, filt, block]) {
    if (!s) continue;
    const ex = await stopServer(s);
    assert.equal(ex.code, 0, 'server exit: ' + s.stderr());     // sanitizer reports fail here too
  }
});

// Token id of a single character (the last token of its tokenization), checked by detokenizing.
async function charToken(srv, ch) {
  const r = await request(srv, 'POST', '/tokenize', { content: 'a' + ch });
  assert.equal(r.status, 200);
  const id = r.json.tokens[r.json.tokens.length - 1];
  const d = await request(srv, 'POST', '/detokenize', { tokens: [id] });
  assert.equal(d.status, 200);
  assert.equal(d.json.content.trim(), ch.trim(), `token ${id} is "${d.json.content}", wanted "${ch}"`);
  return id;
}

function oneShot(cfg, text) {
  return execFileSync(TOOL, ['filter', cfg, 'output'], { input: text }).toString('utf8');
}

async function streamed(c, params) {
  const stream = await c.chat.completions.create({ ...params, stream: true });
  let text = '', finish = null, chunks = 0;
  const pieces = [];
  for await (const ch of stream) {
    for (const choice of ch.choices) {
      if (choice.delta?.content) { text += choice.delta.content; pieces.push(choice.delta.content); chunks++; }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  return { text, finish, chunks, pieces };
}

const msgs = (t) => [{ role: 'user', content: t }];

test('a forced run of zeros is a Luhn-valid card: redacted, streamed or not', async () => {
  const zero = await charToken(raw, '0');
  const p = { model: 'x', messages: msgs('card?'), max_tokens: 16, seed: 1, logit_bias: { [zero]: 100 } };
  const r = await rawClient.chat.completions.create(p);
  assert.equal(r.choices[0].message.content, '0'.repeat(16));
  const f = await filtClient.chat.completions.create(p);
  assert.equal(f.choices[0].message.content, '[REDACTED:bank_card]');
  const s = await streamed(filtClient, p);
  assert.equal(s.text, '[REDACTED:bank_card]');
  assert.ok(!s.text.includes('0'));
  assert.equal(s.finish, 'length');
});

test('random digit streams: filtered answers equal the one-shot filter of the raw answer', async () => {
  const chars = ['+', '-', ' ', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
  const bias = {};
  for (const ch of chars) bias[await charToken(raw, ch)] = ch === '-' ? 99 : 100;
  let redactions = 0, split = 0;
  for (let seed = 1; seed <= 16; seed++) {
    const p = { model: 'x', messages: msgs('numbers please'), max_tokens: 200, seed, temperature: 1.5,
                logit_bias: bias };
    const r = (await rawClient.chat.completions.create(p)).choices[0].message.content;
    const want = oneShot(redactCfg, r);
    const f = await filtClient.chat.completions.create(p);
    assert.equal(f.choices[0].message.content, want, `seed ${seed}: non-streamed answer`);
    const s = await streamed(filtClient, p);
    assert.equal(s.text, want, `seed ${seed}: streamed answer`);
    redactions += (want.match(/\[REDACTED:/g) || []).length;
    // Every raw number that was redacted: its digits never appear in any chunk or across chunks.
    const rawNums = r.match(/\+?\d[\d +-]{9,}\d/g) || [];
    for (const n of rawNums) {
      if (!oneShot(redactCfg, n).includes('[REDACTED:')) continue;
      split++;
      assert.ok(!s.text.includes(n) && !f.choices[0].message.content.includes(n), `seed ${seed}: raw ${n} delivered`);
    }
    assert.ok(s.chunks > 10, 'the answer arrived in many chunks');
  }
  console.log(`random digits: ${redactions} redactions, ${split} redacted numbers checked in the chunks`);
  assert.ok(redactions >= 4, `only ${redactions} numbers were redacted: the model did not emit enough`);
  assert.ok(split >= 2, `only ${split} redacted numbers seen in the raw answers`);
});

test('a block rule ends the answer with finish_reason content_filter', async () => {
  const zero = await charToken(raw, '0');
  const p = { model: 'x', messages: msgs('card?'), max_tokens: 16, seed: 2, logit_bias: { [zero]: 100 } };
  const f = await blockClient.chat.completions.create(p);
  assert.equal(f.choices[0].finish_reason, 'content_filter');
  assert.ok(!f.choices[0].message.content?.includes('0'), 'blocked digits delivered: ' + f.choices[0].message.content);
  const s = await streamed(blockClient, p);
  assert.equal(s.finish, 'content_filter');
  assert.ok(!s.text.includes('0'));
});

test('input rules: block answers 400 content_filter, redact hides the data from the model', async () => {
  await assert.rejects(
    blockClient.chat.completions.create({ model: 'x', messages: msgs('my phone is 138 1234 5678'), max_tokens: 4 }),
    (e) => e.status === 400 && e.code === 'content_filter');
  const ok = await blockClient.chat.completions.create({ model: 'x', messages: msgs('mail a.b@example.com'),
                                                         max_tokens: 2 });
  assert.equal(ok.choices.length, 1);
  // The filtered server logs the messages after input filtering.
  const r = await filtClient.chat.completions.create({
    model: 'x', max_tokens: 2,
    messages: [{ role: 'system', content: 'card 4111 1111 1111 1111' },
               { role: 'user', content: [{ type: 'text', text: 'call me on +86 139 1234 5678' }] }] });
  const rec = execFileSync(process.env.COLLOQ_BIN, ['audit', 'search', auditDir, '--request-id', r.id],
                           { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  assert.ok(rec.includes('[REDACTED:phone_cn]') && rec.includes('[REDACTED:bank_card]'), rec);
  assert.ok(!rec.includes('1234 5678') && !rec.includes('4111'), 'raw input in the audit log: ' + rec);
  const obj = JSON.parse(rec.trim().split('\n')[0]);
  assert.deepEqual(obj.filter.filter((a) => a.stage === 'input').map((a) => a.detector).sort(),
                   ['bank_card', 'phone_cn']);
});

function auditRecord(id) {
  const out = execFileSync(process.env.COLLOQ_BIN, ['audit', 'search', auditDir, '--request-id', id],
                           { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  assert.ok(out, `no audit record for ${id}`);
  return JSON.parse(out.split('\n')[0]);
}

test('completions: the prompt is filtered; token-id prompts are refused under input rules', async () => {
  const r = await filtClient.completions.create({ model: 'x', prompt: 'mail me at zhang.san@example.com', max_tokens: 3 });
  const rec = auditRecord(r.id);
  assert.equal(rec.messages, 'mail me at [REDACTED:email]');
  assert.equal(rec.endpoint, '/v1/completions');
  assert.equal(rec.usage.completion_tokens, 3);
  await assert.rejects(filtClient.completions.create({ model: 'x', prompt: [1, 2, 3], max_tokens: 2 }),
                       (e) => e.status === 400 && /token-id prompts/.test(e.message));
});

test('streamed n = 2 with the audit log: both choices finish after the record is written', async () => {
  const zero = await charToken(raw, '0');
  const stream = await filtClient.chat.completions.create({ model: 'x', messages: msgs('two'), max_tokens: 16, n: 2,
                                                            seed: 9, logit_bias: { [zero]: 100 }, stream: true });
  const text = ['', ''], finish = [null, null];
  let id = null;
  for await (const ch of stream) {
    id = ch.id;
    for (const c of ch.choices) {
      if (c.delta?.content) text[c.index] += c.delta.content;
      if (c.finish_reason) finish[c.index] = c.finish_reason;
    }
  }
  assert.deepEqual(text, ['[REDACTED:bank_card]', '[REDACTED:bank_card]']);
  assert.deepEqual(finish, ['length', 'length']);
  const rec = auditRecord(id);
  assert.equal(rec.status, 200);
  assert.equal(rec.choices.length, 2);
  assert.equal(rec.choices[1].text, '[REDACTED:bank_card]');
  assert.equal(rec.filter.filter((a) => a.stage === 'output').reduce((n, a) => n + a.count, 0), 2);
});

test('the audit log keeps a hash of the API key, never the key; refused requests are logged without input',
     async () => {
  const dir = path.join(WORK, 'audit-auth');
  const key = 'sk-colloq-secret-0123456789';
  const srv = await startServer(['--api-key', key, '--safety-config', blockCfg, '--audit-log', dir]);
  try {
    const c = new OpenAI({ baseURL: srv.base + '/v1', apiKey: key, maxRetries: 0, timeout: 60000 });
    const ok = await c.chat.completions.create({ model: 'x', messages: msgs('hello'), max_tokens: 2 });
    await assert.rejects(c.chat.completions.create({ model: 'x', messages: msgs('call 13812345678'), max_tokens: 2 }),
                         (e) => e.status === 400 && e.code === 'content_filter');
    const text = fs.readdirSync(dir).filter((n) => n.endsWith('.jsonl'))
      .map((n) => fs.readFileSync(path.join(dir, n), 'utf8')).join('');
    assert.ok(!text.includes(key) && !text.includes('13812345678'), 'key or blocked input in the audit log');
    const recs = text.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(recs.length, 2);
    assert.equal(recs[0].request_id, ok.id);
    assert.match(recs[0].key_id, /^[0-9a-z_]{6,}$/);
    assert.equal(recs[1].key_id, recs[0].key_id);
    assert.equal(recs[1].status, 400);
    assert.equal(recs[1].messages, null);
    assert.deepEqual(recs[1].filter, [{ stage: 'input', detector: 'phone_cn', action: 'block', count: 1 }]);
  } finally {
    const ex = await stopServer(srv);
    assert.equal(ex.code, 0, 'server exit: ' + srv.stderr());
  }
});

test('logprobs are refused while output rules are active', async () => {
  await assert.rejects(
    filtClient.chat.completions.create({ model: 'x', messages: msgs('hi'), max_tokens: 2, logprobs: true }),
    (e) => e.status === 400);
});
