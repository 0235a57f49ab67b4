/* The byte-level tokenizer of a fixed vocabulary (sol synth's) on any
 * bytes: encode with and without specials, then decode every id and the
 * ids the input spells, in range or not. */
#include "tests/fuzz/fuzz.h"

#include "models/gguf.h"
#include "models/tokenizer.h"

static sol_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *path = getenv("SOL_FUZZ_GGUF");
    sol_gguf g;
    sol_err err = {0};
    if (!path || sol_gguf_open(&g, path, &err) || sol_tokenizer_load(&g, &tok, &err)) {
        fprintf(stderr, "fuzz_tokenizer: set SOL_FUZZ_GGUF to a GGUF with a tokenizer (%s)\n", err.msg);
        exit(2);
    }
    sol_gguf_close(&g); /* the tokenizer keeps its own copies */
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
