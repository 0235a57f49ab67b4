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
# small models; the probe, the sanitizer and the large models are skipped,
# and the speed figures are shown but not judged (SKIP).
# GPU_PYTHON: the python3 that has PyTorch (default python3); gguf-py is
# installed from build/wheels (make gpu-prep) where it cannot import it.
#   1. the probe: ceilings against the datasheet, the database, errors; the
#      plugin's cubins and PTX (tests/cuda/check_arch.sh)
#   2. the CUDA engine against the CPU engine: logits of synth models of
#      every weight type and of real shapes (SmolLM2, Llama-3.2-1B layers),
#      of the Gemma-2, Gemma-3 and Phi-3 families; what the plugin does not
#      run (MLA, MoE) refused in one line; batched decode against each
#      sequence alone; CUDA graph decode
#      against op-by-op decode (the same greedy ids) and the custom F16/BF16
#      matmuls against cuBLAS (--gemm cublas: the same logits to 1e-3)
#   3. compute-sanitizer memcheck of the probe and of an engine run
#   4. decode and prefill speed of the CUDA engine, beside the probe; the
#      CUDA graphs' decode speed-up (target 2x); Llama-2-7B shapes (8
#      layers) of F16, Q8_0 and Q4_K at batch 1 and 8 in % of the probed
#      read bandwidth (targets 85%, 75%, 75%); the custom matmuls' speed
#      against cuBLAS per decode shape (target 1x); a PyTorch peer
#      (bench/torch_peer.py, CUDA graphs) on the same F16 file (target 1x)
#   5. the live view on the GPU, captured through tmux
#   6. the CUDA autotuner: a short bounded tune, its winners right, the
#      counted DRAM bytes of each winner and baseline over the plan's
#   7. sol run --counters: a decode step's counted DRAM bytes beside the
#      plan's, the decode unchanged by counting
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
    return 0
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
judge() { # name, command...: as check, but an exit of 3 records SKIP (tests/gpu/figures.py)
    local name=$1 log
    shift
    log=$("$@" 2>&1)
    local rc=$?
    printf '%s\n' "$log" >>"$out/checks.log"
    case $rc in
    0) record "$name" PASS "$(tail -1 <<<"$log")" ;;
    3) record "$name" SKIP "$(tail -1 <<<"$log")" ;;
    *) record "$name" FAIL "$(tail -3 <<<"$log" | tr '\n' ' ')" ;;
    esac
}
dryflag=()
[ "$dry" = 1 ] && dryflag=(--dry)

# The Llama-2-7B shapes of section 4 (8 layers: 3.8 GB of F16) are written in
# the background while the sections before it run; the dry run uses the tiny
# models instead.
models=$out/models
mkdir -p "$models"
big7=()
if [ "$dry" != 1 ]; then
    for wt in f16 q8_0 q4_k; do
        "$sol" synth llama-2-7b --layers 8 --wtype "$wt" -o "$models/l7b8-$wt.gguf" >"$models/l7b8-$wt.log" 2>&1 &
        big7+=("$wt:$!")
    done
fi

# ---- 1. the probe --------------------------------------------------------------
if [ "$dry" = 1 ]; then
    record "probe" SKIP "dry run"
    record "cuda arch: sm_80 sm_89 sm_90 cubins, compute_90 PTX" SKIP "dry run"
else
    if command -v cuobjdump >/dev/null 2>&1; then
        check "cuda arch: sm_80 sm_89 sm_90 cubins, compute_90 PTX" bash tests/cuda/check_arch.sh build/sol-cuda.so \
            "$(command -v cuobjdump)" cubin:sm_80 cubin:sm_89 cubin:sm_90 ptx:compute_90
    else
        record "cuda arch: sm_80 sm_89 sm_90 cubins, compute_90 PTX" SKIP "no cuobjdump on PATH"
    fi
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
    record "refused on cuda: MLA, q8_0 KV, Mixtral, DeepSeek-V3" SKIP "dry run"
