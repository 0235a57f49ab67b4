/* A HF config.json from anywhere: the model it describes, its parameter
 * count and its decode plan. */
#include "tests/fuzz/fuzz.h"

#include "models/models.h"
#include "models/plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    sol_model m;
    sol_err err = {0};
    if (sol_model_from_hf_json(text, "fuzz", &m, &err) == 0) {
        sol_param_count p;
        sol_model_params(&m, &p, &err);
    }
    free(text);
    return 0;
}
