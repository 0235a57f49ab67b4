/* --backend: which backend a command's engine runs on. `cpu` is built in;
 * `cuda` loads build/sol-cuda.so; a path (with a /) loads that plugin file
 * (the tests' host-poisoning backend is one). */
#include <string.h>

#include "cli/cli.h"
#include "kernels/cuda/loader.h"

int cli_parse_backend(const char *cmd, const char *text, const char **out)
{
    if (strcmp(text, "cpu") != 0 && strcmp(text, "cuda") != 0 && !strchr(text, '/'))
        return cli_usage_error(cmd, "--backend: expected cpu, cuda or the path of a plugin file, got \"%s\"", text);
    *out = text;
    return 0;
}

int cli_backend_is_cpu(const cli_backend_opts *o) { return !o->name || strcmp(o->name, "cpu") == 0; }

int cli_backend_open(const cli_backend_opts *o, sol_backend **out, sol_err *err)
{
    *out = NULL;
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
    sol_plugin_backend_options opt = {.device = o->device, .threads = o->threads};
    return plugin->backend_new(&opt, out, err);
}
