/* A GGUF file from anywhere: the reader (header, metadata, tensor table,
 * data offsets), the model's metadata, the tokenizer and its chat
 * template, and encoding and decoding with that tokenizer. */
#include "tests/fuzz/fuzz.h"

#include "models/gguf.h"
#include "models/models.h"
#include "models/tokenizer.h"

static void use_tokenizer(const sol_tokenizer *t)
{
    sol_err err = {0};
    char *chat = NULL;
    if (sol_chat_apply(t, NULL, "hi", &chat, &err) == 0)
        free(chat);
    int32_t *ids = NULL;
    int n = 0;
    if (sol_tokenizer_encode(t, "Hello, world <s> 42", 19, 1, 1, &ids, &n, &err) == 0) {
        for (int i = 0; i < n; i++) {
            int len = 0;
            free(sol_tokenizer_piece(t, ids[i], &len));
        }
        free(ids);
    }
    int len = 0;
    free(sol_tokenizer_piece(t, sol_tokenizer_n_vocab(t) - 1, &len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, "gguf");
    sol_gguf g;
    sol_err err = {0};
    if (sol_gguf_open(&g, path, &err) != 0)
        return 0;
    sol_model m;
    sol_model_from_gguf(path, &m, &err);
    sol_tokenizer *t = NULL;
    if (sol_tokenizer_load(&g, &t, &err) == 0) {
        use_tokenizer(t);
        sol_tokenizer_free(t);
    }
    sol_gguf_close(&g);
    return 0;
}
