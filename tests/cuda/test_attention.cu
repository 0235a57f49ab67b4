// The CUDA attention's arithmetic (kernels/cuda/attention.cuh) on the host,
// where it needs no GPU: the keys a row sees are sol_kv_visible's, the
// splits of them cover each exactly once for every capacity, position,
// window and sink count, the head chunks cover a group, and the online
// softmax kept per warp, merged per block and then split by split (as
// attention.cu does) equals a direct float64 softmax-weighted sum. For
// prefill: the query tiles, the keys a tile of rows sees between them, its
// splits and key tiles hand every (row, visible key) pair to the kernel
// exactly once and no tile of keys that no row of it sees; and the online
// softmax a key tile at a time, then split by split, equals float64's.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cuda/attention.cuh"
extern "C" {
#include "kernels/backend.h"
}

static sol_kv_cache_layer cache_of(int64_t capacity, int64_t sinks)
{
    sol_kv_cache_layer c;
    memset(&c, 0, sizeof c);
    c.type = SOL_DT_F32;
    c.capacity = capacity;
    c.sinks = sinks;
    return c;
}

// Whether a cache of this capacity holds every key a row at pos sees (the
// engine sizes it so: the whole context, or sinks + window and more).
static bool holds(int64_t capacity, int64_t pos, int64_t window, int64_t sinks)
{
    return window > 0 ? capacity >= sinks + window && capacity > sinks : capacity > pos;
}

// Every visible position of a row at pos is some split's key exactly once,
// in order, in a slot of its own; no other position is.
static void check_cover(int64_t capacity, int64_t pos, int64_t window, int64_t sinks, int n_splits)
{
    sol_kv_cache_layer c = cache_of(capacity, sinks);
    sol_attn_keys keys = sol_attn_keys_of(pos, window, sinks);
    std::vector<int> seen(pos + 1, 0);
    std::vector<int> slot_used(capacity, 0);
    int64_t next = 0, last_pos = -1;
    for (int s = 0; s < n_splits; s++) {
        sol_attn_range r = sol_attn_split_range(keys.count, n_splits, s);
        if (r.begin != next || r.end < r.begin)
            fail_msg("split %d of %d over %lld keys: [%lld, %lld) after %lld", s, n_splits, (long long)keys.count,
                     (long long)r.begin, (long long)r.end, (long long)next);
        for (int64_t i = r.begin; i < r.end; i++) {
            int64_t t = sol_attn_key_pos(keys, i);
            if (t <= last_pos || t > pos || !sol_kv_visible(&c, window, t, pos))
                fail_msg("pos %lld window %lld sinks %lld: key %lld is position %lld", (long long)pos,
                         (long long)window, (long long)sinks, (long long)i, (long long)t);
            last_pos = t;
            seen[t]++;
            slot_used[sol_kv_slot(&c, t)]++;
        }
        next = r.end;
    }
    assert_int_equal(next, keys.count);
    for (int64_t t = 0; t <= pos; t++)
        if (seen[t] != (sol_kv_visible(&c, window, t, pos) ? 1 : 0))
            fail_msg("pos %lld window %lld sinks %lld splits %d: position %lld seen %d times", (long long)pos,
                     (long long)window, (long long)sinks, n_splits, (long long)t, seen[t]);
    for (int64_t k = 0; k < capacity; k++)
        if (slot_used[k] > 1)
            fail_msg("capacity %lld pos %lld window %lld sinks %lld: slot %lld holds %d visible keys",
                     (long long)capacity, (long long)pos, (long long)window, (long long)sinks, (long long)k,
                     slot_used[k]);
}

