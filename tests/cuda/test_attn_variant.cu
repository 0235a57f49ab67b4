// The decode attention variants without a GPU (kernels/cuda/attn_variant.cu
// and variant_compile.cu): the validity rules on hand-checked cases with
// their reasons; the launch geometry against the engine's rule
// (attention.cuh); real NVRTC compiles of attention_decode.cuh for sm_80 and
// sm_90 with ptxas's registers, spills and shared memory, the engine's own
// instances among them; and the image cache shared with the matvec.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include <ftw.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/attn_variant.h"
#include "tests/cuda/expect_verdict.h"

static sol_attn_variant variant(int dpl, int heads, int warps, int slots = 256)
{
    return sol_attn_variant{dpl, heads, warps, slots};
}

// n_heads over n_kv_heads of head_dim, a 4096-slot cache, one row.
static sol_av_shape shape(int n_heads, int n_kv_heads, int head_dim)
{
    return sol_av_shape{n_heads, n_kv_heads, head_dim, 4096, 1};
}

// What attention.cu launches for head_dim and a group (split_kernel_for):
// 2, 4 or 8 dims a lane, the chunk's heads rounded up to 1, 2, 4 or 8, 4
// warps, a split per 256 slots.
static sol_attn_variant engine_default(int head_dim, int group)
{
    int dpl = head_dim <= 64 ? 2 : head_dim <= 128 ? 4 : 8, chunk = sol_attn_chunk_heads(group), heads = 1;
    while (heads < chunk)
        heads *= 2;
    return variant(dpl, heads, 4, SOL_ATTN_SLOTS_PER_SPLIT);
}

static sol_av_launch geometry(sol_attn_variant v, const sol_av_shape &s) { return sol_av_geometry(&v, &s); }

static bool valid_params(sol_attn_variant v) { return sol_av_check_params(&v, nullptr, 0) == 0; }

// ---- validity ----

static void expect_params(sol_attn_variant v, const char *reason)
{
    char why[256] = "";
    int rc = sol_av_check_params(&v, why, sizeof why);
    expect_verdict(rc, why, reason);
}

static void expect_shape(sol_attn_variant v, sol_av_shape s, const char *reason)
{
    char why[256] = "";
    int rc = sol_av_check_shape(&v, &s, why, sizeof why);
    expect_verdict(rc, why, reason);
}

static void test_params_rules(void **state)
{
    (void)state;
    for (int dpl : {2, 4, 8})
        for (int heads : {1, 2, 4, 8})
            expect_params(variant(dpl, heads, 4), nullptr); // every instance the engine builds
    expect_params(variant(1, 1, 32, 128), nullptr);          // 1024 threads
    expect_params(variant(8, 4, 8, 1024), nullptr);
    expect_params(variant(3, 1, 4), "dims_per_lane 3: 1, 2, 4 or 8");
    expect_params(variant(16, 1, 4), "dims_per_lane 16: 1, 2, 4 or 8");
    expect_params(variant(2, 3, 4), "heads_per_block 3: 1, 2, 4 or 8");
    expect_params(variant(2, 16, 4), "heads_per_block 16: 1, 2, 4 or 8");
    expect_params(variant(2, 1, 0), "warps 0: 1 to 32 (1024 threads a block at most)");
    expect_params(variant(2, 1, 33), "warps 33: 1 to 32");
    expect_params(variant(2, 1, 4, 32), "slots_per_split 32: a power of two from 64 to 65536");
    expect_params(variant(2, 1, 4, 300), "slots_per_split 300");
    // queries 8 x 256 x 4 + states 8 x 8 x 8 + accumulators 8 x 8 x 256 x 4
    assert_int_equal(sol_attn_decode_smem_bytes(8, 8, 8), 8192 + 512 + 65536);
    expect_params(variant(8, 8, 8), "74240 bytes of static shared memory per block");
    expect_params(variant(4, 8, 16), "bytes of static shared memory");
    // the largest the engine launches, as nvcc's ptxas reports it
    assert_int_equal(sol_attn_decode_smem_bytes(8, 8, 4), 41216);
}

