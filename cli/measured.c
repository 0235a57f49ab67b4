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

int cli_apply_probes(sol_hw *hw, int required, sol_err *err)
{
    char path[4096];
    struct stat st;
    sol_db_path(path, sizeof path);
    if (stat(path, &st) != 0) /* no database yet: nothing was probed */
        return required ? sol_fail(err, SOL_ERR_RUNTIME, "--hw measured: no probe yet (%s does not exist); run "
                                                         "`sol hw probe` first", path)
                        : 0;
    sol_db *db = NULL;
    sol_device_info dev;
    int64_t id;
    sol_probe_row bw, peak, int8;
    cli_cpu_device(hw, &dev);
    int rc = sol_db_open(NULL, &db, err);
    if (!rc)
        rc = sol_db_device(db, &dev, &id, err);
    int have_bw = rc ? -1 : sol_db_probe_latest(db, id, "mem_read_bw", &bw, err);
    int have_peak = rc || have_bw > 0 ? -1 : sol_db_probe_latest(db, id, "fp32_peak", &peak, err);
    int have_int8 = rc || have_bw > 0 || have_peak > 0 ? -1 : sol_db_probe_latest(db, id, "int8_peak", &int8, err);
    sol_db_close(db);
    if (rc || have_bw > 0 || have_peak > 0 || have_int8 > 0)
        return rc ? rc : SOL_ERR_RUNTIME;
    if (have_int8 == 0)
        apply(&hw->peak[SOL_PEAK_INT8], &int8);
    if (have_bw == 0)
        apply(&hw->mem_bw, &bw);
    if (have_peak == 0) {
        apply(&hw->peak[SOL_PEAK_FP32], &peak);
        apply(&hw->peak[SOL_PEAK_FP16], &peak); /* fp16 is computed in fp32 here */
    }
    if (required && (have_bw != 0 || have_peak != 0))
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
    struct stat st;
    if (stat(sol_db_path(path, sizeof path), &st) != 0)
        return 0;
    static const struct {
        const char *kind;
        int peak; /* -1: bandwidth */
    } figures[] = {{"mem_read_bw", -1},          {"fp32_peak", SOL_PEAK_FP32}, {"fp16_peak", SOL_PEAK_FP16},
                   {"bf16_peak", SOL_PEAK_BF16}, {"int8_peak", SOL_PEAK_INT8}};
    sol_db *db = NULL;
    int64_t id;
    int rc = sol_db_open(NULL, &db, err);
    if (!rc)
        rc = sol_db_device(db, dev, &id, err);
    for (size_t i = 0; !rc && i < sizeof figures / sizeof figures[0]; i++) {
        sol_probe_row row;
        int found = sol_db_probe_latest(db, id, figures[i].kind, &row, err);
        if (found > 0)
            rc = found;
        else if (found == 0)
            apply(figures[i].peak < 0 ? &hw->mem_bw : &hw->peak[figures[i].peak], &row);
    }
    sol_db_close(db);
    return rc;
}
