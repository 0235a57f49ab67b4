/* perf_event_open counters for the calling thread (see perf.h). */
#include "tuner/perf.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static const struct {
    const char *name;
    uint64_t config;
} counters[SOL_PERF_COUNT] = {
    {"cycles", PERF_COUNT_HW_CPU_CYCLES},
    {"instructions", PERF_COUNT_HW_INSTRUCTIONS},
    {"cache_misses", PERF_COUNT_HW_CACHE_MISSES},
};

const char *sol_perf_name(int counter) { return counters[counter].name; }

void sol_perf_open(sol_perf *p)
{
    memset(p, 0, sizeof *p);
    int first_errno = 0;
    for (int i = 0; i < SOL_PERF_COUNT; i++) {
        struct perf_event_attr attr;
        memset(&attr, 0, sizeof attr);
        attr.size = sizeof attr;
        attr.type = PERF_TYPE_HARDWARE;
        attr.config = counters[i].config;
        attr.disabled = 1;
        attr.exclude_kernel = 1;
        attr.exclude_hv = 1;
        p->fd[i] = (int)syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
        if (p->fd[i] < 0 && !first_errno)
            first_errno = errno;
        p->available |= p->fd[i] >= 0;
    }
    if (!p->available)
        snprintf(p->why, sizeof p->why, "hardware counters unavailable (perf_event_open: %s%s); timing only",
                 strerror(first_errno),
                 first_errno == EACCES || first_errno == EPERM ? ", see /proc/sys/kernel/perf_event_paranoid" : "");
}

void sol_perf_start(sol_perf *p)
{
    for (int i = 0; i < SOL_PERF_COUNT; i++)
        if (p->fd[i] >= 0) {
            ioctl(p->fd[i], PERF_EVENT_IOC_RESET, 0);
            ioctl(p->fd[i], PERF_EVENT_IOC_ENABLE, 0);
        }
}

void sol_perf_stop(sol_perf *p, uint64_t out[SOL_PERF_COUNT])
{
    for (int i = 0; i < SOL_PERF_COUNT; i++) {
        out[i] = 0;
        if (p->fd[i] < 0)
            continue;
        ioctl(p->fd[i], PERF_EVENT_IOC_DISABLE, 0);
        if (read(p->fd[i], &out[i], sizeof out[i]) != (ssize_t)sizeof out[i])
            out[i] = 0;
    }
}

void sol_perf_close(sol_perf *p)
{
    for (int i = 0; i < SOL_PERF_COUNT; i++)
        if (p->fd[i] >= 0)
            close(p->fd[i]);
    memset(p, 0, sizeof *p);
    for (int i = 0; i < SOL_PERF_COUNT; i++)
        p->fd[i] = -1;
}
