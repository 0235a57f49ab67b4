/* AVX2 kernels of the integer-dot path (act_q8.h). Compiled per function
 * (target attribute) like simd_avx2.c; dispatch.c calls them only on a CPU
 * with AVX2 + FMA + F16C. */
#include "kernels/cpu/act_q8.h"

#if defined(__x86_64__)

#include <assert.h>
#include <immintrin.h>
#include <math.h>
#include <stddef.h>

#include "kernels/cpu/avx2_util.h"

AVX2 static inline float hmax(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* Same arithmetic as the reference: d = amax / 127 and x * (1 / d) in f32,
 * rounded half to even (cvtps rounds in the default mode), so the codes are
 * bit-identical. */
AVX2 void sol_quantize_act_avx2(const float *x, sol_q8_block *out, int64_t n)
{
    assert(n % SOL_Q8_BLOCK == 0);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < n / SOL_Q8_BLOCK; b++, x += SOL_Q8_BLOCK) {
        __m256 v[4], amax = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) {
            v[i] = _mm256_loadu_ps(x + 8 * i);
            amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[i]));
        }
        float d = hmax(amax) / 127, id = d != 0 ? 1.0f / d : 0.0f;
        __m256 scale = _mm256_set1_ps(id);
        __m256i q[4];
        for (int i = 0; i < 4; i++)
            q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], scale));
        __m256i sum = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        s = _mm_hadd_epi32(s, s);
        s = _mm_hadd_epi32(s, s);
        /* int32 -> int8 in element order: packs interleave 128-bit lanes,
         * the permute puts them back */
        __m256i p16a = _mm256_packs_epi32(q[0], q[1]), p16b = _mm256_packs_epi32(q[2], q[3]);
        __m256i p8 = _mm256_packs_epi16(p16a, p16b);
        p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)out[b].q, p8);
        out[b].d = d;
        out[b].sum = d * (float)_mm_cvtsi128_si32(s);
    }
}

/* ---- the integer dots ------------------------------------------------------
 * Each 32-element chunk of a weight row is decoded once into 32 unsigned byte
 * codes (Q8_0: magnitudes, with the signs moved onto the activations) and
 * multiplied with every input of the tile by maddubs (u8 x s8 -> pairs
 * summed in int16, which never saturates: |code| <= 128 and |q| <= 127 give
 * at most 32512) and madd (-> int32, times a per-half integer scale where
 * the type has one). Then one conversion to float and one FMA per
 * (row, input) pair with the float factors. Offsets (Q4_0's -8, Q4_1's min,
 * Q4_K's mins) multiply x.sum; they go into the lanes of the pair's
 * accumulator (spread over the 8 lanes, or Q4_K's 8 chunks one a lane)
 * instead of taking a register of their own, since the lanes are summed at
 * the end anyway.
 *
 * A kernel is written once for any tile and inlined into one function per
 * tile shape with literal row and input counts: the loops over rows and
 * inputs unroll, each (row, input) accumulator stays in a register, and a
 * decoded weight chunk serves every input. */

#define QK 32    /* elements of a Q8_0, Q4_0 or Q4_1 block, and of a chunk */
#define QK_K 256 /* elements of a Q4_K or Q6_K super-block */

#define TILE_KERNEL AVX2 static inline __attribute__((always_inline))

/* One call's operands; inputs are addressed in bytes (blocks may sit at any
 * address, so nothing is read through a sol_q8_block pointer). */
typedef struct {
    const uint8_t *w; /* weight row 0 */
    size_t row_bytes;
    const uint8_t *x; /* block 0 of input 0 */
    size_t x_bytes;   /* from one input to the next */
    int64_t n;        /* elements per row */
    float *out;
    int64_t out_stride;
} tile;

typedef __m256 tile_acc[SOL_Q8_MAX_ROWS][SOL_Q8_MAX_INPUTS];

/* Accumulator sets: a pair's running sum is a chain of dependent FMAs (4
 * cycles each), which would leave a tile of one or two pairs waiting on
 * latency, so its chunks take turns over several sets, added up at the end.
 * From four pairs on, one set each keeps the FMA units busy (and more would
 * not fit in 16 registers). */
#define ACC_SETS(nr, nx) ((nr) * (nx) >= 4 ? 1 : 4 / ((nr) * (nx)))
#define MAX_ACC_SETS 4

