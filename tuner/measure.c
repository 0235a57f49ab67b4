/* Honest timing (see tuner.h): one warm-up, then >= 5 repetitions with the
 * cache flushed between them outside the timed region; median and range. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tuner/tuner.h"
#include "util/clock.h"



void sol_measure(void (*run)(void *user), void *run_user, void (*flush)(void *user), void *flush_user, int reps,
                 sol_timing_stats *out)
{
    double t[64];
    if (reps < 5)
        reps = 5;
    if (reps > 64)
        reps = 64;
    run(run_user); /* warm-up: page faults, clocks, lazy allocations */
    for (int i = 0; i < reps; i++) {
        if (flush)
            flush(flush_user);
        double t0 = sol_now_s();
        run(run_user);
        t[i] = sol_now_s() - t0;
    }
    out->median_s = sol_median(t, reps, &out->min_s, &out->max_s);
    out->reps = reps;
}

int sol_flusher_init(sol_cache_flusher *f, size_t llc_bytes)
{
    memset(f, 0, sizeof *f);
    f->bytes = 2 * (llc_bytes ? llc_bytes : (size_t)64 << 20);
    f->buf = malloc(f->bytes);
    return f->buf ? 0 : -1;
}

void sol_flusher_run(void *flusher)
{
    sol_cache_flusher *f = flusher;
    unsigned sum = 0;
    for (size_t i = 0; i < f->bytes; i += 64) {
        f->buf[i] = (unsigned char)i;
        sum += f->buf[i];
    }
    f->sink = sum;
}

void sol_flusher_free(sol_cache_flusher *f)
{
    free(f->buf);
    f->buf = NULL;
}