else
    refused_run "MLA" 'head_matmul' "$models/tiny-mla.gguf"
    refused_run "q8_0 KV" 'q8_0' "$models/tiny-f32.gguf" --kvtype q8_0
    # MoE: route and moe_ffn are NULL in the plugin; the engine names the first
    refused_run "Mixtral (MoE)" '\<(route|moe_ffn)\>' "$models/mixtral-q8_0.gguf"
    refused_run "DeepSeek-V3 (MoE, MLA)" '\<(route|moe_ffn)\>' "$models/deepseek-v3-q8_0.gguf"
fi
# batched decode (caps.max_seqs 8): 4 and 8 sequences in lockstep, every
# step's logits against each sequence decoded alone on the same backend
# (f32 activations and cache: the same sums up to order)
batch_check() { # label, model
    local label=$1 model=$2 file="$out/batch-check-$1.json"
    "$sol" bench "$model" --backend "$backend" --batch 4,8 --check -n 4 --activations f32 --kvtype f32 --no-store \
        -o json >"$file" 2>"$file.err" || { echo "bench: $(tail -1 "$file.err")"; return 1; }
    python3 -c "
import json, sys
rows = json.load(open(sys.argv[1]))
worst = max(r['check_max_rel_err'] for r in rows)
print('batches', [r['batch'] for r in rows], 'max relative logit error vs alone %.3g (bound 1e-4)' % worst)
sys.exit(0 if worst <= 1e-4 else 1)" "$file"
}
check "cuda batched = alone: tiny q4_k, batch 4 and 8" batch_check tiny-q4_k "$models/tiny-q4_k.gguf"
if [ "$dry" = 1 ]; then # the stand-in computes on the CPU under the sanitizers: the tiny model is enough
    record "cuda batched = alone: SmolLM2 shape q4_1, batch 4 and 8" SKIP "dry run"
else
    check "cuda batched = alone: SmolLM2 shape q4_1, batch 4 and 8" batch_check smollm2 "$models/smollm2-q4_1.gguf"
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

# CUDA graphs: a decode step replayed as one graph computes what the same
# step launched op by op computes: 32 greedy ids after a 64-token prompt (a
# synth model's vocabulary has a token per byte: BOS + 63 bytes); with
# --profile-every 4, steps 0, 4, 8, ... run op by op between graph steps
prompt64=${prompt:0:63}
graph_case() { # label, model, the graph run's extra arguments...
    local base="$out/graph-$1" model=$2
    shift 2
    "$sol" run "$model" --json -n 32 --temp 0 --ctx 512 -p "$prompt64" --backend "$backend" "$@" \
        >"$base.graph.jsonl" 2>"$base.graph.err" || { tail -1 "$base.graph.err"; return 1; }
    "$sol" run "$model" --json -n 32 --temp 0 --ctx 512 -p "$prompt64" --backend "$backend" --no-graph \
        >"$base.nograph.jsonl" 2>"$base.nograph.err" || { tail -1 "$base.nograph.err"; return 1; }
    python3 tests/gpu/figures.py same-ids "$base.graph.jsonl" "$base.nograph.jsonl" --json "$base.json"
}
if [ "$dry" = 1 ]; then # the CPU under the sanitizers: small shapes only
    check "cuda graphs = --no-graph: tiny q4_1, 32 greedy ids" graph_case tiny-q4_1 "$models/tiny-q4_1.gguf"
else
    check "cuda graphs = --no-graph: SmolLM2 shape q4_1, 32 greedy ids" graph_case smollm2-q4_1 "$models/smollm2-q4_1.gguf"
fi
check "cuda graphs = --no-graph: tiny f16, --profile-every 4" graph_case tiny-f16-profile4 "$models/tiny-f16.gguf" \
    --profile-every 4

