#!/usr/bin/env bash
# Decode tok/s against context length for the seeds' KV schemes on one
# synth shape (bench/kv-schemes/shape.json: 6 layers, 8 heads of 64):
# gqa:8 (every head its own KV), mqa, character.ai's mqa+local:1024/6+cla:2,
# DeepSeek-V2's mla:512,64 and SimLayerKV's simlayer:0.5. Each point is
# `sol bench -p 0 -n GEN -d DEPTH --fill repeat`: the cache filled to DEPTH
# (untimed: a 512-token prefill, its rows repeated; SimLayerKV scores that
# prefill), then GEN single-token steps, REPS repetitions; beside it the speed of
# light of the same plans on this CPU (sol bench's sol_tokens_per_s: the
# analyzer's bound with its bytes, KV reads included).
#
#   bench/kv-schemes.sh [SOL_BIN] [OUT_DIR]
#   DEPTHS=1024,2048,4096,8192,16384,32768 GEN=32 REPS=5 THREADS=
#
# Writes OUT_DIR (default build/bench/kv-schemes) /SCHEME.json (sol bench -o
# json), kv-schemes.md (the table) and kv-schemes.svg (the plot).
# About two minutes on 2 cores.
set -euo pipefail
sol=${1:-build/sol}
out=${2:-build/bench/kv-schemes}
depths=${DEPTHS:-1024,2048,4096,8192,16384,32768}
gen=${GEN:-32}
reps=${REPS:-5}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
shape="$here/kv-schemes/shape.json"
mkdir -p "$out"

# weights for each heads term; the other terms need none of their own
for heads in gqa:8 mqa mla:512,64; do
    file="$out/shape-${heads//[:,]/_}.gguf"
    [ -s "$file" ] || "$sol" synth "$shape" --wtype f16 --kv "$heads" -o "$file" >&2
done
threads=()
[ -n "${THREADS:-}" ] && threads=(-t "$THREADS")
run() { # SCHEME WEIGHTS
    local scheme=$1 file="$out/shape-${2//[:,]/_}.gguf"
    echo "kv-schemes: $scheme at depths $depths" >&2
    "$sol" bench "$file" -p 0 -n "$gen" -r "$reps" -d "$depths" --fill repeat --kv "$scheme" --no-store -o json \
        "${threads[@]}" >"$out/${scheme//[:,\/+]/_}.json"
}
run gqa:8 gqa:8
run mqa mqa
run mqa+local:1024/6+cla:2 mqa
run mla:512,64 mla:512,64
run gqa:8+simlayer:0.5 gqa:8
python3 "$here/kv_schemes_report.py" "$out" "$out"/gqa_8.json "$out"/mqa.json "$out"/mqa_local_1024_6_cla_2.json \
    "$out"/mla_512_64.json "$out"/gqa_8_simlayer_0.5.json