/* Block c of input i and its fields. */
static inline const uint8_t *x_block(const tile *t, int i, int64_t c)
{
    return t->x + (size_t)i * t->x_bytes + (size_t)c * sizeof(sol_q8_block);
}

AVX2 static inline __m256i x_codes(const uint8_t *xb)
{
    return _mm256_loadu_si256((const __m256i *)(xb + offsetof(sol_q8_block, q)));
}

AVX2 static inline __m256 x_step(const uint8_t *xb)
{
    return _mm256_set1_ps(load_f32(xb + offsetof(sol_q8_block, d)));
}

AVX2 static inline __m256 x_sum(const uint8_t *xb)
{
    return _mm256_set1_ps(load_f32(xb + offsetof(sol_q8_block, sum)));
}

/* Weight row r of the tile. */
static inline const uint8_t *w_row(const tile *t, int r) { return t->w + (size_t)r * t->row_bytes; }

/* 8 int32 lanes summing to u . s (u unsigned bytes, s signed). */
AVX2 static inline __m256i dot_u8_i8(__m256i u, __m256i s)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* The rows of a tile are adjacent in a weight matrix, so a tile reads one
 * contiguous range as nr interleaved streams, and the next tile the range
 * after it. On the machine this was tuned on (a Zen 4 VM), 2 or 4
 * interleaved streams of a few KiB come from DRAM at half the speed of one
 * sequential stream or less; prefetching the ranges in address order, at the
 * pace the rows advance together and one tile ahead, makes them one
 * sequential stream again (4 rows of Q4_0: 7 -> 15 GB/s). `at` is the offset
 * in the tile's range that its rows have reached together. A single row is a
 * sequential stream already, and only slowed by the prefetches. */
TILE_KERNEL void prefetch_tile(const tile *t, const int nr, size_t at)
{
    if (nr > 1)
        _mm_prefetch((const char *)t->w + at + t->row_bytes * (size_t)nr, _MM_HINT_T0);
}

TILE_KERNEL void tile_zero(tile_acc acc[], const int sets, const int nr, const int nx)
{
#pragma GCC unroll 4
    for (int k = 0; k < sets; k++)
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
            for (int i = 0; i < nx; i++)
                acc[k][r][i] = _mm256_setzero_ps();
}

/* out[i * out_stride + r] = the sum of every set's lanes. */
TILE_KERNEL void tile_store(const tile *t, tile_acc acc[], const int sets, const int nr, const int nx)
{
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int i = 0; i < nx; i++) {
            __m256 sum = acc[0][r][i];
#pragma GCC unroll 4
            for (int k = 1; k < sets; k++)
                sum = _mm256_add_ps(sum, acc[k][r][i]);
            t->out[i * t->out_stride + r] = hsum(sum);
        }
}

/* Every (row, input) pair of a tile for one chunk: decode_row (a statement
 * using r) decodes row r's chunk, pair (using r and i) adds row r's chunk
 * times input i's block to the pair's sums. With fewer rows than inputs all
 * rows are decoded first and the inputs make the outer loop, so an input's
 * block is loaded once and dropped; otherwise the rows make the outer loop
 * and a row's chunk is dropped after its inputs. Beside the accumulators,
 * only the smaller side's values stay live, which keeps 8 pairs in the 16
 * registers. */
#define FOR_EACH_PAIR(nr, nx, decode_row, pair)                                                                  \
    do {                                                                                                         \
        if ((nr) < (nx)) {                                                                                       \
            _Pragma("GCC unroll 4") for (int r = 0; r < (nr); r++) { decode_row; }                               \
            _Pragma("GCC unroll 4") for (int i = 0; i < (nx); i++)                                               \
                _Pragma("GCC unroll 4") for (int r = 0; r < (nr); r++) { pair; }                                 \
        } else {                                                                                                 \
            _Pragma("GCC unroll 4") for (int r = 0; r < (nr); r++) {                                             \
                decode_row;                                                                                      \
                _Pragma("GCC unroll 4") for (int i = 0; i < (nx); i++) { pair; }                                 \
            }                                                                                                    \
        }                                                                                                        \
    } while (0)

/* A row's decoded chunk; what each field holds depends on the type. */
typedef struct {
    __m256i q;     /* the 32 codes as bytes */
    __m256i aux;   /* Q8_0: |q|; K types: the chunk's integer scales as int16 */
    __m256 d, off; /* the block's step, and Q4_1's offset m / 8 */
} w_chunk;