# The custom F16/BF16 matmuls against cuBLAS's (--gemm cublas): the same
# logits to 1e-3 relative on the ~110-token prompt (two prefill chunks: the
# prefill's matmuls go through cuBLAS too) and 16 decode steps
gemm_case() { # label, model
    local base="$out/gemm-$1" model=$2 g
    for g in custom cublas; do
        "$sol" run "$model" --json -n 16 --temp 0 --ctx 512 -p "$prompt" --kvtype f32 --activations f32 \
            --backend "$backend" --gemm "$g" --logits-out "$base.$g.bin" >"$base.$g.jsonl" 2>"$base.$g.err" ||
            { echo "--gemm $g: $(tail -1 "$base.$g.err")"; return 1; }
    done
    python3 tests/gpu/compare_logits.py "$base.custom.jsonl" "$base.custom.bin" "$base.cublas.jsonl" \
        "$base.cublas.bin" 1e-3 --json "$base.json"
}
check "custom = cuBLAS (--gemm cublas): tiny f16" gemm_case tiny-f16 "$models/tiny-f16.gguf"
check "custom = cuBLAS (--gemm cublas): tiny bf16" gemm_case tiny-bf16 "$models/tiny-bf16.gguf"
[ "$dry" = 1 ] || check "custom = cuBLAS (--gemm cublas): Llama-3.2-1B f16" gemm_case llama-3.2-1b-f16 "$models/l1b-f16.gguf"

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
# every decode step op by op with its own events: the per-group table's times
"$sol" run "$models/$big.gguf" --backend "$backend" -n 16 --temp 0 --json -p "$prompt" --profile-every 1 \
    >"$out/ops-$big.jsonl" 2>/dev/null

# CUDA graphs' decode speed-up on the SmolLM2 shape (30 small layers: launch
# bound op by op): tg64 from an empty cache, one graph a step and no
# profiled steps (--profile-every 0) against --no-graph, in the same run
fast=smollm2-q4_1
[ "$dry" = 1 ] && fast=tiny-q4_1
check_out "$out/speed-graph.json" "bench: $fast tg64, CUDA graphs (--profile-every 0)" \
    "$sol" bench "$models/$fast.gguf" --backend "$backend" -p 0 -n 64 -r 3 --no-store -o json --profile-every 0
check_out "$out/speed-nograph.json" "bench: $fast tg64, --no-graph" \
    "$sol" bench "$models/$fast.gguf" --backend "$backend" -p 0 -n 64 -r 3 --no-store -o json --no-graph
judge "CUDA graph decode speed-up: $fast (target >= 2x)" python3 tests/gpu/figures.py graph-speedup \
    "$out/speed-graph.json" "$out/speed-nograph.json" --target 2 --label "$fast" --json "$out/fig-graph-speedup.json" "${dryflag[@]}"

# Llama-2-7B shapes, 8 layers (written in the background since the start):
# decode at batch 1 (tg64) and batch 8 (bench --batch 8: 64 lockstep steps in
# episodes of a few steps after an 8-token prompt), achieved GB/s (the
# plans' bytes over the time) in % of the probe's device-memory read
# measured in section 1
for job in "${big7[@]}"; do
    wt=${job%%:*}
    if wait "${job#*:}"; then
        record "synth: Llama-2-7B shape, 8 layers, $wt" PASS "$(tail -1 "$models/l7b8-$wt.log")"
    else
        record "synth: Llama-2-7B shape, 8 layers, $wt" FAIL "$(tail -1 "$models/l7b8-$wt.log")"
    fi
done
l7=l7b8
[ "$dry" = 1 ] && l7=tiny
declare -A bw_target=([f16]=85 [q8_0]=75 [q4_k]=75)
bench_batch() { # file, model, batch: sol bench --batch, a refusal of batched steps kept apart
    local file=$1 model=$2 batch=$3 rc
    "$sol" bench "$model" --backend "$backend" --batch "$batch" -n 64 --no-store -o json >"$file" 2>"$file.err"
    rc=$?
    [ $rc = 0 ] && return 0
    cat "$file.err"
    # the plugin's caps.max_seqs = 1 refuses batched steps before any (section 2 checks it)
    [ "$(wc -l <"$file.err")" -eq 1 ] && grep -q -- '--batch' "$file.err" && return 3
    return 1
}
for wt in f16 q8_0 q4_k; do
    m="$models/$l7-$wt.gguf"
    name="decode bandwidth: $l7 $wt"
    check_out "$out/bw-$wt-b1.json" "bench: $l7 $wt tg64 (batch 1)" \
        "$sol" bench "$m" --backend "$backend" -p 0 -n 64 -r 3 --no-store -o json --profile-every 0
    judge "$name, batch 1: % of probed read (target >= ${bw_target[$wt]}%)" python3 tests/gpu/figures.py bandwidth \
        "$out/probe.json" "$out/bw-$wt-b1.json" --target "${bw_target[$wt]}" --label "$l7 $wt batch 1" \
        --json "$out/fig-bw-$wt-b1.json" "${dryflag[@]}"
    err=$(bench_batch "$out/bw-$wt-b8.json" "$m" 8)
    case $? in
    0) judge "$name, batch 8: % of probed read (target >= ${bw_target[$wt]}%)" python3 tests/gpu/figures.py bandwidth \
        "$out/probe.json" "$out/bw-$wt-b8.json" --target "${bw_target[$wt]}" --label "$l7 $wt batch 8" \
        --json "$out/fig-bw-$wt-b8.json" "${dryflag[@]}" ;;
    3) record "$name, batch 8: % of probed read (target >= ${bw_target[$wt]}%)" SKIP "not measured: $err" ;;
    *) record "$name, batch 8: % of probed read (target >= ${bw_target[$wt]}%)" FAIL "$(tail -1 <<<"$err")" ;;
    esac
