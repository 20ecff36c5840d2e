#!/usr/bin/env bash
# Runs the whole test suite: a normal build and an ASan/UBSan build, each with ctest.
# Tests that need ../shared (golden tokenizer files, templates) skip when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
# npm dependencies of the server tests (tests/server/package-lock.json).  Offline-safe: when
# the registry cannot be reached the server tests skip themselves with a message.
if command -v npm >/dev/null 2>&1; then
  if [ ! -d tests/server/node_modules/openai ]; then
    (cd tests/server && timeout 300 npm ci --no-audit --no-fund >/dev/null 2>&1) \
      || echo "note: npm ci in tests/server failed (registry unreachable?); the server_* tests will be skipped"
  fi
else
  echo "note: npm is not installed; the server_* tests will be skipped"
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCOLLOQ_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
status=0
echo "== tests (release build) =="
(cd build && ctest --output-on-failure -j"$jobs") || status=1
echo "== tests (ASan + UBSan build) =="
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j"$jobs" -LE no_asan) || status=1
exit $status
