/* CPU hardware counters through perf_event_open (cycles, instructions,
 * last-level cache misses) for the tuner's trials. Many VMs expose none:
 * then `available` is 0 and `why` says so, and trials record timing only. */
#ifndef SOL_TUNER_PERF_H
#define SOL_TUNER_PERF_H

#include <stdint.h>

enum { SOL_PERF_CYCLES, SOL_PERF_INSTRUCTIONS, SOL_PERF_CACHE_MISSES, SOL_PERF_COUNT };

typedef struct sol_perf {
    int fd[SOL_PERF_COUNT]; /* -1 when that counter is unavailable */
    int available;          /* at least one counter opened */
    char why[160];          /* when none opened: the reason */
} sol_perf;

void sol_perf_open(sol_perf *p);
void sol_perf_start(sol_perf *p);
/* Counts since start; a counter that is unavailable reads 0. */
void sol_perf_stop(sol_perf *p, uint64_t counts[SOL_PERF_COUNT]);
void sol_perf_close(sol_perf *p);
const char *sol_perf_name(int counter);

#endif