done

# The custom F16 matmuls against cuBLAS per decode shape: every decode step
# op by op with per-op events (--profile-every 1), 16 steps; per matmul op
# (one shape each: q, k, v, o 4096x4096, gate/up 4096->11008, down, the LM
# head) the median over layers and steps
shapes_case() {
    local g
    for g in custom cublas; do
        "$sol" run "$models/$l7-f16.gguf" --backend "$backend" --json --profile-every 1 --gemm "$g" -n 16 --temp 0 \
            --ctx 256 -p "$prompt64" >"$out/shapes-$g.jsonl" 2>"$out/shapes-$g.err" ||
            { echo "--gemm $g: $(tail -1 "$out/shapes-$g.err")"; return 1; }
    done
    python3 tests/gpu/figures.py gemm-shapes "$out/shapes-custom.jsonl" "$out/shapes-cublas.jsonl" --target 1.0 --label "$l7 f16" \
        --json "$out/fig-gemm-shapes.json" "${dryflag[@]}"
}
judge "custom vs cuBLAS per decode matmul shape: $l7 f16 (target >= 1.0x)" shapes_case

# A PyTorch peer (bench/torch_peer.py) on the same F16 file: first its
# logits against sol's on the same device (f32 peer, f32 activations and
# cache on both: 1e-4), then its batch-1 decode speed (f16, the step captured
# as a CUDA graph, 64 steps from an empty cache as tg64) against sol's tg64
# above. The dry run runs the peer on the CPU where GPU_PYTHON has torch.
py=${GPU_PYTHON:-python3}
peer_dev=cuda
[ "$dry" = 1 ] && peer_dev=cpu
peer_ready() {
    "$py" -c 'import torch' 2>/dev/null || { echo "no PyTorch for $py (GPU_PYTHON)"; return 3; }
    "$py" -c 'import gguf' 2>/dev/null && return 0
    ls build/wheels/gguf-*.whl >/dev/null 2>&1 || { echo "$py cannot import gguf and build/wheels has no gguf wheel (make gpu-prep)"; return 1; }
    # its numpy (and PyYAML) come from the PyTorch image; the wheel alone
    "$py" -m pip install -q --no-index --no-deps --find-links build/wheels --target "$out/pylib" gguf || return 1
    PYTHONPATH="$out/pylib" "$py" -c 'import sys; sys.path.insert(0, "bench"); import torch_peer; torch_peer.import_gguf()' ||
        { echo "gguf from build/wheels does not import"; return 1; }
    echo "gguf installed from build/wheels into $out/pylib"
}
peer_log=$(peer_ready 2>&1)
peer_rc=$?
export PYTHONPATH="$out/pylib${PYTHONPATH:+:$PYTHONPATH}"
case $peer_rc in
0) record "PyTorch peer: torch and gguf-py for $py" PASS "${peer_log:-both import}" ;;
3) record "PyTorch peer: torch and gguf-py for $py" SKIP "$(tail -1 <<<"$peer_log")" ;;
*) record "PyTorch peer: torch and gguf-py for $py" FAIL "$(tail -2 <<<"$peer_log" | tr '\n' ' ')" ;;
esac
peer_logits() { # label, model
    local base="$out/peercmp-$1" model=$2
    "$sol" run "$model" --json -n 16 --temp 0 --ctx 512 -p "$prompt64" --kvtype f32 --activations f32 \
        --backend "$backend" --logits-out "$base.sol.bin" >"$base.sol.jsonl" 2>"$base.sol.err" ||
        { echo "sol: $(tail -1 "$base.sol.err")"; return 1; }
    "$py" bench/torch_peer.py "$model" --device "$peer_dev" --dtype f32 -n 16 --reps 1 --prompt-from "$base.sol.jsonl" \
        --logits-out "$base.torch.bin" >"$base.torch.json" 2>"$base.torch.err" ||
        { echo "torch_peer: $(tail -1 "$base.torch.err")"; return 1; }
    python3 tests/gpu/compare_logits.py "$base.sol.jsonl" "$base.sol.bin" "$base.torch.json" "$base.torch.bin" 1e-4 \
        --json "$base.json"
}
peer_speed() {
    "$py" bench/torch_peer.py "$models/$l7-f16.gguf" --device "$peer_dev" --dtype f16 -n 64 --reps 3 \
        >"$out/peer-speed.json" 2>"$out/peer-speed.err" || { echo "torch_peer: $(tail -1 "$out/peer-speed.err")"; return 1; }
    python3 tests/gpu/figures.py peer "$out/bw-f16-b1.json" "$out/peer-speed.json" --target 1.0 --label "$l7 f16" \
        --json "$out/fig-peer.json" "${dryflag[@]}"
}
if [ $peer_rc = 0 ]; then
    check "PyTorch peer = sol: tiny f16 logits, rel 1e-4" peer_logits tiny-f16 "$models/tiny-f16.gguf"
    [ "$dry" = 1 ] || check "PyTorch peer = sol: $l7 f16 logits, rel 1e-4" peer_logits "$l7-f16" "$models/$l7-f16.gguf"
    judge "PyTorch peer: sol/PyTorch batch-1 decode tok/s, $l7 f16 (target >= 1.0x)" peer_speed
