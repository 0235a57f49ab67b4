#!/usr/bin/env bash
# Crash safety of the database: `sol tune` and `sol bench` killed with
# SIGKILL at random moments, KILLS times each, on one database. After every
# kill the file passes PRAGMA integrity_check and holds at least what the
# killed process had printed as done (tune prints a trial's progress line
# after storing it; bench prints a row after storing it); then a resume
# finishes the search and measures nothing twice (one row per
# configuration), and a resume after that measures nothing at all. Last,
# two tune processes on one database at once both finish with all their
# rows and no "database is locked". And a full disk (full_disk.sh).
#
#   tests/crash/run.sh SOL_BIN MODEL.gguf      (KILLS=50 by default)
set -u
sol=$1
model=$2
kills=${KILLS:-50}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
db=$work/sol.db
export SOL_DB=$db
passed=0
failures=0
ok() { passed=$((passed + 1)); echo "crash test: ok: $*"; }
fail() { failures=$((failures + 1)); echo "crash test: FAIL: $*"; }
count() { sqlite3 "$db" "$1" 2>/dev/null || echo -1; }
integrity() { [ ! -e "$db" ] || [ "$(sqlite3 "$db" 'PRAGMA integrity_check' 2>&1)" = ok ]; }

# kill_at MAX_S CMD...: runs it, SIGKILLs it after 0.05..MAX_S s (or lets it end)
kill_at() {
    local max=$1
    shift
    "$@" >"$work/out" 2>"$work/err" &
    local pid=$!
    sleep "$(awk -v r=$RANDOM -v m="$max" 'BEGIN { printf "%.2f", 0.05 + r / 32768 * (m - 0.05) }')"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
}

# ---- tune ------------------------------------------------------------------------
# each kill on a shape of its own (N grows), so what the file holds for that
# shape is exactly what that process stored; the last shape is then resumed
bad=0
stored_all=0
for ((i = 1; i <= kills; i++)); do
    n=$((2048 + 64 * i))
    kill_at 1.5 "$sol" tune --shape matmul:q8_0:${n}x2048x8 --strategy exhaustive --reps 5
    done_trials=$(grep -oE 'trials +[0-9]+/' "$work/err" | tail -1 | grep -oE '[0-9]+')
    stored=$(count "SELECT count(*) FROM trial WHERE shape = '${n}x2048x8'")
    stored_all=$((stored_all + stored))
    if ! integrity; then
        fail "tune kill $i: integrity_check: $(sqlite3 "$db" 'PRAGMA integrity_check' 2>&1 | head -2)"
        bad=1
        break
    fi
    if [ "${done_trials:-0}" -gt "$stored" ]; then
        fail "tune kill $i: the process printed $done_trials trials done, the file holds $stored"
        bad=1
        break
    fi
done
[ $bad = 0 ] && ok "tune: $kills SIGKILLs mid-search, integrity ok each time, every printed trial stored ($stored_all rows)"
shape=matmul:q8_0:${n}x2048x8
"$sol" tune --shape $shape --strategy exhaustive --reps 5 >/dev/null 2>"$work/err"
rc=$?
total=$(count "SELECT count(*) FROM trial WHERE shape = '${n}x2048x8'")
distinct=$(count "SELECT count(DISTINCT params_json) FROM trial WHERE shape = '${n}x2048x8'")
if [ $rc = 0 ] && [ "$total" = "$distinct" ] && [ "$total" -gt 0 ]; then
    ok "tune resumed the last killed search to the end: $total trials, each configuration once"
else
    fail "tune resume: exit $rc, $total rows for $distinct configurations: $(tail -1 "$work/err")"
fi
before=$(count "SELECT count(*) FROM trial")
"$sol" tune --shape $shape --strategy exhaustive --reps 5 >/dev/null 2>"$work/err"
grep -q 'configurations are measured' "$work/err" && [ "$(count "SELECT count(*) FROM trial")" = "$before" ] &&
    ok "a second resume measured nothing" || fail "a second resume: $(tail -2 "$work/err")"
