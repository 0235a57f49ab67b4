#!/usr/bin/env bash
# ThreadSanitizer runs (make tsan): the pool and tuner unit tests, sol run
# in its three modes on SmolLM2 and a synth model (the live view's UI thread
# reads the timing ring and the text while the decode thread writes them),
# and bench. TSAN_OPTIONS makes any report fail its run (exit 66). Every run
# goes, whatever failed before it.
#
#   tests/tsan/run.sh TSAN_SOL SMOLLM2.gguf UNIT_TEST...
set -u
sol=$1
smol=$2
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SOL_DB="$work/sol.db"
passed=0
failures=0
check() { # name, command...
    local name=$1
    shift
    "$@" >"$work/out" 2>"$work/err"
    local rc=$?
    if [ $rc -eq 0 ]; then
        passed=$((passed + 1))
        echo "tsan: ok: $name"
    else
        failures=$((failures + 1))
        echo "tsan: FAIL: $name (exit $rc)"
        grep -A12 'WARNING: ThreadSanitizer' "$work/err" | head -30
    fi
}
for unit in "$@"; do
    check "$(basename "$unit")" "$unit"
done
"$sol" synth tests/fixtures/configs/tiny-llama.json --wtype q4_k -o "$work/tiny.gguf" >/dev/null 2>&1
for model in "$smol" "$work/tiny.gguf"; do
    base=$(basename "$model")
    check "$base: run --plain" "$sol" run "$model" -n 24 --plain --every 4 --temp 0 -p "The speed of light is"
    check "$base: run --json" "$sol" run "$model" -n 12 --json --temp 0.8 --seed 3
    check "$base: bench" "$sol" bench "$model" -p 32 -n 8 -r 2 --no-store
done
# the live view: a decode thread and the UI thread, driven through tmux
T=(tmux -S "$work/tmux.sock" -f /dev/null)
"${T[@]}" new-session -d -s sol -x 120 -y 40 \
    "bash -c 'SOL_TEST_STEP_DELAY_MS=100 $sol run $smol --tui -n 40 --temp 0 2>$work/tui.err; echo EXIT=\$? >$work/tui.rc'"
sleep 8
"${T[@]}" send-keys -t sol p
sleep 1
"${T[@]}" send-keys -t sol p r s h x
sleep 2
"${T[@]}" send-keys -t sol q
for _ in $(seq 1 120); do [ -s "$work/tui.rc" ] && break; sleep 0.5; done
"${T[@]}" kill-server >/dev/null 2>&1
if grep -q 'EXIT=0' "$work/tui.rc" 2>/dev/null && ! grep -q ThreadSanitizer "$work/tui.err"; then
    passed=$((passed + 1))
    echo "tsan: ok: the live view (decode thread + UI thread, pause, roofline, sort, help, quit)"
else
    failures=$((failures + 1))
    echo "tsan: FAIL: the live view: $(cat "$work/tui.rc" 2>/dev/null)"
    grep -A12 'WARNING: ThreadSanitizer' "$work/tui.err" | head -30
fi
echo "tsan tests: $passed passed, $failures failed"
[ $failures -eq 0 ]