/* ---- Q8_0: 34 bytes, f16 d then 32 int8; value = d * q --------------------
 * maddubs wants one unsigned operand: |q| (sign_epi8(q, q); -128 comes back
 * as the byte 0x80, which maddubs reads as 128) against x with q's signs. */

TILE_KERNEL w_chunk q8_0_decode(const tile *t, int r, int64_t c, const int nr)
{
    const uint8_t *b = w_row(t, r) + 34 * c;
    prefetch_tile(t, nr, (size_t)(nr * c + r) * 34);
    w_chunk w;
    w.q = _mm256_loadu_si256((const __m256i *)(b + 2));
    w.aux = _mm256_sign_epi8(w.q, w.q);
    w.d = load_scale(b);
    return w;
}

TILE_KERNEL void q8_0_pair(const w_chunk *w, const uint8_t *xb, __m256 *acc)
{
    __m256i p = dot_u8_i8(w->aux, _mm256_sign_epi8(x_codes(xb), w->q));
    *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(w->d, x_step(xb)), *acc);
}

/* ---- Q4_0 and Q4_1: f16 d (Q4_1: then f16 m), 16 bytes of nibbles; byte i
 * holds element i low and element i + 16 high. Q4_0: value = d * (q - 8);
 * Q4_1: value = d * q + m. ------------------------------------------------ */

/* The 32 nibble codes in element order. */
AVX2 static inline __m256i q4_codes(const uint8_t *qs)
{
    __m128i v = _mm_loadu_si128((const __m128i *)qs);
    __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(v), _mm_srli_epi16(v, 4), 1);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

TILE_KERNEL w_chunk q4_0_decode(const tile *t, int r, int64_t c, const int nr)
{
    const uint8_t *b = w_row(t, r) + 18 * c;
    prefetch_tile(t, nr, (size_t)(nr * c + r) * 18);
    w_chunk w;
    w.q = q4_codes(b + 2);
    w.d = load_scale(b);
    return w;
}

/* d * (x.d * (q . x.q) - 8 * x.sum): per lane (x.d * p - x.sum) * d. */
TILE_KERNEL void q4_0_pair(const w_chunk *w, const uint8_t *xb, __m256 *acc)
{
    __m256 p = _mm256_cvtepi32_ps(dot_u8_i8(w->q, x_codes(xb)));
    *acc = _mm256_fmadd_ps(_mm256_fmsub_ps(p, x_step(xb), x_sum(xb)), w->d, *acc);
}

TILE_KERNEL w_chunk q4_1_decode(const tile *t, int r, int64_t c, const int nr)
{
    const uint8_t *b = w_row(t, r) + 20 * c;
    prefetch_tile(t, nr, (size_t)(nr * c + r) * 20);
    w_chunk w;
    w.q = q4_codes(b + 4);
    w.d = load_scale(b);
    w.off = _mm256_mul_ps(load_scale(b + 2), _mm256_set1_ps(0.125f));
    return w;
}

/* d * x.d * (q . x.q) + m * x.sum: per lane p * (d * x.d) + (m / 8) * x.sum. */
TILE_KERNEL void q4_1_pair(const w_chunk *w, const uint8_t *xb, __m256 *acc)
{
    __m256 p = _mm256_cvtepi32_ps(dot_u8_i8(w->q, x_codes(xb)));
    *acc = _mm256_fmadd_ps(p, _mm256_mul_ps(w->d, x_step(xb)), *acc);
    *acc = _mm256_fmadd_ps(w->off, x_sum(xb), *acc);
}

/* Chunk c of one of the three types above into acc. */
TILE_KERNEL void chunk_of_32(const tile *t, const sol_dtype type, int64_t c, tile_acc acc, const int nr,
                             const int nx)
{
    w_chunk w[SOL_Q8_MAX_ROWS];
    switch (type) {
    case SOL_DT_Q8_0:
        FOR_EACH_PAIR(nr, nx, w[r] = q8_0_decode(t, r, c, nr), q8_0_pair(&w[r], x_block(t, i, c), &acc[r][i]));
        return;
    case SOL_DT_Q4_0:
        FOR_EACH_PAIR(nr, nx, w[r] = q4_0_decode(t, r, c, nr), q4_0_pair(&w[r], x_block(t, i, c), &acc[r][i]));
        return;
    default:
        FOR_EACH_PAIR(nr, nx, w[r] = q4_1_decode(t, r, c, nr), q4_1_pair(&w[r], x_block(t, i, c), &acc[r][i]));
        return;
    }
}

