#!/usr/bin/env bash
# The engine suite on the host-poisoning test backend (tests/backend/poison.c):
# every run must give logits bit-identical to the CPU backend's, with every
# buffer in memory the host cannot touch, with every op deferred to the
# sync point, and an injected asynchronous fault must end the run with one
# line naming the op (exit 1, no sanitizer report, no leak).
#
#   tests/backend/run.sh SOL_BIN POISON_SO SMOLLM2.gguf TINY.gguf...
set -u
sol=$1
plugin=$2
smol=$3
shift 3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SOL_DB="$work/sol.db"
passed=0
failures=0

ok() { passed=$((passed + 1)); echo "backend test: ok: $*"; }
fail() { failures=$((failures + 1)); echo "backend test: FAIL: $*"; }

# same NAME MODEL ARGS...: the CPU backend, the poison backend and the
# deferred poison backend give the same bytes of logits and the same text.
same() {
    local name=$1 model=$2
    shift 2
    "$sol" run "$model" --plain "$@" --logits-out "$work/cpu.bin" >"$work/cpu.txt" 2>"$work/cpu.err" ||
        { fail "$name: cpu backend: $(tail -1 "$work/cpu.err")"; return; }
    for mode in 0 1; do
        local label=poison
        [ $mode = 1 ] && label=poison-deferred
        if ! SOL_POISON_DEFER=$mode "$sol" run "$model" --plain "$@" --backend "$plugin" \
            --logits-out "$work/p.bin" >"$work/p.txt" 2>"$work/p.err"; then
            fail "$name: $label: $(tail -3 "$work/p.err")"
            continue
        fi
        if ! cmp -s "$work/cpu.bin" "$work/p.bin"; then
            fail "$name: $label: logits differ from the CPU backend's"
        elif ! cmp -s "$work/cpu.txt" "$work/p.txt"; then
            fail "$name: $label: text differs from the CPU backend's"
        else
            ok "$name: $label: $(($(stat -c %s "$work/p.bin") / 4)) logits bit-identical, same text"
        fi
    done
}

# same_hash NAME MODEL ARGS...: as same, for runs longer than one chunk
# (--logits-out keeps one chunk): the final logits hash and the text.
same_hash() {
    local name=$1 model=$2
    shift 2
    local want got
    want=$("$sol" run "$model" --plain "$@" 2>&1 >"$work/cpu.txt" | grep -o 'logits [0-9a-f]*$')
    for mode in 0 1; do
        got=$(SOL_POISON_DEFER=$mode "$sol" run "$model" --plain "$@" --backend "$plugin" 2>&1 >"$work/p.txt" |
            grep -o 'logits [0-9a-f]*$')
        if [ -n "$want" ] && [ "$want" = "$got" ] && cmp -s "$work/cpu.txt" "$work/p.txt"; then
            ok "$name: defer=$mode: $got, same text"
        else
            fail "$name: defer=$mode: cpu '$want', poison '$got'"
        fi
    done
}

long_prompt=$(printf 'The speed of light in vacuum is a universal constant. %.0s' $(seq 1 12))

# the real model: prefill + decode, both activation paths, both cache types, sampling
same "smollm2 greedy q8 f16" "$smol" -n 6 --temp 0 --ctx 128
same "smollm2 greedy f32 f32" "$smol" -n 4 --temp 0 --ctx 128 --activations f32 --kvtype f32
same "smollm2 sampled" "$smol" -n 6 --temp 0.9 --top-k 20 --top-p 0.9 --seed 7 --ctx 128
same_hash "smollm2 prefill of 3 chunks" "$smol" -p "$long_prompt" -n 3 --temp 0 --ctx 256
# synth models: every weight type the engine runs
for model in "$@"; do
    base=$(basename "$model" .gguf)
    same "$base q8" "$model" -n 8 --temp 0 --ctx 64 -p "hello world"
    same "$base f32" "$model" -n 8 --temp 0 --ctx 64 -p "hello world" --activations f32 --kvtype f32
done

# bench drives the engine through the same seam
if "$sol" bench "$smol" -p 8 -n 2 -r 1 --no-store -o json --backend "$plugin" >"$work/bench.json" 2>"$work/bench.err" &&
    grep -Eq '"backend":[[:space:]]*"poison.q8"' "$work/bench.json"; then
    ok "bench runs on the plugin backend (rows stored as poison.q8)"
else
    fail "bench on the plugin backend: $(tail -2 "$work/bench.err")"
fi

# an injected asynchronous fault: one line naming the op, exit 1 (a
# sanitizer or leak report would add lines)
for mode in 0 1; do
    SOL_POISON_DEFER=$mode SOL_POISON_FAULT=ffn.down@1 "$sol" run "$smol" --plain -n 4 --temp 0 --ctx 64 \
        --backend "$plugin" >/dev/null 2>"$work/fault.err"
    rc=$?
    lines=$(wc -l <"$work/fault.err")
    if [ $rc = 1 ] && [ "$lines" = 1 ] && grep -q '^sol run: layer 1 ffn.down: injected fault' "$work/fault.err"; then
        ok "defer=$mode: fault -> $(cat "$work/fault.err") (exit 1)"
    else
        fail "defer=$mode: fault gave exit $rc and $lines lines: $(head -5 "$work/fault.err")"
    fi
