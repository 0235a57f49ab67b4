/* sol hw probe --backend cuda: measure a GPU's real ceilings through the
 * CUDA plugin, print each beside the datasheet entry the analyzer uses for
 * that card, store them under the GPU's own database device. */
#include <cJSON.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "db/db.h"
#include "kernels/cuda/loader.h"

/* The datasheet figure a probe kind is compared with; NULL when none. */
static const sol_hw_value *datasheet_for(const sol_hw *hw, const char *kind)
{
    if (!strncmp(kind, "mem_", 4) || !strcmp(kind, "bf16_gemv_bw"))
        return &hw->mem_bw;
    static const struct {
        const char *kind;
        sol_peak peak;
    } peaks[] = {{"bf16_peak", SOL_PEAK_BF16}, {"fp16_peak", SOL_PEAK_FP16}, {"int8_peak", SOL_PEAK_INT8},
                 {"fp32_peak", SOL_PEAK_FP32}};
    for (size_t i = 0; i < sizeof peaks / sizeof peaks[0]; i++)
        if (!strcmp(kind, peaks[i].kind))
            return &hw->peak[peaks[i].peak];
    return NULL;
}

static void print_table(const sol_cuda_device *gpu, const sol_hw *sheet, const sol_probe_result *res, int n)
{
    char l2[32], mem[32], clocks[32] = "-";
    sol_fmt_bytes(l2, sizeof l2, (double)gpu->l2_bytes);
    sol_fmt_bytes(mem, sizeof mem, (double)gpu->mem_bytes);
    if (gpu->mem_bw_from_clocks > 0)
        sol_fmt_count(clocks, sizeof clocks, gpu->mem_bw_from_clocks, "B/s");
    printf("%s: cc %s, %d SMs, %s L2, %s memory (%s from its clocks), driver CUDA %s, runtime %s\n", gpu->name,
           gpu->cc, gpu->sms, l2, mem, clocks, gpu->driver, gpu->runtime);
    printf("  %-16s %13s %13s %13s %13s %7s  %s\n", "probe", "median", "min", "max",
           sheet ? sheet->name : "datasheet", "ratio", "method");
    for (int i = 0; i < n; i++) {
        const sol_probe_result *r = &res[i];
        char med[32], lo[32], hi[32], ds[32] = "-", ratio[16] = "-";
        int seconds = !strcmp(r->unit, "s");
        if (seconds) {
            sol_fmt_time(med, sizeof med, r->median);
            sol_fmt_time(lo, sizeof lo, r->min);
            sol_fmt_time(hi, sizeof hi, r->max);
        } else {
            sol_fmt_count(med, sizeof med, r->median, r->unit);
            sol_fmt_count(lo, sizeof lo, r->min, r->unit);
            sol_fmt_count(hi, sizeof hi, r->max, r->unit);
        }
        const sol_hw_value *v = sheet ? datasheet_for(sheet, r->kind) : NULL;
        if (v && v->known && v->value > 0) {
            sol_fmt_count(ds, sizeof ds, v->value, r->unit);
            snprintf(ratio, sizeof ratio, "%.0f%%", 100 * r->median / v->value);
        }
        printf("  %-16s %13s %13s %13s %13s %7s  %s\n", r->kind, med, lo, hi, ds, ratio, r->method);
    }
    if (sheet)
        printf("  (datasheet: analyzer/hw/%s.json; copy counts bytes read + written, so it may exceed 100%%)\n",
               sheet->name);
    else
        printf("  (no hardware entry matches \"%s\": add one under analyzer/hw/ to compare)\n", gpu->name);
}

