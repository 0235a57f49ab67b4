/* The CPU matmul tunable (see cpu_matmul.h). The reference is a float64
 * dot of the dequantised weights, independent of the kernels measured. */
#include "tuner/cpu_matmul.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/formats.h"
#include "util/hash.h"

int sol_matmul_problem_parse(const char *text, sol_matmul_problem *pb, sol_err *err)
{
    char kind[16], type[16];
    long long n = 0, k = 0, m = 1;
    int got = sscanf(text, "%15[a-z]:%15[a-z0-9_]:%lldx%lldx%lld", kind, type, &n, &k, &m);
    int matvec = got >= 4 && !strcmp(kind, "matvec");
    if (got < 4 || (!matvec && strcmp(kind, "matmul")) || (matvec && got == 5) || (!matvec && got != 5))
        return sol_fail(err, SOL_ERR_USAGE, "--shape: expected matvec:TYPE:NxK or matmul:TYPE:NxKxM, got \"%s\"", text);
    memset(pb, 0, sizeof *pb);
    if (sol_dtype_parse(type, &pb->type) || !sol_format_supported(pb->type))
        return sol_fail(err, SOL_ERR_USAGE, "--shape: \"%s\" is not a CPU weight type", type);
    if (n < 1 || k < 1 || m < 1 || n > 1 << 20 || k > 1 << 20 || m > 4096 ||
        k % sol_dtype_block_elems(pb->type))
        return sol_fail(err, SOL_ERR_USAGE, "--shape: %lldx%lldx%lld is out of range or K is not a multiple of %s's block",
                        n, k, m, type);
    pb->rows = n;
    pb->cols = k;
    pb->m = (int)m;
    return 0;
}

void sol_matmul_problem_format(const sol_matmul_problem *pb, char *shape, int cap)
{
    snprintf(shape, (size_t)cap, "%lldx%lldx%d", (long long)pb->rows, (long long)pb->cols, pb->m);
}

const char *sol_cpu_matmul_kernel(sol_dtype type, sol_activations act, int m)
{
    return act == SOL_ACT_Q8 && m < SOL_CPU_INT8_DOTS_BELOW && sol_cpu_integer_dots(type) ? "cpu.matmul.q8" : "cpu.matmul";
}

enum { P_TASKS, P_ROW_BLOCK, P_TILE_ROWS, P_TILE_INPUTS };

/* With one input only the task split and the rows per call matter; the
 * integer-dot tile must fit its registers. */
static int matmul_constraint(const int *values, void *user)
{
    const sol_matmul_problem *pb = user;
    int integer_dots = !strcmp(sol_cpu_matmul_kernel(pb->type, pb->act, pb->m), "cpu.matmul.q8");
    sol_matmul_params d = sol_cpu_matmul_defaults(pb->cols, pb->m, integer_dots);
    if (pb->m == 1 && (values[P_ROW_BLOCK] != d.row_block || values[P_TILE_INPUTS] != d.tile_inputs))
        return 0;
    if (!integer_dots) /* f32: rows per pass over x in decode; prefill's tile is fixed (gemm.c) */
        return values[P_ROW_BLOCK] == d.row_block && values[P_TILE_INPUTS] == d.tile_inputs &&
               (pb->m == 1 || values[P_TILE_ROWS] == d.tile_rows);
    return pb->m == 1 || values[P_TILE_ROWS] * values[P_TILE_INPUTS] <= SOL_CPU_Q8_MAX_TILE;
}

void sol_cpu_matmul_space(const sol_matmul_problem *pb, sol_tune_space *s)
{
    static const int tasks[] = {1, 2, 4, 8, 16, 32}, blocks[] = {1, 2, 4, 8, 16, 32, 64}, tiles[] = {1, 2, 4};
    memset(s, 0, sizeof *s);
    s->kernel = sol_cpu_matmul_kernel(pb->type, pb->act, pb->m);
    sol_matmul_params d = sol_cpu_matmul_defaults(pb->cols, pb->m, !strcmp(s->kernel, "cpu.matmul.q8"));
    sol_space_add(s, "tasks_per_thread", tasks, 6, d.tasks_per_thread);
    sol_space_add(s, "row_block", blocks, 7, d.row_block);
    sol_space_add(s, "tile_rows", tiles, 3, d.tile_rows);
    sol_space_add(s, "tile_inputs", tiles, 3, d.tile_inputs);
    s->valid = matmul_constraint;
    s->user = (void *)pb;
}

