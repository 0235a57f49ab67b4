#!/usr/bin/env bash
# Two builds of sol side by side: `sol bench` of build A and build B on the
# same models, alternating A B A B ... for R rounds (this machine's
# bandwidth moves from minute to minute, so only interleaved runs compare),
# then per model and test the median tok/s of each build over the rounds,
# the min-max spread, and B / A.
#
#   bench/ab.sh [-r ROUNDS] [-t THREADS] [-p P] [-n N] [--] A_SOL B_SOL MODEL.gguf...
#
# e.g. the commit before a change against the working tree:
#   git worktree add /tmp/base HEAD~1 && make -C /tmp/base build/sol
#   bench/ab.sh /tmp/base/build/sol build/sol ~/.cache/sol/models/*.gguf
set -euo pipefail
rounds=5 threads=2 prompt=128 gen=32
while [ $# -gt 0 ]; do
    case $1 in
    -r) rounds=$2; shift 2 ;;
    -t) threads=$2; shift 2 ;;
    -p) prompt=$2; shift 2 ;;
    -n) gen=$2; shift 2 ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    --) shift; break ;;
    *) break ;;
    esac
done
if [ $# -lt 3 ]; then
    echo "usage: bench/ab.sh [-r ROUNDS] [-t THREADS] [-p P] [-n N] A_SOL B_SOL MODEL.gguf..." >&2
    exit 2
fi
a=$1 b=$2
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SOL_DB="$work/sol.db" # nothing stored, no tuned winners: the defaults of each build

for ((round = 1; round <= rounds; round++)); do
    for model in "$@"; do
        for side in A B; do
            bin=$a
            [ $side = B ] && bin=$b
            echo "round $round/$rounds: $side $(basename "$model")" >&2
            "$bin" bench "$model" -p "$prompt" -n "$gen" -r 1 -t "$threads" --no-store -o json 2>/dev/null \
                >"$work/$side.$round.$(basename "$model").json"
        done
    done
done

python3 - "$work" "$a" "$b" "$rounds" "$threads" <<'EOF'
import glob, json, os, statistics, sys
work, a, b, rounds, threads = sys.argv[1:6]
rows = {}
for path in glob.glob(os.path.join(work, "*.json")):
    side, _, model = os.path.basename(path).split(".", 2)
    for r in json.load(open(path)):
        rows.setdefault((model[:-5], r["test"]), {}).setdefault(side, []).append(r["avg_ts"])
print(f"A = {a}\nB = {b}\n{rounds} interleaved rounds, {threads} threads, tok/s median (min-max)\n")
print("| model | test | A tok/s | B tok/s | B / A |")
print("|---|---|---|---|---|")
for (model, test), s in sorted(rows.items()):
    ma, mb = statistics.median(s["A"]), statistics.median(s["B"])
    fmt = lambda v, m: f"{m:.1f} ({min(v):.1f}-{max(v):.1f})"
    print(f"| {model} | {test} | {fmt(s['A'], ma)} | {fmt(s['B'], mb)} | {mb / ma:.3f} |")
EOF
