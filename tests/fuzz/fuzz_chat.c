/* Chat templating on any text: the input is split at its first two NUL
 * bytes into a template, a system prompt and a user message (an empty
 * system part stands for none). The template replaces the tokenizer's own,
 * the conversation is rendered, and the rendering is encoded with specials
 * parsed, as sol run does with it. */
#include "models/gguf.h"
#include "models/tokenizer.h"
#include "models/tokenizer_impl.h"
#include "tests/fuzz/fuzz.h"

static sol_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    tok = fuzz_tokenizer("fuzz_chat");
    return 0;
}

/* The next NUL-terminated part of text[0..len), advancing *at past it. */
static const char *next_part(const char *text, size_t len, size_t *at)
{
    const char *part = text + *at;
    *at += strlen(part);
    if (*at < len)
        (*at)++;
    return part;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    size_t at = 0;
    char *template = (char *)next_part(text, size, &at);
    const char *system = next_part(text, size, &at);
    const char *user = next_part(text, size, &at);
    char *own = tok->chat_template;
    tok->chat_template = template;
    char *rendered = NULL;
    sol_err err = {0};
    if (sol_chat_apply(tok, *system ? system : NULL, user, &rendered, &err) == 0 && rendered) {
        int32_t *ids = NULL;
        int n = 0;
        if (sol_tokenizer_encode(tok, rendered, strlen(rendered), 1, 1, &ids, &n, &err) == 0)
            free(ids);
        free(rendered);
    }
    tok->chat_template = own;
    free(text);
    return 0;
}
