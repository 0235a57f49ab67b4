#!/usr/bin/env bash
# Runs libFuzzer targets one after the other for SECONDS each; every finding
# (a crash, leak or sanitizer report) stops its target and is kept under
# build/fuzz/findings/NAME. The corpus of each target grows in
# build/fuzz/corpus/NAME (seeded from the seed folders), so later runs
# continue where earlier ones stopped. Exit 1 when any target found
# something; one target failing never hides the next.
#
#   tests/fuzz/run.sh SECONDS NAME:SEED_DIR[+SEED_DIR...] ...
set -u
seconds=$1
shift
failed=0
total_runs=0
for spec in "$@"; do
    name=${spec%%:*}
    seeds=${spec#*:}
    corpus=build/fuzz/corpus/$name
    findings=build/fuzz/findings/$name
    mkdir -p "$corpus" "$findings"
    dirs=("$corpus")
    for d in ${seeds//+/ }; do dirs+=("$d"); done
    log=build/fuzz/$name.log
    build/fuzz/fuzz_"$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix="$findings/" -print_final_stats=1 "${dirs[@]}" >"$log" 2>&1
    rc=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    total_runs=$((total_runs + ${runs:-0}))
    if [ $rc -eq 0 ]; then
        echo "fuzz $name: ok, ${runs:-?} inputs in ${seconds} s, ${cov:-cov: ?}, corpus $(ls "$corpus" | wc -l) files"
    else
        echo "fuzz $name: FINDING (exit $rc): $(ls -t "$findings" | head -1); log $log:"
        grep -E 'ERROR|SUMMARY|runtime error' "$log" | head -5
        failed=1
    fi
done
echo "fuzz: $total_runs inputs over $# targets"
exit $failed
