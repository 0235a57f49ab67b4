#!/usr/bin/env bash
# Side-by-side CPU benchmark of sol against llama.cpp (the engine people use).
#
#   bench/vs-llamacpp.sh [-t THREADS] [-p PP] [-n TG] [-r REPS] [-m MODELS]
#                        [--probe] [--omp-passive] [--no-greedy] [--build-only]
#
# 1. Builds llama.cpp's CPU backend (llama-bench, llama-simple, and a small
#    greedy-ids helper, bench/vs-llamacpp/greedy-ids.cpp) from the vendored
#    copy in the llama-cpp-python sdist on PyPI, into build/vs-llamacpp/.
#    llama.cpp is a measurement peer only: nothing of it is linked into sol.
# 2. Models: SmolLM2-135M-Instruct Q4_1 (tools/fetch-model.sh) and two
#    `sol synth` models of the Llama-3.2-1B shape (Q8_0, F16).
# 3. ppP and tgN tok/s of both engines on the same GGUF with the same thread
#    count, repetitions interleaved (sol, llama.cpp, sol, ...) so that load
#    from other processes hits both alike; a markdown table of mean +- sd.
# 4. Greedy agreement on SmolLM2: the first 32 greedy token ids of each
#    engine for 3 prompts, and the first position where they diverge.
#
# Options (defaults in brackets):
#   -t N         threads for both engines [nproc]
#   -p N         prompt tokens for the prefill test, ppN [512]
#   -n N         decode steps for the generation test, tgN [128]
#   -r N         repetitions per engine, interleaved [5]
#   -m LIST      comma list of smollm2, 1b-q8_0, 1b-f16 [all three]
#   --probe      run `sol hw probe` first, into a database private to this run
#                (SOL_DB=<run dir>/sol.db), so % SOL uses measured bandwidth
#                instead of the estimate (your own database is not touched)
#   --omp-passive  run llama-bench with OMP_WAIT_POLICY=passive: on a shared,
#                oversubscribed machine llama.cpp's spinning OpenMP threads can
#                collapse 10x (seen here at load 3-4 on 2 vCPUs); off by default,
#                so llama.cpp runs as people run it
#   --isa I      llama.cpp's instruction set: native (-march=native: AVX-512 and
#                VNNI where the host has them) or avx2 (AVX2/FMA/F16C/BMI2 only,
#                the ISA sol's kernels use and sol's target machine has); each
#                is built once into its own folder [native]
#   --no-greedy  skip the greedy agreement check
#   --build-only build llama.cpp and the models, then stop
# Quick run: bench/vs-llamacpp.sh -p 64 -n 32 -r 3
#
# Environment: SOL (sol binary) [build/sol]; LCP_VERSION (llama-cpp-python
# sdist version) [0.3.36]; JOBS (build parallelism) [2].
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
here=bench/vs-llamacpp
work=build/vs-llamacpp
lcp_version=${LCP_VERSION:-0.3.36}
jobs=${JOBS:-2}
sol=${SOL:-build/sol}
threads=$(nproc)
pp=512
tg=128
reps=5
models=smollm2,1b-q8_0,1b-f16
greedy=1
build_only=0
probe=0
lcp_env=()
isa=native

die() { echo "vs-llamacpp: error: $*" >&2; exit 1; }
log() { echo "vs-llamacpp: $*" >&2; }
# Prints a command (shell-quoted) to the script's stderr (fd 4, so that
# redirections of the command itself do not swallow it), then runs it.
exec 4>&2
show() { printf '+' >&4; printf ' %q' "$@" >&4; printf '\n' >&4; }
run() { show "$@"; "$@"; }
posint() { [[ $2 =~ ^[0-9]+$ ]] || die "$1 wants a non-negative integer, got '$2'"; }