static void test_splits_cover_visible_keys(void **state)
{
    (void)state;
    const int64_t windows[] = {0, 1, 2, 5, 64, 100, 300};
    const int64_t sink_counts[] = {0, 1, 4, 70};
    const int64_t capacities[] = {1, 8, 65, 256, 257, 700, 4096};
    const int split_counts[] = {1, 2, 3, 7, 32};
    for (int64_t capacity : capacities)
        for (int64_t window : windows)
            for (int64_t sinks : sink_counts)
                for (int64_t pos = 0; pos < 1200; pos += pos < 80 ? 1 : 37) {
                    if (!holds(capacity, pos, window, sinks))
                        continue;
                    check_cover(capacity, pos, window, sinks, sol_attn_splits(capacity));
                    for (int n : split_counts)
                        check_cover(capacity, pos, window, sinks, n);
                }
}

static void test_split_counts(void **state)
{
    (void)state;
    assert_int_equal(sol_attn_splits(0), 1);
    assert_int_equal(sol_attn_splits(1), 1);
    assert_int_equal(sol_attn_splits(256), 1);
    assert_int_equal(sol_attn_splits(257), 2);
    assert_int_equal(sol_attn_splits(4096), 16);
    assert_int_equal(sol_attn_splits(8192), 32);
    assert_int_equal(sol_attn_splits(1 << 20), 32);
    // a short context keeps to the first splits; a long one uses them all, evenly
    sol_attn_range r = sol_attn_split_range(100, 32, 1);
    assert_int_equal(r.begin, SOL_ATTN_MIN_SPLIT_KEYS);
    assert_int_equal(r.end, 100);
    r = sol_attn_split_range(100, 32, 2);
    assert_int_equal(r.begin, r.end);
    r = sol_attn_split_range(32000, 32, 31);
    assert_int_equal(r.begin, 31000);
    assert_int_equal(r.end, 32000);
}

static void test_head_chunks_cover_group(void **state)
{
    (void)state;
    for (int group = 1; group <= 160; group++) {
        int chunks = sol_attn_head_chunks(group), per = sol_attn_chunk_heads(group), covered = 0;
        assert_true(per >= 1 && per <= SOL_ATTN_MAX_BLOCK_HEADS);
        for (int c = 0; c < chunks; c++) {
            int heads = per < group - c * per ? per : group - c * per; // as attention.cu's block_of
            if (heads < 1)
                fail_msg("group %d: chunk %d of %d (of %d) is empty", group, c, chunks, per);
            covered += heads;
        }
        assert_int_equal(covered, group);
    }
}

static bool same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

static void test_first_score(void **state)
{
    (void)state;
    sol_attn_part st = sol_attn_empty();
    float rescale, weight;
    sol_attn_add_score(&st, -3.5f, &rescale, &weight);
    assert_true(rescale == 0.0f && weight == 1.0f && st.max == -3.5f && st.sum == 1.0f);
    sol_attn_add_score(&st, -1.5f, &rescale, &weight); // a larger score rescales what came before
    assert_true(same_bits(rescale, expf(-2.0f)) && weight == 1.0f && st.max == -1.5f);
    assert_true(same_bits(st.sum, expf(-2.0f) + 1.0f));
}

// An empty split (max -inf, sum 0, an accumulator never written: NaN here)
// leaves a state as it was, bit for bit; an empty state takes a split's
// state and accumulator as they are.
static void test_empty_merge(void **state)
{
    (void)state;
    const int n = 5;
    float garbage[n], acc[n] = {0.25f, -1.0f, 3.0f, 1e-20f, -7.5f}, was[n];
    for (int i = 0; i < n; i++)
        garbage[i] = NAN;
    memcpy(was, acc, sizeof acc);
    sol_attn_part st = {2.5f, 3.75f};
    sol_attn_merge(&st, acc, sol_attn_empty(), garbage, n);
    assert_true(same_bits(st.max, 2.5f) && same_bits(st.sum, 3.75f));
    for (int i = 0; i < n; i++)
        assert_true(same_bits(acc[i], was[i]));

    sol_attn_part empty = sol_attn_empty();
    sol_attn_merge(&empty, garbage, st, acc, n);
    assert_true(same_bits(empty.max, 2.5f) && same_bits(empty.sum, 3.75f));
    for (int i = 0; i < n; i++)
        assert_true(same_bits(garbage[i], acc[i]));

    sol_attn_part both = sol_attn_empty();
    sol_attn_merge(&both, acc, sol_attn_empty(), garbage, n);
    assert_true(both.max == -INFINITY && both.sum == 0.0f);
}

