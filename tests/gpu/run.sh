#!/usr/bin/env bash
# Every GPU check and benchmark, one command, under 8 minutes: run it on a
# machine with an NVIDIA GPU (CI has none; the team runs it when a GPU is
# lent). Skips, saying so, where no GPU is visible.
#   GPU_OUT=DIR bash tests/gpu/run.sh     results under DIR (default build/gpu):
#                                         report.md, report.json, logs
# Uses build/sol and build/sol-cuda.so when present (built elsewhere and
# carried), else builds them. Every check runs whatever failed before it;
# each prints PASS/FAIL and lands in the report; exit 1 on any FAIL.
# GPU_DRY_RUN=1 checks this script itself on a machine without a GPU: the
# engine sections run with GPU_BACKEND (e.g. the test plugin,
# build/test/poison.so, with SOL_BIN=build/test/sol) in place of cuda, on
# small models; the probe, the sanitizer and the large models are skipped.
#   1. the probe: ceilings against the datasheet, the database, errors
#   2. the CUDA engine against the CPU engine: logits of synth models of
#      every weight type and of real shapes (SmolLM2, Llama-3.2-1B layers),
#      of the Gemma-2, Gemma-3 and Phi-3 families; what the plugin does not
#      run (MLA, MoE, batched steps) refused in one line
#   3. compute-sanitizer memcheck of the probe and of an engine run
#   4. decode and prefill speed of the CUDA engine, beside the probe
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${GPU_OUT:-build/gpu}
mkdir -p "$out"
dry=${GPU_DRY_RUN:-0}
sol=${SOL_BIN:-build/sol}
backend=${GPU_BACKEND:-cuda}
if [ "$dry" = 1 ]; then
    echo "dry run: $sol with --backend $backend in place of a GPU" | tee "$out/gpu.txt"
elif ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu tests: SKIPPED: no NVIDIA GPU visible (nvidia-smi finds none); nothing was checked"
    exit 0
else
    nvidia-smi -L | tee "$out/gpu.txt"
fi
[ -x "$sol" ] || make "$sol" || exit 1
[ "$dry" = 1 ] || [ -f build/sol-cuda.so ] || make cuda || exit 1
export SOL_DB=$out/sol.db
rm -f "$SOL_DB" "$SOL_DB"-wal "$SOL_DB"-shm
checks=$out/checks.tsv
: >"$checks"
fails=0
started=$SECONDS

record() { # name, PASS|FAIL|SKIP, detail
    printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$checks"
    echo "$2 $1${3:+: $3}"
    [ "$2" = FAIL ] && fails=$((fails + 1))
}
check_out() { # file, name, command...: check, the command's stdout kept in file
    local file=$1 name=$2
    shift 2
    check "$name" bash -c '"$@" >"$0"' "$file" "$@"
}
check() { # name, command... (its last output line is the detail)
    local name=$1 log
    shift
    log=$("$@" 2>&1)
    local rc=$?
    printf '%s\n' "$log" >>"$out/checks.log"
    if [ $rc = 0 ]; then record "$name" PASS "$(tail -1 <<<"$log")"; else record "$name" FAIL "$(tail -3 <<<"$log" | tr '\n' ' ')"; fi
}

# ---- 1. the probe --------------------------------------------------------------
if [ "$dry" = 1 ]; then
    record "probe" SKIP "dry run"
else
    check "probe table" "$sol" hw probe --backend cuda
    check_out "$out/probe.json" "probe json" "$sol" hw probe --backend cuda --format json
    check "probe figures against the datasheet" python3 tests/gpu/check_probe.py "$out/probe.json" "$SOL_DB"
    err=$("$sol" hw probe --backend cuda --device 99 2>&1)
    rc=$?
    if [ $rc -eq 1 ] && grep -q -- '--device 99' <<<"$err"; then
        record "missing device: exit 1, one line" PASS "$err"
    else
        record "missing device: exit 1, one line" FAIL "exit $rc: $err"
    fi
fi