while [ $# -gt 0 ]; do
    case $1 in
        -t) [ $# -ge 2 ] || die "-t needs a value"; posint -t "$2"; threads=$2; shift 2 ;;
        -p) [ $# -ge 2 ] || die "-p needs a value"; posint -p "$2"; pp=$2; shift 2 ;;
        -n) [ $# -ge 2 ] || die "-n needs a value"; posint -n "$2"; tg=$2; shift 2 ;;
        -r) [ $# -ge 2 ] || die "-r needs a value"; posint -r "$2"; reps=$2; shift 2 ;;
        -m) [ $# -ge 2 ] || die "-m needs a value"; models=$2; shift 2 ;;
        --no-greedy) greedy=0; shift ;;
        --isa) [ $# -ge 2 ] || die "--isa needs a value"; isa=$2; shift 2
            case $isa in native|avx2) ;; *) die "--isa: expected native or avx2, got '$isa'" ;; esac ;;
        --probe) probe=1; shift ;;
        --omp-passive) lcp_env=(env OMP_WAIT_POLICY=passive); shift ;;
        --build-only) build_only=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[ "$threads" -ge 1 ] || die "-t must be at least 1"
[ "$reps" -ge 1 ] || die "-r must be at least 1"
[ "$pp" -ge 1 ] || [ "$tg" -ge 1 ] || [ "$greedy" = 1 ] || die "-p and -n are both 0 and --no-greedy: nothing to do"
IFS=, read -ra model_list <<<"$models"
for m in "${model_list[@]}"; do
    case $m in smollm2|1b-q8_0|1b-f16) ;; *) die "-m: unknown model '$m' (smollm2, 1b-q8_0, 1b-f16)" ;; esac
done

