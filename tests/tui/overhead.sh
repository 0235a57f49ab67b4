#!/usr/bin/env bash
# Benchmark, not a test: decode speed with the live view (--tui, in a
# detached tmux) against --plain, alternating runs of the same seeded
# generation. Prints each run's decode tok/s (from the summary line) and the
# median of each mode; the view should cost under 2%.
#
# usage: tests/tui/overhead.sh SOL_BIN MODEL.gguf [RUNS=5] [TOKENS=256]
set -eu
sol=$1
model=$2
runs=${3:-5}
tokens=${4:-256}
work=$(mktemp -d)
T=(tmux -S "$work/tmux.sock" -f /dev/null) # a private server, gone with $work
trap '"${T[@]}" kill-server >/dev/null 2>&1; rm -rf "$work"' EXIT
args=(-n "$tokens" --seed 7 --chat -p "Write a long story about a lighthouse keeper.")

tok_s() { grep -oE 'generated [0-9]+ tok[^,]*, [0-9.]+ tok/s' "$1" | grep -oE '[0-9.]+ tok/s' | cut -d' ' -f1; }

plain=() tui=()
for i in $(seq "$runs"); do
    "$sol" run "$model" --plain "${args[@]}" >/dev/null 2>"$work/plain.err"
    plain+=("$(tok_s "$work/plain.err")")
    cmd="$(printf '%q ' "$sol" run "$model" --tui "${args[@]}") 2>$work/tui.err"
    "${T[@]}" new-session -d -s bench -x 120 -y 40 "bash -c '$cmd'"
    # polled slowly: every capture forks a tmux client that competes with
    # the decode threads, which would be charged to the view
    until "${T[@]}" capture-pane -p -t bench 2>/dev/null | grep -q ' done [0-9]*/'; do sleep 2; done
    "${T[@]}" send-keys -t bench q
    while "${T[@]}" has-session -t bench 2>/dev/null; do sleep 0.1; done
    tui+=("$(tok_s "$work/tui.err")")
    echo "run $i: plain ${plain[-1]} tok/s, tui ${tui[-1]} tok/s"
done
median() {
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'
}
mp=$(median "${plain[@]}") mt=$(median "${tui[@]}")
awk -v p="$mp" -v t="$mt" \
    'BEGIN { printf "median: plain %.2f tok/s, tui %.2f tok/s (%+.1f%%)\n", p, t, 100 * (t - p) / p }'
