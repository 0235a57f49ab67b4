/* Ring buffer of per-op step timings (see timing.h). Each slot carries a
 * sequence number: odd while the writer fills it, so a reader that sees
 * the same even number before and after its copy has a consistent step. */
#include "engine/timing.h"

#include <stdlib.h>
#include <string.h>

int sol_timing_init(sol_timing_ring *ring, int max_ops)
{
    memset(ring, 0, sizeof *ring);
    ring->max_ops = max_ops;
    atomic_init(&ring->written, 0);
    ring->storage = calloc((size_t)SOL_TIMING_STEPS * (size_t)max_ops, sizeof *ring->storage);
    for (int i = 0; i < SOL_TIMING_STEPS; i++) {
        atomic_init(&ring->seq[i], 0);
        ring->slots[i].op_s = ring->storage + (size_t)i * max_ops;
    }
    return ring->storage ? 0 : -1;
}

void sol_timing_free(sol_timing_ring *ring)
{
    free(ring->storage);
    ring->storage = NULL;
}

sol_step_timing *sol_timing_begin(sol_timing_ring *ring, int64_t pos, int n_tokens, int n_ops)
{
    uint64_t written = atomic_load_explicit(&ring->written, memory_order_relaxed);
    int i = (int)(written % SOL_TIMING_STEPS);
    atomic_fetch_add_explicit(&ring->seq[i], 1, memory_order_acq_rel); /* odd: writing */
    sol_step_timing *slot = &ring->slots[i];
    slot->step = written + 1;
    slot->pos = pos;
    slot->n_tokens = n_tokens;
    slot->n_ops = n_ops < ring->max_ops ? n_ops : ring->max_ops;
    slot->total_s = 0;
    slot->ops_timed = 1;
    return slot;
}

void sol_timing_publish(sol_timing_ring *ring, sol_step_timing *slot)
{
    int i = (int)(slot - ring->slots);
    atomic_fetch_add_explicit(&ring->seq[i], 1, memory_order_release); /* even: done */
    atomic_fetch_add_explicit(&ring->written, 1, memory_order_release);
}

int sol_timing_latest(sol_timing_ring *ring, sol_step_timing *out, double *ops, int cap)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        uint64_t written = atomic_load_explicit(&ring->written, memory_order_acquire);
        if (written == 0)
            return -1;
        int i = (int)((written - 1) % SOL_TIMING_STEPS);
        uint64_t before = atomic_load_explicit(&ring->seq[i], memory_order_acquire);
        if (before & 1)
            continue;
        *out = ring->slots[i];
        int n = out->n_ops < cap ? out->n_ops : cap;
        memcpy(ops, ring->slots[i].op_s, (size_t)n * sizeof *ops);
        out->op_s = ops;
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&ring->seq[i], memory_order_relaxed) == before)
            return 0;
    }
    return -1;
}
