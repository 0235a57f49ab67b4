#!/usr/bin/env bash
# The database on a full disk: a 1 MiB tmpfs mounted at DIR (run inside a
# mount namespace of its own, `unshare -m`, so nothing outlives the test).
# A database with stored trials, then the disk filled to the last byte:
# tune and bench each fail with one line naming the full disk, exit 1, the
# file byte-identical. Then 40 KiB left: tune runs until a write fails, one
# line, exit 1, and every row stored before is still there, integrity ok.
# And sol chat's session store on the full disk.
#
#   unshare -m tests/crash/full_disk.sh SOL_BIN MODEL.gguf DIR
set -u
sol=$1
model=$2
dir=$3
passed=0
failures=0
ok() { passed=$((passed + 1)); echo "full disk: ok: $*"; }
fail() { failures=$((failures + 1)); echo "full disk: FAIL: $*"; }
mount -t tmpfs -o size=1m tmpfs "$dir" || { echo "full disk: FAIL: cannot mount a tmpfs on $dir"; exit 1; }
export SOL_DB=$dir/sol.db
"$sol" tune --shape matvec:q8_0:1024x1024 --strategy exhaustive >/dev/null 2>"$dir/../err" ||
    { echo "full disk: FAIL: the first tune failed: $(tail -1 "$dir/../err")"; exit 1; }
rows() { sqlite3 "$SOL_DB" "SELECT shape, params_json, median_s FROM trial ORDER BY 1, 2"; }
rows >"$dir/../before"
sum=$(sha256sum <"$SOL_DB")
last_line_says_full() { # exit status, stderr file, what
    local line
    line=$(tail -1 "$2")
    if [ "$1" = 1 ] && grep -q 'the disk holding it is full' <<<"$line" && [ "$(grep -c '^sol ' "$2")" = 1 ]; then
        return 0
    fi
    fail "$3: exit $1, last line: $line"
    return 1
}

dd if=/dev/zero of="$dir/filler" bs=4k 2>/dev/null # ENOSPC ends it
"$sol" tune --shape matvec:q8_0:2048x1024 --strategy exhaustive >/dev/null 2>"$dir/../err"
last_line_says_full $? "$dir/../err" "tune on a full disk" && [ "$(sha256sum <"$SOL_DB")" = "$sum" ] &&
    ok "tune on a full disk: one line ($(tail -1 "$dir/../err" | cut -c1-60)...), exit 1, the file byte-identical"
"$sol" bench "$model" -p 8 -n 4 -r 1 >/dev/null 2>"$dir/../err"
last_line_says_full $? "$dir/../err" "bench on a full disk" && [ "$(sha256sum <"$SOL_DB")" = "$sum" ] &&
    ok "bench on a full disk: one line, exit 1 before measuring, the file byte-identical"

rm -f "$dir/filler" "$SOL_DB-wal" "$SOL_DB-shm"
dd if=/dev/zero of="$dir/filler" bs=4k 2>/dev/null
truncate -s -40k "$dir/filler"
"$sol" tune --shape matvec:q8_0:4096x1024 --shape matvec:q8_0:4096x2048 --strategy exhaustive >/dev/null \
    2>"$dir/../err"
status=$?
rm -f "$dir/filler"
if last_line_says_full $status "$dir/../err" "tune filling the disk"; then
    kept=$(rows | grep -cxFf "$dir/../before")
    if [ "$(sqlite3 "$SOL_DB" 'PRAGMA integrity_check')" = ok ] && [ "$kept" = "$(wc -l <"$dir/../before")" ]; then
        ok "tune filling the disk: one line, exit 1, integrity ok, all $(wc -l <"$dir/../before") rows stored before kept"
    else
        fail "tune filling the disk: integrity $(sqlite3 "$SOL_DB" 'PRAGMA integrity_check' | head -1), rows before lost"
    fi
fi
# sol chat's stored KV on a full disk: the turn goes on with one notice, exit
# 0, the stored segments and the session's head byte-identical, no temporary
# file left; with room again the session resumes from them.
rm -f "$dir/filler"
export SOL_SESSIONS=$dir/sessions
if printf 'hello there\n' | "$sol" chat "$model" -n 4 --session fd >/dev/null 2>"$dir/../err"; then
    stored=$(cd "$SOL_SESSIONS" && find . -type f ! -name lock -exec sha256sum {} + | sort)
    dd if=/dev/zero of="$dir/filler" bs=4k 2>/dev/null
    printf 'more words\n' | "$sol" chat "$model" -n 4 --session fd >/dev/null 2>"$dir/../err"
    status=$?
    after=$(cd "$SOL_SESSIONS" && find . -type f ! -name lock -exec sha256sum {} + | sort)
    rm -f "$dir/filler"
    printf 'again\n' | "$sol" chat "$model" -n 4 --session fd --json >"$dir/../out" 2>"$dir/../err2"
    if [ $status = 0 ] && [ "$(grep -c 'goes on unsaved' "$dir/../err")" -ge 1 ] && [ "$stored" = "$after" ] &&
        ! grep -q recomputing "$dir/../err2" && grep -q '"tokens_reused":[1-9]' "$dir/../out"; then
        ok "sol chat --session on a full disk: a notice ($(grep -m1 unsaved "$dir/../err" | cut -c1-70)...), exit 0, the stored segments byte-identical and resumed after"
    else
        fail "sol chat --session on a full disk: exit $status, $(head -2 "$dir/../err" | tr '\n' ' ') / $(head -1 "$dir/../err2")"
    fi
else
    fail "the first sol chat --session failed: $(tail -1 "$dir/../err")"
fi
echo "full disk: $passed passed, $failures failed"
[ $failures = 0 ] && [ $passed = 4 ]
