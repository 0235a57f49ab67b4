/* What the libFuzzer targets share: the input written to a file of this
 * process (the readers take paths), and a NUL-terminated copy for text
 * parsers. Built with clang -fsanitize=fuzzer,address,undefined
 * (make fuzz); a crash, leak or sanitizer report is the finding. */
#ifndef SOL_TESTS_FUZZ_H
#define SOL_TESTS_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* data written to /tmp/sol-fuzz-PID.SUFFIX; returns the path (static). */
static inline const char *fuzz_file(const uint8_t *data, size_t size, const char *suffix)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/sol-fuzz-%d.%s", (int)getpid(), suffix);
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    return path;
}

/* A NUL-terminated copy (free it). */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#ifdef SOL_MODELS_TOKENIZER_H /* targets that include models/gguf.h and tokenizer.h first */
/* The tokenizer of the GGUF named by $SOL_FUZZ_GGUF (make fuzz sets it);
 * exits when there is none: the target cannot run without one. */
static inline sol_tokenizer *fuzz_tokenizer(const char *target)
{
    const char *path = getenv("SOL_FUZZ_GGUF");
    sol_gguf g;
    sol_tokenizer *tok = NULL;
    sol_err err = {0};
    if (!path || sol_gguf_open(&g, path, &err) || sol_tokenizer_load(&g, &tok, &err)) {
        fprintf(stderr, "%s: set SOL_FUZZ_GGUF to a GGUF with a tokenizer (%s)\n", target, err.msg);
        exit(2);
    }
    sol_gguf_close(&g); /* the tokenizer keeps its own copies */
    return tok;
}
#endif

#endif