# ---- 2. the CUDA engine against the CPU engine ----------------------------------
# Both with f32 activations: the CPU's exact path (--activations f32) and
# the CUDA backend's only one; the same cache type on both sides. The
# tolerance is the relative error the f32 numpy reference is held to.
models=$out/models
mkdir -p "$models"
for wt in f32 f16 bf16 q8_0 q4_0 q4_1 q4_k q6_k; do
    "$sol" synth tests/fixtures/configs/tiny-llama.json --wtype "$wt" -o "$models/tiny-$wt.gguf" >/dev/null 2>&1
done
"$sol" synth smollm2-135m --wtype q4_1 -o "$models/smollm2-q4_1.gguf" >/dev/null 2>&1
"$sol" synth bench/vs-llamacpp/llama-3.2-1b.json --layers 2 --wtype q4_k -o "$models/l1b2-q4_k.gguf" >/dev/null 2>&1
[ "$dry" = 1 ] || "$sol" synth bench/vs-llamacpp/llama-3.2-1b.json --wtype f16 -o "$models/l1b-f16.gguf" >/dev/null 2>&1
families="gemma2 gemma3 phi3"
for fam in $families; do
    for wt in f32 q8_0; do
        "$sol" synth "tests/fixtures/configs/tiny-$fam.json" --wtype "$wt" -o "$models/$fam-$wt.gguf" >/dev/null 2>&1
    done
done
prompt="The speed of light in vacuum is a universal physical constant exactly equal to 299,792,458 metres per second."
compare() { # label, model, kvtype, extra args...
    local label=$1 model=$2 kv=$3
    shift 3
    local base="$out/cmp-$label"
    if ! "$sol" run "$model" --json -n 16 --temp 0 --ctx 512 -p "$prompt" --kvtype "$kv" --activations f32 \
        --logits-out "$base.cpu.bin" "$@" >"$base.cpu.json" 2>"$base.cpu.err"; then
        record "cuda = cpu: $label" FAIL "cpu run: $(tail -1 "$base.cpu.err")"
        return
    fi
    if ! "$sol" run "$model" --json -n 16 --temp 0 --ctx 512 -p "$prompt" --kvtype "$kv" --activations f32 --backend "$backend" \
        --logits-out "$base.gpu.bin" "$@" >"$base.gpu.json" 2>"$base.gpu.err"; then
        record "cuda = cpu: $label" FAIL "cuda run: $(tail -1 "$base.gpu.err")"
        return
    fi
    check "cuda = cpu: $label" python3 tests/gpu/compare_logits.py "$base.cpu.json" "$base.cpu.bin" \
        "$base.gpu.json" "$base.gpu.bin" 1e-4 --json "$base.json"
}
for wt in f32 f16 bf16 q8_0 q4_0 q4_1 q4_k q6_k; do
    compare "tiny-$wt-f32cache" "$models/tiny-$wt.gguf" f32
done
compare "tiny-q4_k-f16cache" "$models/tiny-q4_k.gguf" f16
compare "smollm2-shape-q4_1" "$models/smollm2-q4_1.gguf" f32
compare "smollm2-shape-q4_1-f16cache" "$models/smollm2-q4_1.gguf" f16
compare "llama-3.2-1b-2-layers-q4_k" "$models/l1b2-q4_k.gguf" f32
# a 16-token window as a ring of 16 + 63 slots (the ~110-token prompt wraps
# it) with two layers sharing one cache (cla)
compare "tiny-f32-local16-cla2-ring" "$models/tiny-f32.gguf" f32 --kv gqa:2+local:16+cla:2
# SimLayerKV: one of the two layers goes lazy after the prompt and keeps 4
# sinks + a 16-token window (a sinks-then-ring cache); scored on each backend
compare "tiny-f32-simlayer-sinks" "$models/tiny-f32.gguf" f32 --kv gqa:2+simlayer:0.5,16,4
# the families' ops (ABI 4): Gemma-2's embedding scale, soft-capped scores
# (50) and logits (30), GeGLU, post-norms and 16-token windows on every other
# layer (the prompt wraps them); Gemma-3's q/k head norms, query scale and
# two RoPE bases; Phi-3's fused attn_qkv and gate+up cut into views
for fam in $families; do
    for wt in f32 q8_0; do
        compare "$fam-$wt-f32cache" "$models/$fam-$wt.gguf" f32
    done
