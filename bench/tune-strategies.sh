#!/usr/bin/env bash
# Benchmark, not a test: does simulated annealing find what exhaustive search
# finds, with a quarter of the measurements? For each shape it runs `sol tune
# --strategy exhaustive` (every valid configuration) into one scratch
# database, then `--strategy anneal --budget <25% of that>` with several
# seeds, each into its own scratch database so nothing is resumed from the
# exhaustive run. Each annealing winner is then looked up in the exhaustive
# run's trials: the ratio is its time to the exhaustive optimum on the same
# landscape. Two columns:
#   replay  `sol tune --landscape`: annealing run on the exhaustive run's
#           recorded times, nothing measured; the strategy alone, free of noise
#   live    annealing measuring for real; its pick is then looked up in the
#           exhaustive landscape, so a machine whose speed moves between the
#           two runs (this VM's compute halves at times) shows up here
#
# bench/tune-strategies-evals.sh asks the other question, for every strategy:
# how many evaluations to come within 3% (replays only).
#
# usage: bench/tune-strategies.sh [SOL_BIN=build/sol] [SHAPE...]
# default shapes: SmolLM2-135M's prefill matmuls (64 rows) in Q4_1 and a
# Llama-3.2-1B-shaped Q8_0 one.
set -eu
sol=${1:-build/sol}
shift || true
shapes=("$@")
if [ ${#shapes[@]} -eq 0 ]; then
    shapes=(matmul:q4_1:576x576x64 matmul:q4_1:1536x576x64 matmul:q4_1:576x1536x64 matmul:q8_0:2048x2048x64)
fi
seeds=${SEEDS:-1 2 3 4 5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

trials_json() { SOL_DB="$1" "$sol" db trials --format json; }
best_json() { SOL_DB="$1" "$sol" db best --format json; }

printf '%-26s %6s %10s %6s  %s\n' shape evals optimum budget "anneal per seed: replay pick/optimum | live measured, pick/optimum"
for shape in "${shapes[@]}"; do
    ex="$work/exhaustive.db"
    rm -f "$ex"*
    SOL_DB="$ex" "$sol" tune --shape "$shape" --strategy exhaustive >/dev/null 2>"$work/ex.err" ||
        { cat "$work/ex.err" >&2; exit 1; }
    trials_json "$ex" >"$work/ex.json"
    evals=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$work/ex.json")
    budget=$((evals / 4 - 1)) # the default is measured first, outside the budget
    line=""
    for seed in $seeds; do
        an="$work/anneal-$seed.db"
        rm -f "$an"*
        SOL_DB="$an" "$sol" tune --shape "$shape" --strategy anneal --budget "$budget" --seed "$seed" \
            >/dev/null 2>"$work/an.err" || { cat "$work/an.err" >&2; exit 1; }
        trials_json "$an" >"$work/an.json"
        best_json "$an" >"$work/an-best.json"
        SOL_DB="$work/replay.db" "$sol" tune --shape "$shape" --strategy anneal --budget "$budget" --seed "$seed" \
            --landscape "$ex" >"$work/replay.out" 2>"$work/replay.err" || { cat "$work/replay.err" >&2; exit 1; }
        line+=$(python3 - "$work/ex.json" "$work/an.json" "$work/an-best.json" "$seed" "$work/replay.out" <<'PY'
import json, sys
ex, an, best, seed = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), json.load(open(sys.argv[3])), sys.argv[4]
times = {t["params_json"]: t["median_s"] for t in ex if t["correct"]}
optimum = min(times.values())
# the replay's pick: the JSON at the end of its table row
replay_pick = json.loads(open(sys.argv[5]).read().strip().splitlines()[-1].split("  ")[-1])
replay = times[json.dumps(replay_pick, separators=(",", ":"))] / optimum
live = times[best[0]["params_json"]] / optimum
mark = lambda r: "" if r <= 1.03 else " (>3%)"
print(f" {seed}: {replay:.3f}{mark(replay)} | {len(an)}, {live:.3f}{mark(live)};", end="")
PY
)
    done
    optimum=$(python3 -c 'import json,sys; print("%.1f us" % (1e6 * min(t["median_s"] for t in json.load(open(sys.argv[1])) if t["correct"])))' "$work/ex.json")
    printf '%-26s %6s %10s %6s %s\n' "$shape" "$evals" "$optimum" "$budget" "$line"
done
