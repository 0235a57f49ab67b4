# sol — build, test and run. `make` builds build/sol; `make test` runs every
# test with ASan+UBSan; `make run` analyzes the default model.

empty :=
space := $(empty) $(empty)
CC      ?= gcc
PKGS    := libcjson sqlite3 ncursesw
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-missing-field-initializers
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -I. -Ibuild/gen $(WARN) -MMD -MP
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
REL_FLAGS  := -O2 -g
TEST_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LIBS       = $(PKG_LIBS) -lm -lpthread -ldl

VERSION := 0.1.0
GIT_COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
# llama-bench's build_number beside build_commit: the commits up to this one
GIT_COUNT := $(shell git rev-list --count HEAD 2>/dev/null || echo 0)
# Tuning results are keyed by the kernels' source and the flags they were built with;
# the files that embed the hash are rebuilt when a kernel source changes.
KERNEL_HASH := $(shell cat kernels/cpu/*.c kernels/cpu/*.h 2>/dev/null | sha1sum | cut -c1-16)
DEFS := -DSOL_VERSION='"$(VERSION)"' -DSOL_GIT_COMMIT='"$(GIT_COMMIT)"' -DSOL_BUILD_NUMBER=$(GIT_COUNT) \
        -DSOL_KERNEL_HASH='"$(KERNEL_HASH)"' -DSOL_CFLAGS='"$(REL_FLAGS)"'

LIB_DIRS := util models analyzer kernels/cpu kernels/cuda engine db tuner tui
LIB_SRC  := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
CLI_SRC  := $(wildcard cli/*.c)
GEN_SRC  := build/gen/presets.c build/gen/hw_presets.c build/gen/db_migrations.c
PRESETS  := $(sort $(wildcard models/presets/*.json))
HW_FILES := $(sort $(wildcard analyzer/hw/*.json))
DB_MIGRATIONS := $(sort $(wildcard db/migrations/*.sql))

REL_OBJ  := $(patsubst %.c,build/rel/%.o,$(LIB_SRC) $(CLI_SRC)) $(patsubst build/gen/%.c,build/rel/gen/%.o,$(GEN_SRC))
TLIB_OBJ := $(patsubst %.c,build/test/%.o,$(LIB_SRC)) $(patsubst build/gen/%.c,build/test/gen/%.o,$(GEN_SRC))
TCLI_OBJ := $(patsubst %.c,build/test/%.o,$(CLI_SRC))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,build/test/unit/%,$(UNIT_SRC))

# The files that print the commit are rebuilt when it changes: a stamp
# rewritten only then (sol --version, bench's build_commit).
COMMIT_STAMP := build/gen/commit.txt
$(shell mkdir -p build/gen && { echo '$(GIT_COMMIT) $(GIT_COUNT)' | cmp -s - $(COMMIT_STAMP) || \
	echo '$(GIT_COMMIT) $(GIT_COUNT)' > $(COMMIT_STAMP); })
$(foreach b,rel test tsan,build/$(b)/cli/main.o build/$(b)/cli/cmd_bench.o build/$(b)/cli/bench_output.o): $(COMMIT_STAMP)

.PHONY: all deps model fuzz fuzz-smoke fuzz-keep tsan crash-test badinput-test test unit cli-test tui-test ref-test moe-test backend-test chat-test cuda-host-test cuda-arch-test gpu-dry-run gpu-prep run bench clean cuda
all: build/sol

# ---- the CUDA plugin, where nvcc is installed (sol itself never links CUDA)
ifeq ($(origin NVCC),undefined)
NVCC := $(shell command -v nvcc 2>/dev/null || { test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc; })
endif
CUDA_SRC := $(wildcard kernels/cuda/*.cu)
CUDA_HDR := $(wildcard kernels/cuda/*.h kernels/cuda/*.cuh) kernels/probe.h kernels/backend.h util/err.h util/dtype.h
# sm_80 (A100), sm_89 (L40S, RTX 4090), sm_90 (H100/H200) machine code, and
# compute_90 PTX for anything newer.
CUDA_ARCH := -gencode arch=compute_80,code=sm_80 -gencode arch=compute_89,code=sm_89 \
             -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
CUDA_VERSION := $(if $(NVCC),$(shell $(NVCC) --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p'))
NVCC_FLAGS = -std=c++17 -O2 -I. $(CUDA_ARCH) -Xcompiler -fPIC,-fvisibility=hidden,-Wall,-Wextra,-Werror \
             -DSOL_CUDA_BUILD='"CUDA $(CUDA_VERSION), sm_80 sm_89 sm_90"'
# The autotuner's CUPTI host half is C++ (cupti_profiler_host.h includes
# <string>); libcupti is opened at run time, never linked, and the toolkit
# nvcc belongs to is one of the places the plugin looks for it.
CUDA_TOOLKIT := $(if $(NVCC),$(realpath $(dir $(shell command -v $(NVCC)))..))
CUPTI_FLAGS := $(addprefix -I,$(wildcard $(CUDA_TOOLKIT)/extras/CUPTI/include)) -DSOL_CUDA_TOOLKIT='"$(CUDA_TOOLKIT)"'
CUDA_SRC += kernels/cuda/cupti_host.cpp kernels/cuda/cupti_count.cpp
NVCC_FLAGS += $(CUPTI_FLAGS)
ifneq ($(NVCC),)
all: build/sol-cuda.so
cuda: build/sol-cuda.so
else
cuda:
	@echo "cuda: nvcc not found (install the CUDA toolkit or set NVCC=...); sol runs without its CUDA backend" >&2
	@exit 1
endif

# The autotuner's NVRTC half compiles kernels/cuda/matvec.cuh and
# kernels/cuda/attention_decode.cuh at run time; they and the headers they
# include are embedded in the plugin as strings. New headers go at the end:
# a kernel's image key hashes the headers it includes in this order.
CUDA_RTC_HDR := kernels/cuda/matvec.cuh kernels/cuda/rmsnorm.cuh kernels/cuda/dequant.cuh util/dtype.h \
                kernels/cuda/attention_decode.cuh kernels/cuda/attention.cuh kernels/cuda/elementwise.cuh \
                kernels/backend.h util/err.h
build/cuda/rtc_sources.inc: $(CUDA_RTC_HDR)
	@mkdir -p $(dir $@)
	@for f in $^; do printf '{"%s", R"sol_rtc(' "$$f"; cat "$$f"; printf ')sol_rtc"},\n'; done > $@.tmp && mv $@.tmp $@

build/sol-cuda.so: $(CUDA_SRC) $(CUDA_HDR) build/cuda/rtc_sources.inc
	@mkdir -p $(dir $@)
	@echo "  NVCC    $@"
	@$(NVCC) $(NVCC_FLAGS) -Ibuild/cuda -shared -o $@ $(CUDA_SRC) -lcublas -lnvrtc

# The CUDA backend's host-side logic, tested here without a GPU: the weight
# decoding (kernels/cuda/dequant.cuh) against gguf-py's fixtures.
CUDA_HOST_TESTS := build/test/cuda/test_dequant
build/test/cuda/%: tests/cuda/%.cu kernels/cuda/dequant.cuh util/dtype.h
	@mkdir -p $(dir $@)
	@echo "  NVCC    $@"
	@$(NVCC) -std=c++17 -O1 -I. -Xcompiler -Wall,-Wextra,-Werror -o $@ $< -lcmocka

# The ABI 4 ops' elementwise formulas (kernels/cuda/elementwise.cuh: gelu,
# soft-cap) against the CPU backend's expressions and a float64 reference.
CUDA_HOST_TESTS += build/test/cuda/test_elementwise
build/test/cuda/test_elementwise: kernels/cuda/elementwise.cuh

# RMSNorm folded into the matvec (kernels/cuda/rmsnorm.cuh, matvec.cuh's
# sol_matvec_rmsnorm): the scale a block of any size computes against
# rmsnorm_kernel's 256-thread layout, bit for bit, and the fused tile
# products against the plain ones on the normalised input.
CUDA_HOST_TESTS += build/test/cuda/test_rmsnorm
build/test/cuda/test_rmsnorm: kernels/cuda/rmsnorm.cuh kernels/cuda/matvec.cuh

# RoPE and the KV write (kernels/cuda/rope_kv.cuh): each kernel's grid run
# thread by thread on the host; the fused rope_kv_write bit-compared with
# rope + rope + kv_write, the rotation with the CPU's and float64's, and
# every cache store counted.
CUDA_HOST_TESTS += build/test/cuda/test_rope_kv
build/test/cuda/test_rope_kv: kernels/cuda/rope_kv.cuh kernels/backend.h kernels/cpu/half.h

# The attention's arithmetic (kernels/cuda/attention.cuh: the keys a row
# sees, their splits, the head chunks, the partial softmax merges; prefill's
# query and key tiles, which cover every (row, visible key) pair once, and
# its softmax a key tile at a time) against sol_kv_visible and a float64
# softmax.
CUDA_HOST_TESTS += build/test/cuda/test_attention
build/test/cuda/test_attention: kernels/cuda/attention.cuh kernels/backend.h

# The cuBLAS matmul's host half (kernels/cuda/gemm_plan.h): the cublasGemmEx
# arguments per weight type, checked by a host GEMM against the naive
# matmul, which matmuls go through cuBLAS, and their scratch sizes.
CUDA_HOST_TESTS += build/test/cuda/test_gemm
build/test/cuda/test_gemm: kernels/cuda/gemm_plan.h kernels/cuda/cuda_backend.h kernels/cuda/launch.cuh \
		kernels/cuda/cuda_util.h kernels/cuda/plugin.h kernels/backend.h

# The CUPTI host half: configuration images and pass counts per chip, from
# the toolkit's libcupti (no GPU needed).
CUDA_HOST_TESTS += build/test/cuda/test_cupti_host
build/test/cuda/test_cupti_host: tests/cuda/test_cupti_host.cpp kernels/cuda/cupti_host.cpp kernels/cuda/cupti_host.h kernels/cuda/cupti_impl.h kernels/cuda/fail.h util/err.h
	@mkdir -p $(dir $@)
	@echo "  NVCC    $@"
	@$(NVCC) -std=c++17 -O1 -I. $(CUPTI_FLAGS) -Xcompiler -Wall,-Wextra,-Werror -o $@ $(filter %.cpp,$^) -lcmocka -ldl

# The matvec variants: validity rules, NVRTC compiles for sm_80 and sm_90
# with ptxas's figures, the image cache, and a host model of the tiling.
CUDA_HOST_TESTS += build/test/cuda/test_variants
CUDA_VARIANT_SRC := kernels/cuda/variant.cu kernels/cuda/attn_variant.cu kernels/cuda/variant_compile.cu \
                    kernels/cuda/variant_cache.cu
CUDA_VARIANT_HDR := kernels/cuda/variant.h kernels/cuda/attn_variant.h kernels/cuda/fail.h util/err.h
build/test/cuda/test_variants: tests/cuda/test_variants.cu tests/cuda/expect_verdict.h $(CUDA_VARIANT_SRC) $(CUDA_VARIANT_HDR) \
		$(CUDA_RTC_HDR) build/cuda/rtc_sources.inc
	@mkdir -p $(dir $@)
	@echo "  NVCC    $@"
	@$(NVCC) -std=c++17 -O1 -I. -Ibuild/cuda -Xcompiler -Wall,-Wextra,-Werror -o $@ $(filter %.cu,$^) \
		-lnvrtc -lcmocka

# The decode attention variants: validity rules with their reasons, launch
# geometry against the engine's, and NVRTC compiles of attention_decode.cuh
# for sm_80 and sm_90 with ptxas's figures (the engine's own instances
# among them, which must not spill).
CUDA_HOST_TESTS += build/test/cuda/test_attn_variant
build/test/cuda/test_attn_variant: tests/cuda/test_attn_variant.cu tests/cuda/expect_verdict.h $(CUDA_VARIANT_SRC) $(CUDA_VARIANT_HDR) \
		$(CUDA_RTC_HDR) build/cuda/rtc_sources.inc
	@mkdir -p $(dir $@)
	@echo "  NVCC    $@"
	@$(NVCC) -std=c++17 -O1 -I. -Ibuild/cuda -Xcompiler -Wall,-Wextra,-Werror -o $@ $(filter %.cu,$^) \
		-lnvrtc -lcmocka

# The matvec autotuner's trials (kernels/cuda/tune_trial.cu): the weights,
# reference and judge of a trial; the CLI's space (tuner/cuda_matvec.c,
# built here by $(CC)) over the plugin's rules, the built-in variant valid
# for every shape, sampled variants compiled; "no CUDA device" in one line.
CUDA_HOST_TESTS += build/test/cuda/test_tune_trial
CUDA_TUNE_C := tuner/cuda_matvec.c tuner/space.c util/dtype.c util/err.c
# Both kinds of trial share trial_run.cuh, and mv_release frees both problems.
CUDA_TRIAL_SRC := kernels/cuda/tune_trial.cu kernels/cuda/attn_trial.cu kernels/cuda/counters.cu \
                  kernels/cuda/cupti_count.cpp kernels/cuda/cupti_host.cpp
CUDA_TRIAL_HDR := kernels/cuda/tune_trial.h kernels/cuda/attn_trial.h kernels/cuda/trial_run.cuh \
                  kernels/cuda/attn_default.h kernels/cuda/attn_variant.h kernels/cuda/counters.h
build/cudahost/%.o: %.c
	@mkdir -p $(dir $@)
	@$(CC) $(CFLAGS_BASE) -O1 -g $(PKG_CFLAGS) -c $< -o $@
build/test/cuda/test_tune_trial: tests/cuda/test_tune_trial.cu $(CUDA_TRIAL_SRC) $(CUDA_VARIANT_SRC) \
		$(patsubst %.c,build/cudahost/%.o,$(CUDA_TUNE_C)) $(CUDA_TRIAL_HDR) kernels/cuda/variant.h \
		kernels/cuda/gemm_plan.h kernels/cuda/cuda_util.h kernels/cuda/fail.h kernels/cuda/plugin.h \
		tuner/cuda_matvec.h tuner/tuner.h util/err.h $(CUDA_RTC_HDR) build/cuda/rtc_sources.inc
	@mkdir -p $(dir $@)
	@echo "  NVCC    $@"
	@$(NVCC) -std=c++17 -O1 -I. -Ibuild/cuda $(CUPTI_FLAGS) -Xcompiler -Wall,-Wextra,-Werror -o $@ \
		$(filter %.cu %.cpp %.o,$^) -lcublas -lnvrtc -lcmocka $(shell pkg-config --libs libcjson 2>/dev/null) -lm -ldl

# Decode attention's trials (kernels/cuda/attn_trial.cu): the data, the
# float64 reference against a naive one, the f32 bound (the kernel's order
# simulated: honest under it, a wrong head or a lost key over it),
# at_check's reasons, at_default against the engine's rule, and "no CUDA
# device" in one line.
CUDA_HOST_TESTS += build/test/cuda/test_attn_trial
build/test/cuda/test_attn_trial: tests/cuda/test_attn_trial.cu $(CUDA_TRIAL_SRC) $(CUDA_VARIANT_SRC) \
		$(patsubst %.c,build/cudahost/%.o,util/dtype.c util/err.c) $(CUDA_TRIAL_HDR) kernels/cuda/variant.h \
		kernels/cuda/gemm_plan.h kernels/cuda/cuda_util.h kernels/cuda/fail.h kernels/cuda/plugin.h util/err.h \
		$(CUDA_RTC_HDR) build/cuda/rtc_sources.inc
	@mkdir -p $(dir $@)
	@echo "  NVCC    $@"
	@$(NVCC) -std=c++17 -O1 -I. -Ibuild/cuda $(CUPTI_FLAGS) -Xcompiler -Wall,-Wextra,-Werror -o $@ \
		$(filter %.cu %.cpp %.o,$^) -lcublas -lnvrtc -lcmocka -lm -ldl

# The tuner's winners in the backend (kernels/cuda/tuned.cu): which one a
# decode matmul takes, and when the built-in variants run instead.
CUDA_HOST_TESTS += build/test/cuda/test_tuned
build/test/cuda/test_tuned: tests/cuda/test_tuned.cu kernels/cuda/tuned.cu kernels/cuda/variant.cu kernels/cuda/attn_variant.cu \
		kernels/cuda/attn_variant.h kernels/cuda/attention.cuh kernels/cuda/tuned.h \
		kernels/cuda/variant.h kernels/cuda/matvec.cuh kernels/cuda/plugin.h util/err.h
	@mkdir -p $(dir $@)
	@echo "  NVCC    $@"
	@$(NVCC) -std=c++17 -O1 -I. -Xcompiler -Wall,-Wextra,-Werror -o $@ $(filter %.cu,$^) -lcmocka

# The decode-step graph's bookkeeping: which steps record, the launch keys.
# The CUPTI target half (Range Profiler passes, user ranges, decoding) with
# fakes for the calls that need a GPU, and the plugin's counting turning
# itself off on a machine without one.
CUDA_HOST_TESTS += build/test/cuda/test_cupti_count
build/test/cuda/test_cupti_count: tests/cuda/test_cupti_count.cpp kernels/cuda/cupti_count.cpp kernels/cuda/cupti_host.cpp \
		kernels/cuda/counters.cu kernels/cuda/counters.h kernels/cuda/cupti_host.h kernels/cuda/cupti_impl.h kernels/cuda/fail.h util/err.h
	@mkdir -p $(dir $@)
	@echo "  NVCC    $@"
	@$(NVCC) -std=c++17 -O1 -I. $(CUPTI_FLAGS) -Xcompiler -Wall,-Wextra,-Werror -o $@ $(filter %.cpp %.cu,$^) -lcmocka -ldl

CUDA_HOST_TESTS += build/test/cuda/test_graph
build/test/cuda/test_graph: tests/cuda/test_graph.cu kernels/cuda/graph.cu kernels/cuda/launch.cuh \
		kernels/cuda/cuda_backend.h kernels/cuda/cuda_util.h kernels/cuda/plugin.h kernels/backend.h
	@mkdir -p $(dir $@)
	@echo "  NVCC    $@"
	@$(NVCC) -std=c++17 -O1 -I. -Xcompiler -Wall,-Wextra,-Werror -o $@ $(filter %.cu,$^) -lcmocka

# Sampling's device top-k (kernels/cuda/topk.cuh): the keys' order and the
# select, run pass by pass, against a full sort.
CUDA_HOST_TESTS += build/test/cuda/test_topk
build/test/cuda/test_topk: kernels/cuda/topk.cuh

# Weights larger than the device's free memory: the rule and its one line.
CUDA_HOST_TESTS += build/test/cuda/test_fit
build/test/cuda/test_fit: kernels/cuda/fit.h

cuda-host-test: $(CUDA_HOST_TESTS)
	@bash tests/run_unit.sh cuda-host $(CUDA_HOST_TESTS)

# The plugin's device code: sm_80, sm_89 and sm_90 cubins (in equally many
# modules) and compute_90 PTX (CUDA_ARCH), listed with cuobjdump
# (tools/fetch-cuobjdump.sh finds it, or fetches NVIDIA's build from PyPI once).
CUDA_ARCH_WANT := cubin:sm_80 cubin:sm_89 cubin:sm_90 ptx:compute_90
cuda-arch-test: build/sol-cuda.so
	@bash tests/cuda/check_arch.sh build/sol-cuda.so "$$(bash tools/fetch-cuobjdump.sh)" $(CUDA_ARCH_WANT)

# tests/gpu/run.sh checked on this machine: its engine sections with the
# test plugin standing in for the GPU (a few minutes; not part of `make test`).
gpu-dry-run: build/test/sol build/test/poison.so
	@GPU_DRY_RUN=1 SOL_BIN=build/test/sol GPU_BACKEND=build/test/poison.so GPU_OUT=build/gpu-dry \
		bash tests/gpu/run.sh

# What tests/gpu/run.sh needs on a GPU machine that reaches no package
# registry, made here: sol, the CUDA plugin (where nvcc is) and gguf-py's
# wheel for bench/torch_peer.py (pure Python, the version tests/ref pins; its
# numpy, PyYAML, tqdm and requests are in that machine's PyTorch image).
# Carry build/sol, build/sol-cuda.so and build/wheels.
GGUF_PY_VERSION := $(shell sed -n 's/^gguf==//p' tests/ref/requirements.txt)
gpu-prep: build/sol $(if $(NVCC),build/sol-cuda.so)
	@mkdir -p build/wheels
	@python3 -m pip download --quiet --no-deps --only-binary=:all: --dest build/wheels gguf==$(GGUF_PY_VERSION)
	@ls build/wheels/gguf-$(GGUF_PY_VERSION)-*.whl

deps:
	@bash tools/deps.sh

build/sol: $(REL_OBJ)
	@echo "  LD      $@"
	@$(CC) $(REL_FLAGS) -o $@ $^ $(LIBS)

build/rel/%.o: %.c | build/gen/presets.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS_BASE) $(REL_FLAGS) $(DEFS) $(PKG_CFLAGS) -c $< -o $@

build/rel/gen/%.o: build/gen/%.c
	@mkdir -p $(dir $@)
	@$(CC) $(CFLAGS_BASE) $(REL_FLAGS) -c $< -o $@

# Presets and hardware entries are compiled in, so the binary stands alone.
build/tools/embed: tools/embed.c
	@mkdir -p $(dir $@)
	@$(CC) $(CFLAGS_BASE) -O1 -o $@ $<

build/gen/presets.c: build/tools/embed $(PRESETS)
	@mkdir -p $(dir $@)
	@build/tools/embed sol_embedded_presets $(PRESETS) > $@

build/gen/hw_presets.c: build/tools/embed $(HW_FILES)
	@mkdir -p $(dir $@)
	@build/tools/embed sol_embedded_hw $(HW_FILES) > $@

# The database's schema migrations, in order (db/migrations/NNN-*.sql).
build/gen/db_migrations.c: build/tools/embed $(DB_MIGRATIONS)
	@mkdir -p $(dir $@)
	@build/tools/embed sol_db_migrations $(DB_MIGRATIONS) > $@

# ---- tests: same sources, sanitizers on -------------------------------
build/test/%.o: %.c | build/gen/presets.c
	@mkdir -p $(dir $@)
	@echo "  CC test $<"
	@$(CC) $(CFLAGS_BASE) $(TEST_FLAGS) $(DEFS) $(PKG_CFLAGS) -c $< -o $@

build/test/gen/%.o: build/gen/%.c
	@mkdir -p $(dir $@)
	@$(CC) $(CFLAGS_BASE) $(TEST_FLAGS) -c $< -o $@

# -rdynamic: the test backend plugin (tests/backend) calls the CPU backend
# of the binary that loads it.
build/test/sol: $(TLIB_OBJ) $(TCLI_OBJ)
	@echo "  LD test $@"
	@$(CC) $(TEST_FLAGS) -rdynamic -o $@ $^ $(LIBS)

build/test/poison.so: tests/backend/poison.c kernels/backend.h kernels/cpu.h kernels/cuda/plugin.h
	@mkdir -p $(dir $@)
	@echo "  CC test $@"
	@$(CC) $(CFLAGS_BASE) $(TEST_FLAGS) $(PKG_CFLAGS) -fPIC -shared -o $@ $<

build/test/unit/%: tests/unit/%.c tests/unit/helpers.h $(TLIB_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD test $@"
	@$(CC) $(CFLAGS_BASE) $(TEST_FLAGS) $(PKG_CFLAGS) -rdynamic -o $@ $< $(TLIB_OBJ) $(LIBS) -lcmocka

# The CUDA tuner's entries faked on the CPU (cli/tune_cuda.c tested without a GPU).
build/test/fake_tuner.so: tests/backend/fake_tuner.c kernels/cuda/plugin.h kernels/backend.h
	@mkdir -p $(dir $@)
	@echo "  CC test $@"
	@$(CC) $(CFLAGS_BASE) -O1 -g -fPIC -shared -o $@ $< -lm

build/test/abi1.so: tests/backend/abi1.c
	@mkdir -p $(dir $@)
	@$(CC) $(CFLAGS_BASE) -fPIC -shared -o $@ $<

# One small sol synth model of each family the engine runs (docs/FAMILIES.md),
# f32 weights, and a q8_0 Mixtral: test_engine_batch decodes them.
FAMILIES := tiny-mixtral tiny-deepseek-v2 tiny-deepseek-v3 tiny-gemma2 tiny-gemma3 tiny-phi3
FAMILY_GGUFS := $(patsubst %,build/ref/%-f32.gguf,$(FAMILIES)) build/ref/tiny-mixtral-q8_0.gguf
build/ref/%-f32.gguf: tests/fixtures/configs/%.json build/sol
	@mkdir -p $(dir $@)
	@build/sol synth $< --wtype f32 -o $@ >/dev/null
build/ref/%-q8_0.gguf: tests/fixtures/configs/%.json build/sol
	@mkdir -p $(dir $@)
	@build/sol synth $< --wtype q8_0 -o $@ >/dev/null

unit: $(UNIT_BIN) build/test/poison.so build/test/abi1.so $(FAMILY_GGUFS)
	@SOL_TEST_GGUF=$$(bash tools/fetch-model.sh) SOL_TEST_POISON=build/test/poison.so SOL_TEST_ABI1=build/test/abi1.so \
		SOL_TEST_FAMILY_GGUFS="$(FAMILY_GGUFS)" bash tests/run_unit.sh unit $(UNIT_BIN)

build/test/cli/test_cli: tests/cli/test_cli.c
	@mkdir -p $(dir $@)
	@echo "  LD test $@"
	@$(CC) $(CFLAGS_BASE) $(TEST_FLAGS) $(PKG_CFLAGS) -o $@ $< $(LIBS) -lcmocka

# CLI tests drive the sanitizer build of sol; the real GGUF is fetched once.
cli-test: build/test/sol build/test/cli/test_cli build/test/fake_tuner.so
	@SOL_BIN=$(CURDIR)/build/test/sol SOL_TEST_GGUF=$$(bash tools/fetch-model.sh) \
		SOL_TEST_FAKE_TUNER=$(CURDIR)/build/test/fake_tuner.so \
		bash tests/run_unit.sh cli build/test/cli/test_cli

# The engine against an independent numpy forward pass (tests/ref): the real
# SmolLM2 model and a synth model of every weight type.
REF_WTYPES := f32 f16 bf16 q8_0 q4_0 q4_1 q4_k q6_k q4_k_m
ref-test: build/sol $(FAMILY_GGUFS)
	@mkdir -p build/ref
	@for wt in $(REF_WTYPES); do \
		build/sol synth tests/fixtures/configs/tiny-llama.json --wtype $$wt -o build/ref/tiny-$$wt.gguf 2>/dev/null || exit 1; \
	done
	@bash tests/ref/run.sh build/sol $$(bash tools/fetch-model.sh) $(patsubst %,build/ref/tiny-%.gguf,$(REF_WTYPES))

# sol chat's sessions (tests/chat): resumed = uninterrupted bit for bit per KV
# scheme, bad segments refused, LRU eviction, concurrent writers.
chat-test: build/test/sol
	@bash tests/chat/run.sh build/test/sol build/chat

# The engine suite on the host-poisoning test backend (tests/backend): the
# sanitizer build, bit-identical logits to the CPU backend, an injected fault.
# The analyzer's expected experts against the experts the engine read
# (tests/moe/check_experts.py), and its --routing against the bench's.
moe-test: build/sol $(FAMILY_GGUFS)
	@python3 tests/moe/check_experts.py build/sol build/ref/tiny-mixtral-q8_0.gguf \
		build/ref/tiny-deepseek-v3-f32.gguf build/ref/tiny-deepseek-v2-f32.gguf

backend-test: build/sol build/test/sol build/test/poison.so $(FAMILY_GGUFS)
	@mkdir -p build/backend
	@for wt in $(REF_WTYPES); do \
		build/sol synth tests/fixtures/configs/tiny-llama.json --wtype $$wt -o build/backend/tiny-$$wt.gguf 2>/dev/null || exit 1; \
	done
	@bash tests/backend/run.sh build/test/sol build/test/poison.so $$(bash tools/fetch-model.sh) \
		$(patsubst %,build/backend/tiny-%.gguf,$(REF_WTYPES)) $(FAMILY_GGUFS)

# The live view driven through tmux (tests/tui): the sanitizer build on SmolLM2.
tui-test: build/test/sol build/test/poison.so
	@bash tests/tui/run.sh $(CURDIR)/build/test/sol $$(bash tools/fetch-model.sh) $(CURDIR)/build/test/poison.so

# Where nvcc is installed the CUDA plugin is compiled too (a build check; its
# tests need a GPU: tests/gpu/run.sh).
# ---- fuzzing (tests/fuzz): libFuzzer targets, clang with ASan and UBSan ----
# `make fuzz` runs each target FUZZ_SECONDS (default 300) on its corpus
# (build/fuzz/corpus/NAME, grown from the seeds, carried between runs);
# `make test` runs each for 30 s so CI keeps them building and alive.
FUZZ_CC      ?= clang
FUZZ_FLAGS   := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_TARGETS := gguf safetensors hf_config kv hw tokenizer chat db_import kv_segment
FUZZ_LIB_OBJ := $(patsubst %.c,build/fuzz/%.o,$(LIB_SRC)) $(patsubst build/gen/%.c,build/fuzz/gen/%.o,$(GEN_SRC))
FUZZ_BINS    := $(patsubst %,build/fuzz/fuzz_%,$(FUZZ_TARGETS))
FUZZ_SECONDS ?= 300
# seeds: committed by hand (tests/fuzz/seeds) or files the repo already has
FUZZ_SEEDS_gguf        := tests/fuzz/corpus/gguf tests/fuzz/seeds/gguf
FUZZ_SEEDS_safetensors := tests/fuzz/corpus/safetensors tests/fixtures/safetensors
FUZZ_SEEDS_hf_config   := tests/fuzz/corpus/hf_config models/presets tests/fixtures/configs
FUZZ_SEEDS_kv          := tests/fuzz/corpus/kv tests/fuzz/seeds/kv
FUZZ_SEEDS_hw          := tests/fuzz/corpus/hw analyzer/hw
FUZZ_SEEDS_tokenizer   := tests/fuzz/corpus/tokenizer tests/fuzz/seeds/tokenizer
FUZZ_SEEDS_chat        := tests/fuzz/corpus/chat tests/fuzz/seeds/chat
FUZZ_SEEDS_db_import   := tests/fuzz/corpus/db_import tests/fixtures/db
FUZZ_SEEDS_kv_segment  := tests/fuzz/corpus/kv_segment tests/fuzz/seeds/kv_segment

build/fuzz/%.o: %.c | build/gen/presets.c
	@mkdir -p $(dir $@)
	@echo "  CC fuzz $<"
	@$(FUZZ_CC) $(CFLAGS_BASE) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -Wno-unused-command-line-argument $(DEFS) \
		$(PKG_CFLAGS) -c $< -o $@

build/fuzz/gen/%.o: build/gen/%.c
	@mkdir -p $(dir $@)
	@$(FUZZ_CC) $(CFLAGS_BASE) $(FUZZ_FLAGS) -c $< -o $@

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_LIB_OBJ)
	@echo "  LD fuzz $@"
	@$(FUZZ_CC) $(CFLAGS_BASE) $(FUZZ_FLAGS) -fsanitize=fuzzer $(PKG_CFLAGS) -o $@ $< $(FUZZ_LIB_OBJ) $(LIBS)

# FUZZ_SECONDS per target; the tokenizer and chat targets read the synth model's vocabulary
fuzz: $(FUZZ_BINS) build/sol
	@build/sol synth tests/fixtures/configs/tiny-llama.json --wtype q8_0 -o build/fuzz/tiny.gguf 2>/dev/null
	@SOL_FUZZ_GGUF=build/fuzz/tiny.gguf bash tests/fuzz/run.sh $(FUZZ_SECONDS) \
		$(foreach t,$(FUZZ_TARGETS),$(t):$(subst $(space),+,$(FUZZ_SEEDS_$(t))))

fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=30

# Carries the corpora forward: each build/fuzz/corpus/NAME merged (minimised
# by coverage) into the committed tests/fuzz/corpus/NAME, which every later
# run starts from.
fuzz-keep: $(FUZZ_BINS)
	@for t in $(FUZZ_TARGETS); do mkdir -p tests/fuzz/corpus/$$t; \
		SOL_FUZZ_GGUF=build/fuzz/tiny.gguf build/fuzz/fuzz_$$t -merge=1 tests/fuzz/corpus/$$t build/fuzz/corpus/$$t \
			>build/fuzz/$$t.merge.log 2>&1 || { echo "fuzz-keep: $$t: merge failed (build/fuzz/$$t.merge.log)"; exit 1; }; \
		echo "fuzz-keep: $$t: $$(ls tests/fuzz/corpus/$$t | wc -l) inputs"; done

# The bad-input matrix (docs/BAD-INPUT.md): every row run against the
# sanitizer build, its status and words checked against the document.
badinput-test: build/test/sol build/sol model
	@bash tests/badinput/run.sh build/test/sol $$(bash tools/fetch-model.sh)

# The database under SIGKILL (tests/crash): tune and bench killed 50 times
# each, then resumed; two writers at once.
crash-test: build/sol
	@mkdir -p build/crash
	@build/sol synth tests/fixtures/configs/tiny-llama.json --wtype q8_0 -o build/crash/tiny.gguf 2>/dev/null
	@KILLS=50 bash tests/crash/run.sh build/sol build/crash/tiny.gguf

# ---- ThreadSanitizer (make tsan): the thread pool, the engine under the live
# view's decode thread, the timing ring the view reads while it is written.
TSAN_FLAGS := -O1 -g -fsanitize=thread -fno-omit-frame-pointer
TSAN_LIB_OBJ := $(patsubst %.c,build/tsan/%.o,$(LIB_SRC)) $(patsubst build/gen/%.c,build/tsan/gen/%.o,$(GEN_SRC))
TSAN_UNITS := build/tsan/unit/test_pool build/tsan/unit/test_tuner

build/tsan/%.o: %.c | build/gen/presets.c
	@mkdir -p $(dir $@)
	@echo "  CC tsan $<"
	@$(CC) $(CFLAGS_BASE) $(TSAN_FLAGS) $(DEFS) $(PKG_CFLAGS) -c $< -o $@

build/tsan/gen/%.o: build/gen/%.c
	@mkdir -p $(dir $@)
	@$(CC) $(CFLAGS_BASE) $(TSAN_FLAGS) -c $< -o $@

build/tsan/sol: $(TSAN_LIB_OBJ) $(patsubst %.c,build/tsan/%.o,$(CLI_SRC))
	@echo "  LD tsan $@"
	@$(CC) $(TSAN_FLAGS) -o $@ $^ $(LIBS)

build/tsan/unit/%: tests/unit/%.c tests/unit/helpers.h $(TSAN_LIB_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD tsan $@"
	@$(CC) $(CFLAGS_BASE) $(TSAN_FLAGS) $(PKG_CFLAGS) -rdynamic -o $@ $< $(TSAN_LIB_OBJ) $(LIBS) -lcmocka

tsan: build/tsan/sol $(TSAN_UNITS) model
	@TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1" bash tests/tsan/run.sh build/tsan/sol \
		$$(bash tools/fetch-model.sh) $(TSAN_UNITS)

# The real model, fetched once; in CI a failed fetch stops the tests here,
# loudly, instead of letting the tests that need it skip.
model:
	@bash tools/fetch-model.sh >/dev/null || { echo "make: fetching the test model failed (tools/fetch-model.sh);" \
		"the tests that need SmolLM2 cannot run" >&2; [ "$${CI:-}" != true ]; }

test: deps model
	@$(MAKE) --no-print-directory unit cli-test tui-test ref-test moe-test backend-test chat-test badinput-test crash-test fuzz-smoke tsan \
		$(if $(NVCC),build/sol-cuda.so cuda-host-test cuda-arch-test)

# README command 1: decode the default model (fetched once into the cache).
run: deps
	@$(MAKE) --no-print-directory build/sol
	@./build/sol run "$$(bash tools/fetch-model.sh)" --chat -p "What is the speed of light?" -n 96

bench: build/sol
	@bash bench/analyze-speed.sh build/sol

# sol_dot GB/s per weight type, scalar vs AVX2 side by side (bench/kernels.sh).
.PHONY: bench-kernels
KBENCH_OBJ := $(patsubst %.c,build/rel/%.o,$(wildcard kernels/cpu/*.c util/*.c)) \
              $(patsubst build/gen/%.c,build/rel/gen/%.o,$(GEN_SRC))
build/bench/kernel_bench: bench/kernel_bench.c $(KBENCH_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS_BASE) $(REL_FLAGS) $(PKG_CFLAGS) -o $@ $< $(KBENCH_OBJ) $(LIBS)

bench-kernels: build/bench/kernel_bench
	@bash bench/kernels.sh build/bench/kernel_bench

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)

KERNEL_SOURCES := $(wildcard kernels/cpu/*.c kernels/cpu/*.h)
build/rel/cli/cmd_tune.o build/rel/cli/tuning.o build/test/cli/cmd_tune.o build/test/cli/tuning.o: $(KERNEL_SOURCES)