void sol_matmul_params_from(const sol_tune_space *s, const sol_tune_config *c, sol_matmul_params *p)
{
    int v[SOL_TUNE_MAX_PARAMS];
    sol_space_values(s, c, v);
    p->tasks_per_thread = v[P_TASKS];
    p->row_block = v[P_ROW_BLOCK];
    p->tile_rows = v[P_TILE_ROWS];
    p->tile_inputs = v[P_TILE_INPUTS];
}

/* m rows of x through the 8-bit quantisation and back (q * d), in f32. */
static float *quantized_input(const float *x, int m, int64_t cols)
{
    size_t n = (size_t)m * (size_t)cols;
    float *out = malloc(n * sizeof *out);
    if (out && sol_act_q8_round_trip(x, out, (int64_t)n)) {
        free(out);
        out = NULL;
    }
    return out;
}

static float uniform(uint64_t *state) { return (float)((double)(sol_splitmix64(state) >> 11) / 9007199254740992.0 * 2 - 1); }

int sol_matmul_bench_init(sol_matmul_bench *b, sol_backend *be, const sol_matmul_problem *pb,
                          const sol_tune_space *space, uint64_t seed, size_t llc_bytes, int reps, sol_err *err)
{
    memset(b, 0, sizeof *b);
    b->be = be;
    be->activations = pb->act;
    b->pb = *pb;
    b->space = space;
    b->reps = reps;
    size_t row_bytes = sol_row_bytes(pb->type, pb->cols);
    /* Every repetition reads a different copy of the weights, so each one
     * streams from memory as in decoding, with no flush between them to
     * put the threads to sleep. */
    b->matrix_bytes = row_bytes * (size_t)pb->rows;
    size_t want = 2 * (llc_bytes ? llc_bytes : (size_t)32 << 20);
    b->copies = (int)((want + b->matrix_bytes - 1) / b->matrix_bytes);
    if (b->copies < 1)
        b->copies = 1;
    if ((size_t)b->copies * b->matrix_bytes > ((size_t)512 << 20))
        b->copies = (int)(((size_t)512 << 20) / b->matrix_bytes > 0 ? ((size_t)512 << 20) / b->matrix_bytes : 1);
    b->weights = malloc(b->matrix_bytes * (size_t)b->copies);
    b->x = malloc((size_t)pb->m * pb->cols * sizeof *b->x);
    b->y = malloc((size_t)pb->m * pb->rows * sizeof *b->y);
    b->reference = malloc((size_t)pb->m * pb->rows * sizeof *b->reference);
    float *row = malloc((size_t)pb->cols * sizeof *row);
    if (!b->weights || !b->x || !b->y || !b->reference || !row) {
        free(row);
        sol_matmul_bench_free(b);
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory for a %lldx%lld tuning problem", (long long)pb->rows,
                        (long long)pb->cols);
    }
    uint64_t state = seed;
    for (int64_t i = 0; i < (int64_t)pb->m * pb->cols; i++)
        b->x[i] = uniform(&state);
    /* the reference sees the input the kernel sees: with integer dots, the
     * dequantised 8-bit codes */
    const float *x_seen = b->x;
    float *x_codes = NULL;
    if (!strcmp(space->kernel, "cpu.matmul.q8") && (x_codes = quantized_input(b->x, pb->m, pb->cols)) == NULL) {
        free(row);
        sol_matmul_bench_free(b);
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory for a %lldx%lld tuning problem", (long long)pb->rows,
                        (long long)pb->cols);
    }
    if (x_codes)
        x_seen = x_codes;
    for (int64_t r = 0; r < pb->rows; r++) {
        for (int64_t c = 0; c < pb->cols; c++)
            row[c] = uniform(&state);
        char *dst = (char *)b->weights + (size_t)r * row_bytes;
        sol_quantize(pb->type, row, dst, pb->cols);
        sol_dequantize(pb->type, dst, row, pb->cols); /* what the kernel really sees */
        for (int i = 0; i < pb->m; i++) {
            double sum = 0;
            for (int64_t c = 0; c < pb->cols; c++)
                sum += (double)row[c] * x_seen[(size_t)i * pb->cols + c];
            b->reference[(size_t)i * pb->rows + r] = sum;
        }
    }
    free(row);
    free(x_codes);
    for (int i = 1; i < b->copies; i++)
        memcpy((char *)b->weights + (size_t)i * b->matrix_bytes, b->weights, b->matrix_bytes);
    /* Warm-up over every copy before anything is timed: page mappings,
     * worker threads started and spinning, clocks up. Without it the first
     * configuration measured (the default) looked ten times slower. */
    sol_matmul_params defaults = SOL_MATMUL_DEFAULTS;
    sol_weight_view w = {pb->type, NULL, pb->rows, pb->cols, row_bytes};
    for (int i = 0; i < b->copies + 8; i++) {
        w.data = (const char *)b->weights + (size_t)(i % b->copies) * b->matrix_bytes;
        sol_cpu_matmul_with(be, &w, NULL, b->x, pb->m, b->y, &defaults);
    }
    sol_perf_open(&b->perf);
    return 0;
}