enum { kDims = 6, kWarps = 4 };

// attention.cu's order of work, in float: per split, kWarps warps take its
// keys in turn with an online softmax each; warp 0 merges the others; then
// the splits merge in order into an empty state; out = acc / sum.
static void split_softmax(const std::vector<float> &score, const std::vector<float> &value, int n_splits, float *out)
{
    int64_t count = (int64_t)score.size();
    sol_attn_part total = sol_attn_empty();
    float total_acc[kDims] = {0};
    for (int s = 0; s < n_splits; s++) {
        sol_attn_range r = sol_attn_split_range(count, n_splits, s);
        sol_attn_part warp[kWarps];
        float acc[kWarps][kDims] = {};
        for (int w = 0; w < kWarps; w++)
            warp[w] = sol_attn_empty();
        for (int64_t i = r.begin; i < r.end; i++) {
            int w = (int)((i - r.begin) % kWarps);
            float rescale, weight;
            sol_attn_add_score(&warp[w], score[i], &rescale, &weight);
            for (int d = 0; d < kDims; d++)
                acc[w][d] = acc[w][d] * rescale + weight * value[i * kDims + d];
        }
        if (r.begin == r.end) { // the kernel writes an empty state and no accumulator
            float unwritten[kDims];
            for (float &u : unwritten)
                u = NAN;
            sol_attn_merge(&total, total_acc, sol_attn_empty(), unwritten, kDims);
            continue;
        }
        for (int w = 1; w < kWarps; w++)
            sol_attn_merge(&warp[0], acc[0], warp[w], acc[w], kDims);
        sol_attn_merge(&total, total_acc, warp[0], acc[0], kDims);
    }
    for (int d = 0; d < kDims; d++)
        out[d] = total_acc[d] / total.sum;
}

static void direct_softmax(const std::vector<float> &score, const std::vector<float> &value, double *out,
                           double *scale)
{
    double max = -INFINITY, sum = 0;
    for (float s : score)
        max = s > max ? s : max;
    for (int d = 0; d < kDims; d++)
        out[d] = scale[d] = 0;
    for (size_t i = 0; i < score.size(); i++) {
        double p = exp((double)score[i] - max);
        sum += p;
        for (int d = 0; d < kDims; d++) {
            out[d] += p * value[i * kDims + d];
            scale[d] += p * fabs(value[i * kDims + d]);
        }
    }
    for (int d = 0; d < kDims; d++) {
        out[d] /= sum;
        scale[d] /= sum;
    }
}

// Random scores (spread as softmax inputs are: up to +-30, some runs of
// rising scores so the max moves often) and values; the error of each
// output relative to sum p |v| / sum p, the size the float sums carry.
static void test_merge_matches_softmax(void **state)
{
    (void)state;
    std::mt19937 rng(1234);
    std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
    const int64_t counts[] = {1, 2, 3, 63, 64, 65, 200, 257, 1000, 4096, 20000};
    const int split_counts[] = {1, 2, 5, 16, 32};
    double worst = 0;
    for (int64_t count : counts)
        for (float spread : {0.5f, 4.0f, 30.0f})
            for (int n_splits : split_counts) {
                std::vector<float> score(count), value(count * kDims);
                for (int64_t i = 0; i < count; i++)
                    score[i] = i % 97 < 10 ? spread * (float)(i % 97) / 10 : spread * unit(rng);
                for (float &v : value)
                    v = unit(rng);
                float got[kDims];
                double want[kDims], scale[kDims];
                split_softmax(score, value, n_splits, got);
                direct_softmax(score, value, want, scale);
                for (int d = 0; d < kDims; d++) {
                    double err = fabs(got[d] - want[d]) / scale[d];
                    worst = err > worst ? err : worst;
                    if (err > 1e-6)
                        fail_msg("%lld keys, spread %g, %d splits, dim %d: %.9g, float64 %.9g (%.3g relative)",
                                 (long long)count, spread, n_splits, d, got[d], want[d], err);
                }
            }
    print_message("worst relative error %.3g\n", worst);
}