done
compare "gemma2-q8_0-f16cache" "$models/gemma2-q8_0.gguf" f16
# what the plugin does not run yet is refused in one line, before any work
"$sol" synth tests/fixtures/configs/tiny-llama.json --wtype f32 --kv mla:48,16 -o "$models/tiny-mla.gguf" >/dev/null 2>&1
for fam in mixtral deepseek-v3; do
    "$sol" synth "tests/fixtures/configs/tiny-$fam.json" --wtype q8_0 -o "$models/$fam-q8_0.gguf" >/dev/null 2>&1
done
refused() { # label, what the line must name (an ERE), sol's arguments...
    local label=$1 want=$2 rc
    shift 2
    "$sol" "$@" >"$out/refused.out" 2>"$out/refused.err"
    rc=$?
    if [ $rc = 0 ]; then
        record "refused on cuda: $label" FAIL "it ran"
    elif [ $rc -lt 126 ] && [ "$(wc -l <"$out/refused.err")" -eq 1 ] && grep -qE -- "$want" "$out/refused.err"; then
        record "refused on cuda: $label" PASS "exit $rc: $(cat "$out/refused.err")"
    else
        record "refused on cuda: $label" FAIL "exit $rc, want one line naming '$want': $(head -3 "$out/refused.err" | tr '\n' ' ')"
    fi
}
refused_run() { # label, what the line must name, model, run arguments...
    local label=$1 want=$2
    shift 2
    refused "$label" "$want" run "$@" --backend "$backend" -n 2 -p hi
}
if [ "$dry" = 1 ]; then # the stand-in backend runs the CPU kernels, which have all of these
    record "refused on cuda: MLA, q8_0 KV, Mixtral, DeepSeek-V3, bench --batch 4" SKIP "dry run"
else
    refused_run "MLA" 'head_matmul' "$models/tiny-mla.gguf"
    refused_run "q8_0 KV" 'q8_0' "$models/tiny-f32.gguf" --kvtype q8_0
    # MoE: route and moe_ffn are NULL in the plugin; the engine names the first
    refused_run "Mixtral (MoE)" '\<(route|moe_ffn)\>' "$models/mixtral-q8_0.gguf"
    refused_run "DeepSeek-V3 (MoE, MLA)" '\<(route|moe_ffn)\>' "$models/deepseek-v3-q8_0.gguf"
    # caps.max_seqs = 1: a batched decode is refused before any step
    refused "bench --batch 4" '--batch' bench "$models/tiny-f32.gguf" --batch 4 --backend "$backend" -n 4
fi
# a prompt longer than one prefill chunk (64 rows) and a sliding window would
# need more rows than --logits-out keeps: compare the final logits hash path
# through the summary's generated ids instead
long=$(printf "%s " $(seq 1 100))
"$sol" run "$models/tiny-q8_0.gguf" --json -n 8 --temp 0 -p "$long" --activations f32 --kvtype f32 \
    >"$out/long.cpu.json" 2>/dev/null
"$sol" run "$models/tiny-q8_0.gguf" --json -n 8 --temp 0 -p "$long" --kvtype f32 --activations f32 --backend "$backend" \
    >"$out/long.gpu.json" 2>"$out/long.gpu.err"
check "cuda = cpu: 3-chunk prefill, same greedy ids" python3 -c "
import json, sys
c, g = (json.loads(open(p).read().splitlines()[-1]) for p in sys.argv[1:3])
print('cpu', c['generated_ids'], 'cuda', g['generated_ids'])
sys.exit(0 if c['generated_ids'] == g['generated_ids'] else 1)" "$out/long.cpu.json" "$out/long.gpu.json"