done

# --counters through the seam (the poison backend's fake count_step,
# SOL_POISON_COUNTERS): its fixture figures (3e6 bytes read, 1e6 written,
# 2 ms of GPU time, tests/backend/poison.c) reach the engine's timing ring
# and sol run's summary, beside the plan's bytes of the same step.
if SOL_POISON_COUNTERS=fixed "$sol" run "$smol" --json -n 4 --temp 0 --ctx 64 --backend "$plugin" --counters \
    >"$work/ctr.json" 2>"$work/ctr.err" &&
    why=$(tail -1 "$work/ctr.json" | python3 -c '
import json, sys
j = json.load(sys.stdin)
want = {"counted_dram_read_bytes": 3e6, "counted_dram_write_bytes": 1e6, "counted_gpu_s": 0.002}
bad = [k for k, v in want.items() if j.get(k) != v]
plan = j.get("counted_plan_bytes", 0)
per_step = j["decode_bytes"] / max(len(j["generated_ids"]) - 1, 1)
if not 0.9 * per_step < plan < 1.1 * per_step:
    bad.append("counted_plan_bytes %g, decode steps average %g" % (plan, per_step))
if abs(j.get("counted_to_plan", 0) - 4e6 / plan) > 1e-9 * 4e6 / plan:
    bad.append("counted_to_plan %s, not 4e6 / %g" % (j.get("counted_to_plan"), plan))
if abs(j.get("counted_gb_per_s", 0) - 4e6 / j["counted_step_s"] / 1e9) > 1e-9:
    bad.append("counted_gb_per_s")
# every decode step counts: the latest is the last step, one prefill step + n - 1 decode steps
if j.get("counted_step") != len(j["generated_ids"]):
    bad.append("counted_step %s, not the last step %d" % (j.get("counted_step"), len(j["generated_ids"])))
print("; ".join(bad))
') && [ -z "$why" ]; then
    ok "--counters: the fake's counted bytes and counted/plan in sol run's JSON"
else
    fail "--counters (fixed): ${why:-$(tail -2 "$work/ctr.err")}"
fi

# the text summary says them too
if SOL_POISON_COUNTERS=fixed "$sol" run "$smol" --plain -n 4 --temp 0 --ctx 64 --backend "$plugin" --counters \
    >/dev/null 2>"$work/ctr.err" &&
    grep -Eq '^sol run: counters at step [0-9]+: DRAM 0.003 GB read \+ 0.001 GB written, .* counted/plan [0-9.]+$' \
        "$work/ctr.err"; then
    ok "--counters: $(grep '^sol run: counters' "$work/ctr.err")"
else
    fail "--counters (fixed, text): $(tail -2 "$work/ctr.err")"
fi

# counting that turns off: its notice once, the run goes on (exit 0)
SOL_POISON_COUNTERS=off "$sol" run "$smol" --plain -n 6 --temp 0 --ctx 64 --backend "$plugin" --counters \
    >/dev/null 2>"$work/ctr.err"
rc=$?
notices=$(grep -c 'hardware counters off (SOL_POISON_COUNTERS=off)' "$work/ctr.err")
if [ $rc = 0 ] && [ "$notices" = 1 ] && grep -q '^sol run: counters: no step counted (counting turned off)$' "$work/ctr.err"; then
    ok "--counters turning off: the notice once, exit 0"
else
    fail "--counters (off): exit $rc, $notices notices: $(head -5 "$work/ctr.err")"
fi

# a device fault in the counted replay: one line, exit 1
SOL_POISON_COUNTERS=fail "$sol" run "$smol" --plain -n 4 --temp 0 --ctx 64 --backend "$plugin" --counters \
    >/dev/null 2>"$work/ctr.err"
rc=$?
if [ $rc = 1 ] && [ "$(wc -l <"$work/ctr.err")" = 1 ] && grep -q '^sol run: counted replay: injected device fault$' "$work/ctr.err"; then
    ok "--counters: a failed replay -> $(cat "$work/ctr.err") (exit 1)"
else
    fail "--counters (fail): exit $rc: $(head -5 "$work/ctr.err")"
fi

# a plugin without counters (count_step NULL): refused in one line, exit 2
"$sol" run "$smol" --plain -n 2 --ctx 64 --backend "$plugin" --counters >/dev/null 2>"$work/ctr.err"
rc=$?
if [ $rc = 2 ] && [ "$(cat "$work/ctr.err")" = "sol run: --counters needs --backend cuda (CUPTI hardware counters)" ]; then
    ok "--counters on a plugin without counters: refused (exit 2)"
else
    fail "--counters without count_step: exit $rc: $(head -3 "$work/ctr.err")"
fi

echo "backend tests: $passed passed, $failures failed"
[ $failures = 0 ]
