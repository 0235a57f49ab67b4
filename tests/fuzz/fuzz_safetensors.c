/* A .safetensors file from anywhere: the JSON header, dtypes, shapes and
 * offsets against the file's size. */
#include "tests/fuzz/fuzz.h"

#include "models/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, "safetensors");
    sol_st_model *m = NULL;
    sol_err err = {0};
    if (sol_st_open(path, &m, &err) == 0) {
        for (int i = 0; i < sol_st_count(m); i++)
            sol_st_find(m, sol_st_at(m, i)->name);
        sol_st_close(m);
    }
    return 0;
}
