/* Wires measured ceilings into hardware entries: the CPU as a database
 * device, and the latest `sol hw probe` figures replacing estimates. The
 * analyzer never reads the database; this is where they meet. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "db/db.h"
#include "kernels/cuda/plugin.h"

void cli_cpu_device(const sol_hw *hw, sol_device_info *dev)
{
    memset(dev, 0, sizeof *dev);
    snprintf(dev->backend, sizeof dev->backend, "cpu");
    snprintf(dev->name, sizeof dev->name, "%s", hw->display_name);
    snprintf(dev->cc, sizeof dev->cc, "%s", hw->isa);
    dev->cores = hw->cores;
    dev->l1_bytes = (int64_t)hw->cache_bytes[0];
    dev->l2_bytes = (int64_t)hw->cache_bytes[1];
    dev->l3_bytes = (int64_t)hw->cache_bytes[2];
}

void cli_gpu_device(const sol_cuda_device *gpu, sol_device_info *dev)
{
    memset(dev, 0, sizeof *dev);
    snprintf(dev->backend, sizeof dev->backend, "cuda");
    snprintf(dev->name, sizeof dev->name, "%s", gpu->name);
    snprintf(dev->uuid, sizeof dev->uuid, "%s", gpu->uuid);
    snprintf(dev->cc, sizeof dev->cc, "%s", gpu->cc);
    snprintf(dev->driver, sizeof dev->driver, "%s", gpu->driver);
    snprintf(dev->runtime, sizeof dev->runtime, "%s", gpu->runtime);
    dev->cores = gpu->sms;
    dev->l2_bytes = gpu->l2_bytes;
}

static void apply(sol_hw_value *v, const sol_probe_row *row)
{
    char note[240];
    snprintf(note, sizeof note, "sol hw probe: %s; median of %d, spread %.1f%%", row->method, row->reps,
             100 * row->spread);
    sol_hw_set_measured(v, row->value, note);
}

/* The latest probe of each of kinds[0..n) for dev: found[i] 0 with rows[i]
 * filled, or -1 when that kind was never probed. The database exists. */
static int latest_probes(const sol_device_info *dev, const char *const *kinds, int n, sol_probe_row *rows,
                         int *found, sol_err *err)
{
    sol_db *db = NULL;
    int64_t id;
    int rc = sol_db_open(NULL, &db, err);
    if (!rc)
        rc = sol_db_device(db, dev, &id, err);
    for (int i = 0; i < n; i++) {
        found[i] = rc ? -1 : sol_db_probe_latest(db, id, kinds[i], &rows[i], err);
        if (found[i] > 0)
            rc = found[i];
    }
    sol_db_close(db);
    return rc;
}

/* 1 when the database file exists (without it nothing was probed). */
static int db_exists(char *path, int cap)
{
    struct stat st;
    path[0] = '\0';
    return sol_db_path(path, cap) && stat(path, &st) == 0;
}

int cli_apply_probes(sol_hw *hw, int required, sol_err *err)
{
    char path[4096];
    if (!db_exists(path, sizeof path))
        return required ? sol_fail(err, SOL_ERR_RUNTIME, "--hw measured: no probe yet (%s does not exist); run "
                                                         "`sol hw probe` first", path)
                        : 0;
    enum { BW, PEAK, INT8 };
    static const char *const kinds[] = {"mem_read_bw", "fp32_peak", "int8_peak"};
    sol_probe_row row[3];
    int found[3];
    sol_device_info dev;
    cli_cpu_device(hw, &dev);
    int rc = latest_probes(&dev, kinds, 3, row, found, err);
    if (rc)
        return rc;
    if (found[INT8] == 0)
        apply(&hw->peak[SOL_PEAK_INT8], &row[INT8]);
    if (found[BW] == 0)
        apply(&hw->mem_bw, &row[BW]);
    if (found[PEAK] == 0) {
        apply(&hw->peak[SOL_PEAK_FP32], &row[PEAK]);
        apply(&hw->peak[SOL_PEAK_FP16], &row[PEAK]); /* fp16 is computed in fp32 here */
    }
    if (required && (found[BW] != 0 || found[PEAK] != 0))
        return sol_fail(err, SOL_ERR_RUNTIME, "--hw measured: %s has no memory-bandwidth and FMA probe for this CPU; "
                                              "run `sol hw probe` first",
                        path);
    return 0;
}

/* The GPU's latest probe figures over its datasheet entry: device-memory
 * read for the bandwidth, and each dense peak that was measured. Nothing
 * probed leaves the datasheet. */
int cli_apply_gpu_probes(sol_hw *hw, const sol_device_info *dev, sol_err *err)
{
    char path[4096];
    if (!db_exists(path, sizeof path))
        return 0;
    static const char *const kinds[] = {"mem_read_bw", "fp32_peak", "fp16_peak", "bf16_peak", "int8_peak"};
    sol_hw_value *target[] = {&hw->mem_bw, &hw->peak[SOL_PEAK_FP32], &hw->peak[SOL_PEAK_FP16],
                              &hw->peak[SOL_PEAK_BF16], &hw->peak[SOL_PEAK_INT8]};
    sol_probe_row row[5];
    int found[5];
    int rc = latest_probes(dev, kinds, 5, row, found, err);
    for (int i = 0; !rc && i < 5; i++)
        if (found[i] == 0)
            apply(target[i], &row[i]);
    return rc;
}
