#!/usr/bin/env bash
# Quick start: install dependencies, build, write a small random-weight model, generate text.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
mkdir -p models
vocab=()
if [ -f ../shared/testdata/vocab/ggml-vocab-llama-spm.gguf ]; then
  vocab=(--vocab ../shared/testdata/vocab/ggml-vocab-llama-spm.gguf)
fi
build/colloq mkmodel --shape tiny --type q8_0 "${vocab[@]}" -o models/demo-tiny-q8_0.gguf
echo
echo "=== colloq run on models/demo-tiny-q8_0.gguf: RANDOM WEIGHTS, not a trained model: the text is noise ==="
build/colloq run -m models/demo-tiny-q8_0.gguf -p "Hello, my name is" -n 32 --temp 0.8 --seed 42
echo
echo "=== done. To use a real model: build/colloq run -m path/to/model.gguf -p \"...\" -n 128 ==="