fi

# ---- 5. the live view --------------------------------------------------------------
# sol run's live view on the GPU, SmolLM2 shape (the dry run: tiny), in a
# detached tmux of 120x40 (a private server), captured once the table has
# numbers; kept in liveview.txt and the report
live=smollm2-q4_1
[ "$dry" = 1 ] && live=tiny-q4_1
liveview() {
    command -v tmux >/dev/null 2>&1 || { echo "no tmux on this machine: the live view was not captured"; return 3; }
    local T=(tmux -S "$out/tmux.sock" -f /dev/null) pane="$out/liveview.txt" _
    "${T[@]}" kill-server >/dev/null 2>&1
    "${T[@]}" new-session -d -s sol -x 120 -y 40 "$(printf '%q ' env LANG=C.UTF-8 LC_ALL=C.UTF-8 \
        SOL_TEST_STEP_DELAY_MS=40 SOL_DB="$SOL_DB" "$sol" run "$models/$live.gguf" --backend "$backend" --tui \
        -n 400 --temp 0 --ctx 512 -p "The speed of light is"); sleep 60" || { echo "tmux new-session failed"; return 1; }
    for _ in $(seq 1 120); do
        sleep 0.5
        "${T[@]}" capture-pane -p -J -t sol >"$pane" 2>/dev/null
        grep -qE '^ total +[0-9.]+ (ns|us|ms|s) ' "$pane" && grep -qE 'generated text \(([3-9]|[1-9][0-9]+) tokens\)' "$pane" &&
            break
    done
    sleep 1
    "${T[@]}" capture-pane -p -J -t sol >"$pane" 2>/dev/null
    "${T[@]}" send-keys -t sol q
    sleep 0.5
    "${T[@]}" kill-server >/dev/null 2>&1
    grep -qE '^ total +[0-9.]+ (ns|us|ms|s) ' "$pane" || { echo "no total row after 60 s: $(head -3 "$pane" | tr '\n' ' ')"; return 1; }
    echo "$(grep -m1 -E 'backend' "$pane" | sed 's/  */ /g') / $(grep -m1 -E '^ tok/s' "$pane" | sed 's/  */ /g')"
}
judge "live view on $backend: $live (tmux 120x40, liveview.txt)" liveview

