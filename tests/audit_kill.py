#!/usr/bin/env python3
"""kill -9 loop against a process writing audit records from several threads.

usage: audit_kill.py TEST_AUDIT COLLOQ TMPDIR [KILLS]

Each round starts `TEST_AUDIT child DIR THREADS 1` (one thread writes 1 MB records, the
others small ones; the child prints a request id only after its write and fdatasync
returned), kills it with SIGKILL after a random delay (sometimes while it is still opening
and recovering the log), and checks the directory: every request id the child reported is
present, every line of every file parses, and only the newest file may end in a partial
line.  At the end one more open must cut that partial line off, and `colloq audit verify`
must pass.
"""
import json
import os
import random
import re
import signal
import subprocess
import sys
import time

NAME = re.compile(r'^audit-(\d{8}-\d{6})(?:-(\d+))?\.jsonl$')


def audit_files(d):
    found = []
    for n in os.listdir(d):
        m = NAME.match(n)
        if m:
            found.append(((m.group(1), int(m.group(2) or 0)), os.path.join(d, n)))
    return [p for _, p in sorted(found)]


def check(d, reported, allow_partial_tail):
    """Return (partial tails seen, ids present); raise on any violation."""
    files = audit_files(d)
    ids, partial = set(), 0
    for i, path in enumerate(files):
        with open(path, 'rb') as f:
            data = f.read()
        lines = data.split(b'\n')
        tail = lines.pop()
        if tail:
            if i == len(files) - 1 and allow_partial_tail:
                partial += 1
            else:
                raise AssertionError('%s: partial line not at the end of the newest file' % path)
        for ln, line in enumerate(lines, 1):
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise AssertionError('%s:%d: does not parse: %s' % (path, ln, e))
            ids.add(obj['request_id'])
    missing = reported - ids
    if missing:
        raise AssertionError('%d reported records missing, e.g. %s' % (len(missing), sorted(missing)[:3]))
    return partial, ids


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    child, colloq, tmp = sys.argv[1], sys.argv[2], sys.argv[3]
    kills = int(sys.argv[4]) if len(sys.argv) > 4 else 60
    d = os.path.join(tmp, 'log')
    subprocess.run(['rm', '-rf', tmp], check=True)
    os.makedirs(tmp)
    rnd = random.Random(12345)
    reported, partial_rounds, killed_early = set(), 0, 0
    for k in range(kills):
        p = subprocess.Popen([child, 'child', d, '4', '1'], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        delay = 0.0 if k % 10 == 3 else rnd.uniform(0.0, 0.12)
        time.sleep(delay)
        os.kill(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        if p.returncode != -signal.SIGKILL:
            print('round %d: child exited with %d: %s' % (k, p.returncode, err.decode(errors='replace')))
            return 1
        lines = out.decode().split('\n')[:-1]        # a report cut short is not a report
        if not lines or lines[0] != 'ready':
            killed_early += 1
        reported.update(l for l in lines if l != 'ready')
        try:
            partial, ids = check(d, reported, True) if os.path.isdir(d) else (0, set())
        except AssertionError as e:
            print('round %d: %s' % (k, e))
            return 1
        partial_rounds += partial
    # One more open (no writer threads) recovers the tail; then nothing may be partial.
    r = subprocess.run([child, 'child', d, '0', '0'], capture_output=True)
    if r.returncode != 0:
        print('final open failed: %s' % r.stderr.decode(errors='replace'))
        return 1
    try:
        _, ids = check(d, reported, False)
    except AssertionError as e:
        print('after recovery: %s' % e)
        return 1
    v = subprocess.run([colloq, 'audit', 'verify', d], capture_output=True, text=True)
    if v.returncode != 0:
        print('colloq audit verify failed (%d): %s%s' % (v.returncode, v.stdout, v.stderr))
        return 1
    print('audit_kill: %d kills (%d before the log was open), %d records reported, %d present, '
          '%d rounds left a partial last line; all recovered' %
          (kills, killed_early, len(reported), len(ids), partial_rounds))
    if not reported:
        print('no record was ever reported: the test did not test anything')
        return 1
    subprocess.run(['rm', '-rf', tmp], check=True)     # up to ~100 MB of records
    return 0


if __name__ == '__main__':
    sys.exit(main())
