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

/* data written to path (aborts when it cannot be: the target cannot run) */
static inline void fuzz_write(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
}

/* data written to sol-fuzz-PID.SUFFIX in /dev/shm (memory: the readers
 * take paths, and a disk-backed /tmp made these targets I/O-bound) or /tmp;
 * returns the path (static). */
static inline const char *fuzz_file(const uint8_t *data, size_t size, const char *suffix)
{
    static char path[64];
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(path, sizeof path, "%s/sol-fuzz-%d.%s", dir, (int)getpid(), suffix);
    fuzz_write(path, data, size);
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