# ---- 6. the CUDA autotuner -----------------------------------------------------------
# A short bounded search (random, 12 variants and the default a problem) on
# one F16 and one Q4_K shape at 1 and 8 inputs, about half a minute of GPU
# time (mostly NVRTC): every stored winner must be a right answer, no valid
# variant wrong; the log shows tuned vs default vs cuBLAS and the share of
# the probed read bandwidth, and CUPTI's counted DRAM bytes over the plan's
# for the winner and the baseline (or the notice that counting is off
# here). A rerun must measure nothing.
if [ "$dry" = 1 ]; then
    record "tune --backend cuda" SKIP "dry run (the test backend has no tunable kernels)"
else
    export SOL_CUDA_CACHE=$out/cuda-kernels
    rm -rf "$SOL_CUDA_CACHE"
    tune_shapes="matvec:f16:4096x4096 matvec:q4_k:4096x14336"
    for shape in $tune_shapes; do
        check_out "$out/tune-${shape//:/-}.txt" "tune --backend cuda: $shape, random, budget 12" timeout 300 \
            "$sol" tune --shape "$shape" --backend cuda --batches 1,8 --strategy random --budget 12
    done
    check "tune: winners right, no valid variant wrong; tuned vs default vs cuBLAS; counted DRAM / plan bytes" \
        python3 tests/gpu/check_tune.py "$SOL_DB" "$out/probe.json" 4 "$out/checks.log"
    "$sol" db best --backend cuda >"$out/db-best-cuda.txt" 2>&1
    check "db best --backend cuda: winners with their counters" grep -q 'DRAM/plan' "$out/db-best-cuda.txt"
    trials() { python3 -c "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT count(*) FROM trial WHERE kernel LIKE 'cuda.%'\").fetchone()[0])" "$SOL_DB"; }
    before=$(trials)
    "$sol" tune --shape matvec:q4_k:4096x14336 --backend cuda --batches 1,8 --strategy random --budget 12 \
        >"$out/tune-rerun.txt" 2>&1
    rc=$?
    after=$(trials)
    if [ $rc = 0 ] && [ "$before" = "$after" ] && [ "$before" -gt 0 ]; then
        record "tune: a rerun measures nothing" PASS "$after trials before and after"
    else
        record "tune: a rerun measures nothing" FAIL "exit $rc, $before trials before, $after after"
    fi
    # Decode attention: the Llama-2-7B shape's (32 heads over 32 KV heads of
    # 128, f16 cache) at 4096 slots, 1 and 8 sequences, bounded as above;
    # then the engine with that winner against its built-in attention on the
    # same file and --ctx: the same logits to 1e-3 (the winner is launched
    # from an NVRTC image, with its own head chunks and splits).
    check_out "$out/tune-attention.txt" "tune --backend cuda: attention:f16:32x32x128x4096, random, budget 12" \
        timeout 300 "$sol" tune --shape attention:f16:32x32x128x4096 --backend cuda --batches 1,8 --strategy random \
        --budget 12
    attn_case() { # the tuned and the built-in attention: the same logits to 1e-3 (f32 activations, f16 cache)
        local base="$out/attn" model="$models/$l7-q4_k.gguf" mode
        for mode in tuned builtin; do
            "$sol" run "$model" --json -n 16 --temp 0 --ctx 4096 -p "$prompt64" --kvtype f16 --activations f32 \
                --backend cuda $([ $mode = builtin ] && echo --no-tuned) --logits-out "$base.$mode.bin" \
                >"$base.$mode.jsonl" 2>"$base.$mode.err" || { echo "$mode: $(tail -1 "$base.$mode.err")"; return 1; }
        done
        grep -q 'attention tuned at 4096' "$base.tuned.err" ||
            { echo "the winner was not loaded: $(grep -m1 'cuda:' "$base.tuned.err")"; return 1; }
        python3 tests/gpu/compare_logits.py "$base.tuned.jsonl" "$base.tuned.bin" "$base.builtin.jsonl" \
            "$base.builtin.bin" 1e-3 --json "$base.json"
    }
    # and the fused RMSNorm matvec of its q, k and v (4096x4096 after the
    # attention norm), so the comparison below runs a fused winner too
    check_out "$out/tune-matvec-rmsnorm.txt" "tune --backend cuda: matvec_rmsnorm:q4_k:4096x4096, random, budget 12" \
        timeout 300 "$sol" tune --shape matvec_rmsnorm:q4_k:4096x4096 --backend cuda --batches 1 --strategy random \
        --budget 12
    check "tuned attention and fused norm matvec = built-in: $l7 q4_k, --ctx 4096, logits to 1e-3" attn_case
    # The engine with the winners: the Llama-2-7B shape's 4096x4096 (q, k, v,
    # o) tuned at batch 1 in Q4_K too (F16's is above), then decode tok/s of
    # section 4's files tuned, --no-tuned and (F16) --gemm cublas, recorded
    # (no target here: the per-shape table above is what is judged).
    "$sol" tune --shape matvec:q4_k:4096x4096 --backend cuda --batches 1 --strategy random --budget 12 \
        >"$out/tune-q4_k-4096.txt" 2>&1
    tok_s() { python3 -c "import sys; sys.path.insert(0, 'tests/gpu'); import figures as f; \
print('%.1f' % f.tg_tok_s(f.tg_row(f.load(sys.argv[1]))))" "$1" 2>/dev/null || echo "?"; }
    for wt in f16 q4_k; do
        m="$models/$l7-$wt.gguf"
        modes=(tuned no-tuned)
        [ $wt = f16 ] && modes+=(cublas)
        figures="" ok=PASS
        for mode in "${modes[@]}"; do
            extra=()
            case $mode in no-tuned) extra=(--no-tuned) ;; cublas) extra=(--no-tuned --gemm cublas) ;; esac
            f="$out/tuned-$wt-$mode.json"
            "$sol" bench "$m" --backend cuda -p 0 -n 32 -r 3 --no-store -o json "${extra[@]}" >"$f" 2>"$f.err" || ok=FAIL
            figures="$figures $mode $(tok_s "$f") tok/s;"
        done
        record "tuned decode: $l7 $wt ($(grep -m1 'shapes tuned' "$out/tuned-$wt-tuned.json.err"))" $ok "${figures# }"
    done