static void test_shape_rules(void **state)
{
    (void)state;
    expect_shape(variant(4, 4, 4), shape(32, 8, 128), nullptr);  // Llama-3 8B
    expect_shape(variant(2, 1, 4), shape(12, 12, 64), nullptr);  // MHA
    expect_shape(variant(8, 8, 2), shape(16, 1, 256), nullptr);  // MQA: two chunks of 8
    expect_shape(variant(1, 8, 4), shape(48, 8, 32), nullptr);   // a group of 6 padded to 8
    expect_shape(variant(4, 2, 8), shape(48, 8, 128), nullptr);  // or cut into 3 chunks of 2
    expect_shape(variant(2, 4, 4), shape(32, 8, 128), "dims_per_lane 2 holds 64 dims, fewer than head_dim 128");
    expect_shape(variant(8, 4, 4), shape(32, 8, 128), "dims_per_lane 8: 4 already holds head_dim 128");
    expect_shape(variant(4, 4, 4), shape(32, 8, 96), nullptr);   // 96: 4 a lane, the last 32 lanes' dims idle
    // the engine runs head_dim 32 with 2 dims a lane; a variant takes 1
    expect_shape(engine_default(32, 1), shape(8, 8, 32), "dims_per_lane 2: 1 already holds head_dim 32");
    expect_shape(variant(4, 8, 4), shape(32, 8, 128), "heads_per_block 8: a group of 4 query heads needs at most 4");
    expect_shape(variant(4, 2, 4), shape(8, 8, 128), "heads_per_block 2: a group of 1 query heads needs at most 1");
    expect_shape(variant(4, 4, 4), shape(30, 8, 128), "30 query heads over 8 KV heads: not whole groups");
    expect_shape(variant(8, 1, 4), shape(8, 8, 300), "head_dim 300: 1 to 256");
    sol_av_shape empty = shape(32, 8, 128);
    empty.capacity = 0;
    expect_shape(variant(4, 4, 4), empty, "a cache of 0 slots");
    sol_av_shape wide = shape(32, 8, 128);
    wide.rows = 65536;
    expect_shape(variant(4, 4, 4), wide, "65536 rows: 1 to 65535");
    expect_shape(variant(4, 4, 3, 100), shape(32, 8, 128), "slots_per_split 100"); // the parameters first
    // the engine's own choice passes for every head_dim it takes from 33 up
    // and every group up to 64
    for (int head_dim : {64, 80, 96, 128, 160, 256})
        for (int group = 1; group <= 64; group++) {
            sol_attn_variant v = engine_default(head_dim, group);
            expect_shape(v, shape(2 * group, 2, head_dim), nullptr);
        }
}

// With 8 heads a block and 256 slots a split the geometry is the engine's;
// with others, every group is covered by chunks that fit the block.
static void test_geometry(void **state)
{
    (void)state;
    for (int group = 1; group <= 64; group++)
        for (int64_t capacity : {1, 256, 257, 4096, 8192, 1 << 20}) {
            sol_av_shape s = {4 * group, 4, 128, capacity, 3};
            sol_av_launch l = geometry(variant(4, 8, 4), s);
            assert_int_equal(l.head_chunks, sol_attn_head_chunks(group));
            assert_int_equal(l.chunk_heads, sol_attn_chunk_heads(group));
            assert_int_equal(l.n_splits, sol_attn_splits(capacity));
            assert_int_equal(l.grid_x, 4 * l.head_chunks);
            assert_int_equal(l.grid_y, l.n_splits);
            assert_int_equal(l.grid_z, 3);
            assert_int_equal(l.threads, 128);
            for (int heads : {1, 2, 4, 8}) {
                l = geometry(variant(4, heads, 4), s);
                assert_true(l.chunk_heads <= heads);
                assert_true(l.head_chunks * l.chunk_heads >= group);
                assert_true((l.head_chunks - 1) * l.chunk_heads < group); // the last chunk holds a head
            }
        }
    sol_av_shape s = {32, 8, 128, 4096, 2};
    sol_av_launch l = geometry(variant(4, 2, 8, 512), s);
    assert_int_equal(l.head_chunks, 2);
    assert_int_equal(l.n_splits, 8);
    assert_int_equal(l.threads, 256);
    assert_int_equal(l.combine_blocks, 2 * 32);
    assert_int_equal(l.workspace_bytes, (size_t)2 * 32 * 8 * (sizeof(sol_attn_part) + 128 * sizeof(float)));
    s.capacity = 512; // one split: the split kernel writes the output, no workspace
    l = geometry(variant(4, 2, 8, 512), s);
    assert_int_equal(l.n_splits, 1);
    assert_int_equal(l.combine_blocks, 0);
    assert_int_equal(l.workspace_bytes, 0);
}

