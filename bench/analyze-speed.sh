#!/usr/bin/env bash
# Times `sol analyze` on the largest presets (whole process: start, parse,
# two plans, costing, report). Target: under 20 ms. Prints median and
# spread over N runs after a warm-up.
set -euo pipefail
sol=${1:-build/sol}
runs=${RUNS:-30}
for model in llama-3.1-405b deepseek-v3; do
    for format in table json; do
        "$sol" analyze "$model" --format "$format" >/dev/null # warm-up
        times=()
        for _ in $(seq "$runs"); do
            start=$(date +%s%N)
            "$sol" analyze "$model" --format "$format" >/dev/null
            end=$(date +%s%N)
            times+=($(( (end - start) / 1000 )))
        done
        sorted=($(printf '%s\n' "${times[@]}" | sort -n))
        n=${#sorted[@]}
        awk -v m="$model" -v f="$format" -v med="${sorted[$((n / 2))]}" -v lo="${sorted[0]}" \
            -v hi="${sorted[$((n - 1))]}" -v n="$n" 'BEGIN {
                printf "%-16s %-6s median %6.2f ms  min %6.2f ms  max %6.2f ms  (%d runs)\n",
                       m, f, med / 1000, lo / 1000, hi / 1000, n }'
    done
done