void sol_matmul_bench_free(sol_matmul_bench *b)
{
    free(b->weights);
    free(b->x);
    free(b->y);
    free(b->reference);
    if (b->be)
        sol_perf_close(&b->perf);
    memset(b, 0, sizeof *b);
}

typedef struct {
    sol_matmul_bench *b;
    sol_weight_view w;
    sol_matmul_params p;
} run_ctx;

static void run_once(void *arg)
{
    run_ctx *r = arg;
    sol_matmul_bench *b = r->b;
    sol_weight_view w = r->w;
    w.data = (const char *)b->weights + (size_t)(b->next_copy++ % b->copies) * b->matrix_bytes;
    sol_cpu_matmul_with(b->be, &w, NULL, b->x, b->pb.m, b->y, &r->p);
}

/* Every output within float32 accumulation error of the float64 dot. */
static int output_correct(const sol_matmul_bench *b)
{
    for (int64_t i = 0; i < (int64_t)b->pb.m * b->pb.rows; i++) {
        double tol = 1e-5 * sqrt((double)b->pb.cols) * 4 + 1e-6 * fabs(b->reference[i]);
        if (!(fabs(b->y[i] - b->reference[i]) <= tol))
            return 0;
    }
    return 1;
}

double sol_matmul_bench_eval(void *bench, const sol_tune_config *c)
{
    sol_matmul_bench *b = bench;
    run_ctx r = {.b = b};
    r.w = (sol_weight_view){b->pb.type, b->weights, b->pb.rows, b->pb.cols, sol_row_bytes(b->pb.type, b->pb.cols)};
    sol_matmul_params_from(b->space, c, &r.p);
    /* correctness first: a wrong configuration is never timed or chosen */
    memset(b->y, 0, (size_t)b->pb.m * b->pb.rows * sizeof *b->y);
    run_once(&r);
    int values[SOL_TUNE_MAX_PARAMS];
    sol_space_values(b->space, c, values);
    if (b->inject_fault && b->inject_fault(values))
        b->y[0] += 1.0f;
    b->last_correct = output_correct(b);
    memset(&b->last, 0, sizeof b->last);
    memset(b->counters, 0, sizeof b->counters);
    if (!b->last_correct)
        return -1;
    sol_measure(run_once, &r, NULL, NULL, b->reps, &b->last);
    if (b->perf.available) { /* counters in a separate run: counting perturbs timing */
        sol_perf_start(&b->perf);
        run_once(&r);
        sol_perf_stop(&b->perf, b->counters);
    }
    return b->last.median_s;
}
