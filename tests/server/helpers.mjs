// helpers.mjs - start/stop `colloq serve` on a free loopback port with a tiny random model,
// raw HTTP requests, SSE reading and /metrics parsing for the node tests of the server.
// Everything talks to 127.0.0.1 only; every wait is bounded.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

export const BIN = process.env.COLLOQ_BIN;
export const WORK = process.env.COLLOQ_TEST_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'colloq-server-'));
if (!BIN) throw new Error('COLLOQ_BIN must name the colloq binary');
fs.mkdirSync(WORK, { recursive: true });

// A tiny random-weight model (built-in vocabulary), made once per work dir.
export function tinyModel(name = 'tiny.gguf', type = 'q8_0') {
  const p = path.join(WORK, name);
  if (!fs.existsSync(p)) {
    execFileSync(BIN, ['mkmodel', '--shape', 'tiny', '--type', type, '--seed', '3', '-o', p + '.tmp'],
                 { stdio: ['ignore', 'ignore', 'pipe'] });
    fs.renameSync(p + '.tmp', p);
  }
  return p;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Start the server; resolves once it printed its port (and, unless waitReady is false, /health is 200).
export async function startServer(args = [], { waitReady = true, model = tinyModel() } = {}) {
  const child = spawn(BIN, ['serve', '-m', model, '--port', '0', '--chat-template', 'chatml', '-t', '2', ...args],
                      { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('server did not print its port: ' + stderr)), 20000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.on('exit', () => { clearTimeout(timer); reject(new Error('server exited: ' + stderr)); });
  });
  const srv = { child, port, base: `http://127.0.0.1:${port}`, exited, stderr: () => stderr };
  if (waitReady) {
    for (let i = 0; i < 400; i++) {
      const r = await request(srv, 'GET', '/health').catch(() => null);
      if (r && r.status === 200) break;
      await sleep(50);
    }
  }
  return srv;
}

// SIGTERM; resolves with the exit status (fails the caller's assertion if it hangs).
export async function stopServer(srv, timeoutMs = 30000) {
  if (srv.child.exitCode !== null) return srv.exited;
  srv.child.kill('SIGTERM');
  let timer;
  const t = new Promise((resolve) => {
    timer = setTimeout(() => { srv.child.kill('SIGKILL'); resolve({ code: null, signal: 'TIMEOUT' }); }, timeoutMs);
  });
  const st = await Promise.race([srv.exited, t]);
  clearTimeout(timer);
  return st;
}

// Raw request: body may be a string/Buffer (sent as is) or an object (JSON).
export function request(srv, method, p, body, headers = {}) {
  return new Promise((resolve, reject) => {
    let data = body;
    if (body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body)) data = JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port: srv.port, method, path: p, agent: false,
                               headers: { ...(data !== undefined ? { 'Content-Type': 'application/json' } : {}), ...headers },
                               timeout: 60000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

// Prometheus text -> Map of "name{labels}" -> number.
export function parseMetrics(text) {
  const m = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

export async function metrics(srv, headers = {}) {
  const r = await request(srv, 'GET', '/metrics', undefined, headers);
  if (r.status !== 200) throw new Error('/metrics: ' + r.status);
  return { text: r.text, m: parseMetrics(r.text) };
}