# ---------------------------------------------------------------- tools ----
# Installs Debian packages when a tool is missing (as tools/deps.sh does).
need_tools() {
    local missing=() tool pkg
    for pair in cmake:cmake g++:g++ make:make python3:python3 tar:tar; do
        tool=${pair%%:*} pkg=${pair#*:}
        command -v "$tool" >/dev/null 2>&1 || missing+=("$pkg")
    done
    python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing missing packages: ${missing[*]}"
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install them"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >/dev/null || die "apt-get update failed"
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
}

# ------------------------------------------------------------ llama.cpp ----
src_dir=$work/src/llama_cpp_python-$lcp_version
lcp_dir=$src_dir/vendor/llama.cpp
bld=$work/build
isa_flags=(-DGGML_NATIVE=ON)
if [ "$isa" = avx2 ]; then
    bld=$work/build-avx2
    isa_flags=(-DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
               -DGGML_BMI2=ON -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF
               -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF)
fi
bin=$bld/bin
stamp=$bld/.sol-vs-llamacpp-stamp
greedy_src=$here/greedy-ids.cpp
greedy_bin=$bin/sol-greedy-ids
lcp_commit=unknown

build_llamacpp() {
    local tarball=$work/src/llama_cpp_python-$lcp_version.tar.gz
    if [ ! -d "$lcp_dir" ]; then
        mkdir -p "$work/src"
        if [ ! -s "$tarball" ]; then
            log "fetching llama-cpp-python==$lcp_version sdist from PyPI"
            run python3 -m pip download --quiet --no-deps --no-binary :all: \
                "llama-cpp-python==$lcp_version" -d "$work/src" \
                || die "pip download llama-cpp-python==$lcp_version failed"
        fi
        [ -s "$tarball" ] || die "expected $tarball after pip download"
        log "extracting $tarball"
        tar -xzf "$tarball" -C "$work/src" || die "cannot extract $tarball"
        [ -f "$lcp_dir/CMakeLists.txt" ] || die "$lcp_dir/CMakeLists.txt missing: the sdist layout changed"
    fi
    # The sdist has no .git, so llama.cpp's build-info would say "unknown";
    # llama-cpp-python's CHANGELOG names the llama.cpp commit each release vendors.
    lcp_commit=$(awk -v v="[$lcp_version]" '
        index($0, "## " v) == 1 { on = 1; next }
        on && /^## / { exit }
        on && match($0, /ggml-org\/llama\.cpp@[0-9a-f]+/) { print substr($0, RSTART + 19, RLENGTH - 19); exit }
    ' "$src_dir/CHANGELOG.md" 2>/dev/null || true)
    [ -n "$lcp_commit" ] || lcp_commit=unknown
    local want="llama-cpp-python=$lcp_version llama.cpp=$lcp_commit greedy=$(cksum <"$greedy_src")"
    [ "$isa" = native ] || want="$want isa=$isa"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$bin/llama-bench" ] \
        && [ -x "$bin/llama-simple" ] && [ -x "$greedy_bin" ]; then
        log "llama.cpp $lcp_commit (llama-cpp-python $lcp_version) already built in $bld"
        return 0
    fi
    need_tools
    rm -f "$stamp"
    log "building llama.cpp $lcp_commit (vendored in llama-cpp-python $lcp_version), CPU only, -j$jobs"
    local t0=$SECONDS
    run cmake -S "$lcp_dir" -B "$bld" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
        -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF "${isa_flags[@]}" -DLLAMA_CURL=OFF \
        -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
        -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_EXAMPLES=ON \
        -DLLAMA_BUILD_COMMIT="$lcp_commit" >"$work/cmake-configure.log" 2>&1 \
        || { tail -n 30 "$work/cmake-configure.log" >&2; die "cmake configure failed (log: $work/cmake-configure.log)"; }
    # Progress: cmake prints "[ NN%] Building ..." lines; show one line per step.
    local st
    set +e
    run cmake --build "$bld" --config Release -j "$jobs" --target llama-bench llama-simple 2>&1 \
        | tee "$work/cmake-build.log" | grep --line-buffered -E '^\[ *[0-9]+%\]' | sed -u 's/^/  /' >&2
    st=${PIPESTATUS[0]}
    set -e
    [ "$st" = 0 ] && [ -x "$bin/llama-bench" ] && [ -x "$bin/llama-simple" ] \
        || { tail -n 30 "$work/cmake-build.log" >&2; die "llama.cpp build failed (log: $work/cmake-build.log)"; }
    # The greedy-ids helper links the static libraries just built.
    local libs=()
    for lib in src/libllama.a ggml/src/libggml.a ggml/src/libggml-cpu.a ggml/src/libggml-base.a; do
        [ -f "$bld/$lib" ] || die "expected $bld/$lib after the build"
        libs+=("$bld/$lib")
    done
    local omp=()
    grep -q '^GGML_OPENMP:BOOL=ON' "$bld/CMakeCache.txt" && omp=(-fopenmp)
    run g++ -std=c++17 -O2 -I"$lcp_dir/include" -I"$lcp_dir/ggml/include" "$greedy_src" \
        -o "$greedy_bin" "${libs[@]}" "${omp[@]}" -lpthread -ldl -lm \
        || die "compiling $greedy_src against llama.cpp failed"
    echo "$want" >"$stamp"
    log "llama.cpp build took $((SECONDS - t0)) s (-j$jobs)"
}

# --------------------------------------------------------------- models ----
synth_config=$here/llama-3.2-1b.json
declare -A model_path model_desc
prepare_model() {
    local key=$1 path wtype
    case $key in
        smollm2)
            path=$(bash tools/fetch-model.sh) || die "tools/fetch-model.sh failed"
            model_desc[$key]="SmolLM2-135M-Instruct Q4_1 (tools/fetch-model.sh)" ;;
        1b-q8_0|1b-f16)
            wtype=${key#1b-}
            path=$work/models/llama-3.2-1b-synth.$wtype.gguf
            model_desc[$key]="sol synth $synth_config --wtype $wtype (Llama-3.2-1B shape, random weights)"
            # Cached; remade when the config changes (delete the file to force it).
            local want
            want="$(cksum <"$synth_config") $wtype"
            if [ -s "$path" ] && [ "$(cat "$path.stamp" 2>/dev/null)" = "$want" ]; then
                log "using cached $path"
            else
                mkdir -p "$work/models"
                run "$sol_bin" synth "$synth_config" --wtype "$wtype" -o "$path" >&2 \
                    || die "sol synth $synth_config --wtype $wtype failed"
                echo "$want" >"$path.stamp"
            fi ;;
    esac
    [ -s "$path" ] || die "model file $path missing after preparing $key"
    model_path[$key]=$path
}

# ------------------------------------------------------------------ run ----
[ -x "$sol" ] || die "$sol not found or not executable: build sol first (make) or set SOL"
run_dir=$work/runs/$(date +%Y%m%d-%H%M%S)
mkdir -p "$run_dir"
# Snapshot the binary: other builds may replace build/sol during a long run.
cp "$sol" "$run_dir/sol"
sol_bin=$run_dir/sol
sol_version=$("$sol_bin" --version) || die "$sol_bin --version failed"

need_tools
build_llamacpp
for m in "${model_list[@]}"; do prepare_model "$m"; done
if [ "$build_only" = 1 ]; then
    rm -rf "$run_dir"
    log "--build-only: llama.cpp and the models are ready"
    exit 0
fi

if [ "$probe" = 1 ]; then
    export SOL_DB=$run_dir/sol.db
    log "probing this machine (sol hw probe --threads $threads) into $SOL_DB"
    run "$sol_bin" hw probe --threads "$threads" >"$run_dir/probe.txt" 2>"$run_dir/probe.err" \
        || { sed 's/^/    /' "$run_dir/probe.err" >&2; die "sol hw probe failed"; }
fi
mem_bw=$("$sol_bin" hw show cpu | sed -n 's/^ *memory bandwidth *//p' | head -n 1 | tr -s ' ')
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
echo "# sol vs llama.cpp ($(date -u '+%Y-%m-%d %H:%M UTC'))"
echo
echo "- sol: $sol_version, binary sha256 $(sha256sum "$sol_bin" | cut -c1-16) built $(date -u -r "$sol" '+%Y-%m-%d %H:%M UTC')"
echo "  (snapshot of $sol taken at start: $sol_bin)"
echo "- llama.cpp: ggml-org/llama.cpp@$lcp_commit as vendored by llama-cpp-python $lcp_version (sdist from PyPI;"
echo "  commit from its CHANGELOG.md, the sdist has no git metadata), CPU backend, Release, static,"
if [ "$isa" = avx2 ]; then
    echo "  --isa avx2: GGML_NATIVE=OFF with AVX/AVX2/FMA/F16C/BMI2 on and every AVX-512 and VNNI option off"
else
    echo "  --isa native: GGML_NATIVE=ON (-march=native: AVX-512 and VNNI where this host has them)"
fi
echo "- machine: ${cpu:-unknown CPU}, nproc $(nproc), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- SOL ceiling used by sol: memory bandwidth ${mem_bw:-unknown} (\`sol hw show cpu\`$([ "$probe" = 1 ] && echo ", after --probe"))"
echo "- llama.cpp environment: ${lcp_env[*]:-none set (OpenMP default wait policy; see --omp-passive)}"
echo "- threads: $threads for both engines"
if [ "$pp" -gt 0 ] || [ "$tg" -gt 0 ]; then
    echo "- tests pp$pp (prefill $pp tokens into an empty cache) and tg$tg ($tg single-token decode steps"
    echo "  from an empty cache; 0 = skipped); $reps repetitions each, interleaved sol, llama.cpp, sol, ...;"
    echo "  each invocation does one untimed warm-up then one timed repetition"
fi
echo "- raw outputs and stderr: $run_dir"
echo

# Checks that llama.cpp loads a model (vocabulary included) and evaluates one
# token; prints llama.cpp's own error and stops when it does not.
llama_loads() {
    local key=$1 err=$run_dir/load-$1.err
    if ! run "$greedy_bin" -m "${model_path[$key]}" -t "$threads" -n 1 --ids 0 >"$run_dir/load-$key.json" 2>"$err"; then
        echo "llama.cpp refuses ${model_path[$key]}; its stderr:" >&2
        sed 's/^/    /' "$err" >&2
        die "llama.cpp cannot load $key (${model_path[$key]})"
    fi
}

# Seconds as "XmYYs".
hms() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

bench_manifest=$run_dir/bench.tsv
: >"$bench_manifest"
total_units=0 # model bytes x reps: the ETA assumes time proportional to bytes
declare -A model_bytes
for m in "${model_list[@]}"; do
    model_bytes[$m]=$(stat -c %s "${model_path[$m]}")
    total_units=$((total_units + model_bytes[$m] * reps))
done
done_units=0
bench_t0=$SECONDS
if [ "$pp" -gt 0 ] || [ "$tg" -gt 0 ]; then
    log "benchmarking ${model_list[*]}: pp$pp tg$tg, $reps interleaved reps, $threads threads"
    for m in "${model_list[@]}"; do
        path=${model_path[$m]}
        llama_loads "$m"
        for rep in $(seq "$reps"); do
            t_rep=$SECONDS
            sol_out=$run_dir/sol-$m-$rep.json
            lcp_out=$run_dir/llamacpp-$m-$rep.json
            run "$sol_bin" bench "$path" -p "$pp" -n "$tg" -r 1 -t "$threads" -o json --no-store \
                >"$sol_out" 2>"$run_dir/sol-$m-$rep.err" \
                || { sed 's/^/    /' "$run_dir/sol-$m-$rep.err" >&2; die "sol bench failed on $m rep $rep"; }
            run "${lcp_env[@]}" "$bin/llama-bench" -m "$path" -t "$threads" -p "$pp" -n "$tg" -r 1 -o json \
                >"$lcp_out" 2>"$run_dir/llamacpp-$m-$rep.err" \
                || { tail -n 20 "$run_dir/llamacpp-$m-$rep.err" | sed 's/^/    /' >&2; die "llama-bench failed on $m rep $rep"; }
            printf '%s\tsol\t%s\t%s\n%s\tllamacpp\t%s\t%s\n' "$m" "$rep" "$sol_out" "$m" "$rep" "$lcp_out" \
                >>"$bench_manifest"
            done_units=$((done_units + model_bytes[$m]))
            elapsed=$((SECONDS - bench_t0))
            eta=$(((total_units - done_units) * elapsed / done_units))
            log "$m rep $rep/$reps ($(hms $((SECONDS - t_rep)))): $(python3 "$here/report.py" rep "$sol_out" "$lcp_out"); load $(cut -d' ' -f1 /proc/loadavg); elapsed $(hms "$elapsed"), ETA ~$(hms "$eta")"
        done
    done
    echo "## Throughput (tok/s, mean ± sd over $reps reps; threads $threads)"
    echo
    python3 "$here/report.py" bench "$bench_manifest" || die "report.py bench failed"
    echo
    echo "sol/llama.cpp > 1 means sol is faster. sol GB/s: bytes sol's op plan moves / measured time;"
    echo "% SOL: measured tok/s / the analyzer's speed of light for the same test on this CPU; the llama.cpp"
    echo "column applies the same ceiling to llama.cpp's tok/s. Above 100%: the ceiling is below what this"
    echo "machine delivers: the unmeasured estimate (see --probe), a probe taken under load, or for pp an fp32"
    echo "FMA peak that int8/f16 dot-product kernels exceed. llama-bench runs with its defaults"
    echo "(flash attention auto, batch 2048, ubatch 512, f16 KV cache, mmap, CPU weight repacking where it"
    echo "applies); sol bench with its own (f16 KV cache). Bench wall time $(hms $((SECONDS - bench_t0)));"
    echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo
    echo "Commands (per rep; MODEL as above):"
    echo
    echo "    $sol_bin bench MODEL -p $pp -n $tg -r 1 -t $threads -o json --no-store"
    echo "    ${lcp_env[*]}${lcp_env[*]:+ }$bin/llama-bench -m MODEL -t $threads -p $pp -n $tg -r 1 -o json"
    echo
    echo "Models:"
    echo
    for m in "${model_list[@]}"; do
        echo "- $m: ${model_path[$m]} ($(numfmt --to=iec "${model_bytes[$m]}")B): ${model_desc[$m]}"
    done
    echo
fi

# --------------------------------------------------------------- greedy ----
# One greedy comparison: LABEL MODEL_KEY PROMPT SIMPLE (1: also llama-simple).
greedy_case() {
    local label=$1 key=$2 p=$3 simple=$4 path=${model_path[$2]} f=$run_dir/greedy-$1 sol_ids
    run "$sol_bin" run "$path" -p "$p" -n "$n_greedy" -t "$threads" --temp 0 --json \
        >"$f-sol.out" 2>"$f-sol.err" \
        || { sed 's/^/    /' "$f-sol.err" >&2; die "sol run failed on greedy case $label"; }
    # The same run keeping every position's logits: margins and |Δlogit|.
    run "$sol_bin" run "$path" -p "$p" -n "$n_greedy" -t "$threads" --temp 0 --json \
        --logits-out "$f-sol.logits" >"$f-sol-logits.out" 2>"$f-sol-logits.err" \
        || { sed 's/^/    /' "$f-sol-logits.err" >&2; die "sol run --logits-out failed on greedy case $label"; }
    run "$greedy_bin" -m "$path" -t "$threads" -n "$n_greedy" --logits-out "$f-llamacpp.logits" "$p" \
        >"$f-llamacpp.json" 2>"$f-llamacpp.err" \
        || { sed 's/^/    /' "$f-llamacpp.err" >&2; die "sol-greedy-ids failed on greedy case $label"; }
    # The same decode from sol's prompt ids: separates tokenizer from model differences.
    sol_ids=$(python3 "$here/report.py" prompt-ids "$f-sol.out") || die "no prompt ids in $f-sol.out"
    run "$greedy_bin" -m "$path" -t "$threads" -n "$n_greedy" --ids "$sol_ids" \
        >"$f-llamacpp-ids.json" 2>"$f-llamacpp-ids.err" \
        || { sed 's/^/    /' "$f-llamacpp-ids.err" >&2; die "sol-greedy-ids --ids failed on greedy case $label"; }
    if [ "$simple" = 1 ]; then
        # llama.cpp's own greedy example, as a check on the helper (text only).
        run "$bin/llama-simple" -m "$path" -n "$n_greedy" "$p" >"$f-simple.out" 2>"$f-simple.err" \
            || { tail -n 20 "$f-simple.err" | sed 's/^/    /' >&2; die "llama-simple failed on greedy case $label"; }
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$p" "$f-sol.out" "$f-sol-logits.out" "$f-sol.logits" \
        "$f-llamacpp.json" "$f-llamacpp.logits" "$f-llamacpp-ids.json" "$([ "$simple" = 1 ] && echo "$f-simple.out")" \
        >>"$greedy_manifest"
}

if [ "$greedy" = 1 ]; then
    prompts=("The capital of France is" "def fibonacci(n):" "Once upon a time, in a small village,")
    n_greedy=32
    [ -n "${model_path[smollm2]:-}" ] || prepare_model smollm2
    llama_loads smollm2
    greedy_manifest=$run_dir/greedy.tsv
    : >"$greedy_manifest"
    log "greedy agreement on SmolLM2: ${#prompts[@]} prompts x $n_greedy tokens"
    for i in "${!prompts[@]}"; do
        greedy_case "smollm2-$((i + 1))" smollm2 "${prompts[$i]}" 1
    done
    control=0
    if [ -n "${model_path[1b-f16]:-}" ]; then
        # Control: F16 weights, where llama.cpp's matmuls round activations to
        # f16 only, and the byte-level synth vocabulary both engines must share.
        log "greedy control on the F16 synth model: 1 prompt x $n_greedy tokens"
        greedy_case 1b-f16-1 1b-f16 "${prompts[0]}" 0
        control=1
    fi
    echo "## Greedy agreement: SmolLM2-135M-Instruct Q4_1, first $n_greedy tokens, threads $threads"
    echo
    echo "sol: \`sol run MODEL -p PROMPT -n $n_greedy -t $threads --temp 0 --json\` (generated_ids);"
    echo "llama.cpp: \`sol-greedy-ids -m MODEL -t $threads -n $n_greedy PROMPT\` (bench/vs-llamacpp/greedy-ids.cpp:"
    echo "llama_tokenize with add_special and parse_special like llama-simple, argmax of the logits), also fed"
    echo "sol's prompt ids, and llama-simple's text as a cross-check. No chat template; SmolLM2's GGUF says"
    echo "add_bos_token=$(python3 "$here/report.py" add-bos "$run_dir/greedy-smollm2-1-llamacpp.json"), which both engines follow. Both stop after an end-of-generation token."
    echo "|Δlogit|: sol's --logits-out rows against llama.cpp's over the steps where both saw the same context."
    echo "At a divergence: both tokens' logits in sol (from a second run with --logits-out) and llama.cpp's"
    echo "margin over its runner-up; a gap of a few hundredths is a near-tie that rounding decides (llama.cpp"
    echo "quantizes activations to 8 bits for quantized matmuls; sol's kernels keep them in f32)."
    if [ "$control" = 1 ]; then
        echo "Control case 1b-f16-1: the F16 synth model (random weights, byte-level vocab, add_bos_token=true),"
        echo "where llama.cpp rounds activations only to f16: expect identical ids and a small |Δlogit|."
    fi
    echo
    echo '```'
    python3 "$here/report.py" greedy "$greedy_manifest" || die "report.py greedy failed"
    echo '```'
fi