// ---- prefill -----------------------------------------------------------------

// The keys a tile of n rows at pos0.. sees between them: in rising position,
// in slots of their own (the cache holds them all at once), each seen by
// some row of the tile.
static void check_tile_keys(const sol_kv_cache_layer &c, const sol_attn_keys &keys, int64_t pos0, int n,
                            int64_t window)
{
    int64_t last_pos = -1;
    std::vector<int> slot_used(c.capacity, 0);
    for (int64_t i = 0; i < keys.count; i++) {
        int64_t t = sol_attn_key_pos(keys, i);
        bool some_row = false;
        for (int r = 0; r < n && !some_row; r++)
            some_row = sol_kv_visible(&c, window, t, pos0 + r);
        if (t <= last_pos || !some_row)
            fail_msg("rows at %lld..%lld window %lld sinks %lld: key %lld is position %lld (after %lld), seen: %d",
                     (long long)pos0, (long long)(pos0 + n - 1), (long long)window, (long long)c.sinks, (long long)i,
                     (long long)t, (long long)last_pos, some_row);
        last_pos = t;
        if (slot_used[sol_kv_slot(&c, t)]++)
            fail_msg("capacity %lld rows at %lld..%lld window %lld sinks %lld: slot of position %lld taken twice",
                     (long long)c.capacity, (long long)pos0, (long long)(pos0 + n - 1), (long long)window,
                     (long long)c.sinks, (long long)t);
    }
}

// One split of a query tile's keys, as attention.cu's prefill block walks
// it: key tile by key tile, each (row, key) pair that sol_kv_visible lets
// through counted in seen[row][position]. Every key tile is a non-empty
// run of at most tile_keys keys, following the last, and some row of the
// tile sees some key of it.
static void walk_split(const sol_kv_cache_layer &c, const sol_attn_keys &keys, sol_attn_range range, int tile_keys,
                       int64_t window, int64_t pos0, int r0, int n, std::vector<std::vector<int>> &seen)
{
    int64_t next = range.begin;
    for (int64_t kt = 0; kt < sol_attn_key_tiles(range, tile_keys); kt++) {
        sol_attn_range kr = sol_attn_key_tile(range, tile_keys, kt);
        if (kr.begin != next || kr.end <= kr.begin || kr.end - kr.begin > tile_keys)
            fail_msg("key tile %lld of [%lld, %lld) by %d: [%lld, %lld) after %lld", (long long)kt,
                     (long long)range.begin, (long long)range.end, tile_keys, (long long)kr.begin, (long long)kr.end,
                     (long long)next);
        next = kr.end;
        bool any = false;
        for (int r = 0; r < n; r++)
            for (int64_t i = kr.begin; i < kr.end; i++) {
                int64_t t = sol_attn_key_pos(keys, i);
                if (sol_kv_visible(&c, window, t, pos0 + r)) {
                    seen[r0 + r][t]++;
                    any = true;
                }
            }
        if (!any)
            fail_msg("rows at %lld..%lld window %lld sinks %lld: key tile [%lld, %lld) seen by none", (long long)pos0,
                     (long long)(pos0 + n - 1), (long long)window, (long long)c.sinks, (long long)kr.begin,
                     (long long)kr.end);
    }
    if (next != range.end)
        fail_msg("key tiles of [%lld, %lld) by %d end at %lld", (long long)range.begin, (long long)range.end,
                 tile_keys, (long long)next);
}