static void test_names(void **state)
{
    (void)state;
    char buf[128];
    sol_attn_variant v = variant(4, 8, 2, 512);
    sol_av_label(&v, buf, sizeof buf);
    assert_string_equal(buf, "d4 h8 w2 s512");
    sol_av_kernel_expr(&v, buf, sizeof buf);
    assert_string_equal(buf, "attention_split_kernel<4, 8, 2>");
    sol_av_combine_expr(buf, sizeof buf);
    assert_string_equal(buf, "attention_combine_kernel");
}

// ---- NVRTC ----

static void print_row(const sol_attn_variant *v, const sol_mv_image *img, const char *verdict)
{
    char label[64];
    sol_av_label(v, label, sizeof label);
    printf("  %-16s sm_%d %4d %6d %6d %7.1f  %s\n", label, img->sm, img->res.registers,
           img->res.spill_store_bytes + img->res.spill_load_bytes, img->res.smem_bytes, img->compile_ms, verdict);
}

static int build(sol_mv_compiler *c, const sol_attn_variant &v, int sm, sol_mv_image *img, sol_err *err)
{
    char notice[512];
    int rc = sol_av_build(c, &v, sm, img, notice, sizeof notice, err);
    if (notice[0])
        fail_msg("unexpected notice: %s", notice);
    return rc;
}

static void expect_image(const sol_attn_variant &v, const sol_mv_image &img)
{
    assert_true(img.res.registers > 0 && img.res.registers <= 255);
    assert_int_equal(img.res.smem_bytes, sol_av_smem_bytes(&v)); // the formula is what ptxas allots
    assert_true(img.cubin.size() > 4 && memcmp(img.cubin.data(), "\x7f" "ELF", 4) == 0);
    assert_true(strncmp(img.kernel, "_Z22attention_split_kernelILi", 29) == 0);
    assert_non_null(strstr(img.sum, "attention_combine_kernel"));
}

// DPL 1, 2, 4, 8 x HEADS 1, 4, 8 x WARPS 2, 4, 8 (the valid ones: 35), then
// the engine's HEADS 2 instances, for sm_80 and sm_90: 76 compiles of
// 0.15 to 0.3 s each. HEADS 2 at other warps is left out to keep the test
// near 15 s; it is the same template.
static void test_compile(void **state)
{
    (void)state;
    std::vector<sol_attn_variant> grid;
    for (int dpl : {1, 2, 4, 8})
        for (int heads : {1, 4, 8})
            for (int warps : {2, 4, 8})
                if (valid_params(variant(dpl, heads, warps)))
                    grid.push_back(variant(dpl, heads, warps));
    assert_int_equal(grid.size(), 35); // d8 h8 w8 is the one over 48 KiB
    for (int dpl : {2, 4, 8})
        grid.push_back(variant(dpl, 2, 4));
    sol_mv_compiler c = {nullptr, 0, 0};
    printf("  %-16s %5s %4s %6s %6s %7s\n", "variant", "arch", "regs", "spills", "smem", "ms");
    for (int sm : {80, 90})
        for (const sol_attn_variant &v : grid) {
            sol_mv_image img;
            sol_err err = {0, ""};
            int rc = build(&c, v, sm, &img, &err);
            print_row(&v, &img, rc ? err.msg : "ok");
            if (rc != SOL_MV_OK && rc != SOL_MV_REJECTED)
                fail_msg("sm_%d: %s", sm, err.msg);
            expect_image(v, img);
            bool spills = img.res.spill_store_bytes + img.res.spill_load_bytes > 0;
            assert_int_equal(rc == SOL_MV_REJECTED, spills); // 255 registers x 256 threads fit: only spills reject
            bool engine = v.warps == 4 && v.dims_per_lane > 1; // every instance of attention.cu
            if (engine && rc != SOL_MV_OK)
                fail_msg("the engine's own instance is rejected on sm_%d: %s", sm, err.msg);
        }
    assert_int_equal(c.nvrtc_compiles, 2 * (int)grid.size());
}

