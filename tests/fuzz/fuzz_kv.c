/* The --kv grammar: any text, parsed, checked against a model, formatted
 * back and parsed again to the same scheme. */
#include "tests/fuzz/fuzz.h"

#include "models/models.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sol_model m;
    static int loaded;
    sol_err err = {0};
    if (!loaded) {
        if (sol_model_from_hf_json(sol_preset_json("llama-2-7b"), "llama-2-7b", &m, &err))
            abort();
        loaded = 1;
    }
    char *text = fuzz_text(data, size);
    sol_kv_scheme base, kv, again;
    sol_kv_from_model(&m, &base);
    if (sol_kv_parse(text, &base, &kv, &err) == 0 && sol_kv_check(&kv, &m, &err) == 0) {
        char canon[256];
        sol_kv_format(&kv, canon, sizeof canon);
        if (sol_kv_parse(canon, &base, &again, &err) != 0) /* what sol prints, sol reads */
            abort();
    }
    free(text);
    return 0;
}