/* {"device": {...}, "hw": entry or null, "probes": [{..., "datasheet", "ratio"}]} */
static cJSON *probe_json(const sol_cuda_device *gpu, const sol_hw *sheet, const sol_probe_result *res, int n)
{
    cJSON *root = cJSON_CreateObject(), *d = cJSON_AddObjectToObject(root, "device");
    cJSON_AddStringToObject(d, "name", gpu->name);
    cJSON_AddStringToObject(d, "uuid", gpu->uuid);
    cJSON_AddStringToObject(d, "cc", gpu->cc);
    cJSON_AddNumberToObject(d, "sms", gpu->sms);
    cJSON_AddNumberToObject(d, "l2_bytes", (double)gpu->l2_bytes);
    cJSON_AddNumberToObject(d, "mem_bytes", (double)gpu->mem_bytes);
    cJSON_AddNumberToObject(d, "mem_bw_from_clocks", gpu->mem_bw_from_clocks);
    cJSON_AddStringToObject(d, "driver", gpu->driver);
    cJSON_AddStringToObject(d, "runtime", gpu->runtime);
    if (sheet)
        cJSON_AddStringToObject(root, "hw", sheet->name);
    else
        cJSON_AddNullToObject(root, "hw");
    cJSON *probes = cli_probe_json(res, n);
    for (int i = 0; i < n; i++) {
        const sol_hw_value *v = sheet ? datasheet_for(sheet, res[i].kind) : NULL;
        cJSON *p = cJSON_GetArrayItem(probes, i);
        if (v && v->known && v->value > 0) {
            cJSON_AddNumberToObject(p, "datasheet", v->value);
            cJSON_AddNumberToObject(p, "ratio", res[i].median / v->value);
        }
    }
    cJSON_AddItemToObject(root, "probes", probes);
    return root;
}

int cli_hw_probe_cuda(const cli_cuda_probe_opts *o)
{
    sol_err err = {0};
    const sol_cuda_plugin *cu;
    char path[4096];
    if (sol_cuda_open(&cu, path, sizeof path, &err))
        return cli_fail("hw probe", &err);
    int count = 0;
    if (cu->device_count(&count, &err))
        return cli_fail("hw probe", &err);
    if (o->device >= count) {
        sol_fail(&err, SOL_ERR_RUNTIME, "--device %d: this machine has %d CUDA device%s (0..%d)", o->device, count,
                 count == 1 ? "" : "s", count - 1);
        return cli_fail("hw probe", &err);
    }
    sol_cuda_device gpu;
    if (cu->device_info(o->device, &gpu, &err))
        return cli_fail("hw probe", &err);
    int64_t buffer = o->size_mib ? (int64_t)o->size_mib << 20 : (int64_t)4 << 30;
    if (buffer > gpu.mem_bytes / 4) {
        if (o->size_mib) {
            sol_fail(&err, SOL_ERR_RUNTIME, "--size-mib %lld: more than a quarter of %s's memory", o->size_mib,
                     gpu.name);
            return cli_fail("hw probe", &err);
        }
        buffer = gpu.mem_bytes / 4;
    }
    sol_cuda_probe_config cfg = {.reps = o->reps, .buffer_bytes = buffer, .gemm_n = o->gemm_n,
                                 .progress = cli_probe_progress};
    fprintf(stderr, "probe: %s (cc %s, %d SMs) via %s [%s], %lld MiB stream, %dx%d products, %d repetitions each\n",
            gpu.name, gpu.cc, gpu.sms, path, cu->build, (long long)(buffer >> 20), o->gemm_n, o->gemm_n, o->reps);
    sol_probe_result res[16];
    int n = 0;
    sol_device_info dev;
    cli_gpu_device(&gpu, &dev);
    if (cu->probe(o->device, &cfg, res, 16, &n, &err) || cli_probe_store(&dev, res, n, &err))
        return cli_fail("hw probe", &err);
    const char *name = sol_hw_for_gpu(gpu.name, (double)gpu.mem_bytes);
    sol_hw sheet;
    sol_err ignored = {0};
    const sol_hw *known = name && !sol_hw_load(name, &sheet, &ignored) ? &sheet : NULL;
    if (o->format == CLI_FORMAT_JSON)
        return cli_print_json(probe_json(&gpu, known, res, n));
    print_table(&gpu, known, res, n);
    char db_path[4096];
    printf("stored in %s under device \"%s\" %s\n", sol_db_path(db_path, sizeof db_path), gpu.name, gpu.uuid);
    return 0;
}
