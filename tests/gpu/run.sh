#!/usr/bin/env bash
# GPU tests: run on a machine with an NVIDIA GPU (CI has none; the team runs
# this when a GPU is lent). Skips, saying so, where no GPU is visible.
#   bash tests/gpu/run.sh            results under build/gpu (or $GPU_OUT)
# Uses build/sol and build/sol-cuda.so when present (built elsewhere and
# carried), else builds them. Each check prints PASS/FAIL; exit 1 on a FAIL.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${GPU_OUT:-build/gpu}
mkdir -p "$out"
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu tests: SKIPPED: no NVIDIA GPU visible (nvidia-smi finds none); nothing was checked"
    exit 0
fi
nvidia-smi -L
[ -x build/sol ] || make build/sol || exit 1
[ -f build/sol-cuda.so ] || make cuda || exit 1
export SOL_DB=$out/sol.db
rm -f "$SOL_DB" "$SOL_DB"-wal "$SOL_DB"-shm
fails=0
check() { # name, command...
    local name=$1
    shift
    if "$@"; then echo "PASS $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}

# 1. The probe, table for people and JSON for the checks (two runs: the
#    table's figures are independent repetitions of the same measurements).
check "probe table" build/sol hw probe --backend cuda
check "probe json" bash -c "build/sol hw probe --backend cuda --format json > '$out/probe.json'"
check "probe figures against the datasheet" python3 tests/gpu/check_probe.py "$out/probe.json" "$SOL_DB"

# 2. Errors: a device that is not there, a clear one-line message, exit 1.
err=$(build/sol hw probe --backend cuda --device 99 2>&1)
check "missing device exits 1 with a message" test $? -eq 1 -a -n "$(grep -- '--device 99' <<<"$err")"

# 3. Memory safety of the plugin's kernels and copies (small sizes).
if command -v compute-sanitizer >/dev/null 2>&1; then
    check "compute-sanitizer memcheck" compute-sanitizer --tool memcheck --error-exitcode 9 \
        build/sol hw probe --backend cuda --size-mib 64 --gemm-n 256 --reps 5 --format json \
        >"$out/sanitizer.log" 2>&1
    tail -3 "$out/sanitizer.log"
else
    echo "SKIP compute-sanitizer memcheck: compute-sanitizer is not installed"
fi

echo "gpu tests: $fails failed"
[ $fails -eq 0 ]
