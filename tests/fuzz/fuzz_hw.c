/* A hardware entry (--hw FILE.json) from anywhere. */
#include "tests/fuzz/fuzz.h"

#include "analyzer/analyzer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    sol_hw hw;
    sol_err err = {0};
    sol_hw_from_json(text, "fuzz", &hw, &err);
    free(text);
    return 0;
}
