#!/usr/bin/env bash
# sol chat and its sessions (issue 20): a conversation resumed from its
# stored segments gives bit-identical logits (f32 KV) to the same
# conversation never interrupted, for every KV scheme the engine runs; bad
# segments (corrupt, truncated, foreign, stale) are refused with one line
# and recomputed; eviction goes least recently used first; two processes on
# one session leave it loadable.
#
#   tests/chat/run.sh SOL_BIN WORKDIR
set -u
sol=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
export SOL_SESSIONS=$work/store
passed=0
failures=0
ok() { passed=$((passed + 1)); echo "chat: ok: $*"; }
fail() { failures=$((failures + 1)); echo "chat: FAIL: $*"; }
sed 's/"num_hidden_layers": 2/"num_hidden_layers": 6/' tests/fixtures/configs/tiny-llama.json >"$work/tiny6.json"
"$sol" synth "$work/tiny6.json" --wtype f32 -o "$work/gqa.gguf" >/dev/null 2>&1
"$sol" synth "$work/tiny6.json" --wtype f32 --kv mla:48,16 -o "$work/mla.gguf" >/dev/null 2>&1
"$sol" synth "$work/tiny6.json" --wtype q8_0 --seed 7 -o "$work/other.gguf" >/dev/null 2>&1
m1="The lighthouse keeper counted the ships that passed the rocks"
m2="Each night the light turned and the sea kept its own time"
m3="What did the keeper write in the log?"
field() { # json lines file, turn, field
    python3 -c "import json,sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    if d.get('turn') == int(sys.argv[2]): print(d[sys.argv[3]])" "$@"
}

# ---- resumed = uninterrupted, bit for bit, per scheme -----------------------------------
resume_case() { # label, model, args...
    local label=$1 model=$2
    shift 2
    local name="s-${label//[^a-z0-9]/_}"
    printf '%s\n%s\n' "$m1" "$m2" | "$sol" chat "$model" -n 12 --json --kvtype f32 --session "$name" "$@" \
        >"$work/$name.a" 2>"$work/$name.a.err" || { fail "$label: first run: $(tail -1 "$work/$name.a.err")"; return; }
    printf '%s\n' "$m3" | "$sol" chat "$model" -n 12 --json --kvtype f32 --session "$name" "$@" \
        >"$work/$name.b" 2>"$work/$name.b.err" || { fail "$label: resumed run: $(tail -1 "$work/$name.b.err")"; return; }
    printf '%s\n%s\n%s\n' "$m1" "$m2" "$m3" | "$sol" chat "$model" -n 12 --json --kvtype f32 "$@" \
        >"$work/$name.c" 2>/dev/null || { fail "$label: uninterrupted run failed"; return; }
    local resumed whole reused prefilled
    resumed=$(field "$work/$name.b" 3 logits_hash)
    whole=$(field "$work/$name.c" 3 logits_hash)
    reused=$(field "$work/$name.b" 3 tokens_reused)
    prefilled=$(field "$work/$name.b" 3 tokens_prefilled)
    if [ -n "$resumed" ] && [ "$resumed" = "$whole" ] && [ "$reused" = "$(field "$work/$name.c" 3 tokens_reused)" ] &&
        ! grep -q recomputing "$work/$name.b.err"; then
        ok "$label: turn 3 resumed from disk ($reused tokens loaded, $prefilled prefilled) = uninterrupted, logits $resumed"
    else
        fail "$label: resumed logits $resumed (reused $reused) vs uninterrupted $whole; $(tail -1 "$work/$name.b.err")"
    fi
}
resume_case "gqa:2" "$work/gqa.gguf"
resume_case "local:8" "$work/gqa.gguf" --kv gqa:2+local:8
resume_case "local:8/3+cla:2" "$work/gqa.gguf" --kv gqa:2+local:8/3+cla:2
resume_case "cla:3" "$work/gqa.gguf" --kv gqa:2+cla:3
resume_case "simlayer:0.5,8,2" "$work/gqa.gguf" --kv gqa:2+simlayer:0.5,8,2
resume_case "mla:48,16" "$work/mla.gguf"
resume_case "mla:48,16+local:8/2" "$work/mla.gguf" --kv mla:48,16+local:8/2
resume_case "q8_0 KV" "$work/gqa.gguf" --kvtype q8_0

# ---- another conversation with the same beginning ---------------------------------------
rm -rf "$SOL_SESSIONS"
printf '%s\n' "$m1" | "$sol" chat "$work/gqa.gguf" -n 4 --json --session first >/dev/null 2>&1
printf '%s\n%s\n' "$m1" "$m2" | "$sol" chat "$work/gqa.gguf" -n 4 --json --session second >"$work/shared1.out" 2>/dev/null
reused=$(field "$work/shared1.out" 1 tokens_reused)
prefilled=$(field "$work/shared1.out" 1 tokens_prefilled)
loaded=$(field "$work/shared1.out" 1 bytes_loaded)
if [ "$prefilled" = 1 ] && [ "${reused:-0}" -gt 0 ] && [ "${loaded%.*}" -gt 0 ]; then
    ok "a new session starting as a stored one: $reused tokens loaded ($loaded bytes), 1 prefilled for the logits"
else
    fail "a new session starting as a stored one: reused $reused, prefilled $prefilled, loaded $loaded"
fi

# ---- what the store holds: the analyzer's cache bytes ---------------------------------
loaded=$(field "$work/s-gqa_2.b" 3 bytes_loaded)
tokens=$(field "$work/s-gqa_2.b" 3 tokens_reused)
# 6 layers x (K, V) x 2 KV heads x 64 x 4 bytes (f32) per token
if [ "$loaded" = "$((tokens * 6 * 2 * 128 * 4))" ]; then
    ok "gqa:2: $tokens tokens loaded as $loaded bytes: 6 layers x K,V x 128 values x 4 bytes each"
