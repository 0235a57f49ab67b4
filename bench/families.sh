#!/usr/bin/env bash
# Every family the analyzer prices, run by the engine at its real shapes: a
# sol synth model of each preset with a few layers (q4_0 weights), decoded
# by `sol run` and, for the MoE ones, stepped in lockstep batches by
# `sol bench --batch` (distinct experts read per layer per step against the
# analyzer). Writes docs/results/families.md. Weights go to $WORK (default
# /tmp/sol-families) and are deleted afterwards; nothing is committed.
#
#   bench/families.sh [SOL_BIN]
set -euo pipefail
sol=${1:-build/sol}
work=${WORK:-/tmp/sol-families}
out=docs/results/families.md
mkdir -p "$work" "$(dirname "$out")"
# the user's database: run costs the SOL on this CPU's `sol hw probe` figures
# (a fresh one would fall back to estimated ceilings); nothing is stored
# preset:layers (MoE models keep at least one MoE layer after their dense ones)
models="phi-3-mini-4k:2 gemma-2-9b:2 gemma-3-27b:6 mixtral-8x7b:1 deepseek-v2-lite:2 deepseek-v2:2 deepseek-v3:4"
{
    echo "# Every family at its real shapes"
    echo
    echo "\`bench/families.sh\` on $(date -u +%Y-%m-%d), $(nproc) CPU threads: \`sol synth PRESET --layers N --wtype q4_0\`,"
    echo "then \`sol run -p \"The lighthouse keeper\" -n 16 --temp 0\` (decode tok/s, the GB/s the plan's"
    echo "bytes imply, and % of SOL as run reports it: on this CPU's \`sol hw probe\` ceilings) and, for the MoE models,"
    echo "\`sol bench --batch 1,8 -n 100\` (distinct experts a MoE layer read per step, mean and 95% interval over"
    echo "5-step blocks, against the analyzer's uniform figure)."
    echo
    echo "| preset | layers | params | file GB | decode tok/s | GB/s | % of SOL | experts/layer/step at B=1, 8: measured (predicted, uniform) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|"
} >"$out"
for spec in $models; do
    preset=${spec%%:*}
    layers=${spec##*:}
    gguf="$work/$preset-$layers.gguf"
    echo "== $preset ($layers layers)" >&2
    "$sol" synth "$preset" --layers "$layers" --wtype q4_0 -o "$gguf" >&2
    json=$("$sol" run "$gguf" -p "The lighthouse keeper" -n 16 --temp 0 --json 2>/dev/null | tail -1)
    params=$("$sol" analyze "$gguf" --format json | python3 -c 'import json,sys; print("%.2fB" % (json.load(sys.stdin)["model"]["params"] / 1e9))')
    gb=$(python3 -c "import os; print(f'{os.path.getsize(\"$gguf\") / 1e9:.2f}')")
    experts="-"
    if [[ $preset == mixtral* || $preset == deepseek* ]]; then
        experts=$("$sol" bench "$gguf" --batch 1,8 -n 100 -o json --no-store --mapped-weights 2>/dev/null | python3 -c '
import json, sys
rows = json.load(sys.stdin)
print(", ".join("%.2f ± %.2f (%.2f)" % (r["experts"]["distinct_mean"], r["experts"]["distinct_ci95"], r["experts"]["distinct_predicted"]) for r in rows))')
    fi
    python3 - "$json" "$preset" "$layers" "$params" "$gb" "$experts" >>"$out" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
preset, layers, params, gb, experts = sys.argv[2:]
print(f"| {preset} | {layers} | {params} | {gb} | {d['decode_tokens_per_s']:.1f} | {d['achieved_gb_per_s']:.1f} | {d['sol_percent']:.0f}% | {experts} |")
PY
    rm -f "$gguf"
done
echo "wrote $out" >&2