// A prompt of `rows` rows at positions pos.., cut as the prefill kernel
// cuts it: each (row, position) pair is walked once when the row sees the
// position, never otherwise.
static void check_tile_cover(int64_t capacity, int64_t pos, int rows, int64_t window, int64_t sinks, int tile_rows,
                             int tile_keys, int n_splits)
{
    sol_kv_cache_layer c = cache_of(capacity, sinks);
    std::vector<std::vector<int>> seen(rows, std::vector<int>(pos + rows, 0));
    int tiles = sol_attn_query_tiles(rows, tile_rows), covered = 0;
    for (int qt = 0; qt < tiles; qt++) {
        int r0 = qt * tile_rows, n = sol_attn_query_tile_rows(rows, tile_rows, qt);
        if (n < 1 || n > tile_rows)
            fail_msg("%d rows by %d: tile %d has %d", rows, tile_rows, qt, n);
        covered += n;
        sol_attn_keys keys = sol_attn_tile_keys(pos + r0, n, window, sinks);
        check_tile_keys(c, keys, pos + r0, n, window);
        int64_t next = 0;
        for (int s = 0; s < n_splits; s++) {
            sol_attn_range range = sol_attn_split_range(keys.count, n_splits, s);
            if (range.begin != next || range.end < range.begin)
                fail_msg("split %d of %d over %lld keys: [%lld, %lld)", s, n_splits, (long long)keys.count,
                         (long long)range.begin, (long long)range.end);
            walk_split(c, keys, range, tile_keys, window, pos + r0, r0, n, seen);
            next = range.end;
        }
        assert_int_equal(next, keys.count);
    }
    assert_int_equal(covered, rows);
    for (int r = 0; r < rows; r++)
        for (int64_t t = 0; t < pos + rows; t++)
            if (seen[r][t] != (sol_kv_visible(&c, window, t, pos + r) ? 1 : 0))
                fail_msg("prompt of %d at %lld, window %lld sinks %lld, tiles %d x %d keys, %d splits: row %d "
                         "(position %lld) walked position %lld %d times",
                         rows, (long long)pos, (long long)window, (long long)sinks, tile_rows, tile_keys, n_splits, r,
                         (long long)(pos + r), (long long)t, seen[r][t]);
}

static void test_tiles_cover_visible_pairs(void **state)
{
    (void)state;
    const int prompt_rows[] = {1, 2, 15, 16, 17, 33, 70};
    const int64_t positions[] = {0, 1, 5, 16, 63, 64, 200, 701};
    const int64_t windows[] = {0, 1, 2, 5, 16, 17, 64, 100};
    const int64_t sink_counts[] = {0, 1, 4, 70};
    const int tiles[][2] = {{SOL_ATTN_TILE_ROWS, 32}, {SOL_ATTN_TILE_ROWS, 16}, {5, 7}, {32, 64}, {1, 1}};
    const int split_counts[] = {1, 3, 32};
    int64_t checked = 0;
    for (int rows : prompt_rows)
        for (int64_t pos : positions)
            for (int64_t window : windows)
                for (int64_t sinks : sink_counts) {
                    // the engine's smallest cache for the step (a windowed ring holds window + rows - 1), and more
                    int64_t least = window > 0 ? sinks + window + rows - 1 : pos + rows;
                    for (int64_t capacity : {least, least + 41})
                        for (const auto &tile : tiles)
                            for (int n_splits : split_counts) {
                                check_tile_cover(capacity, pos, rows, window, sinks, tile[0], tile[1], n_splits);
                                checked++;
                            }
                }
    print_message("%lld prompts cut into tiles\n", (long long)checked);
}

// The kernel takes a tile's rows as positions pos0 + r, pos0 the tile's
// first row's: so they must be one sequence's rows, at consecutive
// positions, in a batched step as in a single one.
static void test_query_tiles_in_one_sequence(void **state)
{
    (void)state;
    for (int seqs = 1; seqs <= 8; seqs++)
        for (int per_seq = 2; per_seq <= 70; per_seq++) {
            int rows = seqs * per_seq, tiles = sol_attn_query_tiles(per_seq, SOL_ATTN_TILE_ROWS);
            for (int seq = 0; seq < seqs; seq++)
                for (int tile = 0; tile < tiles; tile++) {
                    int row0 = seq * per_seq + tile * SOL_ATTN_TILE_ROWS; // as attention.cu's prefill_block_of
                    int64_t pos0 = sol_step_row_pos(1000, rows, seqs, row0);
                    for (int r = 0; r < sol_attn_query_tile_rows(per_seq, SOL_ATTN_TILE_ROWS, tile); r++)
                        if (sol_step_seq(rows, seqs, row0 + r) != seq ||
                            sol_step_row_pos(1000, rows, seqs, row0 + r) != pos0 + r)
                            fail_msg("%d sequences of %d rows: tile %d of sequence %d, row %d", seqs, per_seq, tile,
                                     seq, r);
                }
        }
}

