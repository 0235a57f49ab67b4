#!/usr/bin/env bash
# Usage: run_unit.sh LABEL BINARY... Runs every cmocka test binary, then
# prints one summary line over all of them; exits non-zero when any test
# failed or any binary crashed.
set -u
label=$1; shift
total_pass=0; total_fail=0; total_skip=0; crashed=0
for bin in "$@"; do
    out=$("$bin" 2>&1); rc=$?
    printf '%s\n' "$out"
    pass=$(printf '%s\n' "$out" | grep -o '\[  PASSED  \] [0-9]*' | tail -1 | grep -o '[0-9]*$')
    fail=$(printf '%s\n' "$out" | grep -o '\[  FAILED  \] [0-9]*' | tail -1 | grep -o '[0-9]*$')
    skip=$(printf '%s\n' "$out" | grep -o '\[  SKIPPED \] [0-9]*' | tail -1 | grep -o '[0-9]*$')
    total_skip=$((total_skip + ${skip:-0}))
    total_pass=$((total_pass + ${pass:-0}))
    total_fail=$((total_fail + ${fail:-0}))
    if [ $rc -ne 0 ] && [ -z "${fail:-}" ]; then
        echo "CRASH: $bin exited with $rc" >&2; crashed=$((crashed + 1))
    fi
done
echo "$label tests: $total_pass passed, $total_fail failed, $total_skip skipped, $crashed binaries crashed"
# In CI nothing may be skipped: a missing model or tool there is a failure
if [ "${CI:-}" = true ] && [ $total_skip -gt 0 ]; then
    echo "$label tests: FAIL: $total_skip skipped in CI (CI=true); every test must run there (see the SKIPPED lines)" >&2
    exit 1
fi
[ $total_fail -eq 0 ] && [ $crashed -eq 0 ]
