/* A plugin of the previous interface (ABI 1, no engine backend): the
 * loader must refuse it in one line. Built as build/test/abi1.so. */
#include <stddef.h>

typedef struct {
    int abi;
    const char *build;
    void *device_count, *device_info, *probe;
} old_table;

static const old_table table = {1, "an ABI 1 plugin", NULL, NULL, NULL};

__attribute__((visibility("default"))) const old_table *sol_cuda_plugin_table(void) { return &table; }
