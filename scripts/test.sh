#!/usr/bin/env bash
# Runs the whole test suite: a normal build and an ASan/UBSan build, each with ctest.
# Tests that need ../shared (golden tokenizer files, templates) skip when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
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
