/* --backend: which backend a command's engine runs on. `cpu` is built in;
 * `cuda` loads build/sol-cuda.so; a path (with a /) loads that plugin file
 * (the tests' host-poisoning backend is one). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "db/db.h"
#include "kernels/cuda/loader.h"

int cli_parse_backend(const char *cmd, const char *text, const char **out)
{
    if (strcmp(text, "cpu") != 0 && strcmp(text, "cuda") != 0 && !strchr(text, '/'))
        return cli_usage_error(cmd, "--backend: expected cpu, cuda or the path of a plugin file, got \"%s\"", text);
    *out = text;
    return 0;
}

int cli_parse_cuda_opt(const char *cmd, int code, const char *arg, cli_backend_opts *o)
{
    long long n;
    switch (code) {
    case OPT_CUDA_DEVICE:
        if (cli_parse_ll(cmd, "--device", arg, &n))
            return 2;
        if (n < 0 || n > 63) {
            cli_usage_error(cmd, "--device: expected a device number 0..63, got %s", arg);
            return 2;
        }
        o->device = (int)n;
        return 1;
    case OPT_CUDA_NO_GRAPH: o->no_graph = 1; return 1;
    case OPT_CUDA_PROFILE_EVERY:
        if (cli_parse_ll(cmd, "--profile-every", arg, &n))
            return 2;
        if (n < 0 || n > 1000000) {
            cli_usage_error(cmd, "--profile-every: expected 0..1000000 decode steps, got %s", arg);
            return 2;
        }
        o->profile_every = (int)n;
        return 1;
    case OPT_CUDA_GEMM:
        if (strcmp(arg, "custom") != 0 && strcmp(arg, "cublas") != 0) {
            cli_usage_error(cmd, "--gemm: expected custom or cublas, got \"%s\"", arg);
            return 2;
        }
        o->gemm_cublas = strcmp(arg, "cublas") == 0;
        return 1;
    case OPT_CUDA_COUNTERS: o->counters = 1; return 1;
    default: return 0;
    }
}

/* "weights to the GPU: 3.2 / 13.5 GiB" on a terminal, for files of a GiB
 * and more; the line is finished when the last byte is up. */
static void upload_progress(void *user, double done, double total)
{
    (void)user;
    const double gib = 1024.0 * 1024 * 1024;
    if (total < gib || !isatty(2))
        return;
    fprintf(stderr, "\rweights to the GPU: %.1f / %.1f GiB%s", done / gib, total / gib, done >= total ? "\n" : "");
}

int cli_backend_is_cpu(const cli_backend_opts *o) { return !o->name || strcmp(o->name, "cpu") == 0; }

/* --counters on a backend that cannot count (count_step NULL). */
static int no_counters(sol_err *err)
{
    return sol_fail(err, SOL_ERR_USAGE, "--counters needs --backend cuda (CUPTI hardware counters)");
}

int cli_backend_open(const cli_backend_opts *o, sol_backend **out, sol_err *err)
{
    *out = NULL;
    if (cli_backend_is_cpu(o) && o->counters)
        return no_counters(err);
    if (cli_backend_is_cpu(o)) {
        sol_cpu_options cpu = {.threads = o->threads, .tuning = o->tuning, .mapped_weights = o->mapped_weights};
        return sol_cpu_backend_new(&cpu, out, err);
    }
    const sol_cuda_plugin *plugin = NULL;
    int rc = strcmp(o->name, "cuda") == 0 ? sol_cuda_open(&plugin, NULL, 0, err) : sol_plugin_load(o->name, &plugin, err);
    if (rc)
        return rc;
    if (!plugin->backend_new)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: the plugin has no engine backend", o->name);
    cli_cuda_tuning tuned = {0};
    if (o->no_tuned)
        tuned.tunable = plugin->tune_magic == SOL_CUDA_TUNE_MAGIC;
    else if ((rc = cli_cuda_tuning_load(plugin, o->device, &tuned, err)))
        return rc;
    int loaded = 0, attn_loaded = 0;
    sol_plugin_backend_options opt = {.device = o->device,
                                      .threads = o->threads,
                                      .no_graph = o->no_graph,
                                      .profile_every = o->profile_every,
                                      .gemm_cublas = o->gemm_cublas,
                                      .upload_progress = upload_progress,
                                      .tuned = tuned.v,
                                      .n_tuned = tuned.n,
                                      .tune_cache_dir = tuned.cache,
                                      .tuned_loaded = &loaded,
                                      .counters = o->counters,
                                      .tuned_attn = tuned.attn,
                                      .n_tuned_attn = tuned.n_attn,
                                      .tuned_attn_loaded = &attn_loaded};
    rc = plugin->backend_new(&opt, out, err);
    if (!rc && o->counters && !(*out)->count_step) {
        (*out)->destroy(*out);
        *out = NULL;
        rc = no_counters(err);
    }
    if (!rc)
        cli_cuda_tuning_report(&tuned, loaded, attn_loaded, o->model, o->no_tuned);
    cli_cuda_tuning_free(&tuned);
    return rc;
}

/* The entry named, or the one of this GPU; its probe figures over it. */
static int gpu_hw(const cli_backend_opts *o, const char *hw_name, sol_hw *hw, sol_device_info *dev, sol_err *err)
{
    const sol_cuda_plugin *plugin = NULL;
    sol_cuda_device gpu;
    int rc = sol_cuda_open(&plugin, NULL, 0, err);
    if (!rc)
        rc = plugin->device_info(o->device, &gpu, err);
    if (rc)
        return rc;
    cli_gpu_device(&gpu, dev);
    const char *entry = hw_name ? hw_name : sol_hw_for_gpu(gpu.name, (double)gpu.mem_bytes);
    if (!entry)
        return sol_fail(err, SOL_ERR_RUNTIME, "no hardware entry matches \"%s\" (analyzer/hw/); name one with --hw",
                        gpu.name);
    if ((rc = sol_hw_load(entry, hw, err)))
        return rc;
    return hw_name ? 0 : cli_apply_gpu_probes(hw, dev, err);
}

int cli_backend_hw(const cli_backend_opts *o, const char *hw_name, sol_hw *hw, sol_device_info *dev, sol_err *err)
{
    if (o->name && strcmp(o->name, "cuda") == 0)
        return gpu_hw(o, hw_name, hw, dev, err);
    sol_hw cpu;
    int rc = sol_hw_load("cpu", &cpu, err);
    if (!rc)
        rc = cli_apply_probes(&cpu, 0, err);
    if (rc)
        return rc;
    cli_cpu_device(&cpu, dev);
    if (!hw_name || strcmp(hw_name, "cpu") == 0) {
        *hw = cpu;
        return 0;
    }
    return sol_hw_load(hw_name, hw, err);
}
