/* The local CPU as a hardware entry: cores, caches and ISA from sysfs and
 * /proc, ceilings estimated from them until `sol hw probe` measures them.
 * Every estimate says how it was made. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analyzer/analyzer.h"

/* Per-core streaming read bandwidth assumed for the estimate: a server core
 * sustains roughly 8-15 GB/s alone; 10 GB/s is the middle. */
#define EST_BW_PER_CORE 10e9
#define EST_BW_CAP 200e9
#define EST_GHZ_DEFAULT 3.0

void sol_hw_set_measured(sol_hw_value *v, double value, const char *note)
{
    v->value = value;
    v->known = value > 0;
    snprintf(v->source, sizeof v->source, "measured");
    snprintf(v->note, sizeof v->note, "%s", note);
}

static void set_value(sol_hw_value *v, double value, const char *source, const char *note)
{
    v->value = value;
    v->known = value > 0;
    snprintf(v->source, sizeof v->source, "%s", source);
    snprintf(v->note, sizeof v->note, "%s", note);
}

static long read_long_file(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

/* Cache size in bytes from sysfs ("32768K"), or 0. */
static double cache_size(int index, int *level)
{
    char path[128], text[32] = {0};
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", index);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char *ok = fgets(text, sizeof text, f);
    fclose(f);
    if (!ok)
        return 0;
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", index);
    *level = (int)read_long_file(path);
    double size = strtod(text, &ok);
    if (*ok == 'K')
        size *= 1024;
    else if (*ok == 'M')
        size *= 1024 * 1024;
    return size;
}

/* Model name, flags line and MHz from /proc/cpuinfo (first processor). */
static void read_cpuinfo(char *model, size_t model_cap, char **flags, double *mhz)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    *flags = NULL;
    *mhz = 0;
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        char *value = colon + 1 + (colon[1] == ' ');
        value[strcspn(value, "\n")] = '\0';
        if (!strncmp(line, "model name", 10) && !model[0])
            snprintf(model, model_cap, "%s", value);
        else if (!strncmp(line, "flags", 5) && !*flags)
            *flags = strdup(value);
        else if (!strncmp(line, "cpu MHz", 7) && *mhz == 0)
            *mhz = atof(value);
    }
    free(line);
    fclose(f);
}

static int has_flag(const char *flags, const char *flag)
{
    size_t n = strlen(flag);
    for (const char *p = flags; p && (p = strstr(p, flag)); p += n)
        if ((p == flags || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}

int sol_hw_detect_cpu(sol_hw *hw, sol_err *err)
{
    (void)err;
    memset(hw, 0, sizeof *hw);
    snprintf(hw->name, sizeof hw->name, "cpu");
    snprintf(hw->kind, sizeof hw->kind, "cpu");
    char model[96] = {0}, *flags = NULL;
    double mhz;
    read_cpuinfo(model, sizeof model, &flags, &mhz);
    snprintf(hw->display_name, sizeof hw->display_name, "%s (this machine)", model[0] ? model : "CPU");
    snprintf(hw->vendor, sizeof hw->vendor, "%s", strstr(model, "AMD") ? "amd" : strstr(model, "Intel") ? "intel" : "");

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        cores = 1;
    double ghz = read_long_file("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") / 1e6;
    const char *freq_from = "cpuinfo_max_freq";
    if (ghz <= 0 && mhz > 0) {
        ghz = mhz / 1000;
        freq_from = "/proc/cpuinfo MHz";
    }
    if (ghz <= 0) {
        ghz = EST_GHZ_DEFAULT;
        freq_from = "assumed 3.0 GHz";
    }

    int avx2 = has_flag(flags, "avx2"), fma = has_flag(flags, "fma");
    int avx512 = has_flag(flags, "avx512f"), avx = has_flag(flags, "avx");
    int vnni = has_flag(flags, "avx512_vnni") || has_flag(flags, "avx_vnni");
    int bf16 = has_flag(flags, "avx512_bf16");
    /* fp32 FLOP per cycle per core: two FMA pipes of 8 lanes on AVX2 cores
     * (and on AMD's double-pumped AVX-512); add+mul without FMA. */
    double flop_per_cycle = (avx2 && fma) ? 32 : avx ? 16 : 8;
    if (avx512 && strstr(model, "Intel"))
        flop_per_cycle = 64;
    const char *isa = avx512 ? "avx512" : (avx2 && fma) ? "avx2+fma" : avx ? "avx" : "sse";

    long phys_pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    char note[240], detail[256];
    int len = snprintf(detail, sizeof detail, "%ld cores, %s", cores, isa);
    double llc = 0;
    for (int i = 0; i < 8; i++) {
        int level = 0;
        double size = cache_size(i, &level);
        if (size <= 0)
            continue;
        char type[64] = {0}, path[128];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(type, sizeof type, f))
                type[0] = '\0';
            fclose(f);
        }
        if (strncmp(type, "Instruction", 11) == 0)
            continue;
        if (len < (int)sizeof detail)
            len += snprintf(detail + len, sizeof detail - (size_t)len, ", L%d %.0f KiB", level, size / 1024);
        if (size > llc)
            llc = size;
        if (level >= 1 && level <= 3)
            hw->cache_bytes[level - 1] = size;
    }
    snprintf(hw->detail, sizeof hw->detail, "%s", detail);
    snprintf(hw->isa, sizeof hw->isa, "%s", isa);
    hw->cores = (int)cores;

    double peak32 = (double)cores * ghz * 1e9 * flop_per_cycle;
    snprintf(note, sizeof note, "%ld cores x %.2f GHz (%s) x %.0f FLOP/cycle (%s)", cores, ghz, freq_from,
             flop_per_cycle, isa);
    set_value(&hw->peak[SOL_PEAK_FP32], peak32, "estimate", note);
    set_value(&hw->peak[SOL_PEAK_FP16], peak32, "estimate",
              "no fp16 arithmetic: converted (F16C) and computed in fp32");
    set_value(&hw->peak[SOL_PEAK_BF16], bf16 ? 2 * peak32 : peak32, "estimate",
              bf16 ? "avx512_bf16 dot products: 2x fp32" : "computed in fp32 after conversion");
    set_value(&hw->peak[SOL_PEAK_INT8], (vnni ? 4 : 2) * peak32, "estimate",
              vnni ? "VNNI int8 dot products: 4x fp32" : "maddubs int8 dot products: about 2x fp32");
    snprintf(hw->peak[SOL_PEAK_FP8].source, sizeof hw->peak[SOL_PEAK_FP8].source, "unsupported");

    double bw = cores * EST_BW_PER_CORE;
    if (bw > EST_BW_CAP)
        bw = EST_BW_CAP;
    snprintf(note, sizeof note, "%ld cores x 10 GB/s per core (capped at 200 GB/s); not measured", cores);
    set_value(&hw->mem_bw, bw, "estimate", note);
    set_value(&hw->mem_bytes, phys_pages > 0 && page > 0 ? (double)phys_pages * page : 0, "system",
              "physical memory (sysconf)");
    set_value(&hw->llc_bytes, llc, llc > 0 ? "system" : "unsupported", "largest cache in sysfs");
    snprintf(hw->interconnect_bw.source, sizeof hw->interconnect_bw.source, "unsupported");
    free(flags);
    return 0;
}
