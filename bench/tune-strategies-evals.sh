#!/usr/bin/env bash
# Benchmark, not a test: how many evaluations does each strategy need to
# come within 3% of the exhaustive optimum? For each shape it runs `sol tune
# --strategy exhaustive` once (the landscape: every valid configuration,
# measured), then replays each strategy on that landscape with `sol tune
# --landscape` (nothing measured: the strategy alone, free of noise) at
# budgets of 5, 10, 15, 20 and 25% of the exhaustive run's evaluations, with
# several seeds. A replay's pick is looked up in the landscape; its ratio to
# the landscape's optimum is within 3% or not.
#
# A budget of N evaluations runs `--budget N-1`: `sol tune` looks up the
# default first, outside the search's budget (anneal and genetic then
# propose the default again, which costs them one of their N-1 and measures
# nothing, so they see N-1 distinct points and random N).
#
# Each cell of the table: N, the seeds within 3%, and the median seed's
# ratio. The last three columns: the smallest budget at which every seed,
# 9 in 10 seeds, and the median seed came within 3% (">25%": at none).
#
# usage: bench/tune-strategies-evals.sh [SOL_BIN=build/sol] [SHAPE...]
# environment:
#   SEEDS        seeds per budget (default 1 to 20)
#   STRATEGIES   default "random anneal genetic"
#   PERCENTS     budgets in % of the exhaustive evaluations (default 5 10 15 20 25)
#   WITHIN       the tolerance in % (default 3)
#   SOL_TUNE_ARGS  passed to every `sol tune` (e.g. "--reps 15", or
#                "--backend cuda" for GPU landscapes with GPU shapes)
#   LANDSCAPES   a folder that keeps the exhaustive databases, one per shape
#                (SHAPE.db, ':' as '_'): one already there is replayed, not
#                measured again, so landscapes from another machine (a GPU
#                run's) can be judged here. Default: a scratch folder.
# default shapes: prefill-sized matmuls (8 to 24 rows) on the 8-bit integer
# dots, whose space has 336 valid configurations (a decode matvec's has 18:
# 5% of it is one evaluation).
set -eu
sol=${1:-build/sol}
shift || true
shapes=("$@")
if [ ${#shapes[@]} -eq 0 ]; then
    shapes=(matmul:q4_1:1536x576x8 matmul:q4_0:576x1536x24 matmul:q8_0:2048x2048x16)
fi
seeds=${SEEDS:-$(seq -s ' ' 1 20)}
strategies=${STRATEGIES:-random anneal genetic}
percents=${PERCENTS:-5 10 15 20 25}
within=${WITHIN:-3}
read -r -a tune_args <<<"${SOL_TUNE_ARGS:-}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
landscapes=${LANDSCAPES:-$work}
mkdir -p "$landscapes"

# one line per replay: shape strategy percent evaluations seed, then the
# replay's table row (it ends with the pick's parameters)
results="$work/results.txt"
: >"$results"

for i in "${!shapes[@]}"; do
    shape=${shapes[$i]}
    db="$landscapes/${shape//:/_}.db"
    if [ ! -f "$db" ]; then
        SOL_DB="$db" "$sol" tune --shape "$shape" --strategy exhaustive "${tune_args[@]}" >/dev/null 2>"$work/ex.err" ||
            { cat "$work/ex.err" >&2; exit 1; }
    fi
    SOL_DB="$db" "$sol" db trials --format json >"$work/landscape-$i.json"
    evals=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$work/landscape-$i.json")
    echo "$shape: $evals configurations in the landscape" >&2
    for strategy in $strategies; do
        for pct in $percents; do
            n=$(((evals * pct + 99) / 100))
            [ "$n" -ge 2 ] || n=2
            for seed in $seeds; do
                SOL_DB="$work/replay.db" "$sol" tune --shape "$shape" --strategy "$strategy" --budget $((n - 1)) \
                    --seed "$seed" --landscape "$db" "${tune_args[@]}" >"$work/replay.out" 2>"$work/replay.err" ||
                    { cat "$work/replay.err" >&2; exit 1; }
                echo "$shape $strategy $pct $n $seed $(tail -n 1 "$work/replay.out")" >>"$results"
            done
        done
    done
done

python3 - "$results" "$within" "$percents" "$work" "${shapes[@]}" <<'PY'
import json, statistics, sys
results, tol_pct, percents, work, shapes = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4], sys.argv[5:]
tol = 1 + float(tol_pct) / 100
rows = [l.split(None, 5) for l in open(results)]
print("| shape | exhaustive | optimum | strategy | " + " | ".join(p + "%" for p in percents) +
      " | all seeds within %s%% | 9 in 10 seeds | median seed |" % tol_pct)
print("|---|---:|---:|---|" + "---:|" * len(percents) + "---:|---:|---:|")
for i, shape in enumerate(shapes):
    trials = json.load(open("%s/landscape-%d.json" % (work, i)))
    times = {t["params_json"]: t["median_s"] for t in trials if t["correct"]}
    optimum = min(times.values())

    def ratio(row):  # the pick's recorded time over the optimum
        pick = json.loads(row[row.index("{"):])
        return times[json.dumps(pick, separators=(",", ":"))] / optimum

    for strategy in dict.fromkeys(r[1] for r in rows if r[0] == shape):
        cells, first = [], {}
        for pct in percents:
            rs = [r for r in rows if r[0] == shape and r[1] == strategy and r[2] == pct]
            ratios = [ratio(r[5]) for r in rs]
            ok = sum(x <= tol for x in ratios)
            med = statistics.median(ratios)
            cells.append("%s: %d/%d, %.3f" % (rs[0][3], ok, len(ratios), med))
            label = "%s (%s%%)" % (rs[0][3], pct)
            for key, met in (("all", ok == len(ratios)), ("nine", ok >= 0.9 * len(ratios)), ("median", med <= tol)):
                if met and key not in first:
                    first[key] = label
        never = ">" + percents[-1] + "%"
        print("| %s | %d | %.1f us | %s | %s | %s | %s | %s |" % (shape, len(trials), optimum * 1e6, strategy,
              " | ".join(cells), first.get("all", never), first.get("nine", never), first.get("median", never)))
PY