static void test_prefill_split_counts(void **state)
{
    (void)state;
    assert_int_equal(sol_attn_prefill_splits(0, 0), 1);
    assert_int_equal(sol_attn_prefill_splits(100, 4), 1);    // too few keys to split
    assert_int_equal(sol_attn_prefill_splits(8192, 128), 8); // a 64-row chunk, 32 heads: 1024 blocks
    assert_int_equal(sol_attn_prefill_splits(8192, 2048), 1); // enough blocks already
    assert_int_equal(sol_attn_prefill_splits(1 << 20, 1), SOL_ATTN_MAX_SPLITS);
    assert_int_equal(sol_attn_prefill_splits(1500, 8), 2);    // each split keeps 512 keys or more
}

static void test_open_tile(void **state)
{
    (void)state;
    sol_attn_part st = sol_attn_empty();
    assert_true(sol_attn_open_tile(&st, -INFINITY) == 1.0f); // a tile seen by none of an empty state
    assert_true(st.max == -INFINITY && st.sum == 0.0f);
    assert_true(sol_attn_open_tile(&st, 2.0f) == 0.0f); // the first tile: nothing to keep
    assert_true(st.max == 2.0f && st.sum == 0.0f);
    st.sum = 3.0f;
    assert_true(sol_attn_open_tile(&st, 1.0f) == 1.0f); // a smaller max keeps the state as it is
    assert_true(st.max == 2.0f && st.sum == 3.0f);
    float rescale = sol_attn_open_tile(&st, 4.0f);
    assert_true(same_bits(rescale, expf(-2.0f)) && st.max == 4.0f && same_bits(st.sum, 3.0f * expf(-2.0f)));
    assert_true(sol_attn_weight(st, -INFINITY) == 0.0f && sol_attn_weight(st, 4.0f) == 1.0f);
}

// attention.cu's prefill order of work for one (row, head), in float:
// the block's split of the tile's keys, tile_keys at a time; a key tile the
// row sees none of is skipped, else the state opens at the tile's largest
// score, and the seen keys' weights and weight * value, summed over the
// tile in key order, join its sum and accumulator; then the splits merge in
// order into an empty state (the combine; one split's state is the result
// as it is); out = acc / sum. score[i] is -inf where the row does not see
// key i.
static void prefill_softmax(const std::vector<float> &score, const std::vector<float> &value, int tile_keys,
                            int n_splits, float *out)
{
    int64_t count = (int64_t)score.size();
    sol_attn_part total = sol_attn_empty();
    float total_acc[kDims] = {0};
    for (int s = 0; s < n_splits; s++) {
        sol_attn_range range = sol_attn_split_range(count, n_splits, s);
        sol_attn_part st = sol_attn_empty();
        float acc[kDims] = {0};
        for (int64_t kt = 0; kt < sol_attn_key_tiles(range, tile_keys); kt++) {
            sol_attn_range kr = sol_attn_key_tile(range, tile_keys, kt);
            float tile_max = -INFINITY;
            for (int64_t i = kr.begin; i < kr.end; i++)
                tile_max = fmaxf(tile_max, score[i]);
            if (tile_max == -INFINITY) // the kernel's __any_sync: seen by none of the row
                continue;
            float rescale = sol_attn_open_tile(&st, tile_max);
            for (float &a : acc)
                a *= rescale;
            float tile_sum = 0.0f, tile_acc[kDims] = {0};
            for (int64_t i = kr.begin; i < kr.end; i++) {
                float w = sol_attn_weight(st, score[i]);
                if (w == 0.0f)
                    continue;
                tile_sum += w;
                for (int d = 0; d < kDims; d++)
                    tile_acc[d] += w * value[i * kDims + d];
            }
            st.sum += tile_sum;
            for (int d = 0; d < kDims; d++)
                acc[d] += tile_acc[d];
        }
        if (n_splits == 1) { // the block writes acc / sum itself
            for (int d = 0; d < kDims; d++)
                out[d] = acc[d] / st.sum;
            return;
        }
        sol_attn_merge(&total, total_acc, st, acc, kDims); // an empty split's (max -inf) merges as nothing
    }
    for (int d = 0; d < kDims; d++)
        out[d] = total_acc[d] / total.sum;
}

