// grammar.test.mjs - constrained output through the official `openai` npm client on a
// random-weight model: response_format json_object and json_schema answers parse and
// validate for 100 seeds each (streamed and not), token budgets still give complete JSON,
// and schemas outside the supported subset are refused with a 400 that says why.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, stopServer } from './helpers.mjs';

let srv, client;

before(async () => {
  srv = await startServer(['--parallel', '8', '--ctx', '2048']);
  client = new OpenAI({ baseURL: srv.base + '/v1', apiKey: 'unused', maxRetries: 0, timeout: 120000 });
});

after(async () => {
  if (!srv) return;
  const st = await stopServer(srv);
  assert.equal(st.code, 0, 'exit status after SIGTERM: ' + JSON.stringify(st) + srv.stderr());
});

// A validator for the schema subset the tests use, written for the test.
function validate(schema, x, path = '$') {
  const fail = (why) => { throw new Error(`${path}: ${why} (${JSON.stringify(x)})`); };
  if (schema.enum && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(x))) fail('not in enum');
  if ('const' in schema && JSON.stringify(schema.const) !== JSON.stringify(x)) fail('not the const');
  if (schema.anyOf) {
    const ok = schema.anyOf.filter((s) => { try { validate(s, x, path); return true; } catch { return false; } });
    if (!ok.length) fail('no anyOf alternative matches');
  }
  const types = schema.type ? [].concat(schema.type) : null;
  const typeOf = (v) => v === null ? 'null' : Array.isArray(v) ? 'array'
    : typeof v === 'number' ? (Number.isInteger(v) ? 'integer' : 'number') : typeof v;
  if (types && !types.some((t) => t === typeOf(x) || (t === 'number' && typeOf(x) === 'integer'))) fail('wrong type');
  if (typeof x === 'string') {
    const n = [...x].length;
    if (schema.minLength !== undefined && n < schema.minLength) fail('too short');
    if (schema.maxLength !== undefined && n > schema.maxLength) fail('too long');
  }
  if (Array.isArray(x)) {
    if (schema.minItems !== undefined && x.length < schema.minItems) fail('too few items');
    if (schema.maxItems !== undefined && x.length > schema.maxItems) fail('too many items');
    if (schema.items) x.forEach((v, i) => validate(schema.items, v, `${path}[${i}]`));
  }
  if (typeOf(x) === 'object') {
    for (const r of schema.required ?? []) if (!(r in x)) fail(`missing '${r}'`);
    for (const [k, v] of Object.entries(x)) {
      if (schema.properties?.[k]) validate(schema.properties[k], v, `${path}.${k}`);
      else if (schema.properties || schema.additionalProperties === false) fail(`unexpected member '${k}'`);
    }
  }
}

const SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 24 },
    age: { type: 'integer' },
    email: { type: ['string', 'null'], minLength: 3, maxLength: 40 },
    tags: { type: 'array', items: { enum: ['new', 'vip', 'blocked'] }, maxItems: 3 },
    address: { type: 'object', properties: { city: { type: 'string', maxLength: 16 }, zip: { type: 'string', minLength: 5, maxLength: 5 } },
               required: ['city'] },
    score: { anyOf: [{ type: 'number' }, { type: 'null' }] },
    active: { type: 'boolean' },
  },
  required: ['name', 'age', 'active', 'address'],
};

const msgs = [{ role: 'system', content: 'Answer in JSON.' }, { role: 'user', content: 'Describe a customer.' }];

// Run fn(seed) for seeds 0..n-1, eight at a time (the server's slots).
async function forSeeds(n, fn) {
  for (let s = 0; s < n; s += 8) {
    await Promise.all(Array.from({ length: Math.min(8, n - s) }, (_, k) => fn(s + k)));
  }
}

async function streamed(params) {
  const stream = await client.chat.completions.create({ ...params, stream: true });
  let text = '', finish = null;
  for await (const ch of stream) {
    for (const c of ch.choices) {
      if (c.delta?.content) text += c.delta.content;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  return { text, finish };
}

test('json_object: 100 seeds give JSON objects', async () => {
  await forSeeds(100, async (seed) => {
    const p = { model: 'x', messages: msgs, seed, temperature: 1.0, max_tokens: 200,
                response_format: { type: 'json_object' } };
    const r = seed % 2 ? await client.chat.completions.create(p) : null;
    const text = r ? r.choices[0].message.content : (await streamed(p)).text;
    let v;
    assert.doesNotThrow(() => { v = JSON.parse(text); }, `seed ${seed}: not JSON: ${text}`);
    assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v), `seed ${seed}: not an object: ${text}`);
    if (r) assert.equal(r.choices[0].finish_reason, 'stop', `seed ${seed}: ${text}`);
  });
});

test('json_schema: 100 seeds parse and validate', async () => {
  await forSeeds(100, async (seed) => {
    const p = { model: 'x', messages: msgs, seed, temperature: 1.0, max_tokens: 300,
                response_format: { type: 'json_schema', json_schema: { name: 'customer', schema: SCHEMA, strict: true } } };
    const s = seed % 2 ? null : await streamed(p);
    const r = s ? null : await client.chat.completions.create(p);
    const text = s ? s.text : r.choices[0].message.content;
    let v;
    assert.doesNotThrow(() => { v = JSON.parse(text); }, `seed ${seed}: not JSON: ${text}`);
    assert.doesNotThrow(() => validate(SCHEMA, v), `seed ${seed}: invalid: ${text}`);
    assert.equal(s ? s.finish : r.choices[0].finish_reason, 'stop');
  });
});

test('a small token budget still ends in complete JSON', async () => {
  const schema = { type: 'array', items: { type: 'string' } };
  await forSeeds(16, async (seed) => {
    const r = await client.chat.completions.create({ model: 'x', messages: msgs, seed, max_tokens: 12,
      response_format: { type: 'json_schema', json_schema: { name: 'a', schema } } });
    const text = r.choices[0].message.content;
    assert.ok(Array.isArray(JSON.parse(text)), `seed ${seed}: ${text}`);
    assert.ok(r.usage.completion_tokens <= 12);
  });
});

test('unsupported schemas and bad response_format are 400s', async () => {
  const cases = [
    [{ type: 'json_schema', json_schema: { name: 'n', schema: { type: 'integer', minimum: 3 } } }, /minimum/],
    [{ type: 'json_schema', json_schema: { name: 'n', schema: { type: 'object', properties: { a: { type: 'string', pattern: '^x' } } } } }, /\/properties\/a.*pattern/],
    [{ type: 'json_schema', json_schema: { name: 'n' } }, /response_format/],
    [{ type: 'yaml' }, /response_format/],
  ];
  for (const [rf, re] of cases) {
    await assert.rejects(client.chat.completions.create({ model: 'x', messages: msgs, max_tokens: 4, response_format: rf }),
      (e) => e.status === 400 && re.test(e.message), JSON.stringify(rf));
  }
});