/* One of the three types over the whole row, chunk c into set c % sets
 * (the last chunks, fewer than sets, into set 0). */
TILE_KERNEL void tile_blocks_of_32(const tile *t, const sol_dtype type, const int nr, const int nx)
{
    const int sets = ACC_SETS(nr, nx);
    tile_acc acc[MAX_ACC_SETS];
    tile_zero(acc, sets, nr, nx);
    const int64_t chunks = t->n / QK;
    int64_t c = 0;
    for (; c + sets <= chunks; c += sets)
#pragma GCC unroll 4
        for (int k = 0; k < sets; k++)
            chunk_of_32(t, type, c + k, acc[k], nr, nx);
    for (; c < chunks; c++)
        chunk_of_32(t, type, c, acc[0], nr, nx);
    tile_store(t, acc, sets, nr, nx);
}

/* ---- Q8_0 against one input, one or two rows (decode): 8 blocks at once ---
 * On the Zen 4 this was tuned on, as on Intel cores since Haswell, sign_epi8,
 * maddubs, madd, mul and FMA all issue on the same two vector pipes, and
 * vector loads go two a cycle, where a 32-byte load that crosses a cache
 * line takes two turns (the 34-byte weight and 40-byte input blocks do that
 * about every other block). A block's integer part takes 4 of those pipes'
 * operations (2 signs, maddubs, madd) and 2 vector loads; the per-block float
 * part of q8_0_pair adds a multiply and an FMA (6 operations: 3 cycles), an
 * f16 conversion and two scalar loads: 3.7 cycles a block, cache-resident.
 * Here 8 blocks are summed together: their 8 x 8 int32 lanes go through a
 * transpose-and-add tree (unpacks, a blend and adds, which run beside the
 * multiplies; one lane-crossing permute) to one vector of the 8 block sums,
 * converted once and scaled by one FMA with the 8 scale products: 35
 * operations on those two pipes per 8 blocks instead of 48; 3.2 cycles a
 * block. What is left is the integer part and the loads: the scales still
 * take a load each, as they lie 34 and 40 bytes apart between the codes.
 * The sums are exact: 32 products of at most 128 * 127 stay below 2^24. */

#define GROUP 8 /* blocks summed together */

/* 8 int32 lanes that sum to the dot of a Q8_0 block's codes with xq. */
AVX2 static inline __m256i q8_0_block_lanes(const uint8_t *wb, __m256i xq)
{
    __m256i q = _mm256_loadu_si256((const __m256i *)(wb + 2));
    return dot_u8_i8(_mm256_sign_epi8(q, q), _mm256_sign_epi8(xq, q));
}

/* In each 128-bit half, [a0+a2, b0+b2, a1+a3, b1+b3]: the lanes of two
 * vectors summed in pairs, interleaved. With 64-bit units (sum_pairs_64)
 * the same for pairs of those, so two levels leave, in each half, the sums
 * of four vectors' lanes of that half. */
AVX2 static inline __m256i sum_pairs_32(__m256i a, __m256i b)
{
    return _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
}

AVX2 static inline __m256i sum_pairs_64(__m256i a, __m256i b)
{
    return _mm256_add_epi32(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b));
}

/* a: vectors 0-3's sums of each half, b: vectors 4-7's; the halves added
 * crosswise give vectors 0-3's whole sums in the low half, 4-7's in the high. */
AVX2 static inline __m256i sum_halves(__m256i a, __m256i b)
{
    return _mm256_add_epi32(_mm256_blend_epi32(a, b, 0xf0), _mm256_permute2x128_si256(a, b, 0x21));
}

/* Lane k: the sum of m[k]'s lanes. */
AVX2 static inline __m256i block_sums_of_8(const __m256i m[GROUP])
{
    return sum_halves(sum_pairs_64(sum_pairs_32(m[0], m[1]), sum_pairs_32(m[2], m[3])),
                      sum_pairs_64(sum_pairs_32(m[4], m[5]), sum_pairs_32(m[6], m[7])));
}

