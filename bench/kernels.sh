#!/usr/bin/env bash
# sol_dot GB/s per weight type, scalar reference vs AVX2, side by side in one
# run, then f32 vs 8-bit activations (sol_dot_q8) for the types that have
# integer dots (one thread, matrices several times the L3). Arguments go to
# the driver:
#   bench/kernels.sh [build/bench/kernel_bench] [--cols N] [--mib MiB] [--reps N] [--types f32,q4_1]
#                     [--resident]   (an L2-sized matrix read repeatedly: compute, not DRAM)
set -euo pipefail
bin=build/bench/kernel_bench
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
    bin=$1
    shift
fi
model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
l3=$(cat /sys/devices/system/cpu/cpu0/cache/index3/size 2>/dev/null || echo '?')
echo "cpu: ${model:-unknown}, L3 $l3, $(nproc) CPUs"
exec "$bin" "$@"