// Every row of a prompt's last query tile, over the keys the tile sees
// (random scores spread as in test_merge_matches_softmax, -inf where the row
// does not see the key), against float64: causal, windowed with and
// without sinks, long contexts, several key tile sizes and splits.
static void test_prefill_softmax_matches(void **state)
{
    (void)state;
    std::mt19937 rng(4321);
    std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
    const int64_t positions[] = {0, 5, 64, 1000, 20000};
    const int64_t windows[] = {0, 3, 40, 4096};
    const int64_t sink_counts[] = {0, 4};
    const int tile_keys[] = {16, 32, 7};
    const int split_counts[] = {1, 3, 8};
    double worst = 0;
    for (int64_t pos : positions)
        for (int64_t window : windows)
            for (int64_t sinks : sink_counts)
                for (float spread : {0.5f, 4.0f, 30.0f}) {
                    sol_kv_cache_layer c = cache_of(pos + SOL_ATTN_TILE_ROWS + sinks, sinks);
                    sol_attn_keys keys = sol_attn_tile_keys(pos, SOL_ATTN_TILE_ROWS, window, sinks);
                    std::vector<float> raw(keys.count), value(keys.count * kDims);
                    for (int64_t i = 0; i < keys.count; i++)
                        raw[i] = i % 97 < 10 ? spread * (float)(i % 97) / 10 : spread * unit(rng);
                    for (float &v : value)
                        v = unit(rng);
                    for (int r = 0; r < SOL_ATTN_TILE_ROWS; r++) {
                        std::vector<float> score(keys.count);
                        for (int64_t i = 0; i < keys.count; i++) {
                            bool sees = sol_kv_visible(&c, window, sol_attn_key_pos(keys, i), pos + r);
                            score[i] = sees ? raw[i] : -INFINITY;
                        }
                        double want[kDims], scale[kDims];
                        direct_softmax(score, value, want, scale);
                        for (int tk : tile_keys)
                            for (int n_splits : split_counts) {
                                float got[kDims];
                                prefill_softmax(score, value, tk, n_splits, got);
                                for (int d = 0; d < kDims; d++) {
                                    double err = fabs(got[d] - want[d]) / scale[d];
                                    worst = err > worst ? err : worst;
                                    if (!(err <= 1e-6))
                                        fail_msg("pos %lld row %d window %lld sinks %lld spread %g, %d-key tiles, %d "
                                                 "splits, dim %d: %.9g, float64 %.9g (%.3g relative)",
                                                 (long long)pos, r, (long long)window, (long long)sinks, spread, tk,
                                                 n_splits, d, got[d], want[d], err);
                                }
                            }
                    }
                }
    print_message("worst relative error %.3g\n", worst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_splits_cover_visible_keys), cmocka_unit_test(test_split_counts),
        cmocka_unit_test(test_head_chunks_cover_group),   cmocka_unit_test(test_first_score),
        cmocka_unit_test(test_empty_merge),               cmocka_unit_test(test_merge_matches_softmax),
        cmocka_unit_test(test_tiles_cover_visible_pairs), cmocka_unit_test(test_query_tiles_in_one_sequence),
        cmocka_unit_test(test_prefill_split_counts),      cmocka_unit_test(test_open_tile),
        cmocka_unit_test(test_prefill_softmax_matches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