/* The f16 steps of the 8 Q8_0 blocks from wb, as floats: packed in general
 * registers, then two moves and one conversion (cheaper here than 8 vector
 * inserts or blends of broadcasts). */
AVX2 static inline __m256 q8_0_steps_of_8(const uint8_t *wb)
{
    uint64_t lo = 0, hi = 0;
#pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        lo |= (uint64_t)load_u16(wb + 34 * k) << 16 * k;
        hi |= (uint64_t)load_u16(wb + 34 * (k + 4)) << 16 * k;
    }
    return _mm256_cvtph_ps(_mm_unpacklo_epi64(_mm_cvtsi64_si128((long long)lo), _mm_cvtsi64_si128((long long)hi)));
}

/* The steps of blocks c .. c + 7 of input 0: each broadcast, then blended
 * into its lane (a tree, so that no blend waits on a long chain). */
AVX2 static inline __m256 x_steps_of_8(const tile *t, int64_t c)
{
    __m256 s[GROUP];
#pragma GCC unroll 8
    for (int k = 0; k < GROUP; k++)
        s[k] = x_step(x_block(t, 0, c + k));
    __m256 s01 = _mm256_blend_ps(s[0], s[1], 0x02), s23 = _mm256_blend_ps(s[2], s[3], 0x08);
    __m256 s45 = _mm256_blend_ps(s[4], s[5], 0x20), s67 = _mm256_blend_ps(s[6], s[7], 0x80);
    return _mm256_blend_ps(_mm256_blend_ps(s01, s23, 0x0c), _mm256_blend_ps(s45, s67, 0xc0), 0xf0);
}

/* sums[r]: the block sums of blocks c .. c + 7 of row r against input 0.
 * One row: all 8 blocks' integer products first, then the tree (the tree
 * interleaved with them measured 0.15 cycles a block slower). Two rows: 4
 * blocks at a time (16 products would not fit in 16 registers), each input
 * block loaded once for both rows, with the per-block kernel's prefetches in
 * its order: its speed from DRAM stays where it was (within this machine's
 * noise), where prefetching a group's lines at once lost a third. */
TILE_KERNEL void q8_0_group_sums(const tile *t, const int nr, int64_t c, __m256i sums[])
{
    if (nr == 1) {
        const uint8_t *wb = w_row(t, 0) + 34 * c;
        __m256i m[GROUP];
#pragma GCC unroll 8
        for (int k = 0; k < GROUP; k++)
            m[k] = q8_0_block_lanes(wb + 34 * k, x_codes(x_block(t, 0, c + k)));
        sums[0] = block_sums_of_8(m);
        return;
    }
    __m256i half[2][2];
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        __m256i m[2][4];
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            int64_t b = c + 4 * h + k;
            __m256i xq = x_codes(x_block(t, 0, b));
#pragma GCC unroll 2
            for (int r = 0; r < 2; r++) {
                prefetch_tile(t, nr, (size_t)(nr * b + r) * 34);
                m[r][k] = q8_0_block_lanes(w_row(t, r) + 34 * b, xq);
            }
        }
#pragma GCC unroll 2
        for (int r = 0; r < 2; r++)
            half[r][h] = sum_pairs_64(sum_pairs_32(m[r][0], m[r][1]), sum_pairs_32(m[r][2], m[r][3]));
    }
#pragma GCC unroll 2
    for (int r = 0; r < 2; r++)
        sums[r] = sum_halves(half[r][0], half[r][1]);
}

/* nr (1 or 2) rows against one input: groups of 8 blocks, then the last
 * blocks (fewer than 8) one at a time into the same accumulators. */
TILE_KERNEL void tile_q8_0_grouped(const tile *t, const int nr)
{
    tile_acc acc[1];
    tile_zero(acc, 1, nr, 1);
    const int64_t chunks = t->n / QK;
    int64_t c = 0;
    for (; c + GROUP <= chunks; c += GROUP) {
        __m256i sums[2];
        q8_0_group_sums(t, nr, c, sums);
        __m256 dx = x_steps_of_8(t, c);
#pragma GCC unroll 2
        for (int r = 0; r < nr; r++) {
            __m256 scale = _mm256_mul_ps(q8_0_steps_of_8(w_row(t, r) + 34 * c), dx);
            acc[0][r][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums[r]), scale, acc[0][r][0]);
        }
    }
    for (; c < chunks; c++)
        chunk_of_32(t, SOL_DT_Q8_0, c, acc[0], nr, 1);
    tile_store(t, acc, 1, nr, 1);
}