fi

# ---- 7. counted decode steps ---------------------------------------------------------
# sol run --counters replays a decode step's graph under CUPTI (steps 1 and
# 17 of 40 here): the same greedy ids and logits as without, and the counted
# DRAM bytes of the step beside the plan's (a SKIP with the notice where
# CUPTI cannot count). The dry run's test plugin fakes the counter
# (SOL_POISON_COUNTERS=fixed: 3 MB read, 1 MB written).
counters_case() { # label, model
    local base="$out/counters-$1" model=$2
    "$sol" run "$model" --json -n 40 --temp 0 --ctx 512 -p "$prompt64" --backend "$backend" --counters \
        >"$base.counted.jsonl" 2>"$base.counted.err" || { tail -1 "$base.counted.err"; return 1; }
    "$sol" run "$model" --json -n 40 --temp 0 --ctx 512 -p "$prompt64" --backend "$backend" \
        >"$base.plain.jsonl" 2>"$base.plain.err" || { tail -1 "$base.plain.err"; return 1; }
    python3 tests/gpu/check_counters.py "$base.counted.jsonl" "$base.plain.jsonl" "${dryflag[@]}"
}
if [ "$dry" = 1 ]; then
    SOL_POISON_COUNTERS=fixed judge "run --counters: tiny q4_1, counted DRAM / plan bytes" \
        counters_case tiny-q4_1 "$models/tiny-q4_1.gguf"
else
    judge "run --counters: SmolLM2 shape q4_1, counted DRAM / plan bytes" \
        counters_case smollm2-q4_1 "$models/smollm2-q4_1.gguf"
    judge "run --counters: Llama-2-7B shape q4_k (8 layers), counted DRAM / plan bytes" \
        counters_case l7b8-q4_k "$models/l7b8-q4_k.gguf"
fi

echo "gpu tests: $fails failed ($((SECONDS - started)) s)"
python3 tests/gpu/report.py "$out"
[ $fails -eq 0 ]
