#!/usr/bin/env python3
"""`colloq audit verify` and `colloq audit search` on hand-made logs.

usage: audit_cli.py COLLOQ TMPDIR
"""
import json
import os
import subprocess
import sys

failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print('FAIL: ' + what)


def run(colloq, *args):
    return subprocess.run([colloq, 'audit'] + list(args), capture_output=True, text=True)


def rec(rid, ts, status=200, answer='ok', content='hello'):
    return json.dumps({'v': 1, 'ts': ts, 'request_id': rid, 'key_id': None, 'client': '127.0.0.1',
                       'model': 'tiny', 'messages': [{'role': 'user', 'content': content}],
                       'answer': answer, 'filter': [], 'usage': {'prompt_tokens': 1, 'completion_tokens': 2},
                       'latency_ms': 5.0, 'status': status}, ensure_ascii=False) + '\n'


def write(d, name, text):
    with open(os.path.join(d, name), 'wb') as f:
        f.write(text.encode())


def main():
    colloq, tmp = sys.argv[1], sys.argv[2]
    subprocess.run(['rm', '-rf', tmp], check=True)
    d = os.path.join(tmp, 'log')
    os.makedirs(d)
    write(d, 'audit-20240501-000000.jsonl',
          rec('a1', '2024-05-01T08:00:00.000Z') +
          rec('a2', '2024-05-01T09:30:00.500Z', status=400, answer=None, content='my card is [REDACTED:bank_card]'))
    write(d, 'audit-20240502-000000.jsonl',
          rec('b1', '2024-05-02T10:00:00.000Z', answer='你好，世界\u0000') +
          rec('b2', '2024-05-03T00:00:00.000Z', status=500))
    write(d, 'audit-20240502-000000-1.jsonl', rec('c1', '2024-05-04T12:00:00.000Z') + '{"v":1,"ts":"2024-05-04T1')
    write(d, 'notes.txt', 'not a log\n')

    r = run(colloq, 'verify', d)
    check(r.returncode == 0, 'verify with a partial tail in the newest file: exit %d\n%s' % (r.returncode, r.stdout))
    check('audit-20240502-000000-1.jsonl:2: partial last line' in r.stdout, 'partial reported: ' + r.stdout)
    check('3 files, 5 records, 1 partial, 0 corrupt' in r.stdout, 'summary: ' + r.stdout)

    def ids(*args):
        r = run(colloq, 'search', d, *args)
        check(r.returncode == 0, 'search %s: exit %d %s' % (args, r.returncode, r.stderr))
        return [json.loads(line)['request_id'] for line in r.stdout.splitlines()]

    check(ids() == ['a1', 'a2', 'b1', 'b2', 'c1'], 'all, oldest first (sequence order): %s' % ids())
    check(ids('--request-id', 'b1') == ['b1'], 'request id')
    check(ids('--status', '400') == ['a2'], 'status')
    check(ids('--since', '2024-05-02') == ['b1', 'b2', 'c1'], 'since date: %s' % ids('--since', '2024-05-02'))
    check(ids('--until', '2024-05-03') == ['a1', 'a2', 'b1'], 'until date (exclusive)')
    check(ids('--since', '2024-05-01T09:30:00.500Z', '--until', '2024-05-03T00:00') == ['a2', 'b1'], 'since/until time')
    check(ids('--since', '1714608000') == ['b1', 'b2', 'c1'], 'since seconds')   # 2024-05-02T00:00Z
    check(ids('--text', 'REDACTED:bank_card') == ['a2'], 'text in messages')
    check(ids('--text', '世界') == ['b1'], 'text in answer (UTF-8)')
    check(ids('--text', 'hello', '--status', '500') == ['b2'], 'filters combine')
    check(ids('--text', 'nowhere') == [], 'no match')

    r = run(colloq, 'search', d, '--since', 'yesterday')
    check(r.returncode == 2 and 'bad time' in r.stderr, 'bad time: %d %s' % (r.returncode, r.stderr))
    r = run(colloq, 'search', d, '--colour', 'red')
    check(r.returncode == 2, 'unknown option')
    r = run(colloq, 'frobnicate', d)
    check(r.returncode == 2, 'unknown subcommand')
    r = run(colloq, 'verify', os.path.join(tmp, 'missing'))
    check(r.returncode == 1, 'missing directory')

    # Corruption: a bad line in the middle, and a partial line in a file that is not the newest.
    write(d, 'audit-20240501-000000.jsonl', rec('a1', '2024-05-01T08:00:00.000Z') + '{"v":1,"ts": nope}\n' +
          '[1,2]\n' + rec('a3', '2024-05-01T10:00:00.000Z'))
    write(d, 'audit-20240502-000000.jsonl', rec('b1', '2024-05-02T10:00:00.000Z') + '{"v":1')
    r = run(colloq, 'verify', d)
    check(r.returncode == 1, 'corrupt log: exit %d' % r.returncode)
    check('audit-20240501-000000.jsonl:2: corrupt: does not parse' in r.stdout, 'bad json line: ' + r.stdout)
    check('audit-20240501-000000.jsonl:3: corrupt: not an audit record' in r.stdout, 'non-record line')
    check('audit-20240502-000000.jsonl:2: corrupt: partial line in a file that is not the newest' in r.stdout,
          'partial in older file')
    check('3 files, 4 records, 1 partial, 3 corrupt: FAILED' in r.stdout, 'summary: ' + r.stdout)
    r = run(colloq, 'search', d, '--request-id', 'a3')
    check(r.returncode == 0 and [json.loads(x)['request_id'] for x in r.stdout.splitlines()] == ['a3'] and
          'skipped' in r.stderr, 'search skips corrupt lines: %s %s' % (r.stdout, r.stderr))

    print('audit_cli: %s' % ('ok' if not failures else '%d failures' % failures))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
