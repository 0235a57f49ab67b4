#!/usr/bin/env bash
# The live view end to end, in a detached tmux of fixed size (120x40):
# `sol run --tui` on SmolLM2 draws the header, the op rows and sane numbers,
# pauses, shows the roofline, help and the too-small screen, and q stops it
# cleanly (exit 0, the summary line, the terminal restored); then the ASCII
# and no-color fallback, and the --json and --plain streams.
#
# With POISON_SO, --counters' header through the test plugin's fake counters.
#
# usage: tests/tui/run.sh SOL_BIN MODEL.gguf [POISON_SO]
set -u
sol=$1
model=$2
poison=${3:-}
work=$(mktemp -d)
T=(tmux -S "$work/tmux.sock" -f /dev/null) # a private server, gone with $work
pane="$work/pane.txt"
failures=0
passed=0
export SOL_DB="$work/sol.db" # no probes: the cpu entry's estimated ceilings

cleanup() {
    "${T[@]}" kill-server >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

# the pane as text, wrapped lines joined (the summary line is longer than the pane)
capture() { "${T[@]}" capture-pane -p -J -t sol >"$pane" 2>/dev/null; }

fail() {
    echo "tui test: FAIL: $*"
    echo "---------------- captured pane ----------------"
    cat "$pane"
    echo "-----------------------------------------------"
    failures=$((failures + 1))
}

ok() {
    echo "tui test: ok: $*"
    passed=$((passed + 1))
}

# wait_for SECONDS REGEX: until the pane shows REGEX (extended grep)
wait_for() {
    local deadline=$((SECONDS + $1))
    while [ $SECONDS -lt $deadline ]; do
        capture
        grep -Eq -- "$2" "$pane" && return 0
        sleep 0.2
    done
    return 1
}

pane_value() { "${T[@]}" display-message -p -t sol "$1"; }

# wait_dead SECONDS: until the pane's process exited
wait_dead() {
    local deadline=$((SECONDS + $1))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(pane_value '#{pane_dead}')" = 1 ] && return 0
        sleep 0.2
    done
    return 1
}

# start COLSxROWS ENV... -- SOL_ARGS...: sol in a fresh session named sol
start() {
    local cols=$1 rows=$2
    shift 2
    local envs=()
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    "${T[@]}" kill-session -t sol >/dev/null 2>&1
    local cmd
    # after sol, the shell holds the pane (reading a line) so its terminal state can be checked
    cmd="$(printf '%q ' env "${envs[@]}" "$sol" run "$model" "$@"); rc=\$?; echo EXIT=\$rc; read -r -t 120 _; exit \$rc"
    "${T[@]}" new-session -d -s sol -x "$cols" -y "$rows" "bash -c '$cmd'" \; set-option -t sol remain-on-exit on
}

# ---- 1. the live view at 120x40 --------------------------------------------------
# 0.5 s between decode steps (a test hook, outside the timed steps): the
# pause and quit-while-decoding checks below always find it decoding
start 120 40 LANG=C.UTF-8 LC_ALL=C.UTF-8 SOL_TEST_STEP_DELAY_MS=500 -- --tui -n 48 --temp 0 -p "The speed of light is"
if wait_for 120 'generated text \(([2-9]|[1-9][0-9]+) tokens\)' && wait_for 30 '^ total '; then
    ok "tokens appear"
else
    fail "no tokens after 150 s"
fi
capture
cp "$pane" "$work/table.txt"
grep -qE "cpu backend, [0-9]+ threads" "$pane" || fail "header lacks the backend and threads"
for needle in "sol run" "(this machine)" "KV gqa:3 f16" "weights q4_1" "tuned shapes" "op group" "% SOL" \
    "tok/s" "The speed of light is"; do
    grep -qF -- "$needle" "$pane" || fail "header/table lacks \"$needle\""
done
for group in attn.qkv attn.score attn.out ffn.gate_up ffn.down lm_head other total; do
    line=$(grep -E "^ $group +[0-9.]+ (ns|us|ms|s) +[0-9.]+ (ns|us|ms|s) " "$pane" | head -1)
    [ -n "$line" ] || { fail "no row for $group"; continue; }
    pct=$(printf '%s\n' "$line" | grep -oE '[0-9.]+%' | tail -1 | tr -d %)
    awk -v p="$pct" 'BEGIN { exit !(p > 0) }' || fail "$group: % SOL \"$pct\" is not positive"
    if [ "$group" = total ]; then
        awk -v p="$pct" 'BEGIN { exit !(p > 0 && p <= 100) }' || fail "total % SOL $pct outside (0, 100]"
    fi
done
pos=$(grep -oE 'pos [0-9]+/[0-9]+' "$pane" | head -1)
[ -n "$pos" ] || fail "no context position"
tok_s=$(grep -oE '^ tok/s +[0-9.]+ now +[0-9.]+ at SOL' "$pane" | awk '{ print $2 " " $4 }')
set -- $tok_s
if [ $# -eq 2 ] && awk -v now="$1" -v sol="$2" 'BEGIN { exit !(now > 0 && sol >= now) }'; then
    ok "headline: $1 tok/s now, $2 at SOL; $pos"
else
    fail "headline tok/s \"$tok_s\" (want now > 0, SOL >= now)"
fi
headline_pct=$(grep -oE '[0-9.]+% of SOL' "$pane" | head -1 | tr -d '% of SOL')
awk -v p="${headline_pct:-x}" 'BEGIN { exit !(p > 0 && p <= 100) }' || fail "headline % SOL \"$headline_pct\""
grep -qF "█" "$pane" || fail "no UTF-8 bars in a UTF-8 locale"
[ $failures -eq 0 ] && ok "header, 8 op rows and numbers are sane"

# pause (when still decoding): the count stands still, then resumes
capture
if grep -q ' decoding [0-9]*/48 tok' "$pane"; then
    "${T[@]}" send-keys -t sol p
    if wait_for 10 'PAUSED'; then
        sleep 0.5
        capture
        a=$(grep -oE 'generated text \([0-9]+ tokens\)' "$pane")
        sleep 1.5
        capture
        b=$(grep -oE 'generated text \([0-9]+ tokens\)' "$pane")
        [ "$a" = "$b" ] && ok "p pauses ($a)" || fail "tokens advanced while paused: $a -> $b"
        "${T[@]}" send-keys -t sol p
    else
        fail "p: no PAUSED in the status bar"
    fi
else
    fail "decoding finished before the pause check (the step delay hook did not hold it)"
fi

"${T[@]}" send-keys -t sol s
wait_for 5 'actual▾' && ok "s sorts by time" || fail "s: the actual column is not marked"

"${T[@]}" send-keys -t sol r
if wait_for 10 'roofline: achieved FLOP/s' && wait_for 5 'FLOP/byte' && grep -qE '1 attn\.qkv +[0-9.]+%' "$pane" &&
    grep -q '└' "$pane" && grep -qE 'GFLOP/s' "$pane"; then
    cp "$pane" "$work/roofline.txt"
    ok "r shows the roofline (axes, ceilings, legend)"
else
    fail "r: no roofline chart"
fi

"${T[@]}" send-keys -t sol h
wait_for 5 'this help' && ok "h shows the help" || fail "h: no help overlay"
"${T[@]}" send-keys -t sol x
sleep 0.4
capture
grep -q 'this help' "$pane" && fail "a key did not close the help" || ok "any key closes the help"

"${T[@]}" resize-window -t sol -x 50 -y 12
wait_for 10 'terminal too small: 50x12' && ok "too-small screen at 50x12" || fail "no too-small screen at 50x12"
"${T[@]}" resize-window -t sol -x 120 -y 40
wait_for 10 'roofline: achieved FLOP/s' && ok "back to the chart at 120x40" || fail "no redraw after resize"

capture
was_decoding=0
grep -q ' decoding [0-9]*/48 tok' "$pane" && was_decoding=1
"${T[@]}" send-keys -t sol q
if wait_for 60 '^EXIT='; then
    grep -q '^EXIT=0' "$pane" && ok "q: exit 0" || fail "q: exit status $(grep -o 'EXIT=.*' "$pane")"
    grep -qE 'sol run: .* generated [0-9]+ tok.*tok/s.*% of SOL on cpu' "$pane" && ok "summary line printed" ||
        fail "no summary line after q"
    if [ $was_decoding = 1 ]; then
        grep -q 'tok (stopped)' "$pane" && ok "q while decoding stops early" || fail "no (stopped) in the summary"
    else
        fail "decoding finished before q (the step delay hook did not hold it)"
    fi
    grep -qE 'op group|roofline: achieved' "$pane" && fail "the view is still on the screen"
    state="$(pane_value '#{alternate_on} #{cursor_flag} #{keypad_flag}')"
    [ "$state" = "0 1 0" ] && ok "terminal restored (main screen, cursor shown, keypad off)" ||
        fail "terminal not restored: alternate screen, cursor, keypad = $state (want 0 1 0)"
    grep -q 'ERROR: AddressSanitizer\|runtime error' "$pane" && fail "sanitizer report"
    "${T[@]}" send-keys -t sol Enter
    wait_dead 10 || fail "the pane did not close"
else
    fail "q: sol did not exit within 60 s"
fi

# ---- 2. ASCII and no color: a C locale, NO_COLOR, 80x24 ----------------------------
start 80 24 LANG=C LC_ALL=C NO_COLOR=1 -- --tui -n 6 --temp 0 -p "Hi"
if wait_for 120 '^ total ' && wait_for 60 ' done [0-9]+/6 tok'; then
    "${T[@]}" capture-pane -p -e -t sol >"$work/escapes.txt"
    capture
    before=$failures
    grep -qP '[^\x00-\x7F]' "$pane" && fail "non-ASCII glyphs in a C locale"
    grep -qE '\[#+ *\]' "$pane" || fail "no ASCII bars"
    grep -qP '\e\[[0-9;]*(3[0-7]|4[0-7]|38;5)[;m]' "$work/escapes.txt" && fail "colors despite NO_COLOR"
    [ $failures -eq $before ] && ok "ASCII fallback, no colors at 80x24"
    "${T[@]}" send-keys -t sol r
    wait_for 10 'roofline: achieved' && wait_for 5 '\+-+\+' && ok "ASCII roofline" || fail "no ASCII roofline"
    "${T[@]}" send-keys -t sol q
    wait_for 30 '^EXIT=0' && ok "ASCII run: q, exit 0" || fail "ASCII run: no clean exit"
else
    fail "ASCII run: no tokens"
fi

# ---- 3. --json: one object per token, per-op times add up to the step -----------
if "$sol" run "$model" --json -n 6 --temp 0 -p "The capital of France is" >"$work/run.jsonl" 2>"$work/run.err"; then
    if python3 - "$work/run.jsonl" <<'EOF'; then
import json, sys
lines = [l for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
tokens = [json.loads(l) for l in lines[:-1]]
summary = json.loads(lines[-1])
for key in ("prompt_ids", "generated_ids", "n_vocab", "decode_tokens_per_s", "sol_percent", "logits_hash"):
    assert key in summary, f"summary lacks {key}"
assert [t["token"] for t in tokens] == list(range(len(summary["generated_ids"]))), "one line per generated token"
assert [t["id"] for t in tokens] == summary["generated_ids"]
assert "".join(t["text"] for t in tokens) == summary["text"], summary["text"]
assert summary["text"].startswith(" Paris."), summary["text"]
assert tokens[0]["phase"] == "prefill" and all(t["phase"] == "decode" for t in tokens[1:])
for t in tokens:
    ops = sum(o["s"] for o in t["ops"])
    groups = sum(g["s"] for g in t["groups"])
    assert t["step_s"] > 0 and abs(ops - t["step_s"]) <= 0.05 * t["step_s"], (ops, t["step_s"])
    assert abs(groups - t["step_s"]) <= 0.05 * t["step_s"], (groups, t["step_s"])
    assert sum(g["ops"] for g in t["groups"]) == len(t["ops"])
    assert 0 < t["total"]["sol_percent"]
print(f"tui test: json: {len(tokens)} tokens, per-op times within 5% of the step time")
EOF
        ok "--json lines parse and add up"
    else
        fail "--json check failed"
    fi
else
    fail "--json run failed: $(cat "$work/run.err")"
fi

# ---- 4. --plain: text on stdout, a stats line every N tokens on stderr ---------------
if "$sol" run "$model" --plain --every 2 -n 6 --temp 0 -p "The capital of France is" >"$work/plain.out" \
    2>"$work/plain.err"; then
    line='^sol run: [0-9]+/6 tok \| [0-9.]+ tok/s \| [0-9.]+ ms/tok \| [0-9.]+ GB/s of [0-9.]+ \| [0-9.]+% of SOL$'
    stats=$(grep -cE "$line" "$work/plain.err")
    if [ "$(head -c 7 "$work/plain.out")" = " Paris." ] && [ "$stats" = 2 ] &&
        grep -q 'generated 6 tok' "$work/plain.err"; then
        ok "--plain: text on stdout, 2 stats lines and the summary on stderr"
    else
        echo "stdout: $(cat "$work/plain.out")"
        echo "stderr: $(cat "$work/plain.err")"
        fail "--plain output"
    fi
else
    fail "--plain run failed: $(cat "$work/plain.err")"
fi

# ---- 5. --counters: counted GB/s in the header, or "counters off" and its notice once ----
# (the poison plugin's fake count_step, SOL_POISON_COUNTERS: tests/backend/poison.c)
if [ -n "$poison" ]; then
    start 120 40 LANG=C.UTF-8 LC_ALL=C.UTF-8 SOL_POISON_COUNTERS=fixed -- --tui -n 6 --temp 0 -p "Hi" \
        --backend "$poison" --counters
    if wait_for 60 'GB/s .*of ceiling.* \| counted [0-9.]+ GB/s at step [0-9]+'; then
        ok "--counters: $(grep -oE 'counted [0-9.]+ GB/s at step [0-9]+' "$pane" | head -1) in the GB/s row"
    else
        fail "--counters: no counted GB/s in the header"
    fi
    "${T[@]}" send-keys -t sol q
    wait_for 30 '^EXIT=0' || fail "--counters: no clean exit"
    start 120 40 LANG=C.UTF-8 LC_ALL=C.UTF-8 SOL_POISON_COUNTERS=off -- --tui -n 6 --temp 0 -p "Hi" \
        --backend "$poison" --counters
    wait_for 60 '\| counters off' && ok "--counters turned off: the header says so" ||
        fail "--counters (off): the header does not say counters off"
    "${T[@]}" send-keys -t sol q
    if wait_for 30 '^EXIT=0'; then
        n=$(grep -c 'hardware counters off (SOL_POISON_COUNTERS=off)' "$pane")
        [ "$n" = 1 ] && ok "--counters turned off: the notice once after the view" ||
            fail "--counters (off): the notice $n times after the view"
    else
        fail "--counters (off): no clean exit"
    fi
fi

echo "tui tests: $passed passed, $failures failed"
[ $failures -eq 0 ]
