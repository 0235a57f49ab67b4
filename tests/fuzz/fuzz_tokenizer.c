/* The byte-level tokenizer of a fixed vocabulary (sol synth's) on any
 * bytes: encode with and without specials, then decode every id and the
 * ids the input spells, in range or not. */
#include "models/gguf.h"
#include "models/tokenizer.h"
#include "tests/fuzz/fuzz.h"

static sol_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    tok = fuzz_tokenizer("fuzz_tokenizer");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sol_err err = {0};
    for (int special = 0; special < 2; special++) {
        int32_t *ids = NULL;
        int n = 0;
        if (sol_tokenizer_encode(tok, (const char *)data, size, special, special, &ids, &n, &err) == 0) {
            for (int i = 0; i < n; i++) {
                int len = 0;
                free(sol_tokenizer_piece(tok, ids[i], &len));
            }
            free(ids);
        }
    }
    for (size_t i = 0; i + 4 <= size; i += 4) { /* the input as ids */
        int32_t id;
        memcpy(&id, data + i, 4);
        char buf[8];
        sol_tokenizer_decode(tok, id, buf, sizeof buf);
    }
    return 0;
}