/* From 3 rows, or with several inputs, the per-block kernel: there the
 * products of a block no longer fit in registers beside a group's, and 4
 * rows taken as two pairs measured slower from DRAM (17 -> 11 GB/s). */
TILE_KERNEL void tile_q8_0(const tile *t, const int nr, const int nx)
{
    if (nx == 1 && nr <= 2)
        tile_q8_0_grouped(t, nr);
    else
        tile_blocks_of_32(t, SOL_DT_Q8_0, nr, nx);
}

TILE_KERNEL void tile_q4_0(const tile *t, const int nr, const int nx) { tile_blocks_of_32(t, SOL_DT_Q4_0, nr, nx); }
TILE_KERNEL void tile_q4_1(const tile *t, const int nr, const int nx) { tile_blocks_of_32(t, SOL_DT_Q4_1, nr, nx); }

/* ---- the super-block types ------------------------------------------------
 * Their chunks' integer products carry the chunk's integer scale, leaving
 * one float factor d * x.d per chunk: each pair sums x.d * p over a
 * super-block (sb) and multiplies the sum by d at its end. */

/* x.d * p, p the integer products of a chunk with scales w->aux, into *sb. */
TILE_KERNEL void add_scaled_products(__m256i p16, const w_chunk *w, const uint8_t *xb, __m256 *sb)
{
    __m256i p = _mm256_madd_epi16(p16, w->aux);
    *sb = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), x_step(xb), *sb);
}

/* The end of a super-block: its sums, times each row's d, into the running
 * sums. */
TILE_KERNEL void end_superblock(tile_acc acc[], tile_acc sb[], const __m256 d[], const int sets, const int nr,
                                const int nx)
{
#pragma GCC unroll 4
    for (int k = 0; k < sets; k++)
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
            for (int i = 0; i < nx; i++)
                acc[k][r][i] = _mm256_fmadd_ps(d[r], sb[k][r][i], acc[k][r][i]);
}

/* ---- Q4_K: 144 bytes per 256: f16 d, f16 dmin, 12 bytes of 6-bit scales
 * and mins, 128 bytes of nibbles (chunk j: the low nibbles of bytes
 * 32 (j / 2) .. + 31 when j is even, the high ones when odd); value =
 * d * sc[j] * q - dmin * m[j].
 * sc[j] goes into the madd (|p| <= 2 * 15 * 127, times 63 fits int32). The
 * mins make -dmin * (m . the 8 chunks' x.sum), one FMA per pair and
 * super-block with m and the sums in the 8 lanes. ------------------------ */

/* x.sum of the 8 blocks of super-block s of input i. */
AVX2 static inline __m256 x_sums_of_superblock(const tile *t, int i, int64_t s)
{
    const uint8_t *p = x_block(t, i, 8 * s) + offsetof(sol_q8_block, sum);
    const size_t b = sizeof(sol_q8_block);
    return _mm256_setr_ps(load_f32(p), load_f32(p + b), load_f32(p + 2 * b), load_f32(p + 3 * b),
                          load_f32(p + 4 * b), load_f32(p + 5 * b), load_f32(p + 6 * b), load_f32(p + 7 * b));
}

/* Chunk j of super-block s of row r; sc: the row's 8 scales as int16 in
 * both 128-bit lanes. */
TILE_KERNEL w_chunk q4_k_decode(const tile *t, int r, int64_t s, const int j, __m256i sc, const int nr)
{
    const uint8_t *b = w_row(t, r) + 144 * s;
    prefetch_tile(t, nr, (size_t)nr * 144 * (size_t)s + (size_t)(nr * j + r) * 18);
    __m256i v = _mm256_loadu_si256((const __m256i *)(b + 16 + 32 * (j / 2)));
    w_chunk w;
    w.q = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(v, 4) : v, _mm256_set1_epi8(0x0f));
    w.aux = _mm256_shuffle_epi8(sc, _mm256_set1_epi16((short)(2 * j | (2 * j + 1) << 8))); /* word j */
    return w;
}

TILE_KERNEL void q4_k_pair(const w_chunk *w, const uint8_t *xb, __m256 *sb)
{
    add_scaled_products(_mm256_maddubs_epi16(w->q, x_codes(xb)), w, xb, sb);
}