# sol chat --session on the device: the cache's rows go down to segments and
# back up into a fresh process's device cache; its next turn's first-token
# logits must hash the same as the uninterrupted conversation's
chat_case() {
    local store="$out/sessions" a="$out/chat.a" b="$out/chat.b" c="$out/chat.c"
    rm -rf "$store"
    printf 'The lighthouse keeper counted ships\nEach night the light turned\n' |
        SOL_SESSIONS=$store "$sol" chat "$models/tiny-f32.gguf" -n 8 --json --kvtype f32 --backend "$backend" \
        --session g >"$a" 2>/dev/null &&
        printf 'What did the keeper write?\n' |
        SOL_SESSIONS=$store "$sol" chat "$models/tiny-f32.gguf" -n 8 --json --kvtype f32 --backend "$backend" \
            --session g >"$b" 2>/dev/null &&
        printf 'The lighthouse keeper counted ships\nEach night the light turned\nWhat did the keeper write?\n' |
        "$sol" chat "$models/tiny-f32.gguf" -n 8 --json --kvtype f32 --backend "$backend" >"$c" 2>/dev/null &&
        python3 -c "
import json, sys
turn3 = lambda p: [d for d in map(json.loads, open(p)) if d.get('turn') == 3][0]
b, c = turn3(sys.argv[1]), turn3(sys.argv[2])
print('resumed', b['logits_hash'], b['tokens_reused'], 'uninterrupted', c['logits_hash'], c['tokens_reused'])
sys.exit(0 if b['logits_hash'] == c['logits_hash'] and b['tokens_reused'] == c['tokens_reused'] > 0 else 1)" "$b" "$c"
}
check "cuda: sol chat --session resumed = uninterrupted" chat_case

# ---- 3. memory safety ----------------------------------------------------------------
if [ "$dry" = 1 ]; then
    record "compute-sanitizer memcheck" SKIP "dry run"
elif command -v compute-sanitizer >/dev/null 2>&1; then
    check "compute-sanitizer memcheck: probe" compute-sanitizer --tool memcheck --error-exitcode 9 \
        "$sol" hw probe --backend cuda --size-mib 64 --gemm-n 256 --reps 5 --format json
    check "compute-sanitizer memcheck: engine" compute-sanitizer --tool memcheck --error-exitcode 9 \
        "$sol" run "$models/tiny-q4_k.gguf" --backend "$backend" -n 4 --temp 0 --ctx 128 -p "$prompt" --plain
    # the ABI 4 ops: scale, soft-caps, GeGLU (Gemma-2); head norms (Gemma-3)
    for fam in gemma2 gemma3; do
        check "compute-sanitizer memcheck: engine, $fam" compute-sanitizer --tool memcheck --error-exitcode 9 \
            "$sol" run "$models/$fam-q8_0.gguf" --backend "$backend" -n 4 --temp 0 --ctx 128 -p "$prompt" --plain
    done
else
    record "compute-sanitizer memcheck" SKIP "compute-sanitizer is not installed"
fi

# ---- 4. speed -------------------------------------------------------------------------
big=l1b-f16
[ "$dry" = 1 ] && big=tiny-f16 # the CPU under the sanitizers: small shapes only
check_out "$out/bench-$big.json" "bench: $big (pp128, tg64)" \
    "$sol" bench "$models/$big.gguf" --backend "$backend" -p 128 -n 64 -r 3 --no-store -o json
check_out "$out/bench-smollm2-q4_1.json" "bench: SmolLM2 shape q4_1 (pp128, tg64)" \
    "$sol" bench "$models/smollm2-q4_1.gguf" --backend "$backend" -p 128 -n 64 -r 3 --no-store -o json
"$sol" run "$models/$big.gguf" --backend "$backend" -n 16 --temp 0 --json -p "$prompt" >"$out/ops-$big.jsonl" 2>/dev/null

echo "gpu tests: $fails failed ($((SECONDS - started)) s)"
python3 tests/gpu/report.py "$out"
[ $fails -eq 0 ]