else
    fail "gqa:2: $tokens tokens loaded as $loaded bytes, want $((tokens * 6 * 2 * 128 * 4))"
fi
loaded=$(field "$work/s-local_8.b" 3 bytes_loaded)
if [ "$loaded" = "$((8 * 6 * 2 * 128 * 4))" ]; then
    ok "local:8: a window's last 8 rows per layer loaded ($loaded bytes), not the history's $tokens"
else
    fail "local:8: loaded $loaded bytes, want $((8 * 6 * 2 * 128 * 4))"
fi

# ---- segments not to be used -----------------------------------------------------------
refused() { # label, what the notice says, mutation command...
    local label=$1 says=$2
    shift 2
    rm -rf "$SOL_SESSIONS"
    printf '%s\n' "$m1" | "$sol" chat "$work/gqa.gguf" -n 4 --json --session bad >/dev/null 2>&1
    local seg
    seg=$(ls "$SOL_SESSIONS"/segments/*.seg | head -1)
    "$@" "$seg"
    printf '%s\n' "$m2" | "$sol" chat "$work/gqa.gguf" -n 4 --json --session bad >"$work/bad.out" 2>"$work/bad.err"
    local status=$? notice
    notice=$(grep -c "recomputing" "$work/bad.err")
    if [ $status = 0 ] && [ "$notice" = 1 ] && grep -q "$says" "$work/bad.err" &&
        [ "$(field "$work/bad.out" 1 tokens_reused)" = 0 ]; then
        ok "$label: one line ($(grep recomputing "$work/bad.err" | cut -c1-90)...), recomputed, exit 0"
    else
        fail "$label: exit $status, $notice notices: $(head -3 "$work/bad.err" | tr '\n' ' ')"
    fi
}
flip() { printf '\xff' | dd of="$1" bs=1 seek=$(($(stat -c %s "$1") - 50)) count=1 conv=notrunc 2>/dev/null; }
cut_short() { truncate -s -100 "$1"; }
stale() { printf '\x63' | dd of="$1" bs=1 seek=8 count=1 conv=notrunc 2>/dev/null; }
foreign() { # a segment of another model under this one's name
    local keep=$1
    SOL_SESSIONS=$work/foreign bash -c "printf '%s\n' \"$m1\" | \"$sol\" chat \"$work/other.gguf\" -n 4 --session f" \
        >/dev/null 2>&1
    cp "$(ls "$work"/foreign/segments/*.seg | head -1)" "$keep"
}
refused "a flipped byte" "checksum" flip
refused "a truncated segment" "truncated" cut_short
refused "another format version" "format version" stale
refused "another model's segment" "another model" foreign

# ---- eviction: least recently used first ------------------------------------------------
rm -rf "$SOL_SESSIONS"
printf '%s\n' "$m1" | "$sol" chat "$work/gqa.gguf" -n 4 --session old >/dev/null 2>&1
old=$(ls "$SOL_SESSIONS"/segments/)
sleep 0.05
printf '%s\n' "$m2" | "$sol" chat "$work/gqa.gguf" -n 4 --session mid >/dev/null 2>&1
mid=$(ls "$SOL_SESSIONS"/segments/ | grep -v -x -F "$old")
sleep 0.05
printf '%s\n' "$m3" | "$sol" chat "$work/gqa.gguf" -n 4 --session old >/dev/null 2>&1 # old is used again
all_bytes=$(du -cb "$SOL_SESSIONS"/segments/*.seg | tail -1 | cut -f1)
sleep 0.05
# a cap that holds what is there but not what the next run adds: the least
# recently used (mid's, older than old's reuse) go, and only they
printf '%s\n' "$m3" | "$sol" chat "$work/gqa.gguf" -n 4 --session new --session-cap "$all_bytes" >/dev/null 2>&1
left=$(ls "$SOL_SESSIONS"/segments/)
gone=$(comm -23 <(echo "$old"; echo "$mid") <(echo "$left") | sort)
if [ -n "$mid" ] && [ "$gone" = "$(echo "$mid" | sort)" ]; then
    ok "eviction: the least recently used session's $(echo "$mid" | wc -l) segments went, the reused ones stayed"
else
    fail "eviction: gone $(echo $gone), mid's $(echo $mid)"
fi

# ---- two processes on one session --------------------------------------------------------
rm -rf "$SOL_SESSIONS"
for i in 1 2 3 4; do
    printf '%s\n%s\n' "$m1" "$m2" | "$sol" chat "$work/gqa.gguf" -n 8 --session shared >/dev/null 2>&1 &
done
wait
printf '%s\n' "$m3" | "$sol" chat "$work/gqa.gguf" -n 4 --json --session shared >"$work/shared.out" 2>"$work/shared.err"
status=$?
reused=$(head -1 "$work/shared.out" | python3 -c "import json,sys; print(json.load(sys.stdin)['tokens_reused'])")
# the processes start at once: a later one may resume an earlier one's
# conversation; whichever wrote the head last, it is whole
if [ $status = 0 ] && ! grep -q recomputing "$work/shared.err" && [ "${reused:-0}" -gt 0 ] &&
    [ -z "$(ls "$SOL_SESSIONS"/segments/ | grep tmp)" ]; then
    ok "four processes on one session: it resumes whole ($reused tokens), no temporary files left"
else
    fail "four processes on one session: $(head -2 "$work/shared.err" | tr '\n' ' ')"
fi

echo "chat: $passed passed, $failures failed"
[ $failures = 0 ]
