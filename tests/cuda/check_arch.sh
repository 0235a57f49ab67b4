#!/usr/bin/env bash
# The CUDA plugin's device code for every chip the Makefile's CUDA_ARCH
# names: lists the cubins (cuobjdump --list-elf) and PTX (--list-ptx) in
# the plugin and fails naming each wanted one that is missing. Every module
# is built with every -gencode, so the wanted cubins also appear in equally
# many modules (a module whose code defines nothing carries empty cubins but
# no PTX, so PTX is only required to be there).
#
# usage: tests/cuda/check_arch.sh PLUGIN.so CUOBJDUMP WANT...
#   WANT: cubin:sm_NN (machine code) or ptx:compute_NN (PTX)
set -u
so=$1 cuobjdump=$2
shift 2
if [ ! -f "$so" ]; then
    echo "cuda arch test: FAIL: no $so"
    exit 1
fi
elf=$("$cuobjdump" --list-elf "$so" 2>&1) || { echo "cuda arch test: FAIL: $cuobjdump --list-elf $so: $elf"; exit 1; }
ptx=$("$cuobjdump" --list-ptx "$so" 2>&1) || { echo "cuda arch test: FAIL: $cuobjdump --list-ptx $so: $ptx"; exit 1; }
# "ELF file    1: sol-cuda.1.sm_80.cubin", "PTX file    1: sol-cuda.1.sm_90.ptx"
count() { grep -cE "^$1 file +[0-9]+: .*\\.$2\\.$3\$" <<<"$4"; }
passed=0 failed=0 most=0 counts=() # most: the largest cubin count
for want in "$@"; do
    kind=${want%%:*} arch=${want#*:}
    case $kind in
    cubin) n=$(count ELF "$arch" cubin "$elf") ;;
    ptx) n=$(count PTX "sm_${arch#compute_}" ptx "$ptx") ;;
    *) echo "cuda arch test: FAIL: unknown WANT $want (cubin:sm_NN or ptx:compute_NN)"; exit 1 ;;
    esac
    counts+=("$n")
    [ "$kind" = cubin ] && [ "$n" -gt "$most" ] && most=$n
done
i=0
for want in "$@"; do
    n=${counts[$i]}
    i=$((i + 1))
    if [ "$n" -eq 0 ]; then
        echo "cuda arch test: FAIL: $so has no ${want#*:} ${want%%:*}"
        failed=$((failed + 1))
    elif [ "${want%%:*}" = cubin ] && [ "$n" -lt "$most" ]; then
        echo "cuda arch test: FAIL: $so has ${want#*:} ${want%%:*}s in $n modules, others in $most"
        failed=$((failed + 1))
    else
        echo "cuda arch test: ok: ${want#*:} ${want%%:*} in $n modules"
        passed=$((passed + 1))
    fi
done
echo "cuda arch tests: $passed passed, $failed failed"
[ $failed -eq 0 ]
