#!/bin/sh
# run-benchmarks.sh - makes the random-weight benchmark models (Mistral-7B and
# TinyLlama-1.1B shapes with the Llama SentencePiece vocabulary) with
# `colloq mkmodel` at F16, converts them with `colloq quantize`, runs
# `colloq bench --json` on each and prints one table (docs/BENCHMARKS.md).
#
# usage: bench/run-benchmarks.sh [BUILD_DIR] [MODELS_DIR]
#   BUILD_DIR   holds the colloq binary (default: build)
#   MODELS_DIR  where the model files go (default: models; about 36 GB for 7B)
# environment (defaults in brackets):
#   SHAPES [tinyllama-1b mistral-7b]   TYPES [F16 Q4_0 Q8_0 Q4_K_M Q5_K_M]
#   THREADS [2]  REPS [3]  PP [512]  TG [128]
#   DEPTH [0]  CACHE [f16]: decode with DEPTH positions already in a KV cache of type CACHE
#   PP_F16 / TG_F16 [128 / 32]: shorter runs for the slow F16 rows of large shapes
#   VOCAB [../shared/testdata/vocab/ggml-vocab-llama-spm.gguf]
#   OUT [MODELS_DIR/results.jsonl]: one JSON object per run is appended here
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
models=${2:-$here/models}
colloq=$build/colloq
SHAPES=${SHAPES:-"tinyllama-1b mistral-7b"}
TYPES=${TYPES:-"F16 Q4_0 Q8_0 Q4_K_M Q5_K_M"}
THREADS=${THREADS:-2}
REPS=${REPS:-3}
PP=${PP:-512}
TG=${TG:-128}
DEPTH=${DEPTH:-0}
CACHE=${CACHE:-f16}
PP_F16=${PP_F16:-128}
TG_F16=${TG_F16:-32}
VOCAB=${VOCAB:-$here/../shared/testdata/vocab/ggml-vocab-llama-spm.gguf}
OUT=${OUT:-$models/results.jsonl}

[ -x "$colloq" ] || { echo "run-benchmarks.sh: no colloq binary in $build (build first)" >&2; exit 2; }
[ -f "$VOCAB" ] || { echo "run-benchmarks.sh: vocabulary $VOCAB not found" >&2; exit 2; }
mkdir -p "$models"
: > "$OUT.new"

for shape in $SHAPES; do
    f16=$models/$shape-F16.gguf
    if [ ! -f "$f16" ]; then
        echo "== making $f16" >&2
        "$colloq" mkmodel --shape "$shape" --vocab "$VOCAB" --type f16 -t "$THREADS" -o "$f16"
    fi
    for type in $TYPES; do
        model=$models/$shape-$type.gguf
        if [ "$type" = F16 ]; then
            model=$f16
        elif [ ! -f "$model" ]; then
            echo "== quantizing $model" >&2
            "$colloq" quantize "$f16" "$model" "$type" -t "$THREADS"
        fi
        pp=$PP tg=$TG
        if [ "$type" = F16 ] && [ "$shape" != tinyllama-1b ]; then pp=$PP_F16 tg=$TG_F16; fi
        echo "== bench $model (-p $pp -n $tg -t $THREADS -r $REPS -d $DEPTH --cache-type $CACHE)" >&2
        "$colloq" bench -m "$model" -p "$pp" -n "$tg" -t "$THREADS" -r "$REPS" -d "$DEPTH" --cache-type "$CACHE" \
            --json | tee -a "$OUT.new"
    done
done
cat "$OUT.new" >> "$OUT"

python3 - "$OUT.new" <<'PY'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
# GB/token: weights plus the KV cache read per decode token (negligible at depth 0)
print("| model | type | threads | isa | pp tok/s | % int8 peak | tg tok/s | GB/token | bandwidth GB/s | tg floor ratio |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    name = os.path.basename(r["model"]).rsplit("-", 1)[0]
    tg = "%.2f (tg%d%s)" % (r["tg_tok_s"], r["n_gen"], " at depth %d, %s cache" % (r["depth"], r["cache_type"])
                            if r.get("depth") else "")
    print("| %s | %s | %d | %s | %.1f (pp%d) | %.0f %% | %s | %.3f | %.1f | %.2f |" % (
        name, r["type"], r["threads"], r["isa"], r["pp_tok_s"], r["n_prompt"], 100 * r["pp_peak_ratio"],
        tg, (r["bytes_per_token"] + r.get("kv_bytes_per_token", 0)) / 1e9, r["bw_gbps"], r["tg_floor_ratio"]))
PY
rm -f "$OUT.new"
