/* Plugin loading (see loader.h). */
#include "kernels/cuda/loader.h"

#include <dlfcn.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const sol_cuda_plugin *loaded;
static char loaded_path[4096];

/* Candidate i (0, 1, ...) into buf; 0 when there is no such candidate. */
static int candidate(int i, char *buf, int cap)
{
    const char *env = getenv("SOL_CUDA_PLUGIN");
    if (env && *env)
        return i == 0 ? snprintf(buf, (size_t)cap, "%s", env) < cap : 0;
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0 || i > 1)
        return 0;
    exe[len] = 0;
    const char *dir = dirname(exe);
    return snprintf(buf, (size_t)cap, i == 0 ? "%s/sol-cuda.so" : "%s/../sol-cuda.so", dir) < cap;
}

/* dlopens path and checks its table; the handle stays open (the backend's
 * code lives there). */
static int load_file(const char *path, const sol_cuda_plugin **out, sol_err *err)
{
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle)
        return sol_fail(err, SOL_ERR_RUNTIME, "cannot load the plugin %s: %s", path, dlerror());
    sol_cuda_plugin_fn fn;
    *(void **)&fn = dlsym(handle, SOL_CUDA_PLUGIN_SYMBOL);
    const sol_cuda_plugin *table = fn ? fn() : NULL;
    if (!table || table->abi != SOL_CUDA_PLUGIN_ABI) {
        int abi = table ? table->abi : -1;
        dlclose(handle);
        if (abi < 0)
            return sol_fail(err, SOL_ERR_RUNTIME, "%s is not a sol plugin (no %s symbol)", path,
                            SOL_CUDA_PLUGIN_SYMBOL);
        return sol_fail(err, SOL_ERR_RUNTIME,
                        "%s is a plugin for interface %d, this sol speaks %d%s; rebuild it with `make`", path, abi,
                        SOL_CUDA_PLUGIN_ABI, abi < SOL_CUDA_PLUGIN_ABI ? " (an older build, without the engine's backend)" : "");
    }
    *out = table;
    return 0;
}

static int load(sol_err *err)
{
    char path[4096], first[4096] = "";
    for (int i = 0; candidate(i, path, sizeof path); i++) {
        if (!first[0])
            snprintf(first, sizeof first, "%s", path);
        if (access(path, F_OK) != 0)
            continue;
        if (load_file(path, &loaded, err))
            return err->code;
        snprintf(loaded_path, sizeof loaded_path, "%s", path);
        return 0;
    }
    return sol_fail(err, SOL_ERR_RUNTIME,
                    "this sol has no CUDA backend: %s not found (`make` builds it where nvcc is installed)",
                    first[0] ? first : "sol-cuda.so");
}

int sol_plugin_load(const char *path, const sol_cuda_plugin **out, sol_err *err)
{
    *out = NULL;
    if (access(path, F_OK) != 0)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: no such plugin file", path);
    return load_file(path, out, err);
}

int sol_cuda_open(const sol_cuda_plugin **out, char *path, int cap, sol_err *err)
{
    *out = NULL;
    if (!loaded && load(err))
        return err->code;
    int count = 0;
    if (!loaded->device_count)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s is a plugin without devices, not the CUDA backend", loaded_path);
    if (loaded->device_count(&count, err))
        return err->code;
    if (count < 1)
        return sol_fail(err, SOL_ERR_RUNTIME, "no CUDA device: the driver reports none");
    if (path)
        snprintf(path, (size_t)cap, "%s", loaded_path);
    *out = loaded;
    return 0;
}