// A variant over the shared-memory limit is refused with its reason before
// NVRTC runs. Within the limit the widest block (1024 threads, 8 heads)
// compiles to what its __launch_bounds__ allows, 64 registers a thread,
// without spilling: the limit keeps every valid variant's accumulators in
// registers, so the register and spill rules (variant_compile.cu, shared
// with the matvec and tested there) never reject one of the grid above.
static void test_rejected(void **state)
{
    (void)state;
    sol_mv_compiler c = {nullptr, 0, 0};
    sol_mv_image img;
    sol_err err = {0, ""};
    assert_int_equal(build(&c, variant(8, 8, 8), 90, &img, &err), SOL_MV_INVALID);
    assert_non_null(strstr(err.msg, "74240 bytes of static shared memory per block"));
    assert_int_equal(build(&c, variant(8, 4, 16), 90, &img, &err), SOL_MV_INVALID);
    assert_non_null(strstr(err.msg, "70144 bytes of static shared memory per block (dims_per_lane 8 x heads 4 x warps 16)"));
    assert_int_equal(c.nvrtc_compiles, 0);
    sol_attn_variant widest = variant(1, 8, 32);
    int rc = build(&c, widest, 90, &img, &err);
    print_row(&widest, &img, rc ? err.msg : "ok");
    assert_int_equal(rc, SOL_MV_OK);
    assert_int_equal(c.nvrtc_compiles, 1);
    assert_true(img.res.registers <= SOL_MV_REGS_PER_BLOCK / 1024);
    assert_int_equal(img.res.spill_store_bytes + img.res.spill_load_bytes, 0);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

// Attention images go through the matvec's cache; their keys cover the
// attention source, so the two kernels' files never meet.
static void test_cache(void **state)
{
    (void)state;
    assert_true(sol_av_source_key() != sol_mv_source_key());
    char root[] = "/tmp/sol-av-test-XXXXXX";
    assert_non_null(mkdtemp(root));
    std::string dir = std::string(root) + "/cache";
    sol_mv_compiler c = {dir.c_str(), 0, 0};
    sol_attn_variant v = variant(4, 4, 4);
    sol_mv_image first, again, other;
    sol_err err = {0, ""};
    assert_int_equal(build(&c, v, 80, &first, &err), SOL_MV_OK);
    assert_int_equal(build(&c, v, 80, &again, &err), SOL_MV_OK);
    assert_int_equal(c.nvrtc_compiles, 1);
    assert_int_equal(c.cache_hits, 1);
    assert_true(again.from_cache && again.cubin == first.cubin && again.key == first.key);
    assert_string_equal(again.kernel, first.kernel);
    assert_string_equal(again.sum, first.sum);
    assert_memory_equal(&again.res, &first.res, sizeof first.res);
    // another split rule is the same image: slots a split is a launch argument
    assert_int_equal(build(&c, variant(4, 4, 4, 1024), 80, &other, &err), SOL_MV_OK);
    assert_int_equal(c.cache_hits, 2);
    assert_int_equal(other.key, first.key);
    assert_int_equal(build(&c, variant(4, 4, 2), 80, &other, &err), SOL_MV_OK);
    assert_int_equal(c.nvrtc_compiles, 2);
    assert_true(other.key != first.key);
    assert_int_equal(nftw(root, remove_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_rules), cmocka_unit_test(test_shape_rules), cmocka_unit_test(test_geometry),
        cmocka_unit_test(test_names),        cmocka_unit_test(test_compile),     cmocka_unit_test(test_rejected),
        cmocka_unit_test(test_cache),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
