/* Human-readable numbers for reports: binary units for memory sizes, SI
 * units for rates and counts, adaptive time units. */
#include <math.h>
#include <stdio.h>

#include "analyzer/analyzer.h"

void sol_fmt_bytes(char *buf, int cap, double bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    while (fabs(bytes) >= 1024 && u < 5) {
        bytes /= 1024;
        u++;
    }
    snprintf(buf, (size_t)cap, u == 0 ? "%.0f %s" : bytes < 10 ? "%.2f %s" : bytes < 100 ? "%.1f %s" : "%.0f %s",
             bytes, units[u]);
}

void sol_fmt_count(char *buf, int cap, double n, const char *unit)
{
    static const char *const prefixes[] = {"", "k", "M", "G", "T", "P", "E"};
    int p = 0;
    while (fabs(n) >= 1000 && p < 6) {
        n /= 1000;
        p++;
    }
    snprintf(buf, (size_t)cap, n < 10 && p > 0 ? "%.2f %s%s" : n < 100 && p > 0 ? "%.1f %s%s" : "%.0f %s%s",
             n, prefixes[p], unit);
}

void sol_fmt_time(char *buf, int cap, double s)
{
    if (s >= 1)
        snprintf(buf, (size_t)cap, "%.2f s", s);
    else if (s >= 1e-3)
        snprintf(buf, (size_t)cap, "%.2f ms", s * 1e3);
    else if (s >= 1e-6)
        snprintf(buf, (size_t)cap, "%.2f us", s * 1e6);
    else
        snprintf(buf, (size_t)cap, "%.0f ns", s * 1e9);
}