TILE_KERNEL void tile_q4_k(const tile *t, const int nr, const int nx)
{
    const int sets = ACC_SETS(nr, nx);
    tile_acc acc[MAX_ACC_SETS];
    tile_zero(acc, sets, nr, nx);
    for (int64_t s = 0; s < t->n / QK_K; s++) {
        __m256i sc[SOL_Q8_MAX_ROWS];
        __m256 d[SOL_Q8_MAX_ROWS], mins[SOL_Q8_MAX_ROWS]; /* mins: -dmin * m[0..7] */
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const uint8_t *b = w_row(t, r) + 144 * s;
            uint64_t sc_bytes, m_bytes;
            q4_k_scale_bytes(b + 4, &sc_bytes, &m_bytes);
            sc[r] = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc_bytes)));
            __m256 m = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)m_bytes)));
            mins[r] = _mm256_mul_ps(_mm256_set1_ps(-_cvtsh_ss(load_u16(b + 2))), m);
            d[r] = load_scale(b);
        }
        tile_acc sb[MAX_ACC_SETS];
        tile_zero(sb, sets, nr, nx);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            w_chunk w[SOL_Q8_MAX_ROWS];
            FOR_EACH_PAIR(nr, nx, w[r] = q4_k_decode(t, r, s, j, sc[r], nr),
                          q4_k_pair(&w[r], x_block(t, i, 8 * s + j), &sb[j % sets][r][i]));
        }
#pragma GCC unroll 4
        for (int i = 0; i < nx; i++) {
            __m256 sums = x_sums_of_superblock(t, i, s);
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++)
                acc[0][r][i] = _mm256_fmadd_ps(mins[r], sums, acc[0][r][i]);
        }
        end_superblock(acc, sb, d, sets, nr, nx);
    }
    tile_store(t, acc, sets, nr, nx);
}

/* ---- Q6_K: 210 bytes per 256: ql[128], qh[64], 16 int8 scales, f16 d;
 * value = d * scale[e / 16] * (code - 32), codes 0..63 (q6_k_codes_u).
 * Chunk j = 4h + k of half h: maddubs(code, x.q) - maddubs(32, x.q) is the
 * signed product in int16 (at most 2 * 63 * 127 before the difference), and
 * the madd multiplies words 0-7 (elements 0-15) by scale[2j] and words 8-15
 * by scale[2j + 1]: scale * (code - 32) . x.q in int32. ------------------- */

/* Scales 2j and 2j + 1 as int16 in the low and the high 128-bit lane, from
 * the 16 scale bytes in both lanes: each word takes its byte in its high
 * half (the 0x80 in the shuffle clears the low one), then an arithmetic
 * shift brings it down with its sign. */
AVX2 static inline __m256i q6_k_chunk_scales(__m256i scale_bytes, int j)
{
    __m256i pick = _mm256_setr_m128i(_mm_set1_epi16((short)(0x80 | (2 * j) << 8)),
                                     _mm_set1_epi16((short)(0x80 | (2 * j + 1) << 8)));
    return _mm256_srai_epi16(_mm256_shuffle_epi8(scale_bytes, pick), 8);
}

TILE_KERNEL w_chunk q6_k_decode(const tile *t, int r, int64_t s, const int j, const int nr)
{
    const uint8_t *b = w_row(t, r) + 210 * s;
    const int h = j / 4, k = j % 4;
    prefetch_tile(t, nr, (size_t)nr * 210 * (size_t)s + (size_t)(nr * j + r) * 210 / 8);
    __m256i ql = _mm256_loadu_si256((const __m256i *)(b + 64 * h + 32 * (k & 1)));
    __m256i qh = _mm256_loadu_si256((const __m256i *)(b + 128 + 32 * h));
    __m256i scale_bytes = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(b + 192)));
    w_chunk w;
    w.q = q6_k_codes_u(ql, qh, k);
    w.aux = q6_k_chunk_scales(scale_bytes, j);
    return w;
}

TILE_KERNEL void q6_k_pair(const w_chunk *w, const uint8_t *xb, __m256 *sb)
{
    __m256i xq = x_codes(xb);
    __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(w->q, xq), _mm256_maddubs_epi16(_mm256_set1_epi8(32), xq));
    add_scaled_products(p16, w, xb, sb);
}

