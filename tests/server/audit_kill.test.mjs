// audit_kill.test.mjs - `colloq serve --audit-log DIR` killed with SIGKILL at random moments
// under concurrent load (streamed and non-streamed chat through the `openai` client), 50+
// times.  After every kill: every request whose response the client saw complete has its
// record, every line of every file parses, and only the newest file may end in a partial
// line.  Restarting cuts that line off (moved to FILE.partial); `colloq audit verify` passes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import OpenAI from 'openai';
import { startServer, stopServer, sleep, WORK, BIN } from './helpers.mjs';

const KILLS = Number(process.env.COLLOQ_AUDIT_KILLS || 50);
const dir = path.join(WORK, 'audit-kill');

function auditFiles() {
  const re = /^audit-(\d{8}-\d{6})(?:-(\d+))?\.jsonl$/;
  return fs.readdirSync(dir).map((n) => [n.match(re), n]).filter(([m]) => m)
    .sort(([a], [b]) => (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : Number(a[2] || 0) - Number(b[2] || 0)))
    .map(([, n]) => path.join(dir, n));
}

// Parse the whole log: ids present, partial tails; throws on anything else.
function readLog(allowPartialTail) {
  const ids = new Set();
  let partial = 0;
  const files = fs.existsSync(dir) ? auditFiles() : [];
  files.forEach((f, i) => {
    const lines = fs.readFileSync(f).toString('utf8').split('\n');
    const tail = lines.pop();
    if (tail) {
      assert.ok(allowPartialTail && i === files.length - 1, `${f}: partial line not at the end of the newest file`);
      partial++;
    }
    lines.forEach((l, n) => {
      let o;
      try { o = JSON.parse(l); } catch (e) { assert.fail(`${f}:${n + 1}: does not parse: ${e.message}`); }
      assert.equal(typeof o.ts, 'string');
      ids.add(o.request_id);
    });
  });
  return { ids, partial };
}

// One client loop: requests until the server dies; completed ids go to done.
async function load(srv, k, done, stop) {
  const c = new OpenAI({ baseURL: srv.base + '/v1', apiKey: 'unused', maxRetries: 0, timeout: 20000 });
  for (let n = 0; !stop.now; n++) {
    const p = { model: 'x', messages: [{ role: 'user', content: `client ${k} request ${n}` }], max_tokens: 6 + (n % 5),
                seed: n };
    try {
      if ((k + n) % 2) {
        const r = await c.chat.completions.create(p);
        if (r.choices[0].finish_reason) done.add(r.id);
      } else {
        const s = await c.chat.completions.create({ ...p, stream: true });
        let id = null, finished = false;
        for await (const ch of s) { id = ch.id; if (ch.choices[0]?.finish_reason) finished = true; }
        if (finished && id) done.add(id);            // the stream ended with [DONE]
      }
    } catch {
      return;                                         // killed mid-request: not complete
    }
  }
}

test(`audit log survives ${KILLS} kill -9 under concurrent load`, { timeout: 600000 }, async () => {
  fs.rmSync(dir, { recursive: true, force: true });
  const done = new Set();
  let partialRounds = 0;
  for (let round = 0; round < KILLS; round++) {
    const srv = await startServer(['--parallel', '4', '--audit-log', dir]);
    const stop = { now: false };
    const clients = [0, 1, 2, 3, 4, 5].map((k) => load(srv, k, done, stop));
    await sleep(150 + Math.floor(Math.random() * 600));
    srv.child.kill('SIGKILL');
    const ex = await srv.exited;
    assert.equal(ex.signal, 'SIGKILL', 'the server died of something else: ' + srv.stderr());
    stop.now = true;
    await Promise.all(clients);
    const { ids, partial } = readLog(true);
    partialRounds += partial;
    const missing = [...done].filter((id) => !ids.has(id));
    assert.deepEqual(missing, [], `round ${round}: completed requests missing from the audit log`);
  }
  assert.ok(done.size >= KILLS, `only ${done.size} requests completed in ${KILLS} rounds`);
  // A clean start and stop recovers the tail; then every line of every file is whole.
  const srv = await startServer(['--audit-log', dir]);
  const ex = await stopServer(srv);
  assert.equal(ex.code, 0, 'server exit: ' + srv.stderr());
  const { ids, partial } = readLog(false);
  assert.equal(partial, 0);
  for (const id of done) assert.ok(ids.has(id), id);
  const v = spawnSync(BIN, ['audit', 'verify', dir], { encoding: 'utf8' });
  assert.equal(v.status, 0, v.stdout + v.stderr);
  console.log(`audit_kill: ${KILLS} kills, ${done.size} completed requests all logged, ` +
              `${partialRounds} rounds left a partial last line`);
});