# killed after its last trial but before its winner was stored: every
# configuration measured, no winner; the resume stores one, measuring nothing
sqlite3 "$db" "DELETE FROM best WHERE shape = '${n}x2048x8'"
"$sol" tune --shape $shape --strategy exhaustive --reps 5 >"$work/out" 2>"$work/err"
rc=$?
if [ $rc = 0 ] && [ "$(count "SELECT count(*) FROM best WHERE shape = '${n}x2048x8'")" = 1 ] &&
    [ "$(count "SELECT count(*) FROM trial")" = "$before" ] && grep -q "${n}x2048x8" "$work/out"; then
    ok "a resume with every trial stored but no winner stores the winner, measuring no trial again"
else
    fail "a resume without a stored winner: exit $rc: $(tail -2 "$work/err")"
fi

# ---- bench -----------------------------------------------------------------------
printed=0
bad=0
for ((i = 1; i <= kills; i++)); do
    kill_at 4 "$sol" bench "$model" -p 16 -n 8 -r 3 -t 1,2
    printed=$((printed + $(grep -c '^| tiny' "$work/out")))
    stored=$(count "SELECT count(*) FROM run")
    if ! integrity; then
        fail "bench kill $i: integrity_check failed"
        bad=1
        break
    fi
    if [ "$printed" -gt "$stored" ]; then
        fail "bench kill $i: $printed rows printed in all, the file holds $stored"
        bad=1
        break
    fi
done
[ $bad = 0 ] && ok "bench: $kills SIGKILLs, integrity ok each time, every printed row stored ($stored rows)"

# ---- two writers at once -----------------------------------------------------------
"$sol" tune --shape matvec:q8_0:4096x1024 --strategy exhaustive >"$work/a.out" 2>"$work/a.err" &
a=$!
"$sol" tune --shape matvec:q4_0:1024x4096 --strategy exhaustive >"$work/b.out" 2>"$work/b.err" &
b=$!
wait $a
ra=$?
wait $b
rb=$?
na=$(count "SELECT count(*) FROM trial WHERE shape = '4096x1024x1'")
nb=$(count "SELECT count(*) FROM trial WHERE shape = '1024x4096x1'")
ta=$(grep -oE 'trials +[0-9]+/[0-9]+' "$work/a.err" | tail -1 | grep -oE '[0-9]+$')
tb=$(grep -oE 'trials +[0-9]+/[0-9]+' "$work/b.err" | tail -1 | grep -oE '[0-9]+$')
if [ $ra = 0 ] && [ $rb = 0 ] && [ "$na" = "$ta" ] && [ "$nb" = "$tb" ] && ! grep -qi locked "$work/a.err" "$work/b.err"; then
    ok "two tune processes at once: both finished, $na + $nb trials, nothing locked out"
else
    fail "two writers: exits $ra/$rb, rows $na/$ta and $nb/$tb: $(tail -1 "$work/a.err") / $(tail -1 "$work/b.err")"
fi
integrity && ok "integrity_check at the end" || fail "integrity_check at the end"

# ---- a full disk (tests/crash/full_disk.sh, in a mount namespace of its own) ---------
mkdir -p "$work/fs"
if unshare -m true 2>/dev/null; then ns=(unshare -m); else ns=(unshare -rm); fi
if "${ns[@]}" bash "$(dirname "$0")/full_disk.sh" "$sol" "$model" "$work/fs" >"$work/full" 2>&1; then
    ok "$(grep -c ': ok:' "$work/full") full-disk checks (tune and bench on a full 1 MiB tmpfs, tune filling it)"
else
    fail "full disk ($(tail -1 "$work/full")):"
    grep -v ': ok:' "$work/full" | head -5
fi

echo "crash tests: $passed passed, $failures failed"
[ $failures -eq 0 ]