TILE_KERNEL void tile_q6_k(const tile *t, const int nr, const int nx)
{
    const int sets = ACC_SETS(nr, nx);
    tile_acc acc[MAX_ACC_SETS];
    tile_zero(acc, sets, nr, nx);
    for (int64_t s = 0; s < t->n / QK_K; s++) {
        tile_acc sb[MAX_ACC_SETS];
        tile_zero(sb, sets, nr, nx);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            w_chunk w[SOL_Q8_MAX_ROWS];
            FOR_EACH_PAIR(nr, nx, w[r] = q6_k_decode(t, r, s, j, nr),
                          q6_k_pair(&w[r], x_block(t, i, 8 * s + j), &sb[j % sets][r][i]));
        }
        __m256 d[SOL_Q8_MAX_ROWS];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            d[r] = load_scale(w_row(t, r) + 210 * s + 208);
        end_superblock(acc, sb, d, sets, nr, nx);
    }
    tile_store(t, acc, sets, nr, nx);
}

/* ---- one function per type and tile shape ------------------------------------ */

typedef void tile_fn(const tile *t);

#define SHAPE(kernel, r, i)                                                                                  \
    AVX2 static void kernel##_##r##x##i(const tile *t) { kernel(t, r, i); }
/* [rows - 1][inputs - 1]; NULL where rows * inputs > SOL_Q8_MAX_TILE */
#define SHAPES(kernel)                                                                                       \
    SHAPE(kernel, 1, 1)                                                                                      \
    SHAPE(kernel, 1, 2)                                                                                      \
    SHAPE(kernel, 1, 3)                                                                                      \
    SHAPE(kernel, 1, 4)                                                                                      \
    SHAPE(kernel, 2, 1)                                                                                      \
    SHAPE(kernel, 2, 2)                                                                                      \
    SHAPE(kernel, 2, 3)                                                                                      \
    SHAPE(kernel, 2, 4)                                                                                      \
    SHAPE(kernel, 3, 1)                                                                                      \
    SHAPE(kernel, 3, 2)                                                                                      \
    SHAPE(kernel, 4, 1)                                                                                      \
    SHAPE(kernel, 4, 2)                                                                                      \
    static tile_fn *const kernel##_shapes[SOL_Q8_MAX_ROWS][SOL_Q8_MAX_INPUTS] = {                           \
        {kernel##_1x1, kernel##_1x2, kernel##_1x3, kernel##_1x4},                                            \
        {kernel##_2x1, kernel##_2x2, kernel##_2x3, kernel##_2x4},                                            \
        {kernel##_3x1, kernel##_3x2, NULL, NULL},                                                            \
        {kernel##_4x1, kernel##_4x2, NULL, NULL},                                                            \
    };

SHAPES(tile_q8_0)
SHAPES(tile_q4_0)
SHAPES(tile_q4_1)
SHAPES(tile_q4_k)
SHAPES(tile_q6_k)

void sol_dot_q8_avx2(sol_dtype t, const void *w, size_t row_bytes, int n_rows, const sol_q8_block *x,
                     int64_t x_stride, int n_x, int64_t n, float *out, int64_t out_stride)
{
    assert(sol_act_q8_applies(t) && n % sol_dtype_block_elems(t) == 0 && n % SOL_Q8_BLOCK == 0);
    assert(n_rows >= 1 && n_rows <= SOL_Q8_MAX_ROWS && n_x >= 1 && n_x <= SOL_Q8_MAX_INPUTS &&
           n_rows * n_x <= SOL_Q8_MAX_TILE);
    tile_fn *const(*shapes)[SOL_Q8_MAX_INPUTS];
    switch (t) {
    case SOL_DT_Q8_0: shapes = tile_q8_0_shapes; break;
    case SOL_DT_Q4_0: shapes = tile_q4_0_shapes; break;
    case SOL_DT_Q4_1: shapes = tile_q4_1_shapes; break;
    case SOL_DT_Q4_K: shapes = tile_q4_k_shapes; break;
    case SOL_DT_Q6_K: shapes = tile_q6_k_shapes; break;
    default: sol_dot_q8_ref(t, w, row_bytes, n_rows, x, x_stride, n_x, n, out, out_stride); return;
    }
    const tile tl = {w, row_bytes, (const uint8_t *)x, (size_t)x_stride * sizeof(sol_q8_block), n, out, out_stride};
    shapes[n_rows - 1][n_x - 1](&tl);
}

#endif
