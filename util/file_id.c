#include "util/file_id.h"

#include <stdio.h>
#include <stdlib.h>

#include "util/hash.h"

uint64_t sol_file_identity(const char *path)
{
    uint64_t h = SOL_FNV1A_INIT;
    FILE *f = fopen(path, "rb");
    if (!f)
        return h;
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, 1 << 20, f) : 0;
    h = sol_fnv1a(h, buf, n);
    free(buf);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    h = sol_fnv1a(h, &size, sizeof size);
    fclose(f);
    return h;
}
