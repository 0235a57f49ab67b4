/* Per-op timings of recent steps in a ring buffer. The engine (one
 * writer) records every op of every step; readers (TUI, bench) copy a step
 * out with a sequence check, so they never block decoding. */
#ifndef SOL_ENGINE_TIMING_H
#define SOL_ENGINE_TIMING_H

#include <stdatomic.h>
#include <stdint.h>

#define SOL_TIMING_STEPS 64

typedef struct sol_step_timing {
    uint64_t step;    /* 1-based step number */
    int64_t pos;      /* cache position at the start of the step */
    int n_tokens;     /* tokens evaluated (1 = decode) */
    int n_ops;
    double total_s;
    double *op_s;     /* n_ops seconds, in plan order */
    int ops_timed;    /* op_s were measured; 0: a step replayed as one CUDA
                       * graph, whose op_s are 0 (its profiled steps have them) */
    /* Hardware counters (--counters): counted is 1 when this step was
     * counted; the other fields are the latest counted step's, carried
     * forward into every slot after it (counted_step 0: none yet), so a
     * reader of any slot has them. counted_step_s is that step's total_s:
     * bytes / counted_step_s is the counted bandwidth of the same step. */
    int counted;
    uint64_t counted_step;
    double dram_read_bytes, dram_write_bytes;
    double counted_gpu_s;  /* the counted replay's GPU time */
    double counted_step_s;
} sol_step_timing;

typedef struct sol_timing_ring {
    int max_ops;
    atomic_uint_fast64_t written;          /* steps recorded */
    atomic_uint_fast64_t seq[SOL_TIMING_STEPS]; /* odd while a slot is written */
    sol_step_timing slots[SOL_TIMING_STEPS];
    double *storage;                       /* SOL_TIMING_STEPS * max_ops */
} sol_timing_ring;

int sol_timing_init(sol_timing_ring *ring, int max_ops);
void sol_timing_free(sol_timing_ring *ring);
/* Writer: returns the slot to fill; publish it when done. */
sol_step_timing *sol_timing_begin(sol_timing_ring *ring, int64_t pos, int n_tokens, int n_ops);
void sol_timing_publish(sol_timing_ring *ring, sol_step_timing *slot);
/* Reader: copies the latest step into out (op_s into ops, capacity cap);
 * returns 0, or -1 when nothing is recorded yet. */
int sol_timing_latest(sol_timing_ring *ring, sol_step_timing *out, double *ops, int cap);

#endif
